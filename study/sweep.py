"""How far can each recurrent model count? Train a grid of runs and plot it.

Every combination of architecture, vocabulary N (the model must count to
N-1), bprop_len and seed trains on the fused path, by train_rnn.py's recipe,
on a sequence whose streams start at evenly spread phases, for a budget of
training tokens that is the same whatever the bprop_len, or until a whole
period of every stream comes out right. Every few thousand tokens
capacity.py measures what the model does; each evaluation is kept.

Runs go to parallel processes (concurrent.futures), or under MPI to the
workers of `mpiexec -n K python -m mpi4py.futures -m study.sweep`, which
hand out runs as workers free up. Each finished run is appended to
OUT/capacity.jsonl at once (records.py), and a sweep started again skips
what is there. At the end capacity_report.py writes OUT/capacity.png,
capacity_curves.png and capacity.md.
"""
import sys

import quiet_start

if __name__ == '__main__':  # before Chainer loads
    quiet_start.install()

import argparse
import concurrent.futures
import math
import multiprocessing
import os
import shlex
import time

import chainer_compat  # noqa: F401  (must precede chainer)

import threadpoolctl

from study import capacity
from study import capacity_report
import cli
from cli import EXIT_USAGE, ArgumentParser, UsageError
import distributed
from models import FUSED_ARCHITECTURES
from study.records import RecordFile, run_key
import train_rnn
from updaters import fast_training

ARCHS = ('rnn', 'rnn_relu', 'lstm', 'lstm1', 'gru')
VOCABS = (5, 10, 20, 30, 40, 50)
BPROPLENS = (5, 20, 60)
SEEDS = (0, 1, 2, 3, 4)
TOKENS = 200000  # 1,000 updates of bproplen 20 and 10 streams


def build_parser():
    parser = ArgumentParser(
        prog='python -m study.sweep', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', '-o', default='results',
                        help='folder for capacity.jsonl, capacity.png, '
                        'capacity_curves.png and capacity.md (default: '
                        '%(default)s)')
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
    parser.add_argument('--tokens', type=int, default=TOKENS,
                        help='the budget of a run in training tokens, '
                        'whatever its bproplen (default: %(default)s)')
    parser.add_argument('--eval-every', type=int, default=20000,
                        help='training tokens between evaluations, which '
                        'decide convergence (default: %(default)s)')
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
                        '%(default)s); under mpi4py.futures, its workers')
    return parser


def settings_of(args):
    """What every run of the sweep shares: a record is valid for these."""
    return {'tokens': args.tokens, 'eval_every': args.eval_every,
            'unit': args.unit, 'batchsize': args.batchsize,
            'alpha': args.alpha, 'gradclip': args.gradclip}


def run_arguments(arch, n_vocab, bproplen, seed, settings):
    """The arguments of train_rnn.py that make one run of the grid."""
    return argparse.Namespace(
        arch=arch, vocab=n_vocab, bproplen=bproplen, seed=seed,
        unit=settings['unit'], batchsize=settings['batchsize'],
        gradclip=settings['gradclip'], fused=True, gpu=-1, epoch=1)


def check_arguments(args):
    """UsageError unless every run of the grid can be made, with the checks
    of train_rnn.py."""
    for name in ('tokens', 'eval_every', 'jobs'):
        if getattr(args, name) < 1:
            raise UsageError('--{} must be at least 1 (got {})'.format(
                name.replace('_', '-'), getattr(args, name)))
    if not 0 < args.alpha < math.inf:
        raise UsageError('--alpha must be a positive number (got {})'.format(
            args.alpha))
    for arch in args.arch:
        for seed in (min(args.seed), max(args.seed)):
            run = run_arguments(arch, max(args.vocab), max(args.bproplen),
                                seed, settings_of(args))
            train_rnn.check_arguments(run)
            run.vocab = min(args.vocab)
            train_rnn.check_arguments(run)


def run_one(task):
    """Train one run of the grid; its record.

    On one BLAS thread: the runs themselves are the parallelism.
    """
    with threadpoolctl.threadpool_limits(1), fast_training():
        return _run_one(*task)


