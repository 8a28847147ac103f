"""The capacity study's report: how far each model counts, from the records.

A record is one run of the sweep, one JSON line: arch, vocab, bproplen,
seed, tokens (trained), learned_tokens (the tokens at the first of the two
exact evaluations in a row that stopped it; null if it reached the cap
first: censored), history (a list of {updates, tokens, <teacher-forced
metrics>}), the final capacity.METRICS at the top level, seconds and
settings. write_report turns a list of them into

- capacity_share.png: the share of runs that learned against N, with
  Wilson 95% bands, a panel per bproplen;
- capacity_tokens.png: the median tokens to learn against N (log scale),
  with distribution-free 95% intervals and every run that learned;
- capacity_frontier.png: per architecture and bproplen, the largest N at
  which at least half the runs learned, with its interval;
- capacity.md: the same as tables, the counting-past-the-window table and
  the tests behind each ranking.
"""
import setup_check  # noqa: F401  (first: says so where Chainer is missing)
import quiet_start

if __name__ == '__main__':  # before Chainer loads
    quiet_start.install()

import math
import os
import platform
import shlex
import sys

import chainer_compat  # noqa: F401  (must precede chainer)

import chainer
import numpy
import threadpoolctl

import cli
from cli import UsageError
import snapshots
from study import VARIANTS, statistics
from study.records import RECORDS, read_records

FIGURES = ('capacity_share.png', 'capacity_tokens.png',
           'capacity_frontier.png')
LOCK = '.capacity.md.lock'  # held by the report that writes (writing_alone)
REPORT_BYTES = 1 << 20  # more than its files take, some 150 kB


def cell_of(record):
    return record['arch'], record['bproplen'], record['vocab']


def has_learned(record):
    return record['learned_tokens'] is not None


