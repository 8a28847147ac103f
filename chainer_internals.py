"""The private parts of Chainer 7.8.1 this package relies on, in one place.

The code reaches them through this module alone; NAMES lists them, and
tests/test_chainer_internals.py checks each by name, so that a Chainer that
moves one fails there, saying which, rather than somewhere deep in a run.
"""
import contextlib

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer

NAMES = (
    'chainer.is_arrays_compatible, looked up at every call',
    'Optimizer._loss_scale',
    'UpdateRule._hookable._pre_update_hooks and _post_update_hooks',
    'UpdateRule._init_states',
    'Trainer._start_at',
    'ProgressBar._pbar._out',
)

CHAINER_DEVICE_CHECK = chainer.is_arrays_compatible


def set_device_check(check):
    """Make check(arrays) the device check of every function node.

    Chainer's FunctionNode, Variable and utils look up
    chainer.is_arrays_compatible at every call, so replacing it reaches all;
    CHAINER_DEVICE_CHECK puts Chainer's own back.
    """
    chainer.is_arrays_compatible = check


def loss_scale(optimizer):
    """The loss scale that Optimizer.update passes to backward, or None."""
    return optimizer._loss_scale


def has_update_hooks(rule):
    """Whether an UpdateRule has hooks to run before or after its update."""
    hooks = rule._hookable
    return bool(hooks._pre_update_hooks or hooks._post_update_hooks)


def init_states(rule, param):
    """Create rule's state for param, or move it to param's device, as an
    UpdateRule does before every update."""
    rule._init_states(param)


@contextlib.contextmanager
def trainer_clock_started(trainer):
    """Let a trainer that has not run tell an elapsed time meanwhile, a
    meaningless one: serializing a trainer asks for it, and only
    Trainer.run starts the clock."""
    trainer._start_at = 0.0
    try:
        yield
    finally:
        trainer._start_at = None


def progress_bar_printing_to(bar, out):
    """bar (a ProgressBar), drawing to out: Chainer 7.8.1's keeps its out
    argument but draws through a _pbar that prints to sys.stdout."""
    bar._pbar._out = out
    return bar
