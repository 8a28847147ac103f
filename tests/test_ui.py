"""The dashboard: ChainerUI served by dashboard.py, read in headless Chromium.

They need requirements-ui.txt in the environment and Debian's chromium:
skipped without them, except in CI (CI=true), where that fails.
"""
import contextlib
import fcntl
import html.parser
import json
import os
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

import cli
import dashboard as dashboard_server
import snapshots
from study import dashboard
import train_rnn

from helpers import ROOT, wait_for
from test_reliability import TINY, assert_same_run, train
from test_study_dashboard import record, write_records

CHROMIUM = shutil.which('chromium')


def need(missing):
    """Skip with the reason, or fail in CI, where nothing may be skipped."""
    if os.environ.get('CI') == 'true':
        pytest.fail(missing + ', which CI must have (see .ci/run)')
    pytest.skip(missing)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """A folder of two short runs, rnn and lstm, a crafted one, and a cell
    of the study with two seeds."""
    try:
        import chainerui  # noqa: F401
    except ImportError:
        need('ChainerUI is not installed (pip install -r '
             'requirements-ui.txt)')
    folder = tmp_path_factory.mktemp('runs')
    for arch in ('rnn', 'lstm'):
        train(folder / arch, '-a', arch, '-e', '2')
    crafted = folder / 'crafted'
    crafted.mkdir()
    for name, text in (('log', '[{"epoch": "one"}, 3]'), ('args', '[1, 2]'),
                       ('commands', '"stop"'), ('.chainerui_conf', '[]'),
                       ('snapshot_iter_1e5', ''),
                       ('snapshot_iter_{}'.format(2 ** 64), '')):
        (crafted / name).write_text(text)
    records = write_records(folder / 'capacity.jsonl', record(seed=0),
                            record(seed=1))
    assert dashboard.main([records, str(folder / 'study')]) == 0
    return folder


