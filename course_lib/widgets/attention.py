"""Day 20: a live attention explorer: pick a layer, a head and a query token, edit the text.

    explorer = attention_explorer(model, tokenizer, "ROMEO: But soft, what light")
    explorer                      # displays in a notebook
    explorer.layer_slider.value = 1
    explorer.current_weights      # (T, T) numpy array now on screen

The heatmap is an HTML table built in Python (rows: queries, columns: keys), so moving
a slider only sends a string, not a rendered figure. Where no kernel runs (the built
book), the output shows its static stand-in instead: the kernel-free explorer of
:func:`course_lib.widgets.attention_explorer_html` on the same maps, whose layer and
head sliders work in the page.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import numpy as np
from torch import nn

from course_lib.widgets._render import (
    HEATMAP_CSS,
    bar_chart_svg,
    cell_size,
    colour_array,
    heatmap_table,
    png_data_uri,
    row_lengths,
    token_labels,
)
from course_lib.widgets.attention_html import attention_maps, encode_window, explorer_html
from course_lib.widgets.static import FULL_LABEL, StaticFallback

_CSS = "<style>" + HEATMAP_CSS.format(root=".cl-attn", px="{px}") + "</style>"


class AttentionExplorer(StaticFallback, widgets.VBox):
    """The widget returned by :func:`attention_explorer`.

    Controls: ``text_input``, ``layer_slider``, ``head_slider``, ``all_heads_toggle``,
    ``query_selector``. What is shown: ``attention`` (n_layer, n_head, T, T) for the
    current text, ``current_weights`` (T, T) for the chosen layer and head, ``current_row``
    (T,) for the chosen query, ``tokens`` (T labels), ``error`` (the last problem, or "").
    Without a kernel: :meth:`static_html`.
    """

    def __init__(self, model: nn.Module, tokenizer: Any, text: str, max_tokens: int = 64) -> None:
        self.model, self.tokenizer, self.max_tokens = model, tokenizer, max_tokens
        cfg = getattr(model, "config", None)
        self.block_size = getattr(cfg, "block_size", max_tokens)
        n_layer, n_head = getattr(cfg, "n_layer", 1), getattr(cfg, "n_head", 1)
        self.error = ""
        self.attention = np.zeros((n_layer, n_head, 1, 1))
        self.tokens: list[str] = []
        self.ids: list[int] = []
        layout = widgets.Layout(width="320px")
        self.text_input = widgets.Text(value=text, description="text", continuous_update=False,
                                       style=FULL_LABEL, layout=widgets.Layout(width="640px"))  # fmt: skip
        self.layer_slider = widgets.IntSlider(0, min=0, max=n_layer - 1, description="layer", style=FULL_LABEL,
                                              layout=layout)  # fmt: skip
        self.head_slider = widgets.IntSlider(0, min=0, max=n_head - 1, description="head", style=FULL_LABEL,
                                             layout=layout)  # fmt: skip
        self.all_heads_toggle = widgets.ToggleButton(False, description="all heads", icon="th",
                                                     tooltip="one small map per head of this layer",
                                                     layout=widgets.Layout(width="auto"))  # fmt: skip
        self.query_selector = widgets.Dropdown(description="query", options=[], style=FULL_LABEL,  # options: _run
                                               layout=layout)  # fmt: skip
        self.status = widgets.HTML()
        self.heatmap = widgets.HTML()
        self.bars = widgets.HTML()
        super().__init__([
            self.text_input,
            widgets.HBox([self.layer_slider, self.head_slider, self.all_heads_toggle]),
            self.status, self.heatmap, self.query_selector, self.bars,
        ])  # fmt: skip
        self.add_class("cl-attn")
        self.text_input.observe(lambda _: self._run(), names="value")
        for control in (self.layer_slider, self.head_slider, self.all_heads_toggle):
            control.observe(lambda _: self._draw(), names="value")
        self.query_selector.observe(lambda _: self._draw(), names="value")
        self._run()

    # -- what is shown ----------------------------------------------------------------
    @property
    def current_weights(self) -> np.ndarray:
        """(T, T): the attention map of the chosen layer and head (row = query, column = key)."""
        return self.attention[self.layer_slider.value, self.head_slider.value]

    @property
    def current_row(self) -> np.ndarray:
        """(T,): how much the chosen query token attends to each key token."""
        return self.current_weights[self.query_selector.value]

    # -- updates ----------------------------------------------------------------------
    def _run(self) -> None:
        """Encode the text and run the model; on bad input keep the last maps and say why."""
        try:
            ids = encode_window(self.tokenizer, self.text_input.value, self.max_tokens, self.block_size)
        except ValueError as err:
            self.error = str(err)
            self.status.value = f'<span style="color:#b00">{html.escape(self.error)}</span>'
            return
        self.error = ""
        self.ids = ids
        self.attention = attention_maps(self.model, ids)  # (L, nh, T, T)
        self.tokens = token_labels(self.tokenizer, ids)
        T = len(ids)
        old = self.query_selector.value
        options = [(f"{i}: {label}", i) for i, label in enumerate(self.tokens)]
        self.query_selector.options = options  # resets the value to query 0
        self.query_selector.value = old if old is not None and old < T else T - 1
        shown = len(self.tokenizer.encode(self.text_input.value))
        cut = f" (first {T} of {shown})" if shown > T else ""
        self.status.value = (f"<small>{T} tokens{cut}; rows: the token that looks (query), columns: the "
                             "tokens it looks at (keys); colour ~ √weight, white = 0</small>")  # fmt: skip
        self._draw()

    def _draw(self) -> None:
        """Redraw the heatmap (or the grid of heads) and the chosen query's bars."""
        q = self.query_selector.value
        if q is None or not self.tokens:
            return
        css = _CSS.replace("{px}", str(cell_size(len(self.tokens))))
        if self.all_heads_toggle.value:
            self.heatmap.value = css + self._grid_html()
        else:  # the chosen query's row is outlined in red
            self.heatmap.value = css + heatmap_table(self.current_weights, self.tokens, highlight_row=q)
        n = row_lengths(self.current_weights)[q]  # the keys this query can see
        title = html.escape(f"query {q} '{self.tokens[q]}' (layer {self.layer_slider.value}, "
                            f"head {self.head_slider.value}) attends to:")  # fmt: skip
        self.bars.value = f"<small>{title}</small><br>" + bar_chart_svg(
            self.tokens[:n], self.current_row[:n].tolist(), highlight=q
        )

    def _grid_html(self) -> str:
        """One thumbnail per head of the chosen layer; the chosen head is outlined."""
        layer = self.attention[self.layer_slider.value]  # (nh, T, T)
        size = max(96, min(200, 4 * layer.shape[-1]))
        cells = []
        for h in range(layer.shape[0]):
            border = "#d62728" if h == self.head_slider.value else "#ddd"
            cells.append(
                f'<figure style="margin:4px;text-align:center;font:12px sans-serif">'
                f'<img src="{png_data_uri(colour_array(layer[h]))}" alt="head {h}" width="{size}" height="{size}" '
                f'style="image-rendering:pixelated;border:2px solid {border}">'
                f"<figcaption>head {h}</figcaption></figure>"
            )
        return '<div style="display:flex;flex-wrap:wrap">' + "".join(cells) + "</div>"

    def static_html(self) -> str:
        """The kernel-free explorer on the maps now shown (every layer and head), for the book."""
        if not self.tokens:
            return f"<p><em>attention explorer: {html.escape(self.error or 'no text')}</em></p>"
        note = ("Precomputed for this page, so the sliders work without a kernel. In JupyterLab the explorer "
                "runs on the kernel: all heads at once, a query's weights as bars, your own text.")  # fmt: skip
        return explorer_html(self.attention, self.tokens, type(self.model).__name__, note=note).html


def attention_explorer(model: nn.Module, tokenizer: Any, text: str, *, max_tokens: int = 64) -> AttentionExplorer:
    """A widget to look at ``model``'s attention on ``text`` (up to ``max_tokens`` tokens).

    ``model(idx, return_attention=True)`` (keyword only) must return (logits, loss, attention)
    with attention (n_layer, B, n_head, T, T), as :class:`course_lib.model.GPT` does (GQA heads
    expanded).
    """
    return AttentionExplorer(model, tokenizer, text, max_tokens)
