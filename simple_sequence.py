"""The simple sequence: i repeated i times, i = 1 .. n_vocab-1, repeated."""
import argparse

import numpy

N_VOCABULARY = 10
REPEAT = 100  # periods in the training sequence, as in the tutorial
# With 3 the model must count to 2; with 2 there is nothing to count.
MIN_VOCABULARY = 3


def check_vocabulary(n_vocab):
    """Raise ValueError unless n_vocab makes a sequence worth counting."""
    if n_vocab < MIN_VOCABULARY:
        raise ValueError(
            'the vocabulary must hold at least {} words (got {}): with fewer '
            'there is nothing to count'.format(MIN_VOCABULARY, n_vocab))


def period_length(n_vocab):
    """Number of tokens in one period: 1 + 2 + ... + (n_vocab-1)."""
    return n_vocab * (n_vocab - 1) // 2


def get_simple_sequence(n_vocab=N_VOCABULARY, repeat=REPEAT):
    """int32 (repeat * period_length(n_vocab),): 1 2 2 3 3 3 ... repeated."""
    check_vocabulary(n_vocab)
    if repeat < 1:
        raise ValueError('repeat must be at least 1 (got {})'.format(repeat))
    words = numpy.arange(1, n_vocab, dtype=numpy.int32)
    return numpy.tile(numpy.repeat(words, words), repeat)


def continuation(n_vocab, prime, length):
    """int32 (length,): the true sequence after the first `prime`."""
    check_vocabulary(n_vocab)
    if not 1 <= prime < n_vocab:
        raise ValueError('the prime must be a word of the sequence, 1 .. {} '
                         '(got {})'.format(n_vocab - 1, prime))
    start = period_length(prime)  # the index of the first `prime`
    repeat = (start + length) // period_length(n_vocab) + 1
    return get_simple_sequence(n_vocab, repeat)[start + 1:start + 1 + length]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--vocab', type=int, default=N_VOCABULARY,
                        help='vocabulary size N: the words run 1 .. N-1')
    parser.add_argument('--repeat', type=int, default=REPEAT,
                        help='how many periods to print (the training data '
                        'has 100)')
    args = parser.parse_args(argv)
    try:
        sequence = get_simple_sequence(args.vocab, args.repeat)
    except ValueError as error:
        parser.error(str(error))
    print(' '.join(map(str, sequence)))


if __name__ == '__main__':
    main()