@pytest.fixture(scope='module')
def server(runs, tmp_path_factory):
    """(base URL, process) of dashboard.py over runs, on a free port."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'dashboard.py'), '--port',
         str(port), '--db', str(tmp_path_factory.mktemp('db')), str(runs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = 'http://127.0.0.1:{}'.format(port)
    deadline = time.monotonic() + 120
    while True:
        try:
            get(url + '/api/v1/projects')
            break
        except OSError:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
    yield url, process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def post(url, body, content_type='application/json'):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method='POST',
        headers={'Content-Type': content_type})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def results(url):
    return {os.path.basename(result['pathName']): result for result in
            get(url + '/api/v1/projects/1/results')['results']}


class Table(html.parser.HTMLParser):
    """The rows of the page's results table: lists of cell texts, a name
    cell's text being its input's placeholder (the run's folder)."""

    def __init__(self):
        super().__init__()
        self.rows = []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get('role') == 'row':
            self.rows.append([])
        elif attrs.get('role') in ('gridcell', 'columnheader') and \
                self.rows:
            self._cell = []
            self.rows[-1].append(self._cell)
        elif tag == 'input' and self._cell is not None and \
                'placeholder' in attrs:
            self._cell.append(attrs['placeholder'])

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def table(self):
        """[{column: text}] of the rows that name something, under the
        header that has a name column; [] without one."""
        rows = [[''.join(cell).strip() for cell in row] for row in self.rows]
        header = next((row for row in rows if 'name' in row), [])
        return [dict(zip(header, row)) for row in rows
                if row is not header and len(row) == len(header) and
                row[header.index('name')]]


def rendered_table(url, profile):
    """The results table of url as headless Chromium renders it."""
    if CHROMIUM is None:
        need('no chromium on this machine (apt-get install chromium)')
    for _ in range(3):  # the page fills its table from the API
        page = subprocess.run(
            [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu',
             '--user-data-dir=' + str(profile), '--virtual-time-budget=15000',
             '--dump-dom', url], capture_output=True, text=True, timeout=180)
        assert page.returncode == 0, page.stderr
        parser = Table()
        parser.feed(page.stdout)
        rows = parser.table()
        if len(rows) >= 2:
            return rows
    raise AssertionError('no results table in ' + url)


def final_entry(folder):
    with open(os.path.join(str(folder), 'log')) as f:
        return json.load(f)[-1]


def test_the_page_shows_both_runs_and_their_final_accuracy(runs, server,
                                                           tmp_path):
    url, _ = server
    rows = {row['name']: row for row in rendered_table(
        url + '/projects/1', tmp_path)}
    assert {'rnn', 'lstm', 'study/gru_vocab5_bproplen5/seed0'} <= set(rows)
    for arch in ('rnn', 'lstm'):
        final = final_entry(runs / arch)
        for key in ('validation/main/accuracy',
                    'validation/main/boundary_accuracy', 'epoch'):
            assert float(rows[arch][key]) == final[key]


def test_the_api_gives_every_run_its_arguments_and_whole_log(runs, server):
    url, _ = server
    found = results(url)
    for arch in ('rnn', 'lstm'):
        with open(str(runs / arch / 'log')) as f:
            assert [entry['logDict'] for entry in found[arch]['logs']] == \
                json.load(f)
        arguments = {item['key']: item['value']
                     for item in found[arch]['args']}
        assert arguments['arch'] == arch and arguments['unit'] == '6'


def test_crafted_files_of_one_run_leave_the_others_whole(server):
    url, process = server
    crafted = results(url)['crafted']
    assert (crafted['logs'], crafted['args'], crafted['commands'],
            crafted['snapshots'], crafted['name']) == ([], [], [], [], None)
    assert len(results(url)['rnn']['logs']) == 2


def test_a_cell_of_the_study_shows_each_seed_as_a_run(server):
    url, _ = server
    found = results(url)
    for seed in (0, 1):
        run = found['seed{}'.format(seed)]
        assert run['pathName'].endswith('study/gru_vocab5_bproplen5/seed{}'
                                        .format(seed))
        assert [(log['logDict']['iteration'], log['logDict']['accuracy'])
                for log in run['logs']] == [(2, 0.5), (4, 0.5)]
        assert {'key': 'seed', 'value': str(seed), 'resultId': run['id']} \
            in run['args']


def test_only_requests_for_this_host_are_answered(server):
    url, _ = server
    port = url.rsplit(':', 1)[1]
    for host, status in (('localhost:' + port, 200),
                         ('attacker.example:' + port, 403)):
        request = urllib.request.Request(url + '/api/v1/projects',
                                         headers={'Host': host})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == status
        except urllib.error.HTTPError as error:
            assert error.code == status


def test_assets_are_off(runs, server):
    """ChainerUI would serve any file that .chainerui_assets names."""
    url, _ = server
    (runs / 'rnn' / '.chainerui_assets').write_text(json.dumps(
        [{'images': {'secret': '/etc/hostname'}}]))
    assert get('{}/api/v1/projects/1/results/{}/assets'.format(
        url, run_id(url, 'rnn'))) == {'assets': []}


def run_id(url, name):
    """The id of the run in folder name, once the server has found it."""
    deadline = time.monotonic() + 60
    while name not in results(url):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    return results(url)[name]['id']


def command_responses(url, name):
    return [(command['name'], command['response'] and
             command['response']['status'])
            for command in results(url)[name]['commands']]


def test_stop_and_take_snapshot_from_the_api_act_on_a_running_run(
        runs, server, tmp_path):
    url, _ = server
    out = runs / 'stopped'
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'train_rnn.py'), '-o', str(out),
         '-a', 'lstm', '-e', '200', '--keep-snapshots', '0'] + TINY,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(str(out / 'log'), process)
        commands = '{}/api/v1/projects/1/results/{}/commands'.format(
            url, run_id(url, 'stopped'))
        # What a web page may send elsewhere without asking (no JSON type).
        with pytest.raises(urllib.error.HTTPError) as error:
            post(commands, {'name': 'stop'}, content_type='text/plain')
        assert error.value.code == 400
        post(commands, {'name': 'take_snapshot'})
        deadline = time.monotonic() + 60
        while command_responses(url, 'stopped') != [
                ('take_snapshot', 'SUCCESS')]:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        post(commands, {'name': 'stop'})
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, err
    assert 'Traceback' not in err
    taken = int(err.split('dashboard: take_snapshot at iteration ')[1]
                .split(':')[0])
    stopped = int(err.split('Stopped at iteration ')[1].split()[0])
    assert 15 <= taken < stopped < 3000
    # Both are ours; the run resumes from the stop exactly.
    for iteration in (taken, stopped):
        _, run_args = snapshots.read_snapshot(
            snapshots.snapshot_path(str(out), iteration))
        assert run_args['epoch'] == 200
    epochs = stopped // 15 + 1
    assert train_rnn.main(['-r', str(out), '-e', str(epochs)]) == 0
    train(tmp_path, '-a', 'lstm', '-e', str(epochs), '--keep-snapshots',
          '0')
    assert_same_run(out, tmp_path, 'lstm')
    assert command_responses(url, 'stopped') == [
        ('take_snapshot', 'SUCCESS'), ('stop', 'SUCCESS')]


