import warnings

import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest

with warnings.catch_warnings():
    # chainer.testing, which gradient_check imports, registers a mark that
    # pytest does not know: nothing we can change.
    warnings.simplefilter('ignore', pytest.PytestUnknownMarkWarning)
    from chainer import gradient_check

import fused
import models
from models import ARCHITECTURES

from helpers import load_npz, save_npz

FUSED = sorted(models.FUSED_ARCHITECTURES)
N_VOCAB, N_UNITS, BATCH = 5, 8, 3
# Float64 runs of the two paths differ by rounding alone, about 1e-15.
TOLERANCE = 1e-9


def build(arch, use_fused, dtype=numpy.float32, seed=0, n_vocab=N_VOCAB):
    """A predictor of either path; the same seed gives the same parameters."""
    numpy.random.seed(seed)
    with chainer.using_config('dtype', dtype):
        return ARCHITECTURES[arch](n_vocab, N_UNITS, use_fused)


def window(n_steps, seed, n_vocab=N_VOCAB):
    return numpy.random.RandomState(seed).randint(
        0, n_vocab, (n_steps, BATCH)).astype(numpy.int32)


def relative_difference(actual, expected):
    return float(abs(actual - expected).max() / abs(expected).max())


def loss_of(logits):
    """A scalar loss that weighs every logit differently."""
    weights = numpy.random.RandomState(9).uniform(-1, 1, logits.shape)
    return F.sum(logits * weights.astype(logits.dtype))


def run_windows(predictor, windows, backward=True, train=False):
    """Logits of the last window, after the windows before it, truncated.

    In test mode unless train, so that dropout is off. The gradient is that
    of loss_of the last window's logits.
    """
    with chainer.using_config('train', train):
        for xs in windows[:-1]:
            predictor.forward_window(xs)
            predictor.unchain_state()  # as the updater does
        logits = predictor.forward_window(windows[-1])
        if backward:
            predictor.cleargrads()
            loss_of(logits).backward()
    return logits


# The nodes against numerical gradients, in float64.

def random_arrays(seed, *shapes):
    rng = numpy.random.RandomState(seed)
    return [rng.uniform(-1, 1, shape) for shape in shapes]


def check_node(node, inputs, outputs, no_grads=None):
    gradient_check.check_backward(
        lambda *xs: node.apply(xs), tuple(inputs),
        tuple(random_arrays(1, *outputs)), no_grads=no_grads,
        eps=1e-6, atol=1e-7, rtol=1e-6)


B, IN, H = 2, 4, 3


def node_input(n_steps, table):
    """(shape of x, ids): the input rows, or a table of 3 rows and ids."""
    if not table:
        return (n_steps * B, IN), None
    ids = numpy.random.RandomState(2).randint(0, 3, n_steps * B)
    ids[:2] = 1  # a repeated id
    return (3, IN), ids.astype(numpy.int32)


@pytest.mark.parametrize('activation', fused.ACTIVATIONS)
@pytest.mark.parametrize('has_h0', [False, True])
@pytest.mark.parametrize('n_steps', [1, 3])
@pytest.mark.parametrize('table', [False, True])
def test_the_elman_node_has_the_numerical_gradient(activation, has_h0,
                                                   n_steps, table):
    x_shape, ids = node_input(n_steps, table)
    shapes = [x_shape, (H, IN), (H,), (H, H), (H,)] + [(B, H)] * has_h0
    lateral_unused = n_steps == 1 and not has_h0
    check_node(fused.ElmanWindow(n_steps, activation, has_h0, ids),
               random_arrays(0, *shapes), [(n_steps * B, H), (B, H)],
               no_grads=[False] * 3 + [lateral_unused] * 2 + [False] * has_h0)


