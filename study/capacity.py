"""What one trained predictor does with the simple sequence: how far it counts.

Pure measurement, no training and no files: measure(predictor, n_vocab,
batch_size) gives a flat dict of METRICS, cheap enough to call every few
hundred updates. Two ways of looking:

- teacher-forced, the true words in: overall accuracy, accuracy at the
  boundaries (where a model that switches late fails) and inside the blocks
  (where one that switches early fails), the counting horizon and whether a
  whole period came out right;
- free-running, each prediction fed back in: from a reset state and the
  prime 1, position by position (generation_cold, as the tutorial does), and
  after a teacher-forced warm-up at several phases, block by block
  (generation_warm), so that one slip costs a block, not the rest.

Every stream starts from a reset state, which training never shows the
models, and usually inside a block, where nobody could tell how many came
before: the warm-ups, of a period and of at least MIN_WARM_UP steps, are not
scored.
"""
import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import numpy

from iterators import ParallelSequentialIterator, next_window
import simple_sequence
from training_extensions import window_outputs

CPU = chainer.get_device('@numpy')
EVAL_WINDOW = 200  # steps per node in evaluation: any length gives the same
# An LSTM at N=5 needs two periods (20 steps) to leave a reset state.
MIN_WARM_UP = 100
WARM_PHASES = 12  # streams of the warm generation, evenly spread
METRICS = ('accuracy', 'boundary_accuracy', 'non_boundary_accuracy',
           'counting_horizon', 'exact_period', 'generation_cold',
           'generation_warm')
TEACHER_FORCED = METRICS[:5]  # what teacher_forced gives, cheaply


def phase_spread_sequence(n_vocab, batch_size, periods_per_stream=3):
    """The simple sequence, long enough that stream i starts i/batch_size of
    a period after a whole number of periods.

    With batch_size * k + 1 periods, stream i of ParallelSequentialIterator
    starts at i * (batch_size * k + 1) * P // batch_size, which is k*i
    periods plus floor(i * P / batch_size) words: its phases spread evenly
    over the period, where the tutorial's 100 periods and 10 streams put
    every stream at phase 0, an effective batch of one.
    """
    return simple_sequence.get_simple_sequence(
        n_vocab, batch_size * periods_per_stream + 1)


def warm_up_length(n_vocab):
    return max(simple_sequence.period_length(n_vocab), MIN_WARM_UP)


def measure(predictor, n_vocab, batch_size):
    """{metric: value} for every name in METRICS; resets the state.

    Pass a copy of a training model (model.copy()): the state is its own.
    The generations' step-by-step loops cost the most: the sweep calls
    teacher_forced alone along the way, and this once at the end.
    """
    metrics = teacher_forced(predictor, n_vocab, batch_size)
    metrics['generation_cold'] = generation_cold(predictor, n_vocab)
    metrics['generation_warm'] = generation_warm(predictor, n_vocab)
    return metrics


def teacher_forced(predictor, n_vocab, batch_size):
    """The teacher-forced metrics over one period of every stream.

    With the streams' phases spread, the scored period covers every
    position of the period batch_size times.
    """
    xs, ts, correct = scored_period(predictor, n_vocab, batch_size)
    boundary = xs != ts
    return {
        'accuracy': float(correct.mean()),
        'boundary_accuracy': float(correct[boundary].mean()),
        'non_boundary_accuracy': float(correct[~boundary].mean()),
        'counting_horizon': counting_horizon(xs, correct),
        'exact_period': bool(correct.all()),
    }


def scored_period(predictor, n_vocab, batch_size):
    """xs, ts int32 and correct bool, each (period, batch_size): one period
    of every stream after the warm-up."""
    warm_up = warm_up_length(n_vocab)
    period = simple_sequence.period_length(n_vocab)
    iterator = ParallelSequentialIterator(
        phase_spread_sequence(n_vocab, batch_size), batch_size)
    predictor.reset_state()
    scored = []
    for xs, ts, logits in window_outputs(predictor, iterator, EVAL_WINDOW,
                                         CPU, warm_up + period):
        correct = logits.array.argmax(axis=1).reshape(ts.shape) == ts
        scored.append((xs, ts, correct))
    return tuple(numpy.concatenate(arrays)[warm_up:]
                 for arrays in zip(*scored))


