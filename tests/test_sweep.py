import json
import os

import pytest

from iterators import ParallelSequentialIterator
import sweep

from helpers import RuleOracle

TINY = ['--arch', 'rnn', 'lstm', '--vocab', '3', '4', '--bproplen', '2',
        '--seed', '0', '--updates', '20', '--eval-every', '10']


def records(out):
    with open(os.path.join(str(out), 'capacity.jsonl')) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp('sweep')
    assert sweep.main(['-o', str(out), '-j', '2'] + TINY) == 0
    return out


def test_a_tiny_grid_records_every_run(tiny_sweep):
    done = records(tiny_sweep)
    assert sorted(sweep.run_key(record) for record in done) == [
        ('lstm', 3, 2, 0), ('lstm', 4, 2, 0), ('rnn', 3, 2, 0),
        ('rnn', 4, 2, 0)]
    for record in done:
        for metric in sweep.METRICS:
            assert 0 <= record[metric] <= 1
        assert record['updates'] in (10, 20)
        assert record['updates_to_target'] in (None, record['updates'])
        assert record['settings']['updates'] == 20
    with open(str(tiny_sweep / 'capacity.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    markdown = (tiny_sweep / 'capacity.md').read_text()
    assert '| rnn | 2 |' in markdown and '## Generation accuracy' in markdown


def test_a_sweep_started_again_redoes_nothing(tiny_sweep, capsys):
    before = {name: (tiny_sweep / name).read_bytes() for name in (
        'capacity.jsonl', 'capacity.md', 'capacity.png')}
    assert sweep.main(['-o', str(tiny_sweep), '-j', '1'] + TINY) == 0
    assert '4 runs, 4 done already' in capsys.readouterr().out
    assert {name: (tiny_sweep / name).read_bytes()
            for name in before} == before


def test_a_run_cut_short_is_run_again_and_new_runs_added(tmp_path):
    argv = ['-o', str(tmp_path), '-j', '1'] + TINY
    assert sweep.main(argv[:4] + ['--arch', 'rnn'] + TINY[3:]) == 0
    path = tmp_path / 'capacity.jsonl'
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + '\n' + lines[1][:20])  # a kill mid-write
    assert sweep.main(argv) == 0
    assert len(records(tmp_path)) == 4
    assert records(tmp_path)[0] == json.loads(lines[0])


def test_a_sweep_with_other_settings_is_refused(tiny_sweep, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(['-o', str(tiny_sweep), '--updates', '30'] + TINY[:-4])
    assert exit_info.value.code == 2
    assert 'holds runs made with other settings' in capsys.readouterr().err


def test_the_streams_start_at_evenly_spread_phases():
    sequence = sweep.phase_spread_sequence(4, 3)  # period 6, 10 periods
    assert len(sequence) == 60
    first = [int(x) for x, _ in ParallelSequentialIterator(sequence, 3)
             .next()]
    assert first == [sequence[0], sequence[2], sequence[4]] == [1, 2, 3]


class ColdOracle(RuleOracle):
    """Predicts 0, which never comes, for its first steps from a reset."""

    def __init__(self, n_vocab, rule, cold_steps):
        super().__init__(n_vocab, rule)
        self.cold_steps = cold_steps
        self.steps = 0

    def forward(self, x):
        self.steps += 1
        logits = super().forward(x)
        if self.steps <= self.cold_steps:
            logits.array[:] = 0
            logits.array[:, 0] = 10
        return logits

    def reset_state(self):
        self.steps = 0


@pytest.mark.parametrize('rule, expected', [
    (lambda x: x, (0.5, 0.0)),            # copies: wrong at every boundary
    (lambda x: x % 3 + 1, (0.5, 1.0)),    # the successor: right only there
])
@pytest.mark.parametrize('cold_steps', [0, sweep.MIN_WARM_UP])
def test_evaluation_scores_after_the_warm_up(rule, expected, cold_steps):
    # N=4: a period of 6 steps, far shorter than the warm-up
    oracle = ColdOracle(4, rule, cold_steps)
    assert sweep.evaluate(oracle, 4, 3) == expected


def test_evaluation_leaves_the_training_state_alone(monkeypatch):
    """It runs on a copy that shares the parameters, not on the model."""
    built, evaluated = [], []
    build_model, evaluate = sweep.build_model, sweep.evaluate

    def building(*args, **kwargs):
        built.append(build_model(*args, **kwargs))
        return built[-1]

    def evaluating(predictor, *args):
        evaluated.append(predictor)
        return evaluate(predictor, *args)

    monkeypatch.setattr(sweep, 'build_model', building)
    monkeypatch.setattr(sweep, 'evaluate', evaluating)
    settings = sweep.settings_of(sweep.build_parser().parse_args(
        ['--updates', '4', '--eval-every', '2', '--unit', '8']))
    sweep.train_one(('rnn', 5, 3, 0, settings))
    assert len(built) == 1 and len(evaluated) == 2
    for predictor in evaluated:
        assert predictor is not built[0]
        assert predictor.l1.W.array is built[0].l1.W.array
