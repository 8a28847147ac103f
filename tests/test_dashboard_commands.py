"""The page's commands, answered by train_rnn.py through the commands file.

No ChainerUI is needed: these tests write the file as its server does.
"""
import datetime
import json
import os

import numpy
import pytest

import dashboard_commands
import snapshots
import train_rnn

from test_reliability import TINY, assert_same_run, read_log, train


def command(name, iteration=None, body=None, created_at=None):
    """One command as ChainerUI's server appends it."""
    return {'name': name, 'request': {
        'created_at': created_at or datetime.datetime.now().isoformat(),
        'status': 'OPEN', 'body': body,
        'schedule': None if iteration is None else
        {'key': 'iteration', 'value': iteration}}, 'response': None}


def send(out, *commands):
    out.mkdir(exist_ok=True)
    (out / 'commands').write_text(json.dumps(list(commands)))


@pytest.fixture
def once_started(monkeypatch):
    """once_started(act): act() as the run starts, once it took the
    commands already there for an earlier run's."""
    def then(act):
        def initialize(self, trainer):
            started(self, trainer)
            act()
        monkeypatch.setattr(dashboard_commands.DashboardCommands,
                            'initialize', initialize)
    started = dashboard_commands.DashboardCommands.initialize
    return then


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
        left_alone, tmp_path, capsys, once_started):
    once_started(lambda: send(tmp_path, command('stop', iteration=20)))
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


def test_take_snapshot_writes_ours_and_the_run_goes_on(
        left_alone, tmp_path, capsys, once_started):
    # Between the epochs' snapshots 15 and 30: among the last two kept.
    once_started(lambda: send(tmp_path, command('take_snapshot',
                                                iteration=22)))
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
        left_alone, tmp_path, capsys, once_started):
    once_started(lambda: send(tmp_path, command(
        'adjust_hyperparams', iteration=3, body={
            'optimizer': 'FlatAdam', 'hyperparam': {'alpha': 0.1}}),
        command('rewind', iteration=4)))
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
        tmp_path, capsys, once_started):
    """Those in the file as the run starts are an earlier run's, whatever
    their clock says; the run's clock may be in another zone than the
    server's."""
    # Sent by a server whose clock runs ahead, or in a zone east of ours.
    earlier = command('take_snapshot', created_at='9999-01-01T00:00:00')
    send(tmp_path, earlier)
    west = datetime.datetime.now() - datetime.timedelta(hours=14)
    odd = command('stop')
    odd['request']['schedule'] = ['epoch', 1]
    crafted = command('take_snapshot')
    crafted['request']['created_at'] = '9999'
    once_started(lambda: send(
        tmp_path, earlier, command('rewind', created_at=west.isoformat()),
        command('stop', iteration=0), odd, crafted,
        {'name': 'stop', 'request': [], 'response': None}))
    train(tmp_path, '-e', '1')
    err = capsys.readouterr().err.splitlines()
    assert 'Stopped' not in err
    refusals = [
        ('take_snapshot', 'sent before this run started'),
        ('rewind', "unknown command 'rewind': ignored"),
        ('stop', 'iteration 0 had passed when it came'),
        ('stop', 'a schedule that is not an epoch or iteration'),
        ('take_snapshot', 'not a request as ChainerUI sends it: ignored'),
        ('stop', 'not a request as ChainerUI sends it: ignored')]
    assert [line for line in err if line.startswith('dashboard: ')] == [
        'dashboard: {} at iteration 1: {}'.format(name, why)
        for name, why in refusals]
    assert responses(tmp_path) == [(name, ('FAILURE', 1, why))
                                   for name, why in refusals]
    assert not list(tmp_path.glob('snapshot_iter_1'))


def test_a_command_name_is_one_line_whatever_it_holds(tmp_path, capsys,
                                                      once_started):
    """A name that held a newline printed a line of its own: any line."""
    name = 'rewind\nSaved the model to x\x1b[2J'
    once_started(lambda: send(tmp_path, command(name)))
    train(tmp_path, '-e', '1')
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if 'rewind' in line] == [
        'dashboard: rewind\\nSaved the model to x\\x1b[2J at iteration 1: '
        'unknown command {!r}: ignored'.format(name)]
    assert not any(line.startswith('Saved') for line in err.splitlines())


def test_a_schedule_of_true_is_refused(tmp_path, capsys, once_started):
    """JSON's true is no iteration, though Python's True == 1."""
    once_started(lambda: send(tmp_path, command('take_snapshot',
                                                iteration=True)))
    train(tmp_path, '-e', '1')
    assert responses(tmp_path) == [('take_snapshot', (
        'FAILURE', 1, 'a schedule that is not an epoch or iteration'))]
    assert not (tmp_path / 'snapshot_iter_1').exists()


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


def test_a_commands_link_is_ignored_in_one_line_and_left_alone(
        tmp_path, capsys, once_started):
    """The run replaces the file it answers: through a link it would read
    what the link names, and replace the link with a file."""
    elsewhere = tmp_path / 'elsewhere'
    send(elsewhere, command('stop'))
    before = (elsewhere / 'commands').read_bytes()
    out = tmp_path / 'out'
    out.mkdir()
    link = out / 'commands'
    once_started(lambda: link.symlink_to(elsewhere / 'commands'))
    train(out, '-e', '1')
    assert [line for line in capsys.readouterr().err.splitlines()
            if line.startswith('dashboard: ')] == [
        'dashboard: ignored {} is a symbolic link, which is refused'.format(
            link)]
    assert len(read_log(out)) == 1
    assert os.readlink(str(link)) == str(elsewhere / 'commands')
    assert (elsewhere / 'commands').read_bytes() == before


def test_the_args_file_holds_the_run_arguments_for_chainerui(tmp_path):
    train(tmp_path, '-e', '1')
    assert json.loads((tmp_path / 'args').read_text()) == json.loads(
        (tmp_path / 'args.json').read_text())
    assert json.loads((tmp_path / 'args').read_text())['unit'] == 6


def test_responses_past_the_size_limit_are_not_written(tmp_path, capsys,
                                                       once_started):
    """The run never writes a commands file it would refuse to read."""
    long_name = 'x' * (dashboard_commands.MAX_COMMANDS_BYTES * 2 // 3)
    sent = command(long_name, iteration=3)
    once_started(lambda: send(tmp_path, sent))
    before = json.dumps([sent]).encode()
    train(tmp_path, '-e', '1')
    err = capsys.readouterr().err
    assert 'dashboard: wrote no responses: {} would be larger than {} bytes ' \
        'as the run writes it'.format(tmp_path / 'commands',
                                      dashboard_commands.MAX_COMMANDS_BYTES) \
        in err
    assert (tmp_path / 'commands').read_bytes() == before
