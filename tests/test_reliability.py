"""Exact resume, atomic and pickle-free files, and the out-folder policy."""
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading

import chainer
import numpy
import pytest

from models import ARCHITECTURES, FUSED_ARCHITECTURES
import cli
import out_folder
import predict_rnn
import snapshots
import train_rnn

from helpers import ROOT, failing_rename, save_npz, wait_for, write_npz

# 300 words / 4 streams / 5 steps = 15 updates per epoch.
TINY = ['-u', '6', '--vocab', '3', '-b', '4', '-l', '5']
# Every architecture on the per-step path, and every fused one.
PATHS = [(arch, False) for arch in sorted(ARCHITECTURES)] + [
    (arch, True) for arch in sorted(FUSED_ARCHITECTURES)]
# Long enough that a signal sent after the first epoch lands mid-run.
LONG = ['-a', 'lstm', '-e', '6']


def train(out, *args):
    assert train_rnn.main(['-o', str(out)] + TINY + list(args)) == 0


def read_log(out):
    with open(os.path.join(str(out), 'log')) as f:
        return json.load(f)


def metrics(out):
    return [{key: value for key, value in entry.items()
             if key != 'elapsed_time'} for entry in read_log(out)]


def final_weights(out, arch):
    return snapshots.read_npz(train_rnn.model_path(str(out), arch))


def assert_same_run(out, expected, arch):
    assert metrics(out) == metrics(expected)
    for plot in ('loss.png', 'accuracy.png'):
        assert (out / plot).read_bytes() == (expected / plot).read_bytes()
    weights, reference = final_weights(out, arch), final_weights(expected,
                                                                 arch)
    assert weights.keys() == reference.keys()
    for name in reference:
        numpy.testing.assert_array_equal(weights[name], reference[name])


def start_cli(out, *args):
    return subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'train_rnn.py'), '-o', str(out)] +
        TINY + list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)


def flags(arch, fused):
    return ['-a', arch] + (['--fused'] if fused else [])


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    """(arch, fused) -> the out folder of a 2-epoch run left alone."""
    runs = {}
    for arch, fused in PATHS:
        out = tmp_path_factory.mktemp(arch)
        train(out, '-e', '2', *flags(arch, fused))
        runs[arch, fused] = out
    return runs


@pytest.fixture(scope='module')
def long_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('long')
    train(out, *LONG)
    return out


@pytest.mark.parametrize('arch, fused', PATHS)
def test_resuming_from_an_epoch_snapshot_is_exact(arch, fused, uninterrupted,
                                                  tmp_path):
    train(tmp_path, '-e', '2', *flags(arch, fused))
    for name in ('snapshot_iter_30',
                 train_rnn.model_path('', arch)):
        os.unlink(os.path.join(str(tmp_path), name))
    # Other state in this process must not matter: the snapshot holds it.
    numpy.random.seed(12345)
    assert train_rnn.main(['-r', str(tmp_path)]) == 0
    assert_same_run(tmp_path, uninterrupted[arch, fused], arch)


