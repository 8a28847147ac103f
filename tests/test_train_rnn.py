import json
import os
import re
import subprocess
import sys

import numpy
import pytest

from models import ARCHITECTURES, FUSED_ARCHITECTURES, generate
import predict_rnn
import train_rnn
import training_extensions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ['-e', '1', '-u', '8', '--vocab', '5', '-b', '2', '-l', '5']
LOG_KEYS = {'epoch', 'iteration', 'elapsed_time', 'main/loss',
            'main/accuracy', 'main/boundary_accuracy', 'validation/main/loss',
            'validation/main/accuracy', 'validation/main/boundary_accuracy'}


def read_log(out):
    with open(os.path.join(out, 'log')) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def default_run(tmp_path_factory):
    """The README's main job: `python train_rnn.py -a rnn`, in a fresh cwd."""
    cwd = tmp_path_factory.mktemp('default')
    completed = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'train_rnn.py'), '-a', 'rnn'],
        cwd=cwd, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    return str(cwd / 'result'), completed.stdout


@pytest.mark.parametrize('arch, fused', [
    (arch, False) for arch in sorted(ARCHITECTURES)] + [
    (arch, True) for arch in sorted(FUSED_ARCHITECTURES)])
def test_a_short_run_writes_every_file(arch, fused, tmp_path):
    out = str(tmp_path / 'out')
    flags = ['--fused'] if fused else []
    assert train_rnn.main(['-a', arch, '-o', out] + SMALL + flags) == 0
    # 1000 words / 2 streams / 5 steps = 100 updates in the epoch.
    assert sorted(os.listdir(out)) == sorted([
        '.train_rnn', 'accuracy.png', 'args.json', 'cg.dot', 'log',
        'loss.png',
        'snapshot_iter_100', '{}_simple_sequence.model'.format(arch)])
    log = read_log(out)
    assert len(log) == 1
    assert set(log[0]) == LOG_KEYS
    assert log[0]['iteration'] == 100
    with open(os.path.join(out, 'args.json')) as f:
        recorded = json.load(f)
    assert recorded == {'arch': arch, 'unit': 8, 'vocab': 5, 'batchsize': 2,
                        'bproplen': 5, 'seed': 0, 'gradclip': None,
                        'fused': fused, 'epoch': 1, 'processes': 1}


def test_a_run_is_deterministic_for_its_seed(tmp_path):
    def losses(name, seed):
        out = str(tmp_path / name)
        args = ['-a', 'lstm', '-o', out, '--seed', str(seed)] + SMALL
        assert train_rnn.main(args) == 0
        return [(entry['main/loss'], entry['validation/main/loss'])
                for entry in read_log(out)]

    first = losses('a', 0)
    assert losses('b', 0) == first
    assert losses('c', 1) != first


def test_the_default_run_learns_to_count(default_run):
    out, stdout = default_run
    log = read_log(out)
    assert [entry['epoch'] for entry in log] == list(range(1, 11))
    assert log[-1]['iteration'] == 225
    final = log[-1]
    # Copying the input scores 0.80 overall and 0 on boundaries; always
    # predicting the successor scores 0.20 overall and 1 on boundaries.
    assert final['validation/main/accuracy'] >= 0.95
    assert final['validation/main/boundary_accuracy'] >= 0.5
    assert final['validation/main/loss'] < log[0]['validation/main/loss']
    assert 'validation/main/boundary_accuracy' in stdout
    assert 'predict_rnn.py -o result' in stdout
    for name in ('loss.png', 'accuracy.png'):
        with open(os.path.join(out, name), 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_predict_reports_matches_and_the_first_mistake(default_run, capsys):
    out, _ = default_run
    assert predict_rnn.main(['-o', out, '-p', '3', '-n', '60']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'prime:     3'
    generated = numpy.array(lines[1].split()[1:], numpy.int32)
    truth = numpy.array(lines[2].split()[1:], numpy.int32)
    predictor, _ = predict_rnn.load_model(out, train_rnn.select_device(-1))
    numpy.testing.assert_array_equal(generated, generate(predictor, 3, 60))
    assert truth[:8].tolist() == [3, 3, 4, 4, 4, 4, 5, 5]
    assert len(truth) == 60
    matches = int((generated == truth).sum())
    mistake = predict_rnn.first_mistake(generated, truth)
    if mistake is None:
        expected = 'no mistake'
    else:
        expected = 'first mistake at word {}: expected {}, got {}'.format(
            mistake + 1, truth[mistake], generated[mistake])
    assert lines[3] == ('{} of 60 generated words match the true sequence; '
                        '{}.'.format(matches, expected))


def test_first_mistake():
    assert predict_rnn.first_mistake(numpy.array([1, 2, 3]),
                                     numpy.array([1, 2, 3])) is None
    assert predict_rnn.first_mistake(numpy.array([1, 5, 3, 0]),
                                     numpy.array([1, 2, 3, 4])) == 1


def test_help_explains_every_flag():
    completed = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'train_rnn.py'), '--help'],
        capture_output=True, text=True)
    assert completed.returncode == 0
    for flag in ('--arch', '--unit', '--bproplen', '--batchsize', '--epoch',
                 '--gpu', '--out', '--resume', '--vocab', '--seed',
                 '--gradclip', '--fused', '--communicator', '--overwrite'):
        assert re.search(r'^\s+(-\w, )?{}\b'.format(flag), completed.stdout,
                         re.MULTILINE), flag


def test_the_plots_are_drawn_once_an_epoch(tmp_path, monkeypatch):
    drawn = []
    draw = training_extensions.LogPlotReport.__call__

    def counting(self, trainer):
        drawn.append((self._file_name, trainer.updater.iteration))
        draw(self, trainer)

    monkeypatch.setattr(training_extensions.LogPlotReport, '__call__',
                        counting)
    assert train_rnn.main(['-o', str(tmp_path), '-e', '2'] + SMALL[2:]) == 0
    assert sorted(drawn) == [('accuracy.png', 100), ('accuracy.png', 200),
                             ('loss.png', 100), ('loss.png', 200)]
