"""Snapshots and model files: npz written atomically, read without pickle.

Chainer's load_npz opens files with allow_pickle=True, so a crafted file can
run code when it is loaded. Here every file is read by our own reader, which
never unpickles, checks what each entry declares before it allocates, and
verifies every entry's checksum; nothing is written that would need pickle.
"""
import collections
import contextlib
import copy
import errno
import fcntl
import io
import json
import math
import os
import re
import secrets
import stat
import time
import zipfile
import zlib

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import numpy

import chainer_internals
import distributed
import quiet_start

# The name snapshot_name gives, and no other: \d takes any script's digits,
# and snapshot_iter_061 would be read back as snapshot_iter_61.
SNAPSHOT_NAME = re.compile(r'snapshot_iter_(0|[1-9][0-9]*)')
MAX_COUNTER = numpy.iinfo(numpy.int64).max  # what a snapshot's counters hold
RUN_ARGS_KEY = 'run_args'
_ZIP_MAGIC = b'PK\x03\x04'
_NPY_SUFFIX = '.npy'
READ_CHUNK = 2 ** 20
# What models.RecurrentPredictor writes for a state it does not hold yet.
NO_STATE_SHAPE = (0,)
_NPY_VERSIONS = {(1, 0): numpy.lib.format.read_array_header_1_0,
                 (2, 0): numpy.lib.format.read_array_header_2_0}
# The most characters of text an entry may hold: a run's arguments are a
# few hundred; the log grows by about 330 an epoch, under LOG_ENTRY_CHARS,
# so train_rnn.py refuses runs longer than MAX_LOGGED_EPOCHS, whose
# snapshots this reader would refuse. Text is held 4 bytes a character,
# then copied and parsed: a bound keeps a deflated bomb from being read.
MAX_TEXT = {RUN_ARGS_KEY: 2 ** 16}
MAX_LOG_TEXT = 2 ** 24
LOG_ENTRY_CHARS = 512
MAX_LOGGED_EPOCHS = MAX_LOG_TEXT // LOG_ENTRY_CHARS


class FileError(Exception):
    """A file that cannot be loaded: missing, damaged, foreign or unsafe."""


class RepeatedKey(FileError):
    """JSON whose object repeats a key: whole, but not what we write."""


# What the header of an npy entry declares, before its data is read.
Declared = collections.namedtuple('Declared', 'shape dtype')


@contextlib.contextmanager
def atomic_file(path, mode='wb', temporary=None):
    """A file object whose contents appear at path complete, or not at all
    (atomic_files, of one path)."""
    with atomic_files([path], mode, [temporary]) as (f,):
        yield f


@contextlib.contextmanager
def atomic_files(paths, mode='wb', temporaries=None):
    """File objects for paths, whose contents appear together or not at all.

    Each is written under a temporary name (on its path's file system), by
    default a hidden name beside its path that no other process picks, and
    flushed to disk. When the block ends without error they are renamed
    over the paths, the first path's last; where a rename fails (a file of
    another user in a sticky folder, a mount over a path), the ones made
    are undone. A path that is a folder, which no rename replaces, is
    refused first (IsADirectoryError). With more than one path, for the
    main thread (quiet_start.SignalsHeld).
    """
    temporaries = [temporary or _hidden_beside(path) for path, temporary
                   in zip(paths, temporaries or [None] * len(paths))]
    _refuse_folders(paths)
    created = []
    try:
        with contextlib.ExitStack() as stack:
            files = []
            for temporary in temporaries:
                descriptor = os.open(temporary,
                                     os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                     0o666)
                created.append(temporary)
                files.append(stack.enter_context(os.fdopen(descriptor, mode)))
            yield files
            for f in files:
                f.flush()
                os.fsync(f.fileno())
        _replace_together(list(zip(temporaries, paths))[::-1])
    except BaseException:
        # What stopped the write is what to report: not a failure to remove
        # a temporary that Ctrl-C, landing just after the rename, finds
        # gone. The next claim of an out folder removes a leftover.
        for temporary in created:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise
    for folder in {os.path.dirname(path) or '.' for path in paths}:
        sync_folder(folder)


@contextlib.contextmanager
def writing_alone(path, waiting):
    """While in it, this process alone of those in writing_alone(path) for
    the same path: another waits, once waiting() has said so. Files that
    go together are written and their killed writers' leftovers removed
    in it, lest one writer remove the live temporaries of another. path, a
    hidden lock file, stays (removed, a waiter would lock a file no longer
    there), writable by all whom the umask lets write."""
    flags = os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        try:
            descriptor = os.open(path, flags | os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError as refused:
            try:  # another user's: flock needs no writing
                descriptor = os.open(path, flags | os.O_RDONLY)
            except FileNotFoundError:  # none, in a folder we may not write
                raise refused
    except OSError as error:
        if error.errno == errno.ELOOP:  # 'Too many levels of symbolic links'
            raise OSError(error.errno, 'a symbolic link, which is refused',
                          path)
        raise
    try:
        held = os.fstat(descriptor)
        # A second name of a file this process holds locked (capacity.jsonl)
        # would have it wait for itself for ever.
        if not stat.S_ISREG(held.st_mode) or held.st_nlink != 1:
            raise OSError(errno.EINVAL, 'not a regular file of one link',
                          path)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting()
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def check_takes(folder, names, size):
    """OSError unless folder takes files of size bytes in all (a full disk
    still makes an empty one), and each of names there that is a file can
    be replaced (not another user's in a sticky folder, immutable, a mount
    point, a folder): before hours of work, not after. For the main
    thread, in writing_alone: each is renamed aside and back, signals
    waiting."""
    paths = [os.path.join(folder, name) for name in names]
    _refuse_folders(paths)
    probe = _hidden_beside(paths[0])
    descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, 'wb') as f:
            f.write(bytes(size))
            f.flush()
            os.fsync(f.fileno())
    finally:
        os.remove(probe)
    with quiet_start.SignalsHeld():
        put_back_aside(paths)
        for path in paths:
            try:
                os.rename(path, _aside(path))
            except FileNotFoundError:
                continue
            os.rename(_aside(path), path)


