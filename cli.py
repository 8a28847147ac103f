"""The command-line kit of train_rnn.py, predict_rnn.py and study.sweep.

One-line errors with exit status 2, the device for --gpu, what fits in
memory, commands to copy as printed, and what Ctrl-C, SIGTERM and SIGHUP
do.
"""
import argparse
import contextlib
import errno
import os
import re
import shlex
import signal
import stat
import sys
import threading

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer

import quiet_start
from setup_check import shortest_path
import simple_sequence
import snapshots

EXIT_FAILED = 1  # diverged, or could not write its files
EXIT_USAGE = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130; SIGTERM's is 143


class UsageError(Exception):
    """A bad argument: reported in one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """Reports a bad argument in one line on stderr, exit status 2; takes
    numbers in ASCII alone; prints its help and usage through
    print_or_drop."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register('type', int, whole_number)
        self.register('type', float, real_number)

    def error(self, message):
        # It names paths, and what files hold.
        self.exit(EXIT_USAGE, '{}: error: {}\n'.format(self.prog,
                                                       one_line(message)))

    def print_help(self, file=None):
        if file is None and sys.stdout is None:
            # The help is all that -h gives: where Python started with
            # stdout closed, a failed write, as Unix tools report it. (It
            # went to stderr.)
            report_at_exit('stdout', OSError(errno.EBADF,
                                             os.strerror(errno.EBADF)))
        super().print_help(file)

    def _print_message(self, message, file=None):
        # argparse's drops a failed write: -h to a full device exited 0.
        if message:
            print_or_drop(message, file, end='')

    def exit(self, status=0, message=None):
        if message:
            self._print_message(message, sys.stderr)
        sys.exit(exit_status(status))


def one_line(text):
    """text with its control characters escaped, a newline as \\n: what a
    path or a file holds, echoed, must neither split its line nor steer the
    terminal."""
    return ''.join(character if character.isprintable() else
                   character.encode('unicode_escape').decode('ascii')
                   for character in text)


def check_folder(path, option):
    """UsageError unless path is a folder, or names nothing yet (a folder
    to make): what it is instead, a link's target named."""
    # 'link/' reads through the link. (Not normpath: it reads 'link/..' as
    # nothing, the system through the link.)
    bare = path.rstrip('/') or '/'
    try:
        folder = stat.S_ISDIR(os.stat(bare).st_mode)
    except FileNotFoundError:
        # A folder to make, unless it lies through a link to nothing.
        folder = None
        while bare and not os.path.lexists(bare):
            bare = path = os.path.dirname(bare)
    except OSError as error:  # a link loop, a folder it may not enter
        raise UsageError('cannot reach {}: {}: choose another {}'.format(
            one_line(path), error.strerror, option))
    if folder or folder is None and not os.path.islink(bare):
        return
    what = 'is not a folder' if not os.path.islink(bare) else \
        'is a symbolic link to {}, {}'.format(
            one_line(os.readlink(bare)), 'which does not exist'
            if folder is None else 'not to a folder')
    raise UsageError('{} {}: choose another {}'.format(one_line(path), what,
                                                       option))


def ascii_number(convert, pattern):
    """convert (int or float) for a text that pattern matches whole, else
    ValueError (argparse's invalid value): Python's int() and float() take
    any script's digits ('\u0663' is 3), underscores and spaces."""
    def converted(text):
        if not re.fullmatch(pattern, text, re.IGNORECASE):
            raise ValueError(text)
        return convert(text)
    return converted


# What type=int and type=float read on the command line.
whole_number = ascii_number(int, r'[-+]?[0-9]+')
real_number = ascii_number(
    float, r'[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)(e[-+]?[0-9]+)?|[-+]?(inf|nan)')


def non_empty_path(text):
    """A path argument's value (type=non_empty_path): an empty one names
    nothing, and read as the current folder or as no value at all (no -r)
    it would replace or skip what the user meant."""
    if not text:
        raise argparse.ArgumentTypeError('an empty path names nothing')
    return text


