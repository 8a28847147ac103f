"""Every mistake a user can make gets one clear line and exit status 2."""
import errno
import importlib
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys

import chainer
import numpy
import pytest

import cli
import models
import predict_rnn
import snapshots
import train_rnn

from helpers import ROOT, run_with_stdout, write_npz

TINY = ['-u', '6', '--vocab', '3', '-b', '4', '-l', '5', '-e', '2']


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    """The out folder of a finished tiny run of 2 epochs."""
    out = str(tmp_path_factory.mktemp('finished'))
    assert train_rnn.main(['-o', out] + TINY) == 0
    return out


def files(tmp_path, finished):
    """Bad files to give -r or prediction, by name."""
    snapshot = os.path.join(finished, 'snapshot_iter_15')
    with open(snapshot, 'rb') as f:
        whole = f.read()
    made = {
        'missing': str(tmp_path / 'missing'),
        'empty': str(tmp_path / 'empty'),
        'truncated': str(tmp_path / 'truncated'),
        'text': str(tmp_path / 'text'),
        'foreign': str(tmp_path / 'foreign.npz'),
        'model': train_rnn.model_path(finished, 'rnn'),
        'no snapshot': str(tmp_path / 'no snapshot'),
        'bad args': str(tmp_path / 'bad args'),
        'unknown arch': str(tmp_path / 'unknown arch'),
        'endless': str(tmp_path / 'endless'),
        'hoarding': str(tmp_path / 'hoarding'),
    }
    open(made['empty'], 'wb').close()
    with open(made['truncated'], 'wb') as f:
        f.write(whole[:len(whole) // 2])
    with open(made['text'], 'w') as f:
        f.write('not a snapshot\n')
    numpy.savez(made['foreign'], weights=numpy.ones(3))
    os.mkdir(made['no snapshot'])
    arrays = snapshots.read_npz(snapshot)
    recorded = json.loads(str(arrays[snapshots.RUN_ARGS_KEY]))
    for name, run_args in (('bad args', {'arch': 'rnn'}),
                           ('unknown arch', dict(recorded, arch='evil')),
                           ('endless', dict(recorded, epoch=10 ** 30)),
                           ('hoarding', dict(recorded,
                                             keep_snapshots=10 ** 30))):
        arrays[snapshots.RUN_ARGS_KEY] = numpy.array(json.dumps(run_args))
        with open(made[name], 'wb') as f:
            numpy.savez(f, **arrays)
    return made


TRAIN_CASES = [
    (['-a', 'transformer'], "invalid choice: 'transformer'"),
    (['-u', '0'], '--unit must be a whole number of at least 1 (got 0)'),
    (['-u', 'ten'], "invalid int value: 'ten'"),
    (['-l', '-3'],
     '--bproplen must be a whole number of at least 1 (got -3)'),
    (['-b', '0'],
     '--batchsize must be a whole number of at least 1 (got 0)'),
    (['-b', '4501'], '--batchsize 4501 is larger than the sequence, which '
                     'has 4500 words'),
    (['-e', '0'], '--epoch must be a whole number of at least 1 (got 0)'),
    (['-e', str(10 ** 30)], '--epoch {} could never end: a snapshot counts '
     'the steps in 64 bits, which hold 20496382304121724 epochs of this run '
     'at most'.format(10 ** 30)),
    (['-e', '32769'], "--epoch 32769 is more than a snapshot's log holds: "
     '32768 epochs at most'),
    (['-r', '{endless}'], '{endless} records arguments that make no run: '
     '--epoch ' + str(10 ** 30) + ' could never end'),
    # Each told its own bound (hostile pass 12): 1, and 3.
    (['--vocab', '2'], '--vocab must be a whole number from 3 to 100000 '
                       '(got 2)'),
    (['--vocab', '0'], '--vocab must be a whole number from 3 to 100000 '
                       '(got 0)'),
    (['--seed', '-1'], '--seed must be a whole number from 0 to 4294967295 '
                       '(got -1)'),
    (['-c', '0'], '--gradclip must be a positive number (got 0.0)'),
    (['-c', 'nan'], '--gradclip must be a positive number (got nan)'),
    (['-c', 'inf'], '--gradclip must be a positive number (got inf)'),
    (['-g', '-2'], '--gpu must be a GPU number, or -1 for the CPU'),
    (['-g', '0'], '--gpu needs CuPy, which is not installed (or cannot '
     'find CUDA): install cupy-cuda13x==13.6.0 for CUDA 13 or '
     'cupy-cuda12x==13.6.0 for CUDA 12 (see docs/gpu.md), or leave --gpu out '
     'to train on the CPU'),
    (['--bogus'], 'unrecognized arguments: --bogus'),
    (['-a', 'rnn3', '--fused'], '--fused has no rnn3'),
    (['--keep-snapshots', '-1'], 'argument --keep-snapshots: must be 0 '
     '(all) to 9223372036854775807 (got -1)'),
    (['-r', '{finished}', '--keep-snapshots', '-2'], 'argument '
     '--keep-snapshots: must be 0 (all) to 9223372036854775807 (got -2)'),
    (['-r', '{hoarding}'], '{hoarding} records arguments that make no run: '
     'keep_snapshots must be a whole number from 0 to 9223372036854775807'),
    (['--keep-snapshots', str(10 ** 30)], 'argument --keep-snapshots: must '
     'be 0 (all) to 9223372036854775807 (got {})'.format(10 ** 30)),
    # int() and float() take any script's digits: '\u0663' is 3.
    (['-e', '\u0663'], "argument --epoch/-e: invalid int value: '\u0663'"),
    (['--keep-snapshots', '\u0663'],
     "invalid snapshot_count value: '\u0663'"),
    (['-c', '\u0663'], "argument --gradclip/-c: invalid float value: "
     "'\u0663'"),
    (['-u', '1_0'], "argument --unit/-u: invalid int value: '1_0'"),
    (['--keep-snapshots', 'two'],
     "argument --keep-snapshots: invalid snapshot_count value: 'two'"),
    (['-r', '{finished}', '--fused'],
     'was trained with --fused False, but this command says --fused True'),
    (['-r', '{missing}'], 'cannot read {missing}: No such file'),
    (['-r', '{empty}'], '{empty} is not an npz file'),
    (['-r', '{text}'], '{text} is not an npz file'),
    (['-r', '{truncated}'], '{truncated} is truncated or damaged'),
    (['-r', '{foreign}'], '{foreign} is not a snapshot of train_rnn.py'),
    (['-r', '{model}'], '{model} is not a snapshot of train_rnn.py'),
    (['-r', '{no snapshot}'], '{no snapshot} holds no snapshot'),
    (['-r', '{bad args}'], 'does not record the arguments of its run'),
    (['-r', '{unknown arch}'], "unknown architecture 'evil'"),
    (['-r', '{finished}', '-a', 'lstm'],
     'was trained with --arch rnn, but this command says --arch lstm'),
    (['-r', '{finished}', '-u', '7'],
     'was trained with --unit 6, but this command says --unit 7'),
    (['-r', '{finished}', '--seed', '1'],
     'was trained with --seed 0, but this command says --seed 1'),
    (['-r', '{finished}', '-c', '5'],
     'was trained with --gradclip None, but this command says --gradclip '
     '5.0'),
    (['-r', '{finished}', '-e', '1'],
     'is at epoch 2 already, past --epoch 1'),
    (['-o', '{text}'], 'cannot write to the out folder {text}'),
    (['-o', '{text}/sub'], 'cannot write to the out folder {text}/sub'),
    # It exists: what failed is the folder the run makes in it.
    (['-o', '/proc/self'], 'cannot write to the out folder /proc/self: '
     '/proc/self/.train_rnn: No such file or directory'),
]


@pytest.mark.parametrize('argv, message', TRAIN_CASES)
def test_bad_training_arguments(argv, message, tmp_path, finished, capsys):
    if '-g' in argv and chainer.backends.cuda.available:
        pytest.skip('CuPy is installed here')
    paths = dict(files(tmp_path, finished), finished=finished)
    out = tmp_path / 'out'
    argv = [arg.format(**paths) for arg in argv]
    if '-o' not in argv:
        argv += ['-o', str(out)]
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(argv)
    assert exit_info.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert err.startswith('train_rnn.py: error: ')
    assert message.format(**paths) in err
    assert not out.exists()


def test_the_cli_prints_no_traceback(tmp_path):
    completed = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'train_rnn.py'), '-r',
         str(tmp_path / 'missing')], capture_output=True, text=True)
    assert completed.returncode == cli.EXIT_USAGE
    assert completed.stderr == (
        'train_rnn.py: error: cannot read {}: No such file or directory\n'
        .format(tmp_path / 'missing'))


