"""One line, not a traceback, where a script runs on a Python without Chainer.

Every script imports it before anything that needs Chainer (train_rnn.py
and predict_rnn.py just after their quiet start): `python3 train_rnn.py`,
typed before the environment is activated, would otherwise end in a
ModuleNotFoundError. It looks Chainer up without loading it. It also holds
shortest_path, which its line and cli.py share and which needs nothing but
the standard library.
"""
import importlib.util
import os
import shlex
import sys

EXIT_NOT_SET_UP = 2
ROOT = os.path.dirname(os.path.abspath(__file__))


def shortest_path(path, command=False):
    """path relative to the working folder if inside it, else as it is; a
    command in the working folder itself gets ./ (the shell runs it)."""
    relative = os.path.relpath(path)
    if relative.startswith(os.pardir):
        return path
    if command and os.sep not in relative:
        return os.path.join(os.curdir, relative)
    return relative


def check():
    """Exit with one line on stderr unless Chainer can be imported."""
    if importlib.util.find_spec('chainer') is not None:
        return
    spec = getattr(sys.modules.get('__main__'), '__spec__', None)
    script = ['-m', spec.name] if spec is not None else sys.argv[:1]
    root = shortest_path(ROOT)
    venv = shortest_path(os.path.join(ROOT, '.venv'))
    sys.stderr.write(
        '{}: error: {} has no Chainer: set up the environment with `{}` '
        '(once), then `. {}/bin/activate`, or run `{}`\n'.format(
            os.path.basename(script[-1]), sys.executable,
            'make setup' if root == os.curdir else shlex.join(
                ['make', '-C', root, 'setup']),
            shlex.quote(venv), shlex.join(
                [os.path.join(venv, 'bin', 'python')] + script +
                sys.argv[1:])))
    sys.exit(EXIT_NOT_SET_UP)


check()
