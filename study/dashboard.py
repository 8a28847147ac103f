"""The capacity study's runs as ChainerUI runs: one folder each, by cell.

Reads a sweep's records (OUT/capacity.jsonl, one JSON object a line) and
writes, for each run, OUTDIR/ARCH_vocabN_bproplenL/seedS/log (its
evaluation history: iteration = updates, tokens, epoch = periods of the
sequence read, and every metric) and args (what defines the run and the
record's other plain fields), and removes the seed folders of an earlier
export that the records no longer hold. Then `make ui UI_DIRS=OUTDIR/CELL`
compares a cell's seeds. The sweep is not touched: it may go on writing
its records, and a line it is still writing is left for the next export.
"""
import quiet_start

if __name__ == '__main__':  # before Chainer loads
    quiet_start.install()

import argparse
import glob
import json
import os
import sys

import cli
from cli import UsageError
import simple_sequence
import snapshots
from study.records import read_records


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        runs = read_records(args.records)
        remove_stale(args.outdir, {run_folder(args.outdir, record)
                                   for record in runs})
        for record in runs:
            write_run(args.outdir, record)
    except UsageError as error:
        parser.error(str(error))
    except OSError as error:
        return cli.writing_failed(parser.prog, args.outdir, error)
    cells = sorted({cell_name(record) for record in runs})
    cli.print_or_drop('Wrote {} runs in {} cells under {}; look at a cell '
                      'with: make ui UI_DIRS={}'.format(
                          len(runs), len(cells), args.outdir,
                          os.path.join(args.outdir, cells[0])), sys.stdout)
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


def remove_stale(outdir, folders):
    """Remove the seed folders of an earlier export that are not folders
    (what the records hold), lest the page show runs of old beside them;
    UsageError, before anything changes, where a folder to write or remove
    is a link or holds what the export never writes (a training run's)."""
    found = set(glob.glob(os.path.join(glob.escape(outdir), '*', 'seed*')))
    for folder in sorted(folders | found):
        for path in (os.path.dirname(folder), folder):
            if os.path.islink(path):
                raise UsageError('{} is a symbolic link: the export writes '
                                 'through none'.format(path))
        if os.path.lexists(folder) and not (
                os.path.isdir(folder) and
                set(os.listdir(folder)) <= set(EXPORTED)):
            raise UsageError('{} holds more than the log and args of an '
                             'export: choose another OUTDIR'.format(folder))
    for folder in sorted(found - folders):
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)
        if not os.listdir(os.path.dirname(folder)):
            os.rmdir(os.path.dirname(folder))


def write_run(outdir, record):
    """Write the run's log and args in OUTDIR/CELL/seedS."""
    folder = run_folder(outdir, record)
    os.makedirs(folder, exist_ok=True)
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
