"""study.dashboard: the sweep's records as ChainerUI run folders."""
import contextlib
import errno
import fcntl
import json
import math
import os
import resource
import shlex
import signal
import subprocess
import sys

import pytest

import cli
from helpers import ROOT, study_record, wait_for
from study import dashboard


def record(arch='gru', vocab=5, bproplen=5, seed=0, **more):
    """A record as study.sweep writes it, censored at 200 tokens, and
    evaluated twice."""
    run = study_record(arch, bproplen, vocab, seed)
    run.update(history=run['history'][:2], tokens=200, updates=4,
               settings=dict(run['settings'], tokens=200))
    return dict(run, **more)


def write_records(path, *records, torn=''):
    path.write_text(''.join(json.dumps(r) + '\n' for r in records) + torn)
    return str(path)


def test_each_run_becomes_a_folder_of_its_cell(tmp_path, capsys):
    records = write_records(
        tmp_path / 'capacity.jsonl', record(seed=0), record(seed=1),
        record(arch='rnn', seed=0, vocab=6), torn='{"arch": "gr')
    assert dashboard.main([records, str(tmp_path / 'ui')]) == 0
    assert capsys.readouterr().out == (
        'Wrote 3 runs in 2 cells under {0}; look at a cell with: make ui '
        'UI_DIRS={0}/gru_vocab5_bproplen5\n'.format(tmp_path / 'ui'))
    cell = tmp_path / 'ui' / 'gru_vocab5_bproplen5'
    assert sorted(p.name for p in cell.iterdir()) == ['seed0', 'seed1']
    # make splits UI_DIRS at spaces; copied, the line broke in the shell
    # (hostile pass 15).
    spaced = tmp_path / "a b'c"
    assert dashboard.main([records, str(spaced)]) == 0
    hint = capsys.readouterr().out.split('look at a cell with: ')[1]
    assert hint == '{} (once make ui-setup has run)\n'.format(
        cli.command_line('dashboard.py', str(
            spaced / 'gru_vocab5_bproplen5')))
    assert shlex.split(hint.split(' (once')[0])[-1] == str(
        spaced / 'gru_vocab5_bproplen5')
    metrics = {'accuracy': 0.5, 'boundary_accuracy': 0.5,
               'non_boundary_accuracy': 0.5, 'counting_horizon': 1,
               'exact_period': 0.0}
    # A period of N=5 is 10 words.
    assert json.loads((cell / 'seed1' / 'log').read_text()) == [
        dict(metrics, iteration=2, updates=2, tokens=100, epoch=10.0),
        dict(metrics, iteration=4, updates=4, tokens=200, epoch=20.0)]
    assert json.loads((cell / 'seed1' / 'args').read_text()) == dict(
        metrics, exact_period=False, generation_cold=0.5, generation_warm=0.5,
        arch='gru', vocab=5, bproplen=5,
        seed=1, learned_tokens=None, tokens=200, updates=4, seconds=1.5,
        eval_every=100, unit=8, batchsize=10, alpha=0.001, gradclip=5.0)
    assert (tmp_path / 'ui' / 'rnn_vocab6_bproplen5' / 'seed0' /
            'log').exists()


@pytest.mark.parametrize('bad, says', [
    ('[1]', 'not an object'),
    (json.dumps(record(arch='../../x')), "arch is '../../x'"),
    # The report ranked a made-up architecture among the sweep's.
    (json.dumps(record(arch='GRU')), "arch is 'GRU', which the sweep does "
     "not run"),
    (json.dumps(record(seed=-1)), 'seed is -1'),
    (json.dumps(record(vocab=True)), 'vocab is True'),
    (json.dumps(record(history=[dict(record()['history'][0],
                                     updates=None)])),
     'a history without its updates and tokens'),
    ('{"arch": ', 'Expecting value'),
    (json.dumps(record())[:-1] + ', "seed": 1}',
     "JSON: the key 'seed' appears twice in an object"),
    # 10 streams, bproplen 5: 50 tokens an update.
    (json.dumps(record(tokens=1000, updates=10)),
     '1000 tokens in 10 updates of 50 tokens'),
    (json.dumps(record(history=record()['history'][1::-1])),
     'a history whose tokens go 200, 100 in a run of 200'),
    (json.dumps(record(history=record()['history'][:2], tokens=100,
                       updates=2)),
     'a history whose tokens go 100, 200 in a run of 100'),
    (json.dumps(record(learned_tokens=150)),
     'learned_tokens is 150, where its history says None'),
    (json.dumps(record(settings={})), 'settings has the keys , not alpha, '
     'batchsize, eval_every, gradclip, tokens, unit'),
    # Python's json writes them; the log would not be JSON.
    (json.dumps(record(extra=math.inf)), 'it holds Infinity, which is not '
     'JSON'),
    (json.dumps(record(history=[dict(record()['history'][0], extra=math.nan),
                                record()['history'][1]])),
     'it holds NaN, which is not JSON'),
])
def test_a_line_that_is_not_a_record_is_refused_in_one_line(
        tmp_path, capsys, bad, says):
    records = tmp_path / 'records'
    records.write_text(json.dumps(record()) + '\n' + bad + '\n')
    with pytest.raises(SystemExit) as exit_info:
        dashboard.main([str(records), str(tmp_path / 'ui')])
    assert exit_info.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith('python -m study.dashboard: error: {} line 2 is '
                          'not a record of study.sweep ('.format(records))
    assert says in err and err.count('\n') == 1
    assert not (tmp_path / 'ui').exists()


