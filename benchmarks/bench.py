"""Benchmark: the tutorial's way, PyTorch and ours, side by side.

Every case runs as a fresh child process, so that its wall time and peak
resident memory are its own; the cases take turns, round after round, and
the table shows medians. The update-loop rows then train STEADY_EPOCHS
more epochs in the same process, timed apart: their steady state, where the
first 10 epochs also pay for warming up (first calls, caches, allocator).
The targets compare steady states. Run by `make bench`, from the repository
root: python benchmarks/bench.py [--rounds R] [--quick] [--no-memory]
[--cases K]
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Run as a file, python benchmarks/bench.py, it finds the root's modules so.
sys.path.insert(0, ROOT)
import setup_check  # noqa: E402, F401  (says so where Chainer is missing)

# One BLAS thread everywhere: the conditions, and fair to each case.
THREADS = {'OMP_NUM_THREADS': '1', 'OPENBLAS_NUM_THREADS': '1',
           'MKL_NUM_THREADS': '1'}
BASELINE = 'tutorial baseline, rnn'
DEFAULT_RUN = 'ours rnn, train_rnn.py'
# The tutorial's second command, python train_rnn.py -a lstm, and its peer.
LSTM_BASELINE = 'tutorial baseline, lstm'
LSTM_RUN = 'ours lstm, train_rnn.py'
LOOP_RUN = 'ours rnn, update loop'
STEADY_EPOCHS = 30


class Case:
    """A row of the table: a child command and its runs.

    loop: the child prints a JSON line with update_seconds and accuracies.
    whole: the child is a whole training run, so its wall time means one.
    An update-loop row (loop, not whole) also trains STEADY_EPOCHS more.
    """

    def __init__(self, name, argv, loop=True, whole=True):
        self.name, self.argv, self.loop, self.whole = name, argv, loop, whole
        self.runs = []
        self.skipped = None

    @property
    def steady(self):
        return self.loop and not self.whole

    def command(self):
        """The child's arguments for a round of the table."""
        if self.steady:
            return self.argv + ['--steady-epochs', str(STEADY_EPOCHS)]
        return self.argv

    def median(self, key):
        values = [run[key] for run in self.runs if run.get(key) is not None]
        return statistics.median(values) if values else None

    def spread(self, key):
        values = [run[key] for run in self.runs]
        return min(values), max(values)


def build_cases(torch_ok, fused_archs):
    """Every row, in the table's order, with the skipped ones marked.

    fused_archs: the architectures that train_rnn.py --fused runs.
    """
    cases = [
        Case(BASELINE, ['-m', 'benchmarks.tutorial_baseline', '-o', '{out}']),
        Case(LSTM_BASELINE, ['-m', 'benchmarks.tutorial_baseline', '-a',
                             'lstm', '-o', '{out}']),
        Case('torch nn.RNN', ['-m', 'benchmarks.torch_rnn', '-a', 'rnn'],
             whole=False),
        Case('torch nn.RNN, per step',
             ['-m', 'benchmarks.torch_rnn', '-a', 'rnn', '--per-step'],
             whole=False),
        Case('torch nn.LSTM', ['-m', 'benchmarks.torch_rnn', '-a', 'lstm'],
             whole=False),
        Case('torch nn.GRU', ['-m', 'benchmarks.torch_rnn', '-a', 'gru'],
             whole=False),
        Case(LSTM_RUN, ['train_rnn.py', '-a', 'lstm', '-o', '{out}'],
             loop=False),
        Case(DEFAULT_RUN, ['train_rnn.py', '-a', 'rnn', '-o', '{out}'],
             loop=False),
        Case(LOOP_RUN, ['-m', 'benchmarks.ours', '-a', 'rnn'], whole=False),
    ]
    for arch in fused_archs:
        cases += [
            Case('fused {}, train_rnn.py'.format(arch),
                 ['train_rnn.py', '-a', arch, '--fused', '-o', '{out}'],
                 loop=False),
            Case('fused {}, update loop'.format(arch),
                 ['-m', 'benchmarks.ours', '-a', arch, '--fused'],
                 whole=False)]
    for case in cases:
        if case.name.startswith('torch') and not torch_ok:
            case.skipped = ('skipped: torch not installed (make bench '
                            'installs it only from a local CPU wheel)')
    return cases


