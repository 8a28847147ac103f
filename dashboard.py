"""Serve ChainerUI over result folders: compare runs in the browser.

Every folder under each DIR that holds a `log` is one run. The server
listens on 127.0.0.1 unless --host says otherwise; its database (which
folders are registered, the logs it has read) lives in --db. Runs of
train_rnn.py answer the page's stop and take_snapshot (see
dashboard_commands.py). `make ui` installs what it needs and starts it.
"""
import argparse
import contextlib
import importlib
import json
import logging
import math
import os
import socket
import sqlite3
import sys

import quiet_start

if __name__ == '__main__':  # before Chainer loads, with cli
    quiet_start.install()

import setup_check  # noqa: F401  (says so where Chainer is missing)
import cli
import snapshots

# ChainerUI stores each command's name, request and response.
COMMAND_KEYS = {'name', 'request', 'response'}
INT64 = 2 ** 63
LOOPBACK = ('127.0.0.1', 'localhost', '::1')
SETUP_LOCK = '.setup.lock'  # beside the database, held while it is set up
IGNORED = set()  # the versions of files, and paths, said to be ignored


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 < args.port < 2 ** 16:
        parser.error('--port must be from 1 to 65535 (got {})'.format(
            args.port))
    if os.path.exists(args.db) and not os.path.isdir(args.db):
        parser.error('--db {} is not a folder: it names the folder where '
                     'ChainerUI keeps its database (db/chainerui.db in it); '
                     'choose another --db'.format(args.db))
    try:
        cli.check_folder(args.db, '--db')
        for folder in args.dirs:
            cli.check_folder(folder, 'DIR')
    except cli.UsageError as error:
        parser.error(str(error))
    for folder in args.dirs:
        if not os.path.isdir(folder):
            parser.error('{} is not a folder of runs: train one there '
                         'first, e.g. {}'.format(folder, cli.command_line(
                             'train_rnn.py', '-o', cli.path_argument(
                                 os.path.join(folder, 'rnn')))))
        try:
            os.listdir(folder)
        except OSError as error:  # ChainerUI served it as holding no run
            parser.error('cannot read {}: {}'.format(folder, error.strerror))
        if not is_utf8(os.path.abspath(folder)):
            parser.error('{}: its path is not UTF-8, which ChainerUI cannot '
                         'store; rename it'.format(os.path.abspath(folder)))
    database = database_of(args.db)
    try:
        # Before a user installs ChainerUI for it; one to make is made once
        # ChainerUI is there, lest a refusal leave it (hostile pass 15).
        if os.path.lexists(database):
            check_database(database)
    except DatabaseError as error:
        parser.error(str(error))
    try:
        import chainerui  # noqa: F401
        import gevent
        import gevent.pywsgi
    except ImportError as error:
        parser.error('the dashboard needs ChainerUI, which is not installed '
                     '({}): run make ui, or .venv/bin/python -m pip install '
                     '-r requirements-ui.txt'.format(error))
    # While it registers the runs: ChainerUI may catch the KeyboardInterrupt
    # itself, and the dashboard then served, the Ctrl-C forgotten.
    cli.stop_on_signals()
    try:
        # The address first: a port in use or a host unknown was refused
        # with the database already made, the runs registered in it.
        server = gevent.pywsgi.WSGIServer((args.host, args.port), log=None)
        server.init_socket()
        app = open_app(args.db, args.dirs)
        if args.host in LOOPBACK:
            app = only_for_hosts(app, {
                '{}:{}'.format('[::1]' if name == '::1' else name, args.port)
                for name in LOOPBACK})
        server.application = app
        if cli.stop_came():
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        cli.print_or_drop('{}: stopped the dashboard before it served.'
                          .format(quiet_start.NAMES[cli.stopped_by()]),
                          sys.stderr)
        return 0
    except DatabaseError as error:
        parser.error(str(error))
    except socket.gaierror as error:
        # Its errno is the resolver's, no OSError's: os.strerror(-2) is
        # 'Unknown error -2'. args[1], the resolver's text, without the
        # address that gevent adds to strerror.
        parser.error('cannot resolve --host {}: {} (choose another --host; '
                     'UI_HOST= with make ui)'.format(args.host, error.args[1]))
    except OSError as error:
        parser.error('cannot serve on {}:{}: {} (choose another --port or '
                     '--host; UI_PORT= or UI_HOST= with make ui)'.format(
                         args.host, args.port, os.strerror(error.errno)
                         if error.errno else error))
    stopped_by = []

    def stop(name):
        stopped_by.append(name)
        gevent.spawn(server.stop, timeout=1)

    # In gevent's loop, which a KeyboardInterrupt would leave with a trace.
    for number in quiet_start.STOPPING:
        gevent.signal_handler(number, stop, quiet_start.NAMES[number])
    cli.print_or_drop('ChainerUI on {} over {} (Ctrl-C to stop)'.format(
        url(args.host, args.port), ', '.join(args.dirs)), sys.stdout)
    server.serve_forever()
    cli.print_or_drop('{}: stopped the dashboard.'.format(stopped_by[0]),
                      sys.stderr)
    return 0