def _refuse_folders(paths):
    """IsADirectoryError where one of paths is a folder, which no rename of
    a file replaces."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISDIR(os.lstat(path).st_mode):
                raise IsADirectoryError(errno.EISDIR,
                                        os.strerror(errno.EISDIR), path)


def _hidden_beside(path):
    """A hidden name beside path, which leftover_of knows. (Not beside its
    abspath: that reads 'link/..' as nothing, the system through the
    link.)"""
    folder, name = os.path.split(path)
    return os.path.join(folder, '.{}.{}.tmp'.format(
        name, secrets.token_hex(4)))


def _replace_together(renames):
    """os.replace(source, target) for each pair in turn, all or none: where
    one fails, the targets the others replaced get their old files back,
    kept under a second name till then. Signals wait meanwhile, so that
    none cuts an undoing short; one that came undoes them all (a stop said
    that nothing was written, where all was)."""
    if len(renames) == 1:
        os.replace(*renames[0])
        return
    with quiet_start.SignalsHeld() as held:
        made = []  # (target, its old file's second name or None)
        try:
            for source, target in renames:
                old = _second_name(target)
                try:
                    os.replace(source, target)
                except OSError:
                    if old is not None:
                        if os.path.lexists(target):  # a link: not needed
                            os.unlink(old)
                        else:  # renamed aside: back
                            os.rename(old, target)
                    raise
                made.append((target, old))
            if held.came is not None:
                raise KeyboardInterrupt
        except BaseException:
            for target, old in reversed(made):
                with contextlib.suppress(OSError):
                    if old is None:
                        os.unlink(target)
                    else:
                        os.replace(old, target)
            raise
        finally:
            for target, old in made:
                if old is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(old)


def _second_name(path):
    """A hidden second name for path's file, or None where path names
    nothing: a hard link where the file system makes one for us, else the
    file itself, renamed (path names nothing till the rename over it)."""
    old = _hidden_beside(path)
    try:
        os.link(path, old, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError:
        # No hard links here, or none to a file of another user
        # (fs.protected_hardlinks): a rename needs neither, nor reading.
        try:
            os.rename(path, old)
        except FileNotFoundError:
            return None
    return old


def leftover_of(entry, names):
    """Whether entry is a temporary that atomic_file left of one of names
    (under its default name), its process killed outright (SIGKILL, a
    power cut): no other process's."""
    return bool(re.fullmatch(r'\.({})\.[0-9a-f]{{8}}\.tmp'.format(
        '|'.join(map(re.escape, names))), entry))


def remove_leftovers(folder, names):
    """Remove what atomic_file left of names in folder (leftover_of), and
    put back what a killed check_takes set aside (put_back_aside)."""
    put_back_aside([os.path.join(folder, name) for name in names])
    for entry in os.listdir(folder):
        if leftover_of(entry, names):
            os.remove(os.path.join(folder, entry))


def put_back_aside(paths):
    """Put back each path's file that check_takes, killed between its two
    renames, left aside; where path was written since, the older file
    aside goes. A folder there, which no file of ours is, is refused
    (IsADirectoryError) before any is moved."""
    _refuse_folders([_aside(path) for path in paths])
    for path in paths:
        aside = _aside(path)
        if os.path.lexists(aside):
            if os.path.lexists(path):
                os.remove(aside)
            else:
                os.rename(aside, path)


def _aside(path):
    """Where check_takes sets path's file aside: not a name leftover_of
    knows, lest a writer remove it as a killed one's temporary."""
    folder, name = os.path.split(path)
    return os.path.join(folder, '.{}.aside'.format(name))


def sync_folder(folder):
    """Flush folder's entries (a rename in it) to disk."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def serialized(obj):
    """dict name -> array: obj's state, as Chainer's serializers see it."""
    serializer = chainer.serializers.DictionarySerializer()
    serializer.save(obj)
    return dict(serializer.target)


def npz_bytes(arrays):
    """The npz file of arrays, none of which may need pickle, as bytes.

    Built in memory, so that an error while writing the file (a full disk,
    Ctrl-C) leaves no half-written zip object behind.
    """
    needing_pickle = sorted(k for k, v in arrays.items() if v.dtype.hasobject)
    if needing_pickle:
        raise TypeError('would need pickle: ' + ', '.join(needing_pickle))
    buffer = io.BytesIO()
    # In name order: the same run writes its entries in the same order.
    numpy.savez(buffer, **dict(sorted(arrays.items())))
    return buffer.getbuffer()


def available_memory():
    """Bytes this machine can still allocate, about: MemAvailable."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_AVPHYS_PAGES')


