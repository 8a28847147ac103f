"""Time the update loop of train_rnn.py alone, then evaluate once.

The run is built by train_rnn.py's own recipe (setup_training), from the
same arguments (any of train_rnn.py's, e.g. -a lstm); only the updates are
timed, without the extensions. With --steady-epochs N, training goes on for
N more epochs after that evaluation, timed apart: the steady state, without
the first updates' warm-up. Prints one JSON line. Run it from the
repository root: python -m benchmarks.ours -a rnn
"""
import setup_check  # noqa: F401  (first: says so where Chainer is missing)
import json
import sys
import time

import cli
import train_rnn
from training_extensions import SequenceEvaluator
from updaters import fast_training


def build_parser():
    parser = train_rnn.build_parser()
    parser.add_argument('--steady-epochs', type=int, default=0,
                        help='then train this many epochs more, timed apart')
    return parser


def measure(args, run):
    """The figures that main prints, of the run that train_rnn.py's
    setup_training built for args, which it trains."""
    updater = run.updater

    def train(epochs):
        """The seconds and tokens of training up to epochs."""
        steps = run.train_iter.iteration
        with fast_training():  # as train_rnn.py runs it
            start = time.perf_counter()
            while updater.epoch_detail < epochs:
                updater.update()
            seconds = time.perf_counter() - start
        # The words the updates took from the streams.
        return seconds, (run.train_iter.iteration - steps) * args.batchsize

    seconds, tokens = train(args.epoch)
    scores = SequenceEvaluator(run.val_iter, run.model, args.bproplen,
                               run.device)()
    result = {'update_seconds': seconds, 'tokens': tokens,
              'accuracy': float(scores['main/accuracy']),
              'boundary_accuracy': float(scores['main/boundary_accuracy'])}
    if args.steady_epochs:
        result['steady_seconds'], result['steady_tokens'] = train(
            args.epoch + args.steady_epochs)
    return result


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        train_rnn.check_arguments(args)
        run = train_rnn.setup_training(args)
    except cli.UsageError as error:
        print(json.dumps({'skipped': 'not supported: {}'.format(error)}))
        return
    print(json.dumps(measure(args, run)))


if __name__ == '__main__':
    main()
