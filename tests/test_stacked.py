"""A stack of seeds gives each seed its lone run, bit for bit."""
import types

import chainer
import chainer.functions as F
import numpy
import pytest

import threadpoolctl

import fused
from study import capacity
from study import stacked
from study import sweep
from study.records import ARCH_NAMES
from updaters import fast_training

SEEDS = (0, 1, 2)
# Per architecture: vocabularies, the token cap and eval_every, chosen so
# that some seeds learn within the cap and leave the stack, and some reach
# the cap.
CELLS = {
    'rnn': ((5, 6), 1000, 500),
    'rnn_relu': ((5, 6), 600, 100),
    'lstm': ((3, 4), 3000, 500),
    'lstm1': ((5, 6), 1500, 500),
    'gru': ((5, 6), 1500, 500),
    'lstm_nodropout': ((5, 6), 3000, 500),
    'lstm_onelayer': ((5, 6), 3000, 500),
    'lstm_chainerinit': ((5, 6), 3000, 500),
}


def settings(tokens, eval_every):
    return {'tokens': tokens, 'eval_every': eval_every, 'unit': 100,
            'batchsize': 10, 'alpha': 0.001, 'gradclip': 5.0}


def without_seconds(record):
    return {key: value for key, value in record.items() if key != 'seconds'}


def test_every_study_architecture_is_tested():
    assert set(CELLS) == set(ARCH_NAMES)


def trained(arch, n_vocab, cell_settings):
    """{seed: (record without seconds, parameters)} of the lone runs and of
    the stack of SEEDS, as sweep.run_one and sweep.run_stack train them."""
    def outcome(predictor, run):
        record = dict(capacity.measure(predictor, n_vocab, 10), **run)
        return record, dict((name, param.array.copy())
                            for name, param in predictor.namedparams())

    with threadpoolctl.threadpool_limits(1), fast_training():
        lone = {seed: outcome(*sweep.train_until_learned(
            arch, n_vocab, 3, seed, cell_settings)) for seed in SEEDS}
        stack = {seed: outcome(predictor, run)
                 for seed, predictor, run, _ in stacked.train_until_learned(
                     arch, n_vocab, 3, SEEDS, cell_settings)}
    return lone, stack


@pytest.mark.parametrize('arch', sorted(CELLS))
def test_a_stack_trains_each_seed_as_its_lone_run_bit_for_bit(arch):
    vocabs, tokens, eval_every = CELLS[arch]
    learned = []
    for n_vocab in vocabs:
        lone, stack = trained(arch, n_vocab, settings(tokens, eval_every))
        assert sorted(stack) == list(SEEDS)
        for seed in SEEDS:
            (lone_record, lone_params), (record, params) = \
                lone[seed], stack[seed]
            assert record == lone_record, (n_vocab, seed)
            assert params.keys() == lone_params.keys()
            for name, array in params.items():
                numpy.testing.assert_array_equal(
                    array, lone_params[name],
                    'N={} seed={} {}'.format(n_vocab, seed, name))
            learned.append(record['learned_tokens'] is not None)
    # Seeds that left the stack having learned, and seeds at the cap.
    assert any(learned) and not all(learned)


def test_the_sweep_s_stack_records_are_its_lone_records():
    cell_settings = settings(*CELLS['rnn'][1:])
    records = sweep.run_stack(('rnn', 6, 3, SEEDS, cell_settings))
    assert [record['seed'] for record in records] == [1, 0, 2]
    for record in records:
        lone = sweep.run_one(('rnn', 6, 3, record['seed'], cell_settings))
        assert without_seconds(record) == without_seconds(lone)


def stacked_and_lone(window, inputs):
    """Check that window(*inputs) for a stack of inputs (S, ...) gives each
    seed's outputs and input gradients of window(*seed's inputs) exactly."""
    def run(arrays):
        variables = [chainer.Variable(array) for array in arrays]
        outputs = window(*variables)
        # Any gradient will do: one that depends on the outputs' values.
        loss = sum(F.sum(output * numpy.cos(output.array))
                   for output in outputs)
        loss.backward()
        return ([output.array for output in outputs],
                [variable.grad for variable in variables])

    stack_outputs, stack_grads = run(inputs)
    for seed in range(len(inputs[0])):
        outputs, grads = run([array[seed] for array in inputs])
        for stack_array, array in zip(stack_outputs + stack_grads,
                                      outputs + grads):
            numpy.testing.assert_array_equal(stack_array[seed], array)


def arrays(*shapes, seeds=3):
    generator = numpy.random.RandomState(0)
    return [generator.uniform(-1, 1, (seeds,) + shape).astype(numpy.float32)
            for shape in shapes]


