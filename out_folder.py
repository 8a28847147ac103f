"""The out folder of train_rnn.py: one run at a time, and nothing lost.

A run claims its folder with a lock that it holds while it lives, so that a
second run into the same folder is refused whatever the timing. Every file
it writes appears complete or not at all: it is written under a temporary
name in the folder's private .train_rnn/, then renamed into place. And its
name is added to .train_rnn/record.json before the file is written, so a
later run knows exactly what this program wrote there. A fresh run replaces
only the previous run's log, plots, graph, arguments and snapshots, as the
record names them; it never removes a model (each architecture keeps its
own, side by side), nor any file the record does not name.

    out/
        .train_rnn/lock          held (flock) by the run using the folder
        .train_rnn/record.json   {"run": {"args": ..., "files": [...],
                                  "finished": ...}, "models": [...]}
        .train_rnn/NAME.tmp      NAME while it is written
        args.json, args, .chainerui_commands, log, loss.png, accuracy.png,
        cg.dot, cg.png,
        snapshot_iter_N          the current run's files
        ARCH_simple_sequence.model, ...   every finished run's model
"""
import contextlib
import fcntl
import json
import os
import stat

import cli
from models import ARCHITECTURES
import snapshots

PRIVATE = '.train_rnn'
LOCK = 'lock'
RECORD = 'record.json'
# The names, besides snapshots, that a run writes.
RUN_FILES = ('args.json', 'log', 'loss.png', 'accuracy.png', 'cg.dot',
             'cg.png', 'args', '.chainerui_commands')
# ChainerUI's page writes it too: the run replaces it, but it is not the
# run's (a run never removes it).
SHARED_FILES = ('commands',)
MODEL_SUFFIX = '_simple_sequence.model'
TEMPORARY_SUFFIX = '.tmp'
# A record names each file of its run; this holds hundreds of thousands of
# snapshots' names, and bounds what a crafted one makes us read.
MAX_RECORD = 2 ** 24


class FolderError(Exception):
    """The out folder cannot be used as asked: one line for the user."""


