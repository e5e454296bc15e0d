"""Day 17: a BPE merge stepper: watch a text's tokens grow as the merges are applied one by one.

    stepper = bpe_merge_stepper(tokenizer, "the theatre then")
    stepper                               # displays in a notebook
    stepper.step_slider.value = 10        # only the first 10 merges
    stepper.current_tokens                # the ids on screen

With the first ``k`` merges, a text is tokenized exactly as the full tokenizer does it,
except that merges of rank >= k do not exist: split the text at special tokens and
with the tokenizer's pattern, then inside each chunk apply the earliest-learned pair
present (rank < k), all its occurrences left to right, until no such pair is left.
``k = 0`` gives the raw UTF-8 bytes; ``k = len(tokenizer.merges)`` gives ``encode``.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from course_lib.tokenizers import BPETokenizer
from course_lib.tokenizers.patterns import split_special, split_text
from course_lib.tokenizers.train import merge
from course_lib.widgets._render import PALETTE, WHITESPACE


def merge_ranks(tokenizer: BPETokenizer) -> dict[tuple[int, int], int]:
    """Pair of ids -> rank of the merge that joins them; merge ``r`` makes id ``256 + r``.

    >>> tok = BPETokenizer([(b"t", b"h"), (b"th", b"e")])
    >>> merge_ranks(tok)
    {(116, 104): 0, (256, 101): 1}
    """
    id_of = {tokenizer.vocab[i]: i for i in range(256 + len(tokenizer.merges))}
    return {(id_of[a], id_of[b]): r for r, (a, b) in enumerate(tokenizer.merges)}


def apply_merges(data: bytes, ranks: dict[tuple[int, int], int], k: int) -> list[int]:
    """One chunk's bytes -> ids, using only the merges of rank < k.

    >>> apply_merges(b"the", {(116, 104): 0, (256, 101): 1}, 1)
    [256, 101]
    """
    ids = list(data)
    never = k  # ranks >= k do not exist yet
    while len(ids) >= 2:
        pair = min(zip(ids, ids[1:]), key=lambda p: min(ranks.get(p, never), never))
        rank = ranks.get(pair, never)
        if rank >= k:
            break  # no allowed merge left in this chunk
        ids = merge(ids, pair, 256 + rank)
    return ids


def encode_with_merges(
    tokenizer: BPETokenizer, text: str, k: int, ranks: dict[tuple[int, int], int] | None = None
) -> list[int]:
    """``text`` -> ids with only the first ``k`` merges of ``tokenizer`` (0 <= k <= len(merges)).

    Special tokens become their ids, as in ``tokenizer.encode``. Pass ``ranks`` (from
    :func:`merge_ranks`) to skip rebuilding them on every call.
    """
    n = len(tokenizer.merges)
    if not 0 <= k <= n:
        raise ValueError(f"k={k}: this tokenizer has {n} merges, so k must be in 0..{n}")
    ranks = merge_ranks(tokenizer) if ranks is None else ranks
    ids: list[int] = []
    for piece, special_id in split_special(text, tokenizer.special_tokens):
        if special_id is not None:
            ids.append(special_id)
            continue
        for chunk in split_text(piece, tokenizer.pattern):
            ids.extend(apply_merges(chunk.encode("utf-8"), ranks, k))
    return ids


def _show_bytes(data: bytes) -> str:
    """A token's bytes as text, whitespace visible; bytes that are not whole UTF-8 characters as <e2>."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(f"<{b:02x}>" for b in data)
    return "".join(WHITESPACE.get(ch, ch) for ch in text)


def tokens_html(tokenizer: BPETokenizer, ids: list[int]) -> str:
    """Coloured spans, one per token; hovering shows the id and the bytes."""
    spans = []
    for n, i in enumerate(ids):
        data = tokenizer.vocab[i]
        shown = html.escape(_show_bytes(data))
        newline = "<br>" if data.endswith(b"\n") else ""
        spans.append(
            f'<span title="id {i}: {html.escape(repr(data))}" style="background:{PALETTE[n % len(PALETTE)]};'
            f'border-radius:3px;padding:1px 1px;margin:0 1px;white-space:pre">{shown}</span>{newline}'
        )
    return '<div style="font:14px/1.9 monospace">' + "".join(spans) + "</div>"


class BPEMergeStepper(widgets.VBox):
    """The widget returned by :func:`bpe_merge_stepper`.

    Controls: ``step_slider`` (k = merges applied), ``play`` (animates k), ``text_input``.
    State: ``current_tokens`` (ids with the first k merges), ``k``.
    """

    def __init__(self, tokenizer: BPETokenizer, text: str) -> None:
        if not isinstance(tokenizer, BPETokenizer):
            raise TypeError(f"bpe_merge_stepper needs a course_lib BPETokenizer, got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        self.ranks = merge_ranks(tokenizer)
        n = len(tokenizer.merges)
        self.current_tokens: list[int] = []
        self.text_input = widgets.Textarea(value=text, description="text", continuous_update=False,
                                           layout=widgets.Layout(width="640px", height="60px"))  # fmt: skip
        wide = widgets.Layout(width="520px")
        self.step_slider = widgets.IntSlider(0, min=0, max=n, description="merges", layout=wide)
        self.play = widgets.Play(value=0, min=0, max=n, interval=max(20, 4000 // max(n, 1)), description="play")
        widgets.jslink((self.play, "value"), (self.step_slider, "value"))
        self.info = widgets.HTML()
        self.view = widgets.HTML()
        super().__init__([self.text_input, widgets.HBox([self.play, self.step_slider]), self.info, self.view])
        self.text_input.observe(lambda _: self._update(), names="value")
        self.step_slider.observe(lambda _: self._update(), names="value")
        self._update()

    @property
    def k(self) -> int:
        """How many merges are applied."""
        return int(self.step_slider.value)

    def _update(self) -> None:
        text, k = self.text_input.value, self.k
        self.current_tokens = encode_with_merges(self.tokenizer, text, k, self.ranks)
        n_bytes = len(text.encode("utf-8"))
        n_tok = len(self.current_tokens)
        per = f"{n_bytes / n_tok:.2f}" if n_tok else "-"
        if k == 0:
            last = "no merges yet: one token per UTF-8 byte"
        else:
            a, b = self.tokenizer.merges[k - 1]
            last = (f"merge {k - 1} (the last one applied): {html.escape(_show_bytes(a))} + "
                    f"{html.escape(_show_bytes(b))} → {html.escape(_show_bytes(a + b))} (id {255 + k})")  # fmt: skip
        self.info.value = (
            f"<small>{k} of {len(self.tokenizer.merges)} merges; {last}<br>"
            f"<b>{n_tok}</b> tokens for {n_bytes} bytes: <b>{per}</b> bytes per token</small>"
        )
        self.view.value = tokens_html(self.tokenizer, self.current_tokens)


def bpe_merge_stepper(tokenizer: BPETokenizer, text: str) -> BPEMergeStepper:
    """A slider over k = 0..len(merges) showing ``text`` tokenized with only the first k merges."""
    return BPEMergeStepper(tokenizer, text)
