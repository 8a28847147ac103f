"""Train a recurrent network to predict the simple sequence 1 2 2 3 3 3 ...

Truncated backpropagation through time on batch_size parallel streams of the
sequence, with evaluation, logs, plots and a snapshot every epoch.
"""
import os
import signal
import sys


def _quit_while_starting(signum, frame):
    # Not an exception: raised inside an import, it may come out as another.
    os.write(2, b'Interrupted while starting: nothing was written.\n')
    os._exit(128 + signum)


if __name__ == '__main__':  # Ctrl-C or SIGTERM while Chainer loads
    for _signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_signal, _quit_while_starting)

import argparse
import json
import math
import shlex

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
from chainer import training
from chainer.training import extensions
import numpy

import distributed
from iterators import ParallelSequentialIterator
from models import (
    ARCHITECTURES, FUSED_ARCHITECTURES, SequenceClassifier, build_model)
from optimizers import FlatAdam
from out_folder import FolderError, OutFolder, model_name_of
import simple_sequence
import snapshots
from training_extensions import (
    Diverged, LogFile, LogPlotReport, PoolTrainingObservations,
    SequenceEvaluator, StopOnDivergence, StopOnRequest, WithoutTerminalCodes,
    write_graph_files)
from updaters import BPTTUpdater, fast_training

# The arguments that define a run: a resumed run must keep them.
RUN_DEFINING = ('arch', 'unit', 'vocab', 'batchsize', 'bproplen', 'seed',
                'gradclip', 'fused')
# What a snapshot records besides them, each with its type.
RECORDED_TYPES = {'arch': str, 'unit': int, 'vocab': int, 'batchsize': int,
                  'bproplen': int, 'seed': int, 'gradclip': (int, float),
                  'fused': bool, 'epoch': int, 'processes': int}
ADAM_ALPHA = 0.0005  # the tutorial's
EXIT_FAILED = 1  # diverged, or could not write its files
EXIT_USAGE = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130; SIGTERM's is 143


