"""Day 9: progress bars that end the way the loop did.

A tqdm bar closed before its total turns red in a notebook ("something failed"). Loops
that stop early on purpose — a learning-rate range test that stops once the loss
diverges, early stopping, a stop button, or a step count that was only an estimate —
call :func:`finish` instead of ``bar.close()``: the total shrinks to the steps taken and
the bar closes complete (green). A bar left short by an exception still shows red.

>>> import io
>>> from tqdm import tqdm
>>> bar = tqdm(total=10, file=io.StringIO())
>>> _ = bar.update(4)
>>> finish(bar); bar.total, bar.n
(4, 4)
"""

from __future__ import annotations

from typing import Any


def finish(bar: Any) -> None:
    """Close ``bar`` (a tqdm bar) as complete at the steps it has counted."""
    if bar.total and bar.n < bar.total:
        bar.total = bar.n
        container = getattr(bar, "container", None)  # tqdm.notebook: (label, progress, text)
        if container is not None:
            container.children[1].max = max(bar.n, 1)
        bar.refresh()
    bar.close()
