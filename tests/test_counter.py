import json
import os
import resource
import signal
import subprocess
import sys

import numpy
import pytest

import cli
from study import counter
import simple_sequence

from helpers import ROOT, failing_rename, seeded_model, wait_for


def test_counts_restart_at_every_new_word():
    words = numpy.array([1, 2, 2, 3, 3, 3, 1, 1])
    assert counter.counts_in_blocks(words).tolist() == [
        1, 1, 2, 1, 2, 3, 1, 2]


@pytest.mark.parametrize('arch, size', [
    ('rnn', 8), ('rnn_relu', 8), ('lstm1', 16), ('gru', 8)])
def test_the_state_of_every_step_of_a_period_is_collected(arch, size):
    predictor = seeded_model(arch, n_vocab=5, n_units=8, fused=True)
    states, words = counter.period_states(predictor, 5)
    assert states.shape == (10, size)
    assert words.tolist() == simple_sequence.get_simple_sequence(5, 1) \
        .tolist()
    # The last step's state is the one the predictor holds.
    numpy.testing.assert_array_equal(states[-1], numpy.concatenate(
        [state.array[0] for state in predictor.states()]))


def test_the_over_long_block_feeds_one_word():
    predictor = seeded_model('gru', n_vocab=6, n_units=8, fused=True)
    states, predicted = counter.overlong(predictor, 6, 3)
    assert states.shape == (9, 8)
    assert predicted.shape == (9,)
    assert set(predicted.tolist()) <= set(range(6))


def test_a_probe_of_a_state_holding_the_count_is_exact_on_held_out_blocks():
    words = simple_sequence.get_simple_sequence(7, 1)
    counts = counter.counts_in_blocks(words)
    noise = numpy.random.RandomState(0).uniform(-1, 1, len(words))
    states = numpy.stack([2 * counts - 1, noise], axis=1)
    decoded, r2 = counter.held_out_by_blocks(states, words, 2)
    numpy.testing.assert_allclose(decoded, counts)
    assert r2 == pytest.approx(1.0)


def test_a_probe_that_only_knows_its_neighbours_fails_on_held_out_blocks():
    """States that name the step of the period, not the count: a probe
    could interpolate neighbouring steps, but not a block it never saw."""
    words = simple_sequence.get_simple_sequence(5, 1)  # 1 2 2 3 3 3 4 4 4 4
    states = numpy.eye(len(words))
    decoded, r2 = counter.held_out_by_blocks(states, words, 40)
    # Fitted on the other blocks with a bias, an unseen step's component
    # is 0: each held-out block gets the mean count of the others.
    counts = counter.counts_in_blocks(words)
    expected = [counts[words != value].mean() for value in words]
    numpy.testing.assert_allclose(decoded, expected)
    assert r2 < 0


def test_the_switch_is_the_first_step_that_predicts_another_word():
    assert counter.first_switch(numpy.array([3, 3, 4, 3]), 3) == 3
    assert counter.first_switch(numpy.array([3, 3, 3]), 3) is None


def test_a_quick_run_keeps_draws_and_tells(tmp_path, capsys):
    assert counter.main(['--quick', '-o', str(tmp_path), '--arch', 'rnn',
                         'gru']) == 0
    assert (tmp_path / 'counter.png').read_bytes()[:8] == \
        b'\x89PNG\r\n\x1a\n'
    kept = json.loads((tmp_path / 'counter.json').read_text())
    assert [result['arch'] for result in kept['results']] == ['rnn', 'gru']
    lines = capsys.readouterr().out.splitlines()
    runs = [(result['arch'], run) for result in kept['results']
            for run in result['runs']]
    # A line as each run ends, then the table.
    assert lines[:4] == [
        '{} seed {}: learned after {:,} tokens, R2 on held-out blocks '
        '{:.3f}'.format(arch, run['seed'], run['learned_tokens'],
                        run['r2_held_out_blocks'])
        if run['learned_tokens'] is not None else
        '{} seed {}: not learned in 4,000 tokens'.format(arch, run['seed'])
        for arch, run in runs]
    assert lines[4].split()[:3] == ['arch', 'seed', 'learned']
    rows = [line.split() for line in lines[5:-2]]
    assert [(row[0], row[1]) for row in rows] == [
        ('rnn', '0'), ('rnn', '1'), ('gru', '0'), ('gru', '1')]
    for arch, run in runs:
        if run['learned_tokens'] is None:
            assert 'overlong' not in run
            continue
        assert len(run['overlong']['predicted']) == 3 * 2
        scores = run['r2_by_components']
        assert sorted(scores, key=int) == ['1', '2', '4', '8', '16', '40']
        assert run['r2_held_out_blocks'] == max(scores.values()) == \
            scores[str(run['components'])]
        assert len(run['held_out']['decoded']) == 10


