"""Day 7's exercises: Kaiming's uniform initialiser, BatchNorm at inference, RMSNorm, a steady deep ReLU network, ReLU's second moment."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.exercises import call_reported as _call
from course_lib.exercises import Waiting, Wrong, _body_is_ellipsis, call_answer, differs, exercise


def _diff(got: Any, want: torch.Tensor, rtol: float, atol: float) -> str | None:
    """How ``got`` differs from ``want``, on one line: the shape, or the worst element and where it is."""
    why = differs(got, want, rtol=rtol, atol=atol)
    if why is None or why.startswith("expected shape"):
        return why
    got = torch.as_tensor(got, dtype=want.dtype).reshape(want.shape)
    gap = (got - want).abs()
    i = int(gap.flatten().argmax())
    index = tuple(int(k) for k in torch.unravel_index(torch.tensor(i), want.shape)) if want.dim() else ()
    return (f"the largest difference is {gap.max().item():.3g}, at index {index}: expected "
            f"{want.flatten()[i].item():.8g}, got {got.flatten()[i].item():.8g}")



@exercise("day07.ex1", title="Kaiming's uniform initialiser", kind="code", section="section 1, The variance argument")
def check_kaiming_uniform(fn: Any) -> str:
    shapes = [(300, 100), (256, 512), (10, 1), (1, 7), (16, 3, 5, 5), (8, 4, 3), (5, 6, 2, 2, 2)]
    for k, shape in enumerate(shapes):
        mine, theirs = torch.full(shape, float("nan")), torch.empty(shape)
        nn.init.kaiming_uniform_(theirs, nonlinearity="relu", generator=torch.Generator().manual_seed(700 + k))
        _call(fn, f"my_kaiming_uniform_ on a weight of shape {shape}", mine, generator=torch.Generator().manual_seed(700 + k))
        why = _diff(mine, theirs, rtol=1e-5, atol=1e-7)
        if why:
            raise Wrong(f"on a weight of shape {shape}, with the same seeded generator, the weight (changed in place) "
                        f"differs from nn.init.kaiming_uniform_(w, nonlinearity='relu')'s: {why}")
    return f"({len(shapes)} shapes, linear and convolutional, draw exactly what torch.nn.init draws)"


@exercise("day07.ex2", title="BatchNorm at inference", kind="code", section="section 3, Batch normalisation")
def check_batchnorm_eval(fn: Any) -> str:
    gen = torch.Generator().manual_seed(702)
    for B, C, eps in [(5, 6, 1e-5), (1, 3, 1e-5), (32, 1, 1e-3), (7, 10, 0.5)]:
        x = torch.randn(B, C, generator=gen) * 3 + 1
        mean, var = torch.randn(C, generator=gen), torch.rand(C, generator=gen) * 2 + 0.05
        weight, bias = torch.randn(C, generator=gen), torch.randn(C, generator=gen)
        expected = F.batch_norm(x, mean, var, weight, bias, training=False, eps=eps)  # (B, C)
        got = _call(fn, f"my_batchnorm_eval on x of shape {(B, C)}", x.clone(), mean.clone(), var.clone(),
                    weight.clone(), bias.clone(), eps=eps)
        why = _diff(got, expected, rtol=1e-4, atol=1e-5)
        if why:
            raise Wrong(f"for x of shape {(B, C)} and eps={eps}, the output differs from "
                        f"F.batch_norm(..., training=False)'s: {why}")
    return "(4 random layers, a batch of one included, agree with F.batch_norm(..., training=False))"


@exercise("day07.ex3", title="RMSNorm", kind="code", section="section 4, Layer normalisation")
def check_rmsnorm(cls: Any) -> str:
    gen = torch.Generator().manual_seed(703)
    for shape, eps in [((4, 16), 1e-6), ((2, 7, 8), 1e-6), ((3, 5), 1e-2), ((1, 1, 12), 1e-5)]:
        C = shape[-1]
        where = f"input of shape {shape}, eps={eps}"
        module = _call(cls, f"MyRMSNorm({C}, eps={eps})", C, eps=eps)
        if _body_is_ellipsis(getattr(type(module), "forward", None)):
            raise Waiting  # forward still the placeholder
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter) or tuple(weight.shape) != (C,):
            raise Wrong(f"MyRMSNorm({C}) needs a learnable nn.Parameter `weight` of shape ({C},), got {weight!r}")
        with torch.no_grad():
            weight.copy_(torch.rand(C, generator=gen) + 0.5)
        x = torch.randn(*shape, generator=gen) * 2 + 0.5
        upstream = torch.randn(*shape, generator=gen)
        x_mine, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
        w_ref = weight.detach().clone().requires_grad_()
        expected = F.rms_norm(x_ref, (C,), w_ref, eps=eps)
        out = _call(module, f"MyRMSNorm on {where}", x_mine)
        if not isinstance(out, torch.Tensor):
            raise Wrong(f"on an {where}, forward returned {type(out).__name__}, not a tensor")
        why = _diff(out.detach(), expected.detach(), rtol=1e-4, atol=1e-5)
        if why:
            raise Wrong(f"on an {where}, the output differs from F.rms_norm's: {why}")
        want_x, want_w = torch.autograd.grad((upstream * expected).sum(), (x_ref, w_ref))
        if not out.requires_grad:
            raise Wrong(f"on an {where}, the output is not connected to the graph: no gradients flow back")
        got_x, got_w = torch.autograd.grad((upstream * out).sum(), (x_mine, weight), allow_unused=True)
        for what, got, want in (("the input", got_x, want_x), ("weight", got_w, want_w)):
            if got is None:
                raise Wrong(f"on an {where}, the output does not depend on {what}")
            why = _diff(got, want, rtol=1e-4, atol=1e-5)
            if why:
                raise Wrong(f"on an {where}, the gradient with respect to {what} differs from F.rms_norm's: {why}")
    return "(4 random inputs, 2-D and 3-D: outputs and gradients agree with F.rms_norm)"


def _deep_relu_statistics(init: Any, depth: int = 10, width: int = 256) -> tuple[list[float], list[float]]:
    """Std of each ReLU's output and of the loss gradient with respect to it, in a fixed-seed MLP."""
    gen = torch.Generator().manual_seed(704)
    x = torch.randn(512, 64, generator=gen)  # (512, 64) standardised inputs
    y = torch.randint(0, 10, (512,), generator=gen)
    with torch.random.fork_rng():  # the learner's init may draw from torch's global generator
        torch.manual_seed(704)
        layers, n_in = [], 64
        for k in range(depth):
            linear = nn.Linear(n_in, width)
            with torch.no_grad():
                _call(init, f"my_init on layer {k + 1}'s weight of shape {(width, n_in)}", linear.weight)
                linear.bias.zero_()
            layers.append(linear)
            n_in = width
        head = nn.Linear(width, 10)
    h, outputs = x, []
    for linear in layers:
        h = torch.relu(linear(h))
        h.retain_grad()
        outputs.append(h)
    F.cross_entropy(head(h), y).backward()
    return [o.std().item() for o in outputs], [o.grad.std().item() for o in outputs]


