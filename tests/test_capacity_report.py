import pytest

from study import capacity_report
from study.capacity import METRICS

SETTINGS = {'updates': 300, 'unit': 8, 'batchsize': 10}


def record(arch, bproplen, vocab, seed, value, converged_at=None):
    """A run whose every metric is value, the horizon value * (N-1)."""
    metrics = {metric: value for metric in METRICS}
    metrics['counting_horizon'] = int(round(value * (vocab - 1)))
    metrics['exact_period'] = converged_at is not None
    history = [dict(metrics, updates=updates, tokens=updates * 10 * bproplen)
               for updates in (100, 200)]
    return dict(metrics, arch=arch, vocab=vocab, bproplen=bproplen,
                seed=seed, tokens=2000 * bproplen, updates=200,
                converged_at=converged_at, history=history, seconds=1.5,
                settings=SETTINGS)


RECORDS = [
    record('rnn', 5, 5, 0, 0.5),
    record('rnn', 5, 5, 1, 0.75),
    record('rnn', 5, 5, 2, 1.0, converged_at=200),
    record('gru', 5, 5, 0, 1.0, converged_at=100),
    record('gru', 10, 9, 0, 0.25),
]


def test_min_max_summaries_are_the_seeds_mean_lowest_and_highest():
    summary = capacity_report.summarize(RECORDS, 'minmax')
    assert sorted(summary) == [('gru', 5, 5), ('gru', 10, 9), ('rnn', 5, 5)]
    rnn = summary['rnn', 5, 5]
    assert rnn['accuracy'] == (0.75, 0.5, 1.0)
    assert rnn['counting_horizon'] == (3.0, 2.0, 4.0)  # of 2, 3, 4
    assert rnn['exact_period'] == (pytest.approx(1 / 3), 0.0, 1.0)
    assert (rnn['converged'], rnn['runs']) == (1, 3)
    assert summary['gru', 10, 9]['counting_horizon'] == (2.0, 2.0, 2.0)
    assert (summary['gru', 5, 5]['converged'],
            summary['gru', 5, 5]['runs']) == (1, 1)


def test_a_bootstrap_interval_of_two_values_spans_them():
    # Means of two draws from {0, 1}: 0, 0.5 or 1, the ends each a
    # quarter of the time: 2.5% and 97.5% fall on them.
    assert capacity_report.spread([0.0, 1.0], 'bootstrap') == (0.5, 0.0, 1.0)
    assert capacity_report.spread([0.25] * 3, 'bootstrap') == (
        0.25, 0.25, 0.25)


def test_the_bootstrap_is_reproducible_and_inside_the_range():
    values = [0.1, 0.4, 0.45, 0.9]
    first = capacity_report.spread(values, 'bootstrap')
    assert capacity_report.spread(values, 'bootstrap') == first
    mean, low, high = first
    assert mean == pytest.approx(0.4625)
    assert 0.1 <= low < mean < high <= 0.9


def test_an_unknown_interval_is_refused():
    with pytest.raises(ValueError, match='interval'):
        capacity_report.spread([1.0], 'sd')


def test_the_markdown_tables_give_mean_interval_and_converged_counts():
    summary = capacity_report.summarize(RECORDS, 'minmax')
    text = capacity_report.markdown(
        summary, RECORDS, 'python sweep.py', 90.0, 'minmax',
        {'CPU': 'a test CPU', 'BLAS': 'none'})
    assert 'lowest to highest over seeds' in text
    assert '- CPU: a test CPU' in text
    assert '5 runs, a budget of 300 updates each,' in text
    assert 'Last written by `python sweep.py`, whose session took 1.5 min ' \
        'of wall time' in text
    tables = text.split('\n## ')
    overall = next(table for table in tables
                   if table.startswith('Overall accuracy'))
    assert '| arch | bproplen | N=5 | N=9 |' in overall
    assert '| rnn | 5 | 0.75 [0.50, 1.00] |  |' in overall
    assert '| gru | 10 |  | 0.25 [0.25, 0.25] |' in overall
    horizon = next(table for table in tables
                   if table.startswith('Counting horizon'))
    assert '| rnn | 5 | 3.0 [2.0, 4.0] |  |' in horizon
    converged = tables[-1]
    assert converged.startswith('Runs that converged')
    assert '| rnn | 5 | 1/3 |  |' in converged
    assert '| gru | 5 | 1/1 |  |' in converged


def test_the_machine_is_described():
    info = capacity_report.machine()
    assert set(info) == {'CPU', 'BLAS', 'versions'}
    assert 'Chainer' in info['versions']


def test_the_report_writes_both_figures_and_the_markdown(tmp_path):
    summary = capacity_report.write_report(RECORDS, str(tmp_path),
                                           'python sweep.py', 60.0)
    assert summary['rnn', 5, 5]['runs'] == 3
    for name in ('capacity.png', 'capacity_curves.png'):
        assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    text = (tmp_path / 'capacity.md').read_text()
    assert 'bootstrap 95% interval' in text
    assert capacity_report.representative_cells(summary) == [
        ('gru', 10, 9), ('rnn', 5, 5)]
