"""Time the update loop of train_rnn.py alone, then evaluate once.

The run is built exactly as train_rnn.py builds it, from the same arguments
(any of train_rnn.py's, e.g. -a lstm); only the updates are timed, without
the extensions. With --steady-epochs N, training goes on for N more epochs
after that evaluation, timed apart: the steady state, without the first
updates' warm-up. Prints one JSON line. Run it from the repository root:
python -m benchmarks.ours -a rnn
"""
import json
import sys
import tempfile
import time

import train_rnn
from updaters import fast_training


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = train_rnn.build_parser()
    parser.add_argument('--steady-epochs', type=int, default=0,
                        help='then train this many epochs more, timed apart')
    with tempfile.TemporaryDirectory() as out:
        # -o last, so that it wins: the run writes its graph there.
        args = parser.parse_args(argv + ['-o', out])
        try:
            train_rnn.check_arguments(args)
            trainer = train_rnn.build_trainer(
                args, train_rnn.select_device(args.gpu))
        except train_rnn.UsageError as error:
            print(json.dumps({'skipped': 'not supported: {}'.format(error)}))
            return
        updater = trainer.updater

        def train(epochs):
            """The seconds and tokens of training up to epochs."""
            iteration = updater.iteration
            with fast_training():  # as train_rnn.py runs it
                start = time.perf_counter()
                while updater.epoch_detail < epochs:
                    updater.update()
                seconds = time.perf_counter() - start
            tokens = (updater.iteration - iteration) * args.bproplen * \
                args.batchsize
            return seconds, tokens

        seconds, tokens = train(args.epoch)
        scores = trainer.get_extension('validation')()
        result = {
            'update_seconds': seconds,
            'tokens': tokens,
            'accuracy': float(scores['validation/main/accuracy']),
            'boundary_accuracy':
                float(scores['validation/main/boundary_accuracy'])}
        if args.steady_epochs:
            result['steady_seconds'], result['steady_tokens'] = train(
                args.epoch + args.steady_epochs)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
