"""Train a recurrent network to predict the simple sequence 1 2 2 3 3 3 ...

Truncated backpropagation through time on batch_size parallel streams of the
sequence, with evaluation, logs, plots and a snapshot every epoch.
"""
import sys

import quiet_start

if __name__ == '__main__':  # before Chainer loads
    quiet_start.install()

import setup_check  # noqa: F401  (says so where Chainer is missing)
import argparse
import json
import math
import os
import shlex
import types

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
from chainer import training
from chainer.training import extensions
import numpy

import chainer_internals
import cli
from cli import UsageError
from dashboard_commands import DashboardCommands
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
    PrintedOutput, SequenceEvaluator, StopOnDivergence, StopOnRequest,
    write_graph_files)
from updaters import BPTTUpdater, fast_training

# The arguments that define a run: a resumed run must keep them.
RUN_DEFINING = ('arch', 'unit', 'vocab', 'batchsize', 'bproplen', 'seed',
                'gradclip', 'fused')
# What a snapshot records.
RECORDED = RUN_DEFINING + ('epoch', 'processes', 'keep_snapshots')
# Recorded since a later version: a snapshot written before lacks them, and
# its run takes the flag's default.
RECORDED_LATER = ('keep_snapshots',)
# What a resumed run takes from its snapshot unless the command says.
MAY_CHANGE = ('epoch', 'keep_snapshots')
ADAM_ALPHA = 0.0005  # the tutorial's
MAX_COUNTER = snapshots.MAX_COUNTER
FINISHED = '{} came as the run finished: its model is written.'


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    ranks = None
    with cli.Signals() as signals:
        try:
            distributed.check_launch(args.communicator)
            ranks = distributed.Ranks(args.communicator)
            signals.quiet = not ranks.root
            # The first moment the ranks can end together: a signal that
            # came while they started waited for it (quiet_start).
            if signals.share(ranks) is not None:
                signals.say(quiet_start.INTERRUPTED)
                return signals.exit_status
            snapshot = resumed_snapshot(args, argv, ranks)
            check_arguments(args)
            check_log_fits(args)
            if args.batchsize % ranks.size:
                raise UsageError(
                    '--batchsize {} does not split evenly over {} processes'
                    .format(args.batchsize, ranks.size))
            folder = OutFolder(args.out) if ranks.root else None
            trainer = ranks.agree(
                (UsageError, snapshots.FileError), build_trainer, args,
                ranks, folder)
            if snapshot is not None:  # -r: everything as it left it
                ranks.agree((UsageError, snapshots.FileError), resume,
                            trainer, args, ranks, snapshot)
            replaced = ranks.on_root(claim_out_folder, folder, args,
                                     snapshot, trainer.updater,
                                     run_arguments(args, ranks))
        except (UsageError, snapshots.FileError, FolderError,
                distributed.MPIError) as error:
            if (ranks.root if ranks is not None else
                    distributed.world_rank() == 0):
                parser.error(str(error))
            parser.exit(cli.EXIT_USAGE)
        except KeyboardInterrupt:
            signals.say('Ctrl-C: stopped before training started.')
            return cli.EXIT_INTERRUPTED
        except OSError as error:  # claim_out_folder's first writes
            # Every rank has rank 0's error, and ends with it: rank 0 alone
            # says it, with no MPI_Abort and its line from MPICH (hostile
            # pass 15: the line twice, glued, or lost).
            if ranks is None or ranks.root:
                return cli.writing_failed(parser.prog, args.out, error)
            return cli.EXIT_FAILED
        signals.say(replaced, stdout=True)
        try:
            return train(trainer, args, signals, ranks, folder)
        except KeyboardInterrupt:
            signals.say('Ctrl-C: quit at once; ' +
                        latest_snapshot_hint(args, ranks))
            ranks.abort(cli.EXIT_INTERRUPTED)
            return cli.EXIT_INTERRUPTED
        except OSError as error:
            return writing_failed(parser, args, ranks, error)
        finally:
            if folder is not None:
                folder.release()


def writing_failed(parser, args, ranks, error):
    """Say that a write to the out folder failed (a full disk), on every
    rank's behalf, and end them; the exit status."""
    status = cli.writing_failed(parser.prog, args.out, error)
    ranks.abort(status)
    return status


