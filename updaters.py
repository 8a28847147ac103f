"""BPTTUpdater: truncated backpropagation through time."""
import contextlib

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import chainer.computational_graph
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
    """Chainer's configuration for training runs, about 20% faster.

    Chainer checks the types of every function's inputs, and sums the
    gradients of a parameter used at every step one node at a time; the
    tests run with both, training runs check nothing and sum at once.
    """
    with chainer.using_config('type_check', False), \
            chainer.using_config('lazy_grad_sum', True):
        yield
