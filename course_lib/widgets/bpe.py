"""Day 17: a BPE merge stepper: watch a text's tokens grow as the merges are applied one by one.

    stepper = bpe_merge_stepper(tokenizer, "the theatre then")
    stepper                               # displays in a notebook
    stepper.step_slider.value = 10        # only the first 10 merges
    stepper.current_tokens                # the ids on screen

With the first ``k`` merges, a text is tokenized exactly as the full tokenizer does it,
except that merges of rank >= k do not exist: split the text at special tokens and
with the tokenizer's pattern, then inside each chunk apply the earliest-learned pair
present (rank < k), all its occurrences left to right, until no such pair is left.
``k = 0`` gives the raw UTF-8 bytes; ``k = len(tokenizer.merges)`` gives ``encode``. The
live widget asks the tokenizer itself: ``tokenizer.encode(text, allowed_special="all", max_merges=k)``.

Where no kernel runs (the built book), the output shows :func:`stepper_html` instead: the
token list at every k where it changes (:func:`merge_states`), embedded as JSON, with a
plain range slider and a few lines of JavaScript that redraw the tokens in the page.
It opens at k = len(merges), what ``encode`` gives.
"""

from __future__ import annotations

import bisect
import html
import json
import uuid

import ipywidgets as widgets

from course_lib.tokenizers import BPETokenizer
from course_lib.tokenizers.patterns import split_special, split_text
from course_lib.tokenizers.train import merge
from course_lib.widgets._render import PALETTE, WHITESPACE
from course_lib.widgets.static import FULL_LABEL, StaticFallback


def merge_ranks(tokenizer: BPETokenizer) -> dict[tuple[int, int], int]:
    """Pair of ids -> rank of the merge that joins them; merge ``r`` makes id ``256 + r``.

    >>> tok = BPETokenizer([(b"t", b"h"), (b"th", b"e")])
    >>> merge_ranks(tok)
    {(116, 104): 0, (256, 101): 1}
    """
    id_of = {tokenizer.vocab[i]: i for i in range(256 + len(tokenizer.merges))}
    return {(id_of[a], id_of[b]): r for r, (a, b) in enumerate(tokenizer.merges)}


def encode_with_merges(tokenizer: BPETokenizer, text: str, k: int) -> list[int]:
    """``text`` -> ids with only the first ``k`` merges of ``tokenizer`` (0 <= k <= len(merges)).

    Special tokens become their ids, as in ``tokenizer.encode(text, allowed_special="all")``.

    >>> encode_with_merges(BPETokenizer([(b"t", b"h"), (b"th", b"e")]), "the", 1)
    [256, 101]
    """
    n = len(tokenizer.merges)
    if not 0 <= k <= n:
        raise ValueError(f"k={k}: this tokenizer has {n} merges, so k must be in 0..{n}")
    return tokenizer.encode(text, allowed_special="all", max_merges=k)


def _chunk_trace(data: bytes, ranks: dict[tuple[int, int], int]) -> list[tuple[int, list[int]]]:
    """Every merge the full encoding applies to one chunk: ``[(rank, ids after it)]``.

    The ranks come out increasing: a merge of rank r leaves pairs of rank > r only (the new
    id 256 + r only occurs in merges learnt after it), so with the first k merges a chunk
    stops at the last entry of rank < k.

    >>> _chunk_trace(b"thee", {(116, 104): 0, (256, 101): 1, (101, 101): 2})
    [(0, [256, 101, 101]), (1, [257, 101])]
    """
    ids, trace = list(data), []
    while len(ids) >= 2:
        pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, len(ranks)))
        if pair not in ranks:
            break
        ids = merge(ids, pair, 256 + ranks[pair])
        trace.append((ranks[pair], ids))
    return trace


