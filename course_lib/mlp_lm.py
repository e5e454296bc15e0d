"""Day 19: the neural probabilistic language model of Bengio et al. (2003), and exact scoring.

A fixed window of the last ``context_size`` tokens is looked up in an embedding table,
the embeddings are concatenated, passed through one ``tanh`` hidden layer, and a linear
layer gives the logits of the next token:

    h = tanh(W_h [e(x_{t-n+1}); ...; e(x_t)] + b_h),    logits = W_o h + b_o (+ W_d [e...] if direct)

``direct=True`` adds Bengio's direct connections from the embeddings to the output.

The model follows the course's language-model contract ``forward(idx, targets=None) ->
(logits, loss)`` on windows ``idx`` (B, T): position ``t`` is predicted from the tokens
``idx[:, t-n+1 .. t]``, and where the window starts too early the missing tokens are a
padding id (``vocab_size``, with its own learned embedding). So :func:`course_lib.batches.get_batch`
and :func:`~course_lib.batches.evaluate_perplexity` work unchanged, and
:func:`score_tokens` scores every token of a long text with its full context.

>>> model = MLPLM(MLPLMConfig(vocab_size=65, context_size=3, n_embd=4, hidden_size=8))
>>> logits, loss = model(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 5, dtype=torch.long))
>>> tuple(logits.shape)
(2, 5, 65)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLPLM", "MLPLMConfig", "context_windows", "score_tokens"]


@dataclass
class MLPLMConfig:
    """Shape of an :class:`MLPLM` (defaults: a character model for TinyShakespeare)."""

    vocab_size: int = 65  # TinyShakespeare's 65 characters
    context_size: int = 6  # tokens seen before the next one (n - 1 in n-gram terms); 8+ validated worse on day 19
    n_embd: int = 64  # size of each token's embedding (about V: the first layer is then nearly unconstrained)
    hidden_size: int = 1024  # width of the tanh layer
    direct: bool = False  # Bengio's direct embedding -> output connections
    dropout: float = 0.0  # dropout on the hidden layer's output while training

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_size", "n_embd", "hidden_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def context_windows(idx: torch.Tensor, context_size: int, pad_id: int) -> torch.Tensor:
    """The ``context_size`` tokens ending at each position: (B, T) -> (B, T, n), left-padded.

    >>> context_windows(torch.tensor([[5, 6, 7]]), 2, pad_id=0).tolist()
    [[[0, 5], [5, 6], [6, 7]]]
    """
    if idx.ndim != 2:
        raise ValueError(f"idx must be (B, T) token ids, got shape {tuple(idx.shape)}: add a batch dimension")
    padded = F.pad(idx, (context_size - 1, 0), value=pad_id)  # (B, T + n - 1)
    return padded.unfold(1, context_size, 1)  # (B, T, n): row t holds idx[t-n+1 .. t]


class MLPLM(nn.Module):
    """Bengio et al.'s MLP language model: embeddings of a fixed window -> tanh -> logits."""

    def __init__(self, config: MLPLMConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.pad_id = c.vocab_size  # one extra embedding row stands for "before the text"
        self.embed_tokens = nn.Embedding(c.vocab_size + 1, c.n_embd)  # (V + 1, d)
        self.hidden = nn.Linear(c.context_size * c.n_embd, c.hidden_size)  # (n*d) -> H
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size)  # H -> V
        self.direct = nn.Linear(c.context_size * c.n_embd, c.vocab_size, bias=False) if c.direct else None
        self.dropout = nn.Dropout(c.dropout)
        nn.init.normal_(self.embed_tokens.weight, std=1.0)
        nn.init.normal_(self.hidden.weight, std=(5 / 3) / math.sqrt(c.context_size * c.n_embd))  # tanh gain
        nn.init.zeros_(self.hidden.bias)
        nn.init.normal_(self.lm_head.weight, std=0.01)  # start near the uniform distribution
        nn.init.zeros_(self.lm_head.bias)
        if self.direct is not None:
            nn.init.zeros_(self.direct.weight)

    def context_logits(self, ctx: torch.Tensor) -> torch.Tensor:
        """Logits (..., V) of the token after each context ``ctx`` (..., n) of token ids.

        Mathematically ``hidden(concat(embed_tokens(ctx)))``, computed as a sum of lookups:
        the block of ``hidden.weight`` that multiplies position ``j`` maps every one of the
        V + 1 embeddings to a row of ``tables[j]`` (V + 1, H), so the first layer costs n
        additions of H numbers per prediction instead of an (n*d) x H product.
        """
        c, lead = self.config, ctx.shape[:-1]
        n, d, H = c.context_size, c.n_embd, c.hidden_size
        w = self.hidden.weight.view(H, n, d)  # (H, n, d): one block per context position
        tables = torch.einsum("vd,hjd->jvh", self.embed_tokens.weight, w)  # (n, V+1, H)
        offsets = torch.arange(n, device=ctx.device) * (c.vocab_size + 1)  # (n,) row offset of each table
        rows = (ctx.reshape(-1, n) + offsets).long()  # (N, n) rows of the stacked tables
        tables = tables + F.pad(self.hidden.bias[None, None], (0, 0, 0, 0, 0, n - 1))  # bias once, in table 0
        pre = F.embedding_bag(rows, tables.reshape(n * (c.vocab_size + 1), H), mode="sum")  # (N, H)
        logits = self.lm_head(self.dropout(torch.tanh(pre)))  # (N, V)
        if self.direct is not None:
            logits = logits + self.direct(self.embed_tokens(ctx.reshape(-1, n)).flatten(1))  # (N, V)
        return logits.view(*lead, c.vocab_size)  # (..., V)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``idx`` (B, T) -> logits (B, T, V); the mean cross-entropy too if ``targets`` (B, T) is given."""
        if idx.max() >= self.config.vocab_size or idx.min() < 0:
            raise ValueError(f"token ids must lie in 0..{self.config.vocab_size - 1}: encode with the model's "
                             "tokenizer")
        logits = self.context_logits(context_windows(idx, self.config.context_size, self.pad_id))  # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def __repr__(self) -> str:
        c = self.config
        return (f"MLPLM(context_size={c.context_size}, n_embd={c.n_embd}, hidden_size={c.hidden_size}, "
                f"vocab_size={c.vocab_size}, direct={c.direct}, params={self.num_params():,})")  # fmt: skip