def test_a_finished_run_refuses_commands(server):
    url, _ = server
    with pytest.raises(urllib.error.HTTPError) as error:
        post('{}/api/v1/projects/1/results/{}/commands'.format(
            url, run_id(url, 'rnn')), {'name': 'stop'})
    assert error.value.code == 400
    assert json.load(error.value) == {
        'message': 'The target training job has already stopped'}


def server_says(process, text, timeout=30):
    """The line of the server's stderr that holds text, once it comes."""
    seen = b''
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        assert time.monotonic() < deadline, seen
        if select.select([process.stderr], [], [], 0.5)[0]:
            seen += os.read(process.stderr.fileno(), 65536)
    return next(line for line in seen.decode().splitlines() if text in line)


def test_a_command_to_a_run_whose_state_file_is_garbage_is_refused(
        runs, server):
    """ChainerUI answered 500, and said nothing."""
    url, process = server
    out = runs / 'garbled'
    shutil.copytree(str(runs / 'rnn'), str(out))
    (out / '.chainerui_commands').write_text('{"job_status": 5}')
    with pytest.raises(urllib.error.HTTPError) as error:
        post('{}/api/v1/projects/1/results/{}/commands'.format(
            url, run_id(url, 'garbled')), {'name': 'stop'})
    assert error.value.code == 400
    assert json.load(error.value) == {
        'message': 'Cannot get the target training job status'}
    assert server_says(process, str(out / '.chainerui_commands')) == \
        'dashboard: ignored {}: not what ChainerUI reads there'.format(
            out / '.chainerui_commands')


@pytest.mark.parametrize('name, log, problem', [
    ('infinite', '[{"epoch": 1, "main/loss": 1e999}]',
     'not what ChainerUI reads there'),
    ('nan', '[{"epoch": 1, "main/loss": NaN}]',
     'not what ChainerUI reads there'),
    ('repeated', '[{"epoch": 1, "epoch": 2}]',
     "the key 'epoch' appears twice in an object"),
    ('surrogate', '[{"epoch": 1, "\\udc80": 2}]',
     'a \\u escape in it is no character (a lone surrogate), which '
     'ChainerUI cannot store')])
def test_a_log_of_odd_numbers_reads_as_empty_in_one_line(name, log, problem,
                                                         runs, server):
    """ChainerUI showed NaN and infinities as nothing, without a word."""
    url, process = server
    out = runs / name
    shutil.copytree(str(runs / 'rnn'), str(out))
    (out / 'log').write_text(log)
    run_id(url, name)
    assert results(url)[name]['logs'] == []
    assert server_says(process, str(out / 'log')) == \
        'dashboard: ignored {}: {}'.format(out / 'log', problem)


def test_a_linked_args_file_is_not_followed(runs, server, tmp_path):
    """The page showed what the link led to, read through it."""
    url, process = server
    out = runs / 'linked_args'
    shutil.copytree(str(runs / 'rnn'), str(out))
    elsewhere = tmp_path / 'elsewhere.json'
    elsewhere.write_text('{"secret": 1}')
    (out / 'args').unlink()
    (out / 'args').symlink_to(elsewhere)
    run_id(url, 'linked_args')
    assert results(url)['linked_args']['args'] == []
    assert server_says(process, str(out / 'args')) == \
        'dashboard: ignored {} is a symbolic link, which is ' \
        'refused'.format(out / 'args')


@pytest.mark.parametrize('host, address', [
    ('127.0.0.1', 'http://127.0.0.1:5000/'),
    ('::1', 'http://[::1]:5000/')])
def test_the_address_printed_is_one_a_browser_takes(host, address):
    assert dashboard_server.url(host, 5000) == address


