"""capacity.jsonl: the sweep's record of finished runs, one JSON line each.

A sweep holds a lock on the file while it lives, so that a second sweep on
the same file is refused instead of running (and recording) the same runs;
a last line cut short by a kill or a full disk is dropped whatever its last
character, with one line saying so, a last record that lost its newline
gets it back, duplicates left by older, unlocked sweeps are skipped where
they agree and refused where they do not, and anything that is not a
record is refused.
"""
import fcntl
import json
import math
import os
import stat
import sys
import time

from cli import UsageError, one_line, open_problem, print_or_drop
import simple_sequence
import snapshots
from study import ARCHS, VARIANTS, capacity


def run_key(record):
    return record['arch'], record['vocab'], record['bproplen'], record['seed']


RECORDS = 'capacity.jsonl'  # the record file's name in a sweep's folder


class RecordFile:
    """A record file, locked for this sweep (see the module doc)."""

    def __init__(self, path):
        self.path = path
        try:
            # Neither through a link nor into a FIFO, which would block.
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND |
                                 os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
        except OSError as error:
            raise UsageError('{} (choose another --out)'.format(open_problem(
                error, 'the sweep would append to the file it points to, '
                'and cut it short')))
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise UsageError('{} is not a regular file'.format(path))
        os.set_blocking(descriptor, True)
        # Unbuffered: a write that failed (a full disk) must not stay in a
        # buffer for close() to try again.
        self.file = os.fdopen(descriptor, 'a+b', buffering=0)
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.close()
            raise UsageError('{} is in use by another sweep: wait for it to '
                             'end, or choose another --out'.format(path))

    def read(self, settings):
        """The distinct finished runs; a last line cut short by a kill is
        dropped, and a last record that lost its newline gets it back, so
        that the next append starts a line of its own. Refuses records made
        with other settings (they would not compare) and lines that are not
        records."""
        # Buffered, to read by lines; a duplicate keeps the lock.
        try:
            with snapshots.input_file(os.dup(self.file.fileno()),
                                      self.path) as f:
                f.seek(0)
                records, torn, ended = parse(f, self.path)
        except snapshots.FileError as error:  # a failed read: a bad disk
            raise UsageError(str(error))
        if torn is not None:
            # The torn end of an append a kill or a full disk stopped.
            number, start = torn
            self.file.truncate(start)
            say_torn(self.path, number,
                     'was cut short (by a kill or a full disk): dropped')
        elif not ended:
            self.file.write(b'\n')
        check_settings(records, self.path, settings,
                       ': choose another --out, or the same settings')
        return records

    def holds_records(self):
        return os.fstat(self.file.fileno()).st_size > 0

    def close(self):
        """Let another sweep have the file."""
        self.file.close()

    def append(self, record):
        line = (json.dumps(record, sort_keys=True) + '\n').encode()
        while line:  # unbuffered, so perhaps in parts
            line = line[self.file.write(line):]
        os.fsync(self.file.fileno())


# A record takes a few KB (some hundred bytes an evaluation): a line longer
# than any a sweep may write (check_record_size) is none, a crash's
# zero-filled tail say, and is refused before it is read whole.
MAX_LINE = 1 << 24
EVALUATION_BYTES = 320  # the most one evaluation of a history takes
RECORD_BYTES = 4096  # the most the rest of a record takes


def parse(f, path):
    """(records, torn, ended): the distinct records of a record file, read
    from binary file f by lines; (the line's number, its offset) where the
    last line is the torn end of a killed append, else None; and whether
    the file ends with a newline (or is empty). UsageError for a line that
    is not a record."""
    records, seen, start, ended = [], {}, 0, True
    for number, line in enumerate(iter(
            lambda: f.readline(MAX_LINE + 1), b''), 1):
        if len(line) > MAX_LINE:
            raise not_a_record(path, number, 'over {:,} bytes long, more '
                               'than any record'.format(MAX_LINE))
        ended = line.endswith(b'\n')
        if not line.strip():
            start += len(line)
            continue
        try:
            record = snapshots.parse_json(line.decode('utf-8'), 'JSON')
        except snapshots.RepeatedKey as error:  # whole, so not torn
            raise not_a_record(path, number, error)
        except (snapshots.FileError, UnicodeDecodeError) as error:
            # Only the start of a record, last, can be the torn end of one.
            if ended or not line.startswith(b'{'):
                raise not_a_record(path, number, error)
            return records, (number, start), ended
        try:
            check_record(record)
        except ValueError as error:
            raise not_a_record(path, number, error)
        start += len(line)
        key = run_key(record)
        if key not in seen:
            seen[key] = number, record
            records.append(record)
            continue
        # Two sweeps of old, unlocked, ran the same run alike: one record
        # stands for both. Two outcomes of one run leave no way to choose.
        first, earlier = seen[key]
        if outcome(earlier) != outcome(record):
            raise UsageError(
                '{} lines {} and {} are the same run ({} N={} bproplen={} '
                'seed={}) with different outcomes: keep the one you trust'
                .format(path, first, number, *key))
    return records, None, ended


