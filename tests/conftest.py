# Before any test module imports chainer: Python 3.12 needs the shim.
import chainer_compat  # noqa: F401

import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402

import chainer  # noqa: E402
import pytest  # noqa: E402

# Under nohup the suite outlives a hangup all the same, but the processes
# its tests start would inherit SIGHUP ignored, which the scripts keep, and
# the tests of a hangup fail: a handler of its own is reset by exec.
if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
    signal.signal(signal.SIGHUP, lambda number, frame: None)

# Chainer's own, before any test could replace it (updaters.fast_training
# does while it lasts).
CHAINER_IS_ARRAYS_COMPATIBLE = chainer.is_arrays_compatible


@pytest.fixture(autouse=True)
def chainers_device_check_stays():
    """No test may leave the tests after it without Chainer's check."""
    yield
    assert chainer.is_arrays_compatible is CHAINER_IS_ARRAYS_COMPATIBLE


@pytest.fixture(autouse=True)
def stopping_signals_stay():
    """No test may leave the tests after it a stopping signal ignored, as a
    stopped run leaves them: the processes they start would inherit it, and
    a SIGHUP ignored at start is nohup's, which the scripts keep."""
    numbers = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    handlers = {number: signal.getsignal(number) for number in numbers}
    yield
    for number, handler in handlers.items():
        signal.signal(number, handler)


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a file system of its own, filled: a tmpfs, mounted by
    root alone."""
    disk = tmp_path / 'disk'
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', str(disk)],
            capture_output=True).returncode:
        pytest.skip('mounting a tmpfs needs root')
    try:
        with open(str(disk / 'filler'), 'wb', buffering=0) as f:
            with pytest.raises(OSError):
                while True:
                    f.write(bytes(4096))
        yield disk
    finally:
        subprocess.run(['umount', str(disk)], check=True)