QUICK_LINE = ('--quick sets --vocab 5, --unit 16, --bproplen 5, --tokens '
              '4000, --eval-every 200, --seeds 2, --max-seeds 2: leave out '
              '--quick, or ')


@pytest.mark.parametrize('argv, message', [
    (['--vocab', '2'], '--vocab must be a whole number from 3 to 100000 '
     '(got 2)'),
    (['--unit', '0'], '--unit must be a whole number of at least 1 (got 0)'),
    (['--batchsize', '0'], '--batchsize must be a whole number of at least '
     '1 (got 0)'),
    (['--bproplen', '0'], '--bproplen must be a whole number of at least 1 '
     '(got 0)'),
    (['--vocab', '100000000'], '--vocab must be a whole number from 3 to '
     '100000 (got 100000000)'),
    (['--unit', '100000'], 'a run of rnn with 100000 units and a '
     'vocabulary of 10 needs about '),
    (['--eval-every', '0'], '--eval-every must be a whole number of at '
     'least 1 (got 0)'),
    (['--tokens', '0'], '--tokens must be a whole number of at least 1 '
     '(got 0)'),
    (['--tokens', '10000'], '--tokens 10,000 allows one evaluation at most '
     'at N=10 bproplen=20 (they come every 10,000 tokens there), and a run '
     'learns at two in a row: give --tokens above 10,000'),
    (['--seeds', '0'], '--seeds must be a whole number of at least 1 (got '
     '0)'),
    (['--seeds', '3', '--max-seeds', '2'], '--max-seeds must be a whole '
     'number of at least 3 (got 2)'),
    (['--block', '0'], '--block must be a whole number from 1 to 9 (got '
     '0)'),
    (['--block', '10'], '--block must be a whole number from 1 to 9 (got '
     '10)'),
    (['--quick', '--block', '5'], '--block must be a whole number from 1 to '
     '4 (got 5)'),
    (['--quick', '--vocab', '30'], QUICK_LINE + '--vocab'),
    (['--quick', '--unit', '8', '--eval-every', '100'],
     QUICK_LINE + '--unit, --eval-every'),
    (['--quick', '--max-seeds', '3'], QUICK_LINE + '--max-seeds'),
])
def test_arguments_that_cannot_run_are_refused_in_one_line(
        argv, message, tmp_path, capsys):
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as exit_info:
        counter.main(['--arch', 'rnn', '-o', str(out)] + argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('python -m study.counter: error: ' + message)
    assert err.count('\n') == 1
    assert not out.exists()


def test_a_quick_run_needs_a_folder_named(tmp_path, capsys, monkeypatch):
    """The default, results/, holds the study's own counter.png."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        counter.main(['--quick'])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        'python -m study.counter: error: --quick needs -o: the default, '
        'results, holds the study\'s own counter.png\n')
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('out, says', [
    # "File exists" (hostile pass 12), as it was for a link to nothing.
    ('/dev/full', '/dev/full is not a folder'),
    ('link', 'link is a symbolic link to nothing, which does not exist'),
    # "No such file or directory" (hostile pass 14).
    ('link/below', 'link is a symbolic link to nothing, which does not '
     'exist'),
    ('loop', 'cannot reach loop: Too many levels of symbolic links')])
def test_an_out_folder_that_cannot_be_made_is_one_line(
        out, says, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink('nothing', 'link')
    os.symlink('loop', 'loop')
    with pytest.raises(SystemExit) as exit_info:
        counter.main(['--quick', '-o', out])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        'python -m study.counter: error: {}: choose another -o\n'.format(
            says))


@pytest.mark.parametrize('out', ['/proc/self', 'counter.json'])
def test_an_out_folder_that_cannot_take_the_files_is_refused_first(
        out, tmp_path, capsys, monkeypatch):
    """It was found once the training was done: hours, with the defaults.
    A folder named counter.json inside it, and /proc/self, which exists
    and takes no file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'counter.json').mkdir()
    monkeypatch.setattr(counter, 'study', None)  # no training reached
    with pytest.raises(SystemExit) as exit_info:
        counter.main(['--quick', '-o', '/proc/self' if out == '/proc/self'
                      else '.'])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == 'python -m study.counter: error: ' + (
        'cannot write to /proc/self/.counter.json.lock: No such file or '
        'directory\n'
        if out == '/proc/self' else
        './counter.json is a folder: move it aside, or choose another -o\n')


