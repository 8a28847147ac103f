"""How far can each recurrent model count? Train a grid of runs and plot it.

Every combination of architecture, vocabulary N (the model must count to
N-1), bprop_len and seed trains on the fused path for a fixed budget of
updates, or until both accuracies reach the target, and is scored three
ways: overall accuracy, boundary accuracy, and free-running generation.
Runs go to parallel processes (or, under mpiexec -n K, to the K ranks);
each finished run is appended to OUT/capacity.jsonl at once, and a sweep
started again skips what is there. At the end OUT/capacity.png and
OUT/capacity.md show the answer.
"""
import argparse
import fcntl
import json
import math
import multiprocessing
import os
import shlex
import stat
import sys
import time

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import numpy
import threadpoolctl

import distributed
from iterators import ParallelSequentialIterator, next_window
from models import (
    FUSED_ARCHITECTURES, SequenceClassifier, build_model, generate, judge)
from optimizers import FlatAdam
import simple_sequence
import snapshots
from cli import EXIT_USAGE, ArgumentParser, UsageError, check_fits_in_memory
from updaters import BPTTUpdater, fast_training

ARCHS = ('rnn', 'rnn_relu', 'lstm', 'gru')
VOCABS = (5, 10, 20, 30, 40, 50)
BPROPLENS = (5, 20, 60)
SEEDS = (0, 1, 2)
METRIC_NAMES = {'accuracy': 'overall accuracy',
                'boundary_accuracy': 'boundary accuracy',
                'generation_accuracy': 'generation accuracy'}
METRICS = tuple(METRIC_NAMES)
TARGET = 0.99
CPU = chainer.get_device('@numpy')
RECORD_TAG = 7  # MPI messages that carry a finished run's record
EVAL_WINDOW = 200  # steps per node in evaluation: any length gives the same
# Training never resets the state, so a reset one is foreign to the models:
# an LSTM at N=5 needs two periods (20 steps) to leave it.
MIN_WARM_UP = 100


def build_parser():
    parser = ArgumentParser(
        prog='sweep.py', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', '-o', default='results',
                        help='folder for capacity.jsonl, capacity.png and '
                        'capacity.md (default: %(default)s)')
    parser.add_argument('--arch', nargs='+', default=list(ARCHS),
                        choices=sorted(FUSED_ARCHITECTURES),
                        help='architectures (default: %(default)s)')
    parser.add_argument('--vocab', nargs='+', type=int, default=list(VOCABS),
                        help='vocabulary sizes N (default: %(default)s)')
    parser.add_argument('--bproplen', nargs='+', type=int,
                        default=list(BPROPLENS),
                        help='BPTT lengths (default: %(default)s)')
    parser.add_argument('--seed', nargs='+', type=int, default=list(SEEDS),
                        help='seeds (default: %(default)s)')
    parser.add_argument('--updates', type=int, default=1000,
                        help='the budget of updates of a run (default: '
                        '%(default)s)')
    parser.add_argument('--eval-every', type=int, default=100,
                        help='updates between evaluations, which decide '
                        'convergence (default: %(default)s)')
    parser.add_argument('--unit', type=int, default=100,
                        help='units in each layer (default: %(default)s)')
    parser.add_argument('--batchsize', type=int, default=10,
                        help='parallel streams (default: %(default)s)')
    parser.add_argument('--alpha', type=float, default=0.001,
                        help='Adam\'s learning rate (default: %(default)s)')
    parser.add_argument('--gradclip', type=float, default=5.0,
                        help='gradient norm clipping (default: %(default)s)')
    parser.add_argument('--jobs', '-j', type=int,
                        default=len(os.sched_getaffinity(0)),
                        help='runs at a time (default: the number of cores, '
                        '%(default)s)')
    return parser


def settings_of(args):
    """What every run of the sweep shares: a record is valid for these."""
    return {'updates': args.updates, 'eval_every': args.eval_every,
            'unit': args.unit, 'batchsize': args.batchsize,
            'alpha': args.alpha, 'gradclip': args.gradclip,
            'target': TARGET}


