"""BPTTUpdater: truncated backpropagation through time."""
import contextlib
import ctypes
import os

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import chainer.computational_graph
import numpy

import chainer_internals
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
    checks, in every node whatever the configuration, that no arrays of two
    devices mix. The tests run with these checks; training runs, whose
    arrays are all made on one device (a numpy and a cupy array fail in the
    arithmetic anyway), skip them and sum at once. Gradients' dtypes and
    shapes are still checked. It also lets the process keep the memory it
    frees (keep_freed_memory). Process-wide while it lasts: not for threads
    that use Chainer beside a run.
    """
    keep_freed_memory()
    with chainer.using_config('type_check', False), \
            chainer.using_config('lazy_grad_sum', True), \
            _devices_taken_as_compatible():
        yield


_runs_without_device_check = 0


@contextlib.contextmanager
def _devices_taken_as_compatible():
    # A check that no configuration turns off, run in every node: a share of
    # a per-step update worth saving (docs/speed.md). Counted, so that
    # overlapping uses put Chainer's own back when the last one ends, in
    # whatever order.
    global _runs_without_device_check
    try:
        _runs_without_device_check += 1
        chainer_internals.set_device_check(_taken_as_compatible)
        yield
    finally:
        _runs_without_device_check -= 1
        if _runs_without_device_check == 0:
            chainer_internals.set_device_check(
                chainer_internals.CHAINER_DEVICE_CHECK)


def _taken_as_compatible(arrays):
    return True


# mallopt's parameters, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_freed_memory():
    """Let glibc's malloc keep the memory the process frees, for reuse.

    Each window allocates and frees the same arrays again; by default glibc
    hands freed memory back to the kernel, and the next array then costs a
    page fault every 4 KiB, a large share of a per-step update
    (docs/speed.md). Here arrays up to 32 MiB come from the heap, and up to
    64 MiB of free heap stays with the process. Process-wide and lasting;
    nothing happens outside glibc.
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
