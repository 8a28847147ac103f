"""Let a trained model continue the simple sequence on its own.

Primes the model with one number, then feeds each prediction back in
(greedy decoding), prints the numbers as the tutorial's
predict_simple_sequence.py did, and scores them against the true sequence.
It reads the out folder of a train_rnn.py run (-o), or any model file (-m),
the tutorial's included.
"""
import sys

import quiet_start

if __name__ == '__main__':  # before Chainer loads
    quiet_start.install()

import setup_check  # noqa: F401  (says so where Chainer is missing)
import argparse
import os

import chainer_compat  # noqa: F401  (must precede chainer)

import numpy

from models import ARCHITECTURES, build_model, generate
import simple_sequence
import snapshots
from cli import (
    EXIT_FAILED, ArgumentParser, UsageError, check_fits_in_memory,
    check_whole, non_empty_path, output_failed, print_or_drop, run_script,
    select_device)
from out_folder import MODEL_SUFFIX
import train_rnn

MAX_LENGTH = 100000
MAX_ARGS_BYTES = 2 ** 16  # args.json is a few hundred
# Far beyond what the sequence needs; a bound keeps a bad file from making
# us allocate without end.
MAX_UNITS = 100000


def build_parser():
    parser = ArgumentParser(
        prog='predict_rnn.py', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', '-a', choices=sorted(ARCHITECTURES),
                        default=None,
                        help='the architecture; with -o, picks OUT/'
                        'ARCH_simple_sequence.model (default: what the run '
                        'or the model file records, else rnn)')
    parser.add_argument('--unit', '-u', type=int, default=None,
                        help='units in each layer (default: what the model '
                        'file says)')
    parser.add_argument('--vocab', type=int, default=None,
                        help='vocabulary size N (default: what the model file '
                        'says; {} in the tutorial)'.format(
                            simple_sequence.N_VOCABULARY))
    parser.add_argument('--modelpath', '-m', default=None, type=non_empty_path,
                        help='a model file to load, ours or the tutorial\'s; '
                        'no args.json needed (default: the model in --out)')
    parser.add_argument('--out', '-o', default='result', type=non_empty_path,
                        help='the out folder of a finished train_rnn.py run '
                        '(default: %(default)s)')
    parser.add_argument('--primeindex', '-p', '--prime', type=int,
                        default=1, help='the number to start from (default: '
                        '%(default)s)')
    parser.add_argument('--length', '-l', '-n', type=int, default=100,
                        help='how many numbers to generate, at most {} '
                        '(default: %(default)s, as in the tutorial)'.format(
                            MAX_LENGTH))
    parser.add_argument('--gpu', '-g', type=int, default=-1,
                        help='GPU to run on, which needs CuPy; -1 for the '
                        'CPU (default: %(default)s)')
    return parser


# What a JSON value is, in words.
JSON_TYPES = {dict: 'an object', list: 'a list', str: 'a string',
              int: 'a number', float: 'a number', bool: 'true or false',
              type(None): 'null'}


def check_settings(recorded, source):
    """recorded's arch, unit, vocab (and epoch) checked: UsageError if bad."""
    if not isinstance(recorded, dict):
        raise UsageError('{} is not what train_rnn.py writes: it holds {}, '
                         'where an object of the run\'s arguments belongs'
                         .format(source, JSON_TYPES[type(recorded)]))
    missing = [key for key in ('arch', 'unit', 'vocab') if key not in
               recorded]
    if missing:
        raise UsageError('{} is not what train_rnn.py writes: it lacks {}'
                         .format(source, ', '.join(missing)))
    arch, unit, vocab = recorded['arch'], recorded['unit'], recorded['vocab']
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise UsageError('{} names an unknown architecture {!r}'.format(
            source, arch))
    epoch = recorded.get('epoch')
    try:
        check_whole('unit', unit, 1, MAX_UNITS)
        check_whole('vocab', vocab, 1, simple_sequence.MAX_VOCABULARY)
        simple_sequence.check_vocabulary(vocab)
        if epoch is not None:
            check_whole('epoch', epoch, 1, sys.maxsize)
    except (UsageError, ValueError) as error:
        raise UsageError('{}: {}'.format(source, error))
    return {'arch': arch, 'unit': unit, 'vocab': vocab, 'epoch': epoch}


def read_run_arguments(out):
    """The arch, unit, vocab and epoch that train_rnn.py recorded in out."""
    path = os.path.join(out, 'args.json')
    try:
        with snapshots.open_regular_file(path) as f:
            text = f.read(MAX_ARGS_BYTES).decode('utf-8', 'replace')
    except snapshots.FileError as error:
        raise UsageError('{}: is {} the out folder of a train_rnn.py run? {}'
                         .format(error, out, without_run_arguments(out)))
    return check_settings(snapshots.parse_json(text, path), path)


