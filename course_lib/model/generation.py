"""Day 21: text generation: sampling settings, temperature, top-k and top-p, beam search.

How a token is chosen is one :class:`SamplingSettings` object, checked once when it is
made; ``GPT.generate``, the command line and the sampling widget all take it::

    settings = SamplingSettings(max_new_tokens=100, temperature=0.8, top_k=40)
    out = model.generate(idx, settings=settings)     # or model.generate(idx, 100, temperature=0.8, top_k=40)

The context window: a GPT sees at most ``block_size`` positions. Once the text grows
longer, each step feeds the last ``block_size`` tokens (the window slides). A
:class:`~course_lib.model.kv_cache.KVCache` cannot follow a sliding window (every token's
position, hence its keys and values, changes at every step), so past ``block_size``
generation falls back to recomputing the cropped window at each step. Cached and uncached
generation therefore see exactly the same context and, greedily, choose the same tokens;
the cache helps up to ``block_size``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from course_lib.model.kv_cache import KVCache

if TYPE_CHECKING:  # imported for type hints only: gpt.py imports this module
    from course_lib.model.gpt import GPT

# A temperature below float32's smallest normal number (1.2e-38) cannot be stored in the
# float32 logits' arithmetic: it becomes 0 or a denormal (which GPUs may flush to 0). As
# T -> 0, softmax(logits / T) puts all the mass on the most likely token, so such
# temperatures are greedy, like 0. Larger ones, however small, are sampled without
# overflow: see :func:`next_token_probs`.
GREEDY_BELOW = torch.finfo(torch.float32).tiny

_RULES = {  # what each setting must be, as the error messages say it
    "max_new_tokens": "a whole number >= 0",
    "temperature": "a finite number >= 0 (0 = greedy)",
    "top_k": "a whole number >= 1",
    "top_p": "a number in (0, 1]",
    "eos_id": "a token id (a whole number >= 0)",
    "use_cache": "True or False",
}
_OFF_WITH_NONE = ("top_k", "top_p", "eos_id")


class SamplingError(ValueError):
    """A sampling setting outside its range: ``setting`` names it, ``value`` and ``rule`` say why."""

    def __init__(self, setting: str, value: object, rule: str) -> None:
        self.setting, self.value, self.rule = setting, value, rule
        off = " or None" if setting in _OFF_WITH_NONE else ""
        super().__init__(f"{setting} must be {rule}{off}, got {value!r}.")


def _whole(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


@dataclass(frozen=True, kw_only=True)
class SamplingSettings:
    """How ``generate`` chooses new tokens; every value is checked when the settings are made.

    Frozen: ``dataclasses.replace(settings, top_p=0.9)`` makes a changed copy, checked again.
    A bad value raises a :class:`SamplingError` (a ValueError) that names the setting.

    >>> SamplingSettings(temperature=0.8, top_k=40)
    SamplingSettings(max_new_tokens=200, temperature=0.8, top_k=40, top_p=None, eos_id=None, use_cache=True)
    >>> SamplingSettings(temperature=float("nan"))
    Traceback (most recent call last):
    ...
    course_lib.model.generation.SamplingError: temperature must be a finite number >= 0 (0 = greedy), got nan.
    """

    max_new_tokens: int = 200  # tokens to add (fewer when every row has reached eos_id)
    temperature: float = 1.0  # softmax(logits / temperature): < 1 sharper, > 1 flatter, 0 greedy
    top_k: int | None = None  # sample among the k most likely tokens only; None: no limit
    top_p: float | None = None  # ... among the fewest most likely whose probability reaches p; None or 1: all
    eos_id: int | None = None  # a row that emits this token stops, and is padded with it; None: never stop
    use_cache: bool = True  # a KVCache: the same tokens, fewer computations

    def __post_init__(self) -> None:
        good = {  # in field order: the first bad setting is the one reported
            "max_new_tokens": _whole(self.max_new_tokens) and self.max_new_tokens >= 0,
            "temperature": _number(self.temperature) and math.isfinite(self.temperature) and self.temperature >= 0,
            "top_k": self.top_k is None or (_whole(self.top_k) and self.top_k >= 1),
            "top_p": self.top_p is None or (_number(self.top_p) and 0.0 < self.top_p <= 1.0),
            "eos_id": self.eos_id is None or (_whole(self.eos_id) and self.eos_id >= 0),
            "use_cache": isinstance(self.use_cache, bool),
        }
        for name, ok in good.items():
            if not ok:
                raise SamplingError(name, getattr(self, name), _RULES[name])


SETTING_NAMES = tuple(f.name for f in dataclasses.fields(SamplingSettings))


def make_settings(settings: SamplingSettings | None = None, **overrides: Any) -> SamplingSettings:
    """``settings`` (default ``SamplingSettings()``) with the fields named in ``overrides`` replaced.

    What ``model.generate(idx, temperature=0.8, settings=s)`` does with its keywords.

    >>> make_settings(SamplingSettings(temperature=0.8), top_k=40).top_k
    40
    """
    if settings is None:
        settings = SamplingSettings()
    elif not isinstance(settings, SamplingSettings):
        raise TypeError(f"settings must be a SamplingSettings, got {type(settings).__name__}: "
                        "build one with SamplingSettings(temperature=..., top_k=...).")  # fmt: skip
    unknown = sorted(set(overrides) - set(SETTING_NAMES))
    if unknown:
        raise TypeError(f"unknown sampling setting(s) {', '.join(unknown)}: the settings are {', '.join(SETTING_NAMES)}.")
    return dataclasses.replace(settings, **overrides) if overrides else settings


def is_greedy(temperature: float) -> bool:
    """True when sampling always picks the most likely token: temperature 0 (or below GREEDY_BELOW)."""
    return temperature < GREEDY_BELOW


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set logits (B, V) outside the top-k and outside the nucleus (top-p) to -inf.

    top-p keeps the smallest set of most likely tokens whose probabilities add up to at
    least p (the most likely token is always kept). Tokens tied with the k-th are kept.

    >>> filter_logits(torch.tensor([[0.0, 1.0, 2.0, 3.0]]), top_k=2)
    tensor([[-inf, -inf, 2., 3.]])
    """
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))  # (B, V)
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V), (B, V)
        probs = F.softmax(sorted_logits, dim=-1)  # (B, V), largest first
        mass_before = probs.cumsum(dim=-1) - probs  # (B, V): probability of the tokens ahead
        remove = mass_before >= top_p  # (B, V): the set ahead already reaches p
        sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)  # (B, V)
    return logits


