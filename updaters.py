"""BPTTUpdater: truncated backpropagation through time."""
import contextlib
import ctypes
import os

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import chainer.computational_graph
import chainer.variable
import numpy

from iterators import next_window


class BPTTUpdater(chainer.training.updaters.StandardUpdater):
    """One update per window of bprop_len steps of every stream.

    The optimizer's target is a SequenceClassifier. Its random state (the
    global NumPy generator, which dropout draws from) is saved with the
    updater, so that a resumed run draws the same masks.
    """

    def __init__(self, train_iter, optimizer, bprop_len, device,
                 write_graph=None):
        if bprop_len < 1:
            raise ValueError(
                'bprop_len must be at least 1 (got {})'.format(bprop_len))
        super().__init__(train_iter, optimizer, device=device)
        self.bprop_len = bprop_len
        self.write_graph = write_graph  # called once with the first graph

    def update_core(self):
        train_iter = self.get_iterator('main')
        optimizer = self.get_optimizer('main')
        model = optimizer.target

        # Truncated BPTT: the predictor runs bprop_len steps, one call each,
        # from the state the previous window left; the losses of all steps
        # form one graph, and one backward pass goes through all of them.
        epoch = train_iter.epoch
        xs, ts = next_window(train_iter, self.bprop_len, self.input_device)
        loss = model(xs, ts)
        model.cleargrads()
        loss.backward()
        if self.write_graph is not None:
            # The whole window's graph, before it is cut; once.
            self.write_graph(
                chainer.computational_graph.build_computational_graph([loss]))
            self.write_graph = None
        # Cut the graph, so that the next window neither backpropagates
        # into this one nor keeps it in memory. A state that is not an
        # ancestor of the loss is out of unchain_backward's reach: cut too.
        loss.unchain_backward()
        model.predictor.unchain_state()
        optimizer.update()
        # is_new_epoch tells of the window's last step alone.
        for _ in range(train_iter.epoch - epoch):
            optimizer.new_epoch(auto=True)

    def serialize(self, serializer):
        super().serialize(serializer)
        random = serializer['random']
        name, keys, position, has_gauss, cached_gaussian = \
            numpy.random.get_state()
        keys = random('keys', keys)
        position = random('position', position)
        has_gauss = random('has_gauss', has_gauss)
        cached_gaussian = random('cached_gaussian', cached_gaussian)
        numpy.random.set_state(
            (name, keys, position, has_gauss, cached_gaussian))


@contextlib.contextmanager
def fast_training():
    """Chainer's configuration for training runs, faster (docs/speed.md).

    Chainer checks the types of every function's inputs, and sums the
    gradients of a parameter used at every step one node at a time; it also
    checks, whatever the configuration, that no node mixes arrays of two
    devices and that every gradient has its variable's type. The tests run
    with all of these checks; training runs, whose arrays are all made on
    one device by code the tests cover, skip them and sum at once. It also
    lets the process keep the memory it frees (keep_freed_memory).
    """
    keep_freed_memory()
    with chainer.using_config('type_check', False), \
            chainer.using_config('lazy_grad_sum', True), \
            _without_array_checks():
        yield


@contextlib.contextmanager
def _without_array_checks():
    # The two checks that no configuration turns off: a fifth of the
    # per-step LSTM's backward (docs/speed.md).
    checks = chainer.is_arrays_compatible, chainer.variable._check_grad_type
    chainer.is_arrays_compatible = _compatible
    chainer.variable._check_grad_type = _grad_type_unchecked
    try:
        yield
    finally:
        chainer.is_arrays_compatible, chainer.variable._check_grad_type = \
            checks


def _compatible(arrays):
    return True


def _grad_type_unchecked(func, x, is_node_x, gx):
    pass


# mallopt's parameters, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_freed_memory():
    """Let glibc's malloc keep the memory the process frees, for reuse.

    Each window allocates and frees the same arrays again; by default glibc
    hands freed memory back to the kernel, and the next array then costs a
    page fault every 4 KiB: some 1,300 to 2,100 faults an update of the
    per-step LSTM, a sixth of its time (docs/speed.md). Here arrays up to
    32 MiB come from the heap, and up to 64 MiB of free heap stays with the
    process. Process-wide and lasting; nothing happens outside glibc.
    """
    try:
        glibc = os.confstr('CS_GNU_LIBC_VERSION')
    except (AttributeError, ValueError, OSError):  # no confstr, or no glibc
        return
    if glibc is None:
        return
    libc = ctypes.CDLL(None)
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)