def open_regular_file(path, follow=True):
    """A binary file object for path, which must be a regular file, and not
    a symbolic link unless follow; FileError where it cannot be opened or
    read.

    Opened without blocking, so that a FIFO or device cannot hang the read.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        # O_NOFOLLOW's ELOOP says 'Too many levels of symbolic links'.
        if error.errno == errno.ELOOP and os.path.islink(path):
            raise FileError('{} is a symbolic link, which is refused'.format(
                path))
        raise cannot_read(path, error)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise FileError('{} is not a regular file'.format(path))
    os.set_blocking(descriptor, True)
    return input_file(descriptor, path)


class _InputFile(io.FileIO):
    """A file whose failed reads (EIO from a bad disk) say which file could
    not be read: to the OSError handlers of its readers they would look like
    damage or a failed write."""

    def readinto(self, buffer):
        try:
            return super().readinto(buffer)
        except OSError as error:
            raise cannot_read(self.path, error)

    def readall(self):  # read() with no size bypasses readinto
        try:
            return super().readall()
        except OSError as error:
            raise cannot_read(self.path, error)


def cannot_read(path, error):
    """The FileError for path, whose open or read failed with OSError
    error."""
    return FileError('cannot read {}: {}'.format(path, error.strerror))


def input_file(descriptor, path):
    """A buffered binary file object for descriptor, open for reading path;
    FileError 'cannot read PATH' where a read fails."""
    raw = _InputFile(descriptor, 'rb')
    raw.path = path
    return io.BufferedReader(raw)


def read_npz(path, admit=None):
    """dict name -> array of an npz file, refusing what needs pickle.

    Every entry must be a plain array whose declared size matches its data
    and fits in memory, stored or deflated, unencrypted, with a good
    checksum; anything else is a FileError. admit, if given, sees what every
    entry declares ({name: Declared}) before any data is read, and returns
    the names to read or raises FileError.
    """
    with open_regular_file(path) as f:
        if f.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
            raise FileError('{} is not an npz file (it is empty or some '
                            'other kind of file)'.format(path))
        f.seek(0)
        try:
            return _read_arrays(f, path, admit)
        except FileError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError,
                ValueError, NotImplementedError, RuntimeError,
                OverflowError, KeyError, SyntaxError) as error:
            raise FileError('{} is truncated or damaged ({})'.format(
                path, error))


def _read_arrays(f, path, admit):
    size = os.fstat(f.fileno()).st_size
    with zipfile.ZipFile(f) as archive:
        entries = archive.infolist()
        count = _declared_entry_count(f, size)
        if count is not None and count != len(entries):
            raise FileError('{} is damaged: its index lists {} entries of {}'
                            .format(path, len(entries), count))
        declared_bytes = 0
        for entry in entries:
            if entry.flag_bits & 0x1:
                raise FileError('{} is damaged: its entry {} says it is '
                                'encrypted'.format(path, entry.filename))
            if entry.compress_type not in (zipfile.ZIP_STORED,
                                           zipfile.ZIP_DEFLATED):
                raise FileError('{} is damaged: its entry {} has an unknown '
                                'compression'.format(path, entry.filename))
            if (not entry.filename.endswith(_NPY_SUFFIX) or
                    entry.compress_size > size):
                raise FileError('{} is damaged or not an npz file: entry {}'
                                .format(path, entry.filename))
            declared_bytes += entry.file_size
        if declared_bytes > available_memory():
            raise FileError('{} declares {:.1f} GiB of arrays, more than '
                            'this machine has free'.format(
                                path, declared_bytes / 2 ** 30))
        declared = {}
        for entry in entries:
            name = entry.filename[:-len(_NPY_SUFFIX)]
            if name in declared:
                raise FileError('{} holds {} twice'.format(path, name))
            with archive.open(entry) as member:
                shape, _, dtype = _read_header(member, entry, path)
            check_text_size(name, shape, dtype, path)
            declared[name] = Declared(shape, dtype)
        wanted = declared.keys() if admit is None else admit(declared)
        arrays = {}
        for entry in entries:
            name = entry.filename[:-len(_NPY_SUFFIX)]
            if name in wanted:
                with archive.open(entry) as member:
                    arrays[name] = _read_array(member, entry, path)
        return arrays


def _declared_entry_count(f, size):
    """The number of entries the zip's end record declares; None where the
    zip64 record holds it (an archive of 65,535 entries or more)."""
    tail_size = min(size, 22 + 65535)  # the end record and its comment
    f.seek(size - tail_size)
    tail = f.read(tail_size)
    end = tail.rfind(b'PK\x05\x06')
    count = int.from_bytes(tail[end + 10:end + 12], 'little')
    return None if end < 0 or count == 0xFFFF else count


def _read_header(member, entry, path):
    """(shape, fortran_order, dtype) of an .npy entry, read from its header,
    with the member left at its data, whose size it checks."""
    version = numpy.lib.format.read_magic(member)
    if version not in _NPY_VERSIONS:
        raise FileError('{}: {} is an npy file of an unknown version {}'
                        .format(path, entry.filename, version))
    shape, fortran_order, dtype = _NPY_VERSIONS[version](member)
    if dtype.hasobject:
        raise FileError('{} holds pickled Python objects, and loading it '
                        'could run code: refused'.format(path))
    if dtype.byteorder == '>':  # numpy.savez writes the machine's order
        raise FileError('{}: {} is big-endian, which no writer of ours '
                        'makes'.format(path, entry.filename))
    n_bytes = math.prod(shape) * dtype.itemsize
    if n_bytes != entry.file_size - member.tell():
        raise FileError('{} is damaged: {} declares {} bytes of data and '
                        'holds {}'.format(path, entry.filename, n_bytes,
                                          entry.file_size - member.tell()))
    return shape, fortran_order, dtype


def check_text_size(name, shape, dtype, path):
    """FileError if the entry name declares more text than MAX_TEXT (or
    MAX_LOG_TEXT) allows, before it is read."""
    if dtype.kind not in 'US':
        return
    characters = math.prod(shape) * dtype.itemsize // (
        4 if dtype.kind == 'U' else 1)
    limit = MAX_TEXT.get(name, MAX_LOG_TEXT)
    if characters > limit:
        raise FileError('{}: {} declares {} characters of text, more than '
                        'the {} this reader takes'.format(
                            path, name, characters, limit))


def _read_array(member, entry, path):
    """One .npy entry of an npz: the header first, then exactly its data."""
    shape, fortran_order, dtype = _read_header(member, entry, path)
    n_bytes = math.prod(shape) * dtype.itemsize
    data = bytearray(n_bytes)  # filled in chunks: one copy in memory
    done = 0
    while done < n_bytes:
        chunk = member.read(min(READ_CHUNK, n_bytes - done))
        if not chunk:
            raise FileError('{} is truncated: {}'.format(path,
                                                         entry.filename))
        data[done:done + len(chunk)] = chunk
        done += len(chunk)
    # Reading to the end makes zipfile check the entry's CRC.
    if member.read(1):
        raise FileError('{} is damaged: {}'.format(path, entry.filename))
    return numpy.frombuffer(data, dtype).reshape(
        shape, order='F' if fortran_order else 'C')


def parse_json(text, what):
    """The value of a JSON text from a file; FileError if it is not one, or
    if an object in it repeats a key, whose last value json takes: no
    writer of ours repeats one, so which of the two was meant is unknown.
    Every reader of our JSON files parses them with it."""
    def unique(pairs):
        value = {}
        for key, item in pairs:
            if key in value:
                raise RepeatedKey('{}: the key {!r} appears twice in an '
                                  'object'.format(what, key))
            value[key] = item
        return value

    try:
        return json.loads(text, object_pairs_hook=unique)
    except (ValueError, RecursionError) as error:
        raise FileError('{}: not valid JSON ({})'.format(
            what, type(error).__name__ if isinstance(error, RecursionError)
            else error))


def check_shapes(arrays, reference, path, states=(), any_rows=False):
    """FileError unless arrays has each key of reference in its shape and
    kind of dtype; keys missing from arrays are left to the loader.

    arrays: name -> array, or what an entry declares (Declared). reference:
    name -> array, what the target serializes. states: the keys
    of recurrent states, which may also be empty (NO_STATE_SHAPE), and
    whose first dimension (the streams) may differ if any_rows.
    """
    for key, expected in reference.items():
        if key not in arrays:
            continue
        # A GPU model's arrays are CuPy's, which refuse to become NumPy's
        # implicitly: only their dtype and shape count here.
        if not hasattr(expected, 'dtype'):
            expected = numpy.asarray(expected)
        actual = arrays[key]
        if expected.dtype.kind in 'US':
            good = actual.dtype.kind == expected.dtype.kind and \
                actual.shape == expected.shape
        else:
            shape = actual.shape
            if key in states and any_rows and len(shape) > 0:
                shape = expected.shape[:1] + shape[1:]
            good = (shape == expected.shape or
                    key in states and actual.shape == NO_STATE_SHAPE) and \
                actual.dtype.kind == expected.dtype.kind and \
                (actual.dtype.kind != 'f' or actual.dtype == expected.dtype)
        if not good:
            raise FileError('{} does not fit this model: {} is {} {}, where '
                            '{} {} belongs'.format(
                                path, key, actual.dtype, actual.shape,
                                type_name(expected.dtype), expected.shape))


def type_name(dtype):
    """What an entry of dtype must be, as check_shapes takes it: floats
    exactly, text and integers of any length."""
    return {'U': 'str', 'S': 'bytes', 'i': 'int', 'u': 'uint'}.get(
        dtype.kind, str(dtype))


def check_finite(arrays, reference, path):
    """FileError unless the floats of arrays under reference's keys are
    finite."""
    for key in reference:
        actual = arrays.get(key)
        if actual is not None and actual.dtype.kind == 'f' and \
                not numpy.isfinite(actual).all():
            raise FileError('{} holds a value that is NaN or infinite in {}'
                            .format(path, key))


def load_into(obj, arrays, path):
    """Restore obj from arrays read from path by read_npz (shapes checked)."""
    try:
        chainer.serializers.NpzDeserializer(arrays).load(obj)
    except KeyError as error:
        raise FileError('{} lacks {}: it was not written for this '
                        'model'.format(path, error))
    except (ValueError, TypeError) as error:
        raise FileError('{} does not fit this model: {}'.format(path, error))


def read_model(path, predictor):
    """The arrays of the model file at path, for predictor (one without a
    state). What every entry declares is checked first, and only this
    predictor's parameters, an empty state (train_rnn.py writes the model
    after reset_state) and the run's arguments are read."""
    reference = dict(serialized(predictor), **{RUN_ARGS_KEY: numpy.array('')})

    def admit(declared):
        for name in sorted(name[1:] for name, _ in predictor.namedparams()):
            if name not in declared:
                raise FileError('{} lacks {}: it was not written for this '
                                'model'.format(path, name))
        for name in declared:
            if name not in reference:
                raise FileError('{} holds {}, which is no part of this model'
                                .format(path, name))
        check_shapes(declared, reference, path)
        return declared.keys()

    return read_npz(path, admit)


