"""What a hostile or unlucky user does: two runs at once, kills and Ctrl-C
at any moment, SIGTERM, full disks, damaged and crafted files."""
import contextlib
import errno
import fcntl
import io
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import termios
import threading
import time
import zipfile

import numpy
import pytest

import cli
import dashboard
import out_folder
import predict_rnn
import quiet_start
from study import records as records_module
import snapshots
from study import sweep
import train_rnn
import updaters

from helpers import ROOT, wait_for, write_npz

# 300 words / 4 streams / 5 steps = 15 updates per epoch.
TINY = ['-u', '6', '--vocab', '3', '-b', '4', '-l', '5']


def launch(*args, **kwargs):
    """A train_rnn.py process, its output captured."""
    return subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'train_rnn.py')] + list(args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def run_cli(*args, **kwargs):
    process = launch(*args, **kwargs)
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout, stderr


def assert_one_line_error(stderr, message):
    assert stderr.count('\n') == 1, stderr
    assert stderr.startswith('train_rnn.py: error: ') and message in stderr, \
        stderr


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    """A finished tiny run of 2 epochs (rnn), its folder."""
    out = tmp_path_factory.mktemp('finished')
    assert train_rnn.main(['-o', str(out), '-e', '2'] + TINY) == 0
    return out


@pytest.fixture(scope='module')
def cut(tmp_path_factory):
    """A tiny run of 2 epochs (rnn) stopped by SIGTERM at update 22, 7
    updates into its second epoch, its summary of them in its snapshot:
    its folder."""
    out = tmp_path_factory.mktemp('cut')
    update = updaters.BPTTUpdater.update_core

    def update_and_stop(updater):
        update(updater)
        if updater.iteration == 21:  # the update that makes it 22
            os.kill(os.getpid(), signal.SIGTERM)

    said = io.StringIO()  # not the first test's to read
    with pytest.MonkeyPatch.context() as patch, \
            contextlib.redirect_stderr(said):
        patch.setattr(updaters.BPTTUpdater, 'update_core', update_and_stop)
        assert train_rnn.main(['-o', str(out), '-e', '2'] + TINY) == \
            128 + signal.SIGTERM
    assert 'Stopped at iteration 22 ' in said.getvalue()
    return out


def files_of(folder):
    """{relative path: bytes} of everything under folder but our lock."""
    contents = {}
    for parent, _, names in os.walk(str(folder)):
        for name in names:
            path = os.path.join(parent, name)
            contents[os.path.relpath(path, str(folder))] = \
                open(path, 'rb').read()
    return contents


# Two runs into one folder.

def test_two_runs_into_one_folder_one_is_refused_and_nothing_is_lost(
        tmp_path):
    rng = random.Random(0)
    for attempt in range(6):
        out = tmp_path / str(attempt)
        first = launch('-o', str(out), '-a', 'rnn', '-e', '3', *TINY)
        time.sleep(rng.uniform(0, 1.5))  # imports take about a second
        second = launch('-o', str(out), '-a', 'gru', '-e', '3', *TINY)
        results = {}
        for arch, process in (('rnn', first), ('gru', second)):
            _, stderr = process.communicate(timeout=300)
            results[arch] = process.returncode, stderr
        codes = sorted(code for code, _ in results.values())
        assert codes in ([0, 0], [0, 2]), results
        for arch, (code, stderr) in results.items():
            model = out / out_folder.model_name_of(arch)
            if code == 0:
                assert model.exists()
            else:
                assert_one_line_error(stderr, 'is in use by another run')
                assert not model.exists()
        if codes == [0, 2]:  # the run that was refused left no trace
            winner = next(arch for arch, (code, _) in results.items()
                          if code == 0)
            with open(str(out / 'args.json')) as f:
                assert json.load(f)['arch'] == winner
            assert len(json.load(open(str(
                out / out_folder.PRIVATE / out_folder.RECORD)))['models']) == 1


def test_a_run_refused_by_the_lock_touches_nothing(finished, tmp_path):
    out = tmp_path / 'run'
    os.system('cp -r {} {}'.format(finished, out))
    before = files_of(out)
    folder = out_folder.OutFolder(str(out))
    folder.claim()  # as a running train_rnn.py holds it
    try:
        code, _, stderr = run_cli('-o', str(out), '-e', '1', *TINY)
    finally:
        folder.release()
    assert code == 2
    assert_one_line_error(stderr, '{} is in use by another run'.format(out))
    assert files_of(out) == before


# Files the run did not write.

def test_a_run_never_deletes_files_it_did_not_write(tmp_path):
    """Names our writes once used, and our file names written by others."""
    out = tmp_path / 'd'
    (out / 'log_archive').mkdir(parents=True)
    (out / 'log_archive' / 'log.json').write_text('[]')
    (out / '.notes.0123abcd.tmp').write_text('keep')
    (out / 'args.json').write_text('x')
    before = files_of(out)
    code, _, stderr = run_cli('-o', str(out), '-e', '1', *TINY)
    assert code == 2
    assert_one_line_error(
        stderr, 'holds args.json that train_rnn.py did not write there')
    assert files_of(out) == before
    (out / 'args.json').unlink()
    code, _, stderr = run_cli('-o', str(out), '-e', '1', *TINY)
    assert code == 0, stderr
    after = files_of(out)
    for name, data in before.items():
        if name != 'args.json':
            assert after[name] == data


def test_a_copied_model_survives_a_resumed_run(finished, tmp_path):
    out = tmp_path / 'run'
    os.system('cp -r {} {}'.format(finished, out))
    model = out / 'rnn_simple_sequence.model'
    copy = out / 'best_simple_sequence.model'
    copy.write_bytes(model.read_bytes())
    assert train_rnn.main(['-r', str(out), '-e', '3']) == 0
    assert copy.read_bytes() != model.read_bytes()
    assert snapshots.read_npz(str(copy)).keys() == \
        snapshots.read_npz(str(model)).keys()


# Signals.

def wait_for_epoch(out, process, epoch):
    wait_for(str(out / 'snapshot_iter_{}'.format(15 * epoch)), process)


@pytest.mark.parametrize('delay', [0.15, 0.4])
def test_ctrl_c_while_starting_is_one_line(tmp_path, delay):
    process = launch('-o', str(tmp_path / 'out'), '-e', '1', *TINY)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip('the run ended before the signal came')
    assert process.returncode == cli.EXIT_INTERRUPTED
    # At most the notice that it stops after this update, then one line.
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 or len(lines) == 2 and 'stopping' in lines[0], \
        stderr
    assert 'nothing was written' in lines[-1] or 'snapshot' in lines[-1]


@pytest.mark.parametrize('number', quiet_start.STOPPING)
@pytest.mark.parametrize('script', quiet_start.SCRIPTS + quiet_start.MODULES)
def test_a_signal_before_a_script_runs_its_first_line_is_one_line(
        script, number, tmp_path):
    """Python reads and compiles a script before it runs a line: a Ctrl-C
    then came before the script could install quiet_start (a traceback,
    killed by SIGINT); SIGHUP killed it without a word. This one comes as
    its first line. (A module run with -m was left out: sys.argv names no
    module while Python starts.)"""
    if script in quiet_start.MODULES:
        package, name = script.split('.')
        (tmp_path / package).mkdir()
        (tmp_path / package / '__init__.py').write_text('')
        path = tmp_path / package / (name + '.py')
        command = ['-m', script]
    else:
        path = tmp_path / script
        command = [str(path)]
    path.write_text('import os\nos.kill(os.getpid(), {})\n'
                    'print("not interrupted")\n'.format(int(number)))
    completed = subprocess.run([sys.executable] + command, cwd=tmp_path,
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 128 + number
    assert completed.stderr == \
        'Interrupted while starting: nothing was written.\n'
    assert completed.stdout == ''


@pytest.mark.parametrize('orig_argv, module', [
    (['python', '-m', 'study.sweep', '-o', 'x'], 'study.sweep'),
    (['python', '-mstudy.counter'], 'study.counter'),
    (['python', '-B', '-X', 'dev', '-W', 'error', '-m', 'study.dashboard'],
     'study.dashboard'),
    (['python', 'train_rnn.py', '-m', 'x'], None),
    (['python', '-c', 'pass', '-m', 'x'], None),
    (['python', '-m'], None),
    # The MPI sweep: every rank imports study.sweep, the workers too.
    (['python', '-m', 'mpi4py.futures', '-m', 'study.sweep'], 'study.sweep'),
    (['python', '-m', 'mpi4py.futures', 'script.py'], None),
])
def test_the_module_that_python_starts_is_read_from_its_command_line(
        orig_argv, module, monkeypatch):
    monkeypatch.setattr(sys, 'orig_argv', orig_argv)
    assert quiet_start.module_run() == module


def assert_resumes_as(out, alone):
    """-r out ends with the lstm model of the run in alone, bit for bit."""
    assert train_rnn.main(['-r', str(out)]) == 0
    for name, array in snapshots.read_npz(
            train_rnn.model_path(str(alone), 'lstm')).items():
        numpy.testing.assert_array_equal(
            snapshots.read_npz(train_rnn.model_path(str(out), 'lstm'))[name],
            array)


@pytest.mark.parametrize('number', [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_writes_a_snapshot_and_resumes_exactly(tmp_path, number):
    """SIGHUP (a terminal or ssh session closed) killed the run, without a
    snapshot, its dashboard record left saying running."""
    alone = tmp_path / 'alone'
    assert train_rnn.main(['-o', str(alone), '-a', 'lstm', '-e', '6'] +
                          TINY) == 0
    out = tmp_path / 'out'
    process = launch('-o', str(out), '-a', 'lstm', '-e', '6', *TINY)
    wait_for_epoch(out, process, 1)
    process.send_signal(number)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + number
    stopped = int(re.search(r'Stopped at iteration (\d+)', stderr).group(1))
    # No empty line first: stderr is no terminal, with no line to end.
    assert stderr == (
        '{}: stopping after this update to write a snapshot{}\nStopped at '
        'iteration {} (epoch {:.2f}) with a snapshot in {}. Resume with: {}\n'
        .format(signal.Signals(number).name, ' (Ctrl-C again to quit at '
                'once)' if number == signal.SIGTERM else '', stopped,
                stopped / 15, out, cli.command_line('train_rnn.py', '-r',
                                                    str(out))))
    assert snapshots.latest_snapshot(str(out)).endswith(
        'snapshot_iter_{}'.format(stopped))
    with open(str(out / '.chainerui_commands')) as f:
        assert json.load(f)['job_status'] == 'stopped'
    assert_resumes_as(out, alone)


def test_a_run_under_nohup_outlives_a_hangup(tmp_path):
    """The scripts replaced nohup's SIG_IGN with their stop (hostile pass
    12): a run started to outlive the terminal stopped with it."""
    out = tmp_path / 'out'
    process = launch('-o', str(out), '-e', '10', *TINY,
                     preexec_fn=lambda: signal.signal(signal.SIGHUP,
                                                      signal.SIG_IGN))
    wait_for_epoch(out, process, 1)
    assert process.poll() is None
    process.send_signal(signal.SIGHUP)
    _, stderr = process.communicate(timeout=120)
    assert (process.returncode, stderr) == (0, '')
    assert os.path.exists(train_rnn.model_path(str(out), 'rnn'))


def on_a_terminal_that_hangs_up(out, argv, stderr):
    """Run train_rnn.py argv with a pseudo-terminal as its controlling
    terminal, stdin and stdout (stderr: a file), and close the terminal
    once its first epoch's snapshot is in out: the kernel hangs it up, as
    when an ssh session or a terminal window is closed. The process."""
    leader, follower = os.openpty()
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'train_rnn.py')] + argv,
        stdin=follower, stdout=follower, stderr=stderr,
        start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(follower)

    def drain():  # so that the run never waits on a full terminal
        try:
            while os.read(leader, 4096):
                pass
        except OSError:  # EIO once the run has let go of it
            pass
    threading.Thread(target=drain, daemon=True).start()
    wait_for_epoch(out, process, 1)
    os.close(leader)
    process.wait(timeout=120)
    return process


def test_a_terminal_that_hangs_up_gets_a_snapshot_and_resumes_exactly(
        tmp_path):
    """Drawn on a terminal that had hung up, the progress bar's writes
    failed: the run blamed its out folder and exited 1, with no snapshot."""
    alone = tmp_path / 'alone'
    assert train_rnn.main(['-o', str(alone), '-a', 'lstm', '-e', '6'] +
                          TINY) == 0
    out = tmp_path / 'out'
    with open(str(tmp_path / 'stderr'), 'w+') as stderr:
        process = on_a_terminal_that_hangs_up(
            out, ['-o', str(out), '-a', 'lstm', '-e', '6'] + TINY, stderr)
        stderr.seek(0)
        lines = stderr.read().splitlines()
    assert process.returncode == 128 + signal.SIGHUP
    assert len(lines) == 2, lines
    assert lines[0].startswith('SIGHUP: ')
    stopped = int(re.search(r'^Stopped at iteration (\d+) ',
                            lines[1]).group(1))
    assert snapshots.latest_snapshot(str(out)).endswith(
        'snapshot_iter_{}'.format(stopped))
    assert_resumes_as(out, alone)


def stopped_by(number):
    """The stop trigger of a run in training that received signal number,
    in this process, whose handlers it leaves as they were."""
    trigger = train_rnn.StopOnRequest((1, 'epoch'))
    handlers = {each: signal.getsignal(each) for each in quiet_start.STOPPING}
    try:
        with cli.Signals() as signals, signals.stopping(trigger):
            signal.raise_signal(number)
    finally:  # which a stopped run leaves ignored
        for each, handler in handlers.items():
            signal.signal(each, handler)
    return trigger


def test_a_signal_on_a_terminal_starts_a_line_of_its_own(
        monkeypatch, capsys):
    """Off the line that ^C, or the progress bar on stdout, left open."""
    monkeypatch.setattr(sys.stderr, 'isatty', lambda: True)
    assert stopped_by(signal.SIGTERM).requested
    assert capsys.readouterr().err.startswith('\nSIGTERM: stopping after')


@pytest.mark.parametrize('number, said', [
    (signal.SIGTERM, 'SIGTERM: stopping after this update to write a '
     'snapshot (Ctrl-C again to quit at once)\n'),
    (signal.SIGHUP, 'SIGHUP: stopping after this update to write a '
     'snapshot\n')])
def test_a_hangup_offers_no_ctrl_c(number, said, capsys):
    """Closing the terminal took the keyboard a Ctrl-C would come from."""
    stopped_by(number)
    assert capsys.readouterr().err == said


# train_rnn.py, run with signal argv[1] sent to it at moment argv[2]: as
# it releases its out folder, past its last check, or as Python exits.
SIGNAL_LATE = """
import atexit, os, runpy, sys
import out_folder
number, moment = int(sys.argv.pop(1)), sys.argv.pop(1)
def send(*args):
    os.kill(os.getpid(), number)
if moment == 'release':
    out_folder.OutFolder.release = send
else:
    atexit.register(send)
runpy.run_path('train_rnn.py', run_name='__main__')
"""


@pytest.mark.parametrize('moment', ['release', 'exit'])
@pytest.mark.parametrize('number, name', [
    (signal.SIGINT, 'Ctrl-C'), (signal.SIGTERM, 'SIGTERM'),
    (signal.SIGHUP, 'SIGHUP')])
def test_a_signal_once_the_model_is_saved_is_said(number, name, moment,
                                                  tmp_path):
    """Past the run's last check it ended the run with status 0 and no
    word."""
    completed = subprocess.run(
        [sys.executable, '-c', SIGNAL_LATE, str(int(number)), moment,
         '-o', str(tmp_path), '-e', '1'] + TINY,
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 128 + number
    assert completed.stderr == \
        '{} came as the run finished: its model is written.\n'.format(name)
    assert completed.stdout.splitlines()[-1].startswith('Saved the model')
    assert 'embed/W' in snapshots.read_npz(
        train_rnn.model_path(str(tmp_path), 'rnn'))


def test_ctrl_c_twice_quits_at_once_with_the_hint(tmp_path):
    out = tmp_path / 'out'
    process = launch('-o', str(out), '-a', 'lstm', '-e', '6', *TINY)
    wait_for_epoch(out, process, 1)
    process.send_signal(signal.SIGINT)
    time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == cli.EXIT_INTERRUPTED
    assert 'Traceback' not in stderr and 'Exception ignored' not in stderr
    assert '-r ' in stderr.strip().splitlines()[-1]
    assert not any(name.endswith('.tmp') for name in os.listdir(str(out)))
    assert train_rnn.main(['-r', str(out)]) == 0


@pytest.mark.parametrize('seed', range(4))
def test_ctrl_c_at_a_random_moment_ends_cleanly_and_resumes(tmp_path, seed):
    out = tmp_path / 'out'
    process = launch('-o', str(out), '-e', '3', *TINY)
    time.sleep(random.Random(seed).uniform(0.5, 3))
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode in (0, cli.EXIT_INTERRUPTED)
    assert 'Traceback' not in stderr and 'Exception ignored' not in stderr
    if os.path.exists(str(out / 'snapshot_iter_15')):
        assert train_rnn.main(['-r', str(out)]) == 0
        assert (out / 'rnn_simple_sequence.model').exists()


# Runs a script with an object whose deletion, as Python unloads the
# modules on its way out, sends the script a Ctrl-C.
SIGNAL_AT_SHUTDOWN = """
import os, runpy, signal, sys, types
class CtrlCWhenDeleted:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
module = types.ModuleType('ctrl_c_when_deleted')
module.it = CtrlCWhenDeleted()
sys.modules[module.__name__] = module
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def test_ctrl_c_while_python_shuts_down_leaves_the_status(tmp_path):
    out = str(tmp_path / 'out')
    for script, args in (('train_rnn.py', ['-o', out, '-e', '1'] + TINY),
                         ('predict_rnn.py', ['-o', out, '--vocab', '3'])):
        process = subprocess.run(
            [sys.executable, '-c', SIGNAL_AT_SHUTDOWN,
             os.path.join(ROOT, script)] + args,
            capture_output=True, text=True, timeout=300)
        assert (process.returncode, process.stderr) == (0, ''), script


def ctrl_c_twice_after_renaming(monkeypatch, name):
    """Make os.replace, once it has renamed a file to name, receive two
    Ctrl-C: the second raises KeyboardInterrupt just after the rename."""
    rename = os.replace

    def replace(source, target):
        rename(source, target)
        if os.path.basename(target) == name:
            for _ in range(2):
                os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, 'replace', replace)


@pytest.mark.parametrize('name, message', [
    ('rnn_simple_sequence.model', 'Ctrl-C: quit at once; the latest '
     'snapshot, '),
    ('args.json', 'Ctrl-C: stopped before training started.'),
    (out_folder.RECORD, 'Ctrl-C: stopped before training started.'),
])
def test_ctrl_c_just_after_a_rename_is_no_write_failure(
        name, message, tmp_path, monkeypatch, capsys):
    out = tmp_path / 'out'
    ctrl_c_twice_after_renaming(monkeypatch, name)
    assert train_rnn.main(['-o', str(out), '-e', '1'] + TINY) == \
        cli.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith(message), err
    private = out / out_folder.PRIVATE
    assert not private.exists() or set(os.listdir(str(private))) <= {
        out_folder.LOCK, out_folder.RECORD}  # no temporary left
    if name.endswith('.model'):
        assert 'embed/W' in snapshots.read_npz(str(out / name))
    else:  # what it wrote is still its own: the next run starts there
        monkeypatch.undo()
        assert train_rnn.main(['-o', str(out), '-e', '1'] + TINY) == 0


@pytest.mark.parametrize('renames', range(1, 10))
def test_sigterm_after_any_rename_of_the_start_leaves_a_run_that_goes_on(
        renames, tmp_path, monkeypatch, capsys):
    """Up to the first update's. One that came as the trainer set up its
    extensions wrote a snapshot of iteration 0, before Adam had a state,
    which the run's own resume refused."""
    out = tmp_path / 'out'
    rename, done = os.replace, []

    def replace(source, target):
        rename(source, target)
        done.append(target)
        if len(done) == renames:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(os, 'replace', replace)
    assert train_rnn.main(['-o', str(out), '-e', '1'] + TINY) == \
        128 + signal.SIGTERM
    last = capsys.readouterr().err.splitlines()[-1]
    monkeypatch.undo()
    if snapshots.latest_snapshot(str(out)) is None:
        assert last == 'SIGTERM: stopped before training; no snapshot of ' \
            'this run exists yet.'
        assert train_rnn.main(['-o', str(out), '-e', '1'] + TINY) == 0
    else:
        assert last.startswith('Stopped at iteration ')
        assert train_rnn.main(['-r', str(out)]) == 0


# A full disk: writes beyond a file size limit fail, as on a full disk.

def test_a_write_that_fails_is_one_line_and_keeps_old_snapshots(tmp_path):
    out = tmp_path / 'out'
    assert train_rnn.main(['-o', str(out), '-e', '1'] + TINY) == 0
    before = (out / 'snapshot_iter_15').read_bytes()

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))

    code, _, stderr = run_cli('-r', str(out), '-e', '3',
                              preexec_fn=limit_file_size)
    assert code == cli.EXIT_FAILED
    assert stderr.count('\n') == 1, stderr
    assert 'writing to {} failed: [Errno 27] File too large'.format(out) \
        in stderr
    assert (out / 'snapshot_iter_15').read_bytes() == before
    assert os.listdir(str(out / out_folder.PRIVATE)) == [
        out_folder.LOCK, out_folder.RECORD] or sorted(os.listdir(
            str(out / out_folder.PRIVATE))) == sorted([out_folder.LOCK,
                                                       out_folder.RECORD])
    assert train_rnn.main(['-r', str(out), '-e', '3']) == 0


# Files that are not what they seem.

def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = str(tmp_path / 'f')
    os.mkfifo(fifo)
    process = launch('-r', fifo)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert_one_line_error(stderr, '{} is not a regular file'.format(fifo))


def rewritten(tmp_path, folder, change):
    """A copy of the latest snapshot in folder with its arrays changed by
    change(arrays); its path."""
    snapshot = snapshots.latest_snapshot(str(folder))
    arrays = snapshots.read_npz(snapshot)
    change(arrays)
    path = tmp_path / os.path.basename(snapshot)
    with open(str(path), 'wb') as f:
        numpy.savez(f, **arrays)
    return str(path)


DROP = object()  # a value of run_args_set: leave the argument out


def run_args_set(**changes):
    def change(arrays):
        recorded = json.loads(str(arrays['run_args']))
        recorded.update(changes)
        arrays['run_args'] = numpy.array(json.dumps(
            {name: value for name, value in recorded.items()
             if value is not DROP}))
    return change


def replaced(key_part, make):
    def change(arrays):
        key = next(key for key in sorted(arrays) if key_part in key)
        arrays[key] = make(arrays[key])
    return change


def first_bias(arrays):
    return next(key for key in sorted(arrays) if
                key.startswith('updater/model:main/predictor/') and
                arrays[key].ndim == 1 and arrays[key].size > 1)


def state_key(arrays):
    return next(key for key in sorted(arrays) if
                key.startswith('updater/model:main/predictor/') and
                arrays[key].ndim == 2 and arrays[key].shape[0] == 4)


def adam_key(part):
    """The key of part (m or v) of Adam's state of the first bias."""
    return lambda arrays: first_bias(arrays).replace(
        'updater/model:main/', 'updater/optimizer:main/') + '/' + part


def set_key(key_of, make):
    def change(arrays):
        key = key_of(arrays)
        arrays[key] = make(arrays[key])
    return change


LOG = 'extensions/LogReport/_log'


def log_set(log):
    def change(arrays):
        arrays[LOG] = numpy.array(json.dumps(log))
    return change


def log_entry_set(index, **fields):
    """Set fields of the log's entry at index."""
    def change(arrays):
        log = json.loads(str(arrays[LOG]))
        log[index].update(fields)
        log_set(log)(arrays)
    return change


SUMMARY = 'extensions/LogReport/_summary/'


def summary_set(entries):
    """Set entries of LogReport's summary, named as under SUMMARY: _names
    to a list, a sum or count to a number, or DROP to leave it out."""
    def change(arrays):
        for name, value in entries.items():
            if value is DROP:
                del arrays[SUMMARY + name]
            else:
                arrays[SUMMARY + name] = numpy.array(
                    json.dumps(value) if name == '_names' else value)
    return change


def random_set(**fields):
    """Set fields of the saved NumPy random state."""
    def change(arrays):
        for name, value in fields.items():
            arrays['updater/random/' + name] = numpy.array(value)
    return change


def counters_set(suffix, value):
    """Set every counter whose key ends with suffix."""
    def change(arrays):
        for key in arrays:
            if key.endswith(suffix):
                arrays[key] = numpy.array(value, arrays[key].dtype)
    return change


CRAFTED = [
    ('a bias that broadcasts', set_key(first_bias, lambda a: a[:1]),
     'does not fit this model'),
    ('a weight that broadcasts', set_key(
        lambda arrays: next(key for key in sorted(arrays) if key.startswith(
            'updater/model:main/predictor/') and arrays[key].ndim == 2 and
            arrays[key].shape[0] != 4), lambda a: a[:, :1]),
     'does not fit this model'),
    ('a state of another batch', set_key(state_key, lambda a: a[:2]),
     'does not fit this model'),
    ('a NaN weight', set_key(first_bias, lambda a: a * numpy.nan),
     'NaN or infinite'),
    ('gradclip an integer', run_args_set(gradclip=5),
     'records arguments that make no run: --gradclip must be a float or '
     'null (got 5)'),
    ('run_args a list', run_args_set(arch=['rnn']), 'make no run'),
    ('run_args a dict', run_args_set(unit={'a': 1}), 'make no run'),
    ('fused a string', run_args_set(fused='yes'), 'make no run'),
    ('processes a string', run_args_set(processes='1'),
     "processes must be a whole number of at least 1 (got '1')"),
    ('keep_snapshots negative', run_args_set(keep_snapshots=-1),
     'keep_snapshots must be a whole number from 0 to 9223372036854775807 '
     '(got -1)'),
    ('unit negative', run_args_set(unit=-5), 'records arguments that make'),
    ('unit huge', run_args_set(unit=10 ** 9), 'of memory'),
    ('negative counter', replaced('updater/iteration',
                                  lambda a: numpy.array(-3)),
     'negative counter'),
    ('a log of strings', log_set(['a']), 'damaged log'),
    ('a log entry of strings', log_set([{'epoch': 'one'}]), 'damaged log'),
    ('a log without epochs', log_set([{'main/loss': 1.0}]), 'damaged log'),
    ('a log nested deep', lambda arrays: arrays.update({
        'extensions/LogReport/_log': numpy.array('[' * 100000)}),
     'not valid JSON'),
    ('run_args repeating a key', lambda arrays: arrays.update({
        'run_args': numpy.array(str(arrays['run_args']).replace(
            '"arch": ', '"arch": "gru", "arch": ', 1))}),
     "the run's arguments: the key 'arch' appears twice in an object"),
    ('a log repeating a key', lambda arrays: arrays.update({
        'extensions/LogReport/_log': numpy.array(str(arrays[
            'extensions/LogReport/_log']).replace(
                '"epoch": ', '"epoch": 7, "epoch": ', 1))}),
     "its log: the key 'epoch' appears twice in an object"),
    ('run_args nested deep', lambda arrays: arrays.update({
        'run_args': numpy.array('[' * 30000 + ']' * 30000)}),
     'not valid JSON'),
    ('streams ahead of the updates', replaced(
        'updater/iterator:main/iteration', lambda a: a + 1),
     'is inconsistent: 30 updates of 5 steps, but its streams moved 151'),
    ('a random position past the key', random_set(position=625),
     'holds an impossible random state: its position is 625, where a whole '
     'number from 0 to 624 belongs'),
    ('a random position far past the key', random_set(position=700),
     'its position is 700'),
    ('a random key of zeros', random_set(
        keys=numpy.zeros(624, numpy.uint32)),
     'holds an impossible random state: its key is zeros'),
    ('a random key of another dtype', random_set(
        keys=numpy.ones(624, numpy.uint64)),
     'its key is uint64 (624,), where uint32 (624,) belongs'),
    ('a random has_gauss of 2', random_set(has_gauss=2),
     'its has_gauss is 2, where a whole number from 0 to 1 belongs'),
    ('Adam counting from 1', counters_set('/t', 1),
     'is inconsistent: 30 updates, but Adam counted 1'),
    ('one of Adam\'s counts off', replaced(
        'optimizer:main/predictor/l2/b/t', lambda a: a + 1),
     'is inconsistent: 30 updates, but Adam counted 30, 31'),
    ('Adam in another epoch', replaced(
        'updater/optimizer:main/epoch', lambda a: a - 1),
     'is inconsistent: its streams are in epoch 2, but Adam counted 1'),
    ('an empty state of a huge shape', set_key(
        state_key, lambda a: numpy.zeros((0, 10 ** 18), a.dtype)),
     'is float32 (0, 1000000000000000000), where float32 (4, 6) belongs'),
    ('no state after 30 updates', set_key(
        state_key, lambda a: numpy.zeros(0, a.dtype)),
     'is float32 (0,), where float32 (4, 6) belongs'),
    ('an entry of no snapshot', lambda arrays: arrays.update(
        extra=numpy.zeros(3)), 'holds extra, which no snapshot of this run '
     'has'),
    ('an entry of a second process', lambda arrays: arrays.update({
        'rank1/updater/iteration': arrays['updater/iteration']}),
     'holds rank1/updater/iteration, which no snapshot of this run has'),
    ('a log summary of an array', lambda arrays: arrays.update({
        'extensions/LogReport/_summary/_summaries/0/_x': numpy.zeros(9)}),
     'holds extensions/LogReport/_summary/_summaries/0/_x, which no '
     'snapshot of this run has'),
    ('an Adam state that broadcasts', set_key(adam_key('m'),
                                              lambda a: a[:1]),
     'does not fit this model: updater/optimizer:main/predictor/'),
    ('a log of a 400-digit epoch', log_set(
        [{'epoch': 10 ** 400, 'iteration': 15}]),
     'holds a damaged log: an entry that is not numbers by name'),
    ('a log of a 400-digit loss', log_set([{'epoch': 1, 'iteration': 15,
                                            'main/loss': -10 ** 400}]),
     'holds a damaged log: an entry that is not numbers by name'),
    # The log must be the one LogReport kept up to the snapshot.
    ('a log of no entries', log_set([]),
     'holds a damaged log: 0 entries, where 2 epochs ended'),
    ('a log entry from elsewhere', log_entry_set(1, epoch=77, iteration=999),
     'holds a damaged log: its entry of epoch 2 says epoch 77, iteration '
     '999, where epoch 2 ended at iteration 30'),
    ('a log entry an update early', log_entry_set(0, iteration=14),
     'its entry of epoch 1 says epoch 1, iteration 14, where epoch 1 ended '
     'at iteration 15'),
    ('a log entry of a name no run logs', log_entry_set(
        0, **{'main/evil': 1.0}),
     'holds a damaged log: an entry of main/evil, which no run logs'),
    ('a log going back in time', log_entry_set(0, elapsed_time=10.0 ** 9),
     'holds a damaged log: its entry of epoch 2 went back in time'),
    ('a log past the snapshot\'s time', log_entry_set(
        1, elapsed_time=10.0 ** 9),
     'holds a damaged log: its elapsed time is '),
    ('an elapsed time longer than since 1970', lambda arrays: arrays.update({
        '_snapshot_elapsed_time': numpy.array(1e300)}),
     'holds a damaged log: its elapsed time is 1e+300, where seconds from 0 '
     'to those since 1970 belong'),
    ('a negative elapsed time', lambda arrays: arrays.update({
        '_snapshot_elapsed_time': numpy.array(-1.0)}),
     'holds a damaged log: its elapsed time is -1.0, where seconds'),
    ('a log summary of words not seen', lambda arrays: arrays.update({
        'extensions/LogReport/_summary/_names': numpy.array('["main/loss"]'),
        'extensions/LogReport/_summary/_summaries/0/_x': numpy.array(1.0),
        'extensions/LogReport/_summary/_summaries/0/_x2': numpy.array(1.0),
        'extensions/LogReport/_summary/_summaries/0/_n': numpy.array(7)}),
     'holds a damaged log: extensions/LogReport/_summary/_names is '
     '["main/loss"], where [] belongs after the 0 updates since its last '
     'entry'),
    ('a log summary beyond its names', summary_set({'_summaries/99/_x': 1.0}),
     'holds a damaged log: extensions/LogReport/_summary/_summaries/99/_x '
     'sums no name: _names holds 0'),
    # What Adam's updates cannot make.
    ('a negative Adam v', set_key(adam_key('v'), lambda a: -1 - a),
     'holds an impossible Adam state: updater/optimizer:main/predictor/'),
    ('a NaN Adam v', set_key(adam_key('v'), lambda a: a * numpy.nan),
     'holds a value that is NaN or infinite in updater/optimizer:main/'),
    ('an infinite Adam m', set_key(adam_key('m'), lambda a: a * numpy.inf),
     'holds a value that is NaN or infinite in updater/optimizer:main/'),
    ('an Adam m its v cannot allow', set_key(adam_key('m'),
                                             lambda a: a * 0 + 1000),
     'm is larger than its v allows (m^2 <= 52.9 v)'),
    # Triggers where the updates are not.
    ('a stop trigger far ahead', replaced(
        'stop_trigger/previous_iteration', lambda a: numpy.array(10 ** 18)),
     'is inconsistent: 30 updates, but stop_trigger/previous_iteration is '
     '1000000000000000000'),
    ('a trigger behind', replaced(
        'extensions/LogReport/_trigger/previous_iteration', lambda a: a - 5),
     'is inconsistent: 30 updates, but extensions/LogReport/_trigger/'
     'previous_iteration is 25'),
    ('a trigger before the start', replaced(
        'extension_triggers/Snapshot/previous_iteration',
        lambda a: a * 0 - 7),
     'but extension_triggers/Snapshot/previous_iteration is -7'),
    ('a trigger in another epoch', replaced(
        'extension_triggers/LogReport/previous_epoch_detail',
        lambda a: a + 1),
     'is inconsistent: extension_triggers/LogReport/previous_epoch_detail '
     'is 3.0, where 2.0 belongs'),
    # Messages that name what was found and what belongs.
    ('a log of a number', lambda arrays: arrays.update({
        LOG: numpy.array(3)}),
     'extensions/LogReport/_log is int64 (), where str () belongs'),
    ('run_args a number', lambda arrays: arrays.update({
        'run_args': numpy.array(1.5)}),
     'run_args is float64 (), where str () belongs'),
    ('run_args without unit', run_args_set(unit=DROP, seed=DROP),
     'does not record the arguments of its run: it lacks seed, unit'),
    ('run_args of an unknown name', run_args_set(lr=0.1),
     'does not record the arguments of its run: it names lr, which '
     'train_rnn.py does not know'),
]

# Crafted on the run cut at update 22: its summary of the 7 updates since
# its last entry, 140 words of which 92 are boundaries.
SUMMED = ['main/loss', 'main/accuracy', 'main/boundary_accuracy']
CRAFTED_CUT = [
    ('a log summary repeating a name', summary_set(
        {'_names': ['main/loss', 'main/loss', 'main/boundary_accuracy']}),
     'holds a damaged log: extensions/LogReport/_summary/_names is '
     '["main/loss", "main/loss", "main/boundary_accuracy"], where '
     '["main/loss", "main/accuracy", "main/boundary_accuracy"] belongs after '
     'the 7 updates since its last entry'),
    ('a log summary of one name', summary_set(dict(
        {'_summaries/{}/{}'.format(index, part): DROP for index in (1, 2)
         for part in ('_x', '_x2', '_n')}, _names=['main/loss'])),
     '_names is ["main/loss"], where ["main/loss", "main/accuracy", '
     '"main/boundary_accuracy"] belongs'),
    ('a log summary of names in another order', summary_set(
        {'_names': SUMMED[::-1]}), '_names is ["main/boundary_accuracy", '
     '"main/accuracy", "main/loss"], where'),
    ('a log summary without a sum', summary_set({'_summaries/1/_x2': DROP}),
     'holds a damaged log: extensions/LogReport/_summary/_summaries/1/_x2 '
     'is missing, where a sum of main/accuracy belongs'),
    ('a log summary beyond its three names', summary_set(
        {'_summaries/3/_n': 140}), 'extensions/LogReport/_summary/'
     '_summaries/3/_n sums no name: _names holds 3'),
    ('a log summary of one word', summary_set(
        {'_summaries/0/_n': 1, '_summaries/0/_x': -1e6}),
     'holds a damaged log: extensions/LogReport/_summary/_summaries/0/_n is '
     '1, where 140 belongs: the words that the 7 updates since its last '
     'entry saw'),
    ('a log summary of a boundary not seen', summary_set(
        {'_summaries/2/_n': 93}), '_summaries/2/_n is 93, where 92 belongs: '
     'the boundaries that the 7 updates since its last entry saw'),
    ('a log summary counting in floats', summary_set(
        {'_summaries/0/_n': 140.0}), 'holds a damaged log: extensions/'
     'LogReport/_summary/_summaries/0/_n is float64 (), where int64 () '
     'belongs'),
    ('a log summary of a negative loss', summary_set(
        {'_summaries/0/_x': -1e6}), 'holds a damaged log: extensions/'
     'LogReport/_summary/_summaries/0/_x is -1e+06, where a sum of losses '
     'is never negative'),
    ('a log summary of huge accuracies', summary_set(
        {'_summaries/1/_x': 1e300}), 'holds a damaged log: extensions/'
     'LogReport/_summary/_summaries/1/_x is 1e+300, where a sum of 140 '
     'accuracies lies from 0 to 140'),
    ('a log summary of a negative accuracy', summary_set(
        {'_summaries/2/_x': -1.0}), '_summaries/2/_x is -1, where a sum of '
     '92 accuracies lies from 0 to 92'),
    ('a log summary of accuracies above 1', summary_set(
        {'_summaries/1/_x2': 48.5}), '_summaries/1/_x2 is 48.5, where '
     'accuracies, at most 1, sum to '),
    ('a log summary of squares too small', summary_set(
        {'_summaries/0/_x2': 1.0}), '_summaries/0/_x2 is 1, where values '
     'that sum to '),
    ('a log summary of an infinite sum', summary_set(
        {'_summaries/0/_x2': numpy.inf}), '_summaries/0/_x2 is inf, where a '
     'finite number belongs'),
]


@pytest.mark.parametrize(
    'base, case, change, message',
    [('finished',) + case for case in CRAFTED] +
    [('cut',) + case for case in CRAFTED_CUT],
    ids=[case[0] for case in CRAFTED + CRAFTED_CUT])
def test_a_crafted_snapshot_is_one_line_before_anything_is_written(
        base, case, change, message, tmp_path, request, capsys):
    path = rewritten(tmp_path, request.getfixturevalue(base), change)
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(['-r', path, '-o', str(out), '-e', '3'])
    assert exit_info.value.code == 2
    assert_one_line_error(capsys.readouterr().err, message)
    assert not out.exists()


def test_a_random_position_that_crashed_numpy_is_one_line(finished,
                                                          tmp_path):
    path = rewritten(tmp_path, finished, random_set(position=10 ** 7))
    code, _, stderr = run_cli('-r', path, '-o', str(tmp_path / 'out'))
    assert code == 2  # not 139, NumPy's segmentation fault
    assert_one_line_error(stderr, 'its position is 10000000')
    assert not (tmp_path / 'out').exists()


def zip_with(path, edit):
    """Rewrite the zip at path with edit(data, offset of the central
    directory) applied to its bytes."""
    data = bytearray(open(path, 'rb').read())
    edit(data, data.rindex(b'PK\x01\x02'))
    open(path, 'wb').write(bytes(data))


@pytest.mark.parametrize('case, edit, message', [
    ('unknown compression', lambda data, at: data.__setitem__(
        slice(at + 10, at + 12), (99).to_bytes(2, 'little')),
     'unknown compression'),
    ('encrypted', lambda data, at: data.__setitem__(at + 8, data[at + 8] | 1),
     'says it is encrypted'),
])
def test_a_damaged_zip_index_is_one_line(case, edit, message, tmp_path,
                                         finished, capsys):
    path = str(tmp_path / 'snapshot_iter_30')
    with open(str(finished / 'snapshot_iter_30'), 'rb') as f:
        open(path, 'wb').write(f.read())
    zip_with(path, edit)
    with pytest.raises(SystemExit):
        train_rnn.main(['-r', path])
    assert_one_line_error(capsys.readouterr().err, message)


def test_an_array_header_declaring_a_huge_array_is_refused(tmp_path):
    path = str(tmp_path / 'huge.npz')
    with zipfile.ZipFile(path, 'w') as archive:
        header = numpy.lib.format.header_data_from_array_1_0(
            numpy.zeros(1, numpy.float32))
        header['shape'] = (10 ** 11,)
        with archive.open('run_args.npy', 'w') as member:
            numpy.lib.format.write_array_header_1_0(member, header)
            member.write(b'\0' * 16)
    with pytest.raises(snapshots.FileError, match='declares 400000000000 '
                       'bytes of data and holds 16'):
        snapshots.read_npz(path)


def with_large_entry(path, name, dtype, shape, chunk):
    """Add to the npz at path the entry name, an array of dtype and shape
    whose data is chunk over and over, deflated: a small file that declares
    a large array."""
    dtype = numpy.dtype(dtype)
    header = {'descr': numpy.lib.format.dtype_to_descr(dtype),
              'fortran_order': False, 'shape': shape}
    n_bytes = math.prod(shape) * dtype.itemsize
    with zipfile.ZipFile(path, 'a', zipfile.ZIP_DEFLATED) as archive:
        with archive.open(name + '.npy', 'w', force_zip64=True) as member:
            numpy.lib.format.write_array_header_1_0(member, header)
            for _ in range(n_bytes // len(chunk)):
                member.write(chunk)


def with_zero_entry(path, name, n_bytes):
    """Add to the npz at path an entry of n_bytes zeros."""
    with_large_entry(path, name, numpy.uint8, (n_bytes,), bytes(2 ** 20))


PEAK_MEMORY_OF_A_RUN = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""


def peak_memory_run(script, *args):
    """(stderr, peak memory in MiB) of one of our scripts run with args."""
    completed = subprocess.run(
        [sys.executable, '-c', PEAK_MEMORY_OF_A_RUN, sys.executable,
         os.path.join(ROOT, script)] + list(args),
        capture_output=True, text=True, timeout=300)
    return completed.stderr, int(completed.stdout)


def test_an_entry_no_snapshot_has_is_refused_before_it_is_read(
        finished, tmp_path):
    path = str(tmp_path / 'snapshot_iter_30')
    with open(str(finished / 'snapshot_iter_30'), 'rb') as f:
        open(path, 'wb').write(f.read())
    with_zero_entry(path, 'extra', 2 ** 30)
    stderr, peak = peak_memory_run('train_rnn.py', '-r', path, '-o',
                                   str(tmp_path / 'out'))
    assert stderr == 'train_rnn.py: error: {} holds extra, which no ' \
        'snapshot of this run has\n'.format(path)
    # MiB: reading the entry would take 1024 (docs/reliability.md).
    assert peak < 256
    assert not (tmp_path / 'out').exists()


def test_an_entry_no_model_has_is_refused_before_it_is_read(
        finished, tmp_path):
    path = str(tmp_path / 'some.model')
    with open(train_rnn.model_path(str(finished), 'rnn'), 'rb') as f:
        open(path, 'wb').write(f.read())
    with_zero_entry(path, 'extra', 2 ** 28)
    stderr, peak = peak_memory_run('predict_rnn.py', '-m', path)
    assert stderr == 'predict_rnn.py: error: {} holds extra, which is no ' \
        'part of this model\n'.format(path)
    assert peak < 256  # MiB: reading the entry would take 256 more


# 2 ** 26 spaces, 256 MiB as NumPy holds text, in a file of 256 KiB.
SPACES = 2 ** 26


@pytest.mark.parametrize('key, limit', [
    ('run_args', 2 ** 16), ('extensions/LogReport/_log', 2 ** 24)])
def test_a_text_bomb_is_refused_before_it_is_read(key, limit, finished,
                                                  tmp_path):
    path = rewritten(tmp_path, finished, lambda arrays: arrays.pop(key))
    with_large_entry(path, key, numpy.dtype(('U', SPACES)), (),
                     ' '.encode('utf-32-le') * 2 ** 18)
    stderr, peak = peak_memory_run('train_rnn.py', '-r', path, '-o',
                                   str(tmp_path / 'out'))
    assert stderr == 'train_rnn.py: error: {}: {} declares {} characters ' \
        'of text, more than the {} this reader takes\n'.format(
            path, key, SPACES, limit)
    # MiB: reading it took 2,500 for 250 million (docs/reliability.md).
    assert peak < 256
    assert not (tmp_path / 'out').exists()


def flipped_bits(path, tmp_path, count, seed):
    """Copies of the file at path, each with one random bit flipped."""
    data = open(path, 'rb').read()
    rng = random.Random(seed)
    for index in range(count):
        bit = rng.randrange(len(data) * 8)
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        copy = str(tmp_path / 'flipped{}'.format(index))
        open(copy, 'wb').write(bytes(damaged))
        yield copy


@pytest.mark.parametrize('name', ['snapshot_iter_30',
                                  'rnn_simple_sequence.model'])
def test_one_flipped_bit_loads_the_same_arrays_or_is_refused(
        name, finished, tmp_path):
    path = str(finished / name)
    original = snapshots.read_npz(path)
    outcomes = {'same': 0, 'refused': 0}
    for copy in flipped_bits(path, tmp_path, 300, len(name)):
        try:
            arrays = snapshots.read_npz(copy)
        except snapshots.FileError:
            outcomes['refused'] += 1
            continue
        assert arrays.keys() == original.keys()
        for key, array in original.items():
            assert arrays[key].dtype == array.dtype, key
            numpy.testing.assert_array_equal(arrays[key], array)
        outcomes['same'] += 1
    assert outcomes['refused'] > 100 and outcomes['same'] > 10, outcomes


# Arguments that cannot make a run.

@pytest.mark.parametrize('argv, message', [
    (['-u', str(10 ** 9)], 'needs about'),
    (['--vocab', str(10 ** 6)], '--vocab must be a whole number from 3 to '
     '100000 (got 1000000)'),
    (['-l', '5000'], '--bproplen 5000 is longer than each of the 10 streams '
                     '(450 words)'),
])
def test_a_run_that_cannot_fit_is_refused_with_the_figures(argv, message,
                                                           tmp_path):
    started = time.monotonic()
    code, _, stderr = run_cli('-o', str(tmp_path / 'out'), *argv)
    assert code == 2
    assert_one_line_error(stderr, message)
    assert time.monotonic() - started < 30
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('name, shown', [
    ('a\nb', 'a\\nb'), ('a\x1b[2Jb', 'a\\x1b[2Jb')])
def test_a_control_character_in_a_path_keeps_the_error_on_one_line(
        name, shown, tmp_path, capsys):
    """An escape sequence, echoed raw, would steer the terminal."""
    with pytest.raises(SystemExit):
        train_rnn.main(['-r', str(tmp_path / name)])
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and shown in err and '\x1b' not in err


def test_a_file_the_dashboard_ignores_is_named_in_one_line(tmp_path, capsys):
    folder = tmp_path / 'a\nb'
    folder.mkdir()
    (folder / 'log').write_text('5')
    assert dashboard.read_json(str(folder), 'log', dashboard.is_log) == []
    assert capsys.readouterr().err == 'dashboard: ignored {}/a\\nb/log: ' \
        'not what ChainerUI reads there\n'.format(tmp_path)


# The sweep's record file.

SWEEP = ['--arch', 'rnn', '--vocab', '3', '--bproplen', '2', '--seed', '0',
         '--tokens', '60', '--eval-every', '20', '--unit', '4', '--grid']


@pytest.mark.parametrize('line, message', [
    ('5', 'line 1 is not a record of study.sweep'),
    ('null', 'line 1 is not a record of study.sweep'),
    ('{"vocab": 3}', 'line 1 is not a record of study.sweep'),
    ('{"arch": "rnn", "boundary_accuracy": "high"}',
     'line 1 is not a record of study.sweep'),
])
def test_a_line_that_is_no_record_is_refused_and_kept(line, message,
                                                      tmp_path, capsys):
    path = tmp_path / 'capacity.jsonl'
    path.write_text(line + '\n{"torn')
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(['-o', str(tmp_path)] + SWEEP)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert path.read_text() == line + '\n{"torn'


def one_record_file(tmp_path):
    """The lines of a sweep's file after its one run."""
    assert sweep.main(['-o', str(tmp_path), '-j', '1'] + SWEEP) == 0
    return (tmp_path / 'capacity.jsonl').read_text().splitlines()


@pytest.mark.parametrize('closing', [False, True])
def test_a_torn_last_line_is_dropped_whatever_its_last_character(
        closing, tmp_path, capsys):
    (line,) = one_record_file(tmp_path)
    # Torn just after an evaluation's closing brace, or inside a number.
    torn = line[:line.index('}') + 1] if closing else line[:-1]
    assert torn.endswith('}') == closing
    path = tmp_path / 'capacity.jsonl'
    path.write_text(line + '\n' + torn)
    records = records_module.RecordFile(str(path)).read(
        sweep.settings_of(sweep.build_parser().parse_args(SWEEP)))
    assert len(records) == 1
    assert path.read_text() == line + '\n'
    # Said, not silent: a full disk tears a record as a kill does.
    assert capsys.readouterr().err == (
        '{} line 2 was cut short (by a kill or a full disk): dropped\n'
        .format(path))


def test_a_last_record_without_its_newline_is_kept_apart_from_the_next(
        tmp_path):
    (line,) = one_record_file(tmp_path)
    path = tmp_path / 'capacity.jsonl'
    path.write_text(line)
    argv = SWEEP[:SWEEP.index('--seed') + 1] + ['0', '1'] + \
        SWEEP[SWEEP.index('--seed') + 2:]
    assert sweep.main(['-o', str(tmp_path), '-j', '1'] + argv) == 0
    lines = path.read_text().splitlines()
    assert lines[0] == line
    assert [json.loads(text)['seed'] for text in lines] == [0, 1]
    assert path.read_text().endswith('}\n')


def test_the_record_file_must_be_a_file(tmp_path, capsys):
    (tmp_path / 'capacity.jsonl').mkdir()
    with pytest.raises(SystemExit):
        sweep.main(['-o', str(tmp_path)] + SWEEP)
    assert 'capacity.jsonl' in capsys.readouterr().err


def test_two_sweeps_on_one_file_run_once_and_count_once(tmp_path, capsys):
    first = records_module.RecordFile(str(tmp_path / 'capacity.jsonl'))
    with pytest.raises(SystemExit):
        sweep.main(['-o', str(tmp_path)] + SWEEP)
    assert 'is in use by another sweep' in capsys.readouterr().err
    first.file.close()
    assert sweep.main(['-o', str(tmp_path), '-j', '1'] + SWEEP) == 0
    lines = (tmp_path / 'capacity.jsonl').read_text().splitlines()
    (tmp_path / 'capacity.jsonl').write_text('\n'.join(lines * 2) + '\n')
    settings = sweep.settings_of(sweep.build_parser().parse_args(SWEEP))
    records = records_module.RecordFile(str(tmp_path / 'capacity.jsonl')).read(
        settings)
    assert len(records) == 1


# What a hostile review found.

def test_a_linked_lock_or_record_file_is_named_a_link_and_refused(
        finished, tmp_path, capsys):
    """O_NOFOLLOW's error, 'Too many levels of symbolic links', said
    nothing of a link."""
    victim = tmp_path / 'victim'
    victim.write_text('mine')
    out = tmp_path / 'out'
    os.system('cp -r {} {}'.format(finished, out))
    lock = out / out_folder.PRIVATE / out_folder.LOCK
    lock.unlink()
    lock.symlink_to(victim)
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(['-o', str(out), '-e', '1'] + TINY)
    assert exit_info.value.code == cli.EXIT_USAGE
    assert_one_line_error(capsys.readouterr().err, (
        'cannot lock the out folder {}: {} is a symbolic link, which is '
        'refused: a lock through it would lock nothing here'.format(
            out, lock)))
    records = tmp_path / 'sweep' / 'capacity.jsonl'
    records.parent.mkdir()
    records.symlink_to(victim)
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(['-o', str(records.parent)] + SWEEP)
    assert exit_info.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err == ('python -m study.sweep: error: {} is a symbolic link, '
                   'which is refused: the sweep would append to the file it '
                   'points to, and cut it short (choose another --out)\n'
                   .format(records))
    assert victim.read_text() == 'mine'


def test_a_lock_that_is_a_folder_is_named(finished, tmp_path, capsys):
    out = tmp_path / 'out'
    os.system('cp -r {} {}'.format(finished, out))
    lock = out / out_folder.PRIVATE / out_folder.LOCK
    lock.unlink()
    lock.mkdir()
    before = files_of(out)
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(['-o', str(out), '-e', '1'] + TINY)
    assert exit_info.value.code == cli.EXIT_USAGE
    assert_one_line_error(capsys.readouterr().err, (
        'cannot lock the out folder {}: {} is a folder, not a file (move it '
        'aside: a run makes its own)'.format(out, lock)))
    assert files_of(out) == before


@pytest.mark.parametrize('name, make', [
    ('args', 'mkdir'), ('log', 'mkdir'), ('args.json', 'mkdir'),
    ('snapshot_iter_15', 'mkdir'), ('rnn_simple_sequence.model', 'mkdir'),
    ('.train_rnn/record.json.tmp', 'mkdir'),
    ('.train_rnn/snapshot_iter_45.tmp', 'mkdir'),
    ('.train_rnn/snapshot_iter_45.tmp', 'touch'),
    ('.train_rnn/commands.tmp', 'mkdir')])
def test_what_is_in_the_way_of_a_write_is_refused_before_anything_goes(
        name, make, finished, tmp_path, capsys):
    """A folder at a name the run writes, or anything at a temporary that
    it writes under (a kill's leftover is removed first): the write would
    fail mid-run, the previous run's files gone."""
    out = tmp_path / 'out'
    os.system('cp -r {} {}'.format(finished, out))
    if (out / name).exists():
        (out / name).unlink()
    getattr(out / name, make)()
    before = files_of(out)
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(['-o', str(out), '-e', '3'] + TINY)
    assert exit_info.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert_one_line_error(err, str(out / name))
    assert 'is a folder, where the run writes a file' in err or \
        'is in the way: the run writes its' in err
    assert files_of(out) == before


def test_a_linked_private_folder_is_refused_and_its_target_kept(tmp_path):
    victim = tmp_path / 'victim'
    victim.mkdir()
    (victim / 'precious.txt').write_text('mine')
    out = tmp_path / 'out'
    out.mkdir()
    (out / out_folder.PRIVATE).symlink_to(victim)
    code, _, stderr = run_cli('-o', str(out), '-e', '1', *TINY)
    assert code == 2
    assert_one_line_error(stderr, 'is not a folder')
    assert (victim / 'precious.txt').read_text() == 'mine'


def test_an_out_folder_in_a_private_folder_is_refused(finished, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(['-o', str(finished / out_folder.PRIVATE), '-e', '1']
                       + TINY)
    assert exit_info.value.code == 2
    assert '--out cannot be a .train_rnn folder' in capsys.readouterr().err


def record_set(**changes):
    """A change of a record's run: its arguments' values, DROP to leave
    one out, or the run's own keys (files, args) replaced whole."""
    def change(record):
        run = record['run']
        for key, value in changes.items():
            if key in run:
                run[key] = value
            elif value is DROP:
                del run['args'][key]
            else:
                run['args'][key] = value
    return change


@pytest.mark.parametrize('change', [
    lambda record: record['run']['files'].extend(
        ['notes.txt', 'rnn_simple_sequence.model']),
    record_set(arch=DROP), record_set(arch=5), record_set(arch=['rnn']),
    record_set(arch='evil'), record_set(arch='a\nb\x1b[31mRED'),
    record_set(args={}), record_set(epoch=DROP), record_set(epoch='2'),
    record_set(epoch=True), record_set(epoch=0),
    lambda record: record.update(models='rnn_simple_sequence.model'),
    lambda record: record['run']['files'].append('log'),
    lambda record: record['run']['files'].append(
        snapshots.snapshot_name(2 ** 63)),
], ids=['a user file and a model', 'no arch', 'arch a number',
        'arch a list', 'arch unknown', 'arch an escape sequence',
        'no arguments', 'no epoch', 'epoch a string', 'epoch true',
        'epoch 0', 'models a name', 'a file named twice',
        'a snapshot past any counter'])
def test_a_damaged_record_is_refused_before_anything_goes(change, finished,
                                                          tmp_path, capsys):
    """What the next run reads of the record is checked as it is read: an
    arch missing crashed _replace once the previous run's files were
    gone."""
    out = tmp_path / 'run'
    shutil.copytree(str(finished), str(out))
    (out / 'notes.txt').write_text('mine')
    path = out / out_folder.PRIVATE / out_folder.RECORD
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))
    assert_refused_as_damaged(out, capsys)


def assert_refused_as_damaged(out, capsys):
    """A run into out is refused for its damaged record, in one line,
    before anything in out changes."""
    before = files_of(out)
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(['-o', str(out), '-a', 'lstm', '-e', '1'] + TINY)
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert_one_line_error(stderr, 'record.json is damaged: move the out '
                          'folder {} aside'.format(out))
    assert '\x1b' not in stderr
    assert files_of(out) == before


def test_a_linked_record_is_refused(finished, tmp_path, capsys):
    """It was read through the link, then replaced by a file."""
    out = tmp_path / 'run'
    shutil.copytree(str(finished), str(out))
    path = out / out_folder.PRIVATE / out_folder.RECORD
    path.rename(tmp_path / 'elsewhere.json')
    path.symlink_to(tmp_path / 'elsewhere.json')
    before = files_of(out)
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(['-o', str(out), '-e', '1'] + TINY)
    assert exit_info.value.code == 2
    assert_one_line_error(capsys.readouterr().err, '{} is a symbolic link, '
                          'which is refused'.format(path))
    assert files_of(out) == before and path.is_symlink()


@pytest.mark.parametrize('damage', ['', 'not json', 'too long'])
def test_a_record_that_is_no_json_or_too_long_is_damaged(
        damage, finished, tmp_path, capsys, monkeypatch):
    """A record of 1 GB was read whole, in 2 GB and 14 s; one that was no
    JSON got no word of what to do."""
    out = tmp_path / 'run'
    shutil.copytree(str(finished), str(out))
    path = out / out_folder.PRIVATE / out_folder.RECORD
    if damage == 'too long':
        monkeypatch.setattr(out_folder, 'MAX_RECORD',
                            len(path.read_bytes()) - 1)
    else:
        path.write_text(damage)
    assert_refused_as_damaged(out, capsys)


def test_a_log_summary_without_its_values_is_refused(finished, tmp_path,
                                                     capsys):
    def names_without_summaries(arrays):
        arrays['extensions/LogReport/_summary/_names'] = numpy.array(
            '["main/loss", "main/accuracy"]')

    path = rewritten(tmp_path, finished, names_without_summaries)
    with pytest.raises(SystemExit):
        train_rnn.main(['-r', path, '-o', str(tmp_path / 'out'), '-e', '3'])
    assert_one_line_error(capsys.readouterr().err,
                          'holds a damaged log: extensions/LogReport/_summary'
                          '/_summaries/0/_x is missing, where a sum of '
                          'main/loss belongs')
    assert not (tmp_path / 'out').exists()


def test_a_small_file_cannot_make_predict_build_a_huge_model(tmp_path,
                                                             capsys):
    path = str(tmp_path / 'big.model')
    write_npz(path, {'run_args': numpy.array(json.dumps(
        {'arch': 'lstm', 'unit': 30000, 'vocab': 3}))})
    with pytest.raises(SystemExit) as exit_info:
        predict_rnn.main(['-m', path])
    assert exit_info.value.code == 2
    assert 'embed/W' in capsys.readouterr().err


def test_a_last_line_that_cannot_start_a_record_is_kept(tmp_path, capsys):
    path = tmp_path / 'capacity.jsonl'
    path.write_text('my note: do not delete')
    with pytest.raises(SystemExit):
        sweep.main(['-o', str(tmp_path)] + SWEEP)
    assert 'line 1 is not a record of study.sweep' in capsys.readouterr().err
    assert path.read_text() == 'my note: do not delete'


def test_a_hint_for_a_folder_named_like_an_option_works_as_copied(tmp_path):
    completed = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'train_rnn.py'), '--out=-dash',
         '-e', '1'] + TINY, cwd=str(tmp_path), capture_output=True,
        text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    command = completed.stdout.split('try it with: ')[1].strip()
    predicted = subprocess.run(command, shell=True, cwd=str(tmp_path),
                               capture_output=True, text=True, timeout=300)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.startswith('Loaded ./-dash/')


