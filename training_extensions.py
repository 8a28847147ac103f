"""Trainer extensions of train_rnn.py: evaluation, log, plots, stops."""
import io
import json
import shutil
import subprocess
import sys

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
from chainer.training import extension, extensions
import numpy

import cli
from iterators import next_window


def pooled_means(observations, comm=None):
    """{key: mean} of observations, dicts of (value, weight) or of values.

    Each mean weighs its values, over all the observations and, with a
    ChainerMN communicator, over all ranks, whose weights may differ.
    """
    totals = {}
    for observation in observations:
        for key, value in observation.items():
            value, weight = value if isinstance(value, tuple) else (value, 1)
            total = totals.setdefault(key, [0.0, 0.0])
            total[0] += float(value) * float(weight)
            total[1] += float(weight)
    keys = sorted(totals)
    sums = numpy.array([totals[key] for key in keys]).reshape(-1, 2)
    if comm is not None:
        sums = comm.allreduce_obj(sums)
    return {key: (value / weight, weight)
            for key, (value, weight) in zip(keys, sums) if weight > 0}


class SequenceEvaluator(extensions.Evaluator):
    """Evaluates a SequenceClassifier on one pass of a non-repeating iterator.

    It evaluates a copy of the model that shares its parameters and owns
    its recurrent state, which is reset before every pass: the tutorial's
    hook reset the training model's state instead. The copy runs fused
    where the architecture can: the same function, in fewer nodes. The pass
    goes in windows of `window` steps, without a graph; the state carries
    over from window to window, so the result does not depend on the window
    length. With a ChainerMN communicator each rank
    evaluates its streams, and the means are pooled with their weights (
    ChainerMN's multi-node evaluator averages the ranks' means instead,
    which the boundary accuracy's weights do not survive).
    """

    def __init__(self, iterator, model, window, device, comm=None):
        target = model.copy()
        target.predictor.fused = target.predictor.has_fused_mode()
        super().__init__(iterator, target, device=device)
        self.window = window
        self.comm = comm

    def evaluate(self):
        iterator = self.get_iterator('main')
        target = self.get_target('main')
        iterator.reset()
        target.predictor.reset_state()
        observations = []
        for xs, ts, logits in window_outputs(target.predictor, iterator,
                                             self.window, self.device):
            observation = {}
            with chainer.reporter.report_scope(observation):
                target.observe(logits, xs, ts)
            observations.append(observation)
        return {key: mean for key, (mean, _) in
                pooled_means(observations, self.comm).items()}


def window_outputs(predictor, iterator, window, device, steps=None):
    """(xs, ts, logits) for each window of up to `window` steps that the
    iterator gives, until it runs out or `steps` steps have passed: in test
    mode, without a graph, the state carrying from window to window.

    xs, ts int32 (window, batch); logits (window * batch, n_vocab).
    """
    done = 0
    while steps is None or done < steps:
        length = window if steps is None else min(window, steps - done)
        try:
            xs, ts = next_window(iterator, length, device)
        except StopIteration:
            return
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            logits = predictor.forward_window(xs)
        done += len(xs)
        yield xs, ts, logits


class PoolTrainingObservations(chainer.training.Extension):
    """Pools every iteration's main/ observations over the ranks.

    So that rank 0's LogReport logs the training loss and accuracies of
    all the streams, not of its own.
    """

    priority = extension.PRIORITY_EDITOR  # after the update, before logs

    def __init__(self, comm):
        self.comm = comm

    def __call__(self, trainer):
        observation = trainer.observation
        own = {key: value for key, value in observation.items()
               if key.startswith('main/')}
        # The weights count words: integers, as LogReport's summary must
        # find them in a snapshot.
        observation.update(
            (key, (mean, int(round(weight)))) for key, (mean, weight) in
            pooled_means([own], self.comm).items())


class LogFile(chainer.training.Extension):
    """Writes LogReport's log to the file log, as Chainer's LogReport does,
    through write(name, text) (an out_folder.OutFolder's)."""

    trigger = 1, 'epoch'
    priority = extension.PRIORITY_READER - 1  # after LogReport

    def __init__(self, write):
        self.write = write

    def __call__(self, trainer):
        self.write('log', json.dumps(
            trainer.get_extension('LogReport').log, indent=4))


