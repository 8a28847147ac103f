"""Check, on a machine with CuPy and a GPU, what docs/gpu.md says of the GPU
path: the fused and per-step models give the CPU's logits and gradients in
float64, and FlatAdam updates as Chainer's Adam does there.

    python benchmarks/gpu_check.py

Prints one line per comparison, the largest relative difference first;
status 1 where one is over its tolerance, 2 where CuPy or a GPU is missing.
The training runs themselves are checked with train_rnn.py --gpu 0
(docs/gpu.md lists them).
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import setup_check  # noqa: E402, F401  (says so where Chainer is missing)
import chainer_compat  # noqa: E402, F401  (must precede chainer)
import chainer  # noqa: E402
import chainer.functions as F  # noqa: E402
import numpy  # noqa: E402

import cli  # noqa: E402
import models  # noqa: E402
from optimizers import FlatAdam  # noqa: E402

N_VOCAB, N_UNITS, BATCH, N_STEPS = 20, 8, 3, 4
# Float64 rounding alone, as tests/test_fused.py allows between the paths.
PATH_TOLERANCE = 1e-9
# Chainer's Adam kernel on the GPU rounds otherwise than FlatAdam's arrays.
ADAM_TOLERANCE = 1e-6


def relative_difference(actual, expected):
    return float(abs(actual - expected).max() / abs(expected).max())


def logits_and_grads(arch, use_fused, device):
    """In float64, after two windows the second of which is backpropagated:
    the logits and every parameter's gradient, as NumPy arrays."""
    numpy.random.seed(0)
    with chainer.using_config('dtype', numpy.float64):
        predictor = models.ARCHITECTURES[arch](N_VOCAB, N_UNITS, use_fused)
    predictor.to_device(device)
    rng = numpy.random.RandomState(1)
    windows = [device.send(rng.randint(0, N_VOCAB, (N_STEPS, BATCH)).astype(
        numpy.int32)) for _ in range(2)]
    with chainer.using_config('train', False):
        predictor.forward_window(windows[0])
        predictor.unchain_state()
        logits = predictor.forward_window(windows[1])
        weights = device.send(rng.uniform(-1, 1, logits.shape))
        predictor.cleargrads()
        F.sum(logits * weights).backward()
    return (chainer.backend.CpuDevice().send(logits.array),
            {name: chainer.backend.CpuDevice().send(param.grad)
             for name, param in predictor.namedparams()
             if param.grad is not None})


def paths_differences(gpu):
    """(what, largest relative difference) of each path on each device
    against the per-step path on the CPU."""
    cpu = chainer.get_device('@numpy')
    for arch in sorted(models.FUSED_ARCHITECTURES):
        logits, grads = logits_and_grads(arch, False, cpu)
        for use_fused, device in ((True, cpu), (False, gpu), (True, gpu)):
            other_logits, other_grads = logits_and_grads(arch, use_fused,
                                                         device)
            assert other_grads.keys() == grads.keys(), arch
            yield '{} {} on {}'.format(
                arch, 'fused' if use_fused else 'per-step', device), max(
                [relative_difference(other_logits, logits)] +
                [relative_difference(other_grads[name], grad)
                 for name, grad in grads.items()]), PATH_TOLERANCE


def trained_parameters(optimizer_class, device):
    numpy.random.seed(0)
    model = models.ARCHITECTURES['lstm'](N_VOCAB, N_UNITS, False)
    model.to_device(device)
    optimizer = optimizer_class(alpha=0.01)
    optimizer.setup(model)
    rng = numpy.random.RandomState(1)
    for _ in range(4):
        model.cleargrads()
        for param in model.params():
            param.grad = device.send(
                rng.normal(size=param.shape).astype(param.dtype))
        optimizer.update()
    return {name: chainer.backend.CpuDevice().send(param.array)
            for name, param in model.namedparams()}


def adam_difference(gpu):
    expected = trained_parameters(chainer.optimizers.Adam, gpu)
    flat = trained_parameters(FlatAdam, gpu)
    return 'FlatAdam against Adam on {}'.format(gpu), max(
        relative_difference(flat[name], array)
        for name, array in expected.items()), ADAM_TOLERANCE


def main():
    try:
        gpu = cli.select_device(0, 'check')
    except cli.UsageError as error:
        print('gpu_check.py: {}'.format(error), file=sys.stderr)
        return 2
    failed = False
    for what, difference, tolerance in list(paths_differences(gpu)) + [
            adam_difference(gpu)]:
        failed |= not difference <= tolerance
        print('{:.1e} {} (tolerance {:.0e})'.format(difference, what,
                                                    tolerance))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
