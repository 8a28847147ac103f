"""The tutorial's own way of training the RNN, kept as the benchmark baseline.

A faithful re-creation of the tutorial script (Chainer's PTB example style):
a list-of-pairs iterator, concat_examples, one Classifier call per step and
the stock Trainer extensions. Prints one JSON line at the end. Run it from
the repository root: python -m benchmarks.tutorial_baseline -o OUT
"""
import setup_check  # noqa: F401  (first: says so where Chainer is missing)
import argparse
import json
import os
import time

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
from chainer.dataset import concat_examples
import chainer.functions as F
import chainer.links as L
from chainer import training
from chainer.training import extensions
import numpy

import simple_sequence


class RNN(chainer.Chain):
    """The tutorial's Elman network: embed, l1, r1, l2."""

    def __init__(self, n_vocab, n_units):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = L.Linear(n_units, n_units)
            self.r1 = L.Linear(n_units, n_units)
            self.l2 = L.Linear(n_units, n_vocab)
        self.rec_h1 = None

    def reset_state(self):
        self.rec_h1 = None

    def __call__(self, x):
        h = self.embed(x)
        if self.rec_h1 is None:
            self.rec_h1 = F.tanh(self.l1(h))
        else:
            self.rec_h1 = F.tanh(self.l1(h) + self.r1(self.rec_h1))
        return self.l2(self.rec_h1)


class RNNForLM(chainer.Chain):
    """Chainer's PTB example network, which the tutorial's lstm runs."""

    def __init__(self, n_vocab, n_units):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, n_units)
            self.l1 = L.LSTM(n_units, n_units)
            self.l2 = L.LSTM(n_units, n_units)
            self.l3 = L.Linear(n_units, n_vocab)
        for param in self.params():
            param.array[...] = numpy.random.uniform(-0.1, 0.1, param.shape)

    def reset_state(self):
        self.l1.reset_state()
        self.l2.reset_state()

    def __call__(self, x):
        h0 = self.embed(x)
        h1 = self.l1(F.dropout(h0))
        h2 = self.l2(F.dropout(h1))
        return self.l3(F.dropout(h2))


