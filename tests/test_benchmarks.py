"""The benchmark's own pieces still run (tiny runs, no timing asserted)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['-e', '1', '-u', '5', '-b', '5', '-l', '5']


def result_of(module, *argv):
    completed = subprocess.run(
        [sys.executable, '-m', module] + list(argv), cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


@pytest.mark.parametrize('argv', [[], ['--fused']])
def test_our_update_loop_reports_its_time_and_scores(argv):
    result = result_of('benchmarks.ours', *(TINY + argv))
    assert result['tokens'] == 4500  # one epoch: every word once
    assert result['update_seconds'] > 0
    assert 0 <= result['boundary_accuracy'] <= 1
    assert 0 <= result['accuracy'] <= 1


def test_the_tutorial_baseline_reports_its_time_and_scores(tmp_path):
    result = result_of('benchmarks.tutorial_baseline', '-o',
                       str(tmp_path), *TINY)
    assert result['update_seconds'] > 0
    assert 0 <= result['boundary_accuracy'] <= 1
    assert 0 <= result['accuracy'] <= 1