def build_parser():
    parser = cli.ArgumentParser(
        prog='dashboard.py', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dirs', nargs='+', metavar='DIR',
                        type=cli.non_empty_path,
                        help='a folder of runs: each folder under it that '
                        'holds a log is one run')
    parser.add_argument('--host', default='127.0.0.1', type=host_name,
                        help='the address to listen on (default: '
                        '%(default)s, this machine alone)')
    parser.add_argument('--port', '-p', type=int, default=5000,
                        help='the port (default: %(default)s)')
    parser.add_argument('--db', default=os.path.join(sys.prefix, 'chainerui'),
                        type=cli.non_empty_path,
                        help='ChainerUI\'s folder, for its database (default: '
                        'chainerui in the environment, %(default)s)')
    return parser


def host_name(text):
    """--host's value: an empty one would listen on every address, which
    is no default to fall into: that takes 0.0.0.0 or ::, said."""
    if not text:
        raise argparse.ArgumentTypeError(
            'an empty host would listen on every address: name one (0.0.0.0 '
            'for all, at your own risk: docs/ui.md)')
    return text


class DatabaseError(Exception):
    """--db cannot hold ChainerUI's database: one line for the user, and
    what to do."""

    def __init__(self, problem, remedy='choose another --db, or move it '
                 'aside'):
        super().__init__('{} ({})'.format(problem, remedy))


def open_app(db_folder, dirs):
    """ChainerUI's Flask app over a database in db_folder, made or brought
    up to date, with each of dirs registered as a project."""
    os.environ['CHAINERUI_ROOT'] = os.path.abspath(db_folder)
    import alembic.util
    from chainerui.database import db
    from chainerui.logging import set_loglevel
    from chainerui.models.project import Project
    from chainerui.server import create_app
    import sqlalchemy.exc

    set_loglevel(logging.WARNING)  # not a line for every request
    guard_crawling()
    guard_commands()
    without_assets()
    database = database_of(db_folder)
    check_database(database)
    lock = os.path.join(os.path.dirname(database), SETUP_LOCK)
    try:
        # Two dashboards that made one database at once raced, one refused
        # as if the database were no ChainerUI's; a stop in a migration,
        # one statement at a time, left one that every later start
        # refused (hostile pass 16).
        with snapshots.writing_alone(lock, lambda: cli.print_or_drop(
                'Waiting for another dashboard to set up {}'.format(
                    cli.one_line(database)), sys.stderr)), \
                quiet_start.SignalsHeld():
            if not db.setup():
                raise DatabaseError('ChainerUI cannot open its database in '
                                    + db_folder)
            db.upgrade()
        for folder in dirs:
            path = os.path.abspath(folder)
            if db.session.query(Project).filter_by(path_name=path).first() \
                    is None:
                Project.create(path, folder)
    except (sqlalchemy.exc.SQLAlchemyError, alembic.util.CommandError) as \
            error:  # a database, but not one of ChainerUI's
        raise DatabaseError('ChainerUI cannot use the database {}: {}'.format(
            database, getattr(error, 'orig', None) or error))
    except OSError as error:  # not the address's problem
        problem = 'cannot set up ChainerUI\'s database {}: {}'.format(
            database, error.strerror if error.filename is None else
            '{}: {}'.format(error.filename, error.strerror))
        if error.filename == lock and os.path.lexists(lock):
            raise DatabaseError(problem, 'remove {}, or choose another '
                                '--db'.format(lock))
        raise DatabaseError(problem)
    db.session.remove()
    return create_app()


def database_of(db_folder):
    """The file of ChainerUI's database in its folder (--db)."""
    return os.path.join(db_folder, 'db', 'chainerui.db')