def run_child(argv):
    """One child process: its results, wall time and peak RSS.

    os.wait4 gives this child's own peak, where RUSAGE_CHILDREN would give
    the largest of all children so far.
    """
    with tempfile.TemporaryDirectory() as out, \
            tempfile.TemporaryFile('w+') as output:
        command = [sys.executable] + [a.format(out=out) for a in argv]
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, stdout=output,
                                 stderr=subprocess.STDOUT,
                                 env=dict(os.environ, **THREADS))
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read()
        run = {'wall': wall, 'cpu': usage.ru_utime + usage.ru_stime,
               'rss': usage.ru_maxrss / 1024}  # ru_maxrss is in KiB
        if child.returncode != 0:
            run['error'] = 'failed: exit status {} ({})'.format(
                child.returncode, shlex.join(command))
            return run, text
        if '-m' not in argv:  # train_rnn.py itself: read its log
            with open(os.path.join(out, 'log')) as f:
                last = json.load(f)[-1]
            run['accuracy'] = last['validation/main/accuracy']
            run['boundary_accuracy'] = \
                last['validation/main/boundary_accuracy']
            return run, text
    for line in reversed(text.splitlines()):
        if line.startswith('{'):
            run.update(json.loads(line))
            break
    if 'update_seconds' in run:
        run['tokens_per_s'] = run['tokens'] / run['update_seconds']
    if 'steady_seconds' in run:
        run['steady_per_s'] = run['steady_tokens'] / run['steady_seconds']
    return run, text


def describe_machine():
    """The CPU model, cores and memory, from /proc."""
    with open('/proc/cpuinfo') as f:
        models = [line.split(':', 1)[1].strip() for line in f
                  if line.startswith('model name')]
    with open('/proc/meminfo') as f:
        memory = int(f.readline().split()[1]) / 2 ** 20
    return '{}, {} logical CPUs ({} usable), {:.1f} GiB, {}'.format(
        models[0] if models else platform.processor(), len(models),
        len(os.sched_getaffinity(0)), memory, platform.platform())


def describe_code():
    """The commit measured, and the files changed since (uncommitted)."""
    def git(*argv):
        return subprocess.run(['git'] + list(argv), cwd=ROOT,
                              capture_output=True, text=True).stdout
    head = git('rev-parse', '--short', 'HEAD').strip() or 'not a git checkout'
    changed = [line[3:] for line in git('status', '--porcelain').splitlines()]
    return 'commit {}{}'.format(head, ', with uncommitted changes to ' +
                                ' '.join(changed) if changed else '')


def print_header(args, environment):
    print('Training benchmark: the simple sequence, on the CPU')
    print('command:  ' + shlex.join([sys.executable] + sys.argv))
    print('date:     ' + datetime.datetime.now().astimezone().isoformat(
        ' ', 'seconds'))
    print('machine:  ' + describe_machine())
    print('code:     ' + describe_code())
    print('load:     {:.2f} {:.2f} {:.2f} (1, 5, 15 min) at the start: '
          'a shared machine makes times noisy'.format(*os.getloadavg()))
    print('versions: Python {python}, numpy {numpy}, chainer {chainer}, '
          'torch {}'.format(environment['torch'] or 'not installed',
                            **environment))
    print('threads:  the children run with {}; torch.set_num_threads(1)'
          .format(' '.join('{}={}'.format(*kv) for kv in THREADS.items())))
    coretype = os.environ.get('OPENBLAS_CORETYPE')
    print('OPENBLAS_CORETYPE: ' + ('not set (this benchmark never sets it)'
                                   if coretype is None else
                                   '{} (set by the environment, not by us)'
                                   .format(coretype)))
    for blas in environment['numpy_blas']:
        print('numpy BLAS (threadpoolctl): {internal_api} {version}, core '
              'type {architecture}, {threading_layer}, {num_threads} '
              'thread(s), {filepath}'.format(**blas))
    if environment.get('torch_cpu'):
        print('torch CPU kernels: ' + environment['torch_cpu'])
    for warning in environment.get('torch_warnings', []):
        print('torch import warning: ' + warning)
    print('task:     vocabulary 10, a 4,500-word sequence, 10 streams, '
          'bprop_len 20, 100 units, Adam alpha 0.0005, 10 epochs: 225 '
          'updates, 45,000 training tokens; the update-loop rows then '
          '{} epochs more, timed apart: {:,} tokens'.format(
              STEADY_EPOCHS, STEADY_EPOCHS * 4500))
    print('rounds:   {}, interleaved (the order rotates every round); '
          'medians, with (min-max)'.format(args.rounds))