def counting_horizon(xs, correct):
    """The largest k such that every prediction made while reading blocks of
    length up to k is right, in every stream; 0 if the block of 1 fails.

    xs int32, correct bool: (steps, streams), the steps covering a period.
    Reading the block of v, a model predicts v at its first v-1 words and
    v's successor at its last: the block's words after the first, and the
    first of the next block.
    """
    failed = set(numpy.unique(xs[~correct]).tolist())
    horizon = 0
    for value in numpy.unique(xs).tolist():  # 1 .. N-1
        if value in failed:
            break
        horizon = value
    return horizon


def generation_cold(predictor, n_vocab):
    """The share of two periods generated from the prime 1 after a reset
    that are right, position by position."""
    length = 2 * simple_sequence.period_length(n_vocab)
    predictor.reset_state()
    prime = numpy.ones((1, 1), numpy.int32)
    generated = free_run(predictor, prime, length + 1)[1:, 0]
    return float((generated == simple_sequence.continuation(
        n_vocab, 1, length)).mean())


def generation_warm(predictor, n_vocab, phases=WARM_PHASES):
    """The share of blocks right in two periods generated after a
    teacher-forced warm-up, at `phases` evenly spread phases.

    A block is right when its word comes as many times as it says and is
    followed by its successor. The first block, which began in the warm-up,
    and the last, which the end cuts off, are not judged, in the truth
    neither. The share is of the true blocks so judged, so that a model
    that stops counting (whose last block never ends) scores nothing for
    the blocks it never made.
    """
    period = simple_sequence.period_length(n_vocab)
    iterator = ParallelSequentialIterator(
        phase_spread_sequence(n_vocab, phases), phases)
    predictor.reset_state()
    for _, _, logits in window_outputs(predictor, iterator, EVAL_WINDOW,
                                       CPU, warm_up_length(n_vocab)):
        pass
    truth, _ = next_window(iterator, 2 * period, CPU)  # (2 * period, phases)
    generated = free_run(predictor, last_prediction(logits, phases),
                         2 * period)
    right = expected = 0
    for stream in range(phases):
        right += judged_blocks(generated[:, stream], n_vocab)[0]
        expected += judged_blocks(truth[:, stream], n_vocab)[1]
    return min(right, expected) / expected


def last_prediction(logits, batch_size):
    """int32 (1, batch_size): the words that logits (steps * batch_size,
    n_vocab) predict at the last step."""
    return logits.array[-batch_size:].argmax(axis=1).astype(
        numpy.int32)[None]


def free_run(predictor, words, length):
    """int32 (length, batch): words (1, batch) and what follows them, each
    prediction fed back in, from the predictor's state.

    One-step windows: on a fused predictor a step is three nodes, not six.
    """
    generated = [words]
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for _ in range(length - 1):
            words = last_prediction(predictor.forward_window(words),
                                    words.shape[1])
            generated.append(words)
    return numpy.concatenate(generated)


def judged_blocks(words, n_vocab):
    """(right, judged) for the blocks of words, int (steps,): those between
    the first and the last, and how many of them are right."""
    starts = numpy.concatenate([[0], numpy.flatnonzero(
        words[1:] != words[:-1]) + 1])
    lengths = numpy.diff(numpy.append(starts, len(words)))
    values = words[starts]
    judged = range(1, len(starts) - 1)
    right = sum(bool(lengths[i] == values[i] and
                     values[i + 1] == values[i] % (n_vocab - 1) + 1)
                for i in judged)
    return right, len(judged)
