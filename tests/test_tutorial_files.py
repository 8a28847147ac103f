"""Model files move between the tutorial's networks and ours, both ways.

The reference networks below are written from the tutorial's equations in
its plain style, with its child names; stock Chainer saves and loads them.
"""
import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest

from models import ARCHITECTURES, build_model
import snapshots

from helpers import load_npz, save_npz

V, U = 7, 5
R = U
WORDS = [[1, 2, 3], [2, 2, 4], [2, 3, 4], [3, 3, 1], [6, 0, 5]]


class TutorialRNN(chainer.Chain):
    def __init__(self, n_vocab, n_units, activation=F.tanh):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = L.Linear(n_units, n_units)
            self.r1 = L.Linear(n_units, n_units)
            self.l2 = L.Linear(n_units, n_vocab)
        self.activation = activation
        self.recurrent_h = None

    def reset_state(self):
        self.recurrent_h = None

    def forward(self, x):
        h = self.embed(x)
        if self.recurrent_h is None:
            self.recurrent_h = self.activation(self.l1(h))
        else:
            self.recurrent_h = self.activation(
                self.l1(h) + self.r1(self.recurrent_h))
        return self.l2(self.recurrent_h)


class RNNLayer(chainer.Chain):
    def __init__(self, n_in, n_units):
        super().__init__()
        with self.init_scope():
            self.l = L.Linear(n_in, n_units)  # noqa: E741 (the tutorial's)
            self.r = L.Linear(n_units, n_units)
        self.recurrent_h = None

    def forward(self, x):
        if self.recurrent_h is None:
            self.recurrent_h = F.tanh(self.l(x))
        else:
            self.recurrent_h = F.tanh(self.l(x) + self.r(self.recurrent_h))
        return self.recurrent_h


class ConcatLayer(chainer.Chain):
    def __init__(self, n_units, n_rec):
        super().__init__()
        with self.init_scope():
            self.l = L.Linear(  # noqa: E741 (the tutorial's)
                n_units + n_rec, n_units + n_rec)
        self.n_units, self.n_rec = n_units, n_rec
        self.rh = None

    def forward(self, x):
        if self.rh is None:
            self.rh = numpy.zeros((len(x), self.n_rec), numpy.float32)
        y = self.l(F.concat((x, self.rh)))
        self.rh = F.tanh(y[:, self.n_units:])
        return F.tanh(y[:, :self.n_units])


class TutorialStack(chainer.Chain):
    """RNN2 (with RNNLayer) or RNN3 (with ConcatLayer)."""

    def __init__(self, n_vocab, n_units, layer):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.r1 = layer(n_units, n_units)
            self.r2 = layer(n_units, n_units)
            self.r3 = layer(n_units, n_units)
            self.l5 = L.Linear(n_units, n_vocab)

    def reset_state(self):
        for layer in (self.r1, self.r2, self.r3):
            layer.recurrent_h = layer.rh = None

    def forward(self, x):
        h = self.r3(self.r2(self.r1(self.embed(x))))
        return self.l5(h)


class RNNForLM(chainer.Chain):
    """Chainer's examples/ptb/train_ptb.py, as it is."""

    def __init__(self, n_vocab, n_units):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = L.LSTM(n_units, n_units)
            self.l2 = L.LSTM(n_units, n_units)
            self.l3 = L.Linear(n_units, n_vocab)

    def reset_state(self):
        self.l1.reset_state()
        self.l2.reset_state()

    def forward(self, x):
        h0 = self.embed(x)
        h1 = self.l1(F.dropout(h0))
        h2 = self.l2(F.dropout(h1))
        return self.l3(F.dropout(h2))


class TutorialGRU(chainer.Chain):
    def __init__(self, n_vocab, n_units):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = L.StatefulGRU(n_units, n_units)
            self.l2 = L.Linear(n_units, n_vocab)

    def reset_state(self):
        self.l1.reset_state()

    def forward(self, x):
        return self.l2(self.l1(self.embed(x)))


class TutorialLSTM(chainer.Chain):
    """One LSTM layer in the rnn's pattern, as TutorialGRU."""

    def __init__(self, n_vocab, n_units):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = L.LSTM(n_units, n_units)
            self.l2 = L.Linear(n_units, n_vocab)

    def reset_state(self):
        self.l1.reset_state()

    def forward(self, x):
        return self.l2(self.l1(self.embed(x)))


