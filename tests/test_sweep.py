import json
import os

import pytest

from study import capacity
from study import records as records_module
from study import sweep

# bproplen 2 and 4 with 10 streams: 4 and 2 updates for the same 80 tokens.
TINY = ['--arch', 'rnn', 'lstm', '--vocab', '3', '4', '--bproplen', '2',
        '4', '--seed', '0', '--tokens', '80', '--eval-every', '40',
        '--unit', '4']


def records(out):
    with open(os.path.join(str(out), 'capacity.jsonl')) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp('sweep')
    assert sweep.main(['-o', str(out), '-j', '2'] + TINY) == 0
    return out


def test_a_tiny_grid_records_every_run_with_the_same_token_budget(
        tiny_sweep):
    done = records(tiny_sweep)
    assert sorted(records_module.run_key(record) for record in done) == [
        (arch, vocab, bproplen, 0) for arch in ('lstm', 'rnn')
        for vocab in (3, 4) for bproplen in (2, 4)]
    for record in done:
        records_module.check_record(record)
        per_update = record['bproplen'] * 10
        # An evaluation every 40 tokens, until 80 or a whole exact period.
        assert [entry['tokens'] for entry in record['history']] == \
            [40, 80][:len(record['history'])]
        assert [entry['updates'] * per_update
                for entry in record['history']] == \
            [entry['tokens'] for entry in record['history']]
        last = record['history'][-1]
        assert record['tokens'] == last['tokens']
        assert record['converged_at'] == (last['updates'] if
                                          last['exact_period'] else None)
        assert record['converged_at'] is not None or record['tokens'] == 80
        for metric in capacity.TEACHER_FORCED:
            assert record[metric] == last[metric]
        assert record['settings']['tokens'] == 80
    for name in ('capacity.png', 'capacity_curves.png'):
        with open(str(tiny_sweep / name), 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert '| rnn | 2 |' in (tiny_sweep / 'capacity.md').read_text()


def test_a_sweep_started_again_redoes_nothing(tiny_sweep, capsys):
    before = {name: (tiny_sweep / name).read_bytes() for name in (
        'capacity.jsonl', 'capacity.md', 'capacity.png')}
    assert sweep.main(['-o', str(tiny_sweep), '-j', '1'] + TINY) == 0
    assert '8 runs, 8 done already' in capsys.readouterr().out
    assert {name: (tiny_sweep / name).read_bytes()
            for name in before} == before


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
        sweep.main(['-o', str(tiny_sweep)] + TINY + ['--tokens', '120'])
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
        ['--tokens', '120', '--eval-every', '60', '--unit', '8']))
    sweep.run_one(('rnn', 5, 3, 0, settings))
    assert len(built) == 1 and len(measured) in (1, 2)
    assert all(predictor is measured[0] for predictor in measured)
    assert measured[0] is not built[0]
    assert measured[0].l1.W.array is built[0].l1.W.array


def test_a_grid_that_cannot_run_is_refused_before_anything(tmp_path,
                                                           capsys):
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(['-o', str(tmp_path / 'out'), '--unit', str(10 ** 9)] +
                   TINY[:-2])
    assert exit_info.value.code == 2
    assert 'needs about' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()
