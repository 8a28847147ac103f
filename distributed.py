"""Runs over several MPI processes, through ChainerMN (inside Chainer 7.8.1).

Data-parallel training splits the batch's streams among the processes
(ranks): each rank runs its share, ChainerMN averages the gradients, and
the result is the single-process run's with the same streams, up to the
order of float sums. Rank 0 alone writes files; what only it can read or
decide (a snapshot, the out folder) it broadcasts, errors included, so
that every rank fails or goes on together.
"""
import os
import re

import chainer_compat  # noqa: F401  (must precede chainer)
import quiet_start

INSTALL_HINT = ('pip install mpich==5.0.2 mpi4py==4.1.2 (both are in '
                'requirements.txt)')
_RANK_PREFIX = re.compile(r'rank(\d+)/')


class MPIError(Exception):
    """MPI or ChainerMN cannot be used as asked."""


def create_communicator(name):
    """The ChainerMN communicator called name, over all MPI processes."""
    # Without it, an exception on one rank leaves the others waiting forever
    # in their next collective call; ChainerMN reads it at import.
    os.environ.setdefault('CHAINERMN_FORCE_ABORT_ON_EXCEPTION', '1')
    try:
        import mpi4py.MPI  # noqa: F401  (loads the MPI library)
    except ImportError as error:
        raise MPIError('--communicator needs mpi4py and an MPI library ({}):'
                       ' {}'.format(error, INSTALL_HINT))
    import chainermn
    try:
        return chainermn.create_communicator(name)
    except Exception as error:  # ChainerMN raises what CuPy or NCCL raise
        raise MPIError('cannot create the {!r} communicator ({}): on a CPU '
                       'use --communicator naive'.format(name, error))


def world_size():
    """The number of processes mpiexec started, from its environment."""
    return quiet_start.mpiexec_world()[1]


def world_rank():
    """This process's rank among those mpiexec started (0 outside it), from
    its environment: known before MPI starts."""
    return quiet_start.mpiexec_world()[0]


def check_launch(communicator):
    """MPIError where mpiexec started several processes and no communicator
    joins them: each would train alone, into the same out folder."""
    size = world_size()
    if communicator is None and size > 1:
        raise MPIError('under mpiexec with {} processes: pass --communicator '
                       'naive (or another; docs/mpi.md)'.format(size))


def merge_ranks(parts):
    """One dict of arrays from each rank's: rank r > 0 under 'rank<r>/'."""
    merged = dict(parts[0])
    for rank, part in enumerate(parts[1:], 1):
        merged.update(('rank{}/{}'.format(rank, key), value)
                      for key, value in part.items())
    return merged


def rank_part(merged, rank):
    """The arrays of one rank, out of merge_ranks' dict."""
    part = {}
    for name, value in merged.items():
        owner, key = rank_and_key(name)
        if owner == rank:
            part[key] = value
    return part


def rank_and_key(name):
    """(rank, key in that rank's arrays) of a name in merge_ranks' dict."""
    match = _RANK_PREFIX.match(name)
    if match is None:
        return 0, name
    return int(match.group(1)), name[match.end():]


class Ranks:
    """The processes of a run: this one alone, or those mpiexec started,
    joined by a ChainerMN communicator (comm). What each rank does:

    - every rank builds the same model and trains on its share of the
      streams; ChainerMN's optimizer averages the gradients;
    - rank 0 alone reads a snapshot, claims the out folder, writes every
      file and speaks; what it decides it broadcasts, errors included;
    - a stop (Ctrl-C, SIGTERM) on any rank stops all at the same update.
    """

    def __init__(self, communicator=None):
        self.comm = None if communicator is None else \
            create_communicator(communicator)
        self.rank = 0 if self.comm is None else self.comm.rank
        self.size = 1 if self.comm is None else self.comm.size
        self.root = self.rank == 0

    def on_root(self, function, *args):
        """function(*args) on rank 0; its result, or exception, on every
        rank."""
        if self.comm is None:
            return function(*args)
        result = error = None
        if self.root:
            try:
                result = function(*args)
            except Exception as caught:
                error = caught
        result, error = self.comm.bcast_obj(
            (result, error) if self.root else None)
        if error is not None:
            raise error
        return result

    def agree(self, errors, function, *args):
        """function(*args) on every rank, which all raise if any of them
        does.

        errors: the exception classes that a rank may meet alone (a missing
        GPU, a snapshot part that does not fit); every rank then raises the
        lowest failing rank's.
        """
        if self.comm is None:
            return function(*args)
        result = error = None
        try:
            result = function(*args)
        except errors as caught:
            error = caught
        error = self.first(error)
        if error is not None:
            raise error
        return result

    def first(self, value):
        """The lowest rank's value that is not None, on every rank (None
        where every rank's is)."""
        if self.comm is None:
            return value
        return next((each for each in self.comm.mpi_comm.allgather(value)
                     if each is not None), None)

    def streams(self, batch_size):
        """This rank's share of the batch_size streams (None: all)."""
        if self.comm is None:
            return None
        share = batch_size // self.size
        return range(self.rank * share, (self.rank + 1) * share)

    def multi_node(self, optimizer):
        """optimizer, averaging the gradients over the ranks."""
        if self.comm is None:
            return optimizer
        import chainermn
        return chainermn.create_multi_node_optimizer(optimizer, self.comm)

    def start(self, optimizer):
        """Give every rank rank 0's parameters before training.

        ChainerMN's optimizer spends its first update on broadcasting them;
        done here, every update trains, and a resumed run repeats nothing.
        """
        if self.comm is not None:
            self.comm.bcast_data(optimizer.target)
            optimizer.is_changed(optimizer.target)

    def abort(self, status):
        """End every rank: the others would wait for this one forever."""
        if self.comm is not None:
            self.comm.mpi_comm.Abort(status)
