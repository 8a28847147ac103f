"""The capacity study's runs as ChainerUI runs: one folder each, by cell.

Reads a sweep's records (OUT/capacity.jsonl, one JSON object a line) and
writes, for each run, OUTDIR/ARCH_vocabN_bproplenL/seedS/log (its
evaluation history: iteration = updates, tokens, epoch = periods of the
sequence read, and every metric) and args (what defines the run and the
record's other plain fields), and removes the seed folders of an earlier
export that the records no longer hold: those its list, OUTDIR/.study_export,
names, and no other. Then `make ui UI_DIRS=OUTDIR/CELL`
compares a cell's seeds. The sweep is not touched: it may go on writing
its records, and a line it is still writing is left for the next export.
"""
import quiet_start

if __name__ == '__main__':  # before Chainer loads
    quiet_start.install()

import setup_check  # noqa: F401  (says so where Chainer is missing)
import argparse
import contextlib
import fcntl
import json
import os
import re
import shlex
import stat
import sys

import cli
from cli import UsageError
import simple_sequence
import snapshots
from study.records import ARCH_NAMES, read_records


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        runs = read_records(args.records)
        cli.check_folder(args.outdir, 'OUTDIR')
        try:
            os.makedirs(args.outdir, exist_ok=True)
        except OSError as error:  # before any work: a refusal
            raise UsageError('cannot write to {}: {}'.format(
                error.filename or args.outdir, error.strerror))
        with exporting(args.outdir) as earlier:
            snapshots.remove_leftovers(args.outdir, [EXPORT_LIST])
            folders = {run_folder(args.outdir, record) for record in runs}
            stale = {folder for folder in earlier - folders
                     if os.path.lexists(folder)}
            check_paths(folders | stale)
            # Listed first: an export stopped half done leaves the next one
            # every folder to remove that it wrote.
            write_list(args.outdir, folders | stale)
            remove(earlier - folders)
            for record in runs:
                write_run(args.outdir, record)
            write_list(args.outdir, folders)
    except UsageError as error:
        parser.error(str(error))
    except OSError as error:
        return cli.writing_failed(parser.prog, args.outdir, error)
    cells = sorted({cell_name(record) for record in runs})
    cell = cli.path_argument(os.path.join(args.outdir, cells[0]))
    # make splits UI_DIRS at spaces: a path that needs quoting goes to
    # dashboard.py itself (hostile pass 15).
    look = 'make ui UI_DIRS={}'.format(cell) if shlex.quote(cell) == cell \
        else '{} (once make ui-setup has run)'.format(
            cli.command_line('dashboard.py', cell))
    cli.print_or_drop('Wrote {} runs in {} cells under {}; look at a cell '
                      'with: {}'.format(len(runs), len(cells), args.outdir,
                                        look), sys.stdout)
    return 0