def late_boundary_accuracy(record):
    """The mean boundary accuracy over the last quarter of a run's
    evaluations: one evaluation of a curve that swings says little."""
    history = record['history']
    last = history[-max(1, len(history) // 4):]
    return sum(point['boundary_accuracy'] for point in last) / len(last)


def summarize(records):
    """{(arch, bproplen, vocab): entry}, entry holding runs, learned, share,
    wilson (low, high), median (tokens to learn, Kaplan-Meier; math.inf
    where fewer than half learned), median_interval (low, high) and
    boundary (mean, lowest, highest of late_boundary_accuracy)."""
    groups = {}
    for record in records:
        groups.setdefault(cell_of(record), []).append(record)
    summary = {}
    for key in sorted(groups):
        group = groups[key]
        times = [record['learned_tokens'] if has_learned(record)
                 else record['tokens'] for record in group]
        events = [has_learned(record) for record in group]
        boundary = [late_boundary_accuracy(record) for record in group]
        summary[key] = {
            'runs': len(group), 'learned': sum(events),
            'share': sum(events) / len(group),
            'wilson': statistics.wilson(sum(events), len(group)),
            'median': statistics.km_median(times, events),
            'median_interval': statistics.median_interval(times, events),
            'boundary': (sum(boundary) / len(boundary), min(boundary),
                         max(boundary)),
        }
    return summary


def lines_of(summary):
    """{(arch, bproplen): [(vocab, entry)] in increasing N}."""
    lines = {}
    for (arch, bproplen, vocab), entry in sorted(summary.items()):
        lines.setdefault((arch, bproplen), []).append((vocab, entry))
    return lines


def frontiers(summary):
    """{(arch, bproplen): frontier}, a frontier holding

    - n: the largest N at which at least half the runs learned (None if
      none did), with low and high: the largest N whose Wilson interval
      lies at or above one half, and the largest whose interval reaches
      it (None where no N qualifies);
    - open: whether the largest N run still had half learn, so that the
      frontier may lie beyond the grid;
    - first: the smallest N run, below which a frontier that is None
      lies;
    - longest: (N, learned, runs) of the largest N at which any run
      learned, or None.
    """
    found = {}
    for line, cells in lines_of(summary).items():
        def largest(test):
            return max((vocab for vocab, entry in cells if test(entry)),
                       default=None)
        found[line] = {
            'n': largest(lambda entry: entry['share'] >= 0.5),
            'low': largest(lambda entry: entry['wilson'][0] >= 0.5),
            'high': largest(lambda entry: entry['wilson'][1] >= 0.5),
            'open': cells[-1][1]['share'] >= 0.5,
            'first': cells[0][0],
            'longest': max(((vocab, entry['learned'], entry['runs'])
                            for vocab, entry in cells if entry['learned']),
                           default=None),
        }
    return found


def rankings(summary, found):
    """[(bproplen, better, worse, vocab, p)]: per bproplen, each
    architecture against the next by frontier, at the smallest N where the
    lower one has fewer than half learn and both ran; p of Fisher's exact
    test of the two shares there."""
    tests = []
    for bproplen in sorted({line[1] for line in found}):
        archs = sorted((arch for arch, b in found if b == bproplen),
                       key=lambda arch: -(found[arch, bproplen]['n'] or 0))
        for better, worse in zip(archs, archs[1:]):
            vocab = next((vocab for vocab, entry in
                          lines_of(summary)[worse, bproplen]
                          if entry['share'] < 0.5 and
                          (better, bproplen, vocab) in summary), None)
            if vocab is None:
                continue
            tests.append((bproplen, better, worse, vocab, fisher_of(
                *(summary[arch, bproplen, vocab]
                  for arch in (better, worse)))))
    return tests


def fisher_of(first, second):
    """Fisher's exact p of two cells' shares."""
    return statistics.fisher_exact(first['learned'], first['runs'],
                                   second['learned'], second['runs'])


def choice_tests(summary):
    """[(variant, base, bproplen, vocab, p)]: each of VARIANTS against the
    architecture whose one choice it undoes, at every cell both ran."""
    return [(arch, VARIANTS[arch][0], bproplen, vocab,
             fisher_of(entry, summary[VARIANTS[arch][0], bproplen, vocab]))
            for (arch, bproplen, vocab), entry in summary.items()
            if arch in VARIANTS and
            (VARIANTS[arch][0], bproplen, vocab) in summary]


def window_tests(summary):
    """[(arch, shorter, longer, vocab, p)]: each architecture's shares at
    one N with two BPTT lengths next to each other, where they differ."""
    lines = lines_of(summary)
    tests = []
    for (arch, bproplen), cells in lines.items():
        longer = min((b for a, b in lines if a == arch and b > bproplen),
                     default=None)
        if longer is None:
            continue
        for vocab, entry in cells:
            other = summary.get((arch, longer, vocab))
            if other and other['share'] != entry['share']:
                tests.append((arch, bproplen, longer, vocab,
                              fisher_of(entry, other)))
    return tests


def paired_row(leading, first, second, p):
    """A table row: the leading columns, then the two cells and p."""
    return '| {} | {} against {} | {:.2g} |'.format(
        ' | '.join(map(str, leading)), cell_text(first), cell_text(second), p)


def cell_text(entry):
    """learned/runs, and the median tokens where half learned."""
    return '{}/{}{}'.format(entry['learned'], entry['runs'], (
        '' if entry['median'] == math.inf
        else ', ' + tokens_text(entry['median'])))


def colors(summary):
    return {arch: 'C{}'.format(number) for number, arch in
            enumerate(dict.fromkeys(key[0] for key in summary))}


def panels(summary, height=3.2):
    """A figure with a panel per bproplen, sharing N, and the bproplens."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend

    bproplens = sorted({key[1] for key in summary})
    figure = Figure(figsize=(max(4.2 * len(bproplens), 8), height + 1.2))
    figure.subplots_adjust(left=0.08, right=0.98, top=0.8, bottom=0.3,
                           wspace=0.25)
    axes = figure.subplots(1, len(bproplens), squeeze=False, sharex=True)[0]
    for ax, bproplen in zip(axes, bproplens):
        ax.set_title('bproplen {}'.format(bproplen), fontsize='medium')
        ax.set_xlabel('vocabulary N (blocks up to N-1)')
        ax.grid(True, alpha=0.4)
    return figure, axes, bproplens


def panel_lines(summary, axes, bproplens):
    """(ax, arch, [(vocab, entry)]): each architecture's line, in the panel
    of its bproplen."""
    lines = lines_of(summary)
    for ax, bproplen in zip(axes, bproplens):
        for (arch, b), cells in lines.items():
            if b == bproplen:
                yield ax, arch, cells


def legend_below(figure, axes):
    """The architectures' legend under the panels, off the data."""
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if entries:
        figure.legend(list(entries.values()), list(entries), ncol=len(entries),
                      loc='lower center', fontsize='small', frameon=False)


def finish(figure, axes, ylabel, title, f):
    """Label the panels' y axis, put the legend below and save to f."""
    axes[0].set_ylabel(ylabel)
    legend_below(figure, axes)
    figure.suptitle(title, fontsize='medium')
    save(figure, f)


def plot_share(summary, f):
    """capacity_share.png: share learned against N, Wilson 95% bands."""
    figure, axes, bproplens = panels(summary)
    color = colors(summary)
    for ax, arch, cells in panel_lines(summary, axes, bproplens):
        x = [vocab for vocab, _ in cells]
        ax.plot(x, [entry['share'] for _, entry in cells], marker='o',
                markersize=3, color=color[arch], label=arch)
        ax.fill_between(x, *zip(*(entry['wilson'] for _, entry in cells)),
                        color=color[arch], alpha=0.15, linewidth=0)
    for ax in axes:
        ax.axhline(0.5, color='gray', linestyle='--', linewidth=1)
        ax.set_ylim(-0.03, 1.03)
    finish(figure, axes, 'share of runs that learned',
           'Which runs learned within the cap (a whole period exact at two '
           'evaluations in a row)\nbands: Wilson 95%', f)


def plot_tokens(summary, records, f):
    """capacity_tokens.png: median tokens to learn against N, log scale."""
    figure, axes, bproplens = panels(summary)
    color = colors(summary)
    cap = max(record['settings']['tokens'] for record in records)
    for ax, arch, cells in panel_lines(summary, axes, bproplens):
        cells = [(vocab, entry) for vocab, entry in cells
                 if entry['median'] < math.inf]
        if not cells:
            continue
        median = numpy.array([entry['median'] for _, entry in cells])
        low, high = (numpy.minimum([entry['median_interval'][side]
                                    for _, entry in cells], cap)
                     for side in (0, 1))
        ax.errorbar([vocab for vocab, _ in cells], median,
                    yerr=numpy.vstack([median - low, high - median]),
                    marker='o', markersize=3, capsize=2, color=color[arch],
                    label=arch)
    for ax, bproplen in zip(axes, bproplens):
        for record in records:
            if record['bproplen'] == bproplen and has_learned(record):
                ax.plot(record['vocab'], record['learned_tokens'],
                        linestyle='', marker='.', markersize=2, alpha=0.4,
                        color=color[record['arch']])
        ax.axhline(cap, color='gray', linestyle='--', linewidth=1)
        ax.set_yscale('log')
    finish(figure, axes, 'tokens to learn',
           'Median tokens to learn (Kaplan-Meier), with 95% intervals\n'
           'dots: single runs; dashed: the cap', f)


def plot_frontier(found, f):
    """capacity_frontier.png: the frontier per architecture, a marker per
    bproplen, its interval as a bar; an arrow where it may lie beyond."""
    from matplotlib.figure import Figure

    archs = list(dict.fromkeys(arch for arch, _ in found))
    bproplens = sorted({bproplen for _, bproplen in found})
    figure = Figure(figsize=(max(1.3 * len(archs) + 2, 7), 4.4))
    figure.subplots_adjust(left=0.12, right=0.98, top=0.84, bottom=0.26)
    ax = figure.subplots()
    width = 0.8 / len(bproplens)
    for number, bproplen in enumerate(bproplens):
        offset = (number - (len(bproplens) - 1) / 2) * width
        for position, arch in enumerate(archs):
            frontier = found.get((arch, bproplen))
            if frontier is None or frontier['n'] is None:
                continue
            x = position + offset
            low = frontier['low'] or frontier['n']
            high = frontier['high'] or frontier['n']
            ax.plot([x, x], [low, high], color='C{}'.format(number),
                    linewidth=2, alpha=0.5)
            ax.plot(x, frontier['n'], marker='^' if frontier['open'] else
                    'o', color='C{}'.format(number),
                    label='bproplen {}'.format(bproplen)
                    if position == 0 else None)
    ax.set_xticks(range(len(archs)), archs)
    ax.set_ylabel('largest N at which half learn')
    ax.grid(True, axis='y', alpha=0.4)
    figure.legend(*ax.get_legend_handles_labels(), loc='lower center',
                  ncol=len(bproplens), fontsize='small', frameon=False)
    figure.suptitle('The frontier; bars: from the largest N whose Wilson '
                    'interval lies above\none half to the largest it '
                    'reaches; a triangle: the largest N tried',
                    fontsize='medium')
    save(figure, f)


def save(figure, f):
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


def tokens_text(value):
    return '-' if value == math.inf else '{:,}'.format(int(value))


def frontier_text(frontier):
    text = 'below {}'.format(frontier['first']) if frontier['n'] is None \
        else '{}{}'.format('>= ' if frontier['open'] else '', frontier['n'])
    if frontier['high'] is None:
        return text
    return '{} [{}, {}]'.format(text, frontier['low'] or 'below',
                                frontier['high'])


def past_window_text(frontier, bproplen):
    """The longest block any run learned, and whether it is longer than the
    window."""
    if frontier['longest'] is None:
        return 'none', 'no'
    vocab, learned, runs = frontier['longest']
    return ('{} (N={}, {}/{})'.format(vocab - 1, vocab, learned, runs),
            'yes' if vocab - 1 > bproplen else 'no')


def markdown(summary, records, command, wall=None, machine_info=None):
    """capacity.md's text: the runs, the frontiers, counting past the
    window, the rankings' tests, then every cell."""
    machine_info = machine() if machine_info is None else machine_info
    settings = records[0]['settings']
    found = frontiers(summary)
    lines = [
        '# How far can each model count?', '',
        '{} runs, a cap of {:,} tokens each, {:.1f} min of run time '
        'together. Last written by `{}`{} (`make capacity` makes the whole '
        'study).'.format(
            len(records), settings['tokens'],
            sum(record['seconds'] for record in records) / 60, command,
            '' if wall is None else
            ', whose session took {:.1f} min of wall time'.format(
                wall / 60)), '',
        'Settings: {}.'.format(', '.join(
            '{} {}'.format(key, value)
            for key, value in sorted(settings.items()))), '',
    ] + ['- {}: {}'.format(what, text)
         for what, text in machine_info.items()] + [
        '',
        'A run has learned when a whole period of every stream comes out '
        'exact, teacher-forced, at two evaluations in a row; the tokens to '
        'learn are those of the first. A run that reaches the cap first is '
        'censored there.', '',
        '## The frontier', '',
        'The largest N at which at least half the runs learned, and in '
        'brackets the largest N whose Wilson 95% interval lies at or above '
        'one half and the largest whose interval reaches it; ">=" where '
        'the largest N run still had half learn, "below" where the '
        'smallest did not.', '',
        '| arch | ' + ' | '.join(
            'bproplen {}'.format(bproplen)
            for bproplen in bproplens_of(found)) + ' |',
        '|---|' + '---|' * len(bproplens_of(found)),
    ]
    for arch in dict.fromkeys(arch for arch, _ in found):
        lines.append('| {} | {} |'.format(arch, ' | '.join(
            frontier_text(found[arch, bproplen])
            if (arch, bproplen) in found else ''
            for bproplen in bproplens_of(found))))
    lines += [
        '', '## Counting past the window', '',
        'The longest block any run learned (its N, and how many of its runs '
        'learned), and whether it is longer than the BPTT window.', '',
        '| arch | bproplen | longest block learned | longer than the '
        'window |', '|---|---|---|---|',
    ]
    for (arch, bproplen), frontier in found.items():
        lines.append('| {} | {} | {} | {} |'.format(
            arch, bproplen, *past_window_text(frontier, bproplen)))
    lines += [
        '', '## Rankings and their tests', '',
        'Each architecture against the next lower frontier, at the '
        'smallest N where the lower one has fewer than half learn: '
        'Fisher\'s exact test, two-sided.', '',
        '| bproplen | higher | lower | N | learned | p |',
        '|---|---|---|---|---|---|',
    ]
    for bproplen, better, worse, vocab, p in rankings(summary, found):
        lines.append('| {} | {} | {} | {} | {} against {} | {:.2g} |'.format(
            bproplen, better, worse, vocab, *(
                '{learned}/{runs}'.format(**summary[arch, bproplen, vocab])
                for arch in (better, worse)), p))
    tests = choice_tests(summary)
    if tests:
        lines += [
            '', '## One choice at a time', '',
            'Each variant against the architecture whose one choice it '
            'undoes, at every cell both ran: learned/runs and the median '
            'tokens to learn where half learned; Fisher\'s exact test, '
            'two-sided.', '',
            '| arch | against | bproplen | N | learned | p |',
            '|---|---|---|---|---|---|',
        ]
        lines += [paired_row((variant, base, bproplen, vocab),
                             summary[variant, bproplen, vocab],
                             summary[base, bproplen, vocab], p)
                  for variant, base, bproplen, vocab, p in tests]
    tests = window_tests(summary)
    lines += ['', '## The window', '']
    if tests:
        lines += [
            'Each architecture at one N with BPTT lengths next to each '
            'other, where the shares learned differ: Fisher\'s exact test, '
            'two-sided.', '',
            '| arch | N | bproplens | learned | p |', '|---|---|---|---|---|',
        ]
        lines += [paired_row((arch, vocab, '{} against {}'.format(
                      shorter, longer)), summary[arch, shorter, vocab],
                      summary[arch, longer, vocab], p)
                  for arch, shorter, longer, vocab, p in tests]
    else:
        lines.append('No architecture learned a different share at one N '
                     'with two BPTT lengths.')
    lines += [
        '', '## Every cell', '',
        'Share learned with its Wilson 95% interval; median tokens to learn '
        '(Kaplan-Meier) with a distribution-free 95% interval, "-" where '
        'fewer than half learned or the bound is past the cap; boundary '
        'accuracy averaged over the last quarter of each run\'s '
        'evaluations, mean [lowest, highest] over runs (copying the input '
        'scores 0 there).', '',
        '| arch | bproplen | N | learned | share [95%] | median tokens '
        '[95%] | boundary accuracy |', '|---|---|---|---|---|---|---|',
    ]
    for (arch, bproplen, vocab), entry in summary.items():
        lines.append(
            '| {} | {} | {} | {}/{} | {:.2f} [{:.2f}, {:.2f}] | {} [{}, {}] '
            '| {:.2f} [{:.2f}, {:.2f}] |'.format(
                arch, bproplen, vocab, entry['learned'], entry['runs'],
                entry['share'], *entry['wilson'],
                tokens_text(entry['median']),
                *map(tokens_text, entry['median_interval']),
                *entry['boundary']))
    return '\n'.join(lines) + '\n'


def bproplens_of(found):
    return sorted({bproplen for _, bproplen in found})


def writing_alone(out):
    """cli.writing_alone for the report in out."""
    return cli.writing_alone(out, LOCK, 'report')


def check_out(out):
    """OSError unless out takes the report: before the sweep's hours, not
    after (snapshots.check_takes)."""
    with writing_alone(out):
        snapshots.check_takes(out, ('capacity.md',) + FIGURES, REPORT_BYTES)


def is_current(records, out):
    """Whether out holds the report of records: all four files, the text
    drawn from as many runs (records are only ever added)."""
    try:
        with snapshots.open_regular_file(os.path.join(out, 'capacity.md'),
                                         follow=False) as f:
            head = f.read(4096).decode('utf-8', 'replace')
    except snapshots.FileError:
        return False
    return all(os.path.isfile(os.path.join(out, name)) for name in FIGURES) \
        and '\n{} runs, a cap of '.format(len(records)) in head


def size_of(path):
    """path's size in bytes, None where it cannot be seen: a record file
    only grows."""
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def write_report(records, out, command=None, wall=None):
    """Write FIGURES and capacity.md to out, alone (writing_alone); the
    summary. wall: the seconds of the session that ran them, None if none
    did."""
    with writing_alone(out):
        return draw_report(records, out, command, wall)


def draw_report(records, out, command=None, wall=None):
    """write_report, in writing_alone(out)."""
    spec = getattr(sys.modules['__main__'], '__spec__', None)
    argv = ['-m', spec.name] + sys.argv[1:] if spec else sys.argv
    command = command or ' '.join(
        ['python'] + [shlex.quote(arg) for arg in argv])
    summary = summarize(records)
    snapshots.remove_leftovers(out, FIGURES + ('capacity.md',))
    # All four or none: a stop while a figure was drawn left the new ones
    # beside older ones.
    with snapshots.atomic_files([os.path.join(out, name) for name in (
            ('capacity.md',) + FIGURES)]) as (text, share, tokens, frontier):
        text.write(markdown(summary, records, command, wall).encode())
        plot_share(summary, share)
        plot_tokens(summary, records, tokens)
        plot_frontier(frontiers(summary), frontier)
    return summary


def comparison(studies):
    """Markdown: the frontier of each architecture and bproplen that every
    one of studies ({name: records}) ran, a column per study, then every
    cell they all ran, each study after the first with Fisher's p against
    it; a line that says so where they ran none alike."""
    summaries = {name: summarize(records)
                 for name, records in studies.items()}
    found = {name: frontiers(summary) for name, summary in summaries.items()}
    lines = set.intersection(*(set(each) for each in found.values()))
    if not lines:
        return ('No side-by-side frontiers: {} share no architecture with '
                'the same bproplen.\n'.format(' and '.join(studies)))
    rows = ['| arch | bproplen | ' + ' | '.join(studies) + ' |',
            '|---|---|' + '---|' * len(studies)]
    for arch, bproplen in sorted(lines, key=lambda line: (line[1], line[0])):
        rows.append('| {} | {} | {} |'.format(arch, bproplen, ' | '.join(
            frontier_text(each[arch, bproplen]) for each in found.values())))
    first, *others = summaries.values()
    cells = sorted(set.intersection(*map(set, summaries.values())),
                   key=lambda cell: (cell[1], cell[0], cell[2]))
    rows.append('')
    if not cells:
        rows.append('No cell was run by every one of them.')
        return '\n'.join(rows) + '\n'
    rows += ['Cells every one ran: learned/runs, the median tokens to learn '
             'where half learned, and Fisher\'s p against the first.', '',
             '| arch | bproplen | N | ' + ' | '.join(studies) + ' |',
             '|---|---|---|' + '---|' * len(studies)]
    for cell in cells:
        rows.append('| {} | {} | {} | {} |'.format(*cell, ' | '.join(
            [cell_text(first[cell])] + [
                '{} (p {:.2g})'.format(cell_text(other[cell]),
                                       fisher_of(other[cell], first[cell]))
                for other in others])))
    return '\n'.join(rows) + '\n'


def main(argv=None):
    parser = cli.ArgumentParser(
        prog='python -m study.capacity_report',
        description='Write the report of each folder from its '
        'capacity.jsonl, running nothing: every figure and table of the '
        'study comes from the records. A sweep may be writing the file. '
        'With several folders, also print their frontiers and the cells '
        'they all ran side by side.')
    parser.add_argument('folders', nargs='+', metavar='FOLDER',
                        type=cli.non_empty_path,
                        help='a folder holding capacity.jsonl')
    args = parser.parse_args(argv)
    # One folder twice would be written twice, and compared with nothing.
    real = [os.path.realpath(folder) for folder in args.folders]
    for index, folder in enumerate(args.folders):
        if real.index(real[index]) < index:
            parser.error('{} and {} are the same folder'.format(
                args.folders[real.index(real[index])], folder))
    studies = {}
    for folder in args.folders:
        path = os.path.join(folder, RECORDS)
        try:
            grown = size_of(path)
            records = read_records(path)
            with writing_alone(folder):
                # Read again where a sweep added records meanwhile: drawn
                # from the first read, the report replaced a newer one of
                # the sweep's with an older one (hostile pass 13).
                if size_of(path) != grown:
                    records = read_records(path)
                draw_report(records, folder)
        except UsageError as error:
            parser.error(str(error))
        except OSError as error:
            return cli.writing_failed(parser.prog, folder, error)
        cli.print_or_drop('Wrote the report of {} runs to {}'.format(
            len(records), folder))
        studies['{} (alpha {})'.format(
            folder, records[0]['settings']['alpha'])] = records
    if len(studies) > 1:
        cli.print_or_drop(comparison(studies).rstrip('\n'))
    return 0


if __name__ == '__main__':
    sys.exit(cli.run_script(main))