def check_arguments(args):
    for name in ('updates', 'eval_every', 'unit', 'batchsize', 'jobs'):
        if getattr(args, name) < 1:
            raise UsageError('--{} must be at least 1 (got {})'.format(
                name.replace('_', '-'), getattr(args, name)))
    for vocab in args.vocab:
        try:
            simple_sequence.check_vocabulary(vocab)
        except ValueError as error:
            raise UsageError('--vocab: {}'.format(error))
    if min(args.bproplen) < 1:
        raise UsageError('--bproplen must be at least 1')
    if not 0 <= min(args.seed) <= max(args.seed) < 2 ** 32:
        raise UsageError('--seed must be between 0 and 2**32 - 1')
    if not (0 < args.alpha < math.inf and 0 < args.gradclip < math.inf):
        raise UsageError('--alpha and --gradclip must be positive numbers')
    for arch in args.arch:
        check_fits_in_memory(arch, args.unit, max(args.vocab),
                             args.batchsize, max(args.bproplen))


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


def evaluate(predictor, n_vocab, batch_size):
    """(accuracy, boundary accuracy) over a period of every stream.

    Every stream starts from a reset state at its own phase, usually within
    a block, where nobody could tell how many came before: a warm-up of a
    period, and of at least MIN_WARM_UP steps, is not scored. With the
    streams' phases spread, the scored period covers every position
    batch_size times.
    """
    period = simple_sequence.period_length(n_vocab)
    warm_up = max(period, MIN_WARM_UP)
    iterator = ParallelSequentialIterator(
        phase_spread_sequence(n_vocab, batch_size), batch_size)
    predictor.reset_state()
    counts = numpy.zeros(4, numpy.int64)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for step in range(0, warm_up + period, EVAL_WINDOW):
            length = min(EVAL_WINDOW, warm_up + period - step)
            xs, ts = next_window(iterator, length, CPU)
            logits = predictor.forward_window(xs).array
            if step + length <= warm_up:
                continue
            scored = slice(max(warm_up - step, 0) * batch_size, None)
            correct, boundary = (a[scored] for a in judge(logits, xs, ts))
            counts += (correct.sum(), correct.size,
                       (correct & boundary).sum(), boundary.sum())
    return counts[0] / counts[1], counts[2] / counts[3]


def generation_accuracy(predictor, n_vocab):
    """The share of two periods generated from the prime 1 that are right."""
    length = 2 * simple_sequence.period_length(n_vocab)
    generated = generate(predictor, 1, length)
    return float((generated == simple_sequence.continuation(
        n_vocab, 1, length)).mean())


def train_one(task):
    """Train one run of the grid; its record.

    On one BLAS thread: the runs themselves are the parallelism.
    """
    with threadpoolctl.threadpool_limits(1), fast_training():
        return _train_one(*task)


def _train_one(arch, n_vocab, bproplen, seed, settings):
    started = time.perf_counter()
    numpy.random.seed(seed)
    predictor = build_model(arch, n_vocab, settings['unit'], fused=True)
    model = SequenceClassifier(predictor)
    optimizer = FlatAdam(alpha=settings['alpha'])
    optimizer.setup(model)
    optimizer.add_hook(
        chainer.optimizer_hooks.GradientClipping(settings['gradclip']))
    iterator = ParallelSequentialIterator(
        phase_spread_sequence(n_vocab, settings['batchsize']),
        settings['batchsize'])
    updater = BPTTUpdater(iterator, optimizer, bproplen, CPU)
    reached = None
    accuracy = boundary_accuracy = 0.0
    # Evaluation runs on a copy that shares the parameters and owns its
    # state, so that training goes on from where it was.
    evaluated = predictor.copy()
    while updater.iteration < settings['updates']:
        updater.update()
        if (updater.iteration % settings['eval_every'] == 0 or
                updater.iteration == settings['updates']):
            accuracy, boundary_accuracy = evaluate(
                evaluated, n_vocab, settings['batchsize'])
            if min(accuracy, boundary_accuracy) >= settings['target']:
                reached = updater.iteration
                break
    return {
        'arch': arch, 'vocab': n_vocab, 'bproplen': bproplen, 'seed': seed,
        'accuracy': float(accuracy),
        'boundary_accuracy': float(boundary_accuracy),
        'generation_accuracy': generation_accuracy(evaluated, n_vocab),
        'updates': updater.iteration, 'updates_to_target': reached,
        'seconds': round(time.perf_counter() - started, 2),
        'settings': settings,
    }


