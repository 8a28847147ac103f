# Before any test module imports chainer: Python 3.12 needs the shim.
import chainer_compat  # noqa: F401