def without_run_arguments(out):
    """What to pass where out lacks args.json, such as the tutorial's
    result/: its models, and any model file, load with the flags."""
    try:
        archs = sorted(name[:-len(MODEL_SUFFIX)] for name in os.listdir(out)
                       if name.endswith(MODEL_SUFFIX))
    except OSError:
        archs = []
    if not archs:
        return ('Any model file, the tutorial\'s too, loads with -m FILE -a '
                'ARCH -u UNIT')
    return ('Pass -a ARCH for one of its models ({}), or -m FILE -a ARCH -u '
            'UNIT for any model file, the tutorial\'s too'.format(
                ', '.join(archs)))


def file_settings(path, arch):
    """What a model file says of itself: its run_args, else the shape its
    embed/W declares; no other entry is read."""
    declared = {}

    def run_args_alone(headers):
        declared.update(headers)
        embed = headers.get('embed/W')
        if embed is None and any(name.startswith('updater/')
                                 for name in headers):
            # A snapshot: its run's arguments name the model to point to.
            return {snapshots.RUN_ARGS_KEY} & headers.keys()
        if embed is None:
            raise snapshots.FileError('{} lacks embed/W (vocabulary, units): '
                                      'it is not a model file'.format(path))
        if len(embed.shape) != 2:
            raise snapshots.FileError(
                '{} holds embed/W of shape {}, where (vocabulary, units) '
                'belongs: it is not a model file'.format(path, embed.shape))
        snapshots.check_shapes(headers, {snapshots.RUN_ARGS_KEY:
                                         numpy.array('')}, path)
        return {snapshots.RUN_ARGS_KEY} & headers.keys()

    arrays = snapshots.read_npz(path, run_args_alone)
    if 'embed/W' not in declared:
        raise snapshot_not_model(path, arrays)
    if snapshots.RUN_ARGS_KEY in arrays:
        run_args = snapshots.parse_json(
            str(arrays[snapshots.RUN_ARGS_KEY]),
            'the run arguments in {}'.format(path))
        recorded = check_settings(run_args, path)
        # What a snapshot's are checked for, where the limits above pass.
        train_rnn.recorded_arguments(run_args, path)
    else:
        vocab, unit = declared['embed/W'].shape
        recorded = check_settings({'arch': arch or 'rnn', 'unit': int(unit),
                                   'vocab': int(vocab)}, path)
    if declared['embed/W'].shape != (recorded['vocab'], recorded['unit']):
        raise snapshots.FileError(
            '{} records a model of vocabulary {} and {} units, but its '
            'embed/W is {}'.format(path, recorded['vocab'], recorded['unit'],
                                   declared['embed/W'].shape))
    return recorded


def snapshot_not_model(path, arrays):
    """The FileError for a snapshot passed as a model file: it names the
    model its run saved beside it where that run has ended."""
    try:
        run_args = snapshots.read_run_args(arrays, path)
    except snapshots.FileError:  # it is a snapshot all the same
        run_args = None
    if isinstance(run_args, dict) and run_args.get('arch') in ARCHITECTURES:
        model = train_rnn.model_path(os.path.dirname(path), run_args['arch'])
        # Not itself: a snapshot copied under a model's name.
        if os.path.isfile(model) and not os.path.samefile(model, path):
            return snapshots.FileError(
                '{} is a snapshot of train_rnn.py, not a model file: its run '
                'has ended; predict with the model it saved, -m {}'.format(
                    path, model))
    return snapshots.FileError(
        '{} is a snapshot of train_rnn.py, not a model file: predict with the '
        'model its run saves once it ends (train_rnn.py -r resumes it)'
        .format(path))


def settings_of(args):
    """(path, settings): the model file to load and how to build it.

    -m names the file. Else -o names a run's folder, which may hold several
    architectures' models side by side, as the tutorial's result/ did: -a
    picks one, else args.json names the latest run's, whose model it must
    be. Either way the file's own record of its run, where it has one, says
    how to build it.
    """
    path, run = args.modelpath, None
    if path is None:
        if args.arch is None:
            run = read_run_arguments(args.out)
        path = train_rnn.model_path(args.out, args.arch or run['arch'])
    recorded = file_settings(path, args.arch)
    for flag, name in (('--arch', 'arch'), ('--unit', 'unit'),
                       ('--vocab', 'vocab')):
        value = getattr(args, name)
        if value is not None and value != recorded[name]:
            raise UsageError('{} {} contradicts {}, which holds a model of '
                             '{} {}'.format(flag, value, path, name,
                                            recorded[name]))
        # A later run of the same architecture, unfinished, leaves the
        # earlier model: not the one args.json describes.
        if run is not None and run[name] != recorded[name]:
            raise UsageError(
                '{} records {} {}, but {} holds a model of {} {}: pass -a '
                '{} to load that model'.format(
                    os.path.join(args.out, 'args.json'), name, run[name],
                    path, name, recorded[name], recorded['arch']))
    check_fits_in_memory(recorded['arch'], recorded['unit'],
                         recorded['vocab'])
    return path, recorded