def test_a_run_killed_at_any_moment_resumes_exactly(long_run, tmp_path):
    process = start_cli(tmp_path, *LONG)
    wait_for(str(tmp_path / 'snapshot_iter_15'), process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not os.path.exists(train_rnn.model_path(str(tmp_path), 'lstm'))
    assert train_rnn.main(['-r', str(tmp_path)]) == 0
    assert_same_run(tmp_path, long_run, 'lstm')


def test_ctrl_c_stops_with_a_snapshot_that_resumes_exactly(long_run,
                                                           tmp_path):
    process = start_cli(tmp_path, *LONG)
    wait_for(str(tmp_path / 'snapshot_iter_15'), process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == cli.EXIT_INTERRUPTED
    assert 'Traceback' not in stderr
    stopped_at = int(stderr.split('Stopped at iteration ')[1].split()[0])
    assert 15 <= stopped_at < 90
    assert snapshots.latest_snapshot(str(tmp_path)) == \
        snapshots.snapshot_path(str(tmp_path), stopped_at)
    # The hint works as copied into a shell, without the environment.
    command = stderr.split('Resume with: ')[1].strip()
    env = {key: value for key, value in os.environ.items()
           if key not in ('VIRTUAL_ENV', 'PYTHONPATH')}
    env['PATH'] = '/usr/bin:/bin'
    resumed = subprocess.run(command, shell=True, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(tmp_path, long_run, 'lstm')


def test_resume_may_ask_for_more_epochs(uninterrupted, tmp_path):
    train(tmp_path, '-a', 'gru', '-e', '1')
    assert train_rnn.main(['-r', str(tmp_path), '-e', '2']) == 0
    assert_same_run(tmp_path, uninterrupted['gru', False], 'gru')


def test_a_run_killed_before_writing_its_model_only_writes_it(tmp_path):
    train(tmp_path, '-e', '1')
    model = train_rnn.model_path(str(tmp_path), 'rnn')
    written = snapshots.read_npz(model)
    os.unlink(model)
    assert train_rnn.main(['-r', str(tmp_path)]) == 0
    assert len(read_log(tmp_path)) == 1
    assert snapshots.read_npz(model).keys() == written.keys()
    for name, array in written.items():
        numpy.testing.assert_array_equal(snapshots.read_npz(model)[name],
                                         array)


def test_leftovers_of_interrupted_writes_are_removed_and_nothing_else(
        tmp_path):
    train(tmp_path, '-e', '1')
    private = tmp_path / out_folder.PRIVATE
    # A kill while writing a file the record names, or the record.
    leftovers = [private / 'snapshot_iter_15.tmp',
                 private / (out_folder.RECORD + '.tmp')]
    for leftover in leftovers:
        leftover.write_bytes(b'PK\x03\x04 half a file')
    assert snapshots.latest_snapshot(str(tmp_path)) == \
        snapshots.snapshot_path(str(tmp_path), 15)
    # Names like those of temporaries, not written by this run here: the
    # user's, and those of files the record does not name.
    others = [private / '.my notes.deadbeef.tmp',
              private / '.snapshot_iter_30.1f2e3d4c.tmp',
              private / 'my_snapshot_iter_45.tmp',
              tmp_path / '.snapshot_iter_30.1f2e3d4c.tmp',
              tmp_path / 'logk2j4h5g6', tmp_path / 'logk2j4h5g6' / 'log.json',
              tmp_path / '.notes.0123abcd.tmp']
    others[4].mkdir()
    for path in others[:4] + others[5:]:
        path.write_text('mine')
    assert train_rnn.main(['-r', str(tmp_path), '-e', '2']) == 0
    assert not any(leftover.exists() for leftover in leftovers)
    assert all(path.read_text() == 'mine' for path in others
               if path.is_file())
    assert others[4].is_dir()


def test_a_run_continued_in_its_folder_keeps_its_old_model_until_the_end(
        tmp_path):
    train(tmp_path, '-e', '1')
    model = tmp_path / 'rnn_simple_sequence.model'
    first = model.read_bytes()
    copy = tmp_path / 'best_simple_sequence.model'
    copy.write_bytes(first)
    process = start_cli(tmp_path, '-r', str(tmp_path), '-e', '4')
    wait_for(str(tmp_path / 'snapshot_iter_30'), process)
    assert model.read_bytes() == first  # not removed while the run goes on
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert model.read_bytes() == first
    assert train_rnn.main(['-r', str(tmp_path)]) == 0
    assert model.read_bytes() != first
    assert copy.read_bytes() == first


def test_a_write_cut_short_leaves_the_old_file_whole(tmp_path):
    path = str(tmp_path / 'model')
    model = chainer.links.Linear(3, 2)
    save_npz(path, model)
    before = (tmp_path / 'model').read_bytes()

    class Failing:
        def serialize(self, serializer):
            serializer('W', numpy.zeros(3))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_npz(path, Failing())
    with pytest.raises(RuntimeError):
        with snapshots.atomic_file(path) as f:
            f.write(b'half')
            raise RuntimeError
    assert (tmp_path / 'model').read_bytes() == before
    assert os.listdir(str(tmp_path)) == ['model']  # no temporary left


def write_together(folder, contents):
    with snapshots.atomic_files([str(folder / name)
                                 for name in contents]) as files:
        for f, content in zip(files, contents.values()):
            f.write(content)


def files_in(folder):
    """name: (inode, contents) of each file in folder."""
    return {path.name: (path.stat().st_ino, path.read_bytes())
            for path in folder.iterdir()}


@pytest.mark.parametrize('failing', ['a', 'b', 'c'])
@pytest.mark.parametrize('links', [True, False])
def test_files_written_together_are_all_old_where_a_rename_fails(
        tmp_path, monkeypatch, failing, links):
    """The renames made before the one that failed stayed (hostile pass 11):
    new figures beside an old report. Old files are kept under hard links,
    or renamed aside where none can be made (hostile pass 12: a copy kept
    neither the inode nor, where the file could not be read, anything),
    until all are made."""
    write_together(tmp_path, {'a': b'old a', 'b': b'old b'})
    before = files_in(tmp_path)
    if not links:
        def no_link(source, *args, **kwargs):
            os.lstat(source)  # a missing file is missing first, as in link(2)
            raise OSError(errno.EPERM, os.strerror(errno.EPERM))
        monkeypatch.setattr(os, 'link', no_link)
    failing_rename(monkeypatch, failing)
    with pytest.raises(PermissionError):
        write_together(tmp_path, {'a': b'new a', 'b': b'new b',
                                  'c': b'new c'})
    assert files_in(tmp_path) == before


@pytest.mark.parametrize('ignored', [False, True])
def test_a_signal_while_files_are_renamed_together_undoes_them_all(
        tmp_path, monkeypatch, ignored):
    """A Ctrl-C between two renames would leave them half made, and one
    while they are undone would leave them half undone; held till all were
    made, it said "stopped" of files all written (hostile pass 13)."""
    write_together(tmp_path, {'a': b'old a', 'b': b'old b'})
    before = files_in(tmp_path)
    replace = os.replace

    def interrupted(source, target):
        replace(source, target)
        signal.raise_signal(signal.SIGINT)
    monkeypatch.setattr(os, 'replace', interrupted)
    # Python's own, whatever a test before left (a stopped run ignores it).
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN if ignored else
                            signal.default_int_handler)
    try:
        if ignored:
            write_together(tmp_path, {'a': b'new a', 'b': b'new b'})
        else:
            with pytest.raises(KeyboardInterrupt):
                write_together(tmp_path, {'a': b'new a', 'b': b'new b'})
    finally:
        signal.signal(signal.SIGINT, handler)
    if ignored:
        assert {name: contents for name, (_, contents) in files_in(
            tmp_path).items()} == {'a': b'new a', 'b': b'new b'}
    else:
        assert files_in(tmp_path) == before


@pytest.mark.parametrize('make, says', [
    (lambda path: path.symlink_to(path.parent / 'elsewhere'),
     'a symbolic link, which is refused'),
    (lambda path: path.mkdir(), 'Is a directory'),
    (lambda path: os.mkfifo(path), 'not a regular file of one link'),
    # It waited for ever for the sweep that held it under another name
    # (hostile pass 13).
    (lambda path: os.link(path.parent / 'capacity.jsonl', path),
     'not a regular file of one link')])
def test_a_writers_lock_that_is_no_file_is_refused(tmp_path, make, says):
    (tmp_path / 'capacity.jsonl').write_text('')
    make(tmp_path / '.lock')
    with pytest.raises(OSError) as error:
        with snapshots.writing_alone(str(tmp_path / '.lock'), None):
            pass
    assert (error.value.strerror, error.value.filename) == (
        says, str(tmp_path / '.lock'))
    assert not (tmp_path / 'elsewhere').exists()


def test_files_written_through_link_and_dotdot_stay_where_the_system_says(
        tmp_path):
    """abspath read 'link/..' as nothing, the system through the link: the
    temporaries went to another folder than the files, on another file
    system maybe (hostile pass 13)."""
    (tmp_path / 'deep' / 'sub').mkdir(parents=True)
    (tmp_path / 'link').symlink_to('deep/sub')
    folder = str(tmp_path / 'link' / '..')
    with snapshots.atomic_files([os.path.join(folder, 'a'),
                                 os.path.join(folder, 'b')]) as files:
        for f in files:
            f.write(b'new')
        assert len(os.listdir(tmp_path / 'deep')) == 3  # two temporaries
    snapshots.check_takes(folder, ['a', 'b'], 10)
    assert sorted(os.listdir(tmp_path)) == ['deep', 'link']
    assert sorted(os.listdir(tmp_path / 'deep')) == ['a', 'b', 'sub']
    with pytest.raises(cli.UsageError, match='is not a folder'):
        cli.check_folder(os.path.join(folder, 'a'), '-o')


@pytest.mark.parametrize('check', [
    lambda folder: snapshots.check_takes(folder, ['a', 'b'], 10),
    # A report with nothing to check redrew the file, and left the one
    # aside there for good (hostile pass 14).
    lambda folder: snapshots.remove_leftovers(folder, ['a', 'b'])])
def test_an_output_left_aside_by_a_killed_check_is_put_back(tmp_path,
                                                            check):
    """It was left under a name of the temporaries, which the next writer
    removed as a killed one's (hostile pass 13). Where the file was written
    since, the older one aside goes."""
    (tmp_path / '.a.aside').write_text('old a')
    (tmp_path / '.b.aside').write_text('older b')
    (tmp_path / 'b').write_text('new b')
    check(str(tmp_path))
    assert {name: contents for name, (_, contents) in files_in(
        tmp_path).items()} == {'a': b'old a', 'b': b'new b'}
    assert not snapshots.leftover_of('.a.aside', ['a'])


@pytest.mark.parametrize('check', [
    lambda folder: snapshots.check_takes(folder, ['a'], 10),
    lambda folder: snapshots.remove_leftovers(folder, ['a'])])
def test_a_folder_where_an_output_is_set_aside_is_refused(tmp_path, check):
    """It was moved into place, and the sweep or the counter failed after
    every run (hostile pass 14)."""
    (tmp_path / '.a.aside').mkdir()
    with pytest.raises(IsADirectoryError) as error:
        check(str(tmp_path))
    assert error.value.filename == str(tmp_path / '.a.aside')
    assert sorted(os.listdir(tmp_path)) == ['.a.aside']


def test_a_writers_lock_in_a_folder_it_may_not_write_says_so(
        tmp_path, monkeypatch):
    """The read-only retry for another user's lock said "No such file or
    directory" where there was no lock (hostile pass 14)."""
    opened = os.open

    def read_only_folder(path, flags, *mode):
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES),
                                  path)
        return opened(path, flags, *mode)
    monkeypatch.setattr(os, 'open', read_only_folder)
    with pytest.raises(PermissionError):
        with snapshots.writing_alone(str(tmp_path / '.lock'), None):
            pass