def check_database(path):
    """DatabaseError, naming path, unless SQLite can open (or make) the
    database there, and write it: ChainerUI would print its error on
    stdout, or raise it in a traceback, or serve pages that all fail."""
    # SQLite: 'unable to open database file', 'disk I/O error'.
    if os.path.lexists(path) and not os.path.isfile(path):
        raise DatabaseError('ChainerUI\'s database {} is {}'.format(
            path, 'a folder' if os.path.isdir(path) else
            'not a regular file'))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with contextlib.closing(sqlite3.connect(path)) as connection:
            version, = connection.execute('PRAGMA user_version').fetchone()
            # A write, undone: a database it may read only was served,
            # every page then failing.
            connection.execute('BEGIN')
            connection.execute('PRAGMA user_version = {:d}'.format(version))
            connection.rollback()
    except OSError as error:
        raise DatabaseError('cannot make ChainerUI\'s database {}: {}: {}'
                            .format(path, error.filename, error.strerror))
    except sqlite3.Error as error:
        folder = os.path.dirname(path)
        # SQLite blames the database where its folder, which takes the
        # database's journal, is the one it may not write.
        # Its primary code: SQLite says SQLITE_READONLY_DIRECTORY.
        if error.sqlite_errorcode & 0xff == sqlite3.SQLITE_READONLY and \
                os.access(path, os.W_OK) and not os.access(folder, os.W_OK):
            error = 'its folder {} may not be written, and SQLite keeps ' \
                'its journal there'.format(folder)
        raise DatabaseError('cannot open ChainerUI\'s database {}: {}'
                            .format(path, error))


def without_assets():
    """Turn off ChainerUI's assets, which our runs do not make: it reads
    whatever path a result folder's .chainerui_assets names, any file the
    server can read, and serves it."""
    view = importlib.import_module('chainerui.views.result_asset')
    view.collect_assets = lambda result, force=False: result


def only_for_hosts(app, hosts):
    """app, answering 403 to a request whose Host header is not one of
    hosts: a web page that renames its own host to 127.0.0.1 (DNS
    rebinding) cannot reach the dashboard through the user's browser."""
    def checked(environ, start_response):
        if environ.get('HTTP_HOST') in hosts:
            return app(environ, start_response)
        start_response('403 Forbidden', [('Content-Type', 'text/plain')])
        return [b'dashboard: not for this Host\n']
    return checked


def guard_crawling():
    """Make ChainerUI read a run's files through checks of ours.

    ChainerUI lists every run of a project in one request, and a `log`,
    `commands` or `.chainerui_conf` of an unexpected shape, or a file named
    like a snapshot that is not one, raised there: one crafted folder
    emptied the page of every run. Here such a file reads as empty, with
    one line on stderr; so does a snapshot's name with an iteration that
    SQLite's INTEGER (signed, 64 bits) cannot hold, and a run whose path is
    not UTF-8 (SQLite's text) is left out.
    """
    collect_module = importlib.import_module(
        'chainerui.tasks.collect_results')
    list_result_paths = collect_module._list_result_paths
    collect_module._list_result_paths = lambda target_path: [
        path for path in list_result_paths(target_path) if is_utf8(path) or
        ignore(path, '{}: its path is not UTF-8, which ChainerUI cannot '
               'store'.format(path))]
    # The module: chainerui.tasks.crawl_result names its function.
    crawl_module = importlib.import_module('chainerui.tasks.crawl_result')

    def crawl_result_path(result_path, include_log):
        if not os.path.isdir(result_path):
            return {'logs': [], 'args': [], 'commands': [], 'snapshots': []}
        return {
            'logs': read_json(result_path, 'log', is_log)
            if include_log else [],
            'args': read_json(result_path, 'args', is_object),
            'commands': read_json(result_path, 'commands', is_commands),
            'snapshots': sorted(snapshot_names(result_path))}

    def update_to_default_name(result):
        conf = read_json(result.path_name, '.chainerui_conf', is_object)
        if conf and isinstance(conf.get('default_result_name'), str):
            result.name = conf['default_result_name']

    crawl_module.crawl_result_path = crawl_result_path
    crawl_module._update_to_default_name = update_to_default_name


