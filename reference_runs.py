"""Regenerate results/: the reference runs that the README shows.

Runs `python train_rnn.py -a ARCH` on the defaults for each reference
architecture, keeps its log and plots under results/ARCH/, and writes the
results table to results/results.md and into README.md.
"""
import setup_check  # noqa: F401  (first: says so where Chainer is missing)
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(ROOT, 'results')
README = os.path.join(ROOT, 'README.md')
REFERENCE_ARCHS = ('rnn', 'lstm')
KEPT_FILES = ('log', 'loss.png', 'accuracy.png')
TABLE_BEGIN = '<!-- results table: written by `make results` -->'
TABLE_END = '<!-- end of results table -->'


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def reference_run(arch, workdir):
    """Train arch on the defaults in workdir; (log, cpu seconds, wall)."""
    cpu = children_cpu_seconds()
    wall = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(ROOT, 'train_rnn.py'),
                    '-a', arch], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - wall
    cpu = children_cpu_seconds() - cpu
    out = os.path.join(workdir, 'result')
    kept = os.path.join(RESULTS, arch)
    os.makedirs(kept, exist_ok=True)
    for name in KEPT_FILES:
        shutil.copy(os.path.join(out, name), kept)
    with open(os.path.join(out, 'log')) as f:
        return json.load(f), cpu, wall


def table(rows):
    lines = ['| arch | epochs | CPU time | wall time | validation loss '
             '| accuracy | boundary accuracy |',
             '|---|---|---|---|---|---|---|']
    for arch, log, cpu, wall in rows:
        final = log[-1]
        lines.append('| {} | {} | {:.1f} s | {:.1f} s | {:.4f} | {:.4f} | '
                     '{:.4f} |'.format(
                         arch, final['epoch'], cpu, wall,
                         final['validation/main/loss'],
                         final['validation/main/accuracy'],
                         final['validation/main/boundary_accuracy']))
    return '\n'.join(lines) + '\n'


def replace_between(text, begin, end, new):
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + begin + '\n' + new + end + tail


def main():
    rows = []
    for arch in REFERENCE_ARCHS:
        with tempfile.TemporaryDirectory() as workdir:
            log, cpu, wall = reference_run(arch, workdir)
        rows.append((arch, log, cpu, wall))
        print('{}: done in {:.1f} s'.format(arch, wall), flush=True)
    results_table = table(rows)
    with open(os.path.join(RESULTS, 'results.md'), 'w') as f:
        f.write('# Reference runs\n\nWritten by `make results` (`python '
                'reference_runs.py`): `python train_rnn.py -a ARCH` on the '
                'defaults, final epoch, CPU time of the whole process.\n\n')
        f.write(results_table)
    with open(README) as f:
        readme = f.read()
    with open(README, 'w') as f:
        f.write(replace_between(readme, TABLE_BEGIN, TABLE_END,
                                results_table))
    print(results_table)


if __name__ == '__main__':
    main()