def say_torn(path, number, what):
    """One line on stderr about the torn last line of a record file: a
    record lost that way would otherwise go unnoticed."""
    print_or_drop('{} line {} {}'.format(one_line(path), number, what),
                  sys.stderr)


def outcome(record):
    return record['learned_tokens'], record['tokens']


def read_records(path):
    """The records of a file that a sweep may be writing now, read without
    its lock and changing nothing; UsageError where it holds none, which
    nothing could be made of."""
    try:
        with snapshots.open_regular_file(path) as f:
            records, torn, _ = parse(f, path)
    except snapshots.FileError as error:
        raise UsageError(str(error))
    if not records:
        raise UsageError('{} holds no records yet'.format(path))
    if torn is not None:
        say_torn(path, torn[0], 'is cut short (a sweep writing it now, a '
                 'kill or a full disk): left out')
    check_settings(records, path, records[0]['settings'])
    return records


def check_settings(records, path, settings, hint=''):
    """UsageError unless every record was made with settings: runs made
    with others would not compare."""
    for record in records:
        if record['settings'] != settings:
            raise UsageError('{} holds runs made with other settings ({}){}'
                             .format(path, record['settings'], hint))


def not_a_record(path, number, error):
    return UsageError('{} line {} is not a record of study.sweep ({})'
                      .format(path, number, error))


# The sweep's: each names a path too.
ARCH_NAMES = ARCHS + tuple(VARIANTS)
RECORD_TYPES = {'arch': str, 'vocab': int, 'bproplen': int, 'seed': int,
                'updates': int, 'tokens': int, 'seconds': (int, float),
                'settings': dict, 'history': list}
HISTORY_COUNTERS = ('updates', 'tokens')  # of each evaluation
RECORD_KEYS = set(RECORD_TYPES) | set(capacity.METRICS) | {'learned_tokens'}
EVALUATION_KEYS = set(capacity.TEACHER_FORCED) | set(HISTORY_COUNTERS)
# sweep.settings_of's: kind, lowest and highest. Counts of tokens stay
# exact as floats, which the report's statistics and plots use. Adam's rate
# is a step size: from 1 up its runs diverge.
SETTINGS = {'tokens': (int, 1, 2 ** 53), 'eval_every': (int, 1, 2 ** 53),
            'unit': (int, 1, 2 ** 31 - 1), 'batchsize': (int, 1, 2 ** 31 - 1),
            'alpha': (float, 0, 1), 'gradclip': (float, 0, math.inf)}


