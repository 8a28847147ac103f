"""What the Makefile's recipes run, read with make -n, which runs nothing."""
import os
import shutil
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


def test_an_edit_of_quiet_start_copies_it_without_rebuilding(tmp_path):
    """Its edit rebuilt the whole environment, Chainer gone for a while:
    a sweep running from it lost its workers."""
    repo = tmp_path / 'repo'
    repo.mkdir()
    for name in ('Makefile', 'requirements.txt', 'constraints.txt',
                 'chainer_compat.py', 'quiet_start.py'):
        shutil.copy(os.path.join(ROOT, name), str(repo / name))
        os.utime(str(repo / name), (100, 100))
    os.utime(str(repo / 'quiet_start.py'), (300, 300))  # edited
    venv = repo / '.venv'
    venv.mkdir()
    for name in ('.installed-python{}.{}'.format(*sys.version_info[:2]),
                 '.site-modules'):
        (venv / name).touch()
        os.utime(str(venv / name), (200, 200))
    # Not the VENV of a make that runs the tests (CI's .venv-3.12), which
    # MAKEFLAGS would pass on.
    completed = subprocess.run(
        ['make', '-n', 'setup', 'PYTHON=' + sys.executable, 'VENV=.venv'],
        cwd=str(repo), capture_output=True, text=True, check=True,
        env={name: value for name, value in os.environ.items()
             if name not in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL')})
    assert 'quiet_start.py' in completed.stdout
    assert 'rm -rf' not in completed.stdout
    assert 'pip install' not in completed.stdout


def test_the_dashboard_s_setup_installs_the_quiet_start_too(tmp_path):
    """make ui on a fresh clone set up .venv without it: a Ctrl-C while
    Python started dashboard.py was a traceback (hostile pass 17)."""
    completed = subprocess.run(
        ['make', '-n', 'ui-setup', 'PYTHON=' + sys.executable,
         'VENV=' + str(tmp_path / 'venv')], cwd=ROOT, capture_output=True,
        text=True, check=True)
    lines = completed.stdout.splitlines()
    copy = next(i for i, line in enumerate(lines) if 'quiet_start.py' in line)
    extras = next(i for i, line in enumerate(lines)
                  if 'requirements-ui.txt' in line)
    assert copy < extras
