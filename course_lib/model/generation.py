"""Day 21: text generation: sampling (temperature, top-k, top-p), a KV-cache, beam search.

Generating token n+1 needs attention over tokens 1..n. Without a cache the model
recomputes every key and value at every step; with a :class:`KVCache` each layer keeps
the keys and values it has already computed, so a step only processes the one new token.

The context window: a GPT sees at most ``block_size`` positions. Once the text grows
longer, each step feeds the last ``block_size`` tokens (the window slides). A cache
cannot follow a sliding window (every token's position, hence its keys and values,
changes at every step), so past ``block_size`` generation falls back to recomputing the
cropped window at each step. Cached and uncached generation therefore see exactly the
same context and, greedily, choose the same tokens; the cache helps up to ``block_size``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # imported for type hints only: gpt.py imports this module
    from course_lib.model.gpt import GPT


class KVCache:
    """Keys and values of every layer for the positions processed so far, preallocated.

    ``k`` and ``v`` have shape (n_layer, B, n_kv_head, block_size, hd); the first
    ``length`` positions are filled. With GQA only the n_kv_head heads are stored.
    """

    def __init__(
        self, n_layer: int, batch: int, n_kv_head: int, max_len: int, head_dim: int,
        device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
    ) -> None:  # fmt: skip
        shape = (n_layer, batch, n_kv_head, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)  # (L, B, nkv, max_len, hd)
        self.v = torch.zeros(shape, device=device, dtype=dtype)  # (L, B, nkv, max_len, hd)
        self.length = 0  # positions filled, the same for every layer

    @classmethod
    def for_model(cls, model: GPT, batch: int, max_len: int | None = None) -> KVCache:
        """An empty cache for ``model`` with ``batch`` rows and max_len (default block_size) positions."""
        c, p = model.config, next(model.parameters())
        max_len = c.block_size if max_len is None else min(max_len, c.block_size)
        return cls(c.n_layer, batch, c.kv_heads, max_len, c.head_dim, p.device, p.dtype)

    @property
    def max_len(self) -> int:
        """How many positions fit."""
        return self.k.size(3)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store new k, v (B, nkv, T, hd) after the filled positions; return all (B, nkv, length+T, hd)."""
        end = self.length + k.size(2)
        if end > self.max_len:
            raise ValueError(f"KVCache holds {self.max_len} positions; {end} were asked for.")
        self.k[layer, :, :, self.length : end] = k
        self.v[layer, :, :, self.length : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, n: int) -> None:
        """Mark n more positions as filled (the model calls this after its last layer)."""
        self.length += n

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep (and copy) the batch rows listed in ``rows`` (n,): beam search follows its beams."""
        self.k = self.k[:, rows]  # (L, n, nkv, max_len, hd)
        self.v = self.v[:, rows]  # (L, n, nkv, max_len, hd)


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


def sample_next(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
    top_p: float | None = None, generator: torch.Generator | None = None,
) -> torch.Tensor:  # fmt: skip
    """Choose one token per row from logits (B, V) -> ids (B,). temperature=0 is greedy."""
    if temperature == 0:
        return logits.argmax(dim=-1)  # (B,)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)  # (B, V)
    probs = F.softmax(logits, dim=-1)  # (B, V)
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


def _check_request(idx: torch.Tensor, max_new_tokens: int) -> None:
    if idx.dim() != 2 or idx.size(1) == 0 or idx.dtype != torch.long:
        raise ValueError(
            f"idx must be a (B, T) LongTensor of token ids with T >= 1, got shape {tuple(idx.shape)} "
            f"and dtype {idx.dtype}; for a single prompt pass ids[None]."
        )
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}.")


def generate_stream(
    model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
    top_k: int | None = None, top_p: float | None = None, eos_id: int | None = None,
    use_cache: bool = True, generator: torch.Generator | None = None,
) -> Iterator[torch.Tensor]:  # fmt: skip
    """Yield up to max_new_tokens new tokens for idx (B, T), one (B,) tensor per step.

    A row that has produced ``eos_id`` yields ``eos_id`` from then on; the stream ends
    early once every row has. The model is put in eval mode (no dropout) while the
    stream runs and returned to its previous mode when the stream ends or is closed.
    Bad settings raise a ValueError here, before the first token.
    """
    _check_request(idx, max_new_tokens)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}.")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be a positive int or None, got {top_k}.")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] or None, got {top_p}.")
    return _stream(model, idx, max_new_tokens, temperature, top_k, top_p, eos_id, use_cache, generator)


@torch.no_grad()  # on a generator, torch turns gradients off at every resume, not just once
def _stream(
    model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float, top_k: int | None,
    top_p: float | None, eos_id: int | None, use_cache: bool, generator: torch.Generator | None,
) -> Iterator[torch.Tensor]:  # fmt: skip
    was_training = model.training
    model.eval()
    try:
        seq = idx  # (B, L), grows by one column per step
        cache = KVCache.for_model(model, idx.size(0), idx.size(1) + max_new_tokens) if use_cache else None
        finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)  # (B,)
        for _ in range(max_new_tokens):
            logits, cache = next_logits(model, seq, cache)  # (B, V)
            token = sample_next(logits, temperature, top_k, top_p, generator)  # (B,)
            if eos_id is not None:
                token = token.masked_fill(finished, eos_id)  # finished rows keep padding with eos
                finished = finished | (token == eos_id)
            seq = torch.cat([seq, token[:, None]], dim=1)  # (B, L + 1)
            yield token
            if eos_id is not None and bool(finished.all()):
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
    _check_request(idx, max_new_tokens)
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
