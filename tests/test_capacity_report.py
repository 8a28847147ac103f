import contextlib
import json
import math
import os
import resource
import signal
import subprocess
import sys
import threading

import pytest

from helpers import (ROOT, STUDY_SETTINGS, failing_rename,
                     refusal_of_a_zero_filled_tail, study_record as record,
                     wait_for)
import cli
import snapshots
from study import capacity_report


def cell(arch, bproplen, vocab, learned_at, censored):
    return [record(arch, bproplen, vocab, seed, tokens)
            for seed, tokens in enumerate(learned_at + [None] * censored)]


# rnn learns everything at N=5, 3 of 4 at N=10, 1 of 4 at N=12, none at 14
# (the largest N whose two evaluations fit the settings' 1,000 tokens);
# gru learns 1 of 4 at N=5 and none at N=10.
RECORDS = (cell('rnn', 5, 5, [100, 200, 300, 400], 0) +
           cell('rnn', 5, 10, [300, 500, 800], 1) +
           cell('rnn', 5, 12, [800], 3) + cell('rnn', 5, 14, [], 4) +
           cell('gru', 5, 5, [700], 3) + cell('gru', 5, 10, [], 4))


def test_a_cell_counts_learned_runs_and_the_median_tokens_with_censoring():
    summary = capacity_report.summarize(RECORDS)
    rnn = summary['rnn', 5, 10]
    assert (rnn['runs'], rnn['learned'], rnn['share']) == (4, 3, 0.75)
    assert rnn['wilson'] == (pytest.approx(0.3006, abs=1e-4),
                             pytest.approx(0.9544, abs=1e-4))
    assert rnn['median'] == 500  # the 2nd of 300, 500, 800, censored
    assert rnn['median_interval'] == (0.0, math.inf)  # 4 runs: no bound
    assert summary['gru', 5, 5]['median'] == math.inf
    # Over the last quarter: 1 where it learned, 0.5 where it did not.
    assert summary['rnn', 5, 12]['boundary'] == (0.625, 0.5, 1.0)


def test_the_frontier_is_the_largest_n_where_half_learn():
    found = capacity_report.frontiers(capacity_report.summarize(RECORDS))
    assert found['rnn', 5] == {'n': 10, 'low': 5, 'high': 12,
                               'open': False, 'first': 5,
                               'longest': (12, 1, 4)}
    assert found['gru', 5] == {'n': None, 'low': None, 'high': 5,
                               'open': False, 'first': 5,
                               'longest': (5, 1, 4)}


def test_a_frontier_below_every_n_run_names_the_smallest():
    """It said "none", as if no N learned, of a grid that began at 10."""
    found = capacity_report.frontiers(capacity_report.summarize(
        RECORDS + cell('gru', 10, 10, [], 4)))
    assert capacity_report.frontier_text(found['gru', 10]) == 'below 10'
    assert capacity_report.frontier_text(found['gru', 5]) == \
        'below 5 [below, 5]'


def test_rankings_test_at_the_first_n_where_the_lower_falls_below_half():
    summary = capacity_report.summarize(RECORDS)
    (test,) = capacity_report.rankings(summary,
                                       capacity_report.frontiers(summary))
    assert test[:4] == (5, 'rnn', 'gru', 5)
    assert test[4] == pytest.approx(1 / 7)  # 4/4 against 1/4


def test_each_variant_is_tested_against_its_base_where_both_ran():
    summary = capacity_report.summarize(
        cell('lstm', 5, 5, [100, 200], 2) +
        cell('lstm_nodropout', 5, 5, [100, 200, 300, 400], 0) +
        cell('lstm_nodropout', 5, 10, [], 4))  # no lstm at N=10
    (test,) = capacity_report.choice_tests(summary)
    assert test[:4] == ('lstm_nodropout', 'lstm', 5, 5)
    assert test[4] == pytest.approx(3 / 7)  # 4/4 against 2/4