def check_whole(name, value, low, high=None):
    """value, if a whole number from low to high (None: no bound); else
    UsageError. The scripts check every number they are given, on the
    command line or in a file, with it."""
    if (isinstance(value, bool) or not isinstance(value, int) or
            value < low or high is not None and value > high):
        raise UsageError('{} must be a whole number {} (got {!r})'.format(
            name, 'of at least {}'.format(low) if high is None else
            'from {} to {}'.format(low, high), value))
    return value


def open_problem(error, link_refused):
    """What is wrong with the path that an OSError of os.open names, in
    words. O_NOFOLLOW fails on a symbolic link with ELOOP, whose text, 'Too
    many levels of symbolic links', says nothing of a link: it is refused,
    for the reason link_refused."""
    if error.errno == errno.ELOOP and os.path.islink(error.filename):
        return '{} is a symbolic link, which is refused: {}'.format(
            error.filename, link_refused)
    if error.errno == errno.EISDIR:
        return '{} is a folder, not a file'.format(error.filename)
    return 'cannot open {}: {}'.format(error.filename, error.strerror)


def select_device(gpu, work):
    """The chainer device for --gpu; UsageError where it cannot be used.
    work: what the script does (train, predict), for its messages."""
    if gpu < -1:
        raise UsageError('--gpu must be a GPU number, or -1 for the CPU '
                         '(got {})'.format(gpu))
    if gpu == -1:
        return chainer.get_device('@numpy')
    if not chainer.backends.cuda.available:
        raise UsageError(
            '--gpu needs CuPy, which is not installed (or cannot find CUDA): '
            'install cupy-cuda13x==13.6.0 for CUDA 13 or '
            'cupy-cuda12x==13.6.0 for CUDA 12 (see docs/gpu.md), or leave '
            '--gpu out to {} on the CPU'.format(work))
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


def command_line(script, *arguments):
    """A shell command that runs our script with arguments, to be copied
    as it is: this interpreter, paths relative where inside the working
    folder, everything quoted."""
    here = os.path.dirname(os.path.abspath(__file__))
    return shlex.join([shortest_path(sys.executable, command=True),
                       shortest_path(os.path.join(here, script))] +
                      [str(argument) for argument in arguments])


def path_argument(path):
    """path as an argument of a command: one that begins with - would read
    as an option."""
    return os.path.join(os.curdir, path) if path.startswith('-') else path


