"""The statistics the study's claims rest on, for small counts of runs.

Each takes plain numbers and returns plain numbers, so that a reader can
check a figure of docs/capacity.md by hand:

- wilson: the 95% interval of a share k/n (Wilson's score interval, which
  stays inside [0, 1] and is not empty at 0/n or n/n);
- kaplan_meier and median_interval: the median tokens to learn when some
  runs never learned (censored at the cap), and a distribution-free 95%
  interval of it from order statistics;
- fisher_exact: the two-sided p of "the two cells learn alike" for k1/n1
  against k2/n2.
"""
import fractions
import math

Z95 = 1.959963984540054  # the standard normal's 97.5% point


def wilson(k, n, z=Z95):
    """(low, high) of Wilson's score interval for k successes of n."""
    if n == 0:
        return 0.0, 1.0
    share = k / n
    centre = share + z * z / (2 * n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return max(0.0, (centre - half) / scale), min(1.0, (centre + half) / scale)


def kaplan_meier(times, learned):
    """[(t, S(t))] at each time a run learned: the estimated share of runs
    still learning after t, a Fraction. times: tokens at which each run
    learned, or at which it was censored (learned False)."""
    # Exact: in floats, 9/10 * 8/9 * ... * 5/6 came to 0.5000000000000001,
    # and the median to the next run's tokens (a review, 6 December 2026).
    curve, surviving = [], fractions.Fraction(1)
    for t in sorted({t for t, event in zip(times, learned) if event}):
        at_risk = sum(other >= t for other in times)
        events = sum(other == t and event
                     for other, event in zip(times, learned))
        surviving *= 1 - fractions.Fraction(events, at_risk)
        curve.append((t, surviving))
    return curve


def km_median(times, learned):
    """The first t where the Kaplan-Meier curve is at or below one half;
    math.inf if it never gets there (fewer than half learned)."""
    return next((t for t, share in kaplan_meier(times, learned)
                 if share <= fractions.Fraction(1, 2)), math.inf)


def median_interval(times, learned, level=0.95):
    """(low, high): a distribution-free interval of the median from order
    statistics, with every censored run counted as math.inf (exact when
    every run is censored at the same cap, as in the sweep)."""
    ordered = sorted(t if event else math.inf
                     for t, event in zip(times, learned))
    n = len(ordered)
    # The largest l with P(Binomial(n, 1/2) < l) <= (1 - level) / 2.
    tail, low = 0.0, 0
    while low < n:
        tail += math.comb(n, low) / 2 ** n
        if tail > (1 - level) / 2:
            break
        low += 1
    if low == 0:  # too few runs for the level: no bound either side
        return 0.0, math.inf
    return ordered[low - 1], ordered[n - low]


def fisher_exact(k1, n1, k2, n2):
    """The two-sided p of Fisher's exact test for k1 of n1 against k2 of
    n2: the chance, with the margins fixed, of a table as unlikely as this
    one or less."""
    total, successes = n1 + n2, k1 + k2

    def chance(k):
        return (math.comb(n1, k) * math.comb(n2, successes - k) /
                math.comb(total, successes))

    observed = chance(k1)
    tables = range(max(0, successes - n2), min(n1, successes) + 1)
    return min(1.0, sum(chance(k) for k in tables
                        if chance(k) <= observed * (1 + 1e-9)))