def recurrent_state_shapes(predictor, rows):
    """{key: array}: the recurrent state that predictor serializes after a
    step of `rows` streams, found by running one step on a copy."""
    probe = predictor.copy(mode='copy')
    probe.reset_state()
    before = serialized(probe)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        probe(probe.xp.ones(rows, numpy.int32))
    return {key: value for key, value in serialized(probe).items()
            if before[key].shape != value.shape}


def load_checked(obj, arrays, path):
    """Restore obj from arrays read from path, after checking their shapes;
    a predictor takes a recurrent state of any number of rows."""
    reference = serialized(obj)
    states = {}
    if hasattr(obj, 'reset_state'):
        states = recurrent_state_shapes(obj, 1)
        reference.update(states)
    check_shapes(arrays, reference, path, states, any_rows=True)
    check_finite(arrays, reference, path)
    load_into(obj, arrays, path)


def snapshot_path(out, iteration):
    return os.path.join(out, snapshot_name(iteration))


def snapshot_name(iteration):
    return 'snapshot_iter_{}'.format(iteration)


def snapshot_iteration(name):
    """The iteration of a name that snapshot_name gives, else None (one
    past what a snapshot's counter holds too: no run wrote it)."""
    match = SNAPSHOT_NAME.fullmatch(name)
    if match and int(match.group(1)) <= MAX_COUNTER:
        return int(match.group(1))
    return None


