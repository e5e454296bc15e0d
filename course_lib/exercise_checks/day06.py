"""Day 6's exercises: Adagrad as an optimizer class, Adam's update as a function, tuning momentum, momentum's speed limit."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from course_lib.exercises import raised as _raised
from course_lib.exercises import Waiting, Wrong, _body_is_ellipsis, call_answer, differs, exercise, is_placeholder


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
            f"{want.flatten()[i].item():.10g}, got {got.flatten()[i].item():.10g}")



def _step_is_placeholder(optimizer: Any) -> bool:
    """True when the learner's class still has the placeholder ``step`` (a body of ``...``)."""
    step = getattr(type(optimizer), "step", None)
    return step is not None and _body_is_ellipsis(inspect.unwrap(step))


def _adagrad_problem(gen: torch.Generator, shapes: list[tuple]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Random starting parameters of the given shapes and a random target for a non-linear loss."""
    params = [torch.randn(*s, generator=gen, dtype=torch.float64) for s in shapes]
    target = torch.randn((), generator=gen, dtype=torch.float64)
    return params, target


def _adagrad_loss(params: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    return sum((torch.tanh(p) * (k + 1)).sum() ** 2 for k, p in enumerate(params)) / 10 - target * params[0].sum()


def _run_optimizer(make: Any, start: list[torch.Tensor], target: torch.Tensor, steps: int,
                   frozen: int | None, groups: bool) -> list[torch.Tensor]:
    """Parameters after ``steps`` steps; parameter ``frozen`` never gets a gradient; ``groups``: two param groups."""
    params = [p.clone().requires_grad_() for p in start]
    if groups:
        arg = [{"params": params[:1]}, {"params": params[1:], "lr": 0.03}]
    else:
        arg = params
    optimizer = make(arg)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = _adagrad_loss([p if k != frozen else p.detach() for k, p in enumerate(params)], target)
        loss.backward()
        optimizer.step()
    return [p.detach() for p in params]


@exercise("day06.ex1", title="Adagrad from scratch", kind="code", section="section 3, RMSProp: a step size per weight")
def check_adagrad(cls: Any) -> str:
    if is_placeholder(cls):
        raise Waiting
    gen = torch.Generator().manual_seed(601)
    cases = [([(4, 3), (3,)], 0.1, 1e-10, None, False), ([(2, 5), (7,), (1,)], 0.5, 1e-10, 2, False),
             ([(6,), (3, 2)], 0.05, 1e-3, None, True), ([(1,)], 1.0, 1e-10, None, False)]
    for shapes, lr, eps, frozen, groups in cases:
        start, target = _adagrad_problem(gen, shapes)
        theirs = _run_optimizer(lambda ps: torch.optim.Adagrad(ps, lr=lr, eps=eps), start, target, 15, frozen, groups)
        where = (f"parameters of shapes {shapes}, lr={lr}, eps={eps}" + (", two param groups (the second with lr=0.03)"
                 if groups else "") + (f", parameter {frozen} without a gradient" if frozen is not None else ""))
        try:
            probe = call_answer(cls, [start[0].clone().requires_grad_()], lr=lr, eps=eps)
            if _step_is_placeholder(probe):
                raise Waiting
            mine = _run_optimizer(lambda ps: cls(ps, lr=lr, eps=eps), start, target, 15, frozen, groups)
        except (Waiting, Wrong):
            raise
        except Exception as err:  # noqa: BLE001 (any other error is the learner's bug, reported)
            raise _raised(f"MyAdagrad on {where}", err) from None
        if all(torch.equal(m, s) for m, s in zip(mine, start)):
            raise Wrong(f"on {where}, 15 steps left every parameter unchanged: update p in place (p -= ...)")
        for k, (m, t) in enumerate(zip(mine, theirs)):
            why = _diff(m, t, rtol=1e-8, atol=1e-10)
            if why:
                raise Wrong(f"after 15 steps on {where}, parameter {k} differs from torch.optim.Adagrad's: {why}")
    return f"({len(cases)} random problems, 15 steps each, agree with torch.optim.Adagrad)"


@exercise("day06.ex2", title="Adam's update as a function", kind="code", section="section 4, Adam and AdamW")
def check_adam_step(fn: Any) -> str:
    gen = torch.Generator().manual_seed(602)
    cases = [((3,), 0.1, (0.9, 0.999), 1e-8, 1), ((4, 2), 0.01, (0.9, 0.999), 1e-8, 12),
             ((5,), 0.003, (0.8, 0.9), 1e-6, 8), ((2, 3, 2), 0.05, (0.5, 0.99), 1e-3, 20)]
    for shape, lr, betas, eps, steps in cases:
        theta0 = torch.randn(*shape, generator=gen, dtype=torch.float64)
        grads = [torch.randn(*shape, generator=gen, dtype=torch.float64) * 3 for _ in range(steps)]
        ref = theta0.clone().requires_grad_()
        adam = torch.optim.Adam([ref], lr=lr, betas=betas, eps=eps)
        theta, m, v = theta0.clone(), torch.zeros_like(theta0), torch.zeros_like(theta0)
        for t, g in enumerate(grads, start=1):
            ref.grad = g.clone()
            adam.step()
            try:
                out = call_answer(fn, theta.clone(), g.clone(), m.clone(), v.clone(), t, lr, betas, eps)
            except (Waiting, Wrong):
                raise
            except Exception as err:  # noqa: BLE001
                raise _raised(f"adam_step at step t={t} on shape {shape}", err) from None
            if not (isinstance(out, tuple) and len(out) == 3):
                raise Wrong(f"adam_step must return (theta, m, v), got {type(out).__name__}")
            theta, m, v = (torch.as_tensor(x, dtype=torch.float64) for x in out)
            state = adam.state[ref]
            for what, got, want in (("m", m, state["exp_avg"]), ("v", v, state["exp_avg_sq"]), ("theta", theta, ref)):
                why = _diff(got, want.detach(), rtol=1e-8, atol=1e-12)
                if why:
                    raise Wrong(f"at step t={t} of {steps} (shape {shape}, lr={lr}, betas={betas}, eps={eps}), {what} "
                                f"differs from torch.optim.Adam's: {why}")
    return "(4 random runs of up to 20 steps agree with torch.optim.Adam; the first step moves each weight by lr)"


def _final_loss(lr: float, momentum: float, steps: int = 100) -> float:
    w = torch.tensor([-4.0, 1.0], dtype=torch.float64, requires_grad=True)  # (2,)
    optimizer = torch.optim.SGD([w], lr=lr, momentum=momentum)
    for _ in range(steps):
        optimizer.zero_grad()
        (0.5 * (w[0] ** 2 + 50 * w[1] ** 2)).backward()
        optimizer.step()
    return float(0.5 * (w[0] ** 2 + 50 * w[1] ** 2).detach())


@exercise("day06.ex3", title="tune momentum on the narrow valley", kind="experiment",
          section="section 5, Racing on 2-D loss surfaces")
def check_tuned_momentum(answer: Any) -> str:
    if not isinstance(answer, dict) or set(answer) != {"lr", "momentum"}:
        raise Wrong(f"expected a dict with the keys 'lr' and 'momentum', got {answer!r}")
    try:
        lr, mu = float(answer["lr"]), float(answer["momentum"])
    except (TypeError, ValueError):
        raise Wrong(f"lr and momentum must be numbers, got {answer!r}") from None
    if not (lr > 0 and 0 <= mu < 1):
        raise Wrong(f"need lr > 0 and 0 <= momentum < 1, got lr={lr}, momentum={mu}")
    loss = _final_loss(lr, mu)
    if not loss < 1e-10:  # also catches nan and inf
        raise Wrong(f"with lr={lr} and momentum={mu}, torch.optim.SGD on (x^2 + 50 y^2)/2 from (-4, 1) ends at "
                    f"loss {loss:.3g} after 100 steps; the target is below 1e-10")
    return f"(loss {loss:.2g} after 100 steps; plain SGD at its best lr, 2/51, reaches only {_final_loss(2 / 51, 0):.2g})"


@exercise("day06.ex4", title="momentum's speed limit", kind="value", section="section 2, Momentum and Nesterov")
def check_speed_limit(answer: Any) -> str:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise Wrong(f"expected one number, got {answer!r}") from None
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([theta], lr=0.01, momentum=0.95)
    for _ in range(2000):  # long enough for the velocity to settle (0.95^2000 is about 1e-45)
        before = theta.item()
        optimizer.zero_grad()
        (3 * theta).sum().backward()  # constant gradient 3
        optimizer.step()
    expected = abs(theta.item() - before)
    if differs(value, expected, rtol=1e-6, atol=1e-9):
        side = "too small" if value < expected else "too large"
        raise Wrong(f"{value:.6g} is {side}: it is not how far torch.optim.SGD(lr=0.01, momentum=0.95) moves theta "
                    f"per step on L = 3 theta once the velocity has settled (2,000 steps)")
    return f"(plain SGD moves theta {0.01 * 3:.2f} a step; momentum 0.95 makes it {expected / 0.03:.0f} times that)"
