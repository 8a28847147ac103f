"""Train a recurrent network to predict the simple sequence 1 2 2 3 3 3 ...

Truncated backpropagation through time on batch_size parallel streams of the
sequence, with evaluation, logs, plots and a snapshot every epoch.
"""
import argparse
import contextlib
import json
import math
import os
import shlex
import shutil
import signal
import sys

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
import simple_sequence
import snapshots
from training_extensions import (
    Diverged, LogPlotReport, PoolTrainingObservations, SequenceEvaluator,
    StopOnDivergence, StopOnRequest, WithoutTerminalCodes)
from updaters import BPTTUpdater, fast_training

# The arguments that define a run: a resumed run must keep them.
RUN_DEFINING = ('arch', 'unit', 'vocab', 'batchsize', 'bproplen', 'seed',
                'gradclip', 'fused')
ADAM_ALPHA = 0.0005  # the tutorial's
MODEL_SUFFIX = '_simple_sequence.model'  # after the architecture's name
EXIT_FAILED = 1  # diverged, or could not write its files
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A bad argument: reported in one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """Reports a bad argument in one line on stderr, exit status 2."""

    def error(self, message):
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
    if args.arch not in ARCHITECTURES:
        raise UsageError('unknown architecture {!r}: choose from {}'.format(
            args.arch, ', '.join(sorted(ARCHITECTURES))))
    if args.fused and args.arch not in FUSED_ARCHITECTURES:
        raise UsageError('--fused has no {}: it runs {}'.format(
            args.arch, ', '.join(sorted(FUSED_ARCHITECTURES))))
    for name in ('unit', 'bproplen', 'batchsize', 'epoch', 'vocab', 'seed'):
        value = getattr(args, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise UsageError('--{} must be an integer (got {!r})'.format(
                name, value))
    for name in ('unit', 'bproplen', 'batchsize', 'epoch'):
        if getattr(args, name) < 1:
            raise UsageError('--{} must be at least 1 (got {})'.format(
                name, getattr(args, name)))
    try:
        simple_sequence.check_vocabulary(args.vocab)
    except ValueError as error:
        raise UsageError('--vocab: {}'.format(error))
    length = simple_sequence.REPEAT * simple_sequence.period_length(args.vocab)
    if args.batchsize > length:
        raise UsageError('--batchsize {} is larger than the sequence, which '
                         'has {} words'.format(args.batchsize, length))
    if not 0 <= args.seed < 2 ** 32:
        raise UsageError('--seed must be between 0 and 2**32 - 1 (got {})'
                         .format(args.seed))
    if args.gradclip is not None and not (
            isinstance(args.gradclip, (int, float)) and
            0 < args.gradclip < math.inf):
        raise UsageError('--gradclip must be a positive number (got {!r})'
                         .format(args.gradclip))
    if args.gpu < -1:
        raise UsageError('--gpu must be a GPU number, or -1 for the CPU '
                         '(got {})'.format(args.gpu))


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
    if not (isinstance(saved, dict) and
            set(RUN_DEFINING + ('epoch',)) <= set(saved)):
        raise snapshots.FileError('{} does not record the arguments of its '
                                  'run'.format(snapshot))
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


def run_arguments(args, comm=None):
    """What args.json and snapshots record: enough to rebuild the run."""
    recorded = {name: getattr(args, name) for name in RUN_DEFINING}
    recorded['epoch'] = args.epoch
    recorded['processes'] = distributed.size(comm)
    return recorded


def model_path(out, arch):
    return os.path.join(out, arch + MODEL_SUFFIX)


def build_trainer(args, device, comm=None):
    """The whole run: model, optimizer, iterators, updater, extensions.

    With a ChainerMN communicator, this rank's part of a data-parallel run:
    its share of the streams, gradients averaged over the ranks, and the
    files written by rank 0 alone.
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
    root = distributed.rank(comm) == 0
    if comm is not None:
        import chainermn

        optimizer = chainermn.create_multi_node_optimizer(optimizer, comm)
        share = args.batchsize // comm.size
        streams = range(comm.rank * share, (comm.rank + 1) * share)
        if not root:  # the same model everywhere, other dropout masks
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
        graph_path=os.path.join(args.out, 'cg.dot') if root else None)
    trainer = training.Trainer(
        updater, StopOnRequest((args.epoch, 'epoch'), comm), out=args.out)

    # The copy shares the parameters and owns its recurrent state: the
    # tutorial's hook reset the training model's state instead.
    trainer.extend(SequenceEvaluator(val_iter, model.copy(), args.bproplen,
                                     device, comm))
    trainer.extend(StopOnDivergence())
    trainer.extend(snapshots.Snapshot(run_arguments(args, comm), comm))
    if comm is not None:
        trainer.extend(PoolTrainingObservations(comm))
    if root:
        add_reports(trainer)
    return trainer


def add_reports(trainer):
    """The log, the printed table, the plots and the progress bar."""
    trainer.extend(extensions.LogReport())
    terminal = sys.stdout.isatty()
    trainer.extend(extensions.PrintReport([
        'epoch', 'iteration', 'main/loss', 'validation/main/loss',
        'main/accuracy', 'validation/main/accuracy',
        'validation/main/boundary_accuracy', 'elapsed_time'],
        out=sys.stdout if terminal else WithoutTerminalCodes(sys.stdout)))
    trainer.extend(LogPlotReport(['main/loss', 'validation/main/loss'],
                                 'loss.png'))
    trainer.extend(LogPlotReport(
        ['main/accuracy', 'validation/main/accuracy',
         'validation/main/boundary_accuracy'], 'accuracy.png'))
    if terminal:
        trainer.extend(extensions.ProgressBar(update_interval=10))


def our_files(out):
    """The names in out that a run of train_rnn.py writes."""
    fixed = {'log', 'loss.png', 'accuracy.png', 'cg.dot', 'args.json'}
    return [name for name in os.listdir(out)
            if name in fixed or snapshots.SNAPSHOT_NAME.fullmatch(name) or
            name.endswith(MODEL_SUFFIX)]


def prepare_out_folder(args, continuing, run_args):
    """Make args.out ready for a run, keeping an unfinished run from harm.

    A run continuing in its own folder keeps everything. Otherwise a run
    replaces a finished run's files (it is reproducible from its args.json)
    but refuses to touch an unfinished one, which might be resumed, unless
    --overwrite says so. Files that are not ours are left alone.
    """
    created = not os.path.exists(args.out)
    try:
        os.makedirs(args.out, exist_ok=True)
        snapshots.remove_leftovers(args.out)
        if continuing:  # unfinished again: its old model would mislead
            for name in our_files(args.out):
                if name.endswith(MODEL_SUFFIX):
                    os.unlink(os.path.join(args.out, name))
        else:
            existing = our_files(args.out)
            finished = any(name.endswith(MODEL_SUFFIX) for name in existing)
            if existing and not finished and not args.overwrite:
                raise UsageError(
                    '{} holds an unfinished run: resume it with -r {}, or '
                    'pass --overwrite to start afresh, or choose another '
                    '--out'.format(args.out, args.out))
            for name in existing:
                os.unlink(os.path.join(args.out, name))
        with snapshots.atomic_file(os.path.join(args.out, 'args.json'),
                                   'w') as f:
            json.dump(run_args, f, indent=4, sort_keys=True)
    except OSError as error:
        if created:
            shutil.rmtree(args.out, ignore_errors=True)
        raise UsageError('cannot write to the out folder {}: {}'.format(
            args.out, error.strerror or error))


@contextlib.contextmanager
def stop_on_ctrl_c(stop_trigger, say=print):
    """The first Ctrl-C asks the trainer to stop; a second one interrupts."""
    def request_stop(signum, frame):
        stop_trigger.request()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        say('\nCtrl-C: stopping after this update to write a snapshot '
            '(Ctrl-C again to quit at once)', file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def setup(args, argv, comm=None):
    """Check the arguments, resume, build and claim the out folder.

    Raises UsageError or snapshots.FileError on any problem, before the out
    folder is touched; with a communicator, on every rank alike.
    """
    resumed = None
    continuing = False
    processes = distributed.size(comm)
    if args.resume:
        path, arrays, saved = distributed.on_root(
            comm, snapshots.read_snapshot, args.resume)
        merge_resumed_arguments(args, explicit_arguments(argv), path, saved)
        if saved.get('processes', 1) != processes:
            raise UsageError(
                'the snapshot {} was trained on {} processes and this run '
                'has {}: resume it on as many'.format(
                    path, saved.get('processes', 1), processes))
        resumed = path, arrays
        continuing = (os.path.realpath(args.out) ==
                      os.path.realpath(os.path.dirname(path)))
    check_arguments(args)
    check_processes(args, comm)
    trainer = distributed.agree(
        comm, (UsageError, snapshots.FileError), build_rank, args, comm,
        resumed)
    distributed.on_root(comm, prepare_out_folder, args, continuing,
                        run_arguments(args, comm))
    return trainer


def build_rank(args, comm, resumed):
    """This process's trainer, restored from resumed (path, arrays) if any."""
    # Each rank on a GPU of its own, counting from --gpu.
    device = select_device(args.gpu if comm is None or args.gpu < 0
                           else args.gpu + comm.intra_rank)
    try:
        trainer = build_trainer(args, device, comm)
    except MemoryError:
        raise UsageError('not enough memory for a model of --unit {} on '
                         '--vocab {}'.format(args.unit, args.vocab))
    if resumed is not None:
        path, arrays = resumed
        snapshots.load_into(
            trainer, distributed.rank_part(arrays, distributed.rank(comm)),
            path)
        done = trainer.updater.epoch_detail
        if args.epoch < done:
            raise UsageError(
                'the snapshot {} is at epoch {:g} already, past --epoch {}'
                .format(path, done, args.epoch))
    return trainer


def resume_command(args, comm):
    """The command line that resumes this run from its out folder."""
    command = 'python train_rnn.py -r {}'.format(shlex.quote(args.out))
    if comm is None:
        return command
    return 'mpiexec -n {} {} --communicator {}'.format(
        comm.size, command, args.communicator)


def train(trainer, args, comm=None):
    """Run the trainer; the exit status, with a message where it failed.

    With a communicator, every rank runs it; rank 0 alone speaks and writes.
    """
    root = distributed.rank(comm) == 0
    say = print if root else (lambda *args, **kwargs: None)
    stop_trigger = trainer.stop_trigger
    if comm is not None:
        # ChainerMN's optimizer spends its first update on broadcasting the
        # parameters. Do that now, so that every update trains, and a
        # resumed run repeats nothing.
        optimizer = trainer.updater.get_optimizer('main')
        comm.bcast_data(optimizer.target)
        optimizer.is_changed(optimizer.target)
    finished = trainer.updater.epoch_detail >= args.epoch
    try:
        # A snapshot of the last epoch (the run was killed before it wrote
        # its model) only lacks the model.
        if not finished:
            with stop_on_ctrl_c(stop_trigger, say), fast_training():
                trainer.run(show_loop_exception_msg=False)
    except Diverged as error:
        say('{}: try clipping the gradient, e.g. --gradclip 5'.format(
            error), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        say('Interrupted. If an epoch has ended, its snapshot resumes the '
            'run: ' + resume_command(args, comm), file=sys.stderr)
        return EXIT_INTERRUPTED
    # A stop asked for during the last epoch's extensions comes too late.
    if stop_trigger.requested and trainer.updater.epoch_detail < args.epoch:
        snapshots.save_snapshot(trainer, run_arguments(args, comm), comm)
        say('Stopped at iteration {} (epoch {:.2f}) with a snapshot in {}. '
            'Resume with: {}'.format(
                trainer.updater.iteration, trainer.updater.epoch_detail,
                args.out, resume_command(args, comm)), file=sys.stderr)
        return EXIT_INTERRUPTED
    if root:
        predictor = trainer.updater.get_optimizer('main').target.predictor
        predictor.reset_state()
        path = model_path(args.out, args.arch)
        snapshots.save_npz(path, predictor)
        say('Saved the model to {}; try it with: python predict_rnn.py -o {}'
            .format(path, args.out))
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    comm = None
    try:
        if args.communicator is not None:
            comm = distributed.create_communicator(args.communicator)
        trainer = setup(args, argv, comm)
    except (UsageError, snapshots.FileError, distributed.MPIError) as error:
        if distributed.rank(comm) == 0:
            parser.error(str(error))
        parser.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    try:
        return train(trainer, args, comm)
    except OSError as error:
        print('{}: error: writing to {} failed: {}'.format(
            parser.prog, args.out, error), file=sys.stderr)
        if comm is not None:  # the other ranks would wait for it forever
            comm.mpi_comm.Abort(EXIT_FAILED)
        return EXIT_FAILED


if __name__ == '__main__':
    sys.exit(main())
