"""Time the update loop of train_rnn.py alone, then evaluate once.

The run is built by train_rnn.py's own recipe (setup_training), from the
same arguments (any of train_rnn.py's, e.g. -a lstm); only the updates are
timed, without the extensions. Prints one JSON line. Run it from the
repository root: python -m benchmarks.ours -a rnn
"""
import json
import sys
import time

import cli
import train_rnn
from training_extensions import SequenceEvaluator
from updaters import fast_training


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = train_rnn.build_parser().parse_args(argv)
    try:
        train_rnn.check_arguments(args)
        run = train_rnn.setup_training(args)
    except cli.UsageError as error:
        print(json.dumps({'skipped': 'not supported: {}'.format(error)}))
        return
    updater = run.updater
    with fast_training():  # as train_rnn.py runs it
        start = time.perf_counter()
        while updater.epoch_detail < args.epoch:
            updater.update()
        seconds = time.perf_counter() - start
    evaluated = run.model.copy()
    evaluated.predictor.fused = evaluated.predictor.has_fused_mode()
    result = SequenceEvaluator(run.val_iter, evaluated, args.bproplen,
                               run.device)()
    print(json.dumps({
        'update_seconds': seconds,
        'tokens': updater.iteration * args.bproplen * args.batchsize,
        'accuracy': float(result['main/accuracy']),
        'boundary_accuracy':
            float(result['main/boundary_accuracy'])}))


if __name__ == '__main__':
    main()