def merge_states(
    tokenizer: BPETokenizer, text: str, ranks: dict[tuple[int, int], int] | None = None
) -> list[tuple[int, list[int]]]:
    """``[(k, ids)]`` for k = 0 and every k where ``text``'s tokens change, k increasing.

    The tokens with the first k merges are those of the last entry whose k is <= k:
    the same as ``encode_with_merges(tokenizer, text, k)``, for all k at once.

    >>> tok = BPETokenizer([(b"t", b"h"), (b"th", b"e"), (b"e", b"e")])
    >>> merge_states(tok, "thee")     # merge 2 ("ee") never applies: "the" took the first e
    [(0, [116, 104, 101, 101]), (1, [256, 101, 101]), (2, [257, 101])]
    """
    ranks = merge_ranks(tokenizer) if ranks is None else ranks
    parts: list[tuple[list[int], list[tuple[int, list[int]]]]] = []  # (bytes, trace) per chunk
    for piece, special_id in split_special(text, tokenizer.special_tokens):
        if special_id is not None:
            parts.append(([special_id], []))
            continue
        for chunk in split_text(piece, tokenizer.pattern):
            data = chunk.encode("utf-8")
            parts.append((list(data), _chunk_trace(data, ranks)))
    changes = sorted({rank + 1 for _, trace in parts for rank, _ in trace})  # k where some chunk changes
    states = [(0, [i for start, _ in parts for i in start])]
    for k in changes:
        ids: list[int] = []
        for start, trace in parts:
            n = bisect.bisect_left([rank for rank, _ in trace], k)  # entries of rank < k
            ids.extend(trace[n - 1][1] if n else start)
        states.append((k, ids))
    return states


