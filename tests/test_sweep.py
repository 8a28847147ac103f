import json
import os
import shutil
import time

import pytest

from study import capacity
from study import capacity_report
from study import records as records_module
from study import sweep
from study.records import ARCH_NAMES

from helpers import (failing_rename, refusal_of_a_zero_filled_tail,
                     run_into_closed_pipe, run_with_stdout)

# bproplen 2 and 4 with 10 streams: 6 and 3 updates for the same 120
# tokens.
TINY = ['--arch', 'rnn', 'lstm', '--vocab', '3', '4', '--bproplen', '2',
        '4', '--seed', '0', '--tokens', '120', '--eval-every', '40',
        '--unit', '4', '--grid']


def records(out):
    with open(os.path.join(str(out), 'capacity.jsonl')) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp('sweep')
    assert sweep.main(['-o', str(out), '-j', '2'] + TINY) == 0
    return out


def test_a_tiny_grid_records_every_run_with_the_same_token_cap(tiny_sweep):
    done = records(tiny_sweep)
    assert sorted(records_module.run_key(record) for record in done) == [
        (arch, vocab, bproplen, 0) for arch in ('lstm', 'rnn')
        for vocab in (3, 4) for bproplen in (2, 4)]
    for record in done:
        records_module.check_record(record)
        per_update = record['bproplen'] * 10
        # An evaluation every 40 tokens, or a period of every stream where
        # longer (30 tokens at N=3, 60 at N=4), in whole updates (20 or 40
        # tokens), until 120 or learned.
        evaluations = {(3, 2): [40, 80, 120], (3, 4): [40, 80, 120],
                       (4, 2): [60, 120], (4, 4): [80, 120]}[
                           record['vocab'], record['bproplen']]
        assert [entry['tokens'] for entry in record['history']] == \
            evaluations[:len(record['history'])]
        assert [entry['updates'] * per_update
                for entry in record['history']] == \
            [entry['tokens'] for entry in record['history']]
        last = record['history'][-1]
        assert record['tokens'] == last['tokens']
        if record['learned_tokens'] is None:
            assert record['tokens'] == 120
        else:
            assert record['learned_tokens'] == evaluations[0]
        for metric in capacity.TEACHER_FORCED:
            assert record[metric] == last[metric]
        assert record['settings']['tokens'] == 120
    for name in capacity_report.FIGURES:
        with open(str(tiny_sweep / name), 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert '| rnn | 2 | 3 |' in (tiny_sweep / 'capacity.md').read_text()


@pytest.mark.parametrize('exact, learned', [
    ([True], False), ([False, True], False), ([True, False], False),
    ([False, True, True], True), ([True, True], True)])
def test_a_run_has_learned_at_two_exact_evaluations_in_a_row(exact,
                                                             learned):
    history = [{'exact_period': value} for value in exact]
    assert sweep.learned(history) is learned


def search(done, **flags):
    argv = ['--arch', 'rnn', '--bproplen', '5', '--vocab', '5', '10', '20',
            '30', '--seed', '0', '1', '--more-seeds', '2', '3']
    for name, value in flags.items():
        argv += ['--' + name] + [str(v) for v in value]
    args = sweep.build_parser().parse_args(argv)
    records = [{'arch': arch, 'vocab': vocab, 'bproplen': bproplen,
                'seed': seed, 'learned_tokens': 100 if learned else None}
               for (arch, vocab, bproplen, seed), learned in done.items()]
    return sweep.plan(records, args)


def cell(vocab, *learned, seeds=(0, 1)):
    return {('rnn', vocab, 5, seed): value
            for seed, value in zip(seeds, learned)}


def test_the_search_climbs_n_a_cell_at_a_time():
    assert search({}) == [('rnn', 5, 5, 0), ('rnn', 5, 5, 1)]
    assert search({**cell(5, True, True), **cell(10, False)}) == [
        ('rnn', 10, 5, 1)]


def test_the_search_stops_above_a_cell_where_no_run_learned():
    done = {**cell(5, True, True), **cell(10, True, False),
            **cell(20, False, False)}
    # Not N=30; more seeds where the frontier is decided: 10 (half
    # learned) and 20 above it.
    assert search(done) == [('rnn', vocab, 5, seed) for vocab in (10, 20)
                            for seed in (2, 3)]


def test_more_seeds_that_move_the_frontier_move_the_cells_that_decide_it():
    done = {**cell(5, True, True), **cell(10, True, False),
            **cell(20, False, False), **cell(10, False, False, seeds=(2, 3)),
            **cell(20, False, False, seeds=(2, 3))}
    # N=10 fell to 1/4: the frontier is 5, decided by 5 and 10.
    assert search(done) == [('rnn', 5, 5, 2), ('rnn', 5, 5, 3)]
    done.update(cell(5, True, True, seeds=(2, 3)))
    assert search(done) == []


def test_more_seeds_go_only_where_the_first_leave_the_frontier_open():
    seeds = {'seed': range(10), 'more-seeds': range(10, 20)}
    done = {**cell(5, *[True] * 10, seeds=range(10)),
            **cell(10, *[False] * 10, seeds=range(10))}
    # 10/10 and 0/10: each Wilson interval excludes one half.
    assert search(done, **seeds) == []
    done.update(cell(10, *[True] * 2, seeds=range(2)))
    assert search(done, **seeds) == [('rnn', 20, 5, seed)
                                     for seed in range(10)]
    done.update(cell(20, *[False] * 10, seeds=range(10)))
    # 2/10 learned at N=10: [0.06, 0.51] still holds one half.
    assert search(done, **seeds) == [('rnn', 10, 5, seed)
                                     for seed in range(10, 20)]


def test_the_grid_runs_every_cell_with_the_seeds_given():
    assert len(search({}, grid=[])) == 4 * 2
    assert search(cell(5, True, True), grid=[])[0] == ('rnn', 10, 5, 0)


def test_a_cell_s_seeds_train_as_one_stack_where_the_cells_fill_the_jobs():
    keys = [(arch, 5, 5, seed) for arch in ('rnn', 'gru')
            for seed in range(10)]
    assert sweep.stacks(keys, 2) == [('rnn', 5, 5, tuple(range(10))),
                                     ('gru', 5, 5, tuple(range(10)))]


def test_a_round_of_fewer_cells_than_jobs_splits_them_for_every_job():
    keys = [('gru', 20, 5, seed) for seed in range(10)]
    assert sweep.stacks(keys, 2) == [('gru', 20, 5, (0, 1, 2, 3, 4)),
                                     ('gru', 20, 5, (5, 6, 7, 8, 9))]
    assert sweep.stacks(keys[:3], 4) == [
        ('gru', 20, 5, (seed,)) for seed in range(3)]
    assert sweep.stacks([], 2) == []


def test_stack_bounds_the_seeds_of_a_stack():
    keys = [('gru', 20, 5, seed) for seed in range(10)]
    assert sweep.stacks(keys, 1, 4) == [('gru', 20, 5, (0, 1, 2)),
                                        ('gru', 20, 5, (3, 4, 5)),
                                        ('gru', 20, 5, (6, 7, 8, 9))]
    assert sweep.stacks(keys, 1, 10) == [('gru', 20, 5, tuple(range(10)))]


def test_a_variant_trains_the_lstm_with_one_choice_undone(monkeypatch):
    built = []
    setup_training = sweep.train_rnn.setup_training

    def setting_up(*args, **kwargs):
        run = setup_training(*args, **kwargs)
        built.append(run.model.predictor)
        return run

    monkeypatch.setattr(sweep.train_rnn, 'setup_training', setting_up)
    settings = sweep.settings_of(sweep.build_parser().parse_args(
        ['--tokens', '30', '--eval-every', '30', '--unit', '4']))
    record = sweep.run_one(('lstm_onelayer', 3, 3, 0, settings))
    assert record['arch'] == 'lstm_onelayer'
    assert built[0].state_names == ('l1/c', 'l1/h')
    assert built[0].dropout == 0.5


def test_a_sweep_started_again_redoes_nothing(tiny_sweep, capsys,
                                              monkeypatch):
    """Not even the check that the report can be replaced, which refused a
    finished sweep an immutable figure (hostile pass 13)."""
    before = {name: (tiny_sweep / name).read_bytes() for name in (
        'capacity.jsonl', 'capacity.md') + capacity_report.FIGURES}
    failing_rename(monkeypatch, 'capacity.md', 'rename')
    assert sweep.main(['-o', str(tiny_sweep), '-j', '1'] + TINY) == 0
    assert '8 runs done already' in capsys.readouterr().out
    assert {name: (tiny_sweep / name).read_bytes()
            for name in before} == before


@pytest.mark.parametrize('stop', [KeyboardInterrupt, PermissionError])
def test_a_sweep_stopped_in_its_report_writes_it_when_started_again(
        tiny_sweep, tmp_path, capsys, monkeypatch, stop):
    """It said the same command goes on, which then said "Nothing to run"
    over a report that lacked runs or was missing (hostile pass 12)."""
    out = tmp_path / 'out'
    out.mkdir()
    # The report of 7 runs, the record file of 8: as a stop in the report
    # of the sweep that ran the 8th leaves them.
    capacity_report.write_report(records(tiny_sweep)[:7], str(out))
    shutil.copy(tiny_sweep / 'capacity.jsonl', out)
    before = (out / 'capacity.md').read_bytes()
    write_report = capacity_report.write_report

    def failing(*args, **kwargs):
        raise stop(1, 'Operation not permitted')
    monkeypatch.setattr(capacity_report, 'write_report', failing)
    capsys.readouterr()
    status = sweep.main(['-o', str(out), '-j', '1'] + TINY)
    err = capsys.readouterr().err
    if stop is KeyboardInterrupt:
        assert status == 130 and err.endswith(
            'the same command goes on from there and writes the report.\n')
    else:
        assert status == 1 and err.endswith(
            '(the records written so far are kept; the same command writes '
            'the report)\n')
    assert (out / 'capacity.md').read_bytes() == before
    monkeypatch.setattr(capacity_report, 'write_report', write_report)
    assert sweep.main(['-o', str(out), '-j', '1'] + TINY) == 0
    assert capsys.readouterr().out.endswith(
        'Nothing to run; wrote the report of the 8 runs to {}, which lacked '
        'it.\n'.format(out))
    assert '\n8 runs, a cap of ' in (out / 'capacity.md').read_text()


@pytest.mark.parametrize('folder, says', [
    (False, 'Operation not permitted'), (True, 'Is a directory')])
def test_a_report_that_could_not_be_replaced_is_refused_first(
        tmp_path, capsys, monkeypatch, folder, says):
    """It ran every run, then failed on a report file it could not replace
    (another user's in a sticky folder: hostile pass 12), or a folder."""
    if folder:
        (tmp_path / 'capacity.md').mkdir()
    else:
        (tmp_path / 'capacity.md').write_text('older')
        failing_rename(monkeypatch, 'capacity.md', 'rename')
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(['-o', str(tmp_path), '-j', '1'] + TINY)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        'python -m study.sweep: error: cannot write to {}: {}\n'.format(
            tmp_path / 'capacity.md', says))
    assert (tmp_path / 'capacity.jsonl').read_text() == ''