class UsageError(Exception):
    """A bad argument: reported in one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """Reports a bad argument in one line on stderr, exit status 2."""

    def error(self, message):
        # A path with a newline in it must not split the line.
        message = message.replace('\n', '\\n').replace('\r', '\\r')
        self.exit(EXIT_USAGE, '{}: error: {}\n'.format(self.prog, message))


def build_parser():
    parser = ArgumentParser(
        prog='train_rnn.py', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', '-a', choices=sorted(ARCHITECTURES),
                        default='rnn',
                        help='the recurrent architecture (default: rnn)')
    parser.add_argument('--unit', '-u', type=int, default=100,
                        help='units in each layer (default: %(default)s)')
    parser.add_argument('--bproplen', '-l', type=int, default=20,
                        help='steps per update, the length of truncated BPTT '
                        '(default: %(default)s)')
    parser.add_argument('--batchsize', '-b', type=int, default=10,
                        help='parallel streams over the sequence (default: '
                        '%(default)s)')
    parser.add_argument('--epoch', '-e', type=int, default=10,
                        help='sweeps over the training sequence (default: '
                        '%(default)s)')
    parser.add_argument('--gpu', '-g', type=int, default=-1,
                        help='GPU to train on, which needs CuPy; -1 for the '
                        'CPU (default: %(default)s)')
    parser.add_argument('--out', '-o', default='result',
                        help='folder for the log, plots, snapshots and model '
                        '(default: %(default)s; with -r, the snapshot\'s)')
    parser.add_argument('--resume', '-r', default='',
                        help='resume from this snapshot, or from the latest '
                        'one in this folder; the other arguments come from '
                        'the snapshot, and only --epoch may change')
    parser.add_argument('--vocab', type=int,
                        default=simple_sequence.N_VOCABULARY,
                        help='vocabulary size N: the sequence counts up to '
                        'N-1 (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed; a CPU run is deterministic for it '
                        '(default: %(default)s)')
    parser.add_argument('--gradclip', '-c', type=float, default=None,
                        help='clip the gradient norm to this (default: off, '
                        'as in the tutorial)')
    parser.add_argument('--fused', action='store_true',
                        help='run each recurrent layer over a whole BPTT '
                        'window as one function node: the same model, many '
                        'times faster ({})'.format(', '.join(
                            sorted(FUSED_ARCHITECTURES))))
    parser.add_argument('--communicator', default=None,
                        help='train on the processes mpiexec started, each '
                        'on its share of the streams, through this ChainerMN '
                        'communicator (naive on CPUs)')
    parser.add_argument('--overwrite', action='store_true',
                        help='start afresh even where --out holds an '
                        'unfinished run, removing its files')
    return parser


def explicit_arguments(argv):
    """The names of the arguments that argv gives (not left to defaults)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def check_arguments(args):
    """UsageError unless args can make a run (they may come from a file)."""
    for name in ('unit', 'bproplen', 'batchsize', 'epoch', 'vocab', 'seed'):
        value = getattr(args, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise UsageError('--{} must be an integer (got {!r})'.format(
                name, value))
    if not isinstance(args.arch, str) or args.arch not in ARCHITECTURES:
        raise UsageError('unknown architecture {!r}: choose from {}'.format(
            args.arch, ', '.join(sorted(ARCHITECTURES))))
    if not isinstance(args.fused, bool):
        raise UsageError('fused must be true or false (got {!r})'.format(
            args.fused))
    if args.fused and args.arch not in FUSED_ARCHITECTURES:
        raise UsageError('--fused has no {}: it runs {}'.format(
            args.arch, ', '.join(sorted(FUSED_ARCHITECTURES))))
    for name in ('unit', 'bproplen', 'batchsize', 'epoch'):
        if getattr(args, name) < 1:
            raise UsageError('--{} must be at least 1 (got {})'.format(
                name, getattr(args, name)))
    try:
        simple_sequence.check_vocabulary(args.vocab)
    except ValueError as error:
        raise UsageError('--vocab: {}'.format(error))
    if not 0 <= args.seed < 2 ** 32:
        raise UsageError('--seed must be between 0 and 2**32 - 1 (got {})'
                         .format(args.seed))
    if args.gradclip is not None and not (
            isinstance(args.gradclip, (int, float)) and
            not isinstance(args.gradclip, bool) and
            0 < args.gradclip < math.inf):
        raise UsageError('--gradclip must be a positive number (got {!r})'
                         .format(args.gradclip))
    if args.gpu < -1:
        raise UsageError('--gpu must be a GPU number, or -1 for the CPU '
                         '(got {})'.format(args.gpu))
    check_fits_in_memory(args.arch, args.unit, args.vocab, args.batchsize,
                         args.bproplen)
    length = simple_sequence.REPEAT * simple_sequence.period_length(args.vocab)
    if args.batchsize > length:
        raise UsageError('--batchsize {} is larger than the sequence, which '
                         'has {} words'.format(args.batchsize, length))
    if args.bproplen > length // args.batchsize:
        raise UsageError(
            '--bproplen {} is longer than each of the {} streams ({} words): '
            'a window cannot span more than a stream'.format(
                args.bproplen, args.batchsize, length // args.batchsize))


def memory_needed(unit, vocab, batchsize, bproplen):
    """Bytes a run needs, roughly, with any architecture: float32 parameters
    (at most 16 U^2 + 2 V U) with their gradients and Adam's state, the
    sequences and their streams, and the activations of a window."""
    parameters = 16 * unit ** 2 + 2 * vocab * unit + 4 * unit + vocab
    words = simple_sequence.REPEAT * simple_sequence.period_length(vocab)
    return 4 * (8 * parameters + 8 * words + 64 * bproplen * batchsize * unit)


def check_fits_in_memory(arch, unit, vocab, batchsize=1, bproplen=1):
    """UsageError, with the figures, where a run could not fit in memory."""
    needed = memory_needed(unit, vocab, batchsize, bproplen)
    free = snapshots.available_memory()
    if needed > free:
        raise UsageError(
            'a run of {} with {} units and a vocabulary of {} needs about {} '
            'of memory, and this machine has {} free'.format(
                arch, unit, vocab, format_bytes(needed), format_bytes(free)))


def format_bytes(n):
    for unit in ('bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'):
        if n < 1024 or unit == 'PiB':
            return '{:.3g} {}'.format(n, unit)
        n /= 1024


def check_processes(args, comm):
    """UsageError unless the streams split evenly over the processes."""
    if comm is not None and args.batchsize % comm.size:
        raise UsageError('--batchsize {} does not split evenly over {} '
                         'processes'.format(args.batchsize, comm.size))


def select_device(gpu):
    """The chainer device for --gpu; UsageError where it cannot be used."""
    if gpu < 0:
        return chainer.get_device('@numpy')
    if not chainer.backends.cuda.available:
        raise UsageError(
            '--gpu needs CuPy, which is not installed (or cannot find CUDA): '
            'install cupy-cuda13x==13.6.0 for CUDA 13 or '
            'cupy-cuda12x==13.6.0 for CUDA 12 (see the README), or leave '
            '--gpu out to train on the CPU')
    import cupy
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as error:
        raise UsageError('--gpu {}: CuPy finds no usable GPU ({})'.format(
            gpu, error))
    if gpu >= count:
        raise UsageError('--gpu {}: there is no such GPU ({} found)'.format(
            gpu, count))
    device = chainer.get_device('@cupy:{}'.format(gpu))
    device.use()
    return device


def merge_resumed_arguments(args, explicit, snapshot, saved):
    """Take the run's arguments from the snapshot, refusing contradictions."""
    if not isinstance(saved, dict) or set(saved) != set(RECORDED_TYPES):
        raise snapshots.FileError('{} does not record the arguments of its '
                                  'run'.format(snapshot))
    for name, kind in RECORDED_TYPES.items():
        value = saved[name]
        if not isinstance(value, kind) or (
                isinstance(value, bool) and kind is not bool) or (
                name == 'processes' and value < 1):
            if not (name == 'gradclip' and value is None):
                raise snapshots.FileError(
                    '{} records an impossible {}: {!r}'.format(
                        snapshot, name, value))
    for name in RUN_DEFINING:
        given = getattr(args, name)
        if name in explicit and given != saved[name]:
            raise UsageError(
                'the snapshot {} was trained with --{} {}, but this command '
                'says --{} {}: a resumed run keeps its arguments (only '
                '--epoch may change)'.format(
                    snapshot, name, saved[name], name, given))
        setattr(args, name, saved[name])
    if 'epoch' not in explicit:
        args.epoch = saved['epoch']
    if 'out' not in explicit:
        args.out = os.path.dirname(snapshot) or '.'
    try:
        check_arguments(args)
    except UsageError as error:
        if 'epoch' in explicit and args.epoch < 1:
            raise
        raise snapshots.FileError('{} records arguments that make no run: '
                                  '{}'.format(snapshot, error))


def run_arguments(args, comm=None):
    """What args.json and snapshots record: enough to rebuild the run."""
    recorded = {name: getattr(args, name) for name in RUN_DEFINING}
    recorded['epoch'] = args.epoch
    recorded['processes'] = distributed.size(comm)
    return recorded


def model_path(out, arch):
    return os.path.join(out, model_name_of(arch))


def build_trainer(args, device, comm=None, folder=None):
    """The whole run: model, optimizer, iterators, updater, extensions.

    With a ChainerMN communicator, this rank's part of a data-parallel run:
    its share of the streams, gradients averaged over the ranks, and the
    files written by rank 0 alone. folder: the OutFolder that rank 0
    writes to (claimed before the run starts), None on the other ranks.
    """
    numpy.random.seed(args.seed)
    if device.xp is not numpy:
        device.xp.random.seed(args.seed)
    train = simple_sequence.get_simple_sequence(args.vocab)
    # The tutorial evaluates on a fresh copy of the same sequence.
    val = simple_sequence.get_simple_sequence(args.vocab)

    model = SequenceClassifier(
        build_model(args.arch, args.vocab, args.unit, args.fused))
    model.to_device(device)
    optimizer = FlatAdam(alpha=ADAM_ALPHA)
    streams = None
    if comm is not None:
        import chainermn

        optimizer = chainermn.create_multi_node_optimizer(optimizer, comm)
        share = args.batchsize // comm.size
        streams = range(comm.rank * share, (comm.rank + 1) * share)
        if comm.rank != 0:  # the same model everywhere, other dropout masks
            numpy.random.seed([args.seed, comm.rank])
    optimizer.setup(model)
    if args.gradclip is not None:
        optimizer.add_hook(
            chainer.optimizer_hooks.GradientClipping(args.gradclip))

    train_iter = ParallelSequentialIterator(train, args.batchsize,
                                            streams=streams)
    val_iter = ParallelSequentialIterator(val, args.batchsize, repeat=False,
                                          streams=streams)
    updater = BPTTUpdater(
        train_iter, optimizer, args.bproplen, device,
        write_graph=None if folder is None else
        lambda graph: write_graph_files(graph, folder.write))
    trainer = training.Trainer(
        updater, StopOnRequest((args.epoch, 'epoch'), comm), out=args.out)

    # The copy shares the parameters and owns its recurrent state: the
    # tutorial's hook reset the training model's state instead. It runs
    # fused where it can: the same function, in fewer nodes.
    evaluated = model.copy()
    evaluated.predictor.fused = evaluated.predictor.has_fused_mode()
    trainer.extend(SequenceEvaluator(val_iter, evaluated, args.bproplen,
                                     device, comm))
    trainer.extend(StopOnDivergence())
    trainer.extend(snapshots.Snapshot(
        run_arguments(args, comm), folder and folder.write, comm))
    if comm is not None:
        trainer.extend(PoolTrainingObservations(comm))
    if folder is not None:
        add_reports(trainer, args, folder.write)
    return trainer


def add_reports(trainer, args, write):
    """The log, the printed table, the plots and the progress bar."""
    trainer.extend(extensions.LogReport(log_name=None))
    trainer.extend(LogFile(write))
    terminal = sys.stdout.isatty()
    trainer.extend(extensions.PrintReport([
        'epoch', 'iteration', 'main/loss', 'validation/main/loss',
        'main/accuracy', 'validation/main/accuracy',
        'validation/main/boundary_accuracy', 'elapsed_time'],
        out=sys.stdout if terminal else WithoutTerminalCodes(sys.stdout)))
    title = '{}{}: {} units, vocabulary {}, {} streams, bproplen {}, ' \
        'seed {}'.format(args.arch, ' --fused' if args.fused else '',
                         args.unit, args.vocab, args.batchsize,
                         args.bproplen, args.seed)
    trainer.extend(LogPlotReport(['main/loss', 'validation/main/loss'],
                                 'loss.png', title, write))
    trainer.extend(LogPlotReport(
        ['main/accuracy', 'validation/main/accuracy',
         'validation/main/boundary_accuracy'], 'accuracy.png', title, write))
    if terminal:
        trainer.extend(extensions.ProgressBar(update_interval=10))


class Signals:
    """Ctrl-C (SIGINT) and SIGTERM, such as a batch scheduler sends.

    The first one is remembered: during training it asks the trainer to
    stop after the current update (a snapshot follows), elsewhere the run
    acts on it at the next safe point. A second Ctrl-C quits at once.
    """

    def __init__(self, say):
        self.say = say
        self.received = None
        self.stop_trigger = None  # set while the trainer runs

    def __enter__(self):
        self._previous = {number: signal.signal(number, self._handle)
                          for number in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc_info):
        for number, handler in self._previous.items():
            # Once asked to stop, the process is ending: a late signal must
            # not turn into a traceback on the way out.
            signal.signal(number, handler if self.received is None
                          else signal.SIG_IGN)

    def _handle(self, number, frame):
        if self.received is None:
            self.received = number
            if self.stop_trigger is not None:
                self.stop_trigger.request()
                self.say('\n{}: stopping after this update to write a '
                         'snapshot (Ctrl-C again to quit at once)'.format(
                             self.name), file=sys.stderr, flush=True)
        elif number == signal.SIGINT:
            raise KeyboardInterrupt

    @property
    def name(self):
        return 'Ctrl-C' if self.received == signal.SIGINT else 'SIGTERM'

    @property
    def exit_status(self):
        return 128 + self.received


def setup(args, argv, comm=None):
    """Check the arguments, resume, build, then claim the out folder.

    Returns the trainer, the out folder (an OutFolder on rank 0, None on
    the others) and a sentence saying what the run replaced there (or
    None). Raises UsageError, snapshots.FileError or FolderError on any
    problem, the first two before the out folder is touched; with a
    communicator, on every rank alike.
    """
    resumed = None
    continuing = False
    processes = distributed.size(comm)
    if args.resume:
        path, arrays, saved = distributed.on_root(
            comm, snapshots.read_snapshot, args.resume)
        merge_resumed_arguments(args, explicit_arguments(argv), path, saved)
        if saved['processes'] != processes:
            raise UsageError(
                'the snapshot {} was trained on {} processes and this run '
                'has {}: resume it on as many'.format(
                    path, saved['processes'], processes))
        resumed = path, arrays
        continuing = (os.path.realpath(args.out) ==
                      os.path.realpath(os.path.dirname(path)))
    check_arguments(args)
    check_processes(args, comm)
    folder = OutFolder(args.out) if distributed.rank(comm) == 0 else None
    trainer = distributed.agree(
        comm, (UsageError, snapshots.FileError), build_rank, args, comm,
        resumed, folder)
    replaced = distributed.on_root(comm, claim_out_folder, folder, args,
                                   continuing, run_arguments(args, comm))
    return trainer, folder, replaced


def claim_out_folder(folder, args, continuing, run_args):
    """Lock the out folder and make it ready; what the run replaced there."""
    folder.claim()
    try:
        replaced = folder.start_run(run_args, model_name_of(args.arch),
                                    continuing, args.overwrite)
        folder.write('args.json', json.dumps(run_args, indent=4,
                                             sort_keys=True))
        return replaced
    except OSError as error:
        folder.abandon()
        raise FolderError('cannot write to the out folder {}: {}'.format(
            args.out, error.strerror or error))
    except BaseException:
        folder.abandon()
        raise


def build_rank(args, comm, resumed, folder):
    """This process's trainer, restored from resumed (path, arrays) if any."""
    # Each rank on a GPU of its own, counting from --gpu.
    device = select_device(args.gpu if comm is None or args.gpu < 0
                           else args.gpu + comm.intra_rank)
    try:
        trainer = build_trainer(args, device, comm, folder)
    except MemoryError:
        raise UsageError('not enough memory for a run of {} with {} units '
                         'and a vocabulary of {}'.format(
                             args.arch, args.unit, args.vocab))
    if resumed is not None:
        path, arrays = resumed
        restore(trainer, args,
                distributed.rank_part(arrays, distributed.rank(comm)), path)
    return trainer


def restore(trainer, args, arrays, path):
    """Load a snapshot's arrays into trainer, after checking everything they
    say: shapes, counters and the log; FileError if anything is off."""
    updater = trainer.updater
    predictor = updater.get_optimizer('main').target.predictor
    # A trainer that has not started cannot tell its elapsed time, which
    # its serialization asks for: start its clock for that moment.
    trainer._start_at = 0.0
    reference = snapshots.serialized(trainer)
    trainer._start_at = None
    prefix = 'updater/model:main/predictor/'
    iterator = updater.get_iterator('main')
    states = {prefix + key: value for key, value in
              snapshots.recurrent_state_shapes(
                  predictor, len(iterator.next())).items()}
    iterator.reset()
    reference.update(states)
    snapshots.check_shapes(arrays, reference, path, states)
    for key, value in arrays.items():
        if key.endswith(('iteration', '/t', '/epoch', 'position')) and \
                value.shape == () and value.dtype.kind in 'iu' and value < 0:
            raise snapshots.FileError('{} records a negative counter {}'
                                      .format(path, key))
    check_recorded_log(arrays, path)
    snapshots.load_into(trainer, arrays, path)
    if updater.get_iterator('main').iteration != \
            updater.iteration * updater.bprop_len:
        raise snapshots.FileError(
            '{} is inconsistent: {} updates of {} steps, but its streams '
            'moved {} steps'.format(path, updater.iteration,
                                    updater.bprop_len,
                                    updater.get_iterator('main').iteration))
    done = updater.epoch_detail
    if args.epoch < done:
        raise UsageError(
            'the snapshot {} is at epoch {:g} already, past --epoch {}'
            .format(path, done, args.epoch))


LOG_REPORT = 'extensions/LogReport/'


def check_recorded_log(arrays, path):
    """FileError unless the LogReport's log and summary in arrays are what
    LogReport wrote: entries of finite numbers, counters whole."""
    def bad(what):
        return snapshots.FileError('{} holds a damaged log: {}'.format(
            path, what))

    if LOG_REPORT + '_log' not in arrays:
        return
    log = snapshots.parse_json(str(arrays[LOG_REPORT + '_log']),
                               '{}: its log'.format(path))
    if not isinstance(log, list):
        raise bad('not a list')
    for entry in log:
        if not isinstance(entry, dict) or not all(
                isinstance(value, (int, float)) and
                not isinstance(value, bool) and math.isfinite(value)
                for value in entry.values()):
            raise bad('an entry that is not numbers by name')
        for key in ('epoch', 'iteration'):
            if not isinstance(entry.get(key), int) or entry[key] < 0:
                raise bad('an entry without its {}'.format(key))
    names = snapshots.parse_json(
        str(arrays.get(LOG_REPORT + '_summary/_names', '[]')),
        '{}: its log summary'.format(path))
    if not isinstance(names, list) or not all(
            isinstance(name, str) for name in names):
        raise bad('the summary\'s names')
    for key, value in arrays.items():
        if key.startswith(LOG_REPORT + '_summary/_summaries/') and (
                value.shape != () or value.dtype.kind not in 'iuf' or
                not numpy.isfinite(value) or
                (key.endswith('/_n') and value < 0)):
            raise bad(key)


def resume_command(args, comm):
    """The command line that resumes this run from its out folder."""
    command = command_line('train_rnn.py', '-r', args.out)
    if comm is None:
        return command
    mpiexec = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
    mpiexec = shortest_path(mpiexec, command=True) \
        if os.path.exists(mpiexec) else 'mpiexec'
    return '{} -n {} {} --communicator {}'.format(
        shlex.quote(mpiexec), comm.size, command,
        shlex.quote(args.communicator))


def command_line(script, *arguments):
    """A shell command that runs our script with arguments, to be copied
    as it is: this interpreter, paths relative where inside the working
    folder, everything quoted."""
    here = os.path.dirname(os.path.abspath(__file__))
    return shlex.join([shortest_path(sys.executable, command=True),
                       shortest_path(os.path.join(here, script))] +
                      [str(argument) for argument in arguments])


def shortest_path(path, command=False):
    """path relative to the working folder if inside it, else as it is; a
    command in the working folder itself gets ./ (the shell runs it)."""
    relative = os.path.relpath(path)
    if relative.startswith(os.pardir):
        return path
    if command and os.sep not in relative:
        return os.path.join(os.curdir, relative)
    return relative


def train(trainer, args, signals, comm=None, folder=None):
    """Run the trainer; the exit status, with a message where it failed.

    With a communicator, every rank runs it; rank 0 alone speaks and writes.
    """
    say = signals.say
    stop_trigger = trainer.stop_trigger
    if comm is not None:
        # ChainerMN's optimizer spends its first update on broadcasting the
        # parameters. Do that now, so that every update trains, and a
        # resumed run repeats nothing.
        optimizer = trainer.updater.get_optimizer('main')
        comm.bcast_data(optimizer.target)
        optimizer.is_changed(optimizer.target)
    if signals.received is not None:  # during the set-up
        say('{}: stopped before training; {}'.format(
            signals.name, latest_snapshot_hint(args, comm)), file=sys.stderr)
        return signals.exit_status
    # A snapshot of the last epoch (the run was killed before it wrote its
    # model) only lacks the model.
    if trainer.updater.epoch_detail < args.epoch:
        signals.stop_trigger = stop_trigger
        try:
            with fast_training():
                trainer.run(show_loop_exception_msg=False)
        except Diverged as error:
            say('{}: try clipping the gradient, e.g. --gradclip 5'.format(
                error), file=sys.stderr)
            return EXIT_FAILED
        finally:
            signals.stop_trigger = None
    # A stop asked for during the last epoch's extensions comes too late.
    if stop_trigger.requested and trainer.updater.epoch_detail < args.epoch:
        snapshots.save_snapshot(trainer, run_arguments(args, comm),
                                folder and folder.write, comm)
        say('Stopped at iteration {} (epoch {:.2f}) with a snapshot in {}. '
            'Resume with: {}'.format(
                trainer.updater.iteration, trainer.updater.epoch_detail,
                args.out, resume_command(args, comm)), file=sys.stderr)
        return signals.exit_status
    if folder is not None:
        predictor = trainer.updater.get_optimizer('main').target.predictor
        predictor.reset_state()
        arrays = snapshots.serialized(predictor)
        arrays[snapshots.RUN_ARGS_KEY] = numpy.array(
            json.dumps(run_arguments(args, comm)))
        folder.write_model(model_name_of(args.arch),
                           snapshots.npz_bytes(arrays))
        say('Saved the model to {}; try it with: {}'.format(
            model_path(args.out, args.arch),
            command_line('predict_rnn.py', '-o', args.out, '-a', args.arch)))
    if signals.received is not None:
        say('{} came as the run finished: its model is written.'.format(
            signals.name), file=sys.stderr)
        return signals.exit_status
    return 0


def latest_snapshot_hint(args, comm):
    """Where the run can go on from: the resume command, if a snapshot of
    this run exists."""
    try:
        latest = snapshots.latest_snapshot(args.out)
    except snapshots.FileError:
        latest = None
    if latest is None:
        return 'no snapshot of this run exists yet.'
    return 'the latest snapshot, {}, resumes the run: {}'.format(
        latest, resume_command(args, comm))


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    comm = None
    folder = None
    with Signals(print) as signals:
        try:
            if args.communicator is not None:
                comm = distributed.create_communicator(args.communicator)
            if distributed.rank(comm) != 0:
                signals.say = lambda *args, **kwargs: None
            trainer, folder, replaced = setup(args, argv, comm)
        except (UsageError, snapshots.FileError, FolderError,
                distributed.MPIError) as error:
            if distributed.rank(comm) == 0:
                parser.error(str(error))
            parser.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            signals.say('Ctrl-C: stopped before training; nothing was '
                        'written.', file=sys.stderr)
            return EXIT_INTERRUPTED
        if replaced:
            signals.say(replaced)
        try:
            return train(trainer, args, signals, comm, folder)
        except KeyboardInterrupt:
            signals.say('Ctrl-C: quit at once; {}'.format(
                latest_snapshot_hint(args, comm)), file=sys.stderr)
            return EXIT_INTERRUPTED
        except OSError as error:
            print('{}: error: writing to {} failed: {}'.format(
                parser.prog, args.out, error), file=sys.stderr)
            if comm is not None:  # the other ranks would wait for it forever
                comm.mpi_comm.Abort(EXIT_FAILED)
            return EXIT_FAILED
        finally:
            if folder is not None:
                folder.release()


if __name__ == '__main__':
    sys.exit(main())