def run_key(record):
    return record['arch'], record['vocab'], record['bproplen'], record['seed']


class RecordFile:
    """OUT/capacity.jsonl, one finished run a line, locked for one sweep.

    A sweep holds the lock while it lives, so that a second sweep on the
    same file is refused instead of running (and recording) the same runs.
    """

    def __init__(self, path):
        self.path = path
        try:
            self.file = open(path, 'a+b')
        except OSError as error:
            raise UsageError('cannot write to {}: {}'.format(
                path, error.strerror))
        if not stat.S_ISREG(os.fstat(self.file.fileno()).st_mode):
            self.file.close()
            raise UsageError('{} is not a regular file'.format(path))
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.close()
            raise UsageError('{} is in use by another sweep: wait for it to '
                             'end, or choose another --out'.format(path))

    def read(self, settings):
        """The distinct finished runs; a last line cut short by a kill is
        dropped. Refuses records made with other settings (they would not
        compare) and lines that are not records."""
        self.file.seek(0)
        lines = self.file.read().split(b'\n')
        records, seen, kept = [], set(), 0
        for number, line in enumerate(lines, 1):
            if not line.strip():
                kept += len(line) + 1
                continue
            try:
                record = check_record(json.loads(line.decode('utf-8')))
            except (ValueError, RecursionError) as error:
                if number < len(lines) or line.endswith(b'}'):
                    raise UsageError('{} line {} is not a record of sweep.py '
                                     '({})'.format(self.path, number, error))
                self.file.truncate(kept)  # the torn end of a killed append
                break
            kept += len(line) + 1
            if record['settings'] != settings:
                raise UsageError(
                    '{} holds runs made with other settings ({}): choose '
                    'another --out, or the same settings'.format(
                        self.path, record['settings']))
            if run_key(record) not in seen:  # two sweeps of old, unlocked
                seen.add(run_key(record))
                records.append(record)
        return records

    def append(self, record):
        self.file.write((json.dumps(record, sort_keys=True) + '\n').encode())
        self.file.flush()
        os.fsync(self.file.fileno())


RECORD_TYPES = {'arch': str, 'vocab': int, 'bproplen': int, 'seed': int,
                'accuracy': float, 'boundary_accuracy': float,
                'generation_accuracy': float, 'updates': int,
                'seconds': (int, float), 'settings': dict}


def check_record(record):
    """record, if it is one that train_one made; ValueError if not."""
    if not isinstance(record, dict):
        raise ValueError('not an object')
    for key, kind in RECORD_TYPES.items():
        value = record.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError('{} is {!r}'.format(key, value))
    if not all(0 <= record[metric] <= 1 for metric in METRICS):
        raise ValueError('an accuracy outside 0 .. 1')
    reached = record.get('updates_to_target')
    if reached is not None and not isinstance(reached, int):
        raise ValueError('updates_to_target is {!r}'.format(reached))
    return record


def expected_cost(task):
    """A rough relative cost, to start the longest runs first."""
    arch, n_vocab, bproplen, _, _ = task
    return {'lstm': 3, 'gru': 2}.get(arch, 1) * bproplen * (1 + n_vocab / 20)


def run_tasks(tasks, jobs, comm=None):
    """Yield the records of tasks as they finish, on `jobs` processes.

    With a ChainerMN communicator the ranks take turns at the tasks instead,
    and rank 0 yields every record, the others none.
    """
    if comm is not None:
        yield from _run_over_ranks(tasks, comm)
    elif jobs == 1:
        yield from map(train_one, tasks)
    else:
        with multiprocessing.get_context('spawn').Pool(jobs) as pool:
            yield from pool.imap_unordered(train_one, tasks)


def _run_over_ranks(tasks, comm):
    from mpi4py import MPI

    mine = tasks[comm.rank::comm.size]
    if comm.rank != 0:
        for task in mine:
            comm.send_obj(train_one(task), 0, RECORD_TAG)
        comm.send_obj(None, 0, RECORD_TAG)  # no more
        return
    done = 0  # the other ranks that have sent all theirs

    def received(wait):
        nonlocal done
        while done < comm.size - 1 and (wait or comm.mpi_comm.Iprobe(
                source=MPI.ANY_SOURCE, tag=RECORD_TAG)):
            record = comm.recv_obj(MPI.ANY_SOURCE, tag=RECORD_TAG)
            if record is None:
                done += 1
            else:
                yield record

    for task in mine:
        yield train_one(task)
        yield from received(wait=False)
    yield from received(wait=True)