def model_folder(tmp_path, finished, model=None, args_text=None):
    """A copy of a finished run's folder with its model or args replaced."""
    folder = tmp_path / 'run'
    folder.mkdir()
    with open(os.path.join(finished, 'args.json')) as f:
        (folder / 'args.json').write_text(args_text or f.read())
    with open(model or train_rnn.model_path(finished, 'rnn'), 'rb') as f:
        (folder / 'rnn_simple_sequence.model').write_bytes(f.read())
    return str(folder)


PREDICT_CASES = [
    ('missing folder', [], 'cannot read {folder}/args.json'),
    ('empty model', [], 'is not an npz file'),
    ('truncated model', [], 'is truncated or damaged'),
    ('foreign model', [], 'lacks'),
    ('snapshot as model', [], 'is a snapshot of train_rnn.py, not a model '
     'file: predict with the model its run saves once it ends'),
    ('bad args.json', [], '{folder}/args.json: not valid JSON'),
    ('args.json repeating a key', [], "{folder}/args.json: the key 'arch' "
     "appears twice in an object"),
    ('args.json without arch', [], '{folder}/args.json is not what '
     'train_rnn.py writes: it lacks arch'),
    ('args.json a list', [], '{folder}/args.json is not what train_rnn.py '
     'writes: it holds a list, where an object of the run\'s arguments '
     'belongs'),
    ('unknown arch', [], "names an unknown architecture 'evil'"),
    ('vocab of 2', [], 'nothing to count'),
    ('good', ['-p', '0'],
     '--primeindex must be a whole number from 1 to 2 (got 0)'),
    ('good', ['--prime', '3'],
     '--primeindex must be a whole number from 1 to 2 (got 3)'),
    ('good', ['-n', '0'], '--length must be a whole number from 1 to 100000 '
     '(got 0)'),
    ('good', ['-l', '100001'],
     '--length must be a whole number from 1 to 100000 (got 100001)'),
    ('good', ['-u', '7'], '--unit 7 contradicts {folder}/'
     'rnn_simple_sequence.model, which holds a model of unit 6'),
    ('good', ['--vocab', '0'], '--vocab must be a whole number from 3 to '
     '100000 (got 0)'),
    ('good', ['-g', '-5'], '--gpu must be a GPU number, or -1 for the CPU '
     '(got -5)'),
    ('good', ['-a', 'gru'], 'cannot read {folder}/gru_simple_sequence.model'),
    ('good', ['-g', '0'], '--gpu needs CuPy, which is not installed (or '
     'cannot find CUDA): install cupy-cuda13x==13.6.0 for CUDA 13 or '
     'cupy-cuda12x==13.6.0 for CUDA 12 (see docs/gpu.md), or leave --gpu out '
     'to predict on the CPU'),
]


