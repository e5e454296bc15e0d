"""Day 21: a sampling playground: see how temperature, top-k and top-p reshape the next token.

    playground = sampling_playground(model, tokenizer, "ROMEO:")
    playground                          # displays in a notebook
    playground.top_k_slider.value = 5
    playground.current_probs            # (V,) numpy: the distribution sampling now uses
    playground.settings                 # the sliders as a SamplingSettings
    playground.sample()                 # 200 new tokens with these settings

The bars show the 20 most likely next tokens: pale = softmax(logits / temperature)
before filtering, dark = what is left after top-k and top-p (renormalised), computed by
:func:`course_lib.model.generation.next_token_probs`, the function ``model.generate``
samples from.

Where no kernel runs (the built book), the output shows :meth:`SamplingPlayground.static_html`
instead: the settings, the summary line and the bars as they stand, without controls.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from torch import nn

from course_lib.model.generation import SamplingSettings, next_token_probs
from course_lib.widgets._render import hbar_html, token_labels
from course_lib.widgets.static import FULL_LABEL, StaticFallback

N_BARS = 20


class SamplingPlayground(StaticFallback, widgets.VBox):
    """The widget returned by :func:`sampling_playground`.

    Controls: ``prompt_input``, ``temperature_slider`` (0 = greedy), ``top_k_slider``
    (0 = off), ``top_p_slider`` (1 = off), ``sample_button``. State: ``current_probs`` (V,),
    ``before_filter`` (V,) the tempered distribution before top-k/top-p, ``entropy`` (bits)
    of ``current_probs``, ``last_sample``. Without a kernel: :meth:`static_html`.
    """

    def __init__(self, model: nn.Module, tokenizer: Any, prompt: str, seed: int, max_new_tokens: int) -> None:
        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        V = tokenizer.vocab_size
        self.current_probs = np.zeros(V)
        self.before_filter = np.zeros(V)
        self.entropy = 0.0
        self.last_sample = ""
        self.error = ""
        layout, label = widgets.Layout(width="400px"), dict(style=FULL_LABEL)
        self.prompt_input = widgets.Textarea(value=prompt, description="prompt", continuous_update=False, **label,
                                             layout=widgets.Layout(width="640px", height="60px"))  # fmt: skip
        self.temperature_slider = widgets.FloatSlider(1.0, min=0.0, max=2.0, step=0.05, description="temperature",
                                                      layout=layout, tooltip="0 = always the most likely token",
                                                      **label)  # fmt: skip
        self.top_k_slider = widgets.IntSlider(0, min=0, max=V, description="top-k", layout=layout, **label)
        self.top_p_slider = widgets.FloatSlider(1.0, min=0.05, max=1.0, step=0.05, description="top-p", layout=layout,
                                                **label)  # fmt: skip
        self.sample_button = widgets.Button(description=f"sample {max_new_tokens} tokens", icon="play",
                                            layout=widgets.Layout(width="auto"))  # fmt: skip
        self.summary = widgets.HTML()
        self.chart = widgets.HTML()
        self.output = widgets.HTML()
        super().__init__([
            self.prompt_input,
            widgets.HBox([widgets.VBox([self.temperature_slider, self.top_k_slider, self.top_p_slider]),
                          self.sample_button]),
            self.summary, self.chart, self.output,
        ])  # fmt: skip
        for control in (self.prompt_input, self.temperature_slider, self.top_k_slider, self.top_p_slider):
            control.observe(lambda _: self._update(), names="value")
        self.sample_button.on_click(lambda _: self.sample())
        self._update()

    # -- settings as generate() takes them ---------------------------------------------
    @property
    def settings(self) -> SamplingSettings:
        """The sliders (top-k 0 and top-p 1 = off, None) and max_new_tokens, as ``model.generate`` takes them."""
        k, p = self.top_k_slider.value, self.top_p_slider.value
        return SamplingSettings(max_new_tokens=self.max_new_tokens, temperature=float(self.temperature_slider.value),
                                top_k=int(k) if k > 0 else None, top_p=float(p) if p < 1.0 else None)  # fmt: skip

    def _prompt_ids(self) -> torch.Tensor:
        """The prompt as (1, T) ids, cropped to the model's last block_size tokens."""
        ids = self.tokenizer.encode(self.prompt_input.value)
        if not ids:
            raise ValueError("the prompt is empty: type at least one character")
        block = getattr(getattr(self.model, "config", None), "block_size", len(ids))
        return torch.tensor([ids[-block:]], dtype=torch.long, device=self.device)  # (1, T)

    @torch.no_grad()
    def _next_logits(self, idx: torch.Tensor) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        try:
            logits = self.model(idx)[0]  # (1, T, V)
        finally:
            self.model.train(was_training)
        return logits[:, -1, :].float()  # (1, V)

    # -- updates ------------------------------------------------------------------------
    def _update(self) -> None:
        try:
            idx = self._prompt_ids()
        except ValueError as err:
            self.error = str(err)
            self.summary.value = f'<span style="color:#b00">{html.escape(self.error)}</span>'
            return
        self.error = ""
        logits = self._next_logits(idx)  # (1, V)
        s = self.settings
        before = next_token_probs(logits, s.temperature)  # (1, V); greedy: all the mass on the argmax
        after = next_token_probs(logits, s.temperature, s.top_k, s.top_p)  # (1, V)
        self.before_filter = before[0].cpu().numpy()
        self.current_probs = after[0].cpu().numpy()
        self._draw()

    def _draw(self) -> None:
        p, b = self.current_probs, self.before_filter
        order = np.argsort(-b, kind="stable")[:N_BARS]  # the most likely before filtering
        labels = token_labels(self.tokenizer, order.tolist())
        kept = int((p > 0).sum())
        nz = p[p > 0]
        self.entropy = float(-(nz * np.log2(nz)).sum())
        self.summary.value = (
            f"<small>next token after {html.escape(repr(self.prompt_input.value[-30:]))}: "
            f"{kept} of {p.size} tokens can be drawn; entropy {self.entropy:.2f} bits. "
            "Pale bars: before top-k/top-p; dark bars: after (renormalised).</small>"
        )
        self.chart.value = hbar_html(labels, p[order].tolist(), ghost=b[order].tolist())

    def static_html(self) -> str:
        """The settings, the summary line and the bars as they stand now, with no controls."""
        s = self.settings
        shown = (f"temperature {s.temperature:g}, top-k {s.top_k or 'off'}, "
                 f"top-p {'off' if s.top_p is None else format(s.top_p, 'g')}")  # fmt: skip
        return (
            '<div class="sampling-static" style="font:13px sans-serif">'
            f'<div data-role="settings"><b>prompt</b> {html.escape(repr(self.prompt_input.value))}; {shown}</div>'
            f'<div data-role="summary">{self.summary.value}</div>'
            f'<div data-role="bars">{self.chart.value}</div>'
            '<div style="color:#555;font-size:12px">In JupyterLab, move the sliders and press sample; '
            "this page shows the settings it opens with.</div></div>"
        )

    def sample(self) -> str:
        """Generate ``max_new_tokens`` tokens after the prompt with the current settings; return them."""
        try:
            idx = self._prompt_ids()
        except ValueError as err:
            self.error = str(err)
            self.output.value = f'<span style="color:#b00">{html.escape(self.error)}</span>'
            return ""
        out = self.model.generate(idx, settings=self.settings, generator=self.generator)  # (1, T + n)
        self.last_sample = self.tokenizer.decode(out[0, idx.size(1) :].tolist())
        self.output.value = (
            '<pre style="white-space:pre-wrap;font-size:12px;border-left:3px solid #2171b5;padding-left:8px">'
            f"<b>{html.escape(self.prompt_input.value)}</b>{html.escape(self.last_sample)}</pre>"
        )
        return self.last_sample


def sampling_playground(
    model: nn.Module, tokenizer: Any, prompt: str = "ROMEO:", *, seed: int = 0, max_new_tokens: int = 200
) -> SamplingPlayground:
    """A widget with temperature / top-k / top-p sliders, the next-token bars and a sample button.

    ``seed`` seeds the generator the sample button draws from, so a run of clicks repeats.
    """
    return SamplingPlayground(model, tokenizer, prompt, seed, max_new_tokens)