def open_records(out):
    """The locked record file in out, which is made if need be."""
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as error:
        raise UsageError('cannot write to {}: {}'.format(out, error.strerror))
    return RecordFile(os.path.join(out, 'capacity.jsonl'))


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = settings_of(args)
    comm = None
    record_file = None
    try:
        check_arguments(args)
        if distributed.world_size() > 1:  # started by mpiexec
            comm = distributed.create_communicator('naive')
        if distributed.rank(comm) == 0:
            record_file = open_records(args.out)
        records = distributed.on_root(
            comm, lambda: record_file.read(settings))
    except (UsageError, distributed.MPIError) as error:
        if distributed.rank(comm) == 0:
            parser.error(str(error))
        parser.exit(EXIT_USAGE)
    # A list: every MPI rank must order the tasks alike.
    grid = [(arch, vocab, bproplen, seed) for arch in args.arch
            for vocab in args.vocab for bproplen in args.bproplen
            for seed in args.seed]
    done = {run_key(record) for record in records}
    tasks = sorted((key + (settings,) for key in grid if key not in done),
                   key=expected_cost, reverse=True)
    root = distributed.rank(comm) == 0
    workers = min(args.jobs, max(len(tasks), 1)) if comm is None else \
        '{} MPI ranks'.format(comm.size)
    if root:
        print('{} runs, {} done already; up to {} updates each, {} at a time'
              .format(len(tasks) + len(done), len(done), args.updates,
                      workers), flush=True)
    try:
        return run_and_report(tasks, records, record_file, grid, args,
                              workers, comm)
    except OSError as error:
        print('{}: error: writing to {} failed: {} (the records written so '
              'far are kept)'.format(parser.prog, args.out, error),
              file=sys.stderr)
        return 1


def run_and_report(tasks, records, record_file, grid, args, workers, comm):
    """Run the tasks, recording each as it ends; then the report, on rank 0.
    """
    root = distributed.rank(comm) == 0
    started = time.perf_counter()
    for count, record in enumerate(run_tasks(tasks, args.jobs, comm), 1):
        record_file.append(record)
        records.append(record)
        elapsed = time.perf_counter() - started
        print('[{}/{}] {arch} N={vocab} bproplen={bproplen} seed={seed}: '
              'accuracy {accuracy:.3f}, boundary {boundary_accuracy:.3f}, '
              'generation {generation_accuracy:.3f} after {updates} updates '
              '({seconds:.0f} s); {eta:.0f} min to go'.format(
                  count, len(tasks), eta=elapsed / count *
                  (len(tasks) - count) / 60, **record), flush=True)
    if not root:
        return 0
    if not tasks:  # the report of the session that ran them stands
        print('Nothing to run: {} is as it was.'.format(args.out))
        return 0
    wall = time.perf_counter() - started
    shown = [record for record in records if run_key(record) in grid]
    report(shown, args, wall, len(tasks), workers)
    print('Wrote {} and {}: {} runs in this session took {:.1f} min.'.format(
        os.path.join(args.out, 'capacity.png'),
        os.path.join(args.out, 'capacity.md'), len(tasks), wall / 60))
    return 0


def summarize(records):
    """{(arch, bproplen, vocab): {metric: (mean, min, max)}}."""
    groups = {}
    for record in records:
        key = record['arch'], record['bproplen'], record['vocab']
        groups.setdefault(key, []).append(record)
    summary = {}
    for key, group in groups.items():
        summary[key] = {}
        for metric in METRICS:
            values = [record[metric] for record in group]
            summary[key][metric] = (numpy.mean(values), min(values),
                                    max(values))
        reached = [record['updates_to_target'] for record in group]
        summary[key]['reached'] = sum(value is not None for value in reached)
        summary[key]['runs'] = len(group)
    return summary