def test_a_snapshot_name_past_64_bits_is_not_a_snapshot(runs, server):
    """ChainerUI cannot store its iteration: the run list answered 500,
    and nothing was said."""
    url, process = server
    out = runs / 'huge_snapshot'
    shutil.copytree(str(runs / 'rnn'), str(out))
    for iteration in (2 ** 63 - 1, 2 ** 63):
        (out / snapshots.snapshot_name(iteration)).write_text('')
    run_id(url, 'huge_snapshot')
    assert sorted(snapshot['iteration'] for snapshot in
                  results(url)['huge_snapshot']['snapshots']) == [
        15, 30, 2 ** 63 - 1]
    assert server_says(process, str(out)) == (
        'dashboard: ignored {}: not a snapshot: ChainerUI cannot store an '
        'iteration past 2**63 - 1'.format(
            out / snapshots.snapshot_name(2 ** 63)))


def not_utf8(path, name):
    """path/name, name followed by the byte 0xff, which UTF-8 never has."""
    return os.fsdecode(os.fsencode(os.path.join(str(path), name)) + b'\xff')


def test_a_run_whose_path_is_not_utf8_is_left_out_in_one_line(runs,
                                                              server):
    """ChainerUI cannot store its path: the run list answered 500, and
    nothing was said."""
    url, process = server
    out = not_utf8(runs, 'latin')
    shutil.copytree(str(runs / 'rnn'), out)
    for _ in range(12):  # past the 4 s between ChainerUI's looks
        assert {'rnn', 'lstm'} <= set(results(url))
        time.sleep(0.5)
    assert server_says(process, 'latin') == (
        'dashboard: ignored {}: its path is not UTF-8, which ChainerUI '
        'cannot store'.format(cli.one_line(out)))


def test_a_command_to_a_run_whose_commands_are_garbage_is_taken(runs,
                                                                server):
    url, _ = server
    out = runs / 'garbled_commands'
    shutil.copytree(str(runs / 'rnn'), str(out))
    (out / '.chainerui_commands').write_text('{"job_status": "running"}')
    (out / 'commands').write_text('"stop"')
    answer = post('{}/api/v1/projects/1/results/{}/commands'.format(
        url, run_id(url, 'garbled_commands')), {'name': 'stop'})
    assert [command['name'] for command in answer['commands']] == ['stop']


def test_ctrl_c_stops_the_server_in_one_line(server):
    url, process = server
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert out == 'ChainerUI on {}/ over {} (Ctrl-C to stop)\n'.format(
        url, process.args[-1])
    assert err.splitlines()[-1] == 'Ctrl-C: stopped the dashboard.'
    assert 'Traceback' not in err


# dashboard.py, whose registering of the runs gets a Ctrl-C and swallows
# its KeyboardInterrupt, as code that catches everything does.
SWALLOWS_A_CTRL_C = """
import os, signal, sys, time
sys.path.insert(0, os.getcwd())
import dashboard
open_app = dashboard.open_app
def swallowing(*args):
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    except BaseException:
        pass
    return open_app(*args)
dashboard.open_app = swallowing
sys.exit(dashboard.main(sys.argv[1:]))
"""


def test_a_ctrl_c_while_the_runs_register_stops_it_before_it_serves(
        runs, tmp_path):
    """It served, the Ctrl-C forgotten."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, '-c', SWALLOWS_A_CTRL_C, '--port', str(port), '--db',
         str(tmp_path), str(runs / 'rnn')], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert (process.returncode, out, err) == (
        0, '', 'Ctrl-C: stopped the dashboard before it served.\n')


# dashboard.py, whose new database gets a Ctrl-C as it is migrated.
INTERRUPTS_THE_MIGRATION = """
import os, signal, sys
sys.path.insert(0, os.getcwd())
os.environ['CHAINERUI_ROOT'] = os.path.abspath(sys.argv[2])  # as --db
from chainerui.database import db
upgrade = db.upgrade
def interrupted(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)
    return upgrade(*args, **kwargs)
