"""The recurrent architectures chosen with -a, and the loss over a window.

One class per architecture, written step by step in Chainer's links and
functions as the tutorial wrote its networks, under the tutorial's names, so
that its model files load here and ours there. A class that has a fused
mode (fused=True) runs each BPTT window through fused.py's nodes instead:
the same function of the same parameters, leaving the same state.
"""
import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import chainer.functions as F
import chainer.links as L
import numpy

import fused

STATE_PREFIX = 'state/'  # no parameter's key begins so: no child is 'state'


class RecurrentPredictor(chainer.Chain):
    """Words in, logits out, one step at a time, with a state that carries.

    A subclass defines forward(x) for one step, and names its states in
    state_names: paths to attributes that hold a Variable or None, 'h' for
    its own, 'r1/h' for its child r1's. One with a fused mode also defines
    fused_window(xs).
    """

    state_names = ()
    fused_window = None

    def __init__(self, fused=False):
        super().__init__()
        if fused and not self.has_fused_mode():
            raise ValueError('{} has no fused mode'.format(
                type(self).__name__))
        self.fused = fused

    @classmethod
    def has_fused_mode(cls):
        return cls.fused_window is not None

    def forward_window(self, xs):
        """Logits (steps * batch, n_vocab) for xs int32 (steps, batch)."""
        if self.fused:
            return self.fused_window(xs)
        return F.concat([self.forward(x) for x in xs], axis=0)

    def reset_state(self):
        for owner, name in self._state_slots():
            setattr(owner, name, None)

    def unchain_state(self):
        """Cut every state from the graph that computed it."""
        for state in self.states():
            if state is not None:
                state.unchain()

    def states(self):
        """Every state the predictor holds, in the order of state_names."""
        return [getattr(owner, name) for owner, name in self._state_slots()]

    def _state_slots(self):
        """(owner, attribute name) of each state."""
        slots = []
        for path in self.state_names:
            owner = self
            *children, name = path.split('/')
            for child in children:
                owner = getattr(owner, child)
            slots.append((owner, name))
        return slots

    def device_resident_accept(self, visitor):
        # Moves the states with the parameters (LSTM's twice: harmless).
        super().device_resident_accept(visitor)
        for state in self.states():
            if state is not None:
                visitor.visit_variable(state)

    def serialize(self, serializer):
        """The parameters, then each state under state/<path>.

        The state is saved so that a run resumed from a snapshot continues
        from the same point of the sequence. A file without state keys (one
        of the tutorial's) loads as "no state".
        """
        super().serialize(serializer)
        saving = isinstance(serializer, chainer.serializer.Serializer)
        for path, (owner, name) in zip(self.state_names, self._state_slots()):
            key = STATE_PREFIX + path
            if saving:
                state = getattr(owner, name)
                # An empty array stands for "no state yet": None needs pickle.
                serializer(key, numpy.zeros(0, numpy.float32)
                           if state is None else state.array)
                continue
            try:
                array = serializer(key, None)
            except KeyError:  # stock save_npz wrote the file
                array = None
            setattr(owner, name, None if array is None or array.size == 0
                    else chainer.Variable(self.device.send(array)))


def _embedded(W, xs):
    """(x, ids) for the first recurrent layer of a fused window xs (T, B).

    The layer picks the words' rows from the embedding's matrix W where the
    vocabulary is smaller than the window, and so cheaper to project; else
    the input is the embedded words, x (T * B, n_units), and ids None.
    """
    ids = getattr(xs, 'array', xs).ravel()
    if W.shape[-2] <= len(ids):  # W (S, n_vocab, n_units) in a stack
        return W, ids
    return fused.embed_id(ids, W), None


class RNN(RecurrentPredictor):
    """The tutorial's Elman network: one tanh recurrent layer."""

    state_names = ('h',)
    activation = 'tanh'

    def __init__(self, n_vocab, n_units, fused=False):
        super().__init__(fused)
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = L.Linear(n_units, n_units)
            self.r1 = L.Linear(n_units, n_units)
            self.l2 = L.Linear(n_units, n_vocab)
        self.h = None

    def forward(self, x):
        """Logits (batch, n_vocab) for the words after x int32 (batch,)."""
        act = getattr(F, self.activation)
        e = self.embed(x)
        if self.h is None:
            self.h = act(self.l1(e))
        else:
            self.h = act(self.l1(e) + self.r1(self.h))
        return self.l2(self.h)

    def fused_window(self, xs):
        x, ids = _embedded(self.embed.W, xs)
        hs, self.h = fused.elman_window(
            x, len(xs), self.l1.W, self.l1.b, self.r1.W, self.r1.b, self.h,
            self.activation, ids)
        return fused.linear(hs, self.l2.W, self.l2.b)


