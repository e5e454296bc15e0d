"""Day 21: a live training monitor: a loss chart that grows while ``Trainer.fit()`` runs.

    monitor = TrainingMonitor()
    display(monitor.widget)
    Trainer(model, train_ids, val_ids, cfg, callbacks=[monitor]).fit()

The Trainer calls ``monitor(trainer, record)`` after every evaluation; the chart (inline
SVG, no matplotlib) and the status line update at once, because widget updates are
sent while the cell is still running.

The stop button: a notebook kernel reads button clicks only between cells, so while
``fit()`` blocks the cell a click waits until the run is over. To be able to stop a run,
start it with :meth:`TrainingMonitor.start`, which runs ``fit()`` on a background thread
and leaves the kernel free; the click then calls ``trainer.request_stop()`` and the run
ends after the current step. (Interrupting the kernel also stops a blocking run.)
"""

from __future__ import annotations

import html
import threading
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from course_lib.trainer import EvalRecord, History, Trainer

SERIES = (("train_loss", "train", "#1f77b4"), ("val_loss", "validation", "#ff7f0e"))


def loss_chart_svg(records: Sequence[EvalRecord], width: int = 560, height: int = 260) -> str:
    """Train and validation loss against the step as an inline SVG line chart (best val: a star)."""
    left, right, top, bottom = 52, 12, 12, 36
    pw, ph = width - left - right, height - top - bottom
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="11">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>']  # fmt: skip
    if not records:
        out.append(f'<text x="{left + 10}" y="{top + 20}" fill="#888">waiting for the first evaluation</text></svg>')
        return "".join(out)
    steps = [r.step for r in records]
    losses = [v for r in records for v in (r.train_loss, r.val_loss) if v == v and abs(v) != float("inf")]
    x0, x1 = min(steps), max(max(steps), min(steps) + 1)
    y0, y1 = (min(losses), max(losses)) if losses else (0.0, 1.0)
    pad = 0.05 * (y1 - y0 or 1.0)
    y0, y1 = y0 - pad, y1 + pad

    def sx(step: float) -> float:
        return left + pw * (step - x0) / (x1 - x0)

    def sy(loss: float) -> float:
        return top + ph * (y1 - loss) / (y1 - y0)

    for n in range(5):  # grid lines and tick labels
        yv, xv = y0 + (y1 - y0) * n / 4, x0 + (x1 - x0) * n / 4
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(yv):.1f}" y2="{sy(yv):.1f}" stroke="#eee"/>'
                   f'<text x="{left - 4}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv:.3g}</text>'
                   f'<text x="{sx(xv):.1f}" y="{top + ph + 14}" text-anchor="middle">{xv:.0f}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle">step</text>'
               f'<text x="12" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 12 {top + ph / 2})">'
               "loss (nats/token)</text>")  # fmt: skip
    for k, (field, name, colour) in enumerate(SERIES):
        pts = " ".join(f"{sx(r.step):.1f},{sy(getattr(r, field)):.1f}" for r in records)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for r in records:
            out.append(f'<circle cx="{sx(r.step):.1f}" cy="{sy(getattr(r, field)):.1f}" r="2.5" fill="{colour}">'
                       f"<title>step {r.step}: {name} {getattr(r, field):.4f}</title></circle>")
        out.append(f'<rect x="{left + pw - 120}" y="{top + 8 + 16 * k}" width="12" height="3" fill="{colour}"/>'
                   f'<text x="{left + pw - 104}" y="{top + 13 + 16 * k}">{name}</text>')
    best = min(records, key=lambda r: r.val_loss)
    out.append(f'<text x="{sx(best.step):.1f}" y="{sy(best.val_loss) + 5:.1f}" text-anchor="middle" font-size="16" '
               f'fill="#d62728">★<title>best val {best.val_loss:.4f} at step {best.step}</title></text></svg>')
    return "".join(out)