@pytest.mark.parametrize('case, argv, message', PREDICT_CASES)
def test_bad_prediction_inputs(case, argv, message, tmp_path, finished,
                               capsys):
    bad = files(tmp_path, finished)
    with open(os.path.join(finished, 'args.json')) as f:
        recorded = json.load(f)
    if '-g' in argv and chainer.backends.cuda.available:
        pytest.skip('CuPy is installed here')
    folder = {
        'missing folder': lambda: str(tmp_path / 'nowhere'),
        'empty model': lambda: model_folder(tmp_path, finished, bad['empty']),
        'truncated model': lambda: model_folder(tmp_path, finished,
                                                bad['truncated']),
        'foreign model': lambda: model_folder(tmp_path, finished,
                                              bad['foreign']),
        'snapshot as model': lambda: model_folder(
            tmp_path, finished, os.path.join(finished, 'snapshot_iter_15')),
        'bad args.json': lambda: model_folder(tmp_path, finished,
                                              args_text='{"arch": '),
        'args.json repeating a key': lambda: model_folder(
            tmp_path, finished, args_text=json.dumps(recorded).replace(
                '"arch": ', '"arch": "lstm", "arch": ')),
        'args.json without arch': lambda: model_folder(
            tmp_path, finished, args_text=json.dumps(
                dict(recorded, arch=None)).replace('"arch": null, ', '')),
        'args.json a list': lambda: model_folder(tmp_path, finished,
                                                 args_text='[1, 2]'),
        'unknown arch': lambda: model_folder(
            tmp_path, finished, args_text=json.dumps(
                dict(recorded, arch='evil'))),
        'vocab of 2': lambda: model_folder(
            tmp_path, finished, args_text=json.dumps(
                dict(recorded, vocab=2))),
        'good': lambda: finished,
    }[case]()
    with pytest.raises(SystemExit) as exit_info:
        predict_rnn.main(['-o', folder] + argv)
    assert exit_info.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert err.startswith('predict_rnn.py: error: ')
    assert message.format(folder=folder) in err