def _show_bytes(data: bytes) -> str:
    """A token's bytes as text, whitespace visible; bytes that are not whole UTF-8 characters as <e2>."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(f"<{b:02x}>" for b in data)
    return "".join(WHITESPACE.get(ch, ch) for ch in text)


SPAN_CSS = "border-radius:3px;padding:1px 1px;margin:0 1px;white-space:pre"  # one token's span
VIEW_CSS = "font:14px/1.9 monospace"  # the line of tokens


def _token_spans(tokenizer: BPETokenizer, ids: list[int]) -> str:
    """Coloured spans, one per token (a line break after a token that ends in a newline)."""
    spans = []
    for n, i in enumerate(ids):
        data = tokenizer.vocab[i]
        newline = "<br>" if data.endswith(b"\n") else ""
        spans.append(
            f'<span title="id {i}: {html.escape(repr(data))}" style="background:{PALETTE[n % len(PALETTE)]};'
            f'{SPAN_CSS}">{html.escape(_show_bytes(data))}</span>{newline}'
        )
    return "".join(spans)


def tokens_html(tokenizer: BPETokenizer, ids: list[int]) -> str:
    """Coloured spans, one per token; hovering shows the id and the bytes."""
    return f'<div style="{VIEW_CSS}">' + _token_spans(tokenizer, ids) + "</div>"


def _merge_text(tokenizer: BPETokenizer, rank: int) -> str:
    """'merge 12: t + h → th (id 268)', HTML-escaped."""
    a, b = tokenizer.merges[rank]
    return html.escape(f"merge {rank}: {_show_bytes(a)} + {_show_bytes(b)} → {_show_bytes(a + b)} (id {256 + rank})")


def _info_html(k: int, n_merges: int, last: str, n_tok: int, n_bytes: int) -> str:
    """The line above the tokens: how many merges, the last to change the text, bytes per token."""
    per = f"{n_bytes / n_tok:.2f}" if n_tok else "-"
    return (f"<small>{k} of {n_merges} merges; {last}<br>"
            f"<b>{n_tok}</b> tokens for {n_bytes} bytes: <b>{per}</b> bytes per token</small>")  # fmt: skip


_SCRIPT = """(function(){
var root=document.getElementById("%(id)s");
if(!root||root.getAttribute("data-ready"))return;
root.setAttribute("data-ready","1");
var d=JSON.parse(root.querySelector("script.bpe-data").textContent);
var slider=root.querySelector('input[data-role="merges"]'),view=root.querySelector('[data-role="view"]');
var info=root.querySelector('[data-role="info"]'),play=root.querySelector('button[data-role="play"]');
var starts=d.steps.map(function(s){return s[0];}),timer=null;
function at(k){var i=0;while(i+1<starts.length&&starts[i+1]<=k)i++;return i;}
function show(){
 var k=+slider.value,i=at(k),step=d.steps[i],ids=step[1],frag=document.createDocumentFragment();
 for(var n=0;n<ids.length;n++){var t=d.tok[ids[n]],s=document.createElement("span");
  s.title=t[1];s.setAttribute("style","background:"+d.palette[n%%d.palette.length]+";"+d.span_css);
  s.textContent=t[0];frag.appendChild(s);if(t[2])frag.appendChild(document.createElement("br"));}
 view.textContent="";view.appendChild(frag);
 view.setAttribute("data-k",k);view.setAttribute("data-tokens",ids.length);
 var last=k===0?d.none:(i===0?d.unused:d.last_prefix+step[3]);
 info.innerHTML="<small>"+k+" of "+d.n+" merges; "+last+"<br><b>"+ids.length+"</b> tokens for "+d.bytes+
  " bytes: <b>"+step[2]+"</b> bytes per token</small>";
}
function stop(){clearInterval(timer);timer=null;play.textContent="\u25B6 play";}
function tick(){var k=+slider.value,i=at(k);
 if(i+1<starts.length){slider.value=starts[i+1];}else{slider.value=d.n;stop();}show();}
play.addEventListener("click",function(){
 if(timer){stop();return;}
 if(+slider.value>=starts[starts.length-1])slider.value=0;
 show();play.textContent="\u275A\u275A pause";timer=setInterval(tick,%(interval)d);});
slider.addEventListener("input",function(){if(timer)stop();show();});
show();
})();"""

_NONE = "no merges yet: one token per UTF-8 byte"
_UNUSED = "none of these merges occurs in this text yet"
_LAST = "the last to change this text: "


def stepper_html(tokenizer: BPETokenizer, text: str) -> str:
    """A merge stepper that needs no kernel: ``text`` at every k, switched in the page.

    A range slider (``data-role="merges"``, 0..len(merges)) picks k; the view
    (``data-role="view"``, with ``data-k`` and ``data-tokens``, the number of tokens shown)
    and the line above it (``data-role="info"``) are redrawn by inline JavaScript from the
    states of :func:`merge_states`, embedded in ``<script type="application/json" class="bpe-data">``
    as ``{"n", "bytes", "steps": [[k, ids, bytes per token, last merge], ...], "tok": {id: [shown,
    title, newline]}, ...}``. A play button walks through the k where the tokens change.
    It opens at k = len(merges), where the tokens are ``tokenizer.encode(text)``; without
    JavaScript that is what the page shows.
    """
    n = len(tokenizer.merges)
    states = merge_states(tokenizer, text)
    n_bytes = len(text.encode("utf-8"))
    steps = []
    for k, ids in states:
        per = f"{n_bytes / len(ids):.2f}" if ids else "-"
        steps.append([k, ids, per, _merge_text(tokenizer, k - 1) if k else ""])
    used = sorted({i for _, ids in states for i in ids})
    tok = {i: [_show_bytes(tokenizer.vocab[i]), f"id {i}: {tokenizer.vocab[i]!r}", tokenizer.vocab[i].endswith(b"\n")]
           for i in used}  # fmt: skip
    payload = {"n": n, "bytes": n_bytes, "steps": steps, "tok": tok, "palette": PALETTE, "span_css": SPAN_CSS,
               "none": _NONE, "unused": _UNUSED, "last_prefix": _LAST}  # fmt: skip
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")  # no </script>

    uid = f"bpe-{uuid.uuid4().hex[:12]}"
    final = states[-1][1]  # (k = n): tokenizer.encode(text)
    last = _NONE if n == 0 else (_UNUSED if len(states) == 1 else _LAST + steps[-1][3])
    interval = max(60, min(250, 12000 // max(len(states), 1)))  # ms per step: the whole walk in about 12 s
    parts = [
        f'<div class="bpe-stepper" id="{uid}" data-merges="{n}" data-states="{len(states)}">',
        '<div style="font:13px sans-serif;margin-bottom:4px">'
        f'<label>merges <input type="range" data-role="merges" min="0" max="{n}" step="1" value="{n}" '
        'style="width:420px;vertical-align:middle"></label> '
        '<button type="button" data-role="play" style="font:12px sans-serif">▶ play</button></div>',
        f'<div data-role="info" style="font:13px sans-serif">{_info_html(n, n, last, len(final), n_bytes)}</div>',
        f'<div data-role="view" data-k="{n}" data-tokens="{len(final)}" style="{VIEW_CSS}">'
        f"{_token_spans(tokenizer, final)}</div>",
        f'<script type="application/json" class="bpe-data">{data}</script>',
        f"<script>{_SCRIPT % {'id': uid, 'interval': interval}}</script>",
        "</div>",
    ]
    return "\n".join(parts)


class BPEMergeStepper(StaticFallback, widgets.VBox):
    """The widget returned by :func:`bpe_merge_stepper`.

    Controls: ``step_slider`` (k = merges applied), ``play`` (animates k), ``text_input``.
    State: ``current_tokens`` (ids with the first k merges), ``k``. Without a kernel:
    :meth:`static_html`.
    """

    def __init__(self, tokenizer: BPETokenizer, text: str) -> None:
        if not isinstance(tokenizer, BPETokenizer):
            raise TypeError(f"bpe_merge_stepper needs a course_lib BPETokenizer, got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        n = len(tokenizer.merges)
        self.current_tokens: list[int] = []
        self.text_input = widgets.Textarea(value=text, description="text", continuous_update=False, style=FULL_LABEL,
                                           layout=widgets.Layout(width="640px", height="60px"))  # fmt: skip
        wide = widgets.Layout(width="520px")
        self.step_slider = widgets.IntSlider(0, min=0, max=n, description="merges", style=FULL_LABEL, layout=wide)
        # Play only here, in the live widget: on each change its view sets getElementsByTagName("i")[0].className,
        # and the book's theme (Font Awesome's JavaScript) has swapped that <i> for an <svg>, so in the book
        # it throws "Cannot set properties of undefined". The book shows static_html(), with its own play button.
        self.play = widgets.Play(value=0, min=0, max=n, interval=max(20, 4000 // max(n, 1)),
                                 tooltip="step k up to the end")  # fmt: skip
        widgets.jslink((self.play, "value"), (self.step_slider, "value"))
        self.info = widgets.HTML()
        self.view = widgets.HTML()
        super().__init__([self.text_input, widgets.HBox([self.play, self.step_slider]), self.info, self.view])
        self.text_input.observe(lambda _: self._update(), names="value")
        self.step_slider.observe(lambda _: self._update(), names="value")
        self._update()

    def static_html(self) -> str:
        """The kernel-free stepper for this text (:func:`stepper_html`), at k = len(merges)."""
        return stepper_html(self.tokenizer, self.text_input.value)

    @property
    def k(self) -> int:
        """How many merges are applied."""
        return int(self.step_slider.value)

    def _update(self) -> None:
        text, k = self.text_input.value, self.k
        self.current_tokens = encode_with_merges(self.tokenizer, text, k)
        last = _NONE if k == 0 else "the last one applied: " + _merge_text(self.tokenizer, k - 1)
        n_tok, n_bytes = len(self.current_tokens), len(text.encode("utf-8"))
        self.info.value = _info_html(k, len(self.tokenizer.merges), last, n_tok, n_bytes)
        self.view.value = tokens_html(self.tokenizer, self.current_tokens)


def bpe_merge_stepper(tokenizer: BPETokenizer, text: str) -> BPEMergeStepper:
    """A slider over k = 0..len(merges) showing ``text`` tokenized with only the first k merges."""
    return BPEMergeStepper(tokenizer, text)