class OutFolder:
    """A run's out folder, claimed for this process (see the module doc)."""

    def __init__(self, path):
        self.path = path
        self.private = os.path.join(path, PRIVATE)
        self.record = None
        self.keep_snapshots = 0  # all; start_run sets the run's
        self._lock = None
        self._created = []  # the folders this process made, outermost first

    def claim(self):
        """Make the folder if need be and lock it; FolderError if in use."""
        if os.path.basename(os.path.normpath(self.path)) == PRIVATE:
            raise FolderError('--out cannot be a {} folder, which holds a '
                              'run\'s lock and record'.format(PRIVATE))
        lock = os.path.join(self.private, LOCK)
        try:
            self._make_folders()
            descriptor = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW,
                                 0o666)
        except OSError as error:
            self.abandon()
            if error.filename == lock:
                raise FolderError(
                    'cannot lock the out folder {}: {} (move it aside: a run '
                    'makes its own)'.format(self.path, cli.open_problem(
                        error, 'a lock through it would lock nothing here')))
            problem = error.strerror or error
            if error.filename not in (None, self.path):  # a folder in it
                problem = '{}: {}'.format(error.filename, problem)
            raise FolderError('cannot write to the out folder {}: {}'.format(
                self.path, problem))
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            raise FolderError(
                '{} is in use by another run of train_rnn.py: wait for it '
                'to end, or choose another --out'.format(self.path))
        self._lock = descriptor
        try:
            self.record = self._read_record()
            self._remove_temporaries()
        except BaseException:
            self.abandon()
            raise

    def release(self):
        """Give up the lock (the process ending does too)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def abandon(self):
        """Undo a claim whose run never started: remove only what this
        process created (its folders with its lock and record, if nothing
        else went in), unlock."""
        for folder in reversed(self._created):
            try:
                # start_run writes the record before a write that may fail
                # (a full disk); a record that names a file already here
                # (args.json, written before a Ctrl-C) stays, or the next
                # run would take that file for another program's.
                if folder == self.private and not (
                        self.record and self.existing(self.recorded())):
                    for name in (LOCK, RECORD):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(os.path.join(folder, name))
                os.rmdir(folder)
            except OSError:
                break  # something else is in it now: leave it
        self._created = []
        self.release()

    def _make_folders(self):
        """Make the out folder and its private folder, remembering which
        this process made; FolderError where a path is not a folder."""
        missing = []
        # As given, not its abspath: that reads 'link/..' as nothing, the
        # system through the link (hostile pass 13).
        folder = self.private
        while folder and not os.path.lexists(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
                self._created.append(folder)
            except FileExistsError:  # another process made it just now
                pass
        for folder in (self.path, self.private):
            mode = os.lstat(folder).st_mode
            # The private folder must be ours, not a link to elsewhere.
            if not (stat.S_ISDIR(mode) or folder != self.private and
                    stat.S_ISDIR(os.stat(folder).st_mode)):
                raise FolderError('{} is not a folder{}'.format(
                    folder, ' (a link, or a file)' if folder.endswith(
                        PRIVATE) else ''))

    def _read_record(self):
        path = os.path.join(self.private, RECORD)
        if not os.path.exists(path):
            return {'run': None, 'models': []}
        # Through a link, the record saved next would replace the link.
        with snapshots.open_regular_file(path, follow=False) as f:
            text = f.read(MAX_RECORD + 1)
        try:
            record = snapshots.parse_json(text.decode('utf-8', 'replace'),
                                          path)
        except snapshots.FileError:
            record = None
        run = record.get('run') if isinstance(record, dict) else None
        if not (len(text) <= MAX_RECORD and isinstance(record, dict) and
                _names(record.get('models'), _is_model) and
                (run is None or isinstance(run, dict) and
                 _names(run.get('files'), _is_run_file) and
                 isinstance(run.get('finished'), bool) and
                 _is_run_args(run.get('args')))):
            raise FolderError('{} is damaged: move the out folder {} aside '
                              'or choose another --out'.format(path,
                                                               self.path))
        return record

    def _remove_temporaries(self):
        """Remove what writes cut short by a kill left in the private folder:
        the temporary of a file the record names (it names each before it
        is written), of a shared file or of the record itself, by its exact
        name."""
        for name in self.recorded() | {RECORD} | set(SHARED_FILES):
            path = self._temporary(name)
            if os.path.lexists(path) and stat.S_ISREG(os.lstat(path).st_mode):
                os.unlink(path)

    def _temporary(self, name):
        """The temporary under which the file name is written: one name,
        since one run at a time writes in the folder."""
        return os.path.join(self.private, name + TEMPORARY_SUFFIX)

    def _save_record(self):
        with snapshots.atomic_file(os.path.join(self.private, RECORD), 'w',
                                   self._temporary(RECORD)) as f:
            json.dump(self.record, f, indent=1, sort_keys=True)

    # What the folder holds.

    def existing(self, names):
        return [name for name in names
                if os.path.lexists(os.path.join(self.path, name))]

    def recorded(self):
        """The names the record says this program wrote here."""
        run = self.record['run']
        return set(self.record['models']) | set(run['files'] if run else ())

    def foreign(self, names):
        """Those of names that exist here but that this program did not
        write, as far as the record knows."""
        return [name for name in self.existing(names)
                if name not in self.recorded()]

    def unfinished_snapshots(self):
        """The snapshots of the recorded run, if it did not finish."""
        run = self.record['run']
        if run is None or run['finished']:
            return []
        return self.existing(name for name in run['files']
                             if snapshots.snapshot_iteration(name) is not None)

    # Starting, writing and finishing a run.

    def start_run(self, run_args, model_name, continuing, overwrite):
        """Make the folder ready for a run of run_args; what it replaced.

        continuing: the run resumes a snapshot of this folder's own run,
        which keeps its files. Otherwise the previous run's files are
        removed (refused if that run did not finish and left a snapshot to
        resume from, unless overwrite). Returns a sentence saying what was
        replaced, or None.
        """
        here = os.listdir(self.path)
        names = list(RUN_FILES) + [model_name] + [
            name for name in here
            if snapshots.snapshot_iteration(name) is not None]
        self._refuse_what_is_in_the_way(names, model_name)
        foreign = self.foreign(names)
        if foreign:
            raise FolderError(
                '{} holds {} that train_rnn.py did not write there: another '
                'program\'s, such as the tutorial\'s, an older version\'s, '
                'or yours; choose another --out for this run, or move {} '
                'aside'.format(self.path, _some(sorted(foreign)),
                               'it' if len(foreign) == 1 else 'them'))
        previous = self.record['run']
        replaced = None
        if continuing:
            files = previous['files'] if previous else []
        else:
            files = []
            if previous is not None:
                replaced = self._replace(previous, run_args, overwrite)
        self.record['run'] = {'args': run_args, 'files': files,
                              'finished': False}
        self.keep_snapshots = run_args['keep_snapshots']
        self._save_record()
        return replaced

    def refuse_going_back(self, snapshot, iteration, epoch):
        """FolderError where the folder's run went past its snapshot at
        iteration (epoch, a fraction), which a run would resume here: its
        later snapshots, or the model of its later end with its log and
        plots, would stay beside the resumed run's, two runs in one
        folder."""
        later = [snapshots.snapshot_name(number) for number in sorted(
            snapshots.snapshot_iterations(os.listdir(self.path)))
            if number > iteration]
        run = self.record['run']
        if later:
            went_on = 'holds {}'.format(_some(later))
        elif run is not None and run['finished'] and \
                run['args']['epoch'] != epoch and \
                self.existing([model_name_of(run['args']['arch'])]):
            went_on = 'finished at epoch {}'.format(run['args']['epoch'])
        else:
            return
        raise FolderError(
            'the run in {} went past {}: it {}; resume {} into a new folder '
            'with -o NEW'.format(self.path, snapshot, went_on, snapshot))

    def _refuse_what_is_in_the_way(self, names, model_name):
        """FolderError for a folder at one of names, where the run writes
        files, or for anything at a temporary the run writes under (the
        claim removed its own): the write would fail mid-run, after the
        previous run's files were removed."""
        for name in self.existing(names):
            path = os.path.join(self.path, name)
            if stat.S_ISDIR(os.lstat(path).st_mode):
                raise FolderError('{} is a folder, where the run writes a '
                                  'file: move it aside, or choose another '
                                  '--out'.format(path))
        for entry in os.listdir(self.private):
            name = entry[:-len(TEMPORARY_SUFFIX)]
            if entry.endswith(TEMPORARY_SUFFIX) and (
                    _is_run_file(name) or
                    name in (model_name, RECORD) + SHARED_FILES):
                raise FolderError(
                    '{} is in the way: the run writes its {} there first; '
                    'move it aside, or choose another --out'.format(
                        os.path.join(self.private, entry), name))

    def _replace(self, previous, run_args, overwrite):
        """Remove the previous run's files; say what that was."""
        arch = previous['args']['arch']
        waiting = self.unfinished_snapshots()
        if waiting and not overwrite:
            raise FolderError(
                '{} holds an unfinished {} run, with {} to resume from: '
                'resume it with -r, pass --overwrite to replace it, or choose '
                'another --out'.format(self.path, arch, waiting[-1]))
        self._remove(previous['files'])
        if previous['finished']:
            kept = self.existing([model_name_of(arch)])
            return ('Replaced the log, plots and snapshots of the finished {} '
                    'run in {}{}.'.format(
                        arch, self.path,
                        '; its model stays until this run writes its own'
                        if arch == run_args['arch'] and kept else
                        ' (its model {} stays)'.format(kept[0]) if kept
                        else ''))
        return 'Replaced the unfinished {} run in {}{}.'.format(
            arch, self.path, ' (--overwrite)' if waiting else
            ', which had no snapshot to resume from')

    def _remove(self, names):
        """Remove the files of names that exist (a folder is not ours)."""
        for name in self.existing(names):
            path = os.path.join(self.path, name)
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                os.unlink(path)
        snapshots.sync_folder(self.path)

    def write(self, name, data):
        """Write bytes (or text) to the file name of the run, atomically."""
        self._add(self.record['run']['files'], name)
        self._write(name, data)

    def write_snapshot(self, name, data):
        """Write a snapshot of the run, then remove its oldest beyond the
        last keep_snapshots (0: none). The new one is whole on disk before
        any goes, so that a crash in between leaves one more, never one
        fewer; the next snapshot removes that one."""
        self.write(name, data)
        if not self.keep_snapshots:
            return
        files = self.record['run']['files']
        others = sorted((snapshots.snapshot_iteration(other), other)
                        for other in files if other != name and
                        snapshots.snapshot_iteration(other) is not None)
        # The one just written is the run's latest, even where a snapshot
        # of more iterations came before a resume from an earlier one.
        old = [other for _, other in others[:max(
            0, len(others) + 1 - self.keep_snapshots)]]
        if not old:
            return
        self._remove(old)
        # Only now out of the record: a file still there but not named in
        # it would count as another program's.
        files[:] = [other for other in files if other not in old]
        self._save_record()

    def replace_shared(self, name, data):
        """Replace one of SHARED_FILES, atomically, leaving it out of the
        record."""
        self._write(name, data)

    def write_model(self, name, data):
        """Write a finished run's model and record that the run finished."""
        self._add(self.record['models'], name)
        self._write(name, data)
        self.record['run']['finished'] = True
        self._save_record()

    def _add(self, names, name):
        if name not in names:
            names.append(name)
            self._save_record()

    def _write(self, name, data):
        with snapshots.atomic_file(os.path.join(self.path, name),
                                   'w' if isinstance(data, str) else 'wb',
                                   self._temporary(name)) as f:
            f.write(data)


