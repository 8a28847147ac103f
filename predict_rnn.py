"""Let a trained model continue the simple sequence on its own.

Primes the model with one number, then feeds each prediction back in
(greedy decoding) and compares what it generates with the true sequence.
"""
import argparse
import json
import os
import sys

import chainer_compat  # noqa: F401  (must precede chainer)

from models import ARCHITECTURES, build_model, generate
import simple_sequence
import snapshots
from train_rnn import ArgumentParser, UsageError, model_path, select_device


def build_parser():
    parser = ArgumentParser(
        prog='predict_rnn.py', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', '-o', default='result',
                        help='the out folder of a finished train_rnn.py run '
                        '(default: %(default)s)')
    parser.add_argument('--prime', '-p', type=int, default=1,
                        help='the number to start from (default: '
                        '%(default)s)')
    parser.add_argument('--length', '-n', type=int, default=None,
                        help='how many numbers to generate (default: two '
                        'periods of the sequence)')
    parser.add_argument('--gpu', '-g', type=int, default=-1,
                        help='GPU to run on, which needs CuPy; -1 for the '
                        'CPU (default: %(default)s)')
    return parser


def read_run_arguments(out):
    """The arch, unit and vocab that train_rnn.py recorded in out."""
    path = os.path.join(out, 'args.json')
    try:
        with open(path) as f:
            recorded = json.load(f)
        arch, unit, vocab = (recorded['arch'], int(recorded['unit']),
                             int(recorded['vocab']))
    except OSError as error:
        raise UsageError('cannot read {} ({}): is {} the out folder of a '
                         'train_rnn.py run?'.format(path, error.strerror, out))
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError('{} is not what train_rnn.py writes ({!r})'.format(
            path, error))
    if arch not in ARCHITECTURES:
        raise UsageError('{} names an unknown architecture {!r}'.format(
            path, arch))
    try:
        simple_sequence.check_vocabulary(vocab)
    except ValueError as error:
        raise UsageError('{}: {}'.format(path, error))
    return arch, unit, vocab


def load_model(out, device):
    """The trained predictor of a train_rnn.py out folder, and its vocab."""
    arch, unit, vocab = read_run_arguments(out)
    predictor = build_model(arch, vocab, unit)
    snapshots.load_npz(model_path(out, arch), predictor)
    predictor.to_device(device)
    return predictor, vocab


def first_mistake(generated, truth):
    """The index of the first difference, or None."""
    mismatches = (generated != truth).nonzero()[0]
    return int(mismatches[0]) if len(mismatches) else None


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        predictor, vocab = load_model(args.out, select_device(args.gpu))
        length = (2 * simple_sequence.period_length(vocab)
                  if args.length is None else args.length)
        if length < 1:
            raise UsageError('--length must be at least 1 (got {})'.format(
                length))
        if not 1 <= args.prime < vocab:
            raise UsageError('--prime must be a number of the sequence, 1 .. '
                             '{} (got {})'.format(vocab - 1, args.prime))
    except (UsageError, snapshots.FileError) as error:
        parser.error(str(error))

    generated = generate(predictor, args.prime, length)
    truth = simple_sequence.continuation(vocab, args.prime, length)
    print('prime:     {}'.format(args.prime))
    print('generated: {}'.format(' '.join(map(str, generated))))
    print('truth:     {}'.format(' '.join(map(str, truth))))
    matches = int((generated == truth).sum())
    mistake = first_mistake(generated, truth)
    if mistake is None:
        verdict = 'no mistake'
    else:
        verdict = 'first mistake at word {}: expected {}, got {}'.format(
            mistake + 1, truth[mistake], generated[mistake])
    print('{} of {} generated words match the true sequence; {}.'.format(
        matches, length, verdict))
    return 0


if __name__ == '__main__':
    sys.exit(main())