def model_file(tmp_path, finished, run_args=None, changes=None):
    """The finished run's model, with run_args (a dict or raw text) added
    and the arrays in changes set (left out where None)."""
    arrays = snapshots.read_npz(train_rnn.model_path(finished, 'rnn'))
    recorded = json.loads(str(arrays.pop(snapshots.RUN_ARGS_KEY)))
    for key, value in (changes or {}).items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    if run_args is not None:
        text = run_args if isinstance(run_args, str) else json.dumps(
            dict(recorded, **run_args))
        arrays[snapshots.RUN_ARGS_KEY] = numpy.array(text)
    path = str(tmp_path / 'some.model')
    write_npz(path, arrays)
    return path


MODEL_FILE_CASES = [
    ({}, {}, ['-a', 'lstm'], '--arch lstm contradicts {path}, which holds a '
     'model of arch rnn'),
    ({}, {}, ['--vocab', '4'], '--vocab 4 contradicts {path}, which holds a '
     'model of vocab 3'),
    (None, {}, ['-u', '5'], '--unit 5 contradicts {path}, which holds a '
     'model of unit 6'),
    (None, {}, ['-a', 'gru'], '{path} lacks l1/U/W: it was not written for '
     'this model'),
    (None, {'embed/W': None}, [], '{path} lacks embed/W (vocabulary, '
     'units): it is not a model file'),
    (None, {'embed/W': numpy.zeros((4, 6, 1), numpy.float32)}, [],
     '{path} holds embed/W of shape (4, 6, 1), where (vocabulary, units) '
     'belongs: it is not a model file'),
    ({'unit': -3}, {}, [], "{path}: unit must be a whole number from 1 to "
     "100000 (got -3)"),
    ({'vocab': 10 ** 9}, {}, [], '{path}: vocab must be a whole number from '
     '1 to 100000 (got 1000000000)'),
    ({'unit': '6'}, {}, [], "{path}: unit must be a whole number from 1 to "
     "100000 (got '6')"),
    ({'arch': 'evil'}, {}, [], "{path} names an unknown architecture 'evil'"),
    ({'vocab': 2}, {}, [], '{path}: the vocabulary must hold at least 3'),
    ('{"arch": ', {}, [], 'the run arguments in {path}: not valid JSON'),
    ('[1, 2]', {}, [], '{path} is not what train_rnn.py writes: it holds a '
     'list'),
    ('{"arch": "lstm", "arch": "rnn"}', {}, [], "the run arguments in "
     "{path}: the key 'arch' appears twice in an object"),
    # What a snapshot's arguments are checked for, a model's too.
    ({'seed': 'x'}, {}, [], "{path} records arguments that make no run: "
     "--seed must be a whole number from 0 to 4294967295 (got 'x')"),
    ({'bproplen': 0}, {}, [], '{path} records arguments that make no run: '
     '--bproplen must be a whole number of at least 1 (got 0)'),
    ({'batchsize': math.inf}, {}, [], '{path} records arguments that make '
     'no run: --batchsize must be a whole number of at least 1 (got inf)'),
    ({'gradclip': -3.0}, {}, [], '{path} records arguments that make no '
     'run: --gradclip must be a positive number (got -3.0)'),
    # Entries checked by their headers against the model, before reading.
    (None, {'state/h': numpy.zeros((4, 6), numpy.float32)}, [],
     '{path} does not fit this model: state/h is float32 (4, 6), where '
     'float32 (0,) belongs'),
    (None, {'extra': numpy.zeros(3)}, [],
     '{path} holds extra, which is no part of this model'),
    (None, {'l1/b': numpy.zeros(6, numpy.float64)}, [],
     '{path} does not fit this model: l1/b is float64 (6,), where float32 '
     '(6,) belongs'),
    (None, {'run_args': numpy.array(7)}, [],
     '{path} does not fit this model: run_args is int64 (), where str () '
     'belongs'),
]


@pytest.mark.parametrize('run_args, changes, argv, message',
                         MODEL_FILE_CASES)
