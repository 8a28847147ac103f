"""The recurrent architectures chosen with -a, and the loss over a window."""
import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import chainer.functions as F
import chainer.links as L
import numpy

import fused


class RecurrentState:
    """Mixin for a link whose attributes in state_names carry between calls.

    The state is saved with the link's parameters, so that a run resumed from
    a snapshot continues from the same point of the sequence.
    """

    state_names = ()

    def reset_state(self):
        for name in self.state_names:
            setattr(self, name, None)

    def unchain_state(self):
        """Cut every state from the graph that computed it."""
        for name in self.state_names:
            state = getattr(self, name)
            if state is not None:
                state.unchain()

    def serialize(self, serializer):
        super().serialize(serializer)
        saving = isinstance(serializer, chainer.serializer.Serializer)
        for name in self.state_names:
            key = 'state_' + name
            if saving:
                state = getattr(self, name)
                # An empty array stands for "no state yet": None needs pickle.
                serializer(key, numpy.zeros(0, numpy.float32)
                           if state is None else state.array)
            else:
                array = serializer(key, None)
                setattr(self, name, None if array.size == 0 else
                        chainer.Variable(self.device.send(array)))


class LSTM(RecurrentState, L.LSTM):
    """chainer.links.LSTM, one node a step, whose state is saved.

    The batch size must stay the same from step to step, until reset_state.
    """

    state_names = ('c', 'h')

    def forward(self, x):
        return fused.lstm_window(self, x, 1)


class StatefulGRU(RecurrentState, L.StatefulGRU):
    """chainer.links.StatefulGRU, one node a step, whose state is saved."""

    state_names = ('h',)

    def forward(self, x):
        return fused.gru_window(self, x, 1)


class ElmanLayer(RecurrentState, chainer.Chain):
    """h = act(upward(x) + lateral(h_prev)), one node a step.

    The first step has no lateral term. act is tanh (the tutorial's) or
    relu. The batch size must stay the same from step to step.
    """

    state_names = ('h',)

    def __init__(self, in_size, out_size, activation='tanh'):
        super().__init__()
        fused.check_activation(activation)
        self.activation = activation
        with self.init_scope():
            self.upward = L.Linear(in_size, out_size)
            self.lateral = L.Linear(out_size, out_size)
        self.h = None

    def forward(self, x):
        return fused.elman_window(self, x, 1)


class ConcatElmanLayer(RecurrentState, chainer.Chain):
    """h = tanh(joint([x; h_prev])): one linear map of input and state.

    The state starts at zeros. The same function class as ElmanLayer, written
    the other way round.
    """

    state_names = ('h',)

    def __init__(self, in_size, out_size):
        super().__init__()
        self.out_size = out_size
        with self.init_scope():
            self.joint = L.Linear(in_size + out_size, out_size)
        self.h = None

    def forward(self, x):
        if self.h is None:
            self.h = chainer.Variable(
                self.xp.zeros((len(x), self.out_size), x.dtype))
        self.h = F.tanh(self.joint(F.concat((x, self.h))))
        return self.h


class RecurrentPredictor(chainer.Chain):
    """Embedding, recurrent layers, linear output: words in, logits out.

    A subclass has the links embed (EmbedID) and out (Linear) and defines
    recur(e): one step of its recurrent layers, from embedded words e
    (batch, n_units) to what the output layer reads (batch, n_units).
    """

    def forward(self, x):
        """Logits (batch, n_vocab) for the words after x int32 (batch,)."""
        return self.out(self.recur(self.embed(x)))

    def forward_window(self, xs):
        """Logits (steps * batch, n_vocab) for xs int32 (steps, batch).

        The recurrent layers run once per time step, as in the tutorial.
        The embedding and the output layer, which see one word at a time,
        run once over the whole window: the same function in fewer nodes.
        """
        hs = [self.recur(e) for e in F.separate(self.embed(xs))]
        return self.out(F.concat(hs, axis=0))

    def reset_state(self):
        for link in self._stateful_links():
            link.reset_state()

    def unchain_state(self):
        for link in self._stateful_links():
            link.unchain_state()

    def _stateful_links(self):
        return [link for link in self.links()
                if isinstance(link, RecurrentState)]


