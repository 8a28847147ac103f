import ast
import json
import os
import re
import subprocess
import sys

import chainer
import numpy
import pytest

from models import ARCHITECTURES, FUSED_ARCHITECTURES, build_model, generate
import predict_rnn
from simple_sequence import get_simple_sequence
import snapshots
import train_rnn
import training_extensions

from helpers import (ROOT, Counter, RuleOracle, load_npz, run_into_closed_pipe,
                     run_with_stdout, write_npz)

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
        '.chainerui_commands', '.train_rnn', 'accuracy.png', 'args',
        'args.json', 'cg.dot', 'log',
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
                        'fused': fused, 'epoch': 1, 'processes': 1,
                        'keep_snapshots': 2}


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


def printed_sequence(line):
    """The numbers of the tutorial's 'Predicted sequence: [...]' line."""
    assert line.startswith('Predicted sequence: [')
    return ast.literal_eval(line[len('Predicted sequence: '):])


def test_predict_reports_on_the_default_run(default_run, capsys):
    out, _ = default_run
    assert predict_rnn.main(['-o', out, '-p', '3', '-l', '60']) == 0
    lines = capsys.readouterr().out.splitlines()
    path = os.path.join(out, 'rnn_simple_sequence.model')
    assert lines[0] == ('Loaded {}: rnn, 100 units, vocabulary 10, trained '
                        '10 epochs.'.format(path))
    predictor = build_model('rnn', 10, 100)
    load_npz(path, predictor)
    generated = generate(predictor, 3, 60).tolist()
    assert printed_sequence(lines[1]) == [3] + generated
    # From a reset state the prime 3 is the 1st, 2nd or 3rd of its block:
    # 3 3 3 | 4 4 4 4 | 5 ... of the sequence 1 2 2 3 3 3 4 ...
    sequence = get_simple_sequence(10, 2).tolist()
    matches = [sum(a == b for a, b in zip(generated, sequence[4 + k:64 + k]))
               for k in range(3)]
    best = matches.index(max(matches))
    assert lines[2].startswith(
        '{} of 60 generated words match the true sequence, taking the prime '
        '3 as the {} of its block; '.format(
            max(matches), ['1st', '2nd', '3rd'][best]))
    assert lines[3].startswith('Block by block, whatever the phase: counted ')