db.upgrade = interrupted
import dashboard
sys.exit(dashboard.main(sys.argv[1:]))
"""


def test_a_ctrl_c_while_the_database_is_made_waits_for_it(runs, tmp_path):
    """A stop in the middle of the migration left a database that every
    later start refused (hostile pass 16)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    completed = subprocess.run(
        [sys.executable, '-c', INTERRUPTS_THE_MIGRATION, '--db',
         str(tmp_path), '--port', str(port), str(runs / 'rnn')], cwd=ROOT,
        capture_output=True, text=True, timeout=120)
    assert (completed.returncode, completed.stderr) == (
        0, 'Ctrl-C: stopped the dashboard before it served.\n')
    with contextlib.closing(sqlite3.connect(
            str(tmp_path / 'db' / 'chainerui.db'))) as database:
        versions = database.execute(
            'SELECT version_num FROM alembic_version').fetchall()
        tables = {name for name, in database.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert len(versions) == 1
    assert not any(name.startswith('_alembic_tmp') for name in tables)


def test_a_second_dashboard_waits_while_the_first_sets_up_the_database(
        runs, tmp_path):
    """Started together on a new --db, they raced in making it, and one
    was refused as if it were no ChainerUI database (hostile pass 16)."""
    (tmp_path / 'db').mkdir()
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    with open(str(tmp_path / 'db' / dashboard_server.SETUP_LOCK), 'w') as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        process = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, 'dashboard.py'), '--port',
             str(port), '--db', str(tmp_path), str(runs / 'rnn')],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stderr.readline() == (
                'Waiting for another dashboard to set up {}\n'.format(
                    tmp_path / 'db' / 'chainerui.db'))
            assert process.poll() is None
        except BaseException:
            process.kill()
            process.communicate()
            raise
    try:
        assert process.stdout.readline().startswith('ChainerUI on ')
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert err == 'Ctrl-C: stopped the dashboard.\n'


def test_a_setup_lock_that_is_no_file_is_named_with_its_remedy(
        runs, tmp_path):
    """It said to move the database aside, which changed nothing (hostile
    pass 17)."""
    lock = tmp_path / 'db' / dashboard_server.SETUP_LOCK
    lock.mkdir(parents=True)
    completed = run_dashboard('--db', str(tmp_path), str(runs / 'rnn'))
    assert (completed.returncode, completed.stderr) == (
        cli.EXIT_USAGE, "dashboard.py: error: cannot set up ChainerUI's "
        'database {}: {}: Is a directory (remove {}, or choose another '
        '--db)\n'.format(tmp_path / 'db' / 'chainerui.db', lock, lock))


# dashboard.py, whose setting up of the database fails for a full disk,
# naming the file in argv[1] (none where it is empty).
FAILS_FOR_A_FULL_DISK = """
import errno, os, sys
sys.path.insert(0, os.getcwd())
import dashboard, snapshots
def failing(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC),
                  *filter(None, sys.argv[1:2]))
snapshots.writing_alone = failing
sys.exit(dashboard.main(sys.argv[2:]))
"""


@pytest.mark.parametrize('filename', ['', 'alembic/env.py', 'the lock'])
def test_a_setup_error_names_no_file_to_remove_but_a_lock_that_is_there(
        runs, tmp_path, filename):
    """It said "remove None", or to remove whatever file it named, or a
    lock it had not made."""
    if filename == 'the lock':
        filename = str(tmp_path / 'db' / dashboard_server.SETUP_LOCK)
    completed = subprocess.run(
        [sys.executable, '-c', FAILS_FOR_A_FULL_DISK, filename, '--db',
         str(tmp_path), str(runs / 'rnn')], cwd=ROOT,
        capture_output=True, text=True, timeout=120)
    assert (completed.returncode, completed.stderr) == (
        cli.EXIT_USAGE, "dashboard.py: error: cannot set up ChainerUI's "
        'database {}: {}No space left on device (choose another --db, or '
        'move it aside)\n'.format(
            tmp_path / 'db' / 'chainerui.db', filename and filename + ': '))


def test_a_port_in_use_is_one_line(runs, tmp_path):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        completed = subprocess.run(
            [sys.executable, os.path.join(ROOT, 'dashboard.py'), '--port',
             str(port), '--db', str(tmp_path / 'ui'), str(runs / 'rnn')],
            capture_output=True, text=True, timeout=120)
    assert completed.returncode == cli.EXIT_USAGE
    assert completed.stderr == (
        'dashboard.py: error: cannot serve on 127.0.0.1:{}: Address already '
        'in use (choose another --port or --host; UI_PORT= or UI_HOST= with '
        'make ui)\n'.format(port))
    # Refused before the database was made (hostile pass 15).
    assert not (tmp_path / 'ui').exists()


def test_without_chainerui_the_dashboard_says_what_to_install(tmp_path):
    blocked = tmp_path / 'chainerui'
    blocked.mkdir()
    (blocked / '__init__.py').write_text('raise ImportError("blocked")')
    completed = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'dashboard.py'), str(tmp_path)],
        env=dict(os.environ, PYTHONPATH=str(tmp_path)), capture_output=True,
        text=True, timeout=120)
    assert completed.returncode == cli.EXIT_USAGE
    assert completed.stderr == (
        'dashboard.py: error: the dashboard needs ChainerUI, which is not '
        'installed (blocked): run make ui, or .venv/bin/python -m pip install '
        '-r requirements-ui.txt\n')


