"""Show the counter: what models that learned to count hold in their state.

For each architecture, train runs by the sweep's recipe (seeds 0, 1, ...)
until --seeds of them have learned (a whole period exact at two
evaluations in a row) or --max-seeds were tried; then, for every run that
learned,

1. collect its state (the recurrent layers' h; the LSTM's c and h) after
   each word of a period of teacher-forced input that follows a warm-up;
2. fit a linear probe from the state's top principal components to the
   count within the block, held out by whole blocks: for each block, fitted
   on every other block of the period and scored on that one (R^2 over all
   held-out steps), so that no held-out step has a fitted neighbour in the
   same block; each number of components in PROBE_COMPONENTS is tried and
   the best kept;
3. feed one word v for OVERLONG times its block length after a warm-up that
   ends where v's block begins, and record what the model predicts at each
   step, and what the probe decodes.

Writes OUT/counter.png, OUT/counter.json (every number the doc quotes) and
prints a table, a line per run. Finite-precision ReLU RNNs and GRUs are
finite automata (Korsky and Berwick, 2019): every model here can represent
this periodic task; what the counter asks is how trained ones hold the
count, and what they do past the longest block they saw.
"""
import setup_check  # noqa: F401  (first: says so where Chainer is missing)
import quiet_start

if __name__ == '__main__':  # before Chainer loads
    quiet_start.install()

import argparse
import json
import math
import os
import stat
import sys
import time

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import numpy
import threadpoolctl

from study import ARCHS, capacity
import cli
from cli import UsageError
import simple_sequence
import snapshots
from study import sweep
from models import FUSED_ARCHITECTURES
from updaters import fast_training

# N=10 with bproplen 20: the sweep's cell where every architecture learned in
# every run, so that five learned models each cost about five runs.
DEFAULTS = {'vocab': 10, 'unit': 100, 'bproplen': 20, 'tokens': sweep.TOKENS,
            'eval_every': sweep.EVAL_EVERY,
            'seeds': 5,  # runs that learned, per architecture
            'max_seeds': 10}
QUICK = {'vocab': 5, 'unit': 16, 'bproplen': 5, 'tokens': 4000,
         'eval_every': 200, 'seeds': 2, 'max_seeds': 2}
OVERLONG = 3  # the over-long block is this many times its word
# Principal components a probe may read, each tried: the best held-out score
# is kept, chosen on the held-out blocks themselves, so it is an upper bound
# of what a probe chosen beforehand would score.
PROBE_COMPONENTS = (1, 2, 4, 8, 16, 40)


def build_parser():
    parser = cli.ArgumentParser(
        prog='python -m study.counter', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', '-a', nargs='+', default=list(ARCHS),
                        choices=sorted(FUSED_ARCHITECTURES),
                        help='architectures (default: %(default)s)')
    # Defaults that --quick changes are None here: given with --quick, they
    # would be overridden without a word.
    parser.add_argument('--vocab', '-n', type=int,
                        help='vocabulary size N (default: {})'.format(
                            DEFAULTS['vocab']))
    parser.add_argument('--unit', '-u', type=int,
                        help='units of the recurrent layer (default: '
                        '{})'.format(DEFAULTS['unit']))
    parser.add_argument('--bproplen', '-l', type=int,
                        help='BPTT length (default: {})'.format(
                            DEFAULTS['bproplen']))
    parser.add_argument('--batchsize', '-b', type=int, default=10,
                        help='parallel streams (default: %(default)s)')
    parser.add_argument('--tokens', type=int,
                        help='the cap of a run in training tokens (default: '
                        '{})'.format(DEFAULTS['tokens']))
    parser.add_argument('--eval-every', type=int,
                        help='training tokens between evaluations, or a '
                        'period of every stream where that is longer '
                        '(default: {})'.format(DEFAULTS['eval_every']))
    parser.add_argument('--seeds', type=int,
                        help='runs that learned wanted per architecture '
                        '(default: {})'.format(DEFAULTS['seeds']))
    parser.add_argument('--max-seeds', type=int,
                        help='runs tried at most per architecture (default: '
                        '{})'.format(DEFAULTS['max_seeds']))
    parser.add_argument('--block', type=int, default=None,
                        help='the word v of the over-long block (default: '
                        'N // 2)')
    parser.add_argument('--out', '-o', type=cli.non_empty_path,
                        help='folder for counter.png and counter.json '
                        '(default: results, the study\'s own)')
    parser.add_argument('--quick', action='store_true',
                        help='a seconds-long run, {quick}, into the folder '
                        'that -o must name: the default would overwrite the '
                        'study\'s figure in results/, and a folder of a '
                        'made-up name would be left for you to find and '
                        'remove'.format(quick=', '.join(
                            '--{} {}'.format(name.replace('_', '-'), value)
                            for name, value in QUICK.items())))
    return parser


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