def fmt(value, spec, spread=None):
    if value is None:
        return '-'
    text = format(value, spec)
    if spread and spread[0] != spread[1]:
        text += ' ({}-{})'.format(*(format(v, spec) for v in spread))
    return text


def print_table(cases):
    baseline = next((case for case in cases if case.name == BASELINE),
                    Case(BASELINE, []))
    base_speed = baseline.median('tokens_per_s')
    base_wall = baseline.median('wall')
    header = ('case', 'tokens/s', 'steady tok/s', 'loop s', 'wall s',
              'CPU s', 'x tokens/s', 'x wall', 'peak MiB', 'accuracy',
              'boundary')
    rows = []
    for case in cases:
        if case.skipped or not case.runs:
            rows.append((case.name, case.skipped or 'not run'))
            continue
        speed = case.median('tokens_per_s')
        wall = case.median('wall') if case.whole else None
        rows.append((
            case.name, fmt(speed, ',.0f'),
            fmt(case.median('steady_per_s'), ',.0f',
                case.steady and case.spread('steady_per_s')),
            fmt(case.median('update_seconds'), '.2f',
                case.loop and case.spread('update_seconds')),
            fmt(wall, '.1f', case.whole and case.spread('wall')),
            fmt(case.median('cpu') if case.whole else None, '.1f'),
            fmt(speed and base_speed and speed / base_speed, '.2f'),
            fmt(wall and base_wall and base_wall / wall, '.2f'),
            fmt(case.median('rss'), '.0f'),
            fmt(case.median('accuracy'), '.4f'),
            fmt(case.median('boundary_accuracy'), '.4f')))
    full = [row for row in rows + [header] if len(row) == len(header)]
    widths = [max(len(row[i]) for row in full) for i in range(len(header))]
    widths[0] = max(len(row[0]) for row in rows + [header])
    print()
    for row in [header] + rows:
        if len(row) == 2:
            print('{}  {}'.format(row[0].ljust(widths[0]), row[1]))
        else:
            print('  '.join([row[0].ljust(widths[0])] +
                            [c.rjust(w) for c, w in zip(row[1:],
                                                        widths[1:])]))
    print()
    print('tokens/s: training tokens per second of the update loop alone '
          '(45,000 / loop s), its first 10 epochs.\nsteady tok/s: the same '
          'over the {} epochs that follow in the same process, timed apart: '
          'no warm-up in it.\nwall s, CPU s: the whole process (imports, '
          'training, evaluation, logs, snapshots); "-" for the update-loop '
          'rows, which skip the extensions and train longer.\nx tokens/s, '
          'x wall: speed-up '
          'over the tutorial baseline (above 1 is faster).\npeak MiB: the '
          'peak resident memory of the process.\naccuracy, boundary: after '
          'training, one pass over a fresh copy of the sequence from a '
          'reset state; boundary counts only the positions where the next '
          'number differs from the current one.'.format(STEADY_EPOCHS))


def accuracy_verdict(ours, theirs):
    """Whether ours ends within 1/45 of the baseline's accuracy; where it
    ends higher, what to expect."""
    if abs(ours - theirs) <= 1 / 45 + 1e-9:
        return 'within 1/45: yes'
    if ours > theirs:
        return ('within 1/45: no, higher, as expected where the baseline\'s '
                'evaluation hook resetting its training state every epoch '
                'costs it accuracy: run it with --keep-training-state to see')
    return 'within 1/45: NO'


def print_targets(cases):
    """The issue's targets, met or not, from the medians of the table."""
    by_name = {case.name: case for case in cases if case.runs}

    def median(name, key):
        case = by_name.get(name)
        return case.median(key) if case else None

    print('\nTargets:')
    for baseline, run in ((BASELINE, DEFAULT_RUN),
                          (LSTM_BASELINE, LSTM_RUN)):
        base_wall, wall = median(baseline, 'wall'), median(run, 'wall')
        if base_wall and wall:
            ours, theirs = (median(name, 'accuracy')
                            for name in (run, baseline))
            print('  {}, whole process: {:.2f}x faster than the baseline '
                  '(target 2x: {}); accuracy {:.4f} against {:.4f} ({})'
                  .format(run, base_wall / wall, 'met' if base_wall / wall
                          >= 2 else 'NOT met', ours, theirs,
                          accuracy_verdict(ours, theirs)))
    # Steady states: the first 10 epochs' figure would let whichever side
    # warms up slower look worse than it trains; shown beside, not judged.
    for arch, peer, target in (('rnn', 'torch nn.RNN', 1),
                               ('lstm', 'torch nn.LSTM', 1),
                               ('gru', 'torch nn.GRU', 0.5)):
        name = 'fused {}, update loop'.format(arch)
        ours, theirs = (median(n, 'steady_per_s') for n in (name, peer))
        first = [median(n, 'tokens_per_s') for n in (name, peer)]
        if ours and theirs:
            print('  fused {} against {}, steady state: {:.2f}x its tokens/s '
                  '(target {}x: {}); first 10 epochs: {:.2f}x'.format(
                      arch, peer, ours / theirs, target,
                      'met' if ours / theirs >= target else 'NOT met',
                      first[0] / first[1]))


