import numpy
import pytest

from study import counter
import simple_sequence

from helpers import seeded_model


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


def test_a_probe_of_a_state_that_holds_the_count_is_exact():
    words = simple_sequence.get_simple_sequence(7, 1)
    counts = counter.counts_in_blocks(words)
    noise = numpy.random.RandomState(0).uniform(-1, 1, len(words))
    states = numpy.stack([2 * counts - 1, noise], axis=1)
    for fit in counter.probe_splits(words).values():
        probe, r2 = counter.fit_probe(states, words, fit)
        assert r2 == pytest.approx(1.0)
    numpy.testing.assert_allclose(probe(states[:3]), [1, 1, 2])


def test_a_probe_of_a_state_without_the_count_explains_nothing():
    words = simple_sequence.get_simple_sequence(7, 1)
    states = numpy.ones((len(words), 1))
    _, r2 = counter.fit_probe(states, words,
                              counter.probe_splits(words)['blocks'])
    # It predicts the odd blocks' mean count, 22/9, for the even blocks'
    # 12 counts, of mean 17/6 and squared deviations 89/3: R^2 is
    # -12 * (17/6 - 22/9)^2 / (89/3).
    assert r2 == pytest.approx(-49 / 801)
    assert r2 < 0


@pytest.mark.parametrize('decoded, name', [
    ([1, 2, 3, 4, 5, 6, 7, 8, 9], 'keeps rising'),
    ([1, 2, 3, 3.5, 3.6, 3.6, 3.7, 3.7, 3.7], 'saturates'),
    ([1, 2, 3, 3.2, 1.4, 0.5, 1, 2, 3], 'resets'),
    # A jump at the end and a plateau, whatever came before.
    ([6, 4, 3, 9, 9, 9, 9.1, 9, 9], 'saturates'),
])
def test_the_over_long_behaviour_follows_the_stated_rule(decoded, name):
    assert counter.behaviour(numpy.array(decoded, float), 3) == name


def test_the_switch_is_the_first_step_that_predicts_another_word():
    assert counter.first_switch(numpy.array([3, 3, 4, 3]), 3) == 3
    assert counter.first_switch(numpy.array([3, 3, 3]), 3) is None


def test_principal_components_find_the_line_the_states_lie_on():
    along = numpy.arange(5.0)
    states = numpy.stack([along, 2 * along, numpy.zeros(5)], axis=1)
    components = counter.principal_components(states)
    numpy.testing.assert_allclose(abs(components[:, 0]),
                                  abs(along - 2) * 5 ** 0.5, atol=1e-12)
    numpy.testing.assert_allclose(components[:, 1], 0, atol=1e-12)


def test_a_quick_run_draws_and_tells(tmp_path, capsys):
    assert counter.main(['--quick', '-o', str(tmp_path)]) == 0
    assert (tmp_path / 'counter.png').read_bytes()[:8] == \
        b'\x89PNG\r\n\x1a\n'
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ['arch', 'updates', 'exact', 'R2',
                                    'steps']
    assert [line.split()[0] for line in lines[1:5]] == list(counter.ARCHS)
    for line in lines[1:5]:
        assert line.split()[1] in ('20', '40')
        assert line.split(None, 6)[6] in ('keeps rising', 'saturates',
                                          'resets')
