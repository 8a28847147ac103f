"""How far can each recurrent model count? Train until each run has learned.

A run trains one architecture, vocabulary N (the model must count to N-1),
bprop_len and seed on the fused path, by train_rnn.py's recipe, on a
sequence whose streams start at evenly spread phases, until it has learned
(a whole period of every stream exact, teacher-forced, at two evaluations
in a row) or has trained on the cap of tokens; capacity.py measures it at
every evaluation, and each evaluation is kept.

By default the sweep searches each frontier: for every architecture and
bprop_len it climbs the given N in order, running the given seeds at each,
until a cell where no run learned; then it runs the more seeds at the cells
that decide the frontier (the largest N where at least half learned, and
the next) where the seeds so far leave the cell's side of one half open.
--grid runs every cell instead.

The runs of a cell train as one stacked model (stacked.py), each seed's
record the one its lone run gives, at a fraction of the cost; a round
splits a cell's seeds into more stacks only where it holds fewer cells than
there are processes. Stacks go to parallel processes (concurrent.futures),
or under MPI to the workers of `mpiexec -n K python -m mpi4py.futures -m
study.sweep`, which hand them out as workers free up. Each run is appended
to OUT/capacity.jsonl as its seed leaves its stack (under MPI, when its
stack ends; records.py), and a sweep started again goes on from what is
there. At the end capacity_report.py writes the figures and
OUT/capacity.md.
"""
import setup_check  # noqa: F401  (first: says so where Chainer is missing)
import sys

import quiet_start

if __name__ == '__main__':  # before Chainer loads
    quiet_start.install()

import argparse
import concurrent.futures
import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import multiprocessing.resource_tracker
import os
import shlex
import signal
import time

import chainer_compat  # noqa: F401  (must precede chainer)

import threadpoolctl

from study import ARCHS, VARIANTS, capacity
from study import capacity_report
from study import statistics
from study import stacked
import cli
from cli import EXIT_USAGE, ArgumentParser, UsageError
import distributed
from models import FUSED_ARCHITECTURES
from study.records import (RECORDS, RecordFile, cap_updates, check_record_size,
                           check_settings_of, check_two_evaluations,
                           evaluation_interval, learned, run_key)
import train_rnn
from updaters import fast_training

if __name__ == '__worker__':
    # A worker of mpi4py.futures leaves a stop to rank 0, which mpiexec
    # passes the same signals to: a worker that a signal ended ended the
    # job in MPICH's BAD TERMINATION banner, rank 0 unheard (hostile pass
    # 15).
    quiet_start.ignore_stops()

VOCABS = (5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100)
BPROPLENS = (5, 20, 60)
SEEDS = tuple(range(10))
MORE_SEEDS = tuple(range(10, 20))  # where a cell decides a frontier
TOKENS = 2000000
EVAL_EVERY = 10000
ALPHA = 0.001  # Adam's learning rate
GRADCLIP = 5.0
# What a worker process may hold (Chainer and its stack: 160 MB for a stack
# of five lstm seeds at N=100, bproplen 60): jobs beyond what the memory
# holds would only swap (hostile passes 10 and 12).
WORKER_BYTES = 1 << 28