class Signals:
    """Ctrl-C (SIGINT), SIGTERM (kill, batch schedulers) and SIGHUP (the
    terminal or ssh session closed): quiet_start.STOPPING.

    The first one is remembered, one that came while the script started
    under mpiexec included: while training (see stopping) it asks the
    trainer to stop after the current update, so that a snapshot follows;
    elsewhere the run acts on it at its next safe point. A second Ctrl-C
    quits at once (after a hangup, none can come). say() prints a message
    for the user, unless quiet (the MPI ranks other than 0).
    """

    def __init__(self):
        self.received = None
        self.quiet = False
        self._stop_trigger = None

    def __enter__(self):
        self._previous = {number: signal.signal(number, self._handle)
                          for number in quiet_start.STOPPING}
        if self.received is None:
            self.received = quiet_start.received
        return self

    def __exit__(self, *exc_info):
        for number, handler in self._previous.items():
            # Once asked to stop, the process is ending: a late signal must
            # not turn into a traceback on the way out.
            signal.signal(number, handler if self.received is None
                          else signal.SIG_IGN)

    @contextlib.contextmanager
    def stopping(self, stop_trigger):
        """While in it, the first signal calls stop_trigger.request(); one
        that came since the last share() does so at once."""
        self._stop_trigger = stop_trigger
        if self.received is not None:
            stop_trigger.request()
        try:
            yield
        finally:
            self._stop_trigger = None

    def share(self, ranks):
        """The signal that any rank received (the lowest rank's), now every
        rank's, or None: called by every rank at the same point, so that
        all take the same turn and end with the same status."""
        agreed = ranks.first(self.received)
        if agreed is not None:
            self.received = agreed
        return agreed

    def say(self, message, stdout=False):
        """Print message, to stderr unless stdout; nowhere if Python started
        with that stream closed."""
        stream = sys.stdout if stdout else sys.stderr
        if message and not self.quiet and stream is not None:
            print_or_drop(message, stream)

    def _handle(self, number, frame):
        if self.received is None:
            self.received = number
            if self._stop_trigger is not None:
                self._stop_trigger.request()
                # On a terminal, off the line that ^C or the progress bar
                # left unfinished; elsewhere no empty line. A hangup took
                # the terminal that a second Ctrl-C would come from.
                self.say('{}{}: stopping after this update to write a '
                         'snapshot{}'.format(
                             '\n' if is_terminal(sys.stderr) else '',
                             self.name, '' if number == signal.SIGHUP else
                             ' (Ctrl-C again to quit at once)'))
        elif number == signal.SIGINT:
            raise KeyboardInterrupt

    @property
    def name(self):
        return quiet_start.NAMES[self.received or signal.SIGTERM]

    @property
    def exit_status(self):
        # A stop that no signal asked for (the dashboard's) ends as SIGTERM.
        return 128 + (self.received or signal.SIGTERM)


def is_terminal(stream):
    """Whether stream (None if Python started with it closed) is a tty."""
    return stream is not None and stream.isatty()


# The first write to stdout or stderr that failed for another reason than
# a closed pipe: (stream name, error); see exit_status.
_failed_write = None


STDOUT = 'stdout'  # print_or_drop's stream: sys.stdout as it is then


def print_or_drop(text, stream=STDOUT, end='\n'):
    """Print text to stream; if it cannot take it, drop it and all later
    output, and let the run go on: quietly where the reader has gone (a
    closed pipe, as with `| head`), as Unix tools do; otherwise (a full
    device) exit_status reports it. Every script prints through it.
    Whether text was printed."""
    if stream is STDOUT:
        stream = sys.stdout
    if stream is None:  # Python started with it closed: not the other one
        return False
    try:
        print(text, file=stream, end=end, flush=True)
    except OSError as error:
        write_failed(stream, error)
        return False
    return True


def write_failed(stream, error):
    """Stop writing to stream, whose write raised error (OSError); unless
    its reader had gone, exit_status reports it."""
    # A terminal that hung up answers EIO; isatty() fails on it too, fstat
    # still says it is a character device.
    reader_gone = error.errno == errno.EPIPE or (
        error.errno == errno.EIO and
        stat.S_ISCHR(os.fstat(stream.fileno()).st_mode))
    stop_writing(stream)
    if not reader_gone:
        report_at_exit('stdout' if stream is sys.stdout else 'stderr', error)


def report_at_exit(name, error):
    """Have exit_status report that writing to stream name (stdout or
    stderr) failed with error (an OSError), unless an earlier failure is
    reported."""
    global _failed_write
    if _failed_write is None:
        _failed_write = (name, error)


def output_failed():
    """Whether printing failed for another reason than a closed pipe."""
    return _failed_write is not None


def run_script(main):
    """The exit status of a script's main() (for sys.exit) once its slow
    imports are done: a Ctrl-C, SIGTERM or SIGHUP that main() leaves to
    its caller ends it in one line with 128 + the signal's number."""
    quiet_start.started()  # one that came while starting ends it now
    stop_on_signals()
    try:
        status = main()
        if _dropped:  # its signal again had not come yet
            raise KeyboardInterrupt
    except (KeyboardInterrupt, Exception) as error:
        if not came_of_a_stop(error):
            raise
        print_or_drop('{}: stopped.'.format(quiet_start.NAMES[stopped_by()]),
                      sys.stderr)
        status = interrupted_status()
    quiet_start.ignore()
    return exit_status(status)