def test_a_closed_pipe_does_not_stop_the_run(tmp_path):
    process = launch('-o', str(tmp_path / 'out'), '-e', '2', *TINY)
    process.stdout.readline()
    process.stdout.close()  # as `| head -1` does
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert stderr == ''
    assert (tmp_path / 'out' / 'rnn_simple_sequence.model').exists()


def test_ctrl_c_stops_a_sweep_without_running_the_rest(tmp_path):
    grid = ['--arch', 'rnn', '--vocab', '3', '4', '5', '6', '--bproplen',
            '2', '4', '--seed', '0', '1', '2', '3', '4', '--tokens', '400',
            '--eval-every', '200', '--unit', '4', '-j', '2', '--grid']
    process = subprocess.Popen(
        [sys.executable, '-m', 'study.sweep', '-o', str(tmp_path)] + grid,
        cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    while not process.stdout.readline().startswith('[1/40]'):
        assert process.poll() is None
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == cli.EXIT_INTERRUPTED
    assert 'the same command goes on from there' in stderr
    done = (tmp_path / 'capacity.jsonl').read_text().splitlines()
    assert 1 <= len(done) < 40


def sweep_workers(pid):
    """The process ids of the pool's workers of the sweep pid."""
    with open('/proc/{0}/task/{0}/children'.format(pid)) as f:
        children = f.read().split()
    workers = []
    for child in children:
        with open('/proc/{}/cmdline'.format(child), 'rb') as f:
            if b'spawn_main' in f.read():
                workers.append(int(child))
    return workers


def test_a_sweep_worker_killed_is_one_line_and_the_records_stay(tmp_path):
    process = subprocess.Popen(
        [sys.executable, '-m', 'study.sweep', '-o', str(tmp_path), '-j',
         '2', '--arch', 'rnn', '--vocab', '5', '--bproplen', '3', '--seed',
         '0', '1', '2', '3', '--more-seeds', '--tokens', '30000',
         '--eval-every', '500', '--grid'],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not process.stdout.readline().startswith('[1/4]'):
        assert process.poll() is None
    os.kill(sweep_workers(process.pid)[0], signal.SIGKILL)
    # Not communicate(), which reads the pipe past what readline buffered:
    # a [2/4] that came with [1/4] was lost to the count (CI, 3.12).
    out, err = process.stdout.read(), process.stderr.read()
    process.wait(timeout=120)
    assert process.returncode == cli.EXIT_FAILED
    assert err == ('python -m study.sweep: error: a worker process died '
                   'during a run: the finished runs are in {}; the same '
                   'command goes on from there.\n'.format(
                       tmp_path / 'capacity.jsonl'))
    done = (tmp_path / 'capacity.jsonl').read_text().splitlines()
    assert 1 <= len(done) < 4
    assert len(done) == 1 + sum(line.startswith('[')
                                for line in out.splitlines())


# A cell at which seed 1 learns after 29,580 tokens and seeds 0 and 2 have
# not learned after 60,000: with -j 2 its round is two stacks, seed 0 alone
# and seeds 1 and 2 together.
STREAMED = ['--arch', 'rnn', '--vocab', '8', '--bproplen', '3', '--seed',
            '0', '1', '2', '--more-seeds', '--tokens', '200000',
            '--eval-every', '500', '--unit', '8']


def signal_sweep(folder, flags, after, then=0.0, number=signal.SIGINT,
                 group=True, deadline=120):
    """Run `python -m study.sweep -o folder -j 2 flags`, and once it prints
    a line starting with `after`, and `then` seconds later, send signal
    number as a terminal does (Ctrl-C; SIGHUP, closed), to the sweep and its
    workers (to the sweep alone unless group, as kill does); check it ends
    in the one line, status 128 + number, within deadline seconds. The
    line it waited for."""
    process = subprocess.Popen(
        [sys.executable, '-m', 'study.sweep', '-o', str(folder), '-j', '2']
        + flags, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True)
    try:
        line = process.stdout.readline()
        while line and not line.startswith(after):
            line = process.stdout.readline()
        assert line
        time.sleep(then)
        (os.killpg if group else os.kill)(process.pid, number)
        _, stderr = process.communicate(timeout=deadline)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 128 + number
    assert stderr == '{}: {}.\n'.format(quiet_start.NAMES[number],
                                        going_on(folder))
    return line


def going_on(folder):
    """What a sweep stopped in folder must say of where it goes on from:
    no word of finished runs in a record file that holds none (hostile
    pass 14)."""
    records = folder / 'capacity.jsonl'
    if not records.read_text():
        return 'no run had finished; the same command starts again'
    return 'the finished runs are in {}; the same command goes on from ' \
        'there'.format(records)


def test_kill_stops_a_sweep_with_runs_still_to_start(tmp_path):
    """SIGTERM to the sweep alone: it ends its workers. It had cancelled
    the runs not started first, and Python 3.11's pool, broken by the ended
    workers, failed on those and left the sweep waiting for ever."""
    flags = STREAMED[:10] + ['3', '--stack', '1'] + STREAMED[10:]
    signal_sweep(tmp_path, flags, 'Round', then=1.0, number=signal.SIGTERM,
                 group=False)


@pytest.mark.parametrize('number, group', [(signal.SIGINT, True),
                                           (signal.SIGTERM, False)])
@pytest.mark.parametrize('then', [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8,
                                  1.6])
def test_a_stop_while_a_sweep_s_workers_start_stops_them(tmp_path, then,
                                                         number, group):
    """Ctrl-C (or kill) then seconds after a round begins, while its
    workers start. A Ctrl-C that reached a worker as its Python started
    killed it with a fatal error; one it ignored, it being the parent's to
    say, left the sweep waiting for the worker's whole stack (here some 150
    s a seed). One that stopped the parent while it started a worker left
    the worker reading from a closed pipe (a traceback)."""
    signal_sweep(tmp_path, [
        '--grid', '--arch', 'rnn', '--vocab', '30', '--bproplen', '3',
        '--seed', '0', '1', '2', '--tokens', '2000000', '--unit', '8'],
        'Round', then=then, number=number, group=group, deadline=30)


def test_ctrl_c_keeps_a_sweep_s_seed_that_left_a_stack_training(tmp_path):
    args = sweep.build_parser().parse_args(STREAMED)
    assert sweep.stacks(sweep.plan([], args), 2) == [
        ('rnn', 8, 3, (0,)), ('rnn', 8, 3, (1, 2))]
    # Seed 2 goes on training, 30,000 tokens at least: time for the record
    # of seed 1 to be in the file.
    line = signal_sweep(tmp_path, STREAMED, '[1/3]', then=0.3)
    assert 'seed=1: learned after 29,580 tokens' in line
    (record,) = [json.loads(line) for line in
                 (tmp_path / 'capacity.jsonl').read_text().splitlines()]
    lone = sweep.run_one(('rnn', 8, 3, 1, sweep.settings_of(args)))
    del record['seconds'], lone['seconds']
    assert record == lone


def test_ctrl_c_to_a_sweep_with_a_worker_idle_is_the_parent_s_line(
        tmp_path):
    """The N=5 cell ends in seconds, and its worker waits idle while the
    N=8 cell trains on."""
    signal_sweep(tmp_path, [
        '--grid', '--arch', 'rnn', '--vocab', '5', '8', '--bproplen', '3',
        '--seed', '0', '--more-seeds', '--tokens', '200000', '--eval-every',
        '500', '--unit', '8'], '[1/2]')


def test_ctrl_c_to_a_sweep_whose_workers_train_stacks_is_one_line(tmp_path):
    """Stacks of two seeds, each worker training one and others waiting
    when the Ctrl-C comes: a worker that died of it broke the pool, whose
    thread failed on the cancelled stacks, and the sweep hung."""
    # Six seconds after the round starts, the workers have started and train.
    signal_sweep(tmp_path, [
        '--stack', '2', '--arch', 'rnn', 'lstm', '--vocab', '3', '5', '7',
        '--bproplen', '5', '--seed', '0', '1', '2', '3', '--more-seeds',
        '--tokens', '400000', '--eval-every', '500', '--unit', '8'],
        'Round of', then=6)


def test_a_closed_terminal_s_sighup_to_a_sweep_is_one_line(tmp_path):
    """multiprocessing's resource tracker, which ignores SIGINT and SIGTERM
    alone, died of it: started again, it warned so, and raised on each lock
    the workers gave back."""
    signal_sweep(tmp_path, [
        '--grid', '--arch', 'rnn', '--vocab', '3', '--bproplen', '5',
        '--seed', '0', '1', '2', '3', '--tokens', '20001', '--unit', '6'],
        'Round of', then=1, number=signal.SIGHUP)


def test_a_full_disk_at_the_start_fails_and_leaves_nothing(full_disk,
                                                           capsys):
    # The first write, the record, failed: status 2, "cannot write to the
    # out folder", and the record left behind in .train_rnn/.
    out = full_disk / 'out'
    assert train_rnn.main(['-o', str(out), '-e', '1'] + TINY) == \
        cli.EXIT_FAILED
    assert capsys.readouterr().err == (
        'train_rnn.py: error: writing to {} failed: [Errno 28] No space left '
        'on device\n'.format(out))
    assert os.listdir(str(full_disk)) == ['filler']


@pytest.mark.parametrize('number, said', [
    (signal.SIGTERM, 'SIGTERM: {}.\n'),
    (signal.SIGHUP, 'SIGHUP: {}.\n'),
    (signal.SIGKILL, None)])
def test_a_signal_to_the_sweep_alone_leaves_no_worker_training(
        number, said, tmp_path):
    """kill PID reaches the sweep, not its workers as a terminal's Ctrl-C
    does: they trained on as orphans."""
    process = subprocess.Popen(
        [sys.executable, '-m', 'study.sweep', '-o', str(tmp_path), '-j', '2',
         '--arch', 'rnn', '--vocab', '8', '--bproplen', '5', '--seed', '0',
         '1', '2', '3', '--more-seeds', '--tokens', '2000000', '--eval-every',
         '500', '--unit', '4', '--batchsize', '2'],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        while not process.stdout.readline().startswith('Round of'):
            assert process.poll() is None
        deadline = time.monotonic() + 60
        while len(sweep_workers(process.pid)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        workers = sweep_workers(process.pid)
        time.sleep(3)  # training
        os.kill(process.pid, number)
        _, stderr = process.communicate(timeout=60)
        if said:
            assert (process.returncode, stderr) == (
                128 + number, said.format(going_on(tmp_path)))
        else:  # no word, but its workers must end too
            assert process.returncode == -number
        deadline = time.monotonic() + 30
        while any(os.path.exists('/proc/{}'.format(pid)) for pid in workers):
            assert time.monotonic() < deadline, 'a worker trains on'
            time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):  # none left: good
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


SWEEP_OF_ONE = ['--arch', 'rnn', '--vocab', '3', '--bproplen', '2',
                '--seed', '0', '--tokens', '80', '--eval-every', '40',
                '--unit', '4', '--grid']


def test_a_sweep_into_a_full_disk_is_refused_before_it_runs(tmp_path):
    """It leaves the folder it made with its lock and an empty record file,
    which the next sweep takes as they are: removing them could remove
    another sweep's (hostile pass 15)."""
    out = tmp_path / 'new' / 'sweep'
    # A file size limit fails the writes as a full disk does.
    completed = subprocess.run(
        [sys.executable, '-m', 'study.sweep', '-o', str(out), '-j',
         '1'] + SWEEP_OF_ONE,
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0)))
    assert (completed.returncode, completed.stdout) == (cli.EXIT_USAGE, '')
    assert completed.stderr == (
        'python -m study.sweep: error: cannot write to {}: File too large\n'
        .format(out))
    assert sorted(os.listdir(str(out))) == [sweep.capacity_report.LOCK,
                                            'capacity.jsonl']
    assert (out / 'capacity.jsonl').read_text() == ''


def test_a_sweep_whose_record_cannot_be_written_is_one_line(tmp_path,
                                                            monkeypatch,
                                                            capsys):
    def full(self, record):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(records_module.RecordFile, 'append', full)
    assert sweep.main(['-o', str(tmp_path), '-j', '1'] + SWEEP_OF_ONE) == \
        cli.EXIT_FAILED
    assert capsys.readouterr().err == (
        'python -m study.sweep: error: writing to {} failed: [Errno 28] No '
        'space left on device (the records written so far are kept)\n'
        .format(tmp_path))


def test_entries_are_written_in_name_order():
    """Their order followed the process's hashing: the same run's files
    listed their entries in another order from one process to the next."""
    data = snapshots.npz_bytes({'b': numpy.zeros(1), 'a': numpy.ones(1)})
    assert zipfile.ZipFile(io.BytesIO(bytes(data))).namelist() == [
        'a.npy', 'b.npy']


def run_main(imports, body):
    """Run, in a Python of its own, a script whose main() is body (lines)
    through cli.run_script, as our scripts run theirs."""
    script = '\n'.join(['import {}, sys'.format(imports), 'import cli',
                        'def main():'] + ['    ' + line for line in body] +
                       ['sys.exit(cli.run_script(main))'])
    return subprocess.run([sys.executable, '-c', script], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_an_error_raised_as_a_stop_unwinds_is_the_stop():
    """A Ctrl-C that landed inside matplotlib's _setattr_cm, before the
    attribute it restores was set, came out as an AttributeError traceback
    with status 1 (test_ctrl_c_on_the_report_is_one_line, once in 5 runs)."""
    completed = run_main('os, signal', [
        'try:',
        '    os.kill(os.getpid(), signal.SIGINT)',
        'finally:',
        '    raise AttributeError("eventson")'])
    assert (completed.returncode, completed.stderr) == (
        cli.EXIT_INTERRUPTED, 'Ctrl-C: stopped.\n')


def test_an_error_of_its_own_is_still_a_traceback():
    completed = run_main('os', ['raise AttributeError("a bug")'])
    assert completed.returncode == 1
    assert completed.stderr.endswith('AttributeError: a bug\n')


def test_a_signal_inside_a_ctypes_callback_still_stops_a_study_script():
    """threadpoolctl looks for its libraries through a ctypes callback: a
    Ctrl-C there was dropped with a traceback, the study's script ran to
    its end with status 0, and a second Ctrl-C was ignored."""
    completed = run_main('ctypes, os, signal', [
        'callback = ctypes.CFUNCTYPE(None)(',
        '    lambda: os.kill(os.getpid(), signal.SIGINT))',
        'callback()',
        'print("ran on")',
        'return 0'])
    assert (completed.returncode, completed.stderr) == (
        cli.EXIT_INTERRUPTED, 'Ctrl-C: stopped.\n')
