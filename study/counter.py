"""Show the counter: what a model that counts holds in its state.

For each architecture, train a model on the simple sequence until a whole
period comes out exact (or the budget runs out), then

1. collect its state (the recurrent layer's h; the LSTM's c and h) over a
   period of teacher-forced input after a warm-up, and draw its top two
   principal components, coloured by the count within the block;
2. fit a linear probe from the state to that count on every other step of
   the period, and score it (R^2) on the steps between; and again, fitted on
   the blocks of odd words and scored on those of even words;
3. feed one word v for OVERLONG times its block length after a warm-up that
   ends where v's block begins, and see what the probe decodes and what the
   model predicts: does the count keep rising, saturate, or reset?

Writes OUT/counter.png and prints a table. What to expect: Weiss, Goldberg
and Yahav (2018) show that with finite precision the LSTM and the ReLU
Elman network can count without bound (a cell or unit that adds one a step)
and the tanh network and the GRU cannot (their states are squashed into a
bounded range, so a count must saturate); El-Naggar, Madhyastha and Weyde
(2022) find that trained models, LSTMs included, still do not count exactly
far beyond their training lengths, for the weights that would (saturated
gates, exact ReLU weights) are not what backpropagation finds.
"""
import argparse
import math
import os
import sys
import time

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import numpy
import threadpoolctl

from study import capacity
import cli
import simple_sequence
import snapshots
from study import sweep
import train_rnn
from updaters import fast_training

ARCHS = ('rnn', 'rnn_relu', 'lstm1', 'gru')
OVERLONG = 3  # the over-long block is this many times its word
# The rule that names the over-long behaviour, from the decoded counts.
RESET_BELOW = 0.5  # of the count decoded at the block's true end
RISE_SLOPE = 0.5  # counts per step: half the true count's
PROBE_COMPONENTS = 40


def build_parser():
    parser = cli.ArgumentParser(
        prog='python -m study.counter', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', '-a', nargs='+', default=list(ARCHS),
                        choices=ARCHS,
                        help='architectures (default: %(default)s)')
    parser.add_argument('--vocab', '-n', type=int, default=20,
                        help='vocabulary size N (default: %(default)s)')
    parser.add_argument('--unit', '-u', type=int, default=100,
                        help='units of the recurrent layer (default: '
                        '%(default)s)')
    parser.add_argument('--bproplen', '-l', type=int, default=40,
                        help='BPTT length (default: %(default)s)')
    parser.add_argument('--batchsize', '-b', type=int, default=10,
                        help='parallel streams (default: %(default)s)')
    parser.add_argument('--updates', type=int, default=4000,
                        help='the budget of updates (default: %(default)s)')
    parser.add_argument('--eval-every', type=int, default=200,
                        help='updates between checks for a whole period '
                        'exact (default: %(default)s)')
    parser.add_argument('--block', type=int, default=None,
                        help='the word v of the over-long block (default: '
                        'N // 2)')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed (default: %(default)s)')
    parser.add_argument('--out', '-o', default='results',
                        help='folder for counter.png (default: '
                        '%(default)s)')
    parser.add_argument('--quick', action='store_true',
                        help='a seconds-long run: N=5, 16 units, 40 updates')
    return parser


def train(arch, n_vocab, args):
    """(predictor, updates, exact): a model trained by train_rnn.py's recipe
    until a whole period of every stream is exact, or for args.updates."""
    run = train_rnn.setup_training(
        sweep.run_arguments(arch, n_vocab, args.bproplen, args.seed, {
            'unit': args.unit, 'batchsize': args.batchsize,
            'gradclip': 5.0}),
        words=capacity.phase_spread_sequence(n_vocab, args.batchsize),
        alpha=0.001)
    updater = run.updater
    evaluated = run.model.predictor.copy()  # owns its state: training goes on
    exact = False
    with fast_training():
        while updater.iteration < args.updates and not exact:
            updater.update()
            if (updater.iteration % args.eval_every == 0 or
                    updater.iteration == args.updates):
                exact = capacity.teacher_forced(
                    evaluated, n_vocab, args.batchsize)['exact_period']
    return evaluated, updater.iteration, exact


def counts_in_blocks(words):
    """int (steps,): how many of its word, itself included, have come in a
    row at each step of words (steps,)."""
    counts = numpy.ones(len(words), int)
    for step in range(1, len(words)):
        if words[step] == words[step - 1]:
            counts[step] = counts[step - 1] + 1
    return counts