def setup_training(args, words=None, ranks=None, alpha=ADAM_ALPHA,
                   write_graph=None, model_options=None):
    """Steps 1 to 5 of the tutorial, for args (those of build_parser).

    The recipe of a run that train_rnn.py, study.sweep and benchmarks/ours.py
    share. words: the training sequence (default: the tutorial's). ranks:
    a distributed.Ranks, for this rank's share of a data-parallel run.
    model_options: keyword arguments of the architecture's class.
    Returns a namespace of model, optimizer, train_iter, val_iter, updater.
    """
    ranks = ranks or distributed.Ranks()
    device = cli.select_device(
        args.gpu if args.gpu < 0 else args.gpu + (
            ranks.comm.intra_rank if ranks.comm is not None else 0), 'train')
    numpy.random.seed(args.seed)
    if device.xp is not numpy:
        device.xp.random.seed(args.seed)

    # 1. Setup model
    model = SequenceClassifier(
        build_model(args.arch, args.vocab, args.unit, args.fused,
                    **(model_options or {})))
    model.to_device(device)
    if not ranks.root:  # the same model everywhere, other dropout masks
        numpy.random.seed([args.seed, ranks.rank])

    # 2. Setup an optimizer
    optimizer = ranks.multi_node(FlatAdam(alpha=alpha))
    optimizer.setup(model)
    if args.gradclip is not None:
        optimizer.add_hook(
            chainer.optimizer_hooks.GradientClipping(args.gradclip))

    # 3. Load dataset: the tutorial evaluates on a copy of the same sequence
    train = simple_sequence.get_simple_sequence(args.vocab) \
        if words is None else words
    val = simple_sequence.get_simple_sequence(args.vocab)

    # 4. Setup an Iterator
    streams = ranks.streams(args.batchsize)
    train_iter = ParallelSequentialIterator(train, args.batchsize,
                                            streams=streams)
    val_iter = ParallelSequentialIterator(val, args.batchsize, repeat=False,
                                          streams=streams)

    # 5. Setup an Updater
    updater = BPTTUpdater(train_iter, optimizer, args.bproplen, device,
                          write_graph=write_graph)
    return types.SimpleNamespace(
        model=model, optimizer=optimizer, train_iter=train_iter,
        val_iter=val_iter, updater=updater, device=device)


def build_trainer(args, ranks, folder=None):
    """Steps 1 to 6: the run, its trainer and extensions. folder: the
    OutFolder that rank 0 writes to once it has claimed it; None on the
    other ranks."""
    try:
        run = setup_training(
            args, ranks=ranks, write_graph=folder and (
                lambda graph: write_graph_files(graph, folder.write)))
    except MemoryError:
        raise UsageError('not enough memory for a run of {} with {} units '
                         'and a vocabulary of {}'.format(
                             args.arch, args.unit, args.vocab))

    # 6. Setup a trainer (and extensions)
    trainer = training.Trainer(
        run.updater, StopOnRequest((args.epoch, 'epoch'), ranks.comm),
        out=args.out)
    # On a copy of the model, with a state of its own (see the class).
    trainer.extend(SequenceEvaluator(run.val_iter, run.model, args.bproplen,
                                     run.device, ranks.comm))
    trainer.extend(StopOnDivergence())
    trainer.extend(snapshots.Snapshot(
        run_arguments(args, ranks), folder and folder.write_snapshot,
        ranks.comm))
    if ranks.comm is not None:
        trainer.extend(PoolTrainingObservations(ranks.comm))
    if folder is not None:
        add_reports(trainer, args, folder.write)
        trainer.extend(DashboardCommands(folder, run_arguments(args, ranks),
                                         ranks.comm))
    return trainer


def resume(trainer, args, ranks, path):
    """Restore the trainer from the snapshot at path, which rank 0 reads
    once every entry's header says it is one of this run's."""
    reference, states = snapshots.snapshot_reference(trainer)
    reference.update(progress_bar_entries())
    arrays = ranks.on_root(snapshots.read_snapshot_arrays, path, reference,
                           states, ranks.size)
    snapshots.restore(trainer, distributed.rank_part(arrays, ranks.rank),
                      path)
    if args.epoch < trainer.updater.epoch_detail:
        raise UsageError(
            'the snapshot {} is at epoch {:g} already, past --epoch {}'
            .format(path, trainer.updater.epoch_detail, args.epoch))


