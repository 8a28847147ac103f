"""Chainer's F.n_step_rnn, n_step_lstm and n_step_gru against fused.py's nodes.

One BPTT window of one layer, forward and backward, from a state carried
over from the window before, as training runs it (updaters.fast_training,
one BLAS thread): T steps of B streams, H units, an input of H. n_step_*
takes and gives a list of per-step arrays, so its timing includes the split
of the window's input and the concatenation of its outputs, which a model
needs around it. The cases take turns, round after round; the table shows
the median time of a call with its range over the rounds, and the ratio of
the medians. It also says whether n_step_* computes what the layer of
models.py computes, with a state and on the first window without one. Run
it from the repository root: python -m benchmarks.n_step
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
import chainer.functions as F
import numpy
import threadpoolctl

import fused
from updaters import fast_training


def parameters(rng, *shapes):
    return [chainer.Variable(rng.uniform(-0.1, 0.1, shape).astype(
        numpy.float32)) for shape in shapes]


def lstm_by_gate(matrix):
    """n_step_lstm's (i, f, a, o) blocks of chainer's LSTM rows 4j + k for
    gate k of (a, i, f, o): the same parameters, one array per gate."""
    return [matrix[gate::4] for gate in (1, 2, 0, 3)]


def cases(n_steps, batch, units, seed=0):
    """{arch: (n_step(state), fused(state), leaves)}: two functions of the
    state (None, or its arrays) that give the outputs hs (T * B, H) of one
    window, and the Variables whose gradients they make; then the state
    arrays carried into a window."""
    rng = numpy.random.RandomState(seed)
    T, B, H = n_steps, batch, units
    x = parameters(rng, (T * B, H))[0]

    def steps():
        return F.split_axis(x, T, axis=0)

    def joined(ys):
        return F.concat(ys, axis=0)

    W, b, U, c = parameters(rng, (H, H), (H,), (H, H), (H,))

    # n_step_* takes zeros for no state: Chainer 7.8.1 refuses None on the
    # CPU.
    zeros = numpy.zeros((1, B, H), numpy.float32)

    def rnn_n_step(state):
        h = zeros if state is None else state[0][None]
        return joined(F.n_step_rnn(1, 0.0, h, [[W, U]], [[b, c]],
                                   steps())[1])

    def rnn_fused(state):
        h0 = None if state is None else state[0]
        return fused.elman_window(x, T, W, b, U, c, h0)[0]

    W4, b4, U4 = parameters(rng, (4 * H, H), (4 * H,), (4 * H, H))
    # chainer.links.LSTM's lateral link has no bias: zeros in n_step's.
    lstm_ws = [chainer.Variable(w) for w in
               lstm_by_gate(W4.array) + lstm_by_gate(U4.array)]
    lstm_bs = [chainer.Variable(w) for w in lstm_by_gate(b4.array)] + [
        chainer.Variable(numpy.zeros(H, numpy.float32)) for _ in range(4)]

    def lstm_n_step(state):
        h, c = (zeros, zeros) if state is None else \
            (state[0][None], state[1][None])
        return joined(F.n_step_lstm(1, 0.0, h, c, [lstm_ws], [lstm_bs],
                                    steps())[2])

    def lstm_fused(state):
        h0, c0 = (None, None) if state is None else state
        return fused.lstm_window(x, T, W4, b4, U4, c0, h0)[0]

    gru = parameters(rng, *[(H, H), (H,)] * 6)  # fused.GRU_LINKS' order

    def gru_n_step(state):
        h = zeros if state is None else state[0][None]
        return joined(F.n_step_gru(1, 0.0, h, [gru[0:12:2]], [gru[1:12:2]],
                                   steps())[1])

    def gru_fused(state):
        h0 = None if state is None else state[0]
        return fused.gru_window(x, T, gru, h0)[0]

    carried = [rng.uniform(-0.5, 0.5, (B, H)).astype(numpy.float32)
               for _ in range(2)]
    return {'rnn': (rnn_n_step, rnn_fused, [x, W, b, U, c]),
            'lstm': (lstm_n_step, lstm_fused,
                     [x, W4, b4, U4] + lstm_ws + lstm_bs),
            'gru': (gru_n_step, gru_fused, [x] + gru)}, carried


def window_seconds(layer, leaves, state, repeat):
    """The mean seconds of forward and backward of layer over a window."""
    start = time.perf_counter()
    for _ in range(repeat):
        F.sum(layer(state)).backward()
        for leaf in leaves:
            leaf.grad_var = None
    return (time.perf_counter() - start) / repeat


def cpu_name():
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def largest_difference(a, b):
    return float(numpy.abs(a.array - b.array).max())


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--rounds', type=int, default=9)
    parser.add_argument('--repeat', type=int, default=10,
                        help='windows timed together in a round')
    parser.add_argument('--bproplen', '-l', type=int, default=20)
    parser.add_argument('--batchsize', '-b', type=int, default=10)
    parser.add_argument('--unit', '-u', type=int, default=100)
    args = parser.parse_args()
    layers, carried = cases(args.bproplen, args.batchsize, args.unit)
    print('{} UTC, {}, Python {}, numpy {}, chainer {}; T {}, B {}, H {}, '
          'float32, {} rounds of {} windows'.format(
              datetime.datetime.now(datetime.timezone.utc).strftime(
                  '%Y-%m-%d %H:%M'), cpu_name(), platform.python_version(),
              numpy.__version__, chainer.__version__, args.bproplen,
              args.batchsize, args.unit, args.rounds, args.repeat))
    seconds = {(arch, kind): [] for arch in layers
               for kind in ('n_step', 'fused')}
    with threadpoolctl.threadpool_limits(1), fast_training():
        for round_ in range(args.rounds + 1):  # round 0 warms up
            for arch, (n_step, fused_layer, leaves) in layers.items():
                for kind, layer in (('n_step', n_step),
                                    ('fused', fused_layer)):
                    mean = window_seconds(layer, leaves, carried, args.repeat)
                    if round_:
                        seconds[arch, kind].append(mean)
    print('load average {:.1f} {:.1f} {:.1f} at the end'.format(
        *os.getloadavg()))
    print('{:<5} {:>22} {:>22} {:>8}   {}'.format(
        'layer', 'n_step_* ms', 'fused ms', 'ratio',
        'hs apart by: carried state, first window'))
    for arch, (n_step, fused_layer, _) in layers.items():
        medians = {}
        cells = []
        for kind in ('n_step', 'fused'):
            times = [s * 1e3 for s in seconds[arch, kind]]
            medians[kind] = statistics.median(times)
            cells.append('{:.3f} ({:.3f}-{:.3f})'.format(
                medians[kind], min(times), max(times)))
        with chainer.no_backprop_mode():
            differences = [largest_difference(n_step(state),
                                              fused_layer(state))
                           for state in (carried, None)]
        print('{:<5} {:>22} {:>22} {:>7.1f}x   {:.1e}, {:.1e}'.format(
            arch, *cells, medians['n_step'] / medians['fused'],
            *differences))


if __name__ == '__main__':
    main()