def test_a_missing_record_file_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        dashboard.main([str(tmp_path / 'none'), str(tmp_path / 'ui')])
    assert capsys.readouterr().err == (
        'python -m study.dashboard: error: cannot read {}: No such file or '
        'directory\n'.format(tmp_path / 'none'))


def test_two_outcomes_of_one_run_are_refused_naming_both_lines(tmp_path,
                                                               capsys):
    records = write_records(
        tmp_path / 'capacity.jsonl', record(seed=0), record(seed=1),
        dict(study_record('gru', 5, 5, 0, learned_tokens=100),
             settings=record()['settings']))
    with pytest.raises(SystemExit) as exit_info:
        dashboard.main([records, str(tmp_path / 'ui')])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == (
        'python -m study.dashboard: error: {} lines 1 and 3 are the same run '
        '(gru N=5 bproplen=5 seed=0) with different outcomes: keep the one '
        'you trust\n'.format(records))
    assert not (tmp_path / 'ui').exists()


def test_a_run_recorded_twice_alike_is_written_once(tmp_path, capsys):
    """An older, unlocked sweep could run a run twice: bit for bit the same
    outcome, in other seconds."""
    records = write_records(tmp_path / 'capacity.jsonl', record(),
                            record(seconds=2.5))
    assert dashboard.main([records, str(tmp_path / 'ui')]) == 0
    assert 'Wrote 1 runs in 1 cells' in capsys.readouterr().out


@pytest.mark.parametrize('text', ['', '\n', '{"arch": "gr'])
def test_a_record_file_without_records_is_refused_as_the_report_does(
        tmp_path, capsys, text):
    records = tmp_path / 'capacity.jsonl'
    records.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        dashboard.main([str(records), str(tmp_path / 'ui')])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == (
        'python -m study.dashboard: error: {} holds no records yet\n'.format(
            records))
    assert not (tmp_path / 'ui').exists()


def test_a_last_line_that_repeats_a_key_is_refused_not_taken_for_torn(
        tmp_path, capsys):
    records = tmp_path / 'records'
    records.write_text(json.dumps(record()) + '\n' +
                       json.dumps(record(seed=1))[:-1] + ', "seed": 2}')
    with pytest.raises(SystemExit):
        dashboard.main([str(records), str(tmp_path / 'ui')])
    assert "line 2 is not a record of study.sweep (JSON: the key 'seed' " \
        'appears twice in an object)' in capsys.readouterr().err


def test_runs_that_cannot_be_written_are_one_line(tmp_path):
    records = write_records(tmp_path / 'capacity.jsonl', record())
    # A file size limit fails the write as a full disk does.
    completed = subprocess.run(
        [sys.executable, '-m', 'study.dashboard', records,
         str(tmp_path / 'ui')], cwd=ROOT, capture_output=True, text=True,
        timeout=300, preexec_fn=lambda: resource.setrlimit(
            resource.RLIMIT_FSIZE, (100, 100)))
    assert completed.returncode == cli.EXIT_FAILED
    assert completed.stderr.startswith(
        'python -m study.dashboard: error: writing to {} failed: [Errno 27] '
        'File too large'.format(tmp_path / 'ui'))
    assert completed.stderr.count('\n') == 1