def load_model(path, settings, device):
    """The predictor that settings describe, its parameters from the file
    at path, whose entries must be this predictor's."""
    predictor = build_model(settings['arch'], settings['vocab'],
                            settings['unit'])
    snapshots.load_checked(predictor, snapshots.read_model(path, predictor),
                           path)
    predictor.to_device(device)
    return predictor


def ordinal(n):
    if n % 100 in (11, 12, 13):
        return '{}th'.format(n)
    return '{}{}'.format(n, {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th'))


def truths(vocab, prime, length):
    """int32 (prime, length): row k - 1 follows the k-th prime of its block.

    From a reset state the prime could be any of the prime copies of its
    block.
    """
    longest = simple_sequence.continuation(vocab, prime, length + prime - 1)
    return numpy.stack([longest[k:k + length] for k in range(prime)])


def first_mistake(generated, truth):
    """The index of the first difference, or None."""
    mismatches = (generated != truth).nonzero()[0]
    return int(mismatches[0]) if len(mismatches) else None


def blocks(words):
    """[(number, run length)]: the runs of equal numbers in words."""
    starts = numpy.flatnonzero(numpy.diff(words)) + 1
    bounds = numpy.concatenate(([0], starts, [len(words)]))
    return [(int(words[start]), int(end - start))
            for start, end in zip(bounds[:-1], bounds[1:])]


def count_blocks(words, vocab):
    """(right, complete): how many complete blocks of words are counted right.

    The first block, which holds the prime, is partial and the last may be
    cut off: neither counts. A block is right when it is i repeated i times
    and the next block's number is i's successor.
    """
    runs = blocks(words)[1:]
    right = sum(n == count and following == n % (vocab - 1) + 1
                for (n, count), (following, _) in zip(runs, runs[1:]))
    return right, max(len(runs) - 1, 0)


def report(prime, generated, vocab):
    """The lines that score generated against the truths prime allows."""
    candidates = truths(vocab, prime, len(generated))
    matches = (candidates == generated).sum(axis=1)
    position = int(matches.argmax())  # the first of the best
    truth = candidates[position]
    mistake = first_mistake(generated, truth)
    if mistake is None:
        verdict = 'no mistake'
    else:
        verdict = 'first mistake at word {}: expected {}, got {}'.format(
            mistake + 1, truth[mistake], generated[mistake])
    lines = ['{} of {} generated words match the true sequence, taking the '
             'prime {} as the {} of its block; {}.'.format(
                 matches[position], len(generated), prime,
                 ordinal(position + 1), verdict)]
    words = numpy.concatenate(([prime], generated))
    right, complete = count_blocks(words, vocab)
    if not complete:
        lines.append('Block by block: no complete block to count.')
        return lines
    lines.append('Block by block, whatever the phase: counted {} of {} '
                 'blocks right.'.format(right, complete))
    _, first_block = blocks(words)[0]
    if right == complete and first_block > prime:
        # No phase fits a first block longer than a whole block.
        lines.append('Every complete block is counted right, but the first '
                     'block holds {n} copies of the prime {p} where a block '
                     'of {p}s holds {p}: the model settled in late, out of '
                     'phase with every truth that the prime allows.'.format(
                         p=prime, n=first_block))
    elif right / complete > matches[position] / len(generated) + 0.25:
        lines.append('It counts blocks better than it places words: from a '
                     'reset state, which training never shows a model (its '
                     'state carries on from window to window), it settled '
                     'into the sequence out of phase.')
    return lines


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        for flag, value, smallest, largest in (
                ('--unit', args.unit, 1, MAX_UNITS),
                ('--vocab', args.vocab, simple_sequence.MIN_VOCABULARY,
                 simple_sequence.MAX_VOCABULARY)):
            if value is not None:
                check_whole(flag, value, smallest, largest)
        length = check_whole('--length', args.length, 1, MAX_LENGTH)
        device = select_device(args.gpu, 'predict')
        path, settings = settings_of(args)
        vocab = settings['vocab']
        prime = check_whole('--primeindex', args.primeindex, 1, vocab - 1)
        predictor = load_model(path, settings, device)
    except (UsageError, snapshots.FileError) as error:
        parser.error(str(error))

    # The lines are the result: once one is lost, so is the run.
    for line in result_lines(path, settings, predictor, prime, length):
        print_or_drop(line)
        if output_failed():
            return EXIT_FAILED
    return 0


def result_lines(path, settings, predictor, prime, length):
    """What predict_rnn.py prints: the model loaded, then what it
    generated from prime, as the tutorial printed it, and the report."""
    epochs = ('' if settings['epoch'] is None else
              ', trained {} epochs'.format(settings['epoch']))
    yield 'Loaded {}: {}, {} units, vocabulary {}{}.'.format(
        path, settings['arch'], settings['unit'], settings['vocab'], epochs)
    generated = generate(predictor, prime, length)
    yield 'Predicted sequence: {}'.format([prime] + generated.tolist())
    yield from report(prime, generated, settings['vocab'])


if __name__ == '__main__':
    sys.exit(run_script(main))
