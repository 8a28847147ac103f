"""Where one update's time goes: the recurrent nodes, the optimizer, dropout.

Builds the run as train_rnn.py does (any of its arguments, e.g. -a lstm
--fused), warms up, then times --updates updates with timers around the
fused recurrent nodes' forward and backward, the optimizer's update and
dropout's forward; the rest is Chainer's graph, the other layers, the loss
and the iterator. Also counts page faults. Run it from the repository root:
python -m benchmarks.profile_update -a lstm --fused
"""
import setup_check  # noqa: F401  (first: says so where Chainer is missing)
import collections
import functools
import resource
import sys
import time

import chainer.functions.noise.dropout

import fused
import optimizers
import train_rnn
from updaters import fast_training

PARTS = [
    ('recurrent forward', [(cls, 'forward') for cls in (
        fused.ElmanWindow, fused.LSTMWindow, fused.GRUWindow)]),
    ('recurrent backward', [(cls, 'backward') for cls in (
        fused.ElmanWindow, fused.LSTMWindow, fused.GRUWindow)]),
    ('optimizer update', [(optimizers.FlatAdam, 'update')]),
    ('dropout forward', [(chainer.functions.noise.dropout.Dropout,
                          'forward')]),
]


def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def instrument(seconds, counts):
    """Wrap every part's methods to add their time and page faults up."""
    def timed(name, method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            before, start = faults(), time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - start
                counts[name] += faults() - before
        return wrapper

    for name, methods in PARTS:
        for cls, attribute in methods:
            setattr(cls, attribute, timed(name, getattr(cls, attribute)))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = train_rnn.build_parser()
    parser.add_argument('--updates', type=int, default=400,
                        help='updates timed, after 50 of warm-up')
    seconds, counts = collections.Counter(), collections.Counter()
    instrument(seconds, counts)
    args = parser.parse_args(argv)
    updater = train_rnn.setup_training(args).updater
    with fast_training():  # as train_rnn.py runs it
        for _ in range(50):
            updater.update()
        seconds.clear()
        counts.clear()
        before, start = faults(), time.perf_counter()
        for _ in range(args.updates):
            updater.update()
        total = time.perf_counter() - start
        total_faults = faults() - before
    n = args.updates
    print('{:.2f} ms an update, {:,.0f} tokens/s, {:.0f} page faults an '
          'update'.format(total / n * 1e3,
                          n * args.bproplen * args.batchsize / total,
                          total_faults / n))
    for name, _ in PARTS:
        if seconds[name]:
            print('  {}: {:.2f} ms ({:.0%}), {:.0f} faults'.format(
                name, seconds[name] / n * 1e3, seconds[name] / total,
                counts[name] / n))
    print('  the rest: {:.2f} ms'.format(
        (total - sum(seconds.values())) / n * 1e3))


if __name__ == '__main__':
    main()
