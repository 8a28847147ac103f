"""PyTorch on the same task, the peer to beat: nn.RNN, nn.LSTM or nn.GRU.

The same streams, windows, loss and optimizer as train_rnn.py: 10 streams of
the simple sequence, truncated BPTT over windows of 20 steps with the state
detached between windows, the sum over steps of the mean cross-entropy, Adam
with lr 0.0005, 10 epochs; then one evaluation pass from a fresh state.
With --steady-epochs N, training goes on for N more epochs after that
evaluation, timed apart: the steady state, without the first updates'
warm-up. Every window's index tensors are built before the clock starts,
as a PyTorch user would load a small data set. Prints one JSON line. Run it
from the repository root: python -m benchmarks.torch_rnn -a rnn
"""
import setup_check  # noqa: F401  (first: says so where Chainer is missing)
import argparse
import json
import time

import numpy

import simple_sequence


def window(words, batch_size, start, steps):
    """xs, ts int64 (steps, batch): the window from the start-th step on.

    The batches of iterators.ParallelSequentialIterator, in numpy, so that
    this process does not pay for importing Chainer.
    """
    offsets = numpy.arange(batch_size) * len(words) // batch_size
    positions = (offsets + numpy.arange(start, start + steps)[:, None])
    return (words[positions % len(words)].astype(numpy.int64),
            words[(positions + 1) % len(words)].astype(numpy.int64))


def build_model(torch, arch, n_vocab, n_units):
    """Embedding, recurrent part, linear output, like models.py's."""
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(n_vocab, n_units)
            # models.RNNForLM: dropout 0.5 around and between layers.
            dropout = 0.5 if arch == 'lstm' else 0.0
            self.drop = nn.Dropout(dropout)
            if arch == 'rnn':
                self.rnn = nn.RNN(n_units, n_units, nonlinearity='tanh')
            elif arch == 'lstm':
                self.rnn = nn.LSTM(n_units, n_units, num_layers=2,
                                   dropout=dropout)
            else:
                self.rnn = nn.GRU(n_units, n_units)
            self.out = nn.Linear(n_units, n_vocab)
            if arch == 'lstm':
                for param in self.parameters():
                    nn.init.uniform_(param, -0.1, 0.1)

        def forward(self, xs, state):
            """Logits (steps, batch, n_vocab) for xs (steps, batch)."""
            hs, state = self.rnn(self.drop(self.embed(xs)), state)
            return self.out(self.drop(hs)), state

    return Net()


def detach(state):
    # Truncated BPTT: the next window starts from the values, not the graph.
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--arch', '-a', choices=('rnn', 'lstm', 'gru'),
                        default='rnn')
    parser.add_argument('--per-step', action='store_true',
                        help='call the network once per step, as Chainer '
                        'does, instead of once per window')
    parser.add_argument('--batchsize', '-b', type=int, default=10)
    parser.add_argument('--bproplen', '-l', type=int, default=20)
    parser.add_argument('--epoch', '-e', type=int, default=10)
    parser.add_argument('--unit', '-u', type=int, default=100)
    parser.add_argument('--steady-epochs', type=int, default=0,
                        help='then train this many epochs more, timed apart')
    args = parser.parse_args()
    try:
        import torch
    except ImportError as error:
        print(json.dumps({'skipped': 'torch not installed ({})'.format(
            error)}))
        return

    torch.set_num_threads(1)
    torch.manual_seed(0)
    n_vocab = simple_sequence.N_VOCABULARY
    words = simple_sequence.get_simple_sequence(n_vocab)
    model = build_model(torch, args.arch, n_vocab, args.unit)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.0005)
    cross_entropy = torch.nn.functional.cross_entropy

    def run(xs, state):
        if not args.per_step:
            return model(xs, state)
        ys = []
        for x in xs:
            y, state = model(x[None], state)
            ys.append(y)
        return torch.cat(ys), state

    def windows(first, last):
        """(xs, ts, steps) of every update from call first to call last."""
        return [tuple(map(torch.from_numpy, window(
                    words, args.batchsize, begin,
                    min(args.bproplen, last - begin)))) +
                (min(args.bproplen, last - begin),)
                for begin in range(first, last, args.bproplen)]

    def train(batches, state):
        """state after an update for each batch, the seconds taken and the
        words trained on."""
        model.train()
        words = 0
        start = time.perf_counter()
        for xs, ts, steps in batches:
            words += xs.numel()
            ys, state = run(xs, state)
            # models.SequenceClassifier: the per-step mean losses, summed.
            loss = cross_entropy(ys.reshape(-1, n_vocab),
                                 ts.reshape(-1)) * steps
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            state = detach(state)
        return state, time.perf_counter() - start, words

    # Every stream moves bprop_len words per update: 225 updates here.
    calls = args.epoch * len(words) // args.batchsize
    steady_calls = args.steady_epochs * len(words) // args.batchsize
    first, steady = windows(0, calls), windows(calls, calls + steady_calls)
    state, seconds, tokens = train(first, None)

    # One pass over a fresh copy of the sequence, from a fresh state.
    model.eval()
    xs, ts = map(torch.from_numpy, window(
        words, args.batchsize, 0, len(words) // args.batchsize))
    with torch.no_grad():
        ys, _ = model(xs, None)
    correct = ys.argmax(dim=2) == ts
    boundary = xs != ts
    result = {
        'update_seconds': seconds,
        'tokens': tokens,
        'accuracy': correct.double().mean().item(),
        'boundary_accuracy': (correct & boundary).sum().item() /
        max(boundary.sum().item(), 1)}
    if steady:
        _, result['steady_seconds'], result['steady_tokens'] = train(
            steady, state)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