def snapshot_iterations(names):
    """The iterations of the snapshot names among names."""
    return [iteration for iteration in map(snapshot_iteration, names)
            if iteration is not None]


def latest_snapshot(folder):
    """The path of the snapshot in folder with the most iterations, or None."""
    try:
        names = os.listdir(folder)
    except OSError as error:
        raise cannot_read(folder, error)
    iterations = snapshot_iterations(names)
    return snapshot_path(folder, max(iterations)) if iterations else None


def snapshot_arrays(trainer, run_args, comm=None):
    """The trainer's whole state and the run's arguments, as arrays.

    With a ChainerMN communicator every rank must call it: rank 0 gets the
    states of all ranks merged (see distributed.merge_ranks), the others
    None.
    """
    arrays = serialized(trainer)
    if comm is not None:
        parts = comm.gather_obj(arrays)
        if comm.rank != 0:
            return None
        arrays = distributed.merge_ranks(parts)
    return with_run_args(arrays, run_args)


def with_run_args(arrays, run_args):
    """arrays, with the run's arguments (a dict) under RUN_ARGS_KEY: what
    rebuilds the run, read back by read_run_args."""
    arrays[RUN_ARGS_KEY] = numpy.array(json.dumps(run_args))
    return arrays


def read_run_args(arrays, path):
    """The run arguments recorded in a snapshot's or model's arrays."""
    if RUN_ARGS_KEY not in arrays:
        raise FileError('{} is not a snapshot of train_rnn.py'.format(path))
    check_shapes(arrays, {RUN_ARGS_KEY: numpy.array('')}, path)
    return parse_json(str(arrays[RUN_ARGS_KEY]),
                      '{}: the run\'s arguments'.format(path))


def read_snapshot(path):
    """(path, run_args) of a snapshot, or of the latest in a folder: its
    run's arguments alone, which say what the rest must be (see
    read_snapshot_arrays)."""
    if os.path.isdir(path):
        latest = latest_snapshot(path)
        if latest is None:
            raise FileError('{} holds no snapshot to resume from'.format(path))
        path = latest

    def run_args_alone(declared):
        if 'updater/iteration' not in declared:  # a model, or not ours
            raise FileError('{} is not a snapshot of train_rnn.py'.format(
                path))
        return {RUN_ARGS_KEY}

    return path, read_run_args(read_npz(path, run_args_alone), path)


def read_snapshot_arrays(path, reference, states, processes):
    """The arrays of the snapshot at path, a run of that many processes.

    What every entry declares is checked against reference and states (see
    snapshot_reference) before any data is read: an entry that no snapshot
    of this run holds is refused, whatever its size, not read and ignored.
    """
    def admit(declared):
        for name, header in declared.items():
            rank, key = distributed.rank_and_key(name)
            if not (rank < processes and (
                    key in reference or LOG_SUMMARY.fullmatch(key) and
                    header.shape == ()) or name == RUN_ARGS_KEY):
                raise FileError('{} holds {}, which no snapshot of this run '
                                'has'.format(path, name))
        for rank in range(processes):
            check_shapes(distributed.rank_part(declared, rank), reference,
                         path, states)
        return declared.keys()

    return read_npz(path, admit)


