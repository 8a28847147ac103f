"""Lets Chainer 7.8.1 import cleanly here: import it before chainer.

Chainer's import-time environment check imports numpy.distutils.system_info
(it only uses it on macOS). Python 3.12 has no distutils, so numpy 1.26 has no
numpy.distutils there; an empty stand-in is enough. It is found only where
the real one is not (on 3.11 nothing changes), and `make setup` installs
this module into the environment with a .pth file, so that `import chainer`
works in any script or REPL of the environment, not only in ours.

With CuPy, Chainer warns that 13.6 is newer than the versions it lists and
that cuDNN is missing: docs/gpu.md's CuPy is the one that works with
Chainer 7.8.1 and numpy < 2, and these models use no cuDNN.
"""
import importlib.machinery
import os
import sys
import warnings

os.environ.setdefault('CHAINER_WARN_VERSION_MISMATCH', '0')
warnings.filterwarnings('ignore', message='cuDNN is not enabled')


class NumpyDistutilsStandIn:
    """numpy.distutils.system_info with a get_info that finds nothing.

    Last on sys.meta_path: asked only after the real finders found none.
    A finder and loader by their methods alone: importlib.abc and
    importlib.util would import much of the standard library while every
    Python of the environment starts, when Ctrl-C ends it with a traceback.
    """

    names = ('numpy.distutils', 'numpy.distutils.system_info')

    def find_spec(self, name, path, target=None):
        if name not in self.names:
            return None
        return importlib.machinery.ModuleSpec(
            name, self, is_package=name == self.names[0])

    def create_module(self, spec):
        return None  # the default module

    def exec_module(self, module):
        if module.__name__ == self.names[1]:
            module.get_info = lambda name, notfound_action=0: {}


if not any(isinstance(finder, NumpyDistutilsStandIn)
           for finder in sys.meta_path):
    sys.meta_path.append(NumpyDistutilsStandIn())
