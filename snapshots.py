"""Snapshots and model files: npz written atomically, read without pickle.

Chainer's load_npz opens files with allow_pickle=True, so a crafted file can
run code when it is loaded. Everything here is read with allow_pickle=False,
and nothing is written that would need pickle to read back.
"""
import contextlib
import json
import os
import re
import secrets
import shutil
import zipfile
import zlib

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import numpy

import distributed

SNAPSHOT_NAME = re.compile(r'snapshot_iter_(\d+)')
RUN_ARGS_KEY = 'run_args'
_ZIP_MAGIC = b'PK\x03\x04'
_TEMPORARY_SUFFIX = '.tmp'
_OUR_TEMPORARY = re.compile(r'\..+\.[0-9a-f]{8}\.tmp')
_LOG_TEMPORARY = re.compile(r'log[a-z0-9_]{8}')


class FileError(Exception):
    """A file that cannot be loaded: missing, damaged, foreign or unsafe."""


@contextlib.contextmanager
def atomic_file(path, mode='wb'):
    """A file object whose contents appear at path complete, or not at all.

    It is written under a hidden temporary name in the same folder, flushed
    to disk, then renamed over path when the block ends without error.
    """
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, '.{}.{}{}'.format(
        name, secrets.token_hex(4), _TEMPORARY_SUFFIX))
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o666)
    try:
        with os.fdopen(descriptor, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
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


def write_npz(path, arrays):
    """Write arrays, none of which may need pickle, to path atomically."""
    needing_pickle = sorted(k for k, v in arrays.items() if v.dtype.hasobject)
    if needing_pickle:
        raise TypeError('would need pickle: ' + ', '.join(needing_pickle))
    with atomic_file(path) as f:
        numpy.savez(f, **arrays)


def save_npz(path, obj):
    """Write obj's serialized state to path."""
    write_npz(path, serialized(obj))


def read_npz(path):
    """dict name -> array of an npz file, refusing what needs pickle."""
    try:
        with open(path, 'rb') as f:
            magic = f.read(len(_ZIP_MAGIC))
    except OSError as error:
        raise FileError('cannot read {}: {}'.format(path, error.strerror))
    if magic != _ZIP_MAGIC:
        raise FileError('{} is not an npz file (it is empty or some other '
                        'kind of file)'.format(path))
    try:
        with numpy.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except ValueError as error:
        if 'allow_pickle' in str(error):
            raise FileError(
                '{} holds pickled Python objects, and loading it could run '
                'code: refused'.format(path))
        raise FileError('{} is damaged: {}'.format(path, error))
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as error:
        raise FileError('{} is truncated or damaged ({})'.format(path, error))


def load_into(obj, arrays, path):
    """Restore obj from arrays read from path by read_npz."""
    try:
        chainer.serializers.NpzDeserializer(arrays).load(obj)
    except KeyError as error:
        raise FileError('{} lacks {}: it was not written for this '
                        'model'.format(path, error))
    except (ValueError, TypeError) as error:
        raise FileError('{} does not fit this model: {}'.format(path, error))


def load_npz(path, obj):
    """Restore obj from an npz file written by save_npz."""
    load_into(obj, read_npz(path), path)


def snapshot_path(out, iteration):
    return os.path.join(out, 'snapshot_iter_{}'.format(iteration))


def latest_snapshot(folder):
    """The path of the snapshot in folder with the most iterations, or None."""
    try:
        names = os.listdir(folder)
    except OSError as error:
        raise FileError('cannot read {}: {}'.format(folder, error.strerror))
    iterations = [int(match.group(1)) for match in
                  map(SNAPSHOT_NAME.fullmatch, names) if match]
    return snapshot_path(folder, max(iterations)) if iterations else None


def save_snapshot(trainer, run_args, comm=None):
    """Write the trainer's whole state and the run's arguments to out.

    With a ChainerMN communicator every rank must call it: rank 0 writes
    the states of all ranks into one file (see distributed.merge_ranks).
    """
    arrays = serialized(trainer)
    if comm is not None:
        parts = comm.gather_obj(arrays)
        if comm.rank != 0:
            return
        arrays = distributed.merge_ranks(parts)
    arrays[RUN_ARGS_KEY] = numpy.array(json.dumps(run_args))
    write_npz(snapshot_path(trainer.out, trainer.updater.iteration), arrays)


def read_snapshot(path):
    """(path, arrays, run_args) of a snapshot, or of the latest in a folder."""
    if os.path.isdir(path):
        latest = latest_snapshot(path)
        if latest is None:
            raise FileError('{} holds no snapshot to resume from'.format(path))
        path = latest
    arrays = read_npz(path)
    try:
        return path, arrays, json.loads(str(arrays[RUN_ARGS_KEY]))
    except (KeyError, ValueError):
        raise FileError('{} is not a snapshot of train_rnn.py'.format(path))


class Snapshot(chainer.training.Extension):
    """Writes snapshot_iter_<iteration> after the other extensions ran."""

    trigger = 1, 'epoch'
    priority = -100

    def __init__(self, run_args, comm=None):
        self.run_args = run_args
        self.comm = comm

    def __call__(self, trainer):
        save_snapshot(trainer, self.run_args, self.comm)


def remove_leftovers(folder):
    """Remove what writes cut short by a kill left in folder.

    That is our own hidden temporary files (see atomic_file), and the
    temporary folders that Chainer's LogReport moves its log out of
    (tempfile.mkdtemp(prefix='log'): 'log' and 8 random characters).
    """
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if _OUR_TEMPORARY.fullmatch(name) and os.path.isfile(path):
            os.unlink(path)
        elif (_LOG_TEMPORARY.fullmatch(name) and os.path.isdir(path) and
              set(os.listdir(path)) <= {'log.json'}):
            shutil.rmtree(path)