def predict_with(predictor, argv, tmp_path, monkeypatch, capsys):
    """predict_rnn's output lines, predictor standing in for the model."""
    path = str(tmp_path / 'tutorial.model')
    chainer.serializers.save_npz(path, build_model('rnn', 5, 4))
    monkeypatch.setattr(predict_rnn, 'load_model',
                        lambda *args: predictor)
    assert predict_rnn.main(['-m', path] + argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'Loaded {}: rnn, 4 units, vocabulary 5.'.format(path)
    return lines[1:]


def test_predict_scores_against_the_phase_that_fits(tmp_path, monkeypatch,
                                                    capsys):
    lines = predict_with(Counter(5, first_seen=2), ['-p', '3', '-l', '12'],
                         tmp_path, monkeypatch, capsys)
    assert lines == [
        'Predicted sequence: [3, 3, 4, 4, 4, 4, 1, 2, 2, 3, 3, 3, 4]',
        '12 of 12 generated words match the true sequence, taking the prime '
        '3 as the 2nd of its block; no mistake.',
        'Block by block, whatever the phase: counted 4 of 4 blocks right.']


def test_predict_says_when_a_model_settles_in_late(tmp_path, monkeypatch,
                                                   capsys):
    lines = predict_with(Counter(5, first_seen=-1), ['-p', '2', '-n', '12'],
                         tmp_path, monkeypatch, capsys)
    assert lines == [
        'Predicted sequence: [2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 1, 2]',
        '4 of 12 generated words match the true sequence, taking the prime '
        '2 as the 1st of its block; first mistake at word 2: expected 3, '
        'got 2.',
        'Block by block, whatever the phase: counted 3 of 3 blocks right.',
        'Every complete block is counted right, but the first block holds 4 '
        'copies of the prime 2 where a block of 2s holds 2: the model '
        'settled in late, out of phase with every truth that the prime '
        'allows.']


def test_predict_counts_blocks_of_a_model_that_never_repeats(
        tmp_path, monkeypatch, capsys):
    successor = RuleOracle(5, lambda x: x % 4 + 1)
    lines = predict_with(successor, ['--prime', '1', '--length', '8'],
                         tmp_path, monkeypatch, capsys)
    assert lines == [
        'Predicted sequence: [1, 2, 3, 4, 1, 2, 3, 4, 1]',
        '2 of 8 generated words match the true sequence, taking the prime '
        '1 as the 1st of its block; first mistake at word 2: expected 2, '
        'got 3.',
        # Only the block of 1 is as long as its number.
        'Block by block, whatever the phase: counted 1 of 7 blocks right.']


def saved_with_run_args(path, arch, n_units, n_vocab, **run_args):
    """A model file as train_rnn.py writes it: parameters and run_args."""
    numpy.random.seed(0)
    predictor = build_model(arch, n_vocab, n_units)
    arrays = snapshots.serialized(predictor)
    args = train_rnn.build_parser().parse_args(
        ['-a', arch, '-u', str(n_units), '--vocab', str(n_vocab), '-e', '3',
         '-b', '2', '-l', '5'])
    recorded = {name: value for name, value in vars(args).items()
                if name in train_rnn.RECORDED}
    arrays[snapshots.RUN_ARGS_KEY] = numpy.array(json.dumps(dict(
        recorded, processes=1, **run_args)))
    write_npz(path, arrays)
    return predictor


def test_a_model_of_more_epochs_than_a_snapshot_logs_still_loads(tmp_path,
                                                                 capsys):
    """The bound on the epochs of a log is a training run's, not a model's."""
    path = str(tmp_path / 'long.model')
    epochs = snapshots.MAX_LOGGED_EPOCHS + 1
    saved_with_run_args(path, 'rnn', 6, 5, epoch=epochs)
    assert predict_rnn.main(['-m', path, '-p', '2', '-l', '3']) == 0
    assert 'trained {} epochs'.format(epochs) in capsys.readouterr().out


def test_predict_builds_the_model_that_a_file_records(tmp_path, capsys):
    path = str(tmp_path / 'some.model')
    predictor = saved_with_run_args(path, 'gru', 6, 5)
    assert predict_rnn.main(['-m', path, '-p', '2', '-l', '9']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ('Loaded {}: gru, 6 units, vocabulary 5, trained 3 '
                        'epochs.'.format(path))
    assert printed_sequence(lines[1]) == \
        [2] + generate(predictor, 2, 9).tolist()


def test_predict_generates_the_tutorials_100_words_by_default(
        tmp_path, capsys):
    path = str(tmp_path / 'some.model')
    predictor = saved_with_run_args(path, 'rnn', 6, 5)
    assert predict_rnn.main(['-m', path]) == 0
    printed = printed_sequence(capsys.readouterr().out.splitlines()[1])
    assert printed == [1] + generate(predictor, 1, 100).tolist()


@pytest.mark.parametrize('arch', ['rnn2', 'lstm'])
def test_predict_reads_a_stock_chainer_file_with_the_flags(arch, tmp_path,
                                                           capsys):
    numpy.random.seed(1)
    predictor = build_model(arch, 10, 7)
    path = str(tmp_path / 'tutorial.model')
    chainer.serializers.save_npz(path, predictor)
    assert predict_rnn.main(['-m', path, '-a', arch, '-l', '20']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'Loaded {}: {}, 7 units, vocabulary 10.'.format(
        path, arch)
    assert printed_sequence(lines[1]) == \
        [1] + generate(predictor, 1, 20).tolist()


def test_predict_picks_one_of_several_models_in_a_folder(tmp_path, capsys):
    for arch in ('rnn', 'lstm'):
        saved_with_run_args(train_rnn.model_path(str(tmp_path), arch), arch,
                            4, 5)
    assert predict_rnn.main(['-o', str(tmp_path), '-a', 'lstm', '-l', '3']) \
        == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        'Loaded {}: lstm, 4 units, vocabulary 5, trained 3 epochs.'.format(
            train_rnn.model_path(str(tmp_path), 'lstm')))


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
        drawn.append((self.file_name, trainer.updater.iteration))
        draw(self, trainer)

    monkeypatch.setattr(training_extensions.LogPlotReport, '__call__',
                        counting)
    assert train_rnn.main(['-o', str(tmp_path), '-e', '2'] + SMALL[2:]) == 0
    assert sorted(drawn) == [('accuracy.png', 100), ('accuracy.png', 200),
                             ('loss.png', 100), ('loss.png', 200)]


def test_chainer_imports_in_any_script_of_the_environment(tmp_path):
    """On Python 3.12 too, where numpy 1.26 has no numpy.distutils."""
    env = {key: value for key, value in os.environ.items()
           if key != 'PYTHONPATH'}
    completed = subprocess.run(
        [sys.executable, '-c', 'import chainer; print(chainer.__version__)'],
        cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == '7.8.1\n'


def test_a_model_that_counts_out_of_phase_is_told_so():
    # An LSTM's first period from a reset state: blocks too short, then
    # every block right one word early.
    generated = numpy.array([4, 4, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 7, 8, 8,
                             8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 1, 2, 2, 3, 3,
                             3, 4, 4, 4, 4], numpy.int32)
    lines = predict_rnn.report(1, generated, 10)
    assert lines[0].startswith('0 of 37 generated words match')
    assert lines[1] == ('Block by block, whatever the phase: counted 3 of 9 '
                        'blocks right.')
    assert lines[2].startswith('It counts blocks better than it places '
                               'words: from a reset state')


def test_the_graph_is_readable_and_drawn_where_graphviz_is(tmp_path,
                                                           monkeypatch):
    bin_folder = tmp_path / 'bin'
    bin_folder.mkdir()
    fake_dot = bin_folder / 'dot'  # Graphviz's dot, as far as we use it
    fake_dot.write_text('#!/bin/sh\ncat > "$0.input"\n'
                        'printf "\\211PNG\\r\\n\\032\\n"\n')
    fake_dot.chmod(0o755)
    monkeypatch.setenv('PATH', '{}:{}'.format(bin_folder,
                                              os.environ['PATH']))
    out = tmp_path / 'out'
    assert train_rnn.main(['-o', str(out)] + SMALL) == 0
    dot = (out / 'cg.dot').read_text()
    assert (bin_folder / 'dot.input').read_text() == dot
    lines = dot.splitlines()
    assert lines[0] == 'digraph graphname{' and lines[-1] == '}'
    assert all(line.endswith(';') for line in lines[1:-1])
    assert len(lines) > 20
    assert (out / 'cg.png').read_bytes() == b'\x89PNG\r\n\x1a\n'


def test_closed_output_is_dropped_quietly_and_the_files_written(tmp_path):
    out = str(tmp_path / 'out')
    trained = run_with_stdout(['train_rnn.py', '-o', out] + SMALL, 'closed')
    assert (trained.returncode, trained.stderr) == (0, '')
    assert len(read_log(out)) == 1
    predicted = run_with_stdout(['predict_rnn.py', '-o', out], 'closed')
    assert (predicted.returncode, predicted.stderr) == (0, '')


def test_output_to_a_full_device_fails_once_the_files_are_written(tmp_path):
    """The run's files are written all the same; the lost lines, predict_rnn
    .py's result among them, are not success."""
    out = str(tmp_path / 'out')
    trained = run_with_stdout(['train_rnn.py', '-o', out] + SMALL, 'full')
    assert (trained.returncode, trained.stderr) == (1, (
        'train_rnn.py: error: writing to stdout failed: No space left on '
        'device\n'))
    assert len(read_log(out)) == 1
    assert os.path.exists(train_rnn.model_path(out, 'rnn'))
    predicted = run_with_stdout(['predict_rnn.py', '-o', out], 'full')
    assert (predicted.returncode, predicted.stderr) == (1, (
        'predict_rnn.py: error: writing to stdout failed: No space left on '
        'device\n'))


def test_output_to_a_closed_pipe_is_dropped_and_the_files_written(tmp_path):
    out = str(tmp_path / 'out')
    trained = run_into_closed_pipe(['train_rnn.py', '-o', out] + SMALL)
    assert (trained.returncode, trained.stderr) == (0, '')
    assert len(read_log(out)) == 1
    assert os.path.exists(train_rnn.model_path(out, 'rnn'))
    predicted = run_into_closed_pipe(['predict_rnn.py', '-o', out])
    assert (predicted.returncode, predicted.stderr) == (0, '')


def test_the_longest_log_entry_fits_the_bound_of_the_snapshot_reader():
    """train_rnn.py bounds --epoch by LOG_ENTRY_CHARS: no run may log more
    than a snapshot's log may hold."""
    longest = dict.fromkeys(LOG_KEYS, -1.2345678901234567e-308)
    longest.update(epoch=train_rnn.MAX_COUNTER,
                   iteration=train_rnn.MAX_COUNTER)
    # An entry and the separator between entries of the log's list.
    assert len(json.dumps(longest)) + len(', ') <= snapshots.LOG_ENTRY_CHARS


@pytest.mark.parametrize('argv, name', [
    (['train_rnn.py', '-h'], 'train_rnn.py'),
    (['-m', 'study.capacity_report', '-h'], 'python -m study.capacity_report'),
])
def test_help_to_a_full_device_fails(argv, name):
    # argparse drops a failed write: the lost help exited 0.
    completed = run_with_stdout(argv, 'full')
    assert (completed.returncode, completed.stderr) == (1, (
        '{}: error: writing to stdout failed: No space left on device\n'
        .format(name)))
