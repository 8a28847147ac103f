"""Print, as one JSON line, the versions and BLAS that the benchmark runs on.

Run in a child of bench.py, so that the harness itself imports neither NumPy
nor torch (a child's peak RSS counts its parent's at the time it starts).
"""
import setup_check  # noqa: F401  (first: says so where Chainer is missing)
import json
import platform
import warnings

import numpy
import threadpoolctl


def blas_info():
    """What threadpoolctl sees of NumPy's BLAS: kernels, version, threads."""
    keys = ('internal_api', 'version', 'architecture', 'threading_layer',
            'num_threads', 'filepath')
    return [{key: info.get(key) for key in keys}
            for info in threadpoolctl.threadpool_info()]


def main():
    # Before importing anything else, so that only NumPy's libraries show.
    info = {'python': platform.python_version(), 'numpy': numpy.__version__,
            'numpy_blas': blas_info()}
    import chainer_compat  # noqa: F401  (must precede chainer)
    import chainer
    info['chainer'] = chainer.__version__
    import models
    info['fused'] = sorted(models.FUSED_ARCHITECTURES)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            import torch
        info['torch'] = torch.__version__
        info['torch_warnings'] = [str(w.message) for w in caught]
        info['torch_cpu'] = '{}, BLAS {}'.format(
            torch.backends.cpu.get_cpu_capability(),
            'MKL' if torch.backends.mkl.is_available() else 'not MKL')
    except ImportError as error:
        info['torch'] = None
        info['torch_error'] = str(error)
    print(json.dumps(info))


if __name__ == '__main__':
    main()