def add_reports(trainer, args, write):
    """The log, the printed table, the plots and the progress bar."""
    trainer.extend(extensions.LogReport(log_name=None))
    trainer.extend(LogFile(write))
    terminal = cli.is_terminal(sys.stdout)
    out = PrintedOutput(sys.stdout, terminal)
    trainer.extend(extensions.PrintReport([
        'epoch', 'iteration', 'main/loss', 'validation/main/loss',
        'main/accuracy', 'validation/main/accuracy',
        'validation/main/boundary_accuracy', 'elapsed_time'], out=out))
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
        trainer.extend(chainer_internals.progress_bar_printing_to(
            extensions.ProgressBar(update_interval=10), out))


def progress_bar_entries():
    """What a snapshot of a run in a terminal holds and others lack: its
    progress bar's trigger. Either may resume the other."""
    bar = extensions.ProgressBar()
    trigger = training.trigger.get_trigger(bar.trigger)
    return {'extension_triggers/{}/{}'.format(bar.default_name, key): value
            for key, value in snapshots.serialized(trigger).items()}


def train(trainer, args, signals, ranks, folder):
    """Run the trainer and save the model; the exit status.

    Every rank runs it; rank 0 alone speaks and writes. A signal may come
    to one rank alone: the ranks share it before each turn they take.
    """
    stop_trigger = trainer.stop_trigger
    ranks.start(trainer.updater.get_optimizer('main'))
    if signals.share(ranks) is not None:  # during the set-up
        return stopped_before_training(args, signals, ranks)
    # A snapshot of the last epoch (the run was killed before it wrote its
    # model) only lacks the model.
    if trainer.updater.epoch_detail < args.epoch:
        try:
            with signals.stopping(stop_trigger), fast_training():
                trainer.run(show_loop_exception_msg=False)
        except Diverged as error:
            signals.say('{}: try clipping the gradient, e.g. --gradclip 5'
                        .format(error))
            return cli.EXIT_FAILED
    # A stop asked for during the last epoch's extensions comes too late.
    if stop_trigger.requested and trainer.updater.epoch_detail < args.epoch:
        # As the trainer set its extensions up: a snapshot before the first
        # update would hold no Adam state, which no resume accepts.
        if trainer.updater.iteration == 0:
            signals.share(ranks)
            return stopped_before_training(args, signals, ranks)
        snapshots.save_snapshot(trainer, run_arguments(args, ranks),
                                folder and folder.write_snapshot, ranks.comm)
        signals.share(ranks)
        signals.say('Stopped at iteration {} (epoch {:.2f}) with a snapshot '
                    'in {}. Resume with: {}'.format(
                        trainer.updater.iteration,
                        trainer.updater.epoch_detail, args.out,
                        resume_command(args, ranks)))
        return signals.exit_status
    if folder is not None:
        save_model(trainer, args, ranks, folder)
        signals.say('Saved the model to {}; try it with: {}'.format(
            model_path(args.out, args.arch), cli.command_line(
                'predict_rnn.py', '-o', cli.path_argument(args.out), '-a',
                args.arch)),
            stdout=True)
    # Nothing is left to stop: from here to the exit a signal is said, with
    # its status, as it comes; one that came before is said here.
    quiet_start.finished(FINISHED)
    if signals.share(ranks) is not None:
        signals.say(FINISHED.format(signals.name))
        return signals.exit_status
    return 0


def save_model(trainer, args, ranks, folder):
    """Write <out>/<arch>_simple_sequence.model: the tutorial's file, with
    the run's arguments, enough to rebuild it."""
    predictor = trainer.updater.get_optimizer('main').target.predictor
    predictor.reset_state()
    arrays = snapshots.with_run_args(snapshots.serialized(predictor),
                                     run_arguments(args, ranks))
    folder.write_model(model_name_of(args.arch), snapshots.npz_bytes(arrays))


