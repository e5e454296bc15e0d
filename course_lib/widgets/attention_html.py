"""Day 20: an attention explorer that needs no kernel: every layer and head baked into HTML.

A live slider needs a running Python kernel; the built book has none. This explorer
computes the attention of every layer and head once, embeds the weights as JSON, and
switches layer and head in the page with a few lines of plain JavaScript (no CDN,
no require.js)::

    attention_explorer_html(model, tokenizer, "ROMEO: But soft, what light")

Size: the weights are stored in thousandths (3 decimals) and only for the keys a
causal query can see. With 48 tokens that is about 3.7 kB per head, plus 66 kB for the
table drawn before any JavaScript runs: 128 kB for 4 layers x 4 heads, 202 kB for
6 x 6 (see ``.nbytes``).
"""

from __future__ import annotations

import html
import json
import uuid
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib.widgets._render import COLOUR_JS, HEATMAP_CSS, cell_size, heatmap_table, row_lengths, token_labels

SCALE = 1000  # weights are embedded as integers in thousandths: 3 decimals


def encode_window(tokenizer: Any, text: str, max_tokens: int, block_size: int) -> list[int]:
    """The ids of the first ``min(max_tokens, block_size)`` tokens of ``text``."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    ids = tokenizer.encode(text)
    if not ids:
        raise ValueError("the text is empty: type at least one token")
    return [int(i) for i in ids[: min(max_tokens, block_size)]]


@torch.no_grad()
def attention_maps(model: nn.Module, ids: list[int]) -> np.ndarray:
    """Attention weights of every layer and head for one sequence: (n_layer, n_head, T, T).

    Runs ``model(idx, return_attention=True)`` (keyword only), which returns (logits, loss,
    attention) with attention (n_layer, B, n_head, T, T), in eval mode (no dropout), and puts
    the model back in the mode it was in. Row ``i`` is what query token ``i`` attends to.
    """
    device = next(model.parameters()).device
    idx = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
    was_training = model.training
    model.eval()
    try:
        out = model(idx, return_attention=True)
    finally:
        model.train(was_training)
    if not isinstance(out, tuple) or len(out) != 3:
        raise TypeError("model(idx, return_attention=True) must return (logits, loss, attn): use course_lib.model.GPT")
    return out[2][:, 0].float().cpu().numpy()  # (L, nh, T, T)


class AttentionHTML:
    """The explorer's HTML (``.html``, shown by ``_repr_html_``) and what it was built from.

    ``weights`` (n_layer, n_head, T, T) are the model's weights; ``tokens`` the labels.
    """

    def __init__(self, html_text: str, weights: np.ndarray, tokens: list[str], element_id: str) -> None:
        self.html, self.weights, self.tokens, self.element_id = html_text, weights, tokens, element_id

    @property
    def nbytes(self) -> int:
        """Size of the HTML in bytes (UTF-8)."""
        return len(self.html.encode("utf-8"))

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        L, H, T, _ = self.weights.shape
        return f"AttentionHTML({L} layers x {H} heads, {T} tokens, {self.nbytes / 1000:.0f} kB of HTML)"


_SCRIPT = """(function(){
var root=document.getElementById("%(id)s");
if(!root||root.getAttribute("data-ready"))return;
root.setAttribute("data-ready","1");
var data=JSON.parse(root.querySelector("script.attn-data").textContent);
var layer=root.querySelector('input[data-role="layer"]'),head=root.querySelector('input[data-role="head"]');
var readout=root.querySelector('[data-role="readout"]'),rows=root.querySelectorAll("table.cl-heat tbody tr");
%(colour)s
function show(){
 var l=+layer.value,h=+head.value,m=data.w[l][h];
 for(var i=0;i<rows.length;i++){var r=m[i],cells=rows[i].cells;
  for(var k=0;k<r.length;k++){var w=r[k]/data.scale,c=cells[k+1];
   c.setAttribute("data-w",w.toFixed(3));c.style.background=colour(w);}}
 root.querySelector('[data-role="layer-value"]').textContent=l;
 root.querySelector('[data-role="head-value"]').textContent=h;
 readout.textContent="layer "+l+", head "+h+": point at a cell to read its weight";
}
layer.addEventListener("input",show);head.addEventListener("input",show);
root.addEventListener("mouseover",function(e){
 var c=e.target;if(!c||c.tagName!=="TD"||!c.hasAttribute("data-w"))return;
 var tr=c.parentNode,q=Array.prototype.indexOf.call(rows,tr),k=c.cellIndex-1;
 readout.textContent="layer "+layer.value+", head "+head.value+": query "+q+" '"+data.tokens[q]+
  "' attends to key "+k+" '"+data.tokens[k]+"' with weight "+c.getAttribute("data-w");
});
show();
})();"""


def attention_explorer_html(model: nn.Module, tokenizer: Any, text: str, *, max_tokens: int = 48) -> AttentionHTML:
    """A self-contained HTML explorer of every layer's and head's attention on ``text``.

    Two range sliders (``data-role="layer"`` and ``"head"``) pick the map; the heatmap
    (rows: queries, columns: keys, colour ~ sqrt(weight)) is recoloured in the page.
    The container has ``class="attn-explorer"`` and a unique id; the cells carry
    ``data-w``; the weights sit in ``<script type="application/json" class="attn-data">``
    as ``{"tokens", "n_layer", "n_head", "scale", "w"}`` with ``w[layer][head][query]``
    the integer thousandths of the keys that query can see.
    """
    block_size = getattr(getattr(model, "config", None), "block_size", max_tokens)
    ids = encode_window(tokenizer, text, max_tokens, block_size)
    return explorer_html(attention_maps(model, ids), token_labels(tokenizer, ids), type(model).__name__)


def explorer_html(weights: np.ndarray, labels: list[str], model_name: str = "model", note: str = "") -> AttentionHTML:
    """The explorer of :func:`attention_explorer_html` for maps already computed.

    ``weights`` (n_layer, n_head, T, T) as :func:`attention_maps` returns them; ``labels``
    the T token labels; ``note`` (plain text) a line shown under the title. The live
    explorer (:class:`~course_lib.widgets.AttentionExplorer`) uses this for its stand-in.
    """
    L, H, T, _ = weights.shape
    lengths = row_lengths(weights)
    stored = np.rint(weights * SCALE).astype(np.int64)  # (L, nh, T, T) thousandths
    w = [[[stored[l, h, i, : lengths[i]].tolist() for i in range(T)] for h in range(H)] for l in range(L)]
    payload = {"tokens": labels, "n_layer": L, "n_head": H, "scale": SCALE, "w": w}
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")  # no </script>

    uid = f"attn-{uuid.uuid4().hex[:12]}"
    shown = stored[0, 0] / SCALE  # (T, T): the first map, drawn without JavaScript too
    css = HEATMAP_CSS.format(root=f"#{uid}", px=cell_size(T))
    css += f"#{uid} .attn-controls label {{margin-right: 1em; font: 13px sans-serif;}}\n"
    css += f"#{uid} .attn-readout {{font: 12px monospace; min-height: 1.3em; color: #555;}}\n"
    head_line = (f"{html.escape(model_name)}: {L} layer{'s' * (L != 1)} x {H} head{'s' * (H != 1)}, {T} tokens. "
                 "Rows: the token that looks (query); columns: the tokens it looks at (keys).")  # fmt: skip
    parts = [
        f'<div class="attn-explorer" id="{uid}" data-layers="{L}" data-heads="{H}" data-tokens="{T}">',
        f"<style>{css}</style>",
        f'<div style="font: 13px sans-serif; margin-bottom: 4px">{head_line}</div>',
        f'<div style="font: 12px sans-serif; color: #555">{html.escape(note)}</div>' if note else "",
        '<div class="attn-controls">',
        f'<label>layer <input type="range" data-role="layer" min="0" max="{L - 1}" step="1" value="0"> '
        '<span data-role="layer-value">0</span></label>',
        f'<label>head <input type="range" data-role="head" min="0" max="{H - 1}" step="1" value="0"> '
        '<span data-role="head-value">0</span></label></div>',
        '<div class="attn-readout" data-role="readout">layer 0, head 0</div>',
        heatmap_table(shown, labels, lengths=lengths),
        f'<script type="application/json" class="attn-data">{data}</script>',
        f"<script>{_SCRIPT % {'id': uid, 'colour': COLOUR_JS}}</script>",
        "</div>",
    ]
    return AttentionHTML("\n".join(parts), weights, list(labels), uid)