class LogPlotReport(extensions.PlotReport):
    """PlotReport that draws what LogReport logged, on one figure it keeps.

    Chainer's PlotReport averages the observations a second time, which it
    does not save in snapshots (a plot resumed mid-epoch goes wrong), and
    builds a new figure with a tight bounding box every time (slow). This
    one holds no state of its own and only redraws the lines. It writes
    through write(name, data), and titles the plot with title.
    """

    trigger = 1, 'epoch'
    priority = extension.PRIORITY_READER - 1  # after LogReport

    def __init__(self, y_keys, file_name, title, write):
        super().__init__(y_keys, 'epoch', file_name=file_name)
        self.y_keys = y_keys
        self.file_name = file_name
        self.title = title
        self.write = write
        self._figure = None

    def __call__(self, trainer):
        log = trainer.get_extension('LogReport').log
        if self._figure is None:
            self._figure, self._lines = self._draw_empty()
        for key, line in zip(self.y_keys, self._lines):
            points = [(entry['epoch'], entry[key]) for entry in log
                      if key in entry]
            line.set_data(*zip(*points) if points else ([], []))
        axes = self._figure.axes[0]
        axes.relim()
        axes.autoscale_view()
        png = io.BytesIO()
        self._figure.savefig(png, format='png')
        self.write(self.file_name, png.getvalue())

    def _draw_empty(self):
        # Without pyplot, which would look for a GUI backend.
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        figure = Figure(figsize=(7, 4.8))
        # Fixed margins: a layout engine would measure the text at every
        # draw, slow enough to show in a default run (docs/speed.md).
        figure.subplots_adjust(left=0.1, right=0.97, bottom=0.1, top=0.92)
        axes = figure.add_subplot()
        axes.set_title(self.title, fontsize='medium')
        axes.set_xlabel('epoch')
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid()
        lines = [axes.plot([], [], marker='x', label=key)[0]
                 for key in self.y_keys]
        axes.legend(loc='best', fontsize='small')
        return figure, lines

    def serialize(self, serializer):
        pass  # everything it draws comes from LogReport, which is saved


class Diverged(Exception):
    """Training produced a parameter that is NaN or infinite."""


class StopOnDivergence(extensions.FailOnNonNumber):
    """FailOnNonNumber that raises Diverged, before anything logs the NaNs."""

    priority = extensions.Evaluator.priority + 1

    def __call__(self, trainer):
        try:
            super().__call__(trainer)
        except RuntimeError:
            raise Diverged('training diverged at iteration {}: a parameter '
                           'became NaN or infinite'
                           .format(trainer.updater.iteration)) from None


class StopOnRequest:
    """A stop trigger that also fires once request() was called.

    Chainer's Trainer.run lets KeyboardInterrupt through mid-update, so a
    Ctrl-C handler calls request() instead, and the run stops at the next
    update boundary with its state intact. With a ChainerMN communicator
    the ranks agree at every update: a request on any stops them all there.
    """

    def __init__(self, trigger, comm=None):
        self.trigger = chainer.training.get_trigger(trigger)
        self.comm = comm
        self.requested = False

    def request(self):
        self.requested = True

    def __call__(self, trainer):
        fire = self.trigger(trainer)
        if self.comm is not None:
            self.requested = bool(self.comm.allreduce_obj(self.requested))
        return fire or self.requested

    def get_training_length(self):
        return self.trigger.get_training_length()

    def serialize(self, serializer):
        self.trigger.serialize(serializer)


class PrintedOutput:
    """stdout for PrintReport and ProgressBar: what it cannot write is
    dropped as print_or_drop drops it, so that a run goes on unprinted where
    its reader has gone (a closed pipe, a terminal that hung up). Off a
    terminal it also drops the erase-line code PrintReport writes before
    every line, which only clutters a file."""

    ERASE_LINE = '\033[J'

    def __init__(self, stream, terminal):
        self.stream = stream
        self.terminal = terminal

    def write(self, text):
        if self.stream is None:  # started with stdout closed
            return
        try:
            return self.stream.write(
                text if self.terminal else text.replace(self.ERASE_LINE, ''))
        except OSError as error:
            cli.write_failed(self.stream, error)

    def flush(self):
        if self.stream is None:
            return
        try:
            self.stream.flush()
        except OSError as error:
            cli.write_failed(self.stream, error)


def write_graph_files(graph, write):
    """Write a computational graph to cg.dot, one statement a line, and
    draw it to cg.png where Graphviz's dot is on PATH."""
    dot = readable_dot(graph.dump())
    write('cg.dot', dot)
    if shutil.which('dot') is None:
        return
    try:
        png = subprocess.run(['dot', '-Tpng'], input=dot.encode(),
                             capture_output=True, timeout=120,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError) as error:
        cli.print_or_drop('Graphviz could not draw cg.png ({}): cg.dot is '
                          'written'.format(error), sys.stderr)
        return
    write('cg.png', png)


def readable_dot(text):
    """Chainer's one-line DOT text, with a line break after each statement."""
    lines, start, quoted = [], 0, False
    for index, char in enumerate(text):
        if char == '"' and text[index - 1] != '\\':
            quoted = not quoted
        elif char in ';{' and not quoted:
            lines.append(text[start:index + 1])
            start = index + 1
    lines.append(text[start:])
    return '\n'.join(line for line in lines if line) + '\n'
