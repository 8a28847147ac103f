"""The capacity study's runs as ChainerUI runs: one folder each, by cell.

Reads a sweep's records (OUT/capacity.jsonl, one JSON object a line) and
writes, for each run, OUTDIR/ARCH_vocabN_bproplenL/seedS/log (its
evaluation history: iteration = updates, tokens, epoch = periods of the
sequence read, and every metric) and args (what defines the run and the
record's other plain fields). Then `make ui UI_DIRS=OUTDIR/CELL` compares a
cell's seeds. The sweep is not touched: it may go on writing its records,
and a line it is still writing is left for the next export.
"""
import argparse
import json
import os
import sys

import cli
from cli import UsageError
import simple_sequence
import snapshots
from study.records import ARCH_NAME

DEFINING = {'arch': str, 'vocab': int, 'bproplen': int, 'seed': int}
# The history's counters; every other number in an entry is a metric.
COUNTERS = ('updates', 'tokens')


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        runs = read_records(args.records)
        for record in runs:
            write_run(args.outdir, record)
    except UsageError as error:
        parser.error(str(error))
    except OSError as error:
        parser.error('writing to {} failed: {}'.format(
            args.outdir, error.strerror or error))
    cells = sorted({cell_name(record) for record in runs})
    cli.print_or_drop('Wrote {} runs in {} cells under {}; look at a cell '
                      'with: make ui UI_DIRS={}'.format(
                          len(runs), len(cells), args.outdir,
                          os.path.join(args.outdir, cells[0]) if cells
                          else args.outdir), sys.stdout)
    return 0


def build_parser():
    parser = cli.ArgumentParser(
        prog='python -m study.dashboard', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('records', help='a sweep\'s capacity.jsonl')
    parser.add_argument('outdir', help='the folder to write the runs in')
    return parser


def read_records(path):
    """The distinct runs of a record file, each the last record of its key.

    Only the fields that define a run and the history's counters and
    metrics are read, so that fields added to records do not matter.
    """
    try:
        with snapshots.open_regular_file(path) as f:
            text = f.read().decode('utf-8', 'replace')
    except snapshots.FileError as error:
        raise UsageError(str(error))
    lines = text.split('\n')
    runs = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or number == len(lines):
            continue  # the last line is still being written, if anything
        try:
            record = check_run(json.loads(line))
        except (ValueError, RecursionError) as error:
            raise UsageError('{} line {} is not a record of study.sweep ({})'
                             .format(path, number, error))
        runs[tuple(record[key] for key in DEFINING)] = record
    return list(runs.values())


def check_run(record):
    """record, if it holds what a ChainerUI run is made of; else
    ValueError."""
    if not isinstance(record, dict):
        raise ValueError('not an object')
    for key, kind in DEFINING.items():
        value = record.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or \
                kind is int and value < 0:
            raise ValueError('{} is {!r}'.format(key, value))
    if not ARCH_NAME.fullmatch(record['arch']):
        raise ValueError('arch is {!r}'.format(record['arch']))
    simple_sequence.check_vocabulary(record['vocab'])
    history = record.get('history')
    if not isinstance(history, list) or not all(
            isinstance(entry, dict) and all(
                is_count(entry.get(key)) for key in COUNTERS)
            for entry in history):
        raise ValueError('a history without its updates and tokens')
    return record


def is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and \
        value >= 0


def cell_name(record):
    return '{arch}_vocab{vocab}_bproplen{bproplen}'.format(**record)


def write_run(outdir, record):
    """Write the run's log and args in OUTDIR/CELL/seedS."""
    folder = os.path.join(outdir, cell_name(record),
                          'seed{}'.format(record['seed']))
    os.makedirs(folder, exist_ok=True)
    for name, value in (('log', log_of(record)), ('args', args_of(record))):
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
    sys.exit(main())