def test_ctrl_c_is_one_line(tmp_path):
    records = write_records(tmp_path / 'capacity.jsonl', *(
        record(seed=seed) for seed in range(5000)))
    process = subprocess.Popen(
        [sys.executable, '-m', 'study.dashboard', records,
         str(tmp_path / 'ui')], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    wait_for(str(tmp_path / 'ui' / 'gru_vocab5_bproplen5' / 'seed0'),
             process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert (process.returncode, stderr) == (cli.EXIT_INTERRUPTED,
                                            'Ctrl-C: stopped.\n')


def files_of(out):
    return sorted(str(path.relative_to(out)) for path in out.rglob('*'))


# What an export of the gru cell's seed 0 alone leaves in OUTDIR.
SEED0_ALONE = [
    dashboard.EXPORT_LIST, dashboard.EXPORT_LOCK, 'gru_vocab5_bproplen5',
    'gru_vocab5_bproplen5/seed0', 'gru_vocab5_bproplen5/seed0/args',
    'gru_vocab5_bproplen5/seed0/log']


def test_seed_folders_of_an_earlier_export_are_removed(tmp_path, capsys):
    out = tmp_path / 'ui'
    dashboard.main([write_records(tmp_path / 'a', record(seed=0),
                                  record(seed=1), record(arch='rnn')),
                    str(out)])
    assert dashboard.main([write_records(tmp_path / 'b', record(seed=0)),
                           str(out)]) == 0
    assert files_of(out) == SEED0_ALONE


def test_what_an_export_killed_outright_left_goes_with_the_next(
        tmp_path, capsys):
    """A temporary of the log or args that atomic_file left (SIGKILL) is
    the export's own: not a reason to refuse the folder."""
    out = tmp_path / 'ui'
    dashboard.main([write_records(tmp_path / 'a', record(seed=0),
                                  record(seed=1)), str(out)])
    for seed in (0, 1):
        (out / 'gru_vocab5_bproplen5' / 'seed{}'.format(seed) /
         '.log.0123abcd.tmp').write_text('[')
    assert dashboard.main([write_records(tmp_path / 'b', record(seed=0)),
                           str(out)]) == 0
    assert files_of(out) == SEED0_ALONE


def test_what_an_export_killed_outright_left_of_its_list_goes(
        tmp_path, capsys):
    out = tmp_path / 'ui'
    first = write_records(tmp_path / 'a', record())
    dashboard.main([first, str(out)])
    (out / '..study_export.0123abcd.tmp').write_text('[')
    assert dashboard.main([first, str(out)]) == 0
    assert not (out / '..study_export.0123abcd.tmp').exists()


def test_the_list_of_a_large_export_reads_back(
        tmp_path, capsys, monkeypatch):
    """It was read to 1 MiB, 30,000 runs: a larger export's list was then
    damaged to the next."""
    names = ['lstm_chainerinit_vocab100_bproplen60/seed{}'.format(seed)
             for seed in range(1000000)]
    assert len(json.dumps(names, indent=1)) < dashboard.LIST_BYTES
    out = tmp_path / 'ui'
    first = write_records(tmp_path / 'a', *(record(seed=seed)
                                            for seed in range(30)))
    dashboard.main([first, str(out)])
    monkeypatch.setattr(dashboard, 'LIST_BYTES', 100)
    with pytest.raises(SystemExit):  # the bound is what it reads
        dashboard.main([first, str(out)])
    assert 'is damaged' in capsys.readouterr().err


def test_folders_no_export_listed_are_left_alone(tmp_path, capsys):
    """Every OUTDIR/*/seed* holding a log or args was taken for an old
    export's and removed: a ChainerUI project's runs, a user's notes."""
    out = tmp_path / 'ui'
    (out / 'notes' / 'seedlings').mkdir(parents=True)
    (out / 'notes' / 'seedlings' / 'log').write_text('notes')
    (out / 'gru_vocab5_bproplen5' / 'seed7').mkdir(parents=True)
    (out / 'gru_vocab5_bproplen5' / 'seed7' / 'args').write_text('{}')
    assert dashboard.main([write_records(tmp_path / 'a', record(seed=0)),
                           str(out)]) == 0
    assert (out / 'notes' / 'seedlings' / 'log').read_text() == 'notes'
    assert (out / 'gru_vocab5_bproplen5' / 'seed7' / 'args').read_text() == \
        '{}'
    assert json.loads((out / dashboard.EXPORT_LIST).read_text()) == [
        'gru_vocab5_bproplen5/seed0']


def test_the_hint_for_an_outdir_like_an_option_works_as_copied(
        tmp_path, capsys, monkeypatch):
    """make ui UI_DIRS=-out/... gave dashboard.py an option (hostile pass
    16)."""
    monkeypatch.chdir(tmp_path)
    records = write_records(tmp_path / 'capacity.jsonl', record())
    assert dashboard.main([records, '--', '-out']) == 0
    assert capsys.readouterr().out.endswith(
        'look at a cell with: make ui UI_DIRS=./-out/gru_vocab5_bproplen5\n')


def test_an_outdir_that_cannot_be_made_is_refused(tmp_path, capsys,
                                                  monkeypatch):
    """A failed write, status 1, where the other scripts refuse it (hostile
    pass 15: a read-only folder)."""
    def read_only(path, mode=0o777, exist_ok=False):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
    monkeypatch.setattr(os, 'makedirs', read_only)
    out = tmp_path / 'ro' / 'new'
    with pytest.raises(SystemExit) as exit_info:
        dashboard.main([write_records(tmp_path / 'a', record()), str(out)])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == 'python -m study.dashboard: error: ' \
        'cannot write to {}: Permission denied\n'.format(out)


def test_a_second_export_at_once_is_refused(tmp_path, capsys):
    """Both said they wrote theirs; the folder held neither's runs."""
    out = tmp_path / 'ui'
    out.mkdir()
    with open(str(out / dashboard.EXPORT_LOCK), 'w') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(SystemExit):
            dashboard.main([write_records(tmp_path / 'a', record()),
                            str(out)])
    assert capsys.readouterr().err == 'python -m study.dashboard: error: ' \
        'another export is writing {}: wait for it, or choose another ' \
        'OUTDIR\n'.format(out)
    assert sorted(p.name for p in out.iterdir()) == [dashboard.EXPORT_LOCK]


@pytest.mark.parametrize('make, says', [
    (os.mkfifo, '{} is not a regular file of one link: remove it'),
    (lambda path: os.symlink('nowhere', path), '{} is a symbolic link, '
     'which is refused: a lock through it would lock nothing here; remove '
     'it')])
def test_a_lock_that_is_no_file_of_its_own_is_refused(tmp_path, capsys,
                                                      make, says):
    """A FIFO was refused as not seekable, status 1 (hostile pass 14)."""
    out = tmp_path / 'ui'
    out.mkdir()
    lock = out / dashboard.EXPORT_LOCK
    make(str(lock))
    with pytest.raises(SystemExit) as exit_info:
        dashboard.main([write_records(tmp_path / 'a', record()), str(out)])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == 'python -m study.dashboard: error: ' \
        '{}\n'.format(says.format(lock))
    assert os.listdir(str(out)) == [dashboard.EXPORT_LOCK]


@pytest.mark.parametrize('make, says', [
    # Not "holds more than the log and args" (hostile pass 10): it holds
    # just those, one of them a folder, or a link (hostile pass 12).
    (lambda path: path.mkdir(), 'is not a file, which the export writes '
     'there: move it aside, or choose another OUTDIR'),
    (lambda path: path.symlink_to('/etc/hostname'),
     'is a symbolic link: the export writes through none')])
def test_a_listed_folder_holding_a_folder_is_refused_before_any_goes(
        tmp_path, capsys, make, says):
    """Only names were compared: the removal failed half done, blaming a
    write."""
    out = tmp_path / 'ui'
    dashboard.main([write_records(tmp_path / 'a', record(seed=0),
                                  record(seed=1), record(seed=2)), str(out)])
    (out / 'gru_vocab5_bproplen5' / 'seed2' / 'log').unlink()
    make(out / 'gru_vocab5_bproplen5' / 'seed2' / 'log')
    with pytest.raises(SystemExit) as exit_info:
        dashboard.main([write_records(tmp_path / 'b', record(seed=0)),
                        str(out)])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == 'python -m study.dashboard: error: ' \
        '{} {}\n'.format(out / 'gru_vocab5_bproplen5' / 'seed2' / 'log', says)
    assert (out / 'gru_vocab5_bproplen5' / 'seed1' / 'log').exists()


@pytest.mark.parametrize('link', [False, True])
def test_a_training_run_in_the_way_is_refused_untouched(tmp_path, capsys,
                                                        link):
    """A run folder of train_rnn.py, or a link to one, where a seed folder
    goes: its log and args are not the export's to replace."""
    run = tmp_path / 'run'
    run.mkdir()
    for name in ('log', 'args', 'model.npz'):
        (run / name).write_text(name)
    cell = tmp_path / 'ui' / 'gru_vocab5_bproplen5'
    cell.mkdir(parents=True)
    if link:
        (cell / 'seed0').symlink_to(run)
        says = '{} is a symbolic link: the export writes through none'
    else:
        run.rename(cell / 'seed0')
        run = cell / 'seed0'
        says = '{} holds more than the log and args of an export: choose ' \
            'another OUTDIR'
    before = sorted((tmp_path / 'ui').rglob('*'))
    with pytest.raises(SystemExit) as exit_info:
        dashboard.main([write_records(tmp_path / 'a', record()),
                        str(tmp_path / 'ui')])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == 'python -m study.dashboard: error: ' \
        '{}\n'.format(says.format(cell / 'seed0'))
    assert (run / 'log').read_text() == 'log'
    # An empty list was left, where no export had been.
    assert sorted((tmp_path / 'ui').rglob('*')) == before


def test_an_export_reads_back_the_list_it_wrote_of_any_arch(tmp_path,
                                                            capsys):
    """The names of the LSTM's variants hold _ too: where the list's names
    did not, the next export called the list it wrote damaged."""
    out = tmp_path / 'ui'
    records = write_records(tmp_path / 'a', record(arch='lstm_chainerinit'))
    assert dashboard.main([records, str(out)]) == 0
    assert dashboard.main([records, str(out)]) == 0
    assert json.loads((out / dashboard.EXPORT_LIST).read_text()) == [
        'lstm_chainerinit_vocab5_bproplen5/seed0']


@pytest.mark.parametrize('in_the_way', ['gru_vocab5_bproplen5',
                                        'gru_vocab5_bproplen5/seed1'])
def test_a_file_where_a_folder_goes_is_refused_before_any_goes(
        tmp_path, capsys, in_the_way):
    """A file where a cell's or a seed's folder goes failed the export
    once it had removed the earlier export's folders."""
    out = tmp_path / 'ui'
    dashboard.main([write_records(tmp_path / 'a', *(
        record(arch='lstm', seed=seed) for seed in range(3))), str(out)])
    (out / in_the_way).parent.mkdir(exist_ok=True)
    (out / in_the_way).write_text('notes')
    before = sorted(out.rglob('*'))
    with pytest.raises(SystemExit) as exit_info:
        dashboard.main([write_records(tmp_path / 'b', record(seed=0),
                                      record(seed=1)), str(out)])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == 'python -m study.dashboard: error: ' \
        '{} is not a folder: choose another OUTDIR\n'.format(out / in_the_way)
    assert sorted(out.rglob('*')) == before
    assert (out / in_the_way).read_text() == 'notes'


@pytest.mark.parametrize('target, said', [
    (None, 'is not a folder'),
    # Called 'not a folder' (hostile pass 11): it names none, true, but it
    # is a link, which the user may take for one to a folder.
    ('notes', 'is a symbolic link to {}, not to a folder'),
    ('nothing', 'is a symbolic link to {}, which does not exist')])
@pytest.mark.parametrize('slash', ['', '/'])
def test_a_file_as_outdir_is_refused(tmp_path, capsys, target, said, slash):
    """It failed as a write would, status 1: 'File exists' (with a slash
    after a link's name, hostile pass 12)."""
    (tmp_path / 'notes').write_text('notes')
    out = tmp_path / 'notes'
    if target:
        out = tmp_path / 'ui'
        out.symlink_to(tmp_path / target)
    with pytest.raises(SystemExit) as exit_info:
        dashboard.main([write_records(tmp_path / 'a', record()),
                        str(out) + slash])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err == 'python -m study.dashboard: error: ' \
        '{}{} {}: choose another OUTDIR\n'.format(
            out, slash, said.format(tmp_path / (target or '')))
    assert (tmp_path / 'notes').read_text() == 'notes'


def test_a_list_that_cannot_be_written_whole_is_left_as_it_was(tmp_path):
    """The list was rewritten in place: a full disk left it torn, and every
    later export refused it as damaged."""
    out = tmp_path / 'ui'
    first = write_records(tmp_path / 'a', record())
    assert dashboard.main([first, str(out)]) == 0
    listed = (out / dashboard.EXPORT_LIST).read_text()
    # 100 runs of files under 1000 bytes each, a list of over 3000.
    completed = subprocess.run(
        [sys.executable, '-m', 'study.dashboard', write_records(
            tmp_path / 'b', *(record(seed=seed) for seed in range(100))),
         str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE,
                                              (2000, 2000)))
    assert completed.returncode == cli.EXIT_FAILED
    assert 'File too large' in completed.stderr
    assert completed.stderr.count('\n') == 1
    assert (out / dashboard.EXPORT_LIST).read_text() == listed
    assert dashboard.main([first, str(out)]) == 0


@pytest.mark.parametrize('name', ['EXPORT_LIST', 'EXPORT_LOCK'])
def test_a_user_file_linked_as_the_list_or_lock_is_not_written(
        tmp_path, capsys, name):
    """The list was opened and truncated in place: a hard link to a user's
    file had that file overwritten."""
    out = tmp_path / 'ui'
    out.mkdir()
    notes = tmp_path / 'notes'
    notes.write_text('[]')
    (out / getattr(dashboard, name)).hardlink_to(notes)
    records = write_records(tmp_path / 'a', record())
    if name == 'EXPORT_LIST':
        assert dashboard.main([records, str(out)]) == 0
        assert json.loads((out / dashboard.EXPORT_LIST).read_text()) == [
            'gru_vocab5_bproplen5/seed0']
    else:
        with pytest.raises(SystemExit) as exit_info:
            dashboard.main([records, str(out)])
        assert exit_info.value.code == cli.EXIT_USAGE
        assert capsys.readouterr().err == 'python -m study.dashboard: ' \
            'error: {} is not a regular file of one link: remove it\n' \
            .format(out / dashboard.EXPORT_LOCK)
        assert sorted(p.name for p in out.iterdir()) == [
            dashboard.EXPORT_LOCK]
    assert notes.read_text() == '[]'


def test_a_cell_an_export_stopped_at_once_emptied_goes_with_the_next(
        tmp_path, capsys, monkeypatch):
    """Stopped between its last seed's folder and its own, it stayed, empty,
    for good."""
    out = tmp_path / 'ui'
    dashboard.main([write_records(tmp_path / 'a', record(arch='lstm')),
                    str(out)])
    rmdir = os.rmdir

    def stop_at_a_cell(path):
        if os.path.basename(path) == 'lstm_vocab5_bproplen5':
            raise KeyboardInterrupt
        rmdir(path)

    monkeypatch.setattr(os, 'rmdir', stop_at_a_cell)
    second = write_records(tmp_path / 'b', record())
    with contextlib.suppress(KeyboardInterrupt):
        dashboard.main([second, str(out)])
    assert (out / 'lstm_vocab5_bproplen5').is_dir()
    monkeypatch.undo()
    assert dashboard.main([second, str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        dashboard.EXPORT_LIST, dashboard.EXPORT_LOCK, 'gru_vocab5_bproplen5']


@pytest.mark.parametrize('stop', [KeyboardInterrupt, OSError])
def test_an_export_stopped_half_done_leaves_no_folder_unlisted(
        tmp_path, capsys, monkeypatch, stop):
    """The list was written after the last run folder: one stopped (Ctrl-C,
    a full disk) before left folders that no later export removed."""
    out = tmp_path / 'ui'
    first = write_records(tmp_path / 'a', *(record(seed=seed)
                                            for seed in range(3)))
    assert dashboard.main([first, str(out)]) == 0
    write_run = dashboard.write_run
    written = []

    def write_four_runs(outdir, run):
        if len(written) == 4:
            raise stop
        write_run(outdir, run)
        written.append(run)

    monkeypatch.setattr(dashboard, 'write_run', write_four_runs)
    with contextlib.suppress(KeyboardInterrupt):
        dashboard.main([write_records(tmp_path / 'b', *(
            record(arch='rnn', seed=seed) for seed in range(10))), str(out)])
    assert len(list(out.glob('rnn_vocab5_bproplen5/seed*'))) == 4
    monkeypatch.undo()
    assert dashboard.main([first, str(out)]) == 0
    assert sorted(str(p.relative_to(out)) for p in out.glob('*/*')) == [
        'gru_vocab5_bproplen5/seed0', 'gru_vocab5_bproplen5/seed1',
        'gru_vocab5_bproplen5/seed2']
