"""Lets Chainer 7.8.1 import on Python 3.12: import it before chainer.

Chainer's import-time environment check imports numpy.distutils.system_info
(it only uses it on macOS). Python 3.12 has no distutils, so numpy 1.26 has no
numpy.distutils there; an empty stand-in is enough. On 3.11 nothing changes.
"""
import importlib.util
import sys
import types


def _register_numpy_distutils_stub():
    package = types.ModuleType('numpy.distutils')
    system_info = types.ModuleType('numpy.distutils.system_info')
    system_info.get_info = lambda name, notfound_action=0: {}
    package.system_info = system_info
    sys.modules['numpy.distutils'] = package
    sys.modules['numpy.distutils.system_info'] = system_info


if importlib.util.find_spec('numpy.distutils') is None:
    _register_numpy_distutils_stub()