def guard_commands():
    """Make ChainerUI read what a command to a run needs through checks of
    ours.

    Before it takes a command, ChainerUI reads the run's
    `.chainerui_commands` and `commands`; one of an unexpected shape raised
    there: HTTP 500, and nothing said. Here such a `.chainerui_commands`
    answers 400 (ChainerUI's 'Cannot get the target training job status')
    and such a `commands` reads as empty, each with one line on stderr.
    """
    from chainerui.utils.command_item import CommandItem
    from chainerui.utils.commands_state import CommandsState, JobStatus

    def job_status(out_path):
        name = CommandsState._default_filename
        if not os.path.lexists(os.path.join(out_path, name)):
            return JobStatus.NO_EXTENSION_ERROR
        state = read_json(out_path, name, lambda value: is_object(value) and
                          str(value.get('job_status')).upper() in
                          JobStatus.__members__)
        return JobStatus[state['job_status'].upper()] if state else None

    def load_commands(result_path, file_name=CommandItem.DEFAULT_FILE_NAME):
        return [CommandItem(**command) for command in
                read_json(result_path, file_name, is_commands)]

    CommandsState.job_status = job_status
    CommandItem.load_commands = load_commands


def url(host, port):
    """The page's address: an IPv6 host goes in brackets."""
    return 'http://{}:{}/'.format('[{}]'.format(host) if ':' in host else
                                  host, port)


def snapshot_names(folder):
    """The names of the snapshots in folder whose iteration ChainerUI can
    store; one line on stderr for each other."""
    for name in os.listdir(folder):
        if snapshots.snapshot_iteration(name) is not None:
            yield name
        elif snapshots.SNAPSHOT_NAME.fullmatch(name):
            path = os.path.join(folder, name)
            ignore(path, '{}: not a snapshot: ChainerUI cannot store an '
                   'iteration past 2**63 - 1'.format(path))


def read_json(folder, name, fits):
    """The JSON value of folder/name if fits(value); else [], with one line
    on stderr for each version of a file that is there but does not fit."""
    path = os.path.join(folder, name)
    try:
        status = os.lstat(path)
    except OSError:
        return []
    try:
        # Through a link the page would show, and a run's commands
        # replace, a file elsewhere.
        with snapshots.open_regular_file(path, follow=False) as f:
            value = snapshots.parse_json(
                f.read().decode('utf-8', 'replace'), path)
        # JSON's \u escapes spell lone surrogates too, which ChainerUI
        # fails to store as text (a log's names, a command's, the run's).
        if not is_utf8(json.dumps(value, ensure_ascii=False)):
            problem = '{}: a \\u escape in it is no character (a lone ' \
                'surrogate), which ChainerUI cannot store'.format(path)
        elif fits(value):
            return value
        else:
            problem = '{}: not what ChainerUI reads there'.format(path)
    except snapshots.FileError as error:
        problem = str(error)
    ignore((path, status.st_ino, status.st_size, status.st_mtime_ns),
           problem)
    return []


def ignore(version, problem):
    """One line on stderr, `dashboard: ignored ` and problem, the first
    time version (what identifies the file) comes: once, not at every
    crawl."""
    if version not in IGNORED:
        IGNORED.add(version)
        cli.print_or_drop('dashboard: ignored {}'.format(
            cli.one_line(problem)), sys.stderr)


def is_utf8(text):
    """Whether text encodes in UTF-8: one with lone surrogates (os.fsdecode
    keeps a path's bytes that are not UTF-8 as such) does not."""
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        return False
    return True


def is_log(value):
    """A list of entries, each of names to numbers, as LogReport writes."""
    return isinstance(value, list) and all(
        isinstance(entry, dict) and all(
            is_number(item) for item in entry.values())
        for entry in value)


def is_number(value):
    """A number as LogReport writes it: ChainerUI shows NaN and infinities
    (JSON's NaN and 1e999) as nothing, without a word."""
    return isinstance(value, float) and math.isfinite(value) or \
        isinstance(value, int) and -INT64 <= value < INT64


def is_object(value):
    return isinstance(value, dict)


def is_commands(value):
    """A list of commands as ChainerUI's server writes them."""
    return isinstance(value, list) and all(
        isinstance(command, dict) and set(command) <= COMMAND_KEYS and
        isinstance(command.get('name'), str) and all(
            isinstance(command.get(key), (dict, type(None)))
            for key in ('request', 'response'))
        for command in value)


if __name__ == '__main__':
    sys.exit(cli.exit_status(main()))