def another_programs_database(path):
    with sqlite3.connect(str(path)) as connection:
        connection.execute('CREATE TABLE project (name)')


@pytest.mark.parametrize('make, problem', [
    (lambda path: path.write_text('garbage'),
     "cannot open ChainerUI's database {}: file is not a database"),
    (lambda path: path.mkdir(), "ChainerUI's database {} is a folder"),
    (another_programs_database,
     'ChainerUI cannot use the database {}: table project already exists'),
    # Checked with the other arguments, before ChainerUI is looked for.
    (None, 'cannot reach {db}: Not a directory: choose another --db')],
    ids=['garbage', 'a folder', "another program's", 'a file above --db'])
def test_a_database_that_cannot_be_used_is_named(make, problem, runs,
                                                 tmp_path):
    """It was a traceback, or blamed the port."""
    db = tmp_path / 'db'
    database = db / 'db' / 'chainerui.db'
    if make is None:
        db.write_text('mine')
        db = db / 'below'
        database = db / 'db' / 'chainerui.db'
    else:
        database.parent.mkdir(parents=True)
        make(database)
    completed = run_dashboard('--db', str(db), str(runs / 'rnn'))
    assert completed.returncode == cli.EXIT_USAGE
    assert completed.stderr == 'dashboard.py: error: {}{}\n'.format(
        problem.format(database, db=db), '' if make is None else
        ' (choose another --db, or move it aside)')
    assert completed.stdout == ''


@pytest.mark.parametrize('device', [False, True], ids=['file', 'device'])
def test_a_file_as_db_is_named(device, runs, tmp_path):
    db = '/dev/full' if device else str(tmp_path / 'chainerui.db')
    if not device:
        (tmp_path / 'chainerui.db').write_text('mine')
    completed = run_dashboard('--db', db, str(runs / 'rnn'))
    assert completed.returncode == cli.EXIT_USAGE
    assert completed.stderr == (
        'dashboard.py: error: --db {} is not a folder: it names the folder '
        'where ChainerUI keeps its database (db/chainerui.db in it); choose '
        'another --db\n'.format(db))


def test_an_empty_db_is_refused(runs, tmp_path):
    """It made db/chainerui.db in the current folder."""
    completed = run_dashboard('--db', '', str(runs / 'rnn'), cwd=tmp_path)
    assert completed.returncode == cli.EXIT_USAGE
    assert completed.stderr == (
        'dashboard.py: error: argument --db: an empty path names nothing\n')
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('relative', [False, True],
                         ids=['DIR', 'the current folder'])
def test_a_dir_whose_path_is_not_utf8_is_refused(relative, runs, tmp_path):
    """It was a traceback: UnicodeEncodeError."""
    folder = not_utf8(tmp_path, 'runs')
    shutil.copytree(str(runs / 'rnn'), os.path.join(folder, 'rnn'))
    completed = run_dashboard('--db', str(tmp_path / 'db'),
                              '.' if relative else folder,
                              cwd=folder if relative else None)
    assert completed.returncode == cli.EXIT_USAGE
    assert completed.stderr == (
        'dashboard.py: error: {}: its path is not UTF-8, which ChainerUI '
        'cannot store; rename it\n'.format(cli.one_line(folder)))


def run_dashboard(*args, cwd=None):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, 'dashboard.py')] + list(args),
        capture_output=True, text=True, timeout=120, cwd=cwd)


def test_a_host_that_cannot_be_resolved_is_named(runs, tmp_path):
    """os.strerror of the resolver's errno said 'Unknown error -2'."""
    completed = run_dashboard('--host', '999.1.1.1', '--db',
                              str(tmp_path / 'ui'), str(runs / 'rnn'))
    assert completed.returncode == cli.EXIT_USAGE
    assert not (tmp_path / 'ui').exists()
    assert completed.stderr.startswith(
        'dashboard.py: error: cannot resolve --host 999.1.1.1: ')
    assert completed.stderr.endswith(
        ' (choose another --host; UI_HOST= with make ui)\n')
    assert completed.stderr.count('\n') == 1
    assert 'Unknown error' not in completed.stderr