def check_record(record):
    """record, if it is one that sweep.run_one made; ValueError if not."""
    if not isinstance(record, dict):
        raise ValueError('not an object')
    check_portable(record)
    for key, kind in RECORD_TYPES.items():
        value = record.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError('{} is {!r}'.format(key, value))
    if record['arch'] not in ARCH_NAMES:
        raise ValueError('arch is {!r}, which the sweep does not run'.format(
            record['arch']))
    # Words are int32, seeds NumPy's.
    for key, low, high in (('vocab', simple_sequence.MIN_VOCABULARY,
                            2 ** 31 - 1), ('bproplen', 1, 2 ** 31 - 1),
                           ('seed', 0, 2 ** 32 - 1)):
        if not low <= record[key] <= high:
            raise ValueError('{} is {!r}'.format(key, record[key]))
    check_settings_of(record['settings'])
    try:
        check_two_evaluations(record['vocab'], record['bproplen'],
                              record['settings'])
    except UsageError:
        raise ValueError('vocab is {}, beyond what the sweep runs with its '
                         'settings'.format(record['vocab']))
    if 'learned_tokens' not in record:
        raise ValueError('no learned_tokens: a record of an older sweep')
    learned = record['learned_tokens']
    if learned is not None and (not isinstance(learned, int) or
                                isinstance(learned, bool) or
                                not 1 <= learned <= record['tokens']):
        raise ValueError('learned_tokens is {!r}'.format(learned))
    check_keys(record, RECORD_KEYS)
    # No run took longer than the time since the Unix epoch.
    if not (record['updates'] >= 1 and record['tokens'] >= 1 and
            0 <= record['seconds'] <= time.time()):
        raise ValueError('updates, tokens or seconds out of range')
    check_metrics(record, capacity.METRICS)
    if not record['history']:  # a run ends with an evaluation
        raise ValueError('history is []')
    for metrics in record['history']:
        check_metrics(metrics, capacity.TEACHER_FORCED)
        check_keys(metrics, EVALUATION_KEYS)
        if not all(is_count(metrics.get(key)) for key in HISTORY_COUNTERS):
            raise ValueError('a history without its updates and tokens')
    for metrics in record['history'] + [record]:
        check_agreement(metrics, record['vocab'])
    # Measured on the model of the last evaluation, at the run's end.
    if any(record[name] != record['history'][-1][name]
           for name in capacity.TEACHER_FORCED):
        raise ValueError('final metrics other than its last evaluation\'s')
    check_counters(record)
    return record


def check_keys(value, keys):
    """ValueError where the object value holds a key not among keys."""
    unknown = sorted(set(value) - keys)
    if unknown:
        raise ValueError('a key the sweep does not write: {!r}'.format(
            unknown[0]))


def check_agreement(metrics, n_vocab):
    """ValueError unless an evaluation's teacher-forced metrics agree with
    each other: every prediction right where, and only where, a whole
    period is exact and the counting horizon reaches the longest block; the
    accuracy, a mean of the boundaries' and the rest's, between theirs
    (rounding keeps it there)."""
    horizon = metrics['counting_horizon']
    if horizon > n_vocab - 1:
        raise ValueError('counting_horizon is {}, past the longest block, {}'
                         .format(horizon, n_vocab - 1))
    exact = metrics['accuracy'] == 1
    parts = metrics['boundary_accuracy'], metrics['non_boundary_accuracy']
    if not metrics['exact_period'] == exact == (horizon == n_vocab - 1) or \
            not min(parts) <= metrics['accuracy'] <= max(parts) or \
            exact and min(parts) < 1:
        raise ValueError('an evaluation whose metrics disagree ({})'.format(
            ', '.join('{} {}'.format(name, json.dumps(metrics[name]))
                      for name in capacity.TEACHER_FORCED)))


def check_portable(value):
    """ValueError where value holds what Python's json takes but other
    readers (ChainerUI's, through study.dashboard) refuse: NaN or an
    infinity, an integer outside int64, or a lone surrogate (a \\u escape
    that is no character) in a key or a string."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError('it holds {}, which is not JSON'.format(
            json.dumps(value)))
    if isinstance(value, int) and not -2 ** 63 <= value < 2 ** 63:
        raise ValueError('it holds {}, outside int64'.format(value))
    if isinstance(value, str):
        try:
            value.encode('utf-8')
        except UnicodeEncodeError:
            raise ValueError('it holds {}, a lone surrogate'.format(
                json.dumps(value)))
    if isinstance(value, dict):
        for key, item in value.items():
            check_portable(key)
            check_portable(item)
    elif isinstance(value, list):
        for item in value:
            check_portable(item)


def check_settings_of(settings):
    """ValueError unless settings holds SETTINGS, each of its kind and in
    its bounds (a rate and a clipping norm above their lowest)."""
    if set(settings) != set(SETTINGS):
        raise ValueError('settings has the keys {}, not {}'.format(
            ', '.join(sorted(settings)), ', '.join(sorted(SETTINGS))))
    for key, (kind, low, high) in SETTINGS.items():
        value = settings[key]
        if not isinstance(value, kind) or isinstance(value, bool) or \
                not low <= value <= high or \
                kind is float and not low < value < high:
            raise ValueError('settings\' {} is {!r}'.format(key, value))


def cap_updates(bproplen, settings):
    """The updates of a run that never learns: the cap of tokens, the last
    update's window whole."""
    return math.ceil(settings['tokens'] / (bproplen * settings['batchsize']))