def test_bad_model_files_and_flags(run_args, changes, argv, message, tmp_path,
                                   finished, capsys):
    path = model_file(tmp_path, finished, run_args, changes)
    with pytest.raises(SystemExit) as exit_info:
        predict_rnn.main(['-m', path] + argv)
    assert exit_info.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert err.startswith('predict_rnn.py: error: ')
    assert message.format(path=path) in err


def test_a_model_file_needs_no_out_folder(tmp_path, finished, capsys):
    path = model_file(tmp_path, finished, {})
    assert predict_rnn.main(['-m', path, '-o', str(tmp_path / 'nowhere'),
                             '-l', '3']) == 0
    assert capsys.readouterr().out.startswith(
        'Loaded {}: rnn, 6 units, vocabulary 3, trained 2 epochs.\n'.format(
            path))


@pytest.mark.parametrize('ended', [True, False])
def test_a_snapshot_given_as_a_model_names_its_runs_model(ended, tmp_path,
                                                          finished, capsys):
    snapshot = os.path.join(finished, 'snapshot_iter_15')
    if not ended:  # a copy in a folder without its run's model
        with open(snapshot, 'rb') as f:
            (tmp_path / 'snapshot_iter_15').write_bytes(f.read())
        snapshot = str(tmp_path / 'snapshot_iter_15')
    with pytest.raises(SystemExit) as exit_info:
        predict_rnn.main(['-m', snapshot])
    assert exit_info.value.code == cli.EXIT_USAGE
    advice = ('its run has ended; predict with the model it saved, -m {}'
              .format(train_rnn.model_path(finished, 'rnn')) if ended else
              'predict with the model its run saves once it ends '
              '(train_rnn.py -r resumes it)')
    assert capsys.readouterr().err == (
        'predict_rnn.py: error: {} is a snapshot of train_rnn.py, not a model '
        'file: {}\n'.format(snapshot, advice))


def test_args_json_contradicting_the_model_is_refused(tmp_path, finished,
                                                      capsys):
    """args.json, which may be a newer, unfinished run's, says which model
    -o loads: not one of other settings. -a picks the model alone, which is
    built as its own file says."""
    with open(os.path.join(finished, 'args.json')) as f:
        recorded = json.load(f)
    folder = model_folder(tmp_path, finished, args_text=json.dumps(
        dict(recorded, unit=7)))
    model = os.path.join(folder, 'rnn_simple_sequence.model')
    with pytest.raises(SystemExit) as exit_info:
        predict_rnn.main(['-o', folder])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == (
        'predict_rnn.py: error: {}/args.json records unit 7, but {} holds a '
        'model of unit 6: pass -a rnn to load that model\n'.format(
            folder, model))
    assert predict_rnn.main(['-o', folder, '-a', 'rnn', '-l', '3']) == 0
    assert capsys.readouterr().out.startswith(
        'Loaded {}: rnn, 6 units, vocabulary 3, trained 2 epochs.'.format(
            model))


@pytest.fixture
def tutorial_result(tmp_path):
    """What the tutorial's train_simple_sequence.py leaves in result/: 15
    files, its model saved by Chainer's save_npz."""
    folder = tmp_path / 'result'
    folder.mkdir()
    names = ['log', 'cg.dot', 'loss.png', 'accuracy.png'] + [
        'snapshot_iter_{}'.format(225 * epoch) for epoch in range(1, 11)]
    for name in names:
        (folder / name).write_text('the tutorial\'s')
    chainer.serializers.save_npz(str(folder / 'rnn_simple_sequence.model'),
                                 models.build_model('rnn', 3, 6))
    return str(folder)