class TrainingMonitor:
    """A Trainer callback that draws the losses live. ``widget``: what to display.

    ``records`` lists every :class:`~course_lib.trainer.EvalRecord` received (in order);
    ``trainer`` is the last trainer that called; ``history`` is what :meth:`start` returned.
    """

    def __init__(self, title: str = "training") -> None:
        self.title = title
        self.records: list[EvalRecord] = []
        self.trainer: Trainer | None = None
        self.history: History | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self._stop_pending = False
        self.chart = widgets.HTML(loss_chart_svg([]))
        self.status = widgets.HTML(f"<b>{html.escape(title)}</b>: not started")
        self.stop_button = widgets.Button(description="stop", icon="stop", button_style="danger",
                                          tooltip="end the run after the current step")  # fmt: skip
        self.stop_button.on_click(lambda _: self.request_stop())
        self.widget = widgets.VBox([widgets.HBox([self.stop_button, self.status]), self.chart])

    def __call__(self, trainer: Trainer, record: EvalRecord) -> None:
        """Record one evaluation and redraw (the Trainer's callback signature)."""
        self.trainer = trainer
        self.records.append(record)
        if self._stop_pending:  # the button was pressed before this run had reported
            self._stop_pending = False
            trainer.request_stop()
        self.chart.value = loss_chart_svg(self.records)
        r = record
        self.status.value = (
            f"<b>{html.escape(self.title)}</b>: step {r.step}, train {r.train_loss:.4f}, val {r.val_loss:.4f} "
            f"(ppl {r.val_perplexity:.1f}), lr {r.lr:.2e}, {r.tokens_per_sec:,.0f} tokens/s, {r.elapsed_s:.0f} s"
        )
        self._show_running(trainer is None or not trainer.finishing)  # after the last evaluation: "done"

    def _show_running(self, running: bool) -> None:
        """Enable the stop button while a run can still be stopped; afterwards it reads "done"."""
        b = self.stop_button
        b.disabled = not running
        b.description, b.icon, b.button_style = ("stop", "stop", "danger") if running else ("done", "check", "")

    def request_stop(self) -> None:
        """What the stop button does: ask the trainer to end the run after its current step."""
        if self.trainer is not None:
            self.trainer.request_stop()
        else:
            self._stop_pending = True
        if not self.status.value.endswith(" — stopping"):
            self.status.value += " — stopping"
        self.stop_button.disabled = True  # pressed once: the run ends after its current step

    def start(self, trainer: Trainer, **fit_kwargs: Any) -> threading.Thread:
        """Run ``trainer.fit(**fit_kwargs)`` on a background thread with this monitor attached.

        The kernel stays free, so the stop button works. ``wait()`` joins the thread and
        returns the History (or raises what ``fit`` raised).
        """
        if self.thread is not None and self.thread.is_alive():
            raise RuntimeError("a run is already going: press stop or call wait() first")
        if self not in trainer.callbacks:
            trainer.callbacks.append(self)
        self.trainer, self.history, self.error = trainer, None, None
        self._show_running(True)

        def run() -> None:
            try:
                self.history = trainer.fit(**fit_kwargs)
                self.status.value += " — done"
            except BaseException as err:  # shown, and raised again by wait()
                self.error = err
                self.status.value = f'<span style="color:#b00">{html.escape(repr(err))}</span>'
            finally:
                self._show_running(False)

        self.thread = threading.Thread(target=run, name="course_lib-training", daemon=True)
        self.thread.start()
        return self.thread

    def wait(self, timeout: float | None = None) -> History | None:
        """Block until a run started with :meth:`start` ends; return its History."""
        if self.thread is not None:
            self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.history

    def _repr_html_(self) -> str:  # a static picture of the run so far
        return loss_chart_svg(self.records)

    def __repr__(self) -> str:
        last = f", last step {self.records[-1].step}" if self.records else ""
        return f"TrainingMonitor({len(self.records)} evaluations{last})"