def run(predictor, words):
    """(states, predicted): float (steps, state size) and int (steps,), the
    state and the predicted word after each of words (steps,), one stream,
    from a reset state."""
    predictor.reset_state()
    states, predicted = [], []
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for word in words:
            logits = predictor.forward_window(
                numpy.full((1, 1), word, numpy.int32))
            predicted.append(int(logits.array.argmax()))
            states.append(numpy.concatenate(
                [state.array[0] for state in predictor.states()]))
    return numpy.array(states), numpy.array(predicted)


def warm_up_periods(n_vocab):
    """Whole periods that make at least capacity's warm-up."""
    return math.ceil(capacity.warm_up_length(n_vocab) /
                     simple_sequence.period_length(n_vocab))


def period_states(predictor, n_vocab):
    """(states, words): the state (period, state size) after each word of a
    period (period,) that follows the warm-up."""
    periods = warm_up_periods(n_vocab)
    sequence = simple_sequence.get_simple_sequence(n_vocab, periods + 1)
    states, _ = run(predictor, sequence)
    period = simple_sequence.period_length(n_vocab)
    return states[-period:], sequence[-period:]


def principal_components(states, k=2):
    """float (steps, k): states (steps, size) on their top k principal axes.
    """
    centred = states - states.mean(axis=0)
    _, _, axes = numpy.linalg.svd(centred, full_matrices=False)
    return centred @ axes[:k].T