def test_the_tutorials_result_folder_is_refused_saying_what_to_do(
        tutorial_result, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(['-o', tutorial_result] + TINY)
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == (
        'train_rnn.py: error: {} holds 15 files (accuracy.png, cg.dot, log, '
        'loss.png and 11 more) that train_rnn.py did not write there: '
        'another program\'s, such as the tutorial\'s, an older version\'s, '
        'or yours; choose another --out for this run, or move them aside\n'
        .format(tutorial_result))
    assert len(os.listdir(tutorial_result)) == 15


def test_predicting_from_the_tutorials_result_folder_says_how(
        tutorial_result, capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict_rnn.main(['-o', tutorial_result])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == (
        'predict_rnn.py: error: cannot read {0}/args.json: No such file or '
        'directory: is {0} the out folder of a train_rnn.py run? Pass -a '
        'ARCH for one of its models (rnn), or -m FILE -a ARCH -u UNIT for '
        'any model file, the tutorial\'s too\n'.format(tutorial_result))
    model = os.path.join(tutorial_result, 'rnn_simple_sequence.model')
    for argv in (['-o', tutorial_result, '-a', 'rnn'],
                 ['-m', model, '-a', 'rnn', '-u', '6']):
        assert predict_rnn.main(argv + ['-l', '3']) == 0
        assert capsys.readouterr().out.startswith(
            'Loaded {}: rnn, 6 units, vocabulary 3.\n'.format(model))


@pytest.mark.parametrize('command, name', [
    (['train_rnn.py', '-a', 'rnn'], 'train_rnn.py'),
    (['predict_rnn.py', '-o', 'result'], 'predict_rnn.py'),
    (['simple_sequence.py'], 'simple_sequence.py'),
    (['reference_runs.py'], 'reference_runs.py'),
    (['benchmarks/bench.py', '--quick'], 'bench.py'),
    (['dashboard.py', 'result'], 'dashboard.py'),
] + [(['-m', module], module) for module in (
    'study.sweep', 'study.counter', 'study.capacity_report',
    'study.dashboard', 'benchmarks.dashboard_cost',
    'benchmarks.bench', 'benchmarks.n_step', 'benchmarks.ours',
    'benchmarks.environment', 'benchmarks.torch_rnn',
    'benchmarks.profile_update', 'benchmarks.tutorial_baseline')])
def test_a_python_without_chainer_is_told_how_to_set_up(command, name):
    # -S leaves out site-packages: a Python without the environment's
    # packages, as python3 is before .venv is activated.
    completed = subprocess.run([sys.executable, '-S'] + command, cwd=ROOT,
                               capture_output=True, text=True)
    assert completed.returncode == 2
    assert (completed.stdout, completed.stderr) == ('', (
        '{}: error: {} has no Chainer: set up the environment with `make '
        'setup` (once), then `. .venv/bin/activate`, or run `.venv/bin/'
        'python {}`\n'.format(name, sys.executable, ' '.join(command))))


# Every script a user runs, as the help names it.
SCRIPTS = [(['train_rnn.py'], 'train_rnn.py'),
           (['predict_rnn.py'], 'predict_rnn.py'),
           (['simple_sequence.py'], 'simple_sequence.py'),
           (['dashboard.py'], 'dashboard.py')] + [
    (['-m', module], 'python -m ' + module) for module in (
        'study.sweep', 'study.counter', 'study.capacity_report',
        'study.dashboard')]


@pytest.mark.parametrize('command, name', SCRIPTS)
def test_help_with_stdout_closed_is_a_failed_write(command, name):
    # It went to stderr, with status 0.
    completed = run_with_stdout(command + ['-h'], 'closed')
    assert completed.returncode == cli.EXIT_FAILED
    assert completed.stderr == ('{}: error: writing to stdout failed: Bad '
                                'file descriptor\n'.format(name))


@pytest.mark.parametrize('command, name', SCRIPTS)
def test_an_error_with_stderr_closed_is_not_printed_to_stdout(command,
                                                              name):
    # stdout may be the data a user keeps: print_or_drop took a closed
    # stderr for its default, stdout.
    completed = subprocess.run(
        [sys.executable] + command + ['--no-such-flag'], cwd=ROOT,
        stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2), text=True,
        timeout=300)
    assert (completed.returncode, completed.stdout) == (cli.EXIT_USAGE, '')


def test_names_no_run_writes_are_not_its_snapshots(tmp_path, finished):
    # int() reads both as numbers (the second in Arabic-Indic digits):
    # taken for snapshots, -r looked for snapshot_iter_31 and 999.
    out = tmp_path / 'out'
    shutil.copytree(finished, str(out))
    others = ['snapshot_iter_031', 'snapshot_iter_\u0669\u0669\u0669']
    for name in others:
        (out / name).write_text('yours')
    assert train_rnn.main(['-r', str(out), '-e', '3']) == 0
    assert {'snapshot_iter_45'} | set(others) <= set(os.listdir(str(out)))


def test_an_empty_resume_is_refused_and_the_run_kept(tmp_path, finished,
                                                     capsys):
    # -r '' read as no -r: a fresh run replaced the finished one's files.
    out = tmp_path / 'out'
    shutil.copytree(finished, str(out))
    before = {name: (out / name).read_bytes() for name in os.listdir(out)
              if (out / name).is_file()}
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(['-o', str(out), '-r', ''] + TINY)
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == (
        'train_rnn.py: error: argument --resume/-r: an empty path names '
        'nothing\n')
    assert before == {name: (out / name).read_bytes() for name in before}


def test_an_empty_host_is_refused(tmp_path, capsys):
    """The dashboard listened on every address, its API open to the
    network."""
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module('dashboard').main(
            ['--host', '', str(tmp_path)])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == (
        'dashboard.py: error: argument --host: an empty host would listen on '
        'every address: name one (0.0.0.0 for all, at your own risk: '
        'docs/ui.md)\n')


@pytest.mark.parametrize('argv, message', [
    (['--port', '70000', '{tmp}'], '--port must be from 1 to 65535 (got '
     '70000)'),
    (['--db', '{tmp}/notes', '{tmp}'], '--db {tmp}/notes is not a folder'),
    (['{tmp}/missing'], '{tmp}/missing is not a folder of runs'),
    # Told to train a run under the file (hostile pass 12).
    (['{tmp}/notes'], '{tmp}/notes is not a folder: choose another DIR'),
    (['--db', '{tmp}/link', '{tmp}'], '{tmp}/link is a symbolic link to '
     'nothing, which does not exist: choose another --db'),
    # Served as a project of no runs (hostile pass 12).
    (['{tmp}/unread'], 'cannot read {tmp}/unread: Permission denied'),
    # Said only once ChainerUI was installed (hostile pass 14).
    (['--db', '{tmp}/taken', '{tmp}'], "ChainerUI's database "
     '{tmp}/taken/db/chainerui.db is a folder (choose another --db')])
def test_the_dashboard_s_arguments_are_checked_with_or_without_chainerui(
        argv, message, tmp_path, capsys, monkeypatch):
    """Without ChainerUI, the missing package was all a bad argument got:
    the user learned of it only once it was installed (hostile pass 10)."""
    (tmp_path / 'notes').write_text('notes')
    (tmp_path / 'link').symlink_to('nothing')
    (tmp_path / 'unread').mkdir()
    (tmp_path / 'taken' / 'db' / 'chainerui.db').mkdir(parents=True)
    listdir = os.listdir

    def unreadable(path):
        if os.path.basename(path) == 'unread':
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES),
                                  path)
        return listdir(path)
    monkeypatch.setattr(os, 'listdir', unreadable)
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module('dashboard').main(
            [arg.format(tmp=tmp_path) for arg in argv])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err.startswith(
        'dashboard.py: error: ' + message.format(tmp=tmp_path))


