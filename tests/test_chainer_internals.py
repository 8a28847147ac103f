"""Each private part of Chainer that chainer_internals.py reaches still does
what the package relies on; a failure names the one that moved."""
import io

import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest

import chainer_internals


def device_check_is_looked_up_at_every_call():
    calls = []

    def counting(arrays):
        calls.append(len(arrays))
        return chainer_internals.CHAINER_DEVICE_CHECK(arrays)

    chainer_internals.set_device_check(counting)
    try:
        F.tanh(chainer.Variable(numpy.zeros((2, 3), numpy.float32)))
    finally:
        chainer_internals.set_device_check(
            chainer_internals.CHAINER_DEVICE_CHECK)
    assert calls, 'FunctionNode.apply no longer calls ' \
        'chainer.is_arrays_compatible through the module'


def adam_on_a_linear():
    link = L.Linear(3, 2)
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(link)
    return link, optimizer


def loss_scale_is_the_optimizers():
    _, optimizer = adam_on_a_linear()
    assert chainer_internals.loss_scale(optimizer) is None
    optimizer.set_loss_scale(8.0)
    assert chainer_internals.loss_scale(optimizer) == 8.0


def update_rules_tell_their_hooks():
    link, _ = adam_on_a_linear()
    rule = link.W.update_rule
    assert not chainer_internals.has_update_hooks(rule)
    rule.add_hook(lambda rule, param: None, name='pre', timing='pre')
    assert chainer_internals.has_update_hooks(rule)
    rule.remove_hook('pre')
    rule.add_hook(lambda rule, param: None, name='post', timing='post')
    assert chainer_internals.has_update_hooks(rule)


def init_states_creates_adams_state():
    link, _ = adam_on_a_linear()
    rule = link.W.update_rule
    chainer_internals.init_states(rule, link.W)
    assert sorted(rule.state) == ['m', 'v']
    assert rule.state['m'].shape == link.W.shape


def a_trainers_clock_starts_and_stops():
    _, optimizer = adam_on_a_linear()
    iterator = chainer.iterators.SerialIterator([numpy.zeros(3)], 1)
    trainer = chainer.training.Trainer(
        chainer.training.updaters.StandardUpdater(iterator, optimizer))
    with chainer_internals.trainer_clock_started(trainer):
        assert isinstance(trainer.elapsed_time, float)
    with pytest.raises(RuntimeError, match='not been started'):
        trainer.elapsed_time


def a_progress_bar_draws_to_its_out():
    out = io.StringIO()
    bar = chainer_internals.progress_bar_printing_to(
        chainer.training.extensions.ProgressBar(), out)
    bar.finalize()  # erases the bar, with the erase-line code
    assert out.getvalue() == '\033[J'


CHECKS = {
    'chainer.is_arrays_compatible, looked up at every call':
        device_check_is_looked_up_at_every_call,
    'Optimizer._loss_scale': loss_scale_is_the_optimizers,
    'UpdateRule._hookable._pre_update_hooks and _post_update_hooks':
        update_rules_tell_their_hooks,
    'UpdateRule._init_states': init_states_creates_adams_state,
    'Trainer._start_at': a_trainers_clock_starts_and_stops,
    'ProgressBar._pbar._out': a_progress_bar_draws_to_its_out,
}


def test_every_internal_has_its_check():
    assert sorted(CHECKS) == sorted(chainer_internals.NAMES)


@pytest.mark.parametrize('name', sorted(CHECKS))
def test_chainer_still_has(name):
    try:
        CHECKS[name]()
    except Exception as error:
        pytest.fail('Chainer {} moved the private {} that chainer_internals'
                    '.py relies on: {!r}'.format(chainer.__version__, name,
                                                 error))
