"""The capacity study's report: summaries, plots and markdown of run records.

A record is one run of the sweep, one JSON line: arch, vocab, bproplen,
seed, tokens, updates, converged_at (the first evaluation with a whole
period exact, where the run stopped; null if the budget ran out first),
history (a list of {updates, tokens, <capacity.METRICS>}), the final
capacity.METRICS at the top level, seconds and settings. write_report
turns a list of them into capacity.png, capacity_curves.png and capacity.md.
"""
import os
import platform
import shlex
import sys

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import numpy
import threadpoolctl

from study.capacity import METRICS
import snapshots

METRIC_NAMES = {
    'accuracy': 'overall accuracy',
    'boundary_accuracy': 'boundary accuracy',
    'non_boundary_accuracy': 'accuracy inside blocks',
    'counting_horizon': 'counting horizon',
    'exact_period': 'share with a whole period exact',
    'generation_cold': 'generation from a reset (by position)',
    'generation_warm': 'generation after a warm-up (by block)',
}
INTERVALS = {
    'bootstrap': 'bootstrap 95% interval of the mean over seeds '
                 '({} resamples, seed {})',
    'minmax': 'lowest to highest over seeds',
}
RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # the same records give the same report
# What the history holds: the teacher-forced metrics (capacity.py)
CURVE_METRICS = ('boundary_accuracy', 'non_boundary_accuracy',
                 'counting_horizon')


def cell_of(record):
    return record['arch'], record['bproplen'], record['vocab']


def summarize(records, interval='bootstrap'):
    """{(arch, bproplen, vocab): {metric: (mean, low, high), 'converged':
    runs that reached a whole period exact, 'runs': runs}}.

    exact_period averages to the share of runs with it. interval is a key
    of INTERVALS.
    """
    groups = {}
    for record in records:
        groups.setdefault(cell_of(record), []).append(record)
    summary = {}
    for key in sorted(groups):
        group = groups[key]
        entry = {metric: spread([float(record[metric]) for record in group],
                                interval) for metric in METRICS}
        entry['converged'] = sum(record['converged_at'] is not None
                                 for record in group)
        entry['runs'] = len(group)
        summary[key] = entry
    return summary


def spread(values, interval):
    """(mean, low, high) of values by the interval INTERVALS names."""
    values = numpy.asarray(values, numpy.float64)
    mean = float(values.mean())
    if interval == 'minmax':
        return mean, float(values.min()), float(values.max())
    if interval != 'bootstrap':
        raise ValueError('interval must be one of {} (got {!r})'.format(
            sorted(INTERVALS), interval))
    # The seed is fixed per call, so that a cell's interval depends on its
    # values alone, not on the cells summarized before it.
    random = numpy.random.RandomState(BOOTSTRAP_SEED)
    picks = random.randint(0, len(values), (RESAMPLES, len(values)))
    means = values[picks].mean(axis=1)
    low, high = numpy.percentile(means, [2.5, 97.5])
    return mean, float(low), float(high)


def interval_text(interval):
    return INTERVALS[interval].format(RESAMPLES, BOOTSTRAP_SEED)


def budget_text(settings):
    """The budget of every run, from the sweep's settings."""
    if 'tokens' in settings:
        return '{:,} tokens'.format(settings['tokens'])
    return '{:,} updates'.format(settings['updates'])