def model_name_of(arch):
    """The file name of an architecture's model, as the tutorial named it."""
    return arch + MODEL_SUFFIX


def _some(names, most=4):
    """names for a line of text: the first few of a long list, counted."""
    if len(names) == 1:
        return names[0]
    if len(names) <= most:
        return ', '.join(names[:-1]) + ' and ' + names[-1]
    return '{} files ({} and {} more)'.format(
        len(names), ', '.join(names[:most]), len(names) - most)


def _names(value, allowed):
    """Whether value is a list of names of files that a run writes in its
    folder, each allowed; a record that says otherwise is damaged."""
    return isinstance(value, list) and all(
        isinstance(name, str) and allowed(name) for name in value) and \
        len(set(value)) == len(value)


def _is_run_args(args):
    """Whether args holds what the folder reads of a previous run's
    arguments, as a run records them: a known arch, a whole epoch."""
    if not isinstance(args, dict):
        return False
    arch, epoch = args.get('arch'), args.get('epoch')
    return isinstance(arch, str) and arch in ARCHITECTURES and \
        isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1


def _is_run_file(name):
    return name in RUN_FILES or snapshots.snapshot_iteration(name) is not None


def _is_model(name):
    return name.endswith(MODEL_SUFFIX) and name == os.path.basename(name) \
        and not name.startswith('.')