def test_a_writers_lock_of_another_user_locks_all_the_same(tmp_path,
                                                           monkeypatch):
    """Opened for writing, another user's lock (0644) refused everyone else
    for good, though they could replace every file (hostile pass 13)."""
    lock = str(tmp_path / '.lock')
    open(lock, 'w').close()
    opened = os.open

    def not_ours(path, flags, *mode):
        if path == lock and flags & os.O_ACCMODE != os.O_RDONLY:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES),
                                  path)
        return opened(path, flags, *mode)
    monkeypatch.setattr(os, 'open', not_ours)
    other = opened(lock, os.O_RDONLY)
    try:
        with snapshots.writing_alone(lock, None):
            with pytest.raises(BlockingIOError):  # held, by a read descriptor
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(other)


def test_a_run_out_through_link_and_dotdot_goes_where_the_system_says(
        tmp_path):
    """Its folders were made where abspath said, and its lock looked for
    where the system said: 'cannot lock the out folder' (hostile pass
    13)."""
    (tmp_path / 'deep' / 'sub').mkdir(parents=True)
    (tmp_path / 'link').symlink_to('deep/sub')
    assert train_rnn.main(['-o', str(tmp_path / 'link' / '..' / 'out'),
                           '-u', '6', '--vocab', '3', '-b', '4', '-l', '5',
                           '-e', '1']) == 0
    assert sorted(os.listdir(tmp_path)) == ['deep', 'link']
    assert 'rnn_simple_sequence.model' in os.listdir(tmp_path / 'deep' /
                                                     'out')