WINDOWS = (RECORDS + cell('rnn', 10, 10, [100, 200, 300], 1) +
           cell('rnn', 10, 12, [100, 200, 300, 400], 0) +
           cell('rnn', 2, 12, [], 4))


def test_windows_next_to_each_other_are_tested_where_the_shares_differ():
    # N=10: 3/4 with bproplen 5 and 10, no test; gru ran one window only;
    # bproplen 2 goes against 5, not 10.
    tests = capacity_report.window_tests(capacity_report.summarize(WINDOWS))
    assert [test[:4] for test in tests] == [
        ('rnn', 2, 5, 12), ('rnn', 5, 10, 12)]
    # 0/4 against 1/4, then 1/4 against 4/4
    assert [test[4] for test in tests] == [1, pytest.approx(1 / 7)]


def test_the_tables_of_tests_put_each_cell_on_its_side(tmp_path):
    capacity_report.write_report(
        WINDOWS + cell('lstm', 5, 5, [100, 200], 2) +
        cell('lstm_nodropout', 5, 5, [100], 3), str(tmp_path))
    text = (tmp_path / 'capacity.md').read_text()
    # Medians only where half learned.
    assert '| lstm_nodropout | lstm | 5 | 5 | 1/4 against 2/4, 200 | 1 |' \
        in text
    assert '| rnn | 12 | 5 against 10 | 1/4 against 4/4, 200 | 0.14 |' in text


def test_a_report_of_one_window_says_there_is_nothing_to_test(tmp_path):
    capacity_report.write_report(RECORDS, str(tmp_path))
    assert '## The window\n\nNo architecture learned a different share at ' \
        'one N with two BPTT lengths.\n' in (
            tmp_path / 'capacity.md').read_text()


def test_the_report_has_its_tables_and_figures(tmp_path):
    capacity_report.write_report(RECORDS, str(tmp_path), 'python -m x', 60.0)
    text = (tmp_path / 'capacity.md').read_text()
    assert '| rnn | 10 [5, 12] |' in text
    assert '| gru | below 5 [below, 5] |' in text
    assert '| rnn | 5 | 11 (N=12, 1/4) | yes |' in text
    assert '| gru | 5 | 4 (N=5, 1/4) | no |' in text
    assert '| 5 | rnn | gru | 5 | 4/4 against 1/4 | 0.14 |' in text
    assert '| rnn | 5 | 10 | 3/4 | 0.75 [0.30, 0.95] | 500 [0, -] |' in text
    assert '| gru | 5 | 5 | 1/4 | 0.25 [0.05, 0.70] | - [0, -] |' in text
    assert '## One choice at a time' not in text  # no variant ran
    assert 'Last written by `python -m x`' in text
    for name in capacity_report.FIGURES:
        assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_a_report_stopped_while_drawing_changes_none_of_its_files(
        tmp_path, monkeypatch):
    """Each figure was renamed in place once drawn, and capacity.md last: a
    stop while one was drawn left new figures beside the old report."""
    capacity_report.write_report(RECORDS, str(tmp_path))
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    def stopped(found, f):
        raise KeyboardInterrupt
    monkeypatch.setattr(capacity_report, 'plot_frontier', stopped)
    with pytest.raises(KeyboardInterrupt):
        capacity_report.write_report(RECORDS[:-4], str(tmp_path))
    assert {path.name: path.read_bytes()
            for path in tmp_path.iterdir()} == before


@pytest.mark.parametrize('in_the_way', ['capacity.md', 'capacity_share.png'])
def test_a_folder_where_a_report_file_goes_changes_none_of_them(
        tmp_path, in_the_way):
    """The renames before the one that failed had been made (hostile pass
    10): new figures beside the old report."""
    capacity_report.write_report(RECORDS, str(tmp_path))
    os.remove(tmp_path / in_the_way)
    (tmp_path / in_the_way).mkdir()
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()
              if path.is_file()}
    with pytest.raises(IsADirectoryError):
        capacity_report.write_report(RECORDS[:-4], str(tmp_path))
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()
            if path.is_file()} == before