@torch.no_grad()
def score_tokens(model: MLPLM, data: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Natural-log probability of every token of ``data`` (N,) after the first; shape (N - 1,), float64.

    Token ``t`` (1 <= t < N) is predicted from ``data[max(0, t-n) : t]``, the window padded on
    the left only at the very start of ``data``. Each token is scored exactly once, with the
    same N - 1 targets as :func:`course_lib.batches.evaluate_perplexity`, but unlike its
    non-overlapping windows every target here has its full context.
    """
    if not isinstance(data, torch.Tensor) or data.ndim != 1 or data.numel() < 2:
        raise ValueError("data must be a 1-D tensor of at least 2 token ids, e.g. torch.tensor(tok.encode(text))")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ctx = context_windows(data[None, :-1].long(), model.config.context_size, model.pad_id)[0]  # (N-1, n)
    targets = data[1:].long()  # (N-1,)
    out = torch.empty(targets.numel(), dtype=torch.float64)
    try:
        for s in range(0, targets.numel(), batch_size):
            logits = model.context_logits(ctx[s : s + batch_size].to(device)).double()  # (b, V)
            logp = torch.log_softmax(logits, dim=-1)  # (b, V)
            out[s : s + batch_size] = logp.gather(1, targets[s : s + batch_size, None].to(device))[:, 0].cpu()
    finally:
        model.train(was_training)
    return out
