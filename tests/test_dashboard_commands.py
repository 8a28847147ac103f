"""The page's commands, answered by train_rnn.py through the commands file.

No ChainerUI is needed: these tests write the file as its server does.
"""
import json
import os

import numpy
import pytest

import dashboard_commands
import snapshots
import train_rnn

from test_reliability import TINY, assert_same_run, read_log, train

# After any run of these tests starts: not taken for a command left over
# from before the run.
LATER = '9999-01-01T00:00:00'


def command(name, iteration=None, body=None, created_at=LATER):
    """One command as ChainerUI's server appends it."""
    return {'name': name, 'request': {
        'created_at': created_at, 'status': 'OPEN', 'body': body,
        'schedule': None if iteration is None else
        {'key': 'iteration', 'value': iteration}}, 'response': None}


def send(out, *commands):
    out.mkdir(exist_ok=True)
    (out / 'commands').write_text(json.dumps(list(commands)))


def responses(out):
    return [(entry['name'], entry['response'] and (
        entry['response']['status'], entry['response']['iteration'],
        entry['response']['body']['message']))
        for entry in json.loads((out / 'commands').read_text())]


@pytest.fixture(scope='module')
def left_alone(tmp_path_factory):
    """Two epochs of lstm (30 updates), no command."""
    out = tmp_path_factory.mktemp('left_alone')
    train(out, '-a', 'lstm', '-e', '2')
    return out


def test_stop_ends_the_update_with_a_snapshot_that_resumes_exactly(
        left_alone, tmp_path, capsys):
    send(tmp_path, command('stop', iteration=20))
    status = train_rnn.main(['-o', str(tmp_path)] + TINY +
                            ['-a', 'lstm', '-e', '2'])
    err = capsys.readouterr().err
    assert status == 143  # as on SIGTERM
    assert 'dashboard: stop at iteration 20: stopping after this update to ' \
        'write a snapshot' in err
    assert 'Stopped at iteration 20 (epoch 1.33) with a snapshot in' in err
    assert 'Traceback' not in err
    assert snapshots.latest_snapshot(str(tmp_path)) == \
        snapshots.snapshot_path(str(tmp_path), 20)
    assert responses(tmp_path) == [('stop', (
        'SUCCESS', 20, 'stopping after this update to write a snapshot'))]
    assert json.loads((tmp_path / '.chainerui_commands').read_text()) == \
        {'job_status': 'stopped'}
    assert train_rnn.main(['-r', str(tmp_path)]) == 0
    assert_same_run(tmp_path, left_alone, 'lstm')


def test_take_snapshot_writes_ours_and_the_run_goes_on(left_alone, tmp_path,
                                                       capsys):
    # Between the epochs' snapshots 15 and 30: among the last two kept.
    send(tmp_path, command('take_snapshot', iteration=22))
    train(tmp_path, '-a', 'lstm', '-e', '2')
    assert 'dashboard: take_snapshot at iteration 22: wrote ' \
        'snapshot_iter_22' in capsys.readouterr().err
    assert responses(tmp_path) == [('take_snapshot', (
        'SUCCESS', 22, 'wrote snapshot_iter_22'))]
    assert not (tmp_path / 'snapshot_iter_15').exists()
    assert_same_run(tmp_path, left_alone, 'lstm')
    # Ours: the run's arguments inside, and nothing that needs pickle.
    path, run_args = snapshots.read_snapshot(
        str(tmp_path / 'snapshot_iter_22'))
    assert run_args['arch'] == 'lstm'
    with numpy.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    assert int(arrays['updater/iteration']) == 22
    # It resumes exactly, from the middle of the second epoch.
    for name in ('snapshot_iter_30', 'lstm_simple_sequence.model'):
        os.unlink(str(tmp_path / name))
    assert train_rnn.main(['-r', path]) == 0
    assert_same_run(tmp_path, left_alone, 'lstm')


