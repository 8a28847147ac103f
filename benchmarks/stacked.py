"""The capacity study's training, a stack of seeds against lone runs.

The seconds of a seed's update, trained alone (BPTTUpdater, as
study.sweep.run_one) and in a stack of --seeds seeds (study/stacked.py, as
study.sweep.run_stack), at N and each bproplen, with the study's settings,
updates only: evaluation costs a seed the same either way. On one BLAS
thread, as the sweep runs. Lone and stacked take turns, round after round;
the table shows the median seconds per seed-update with its range over the
rounds, and the ratio of the medians. Run it from the repository root:
python -m benchmarks.stacked
"""
import setup_check  # noqa: F401  (first: says so where Chainer is missing)
import argparse
import datetime
import os
import platform
import statistics
import time

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import numpy
import threadpoolctl

from benchmarks.n_step import cpu_name
from study import ARCHS, stacked
from study import sweep
from study.records import ARCH_NAMES
from updaters import fast_training


def seconds_per_seed_update(update, updates, seeds):
    start = time.perf_counter()
    for _ in range(updates):
        update()
    return (time.perf_counter() - start) / updates / seeds


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--arch', nargs='+', default=list(ARCHS),
                        choices=list(ARCH_NAMES))
    parser.add_argument('--vocab', type=int, default=20)
    parser.add_argument('--bproplen', nargs='+', type=int, default=[5, 60])
    parser.add_argument('--seeds', type=int, default=10,
                        help='seeds in the stack')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--tokens', type=int, default=3000,
                        help='training tokens timed in a round, per seed')
    args = parser.parse_args()
    settings = sweep.settings_of(sweep.build_parser().parse_args([]))
    print('{} UTC, {}, Python {}, numpy {}, chainer {}; N {}, {} units, '
          'batch {}, a stack of {} seeds, {} rounds of {} tokens'.format(
              datetime.datetime.now(datetime.timezone.utc).strftime(
                  '%Y-%m-%d %H:%M'), cpu_name(), platform.python_version(),
              numpy.__version__, chainer.__version__, args.vocab,
              settings['unit'], settings['batchsize'], args.seeds,
              args.rounds, args.tokens))
    print('{:<17} {:>8} {:>24} {:>24} {:>7}'.format(
        'arch', 'bproplen', 'lone ms/seed-update', 'stack ms/seed-update',
        'ratio'))
    with threadpoolctl.threadpool_limits(1), fast_training():
        for arch in args.arch:
            for bproplen in args.bproplen:
                updates = max(1, args.tokens // (
                    bproplen * settings['batchsize']))
                lone = sweep.setup_run(arch, args.vocab, bproplen, 0,
                                       settings).updater
                stack = stacked.build_stack(arch, args.vocab, bproplen,
                                            range(args.seeds), settings)
                times = {'lone': [], 'stack': []}
                for round_ in range(args.rounds + 1):  # round 0 warms up
                    for kind, update, seeds in (
                            ('lone', lone.update, 1),
                            ('stack', stack.update, args.seeds)):
                        seconds = seconds_per_seed_update(
                            update, 1 if not round_ else updates, seeds)
                        if round_:
                            times[kind].append(seconds * 1e3)
                cells = ['{:.2f} ({:.2f}-{:.2f})'.format(
                    statistics.median(times[kind]), min(times[kind]),
                    max(times[kind])) for kind in ('lone', 'stack')]
                print('{:<17} {:>8} {:>24} {:>24} {:>6.1f}x'.format(
                    arch, bproplen, *cells,
                    statistics.median(times['lone']) /
                    statistics.median(times['stack'])), flush=True)
    print('load average {:.1f} {:.1f} {:.1f} at the end'.format(
        *os.getloadavg()))


if __name__ == '__main__':
    main()
