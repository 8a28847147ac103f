"""Ctrl-C or SIGTERM while a script starts: one line, never a traceback.

The scripts import this first and install() it before their slow imports
(Chainer's above all: docs/speed.md); their main() then handles signals
itself.
"""
import os
import signal


def _quit(signum, frame):
    # Not an exception: raised inside an import, it may come out as another.
    os.write(2, b'Interrupted while starting: nothing was written.\n')
    os._exit(128 + signum)


def install():
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _quit)


def started():
    """Once the slow imports are done: Ctrl-C raises KeyboardInterrupt
    again, and SIGTERM ends the process, as Python's defaults do."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def ignore():
    """Once a script's work is done: a late signal must not turn into a
    traceback, nor a wrong message, on the way out."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