class RNN(RecurrentPredictor):
    """The tutorial's Elman network: one tanh recurrent layer."""

    activation = 'tanh'

    def __init__(self, n_vocab, n_units):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = ElmanLayer(n_units, n_units, self.activation)
            self.out = L.Linear(n_units, n_vocab)

    def recur(self, e):
        return self.l1(e)


class ReLURNN(RNN):
    """The Elman network with ReLU: the kind that can count without bound.

    With finite precision, ReLU networks and LSTMs can count arbitrarily
    far, tanh networks and GRUs cannot (Weiss, Goldberg and Yahav, 2018).
    """

    activation = 'relu'


class RNN2(RecurrentPredictor):
    """Three stacked Elman layers."""

    def __init__(self, n_vocab, n_units):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = ElmanLayer(n_units, n_units)
            self.l2 = ElmanLayer(n_units, n_units)
            self.l3 = ElmanLayer(n_units, n_units)
            self.out = L.Linear(n_units, n_vocab)

    def recur(self, e):
        return self.l3(self.l2(self.l1(e)))


class RNN3(RecurrentPredictor):
    """Three stacked Elman layers that concatenate input and state."""

    def __init__(self, n_vocab, n_units):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = ConcatElmanLayer(n_units, n_units)
            self.l2 = ConcatElmanLayer(n_units, n_units)
            self.l3 = ConcatElmanLayer(n_units, n_units)
            self.out = L.Linear(n_units, n_vocab)

    def recur(self, e):
        return self.l3(self.l2(self.l1(e)))


class LSTMForSequence(RecurrentPredictor):
    """Two LSTM layers with dropout, as in Chainer's PTB example."""

    def __init__(self, n_vocab, n_units):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = LSTM(n_units, n_units)
            self.l2 = LSTM(n_units, n_units)
            self.out = L.Linear(n_units, n_vocab)
        for param in self.params():
            param.array[...] = numpy.random.uniform(-0.1, 0.1, param.shape)

    def recur(self, e):
        h = self.l1(F.dropout(e))
        h = self.l2(F.dropout(h))
        return F.dropout(h)


class GRU(RecurrentPredictor):
    """One GRU layer."""

    def __init__(self, n_vocab, n_units):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = StatefulGRU(n_units, n_units)
            self.out = L.Linear(n_units, n_vocab)

    def recur(self, e):
        return self.l1(e)


ARCHITECTURES = {
    'rnn': RNN,
    'rnn_relu': ReLURNN,
    'rnn2': RNN2,
    'rnn3': RNN3,
    'lstm': LSTMForSequence,
    'gru': GRU,
}


# The fused path: each recurrent layer runs a whole window as one node.

def _embedded(predictor, xs):
    """(x, ids) for the first recurrent layer of a window xs (T, B).

    The layer picks the words' rows from the embedding's matrix where the
    vocabulary is smaller than the window, and so cheaper to project; else
    the input is the embedded words, x (T * B, n_units), and ids None.
    """
    ids = getattr(xs, 'array', xs).ravel()
    W = predictor.embed.W
    if len(W) <= len(ids):
        return W, ids
    return fused.embed_id(ids, W), None


class FusedElmanWindow:
    """Mixin: forward_window of embed, the Elman layers, out; fused.

    For RNN and RNN2, and for any predictor made of an EmbedID embed,
    ElmanLayers named in elman_layers and a Linear out.
    """

    elman_layers = ('l1',)

    def forward_window(self, xs):
        """Logits (T * B, n_vocab) for xs int32 (T, B), as the per-step."""
        n_steps = len(xs)
        h, ids = _embedded(self, xs)
        for name in self.elman_layers:
            h = fused.elman_window(getattr(self, name), h, n_steps, ids)
            ids = None
        return fused.linear(self.out, h)


class FusedRNN(FusedElmanWindow, RNN):
    """RNN, whose windows run fused."""


class FusedReLURNN(FusedElmanWindow, ReLURNN):
    """ReLURNN, whose windows run fused."""