def snapshot_reference(trainer):
    """(reference, states): {key: array} of what a snapshot of trainer
    holds, and those of its keys that are recurrent states (as they are
    after an update)."""
    updater = trainer.updater
    predictor = updater.get_optimizer('main').target.predictor
    with chainer_internals.trainer_clock_started(trainer):
        reference = serialized(trainer)
    # Adam's state of each parameter, which its first update makes.
    optimizer = updater.get_optimizer('main')
    for name, param in optimizer.target.namedparams():
        rule = optimizer.create_update_rule()
        chainer_internals.init_states(rule, param)
        reference.update(('updater/optimizer:main{}/{}'.format(name, key),
                          value) for key, value in rule.state.items())
    prefix = 'updater/model:main/predictor/'
    iterator = updater.get_iterator('main')
    states = {prefix + key: value for key, value in
              recurrent_state_shapes(
                  predictor, len(iterator.next())).items()}
    iterator.reset()
    reference.update(states)
    return reference, states


def restore(trainer, arrays, path):
    """Load a snapshot's arrays into trainer, after checking everything they
    say: shapes, counters and the log; FileError if anything is off."""
    updater = trainer.updater
    reference, states = snapshot_reference(trainer)
    # The model holds a state from its first update on.
    iteration = arrays.get('updater/iteration')
    check_shapes(arrays, reference, path, states if iteration is not None and
                 iteration.shape == () and iteration == 0 else ())
    check_finite(arrays, reference, path)
    for key, value in arrays.items():
        # A trigger's previous iteration is left to check_triggers.
        if key.endswith(('/iteration', '/t', '/epoch', 'position')) and \
                value.shape == () and value.dtype.kind in 'iu' and value < 0:
            raise FileError('{} records a negative counter {}'.format(
                path, key))
    check_random_state(arrays, path)
    check_adam_state(arrays, updater.get_optimizer('main'), path)
    log = check_recorded_log(arrays, path)
    load_into(trainer, arrays, path)
    check_counters(updater, path)
    check_triggers(arrays, updater, path)
    if log is not None:
        check_log_against_run(log, arrays, updater, path)


def check_counters(updater, path):
    """FileError unless the counters of a restored updater agree: every
    update moves the streams bprop_len steps and counts once in Adam."""
    iterator = updater.get_iterator('main')
    optimizer = updater.get_optimizer('main')
    if iterator.iteration != updater.iteration * updater.bprop_len:
        raise FileError(
            '{} is inconsistent: {} updates of {} steps, but its streams '
            'moved {} steps'.format(path, updater.iteration,
                                    updater.bprop_len, iterator.iteration))
    # Adam's step size depends on its counts t: another t, another run.
    counts = {optimizer.t} | {param.update_rule.t
                              for param in optimizer.target.params()}
    if counts != {updater.iteration}:
        raise FileError('{} is inconsistent: {} updates, but Adam counted {}'
                        .format(path, updater.iteration, ', '.join(
                            map(str, sorted(counts)))))
    if optimizer.epoch != iterator.epoch:
        raise FileError('{} is inconsistent: its streams are in epoch {}, '
                        'but Adam counted {}'.format(
                            path, iterator.epoch, optimizer.epoch))


def clock_at(updater, iteration):
    """(epoch, epoch_detail) that updater reports after that many updates:
    its iterator's whole state is the steps it took."""
    iterator = copy.copy(updater.get_iterator('main'))
    iterator.iteration = iteration * updater.bprop_len
    return iterator.epoch, iterator.epoch_detail


def epoch_end(updater, epoch):
    """The update in which updater's epoch reaches epoch."""
    # From a guess a little short of it: the division rounds.
    iteration = max(int(epoch / clock_at(updater, 1)[1]) - 2, 1)
    while clock_at(updater, iteration)[0] < epoch:
        iteration += 1
    return iteration


TRIGGER_STATE = re.compile(r'(.*/)previous_iteration')


def check_triggers(arrays, updater, path):
    """FileError unless every trigger's state in arrays is where the
    restored updater says: called at the last update or the one before
    (Chainer calls every trigger once per update, the stop trigger before
    it), at that update's epoch_detail; or -1, Chainer's mark of a trigger
    whose state was not saved (a progress bar new to a resumed run)."""
    iteration = updater.iteration
    for key in sorted(arrays):
        match = TRIGGER_STATE.fullmatch(key)
        if match is None:
            continue
        previous = arrays[key]
        detail = arrays.get(match.group(1) + 'previous_epoch_detail')
        if previous == -1 and (detail is None or detail == -1):
            continue
        if not (max(iteration - 1, 0) <= previous <= iteration):
            raise FileError('{} is inconsistent: {} updates, but {} is {}'
                            .format(path, iteration, key, previous))
        expected = clock_at(updater, int(previous))[1]
        if detail is not None and detail != expected:
            raise FileError('{} is inconsistent: {}previous_epoch_detail is '
                            '{}, where {} belongs'.format(
                                path, match.group(1), detail, expected))


def check_adam_state(arrays, optimizer, path):
    """FileError unless Adam's m and v in arrays are what its updates can
    make: v, a mean of squares, is never negative, and bounds m.

    m = (1 - b1) sum b1^k g_k and v = (1 - b2) sum b2^k g_k^2, so by
    Cauchy-Schwarz m^2 <= C v, C = (1 - b1)^2 / ((1 - b2)(1 - b1^2 / b2));
    twice that, and a float32 tiny, allow for rounding and for squares
    that underflow.
    """
    hp = optimizer.hyperparam
    bound = 2 * (1 - hp.beta1) ** 2 / (
        (1 - hp.beta2) * (1 - hp.beta1 ** 2 / hp.beta2))
    prefix = 'updater/optimizer:main/'
    for key in sorted(arrays):
        if not (key.startswith(prefix) and key.endswith('/v')):
            continue
        v = arrays[key].astype(numpy.float64)
        m = arrays.get(key[:-1] + 'm')
        if (v < 0).any():
            raise FileError('{} holds an impossible Adam state: {} has {}, '
                            'where a mean of squares is never negative'
                            .format(path, key, v.min()))
        if m is not None and m.shape == v.shape and (
                numpy.square(m.astype(numpy.float64)) >
                bound * v + numpy.finfo(numpy.float32).tiny).any():
            raise FileError('{} holds an impossible Adam state: {}m is '
                            'larger than its v allows (m^2 <= {:.3g} v)'
                            .format(path, key[:-1], bound / 2))