def build_parser():
    parser = cli.ArgumentParser(
        prog='python -m study.dashboard', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('records', type=cli.non_empty_path,
                        help='a sweep\'s capacity.jsonl')
    parser.add_argument('outdir', type=cli.non_empty_path,
                        help='the folder to write the runs in')
    return parser


def cell_name(record):
    return '{arch}_vocab{vocab}_bproplen{bproplen}'.format(**record)


EXPORTED = ('log', 'args')  # all that write_run writes in a run's folder


def run_folder(outdir, record):
    return os.path.join(outdir, cell_name(record),
                        'seed{}'.format(record['seed']))


EXPORT_LIST = '.study_export'  # the run folders the last export wrote
# The most the list is read of: some two million runs' folders (1 MiB, 30,000
# runs, made the list of a large export unreadable), and no crafted file
# fills the memory.
LIST_BYTES = 1 << 26
# Apart from the list, which is replaced by a rename: a lock on it would
# hold the file that the rename takes away.
EXPORT_LOCK = EXPORT_LIST + '.lock'
# Every name cell_name and run_folder give a record that read_records takes.
LISTED = re.compile('({})_vocab[0-9]+_bproplen[0-9]+/seed[0-9]+'.format(
    '|'.join(ARCH_NAMES)))


@contextlib.contextmanager
def exporting(outdir):
    """While in it, this export alone writes in outdir (two at once would
    each say they wrote theirs); it gives the run folders that the last
    export listed. A refusal (UsageError) in it leaves outdir as it was."""
    path = os.path.join(outdir, EXPORT_LOCK)
    flags = os.O_RDWR | os.O_NOFOLLOW
    try:
        try:
            descriptor = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
            created = True
        except FileExistsError:
            descriptor = os.open(path, flags)
            created = False
    except OSError as error:
        raise UsageError(cli.open_problem(
            error, 'a lock through it would lock nothing here; remove it'))
    # Never a user's file under another name (a hard link), or a FIFO,
    # which a file object refuses as not seekable.
    held = os.fstat(descriptor)
    if not stat.S_ISREG(held.st_mode) or held.st_nlink != 1:
        os.close(descriptor)
        raise UsageError('{} is not a regular file of one link: remove it'
                         .format(path))
    with os.fdopen(descriptor, 'r+b') as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # A refused export removes the lock it created: an export that
            # had opened it by then holds a file that locks nothing.
            if not os.path.samestat(os.lstat(path), held):
                raise FileNotFoundError
        except OSError:
            raise UsageError('another export is writing {}: wait for it, or '
                             'choose another OUTDIR'.format(outdir))
        try:
            yield read_list(outdir)
        except UsageError:
            if created:
                os.remove(path)
            raise


def read_list(outdir):
    """The run folders that the last export into outdir listed."""
    path = os.path.join(outdir, EXPORT_LIST)
    if not os.path.lexists(path):
        return set()
    try:
        with snapshots.open_regular_file(path, follow=False) as f:
            text = f.read(LIST_BYTES + 1).decode('utf-8', 'replace')
    except snapshots.FileError as error:
        raise UsageError(str(error))
    try:
        # Empty, as an older export left it when it refused.
        listed = snapshots.parse_json(text, path) if text else []
    except snapshots.FileError:
        listed = None
    if not (isinstance(listed, list) and all(
            isinstance(name, str) and LISTED.fullmatch(name)
            for name in listed)):
        raise UsageError('{} is damaged: it lists the run folders of the '
                         'last export; remove it, and those by hand'
                         .format(path))
    return {os.path.join(outdir, name) for name in listed}


def write_list(outdir, folders):
    """List folders as the ones this export wrote, for the next one."""
    with snapshots.atomic_file(os.path.join(outdir, EXPORT_LIST), 'w') as f:
        json.dump(sorted(os.path.relpath(folder, outdir)
                         for folder in folders), f, indent=1)


def check_paths(folders):
    """UsageError where a seed folder to write or remove, or its cell's
    folder, is a link, no folder, or holds what the export never writes (a
    training run's): before anything changes, as the export would fail
    half done, or write where it must not."""
    for folder in sorted(folders):
        for path in (os.path.dirname(folder), folder):
            if os.path.islink(path):
                raise UsageError('{} is a symbolic link: the export writes '
                                 'through none'.format(path))
            if os.path.lexists(path) and not os.path.isdir(path):
                raise UsageError('{} is not a folder: choose another OUTDIR'
                                 .format(path))
        names = os.listdir(folder) if os.path.lexists(folder) else ()
        for name in sorted(names):
            if not (name in EXPORTED or snapshots.leftover_of(name, EXPORTED)):
                raise UsageError('{} holds more than the log and args of an '
                                 'export: choose another OUTDIR'
                                 .format(folder))
            path = os.path.join(folder, name)
            if os.path.islink(path):
                raise UsageError('{} is a symbolic link: the export writes '
                                 'through none'.format(path))
            if not stat.S_ISREG(os.lstat(path).st_mode):
                raise UsageError('{} is not a file, which the export writes '
                                 'there: move it aside, or choose another '
                                 'OUTDIR'.format(path))


def remove(unwanted):
    """Remove the seed folders that an earlier export wrote and the records
    no longer hold, lest the page show runs of old beside the new, and
    their cells' folders left empty (by this export, or by one stopped in
    between)."""
    for folder in sorted(unwanted):
        if os.path.lexists(folder):
            for name in os.listdir(folder):
                os.remove(os.path.join(folder, name))
            os.rmdir(folder)
    for cell in sorted({os.path.dirname(folder) for folder in unwanted}):
        if os.path.lexists(cell) and stat.S_ISDIR(os.lstat(cell).st_mode) \
                and not os.listdir(cell):
            os.rmdir(cell)


def write_run(outdir, record):
    """Write the run's log and args in OUTDIR/CELL/seedS."""
    folder = run_folder(outdir, record)
    os.makedirs(folder, exist_ok=True)
    snapshots.remove_leftovers(folder, EXPORTED)
    for name, value in zip(EXPORTED, (log_of(record), args_of(record))):
        with snapshots.atomic_file(os.path.join(folder, name), 'w') as f:
            json.dump(value, f, indent=1, sort_keys=True)


def log_of(record):
    """The history as LogReport's entries: numbers by name."""
    period = simple_sequence.period_length(record['vocab'])
    return [dict({key: float(value) if isinstance(value, bool) else value
                  for key, value in entry.items() if is_number(value)},
                 iteration=entry['updates'], epoch=entry['tokens'] / period)
            for entry in record['history']]


def args_of(record):
    """What defines the run, then the record's other plain fields."""
    plain = {key: value for key, value in record.items()
             if is_number(value) or isinstance(value, str) or value is None}
    settings = record.get('settings')
    if isinstance(settings, dict):
        plain.update((key, value) for key, value in settings.items()
                     if key not in plain and (is_number(value) or
                                              isinstance(value, str)))
    return plain


def is_number(value):
    return isinstance(value, (int, float))


if __name__ == '__main__':
    sys.exit(cli.run_script(main))