T, B, N_IN, H, N_VOCAB = 4, 3, 5, 6, 7
IDS = numpy.random.RandomState(1).randint(0, N_VOCAB, T * B).astype(
    numpy.int32)


@pytest.mark.parametrize('table', [False, True])
@pytest.mark.parametrize('has_h0', [False, True])
@pytest.mark.parametrize('activation', fused.ACTIVATIONS)
def test_an_elman_window_of_a_stack_is_each_seed_s(table, has_h0,
                                                   activation):
    x, W, b, U, c, h0 = arrays((N_VOCAB if table else T * B, N_IN),
                               (H, N_IN), (H,), (H, H), (H,), (B, H))
    stacked_and_lone(
        lambda x, W, b, U, c, *h0: fused.elman_window(
            x, T, W, b, U, c, *h0, activation=activation,
            ids=IDS if table else None),
        [x, W, b, U, c] + ([h0] if has_h0 else []))


@pytest.mark.parametrize('table', [False, True])
@pytest.mark.parametrize('has_state', [False, True])
def test_an_lstm_window_of_a_stack_is_each_seed_s(table, has_state):
    x, W, b, U, c0, h0 = arrays((N_VOCAB if table else T * B, N_IN),
                                (4 * H, N_IN), (4 * H,), (4 * H, H),
                                (B, H), (B, H))
    stacked_and_lone(
        lambda x, W, b, U, *state: fused.lstm_window(
            x, T, W, b, U, *state, ids=IDS if table else None),
        [x, W, b, U] + ([c0, h0] if has_state else []))


@pytest.mark.parametrize('table', [False, True])
@pytest.mark.parametrize('has_h0', [False, True])
def test_a_gru_window_of_a_stack_is_each_seed_s(table, has_h0):
    x, h0 = arrays((N_VOCAB if table else T * B, N_IN), (B, H))
    weights = arrays(*[shape for name in fused.GRU_LINKS for shape in (
        (H, N_IN if name.startswith('W') else H), (H,))])
    stacked_and_lone(
        lambda x, *rest: fused.gru_window(
            x, T, rest[:12], *rest[12:], ids=IDS if table else None),
        [x] + weights + ([h0] if has_h0 else []))


@pytest.mark.parametrize('one_hot_max_vocab', [fused.ONE_HOT_MAX_VOCAB, 0])
def test_the_embedding_and_the_output_layer_of_a_stack_are_each_seed_s(
        one_hot_max_vocab, monkeypatch):
    # The embedding's gradient by a one-hot product, or by a scatter-add.
    monkeypatch.setattr(fused, 'ONE_HOT_MAX_VOCAB', one_hot_max_vocab)
    W_e, x, W, b = arrays((N_VOCAB, N_IN), (T * B, N_IN), (N_VOCAB, N_IN),
                          (N_VOCAB,))
    stacked_and_lone(lambda W_e: (fused.embed_id(IDS, W_e),), [W_e])
    stacked_and_lone(lambda x, W, b: (fused.linear(x, W, b),), [x, W, b])


def test_a_seed_s_loss_gradient_is_its_lone_one():
    ys, = arrays((T * B, N_VOCAB))
    ys *= 10
    ts = IDS
    stacked_ys = chainer.Variable(ys)
    losses = stacked.SeedSoftmaxCrossEntropy().apply((stacked_ys, ts))[0]
    F.sum(losses * T).backward()
    for seed in range(len(ys)):
        lone = chainer.Variable(ys[seed])
        (F.softmax_cross_entropy(lone, ts) * T).backward()
        numpy.testing.assert_array_equal(stacked_ys.grad[seed], lone.grad)


@pytest.mark.parametrize('scale', [0.1, 10])  # within the threshold, beyond
def test_a_seed_s_gradient_is_clipped_by_its_own_norm(scale):
    grads = arrays((H, N_IN), (H,), (N_VOCAB, H))

    def target(arrays):
        link = chainer.Link()
        with link.init_scope():
            for name, grad in zip('abc', arrays):
                setattr(link, name, chainer.Parameter(numpy.zeros_like(grad)))
                getattr(link, name).grad = grad * scale
        return link

    stack = target(grads)
    stacked.SeedGradientClipping(5.0)(types.SimpleNamespace(target=stack))
    for seed in range(len(grads[0])):
        lone = target([grad[seed] for grad in grads])
        chainer.optimizer_hooks.GradientClipping(5.0)(
            types.SimpleNamespace(target=lone))
        for stacked_param, param in zip(stack.params(), lone.params()):
            numpy.testing.assert_array_equal(stacked_param.grad[seed],
                                             param.grad)
