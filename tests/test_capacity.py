import chainer
import numpy
import pytest

from study import capacity
from iterators import ParallelSequentialIterator
from models import RecurrentPredictor

from helpers import RuleOracle


class CountingOracle(RecurrentPredictor):
    """Counts the words of each block, stream by stream, and predicts.

    late_after=k: at blocks longer than k it switches one step late.
    first_seen: after a reset it takes its first word for the first_seen-th
    of its block; below 1, it repeats that word 1 - first_seen times too
    often, a perfect counter that starts out of phase.
    """

    def __init__(self, n_vocab, late_after=None, first_seen=1):
        super().__init__()
        self.n_vocab = n_vocab
        self.late_after = late_after
        self.first_seen = first_seen
        self.reset_state()

    def reset_state(self):
        self.last = self.seen = None

    def forward(self, x):
        x = numpy.asarray(x)
        if self.last is None:
            self.seen = numpy.full(x.shape, self.first_seen)
        else:
            self.seen = numpy.where(x == self.last, self.seen + 1, 1)
        self.last = x
        length = x if self.late_after is None else numpy.where(
            x > self.late_after, x + 1, x)
        following = numpy.where(self.seen < length, x,
                                x % (self.n_vocab - 1) + 1)
        logits = numpy.zeros((len(x), self.n_vocab), numpy.float32)
        logits[numpy.arange(len(x)), following] = 10
        return chainer.Variable(logits)


def test_a_perfect_counter_gets_everything():
    assert capacity.measure(CountingOracle(5), 5, 10) == {
        'accuracy': 1.0, 'boundary_accuracy': 1.0,
        'non_boundary_accuracy': 1.0, 'counting_horizon': 4,
        'exact_period': True, 'generation_cold': 1.0,
        'generation_warm': 1.0}


def test_a_counter_out_of_phase_loses_only_the_cold_generation():
    # It generates 1 1 2 2 3 3 3 4 4 4 4 1 ... for 2 2 3 3 3 4 4 4 4 1 ...:
    # 6 of 20 words coincide.
    assert capacity.measure(CountingOracle(5, first_seen=-1), 5, 10) == {
        'accuracy': 1.0, 'boundary_accuracy': 1.0,
        'non_boundary_accuracy': 1.0, 'counting_horizon': 4,
        'exact_period': True, 'generation_cold': 0.3,
        'generation_warm': 1.0}


def test_a_late_switch_shows_at_the_boundaries_and_in_the_horizon():
    # N=5, late after 2: the ends of blocks 3 and 4 of 10 words are wrong.
    metrics = capacity.measure(CountingOracle(5, late_after=2), 5, 10)
    del metrics['generation_warm']  # below, at N=3
    assert metrics == {
        'accuracy': 0.8, 'boundary_accuracy': 0.5,
        'non_boundary_accuracy': 1.0, 'counting_horizon': 2,
        'exact_period': False,
        # 2 2 3 3 3 3 4 4 4 4 4 1 2 2 3 3 3 3 4 4 generated,
        # 2 2 3 3 3 4 4 4 4 1 2 2 3 3 3 4 4 4 4 1 true: 10 coincide.
        'generation_cold': 0.5}


def test_a_late_switch_costs_the_blocks_it_lengthens():
    # N=3, late after 1: 1 2 2 2 1 2 2 2 ... The warm-ups of 100 steps end
    # at phases 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2 of 1 2 2; of the
    # true blocks judged in 6 words from there (2, 3 and 2 at phases 1, 2
    # and 0) the generation gets one right each: its block of 1.
    assert capacity.measure(CountingOracle(3, late_after=1), 3, 10) == {
        'accuracy': pytest.approx(2 / 3), 'boundary_accuracy': 0.5,
        'non_boundary_accuracy': 1.0, 'counting_horizon': 1,
        'exact_period': False,
        # 2 2 2 1 2 2 generated, 2 2 1 2 2 1 true.
        'generation_cold': 0.5, 'generation_warm': 12 / 28}


def test_copying_the_input_is_right_inside_the_blocks_only():
    # 1 - 2/N: wrong at the N-1 boundaries of a period of N(N-1)/2 words.
    assert capacity.measure(RuleOracle(5, lambda x: x), 5, 10) == {
        'accuracy': 0.6, 'boundary_accuracy': 0.0,
        'non_boundary_accuracy': 1.0, 'counting_horizon': 0,
        'exact_period': False,
        # 1 1 1 ... for 2 2 3 3 3 4 4 4 4 1 ...: the two 1s of 20.
        'generation_cold': 0.1,
        # One block that never ends: nothing right.
        'generation_warm': 0.0}


@pytest.mark.parametrize('mistake, horizon', [(None, 3), (0, 0), (6, 2)])
def test_the_horizon_is_the_longest_block_below_the_first_mistake(
        mistake, horizon):
    xs = numpy.array([[1, 2], [2, 2], [2, 3], [3, 3], [3, 3], [3, 1]])
    correct = numpy.ones(xs.shape, bool)
    if mistake is not None:
        correct.flat[mistake] = False  # xs.flat[6] is 3
    assert capacity.counting_horizon(xs, correct) == horizon


@pytest.mark.parametrize('words, expected', [
    ([3, 3, 1, 2, 2, 3, 3, 3, 1, 2], (4, 4)),
    ([1, 2, 2, 2, 3, 3, 3, 1, 2], (2, 3)),  # 2 came three times
    ([1, 2, 2, 1, 1], (0, 1)),  # 2 is followed by 1, not 3
    ([2, 2, 2, 2], (0, 0)),
])
def test_blocks_are_judged_between_the_first_and_the_last(words, expected):
    assert capacity.judged_blocks(numpy.array(words), 4) == expected


def test_the_streams_start_at_evenly_spread_phases():
    sequence = capacity.phase_spread_sequence(4, 3)  # period 6, 10 periods
    assert len(sequence) == 60
    first = [int(x) for x, _ in ParallelSequentialIterator(sequence, 3)
             .next()]
    assert first == [sequence[0], sequence[2], sequence[4]] == [1, 2, 3]
