"""Ctrl-C or SIGTERM while a script starts: one line, never a traceback.

The scripts import this first and install() it before their slow imports
(Chainer's above all: docs/speed.md); their main() then handles signals
itself. Earlier still, `make setup` installs this module into the
environment with a .pth file that calls install_for_scripts() as Python
starts: Python reads and compiles a script before its first line runs, long
enough for a Ctrl-C to land. It uses _signal, the C module under signal, for
the same reason: signal first builds its enums.
"""
import _signal
import os
import sys

# The scripts run by path (study.sweep runs with -m, which Python has not
# resolved to a path while it starts).
SCRIPTS = ('train_rnn.py', 'predict_rnn.py')


def _quit(signum, frame):
    # Not an exception: raised inside an import, it may come out as another.
    os.write(2, b'Interrupted while starting: nothing was written.\n')
    os._exit(128 + signum)


def _leave(signum, frame):
    os._exit(128 + signum)


def leave_quietly():
    """In a worker process: a Ctrl-C, which reaches its parent too, ends
    it at once and without a word, importing, idle or working; the parent
    says what the Ctrl-C did."""
    _signal.signal(_signal.SIGINT, _leave)


def install():
    for number in (_signal.SIGINT, _signal.SIGTERM):
        _signal.signal(number, _quit)


def install_for_scripts():
    """install(), where Python is starting one of SCRIPTS."""
    if os.path.basename(sys.argv[0]) in SCRIPTS:
        install()


def started():
    """Once the slow imports are done: Ctrl-C raises KeyboardInterrupt
    again, and SIGTERM ends the process, as Python's defaults do."""
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)


def ignore():
    """Once a script's work is done: a late signal must not turn into a
    traceback, nor a wrong message, on the way out."""
    for number in (_signal.SIGINT, _signal.SIGTERM):
        _signal.signal(number, _signal.SIG_IGN)