class ParallelSequentialIterator(chainer.dataset.Iterator):
    """Chainer's PTB example iterator: [(current, next)] * batch_size."""

    def __init__(self, dataset, batch_size, repeat=True):
        self.dataset = dataset
        self.batch_size = batch_size
        self.repeat = repeat
        length = len(dataset)
        self.offsets = [i * length // batch_size for i in range(batch_size)]
        self.reset()

    def reset(self):
        self.epoch = 0
        self.is_new_epoch = False
        self.iteration = 0
        self._previous_epoch_detail = -1.

    def __next__(self):
        length = len(self.dataset)
        if not self.repeat and self.iteration * self.batch_size >= length:
            raise StopIteration
        cur_words = self.get_words()
        self._previous_epoch_detail = self.epoch_detail
        self.iteration += 1
        next_words = self.get_words()
        epoch = self.iteration * self.batch_size // length
        self.is_new_epoch = self.epoch < epoch
        if self.is_new_epoch:
            self.epoch = epoch
        return list(zip(cur_words, next_words))

    @property
    def epoch_detail(self):
        return self.iteration * self.batch_size / len(self.dataset)

    @property
    def previous_epoch_detail(self):
        if self._previous_epoch_detail < 0:
            return None
        return self._previous_epoch_detail

    def get_words(self):
        return [self.dataset[(offset + self.iteration) % len(self.dataset)]
                for offset in self.offsets]

    def serialize(self, serializer):
        self.iteration = serializer('iteration', self.iteration)
        self.epoch = serializer('epoch', self.epoch)
        self._previous_epoch_detail = serializer(
            'previous_epoch_detail', self._previous_epoch_detail)


class BPTTUpdater(training.updaters.StandardUpdater):
    """The tutorial's updater, timed: `seconds` sums its update_core calls."""

    def __init__(self, train_iter, optimizer, bprop_len, device):
        super().__init__(train_iter, optimizer, device=device)
        self.bprop_len = bprop_len
        self.seconds = 0.0

    def update_core(self):
        start = time.perf_counter()
        loss = 0
        train_iter = self.get_iterator('main')
        optimizer = self.get_optimizer('main')
        for i in range(self.bprop_len):
            batch = train_iter.__next__()
            x, t = self.converter(batch, self.device)
            loss += optimizer.target(x, t)
        optimizer.target.cleargrads()
        loss.backward()
        loss.unchain_backward()
        optimizer.update()
        self.seconds += time.perf_counter() - start


def evaluate(classifier, sequence, batch_size):
    """Accuracy, boundary accuracy, and the words and boundaries they count,
    over one pass, from a reset state.

    The stock Classifier reports no boundary accuracy, and the tutorial's
    evaluation never resets the evaluated copy: this pass is ours.
    """
    predictor = classifier.copy().predictor
    predictor.reset_state()
    iterator = ParallelSequentialIterator(sequence, batch_size, repeat=False)
    correct = boundary = boundary_correct = total = 0
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for batch in iterator:
            x, t = concat_examples(batch)
            hit = predictor(x).array.argmax(axis=1) == t
            correct += hit.sum()
            total += t.size
            boundary += (x != t).sum()
            boundary_correct += (hit & (x != t)).sum()
    return (correct / total, boundary_correct / max(boundary, 1), int(total),
            int(boundary))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--arch', '-a', choices=('rnn', 'lstm'),
                        default='rnn')
    parser.add_argument('--batchsize', '-b', type=int, default=10)
    parser.add_argument('--bproplen', '-l', type=int, default=20)
    parser.add_argument('--epoch', '-e', type=int, default=10)
    parser.add_argument('--unit', '-u', type=int, default=100)
    parser.add_argument('--out', '-o', default='result_tutorial')
    parser.add_argument(
        '--keep-training-state', action='store_true',
        help='let the evaluation hook leave the training model alone: the '
        "tutorial's computation without its flaw, which train_rnn.py runs")
    args = parser.parse_args()

    numpy.random.seed(0)  # the tutorial did not seed; we want repeatability
    n_vocab = simple_sequence.N_VOCABULARY
    train = simple_sequence.get_simple_sequence(n_vocab)
    val = simple_sequence.get_simple_sequence(n_vocab)
    train_iter = ParallelSequentialIterator(train, args.batchsize)
    val_iter = ParallelSequentialIterator(val, args.batchsize, repeat=False)

    model = {'rnn': RNN, 'lstm': RNNForLM}[args.arch](n_vocab, args.unit)
    classifier_model = L.Classifier(model)
    optimizer = chainer.optimizers.Adam(alpha=0.0005)
    optimizer.setup(classifier_model)
    updater = BPTTUpdater(train_iter, optimizer, args.bproplen, -1)
    trainer = training.Trainer(updater, (args.epoch, 'epoch'), out=args.out)

    eval_classifier_model = classifier_model.copy()
    # The tutorial's flaw, kept unless asked: the hook resets the training
    # model's state, so that training starts each epoch from no state.
    trainer.extend(extensions.Evaluator(
        val_iter, eval_classifier_model, device=-1,
        eval_hook=None if args.keep_training_state else
        lambda _: model.reset_state()))
    trainer.extend(extensions.LogReport())
    trainer.extend(extensions.PrintReport(
        ['epoch', 'main/loss', 'validation/main/loss',
         'main/accuracy', 'validation/main/accuracy', 'elapsed_time']))
    trainer.extend(extensions.PlotReport(
        ['main/loss', 'validation/main/loss'], x_key='epoch',
        file_name='loss.png'))
    trainer.extend(extensions.PlotReport(
        ['main/accuracy', 'validation/main/accuracy'], x_key='epoch',
        file_name='accuracy.png'))
    trainer.extend(extensions.snapshot(), trigger=(1, 'epoch'))
    trainer.extend(extensions.dump_graph('main/loss'))
    trainer.run()
    chainer.serializers.save_npz(
        os.path.join(args.out, '{}.model'.format(args.arch)), model)

    accuracy, boundary_accuracy, words, boundaries = evaluate(
        classifier_model, val, args.batchsize)
    last = trainer.get_extension('LogReport').log[-1]
    print(json.dumps({
        'update_seconds': updater.seconds,
        'tokens': train_iter.iteration * args.batchsize,  # the words taken
        'accuracy': float(accuracy),
        'boundary_accuracy': float(boundary_accuracy),
        'evaluated_words': words, 'evaluated_boundaries': boundaries,
        # What the tutorial's own Evaluator says, from a state never reset.
        'tutorial_validation_accuracy':
            float(last['validation/main/accuracy'])}))


if __name__ == '__main__':
    main()