def memory_check(cases):
    """Peak RSS at 10 epochs against 100, of the default run and of its
    update loop alone; False on error."""
    print('\nMemory: peak RSS at 10 and at 100 epochs. A graph kept from '
          'window to window\n(unchain_backward not freeing it) would grow '
          'with the epochs.')
    ok = True
    for name, what in ((DEFAULT_RUN, 'train_rnn.py -a rnn, whole process'),
                       (LOOP_RUN, 'its update loop alone (ours.py)')):
        case = next(case for case in cases if case.name == name)
        # The table's runs of an update loop trained longer: not 10 epochs.
        runs = [] if case.steady else case.runs
        if not runs:
            progress('memory: ' + name)
            runs = [run_child(case.argv)[0]]
        progress('memory: {}, 100 epochs'.format(name))
        run, text = run_child(case.argv + ['-e', '100'])
        failed = [r['error'] for r in runs + [run] if 'error' in r]
        if failed:
            print(text, file=sys.stderr)
            print('  {}: {}'.format(what, failed[0]))
            ok = False
            continue
        ten = statistics.median(r['rss'] for r in runs)
        print('  {}: {:.1f} MiB at 10 epochs ({}), {:.1f} MiB at 100 '
              '(wall {:.0f} s, accuracy {:.4f}, boundary {:.4f}): ratio '
              '{:.3f}'.format(
                  what, ten, 'median of {} runs'.format(len(runs))
                  if len(runs) > 1 else 'one run', run['rss'], run['wall'],
                  run['accuracy'], run['boundary_accuracy'],
                  run['rss'] / ten))
    return ok


def progress(message):
    print('[bench] ' + message, file=sys.stderr, flush=True)


def environment_info():
    """The child's view of versions and BLAS (environment.py)."""
    output = subprocess.run(
        [sys.executable, '-m', 'benchmarks.environment'], cwd=ROOT,
        env=dict(os.environ, **THREADS), capture_output=True, text=True,
        check=True).stdout
    return json.loads(output.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--rounds', '-n', type=int, default=5,
                        help='interleaved runs of every case (default: 5)')
    parser.add_argument('--quick', action='store_true',
                        help='smoke test: one round, no memory check')
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the 100-epoch memory check (minutes)')
    parser.add_argument('--cases', '-k', default='',
                        help='run only the cases whose name contains this, '
                        'in any case (lstm picks torch nn.LSTM too), or one '
                        'of several, separated by | (names hold commas)')
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.no_memory = 1, True

    start = time.perf_counter()
    environment = environment_info()
    cases = build_cases(environment['torch'] is not None,
                        environment['fused'])
    wanted = args.cases.lower().split('|')
    chosen = [case for case in cases
              if any(part in case.name.lower() for part in wanted)]
    print_header(args, environment)
    sys.stdout.flush()
    active = [case for case in chosen if not case.skipped]
    for round_ in range(args.rounds):
        shift = round_ % max(len(active), 1)
        for case in active[shift:] + active[:shift]:
            if case.skipped:
                continue
            progress('round {}/{}: {}'.format(round_ + 1, args.rounds,
                                              case.name))
            run, text = run_child(case.command())
            if 'error' in run:
                print(text, file=sys.stderr)
            # A failed case is not run again; the others go on.
            case.skipped = run.get('skipped') or run.get('error')
            if not case.skipped:
                case.runs.append(run)
    print_table(chosen)
    print_targets(chosen)
    memory_ok = args.no_memory or memory_check(cases)
    print('\nload at the end: {:.2f} {:.2f} {:.2f}; the benchmark took '
          '{:.0f} s'.format(*os.getloadavg(), time.perf_counter() - start))
    failed = any(case.skipped and case.skipped.startswith('failed')
                 for case in chosen)
    return 1 if failed or not memory_ok else 0


if __name__ == '__main__':
    sys.exit(main())
