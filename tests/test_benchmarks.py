"""The benchmark's own pieces train and score what they say (tiny runs, no
timing asserted)."""
import json
import subprocess
import sys

import chainer
import numpy
import pytest

from benchmarks import gpu_check, ours
import models
import snapshots
import train_rnn

from helpers import ROOT

TINY = ['-e', '1', '-u', '5', '-b', '5', '-l', '5']
# One epoch of TINY: the 4,500 words of the sequence, 900 of them followed
# by another number.
EPOCH_WORDS, EPOCH_BOUNDARIES = 4500, 900


def result_of(module, *argv):
    completed = subprocess.run(
        [sys.executable, '-m', module] + list(argv), cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


@pytest.mark.parametrize('argv', [[], ['--fused']])
def test_our_update_loop_trains_what_train_rnn_trains(argv, tmp_path):
    """One epoch timed and scored, two more timed apart: every word of each
    epoch once, the scores of train_rnn.py's first epoch and, at the end,
    the weights of its third, bit for bit."""
    args = ours.build_parser().parse_args(
        TINY + argv + ['--steady-epochs', '2'])
    run = train_rnn.setup_training(args)
    result = ours.measure(args, run)
    assert result['tokens'] == EPOCH_WORDS
    assert result['steady_tokens'] == 2 * EPOCH_WORDS
    assert train_rnn.main(TINY[2:] + argv + ['-e', '3',
                                             '-o', str(tmp_path)]) == 0
    with open(str(tmp_path / 'log')) as f:
        logged = json.load(f)[0]
    assert result['accuracy'] == logged['validation/main/accuracy']
    assert result['boundary_accuracy'] == \
        logged['validation/main/boundary_accuracy']
    saved = snapshots.read_npz(train_rnn.model_path(str(tmp_path),
                                                    args.arch))
    for name, param in run.model.predictor.namedparams():
        numpy.testing.assert_array_equal(param.array, saved[name[1:]])


def test_our_update_loop_prints_its_figures():
    result = result_of('benchmarks.ours', *TINY)
    assert sorted(result) == ['accuracy', 'boundary_accuracy', 'tokens',
                              'update_seconds']
    assert result['tokens'] == EPOCH_WORDS


def test_the_tutorial_baseline_trains_and_scores_every_word_once(tmp_path):
    result = result_of('benchmarks.tutorial_baseline', '-o',
                       str(tmp_path), *TINY)
    assert result['tokens'] == EPOCH_WORDS
    assert result['evaluated_words'] == EPOCH_WORDS
    assert result['evaluated_boundaries'] == EPOCH_BOUNDARIES


def test_the_torch_peer_trains_every_word_once_an_epoch():
    result = result_of('benchmarks.torch_rnn', '-a', 'lstm', *(
        TINY + ['--steady-epochs', '1']))
    if 'skipped' in result:
        pytest.skip('the torch peer: {} (make bench installs torch into '
                    '.venv-bench only)'.format(result['skipped']))
    assert result['tokens'] == EPOCH_WORDS
    assert result['steady_tokens'] == EPOCH_WORDS


def test_the_bench_asks_update_loops_for_a_steady_state():
    from benchmarks import bench
    cases = {case.name: case for case in bench.build_cases(True, ['lstm'])}
    for name in ('torch nn.LSTM', 'fused lstm, update loop', bench.LOOP_RUN):
        assert cases[name].command()[-2:] == [
            '--steady-epochs', str(bench.STEADY_EPOCHS)]
    for name in ('fused lstm, train_rnn.py', bench.BASELINE):
        assert '--steady-epochs' not in cases[name].command()


def test_the_profile_of_an_update_names_its_parts():
    completed = subprocess.run(
        [sys.executable, '-m', 'benchmarks.profile_update', '-a', 'lstm',
         '--fused', '--updates', '2'] + TINY, cwd=ROOT, capture_output=True,
        text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert 'ms an update' in completed.stdout
    for part in ('recurrent forward', 'recurrent backward',
                 'optimizer update', 'dropout forward', 'the rest'):
        assert part in completed.stdout


@pytest.mark.parametrize('arch', ['rnn', 'lstm'])
def test_train_rnn_trains_the_tutorials_network_but_its_reset(
        arch, tmp_path):
    """The tutorial's script, its evaluation hook no longer resetting the
    training model, ends with train_rnn.py's weights, bit for bit: the same
    network, initial weights, dropout masks and windows. With the reset,
    they differ (the baseline's lstm ends less accurate for it)."""
    argv = ['-a', arch, '-e', '2', '-u', '20', '-b', '5', '-l', '5']
    weights, results = {}, {}
    for name, flags in (('tutorial', ['--keep-training-state']),
                        ('flawed', [])):
        results[name] = result_of('benchmarks.tutorial_baseline', '-o',
                                  str(tmp_path / name), *(flags + argv))
        weights[name] = numpy.load(str(tmp_path / name / (arch + '.model')))
    assert train_rnn.main(argv + ['-o', str(tmp_path / 'ours')]) == 0
    with open(str(tmp_path / 'ours' / 'log')) as f:
        logged = json.load(f)[-1]
    # The same weights, scored by the baseline's own pass: the same scores.
    assert results['tutorial']['accuracy'] == \
        logged['validation/main/accuracy']
    assert results['tutorial']['boundary_accuracy'] == \
        logged['validation/main/boundary_accuracy']
    ours = snapshots.read_npz(train_rnn.model_path(str(tmp_path / 'ours'),
                                                   arch))
    names = weights['tutorial'].files
    assert sorted(names) == sorted(
        name for name in ours if name != snapshots.RUN_ARGS_KEY and
        not name.startswith(models.STATE_PREFIX))
    for name in names:
        numpy.testing.assert_array_equal(weights['tutorial'][name],
                                         ours[name])
    assert any(not numpy.array_equal(weights['flawed'][name], ours[name])
               for name in names)


@pytest.mark.parametrize('ours, theirs, verdict', [
    (0.9289, 0.9289, 'within 1/45: yes'),
    (0.9289 + 1 / 45, 0.9289, 'within 1/45: yes'),
    (0.9289, 0.8489, 'within 1/45: no, higher, as expected'),
    (0.8489, 0.9289, 'within 1/45: NO'),
])
def test_the_bench_judges_the_accuracies_within_one_word_in_45(
        ours, theirs, verdict):
    from benchmarks import bench
    assert bench.accuracy_verdict(ours, theirs).startswith(verdict)


def test_n_step_lstm_is_timed_on_the_function_of_the_fused_lstm():
    """The benchmark of Chainer's n_step_* runs the fused nodes' LSTM and
    rnn, with a carried state, on the same parameters."""
    from benchmarks import n_step
    layers, carried = n_step.cases(n_steps=3, batch=2, units=4)
    for arch in ('rnn', 'lstm'):
        n_step_layer, fused_layer, _ = layers[arch]
        numpy.testing.assert_allclose(n_step_layer(carried).array,
                                      fused_layer(carried).array, atol=1e-6)


def test_the_n_step_benchmark_times_every_layer():
    completed = subprocess.run(
        [sys.executable, '-m', 'benchmarks.n_step', '--rounds', '1',
         '--repeat', '1', '-l', '3', '-b', '2', '-u', '4'], cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    rows = {line.split()[0]: line.split() for line in
            completed.stdout.splitlines()[-3:]}
    assert sorted(rows) == ['gru', 'lstm', 'rnn']
    for row in rows.values():
        assert row[5].endswith('x')  # the ratio


def test_the_stacked_benchmark_times_a_stack_against_lone_runs():
    completed = subprocess.run(
        [sys.executable, '-m', 'benchmarks.stacked', '--arch', 'rnn', 'gru',
         '--vocab', '5', '--bproplen', '3', '--seeds', '2', '--rounds', '1',
         '--tokens', '60'], cwd=ROOT, capture_output=True, text=True,
        timeout=300)
    assert completed.returncode == 0, completed.stderr
    rows = [line.split() for line in completed.stdout.splitlines()[2:-1]]
    assert [row[:2] for row in rows] == [['rnn', '3'], ['gru', '3']]
    for row in rows:
        assert row[-1].endswith('x')  # the ratio


def test_the_gpu_check_says_in_one_line_where_there_is_no_gpu():
    completed = subprocess.run(
        [sys.executable, 'benchmarks/gpu_check.py'], cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2
    assert completed.stderr.count('\n') == 1
    assert completed.stderr.startswith('gpu_check.py: --gpu 0')\
        or completed.stderr.startswith('gpu_check.py: --gpu needs CuPy')


@pytest.mark.parametrize('path_tolerance, status', [(1e-9, 0), (0, 1)])
def test_the_gpu_check_compares_every_path_with_the_cpus(
        monkeypatch, capsys, path_tolerance, status):
    """With the CPU standing in for the GPU: the per-step path is the
    reference itself, the fused one differs by rounding alone."""
    monkeypatch.setattr(gpu_check.cli, 'select_device',
                        lambda gpu, work: chainer.get_device('@numpy'))
    monkeypatch.setattr(gpu_check, 'PATH_TOLERANCE', path_tolerance)
    assert gpu_check.main() == status
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 * len(models.FUSED_ARCHITECTURES) + 1
    differences = {line.split(' ', 1)[1].split(' (')[0]: float(
        line.split()[0]) for line in lines}
    for arch in models.FUSED_ARCHITECTURES:
        assert differences[arch + ' per-step on @numpy'] == 0
        assert 0 < differences[arch + ' fused on @numpy'] < 1e-14
    assert differences['FlatAdam against Adam on @numpy'] == 0