def test_a_run_cut_short_is_run_again_and_new_runs_added(tmp_path):
    argv = ['-o', str(tmp_path), '-j', '1'] + TINY
    assert sweep.main(argv[:4] + ['--arch', 'rnn'] + TINY[3:]) == 0
    path = tmp_path / 'capacity.jsonl'
    lines = path.read_text().splitlines()
    assert len(lines) == 4
    path.write_text('\n'.join(lines[:3]) + '\n' + lines[3][:20])
    assert sweep.main(argv) == 0
    assert len(records(tmp_path)) == 8
    assert records(tmp_path)[:3] == [json.loads(line) for line in lines[:3]]


def test_a_sweep_with_other_settings_is_refused(tiny_sweep, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(['-o', str(tiny_sweep)] + TINY + ['--tokens', '160'])
    assert exit_info.value.code == 2
    assert 'holds runs made with other settings' in capsys.readouterr().err


def test_evaluation_runs_on_a_copy_that_shares_the_parameters(monkeypatch):
    built, measured = [], []
    setup_training, measure = sweep.train_rnn.setup_training, \
        capacity.measure

    def setting_up(*args, **kwargs):
        run = setup_training(*args, **kwargs)
        built.append(run.model.predictor)
        return run

    def measuring(predictor, *args):
        measured.append(predictor)
        return measure(predictor, *args)

    monkeypatch.setattr(sweep.train_rnn, 'setup_training', setting_up)
    monkeypatch.setattr(capacity, 'measure', measuring)
    settings = sweep.settings_of(sweep.build_parser().parse_args(
        ['--tokens', '240', '--eval-every', '60', '--unit', '8']))
    sweep.run_one(('rnn', 3, 3, 0, settings))
    assert len(built) == 1 and len(measured) in (1, 2)
    assert all(predictor is measured[0] for predictor in measured)
    assert measured[0] is not built[0]
    assert measured[0].l1.W.array is built[0].l1.W.array


@pytest.mark.parametrize('flags, says', [
    (['--unit', str(10 ** 9)], 'needs about'),
    # 30 tokens an update at bproplen 3; the period of N=100 is 4,950
    # words, 49,500 tokens in 10 streams: 1,650 updates apart.
    (['--vocab', '5', '--bproplen', '3', '--tokens', '3000',
      '--eval-every', '10000'], '--tokens 3,000 allows one evaluation at '
     'most at N=5 bproplen=3 (they come every 9,990 tokens there), and a '
     'run learns at two in a row: give --tokens above 9,990'),
    (['--vocab', '5', '100', '--bproplen', '3', '--tokens', '49500'],
     '--tokens 49,500 allows one evaluation at most at N=100 bproplen=3 '
     '(they come every 49,500 tokens there)'),
    (['--stack', '0'], '--stack must be a whole number of at least 1 (got '
     '0)'),
    # Hostile pass 10: a worker a job, whatever the memory.
    (['-j', str(10 ** 6)], '--jobs must be a whole number from 1 to {} (got '
     '1000000)'.format(os.sysconf('SC_PHYS_PAGES') *
                       os.sysconf('SC_PAGE_SIZE') // sweep.WORKER_BYTES)),
    # Hostile pass 10: diverged runs were recorded as runs not learned.
    (['--alpha', '1e300'], '--alpha must lie between 0 and 1 (got 1e+300)'),
    (['--vocab', '3', '--bproplen', '2', '--tokens', '100000000'],
     '--tokens 100,000,000 makes up to 2,500,000 evaluations a run at N=3 '
     'bproplen=2 (one every 40 tokens), more than a record may hold: give '
     'fewer --tokens or a larger --eval-every')])
def test_a_grid_that_cannot_run_is_refused_before_anything(tmp_path, capsys,
                                                           flags, says):
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(['-o', str(tmp_path / 'out')] + TINY[:-3] + flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('python -m study.sweep: error: ')
    assert says in err and err.count('\n') == 1
    assert not (tmp_path / 'out').exists()


def test_a_sweep_into_a_closed_pipe_still_writes_its_records_and_report(
        tmp_path):
    completed = run_into_closed_pipe(
        ['-m', 'study.sweep', '-o', str(tmp_path), '-j', '1', '--arch', 'rnn',
         '--vocab', '3', '--bproplen', '2', '4', '--seed', '0', '--tokens',
         '80', '--eval-every', '40', '--unit', '4', '--grid'])
    assert (completed.returncode, completed.stderr) == (0, '')
    assert len(records(tmp_path)) == 2
    assert (tmp_path / 'capacity.md').exists()


def test_a_sweep_onto_a_full_device_writes_its_records_and_fails(tmp_path):
    completed = run_with_stdout(
        ['-m', 'study.sweep', '-o', str(tmp_path), '-j', '1', '--arch', 'rnn',
         '--vocab', '3', '--bproplen', '2', '--seed', '0', '--tokens', '80',
         '--eval-every', '40', '--unit', '4', '--grid'], 'full')
    assert (completed.returncode, completed.stderr) == (1, (
        'python -m study.sweep: error: writing to stdout failed: No space '
        'left on device\n'))
    assert len(records(tmp_path)) == 1


def test_a_zero_filled_tail_is_refused_at_the_start_untouched(tiny_sweep,
                                                              tmp_path,
                                                              capsys):
    path = tmp_path / 'capacity.jsonl'
    path.write_bytes((tiny_sweep / 'capacity.jsonl').read_bytes())
    refusal_of_a_zero_filled_tail(sweep.main, ['-o', str(tmp_path)] + TINY,
                                  str(path))
    assert capsys.readouterr().err == (
        'python -m study.sweep: error: {} line 9 is not a record of '
        'study.sweep (over 16,777,216 bytes long, more than any record)\n'
        .format(path))


def test_the_bounds_of_a_record_line_hold_its_largest_parts(tiny_sweep):
    run = records(tiny_sweep)[0]
    # The longest a float of 0 to 1, or a count, takes in JSON.
    longest = {float: 2.2250738585072014e-308, int: 2 ** 63 - 1, bool: False,
               str: max(ARCH_NAMES, key=len)}
    evaluation = {key: longest[type(value)]
                  for key, value in run.pop('history')[0].items()}
    run = {key: longest.get(type(value), value) for key, value in run.items()}
    run['settings'] = {key: longest[type(value)]
                       for key, value in run['settings'].items()}
    assert len(json.dumps(evaluation) + ', ') <= \
        records_module.EVALUATION_BYTES
    assert len(json.dumps(dict(run, history=[]), sort_keys=True) + '\n') <= \
        records_module.RECORD_BYTES


def test_a_record_of_the_older_sweep_is_named_as_such(tiny_sweep):
    record = records(tiny_sweep)[0]
    del record['learned_tokens']
    with pytest.raises(ValueError, match='no learned_tokens: a record of an '
                       'older sweep'):
        records_module.check_record(record)
    record['learned_tokens'] = record['tokens'] + 1
    with pytest.raises(ValueError, match='learned_tokens is'):
        records_module.check_record(record)


@pytest.mark.parametrize('key, value', [
    ('arch', '../../../evil'), ('vocab', 2 ** 31), ('vocab', 2),
    ('seed', -5), ('bproplen', 0)])
def test_a_record_that_no_sweep_could_make_is_refused(tiny_sweep, key,
                                                      value):
    record = dict(records(tiny_sweep)[0], **{key: value})
    with pytest.raises(ValueError, match='{} is'.format(key)):
        records_module.check_record(record)


def test_the_report_of_a_fifo_is_refused_without_waiting(tmp_path, capsys):
    os.mkfifo(str(tmp_path / 'capacity.jsonl'))
    with pytest.raises(SystemExit) as exit_info:
        capacity_report.main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert 'capacity.jsonl is not a regular file' in capsys.readouterr().err


@pytest.mark.parametrize('flag', ['--seed', '--vocab', '--arch'])
def test_a_value_given_twice_is_refused(flag, tmp_path, capsys):
    argv = ['-o', str(tmp_path)] + TINY
    argv.insert(argv.index(flag) + 1, argv[argv.index(flag) + 1])
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(argv)
    assert exit_info.value.code == 2
    assert '{} repeats'.format(flag) in capsys.readouterr().err


def test_with_jobs_each_record_comes_as_its_seed_leaves_the_stack():
    # At N=8 on 8 units seed 1 learns after 29,580 tokens, seed 2 not in
    # 45,000: it trains on for 15,000 tokens after seed 1 has left.
    settings = sweep.settings_of(sweep.build_parser().parse_args(
        ['--tokens', '45000', '--eval-every', '500', '--unit', '8']))
    arrived = []
    for record in sweep.run_tasks([('rnn', 8, 3, (1, 2), settings)], 2):
        arrived.append((time.perf_counter(), record))
    assert [record['seed'] for _, record in arrived] == [1, 2]
    assert arrived[0][1]['learned_tokens'] == 29580
    assert arrived[1][1]['learned_tokens'] is None
    # Not both at the stack's end.
    assert arrived[1][0] - arrived[0][0] > 0.2
    for _, record in arrived:
        lone = sweep.run_one(('rnn', 8, 3, record['seed'], settings))
        assert {**record, 'seconds': None} == {**lone, 'seconds': None}


def test_a_record_file_that_fails_to_read_is_named(tmp_path, monkeypatch,
                                                   capsys):
    # Its EIO (a bad disk) was reported as a failed write to the folder.
    monkeypatch.setattr(records_module.os, 'dup', lambda descriptor: os.open(
        '/proc/self/mem', os.O_RDONLY))
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(['-o', str(tmp_path)] + TINY)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        'python -m study.sweep: error: cannot read {}: Input/output error\n'
        .format(tmp_path / 'capacity.jsonl'))