class ReLURNN(RNN):
    """The Elman network with ReLU: a unit can count, adding one a step.

    In Weiss, Goldberg and Yahav's (2018) model of finite precision, ReLU
    networks and LSTMs can count where tanh networks and GRUs saturate; with
    every state finite, though, a one-layer ReLU network is a finite
    automaton (Korsky and Berwick, 2019) and counts only so far.
    """

    activation = 'relu'


class ElmanBlock(chainer.Chain):
    """h = tanh(l(x) + r(h_prev)); the first step has no r term."""

    def __init__(self, in_size, n_units):
        super().__init__()
        with self.init_scope():
            self.l = L.Linear(in_size, n_units)  # noqa: E741 (tutorial's)
            self.r = L.Linear(n_units, n_units)
        self.h = None

    def forward(self, x):
        if self.h is None:
            self.h = F.tanh(self.l(x))
        else:
            self.h = F.tanh(self.l(x) + self.r(self.h))
        return self.h


class RNN2(RecurrentPredictor):
    """The tutorial's three stacked Elman blocks."""

    state_names = ('r1/h', 'r2/h', 'r3/h')

    def __init__(self, n_vocab, n_units, fused=False):
        super().__init__(fused)
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.r1 = ElmanBlock(n_units, n_units)
            self.r2 = ElmanBlock(n_units, n_units)
            self.r3 = ElmanBlock(n_units, n_units)
            self.l5 = L.Linear(n_units, n_vocab)

    def forward(self, x):
        h1 = self.r1(self.embed(x))
        h2 = self.r2(h1)
        h3 = self.r3(h2)
        return self.l5(h3)

    def fused_window(self, xs):
        h, ids = _embedded(self.embed.W, xs)
        for block in (self.r1, self.r2, self.r3):
            h, block.h = fused.elman_window(
                h, len(xs), block.l.W, block.l.b, block.r.W, block.r.b,
                block.h, ids=ids)
            ids = None
        return fused.linear(h, self.l5.W, self.l5.b)


class ConcatBlock(chainer.Chain):
    """One linear map of [input; recurrent state] to [output; next state].

    y = l([x; rh]) splits into its first n_units, whose tanh is the output,
    and its last n_rec, whose tanh is the next rh; rh starts at zeros.
    """

    def __init__(self, n_units, n_rec):
        super().__init__()
        self.n_units, self.n_rec = n_units, n_rec
        with self.init_scope():
            self.l = L.Linear(  # noqa: E741 (the tutorial's name)
                n_units + n_rec, n_units + n_rec)
        self.rh = None

    def forward(self, x):
        if self.rh is None:
            self.rh = chainer.Variable(
                self.xp.zeros((len(x), self.n_rec), x.dtype))
        y = self.l(F.concat((x, self.rh)))
        h_out, h_rec = F.split_axis(y, [self.n_units], axis=1)
        self.rh = F.tanh(h_rec)
        return F.tanh(h_out)


class RNN3(RecurrentPredictor):
    """The tutorial's three stacked concat blocks; it has no fused mode."""

    state_names = ('r1/rh', 'r2/rh', 'r3/rh')

    def __init__(self, n_vocab, n_units, fused=False):
        super().__init__(fused)
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.r1 = ConcatBlock(n_units, n_units)
            self.r2 = ConcatBlock(n_units, n_units)
            self.r3 = ConcatBlock(n_units, n_units)
            self.l5 = L.Linear(n_units, n_vocab)

    def forward(self, x):
        h1 = self.r1(self.embed(x))
        h2 = self.r2(h1)
        h3 = self.r3(h2)
        return self.l5(h3)


