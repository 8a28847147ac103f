"""Data-parallel training and the sweep over 2 MPI processes."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy
import pytest

import cli
import distributed
import quiet_start
import snapshots
import train_rnn

from helpers import ROOT, wait_for

MPIEXEC = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
TINY = ['-u', '6', '--vocab', '3', '-b', '4', '-l', '5']
SWEEP = ['--arch', 'rnn', 'lstm', '--vocab', '3', '4', '--bproplen', '2',
         '--seed', '0', '1', '--tokens', '80', '--eval-every', '40',
         '--unit', '4', '--grid']


def run(argv, processes=None):
    """Run a script of ours (or a module, as ['-m', name, ...]), under
    mpiexec with that many processes."""
    command = [sys.executable] + argv
    if processes is not None:
        command = [MPIEXEC, '-n', str(processes)] + command
    return subprocess.run(command, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def train(out, *args, processes=2):
    argv = ['train_rnn.py', '-o', str(out)] + TINY + list(args)
    if processes:
        argv += ['--communicator', 'naive']
    completed = run(argv, processes)
    assert completed.returncode == 0, completed.stderr
    return completed


def parameters(snapshot, rank=0):
    """The model's parameters that rank holds in a snapshot."""
    prefix = 'updater/model:main/predictor/'
    arrays = distributed.rank_part(snapshots.read_npz(snapshot), rank)
    return {key: value for key, value in arrays.items()
            if key.startswith(prefix) and '/state/' not in key}


@pytest.fixture(scope='module')
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp('two')
    completed = train(out, '-a', 'gru', '-e', '6', '--keep-snapshots', '0')
    return out, completed


def test_both_ranks_hold_the_same_parameters(two_ranks):
    out, _ = two_ranks
    snapshot = str(out / 'snapshot_iter_90')
    first, second = parameters(snapshot, 0), parameters(snapshot, 1)
    assert len(first) == 15  # embed, six Linears of the GRU, l2
    for key, value in first.items():
        numpy.testing.assert_array_equal(value, second[key])


def test_two_ranks_train_as_one_process_with_the_whole_batch(
        two_ranks, tmp_path):
    out, completed = two_ranks
    train(tmp_path, '-a', 'gru', '-e', '6', processes=None)
    # Only the order of float sums differs: the gradients of each rank's
    # two streams are averaged, where one process averages four.
    alone = parameters(str(tmp_path / 'snapshot_iter_90'))
    for key, value in parameters(str(out / 'snapshot_iter_90')).items():
        numpy.testing.assert_allclose(value, alone[key], rtol=0, atol=1e-5)
    with open(str(out / 'log')) as f:
        final = json.load(f)[-1]
    with open(str(tmp_path / 'log')) as f:
        single = json.load(f)[-1]
    for key in ('main/loss', 'validation/main/loss'):
        assert final[key] == pytest.approx(single[key], abs=1e-5)
    for key in ('validation/main/accuracy',
                'validation/main/boundary_accuracy'):
        assert final[key] == pytest.approx(single[key], abs=0.01)
    # Rank 0 alone speaks and writes.
    assert completed.stdout.count('Saved the model') == 1
    assert sorted(os.listdir(str(out))) == sorted(
        ['.chainerui_commands', '.train_rnn', 'accuracy.png', 'args',
         'args.json', 'cg.dot',
         'gru_simple_sequence.model', 'log', 'loss.png'] +
        ['snapshot_iter_{}'.format(15 * epoch) for epoch in range(1, 7)])


def test_a_two_rank_run_resumes_exactly(two_ranks, tmp_path):
    out, _ = two_ranks
    train(tmp_path, '-r', str(out / 'snapshot_iter_15'))  # into tmp_path
    assert_same_state(str(tmp_path / 'snapshot_iter_90'),
                      str(out / 'snapshot_iter_90'))


def assert_same_state(snapshot, expected):
    """Everything but times: weights, Adam, iterators, states, logs."""
    got, want = snapshots.read_npz(snapshot), snapshots.read_npz(expected)
    assert got.keys() == want.keys()
    for key, value in want.items():
        if 'elapsed_time' not in key and key != 'extensions/LogReport/_log':
            numpy.testing.assert_array_equal(got[key], value, key)