RANDOM_STATE = 'updater/random/'
MT19937_KEY_LENGTH = 624


def check_random_state(arrays, path):
    """FileError unless the saved NumPy generator's state is one MT19937
    can be in; missing parts are left to the loader.

    numpy.random.set_state takes any position and reads the key there: one
    past its end draws from memory that is not the key (different numbers
    each time, or a crash). A key whose 19,937 bits of state (the top bit
    of its first word, and the words after it) are all zero draws zeros
    forever.
    """
    def bad(what):
        return FileError('{} holds an impossible random state: {}'.format(
            path, what))

    keys = arrays.get(RANDOM_STATE + 'keys')
    if keys is not None:
        if keys.dtype != numpy.uint32 or keys.shape != (MT19937_KEY_LENGTH,):
            raise bad('its key is {} {}, where uint32 ({},) belongs'.format(
                keys.dtype, keys.shape, MT19937_KEY_LENGTH))
        if not (keys[0] & 0x80000000 or keys[1:].any()):
            raise bad('its key is zeros')
    for name, low, high in (('position', 0, MT19937_KEY_LENGTH),
                            ('has_gauss', 0, 1)):
        value = arrays.get(RANDOM_STATE + name)
        if value is not None and not (
                value.shape == () and value.dtype.kind in 'iu' and
                low <= value <= high):
            raise bad('its {} is {}, where a whole number from {} to {} '
                      'belongs'.format(name, value, low, high))


LOG_REPORT = 'extensions/LogReport/'
SUMMARY = LOG_REPORT + '_summary/'
# The log's running sums, three scalars for each value observed since the
# last entry: how many, its _names in the snapshot say (see
# check_recorded_log), not a trainer that has not run.
LOG_SUMMARY = re.compile(re.escape(SUMMARY) + r'_summaries/(\d+)/_(x|x2|n)')
# What LogReport sums between its entries, in the order it keeps them:
# the model's reports of each update (models.SequenceClassifier.observe);
# the evaluation's come at the end of an epoch, just before the entry.
SUMMED = ('main/loss', 'main/accuracy', 'main/boundary_accuracy')


# What LogReport logs of our runs: its clock, and the means that
# models.SequenceClassifier reports, in training and in evaluation.
LOG_CLOCK = ('epoch', 'iteration', 'elapsed_time')
LOGGED = set(LOG_CLOCK) | {prefix + name for prefix in (
    'main/', 'validation/main/') for name in (
        'loss', 'accuracy', 'boundary_accuracy')}


def damaged_log(path, what):
    return FileError('{} holds a damaged log: {}'.format(path, what))


def check_recorded_log(arrays, path):
    """The LogReport's log in arrays (None if it has none), once it and the
    summary are what LogReport writes: entries of finite numbers under the
    names it logs, counters whole; FileError if not. How the entries fit
    the run is left to check_log_against_run, once it is restored."""
    def bad(what):
        return damaged_log(path, what)

    if LOG_REPORT + '_log' not in arrays:
        return None
    log = parse_json(str(arrays[LOG_REPORT + '_log']),
                     '{}: its log'.format(path))
    if not isinstance(log, list):
        raise bad('not a list')
    for entry in log:
        if not isinstance(entry, dict) or not all(
                map(_is_logged_number, entry.values())):
            raise bad('an entry that is not numbers by name')
        for key in LOG_CLOCK:
            if key not in entry or entry[key] < 0 or \
                    key != 'elapsed_time' and not isinstance(entry[key], int):
                raise bad('an entry without its {}'.format(key))
        unknown = sorted(set(entry) - LOGGED)
        if unknown:
            raise bad('an entry of {}, which no run logs'.format(unknown[0]))
    names = parse_json(str(arrays.get(SUMMARY + '_names', '[]')),
                       '{}: its log summary'.format(path))
    if not isinstance(names, list) or not all(
            isinstance(name, str) for name in names):
        raise bad('the summary\'s names')
    for key in sorted(arrays):
        match = LOG_SUMMARY.fullmatch(key)
        if match is not None and int(match.group(1)) >= len(names):
            raise bad('{} sums no name: _names holds {}'.format(
                key, len(names)))
    for index, name in enumerate(names):
        for part, kind in (('_x', 'f'), ('_x2', 'f'), ('_n', 'iu')):
            key = '{}_summaries/{}/{}'.format(SUMMARY, index, part)
            value = arrays.get(key)
            if value is None:
                raise bad('{} is missing, where a sum of {} belongs'.format(
                    key, name))
            if value.shape != () or value.dtype.kind not in kind:
                raise bad('{} is {} {}, where {} () belongs'.format(
                    key, value.dtype, value.shape,
                    'int64' if kind == 'iu' else 'float64'))
            if not numpy.isfinite(value):
                raise bad('{} is {}, where a finite number belongs'.format(
                    key, value))
    elapsed = arrays.get('_snapshot_elapsed_time')
    # No run began before 1970: a longer time, logged on, is no run's.
    if elapsed is not None and not (elapsed.shape == () and
                                    0 <= elapsed <= time.time()):
        raise bad('its elapsed time is {}, where seconds from 0 to those '
                  'since 1970 belong'.format(elapsed))
    return log


