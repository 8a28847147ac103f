"""What the Makefile's recipes run, read with make -n, which runs nothing."""
import subprocess
import sys

from helpers import ROOT


def test_torch_goes_into_the_bench_environment_last(tmp_path):
    """pip checks every installed package after an install that resolves
    dependencies: one after torch's would print an ERROR for the setuptools
    that torch asks for and that is left out on purpose."""
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    tag = 'cp{}{}'.format(*sys.version_info[:2])
    wheel = wheels / 'torch-2.13.0+cpu-{0}-{0}-manylinux_2_28_x86_64.whl' \
        .format(tag)
    wheel.touch()
    venv = tmp_path / 'venv'
    stamp = venv / '.installed-python{}.{}'.format(*sys.version_info[:2])
    completed = subprocess.run(
        ['make', '-n', str(stamp), 'PYTHON=' + sys.executable,
         'BENCH_VENV=' + str(venv), 'TORCH_WHEELS=' + str(wheels)],
        cwd=ROOT, capture_output=True, text=True, check=True)
    installs = [line for line in completed.stdout.splitlines()
                if line.startswith(str(venv)) and ' -m pip install ' in line]
    assert installs == [
        '{}/bin/python -m pip install --quiet -r requirements.txt -r '
        'benchmarks/requirements-torch.txt'.format(venv),
        '{}/bin/python -m pip install --quiet --no-index --no-deps {}'.format(
            venv, wheel)]