class FusedRNN2(FusedElmanWindow, RNN2):
    """RNN2, whose windows run fused."""

    elman_layers = ('l1', 'l2', 'l3')


class FusedLSTMForSequence(LSTMForSequence):
    """LSTMForSequence, whose windows run fused."""

    def forward_window(self, xs):
        """Logits (T * B, n_vocab) for xs int32 (T, B), as the per-step.

        Dropout applies to the window's (T * B, H) arrays at once: the same
        distribution as the per-step path's, but the masks come from the
        random stream in another order, so training runs differ. Without
        dropout (in test mode) the first layer reads the embedding's matrix
        as the other models do.
        """
        n_steps = len(xs)
        if chainer.config.train:
            ids = getattr(xs, 'array', xs).ravel()
            h = F.dropout(fused.embed_id(ids, self.embed.W))
            h = fused.lstm_window(self.l1, h, n_steps)
        else:
            x, ids = _embedded(self, xs)
            h = fused.lstm_window(self.l1, x, n_steps, ids)
        h = fused.lstm_window(self.l2, F.dropout(h), n_steps)
        return fused.linear(self.out, F.dropout(h))


class FusedGRU(GRU):
    """GRU, whose windows run fused."""

    def forward_window(self, xs):
        """Logits (T * B, n_vocab) for xs int32 (T, B), as the per-step."""
        h, ids = _embedded(self, xs)
        h = fused.gru_window(self.l1, h, len(xs), ids)
        return fused.linear(self.out, h)


FUSED_ARCHITECTURES = {
    'rnn': FusedRNN,
    'rnn_relu': FusedReLURNN,
    'rnn2': FusedRNN2,
    'lstm': FusedLSTMForSequence,
    'gru': FusedGRU,
}


def build_model(arch, n_vocab, n_units, fused=False):
    """The predictor named arch; with fused, one whose windows run fused."""
    return (FUSED_ARCHITECTURES if fused else ARCHITECTURES)[arch](
        n_vocab, n_units)


class SequenceClassifier(chainer.Chain):
    """Softmax cross-entropy and accuracies of a predictor over a window.

    Reports the mean over every step and stream of the window, where the
    tutorial's Classifier, called once per step, reported the last step only.
    Each value goes with its weight (the number of words it averages), so
    that summaries over windows of different lengths stay exact.
    """

    def __init__(self, predictor):
        super().__init__()
        with self.init_scope():
            self.predictor = predictor

    def forward(self, xs, ts):
        """The summed per-step mean loss, for xs, ts int32 (steps, batch)."""
        xp = self.xp
        steps = len(xs)
        ys = self.predictor.forward_window(xs)
        ts = ts.ravel()
        loss = F.softmax_cross_entropy(ys, ts)
        correct, boundary = judge(ys.array, xs, ts)
        n_boundary = boundary.sum()
        boundary_accuracy = ((correct & boundary).sum() /
                             xp.maximum(n_boundary, 1))
        n = ts.size
        chainer.report({
            'loss': (loss.array, n),
            'accuracy': (correct.mean(), n),
            'boundary_accuracy': (boundary_accuracy, n_boundary),
        }, self)
        # The tutorial sums the per-step losses of the window.
        return loss * steps


def judge(logits, xs, ts):
    """(correct, boundary): bool (words,) for logits (words, n_vocab) and the
    words' inputs and targets xs, ts (any shape of that size).

    A boundary is where the next word differs from the current one: after
    the i-th i comes i+1, the only places where counting shows.
    """
    ts = ts.ravel()
    return logits.argmax(axis=1) == ts, xs.ravel() != ts


def generate(predictor, prime, length):
    """int32 (length,): greedy continuation of prime, each word fed back in."""
    xp = predictor.xp
    predictor.reset_state()
    word = xp.asarray([prime], dtype=numpy.int32)
    words = []
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for _ in range(length):
            word = predictor(word).array.argmax(axis=1).astype(numpy.int32)
            words.append(word)
    return chainer.backend.CpuDevice().send(xp.concatenate(words))