def plot(summary, records, path, interval='bootstrap'):
    """capacity.png: rows of metrics, columns of bproplen, x = N.

    A line per architecture, the mean with its interval shaded; each run a
    dot, filled if it converged, a cross if its budget ran out.
    """
    from matplotlib.figure import Figure  # no pyplot: no GUI backend

    archs = list(dict.fromkeys(key[0] for key in summary))
    bproplens = sorted({key[1] for key in summary})
    vocabs = sorted({key[2] for key in summary})
    figure = Figure(figsize=(4 * len(bproplens) + 1, 2.4 * len(METRICS)),
                    layout='constrained')
    axes = figure.subplots(len(METRICS), len(bproplens), squeeze=False,
                           sharex=True)
    colors = {arch: 'C{}'.format(number) for number, arch in
              enumerate(archs)}
    for column, bproplen in enumerate(bproplens):
        for row, metric in enumerate(METRICS):
            ax = axes[row][column]
            for arch in archs:
                keys = [key for key in summary
                        if key[:2] == (arch, bproplen)]
                if not keys:
                    continue
                x = [key[2] for key in keys]
                mean, low, high = zip(*(summary[key][metric]
                                        for key in keys))
                ax.plot(x, mean, marker='', color=colors[arch], label=arch)
                ax.fill_between(x, low, high, alpha=0.2, color=colors[arch])
            for record in records:
                if record['bproplen'] != bproplen:
                    continue
                converged = record['converged_at'] is not None
                ax.plot(record['vocab'], float(record[metric]),
                        linestyle='', color=colors[record['arch']],
                        marker='o' if converged else 'x',
                        markersize=4, alpha=0.6)
            decorate(ax, metric, vocabs)
            if row == 0:
                ax.set_title('bproplen {}'.format(bproplen))
            if column == 0:
                ax.set_ylabel(METRIC_NAMES[metric], fontsize='small')
            if row == len(METRICS) - 1:
                ax.set_xlabel('vocabulary N (counts to N-1)')
    axes[0][-1].legend(loc='lower left', fontsize='small')
    settings = records[0]['settings']
    figure.suptitle(
        'A budget of {} a run. Lines: the mean; shaded: the {};\n'
        'dots: runs that converged (a whole period exact), crosses: runs '
        'that ran out of budget'.format(
            budget_text(settings), interval_text(interval)),
        fontsize='medium')
    save(figure, path)


def decorate(ax, metric, vocabs):
    """Scales and reference lines of one metric's panel."""
    ax.grid(True)
    x = numpy.linspace(min(vocabs), max(vocabs), 100)
    if metric == 'accuracy':
        # Copying the input is wrong at the N-1 boundaries of a period of
        # N(N-1)/2 words alone; zoomed, since every model gets near 1.
        ax.plot(x, 1 - 2 / x, color='gray', linestyle='--', linewidth=1,
                label='copy the input')
        ax.set_ylim(max(0.0, 1 - 2 / min(vocabs) - 0.05), 1.005)
        ax.legend(loc='lower right', fontsize='x-small')
    elif metric == 'counting_horizon':
        ax.plot(x, x - 1, color='gray', linestyle='--', linewidth=1,
                label='N-1: all of it')
        ax.set_ylim(-0.5, max(vocabs))
        ax.legend(loc='upper left', fontsize='x-small')
    else:
        ax.set_ylim(-0.02, 1.02)


