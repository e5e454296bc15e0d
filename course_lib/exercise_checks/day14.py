"""Day 14's exercises: a bidirectional GRU encoder, beam search, the update-gate bias that remembers, the bits a context vector must hold."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.exercises import call_reported as _call
from course_lib.exercises import Waiting, Wrong, call_answer, differs, exercise



def _diff(got: Any, want: torch.Tensor, what: str, where: str) -> None:
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
    raise Wrong(f"{what} on {where} differs from torch.nn.GRU(bidirectional=True)'s: {why}")


@exercise("day14.ex1", title="a bidirectional GRU encoder", kind="code", section="section 2, A GRU cell from scratch")
def check_bigru(fn: Any) -> str:
    gen = torch.Generator().manual_seed(1401)
    cases = [(1, 1, 3, 2), (2, 5, 4, 3), (3, 9, 2, 6), (4, 4, 6, 5)]  # (B, T, D, H)
    for B, T, D, H in cases:
        ref = nn.GRU(D, H, batch_first=True, bidirectional=True).double()
        with torch.no_grad():
            for p in ref.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.7)
        x = torch.randn(B, T, D, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            out_want, h_want = ref(x)  # (B, T, 2H), (2, B, H)
        names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        fwd = tuple(getattr(ref, n).detach().clone() for n in names)
        bwd = tuple(getattr(ref, n + "_reverse").detach().clone() for n in names)
        where = f"B={B}, T={T}, D={D}, H={H}"
        out = _call(fn, f"my_bigru on {where}", x.clone(), fwd, bwd)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise Wrong(f"my_bigru must return (outputs, h_n), got {type(out).__name__}")
        outputs = out[0]
        if isinstance(outputs, torch.Tensor) and outputs.shape == out_want.shape:  # each direction on its own
            _diff(outputs[..., :H], out_want[..., :H], "the forward direction's states (outputs[..., :H])", where)
            _diff(outputs[..., H:], out_want[..., H:], "the backward direction's states (outputs[..., H:])", where)
        _diff(outputs, out_want, "outputs", where)
        _diff(out[1], h_want, "h_n", where)
    return f"({len(cases)} random encoders and batches agree with torch.nn.GRU(bidirectional=True))"


def _toy_decoder(V: int, max_len: int, seed: int):
    """A fixed random 'decoder': log-probabilities of the next id given the whole prefix (the last two ids and the step)."""
    gen = torch.Generator().manual_seed(seed)
    A, C = torch.randn(V, V, generator=gen, dtype=torch.float64) * 2, torch.randn(V, V, generator=gen, dtype=torch.float64)
    P = torch.randn(max_len + 1, V, generator=gen, dtype=torch.float64)

    def next_log_probs(prefix: list[int]) -> torch.Tensor:
        logits = A[prefix[-1]] + P[min(len(prefix) - 1, max_len)] + (C[prefix[-2]] if len(prefix) > 1 else 0)
        return F.log_softmax(logits, dim=-1)  # (V,)

    return next_log_probs


def _greedy(next_log_probs, start: int, end: int, max_len: int) -> tuple[list[int], float]:
    prefix, score = [start], 0.0
    for _ in range(max_len):
        lp = next_log_probs(prefix)
        nxt = int(lp.argmax())
        prefix.append(nxt)
        score += float(lp[nxt])
        if nxt == end:
            break
    return prefix[1:], score


def _exhaustive(next_log_probs, start: int, end: int, max_len: int, V: int) -> tuple[list[int], float]:
    """Every output (stopped at the end id or after max_len ids), the most probable one."""
    best: list = [None, -math.inf]

    def walk(prefix: list[int], score: float) -> None:
        if len(prefix) > 1 and (prefix[-1] == end or len(prefix) - 1 == max_len):
            if score > best[1]:
                best[:] = [prefix[1:], score]
            return
        lp = next_log_probs(prefix)
        for v in range(V):
            walk(prefix + [v], score + float(lp[v]))

    walk([start], 0.0)
    return best[0], best[1]


@exercise("day14.ex2", title="beam search", kind="code", section="section 4, Greedy decoding from scratch")
def check_beam_search(fn: Any) -> str:
    cases = [(4, 0, 1, 4, 1402), (5, 0, 2, 3, 1403), (3, 1, 0, 5, 1404), (4, 3, 0, 4, 1405), (6, 0, 5, 3, 1406)]
    beats = 0
    for V, end, start, max_len, seed in cases:
        model = _toy_decoder(V, max_len, seed)
        for width, (ref_ids, ref_score), name in ((1, _greedy(model, start, end, max_len), "greedy decoding"),
                                                 (V**max_len, _exhaustive(model, start, end, max_len, V),
                                                  "trying every output")):
            where = f"beam_width={width} (V={V}, start={start}, end={end}, max_len={max_len})"
            out = _call(fn, f"beam_search with {where}", model, start, end, width, max_len)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise Wrong(f"beam_search must return (ids, score), got {type(out).__name__}")
            ids, score = out
            ids = [int(i) for i in ids] if isinstance(ids, (list, tuple, torch.Tensor)) else ids
            if ids != ref_ids:
                raise Wrong(f"with {where}, beam_search returned {ids} (score {float(score):.4f}); {name} gives "
                            f"{ref_ids} (score {ref_score:.4f})")
            if differs(float(score), ref_score, rtol=1e-6, atol=1e-8):
                raise Wrong(f"with {where}, the ids {ids} are right but the score {float(score):.6f} is not their "
                            f"total log-probability {ref_score:.6f}")
        beats += _exhaustive(model, start, end, max_len, V)[1] > _greedy(model, start, end, max_len)[1] + 1e-9
    return (f"({len(cases)} random decoders: width 1 is greedy decoding, a full beam finds the most probable output; "
            f"it beats greedy on {beats} of them)")


def update_gate_memory(bias: float, hidden_size: int = 32, input_size: int = 8, T: int = 50) -> float:
    """Cosine similarity of a GRU cell's state after T random inputs with its first state, with ``bias`` added to
    the update gate's rows of bias_ih (the cell's other weights fixed and random, torch's default init)."""
    gen = torch.Generator().manual_seed(1403)
    H = hidden_size
    cell = nn.GRUCell(input_size, H)
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) * 2 / H**0.5 - 1 / H**0.5)  # uniform(-1/sqrt(H), 1/sqrt(H))
        cell.bias_ih[H : 2 * H] += bias  # rows: reset, update, candidate
        h0 = torch.randn(1, H, generator=gen).tanh()  # (1, H)
        x = torch.randn(T, 1, input_size, generator=gen)  # (T, 1, D)
        h = h0
        for t in range(T):
            h = cell(x[t], h)  # (1, H)
    return torch.cosine_similarity(h, h0).item()


