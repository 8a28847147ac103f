import math
from fractions import Fraction

import pytest

from study import statistics


@pytest.mark.parametrize('k, n, low, high', [
    (5, 10, 0.2366, 0.7634),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (12, 20, 0.3866, 0.7812),
])
def test_wilson_gives_the_published_intervals(k, n, low, high):
    assert statistics.wilson(k, n) == (pytest.approx(low, abs=5e-5),
                                       pytest.approx(high, abs=5e-5))


@pytest.mark.parametrize('k1, n1, k2, n2, p', [
    (9, 10, 6, 10, 0.3034),  # lstm1 against rnn_relu: issue 18's p=0.30
    (10, 10, 0, 10, 1.0825e-5),
    (5, 10, 5, 10, 1.0),
    (3, 5, 0, 20, 1 / 230),  # no table is rarer: p is its chance
])
def test_fisher_exact_gives_the_two_sided_p(k1, n1, k2, n2, p):
    assert statistics.fisher_exact(k1, n1, k2, n2) == pytest.approx(
        p, rel=1e-3)


def test_kaplan_meier_with_censoring_at_the_cap_is_the_share_still_learning():
    times = [30, 10, 20, 20, 100, 100]
    learned = [True, True, True, True, False, False]
    assert statistics.kaplan_meier(times, learned) == [
        (10, Fraction(5, 6)), (20, Fraction(3, 6)), (30, Fraction(2, 6))]
    assert statistics.km_median(times, learned) == 20


def test_the_median_of_ten_runs_that_all_learned_is_the_fifth_smallest():
    """In floats the curve came to 0.5000000000000001 at the fifth run, and
    the median was the sixth run's tokens (rnn, bproplen 60, N = 20)."""
    times = [448800, 550800, 550800, 581400, 703800, 744600, 800000, 820000,
             830000, 900000]
    assert statistics.km_median(times, [True] * 10) == 703800


def test_kaplan_meier_counts_runs_censored_early_as_at_risk_until_then():
    # One run censored at 15 (another cap) leaves 3 at risk at 20, not 4.
    curve = statistics.kaplan_meier([10, 15, 20, 30, 40],
                                    [True, False, True, True, True])
    assert curve == [(10, Fraction(4, 5)), (20, Fraction(8, 15)),
                     (30, Fraction(4, 15)), (40, 0)]
    assert statistics.km_median([10, 15, 20, 30, 40],
                                [True, False, True, True, True]) == 30


def test_fewer_than_half_learned_has_no_median():
    assert statistics.km_median([5, 100, 100], [True, False, False]) == \
        math.inf


def test_the_median_interval_takes_the_binomial_order_statistics():
    times = list(range(1, 11))
    # n = 10: P(B <= 1) = 11/1024 <= 0.025 < P(B <= 2): the 2nd and 9th.
    assert statistics.median_interval(times, [True] * 10) == (2, 9)
    # Censored runs count as never: the upper bound is open.
    assert statistics.median_interval(times, [True] * 6 + [False] * 4) == \
        (2, math.inf)
    assert statistics.median_interval([1, 2], [True, True]) == (0.0,
                                                                math.inf)