@pytest.mark.parametrize('has_c0, has_h0',
                         [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize('n_steps', [1, 3])
@pytest.mark.parametrize('table', [False, True])
def test_the_lstm_node_has_the_numerical_gradient(has_c0, has_h0, n_steps,
                                                  table):
    x_shape, ids = node_input(n_steps, table)
    shapes = [x_shape, (4 * H, IN), (4 * H,), (4 * H, H)] + \
        [(B, H)] * (has_c0 + has_h0)
    no_grads = [False] * 3 + [n_steps == 1 and not has_h0] + \
        [False] * (has_c0 + has_h0)
    check_node(fused.LSTMWindow(n_steps, has_c0, has_h0, ids),
               random_arrays(0, *shapes),
               [(n_steps * B, H), (B, H), (B, H)], no_grads=no_grads)


@pytest.mark.parametrize('has_h0', [False, True])
@pytest.mark.parametrize('n_steps', [1, 3])
@pytest.mark.parametrize('table', [False, True])
def test_the_gru_node_has_the_numerical_gradient(has_h0, n_steps, table):
    x_shape, ids = node_input(n_steps, table)
    shapes = [x_shape] + [(H, IN), (H,)] * 3 + [(H, H), (H,)] * 3 + \
        [(B, H)] * has_h0
    # Without a previous state, r and the U take no part in the first step.
    unused = n_steps == 1 and not has_h0
    no_grads = [False] + [unused] * 2 + [False] * 4 + [unused] * 6 + \
        [False] * has_h0
    check_node(fused.GRUWindow(n_steps, has_h0, ids),
               random_arrays(0, *shapes), [(n_steps * B, H), (B, H)],
               no_grads=no_grads)


def test_the_linear_node_has_the_numerical_gradient():
    check_node(fused.WindowLinear(), random_arrays(0, (5, 4), (3, 4), (3,)),
               [(5, 3)])


@pytest.mark.parametrize('n_vocab', [5, fused.ONE_HOT_MAX_VOCAB + 1])
def test_the_embedding_node_has_the_numerical_gradient(n_vocab):
    ids = numpy.array([[0, 3, 3], [1, 3, 0]], numpy.int32)  # repeated ids
    W, gy = random_arrays(0, (n_vocab, 4), (2, 3, 4))
    gradient_check.check_backward(
        fused.embed_id, (ids, W), gy, eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize('n_vocab', [5, fused.ONE_HOT_MAX_VOCAB + 1])
def test_the_embedding_has_the_gradient_of_embed_id(n_vocab):
    ids = numpy.array([0, 4, 4, 4, 1, 0, 4], numpy.int32)
    W, gy = (a.astype(numpy.float32)
             for a in random_arrays(0, (n_vocab, 6), (len(ids), 6)))
    grads = []
    for embed in (F.embed_id, fused.embed_id):
        w = chainer.Variable(W.copy())
        y = embed(ids, w)
        y.grad = gy
        y.backward()
        grads.append(w.grad)
        numpy.testing.assert_array_equal(y.array, W[ids])
    numpy.testing.assert_allclose(grads[1], grads[0], rtol=1e-6, atol=1e-6)


def test_the_nodes_refuse_double_backprop():
    xs = [chainer.Variable(x) for x in
          random_arrays(0, (6, 4), (3, 4), (3,), (3, 3), (3,))]
    hs, _ = fused.ElmanWindow(3).apply(xs)
    with pytest.raises(NotImplementedError, match='double backprop'):
        F.sum(hs).backward(enable_double_backprop=True)


# The models against the per-step path.

def assert_same_gradients(fast, per_step):
    fast_params = dict(fast.namedparams())
    assert sorted(fast_params) == sorted(dict(per_step.namedparams()))
    for name, param in per_step.namedparams():
        # A parameter that takes no part (the GRU's W_r in the very first
        # step) has no gradient on either path.
        if param.grad is None:
            assert fast_params[name].grad is None, name
            continue
        assert relative_difference(
            fast_params[name].grad, param.grad) < TOLERANCE, name


# A vocabulary of 5 is smaller than a window of 4 * 3 words, and the first
# layer projects the embedding's matrix; one of 20 is not, and it projects
# the embedded words.
@pytest.mark.parametrize('arch', FUSED)
@pytest.mark.parametrize('carried', [False, True])
@pytest.mark.parametrize('n_vocab', [N_VOCAB, 20])
def test_logits_and_gradients_are_those_of_the_per_step_path(arch, carried,
                                                             n_vocab):
    windows = [window(4, seed, n_vocab) for seed in range(1 + carried)]
    per_step, fast = (build(arch, use_fused, numpy.float64, n_vocab=n_vocab)
                      for use_fused in (False, True))
    expected = run_windows(per_step, windows)
    logits = run_windows(fast, windows)
    assert relative_difference(logits.array, expected.array) < TOLERANCE
    assert_same_gradients(fast, per_step)
    for state, expected_state in zip(fast.states(), per_step.states()):
        assert relative_difference(
            state.array, expected_state.array) < TOLERANCE


def test_the_lstm_trains_as_the_per_step_path_without_dropout(monkeypatch):
    """In training, its first layer reads the embedded words."""
    monkeypatch.setattr(F, 'dropout', lambda x, ratio=0.5: x)
    windows = [window(4, seed) for seed in range(2)]
    per_step, fast = (build('lstm', use_fused, numpy.float64)
                      for use_fused in (False, True))
    logits, expected = (run_windows(predictor, windows, train=True)
                        for predictor in (fast, per_step))
    assert relative_difference(logits.array, expected.array) < TOLERANCE
    assert_same_gradients(fast, per_step)


@pytest.mark.parametrize('arch', ['rnn', 'gru'])
def test_a_one_step_window_without_state_leaves_lateral_gradients_none(arch):
    per_step, fast = (build(arch, use_fused, numpy.float64)
                      for use_fused in (False, True))
    for predictor in (per_step, fast):
        run_windows(predictor, [window(1, 0)])
    assert ([name for name, param in fast.namedparams()
             if param.grad is None] ==
            [name for name, param in per_step.namedparams()
             if param.grad is None] != [])


@pytest.mark.parametrize('arch', FUSED)
def test_untruncated_windows_backpropagate_into_each_other(arch):
    """The carried state keeps its graph until the updater cuts it."""
    per_step, fast = (build(arch, use_fused, numpy.float64)
                      for use_fused in (False, True))
    grads = []
    for predictor in (per_step, fast):
        with chainer.using_config('train', False):
            first = predictor.forward_window(window(3, 0))
            second = predictor.forward_window(window(3, 1))
            predictor.cleargrads()
            (loss_of(first) + loss_of(second)).backward()
        grads.append(dict((name, param.grad)
                          for name, param in predictor.namedparams()))
    for name, grad in grads[0].items():
        assert relative_difference(grads[1][name], grad) < TOLERANCE, name


@pytest.mark.parametrize('arch', FUSED)
def test_the_float32_logits_are_close_to_the_per_step_path(arch):
    windows = [window(5, 0), window(5, 1)]
    expected, logits = (
        run_windows(build(arch, use_fused), windows, backward=False).array
        for use_fused in (False, True))
    assert logits.dtype == numpy.float32
    assert logits.shape == (5 * BATCH, N_VOCAB)
    numpy.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('arch', FUSED)
def test_evaluation_runs_without_a_graph(arch):
    predictor = build(arch, True)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        logits = predictor.forward_window(window(3, 0))
    assert logits.creator is None
    assert all(state.creator is None for state in predictor.states())


@pytest.mark.parametrize('arch', FUSED)
@pytest.mark.parametrize('saved_fused', [True, False])
def test_models_load_into_each_other_and_continue_alike(arch, saved_fused,
                                                        tmp_path):
    trained = build(arch, saved_fused)
    run_windows(trained, [window(4, 0)], backward=False)
    trained.unchain_state()
    save_npz(str(tmp_path / 'model'), trained)
    expected = run_windows(trained, [window(4, 1)], backward=False).array
    for use_fused in (True, False):
        restored = build(arch, use_fused, seed=1)
        load_npz(str(tmp_path / 'model'), restored)
        logits = run_windows(restored, [window(4, 1)], backward=False).array
        if use_fused == saved_fused:
            numpy.testing.assert_array_equal(logits, expected)
        else:
            numpy.testing.assert_allclose(logits, expected, rtol=1e-5,
                                          atol=1e-6)


@pytest.mark.parametrize('arch', FUSED)
def test_one_step_at_a_time_is_the_per_step_models(arch):
    """One step runs as a window of one; a window continues from steps."""
    predictors = [build(arch, use_fused) for use_fused in (False, True)]
    logits = []
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for predictor in predictors:
            steps = [predictor(x).array for x in window(2, 0)]
            logits.append(steps + [predictor.forward_window(window(3, 1))
                                   .array])
    for expected, actual in zip(logits[0], logits[1]):
        numpy.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_a_window_cannot_change_the_batch_size():
    predictor = build('lstm', True)
    predictor.forward_window(window(2, 0))
    with pytest.raises(ValueError, match='batch size'):
        predictor.forward_window(window(2, 0)[:, :2])


def test_a_model_without_a_fused_mode_refuses_it():
    assert 'rnn3' not in models.FUSED_ARCHITECTURES
    with pytest.raises(ValueError, match='RNN3 has no fused mode'):
        models.build_model('rnn3', N_VOCAB, N_UNITS, fused=True)


# The window functions against Chainer's own links, step by step.

def stock_step(layer, x, activation):
    """One step of the layer as Chainer's links and functions compute it."""
    if isinstance(layer, (L.LSTM, L.StatefulGRU)):
        return layer(x)
    act = getattr(F, activation)
    if layer.h is None:
        layer.h = act(layer.upward(x))
    else:
        layer.h = act(layer.upward(x) + layer.lateral(layer.h))
    return layer.h


def elman_layer():
    layer = chainer.Chain()
    with layer.init_scope():
        layer.upward = L.Linear(4, 3)
        layer.lateral = L.Linear(3, 3)
    layer.h = None
    return layer


def window_of(layer, x, activation):
    """hs of the window x (T, B, in) through fused.py; updates the state."""
    x = x.reshape(-1, x.shape[-1])
    if isinstance(layer, L.LSTM):
        hs, layer.h, layer.c = fused.lstm_window(
            x, 3, layer.upward.W, layer.upward.b, layer.lateral.W, layer.c,
            layer.h)
    elif isinstance(layer, L.StatefulGRU):
        weights = [param for name in fused.GRU_LINKS
                   for param in (getattr(layer, name).W,
                                 getattr(layer, name).b)]
        hs, layer.h = fused.gru_window(x, 3, weights, layer.h)
    else:
        hs, layer.h = fused.elman_window(
            x, 3, layer.upward.W, layer.upward.b, layer.lateral.W,
            layer.lateral.b, layer.h, activation)
    return hs


@pytest.mark.parametrize('kind, activation', [
    ('elman', 'tanh'), ('elman', 'relu'), ('lstm', None), ('gru', None)])
def test_a_window_computes_what_chainers_links_do(kind, activation):
    with chainer.using_config('dtype', numpy.float64):
        layer = {'elman': elman_layer, 'lstm': lambda: L.LSTM(4, 3),
                 'gru': lambda: L.StatefulGRU(4, 3)}[kind]()
    reference = layer.copy(mode='copy')
    names = ('c', 'h') if kind == 'lstm' else ('h',)
    x0, x, gy = random_arrays(0, (2, BATCH, 4), (3, BATCH, 4), (3, BATCH, 3))
    for step in x0:  # a state from steps before the window
        for link in (layer, reference):
            stock_step(link, step, activation)
    for link in (layer, reference):
        for name in names:
            getattr(link, name).unchain()
    hs = window_of(layer, x, activation)
    expected = F.concat([stock_step(reference, step, activation)
                         for step in x], axis=0)
    assert hs.shape == (3 * BATCH, 3)
    assert relative_difference(hs.array, expected.array) < TOLERANCE
    for link, y in ((layer, hs), (reference, expected)):
        link.cleargrads()
        F.sum(y * gy.reshape(3 * BATCH, 3)).backward()
    grads = dict(reference.namedparams())
    for name, param in layer.namedparams():
        assert relative_difference(param.grad, grads[name].grad) < TOLERANCE
    for name in names:
        assert relative_difference(getattr(layer, name).array,
                                   getattr(reference, name).array) < TOLERANCE


def test_the_elman_node_knows_only_tanh_and_relu():
    with pytest.raises(ValueError, match='relu'):
        fused.ElmanWindow(3, 'sigmoid')


# The LSTM node as the models use it: the gradient of hs alone (the carried
# states' gradients are None), an input that needs no gradient, and two
# nodes whose forward and backward passes interleave, as two layers do (the
# node reuses its work arrays between calls).

@pytest.mark.parametrize('has_c0, has_h0', [(False, False), (True, True)])
@pytest.mark.parametrize('table', [False, True])
def test_the_lstm_node_has_the_numerical_gradient_of_hs_alone(
        has_c0, has_h0, table):
    n_steps = 3
    x_shape, ids = node_input(n_steps, table)
    shapes = [x_shape, (4 * H, IN), (4 * H,), (4 * H, H)] + \
        [(B, H)] * (has_c0 + has_h0)
    node = fused.LSTMWindow(n_steps, has_c0, has_h0, ids)
    gradient_check.check_backward(
        lambda *xs: node.apply(xs)[0], tuple(random_arrays(0, *shapes)),
        random_arrays(1, (n_steps * B, H))[0], eps=1e-6, atol=1e-7,
        rtol=1e-6)


@pytest.mark.parametrize('has_c0, has_h0', [(False, False), (True, True)])
def test_the_lstm_node_has_the_numerical_gradient_without_that_of_x(
        has_c0, has_h0):
    """x is an array, not a variable: backward is not asked for its
    gradient."""
    n_steps = 3
    x, *params = random_arrays(0, (n_steps * B, IN), (4 * H, IN), (4 * H,),
                               (4 * H, H), *[(B, H)] * (has_c0 + has_h0))
    node = fused.LSTMWindow(n_steps, has_c0, has_h0)
    gradient_check.check_backward(
        lambda *xs: node.apply((x,) + xs), tuple(params),
        tuple(random_arrays(1, (n_steps * B, H), (B, H), (B, H))),
        eps=1e-6, atol=1e-7, rtol=1e-6)


def test_interleaved_lstm_nodes_keep_their_gradients_apart():
    """Two stacked nodes run forward, forward, backward, backward, as two
    layers do, and each one's forward and backward on its own: the same."""
    def gradients(arrays, interleaved):
        variables = [chainer.Variable(a) for a in arrays]
        x, first, second = variables[0], variables[1:4], variables[4:]
        h1 = fused.LSTMWindow(4).apply([x] + first)[0]
        if interleaved:
            h2 = fused.LSTMWindow(4).apply([h1] + second)[0]
            F.sum(h2 * gy).backward()
        else:
            detached = chainer.Variable(h1.array)
            h2 = fused.LSTMWindow(4).apply([detached] + second)[0]
            F.sum(h2 * gy).backward()
            h1.grad = detached.grad
            h1.backward()
        return [v.grad for v in variables]

    gy, *arrays = random_arrays(
        3, (4 * B, H), (4 * B, IN), (4 * H, IN), (4 * H,), (4 * H, H),
        (4 * H, H), (4 * H,), (4 * H, H))
    expected = gradients(arrays, interleaved=False)
    for actual, wanted in zip(gradients(arrays, interleaved=True), expected):
        numpy.testing.assert_array_equal(actual, wanted)
