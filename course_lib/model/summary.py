"""Day 21: a model summary: parameters per module, activation shapes, a memory estimate.

    from course_lib.model import summary
    s = summary(model, idx)      # idx: (B, T) token ids; runs one forward pass
    s                            # a table in a notebook (str(s) in a terminal)
    s.total_params, s.total_bytes

Shapes come from forward hooks on every submodule during one forward pass. The memory
estimate is for float32 training with AdamW: parameters + gradients + two AdamW moments
+ the outputs of the leaf modules (what backward keeps, roughly; attention kernels that
never store the (T, T) matrix, and in-place tricks, change the real figure).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import torch
from torch import nn

FLOAT32_BYTES = 4


@dataclass
class SummaryRow:
    """One module: its dotted name, class, depth in the tree, output shape and parameters."""

    name: str
    kind: str
    depth: int
    output_shape: tuple[int, ...] | None  # None when the module did not run
    params: int  # parameters in this module and its children (a shared one counted where first met)
    shared_with: str = ""  # for a tied module: the module that owns its weight


@dataclass
class ModelSummary:
    """What :func:`summary` found; ``str()`` gives a text table, notebooks show HTML."""

    rows: list[SummaryRow]
    input_shape: tuple[int, ...]
    total_params: int  # every parameter once, tied ones included once
    trainable_params: int
    param_bytes: int
    grad_bytes: int
    optimizer_bytes: int  # AdamW: two moments per trainable parameter
    activation_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.param_bytes + self.grad_bytes + self.optimizer_bytes + self.activation_bytes

    def _table(self) -> list[tuple[str, str, str, str]]:
        lines = []
        for r in self.rows:
            shape = "-" if r.output_shape is None else str(list(r.output_shape))
            params = f"{r.params:,}" + (f" (tied to {r.shared_with})" if r.shared_with else "")
            lines.append(("  " * r.depth + r.name.split(".")[-1], r.kind, shape, params))
        return lines

    def _totals(self) -> list[tuple[str, str]]:
        return [
            ("input", str(list(self.input_shape))),
            ("parameters", f"{self.total_params:,} ({self.trainable_params:,} trainable)"),
            ("parameters (fp32)", _fmt_bytes(self.param_bytes)),
            ("gradients", _fmt_bytes(self.grad_bytes)),
            ("AdamW moments", _fmt_bytes(self.optimizer_bytes)),
            ("activations", _fmt_bytes(self.activation_bytes)),
            ("training memory, about", _fmt_bytes(self.total_bytes)),
        ]

    def __str__(self) -> str:
        header = ("module", "type", "output shape", "params")
        table = [header, *self._table()]
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines += [""] + [f"{k}: {v}" for k, v in self._totals()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "<tr><th>module</th><th>type</th><th>output shape</th><th>params</th></tr>"
        body = "".join(
            f"<tr><td style='text-align:left;font-family:monospace;white-space:pre'>{esc(n)}</td>"
            f"<td>{esc(k)}</td><td>{esc(s)}</td><td style='text-align:right'>{esc(p)}</td></tr>"
            for n, k, s, p in self._table()
        )
        totals = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in self._totals())
        return f"<table>{head}{body}</table><table>{totals}</table>"


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _first_tensor(output: object) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    return None


def summary(model: nn.Module, idx: torch.Tensor, max_depth: int | None = None) -> ModelSummary:
    """Run ``model(idx)`` once (no gradients) and describe every submodule.

    ``idx``: an example input, e.g. (B, T) token ids. ``max_depth`` limits the rows
    (1: only the model's direct children); totals always cover the whole model.
    """
    named = [(n, m) for n, m in model.named_modules() if n]  # skip the model itself
    shapes: dict[str, tuple[int, ...]] = {}
    leaf_bytes: dict[str, int] = {}

    def make_hook(name: str, is_leaf: bool):
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            t = _first_tensor(output)
            if t is not None and name not in shapes:
                shapes[name] = tuple(t.shape)
                if is_leaf:
                    leaf_bytes[name] = t.numel() * FLOAT32_BYTES

        return hook

    handles = [m.register_forward_hook(make_hook(n, not any(True for _ in m.children()))) for n, m in named]
    try:
        with torch.no_grad():
            model(idx)
    finally:
        for h in handles:
            h.remove()

    # each parameter belongs to the first module (in definition order) that holds it directly
    owner: dict[int, str] = {}
    for name, module in named:
        for p in module.parameters(recurse=False):
            owner.setdefault(id(p), name)

    rows = []
    for name, module in named:
        depth = name.count(".")
        if max_depth is not None and depth >= max_depth:
            continue
        own = [p for p in module.parameters() if owner[id(p)] == name or owner[id(p)].startswith(name + ".")]
        direct = list(module.parameters(recurse=False))
        shared = sorted({owner[id(p)] for p in direct if owner[id(p)] != name})
        rows.append(SummaryRow(name, type(module).__name__, depth, shapes.get(name),
                               sum(p.numel() for p in own), ", ".join(shared)))  # fmt: skip

    params = list(model.parameters())  # unique: a tied weight appears once
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return ModelSummary(
        rows=rows,
        input_shape=tuple(idx.shape),
        total_params=total,
        trainable_params=trainable,
        param_bytes=total * FLOAT32_BYTES,
        grad_bytes=trainable * FLOAT32_BYTES,
        optimizer_bytes=2 * trainable * FLOAT32_BYTES,
        activation_bytes=sum(leaf_bytes.values()),
    )