def test_adjusting_hyperparameters_is_refused_and_changes_nothing(
        left_alone, tmp_path, capsys):
    send(tmp_path, command('adjust_hyperparams', iteration=3, body={
        'optimizer': 'FlatAdam', 'hyperparam': {'alpha': 0.1}}),
        command('rewind', iteration=4))
    train(tmp_path, '-a', 'lstm', '-e', '2')
    err = capsys.readouterr().err.splitlines()
    refused = ('refused: a snapshot would not hold the change, so a resumed '
               'run would not be exact; stop, and start a run with other '
               'arguments')
    assert 'dashboard: adjust_hyperparams at iteration 3: ' + refused in err
    assert "dashboard: rewind at iteration 4: unknown command 'rewind': " \
        'ignored' in err
    assert responses(tmp_path) == [
        ('adjust_hyperparams', ('FAILURE', 3, refused)),
        ('rewind', ('FAILURE', 4, "unknown command 'rewind': ignored"))]
    assert_same_run(tmp_path, left_alone, 'lstm')


def test_commands_from_before_the_run_past_their_time_or_odd_are_not_run(
        tmp_path, capsys):
    odd = command('stop')
    odd['request']['schedule'] = ['epoch', 1]
    send(tmp_path, command('stop', created_at='2020-01-01T00:00:00'),
         command('stop', iteration=0), odd)
    train(tmp_path, '-e', '1')
    assert 'Stopped' not in capsys.readouterr().err
    assert responses(tmp_path) == [
        ('stop', ('FAILURE', 1, 'sent before this run started')),
        ('stop', ('FAILURE', 1, 'iteration 0 had passed when it came')),
        ('stop', ('FAILURE', 1,
                  'a schedule that is not an epoch or iteration'))]


GARBAGE = {
    'not JSON': b'[{"name": "stop", ',
    'not UTF-8': b'\xff\xfe[]',
    'an object': b'{"name": "stop"}',
    'entries without a name': b'[{"request": {}}, 3]',
    'too deep': b'[' * 100000 + b']' * 100000,
    'too large': b'[' + b' ' * dashboard_commands.MAX_COMMANDS_BYTES + b']',
    # 2 kB, but 2 MB as the run writes it back, indented.
    'nested deep': json.dumps([command('rewind', body='@')]).replace(
        '"@"', '[' * 700 + ']' * 700).encode(),
}


@pytest.mark.parametrize('garbage', sorted(GARBAGE))
def test_a_garbage_commands_file_is_ignored_in_one_line(garbage, tmp_path,
                                                        capsys):
    tmp_path.joinpath('commands').write_bytes(GARBAGE[garbage])
    train(tmp_path, '-e', '1')
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    ignored = [line for line in err.splitlines()
               if line.startswith('dashboard: ignored {}'.format(
                   tmp_path / 'commands'))]
    assert len(ignored) == 1, err
    assert len(read_log(tmp_path)) == 1
    assert tmp_path.joinpath('commands').read_bytes() == GARBAGE[garbage]


def test_a_commands_folder_or_fifo_is_ignored_without_blocking(tmp_path,
                                                               capsys):
    (tmp_path / 'fifo').mkdir(parents=True)
    os.mkfifo(str(tmp_path / 'fifo' / 'commands'))
    (tmp_path / 'folder' / 'commands').mkdir(parents=True)
    for out in ('fifo', 'folder'):
        train(tmp_path / out, '-e', '1')
        assert 'is not a regular file' in capsys.readouterr().err


def test_the_args_file_holds_the_run_arguments_for_chainerui(tmp_path):
    train(tmp_path, '-e', '1')
    assert json.loads((tmp_path / 'args').read_text()) == json.loads(
        (tmp_path / 'args.json').read_text())
    assert json.loads((tmp_path / 'args').read_text())['unit'] == 6


def test_responses_past_the_size_limit_are_not_written(tmp_path, capsys):
    """The run never writes a commands file it would refuse to read."""
    long_name = 'x' * (dashboard_commands.MAX_COMMANDS_BYTES * 2 // 3)
    send(tmp_path, command(long_name, iteration=3))
    before = (tmp_path / 'commands').read_bytes()
    train(tmp_path, '-e', '1')
    err = capsys.readouterr().err
    assert 'dashboard: wrote no responses: {} would be larger than {} bytes ' \
        'as the run writes it'.format(tmp_path / 'commands',
                                      dashboard_commands.MAX_COMMANDS_BYTES) \
        in err
    assert (tmp_path / 'commands').read_bytes() == before
