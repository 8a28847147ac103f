"""Time the update loop of train_rnn.py alone, then evaluate once.

The run is built exactly as train_rnn.py builds it, from the same arguments
(any of train_rnn.py's, e.g. -a lstm); only the updates are timed, without
the extensions. Prints one JSON line. Run it from the repository root:
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
        with fast_training():  # as train_rnn.py runs it
            start = time.perf_counter()
            while updater.epoch_detail < args.epoch:
                updater.update()
            seconds = time.perf_counter() - start
        result = trainer.get_extension('validation')()
    print(json.dumps({
        'update_seconds': seconds,
        'tokens': updater.iteration * args.bproplen * args.batchsize,
        'accuracy': float(result['validation/main/accuracy']),
        'boundary_accuracy':
            float(result['validation/main/boundary_accuracy'])}))


if __name__ == '__main__':
    main()