MOVE_IT_ASIDE = ' (choose another --db, or move it aside)'


def test_a_database_the_dashboard_may_only_read_is_refused(
        tmp_path, monkeypatch):
    """It was served, and every page failed (hostile pass 12)."""
    path = str(tmp_path / 'chainerui.db')
    sqlite3.connect(path).close()
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, 'connect', lambda name: connect(
        'file:{}?mode=ro'.format(name), uri=True))
    dashboard = importlib.import_module('dashboard')
    with pytest.raises(dashboard.DatabaseError) as error:
        dashboard.check_database(path)
    assert str(error.value) == ("cannot open ChainerUI's database {}: "
                                'attempt to write a readonly database'
                                .format(path) + MOVE_IT_ASIDE)
    # Writable, in a folder it may not write: the folder is to blame
    # (hostile pass 13).
    access = os.access
    monkeypatch.setattr(os, 'access', lambda name, mode: name != str(
        tmp_path) and access(name, mode))
    with pytest.raises(dashboard.DatabaseError) as error:
        dashboard.check_database(path)
    assert str(error.value) == (
        "cannot open ChainerUI's database {}: its folder {} may not be "
        'written, and SQLite keeps its journal there'.format(path, tmp_path)
        + MOVE_IT_ASIDE)


def test_a_database_that_is_no_file_is_refused(tmp_path):
    """A FIFO was 'disk I/O error' (hostile pass 13)."""
    path = str(tmp_path / 'chainerui.db')
    os.mkfifo(path)
    dashboard = importlib.import_module('dashboard')
    with pytest.raises(dashboard.DatabaseError) as error:
        dashboard.check_database(path)
    assert str(error.value) == "ChainerUI's database {} is not a regular " \
        'file'.format(path) + MOVE_IT_ASIDE


