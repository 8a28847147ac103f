"""The commands of ChainerUI's page, answered by every run of train_rnn.py.

The page's server appends each command to the run's `commands` file, a JSON
list of {name, request, response}, and shows the response the run writes
there. ChainerUI's own CommandsExtension answers take_snapshot with
Chainer's pickle snapshot and stop by swapping the stop trigger; this one
answers as the run does on SIGTERM: stop ends the run at the end of the
current update with our snapshot, take_snapshot writes our snapshot, and
adjust_hyperparams is refused, since a snapshot would not hold the change
and a resumed run would not be exact. A file it cannot read is ignored,
with one line.
"""
import datetime
import json
import os
import sys
import time

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer

import cli
import snapshots

COMMANDS = 'commands'
# Where ChainerUI's server looks to see whether a run would answer.
STATE = '.chainerui_commands'
# ChainerUI's names for a run's arguments.
ARGS = 'args'
POLL_SECONDS = 1.0
MAX_COMMANDS_BYTES = 2 ** 20
SUCCESS, FAILURE = 'SUCCESS', 'FAILURE'


class DashboardCommands(chainer.training.Extension):
    """Polls OUT/commands at most once a second and answers what is new.

    folder: the run's out_folder.OutFolder. run_args: what snapshots
    record. comm: a ChainerMN communicator, whose ranks a take_snapshot
    from rank 0 alone cannot gather: refused there (stop works).
    """

    trigger = 1, 'iteration'
    # After every other extension, the Snapshot's too, so that a snapshot
    # it takes holds the whole update, as the one after a stop does.
    priority = -200

    def __init__(self, folder, run_args, comm=None):
        self.folder = folder
        self.run_args = run_args
        self.comm = comm
        self.path = os.path.join(folder.path, COMMANDS)
        self._next_poll = 0.0
        self._seen = None  # the commands file's stat when last read
        self._scheduled = []  # (key, value) of the commands yet to come
        self._before = set()  # the commands there as the run started

    def initialize(self, trainer):
        # The commands there now were sent to an earlier run: by their
        # text, as the server and the run may not share a clock or a zone.
        commands = self.read()
        if commands is not None:
            self._before = {to_json(command) for command in commands}
            self._seen = None  # the first poll refuses them
        self.folder.write(ARGS, to_json(self.run_args))
        self.folder.write(STATE, to_json({'job_status': 'running'}))

    def finalize(self):
        try:
            self.folder.write(STATE, to_json({'job_status': 'stopped'}))
        except OSError:
            pass  # the error that ended the run, if any, is reported

    def __call__(self, trainer):
        now = time.monotonic()
        if now >= self._next_poll or any(
                getattr(trainer.updater, key) >= value
                for key, value in self._scheduled):
            self._next_poll = now + POLL_SECONDS
            self.poll(trainer)

    def poll(self, trainer):
        """Read the commands file if it changed, and answer what is due."""
        commands = self.read(again=bool(self._scheduled))
        if commands is not None:
            self.answer(trainer, commands)

    def read(self, again=False):
        """The commands file's list, if it changed since the last read (or
        again); else None, as where it is missing or cannot be read, which
        is said in one line."""
        try:
            status = os.lstat(self.path)
        except OSError:
            return None
        seen = status.st_ino, status.st_size, status.st_mtime_ns
        if seen == self._seen and not again:
            return None
        self._seen = seen
        try:
            return read_commands(self.path)
        except snapshots.FileError as error:
            cli.print_or_drop('dashboard: ignored {}'.format(
                cli.one_line(str(error))), sys.stderr)
            return None

    def answer(self, trainer, commands):
        """Run the commands that are due and write their responses."""
        self._scheduled = []
        answered = False
        for command in commands:
            if command.get('response') is not None:
                continue
            request = command.get('request')
            if to_json(command) in self._before:
                status, body = FAILURE, 'sent before this run started'
            elif not is_request(request):
                status, body = FAILURE, 'not a request as ChainerUI sends ' \
                    'it: ignored'
            else:
                due = self.due(trainer, request.get('schedule'))
                if due is None:
                    continue
                status, body = due or self.run(trainer, command['name'],
                                               request.get('body'))
            # The name is whatever the file holds: one line, as any.
            cli.print_or_drop('dashboard: {} at iteration {}: {}'.format(
                cli.one_line(command['name']) if isinstance(
                    command['name'], str) else 'a command',
                trainer.updater.iteration, body), sys.stderr)
            command['response'] = {
                'executed_at': datetime.datetime.now().isoformat(),
                'epoch': trainer.updater.epoch,
                'iteration': trainer.updater.iteration,
                'elapsed_time': trainer.elapsed_time,
                'status': status, 'body': {'message': body}}
            answered = True
        if not answered:
            return
        try:
            text = commands_json(commands, self.path)
        except snapshots.FileError as error:  # the responses made it so
            cli.print_or_drop('dashboard: wrote no responses: {}'.format(
                cli.one_line(str(error))), sys.stderr)
            return
        self.folder.replace_shared(COMMANDS, text)

    def due(self, trainer, schedule):
        """False if a command with this schedule is due now, None if it is
        to come, (FAILURE, why) if it cannot be."""
        if schedule is None:
            return False
        key, value = (schedule.get('key'), schedule.get('value')) \
            if isinstance(schedule, dict) else (None, None)
        # JSON's true reads as True, an int that equals 1.
        if key not in ('epoch', 'iteration') or not isinstance(value, int) \
                or isinstance(value, bool):
            return FAILURE, 'a schedule that is not an epoch or iteration'
        now = getattr(trainer.updater, key)
        if now < value:
            self._scheduled.append((key, value))
            return None
        if now > value:
            return FAILURE, '{} {} had passed when it came'.format(key, value)
        return False

    def run(self, trainer, name, body):
        """(status, message) of one command."""
        if name == 'stop':
            trainer.stop_trigger.request()
            status, message = SUCCESS, 'stopping after this update to ' \
                'write a snapshot'
        elif name == 'take_snapshot' and self.comm is not None:
            status, message = FAILURE, 'take_snapshot needs every MPI ' \
                'rank: stop, then resume with -r'
        elif name == 'take_snapshot':
            snapshots.save_snapshot(trainer, self.run_args, self.folder.write)
            status, message = SUCCESS, 'wrote {}'.format(
                snapshots.snapshot_name(trainer.updater.iteration))
        elif name == 'adjust_hyperparams':
            status, message = FAILURE, 'refused: a snapshot would not hold ' \
                'the change, so a resumed run would not be exact; stop, and ' \
                'start a run with other arguments'
        else:
            status, message = FAILURE, 'unknown command {!r}: ' \
                'ignored'.format(name)
        return status, message