def start_training(out):
    """Two ranks training the two_ranks run into out, once its first
    snapshot is written."""
    process = subprocess.Popen(
        [MPIEXEC, '-n', '2', sys.executable,
         os.path.join(ROOT, 'train_rnn.py'), '-o', str(out),
         '--communicator', 'naive', '-a', 'gru', '-e', '6',
         '--keep-snapshots', '0'] + TINY,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(str(out / 'snapshot_iter_15'), process)
    return process


def test_ctrl_c_stops_every_rank_at_once_and_resumes_exactly(two_ranks,
                                                             tmp_path):
    out, _ = two_ranks
    process = start_training(tmp_path)
    process.send_signal(signal.SIGINT)  # mpiexec passes it to the ranks
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == cli.EXIT_INTERRUPTED
    assert stderr.count('Stopped at iteration') == 1  # rank 0 speaks
    # The hint works as copied into a shell, without the environment.
    command = stderr.split('Resume with: ')[1].strip()
    assert os.path.basename(command.split()[0]) == 'mpiexec'
    assert command.split()[1:3] == ['-n', '2']
    resumed = subprocess.run(command, shell=True, capture_output=True,
                             text=True, timeout=300,
                             env=dict(os.environ, PATH='/usr/bin:/bin'))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_state(str(tmp_path / 'snapshot_iter_90'),
                      str(out / 'snapshot_iter_90'))


def rank_pids(mpiexec):
    """{rank: pid} of the processes that mpiexec started."""
    found = {}
    for name in os.listdir('/proc'):
        if name.isdigit() and descends_from(int(name), mpiexec.pid):
            try:
                with open('/proc/{}/environ'.format(name), 'rb') as f:
                    environment = f.read().split(b'\0')
            except OSError:  # gone already
                continue
            for entry in environment:
                if entry.startswith(b'PMI_RANK='):
                    found[int(entry[len(b'PMI_RANK='):])] = int(name)
    return found


def descends_from(pid, ancestor):
    while pid > 1:
        try:
            with open('/proc/{}/stat'.format(pid)) as f:
                # The parent's pid follows the name (in brackets) and state.
                pid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
        if pid == ancestor:
            return True
    return False


# SIGHUP, which MPICH's UCX took for its debug mode: the run went on.
@pytest.mark.parametrize('number, rank', [(signal.SIGINT, 0),
                                          (signal.SIGTERM, 1),
                                          (signal.SIGHUP, 0)])
def test_a_signal_to_one_rank_stops_every_rank_with_one_snapshot(
        number, rank, two_ranks, tmp_path):
    out, _ = two_ranks
    process = start_training(tmp_path)
    os.kill(rank_pids(process)[rank], number)  # that rank alone
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + number, stderr
    lines = stderr.split('\n')
    iteration = int(lines[-2].split()[3])
    stopped = ('Stopped at iteration {} (epoch {:.2f}) with a snapshot in {}. '
               'Resume with: '.format(iteration, iteration / 15, tmp_path))
    assert lines[-2].startswith(stopped)
    announced = [{
        signal.SIGINT: 'Ctrl-C: stopping after this update to write a '
        'snapshot (Ctrl-C again to quit at once)',
        signal.SIGTERM: 'SIGTERM: stopping after this update to write a '
        'snapshot (Ctrl-C again to quit at once)',
        signal.SIGHUP: 'SIGHUP: stopping after this update to write a '
        'snapshot'}[number]]
    # The rank that speaks says what it heard; a run ends in one line.
    assert lines[:-2] == (announced if rank == 0 else [])
    assert lines[-1] == ''
    assert sorted(os.listdir(str(tmp_path / '.train_rnn'))) == [
        'lock', 'record.json']
    train(tmp_path, '-r', str(tmp_path / 'snapshot_iter_{}'.format(
        iteration)))
    assert_same_state(str(tmp_path / 'snapshot_iter_90'),
                      str(out / 'snapshot_iter_90'))


def starting(pid):
    """Whether the rank pid is starting: its start-up handler is in place
    (it catches SIGTERM) and MPI is not loaded yet."""
    try:
        with open('/proc/{}/status'.format(pid)) as f:
            caught = next(line for line in f if line.startswith('SigCgt:'))
        with open('/proc/{}/maps'.format(pid)) as f:
            loaded = f.read()
    except OSError:  # gone already
        return False
    return bool(int(caught.split()[1], 16) >> (signal.SIGTERM - 1) & 1) and \
        'libmpi' not in loaded


def start_starting(out):
    """Two ranks starting a run into out, once both are starting; their
    pids by rank."""
    process = subprocess.Popen(
        [MPIEXEC, '-n', '2', sys.executable,
         os.path.join(ROOT, 'train_rnn.py'), '-o', str(out),
         '--communicator', 'naive'] + TINY,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    pids = {}
    while not (len(pids) == 2 and all(map(starting, pids.values()))):
        assert process.poll() is None, process.stderr.read()
        pids = rank_pids(process)
    return process, pids


def ended(process, pids):
    """process's stderr once it ends; where it hangs, its ranks killed."""
    try:
        return process.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
        process.communicate()
        raise


@pytest.mark.parametrize('number, rank', [(signal.SIGTERM, 1),
                                          (signal.SIGINT, 0),
                                          (signal.SIGHUP, 1)])
def test_a_signal_to_one_rank_while_it_starts_ends_every_rank(
        number, rank, tmp_path):
    """The rank left at once, before MPI started, and the other waited in
    MPI_Init for ever."""
    process, pids = start_starting(tmp_path / 'out')
    os.kill(pids[rank], number)
    stderr = ended(process, pids)
    assert process.returncode == 128 + number
    assert stderr == 'Interrupted while starting: nothing was written.\n'
    assert not (tmp_path / 'out').exists()


def test_ctrl_c_to_mpiexec_while_starting_is_one_line(tmp_path):
    """Every rank said it."""
    process, pids = start_starting(tmp_path / 'out')
    process.send_signal(signal.SIGINT)  # mpiexec passes it to the ranks
    stderr = ended(process, pids)
    assert process.returncode == cli.EXIT_INTERRUPTED
    assert stderr == 'Interrupted while starting: nothing was written.\n'
    assert not (tmp_path / 'out').exists()


def test_ranks_without_a_communicator_are_refused(tmp_path):
    """Each trained alone: one saved its model, the other found the out
    folder in use, or ran the job again once it was free."""
    completed = run(['train_rnn.py', '-o', str(tmp_path / 'out')] + TINY,
                    processes=2)
    assert completed.returncode == cli.EXIT_USAGE
    assert completed.stderr == (
        'train_rnn.py: error: under mpiexec with 2 processes: pass '
        '--communicator naive (or another; docs/mpi.md)\n')
    assert not (tmp_path / 'out').exists()


def test_a_snapshot_of_two_ranks_is_refused_on_one(two_ranks, capsys):
    out, _ = two_ranks
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(['-r', str(out / 'snapshot_iter_15'), '-e', '7'])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert ('was trained on 2 processes and this run has 1' in
            capsys.readouterr().err)


def test_the_batch_must_split_evenly_over_the_ranks(tmp_path):
    completed = run(['train_rnn.py', '--communicator', 'naive', '-b', '3',
                     '-o', str(tmp_path / 'out')], processes=2)
    assert completed.returncode == cli.EXIT_USAGE
    assert completed.stderr == ('train_rnn.py: error: --batchsize 3 does '
                                'not split evenly over 2 processes\n')
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('name, message', [
    ('flat', "cannot create the 'flat' communicator"),
    ('bogus', "cannot create the 'bogus' communicator"),
])
def test_a_communicator_that_cannot_work_here_is_refused(name, message,
                                                         tmp_path):
    completed = run(['train_rnn.py', '--communicator', name, '-o',
                     str(tmp_path / 'out')])
    assert completed.returncode == cli.EXIT_USAGE
    assert message in completed.stderr
    assert 'Traceback' not in completed.stderr


def test_without_mpi4py_the_communicator_says_what_to_install(tmp_path):
    hide = ('import sys; sys.modules["mpi4py"] = None; sys.argv[0] = '
            '"train_rnn.py"; import train_rnn; sys.exit(train_rnn.main())')
    completed = subprocess.run(
        [sys.executable, '-c', hide, '--communicator', 'naive', '-o',
         str(tmp_path / 'out')], cwd=ROOT, capture_output=True, text=True)
    assert completed.returncode == cli.EXIT_USAGE
    assert '--communicator needs mpi4py' in completed.stderr
    assert 'pip install mpich==5.0.2 mpi4py==4.1.2' in completed.stderr


def records(out):
    """The sweep's records by run, wall times aside."""
    found = {}
    with open(os.path.join(str(out), 'capacity.jsonl')) as f:
        for line in f:
            record = json.loads(line)
            del record['seconds']
            found[record['arch'], record['vocab'], record['bproplen'],
                  record['seed']] = record
    return found


def test_a_sweep_over_mpi_workers_finds_what_one_process_finds(tmp_path):
    futures = [MPIEXEC, '-n', '3', sys.executable, '-m', 'mpi4py.futures',
               '-m', 'study.sweep', '-o', str(tmp_path / 'mpi')]
    completed = subprocess.run(futures + SWEEP, capture_output=True,
                               text=True, timeout=300, cwd=ROOT)
    assert completed.returncode == 0, completed.stderr
    assert '0 runs done already' in completed.stdout
    assert completed.stdout.count('[8/8]') == 1
    single = run(['-m', 'study.sweep', '-o', str(tmp_path / 'one'), '-j',
                  '1'] + SWEEP)
    assert single.returncode == 0, single.stderr
    assert len(records(tmp_path / 'one')) == 8
    assert records(tmp_path / 'mpi') == records(tmp_path / 'one')
    again = subprocess.run(futures + SWEEP, capture_output=True, text=True,
                           timeout=300, cwd=ROOT)
    assert '8 runs done already' in again.stdout


def test_a_full_disk_at_the_start_is_rank_0_s_one_line(full_disk):
    """Every rank said it, twice in a line once, and MPI_Abort added its
    own (hostile pass 15)."""
    out = full_disk / 'out'
    completed = run(['train_rnn.py', '--communicator', 'naive', '-o',
                     str(out), '-e', '1'] + TINY, processes=2)
    assert (completed.returncode, completed.stderr) == (
        cli.EXIT_FAILED, 'train_rnn.py: error: writing to {} failed: [Errno '
        '28] No space left on device\n'.format(out))
    assert os.listdir(str(full_disk)) == ['filler']


@pytest.mark.parametrize('number', [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_mpiexec_stops_the_sweep_in_rank_0_s_line(
        number, tmp_path):
    """mpiexec passes it to every rank: a worker it ended ended the job in
    MPICH's BAD TERMINATION banner, status 15, without the sweep's line
    (hostile pass 15). The workers leave it to rank 0."""
    process = subprocess.Popen(
        [MPIEXEC, '-n', '2', sys.executable, '-m', 'mpi4py.futures', '-m',
         'study.sweep', '-o', str(tmp_path), '--arch', 'rnn', '--vocab', '9',
         '--bproplen', '5', '--seed', '0', '--tokens', '2000000',
         '--eval-every', '1000', '--unit', '4'], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not process.stdout.readline().startswith('Round of'):
            assert process.poll() is None
        time.sleep(2)  # training, on the worker
        process.send_signal(number)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + number
    # MPICH adds the line of the MPI_Abort that ends the workers.
    assert stderr.splitlines()[0] == '{}: no run had finished; the same ' \
        'command starts again.'.format(quiet_start.NAMES[number])
    assert 'BAD TERMINATION' not in stdout + stderr
    assert 'Traceback' not in stderr


def test_a_sweep_under_mpiexec_without_mpi4py_futures_is_refused(tmp_path):
    completed = run(['-m', 'study.sweep', '-o', str(tmp_path / 'out')] +
                    SWEEP, processes=2)
    assert completed.returncode == cli.EXIT_USAGE
    assert completed.stderr.count('\n') == 1
    assert '-m mpi4py.futures -m study.sweep' in completed.stderr
