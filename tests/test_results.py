"""The committed results/ and the README table are what make results wrote."""
import json
import os

import pytest

import reference_runs


def committed_table():
    with open(os.path.join(reference_runs.RESULTS, 'results.md')) as f:
        text = f.read()
    return text[text.index('| arch |'):]


def test_the_readme_shows_the_committed_table():
    with open(reference_runs.README) as f:
        readme = f.read()
    shown = readme.split(reference_runs.TABLE_BEGIN)[1].split(
        reference_runs.TABLE_END)[0]
    assert shown.strip() == committed_table().strip()


@pytest.mark.parametrize('arch', reference_runs.REFERENCE_ARCHS)
def test_the_table_holds_the_final_numbers_of_the_committed_log(arch):
    with open(os.path.join(reference_runs.RESULTS, arch, 'log')) as f:
        final = json.load(f)[-1]
    row = next(line for line in committed_table().splitlines()
               if line.startswith('| {} |'.format(arch)))
    cells = [cell.strip() for cell in row.strip('|').split('|')]
    assert cells[1] == str(final['epoch']) == '10'
    assert cells[4:] == ['{:.4f}'.format(final[key]) for key in (
        'validation/main/loss', 'validation/main/accuracy',
        'validation/main/boundary_accuracy')]
    for name in reference_runs.KEPT_FILES:
        assert os.path.exists(os.path.join(reference_runs.RESULTS, arch,
                                           name))
