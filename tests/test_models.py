import chainer
import numpy
import pytest

from iterators import ParallelSequentialIterator, next_window
from models import ARCHITECTURES, SequenceClassifier, generate
import simple_sequence

from helpers import CPU, RuleOracle, load_npz, save_npz, seeded_model

ARCHS = sorted(ARCHITECTURES)


def steps(predictor, words):
    """Logits of each step, in test mode (no dropout), without a graph."""
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        return [predictor(numpy.asarray(x, numpy.int32)).array for x in words]


WORDS = [[1, 2, 3], [2, 2, 4], [2, 3, 4], [3, 3, 1]]


@pytest.mark.parametrize('arch', ARCHS)
def test_one_step_gives_logits_for_each_stream(arch):
    predictor = seeded_model(arch)
    y = predictor(numpy.array([1, 2, 3], numpy.int32))
    assert y.shape == (3, 5)
    assert y.dtype == numpy.float32


@pytest.mark.parametrize('arch', ARCHS)
def test_the_state_carries_over_and_reset_state_clears_it(arch):
    predictor = seeded_model(arch)
    first = steps(predictor, WORDS)
    again = steps(predictor, WORDS)
    assert not numpy.allclose(first[0], again[0])  # the state carried over
    predictor.reset_state()
    numpy.testing.assert_array_equal(steps(predictor, WORDS), first)


@pytest.mark.parametrize('arch', ARCHS)
def test_construction_is_deterministic_for_a_seed(arch):
    same = [dict(seeded_model(arch, seed=3).namedparams()) for _ in range(2)]
    other = dict(seeded_model(arch, seed=4).namedparams())
    for name, param in same[0].items():
        numpy.testing.assert_array_equal(param.array, same[1][name].array)
    assert any(not numpy.array_equal(param.array, other[name].array)
               for name, param in same[0].items())


@pytest.mark.parametrize('arch', ARCHS)
def test_a_saved_model_continues_from_the_same_state(arch, tmp_path):
    predictor = seeded_model(arch)
    steps(predictor, WORDS[:2])
    save_npz(str(tmp_path / 'model'), predictor)
    restored = seeded_model(arch, seed=1)
    load_npz(str(tmp_path / 'model'), restored)
    numpy.testing.assert_array_equal(
        steps(restored, WORDS[2:]), steps(predictor, WORDS[2:]))


@pytest.mark.parametrize('arch', ARCHS)
def test_a_model_saved_without_state_loads_without_state(arch, tmp_path):
    predictor = seeded_model(arch)
    save_npz(str(tmp_path / 'model'), predictor)
    restored = seeded_model(arch, seed=1)
    steps(restored, WORDS[:1])
    load_npz(str(tmp_path / 'model'), restored)
    numpy.testing.assert_array_equal(steps(restored, WORDS),
                                     steps(predictor, WORDS))


def report_of(predictor, n_vocab=10):
    """What SequenceClassifier reports over one pass of the sequence."""
    classifier = SequenceClassifier(predictor)
    iterator = ParallelSequentialIterator(
        simple_sequence.get_simple_sequence(n_vocab), 10, repeat=False)
    xs, ts = next_window(iterator, 450, CPU)  # every word once
    reporter = chainer.Reporter()
    reporter.add_observer('main', classifier)
    observation = {}
    with reporter.scope(observation):
        loss = classifier(xs, ts)
    return loss, {key: (float(value), int(weight))
                  for key, (value, weight) in observation.items()}


def test_a_model_that_copies_its_input_never_counts():
    loss, report = report_of(RuleOracle(10, lambda x: x))
    assert report['main/accuracy'] == (pytest.approx(0.8), 4500)
    assert report['main/boundary_accuracy'] == (0.0, 900)
    # The summed per-step loss: 450 steps of mean loss report['main/loss'].
    assert float(loss.array) == pytest.approx(450 * report['main/loss'][0])


def test_a_model_that_predicts_the_successor_only_gets_boundaries():
    _, report = report_of(RuleOracle(10, lambda x: x % 9 + 1))
    assert report['main/accuracy'] == (pytest.approx(0.2), 4500)
    assert report['main/boundary_accuracy'] == (1.0, 900)


def test_generate_feeds_each_prediction_back():
    successor = RuleOracle(5, lambda x: x % 4 + 1)
    generated = generate(successor, 2, 6)
    assert generated.dtype == numpy.int32
    assert generated.tolist() == [3, 4, 1, 2, 3, 4]


def test_the_one_layer_lstm_starts_with_forget_gate_bias_one():
    lstm = seeded_model('lstm1').l1
    # Chainer interleaves the gates' biases: (units, 4) as a, i, f, o.
    gates = lstm.upward.b.array.reshape(-1, 4)
    numpy.testing.assert_array_equal(gates[:, 2], 1)
    numpy.testing.assert_array_equal(gates[:, [0, 1, 3]], 0)
    assert lstm.lateral.b is None


def lstm_variant(**options):
    numpy.random.seed(0)
    return ARCHITECTURES['lstm'](5, 4, fused=True, **options)


def test_each_lstm_option_undoes_one_choice_of_the_ptb_network():
    default, one_layer, chainer_init = (
        lstm_variant(), lstm_variant(n_layers=1),
        lstm_variant(uniform_init=False))
    assert default.state_names == ('l1/c', 'l1/h', 'l2/c', 'l2/h')
    assert one_layer.state_names == ('l1/c', 'l1/h')
    assert sorted(name for name, _ in one_layer.namedparams()) == [
        '/embed/W', '/l1/lateral/W', '/l1/upward/W', '/l1/upward/b',
        '/l3/W', '/l3/b']
    assert all(abs(param.array).max() <= 0.1 for param in default.params())
    # Chainer's LSTM: per unit, gates a, i, f, o; the forget gate's bias
    # is 1.
    bias = chainer_init.l1.upward.b.array.reshape(4, 4)
    numpy.testing.assert_array_equal(bias[:, 2], 1)
    numpy.testing.assert_array_equal(bias[:, [0, 1, 3]], 0)


def test_an_lstm_without_dropout_draws_no_masks_and_trains_as_in_test_mode():
    model = lstm_variant(dropout=0)
    xs = numpy.array(WORDS, numpy.int32)
    state = numpy.random.get_state()
    trained = model.forward_window(xs).array
    assert numpy.random.get_state()[2] == state[2]
    assert (numpy.random.get_state()[1] == state[1]).all()
    model.reset_state()
    with chainer.using_config('train', False):
        numpy.testing.assert_array_equal(model.forward_window(xs).array,
                                         trained)