class RNNForLM(RecurrentPredictor):
    """Two LSTM layers with dropout: Chainer's PTB example.

    The options undo one of its choices at a time, for the capacity study:
    n_layers=1, dropout=0 (none), uniform_init=False (Chainer's own
    initialisation, whose forget-gate bias is 1, instead of U(-0.1, 0.1)).
    """

    def __init__(self, n_vocab, n_units, fused=False, n_layers=2,
                 dropout=0.5, uniform_init=True):
        super().__init__(fused)
        if n_layers not in (1, 2):
            raise ValueError('n_layers must be 1 or 2 (got {})'.format(
                n_layers))
        self.dropout = dropout
        # None: F.dropout draws the masks from NumPy's global generator. A
        # stack of seeds (study/stacked.py) sets a function (shape, ratio,
        # dtype) -> mask that draws each seed's from its own.
        self.dropout_mask = None
        self.layer_names = ('l1', 'l2')[:n_layers]
        self.state_names = tuple('{}/{}'.format(layer, state)
                                 for layer in self.layer_names
                                 for state in ('c', 'h'))
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            for name in self.layer_names:
                setattr(self, name, L.LSTM(n_units, n_units))
            self.l3 = L.Linear(n_units, n_vocab)
        if uniform_init:
            for param in self.params():
                param.array[...] = numpy.random.uniform(-0.1, 0.1,
                                                        param.shape)

    def layers(self):
        return [getattr(self, name) for name in self.layer_names]

    def drop(self, h):
        if not self.dropout:
            return h
        if self.dropout_mask is None or not chainer.config.train:
            return F.dropout(h, self.dropout)
        return F.dropout(h, mask=self.dropout_mask(h.shape, self.dropout,
                                                   h.dtype))

    def forward(self, x):
        h = self.embed(x)
        for lstm in self.layers():
            h = lstm(self.drop(h))
        return self.l3(self.drop(h))

    def fused_window(self, xs):
        """Dropout applies to the window's (T * B, H) arrays at once.

        The same distribution as the per-step path's, but the masks come
        from the random stream in another order, so training runs differ.
        Without dropout the first layer reads the embedding's matrix as the
        other models do.
        """
        n_steps = len(xs)
        if chainer.config.train and self.dropout:
            ids = getattr(xs, 'array', xs).ravel()
            h, ids = self.drop(fused.embed_id(ids, self.embed.W)), None
        else:
            h, ids = _embedded(self.embed.W, xs)
        for lstm in self.layers():
            h, ids = self.drop(_lstm_window(lstm, h, n_steps, ids)), None
        return fused.linear(h, self.l3.W, self.l3.b)


def _lstm_window(lstm, x, n_steps, ids=None):
    """hs (T * B, H) of the chainer.links.LSTM lstm over a fused window of
    x (see fused.lstm_window), its state carried on."""
    hs, lstm.h, lstm.c = fused.lstm_window(
        x, n_steps, lstm.upward.W, lstm.upward.b, lstm.lateral.W, lstm.c,
        lstm.h, ids)
    return hs


class OneLayerLSTM(RecurrentPredictor):
    """One LSTM layer without dropout, in the rnn's pattern: embed, l1, l2.

    The fair comparison with the one-layer rnn and gru: Chainer's own
    initialisation (forget-gate bias 1), where the tutorial's lstm draws
    every parameter from U(-0.1, 0.1) and drops out between its two
    layers. What each choice does to learning: docs/capacity.md.
    """

    state_names = ('l1/c', 'l1/h')

    def __init__(self, n_vocab, n_units, fused=False):
        super().__init__(fused)
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = L.LSTM(n_units, n_units)
            self.l2 = L.Linear(n_units, n_vocab)

    def forward(self, x):
        return self.l2(self.l1(self.embed(x)))

    def fused_window(self, xs):
        x, ids = _embedded(self.embed.W, xs)
        hs = _lstm_window(self.l1, x, len(xs), ids)
        return fused.linear(hs, self.l2.W, self.l2.b)


class GRU(RecurrentPredictor):
    """One GRU layer, in the rnn's pattern: embed, l1, l2."""

    state_names = ('l1/h',)

    def __init__(self, n_vocab, n_units, fused=False):
        super().__init__(fused)
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = L.StatefulGRU(n_units, n_units)
            self.l2 = L.Linear(n_units, n_vocab)

    def forward(self, x):
        return self.l2(self.l1(self.embed(x)))

    def fused_window(self, xs):
        x, ids = _embedded(self.embed.W, xs)
        gru = self.l1
        weights = [param for name in fused.GRU_LINKS
                   for param in (getattr(gru, name).W, getattr(gru, name).b)]
        hs, gru.h = fused.gru_window(x, len(xs), weights, gru.h, ids)
        return fused.linear(hs, self.l2.W, self.l2.b)


ARCHITECTURES = {
    'rnn': RNN,
    'rnn_relu': ReLURNN,
    'rnn2': RNN2,
    'rnn3': RNN3,
    'lstm': RNNForLM,
    'lstm1': OneLayerLSTM,
    'gru': GRU,
}
# The architectures that --fused accepts.
FUSED_ARCHITECTURES = {name: cls for name, cls in ARCHITECTURES.items()
                       if cls.has_fused_mode()}


def build_model(arch, n_vocab, n_units, fused=False, **options):
    """The predictor named arch; with fused, in its fused mode; options go
    to its class."""
    return ARCHITECTURES[arch](n_vocab, n_units, fused, **options)


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
        return self.observe(self.predictor.forward_window(xs), xs, ts)

    def observe(self, ys, xs, ts):
        """Report the loss and accuracies of the logits ys (steps * batch,
        n_vocab) for xs, ts int32 (steps, batch); their summed loss."""
        xp = self.xp
        steps = len(xs)
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
