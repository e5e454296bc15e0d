"""Day 17: HTML and SVG pieces the course's widgets draw with (no ipywidgets, no matplotlib).

Building the pictures as HTML strings in Python keeps a slider fast (no figure to
render and send as an image) and lets the same picture appear in the built book.

>>> visible(" to\\n")
'␣to↵'
>>> weight_colour(0.0), weight_colour(1.0)
('#ffffff', '#08306b')
"""

from __future__ import annotations

import base64
import html
import struct
import zlib
from collections.abc import Sequence

import numpy as np

WHITESPACE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}
DARK = (8, 48, 107)  # colour of weight 1; weight 0 is white
PALETTE = ("#fde2e4", "#cde7f0", "#e2f0cb", "#fff1c1", "#e4dcf5", "#ffd8be")  # token spans


def visible(text: str) -> str:
    """Show whitespace: space -> '␣', newline -> '↵', tab -> '⇥'."""
    return "".join(WHITESPACE.get(ch, ch) for ch in text)


def token_labels(tokenizer: object, ids: Sequence[int]) -> list[str]:
    """The text of each token on its own, whitespace made visible (one label per id)."""
    return [visible(tokenizer.decode([int(i)])) for i in ids]  # type: ignore[attr-defined]


def colour_array(weights: np.ndarray) -> np.ndarray:
    """Weights in [0, 1], any shape (...) -> RGB uint8 (..., 3); colour follows sqrt(weight).

    The square root makes small weights visible: with 40 keys an even spread gives each
    only 0.025, which a linear scale would draw as white.
    """
    t = np.sqrt(np.clip(np.asarray(weights, dtype=np.float64), 0.0, 1.0))[..., None]  # (..., 1)
    dark = np.array(DARK, dtype=np.float64)  # (3,)
    return np.floor(255.0 + (dark - 255.0) * t + 0.5).astype(np.uint8)  # (..., 3)


def weight_colour(w: float) -> str:
    """One weight in [0, 1] -> '#rrggbb' (the same colour as :func:`colour_array`)."""
    r, g, b = colour_array(np.array(w)).tolist()
    return f"#{r:02x}{g:02x}{b:02x}"


# The JavaScript twin of weight_colour, for pages that recolour without a kernel.
COLOUR_JS = (
    "function colour(w){var t=Math.sqrt(Math.min(Math.max(w,0),1)),d=[%d,%d,%d],s='#';"
    "for(var i=0;i<3;i++){var v=Math.floor(255+(d[i]-255)*t+0.5);s+=(v<16?'0':'')+v.toString(16);}return s;}"
) % DARK


def row_lengths(weights: np.ndarray) -> list[int]:
    """How many keys each query row can see: i + 1 for causal maps (upper triangle all 0).

    ``weights`` is (..., T, S); a map with any weight above the diagonal keeps all S.
    """
    T, S = weights.shape[-2:]
    causal = T == S and not np.triu(weights, k=1).any()
    return [i + 1 if causal else S for i in range(T)]


HEATMAP_CSS = """
{root} table.cl-heat {{border-collapse: collapse; font: 11px/1.1 monospace; margin: 4px 0;}}
{root} table.cl-heat td {{width: {px}px; height: {px}px; min-width: {px}px; padding: 0; border: 1px solid #f4f4f4;}}
{root} table.cl-heat td.x {{background: #f7f7f7;}}
{root} table.cl-heat tr.q td {{border-top: 2px solid #d62728; border-bottom: 2px solid #d62728;}}
{root} table.cl-heat th {{font-weight: normal; padding: 0 3px; white-space: pre; color: inherit;}}
{root} table.cl-heat th.r {{text-align: right;}}
{root} table.cl-heat th.c {{vertical-align: bottom; padding: 3px 0;}}
{root} table.cl-heat th.c div {{writing-mode: vertical-rl; transform: rotate(180deg); width: {px}px;}}
"""


