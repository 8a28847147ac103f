import subprocess
import sys

import numpy
import pytest

import simple_sequence

from helpers import ROOT


def test_one_period_for_a_small_vocabulary():
    sequence = simple_sequence.get_simple_sequence(4, repeat=2)
    assert sequence.dtype == numpy.int32
    assert sequence.tolist() == [1, 2, 2, 3, 3, 3, 1, 2, 2, 3, 3, 3]


def test_defaults_give_the_tutorial_sequence():
    sequence = simple_sequence.get_simple_sequence()
    assert len(sequence) == 4500
    assert sequence[:10].tolist() == [1, 2, 2, 3, 3, 3, 4, 4, 4, 4]
    assert sequence[36:46].tolist() == [9] * 9 + [1]
    assert simple_sequence.period_length(10) == 45


@pytest.mark.parametrize('n_vocab', [-1, 0, 1, 2])
def test_too_small_a_vocabulary_is_refused(n_vocab):
    with pytest.raises(ValueError, match='nothing to count'):
        simple_sequence.get_simple_sequence(n_vocab)


def test_zero_repeats_are_refused():
    with pytest.raises(ValueError, match='repeat'):
        simple_sequence.get_simple_sequence(5, repeat=0)


@pytest.mark.parametrize('prime, length, expected', [
    (1, 5, [2, 2, 3, 3, 3]),
    (2, 7, [2, 3, 3, 3, 1, 2, 2]),
    (3, 9, [3, 3, 1, 2, 2, 3, 3, 3, 1]),
])
def test_continuation_follows_the_first_occurrence_of_the_prime(
        prime, length, expected):
    assert simple_sequence.continuation(4, prime, length).tolist() == expected


@pytest.mark.parametrize('prime', [0, 4])
def test_continuation_refuses_a_prime_outside_the_sequence(prime):
    with pytest.raises(ValueError, match='prime'):
        simple_sequence.continuation(4, prime, 3)


def test_main_prints_the_sequence(capsys):
    simple_sequence.main(['--vocab', '4', '--repeat', '2'])
    assert capsys.readouterr().out == '1 2 2 3 3 3 1 2 2 3 3 3\n'


def test_main_stops_quietly_where_its_reader_has_gone():
    """It printed the sequence in one piece: a BrokenPipeError traceback
    where its reader went early, and for a long one memory without end."""
    process = subprocess.Popen(
        [sys.executable, 'simple_sequence.py', '--repeat', str(10 ** 15)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.read(12) == b'1 2 2 3 3 3 '
    process.stdout.close()  # as `| head -c 12` does
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == b''


@pytest.mark.parametrize('argv, says', [
    (['--vocab', '100001'], '--vocab must be a whole number from 3 to '
     '100000 (got 100001)'),
    (['--vocab', '2'], '--vocab must be a whole number from 3 to 100000 '
     '(got 2)'),
    (['--repeat', '0'], '--repeat must be a whole number of at least 1 '
     '(got 0)'),
])
def test_main_refuses_numbers_out_of_bounds(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        simple_sequence.main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == 'simple_sequence.py: error: {}\n' \
        .format(says)