class Probe:
    """A linear map, with a bias, from states (steps, size) to counts, read
    from the states' top principal components (at most half as many as the
    steps fitted), so that it cannot fit every step it sees."""

    def __init__(self, states, counts, components):
        self.mean = states.mean(axis=0)
        k = min(components, len(states) // 2)
        self.axes = numpy.linalg.svd(states - self.mean,
                                     full_matrices=False)[2][:k]
        self.weights = numpy.linalg.lstsq(
            self.inputs(states), counts.astype(float), rcond=None)[0]

    def inputs(self, states):
        components = (states - self.mean) @ self.axes.T
        return numpy.hstack([components, numpy.ones((len(states), 1))])

    def __call__(self, states):
        return self.inputs(states) @ self.weights


def held_out_by_blocks(states, words, components):
    """(decoded, r2): for each block of words (steps,), the counts a probe
    of that many components fitted on every other block decodes from its
    states (steps, size), and the share of the counts' variance those
    held-out decodings explain."""
    counts = counts_in_blocks(words)
    decoded = numpy.empty(len(words))
    for value in numpy.unique(words):
        block = words == value
        decoded[block] = Probe(states[~block], counts[~block],
                               components)(states[block])
    residual = ((counts - decoded) ** 2).sum()
    return decoded, float(1 - residual / ((counts - counts.mean()) ** 2)
                          .sum())


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


def first_switch(predicted, value):
    """The step (1-based) of the over-long block at which the model first
    predicts another word than value; None if it never does."""
    other = numpy.flatnonzero(predicted != value)
    return int(other[0]) + 1 if len(other) else None


def look(predictor, n_vocab, value):
    """What counter.json keeps of one learned run."""
    states, words = period_states(predictor, n_vocab)
    scores = {k: held_out_by_blocks(states, words, k)
              for k in PROBE_COMPONENTS}
    best = max(scores, key=lambda k: scores[k][1])
    decoded, r2 = scores[best]
    long_states, predicted = overlong(predictor, n_vocab, value)
    probe = Probe(states, counts_in_blocks(words), best)
    return {
        'r2_held_out_blocks': r2,
        'components': best,
        'r2_by_components': {str(k): score[1]
                             for k, score in scores.items()},
        'held_out': {'counts': counts_in_blocks(words).tolist(),
                     'decoded': decoded.tolist()},
        'overlong': {'predicted': predicted.tolist(),
                     'decoded': probe(long_states).tolist(),
                     'switch': first_switch(predicted, value)},
    }


def study(arch, args, value):
    """{arch, tried, runs}: each run tried until args.seeds learned, those
    that learned looked at."""
    settings = settings_of(args)
    runs, tried = [], 0
    while sum(run['learned_tokens'] is not None for run in runs) < \
            args.seeds and tried < args.max_seeds:
        predictor, trained = sweep.train_until_learned(
            arch, args.vocab, args.bproplen, tried, settings)
        run = {'seed': tried, 'learned_tokens': trained['learned_tokens'],
               'tokens': trained['tokens']}
        if run['learned_tokens'] is not None:
            run.update(look(predictor, args.vocab, value))
        runs.append(run)
        cli.print_or_drop('{} seed {}: {}'.format(arch, tried, (
            'learned after {:,} tokens, R2 on held-out blocks {:.3f}'.format(
                run['learned_tokens'], run['r2_held_out_blocks'])
            if 'overlong' in run else
            'not learned in {:,} tokens'.format(run['tokens']))))
        tried += 1
    return {'arch': arch, 'runs': runs}


def settings_of(args):
    """The sweep's settings of every run, with its Adam rate and clip."""
    return sweep.settings_of(argparse.Namespace(
        **vars(args), alpha=sweep.ALPHA, gradclip=sweep.GRADCLIP))


OUTPUTS = ('counter.json', 'counter.png')
LOCK = '.counter.json.lock'  # held by the counter that writes (writing_alone)
OUTPUT_BYTES = 1 << 20  # more than both take: counter.png is some 100 kB


def check_out(out):
    """UsageError, OSError, unless out takes the files: before the hours of
    training, not after."""
    for name in OUTPUTS:
        path = os.path.join(out, name)
        # Not through a link: a link to a folder is replaced, as a link.
        if os.path.lexists(path) and stat.S_ISDIR(os.lstat(path).st_mode):
            raise UsageError('{} is a folder: move it aside, or choose '
                             'another -o'.format(path))
    with writing_alone(out):
        snapshots.check_takes(out, OUTPUTS, OUTPUT_BYTES)


def writing_alone(out):
    """cli.writing_alone for the counter's files in out."""
    return cli.writing_alone(out, LOCK, 'counter')


def check_arguments(args):
    """Fill in the defaults (--quick's or not); UsageError unless every
    run can be made and looked at, with the sweep's checks."""
    given = [name for name in QUICK if getattr(args, name) is not None]
    if args.quick and given:
        raise UsageError('--quick sets {}: leave out --quick, or {}'.format(
            ', '.join('--{} {}'.format(name.replace('_', '-'), value)
                      for name, value in QUICK.items()),
            ', '.join('--' + name.replace('_', '-') for name in given)))
    if args.quick and args.out is None:
        raise UsageError('--quick needs -o: the default, results, holds the '
                         'study\'s own counter.png')
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.out is None:
        args.out = 'results'
    cli.check_whole('--seeds', args.seeds, 1)
    cli.check_whole('--max-seeds', args.max_seeds, args.seeds)
    sweep.check_runs(args.arch, [args.vocab], [args.bproplen],
                     range(args.max_seeds), settings_of(args))
    if args.block is None:
        args.block = args.vocab // 2
    cli.check_whole('--block', args.block, 1, args.vocab - 1)


def plot(results, n_vocab, value, f):
    """Draw to f a row per architecture: the held-out decoded count against
    the true one; the word predicted over the over-long block; the count
    decoded there, by runs whose probe scores above 0 on held-out blocks
    only. A colour per run that learned, its legend right of the row."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend

    height = 3.0 * len(results) + 0.8
    figure = Figure(figsize=(14, height))
    figure.subplots_adjust(left=0.05, right=0.83, top=1 - 0.8 / height,
                           bottom=0.05, hspace=0.55, wspace=0.25)
    axes = figure.subplots(len(results), 3, squeeze=False)
    steps = numpy.arange(1, OVERLONG * value + 1)
    for row, result in enumerate(results):
        learned = [run for run in result['runs'] if 'overlong' in run]
        readable = [run for run in learned if run['r2_held_out_blocks'] > 0]
        fit, words, decoded = axes[row]
        for number, run in enumerate(learned):
            color = 'C{}'.format(number)
            label = 'seed {}: R^2 {:.2f} ({} components)'.format(
                run['seed'], run['r2_held_out_blocks'], run['components'])
            held_out = run['held_out']
            fit.plot(held_out['counts'], held_out['decoded'], linestyle='',
                     marker='.', alpha=0.5, color=color)
            words.plot(steps, run['overlong']['predicted'], marker='.',
                       color=color, label=label)
            if run in readable:
                decoded.plot(steps, run['overlong']['decoded'], marker='.',
                             color=color)
        fit.plot([1, n_vocab - 1], [1, n_vocab - 1], color='gray',
                 linestyle='--', linewidth=1)
        fit.set_title('{}: {} of {} runs learned; count decoded on held-out '
                      'blocks'.format(result['arch'], len(learned),
                                      len(result['runs'])),
                      fontsize='small')
        fit.set_xlabel('true count within the block')
        fit.set_ylabel('decoded count')
        words.axvline(value, color='gray', linewidth=0.5)
        words.set_ylim(0, n_vocab)
        words.set_title('word predicted in a block of {} {}s'.format(
            OVERLONG * value, value), fontsize='small')
        words.set_xlabel('step in the block')
        decoded.plot(steps, steps, color='gray', linestyle='--',
                     linewidth=1)
        decoded.axvline(value, color='gray', linewidth=0.5)
        decoded.set_title('count decoded there: {} of {} runs whose probe '
                          'scores R^2 > 0'.format(len(readable),
                                                  len(learned)),
                          fontsize='small')
        decoded.set_xlabel('step in the block')
        if learned:
            decoded.legend(*words.get_legend_handles_labels(),
                           fontsize='x-small', loc='upper left',
                           bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        for ax in axes[row]:
            ax.grid(True, alpha=0.4)
    figure.suptitle('What the counter holds, N={}'.format(n_vocab))
    figure.savefig(f, format='png', dpi=80)


def table(results, value):
    """The printed summary, one line per run."""
    row = '{:9} {:>4} {:>10} {:>9} {:>9}  {}'
    lines = [row.format('arch', 'seed', 'learned at', 'R2 blocks',
                        'switch@{}'.format(value),
                        'words predicted past the switch')]
    for result in results:
        for run in result['runs']:
            if 'overlong' not in run:
                lines.append(row.format(result['arch'], run['seed'],
                                        'not', '', '', ''))
                continue
            overlong = run['overlong']
            past = overlong['predicted'][(overlong['switch'] or 0):]
            lines.append(row.format(
                result['arch'], run['seed'],
                '{:,}'.format(run['learned_tokens']),
                '{:.3f}'.format(run['r2_held_out_blocks']),
                str(overlong['switch']),
                ' '.join(map(str, past))))
    return '\n'.join(lines)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
        cli.check_folder(args.out, '-o')
        os.makedirs(args.out, exist_ok=True)
        check_out(args.out)
    except UsageError as error:
        parser.error(str(error))
    except OSError as error:
        parser.error('cannot write to {}: {}'.format(
            error.filename or args.out, error.strerror))
    value = args.block
    started = time.perf_counter()
    # 1. Train and look at each architecture, on one BLAS thread.
    with threadpoolctl.threadpool_limits(1), fast_training():
        results = [study(arch, args, value) for arch in args.arch]
    # 2. Keep, draw and tell.
    path = os.path.join(args.out, OUTPUTS[1])
    try:
        with writing_alone(args.out):
            # What a killed counter left of them goes.
            snapshots.remove_leftovers(args.out, OUTPUTS)
            # Both or neither: a stop while the figure was drawn left the
            # new numbers beside an older figure.
            with snapshots.atomic_files([os.path.join(args.out, name)
                                         for name in OUTPUTS]) as (numbers,
                                                                   png):
                numbers.write(json.dumps(
                    {'vocab': args.vocab, 'bproplen': args.bproplen,
                     'block': value, 'overlong': OVERLONG,
                     'results': results}, indent=1).encode())
                plot(results, args.vocab, value, png)
    except OSError as error:
        return cli.writing_failed(parser.prog, args.out, error)
    cli.print_or_drop(table(results, value))
    cli.print_or_drop('R2: a linear probe of the count within the block, '
                      'fitted on the other blocks of a period and scored on '
                      'each block in turn.')
    cli.print_or_drop('Wrote {} and counter.json in {:.0f} s.'.format(
        path, time.perf_counter() - started))
    return 0


if __name__ == '__main__':
    sys.exit(cli.run_script(main))