def cell_size(T: int) -> int:
    """Pixels per heatmap cell: 18 for short texts, down to 7 for 64 tokens."""
    return max(7, min(18, 448 // max(T, 1)))


def heatmap_table(
    weights: np.ndarray,
    labels: Sequence[str],
    *,
    lengths: Sequence[int] | None = None,
    highlight_row: int | None = None,
) -> str:
    """An HTML <table> of a (T, T) attention map: rows are queries, columns are keys.

    Each cell inside ``lengths[i]`` carries ``data-w`` (the weight, 3 decimals) and its
    colour; the cells a query cannot see (the future, for a causal model) are one grey
    cell of class ``x`` spanning them.
    Style it with :data:`HEATMAP_CSS`.
    """
    T = weights.shape[0]
    lengths = row_lengths(weights) if lengths is None else lengths
    esc = [html.escape(s) for s in labels]
    colours = colour_array(weights)  # (T, T, 3)
    parts = ['<table class="cl-heat"><thead><tr><th></th>']
    parts += [f'<th class="c" title="key {j}"><div>{esc[j]}</div></th>' for j in range(T)]
    parts.append("</tr></thead><tbody>")
    for i in range(T):
        cls = ' class="q"' if i == highlight_row else ""
        parts.append(f'<tr{cls}><th class="r" title="query {i}">{esc[i]}</th>')
        for j in range(lengths[i]):
            r, g, b = colours[i, j].tolist()
            parts.append(f'<td data-w="{weights[i, j]:.3f}" style="background:#{r:02x}{g:02x}{b:02x}"></td>')
        if lengths[i] < T:  # the keys this query cannot see, as one grey cell
            parts.append(f'<td class="x" colspan="{T - lengths[i]}"></td>')
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def png_data_uri(rgb: np.ndarray) -> str:
    """An RGB image (H, W, 3) uint8 -> a 'data:image/png;base64,...' URI (a tiny PNG encoder)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[i].tobytes() for i in range(h))  # filter type 0 on every row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def bar_chart_svg(labels: Sequence[str], values: Sequence[float], *, highlight: int | None = None) -> str:
    """Vertical bars (one per label, values in [0, 1]) with the labels underneath, as inline SVG."""
    n = len(values)
    bw = max(8, min(28, 640 // max(n, 1)))  # bar width in pixels
    top, plot_h, label_h = 14, 110, 60
    width, height = 30 + n * bw, top + plot_h + label_h
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="monospace" font-size="10">',
           f'<line x1="28" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}" stroke="#999"/>',
           f'<text x="24" y="{top + 4}" text-anchor="end">1</text>',
           f'<text x="24" y="{top + plot_h}" text-anchor="end">0</text>']  # fmt: skip
    for j, (label, v) in enumerate(zip(labels, values)):
        x = 30 + j * bw
        h = plot_h * min(max(float(v), 0.0), 1.0)
        fill = "#d62728" if j == highlight else "#2171b5"
        out.append(f'<rect x="{x + 1}" y="{top + plot_h - h:.1f}" width="{bw - 2}" height="{h:.1f}" fill="{fill}">'
                   f"<title>{html.escape(label)}: {float(v):.3f}</title></rect>")
        if v >= 0.05:
            out.append(f'<text x="{x + bw / 2:.1f}" y="{top + plot_h - h - 2:.1f}" text-anchor="middle" '
                       f'font-size="8">{float(v):.2f}</text>')
        ty = top + plot_h + 4
        out.append(f'<text x="{x + bw / 2 + 3:.1f}" y="{ty}" transform="rotate(90 {x + bw / 2 - 3:.1f} {ty})">'
                   f"{html.escape(label)}</text>")
    out.append("</svg>")
    return "".join(out)


def hbar_html(labels: Sequence[str], values: Sequence[float], ghost: Sequence[float] | None = None) -> str:
    """Horizontal bars, one row per label: solid bar = value, pale bar behind it = ``ghost``."""
    rows = ['<div style="font:12px monospace">']
    for k, (label, v) in enumerate(zip(labels, values)):
        g = float(v) if ghost is None else float(ghost[k])
        rows.append(
            '<div style="display:flex;align-items:center;gap:6px;height:17px">'
            f'<span style="width:7em;text-align:right;white-space:pre;overflow:hidden">{html.escape(label)}</span>'
            '<span style="position:relative;width:260px;height:13px;background:#f3f3f3">'
            f'<span style="position:absolute;left:0;top:0;height:13px;width:{260 * g:.1f}px;background:#c6dbef"></span>'
            f'<span style="position:absolute;left:0;top:0;height:13px;width:{260 * float(v):.1f}px;'
            'background:#2171b5"></span></span>'
            f"<span>{float(v):.3f}</span></div>"
        )
    rows.append("</div>")
    return "".join(rows)
