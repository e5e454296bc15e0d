"""course_lib.progress.finish: a loop that stops early on purpose leaves a complete bar, not a red one."""

import doctest

from tqdm.notebook import tqdm as notebook_tqdm

import course_lib.progress as progress


def test_doctests():
    failed, attempted = doctest.testmod(progress)
    assert attempted and not failed


def _style(bar) -> str:
    return bar.container.children[1].bar_style


def test_plain_close_of_a_short_bar_is_red_and_finish_is_green(capsys):
    short = notebook_tqdm(total=10)
    short.update(7)
    short.close()
    assert _style(short) == "danger"  # what a reader saw before: a red, unfinished bar

    bar = notebook_tqdm(total=10)
    bar.update(7)
    progress.finish(bar)
    assert _style(bar) == "success"
    assert (bar.total, bar.n, bar.container.children[1].max) == (7, 7, 7)


def test_finish_keeps_a_complete_bar_as_it_is(capsys):
    bar = notebook_tqdm(total=5)
    bar.update(5)
    progress.finish(bar)
    assert (_style(bar), bar.total) == ("success", 5)