def report(records, args, wall, n_new, workers):
    summary = summarize(records)
    plot(summary, args, os.path.join(args.out, 'capacity.png'))
    with snapshots.atomic_file(os.path.join(args.out, 'capacity.md'),
                               'w') as f:
        f.write(markdown(summary, records, args, wall, n_new, workers))


def plot(summary, args, path):
    from matplotlib.figure import Figure  # no pyplot: no GUI backend

    bproplens = sorted({key[1] for key in summary})
    archs = [arch for arch in args.arch if any(
        key[0] == arch for key in summary)]
    figure = Figure(figsize=(4 * len(bproplens) + 1, 9))
    axes = figure.subplots(len(METRICS), len(bproplens), squeeze=False,
                           sharex=True, sharey=True)
    for column, bproplen in enumerate(bproplens):
        for row, metric in enumerate(METRICS):
            ax = axes[row][column]
            for arch in archs:
                keys = sorted(key for key in summary
                              if key[:2] == (arch, bproplen))
                vocabs = [key[2] for key in keys]
                mean, low, high = zip(*(summary[key][metric] for key in keys))
                line, = ax.plot(vocabs, mean, marker='o', label=arch)
                ax.fill_between(vocabs, low, high, alpha=0.2,
                                color=line.get_color())
            ax.set_ylim(-0.02, 1.02)
            ax.grid(True)
            if row == 0:
                ax.set_title('bproplen {}'.format(bproplen))
            if column == 0:
                ax.set_ylabel(METRIC_NAMES[metric])
            if row == len(METRICS) - 1:
                ax.set_xlabel('vocabulary N (counts to N-1)')
    axes[0][-1].legend(loc='lower left')
    figure.suptitle('Mean of {} seeds (shaded: lowest to highest) after at '
                    'most {} updates'.format(len(args.seed), args.updates))
    figure.tight_layout()
    with snapshots.atomic_file(path) as f:
        figure.savefig(f, format='png', dpi=80)


def markdown(summary, records, args, wall, n_new, workers):
    vocabs = sorted({key[2] for key in summary})
    lines = [
        '# How far can each model count?', '',
        'Written by `{}`. {} runs: architectures {}, N in {}, bproplen in '
        '{}, seeds {}; each trains on the fused path for at most {} updates '
        'of {} streams (Adam alpha {}, gradient clipping {}, {} units) and '
        'stops once overall and boundary accuracy both reach {} (checked '
        'every {} updates). The streams start at evenly spread phases of the '
        'period. Scores: overall and boundary accuracy over a period of '
        'every stream after a warm-up of a period and at least {} steps, '
        'and the share of two periods generated freely from the prime 1 '
        'that are right.'.format(
            ' '.join(['python'] + [shlex.quote(arg) for arg in sys.argv]),
            len(records), ', '.join(args.arch), args.vocab, args.bproplen,
            args.seed, args.updates, args.batchsize, args.alpha,
            args.gradclip, args.unit, TARGET, args.eval_every, MIN_WARM_UP),
        '',
        'This session ran {} of them in {:.1f} min of wall time, {} at a '
        'time; the runs took {:.1f} min together.'.format(
            n_new, wall / 60, workers,
            sum(record['seconds'] for record in records) / 60),
    ]
    headings = {metric: name.capitalize()
                for metric, name in METRIC_NAMES.items()}
    for metric in METRICS + ('reached',):
        lines += ['', '## ' + headings.get(
            metric, 'Runs that reached {} on both accuracies'.format(TARGET)),
            '', '| arch | bproplen | ' + ' | '.join(
                'N={}'.format(vocab) for vocab in vocabs) + ' |',
            '|---|---|' + '---|' * len(vocabs)]
        for arch in args.arch:
            for bproplen in sorted(args.bproplen):
                cells = []
                for vocab in vocabs:
                    entry = summary.get((arch, bproplen, vocab))
                    if entry is None:
                        cells.append('')
                    elif metric == 'reached':
                        cells.append('{}/{}'.format(entry['reached'],
                                                    entry['runs']))
                    else:
                        cells.append('{:.2f}'.format(entry[metric][0]))
                lines.append('| {} | {} | {} |'.format(
                    arch, bproplen, ' | '.join(cells)))
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    sys.exit(main())