class Probe:
    """A linear map, with a bias, from states (steps, size) to counts, read
    from the states' top PROBE_COMPONENTS principal components (fewer where
    few steps are fitted), so that it cannot fit every step it sees."""

    def __init__(self, states, counts):
        self.mean = states.mean(axis=0)
        k = min(PROBE_COMPONENTS, len(states) // 2)
        self.axes = numpy.linalg.svd(states - self.mean,
                                     full_matrices=False)[2][:k]
        self.weights = numpy.linalg.lstsq(
            self.inputs(states), counts.astype(float), rcond=None)[0]

    def inputs(self, states):
        components = (states - self.mean) @ self.axes.T
        return numpy.hstack([components, numpy.ones((len(states), 1))])

    def __call__(self, states):
        return self.inputs(states) @ self.weights

    def r2(self, states, counts):
        """The share of the counts' variance that the probe explains."""
        residual = ((counts - self(states)) ** 2).sum()
        return 1 - residual / ((counts - counts.mean()) ** 2).sum()


def fit_probe(states, words, fit):
    """(probe, R^2): fitted on the steps where fit (bool, (steps,)) holds,
    scored on the others, for states (steps, size) after words (steps,)."""
    counts = counts_in_blocks(words)
    probe = Probe(states[fit], counts[fit])
    return probe, float(probe.r2(states[~fit], counts[~fit]))


def probe_splits(words):
    """{name: fit mask}: every other step (the others held out), and the
    blocks of odd words (those of even words held out: does one linear
    read-out of the count serve every word?)."""
    return {'steps': numpy.arange(len(words)) % 2 == 0,
            'blocks': words % 2 == 1}


def overlong(predictor, n_vocab, value):
    """(states, predicted) over OVERLONG * value steps of the word value,
    after warm-up periods and the blocks before value's."""
    warm_up = simple_sequence.get_simple_sequence(
        n_vocab, warm_up_periods(n_vocab))
    before = numpy.repeat(numpy.arange(1, value), numpy.arange(1, value))
    words = numpy.concatenate([warm_up, before,
                               numpy.full(OVERLONG * value, value)])
    states, predicted = run(predictor, words)
    steps = OVERLONG * value
    return states[-steps:], predicted[-steps:]


def behaviour(decoded, value):
    """'resets', 'keeps rising' or 'saturates': the decoded counts (steps,)
    of an over-long block of value.

    Resets: past the block's end (step value), the count falls below
    RESET_BELOW of the count there. Keeps rising: past the end, its
    least-squares slope is at least RISE_SLOPE counts a step (the true
    count's is 1). Else: saturates.
    """
    end, past = decoded[value - 1], decoded[value:]
    if past.min() < RESET_BELOW * end:
        return 'resets'
    if slope(past) >= RISE_SLOPE:
        return 'keeps rising'
    return 'saturates'


def slope(values):
    if len(values) < 2:
        return 0.0
    return float(numpy.polyfit(numpy.arange(len(values)), values, 1)[0])


def study(arch, n_vocab, value, args):
    """What the plot and the table show of one architecture."""
    started = time.perf_counter()
    predictor, updates, exact = train(arch, n_vocab, args)
    states, words = period_states(predictor, n_vocab)
    splits = probe_splits(words)
    probe, r2 = fit_probe(states, words, splits['steps'])
    r2_blocks = fit_probe(states, words, splits['blocks'])[1]
    long_states, predicted = overlong(predictor, n_vocab, value)
    decoded = probe(long_states)
    return {
        'arch': arch, 'updates': updates, 'exact': exact,
        'components': principal_components(states),
        'counts': counts_in_blocks(words), 'r2': r2, 'r2_blocks': r2_blocks,
        'decoded': decoded, 'predicted': predicted,
        'switch': first_switch(predicted, value),
        'behaviour': behaviour(decoded, value),
        'seconds': time.perf_counter() - started,
    }


def first_switch(predicted, value):
    """The step (1-based) of the over-long block at which the model first
    predicts another word than value; None if it never does."""
    other = numpy.flatnonzero(predicted != value)
    return int(other[0]) + 1 if len(other) else None


def plot(results, n_vocab, value, path):
    """One row per architecture: the state's principal components, and the
    over-long block."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend

    figure = Figure(figsize=(10, 3.2 * len(results)), layout='constrained')
    axes = figure.subplots(len(results), 2, squeeze=False)
    steps = numpy.arange(1, OVERLONG * value + 1)
    for row, result in enumerate(results):
        pcs, counts = result['components'], result['counts']
        ax = axes[row][0]
        ax.plot(pcs[:, 0], pcs[:, 1], color='lightgray', linewidth=0.5)
        dots = ax.scatter(pcs[:, 0], pcs[:, 1], c=counts, cmap='viridis',
                          s=12)
        figure.colorbar(dots, ax=ax, label='count within the block')
        ax.set_title('{}: state over a period, top 2 principal '
                     'components\n({} updates{})'.format(
                         result['arch'], result['updates'],
                         ', period exact' if result['exact'] else ''),
                     fontsize='small')
        ax.set_xlabel('PC 1')
        ax.set_ylabel('PC 2')
        ax = axes[row][1]
        ax.plot(steps, result['decoded'], marker='.',
                label='count the probe decodes')
        ax.plot(steps, steps, color='gray', linestyle='--',
                label='words {} seen in a row'.format(value))
        ax.axvline(value, color='gray', linewidth=0.5)
        ax.set_ylabel('count')
        ax.set_xlabel('step in a block of {} {}s'.format(
            OVERLONG * value, value))
        words = ax.twinx()
        words.plot(steps, result['predicted'], color='C3', marker='x',
                   linestyle='', label='predicted word')
        words.set_ylabel('predicted word', color='C3')
        words.set_ylim(0, n_vocab)
        ax.set_title('{}: over-long block (probe R^2 {:.2f} on held-out '
                     'steps)\ndecoded count: {}'.format(
                         result['arch'], result['r2'], result['behaviour']),
                     fontsize='small')
        ax.legend(loc='upper left', fontsize='x-small')
        words.legend(loc='lower right', fontsize='x-small')
    figure.suptitle('What the counter holds, N={}'.format(n_vocab))
    with snapshots.atomic_file(path) as f:
        figure.savefig(f, format='png', dpi=80)


def table(results, value):
    """The printed summary, one line per architecture."""
    row = '{:9} {:>7} {:>6} {:>9} {:>10} {:>9}  {}'
    lines = [row.format('arch', 'updates', 'exact', 'R2 steps', 'R2 blocks',
                        'switch@{}'.format(value), 'over-long block')]
    for result in results:
        lines.append(row.format(
            result['arch'], result['updates'], str(result['exact']),
            '{:.3f}'.format(result['r2']),
            '{:.3f}'.format(result['r2_blocks']), str(result['switch']),
            result['behaviour']))
    return '\n'.join(lines)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.quick:
        args.vocab, args.unit, args.updates = 5, 16, 40
        args.eval_every, args.bproplen = 20, 5
    value = args.block or args.vocab // 2
    if not 1 <= value < args.vocab:
        build_parser().error('--block must be a word, 1 .. N-1')
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    # 1. Train and look at each architecture, on one BLAS thread.
    with threadpoolctl.threadpool_limits(1):
        results = [study(arch, args.vocab, value, args)
                   for arch in args.arch]
    # 2. Draw and tell.
    path = os.path.join(args.out, 'counter.png')
    plot(results, args.vocab, value, path)
    print(table(results, value))
    print('R2: the linear probe of the count on held-out steps, and on the '
          'blocks of even words when fitted on those of odd words.')
    print('Rule: resets if the decoded count falls below {} of its value at '
          'step {}; keeps rising if it grows by at least {} a step after '
          'step {}; else saturates.'.format(
              RESET_BELOW, value, RISE_SLOPE, value))
    print('Wrote {} in {:.0f} s.'.format(path,
                                         time.perf_counter() - started))
    return 0


if __name__ == '__main__':
    sys.exit(main())
