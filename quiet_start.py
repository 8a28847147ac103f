"""Ctrl-C, SIGTERM or SIGHUP while a script starts: one line, never a
traceback.

The scripts import this first and install() it before their slow imports
(Chainer's above all: docs/speed.md); their main() then handles signals
itself. Earlier still, `make setup` installs this module into the
environment with a .pth file that calls install_for_scripts() as Python
starts: Python reads and compiles a script before its first line runs, long
enough for a Ctrl-C to land. It uses _signal, the C module under signal, for
the same reason: signal first builds its enums.

Under mpiexec, before MPI has started, a rank that left at once would leave
the others waiting in MPI_Init for ever (MPICH's mpiexec ends the job when
a rank exits only once that rank has started MPI): the signal is remembered
instead, for the ranks to act on together (train_rnn.py, once they can
talk) or for started(). Under mpiexec only rank 0 speaks.

SignalsHeld, later, holds the same signals where a stop must not cut in.
"""
import _signal
import atexit
import os
import sys

# The scripts run by path, and the modules run with -m.
SCRIPTS = ('train_rnn.py', 'predict_rnn.py', 'simple_sequence.py',
           'dashboard.py')
MODULES = ('study.sweep', 'study.counter', 'study.capacity_report',
           'study.dashboard')
# The signals that stop a run: Ctrl-C, SIGTERM (kill, batch schedulers) and
# SIGHUP (the terminal or ssh session closed), unless the process started
# with SIGHUP ignored: under nohup, which asks it to outlive the terminal.
# (A shell script's `&` ignores SIGINT: nobody asked for that one.)
STOPPING = (_signal.SIGINT, _signal.SIGTERM) + (
    () if _signal.getsignal(_signal.SIGHUP) == _signal.SIG_IGN
    else (_signal.SIGHUP,))
# How the scripts name them.
NAMES = {_signal.SIGINT: 'Ctrl-C', _signal.SIGTERM: 'SIGTERM',
         _signal.SIGHUP: 'SIGHUP'}
INTERRUPTED = 'Interrupted while starting: nothing was written.'
received = None  # the first signal that _remember kept
said = INTERRUPTED  # what _quit says, {} the signal's name: see finished()
installed = False  # whether a script put its handlers in place


def mpiexec_world():
    """(this process's rank, the number of processes) from the environment
    that mpiexec sets (MPICH, Open MPI, PMIx); (0, 1) outside mpiexec."""
    rank = next((int(os.environ[name]) for name in (
        'PMI_RANK', 'OMPI_COMM_WORLD_RANK', 'PMIX_RANK')
        if name in os.environ), 0)
    size = next((int(os.environ[name]) for name in (
        'PMI_SIZE', 'OMPI_COMM_WORLD_SIZE') if name in os.environ), 1)
    return rank, size


def _quit(signum, frame=None):
    # Not an exception: raised inside an import, it may come out as another.
    if mpiexec_world()[0] == 0:
        os.write(2, said.format(NAMES[signum]).encode() + b'\n')
    os._exit(128 + signum)


def _remember(signum, frame):
    global received
    if received is None:
        received = signum


def install():
    global installed
    installed = True
    handler = _quit
    if mpiexec_world()[1] > 1 and 'mpi4py.MPI' not in sys.modules:
        handler = _remember
        # MPICH's UCX takes SIGHUP for its debug mode once MPI starts (and
        # floods stdout): the ranks would never see a hangup.
        os.environ.setdefault('UCX_DEBUG_SIGNO', '0')
    for number in STOPPING:
        _signal.signal(number, handler)


def install_for_scripts():
    """install(), where Python is starting one of SCRIPTS or MODULES."""
    if os.path.basename(sys.argv[0]) in SCRIPTS or module_run() in MODULES:
        install()


def module_run():
    """The module of `python [options] -m MODULE` (sys.argv[0] is '-m'
    while Python starts), else None; under `-m mpi4py.futures -m MODULE`
    (the MPI sweep, docs/mpi.md), MODULE, which every rank imports."""
    arguments = iter(sys.orig_argv[1:])
    module = _module_of(arguments)
    if module == 'mpi4py.futures':
        module = _module_of(arguments)
    return module


def _module_of(arguments):
    """The module that `-m` names next in the iterator arguments, else
    None."""
    for argument in arguments:
        if argument in ('-W', '-X', '--check-hash-based-pycs'):
            next(arguments, None)  # the option's value
        elif argument.startswith('-m'):
            return argument[2:] or next(arguments, None)
        elif argument in ('-', '--') or argument.startswith('-c') or \
                not argument.startswith('-'):
            return None
    return None


def started():
    """Once the slow imports are done: a signal remembered while starting
    ends the process now; else Ctrl-C raises KeyboardInterrupt again, and
    SIGTERM and SIGHUP end the process, as Python's defaults do."""
    if received is not None:
        _quit(received)
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    for number in STOPPING[1:]:
        _signal.signal(number, _signal.SIG_DFL)


def finished(message):
    """Once a script's work is all done: from now until its exit functions
    have run, a signal ends it at once with message ({} the signal's name)
    and status 128 + its number, as one that came before its last check
    does."""
    global said
    said = message
    for number in STOPPING:
        _signal.signal(number, _quit)


class SignalsHeld:
    """While in it, a Ctrl-C, SIGTERM or SIGHUP waits: the first is acted
    on as it ends, by the handler it would have met. (Blocking them does not
    hold them: another thread, one of BLAS's, takes the signal, and Python
    still runs its handler in this one.) For the main thread, where a stop
    must not cut in: while a pool starts its processes, while the renames of
    files that go together are made or undone."""

    def __enter__(self):
        self.came = None  # the first that came, unless it was ignored
        self._handlers = {}
        for number in STOPPING:
            self._handlers[number] = _signal.signal(number, self._hold)
        return self

    def _hold(self, number, frame):
        if self.came is None and \
                self._handlers.get(number) != _signal.SIG_IGN:
            self.came = number

    def __exit__(self, *raised):
        for number, handler in self._handlers.items():
            _signal.signal(number, handler)
        if self.came is not None:
            _signal.raise_signal(self.came)


def ignore():
    """Once a script's work is done, unless finished() says otherwise: a
    late signal must not turn into a traceback, nor a wrong message, on the
    way out."""
    if said is INTERRUPTED:
        ignore_stops()


def ignore_stops():
    """Ignore the stopping signals from now on."""
    for number in STOPPING:
        _signal.signal(number, _signal.SIG_IGN)


@atexit.register  # as Python starts, so the last of the exit functions
def _ignore_from_now_on():
    # Next, Python's shutdown puts the default handlers back: a signal then
    # ended a script that had finished by the signal, its status and any
    # word lost.
    if installed:
        ignore_stops()
