"""The simple sequence: i repeated i times, i = 1 .. n_vocab-1, repeated."""
import sys

import quiet_start

if __name__ == '__main__':  # before NumPy and Chainer load
    quiet_start.install()

import setup_check  # noqa: F401  (says so where Chainer is missing)
import numpy

N_VOCABULARY = 10
REPEAT = 100  # periods in the training sequence, as in the tutorial
# With 3 the model must count to 2; with 2 there is nothing to count.
MIN_VOCABULARY = 3
# Far beyond what the sequence needs; a bound keeps a bad value from making
# us allocate without end.
MAX_VOCABULARY = 100000


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
    """Print the sequence, word by word, so that a long one needs no memory
    and stops where its reader has gone (`| head`); the exit status."""
    import cli  # it loads Chainer, which the data itself does not need
    parser = cli.ArgumentParser(prog='simple_sequence.py',
                                description=__doc__)
    parser.add_argument('--vocab', type=int, default=N_VOCABULARY,
                        help='vocabulary size N: the words run 1 .. N-1')
    parser.add_argument('--repeat', type=int, default=REPEAT,
                        help='how many periods to print (the training data '
                        'has 100)')
    args = parser.parse_args(argv)
    try:
        cli.check_whole('--vocab', args.vocab, MIN_VOCABULARY,
                        MAX_VOCABULARY)
        cli.check_whole('--repeat', args.repeat, 1)
    except cli.UsageError as error:
        parser.error(str(error))
    last = (args.repeat - 1, args.vocab - 1)
    for period in range(args.repeat):
        for word in range(1, args.vocab):
            if not cli.print_or_drop(' '.join([str(word)] * word),
                                     end='\n' if (period, word) == last
                                     else ' '):
                return 0
    return 0


if __name__ == '__main__':
    import cli
    sys.exit(cli.run_script(main))