def next_token_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """The distribution (B, V) that :func:`sample_next` draws from, for logits (B, V).

    softmax((logits - max) / temperature) is softmax(logits / temperature) (softmax ignores
    a shift), but every scaled logit is <= 0, so a tiny temperature cannot overflow to inf
    and NaN: a logit that goes past float32's range becomes -inf, probability 0, which is
    the T -> 0 limit. A greedy temperature puts all the mass on the argmax.

    >>> next_token_probs(torch.tensor([[0.0, 1.0, 2.0]]), temperature=1e-30)
    tensor([[0., 0., 1.]])
    """
    logits = logits.float()  # (B, V)
    if is_greedy(temperature):
        return F.one_hot(logits.argmax(dim=-1), logits.size(-1)).float()  # (B, V)
    shifted = logits - logits.amax(dim=-1, keepdim=True)  # (B, V): the largest is 0
    return F.softmax(filter_logits(shifted / temperature, top_k, top_p), dim=-1)  # (B, V)


def sample_next(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
    top_p: float | None = None, generator: torch.Generator | None = None,
) -> torch.Tensor:  # fmt: skip
    """Choose one token per row from logits (B, V) -> ids (B,). temperature=0 is greedy."""
    if is_greedy(temperature):
        return logits.argmax(dim=-1)  # (B,)
    probs = next_token_probs(logits, temperature, top_k, top_p)  # (B, V)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)  # (B,)


def next_logits(model: GPT, seq: torch.Tensor, cache: KVCache | None) -> tuple[torch.Tensor, KVCache | None]:
    """Logits (B, V) for the token after seq (B, L), and the cache to pass next time.

    While seq fits in the cache, only the tokens not yet in it are fed. Without a cache,
    or once seq outgrows it, the last block_size tokens are recomputed (cache dropped).
    """
    if cache is not None and seq.size(1) <= cache.max_len:
        logits, _ = model(seq[:, cache.length :], kv_cache=cache, last_only=True)  # (B, 1, V)
    else:
        cache = None
        logits, _ = model(seq[:, -model.config.block_size :], last_only=True)  # (B, 1, V): cropped window
    return logits[:, -1, :], cache  # (B, V)


def _check_request(model: GPT, idx: torch.Tensor) -> None:
    if idx.dim() != 2 or idx.size(1) == 0 or idx.dtype != torch.long:
        raise ValueError(
            f"idx must be a (B, T) LongTensor of token ids with T >= 1, got shape {tuple(idx.shape)} "
            f"and dtype {idx.dtype}; for a single prompt pass ids[None]."
        )
    model.check_token_ids(idx, what="the prompt")