def test_what_a_killed_run_left_goes_once_this_one_writes(tmp_path,
                                                          monkeypatch):
    """Not before it trains: a counter started while another wrote removed
    that one's live temporaries, its hours of training lost (hostile pass
    12)."""
    leftover = tmp_path / '.counter.png.0123abcd.tmp'
    leftover.write_text('')
    mine = tmp_path / '.counter.png.mine'
    mine.write_text('')

    def trained(arch, args, value):
        assert leftover.exists()
        raise KeyboardInterrupt
    monkeypatch.setattr(counter, 'study', trained)
    with pytest.raises(KeyboardInterrupt):
        counter.main(['--quick', '-o', str(tmp_path), '--arch', 'rnn'])
    assert leftover.exists()

    def stopped(results, n_vocab, value, f):
        raise KeyboardInterrupt
    monkeypatch.setattr(counter, 'study', lambda arch, args, value: {})
    monkeypatch.setattr(counter, 'plot', stopped)
    with pytest.raises(KeyboardInterrupt):
        counter.main(['--quick', '-o', str(tmp_path), '--arch', 'rnn'])
    assert sorted(p.name for p in tmp_path.iterdir()) == [counter.LOCK,
                                                          mine.name]


def test_a_run_stopped_while_drawing_keeps_its_older_files(tmp_path,
                                                           monkeypatch):
    for name in counter.OUTPUTS:
        (tmp_path / name).write_text('older')

    def stopped(results, n_vocab, value, f):
        raise KeyboardInterrupt
    monkeypatch.setattr(counter, 'plot', stopped)
    with pytest.raises(KeyboardInterrupt):
        counter.main(['--quick', '-o', str(tmp_path), '--arch', 'rnn'])
    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == \
        dict(dict.fromkeys(counter.OUTPUTS, 'older'), **{counter.LOCK: ''})


def start_quick_run(out, **kwargs):
    return subprocess.Popen(
        [sys.executable, '-m', 'study.counter', '--quick', '-o', str(out),
         '--arch', 'rnn'], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_folder_that_cannot_take_the_results_is_refused_first(tmp_path):
    """An empty file was the probe, which a full disk still makes: it
    trained, then failed (hostile pass 12)."""
    # A file size limit fails the write as a full disk does.
    process = start_quick_run(tmp_path, preexec_fn=lambda: resource.setrlimit(
        resource.RLIMIT_FSIZE, (100 << 10, 100 << 10)))
    stdout, stderr = process.communicate(timeout=300)
    assert (process.returncode, stdout) == (cli.EXIT_USAGE, '')
    assert stderr == ('python -m study.counter: error: cannot write to {}: '
                      'File too large\n'.format(tmp_path))
    assert os.listdir(tmp_path) == [counter.LOCK]


def test_results_that_cannot_be_replaced_are_refused_first(
        tmp_path, monkeypatch):
    """It trained, then failed on an output it could not replace (another
    user's in a sticky folder, an immutable one: hostile pass 12)."""
    (tmp_path / 'counter.png').write_text('older')
    failing_rename(monkeypatch, 'counter.png', 'rename')
    monkeypatch.setattr(counter, 'study', None)  # no training reached
    with pytest.raises(SystemExit) as exit_info:
        counter.main(['--quick', '-o', str(tmp_path), '--arch', 'rnn'])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert sorted(os.listdir(tmp_path)) == [counter.LOCK, 'counter.png']


def test_ctrl_c_is_one_line(tmp_path):
    process = start_quick_run(tmp_path / 'out')
    wait_for(str(tmp_path / 'out'), process)  # made before training
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert (process.returncode, stderr) == (cli.EXIT_INTERRUPTED,
                                            'Ctrl-C: stopped.\n')
