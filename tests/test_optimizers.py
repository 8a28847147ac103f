import chainer
import numpy
import pytest

from optimizers import FlatAdam

from helpers import make_updater, seeded_model


def train(optimizer_class, steps=4, seed=0, clip=False):
    """A model after `steps` updates with random gradients."""
    model = seeded_model('lstm', seed=seed)
    optimizer = optimizer_class(alpha=0.01)
    optimizer.setup(model)
    if clip:
        optimizer.add_hook(chainer.optimizer_hooks.GradientClipping(0.1))
    rng = numpy.random.RandomState(1)
    for _ in range(steps):
        model.cleargrads()
        for param in model.params():
            param.grad = rng.normal(size=param.shape).astype(param.dtype)
        optimizer.update()
    return model, optimizer


@pytest.mark.parametrize('clip', [False, True])
def test_flat_adam_is_adam_bit_for_bit(clip):
    reference, adam = train(chainer.optimizers.Adam, clip=clip)
    model, flat = train(FlatAdam, clip=clip)
    assert flat.t == adam.t == 4
    expected = dict(reference.namedparams())
    for name, param in model.namedparams():
        numpy.testing.assert_array_equal(param.array, expected[name].array)
        for key in ('m', 'v'):
            numpy.testing.assert_array_equal(
                param.update_rule.state[key],
                expected[name].update_rule.state[key])
        assert param.update_rule.t == expected[name].update_rule.t == 4


@pytest.mark.parametrize('source, target', [
    (chainer.optimizers.Adam, FlatAdam), (FlatAdam, chainer.optimizers.Adam)])
def test_states_move_between_adam_and_flat_adam(source, target):
    model, optimizer = train(source, steps=2)
    saved = chainer.serializers.DictionarySerializer()
    optimizer.serialize(saved)
    params = chainer.serializers.DictionarySerializer()
    model.serialize(params)

    moved_model, moved = train(target, steps=0, seed=1)
    moved_model.serialize(chainer.serializers.NpzDeserializer(params.target))
    moved.serialize(chainer.serializers.NpzDeserializer(saved.target))
    reference, _ = train(chainer.optimizers.Adam, steps=4)
    # Two more updates with the gradients the reference saw third and fourth.
    rng = numpy.random.RandomState(1)
    for step in range(4):
        grads = [rng.normal(size=param.shape).astype(param.dtype)
                 for param in moved_model.params()]
        if step < 2:
            continue
        moved_model.cleargrads()
        for param, grad in zip(moved_model.params(), grads):
            param.grad = grad
        moved.update()
    expected = dict(reference.namedparams())
    for name, param in moved_model.namedparams():
        numpy.testing.assert_array_equal(param.array, expected[name].array)


def test_flat_adam_trains_through_the_updater():
    predictor = seeded_model('rnn')
    updater = make_updater(predictor, optimizer=FlatAdam())
    before = {name: param.array.copy()
              for name, param in predictor.namedparams()}
    updater.update()
    assert all(not numpy.array_equal(param.array, before[name])
               for name, param in predictor.namedparams())


def test_flat_adam_refuses_what_it_does_not_compute():
    model = seeded_model('rnn')
    optimizer = FlatAdam()
    optimizer.setup(model)
    optimizer.hyperparam.weight_decay_rate = 0.1
    for param in model.params():
        param.grad = numpy.zeros_like(param.array)
    with pytest.raises(ValueError, match='plain Adam'):
        optimizer.update()


def replaced_and_updated(optimizer_class):
    """A model updated once, then again with a new l3.b (given an update
    rule, as Adam's set-up gives one) and a new l3.W (given none)."""
    model, optimizer = train(optimizer_class, steps=1)
    for name in ('b', 'W'):
        replacement = chainer.Parameter(getattr(model.l3, name).array + 1)
        delattr(model.l3, name)
        with model.l3.init_scope():
            setattr(model.l3, name, replacement)
    model.l3.b.update_rule = optimizer.create_update_rule()
    model.cleargrads()
    for param in model.params():
        param.grad = numpy.ones_like(param.array)
    optimizer.update()
    return model


def test_flat_adam_takes_replaced_parameters_as_adam_does():
    """Comparing its list of parameters with == raised TypeError."""
    reference = dict(replaced_and_updated(
        chainer.optimizers.Adam).namedparams())
    for name, param in replaced_and_updated(FlatAdam).namedparams():
        numpy.testing.assert_array_equal(param.array, reference[name].array)
    assert not numpy.array_equal(reference['/l3/b'].array,
                                 train(chainer.optimizers.Adam, steps=1)[0]
                                 .l3.b.array + 1)