@exercise("day07.ex4", title="a deep ReLU network that stays steady", kind="experiment",
          section="section 2, Inside a 10-layer network")
def check_steady_init(init: Any) -> str:
    act_std, grad_std = _deep_relu_statistics(init)
    for k, s in enumerate(act_std, start=1):
        if not 0.5 <= s <= 2:  # also catches nan
            raise Wrong(f"in the 10-layer ReLU MLP (width 256, biases 0) the activations of layer {k} have standard "
                        f"deviation {s:.3g}; the target is within [0.5, 2] at every layer")
    ratio = grad_std[0] / grad_std[-1]
    if not 0.25 <= ratio <= 4:
        raise Wrong(f"the activations are steady, but the gradient reaching layer 1 is {ratio:.3g} times the one at "
                    f"layer 10; the target is within [0.25, 4]")
    return (f"(activation std between {min(act_std):.2f} and {max(act_std):.2f} over 10 layers; gradient std, "
            f"layer 1 over layer 10: {ratio:.2f})")


@exercise("day07.ex5", title="ReLU's second moment", kind="value", section="section 1, The variance argument")
def check_relu_second_moment(answer: Any) -> str:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise Wrong(f"expected one number, got {answer!r}") from None
    zs = torch.linspace(0, 40, 200_001, dtype=torch.float64)  # ReLU(z)^2 is 0 for z < 0
    density = torch.exp(-(zs**2) / (2 * 4)) / (2 * torch.pi * 4) ** 0.5  # N(0, 4)
    expected = torch.trapezoid(zs**2 * density, zs).item()  # numerical integral of E[ReLU(z)^2]
    if differs(value, expected, rtol=1e-6, atol=1e-9):
        side = "too small" if value < expected else "too large"
        raise Wrong(f"{value:.6g} is {side}: it is not E[ReLU(z)^2] for z ~ N(0, 4), integrated numerically")
    return "(the integral against the normal density agrees: half of Var(z))"
