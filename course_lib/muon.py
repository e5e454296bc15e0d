"""Part 3: Muon, momentum orthogonalised by a Newton-Schulz iteration, with AdamW for the rest.

Adam scales every coordinate of the gradient on its own. Muon treats a weight matrix as a
matrix: it keeps a momentum ``M`` of the gradient and steps along the orthogonal matrix
nearest to it, ``U V^T`` where ``M = U S V^T``, so that every direction the momentum points
in moves by the same amount, the rare ones as much as the dominant one. Computing ``U V^T``
with an SVD is slow on an accelerator; a few steps of an odd polynomial,

    X <- a X + b (X X^T) X + c (X X^T)^2 X,      X_0 = M / ||M||_F,

apply ``s -> a s + b s^3 + c s^5`` to every singular value at once and push all of them
towards 1 (:func:`newton_schulz`). The coefficients ``(3.4445, -4.7750, 2.0315)`` trade
exactness for speed: after five steps the singular values land in roughly [0.7, 1.2],
not exactly on 1, which trains as well.

Muon is for the matrices inside the transformer blocks. The embedding (a lookup table, not
a map between spaces), the output head, and vectors (norm gains, biases) keep AdamW.
:class:`Muon` holds both kinds in one optimizer, one parameter group per kind, so a
checkpoint stores one state dict. :func:`muon_param_groups` splits a GPT's parameters.

>>> g = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
>>> s = torch.linalg.svdvals(newton_schulz(g))
>>> bool(s.min() > 0.6 and s.max() < 1.25)
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

# the quintic's coefficients, chosen (by the Muon authors) to raise small singular values fast
NS_COEFFS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5


def newton_schulz(g: torch.Tensor, steps: int = NS_STEPS, eps: float = 1e-7) -> torch.Tensor:
    """An approximately orthogonal matrix with ``g``'s singular vectors: ``U V^T`` give or take.

    ``g`` is (rows, cols), or a stack (..., rows, cols) of same-shaped matrices done at once.
    The iteration runs on the wide orientation (rows <= cols), where ``X X^T`` is the smaller
    square, in float32, and the result has ``g``'s shape and dtype.
    """
    if g.dim() < 2:
        raise ValueError(f"newton_schulz orthogonalises a matrix, got a tensor of shape {tuple(g.shape)}")
    a, b, c = NS_COEFFS
    x = g.float()
    tall = x.size(-2) > x.size(-1)
    if tall:
        x = x.mT
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + eps)  # every singular value now at most 1
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    if tall:
        x = x.mT
    return x.to(g.dtype)


def muon_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Three groups: Muon for the blocks' weight matrices, AdamW for the other matrices (embeddings,
    the output head) with ``weight_decay``, AdamW without decay for vectors (gains, biases)."""
    blocks = getattr(model, "layers", None)
    hidden = {id(p) for p in blocks.parameters() if p.dim() == 2} if blocks is not None else set()
    params = [p for p in model.parameters() if p.requires_grad]  # parameters() de-duplicates ties
    if not params:
        raise ValueError("the model has no trainable parameters: check requires_grad")
    if not hidden:
        raise ValueError("Muon needs the model's blocks in model.layers (a GPT): found no weight matrices there")
    return [
        {"params": [p for p in params if id(p) in hidden], "use_muon": True, "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) not in hidden and p.dim() >= 2], "use_muon": False,
         "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "use_muon": False, "weight_decay": 0.0},
    ]  # fmt: skip


class Muon(torch.optim.Optimizer):
    """Muon on the groups marked ``use_muon``, AdamW on the others, as one optimizer.

    Muon's step for a matrix ``W`` with gradient ``G`` (momentum ``beta``, Nesterov):

        M <- beta M + (1 - beta) G;   D = (1 - beta) G + beta M;   O = newton_schulz(D)
        W <- W (1 - lr wd) - lr sqrt(max(1, rows / cols)) O

    ``lr`` of a Muon group is its own (``muon_lr``, about 0.02: an orthogonal step has a
    fixed size, so it needs no ``sqrt(v)`` normalisation and takes a far larger rate than
    Adam's). The square root keeps a tall matrix's per-entry update as large as a wide one's.
    A schedule that sets every group's ``lr`` each step should multiply it by the group's
    ``lr_ratio`` (``muon_lr / lr`` for Muon groups, 1 for the others), as the Trainer does.
    AdamW groups follow ``torch.optim.AdamW`` exactly (bias correction, ``eps`` outside the root).
    """

    def __init__(self, groups: Iterable[dict], lr: float = 1e-3, muon_lr: float = 0.02, momentum: float = 0.95,
                 betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8, weight_decay: float = 0.0,
                 ns_steps: int = NS_STEPS) -> None:  # fmt: skip
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if not (math.isfinite(muon_lr) and muon_lr > 0):
            raise ValueError(f"muon_lr must be a positive finite number, got {muon_lr!r}")
        groups = [dict(g) for g in groups]
        for g in groups:
            g.setdefault("use_muon", False)
            if g["use_muon"]:
                g.setdefault("lr", muon_lr)
                bad = [tuple(p.shape) for p in g["params"] if p.dim() != 2]
                if bad:
                    raise ValueError(f"Muon groups hold matrices only; got shapes {bad}: put vectors and "
                                     "embeddings in a group with use_muon=False")
            g.setdefault("lr_ratio", muon_lr / lr if g["use_muon"] else 1.0)
        defaults = dict(lr=lr, momentum=momentum, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        ns_steps=ns_steps, use_muon=False, lr_ratio=1.0)  # fmt: skip
        super().__init__(groups, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch's signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            params = [p for p in group["params"] if p.grad is not None]
            if group["use_muon"]:
                self._muon_step(params, group)
                continue
            beta1, beta2 = group["betas"]
            for p in params:
                grad, state = p.grad, self.state[p]
                p.mul_(1 - lr * wd)  # decoupled weight decay
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"].item()
                state["exp_avg"].lerp_(grad, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (state["exp_avg_sq"] / (1 - beta2**t)).sqrt_().add_(group["eps"])
                p.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - beta1**t))
        return loss

    def _muon_step(self, params: list[torch.Tensor], group: dict) -> None:
        """Momentum, Nesterov look-ahead, orthogonalisation, decayed step. Matrices of one shape
        are orthogonalised together, one batched iteration per shape."""
        lr, wd, beta = group["lr"], group["weight_decay"], group["momentum"]
        by_shape: dict[tuple[int, ...], list[torch.Tensor]] = {}
        for p in params:
            by_shape.setdefault(tuple(p.shape), []).append(p)
        for (rows, cols), same in by_shape.items():
            directions = []
            for p in same:
                state = self.state[p]
                if not state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - beta)
                directions.append(p.grad.lerp(buf, beta))  # Nesterov: one momentum step ahead
            updates = newton_schulz(torch.stack(directions), group["ns_steps"])
            scale = max(1.0, rows / cols) ** 0.5
            for p, update in zip(same, updates):
                p.mul_(1 - lr * wd)
                p.add_(update, alpha=-lr * scale)
