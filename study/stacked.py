"""Train the seeds of one cell of the capacity study as one stacked model.

A run of the study spends much of its time in Chainer's and NumPy's
overhead per call. The runs of a cell (arch, N, bproplen) differ only in
their seed and see the same sequence, so S of them train as one model whose
parameters carry a leading seed axis (fused.py's nodes take it): one call
per step and per update serves them all. The arithmetic stays each seed's
(docs/capacity.md says what that leaves to gain).

Each seed's run is, bit for bit, the one study.sweep.train_until_learned
makes for it alone: its initial parameters and dropout masks come from its
own generator, drawn in the lone run's order; the loss of the stack is the
sum of the seeds' losses, so that each seed's gradient is its lone
gradient; gradient clipping takes each seed's own norm, Adam is element-wise
anyway. Evaluation runs on the seed's lone model, given the seed's
parameters, and a seed leaves the stack when it has learned.
"""
import chainer_compat  # noqa: F401  (must precede chainer)

import time

import chainer
import chainer.functions as F
from chainer.functions.activation import log_softmax
import numpy

from iterators import next_window
from optimizers import FlatAdam
from study import capacity

# The architectures whose stacked runs are their lone runs bit for bit
# (tests/test_stacked.py): every fused one.
STACKED_ARCHITECTURES = ('rnn', 'rnn_relu', 'lstm', 'lstm1', 'gru')


class SeedSoftmaxCrossEntropy(chainer.FunctionNode):
    """Each seed's F.softmax_cross_entropy, its gradient bit for bit.

    Inputs: logits ys (S, N, n_vocab), targets ts int (N,), shared.
    Output: the mean loss of each seed (S,).
    """

    def forward(self, inputs):
        ys, ts = inputs
        n = len(ts)
        log_y = log_softmax._log_softmax(ys, axis=2)
        self._y, self._ts = numpy.exp(log_y), ts
        # Chainer's coefficient, so that the gradient is scaled alike.
        self._coeff = 1.0 / max(n, 1)
        log_p = log_y[:, numpy.arange(n), ts]
        return (log_p.sum(axis=1) * -self._coeff).astype(ys.dtype),

    def backward(self, indexes, grad_outputs):
        gloss = grad_outputs[0].array
        ts = self._ts
        gx = self._y.copy()
        gx[:, numpy.arange(len(ts)), ts] -= 1
        for seed, g in enumerate(gx):
            # A 0-d array times a float, as in Chainer's backward.
            g *= gloss[seed, ...] * self._coeff
        return chainer.Variable(gx, requires_grad=False), None


class SeedGradientClipping(object):
    """chainer.optimizer_hooks.GradientClipping for each seed of a stack:
    its own global norm, summed in the hook's order, its own rate."""

    name = 'GradientClipping'
    timing = 'pre'

    def __init__(self, threshold):
        self.threshold = threshold

    def __call__(self, optimizer):
        params = list(optimizer.target.params(False))
        for seed in range(len(params[0].grad)):
            grads = [param.grad[seed] for param in params]
            sqnorm = sum([g.ravel().dot(g.ravel()) for g in grads])
            rate = self.threshold / numpy.sqrt(sqnorm)
            if rate >= 1:
                continue
            for g in grads:
                g *= rate


class SeedGenerators(object):
    """Dropout masks (S, ...) for RNNForLM.dropout_mask, each seed's drawn
    as F.dropout draws it, from that seed's generator."""

    def __init__(self, generators):
        self.generators = list(generators)

    def __call__(self, shape, ratio, dtype):
        scale = dtype.type(1. / (1 - ratio))
        return numpy.stack([scale * (generator.rand(*shape[1:]) >= ratio)
                            for generator in self.generators])

    def keep(self, kept):
        self.generators = [self.generators[i] for i in kept]


