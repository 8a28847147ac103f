from fractions import Fraction

import chainer
import numpy
import pytest

from iterators import ParallelSequentialIterator, next_window

CPU = chainer.get_device('@numpy')


def pairs(batch):
    return [(int(x), int(t)) for x, t in batch]


def test_streams_start_at_even_offsets_and_wrap_around():
    it = ParallelSequentialIterator(numpy.arange(10), 3)  # offsets 0, 3, 6
    assert pairs(it.next()) == [(0, 1), (3, 4), (6, 7)]
    assert pairs(it.next()) == [(1, 2), (4, 5), (7, 8)]
    assert pairs(it.next()) == [(2, 3), (5, 6), (8, 9)]
    assert pairs(it.next()) == [(3, 4), (6, 7), (9, 0)]
    assert pairs(it.next()) == [(4, 5), (7, 8), (0, 1)]


def test_offsets_when_the_length_is_not_a_multiple_of_the_batch():
    it = ParallelSequentialIterator(numpy.arange(10) * 10, 4)  # 0, 2, 5, 7
    assert pairs(it.next()) == [(0, 10), (20, 30), (50, 60), (70, 80)]
    assert pairs(it.next()) == [(10, 20), (30, 40), (60, 70), (80, 90)]
    assert pairs(it.next()) == [(20, 30), (40, 50), (70, 80), (90, 0)]


def test_a_share_of_the_streams_keeps_their_offsets_and_the_epochs():
    shares = [ParallelSequentialIterator(numpy.arange(10), 4, streams=part)
              for part in (range(0, 2), range(2, 4))]
    for _ in range(3):
        whole = [pair for share in shares for pair in pairs(share.next())]
    assert whole == [(2, 3), (4, 5), (7, 8), (9, 0)]  # offsets 0, 2, 5, 7
    assert [share.epoch_detail for share in shares] == [1.2, 1.2]
    with pytest.raises(ValueError, match='among the 4 streams'):
        ParallelSequentialIterator(numpy.arange(10), 4, streams=range(3, 5))


def test_boundaries_count_every_stream_whichever_a_share_yields():
    """1 2 2 3 3 3 in 2 streams (offsets 0, 3): calls 0 and 1 take 1>2
    2>2 | 3>3 3>3, calls 2 and 3 take 2>3 3>3 | 3>1 1>2 (wrapping)."""
    words = [1, 2, 2, 3, 3, 3]
    for streams in (None, range(1), range(1, 2)):
        it = ParallelSequentialIterator(words, 2, streams=streams)
        assert [it.boundaries(0, 2), it.boundaries(2, 4),
                it.boundaries(0, 4), it.boundaries(3, 3)] == [1, 3, 4, 0]


def test_one_stream_walks_the_whole_sequence():
    it = ParallelSequentialIterator([5, 6, 7], 1)
    assert [pairs(it.next()) for _ in range(4)] == [
        [(5, 6)], [(6, 7)], [(7, 5)], [(5, 6)]]


def test_epoch_detail_and_new_epochs_as_exact_fractions():
    it = ParallelSequentialIterator(numpy.arange(10), 3)
    assert it.epoch == 0
    assert it.epoch_detail == 0
    assert it.previous_epoch_detail is None
    assert not it.is_new_epoch
    new_epochs = []
    for k in range(1, 11):
        it.next()
        assert it.epoch_detail == float(Fraction(3 * k, 10))
        assert it.previous_epoch_detail == float(Fraction(3 * (k - 1), 10))
        assert it.epoch == 3 * k // 10
        if it.is_new_epoch:
            new_epochs.append(k)
    assert new_epochs == [4, 7, 10]  # 12, 21 and 30 words read


def test_without_repeat_it_stops_after_one_sweep():
    it = ParallelSequentialIterator(numpy.arange(10), 3, repeat=False)
    batches = [pairs(batch) for batch in it]
    assert len(batches) == 4  # 12 words: the first call to reach 10
    assert batches[-1] == [(3, 4), (6, 7), (9, 0)]
    with pytest.raises(StopIteration):
        it.next()
    it.reset()
    assert pairs(it.next()) == [(0, 1), (3, 4), (6, 7)]
    assert it.epoch_detail == float(Fraction(3, 10))


def test_concat_examples_gives_int32_inputs_and_targets():
    it = ParallelSequentialIterator(numpy.arange(10, dtype=numpy.int32), 3)
    x, t = chainer.dataset.concat_examples(it.next())
    assert x.dtype == t.dtype == numpy.int32
    assert x.tolist() == [0, 3, 6]
    assert t.tolist() == [1, 4, 7]


@pytest.mark.parametrize('batch_size', [0, -1, 11])
def test_impossible_batch_sizes_are_refused(batch_size):
    with pytest.raises(ValueError, match='between 1 and the length'):
        ParallelSequentialIterator(numpy.arange(10), batch_size)


def test_serialize_round_trip_continues_identically():
    it = ParallelSequentialIterator(numpy.arange(10), 3)
    for _ in range(5):
        it.next()
    serializer = chainer.serializers.DictionarySerializer()
    it.serialize(serializer)
    restored = ParallelSequentialIterator(numpy.arange(10), 3)
    restored.serialize(chainer.serializers.NpzDeserializer(serializer.target))
    assert restored.epoch == it.epoch == 1
    assert restored.epoch_detail == it.epoch_detail == float(Fraction(3, 2))
    assert restored.previous_epoch_detail == it.previous_epoch_detail
    assert restored.is_new_epoch == it.is_new_epoch
    for _ in range(7):
        assert pairs(restored.next()) == pairs(it.next())
        assert restored.is_new_epoch == it.is_new_epoch


def test_next_window_stacks_steps_time_major():
    it = ParallelSequentialIterator(numpy.arange(10), 3, repeat=False)
    xs, ts = next_window(it, 3, CPU)
    assert xs.dtype == ts.dtype == numpy.int32
    assert xs.tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert ts.tolist() == [[1, 4, 7], [2, 5, 8], [3, 6, 9]]
    xs, ts = next_window(it, 3, CPU)  # one step left
    assert xs.tolist() == [[3, 6, 9]]
    assert ts.tolist() == [[4, 7, 0]]
    with pytest.raises(StopIteration):
        next_window(it, 3, CPU)
