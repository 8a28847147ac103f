"""ParallelSequentialIterator: batch_size streams walking one sequence."""
import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import numpy


class ParallelSequentialIterator(chainer.dataset.Iterator):
    """Yields [(current, next)] * batch_size: a step of every stream per call.

    Stream i starts at offset i * len // batch_size and wraps around the end
    (length 10, batch_size 3: offsets 0, 3, 6):

        index     0 1 2 3 4 5 6 7 8 9
        stream 0  a b c d e f g h i j   a b ...
        stream 1        d e f g h i j a b c ...
        stream 2              g h i j a b c d e f ...

    After k calls every stream has moved k steps, k * batch_size words are
    consumed and epoch_detail is k * batch_size / len. The whole state is the
    number of calls, so everything else is derived from it.

    streams, a range of stream numbers, makes the iterator yield those
    streams alone, as one of several processes that share the batch_size
    streams (data-parallel training); the epochs still count all of them.
    """

    def __init__(self, dataset, batch_size, repeat=True, streams=None):
        length = len(dataset)
        if not 1 <= batch_size <= length:
            raise ValueError(
                'the batch size must be between 1 and the length of the '
                'sequence, {} (got {})'.format(length, batch_size))
        streams = range(batch_size) if streams is None else streams
        if not 0 <= min(streams) <= max(streams) < batch_size:
            raise ValueError('the streams must be among the {} streams (got '
                             '{})'.format(batch_size, streams))
        self.batch_size = batch_size
        self.repeat = repeat
        self._words = numpy.asarray(dataset)
        self._offsets = self._stream_offsets(streams, length)
        self.iteration = 0

    def __next__(self):
        """[(x_i, t_i)] for the streams i, with x and t int32 scalars."""
        length = len(self._words)
        if not self.repeat and self.iteration * self.batch_size >= length:
            raise StopIteration
        positions = (self._offsets + self.iteration) % length
        self.iteration += 1
        return list(zip(self._words[positions],
                        self._words[(positions + 1) % length]))

    @property
    def epoch(self):
        return self.iteration * self.batch_size // len(self._words)

    @property
    def epoch_detail(self):
        return self.iteration * self.batch_size / len(self._words)

    @property
    def previous_epoch_detail(self):
        if self.iteration == 0:
            return None
        return (self.iteration - 1) * self.batch_size / len(self._words)

    @property
    def is_new_epoch(self):
        if self.iteration == 0:
            return False
        length = len(self._words)
        previous = (self.iteration - 1) * self.batch_size // length
        return self.epoch > previous

    def reset(self):
        self.iteration = 0

    def _stream_offsets(self, streams, length):
        return numpy.asarray(streams) * length // self.batch_size

    def boundaries(self, start, stop):
        """How many of the words that all batch_size streams take from call
        start to call stop differ from the word after them: those of every
        process, whichever streams this one yields."""
        length = len(self._words)
        offsets = self._stream_offsets(range(self.batch_size), length)
        positions = (offsets[:, None] + numpy.arange(start, stop)) % length
        return int(numpy.count_nonzero(
            self._words[positions] != self._words[(positions + 1) % length]))

    def serialize(self, serializer):
        self.iteration = serializer('iteration', self.iteration)


def next_window(iterator, n_steps, device):
    """xs, ts: int32 (steps, batch) on device, from up to n_steps calls.

    steps < n_steps only where a non-repeating iterator runs out; an iterator
    that has run out already raises StopIteration.
    """
    pairs = []
    for _ in range(n_steps):
        try:
            pairs.append(iterator.next())
        except StopIteration:
            break
    if not pairs:
        raise StopIteration
    window = numpy.asarray(pairs, dtype=numpy.int32)  # (steps, batch, 2)
    return (device.send(numpy.ascontiguousarray(window[:, :, 0])),
            device.send(numpy.ascontiguousarray(window[:, :, 1])))