def test_a_second_writer_waits_for_the_first_saying_so(tmp_path):
    lock = str(tmp_path / '.lock')
    waiting, entered = threading.Event(), threading.Event()

    def second():
        with snapshots.writing_alone(lock, waiting.set):
            entered.set()
    with snapshots.writing_alone(lock, None):  # the first does not wait
        thread = threading.Thread(target=second)
        thread.start()
        assert waiting.wait(60)
        assert not entered.wait(0.2)
    thread.join(60)
    assert entered.is_set()


def test_the_latest_snapshot_is_the_one_with_most_iterations(tmp_path):
    for iteration, mtime in ((9, 2000), (10, 1000), (100, 500)):
        path = snapshots.snapshot_path(str(tmp_path), iteration)
        open(path, 'w').close()
        os.utime(path, (mtime, mtime))
    (tmp_path / '.snapshot_iter_500.abcd.tmp').write_text('')
    (tmp_path / 'snapshot_iter_7.bak').write_text('')
    assert snapshots.latest_snapshot(str(tmp_path)) == \
        snapshots.snapshot_path(str(tmp_path), 100)


def test_a_fresh_run_replaces_a_finished_run_and_keeps_other_files(
        tmp_path, capsys):
    train(tmp_path, '-e', '2')
    (tmp_path / 'notes.txt').write_text('mine')
    capsys.readouterr()
    train(tmp_path, '-e', '1', '-a', 'gru')
    assert ('Replaced the log, plots and snapshots of the finished rnn run '
            'in {} (its model rnn_simple_sequence.model stays).'.format(
                tmp_path)) in capsys.readouterr().out.splitlines()
    assert sorted(os.listdir(str(tmp_path))) == [
        '.chainerui_commands', '.train_rnn', 'accuracy.png', 'args',
        'args.json', 'cg.dot', 'gru_simple_sequence.model', 'log',
        'loss.png', 'notes.txt', 'rnn_simple_sequence.model',
        'snapshot_iter_15']