@pytest.mark.parametrize('failing', ['capacity.md', 'capacity_share.png'])
def test_a_rename_that_fails_changes_none_of_the_report_files(
        tmp_path, monkeypatch, failing):
    """The renames before the one that failed stayed (hostile pass 11): new
    figures beside the old report."""
    capacity_report.write_report(RECORDS, str(tmp_path))
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    failing_rename(monkeypatch, failing)
    with pytest.raises(PermissionError):
        # rnn's alone: all four files differ.
        capacity_report.write_report(RECORDS[:16], str(tmp_path))
    assert {path.name: path.read_bytes()
            for path in tmp_path.iterdir()} == before


def test_a_report_leaves_the_files_of_one_being_written_alone(tmp_path,
                                                              monkeypatch):
    """It removed the temporaries of a report, or the sweep's, that was
    drawing: that one failed (hostile pass 12). Now it waits, saying so,
    then takes what is left as a killed report's."""
    live = tmp_path / '.capacity.md.0123abcd.tmp'
    live.write_text('being written')
    held, waited, seen = threading.Event(), threading.Event(), []
    said = cli.print_or_drop

    def print_or_drop(text, *args, **kwargs):
        if text.startswith('Waiting for another report into '):
            waited.set()
        return said(text, *args, **kwargs)
    monkeypatch.setattr(cli, 'print_or_drop', print_or_drop)

    def the_other_report():
        with snapshots.writing_alone(str(tmp_path / capacity_report.LOCK),
                                     None):
            held.set()
            seen.append(waited.wait(60) and live.read_text())
    thread = threading.Thread(target=the_other_report)
    thread.start()
    assert held.wait(60)
    capacity_report.write_report(RECORDS, str(tmp_path))
    thread.join(60)
    assert seen == ['being written']
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ('capacity.md', capacity_report.LOCK) + capacity_report.FIGURES)


def test_a_report_draws_the_records_a_sweep_added_while_it_waited(
        tmp_path, monkeypatch, capsys):
    """Drawn from what it read before it waited, it replaced the newer
    report of the sweep with an older one (hostile pass 13)."""
    path = tmp_path / 'capacity.jsonl'
    path.write_text(''.join(json.dumps(run) + '\n' for run in RECORDS[:-1]))
    alone = capacity_report.writing_alone

    @contextlib.contextmanager
    def waited(out):
        with path.open('a') as f:
            f.write(json.dumps(RECORDS[-1]) + '\n')
        with alone(out):
            yield
    monkeypatch.setattr(capacity_report, 'writing_alone', waited)
    assert capacity_report.main([str(tmp_path)]) == 0
    assert '\n24 runs, a cap of ' in (tmp_path / 'capacity.md').read_text()
    assert 'report of 24 runs' in capsys.readouterr().out


def test_the_machine_names_its_cpu_and_blas():
    info = capacity_report.machine()
    assert set(info) == {'CPU', 'BLAS', 'versions'}
    assert 'Chainer 7.8.1' in info['versions']


