"""Day 13's exercises: an LSTM cell, backpropagation through time by hand, a recurrent gain that keeps the gradient alive, counting an LSTM's parameters."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from course_lib.exercises import call_reported as _call
from course_lib.exercises import Waiting, Wrong, call_answer, differs, exercise



def _diff(got: Any, want: torch.Tensor, what: str, where: str, ref: str) -> None:
    """Raise Wrong when ``got`` is not ``want`` (float64, tight tolerance), saying where the worst entry is."""
    if not isinstance(got, torch.Tensor):
        raise Wrong(f"{what} on {where} should be a tensor, got {type(got).__name__}")
    why = differs(got, want, rtol=1e-6, atol=1e-9)
    if why is None:
        return
    if not why.startswith("expected shape"):
        gap = (got.detach().to(want.dtype) - want).abs()
        i = int(gap.flatten().argmax())
        index = tuple(int(k) for k in torch.unravel_index(torch.tensor(i), want.shape))
        why = (f"the largest difference is {gap.max().item():.3g}, at index {index}: expected "
               f"{want.flatten()[i].item():.8g}, got {got.detach().flatten()[i].item():.8g}")
    raise Wrong(f"{what} on {where} differs from {ref}: {why}")


@exercise("day13.ex1", title="an LSTM cell", kind="code", section="section 6, Gates: GRU and LSTM")
def check_lstm_cell(fn: Any) -> str:
    gen = torch.Generator().manual_seed(1301)
    cases = [(1, 3, 2), (4, 5, 7), (2, 1, 6), (3, 8, 4)]  # (B, D, H)
    for B, D, H in cases:
        ref = nn.LSTMCell(D, H).double()
        with torch.no_grad():
            for p in ref.parameters():  # larger than the default init, so every gate matters
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
        x, h, c = (torch.randn(B, n, generator=gen, dtype=torch.float64) for n in (D, H, H))
        with torch.no_grad():
            h_want, c_want = ref(x, (h, c))
        weights = [p.detach().clone() for p in (ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh)]
        where = f"B={B}, D={D}, H={H}"
        out = _call(fn, f"my_lstm_cell on {where}", x.clone(), h.clone(), c.clone(), *weights)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise Wrong(f"my_lstm_cell must return (h, c), got {type(out).__name__}")
        _diff(out[1], c_want, "the new cell state c", where, "torch.nn.LSTMCell's")
        _diff(out[0], h_want, "the new hidden state h", where, "torch.nn.LSTMCell's")
    return f"({len(cases)} random cells and batches agree with torch.nn.LSTMCell)"


@exercise("day13.ex2", title="backpropagation through time by hand", kind="code",
          section="section 4, Backpropagation through time")
def check_bptt(fn: Any) -> str:
    gen = torch.Generator().manual_seed(1302)
    cases = [(1, 2, 3), (6, 4, 5), (12, 3, 8), (20, 5, 4)]  # (T, D, H)
    for T, D, H in cases:
        rnn = nn.RNN(D, H, batch_first=True).double()
        W_xh, W_hh, b = (torch.randn(s, generator=gen, dtype=torch.float64) * 0.6 for s in ((H, D), (H, H), (H,)))
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(W_xh), rnn.weight_hh_l0.copy_(W_hh), rnn.bias_ih_l0.copy_(b), rnn.bias_hh_l0.zero_()
        x, h0 = torch.randn(T, D, generator=gen, dtype=torch.float64), torch.randn(H, generator=gen, dtype=torch.float64)
        dL_dstates = torch.randn(T, H, generator=gen, dtype=torch.float64)  # L = sum(states * dL_dstates)
        states, _ = rnn(x[None], h0[None, None])  # (1, T, H)
        (states[0] * dL_dstates).sum().backward()
        where = f"T={T}, D={D}, H={H}"
        out = _call(fn, f"bptt on {where}", x.clone(), h0.clone(), W_xh.clone(), W_hh.clone(), b.clone(),
                    dL_dstates.clone())
        if not (isinstance(out, tuple) and len(out) == 3):
            raise Wrong(f"bptt must return (dW_xh, dW_hh, db), got {type(out).__name__}")
        for name, got, p in zip(("dW_xh", "dW_hh", "db"), out, (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0)):
            _diff(got, p.grad, name, where, "autograd's through torch.nn.RNN")
    return f"({len(cases)} random sequences, up to 20 steps: the same gradients as autograd through torch.nn.RNN)"


def grad_ratio(gain: float, hidden_size: int = 64, input_size: int = 8, T: int = 50) -> float:
    """||dL/dh_1|| / ||dL/dh_T|| for a loss on the last state of an RNN whose W_hh is gain times an orthogonal matrix."""
    gen = torch.Generator().manual_seed(1303)
    rnn = nn.RNN(input_size, hidden_size, batch_first=True)
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn(hidden_size, hidden_size, generator=gen))  # (H, H) orthogonal
        rnn.weight_hh_l0.copy_(gain * q)
        rnn.weight_ih_l0.copy_(torch.randn(hidden_size, input_size, generator=gen) / input_size**0.5)
        rnn.bias_ih_l0.zero_(), rnn.bias_hh_l0.zero_()
    x = torch.randn(1, T, input_size, generator=gen)  # (1, T, D)
    w = torch.randn(hidden_size, generator=gen)  # (H,) the loss is w . h_T
    h, hs = None, []
    for t in range(T):
        _, h = rnn(x[:, t : t + 1], h)  # (1, 1, H)
        h.retain_grad()
        hs.append(h)
    (hs[-1][0, 0] @ w).backward()
    return hs[0].grad.norm().item() / hs[-1].grad.norm().item()


@exercise("day13.ex3", title="a recurrent gain that keeps the gradient alive", kind="experiment",
          section="section 5, Vanishing gradients")
def check_gain(answer: Any) -> str:
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise Wrong(f"expected a gain (a positive number), got {answer!r}")
    gain = float(answer)
    if not 0 < gain < 100:
        raise Wrong(f"expected a gain between 0 and 100, got {gain}")
    r = grad_ratio(gain)
    if not 0.1 <= r <= 10:  # also catches nan
        side = "vanishes" if r < 0.1 else "explodes"
        raise Wrong(f"with gain {gain}, ||dL/dh_1|| / ||dL/dh_50|| = {r:.3g}: the gradient {side}; the target is "
                    f"a ratio between 0.1 and 10")
    return f"(ratio {r:.3g} over 50 steps; with gain 1 it is {grad_ratio(1.0):.1e})"


@exercise("day13.ex4", title="counting an LSTM's parameters", kind="value", section="section 6, Gates: GRU and LSTM")
def check_lstm_params(answer: Any) -> str:
    expected = sum(p.numel() for p in nn.LSTM(input_size=10, hidden_size=20).parameters())
    if isinstance(answer, bool) or not isinstance(answer, int) or answer != expected:
        side = "" if not isinstance(answer, (int, float)) else (" (too few)" if answer < expected else " (too many)")
        raise Wrong(f"{answer!r}{side} is not the number of parameters of nn.LSTM(input_size=10, hidden_size=20)")
    return f"(four gates, each with its own W_ih (20, 10), W_hh (20, 20) and two biases: 4 x 640 = {expected})"
