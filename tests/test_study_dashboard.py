"""study.dashboard: the sweep's records as ChainerUI run folders."""
import json

import pytest

import cli
from helpers import study_record
from study import dashboard


def record(arch='gru', vocab=5, bproplen=20, seed=0, **more):
    """A record as study.sweep writes it, censored, and evaluated twice."""
    run = study_record(arch, bproplen, vocab, seed)
    run['history'] = run['history'][:2]
    return dict(run, **more)


def write_records(path, *records, torn=''):
    path.write_text(''.join(json.dumps(r) + '\n' for r in records) + torn)
    return str(path)


def test_each_run_becomes_a_folder_of_its_cell(tmp_path, capsys):
    records = write_records(
        tmp_path / 'capacity.jsonl', record(seed=0), record(seed=1),
        record(arch='rnn', seed=0, vocab=10), torn='{"arch": "gr')
    assert dashboard.main([records, str(tmp_path / 'ui')]) == 0
    assert capsys.readouterr().out == (
        'Wrote 3 runs in 2 cells under {0}; look at a cell with: make ui '
        'UI_DIRS={0}/gru_vocab5_bproplen20\n'.format(tmp_path / 'ui'))
    cell = tmp_path / 'ui' / 'gru_vocab5_bproplen20'
    assert sorted(p.name for p in cell.iterdir()) == ['seed0', 'seed1']
    metrics = {'accuracy': 0.5, 'boundary_accuracy': 0.5,
               'non_boundary_accuracy': 0.5, 'generation_cold': 0.5,
               'generation_warm': 0.5, 'counting_horizon': 1,
               'exact_period': 0.0}
    # A period of N=5 is 10 words.
    assert json.loads((cell / 'seed1' / 'log').read_text()) == [
        dict(metrics, iteration=10, updates=10, tokens=100, epoch=10.0),
        dict(metrics, iteration=20, updates=20, tokens=200, epoch=20.0)]
    assert json.loads((cell / 'seed1' / 'args').read_text()) == dict(
        metrics, exact_period=False, arch='gru', vocab=5, bproplen=20,
        seed=1, learned_tokens=None, tokens=1000, updates=100, seconds=1.5,
        eval_every=100, unit=8, batchsize=10, alpha=0.001, gradclip=5.0)
    assert (tmp_path / 'ui' / 'rnn_vocab10_bproplen20' / 'seed0' /
            'log').exists()


@pytest.mark.parametrize('bad, says', [
    ('[1]', 'not an object'),
    (json.dumps(record(arch='../../x')), "arch is '../../x'"),
    (json.dumps(record(seed=-1)), 'seed is -1'),
    (json.dumps(record(vocab=True)), 'vocab is True'),
    (json.dumps(record(history=[dict(record()['history'][0],
                                     updates=None)])),
     'a history without its updates and tokens'),
    ('{"arch": ', 'Expecting value'),
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