def test_the_report_command_rewrites_a_folders_report_from_its_records(
        tmp_path, capsys):
    path = tmp_path / 'capacity.jsonl'
    path.write_text(''.join(json.dumps(run) + '\n' for run in RECORDS) +
                    '{"torn')
    assert capacity_report.main([str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert 'report of 24 runs' in out
    assert err == ('{} line 25 is cut short (a sweep writing it now, a kill '
                   'or a full disk): left out\n'.format(path))
    text = (tmp_path / 'capacity.md').read_text()
    assert '| rnn | 10 [5, 12] |' in text
    assert path.read_text().endswith('{"torn')  # read only


def test_what_a_killed_report_left_goes(tmp_path, capsys):
    (tmp_path / 'capacity.jsonl').write_text(
        ''.join(json.dumps(run) + '\n' for run in RECORDS))
    for name in ('.capacity.md.0123abcd.tmp', '.capacity_share.png.mine'):
        (tmp_path / name).write_text('')
    assert capacity_report.main([str(tmp_path)]) == 0
    assert not (tmp_path / '.capacity.md.0123abcd.tmp').exists()
    assert (tmp_path / '.capacity_share.png.mine').exists()


def test_the_report_command_says_what_is_missing(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        capacity_report.main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert 'cannot read' in capsys.readouterr().err


def test_several_folders_print_their_frontiers_side_by_side(
        tmp_path, capsys):
    faster = [dict(run, settings=dict(STUDY_SETTINGS, alpha=0.003))
              for run in cell('rnn', 5, 5, [100, 200], 2)]
    for name, runs in (('a', RECORDS), ('b', faster)):
        (tmp_path / name).mkdir()
        (tmp_path / name / 'capacity.jsonl').write_text(
            ''.join(json.dumps(run) + '\n' for run in runs))
    assert capacity_report.main([str(tmp_path / 'a'),
                                 str(tmp_path / 'b')]) == 0
    out = capsys.readouterr().out
    assert '(alpha 0.001) | {} (alpha 0.003) |'.format(tmp_path / 'b') in out
    assert '| rnn | 5 | 10 [5, 12] | >= 5 [below, 5] |' in out
    assert '| gru |' not in out  # b has no gru
    # N=5: 4/4 against 2/4, p 3/7
    assert '| rnn | 5 | 5 | 4/4, 200 | 2/4, 200 (p 0.43) |' in out
    assert '| rnn | 5 | 10 |' not in out  # b did not run it


def test_studies_with_lines_but_no_cell_alike_say_so(tmp_path, capsys):
    for name, vocab in (('a', 5), ('b', 10)):
        (tmp_path / name).mkdir()
        (tmp_path / name / 'capacity.jsonl').write_text(
            json.dumps(record('rnn', 5, vocab, 0)) + '\n')
    assert capacity_report.main([str(tmp_path / 'a'),
                                 str(tmp_path / 'b')]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        'No cell was run by every one of them.')


@pytest.mark.parametrize('second', ['a', 'a/', 'b'])
def test_a_folder_given_twice_is_refused(tmp_path, capsys, second):
    """Its report would be written twice, and no table compare it."""
    (folder,) = report_folders(tmp_path, 1)
    os.rename(folder, tmp_path / 'a')
    os.symlink('a', tmp_path / 'b')
    with pytest.raises(SystemExit) as exit_info:
        capacity_report.main([str(tmp_path / 'a'), str(tmp_path / second)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        'python -m study.capacity_report: error: {} and {} are the same '
        'folder\n'.format(tmp_path / 'a', tmp_path / second))
    assert not (tmp_path / 'a' / 'capacity.md').exists()


def test_a_history_that_cannot_be_is_refused(tmp_path, capsys):
    """200 updates of 50 tokens are 10,000 tokens, not 30,000."""
    run = record('rnn', 5, 5, 0)
    run['history'][0].update(updates=200, tokens=30000)
    (tmp_path / 'capacity.jsonl').write_text(json.dumps(run) + '\n')
    with pytest.raises(SystemExit) as exit_info:
        capacity_report.main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        'python -m study.capacity_report: error: {} line 1 is not a record '
        'of study.sweep (30000 tokens in 200 updates of 50 tokens)\n'.format(
            tmp_path / 'capacity.jsonl'))


def crafted(**changes):
    """A censored run of 1,000 tokens (20 updates), changed as the report's
    hostile readers changed theirs."""
    run = record('rnn', 5, 5, 0)
    for key, value in changes.items():
        if key == 'settings':
            value = dict(STUDY_SETTINGS, **value)
        run[key] = value
    return run


HUGE = 10 ** 15
# What an evaluation that found a whole period exact at N=5 holds.
EXACT = dict(accuracy=1.0, boundary_accuracy=1.0, non_boundary_accuracy=1.0,
             counting_horizon=4, exact_period=True)
LAST = dict(record('rnn', 5, 5, 0)['history'][-1], updates=HUGE,
            tokens=HUGE * 50)


@pytest.mark.parametrize('run, says', [
    (crafted(history=[]), 'history is []'),
    (dict(crafted(), settings={'batchsize': 10}),
     'settings has the keys batchsize, not alpha, batchsize, eval_every, '
     'gradclip, tokens, unit'),
    (crafted(settings={'tokens': 'x'}), "settings' tokens is 'x'"),
    (crafted(settings={'tokens': -1}), "settings' tokens is -1"),
    (crafted(settings={'unit': -5}), "settings' unit is -5"),
    (crafted(settings={'alpha': -1.0}), "settings' alpha is -1.0"),
    (crafted(settings={'alpha': 1.0}), "settings' alpha is 1.0"),
    (crafted(updates=HUGE, tokens=HUGE * 50,
             history=record('rnn', 5, 5, 0)['history'][:-1] + [LAST]),
     '1,000,000,000,000,000 updates in a run censored at 20'),
    # Item 4: 1,000 tokens where the settings' cap is 800.
    (crafted(settings={'tokens': 800}), '20 updates in a run censored at 16'),
    (crafted(extra=math.nan), 'it holds NaN, which is not JSON'),
    # Hostile 4 item 3: what ChainerUI refuses, once exported.
    (crafted(history=[dict(entry, x=10 ** 30) for entry in
                      record('rnn', 5, 5, 0)['history']]),
     'it holds {}, outside int64'.format(10 ** 30)),
    (crafted(**{'\udc00': 'x'}), 'it holds "\\udc00", a lone surrogate'),
    (crafted(extra='\ud800'), 'it holds "\\ud800", a lone surrogate'),
    # Item 4: learned at the first evaluation, though none was exact.
    (crafted(learned_tokens=100),
     'learned_tokens is 100, where its history says None'),
    (dict(crafted(learned_tokens=None, history=[
        dict(entry, **EXACT) for entry in
        record('rnn', 5, 5, 0)['history']]), **EXACT),
     'a history that goes on after the run learned'),
    # Hostile pass 9: metrics that cannot be, which the dashboard export
    # showed.
    (crafted(counting_horizon=HUGE), 'counting_horizon is {}, past the '
     'longest block, 4'.format(HUGE)),
    (dict(record('rnn', 5, 5, 0, 200), exact_period=False),
     'an evaluation whose metrics disagree (accuracy 1.0, boundary_accuracy '
     '1.0, non_boundary_accuracy 1.0, counting_horizon 4, exact_period '
     'false)'),
    (dict(record('rnn', 5, 5, 0, 200), boundary_accuracy=0.0),
     'an evaluation whose metrics disagree (accuracy 1.0, boundary_accuracy '
     '0.0, non_boundary_accuracy 1.0, counting_horizon 4, exact_period '
     'true)'),
    (crafted(accuracy=0.25, boundary_accuracy=0.0),
     "final metrics other than its last evaluation's"),
    # Hostile pass 10: the accuracy is a mean of the other two.
    (dict(crafted(history=[dict(entry, accuracy=0.2, boundary_accuracy=1.0,
                                non_boundary_accuracy=1.0) for entry in
                           record('rnn', 5, 5, 0)['history']]),
          accuracy=0.2, boundary_accuracy=1.0, non_boundary_accuracy=1.0),
     'an evaluation whose metrics disagree (accuracy 0.2, boundary_accuracy '
     '1.0, non_boundary_accuracy 1.0, counting_horizon 1, exact_period '
     'false)'),
    (crafted(notes='mine'), "a key the sweep does not write: 'notes'"),
    (crafted(history=[dict(entry, generation_cold=0.5) for entry in
                      record('rnn', 5, 5, 0)['history']]),
     "a key the sweep does not write: 'generation_cold'"),
    (crafted(seconds=1e308), 'updates, tokens or seconds out of range'),
    (crafted(vocab=2 ** 31 - 1),
     'vocab is 2147483647, beyond what the sweep runs with its settings'),
])
def test_a_record_the_report_cannot_use_is_refused_in_one_line(
        run, says, tmp_path, capsys):
    (tmp_path / 'capacity.jsonl').write_text(
        json.dumps(record('rnn', 5, 5, 1)) + '\n' + json.dumps(run) + '\n')
    with pytest.raises(SystemExit) as exit_info:
        capacity_report.main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        'python -m study.capacity_report: error: {} line 2 is not a record '
        'of study.sweep ({})\n'.format(tmp_path / 'capacity.jsonl', says))


def test_a_zero_filled_tail_is_refused_without_being_read_whole(tmp_path,
                                                                capsys):
    path = tmp_path / 'capacity.jsonl'
    path.write_text(json.dumps(record('rnn', 5, 5, 0)) + '\n')
    refusal_of_a_zero_filled_tail(capacity_report.main, [str(tmp_path)],
                                  str(path))
    assert capsys.readouterr().err == (
        'python -m study.capacity_report: error: {} line 2 is not a record '
        'of study.sweep (over 16,777,216 bytes long, more than any record)\n'
        .format(path))


def test_records_of_other_settings_are_refused_as_the_sweep_does(tmp_path,
                                                                 capsys):
    other = crafted(seed=1, settings={'alpha': 0.5})
    (tmp_path / 'capacity.jsonl').write_text(
        json.dumps(crafted()) + '\n' + json.dumps(other) + '\n')
    with pytest.raises(SystemExit) as exit_info:
        capacity_report.main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        'python -m study.capacity_report: error: {} holds runs made with '
        'other settings ({})\n'.format(tmp_path / 'capacity.jsonl',
                                       other['settings']))
    assert not (tmp_path / 'capacity.md').exists()


def test_studies_with_no_line_alike_say_so_instead_of_an_empty_table(
        tmp_path, capsys):
    for name, arch in (('a', 'rnn'), ('b', 'gru')):
        (tmp_path / name).mkdir()
        (tmp_path / name / 'capacity.jsonl').write_text(
            json.dumps(record(arch, 5, 5, 0)) + '\n')
    assert capacity_report.main([str(tmp_path / 'a'),
                                 str(tmp_path / 'b')]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        'No side-by-side frontiers: {0}/a (alpha 0.001) and {0}/b (alpha '
        '0.001) share no architecture with the same bproplen.'.format(
            tmp_path))


def report_folders(tmp_path, count):
    """count folders holding a run each, their paths."""
    folders = []
    for number in range(count):
        folder = tmp_path / str(number)
        folder.mkdir()
        (folder / 'capacity.jsonl').write_text(
            json.dumps(record('rnn', 5, 5, 0)) + '\n')
        folders.append(str(folder))
    return folders


@pytest.mark.parametrize('name', ['report', 'a\nb'])
def test_a_report_that_cannot_be_written_is_one_line(tmp_path, name):
    """A newline in the folder's name split the line (hostile pass 12)."""
    (folder,) = report_folders(tmp_path, 1)
    os.rename(folder, tmp_path / name)
    folder = str(tmp_path / name)
    # A file size limit fails the write as a full disk does.
    completed = subprocess.run(
        [sys.executable, '-m', 'study.capacity_report', folder], cwd=ROOT,
        capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE,
                                              (1000, 1000)))
    assert completed.returncode == 1
    assert completed.stderr.startswith(
        'python -m study.capacity_report: error: writing to {} failed: '
        '[Errno 27] File too large'.format(folder.replace('\n', '\\n')))
    assert completed.stderr.count('\n') == 1


def test_ctrl_c_on_the_report_is_one_line(tmp_path):
    folders = report_folders(tmp_path, 40)
    process = subprocess.Popen(
        [sys.executable, '-m', 'study.capacity_report'] + folders, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(os.path.join(folders[0], 'capacity.md'), process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert (process.returncode, stderr) == (130, 'Ctrl-C: stopped.\n')