def build_parser():
    parser = ArgumentParser(
        prog='python -m study.sweep', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', '-o', default='results',
                        type=cli.non_empty_path,
                        help='folder for capacity.jsonl, the figures and '
                        'capacity.md (default: %(default)s)')
    parser.add_argument('--arch', nargs='+', default=list(ARCHS),
                        choices=sorted(set(FUSED_ARCHITECTURES) |
                                       set(VARIANTS)),
                        help='architectures (default: %(default)s)')
    parser.add_argument('--vocab', nargs='+', type=int, default=list(VOCABS),
                        help='vocabulary sizes N (default: %(default)s)')
    parser.add_argument('--bproplen', nargs='+', type=int,
                        default=list(BPROPLENS),
                        help='BPTT lengths (default: %(default)s)')
    parser.add_argument('--seed', nargs='+', type=int, default=list(SEEDS),
                        help='seeds of every cell (default: %(default)s)')
    parser.add_argument('--more-seeds', nargs='*', type=int,
                        default=list(MORE_SEEDS),
                        help='seeds added where a cell decides a frontier '
                        '(default: %(default)s)')
    parser.add_argument('--grid', action='store_true',
                        help='run every cell of the grid, --seed only, '
                        'instead of searching the frontiers')
    parser.add_argument('--tokens', type=int, default=TOKENS,
                        help='the cap of a run in training tokens, whatever '
                        'its bproplen (default: %(default)s)')
    parser.add_argument('--eval-every', type=int, default=EVAL_EVERY,
                        help='training tokens between evaluations, or a '
                        'period of every stream where that is longer '
                        '(default: %(default)s)')
    parser.add_argument('--unit', type=int, default=100,
                        help='units in each layer (default: %(default)s)')
    parser.add_argument('--batchsize', type=int, default=10,
                        help='parallel streams (default: %(default)s)')
    parser.add_argument('--alpha', type=float, default=ALPHA,
                        help='Adam\'s learning rate (default: %(default)s)')
    parser.add_argument('--gradclip', type=float, default=GRADCLIP,
                        help='gradient norm clipping (default: %(default)s)')
    parser.add_argument('--jobs', '-j', type=int,
                        default=len(os.sched_getaffinity(0)),
                        help='processes at a time, each training a stack '
                        '(default: the number of cores, %(default)s); under '
                        'mpi4py.futures, its workers')
    parser.add_argument('--stack', type=int, default=None,
                        help='seeds trained as one stack at most (default: '
                        'a cell\'s, all): smaller stacks lose less to an '
                        'interruption and share less of the cost')
    return parser


def settings_of(args):
    """What every run of the sweep shares: a record is valid for these."""
    return {'tokens': args.tokens, 'eval_every': args.eval_every,
            'unit': args.unit, 'batchsize': args.batchsize,
            'alpha': args.alpha, 'gradclip': args.gradclip}


def run_arguments(arch, n_vocab, bproplen, seed, settings):
    """The arguments of train_rnn.py that make one run (arch may be a
    variant: its base architecture)."""
    return argparse.Namespace(
        arch=VARIANTS.get(arch, (arch,))[0], vocab=n_vocab,
        bproplen=bproplen, seed=seed, unit=settings['unit'],
        batchsize=settings['batchsize'], gradclip=settings['gradclip'],
        fused=True, gpu=-1, epoch=1)