@pytest.mark.parametrize('module, argv, name', [
    ('train_rnn', ['-o', ''], '--out/-o'),
    ('predict_rnn', ['-o', ''], '--out/-o'),
    ('predict_rnn', ['-m', '', '-a', 'rnn'], '--modelpath/-m'),
    ('dashboard', ['--db', '', 'runs'], '--db'),
    ('dashboard', [''], 'DIR'),
    ('study.dashboard', ['', 'out'], 'records'),
    ('study.dashboard', ['capacity.jsonl', ''], 'outdir'),
    ('study.counter', ['-o', ''], '--out/-o'),
    ('study.sweep', ['-o', ''], '--out/-o'),
    ('study.capacity_report', [''], 'FOLDER'),
])
def test_an_empty_path_is_refused(module, argv, name, tmp_path, monkeypatch,
                                  capsys):
    # Read as the current folder, or as none, it wrote or read elsewhere.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(module).main(argv)
    assert exit_info.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert err.endswith('error: argument {}: an empty path names nothing\n'
                        .format(name))
    assert os.listdir(str(tmp_path)) == []


def test_an_older_snapshot_is_not_resumed_over_its_run(tmp_path, finished,
                                                       capsys):
    # Resumed in place, it replaced the 2-epoch model with a 1-epoch one,
    # and left the log, plots and snapshot_iter_30 of the 2-epoch run.
    out = tmp_path / 'out'
    shutil.copytree(finished, str(out))
    older = str(out / 'snapshot_iter_15')
    before = {name: (out / name).read_bytes() for name in os.listdir(out)
              if (out / name).is_file()}
    for went_on in ('holds snapshot_iter_30', 'finished at epoch 2'):
        if went_on.startswith('finished'):  # its model is left
            os.unlink(str(out / 'snapshot_iter_30'))
            del before['snapshot_iter_30']
        with pytest.raises(SystemExit) as exit_info:
            train_rnn.main(['-r', older, '-e', '1'])
        assert exit_info.value.code == cli.EXIT_USAGE
        assert capsys.readouterr().err == (
            'train_rnn.py: error: the run in {} went past {}: it {}; resume '
            '{} into a new folder with -o NEW\n'.format(
                out, older, went_on, older))
        assert before == {name: (out / name).read_bytes()
                          for name in os.listdir(out)
                          if (out / name).is_file()}
    # Where it says: the model of a run of 1 epoch.
    assert train_rnn.main(['-r', older, '-e', '1', '-o',
                           str(tmp_path / 'new')]) == 0
    assert train_rnn.main(['-o', str(tmp_path / 'one')] + TINY[:-1] +
                          ['1']) == 0
    model = 'rnn_simple_sequence.model'
    assert (tmp_path / 'new' / model).read_bytes() == \
        (tmp_path / 'one' / model).read_bytes()


# /proc/self/mem opens, and its reads fail with EIO: a bad disk.
UNREADABLE = '/proc/self/mem'


@pytest.mark.parametrize('module, argv, link, line', [
    ('train_rnn', ['-r', UNREADABLE, '-o', '{tmp}/out'], None,
     'train_rnn.py: error: cannot read {unreadable}: Input/output error'),
    ('predict_rnn', ['-m', UNREADABLE, '-a', 'rnn'], None,
     'predict_rnn.py: error: cannot read {unreadable}: Input/output error'),
    ('predict_rnn', ['-o', '{tmp}'], 'args.json',
     'predict_rnn.py: error: cannot read {tmp}/args.json: Input/output '
     'error: is {tmp} the out folder of a train_rnn.py run? Any model file, '
     'the tutorial\'s too, loads with -m FILE -a ARCH -u UNIT'),
    ('study.dashboard', [UNREADABLE, '{tmp}/ui'], None,
     'python -m study.dashboard: error: cannot read {unreadable}: '
     'Input/output error'),
    ('study.capacity_report', ['{tmp}'], 'capacity.jsonl',
     'python -m study.capacity_report: error: cannot read '
     '{tmp}/capacity.jsonl: Input/output error'),
])
def test_an_input_that_fails_to_read_is_named(module, argv, link, line,
                                              tmp_path, capsys):
    # It was a traceback, or a write said to have failed.
    if link:
        os.symlink(UNREADABLE, str(tmp_path / link))
    paths = {'tmp': str(tmp_path), 'unreadable': UNREADABLE}
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(module).main(
            [arg.format(**paths) for arg in argv])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == line.format(**paths) + '\n'