@exercise("day14.ex3", title="an update gate that remembers", kind="experiment", section="section 2, A GRU cell from scratch")
def check_update_bias(answer: Any) -> str:
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or not math.isfinite(answer):
        raise Wrong(f"expected a bias (a number), got {answer!r}")
    b = float(answer)
    cos = update_gate_memory(b)
    if not cos >= 0.95:
        raise Wrong(f"with the update-gate bias raised by {b}, the state after 50 inputs has cosine similarity "
                    f"{cos:.3f} with the first one; the target is at least 0.95")
    lower = update_gate_memory(b - 0.5)
    if lower >= 0.95:
        raise Wrong(f"a bias of {b} keeps the state ({cos:.3f}), but so does {b - 0.5:g} ({lower:.3f}): find the "
                    f"smallest bias, to within 0.5")
    return f"(cosine similarity {cos:.3f} after 50 steps, {lower:.3f} with {b - 0.5:g}; {update_gate_memory(0):.3f} without it)"


@exercise("day14.ex4", title="how much must fit through", kind="value", section="section 6, The bottleneck, and the way out")
def check_bits(answer: Any) -> str:
    expected = math.log2(26**12)
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or differs(answer, expected, rtol=1e-4):
        side = "" if not isinstance(answer, (int, float)) else (" (too few)" if answer < expected else " (too many)")
        raise Wrong(f"{answer!r}{side} is not the number of bits of information in 12 letters drawn uniformly from 26")
    return f"({math.log2(26):.2f} bits a letter; the context vector must hold {expected:.1f} bits for 12 letters)"
