import contextlib
import os
import platform
import re
import subprocess
import sys

import chainer
import numpy
import pytest

from models import ARCHITECTURES, FUSED_ARCHITECTURES
from updaters import fast_training

from conftest import CHAINER_IS_ARRAYS_COMPATIBLE
from helpers import ROOT, Delayed, make_updater, seeded_model

ARCHS = sorted(ARCHITECTURES)
# Every architecture on the per-step path, and every fused one.
PATHS = [(arch, False) for arch in ARCHS] + [
    (arch, True) for arch in sorted(FUSED_ARCHITECTURES)]


@pytest.mark.parametrize('arch, fused', PATHS)
def test_one_update_consumes_exactly_bprop_len_steps(arch, fused):
    updater = make_updater(seeded_model(arch, fused=fused), bprop_len=4)
    iterator = updater.get_iterator('main')
    updater.update()
    assert iterator.iteration == 4
    updater.update()
    assert iterator.iteration == 8
    assert updater.iteration == 2


@pytest.mark.parametrize('arch, fused', PATHS)
def test_one_update_changes_every_parameter(arch, fused):
    predictor = seeded_model(arch, fused=fused)
    before = {name: param.array.copy()
              for name, param in predictor.namedparams()}
    make_updater(predictor).update()
    unchanged = [name for name, param in predictor.namedparams()
                 if numpy.array_equal(param.array, before[name])]
    assert unchanged == []


@pytest.mark.parametrize('arch, fused', PATHS + [('delayed', False)])
def test_no_state_keeps_a_graph_after_an_update(arch, fused):
    predictor = (Delayed(5, 8) if arch == 'delayed' else
                 seeded_model(arch, fused=fused))
    updater = make_updater(predictor)
    for _ in range(2):
        updater.update()
        held = predictor.states()
        assert held and all(state is not None for state in held)
        assert [state.creator for state in held] == [None] * len(held)


def test_the_graph_of_one_whole_window_is_written_once():
    graphs = []
    updater = make_updater(seeded_model('rnn'), bprop_len=4,
                           write_graph=graphs.append)
    updater.update()
    updater.update()
    assert len(graphs) == 1
    # One tanh per step: the whole window, not just what is left after
    # the graph is cut.
    assert graphs[0].dump().count('label="Tanh"') == 4


def test_the_fused_graph_names_our_nodes():
    graphs = []
    # In training the LSTM embeds the words (for dropout): every kind shows.
    make_updater(seeded_model('lstm', fused=True), bprop_len=4,
                 write_graph=graphs.append).update()
    labels = set(re.findall(r'label="(\w+)"', graphs[0].dump()))
    assert {'WindowEmbedID', 'LSTMWindow', 'WindowLinear'} <= labels
    # Chainer's own nodes of these names would be indistinguishable.
    assert not labels & {'EmbedIDFunction', 'LinearFunction'}


def test_the_random_state_is_saved_with_the_updater():
    updater = make_updater(seeded_model('lstm'))
    updater.update()  # Adam's state exists from the first update on
    numpy.random.seed(7)
    serializer = chainer.serializers.DictionarySerializer()
    updater.serialize(serializer)
    expected = numpy.random.uniform(size=5)
    updater.serialize(chainer.serializers.NpzDeserializer(serializer.target))
    numpy.testing.assert_array_equal(numpy.random.uniform(size=5), expected)


def test_bprop_len_must_be_positive():
    with pytest.raises(ValueError, match='bprop_len'):
        make_updater(seeded_model('rnn'), bprop_len=0)


def test_the_optimizer_counts_every_epoch():
    updater = make_updater(seeded_model('rnn'), batch_size=3, bprop_len=7)
    iterator, optimizer = updater.get_iterator('main'), \
        updater.get_optimizer('main')
    while iterator.epoch < 3:  # epochs end inside windows, not at their end
        updater.update()
        assert optimizer.epoch == iterator.epoch


def trained_parameters(arch, fused, training):
    predictor = seeded_model(arch, fused=fused)
    updater = make_updater(predictor)
    with training():
        for _ in range(3):
            updater.update()
    return {name: param.array for name, param in predictor.namedparams()}


@pytest.mark.parametrize('arch, fused', [('lstm', False), ('lstm', True),
                                         ('gru', False)])
def test_fast_training_changes_no_bit_of_training(arch, fused):
    @contextlib.contextmanager
    def checked_training():
        with chainer.using_config('type_check', False), \
                chainer.using_config('lazy_grad_sum', True):
            assert chainer.is_arrays_compatible is CHAINER_IS_ARRAYS_COMPATIBLE
            yield

    fast = trained_parameters(arch, fused, fast_training)
    reference = trained_parameters(arch, fused, checked_training)
    assert fast.keys() == reference.keys()
    for name in reference:
        numpy.testing.assert_array_equal(fast[name], reference[name])


class WrongGradient(chainer.FunctionNode):
    """Returns a float64 gradient of another shape for its float32 input."""

    def forward(self, inputs):
        return inputs[0].sum(keepdims=True).reshape(()),

    def backward(self, indexes, grad_outputs):
        return chainer.Variable(numpy.ones((1, 3))),


def test_fast_training_skips_the_device_check_but_checks_gradients():
    x = chainer.Variable(numpy.ones((4, 3), numpy.float32))
    with fast_training():
        assert chainer.is_arrays_compatible is not \
            CHAINER_IS_ARRAYS_COMPATIBLE
        y, = WrongGradient().apply((x,))
        with pytest.raises(TypeError, match='Dtype of data and grad'):
            y.backward()


def test_fast_training_puts_chainers_check_back_however_it_ends():
    with pytest.raises(KeyError):
        with fast_training():
            raise KeyError
    assert chainer.is_arrays_compatible is CHAINER_IS_ARRAYS_COMPATIBLE
    first, second = fast_training(), fast_training()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # out of order: second still runs
    assert chainer.is_arrays_compatible is not CHAINER_IS_ARRAYS_COMPATIBLE
    second.__exit__(None, None, None)
    assert chainer.is_arrays_compatible is CHAINER_IS_ARRAYS_COMPATIBLE


@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='not glibc')
def test_training_keeps_freed_memory_for_the_next_window():
    """Windows of twenty 200 KB arrays: glibc gives their memory back to
    the kernel, and each window faults in fresh pages; kept, it does not."""
    code = (
        'import resource, sys, numpy, updaters\n'
        'if sys.argv[1] == "training":\n'
        '    with updaters.fast_training():\n'
        '        pass\n'
        'def window():\n'
        '    arrays = [numpy.ones(50_000, numpy.float32) for _ in range(20)]\n'
        'window()\n'
        'before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n'
        'for _ in range(10):\n'
        '    window()\n'
        'print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n')
    # glibc's defaults, whatever this environment tunes.
    env = {key: value for key, value in os.environ.items()
           if not key.startswith('MALLOC_') and key != 'GLIBC_TUNABLES'}
    faults = {how: int(subprocess.run(
        [sys.executable, '-c', code, how], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True).stdout)
        for how in ('training', 'default')}
    assert faults['default'] > 2000
    assert faults['training'] < 20