def came_of_a_stop(error):
    """Whether error is a stop's KeyboardInterrupt, or was raised while one
    unwound: code that cleans up after it may fail where it landed between
    two lines (matplotlib's _setattr_cm removes an attribute it had not yet
    set: an AttributeError traceback, status 1)."""
    while error is not None:
        if isinstance(error, KeyboardInterrupt):
            return True
        error = error.__context__
    return False


def stop_on_signals():
    """From now on the first Ctrl-C, SIGTERM or SIGHUP raises
    KeyboardInterrupt, and stopped_by() names it; one that Python dropped
    in a callback comes again."""
    for number in quiet_start.STOPPING:
        signal.signal(number, _interrupt)
    sys.unraisablehook = _unraisable


def stop_came():
    """Whether a signal came since stop_on_signals(), its KeyboardInterrupt
    raised or swallowed by code that caught everything."""
    return _stopped_by is not None


_stopped_by = None  # the signal that _interrupt raised KeyboardInterrupt for
_dropped = False  # whether Python dropped that KeyboardInterrupt


def _interrupt(number, frame):
    # SIGTERM and SIGHUP as Ctrl-C: a default death says nothing and leaves
    # a script's workers running. Later ones must not break the way out.
    global _stopped_by, _dropped
    if _stopped_by is None or _dropped:
        _stopped_by = _stopped_by or number
        _dropped = False
        raise KeyboardInterrupt


def _unraisable(unraisable):
    # A KeyboardInterrupt of _interrupt that Python could not raise, inside
    # a ctypes callback (threadpoolctl's), was dropped with a traceback and
    # the script ran on: the signal again, from a thread, so that it comes
    # once this hook and, most likely, the callback have returned (if not,
    # here again).
    global _dropped
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and \
            _stopped_by is not None:
        _dropped = True
        again = threading.Timer(0.01, os.kill, (os.getpid(), _stopped_by))
        again.daemon = True
        again.start()
    else:
        sys.__unraisablehook__(unraisable)


def stopped_by():
    """The signal that interrupted run_script's main(); Ctrl-C's where none
    did (main() called alone, as the tests do)."""
    return _stopped_by or signal.SIGINT


def interrupted_status():
    """128 + the number of that signal."""
    return 128 + stopped_by()


def writing_alone(folder, lock, writer):
    """snapshots.writing_alone on the hidden lock file in folder, saying
    where it waits for another writer (a report, a counter)."""
    return snapshots.writing_alone(os.path.join(folder, lock), lambda: (
        print_or_drop('Waiting for another {} into {} to end'.format(
            writer, one_line(folder)), sys.stderr)))


def writing_failed(prog, path, error, kept=''):
    """EXIT_FAILED, once one line on stderr says that writing to path failed
    with error (an OSError); kept: what was written all the same."""
    print_or_drop('{}: error: writing to {} failed: {}{}'.format(
        prog, one_line(path), error, kept), sys.stderr)
    return EXIT_FAILED


def exit_status(status):
    """status, for a script that printed through print_or_drop: where its
    output was lost to a full device or an I/O error, not a closed pipe,
    EXIT_FAILED at least, with one line on stderr."""
    if _failed_write is None:
        return status
    name, error = _failed_write
    print_or_drop('{}: error: writing to {} failed: {}'.format(
        program(), name, error.strerror), sys.stderr)
    return status or EXIT_FAILED


def program():
    """The running script as argparse names it: python -m study.sweep, or
    train_rnn.py."""
    spec = getattr(sys.modules['__main__'], '__spec__', None)
    return 'python -m ' + spec.name if spec is not None else \
        os.path.basename(sys.argv[0])


def stop_writing(stream):
    """Point stream's file at /dev/null, so that nothing more it writes,
    nor its flush at exit, fails."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
    os.close(devnull)