def is_request(request):
    """Whether request is one as ChainerUI's server writes it: an object
    stamped with the date and time it was sent."""
    if not isinstance(request, dict) or \
            not isinstance(request.get('created_at'), str):
        return False
    try:
        datetime.datetime.fromisoformat(request['created_at'])
    except ValueError:
        return False
    return True


def read_commands(path):
    """The list of commands in path; FileError unless it is one."""
    # The run replaces the file with its responses: through a link it would
    # read what the link names, and replace the link.
    with snapshots.open_regular_file(path, follow=False) as f:
        data = f.read(MAX_COMMANDS_BYTES + 1)
    if len(data) > MAX_COMMANDS_BYTES:
        raise snapshots.FileError('{} is larger than {} bytes'.format(
            path, MAX_COMMANDS_BYTES))
    commands = snapshots.parse_json(data.decode('utf-8', 'replace'), path)
    if not (isinstance(commands, list) and all(
            isinstance(command, dict) and 'name' in command
            for command in commands)):
        raise snapshots.FileError('{}: not a list of ChainerUI commands'
                                  .format(path))
    commands_json(commands, path)
    return commands


def commands_json(commands, path):
    """The text of the commands file at path that holds commands, as the
    run writes it; FileError past MAX_COMMANDS_BYTES. Checked as the file
    is read, too: a small file nested deep grows past it, indented."""
    text = to_json(commands)
    if len(text.encode()) > MAX_COMMANDS_BYTES:
        raise snapshots.FileError('{} would be larger than {} bytes as the '
                                  'run writes it'.format(path,
                                                         MAX_COMMANDS_BYTES))
    return text


def to_json(value):
    return json.dumps(value, indent=4, sort_keys=True)