def check_arguments(args):
    """UsageError unless every run of the grid can be made (check_runs)."""
    cli.check_whole('--jobs', args.jobs, 1, max(1, os.sysconf(
        'SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') // WORKER_BYTES))
    if args.stack is not None:
        cli.check_whole('--stack', args.stack, 1)
    for name in ('arch', 'vocab', 'bproplen', 'seed', 'more_seeds'):
        values = getattr(args, name)
        if len(set(values)) < len(values):
            raise UsageError('--{} repeats a value: {}'.format(
                name.replace('_', '-'), ' '.join(map(str, values))))
    if set(args.seed) & set(args.more_seeds):
        raise UsageError('--more-seeds must not repeat a seed of --seed')
    check_runs(args.arch, args.vocab, args.bproplen,
               args.seed + args.more_seeds, settings_of(args))


def check_runs(archs, vocabs, bproplens, seeds, settings):
    """UsageError unless every run of the grid (seeds: one at least) can be
    made, with the checks of train_rnn.py, and evaluated twice."""
    for name in ('tokens', 'eval_every'):
        cli.check_whole('--' + name.replace('_', '-'), settings[name], 1)
    if not 0 < settings['alpha'] < 1:
        # Adam's step: from 1 up the runs diverge, and were recorded as
        # runs that did not learn.
        raise UsageError('--alpha must lie between 0 and 1 (got {})'.format(
            settings['alpha']))
    for arch in archs:
        for seed in (min(seeds), max(seeds)):
            run = run_arguments(arch, max(vocabs), max(bproplens), seed,
                                settings)
            train_rnn.check_arguments(run)
            run.vocab = min(vocabs)
            train_rnn.check_arguments(run)
    for n_vocab in vocabs:
        for bproplen in bproplens:
            check_two_evaluations(n_vocab, bproplen, settings)
            check_record_size(n_vocab, bproplen, settings)
    try:
        check_settings_of(settings)  # what the records must hold
    except ValueError as error:
        raise UsageError('{}, beyond what a record may hold'.format(error))


def run_one(task):
    """Train one run; its record.

    On one BLAS thread: the runs themselves are the parallelism.
    """
    with threadpoolctl.threadpool_limits(1), fast_training():
        return _run_one(*task)


def run_stack(task):
    """Train the seeds of one cell as one stack (stacked.py); their records,
    as run_one gives each, in the order the runs ended. task: (arch,
    n_vocab, bproplen, seeds, settings).

    A run's seconds are its share of the stack's (stacked.py), so that the
    seconds of a stack's runs add up to its time.
    """
    with threadpoolctl.threadpool_limits(1), fast_training():
        return list(_run_stack(*task))


class Outbox(object):
    """Where the worker processes of run_tasks send each record as its seed
    ends: one pipe, each record written whole under a lock."""

    def __init__(self, context):
        self.reader, self.writer = context.Pipe(duplex=False)
        self.lock = context.Lock()

    def __getstate__(self):
        # A worker writes only: a reader gone, its writes fail, not wait.
        return {'writer': self.writer, 'lock': self.lock}

    def send(self, record):
        with self.lock:
            self.writer.send(record)

    def received(self):
        """The records in the pipe now."""
        while self.reader.poll():
            yield self.reader.recv()

    def discard(self):
        """Empty the pipe without reading records: one may be torn, by a
        worker ended in the middle."""
        while self.reader.poll():
            os.read(self.reader.fileno(), 1 << 16)

    def close(self):
        self.reader.close()
        self.writer.close()


_outbox = None  # in a worker process of run_tasks, its Outbox
PR_SET_PDEATHSIG = 1  # prctl's option, from linux/prctl.h


def _start_worker(outbox, parent):
    global _outbox
    _outbox = outbox
    # A parent that dies without a word (SIGKILL, the OOM killer) cannot
    # stop its workers: the kernel ends each with it instead.
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before that
        os._exit(cli.EXIT_FAILED)


def send_stack(task):
    """run_stack in a worker process of run_tasks: each record goes to the
    parent as its seed ends, not when the stack ends."""
    with threadpoolctl.threadpool_limits(1), fast_training():
        for record in _run_stack(*task):
            _outbox.send(record)


def _run_stack(arch, n_vocab, bproplen, seeds, settings):
    if len(seeds) == 1 or not stackable(arch):
        for seed in seeds:
            yield _run_one(arch, n_vocab, bproplen, seed, settings)
        return
    for seed, evaluated, run, seconds in stacked.train_until_learned(
            arch, n_vocab, bproplen, seeds, settings):
        started = time.perf_counter()
        metrics = capacity.measure(evaluated, n_vocab, settings['batchsize'])
        seconds += time.perf_counter() - started
        yield dict(metrics, arch=arch, vocab=n_vocab, bproplen=bproplen,
                   seed=seed, **run, seconds=round(seconds, 2),
                   settings=settings)


def stackable(arch):
    """Whether the runs of arch (or of the variant's base) stack."""
    return VARIANTS.get(arch, (arch,))[0] in stacked.STACKED_ARCHITECTURES


def stacks(keys, processes, largest=None):
    """The tasks' (arch, vocab, bproplen, seeds) for the runs' keys: each
    cell's seeds in one stack, or, where the cells are fewer than the
    processes, split into up to processes / cells stacks, so that every
    process trains; and into stacks of at most `largest` seeds."""
    cells = {}
    for arch, vocab, bproplen, seed in keys:
        cells.setdefault((arch, vocab, bproplen), []).append(seed)
    parts = max(1, -(-processes // len(cells))) if cells else 1
    tasks = []
    for cell, seeds in cells.items():
        fewest = -(-len(seeds) // (largest or len(seeds)))
        count = min(len(seeds), max(parts, fewest)) \
            if stackable(cell[0]) else len(seeds)
        bounds = [i * len(seeds) // count for i in range(count + 1)]
        tasks += [cell + (tuple(seeds[start:end]),)
                  for start, end in zip(bounds, bounds[1:])]
    return tasks


def _run_one(arch, n_vocab, bproplen, seed, settings):
    started = time.perf_counter()
    evaluated, run = train_until_learned(arch, n_vocab, bproplen, seed,
                                         settings)
    return dict(
        capacity.measure(evaluated, n_vocab, settings['batchsize']),
        arch=arch, vocab=n_vocab, bproplen=bproplen, seed=seed, **run,
        seconds=round(time.perf_counter() - started, 2), settings=settings)


def train_until_learned(arch, n_vocab, bproplen, seed, settings):
    """(predictor, run): a copy of the trained predictor that owns its state,
    and {updates, tokens, learned_tokens, history} of the run."""
    batch_size = settings['batchsize']
    run = setup_run(arch, n_vocab, bproplen, seed, settings)
    updater = run.updater
    # Evaluation runs on a copy that shares the parameters and owns its
    # state, so that training goes on from where it was.
    evaluated = run.model.predictor.copy()
    per_update = bproplen * batch_size
    updates = cap_updates(bproplen, settings)
    interval = evaluation_interval(n_vocab, bproplen, settings)
    history, learned_tokens = [], None
    while updater.iteration < updates:
        updater.update()
        if updater.iteration % interval and updater.iteration < updates:
            continue
        # Teacher-forced along the way; generation, a word at a time, once
        # at the end.
        metrics = capacity.teacher_forced(evaluated, n_vocab, batch_size)
        history.append(dict(metrics, updates=updater.iteration,
                            tokens=updater.iteration * per_update))
        if learned(history):
            learned_tokens = history[-2]['tokens']
            break
    return evaluated, {
        'updates': updater.iteration,
        'tokens': updater.iteration * per_update,
        'learned_tokens': learned_tokens, 'history': history}


def setup_run(arch, n_vocab, bproplen, seed, settings):
    """train_rnn.setup_training's namespace for one run of the study."""
    return train_rnn.setup_training(
        run_arguments(arch, n_vocab, bproplen, seed, settings),
        words=capacity.phase_spread_sequence(n_vocab, settings['batchsize']),
        alpha=settings['alpha'],
        model_options=VARIANTS.get(arch, (arch, {}))[1])


def plan(records, args):
    """The keys (arch, vocab, bproplen, seed) of the runs to make next,
    given the records so far: the whole grid with --grid, else what each
    frontier's search needs now (see the module doc)."""
    done = {run_key(record): record['learned_tokens'] is not None
            for record in records}
    if args.grid:
        return [key for key in grid_keys(args, args.seed) if key not in done]
    keys = []
    for arch in args.arch:
        for bproplen in args.bproplen:
            keys += frontier_search(done, arch, bproplen, sorted(args.vocab),
                                    args.seed, args.more_seeds)
    return keys


def grid_keys(args, seeds):
    return [(arch, vocab, bproplen, seed) for arch in args.arch
            for vocab in args.vocab for bproplen in args.bproplen
            for seed in seeds]


def frontier_search(done, arch, bproplen, vocabs, seeds, more_seeds):
    """The next runs of one architecture and bproplen; done maps a run's key
    to whether it learned."""
    def missing(vocab, wanted):
        return [(arch, vocab, bproplen, seed) for seed in wanted
                if (arch, vocab, bproplen, seed) not in done]

    def cell(vocab):
        return [learned for (a, v, b, _), learned in done.items()
                if (a, v, b) == (arch, vocab, bproplen)]

    climbed = []
    for vocab in vocabs:
        if missing(vocab, seeds):
            return missing(vocab, seeds)
        climbed.append(vocab)
        if not any(cell(vocab)):  # beyond its reach: no N above is run
            break
    frontier = frontier_index(
        [sum(cell(vocab)) / len(cell(vocab)) for vocab in climbed])
    deciding = climbed[max(frontier, 0):frontier + 2]
    return [key for vocab in deciding if undecided(cell(vocab))
            for key in missing(vocab, more_seeds)]


def undecided(learned):
    """Whether a cell's runs leave it open which side of one half its share
    lies: its Wilson interval holds 1/2. At 0, 1, 9 or 10 of 10 it does
    not, and more seeds would not move the frontier's interval."""
    low, high = statistics.wilson(sum(learned), len(learned))
    return low <= 0.5 <= high


def frontier_index(shares):
    """The index of the last share of at least one half, -1 if none."""
    return max((i for i, share in enumerate(shares) if share >= 0.5),
               default=-1)


def expected_cost(task):
    """A rough relative cost, to start the longest stacks first."""
    arch, n_vocab, _, seeds, _ = task
    return {'lstm': 5, 'lstm1': 3, 'gru': 2}.get(
        VARIANTS.get(arch, (arch,))[0], 1) * (1 + n_vocab / 10) * len(seeds)


def processes(jobs):
    """How many tasks run at a time: jobs, or the mpi4py.futures workers."""
    world = distributed.world_size()
    return world - 1 if world > 1 else jobs


def run_tasks(tasks, jobs):
    """Yield the records of tasks (those of run_stack) as they finish: in
    this process (jobs 1) or on `jobs` processes, each as its seed ends; on
    the workers of mpi4py.futures under MPI, a stack's when it ends."""
    outbox = None
    if distributed.world_size() > 1:
        from mpi4py.futures import MPIPoolExecutor
        executor = MPIPoolExecutor()
    elif jobs == 1:
        for task in tasks:
            with threadpoolctl.threadpool_limits(1), fast_training():
                yield from _run_stack(*task)
        return
    else:
        context = multiprocessing.get_context('spawn')
        start_resource_tracker()
        outbox = Outbox(context)
        executor = concurrent.futures.ProcessPoolExecutor(
            jobs, mp_context=context, initializer=_start_worker,
            initargs=(outbox, os.getpid()))
    with executor:
        work = run_stack if outbox is None else send_stack
        futures = []
        try:
            # The pool starts its workers here, with Ctrl-C blocked: a
            # signal is this process's to act on, and a Ctrl-C that reached
            # a worker while its Python started killed it with a fatal
            # error.
            with starting_processes({signal.SIGINT}):
                futures = [executor.submit(work, task) for task in tasks]
            if outbox is None:
                for future in concurrent.futures.as_completed(futures):
                    yield from future.result()
            else:
                yield from received(futures, outbox)
        except BaseException:  # Ctrl-C: no new run; the running ones end
            if outbox is not None:
                # The workers never act on a signal: end them. (Before
                # Python 3.14 the executor has no public way to.) The pool
                # they break fails every future not done; Python 3.11's
                # raised on a cancelled one, and never ended.
                for process in list(executor._processes.values()):
                    process.terminate()
            else:
                for future in futures:
                    future.cancel()
            # A running stack's records, unread, would fill the pipe and
            # hold its worker for ever.
            while outbox is not None and concurrent.futures.wait(
                    futures, POLL).not_done:
                outbox.discard()
            raise
        finally:
            if outbox is not None:
                outbox.discard()
                outbox.close()


POLL = 0.5  # seconds between looks at the stacks that may have ended


@contextlib.contextmanager
def starting_processes(blocked):
    """While processes are started inside: they inherit the signals in
    blocked as blocked, for good; here a signal waits until they are started
    (one that stopped this process while it started one left that one
    reading from a closed pipe, a traceback)."""
    with quiet_start.SignalsHeld():
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def start_resource_tracker():
    """Start multiprocessing's resource tracker, which the pool's locks
    need, deaf to SIGHUP as it makes itself to SIGINT and SIGTERM: killed by
    a closed terminal's SIGHUP, it was started again, and the new one raised
    on each lock the workers gave back."""
    with starting_processes({signal.SIGHUP}):
        multiprocessing.resource_tracker.ensure_running()


def received(futures, outbox):
    """The records that the workers send to outbox as their seeds end,
    until every future is done; a future's exception (a worker's, or
    BrokenProcessPool where one died) once the records it sent are in."""
    pending = set(futures)
    while pending:
        multiprocessing.connection.wait([outbox.reader], POLL)
        done = {future for future in pending if future.done()}
        # A worker sends its records before its future is done: those of
        # the futures done are all in the pipe now.
        yield from outbox.received()
        for future in done:
            future.result()
        pending -= done


def check_mpi():
    """Under mpiexec, UsageError unless mpi4py.futures runs this script
    (else every rank would run the whole grid)."""
    if distributed.world_size() == 1:
        return
    from mpi4py import MPI
    from mpi4py.futures import _core  # its shared pool: -m mpi4py.futures
    if MPI.COMM_WORLD.Get_rank() != 0:
        sys.exit(EXIT_USAGE)  # rank 0 says why
    if _core.SharedPool is None:
        raise UsageError('under mpiexec, run it as: mpiexec -n K {} -m '
                         'mpi4py.futures -m study.sweep ...'.format(
                             shlex.quote(cli.shortest_path(
                                 sys.executable, command=True))))


def outcome(record):
    if record['learned_tokens'] is None:
        return 'not learned in {:,} tokens'.format(record['tokens'])
    return 'learned after {:,} tokens'.format(record['learned_tokens'])


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = settings_of(args)
    record_file = None
    try:
        check_arguments(args)
        check_mpi()
        cli.check_folder(args.out, '-o')
        os.makedirs(args.out, exist_ok=True)
        record_file = RecordFile(os.path.join(args.out, RECORDS))
        records = record_file.read(settings)
        if plan(records, args):  # else no hours to spend before the report
            capacity_report.check_out(args.out)
    except (OSError, UsageError) as error:
        if record_file is not None:
            record_file.close()
        parser.error(str(error) if isinstance(error, UsageError) else
                     'cannot write to {}: {}'.format(
                         error.filename or args.out, error.strerror))
    try:
        return sweep(args, settings, record_file, records, parser.prog)
    finally:
        record_file.close()


def sweep(args, settings, record_file, records, prog):
    """Run what the records still lack, record it and write the report;
    the exit status."""
    workers = 'mpi4py.futures workers' if distributed.world_size() > 1 \
        else '{} at a time'.format(args.jobs)
    say = cli.print_or_drop
    say('{} runs done already; up to {:,} tokens each, {}'.format(
        len(records), args.tokens, workers))
    started, ran = time.perf_counter(), 0
    reporting = False  # every run done, the report being written
    try:
        # A list in a fixed order: every MPI rank must order the tasks
        # alike. Each round plans from the records so far.
        keys = plan(records, args)
        while keys:
            tasks = sorted((task + (settings,) for task in stacks(
                keys, processes(args.jobs), args.stack)), key=expected_cost,
                reverse=True)
            say('Round of {} runs'.format(len(keys)))
            for count, record in enumerate(run_tasks(tasks, args.jobs), 1):
                record_file.append(record)
                records.append(record)
                say('[{}/{}] {arch} N={vocab} bproplen={bproplen} '
                    'seed={seed}: {outcome} ({seconds:.0f} s)'.format(
                        count, len(keys), outcome=outcome(record),
                        **record))
            ran += len(keys)
            keys = plan(records, args)
        # The report of the session that ran them stands, unless a stop or
        # a failure kept that session from writing it.
        if not ran and capacity_report.is_current(records, args.out):
            say('Nothing to run: {} is as it was.'.format(args.out))
            return 0
        wall = time.perf_counter() - started if ran else None
        reporting = True
        capacity_report.write_report(records, args.out, wall=wall)
    except KeyboardInterrupt:
        say('{}: {}{}.'.format(quiet_start.NAMES[cli.stopped_by()],
                               going_on(record_file),
                               ' and writes the report' if reporting else ''),
            sys.stderr)
        return cli.interrupted_status()
    except OSError as error:
        return cli.writing_failed(prog, args.out, error, ' (the records '
                                  'written so far are kept{})'.format(
                                      '; the same command writes the report'
                                      if reporting else ''))
    except concurrent.futures.BrokenExecutor:  # a worker killed, or OOM
        say('{}: error: a worker process died during a run: {}.'.format(
            prog, going_on(record_file)), sys.stderr)
        return cli.EXIT_FAILED
    if not ran:
        say('Nothing to run; wrote the report of the {} runs to {}, which '
            'lacked it.'.format(len(records), args.out))
        return 0
    say('Wrote the report to {}: {} runs in this session took {:.1f} min.'
        .format(args.out, ran, wall / 60))
    return 0


def going_on(record_file):
    """Where a sweep that stopped early goes on from, in words: from the
    file, which a stop may have cut in after an append (hostile pass 15)."""
    if not record_file.holds_records():
        return 'no run had finished; the same command starts again'
    return 'the finished runs are in {}; the same command goes on from ' \
        'there'.format(cli.one_line(record_file.path))


if __name__ == '__main__':
    sys.exit(cli.run_script(main))