def evaluation_interval(n_vocab, bproplen, settings):
    """Updates between evaluations: eval_every tokens, or a period of every
    stream where that is longer, so that evaluating costs a small share of
    training at any N."""
    per_update = bproplen * settings['batchsize']
    tokens = max(settings['eval_every'], settings['batchsize'] *
                 simple_sequence.period_length(n_vocab))
    return max(1, round(tokens / per_update))


def check_two_evaluations(n_vocab, bproplen, settings):
    """UsageError unless a run of the cell is evaluated twice within the
    cap: at one evaluation it could never have learned (learned), and would
    be recorded as a run that did not."""
    per_update = bproplen * settings['batchsize']
    apart = evaluation_interval(n_vocab, bproplen, settings) * per_update
    if cap_updates(bproplen, settings) * per_update <= apart:
        raise UsageError(
            '--tokens {:,} allows one evaluation at most at N={} bproplen={} '
            '(they come every {:,} tokens there), and a run learns at two in '
            'a row: give --tokens above {:,}'.format(
                settings['tokens'], n_vocab, bproplen, apart, apart))


def check_record_size(n_vocab, bproplen, settings):
    """UsageError unless every record of the cell fits in a line that
    parse reads: its history holds an evaluation each interval."""
    interval = evaluation_interval(n_vocab, bproplen, settings)
    evaluations = math.ceil(cap_updates(bproplen, settings) / interval)
    if evaluations * EVALUATION_BYTES + RECORD_BYTES > MAX_LINE:
        raise UsageError(
            '--tokens {:,} makes up to {:,} evaluations a run at N={} '
            'bproplen={} (one every {:,} tokens), more than a record may '
            'hold: give fewer --tokens or a larger --eval-every'.format(
                settings['tokens'], evaluations, n_vocab, bproplen,
                interval * bproplen * settings['batchsize']))


def learned(history):
    """Whether the last two evaluations each found a whole period exact: one
    could be luck on a curve that swings."""
    return len(history) >= 2 and all(
        metrics['exact_period'] for metrics in history[-2:])


def check_counters(record):
    """ValueError unless the record's tokens and those of each evaluation
    are its updates times bproplen times the batch size, the evaluations in
    the order they were made, the last at the run's end, the end at the cap
    where it did not learn and within it where it did, and learned_tokens
    the first of the first two exact evaluations in a row (learned), where
    the run stopped."""
    per_update = record['bproplen'] * record['settings']['batchsize']
    for entry in record['history'] + [record]:
        if entry['tokens'] != entry['updates'] * per_update:
            raise ValueError('{} tokens in {} updates of {} tokens'.format(
                entry['tokens'], entry['updates'], per_update))
    tokens = [entry['tokens'] for entry in record['history']]
    if any(a >= b for a, b in zip(tokens, tokens[1:])) or \
            tokens[-1] != record['tokens']:
        raise ValueError('a history whose tokens go {} in a run of {}'.format(
            ', '.join(map(str, tokens)), record['tokens']))
    cap = cap_updates(record['bproplen'], record['settings'])
    claimed = record['learned_tokens']
    if record['updates'] > cap or claimed is None and \
            record['updates'] != cap:
        raise ValueError('{:,} updates in a run {} at {:,}'.format(
            record['updates'], 'censored' if claimed is None
            else 'capped', cap))
    history = record['history']
    if any(learned(history[end - 2:end]) for end in range(2, len(history))):
        raise ValueError('a history that goes on after the run learned')
    said = history[-2]['tokens'] if learned(history) else None
    if claimed != said:
        raise ValueError('learned_tokens is {}, where its history says '
                         '{}'.format(claimed, said))
    if history[-1]['updates'] != record['updates']:
        raise ValueError('{:,} updates in a run whose last evaluation was at '
                         '{:,}'.format(record['updates'],
                                       history[-1]['updates']))


def is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and \
        value >= 0


def check_metrics(metrics, names):
    """ValueError unless metrics holds each of the names of capacity.py's
    metrics, a share from 0 to 1, a whole count, or true or false as it
    should."""
    if not isinstance(metrics, dict):
        raise ValueError('an evaluation that is not an object')
    for name in names:
        value = metrics.get(name)
        if name == 'exact_period':
            good = isinstance(value, bool)
        elif name == 'counting_horizon':
            good = is_count(value)
        else:
            good = isinstance(value, float) and 0 <= value <= 1
        if not good:
            raise ValueError('{} is {!r}'.format(name, value))
