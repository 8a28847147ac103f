"""Lets Chainer 7.8.1 import cleanly here: import it before chainer.

Chainer's import-time environment check imports numpy.distutils.system_info
(it only uses it on macOS). Python 3.12 has no distutils, so numpy 1.26 has no
numpy.distutils there; an empty stand-in is enough. On 3.11 nothing changes.

With CuPy, Chainer warns that 13.6 is newer than the versions it lists and
that cuDNN is missing: the README's CuPy is the one that works with
Chainer 7.8.1 and numpy < 2, and these models use no cuDNN.
"""
import importlib.util
import os
import sys
import types
import warnings

os.environ.setdefault('CHAINER_WARN_VERSION_MISMATCH', '0')
warnings.filterwarnings('ignore', message='cuDNN is not enabled')


def _register_numpy_distutils_stub():
    package = types.ModuleType('numpy.distutils')
    system_info = types.ModuleType('numpy.distutils.system_info')
    system_info.get_info = lambda name, notfound_action=0: {}
    package.system_info = system_info
    sys.modules['numpy.distutils'] = package
    sys.modules['numpy.distutils.system_info'] = system_info


if importlib.util.find_spec('numpy.distutils') is None:
    _register_numpy_distutils_stub()