def _run_one(arch, n_vocab, bproplen, seed, settings):
    started = time.perf_counter()
    batch_size = settings['batchsize']
    run = train_rnn.setup_training(
        run_arguments(arch, n_vocab, bproplen, seed, settings),
        words=capacity.phase_spread_sequence(n_vocab, batch_size),
        alpha=settings['alpha'])
    updater = run.updater
    # Evaluation runs on a copy that shares the parameters and owns its
    # state, so that training goes on from where it was.
    evaluated = run.model.predictor.copy()
    per_update = bproplen * batch_size
    updates = math.ceil(settings['tokens'] / per_update)
    eval_every = max(1, round(settings['eval_every'] / per_update))
    history, converged_at = [], None
    while updater.iteration < updates:
        updater.update()
        if updater.iteration % eval_every and updater.iteration < updates:
            continue
        # Teacher-forced along the way; generation, ten times the cost,
        # once at the end.
        metrics = capacity.teacher_forced(evaluated, n_vocab, batch_size)
        history.append(dict(metrics, updates=updater.iteration,
                            tokens=updater.iteration * per_update))
        if metrics['exact_period']:
            converged_at = updater.iteration
            break
    return dict(
        capacity.measure(evaluated, n_vocab, batch_size), arch=arch,
        vocab=n_vocab, bproplen=bproplen, seed=seed,
        updates=updater.iteration, tokens=updater.iteration * per_update,
        converged_at=converged_at, history=history,
        seconds=round(time.perf_counter() - started, 2), settings=settings)


def expected_cost(task):
    """A rough relative cost, to start the longest runs first."""
    arch, n_vocab, _, _, _ = task
    return {'lstm': 5, 'lstm1': 3, 'gru': 2}.get(arch, 1) * (1 + n_vocab / 10)


def run_tasks(tasks, jobs):
    """Yield the records of tasks as they finish, in this process (jobs 1),
    on `jobs` processes, or on the workers of mpi4py.futures under MPI."""
    if distributed.world_size() > 1:
        from mpi4py.futures import MPIPoolExecutor
        executor = MPIPoolExecutor()
    elif jobs == 1:
        yield from map(run_one, tasks)
        return
    else:
        executor = concurrent.futures.ProcessPoolExecutor(
            jobs, mp_context=multiprocessing.get_context('spawn'))
    with executor:
        futures = [executor.submit(run_one, task) for task in tasks]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        except BaseException:  # Ctrl-C: no new run; the running ones end
            for future in futures:
                future.cancel()
            raise


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


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = settings_of(args)
    try:
        check_arguments(args)
        check_mpi()
        os.makedirs(args.out, exist_ok=True)
        record_file = RecordFile(os.path.join(args.out, 'capacity.jsonl'))
        records = record_file.read(settings)
    except OSError as error:
        parser.error('cannot write to {}: {}'.format(args.out,
                                                     error.strerror))
    except UsageError as error:
        parser.error(str(error))
    # A list: every MPI rank must order the tasks alike.
    grid = [(arch, vocab, bproplen, seed) for arch in args.arch
            for vocab in args.vocab for bproplen in args.bproplen
            for seed in args.seed]
    done = {run_key(record) for record in records}
    tasks = sorted((key + (settings,) for key in grid if key not in done),
                   key=expected_cost, reverse=True)
    workers = 'mpi4py.futures workers' if distributed.world_size() > 1 \
        else min(args.jobs, max(len(tasks), 1))
    print('{} runs, {} done already; up to {:,} tokens each, {} at a time'
          .format(len(tasks) + len(done), len(done), args.tokens, workers),
          flush=True)
    started = time.perf_counter()
    try:
        for count, record in enumerate(run_tasks(tasks, args.jobs), 1):
            record_file.append(record)
            records.append(record)
            elapsed = time.perf_counter() - started
            print('[{}/{}] {arch} N={vocab} bproplen={bproplen} seed={seed}:'
                  ' boundary {boundary_accuracy:.3f}, horizon '
                  '{counting_horizon}, exact period {exact_period} after '
                  '{tokens:,} tokens ({seconds:.0f} s); {eta:.0f} min to go'
                  .format(count, len(tasks), eta=elapsed / count *
                          (len(tasks) - count) / 60, **record), flush=True)
        if not tasks:  # the report of the session that ran them stands
            print('Nothing to run: {} is as it was.'.format(args.out))
            return 0
        wall = time.perf_counter() - started
        # The whole file: runs added to a grid (more seeds where cells sit
        # at the transition) belong to the study too.
        # Lowest to highest over seeds, the spread a rerun's single runs
        # show (a bootstrap interval of the mean is narrower than what
        # another CPU's BLAS kernels give: docs/capacity.md).
        capacity_report.write_report(records, args.out, wall=wall,
                                     interval='minmax')
    except KeyboardInterrupt:
        print('Interrupted: the finished runs are in {}; the same command '
              'goes on from there.'.format(record_file.path),
              file=sys.stderr)
        return cli.EXIT_INTERRUPTED
    except OSError as error:
        print('{}: error: writing to {} failed: {} (the records written so '
              'far are kept)'.format(parser.prog, args.out, error),
              file=sys.stderr)
        return cli.EXIT_FAILED
    print('Wrote capacity.png, capacity_curves.png and capacity.md to {}: '
          '{} runs in this session took {:.1f} min.'.format(
              args.out, len(tasks), wall / 60))
    return 0


if __name__ == '__main__':
    quiet_start.started()
    status = main()
    quiet_start.ignore()
    sys.exit(status)