def generate_stream(
    model: GPT, idx: torch.Tensor, settings: SamplingSettings | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[torch.Tensor]:  # fmt: skip
    """Yield up to ``settings.max_new_tokens`` new tokens for idx (B, T), one (B,) tensor per step.

    A row that has produced ``eos_id`` yields ``eos_id`` from then on; the stream ends
    early once every row has. The model is put in eval mode (no dropout) while the
    stream runs and returned to its previous mode when the stream ends or is closed.
    A bad prompt raises a ValueError here, before the first token.
    """
    settings = make_settings(settings)
    _check_request(model, idx)
    if settings.eos_id is not None and settings.eos_id >= model.config.vocab_size:
        raise SamplingError("eos_id", settings.eos_id, f"a token id below vocab_size={model.config.vocab_size}")
    return _stream(model, idx, settings, generator)


@torch.no_grad()  # on a generator, torch turns gradients off at every resume, not just once
def _stream(
    model: GPT, idx: torch.Tensor, s: SamplingSettings, generator: torch.Generator | None
) -> Iterator[torch.Tensor]:
    was_training = model.training
    model.eval()
    try:
        seq = idx  # (B, L), grows by one column per step
        cache = KVCache.for_model(model, idx.size(0), idx.size(1) + s.max_new_tokens) if s.use_cache else None
        finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)  # (B,)
        for _ in range(s.max_new_tokens):
            logits, cache = next_logits(model, seq, cache)  # (B, V)
            token = sample_next(logits, s.temperature, s.top_k, s.top_p, generator)  # (B,)
            if s.eos_id is not None:
                token = token.masked_fill(finished, s.eos_id)  # finished rows keep padding with eos
                finished = finished | (token == s.eos_id)
            seq = torch.cat([seq, token[:, None]], dim=1)  # (B, L + 1)
            yield token
            if s.eos_id is not None and bool(finished.all()):
                break
    finally:
        model.train(was_training)


def _beam_search_row(
    model: GPT, prompt: torch.Tensor, max_new_tokens: int, num_beams: int,
    length_penalty: float, eos_id: int | None,
) -> list[int]:  # fmt: skip
    """Best continuation of one prompt (1, T) as a list of new token ids."""
    T = prompt.size(1)
    seqs = prompt  # (k, L), k beams (1 at the start)
    cache: KVCache | None = KVCache.for_model(model, 1, T + max_new_tokens)
    scores = torch.zeros(1, device=prompt.device)  # (k,): sum of log-probs of the new tokens
    done: list[tuple[float, list[int]]] = []  # finished hypotheses: (normalized score, tokens)

    def normalized(score: float, n_tokens: int) -> float:  # longer sequences are not punished
        return score / n_tokens**length_penalty

    for step in range(1, max_new_tokens + 1):
        logits, cache = next_logits(model, seqs, cache)  # (k, V)
        V = logits.size(-1)
        total = (scores[:, None] + F.log_softmax(logits.float(), dim=-1)).view(-1)  # (k * V,)
        best_scores, best_flat = total.topk(min(2 * num_beams, total.numel()))  # 2k candidates
        rows, tokens, new_scores = [], [], []
        for score, flat in zip(best_scores.tolist(), best_flat.tolist()):
            row, token = divmod(flat, V)
            if eos_id is not None and token == eos_id:  # a finished hypothesis
                done.append((normalized(score, step), seqs[row, T:].tolist() + [token]))
            else:
                rows.append(row)
                tokens.append(token)
                new_scores.append(score)
            if len(rows) == num_beams:
                break
        done = sorted(done, reverse=True)[:num_beams]
        if not rows:
            break
        index = torch.tensor(rows, device=prompt.device)  # (k,): which beam each new beam extends
        seqs = torch.cat([seqs[index], torch.tensor(tokens, device=prompt.device)[:, None]], dim=1)  # (k, L+1)
        scores = torch.tensor(new_scores, device=prompt.device)  # (k,)
        if cache is not None:
            cache.reorder(index)
        if len(done) == num_beams and normalized(new_scores[0], step) <= done[-1][0]:
            break  # no running beam beats the worst kept finished one
    for row in range(seqs.size(0)):  # unfinished beams compete too
        new = seqs[row, T:].tolist()
        if new:
            done.append((normalized(float(scores[row]), len(new)), new))
    return max(done)[1] if done else []


@torch.no_grad()
def beam_search(
    model: GPT, idx: torch.Tensor, max_new_tokens: int, num_beams: int = 4,
    length_penalty: float = 1.0, eos_id: int | None = None,
) -> torch.Tensor:  # fmt: skip
    """Most likely continuation of each row of idx (B, T) -> (B, T + n_new).

    Keeps the ``num_beams`` highest sums of log-probs at every step. A hypothesis that
    ends with ``eos_id`` is scored sum / n_tokens**length_penalty (1.0: the mean log-prob,
    0.0: the plain sum, which favours short answers). Rows are searched one at a time;
    shorter results are padded with ``eos_id``.
    """
    _check_request(model, idx)
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}.")
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}.")
    was_training = model.training
    model.eval()
    try:
        results = [_beam_search_row(model, idx[b : b + 1], max_new_tokens, num_beams, length_penalty, eos_id)
                   for b in range(idx.size(0))]  # fmt: skip
    finally:
        model.train(was_training)
    width = max(len(r) for r in results)
    pad = eos_id if eos_id is not None else 0  # without eos every row has the same length
    new = torch.tensor([r + [pad] * (width - len(r)) for r in results], dtype=torch.long, device=idx.device)
    return torch.cat([idx, new.view(idx.size(0), width)], dim=1)  # (B, T + width)