def test_every_architecture_keeps_its_model_side_by_side(tmp_path):
    """The tutorial's result/ held rnn, rnn2 and rnn3 models together."""
    models = {}
    for arch in ('rnn', 'lstm', 'rnn2'):
        train(tmp_path, '-e', '1', '-a', arch)
        models[arch] = final_weights(tmp_path, arch)
    for arch, weights in models.items():
        arrays = final_weights(tmp_path, arch)
        assert json.loads(str(arrays['run_args']))['arch'] == arch
        for name, array in weights.items():
            numpy.testing.assert_array_equal(arrays[name], array)


def test_a_fresh_run_refuses_to_touch_an_unfinished_run(tmp_path, capsys):
    process = start_cli(tmp_path, *LONG)
    wait_for(str(tmp_path / 'snapshot_iter_15'), process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = sorted(os.listdir(str(tmp_path)))
    with pytest.raises(SystemExit) as exit_info:
        train(tmp_path, '-e', '1')
    assert exit_info.value.code == cli.EXIT_USAGE
    assert ('holds an unfinished lstm run, with snapshot_iter_15 to resume '
            'from: resume it with -r, pass --overwrite to replace it') in \
        capsys.readouterr().err
    assert sorted(os.listdir(str(tmp_path))) == before
    train(tmp_path, '-e', '1', '--overwrite')
    assert os.path.exists(train_rnn.model_path(str(tmp_path), 'rnn'))
    assert not os.path.exists(train_rnn.model_path(str(tmp_path), 'lstm'))


def test_an_unfinished_run_without_a_snapshot_is_replaced(tmp_path, capsys):
    """Nothing could resume it: a fresh run goes ahead, and says so."""
    process = start_cli(tmp_path, *LONG)
    wait_for(str(tmp_path / 'args.json'), process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if os.path.exists(str(tmp_path / 'snapshot_iter_15')):
        pytest.skip('the run wrote its first snapshot before the kill')
    train(tmp_path, '-e', '1')
    assert ('Replaced the unfinished lstm run in {}, which had no snapshot '
            'to resume from.'.format(tmp_path)) in capsys.readouterr().out


class WritesAMarker:
    """Unpickling this creates a file: what a malicious snapshot could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, 'w')


class OnTheGPU:
    """What an array of a model on a GPU shows: a dtype and a shape, and,
    as CuPy's does, no implicit conversion to a NumPy array."""

    def __init__(self, array):
        self.dtype, self.shape = array.dtype, array.shape

    def __array__(self, *args, **kwargs):
        raise TypeError('Implicit conversion to a NumPy array is not allowed')


def test_a_run_on_a_gpu_resumes(tmp_path, monkeypatch):
    train(tmp_path, '-e', '1')
    reference_of = snapshots.snapshot_reference

    def on_the_gpu(trainer):
        reference, states = reference_of(trainer)
        return ({key: OnTheGPU(numpy.asarray(value))
                 for key, value in reference.items()},
                {key: reference[key] for key in states})

    monkeypatch.setattr(snapshots, 'snapshot_reference', on_the_gpu)
    assert train_rnn.main(['-r', str(tmp_path), '-e', '2']) == 0
    assert read_log(tmp_path)[-1]['epoch'] == 2


def crafted_snapshot(tmp_path, marker):
    """A real snapshot with one more entry that needs pickle to load."""
    train(tmp_path / 'run', '-e', '1')
    arrays = snapshots.read_npz(str(tmp_path / 'run' / 'snapshot_iter_15'))
    payload = numpy.empty(1, dtype=object)
    payload[0] = WritesAMarker(str(marker))
    arrays['updater/iteration'] = payload
    path = str(tmp_path / 'crafted')
    with open(path, 'wb') as f:
        numpy.savez(f, **arrays)
    return path


def test_a_crafted_snapshot_cannot_run_code(tmp_path, capsys):
    marker = tmp_path / 'pwned'
    path = crafted_snapshot(tmp_path, marker)
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(['-r', path, '-o', str(tmp_path / 'out')])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert 'holds pickled Python objects' in capsys.readouterr().err
    assert not marker.exists()
    assert not (tmp_path / 'out').exists()


def test_a_crafted_model_cannot_run_code(tmp_path, capsys):
    train(tmp_path, '-e', '1')
    marker = tmp_path / 'pwned'
    model = train_rnn.model_path(str(tmp_path), 'rnn')
    arrays = snapshots.read_npz(model)
    payload = numpy.empty(1, dtype=object)
    payload[0] = WritesAMarker(str(marker))
    arrays['embed/W'] = payload
    with open(model, 'wb') as f:
        numpy.savez(f, **arrays)
    with pytest.raises(SystemExit) as exit_info:
        predict_rnn.main(['-o', str(tmp_path)])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert 'holds pickled Python objects' in capsys.readouterr().err
    assert not marker.exists()


def test_nothing_saved_needs_pickle(tmp_path):
    """numpy reads every entry with pickle off, as our reader does."""
    train(tmp_path, '-a', 'lstm', '-e', '1')
    for name in ('snapshot_iter_15', 'lstm_simple_sequence.model'):
        ours = snapshots.read_npz(str(tmp_path / name))
        with numpy.load(str(tmp_path / name), allow_pickle=False) as npz:
            assert sorted(npz.files) == sorted(ours)
            for key in npz.files:
                numpy.testing.assert_array_equal(npz[key], ours[key])


def test_divergence_stops_with_a_message_and_no_nan_in_the_log(
        tmp_path, monkeypatch, capsys):
    def poisoned(arch, n_vocab, n_units, fused):
        predictor = ARCHITECTURES[arch](n_vocab, n_units)
        predictor.l2.W.array[0, 0] = numpy.nan
        return predictor

    monkeypatch.setattr(train_rnn, 'build_model', poisoned)
    assert train_rnn.main(['-o', str(tmp_path)] + TINY) == \
        cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert 'training diverged at iteration 1' in err
    assert '--gradclip' in err
    assert 'Traceback' not in err
    assert not (tmp_path / 'log').exists()


# How many snapshots a run keeps.

def snapshot_names(out):
    return sorted(snapshots.snapshot_iterations(os.listdir(str(out))))


def recorded_snapshots(out):
    with open(str(out / out_folder.PRIVATE / out_folder.RECORD)) as f:
        files = json.load(f)['run']['files']
    return sorted(snapshots.snapshot_iterations(files))


@pytest.mark.parametrize('keep, kept', [
    ([], [45, 60]), (['--keep-snapshots', '1'], [60]),
    (['--keep-snapshots', '0'], [15, 30, 45, 60])])
def test_a_run_keeps_its_last_snapshots(keep, kept, tmp_path):
    train(tmp_path, '-e', '4', *keep)
    assert snapshot_names(tmp_path) == recorded_snapshots(tmp_path) == kept
    assert snapshots.latest_snapshot(str(tmp_path)) == \
        snapshots.snapshot_path(str(tmp_path), 60)


def test_a_resumed_run_keeps_as_many_snapshots_unless_told(tmp_path):
    train(tmp_path, '-e', '2', '--keep-snapshots', '0')
    assert train_rnn.main(['-r', str(tmp_path), '-e', '3']) == 0
    assert snapshot_names(tmp_path) == [15, 30, 45]
    assert train_rnn.main(['-r', str(tmp_path), '-e', '4',
                           '--keep-snapshots', '1']) == 0
    assert snapshot_names(tmp_path) == recorded_snapshots(tmp_path) == [60]


CRASH_ON_REMOVING_A_SNAPSHOT = '''
import os, signal, sys
import snapshots, train_rnn
unlink = os.unlink
def crash(path, *args, **kwargs):
    if snapshots.SNAPSHOT_NAME.fullmatch(os.path.basename(path)):
        os.kill(os.getpid(), signal.SIGKILL)
    unlink(path, *args, **kwargs)
os.unlink = crash
sys.exit(train_rnn.main(sys.argv[1:]))
'''


def test_a_crash_before_an_old_snapshot_goes_loses_nothing(tmp_path):
    run = ['-a', 'lstm', '-e', '3', '--keep-snapshots', '1']
    train(tmp_path / 'alone', *run)
    out = tmp_path / 'out'
    crashed = subprocess.run(
        [sys.executable, '-c', CRASH_ON_REMOVING_A_SNAPSHOT, '-o', str(out)]
        + TINY + run, cwd=ROOT, capture_output=True, timeout=300)
    assert crashed.returncode == -signal.SIGKILL
    # Killed as it removed snapshot_iter_15, snapshot_iter_30 written whole.
    assert snapshot_names(out) == recorded_snapshots(out) == [15, 30]
    assert snapshots.read_snapshot(str(out))[0] == \
        snapshots.snapshot_path(str(out), 30)
    assert train_rnn.main(['-r', str(out)]) == 0
    assert snapshot_names(out) == recorded_snapshots(out) == [45]
    assert_same_run(out, tmp_path / 'alone', 'lstm')


# Snapshots of earlier versions.

def written_before(snapshot, flag):
    """The snapshot as a version that did not know flag wrote it: its run's
    arguments without flag."""
    arrays = snapshots.read_npz(snapshot)
    recorded = json.loads(str(arrays[snapshots.RUN_ARGS_KEY]))
    del recorded[flag]
    arrays[snapshots.RUN_ARGS_KEY] = numpy.array(json.dumps(recorded))
    write_npz(snapshot, arrays)


@pytest.mark.parametrize('flag', train_rnn.RECORDED_LATER)
def test_a_snapshot_from_before_a_flag_resumes_with_its_default(
        flag, uninterrupted, tmp_path):
    train(tmp_path, '-e', '2', '--keep-snapshots', '0')
    os.unlink(str(tmp_path / 'snapshot_iter_30'))
    os.unlink(train_rnn.model_path(str(tmp_path), 'rnn'))
    written_before(str(tmp_path / 'snapshot_iter_15'), flag)
    assert train_rnn.main(['-r', str(tmp_path)]) == 0
    with open(str(tmp_path / 'args.json')) as f:
        assert json.load(f)[flag] == \
            train_rnn.build_parser().get_default(flag)
    assert_same_run(tmp_path, uninterrupted['rnn', False], 'rnn')


@pytest.mark.parametrize('flag', ['arch', 'seed', 'epoch'])
def test_a_snapshot_without_a_first_recorded_argument_is_refused(
        flag, tmp_path, capsys):
    train(tmp_path, '-e', '1')
    written_before(str(tmp_path / 'snapshot_iter_15'), flag)
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(['-r', str(tmp_path), '-e', '2'])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == (
        'train_rnn.py: error: {} does not record the arguments of its '
        'run: it lacks {}\n'.format(tmp_path / 'snapshot_iter_15', flag))


@pytest.mark.parametrize('called', [True, False])
def test_a_snapshot_of_a_run_in_a_terminal_resumes_without_one(
        called, tmp_path):
    """Its progress bar's trigger is the one entry a run outside a
    terminal does not have. Called at every update, as every extension's
    trigger; or never, holding -1, Chainer's mark of a state it did not
    find: a run elsewhere resumed in a terminal and stopped before its
    first update writes it."""
    train(tmp_path, '-e', '1')
    snapshot = str(tmp_path / 'snapshot_iter_15')
    arrays = snapshots.read_npz(snapshot)
    for key in train_rnn.progress_bar_entries():
        state = arrays[key.replace('ProgressBar', 'LogReport')]
        arrays[key] = state if called else numpy.array(-1, state.dtype)
    write_npz(snapshot, arrays)
    assert train_rnn.main(['-r', str(tmp_path), '-e', '2']) == 0
    assert len(read_log(tmp_path)) == 2