def build_parser():
    parser = cli.ArgumentParser(
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
                        type=cli.non_empty_path,
                        help='folder for the log, plots, snapshots and model '
                        '(default: %(default)s; with -r, the snapshot\'s)')
    parser.add_argument('--resume', '-r', type=cli.non_empty_path,
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
                        'window as one function node: the same model, '
                        'faster ({})'.format(', '.join(
                            sorted(FUSED_ARCHITECTURES))))
    parser.add_argument('--communicator', default=None,
                        help='train on the processes mpiexec started, each '
                        'on its share of the streams, through this ChainerMN '
                        'communicator (naive on CPUs)')
    parser.add_argument('--keep-snapshots', type=snapshot_count, default=2,
                        metavar='N',
                        help='keep the last N snapshots, 0 for all; the '
                        'one before the latest resumes the run if the latest '
                        'is found damaged (default: %(default)s)')
    parser.add_argument('--overwrite', action='store_true',
                        help='start afresh even where --out holds an '
                        'unfinished run, removing its files')
    return parser


def snapshot_count(text):
    """--keep-snapshots' value: a whole number from 0 to what a snapshot's
    counters hold (more would mean all, as 0 does)."""
    count = cli.whole_number(text)
    if not 0 <= count <= MAX_COUNTER:
        raise argparse.ArgumentTypeError(
            'must be 0 (all) to {} (got {})'.format(MAX_COUNTER, count))
    return count


def explicit_arguments(argv):
    """The names of the arguments that argv gives (not left to defaults)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def check_arguments(args):
    """UsageError unless args can make a run (they may come from a file)."""
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
        cli.check_whole('--' + name, getattr(args, name), 1)
    cli.check_whole('--seed', args.seed, 0, 2 ** 32 - 1)
    # As simple_sequence.py's: 0 was told "at least 1", 2 "at least 3".
    cli.check_whole('--vocab', args.vocab, simple_sequence.MIN_VOCABULARY,
                    simple_sequence.MAX_VOCABULARY)
    # The flag is a float, and so is what a run records of it.
    if args.gradclip is not None and not isinstance(args.gradclip, float):
        raise UsageError('--gradclip must be a float or null (got {!r})'
                         .format(args.gradclip))
    if args.gradclip is not None and not 0 < args.gradclip < math.inf:
        raise UsageError('--gradclip must be a positive number (got {!r})'
                         .format(args.gradclip))
    cli.check_fits_in_memory(args.arch, args.unit, args.vocab,
                             args.batchsize, args.bproplen)
    length = simple_sequence.REPEAT * simple_sequence.period_length(args.vocab)
    if args.batchsize > length:
        raise UsageError('--batchsize {} is larger than the sequence, which '
                         'has {} words'.format(args.batchsize, length))
    if args.bproplen > length // args.batchsize:
        raise UsageError(
            '--bproplen {} is longer than each of the {} streams ({} words): '
            'a window cannot span more than a stream'.format(
                args.bproplen, args.batchsize, length // args.batchsize))
    # The step counter of a run that could end as asked fits a snapshot.
    most_epochs = MAX_COUNTER * args.batchsize // length
    if args.epoch > most_epochs:
        raise UsageError(
            '--epoch {} could never end: a snapshot counts the steps in 64 '
            'bits, which hold {} epochs of this run at most'.format(
                args.epoch, most_epochs))


def check_log_fits(args):
    """UsageError where the run would log more epochs than its snapshots
    may hold: those of a run that trains, not of a model file read."""
    if args.epoch > snapshots.MAX_LOGGED_EPOCHS:
        raise UsageError(
            '--epoch {} is more than a snapshot\'s log holds: {} epochs at '
            'most (docs/reliability.md)'.format(
                args.epoch, snapshots.MAX_LOGGED_EPOCHS))


def resumed_snapshot(args, argv, ranks):
    """With -r, the path of the snapshot, whose recorded arguments now fill
    args; else None."""
    if args.resume is None:
        return None
    path, saved = ranks.on_root(snapshots.read_snapshot, args.resume)
    merge_resumed_arguments(args, explicit_arguments(argv), path, saved)
    if saved['processes'] != ranks.size:
        raise UsageError(
            'the snapshot {} was trained on {} processes and this run has {}: '
            'resume it on as many'.format(path, saved['processes'],
                                          ranks.size))
    return path


def merge_resumed_arguments(args, explicit, snapshot, saved):
    """Take the run's arguments from the snapshot, refusing contradictions."""
    saved = recorded_arguments(saved, snapshot)
    for name in RUN_DEFINING:
        given = getattr(args, name)
        if name in explicit and given != saved[name]:
            raise UsageError(
                'the snapshot {} was trained with --{} {}, but this command '
                'says --{} {}: a resumed run keeps its arguments (only '
                '--epoch and --keep-snapshots may change)'.format(
                    snapshot, name, saved[name], name, given))
        setattr(args, name, saved[name])
    for name in MAY_CHANGE:
        if name not in explicit:
            setattr(args, name, saved[name])
    if 'out' not in explicit:
        args.out = os.path.dirname(snapshot) or '.'