REFERENCES = {
    'rnn': lambda: TutorialRNN(V, U),
    'rnn_relu': lambda: TutorialRNN(V, U, F.relu),
    'rnn2': lambda: TutorialStack(V, U, RNNLayer),
    'rnn3': lambda: TutorialStack(V, U, ConcatLayer),
    'lstm': lambda: RNNForLM(V, U),
    'lstm1': lambda: TutorialLSTM(V, U),
    'gru': lambda: TutorialGRU(V, U),
}

LINEAR = {'rnn': [('l1', U, U), ('r1', U, U), ('l2', V, U)]}
LINEAR['rnn_relu'] = LINEAR['rnn']
LINEAR['rnn2'] = [('r{}/{}'.format(k, name), U, U)
                  for k in (1, 2, 3) for name in 'lr'] + [('l5', V, U)]
LINEAR['rnn3'] = [('r{}/l'.format(k), U + R, U + R)
                  for k in (1, 2, 3)] + [('l5', V, U)]
LINEAR['lstm'] = [('l{}/upward'.format(k), 4 * U, U) for k in (1, 2)] + \
    [('l3', V, U)]
LINEAR['lstm1'] = [('l1/upward', 4 * U, U), ('l2', V, U)]
LINEAR['gru'] = [('l1/' + name, U, U) for name in
                 ('W_r', 'W_z', 'W', 'U_r', 'U_z', 'U')] + [('l2', V, U)]


def expected_keys(arch):
    """The table of the tutorial's parameter layout: key -> shape."""
    keys = {'embed/W': (V, U)}
    for name, n_out, n_in in LINEAR[arch]:
        keys[name + '/W'] = (n_out, n_in)
        keys[name + '/b'] = (n_out,)
    lstm_layers = {'lstm': (1, 2), 'lstm1': (1,)}.get(arch, ())
    keys.update({'l{}/lateral/W'.format(k): (4 * U, U) for k in lstm_layers})
    return keys


def parameters(link):
    return {name[1:]: param.array for name, param in link.namedparams()}


def randomize(link, seed):
    """Random values everywhere, biases too, so that every key matters."""
    rng = numpy.random.RandomState(seed)
    for param in link.params():
        param.array[...] = rng.uniform(-0.5, 0.5, param.shape)


def logits(model, steps=WORDS):
    model.reset_state()
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        return [model(numpy.array(x, numpy.int32)).array for x in steps]


@pytest.mark.parametrize('arch', sorted(ARCHITECTURES))
def test_the_parameters_are_the_tutorials_key_for_key(arch):
    model = build_model(arch, V, U)
    assert {name: array.shape for name, array in
            parameters(model).items()} == expected_keys(arch)
    assert {name: array.shape for name, array in
            parameters(REFERENCES[arch]()).items()} == expected_keys(arch)


@pytest.mark.parametrize('arch', sorted(ARCHITECTURES))
def test_a_saved_model_holds_the_parameters_and_the_state(arch, tmp_path):
    model = build_model(arch, V, U)
    logits(model, WORDS[:2])
    path = str(tmp_path / 'model')
    save_npz(path, model)
    arrays = snapshots.read_npz(path)
    states = {name for name in arrays if name.startswith('state/')}
    assert set(arrays) - states == set(expected_keys(arch))
    assert states == {'state/' + name for name in model.state_names}
    assert all(arrays[name].shape == (3, U) for name in states)


@pytest.mark.parametrize('arch', sorted(ARCHITECTURES))
def test_a_tutorial_file_loads_into_our_model(arch, tmp_path):
    reference = REFERENCES[arch]()
    randomize(reference, 1)
    path = str(tmp_path / 'tutorial.model')
    chainer.serializers.save_npz(path, reference)
    model = build_model(arch, V, U)
    logits(model, WORDS[:1])  # a state the file must clear
    load_npz(path, model)
    assert model.states() == [None] * len(model.state_names)
    for ours, theirs in zip(logits(model), logits(reference)):
        numpy.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('arch', sorted(ARCHITECTURES))
def test_our_file_loads_into_the_tutorials_network(arch, tmp_path):
    model = build_model(arch, V, U)
    randomize(model, 2)
    logits(model, WORDS[:2])  # saved state must not get in the way
    path = str(tmp_path / 'ours.model')
    save_npz(path, model)
    reference = REFERENCES[arch]()
    chainer.serializers.load_npz(path, reference)
    for name, array in parameters(model).items():
        numpy.testing.assert_array_equal(parameters(reference)[name], array)
    for ours, theirs in zip(logits(model), logits(reference)):
        numpy.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5)