def representative_cells(summary):
    """Per architecture, its longest bproplen at the middle of its N."""
    cells = []
    for arch in dict.fromkeys(key[0] for key in summary):
        bproplen = max(key[1] for key in summary if key[0] == arch)
        vocabs = sorted(key[2] for key in summary
                        if key[:2] == (arch, bproplen))
        cells.append((arch, bproplen, vocabs[len(vocabs) // 2]))
    return cells


def plot_curves(records, cells, path):
    """capacity_curves.png: learning curves of the cells (arch, bproplen,
    vocab), a column each; each metric of CURVE_METRICS against tokens, a
    line per seed, ending in a dot where the run converged."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3.6 * len(cells) + 1,
                             2.4 * len(CURVE_METRICS)), layout='constrained')
    axes = figure.subplots(len(CURVE_METRICS), len(cells), squeeze=False)
    for column, cell in enumerate(cells):
        runs = sorted((record for record in records
                       if cell_of(record) == cell),
                      key=lambda record: record['seed'])
        for row, metric in enumerate(CURVE_METRICS):
            ax = axes[row][column]
            for record in runs:
                tokens = [point['tokens'] for point in record['history']]
                values = [float(point[metric])
                          for point in record['history']]
                line, = ax.plot(tokens, values, linewidth=1,
                                label='seed {}'.format(record['seed']))
                if record['converged_at'] is not None and tokens:
                    ax.plot(tokens[-1], values[-1], marker='o',
                            color=line.get_color())
            ax.grid(True)
            if metric == 'counting_horizon':
                ax.set_ylim(-0.5, cell[2] - 0.5)
            else:
                ax.set_ylim(-0.02, 1.02)
            if row == 0:
                ax.set_title('{} N={} bproplen {}'.format(
                    cell[0], cell[2], cell[1]), fontsize='medium')
            if column == 0:
                ax.set_ylabel(METRIC_NAMES[metric], fontsize='small')
            if row == len(CURVE_METRICS) - 1:
                ax.set_xlabel('tokens trained on')
    axes[0][0].legend(loc='lower right', fontsize='x-small')
    figure.suptitle('Learning curves (a dot: converged, a whole period '
                    'exact)', fontsize='medium')
    save(figure, path)


def save(figure, path):
    with snapshots.atomic_file(path) as f:
        figure.savefig(f, format='png', dpi=80)


def machine():
    """{what: description} of the machine and software the runs used."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name')), cpu)
    except OSError:
        pass
    blas = ', '.join('{} {} ({}, {} threads)'.format(
        pool.get('internal_api'), pool.get('version'),
        pool.get('architecture', 'core type unknown'),
        pool.get('num_threads')) for pool in threadpoolctl.threadpool_info()
        if pool.get('user_api') == 'blas') or 'none found'
    return {
        'CPU': '{} ({} cores)'.format(cpu, os.cpu_count()),
        'BLAS': blas,
        'versions': 'Python {}, NumPy {}, Chainer {}'.format(
            platform.python_version(), numpy.__version__,
            chainer.__version__),
    }


def markdown(summary, records, command, wall, interval='bootstrap',
             machine_info=None):
    """capacity.md's text: how the runs were made, then a table per metric
    of mean [low, high] per cell, and the converged counts."""
    machine_info = machine() if machine_info is None else machine_info
    settings = records[0]['settings']
    archs = list(dict.fromkeys(key[0] for key in summary))
    bproplens = sorted({key[1] for key in summary})
    vocabs = sorted({key[2] for key in summary})
    lines = [
        '# How far can each model count?', '',
        '{} runs, a budget of {} each, {:.1f} min of run time together. '
        'Last written by `{}`, whose session took {:.1f} min of wall '
        'time (`make capacity` makes the whole study).'.format(
            len(records), budget_text(settings),
            sum(record['seconds'] for record in records) / 60, command,
            wall / 60), '',
        'Settings: {}.'.format(', '.join(
            '{} {}'.format(key, value)
            for key, value in sorted(settings.items()))), '',
    ] + ['- {}: {}'.format(what, text)
         for what, text in machine_info.items()] + [
        '',
        'Each cell: the mean over seeds and, in brackets, the {}. The '
        'copy-the-input baseline of overall accuracy is 1 - 2/N.'.format(
            interval_text(interval)),
    ]
    header = ['', '| arch | bproplen | ' + ' | '.join(
        'N={}'.format(vocab) for vocab in vocabs) + ' |',
        '|---|---|' + '---|' * len(vocabs)]
    for metric in METRICS + ('converged',):
        title = METRIC_NAMES.get(
            metric, 'Runs that converged (a whole period exact)')
        lines += ['', '## ' + title[0].upper() + title[1:]] + header
        for arch in archs:
            for bproplen in bproplens:
                cells = [cell_text(summary.get((arch, bproplen, vocab)),
                                   metric) for vocab in vocabs]
                lines.append('| {} | {} | {} |'.format(
                    arch, bproplen, ' | '.join(cells)))
    return '\n'.join(lines) + '\n'


def cell_text(entry, metric):
    if entry is None:
        return ''
    if metric == 'converged':
        return '{}/{}'.format(entry['converged'], entry['runs'])
    digits = 1 if metric == 'counting_horizon' else 2
    mean, low, high = entry[metric]
    return '{0:.{3}f} [{1:.{3}f}, {2:.{3}f}]'.format(mean, low, high, digits)


def write_report(records, out, command=None, wall=0.0,
                 interval='bootstrap'):
    """Write capacity.png, capacity_curves.png and capacity.md to out; the
    summary."""
    command = command or ' '.join(
        ['python'] + [shlex.quote(arg) for arg in sys.argv])
    summary = summarize(records, interval)
    plot(summary, records, os.path.join(out, 'capacity.png'), interval)
    plot_curves(records, representative_cells(summary),
                os.path.join(out, 'capacity_curves.png'))
    with snapshots.atomic_file(os.path.join(out, 'capacity.md'), 'w') as f:
        f.write(markdown(summary, records, command, wall, interval))
    return summary