def recorded_arguments(saved, snapshot):
    """saved, the run's arguments that a snapshot (or a model file) at
    snapshot records, with the defaults of those recorded only since;
    FileError unless they make a run."""
    if not isinstance(saved, dict):
        raise snapshots.FileError('{} does not record the arguments of its '
                                  'run: they are no names with values'
                                  .format(snapshot))
    missing = sorted(set(RECORDED) - set(RECORDED_LATER) - set(saved))
    unknown = sorted(set(saved) - set(RECORDED))
    problems = []
    if missing:
        problems.append('it lacks ' + ', '.join(missing))
    if unknown:
        problems.append('it names {}, which train_rnn.py does not know'
                        .format(', '.join(unknown)))
    if problems:
        raise snapshots.FileError('{} does not record the arguments of its '
                                  'run: {}'.format(snapshot,
                                                   '; '.join(problems)))
    parser = build_parser()
    saved = dict({name: parser.get_default(name)
                  for name in RECORDED_LATER}, **saved)
    try:
        check_arguments(argparse.Namespace(**saved))
        cli.check_whole('processes', saved['processes'], 1)
        cli.check_whole('keep_snapshots', saved['keep_snapshots'], 0,
                        MAX_COUNTER)
    except UsageError as error:
        raise snapshots.FileError('{} records arguments that make no run: '
                                  '{}'.format(snapshot, error))
    return saved


def run_arguments(args, ranks):
    """What args.json and snapshots record: enough to rebuild the run."""
    recorded = {name: getattr(args, name) for name in RUN_DEFINING}
    recorded['epoch'] = args.epoch
    recorded['processes'] = ranks.size
    recorded['keep_snapshots'] = args.keep_snapshots
    return recorded


def model_path(out, arch):
    return os.path.join(out, model_name_of(arch))


def claim_out_folder(folder, args, snapshot, updater, run_args):
    """Lock the out folder and make it ready; what the run replaced there.

    A run resumed from a snapshot of its own folder continues there, unless
    that run went past it. updater: the trainer's, where the snapshot left
    it.
    """
    continuing = snapshot is not None and (
        os.path.realpath(args.out) ==
        os.path.realpath(os.path.dirname(snapshot)))
    folder.claim()
    try:
        if continuing:
            folder.refuse_going_back(snapshot, updater.iteration,
                                     updater.epoch_detail)
        replaced = folder.start_run(run_args, model_name_of(args.arch),
                                    continuing, args.overwrite)
        folder.write('args.json', json.dumps(run_args, indent=4,
                                             sort_keys=True))
        return replaced
    except BaseException:
        folder.abandon()
        raise


def resume_command(args, ranks):
    """The command line that resumes this run from its out folder."""
    command = cli.command_line('train_rnn.py', '-r',
                               cli.path_argument(args.out))
    if ranks.comm is None:
        return command
    mpiexec = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
    mpiexec = cli.shortest_path(mpiexec, command=True) \
        if os.path.exists(mpiexec) else 'mpiexec'
    return '{} -n {} {} --communicator {}'.format(
        shlex.quote(mpiexec), ranks.size, command,
        shlex.quote(args.communicator))


def stopped_before_training(args, signals, ranks):
    signals.say('{}: stopped before training; {}'.format(
        signals.name, latest_snapshot_hint(args, ranks)))
    return signals.exit_status


def latest_snapshot_hint(args, ranks):
    """Where the run can go on from: the resume command, if a snapshot of
    this run exists."""
    try:
        latest = snapshots.latest_snapshot(args.out)
    except snapshots.FileError:
        latest = None
    if latest is None:
        return 'no snapshot of this run exists yet.'
    return 'the latest snapshot, {}, resumes the run: {}'.format(
        latest, resume_command(args, ranks))


if __name__ == '__main__':
    status = main()
    quiet_start.ignore()
    sys.exit(cli.exit_status(status))
