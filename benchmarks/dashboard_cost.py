"""What answering the dashboard costs a run that has no page open.

On a real trainer of the default run (python train_rnn.py: rnn, 100 units,
bproplen 20, 10 streams) it times an update, then DashboardCommands' part
of each update: its trigger and its call, which reads the clock and polls
the commands file (a stat) at most once a second. From the repository
root: python -m benchmarks.dashboard_cost
"""
import setup_check  # noqa: F401  (first: says so where Chainer is missing)
import tempfile
import timeit

from dashboard_commands import POLL_SECONDS
import distributed
from out_folder import OutFolder, model_name_of
import train_rnn
from updaters import fast_training


def per_call(function, number):
    """Seconds per call, the best of 5 repeats."""
    return min(timeit.repeat(function, number=number, repeat=5)) / number


def main():
    with tempfile.TemporaryDirectory() as out:
        args = train_rnn.build_parser().parse_args(['-o', out])
        ranks = distributed.Ranks()
        run_args = train_rnn.run_arguments(args, ranks)
        folder = OutFolder(out)
        folder.claim()
        folder.start_run(run_args, model_name_of(args.arch), False, False)
        trainer = train_rnn.build_trainer(args, ranks, folder)
        entry = trainer._extensions['DashboardCommands']
        commands = entry.extension
        commands.initialize(trainer)
        trainer.updater.update()  # the first draws the graph
        with fast_training():  # as train_rnn.train runs
            update = per_call(trainer.updater.update, 20)
        commands._next_poll = float('inf')  # the updates between polls
        between = per_call(lambda: (entry.trigger(trainer),
                                    commands(trainer)), 100000)
        poll = per_call(lambda: commands.poll(trainer), 10000)
        folder.release()
    print('update: {:.2f} ms; the extension at each update: {:.2f} us; a '
          'poll: {:.1f} us; all told, at most {:.3%} of training time'
          .format(update * 1e3, between * 1e6, poll * 1e6,
                  between / update + poll / POLL_SECONDS))


if __name__ == '__main__':
    main()
