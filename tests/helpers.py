"""Small models, set-ups and waits shared by the tests."""
import errno
import os
import subprocess
import sys
import time

import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest

from iterators import ParallelSequentialIterator
from models import RecurrentPredictor, SequenceClassifier
from models import build_model
import simple_sequence
import snapshots
from updaters import BPTTUpdater

CPU = chainer.get_device('@numpy')
# The repository's root, where the scripts run from.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The settings of study_record's sweep.
STUDY_SETTINGS = {'tokens': 1000, 'eval_every': 100, 'unit': 8,
                  'batchsize': 10, 'alpha': 0.001, 'gradclip': 5.0}


class RuleOracle(RecurrentPredictor):
    """Predicts rule(x) with certainty, whatever came before."""

    def __init__(self, n_vocab, rule):
        super().__init__()
        self.n_vocab = n_vocab
        self.rule = rule

    def forward(self, x):
        logits = numpy.zeros((len(x), self.n_vocab), numpy.float32)
        logits[numpy.arange(len(x)), self.rule(x)] = 10
        return chainer.Variable(logits)

    def forward_window(self, xs):
        return F.concat([self.forward(x) for x in xs], axis=0)


class Delayed(RecurrentPredictor):
    """Reads the embedding of the previous word: the state it stores at the
    last step of a window is not an ancestor of that window's loss."""

    state_names = ('h',)

    def __init__(self, n_vocab, n_units):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.out = L.Linear(n_units, n_vocab)
        self.h = None

    def forward(self, x):
        e = self.embed(x)
        previous = e if self.h is None else self.h
        self.h = F.identity(e)  # a node of its own, outside the loss
        return self.out(previous)


def make_updater(predictor, n_vocab=5, batch_size=3, bprop_len=4,
                 write_graph=None, optimizer=None):
    """A BPTTUpdater training predictor on the simple sequence, with
    optimizer (Adam by default)."""
    model = SequenceClassifier(predictor)
    optimizer = chainer.optimizers.Adam() if optimizer is None else optimizer
    optimizer.setup(model)
    iterator = ParallelSequentialIterator(
        simple_sequence.get_simple_sequence(n_vocab), batch_size)
    return BPTTUpdater(iterator, optimizer, bprop_len, CPU,
                       write_graph=write_graph)


def seeded_model(arch, n_vocab=5, n_units=8, seed=0, fused=False):
    numpy.random.seed(seed)
    return build_model(arch, n_vocab, n_units, fused)


def failing_rename(monkeypatch, name, function='replace'):
    """os.replace (or os.rename), failing with EPERM where its target, or
    its source, is called name: a file of another user in a sticky folder,
    an immutable one."""
    rename = getattr(os, function)

    def failing(source, target):
        if name in (os.path.basename(source), os.path.basename(target)):
            raise OSError(errno.EPERM, os.strerror(errno.EPERM), source,
                          target)
        rename(source, target)
    monkeypatch.setattr(os, function, failing)


def wait_for(path, process, timeout=120):
    """Wait until path exists, while process runs."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert process.poll() is None, 'the run ended before ' + str(path)
        assert time.monotonic() < deadline
        time.sleep(0.01)


class Counter(RecurrentPredictor):
    """Continues the sequence by counting, one stream at a time.

    It takes its first word as the first_seen-th of its block; with
    first_seen below 1 it repeats that word 1 - first_seen times too many.
    """

    def __init__(self, n_vocab, first_seen=1):
        super().__init__()
        self.n_vocab = n_vocab
        self.first_seen = first_seen
        self.reset_state()

    def reset_state(self):
        self.last, self.seen = None, 0

    def forward(self, x):
        word = int(x[0])
        if self.last is None:
            self.seen = self.first_seen
        else:
            self.seen = self.seen + 1 if word == self.last else 1
        self.last = word
        following = word if self.seen < word else word % (self.n_vocab - 1) + 1
        logits = numpy.zeros((1, self.n_vocab), numpy.float32)
        logits[0, following] = 10
        return chainer.Variable(logits)


def run_into_closed_pipe(argv):
    """Run a script of ours with stdout a pipe whose reader has gone, as
    `| head -1` leaves it once head has its line."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable] + argv, cwd=ROOT,
                              stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=300)
    finally:
        os.close(write)


def run_with_stdout(argv, stdout):
    """Run a script of ours with stdout a full device, or closed."""
    if stdout == 'full':
        with open('/dev/full', 'w') as full:
            return subprocess.run([sys.executable] + argv, cwd=ROOT,
                                  stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=300)
    return subprocess.run([sys.executable] + argv, cwd=ROOT,
                          preexec_fn=lambda: os.close(1),
                          stderr=subprocess.PIPE, text=True, timeout=300)


def write_npz(path, arrays):
    """Write arrays to path atomically, as the runs write their files."""
    data = snapshots.npz_bytes(arrays)
    with snapshots.atomic_file(path) as f:
        f.write(data)


def save_npz(path, obj):
    """Write obj's serialized state to path."""
    write_npz(path, snapshots.serialized(obj))


def load_npz(path, obj):
    """Restore obj from an npz file, checked as predict_rnn.py checks a
    model's."""
    snapshots.load_checked(obj, snapshots.read_npz(path), path)


def study_record(arch, bproplen, vocab, seed, learned_tokens=None):
    """A record of study.sweep: a run that learned after learned_tokens, or
    was censored at 1000, evaluated every 100 tokens (bproplen must divide
    10, a batch of 10 streams); half its predictions right until it has
    learned, all from learned_tokens on, as the sweep's rule (learned) has
    it."""
    def evaluation(exact):
        return dict(accuracy=1.0 if exact else 0.5,
                    boundary_accuracy=1.0 if exact else 0.5,
                    non_boundary_accuracy=1.0 if exact else 0.5,
                    counting_horizon=vocab - 1 if exact else 1,
                    exact_period=exact)
    tokens = 1000 if learned_tokens is None else learned_tokens + 100
    per_update = bproplen * STUDY_SETTINGS['batchsize']
    history = [dict(evaluation(learned_tokens is not None and
                               t >= learned_tokens),
                    updates=t // per_update, tokens=t)
               for t in range(100, tokens + 1, 100)]
    return dict(evaluation(learned_tokens is not None), arch=arch,
                vocab=vocab, bproplen=bproplen, seed=seed, tokens=tokens,
                updates=tokens // per_update, learned_tokens=learned_tokens,
                history=history, seconds=1.5, settings=STUDY_SETTINGS,
                generation_cold=0.5, generation_warm=0.5)


ZERO_FILLED_TAIL = 2 ** 28  # bytes; reading them whole took 4 s


def refusal_of_a_zero_filled_tail(main, argv, path):
    """The error output of main(argv), which must refuse the record file at
    path with a zero-filled tail appended (sparse: cheap) at once, with
    status 2, leaving the file as it was."""
    size = os.path.getsize(path) + ZERO_FILLED_TAIL
    os.truncate(path, size)
    started = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert time.perf_counter() - started < 2
    assert exit_info.value.code == 2
    assert os.path.getsize(path) == size