def check_log_against_run(log, arrays, updater, path):
    """FileError unless the log is the one LogReport kept up to the
    restored updater's iteration: an entry at the update that ended each
    epoch, elapsed times in order up to the snapshot's, and no more words
    in its summary than the updates since the last entry saw."""
    def bad(what):
        return damaged_log(path, what)

    if len(log) != updater.epoch:
        raise bad('{} entries, where {} epochs ended'.format(
            len(log), updater.epoch))
    last, elapsed = 0, 0
    for epoch, entry in enumerate(log, 1):
        ended = epoch_end(updater, epoch)
        if (entry['epoch'], entry['iteration']) != (epoch, ended):
            raise bad('its entry of epoch {} says epoch {}, iteration {}, '
                      'where epoch {} ended at iteration {}'.format(
                          epoch, entry['epoch'], entry['iteration'], epoch,
                          ended))
        if entry['elapsed_time'] < elapsed:
            raise bad('its entry of epoch {} went back in time'.format(epoch))
        last, elapsed = ended, entry['elapsed_time']
    total = arrays.get('_snapshot_elapsed_time')
    if total is not None and total < elapsed:
        raise bad('its elapsed time is {}, less than its last entry\'s'
                  .format(total))
    check_summary(arrays, updater, last, bad)


def check_summary(arrays, updater, last, bad):
    """bad(what) unless LogReport's summary in arrays is what the restored
    updater's updates since the one of the log's last entry sum: each of
    SUMMED, its count the words those updates saw (the boundaries among
    them for boundary_accuracy), its sums what such values can make."""
    updates = updater.iteration - last
    names = json.loads(str(arrays.get(SUMMARY + '_names', '[]')))
    expected = list(SUMMED) if updates else []
    if names != expected:
        raise bad('{}_names is {}, where {} belongs after the {} updates '
                  'since its last entry'.format(
                      SUMMARY, json.dumps(names), json.dumps(expected),
                      updates))
    iterator = updater.get_iterator('main')
    steps = last * updater.bprop_len, updater.iteration * updater.bprop_len
    for index, name in enumerate(names):
        key = '{}_summaries/{}/'.format(SUMMARY, index)
        x, x2, n = (arrays[key + part] for part in ('_x', '_x2', '_n'))
        if name.endswith('boundary_accuracy'):
            what, count = 'boundaries', iterator.boundaries(*steps)
        else:
            what = 'words'
            count = (steps[1] - steps[0]) * iterator.batch_size
        if n != count:
            raise bad('{}_n is {}, where {} belongs: the {} that the {} '
                      'updates since its last entry saw'.format(
                          key, n, count, what, updates))
        check_sums(key, float(x), float(x2), int(n), numpy.finfo(x.dtype),
                   updates, name.endswith('accuracy'), bad)


def check_sums(key, x, x2, n, finfo, updates, accuracy, bad):
    """bad(what) unless x and x2, LogReport's sums of n weighted values and
    of their squares (key/_x, key/_x2) over that many updates, can be
    those of losses (softmax cross-entropy: never negative) or of
    accuracies (from 0 to 1)."""
    if accuracy and not 0 <= x <= n:
        raise bad('{}_x is {:g}, where a sum of {} accuracies lies from 0 '
                  'to {}'.format(key, x, n, n))
    if x < 0:
        raise bad('{}_x is {:g}, where a sum of losses is never negative'
                  .format(key, x))
    if accuracy and x2 > x:
        raise bad('{}_x2 is {:g}, where accuracies, at most 1, sum to {:g} '
                  'and their squares to no more'.format(key, x2, x))
    # Cauchy-Schwarz: x^2 <= n x2. Each update rounds both sums once and
    # each square twice more, in x's dtype (float32 on a GPU).
    least = x * x / n * (1 - 4 * updates * finfo.eps) if n else 0
    if x2 < least:
        raise bad('{}_x2 is {:g}, where values that sum to {:g} over {} sum '
                  'their squares to {:g} at least'.format(
                      key, x2, x, n, least))


def _is_logged_number(value):
    """Whether value is a number LogReport writes: a finite float, or an
    integer of NumPy's int64 (a longer one cannot become a float)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and \
        -2 ** 63 <= value < 2 ** 63


class Snapshot(chainer.training.Extension):
    """Writes snapshot_iter_<iteration> after the other extensions ran.

    write(name, arrays) writes the file; on ranks other than 0 it is None.
    """

    trigger = 1, 'epoch'
    priority = -100

    def __init__(self, run_args, write, comm=None):
        self.run_args = run_args
        self.write = write
        self.comm = comm

    def __call__(self, trainer):
        save_snapshot(trainer, self.run_args, self.write, self.comm)


def save_snapshot(trainer, run_args, write, comm=None):
    """Write the trainer's state as snapshot_iter_<iteration>, on rank 0."""
    arrays = snapshot_arrays(trainer, run_args, comm)
    if arrays is not None:
        write(snapshot_name(trainer.updater.iteration), npz_bytes(arrays))