class Stack(object):
    """The seeds of one cell, trained as one model; see the module doc.

    runs: train_rnn.setup_training's namespaces of the seeds' lone runs,
    built in order, each followed by the state of NumPy's generator it left.
    """

    def __init__(self, runs, generators, alpha, gradclip):
        self.lone = [run.model.predictor for run in runs]
        first = runs[0]
        self.train_iter, self.device = first.train_iter, first.device
        self.bprop_len = first.updater.bprop_len
        # A predictor of the same class, its parameters the seeds' stacked.
        self.predictor = first.model.predictor.copy(mode='copy')
        lone_params = [dict(predictor.namedparams())
                       for predictor in self.lone]
        for name, param in self.predictor.namedparams():
            param.array = numpy.stack([params[name].array
                                       for params in lone_params])
            param.grad = None
        self.predictor.reset_state()
        self.generators = SeedGenerators(generators)
        if hasattr(self.predictor, 'dropout_mask'):
            self.predictor.dropout_mask = self.generators
        self.optimizer = FlatAdam(alpha=alpha)
        self.optimizer.setup(self.predictor)
        self.optimizer.add_hook(SeedGradientClipping(gradclip))
        self.seeds = list(range(len(runs)))  # the lone runs still stacked

    def update(self):
        """One update of every seed in the stack, as BPTTUpdater's."""
        xs, ts = next_window(self.train_iter, self.bprop_len, self.device)
        ys = self.predictor.forward_window(xs)
        losses = SeedSoftmaxCrossEntropy().apply((ys, ts.ravel()))[0]
        # The tutorial's summed per-step loss, of every seed.
        loss = F.sum(losses * len(xs))
        self.predictor.cleargrads()
        loss.backward()
        loss.unchain_backward()
        self.predictor.unchain_state()
        self.optimizer.update()

    def give_parameters(self, position):
        """Copy the parameters of the stack's seed at position into its
        lone predictor."""
        lone = dict(self.lone[self.seeds[position]].namedparams())
        for name, param in self.predictor.namedparams():
            lone[name].array[...] = param.array[position]

    def keep(self, positions):
        """Go on with the seeds at these positions of the stack only."""
        index = numpy.asarray(positions)
        for param in self.predictor.params():
            param.cleargrad()
            param.array = param.array[index]
            state = param.update_rule.state
            for key in ('m', 'v'):
                if key in state:
                    state[key] = state[key][index]
        for owner, name in self.predictor._state_slots():
            state = getattr(owner, name)
            if state is not None:
                setattr(owner, name, chainer.Variable(state.array[index]))
        self.generators.keep(positions)
        self.seeds = [self.seeds[i] for i in positions]


def build_stack(arch, n_vocab, bproplen, seeds, settings):
    """The Stack of the seeds' runs of study.sweep."""
    from study import sweep  # its recipe; it imports this module
    runs, generators = [], []
    for seed in seeds:
        runs.append(sweep.setup_run(arch, n_vocab, bproplen, seed, settings))
        # Where the lone run's dropout masks would begin.
        generator = numpy.random.RandomState()
        generator.set_state(numpy.random.get_state())
        generators.append(generator)
    return Stack(runs, generators, settings['alpha'], settings['gradclip'])


def train_until_learned(arch, n_vocab, bproplen, seeds, settings):
    """Yield (seed, predictor, run, seconds) for each seed, in the order
    they end, as study.sweep.train_until_learned(arch, n_vocab, bproplen,
    seed, settings) gives (predictor, run) for the seed alone; seconds: the
    seed's share of the stack's time, its evaluations and an even share of
    the setup and of each update it was in."""
    from study import sweep  # its recipe; it imports this module
    started = time.perf_counter()
    batch_size = settings['batchsize']
    stack = build_stack(arch, n_vocab, bproplen, seeds, settings)
    evaluated = [predictor.copy() for predictor in stack.lone]
    histories = [[] for _ in seeds]
    spent = [(time.perf_counter() - started) / len(seeds)] * len(seeds)
    per_update = bproplen * batch_size
    updates = sweep.cap_updates(bproplen, settings)
    interval = sweep.evaluation_interval(n_vocab, bproplen, settings)
    iteration, training = 0, 0.0
    while iteration < updates:
        started = time.perf_counter()
        stack.update()
        training += time.perf_counter() - started
        iteration += 1
        if iteration % interval and iteration < updates:
            continue
        for i in stack.seeds:
            spent[i] += training / len(stack.seeds)
        training = 0.0
        staying = []
        for position, i in enumerate(stack.seeds):
            started = time.perf_counter()
            stack.give_parameters(position)
            history = histories[i]
            metrics = capacity.teacher_forced(evaluated[i], n_vocab,
                                              batch_size)
            history.append(dict(metrics, updates=iteration,
                                tokens=iteration * per_update))
            spent[i] += time.perf_counter() - started
            if sweep.learned(history):
                yield seeds[i], evaluated[i], dict(
                    updates=iteration, tokens=iteration * per_update,
                    learned_tokens=history[-2]['tokens'],
                    history=history), spent[i]
            else:
                staying.append(position)
        if not staying:
            return
        if len(staying) < len(stack.seeds):
            stack.keep(staying)
    for i in stack.seeds:
        yield seeds[i], evaluated[i], dict(
            updates=iteration, tokens=iteration * per_update,
            learned_tokens=None, history=histories[i]), spent[i]
