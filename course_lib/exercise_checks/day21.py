"""Day 21's exercises: counting a GPT's parameters, the nucleus of top-p sampling, the size of a KV-cache, a tiny GPT that beats the bigram in 300 steps."""

from __future__ import annotations

import dataclasses
import math
import numbers
import random
from collections import Counter
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F

from course_lib.exercises import call_reported as _call
from course_lib.exercises import Waiting, Wrong, call_answer, differs, exercise
from course_lib.model import GPT, GPTConfig, KVCache
from course_lib.model.config import MLPS, NORMS, POS_ENCODINGS


def _describe(cfg: GPTConfig) -> str:
    """The fields that shape a GPT, on one line."""
    names = ("vocab_size", "block_size", "n_layer", "n_head", "n_kv_head", "n_embd", "bias", "pos_encoding",
             "norm", "mlp", "intermediate_size", "tie_weights")
    return "GPTConfig(" + ", ".join(f"{n}={getattr(cfg, n)!r}" for n in names) + ")"


def _meta_model(cfg: GPTConfig) -> GPT:
    """course_lib's GPT for cfg on the meta device: every shape, no memory, no initialisation cost."""
    with torch.device("meta"):
        return GPT(cfg)


def _random_configs(seed: int, n: int) -> list[GPTConfig]:
    """Small random configs of every layout: classic and modern parts mixed, biases, tying, GQA, MLP widths."""
    rng = random.Random(seed)
    configs = []
    for _ in range(n):
        n_head = rng.choice([1, 2, 3, 4, 6])
        n_kv_head = rng.choice([None] + [d for d in range(1, n_head + 1) if n_head % d == 0])
        configs.append(GPTConfig(
            vocab_size=rng.randint(2, 300), block_size=rng.randint(1, 80), n_layer=rng.randint(1, 4),
            n_head=n_head, n_kv_head=n_kv_head, n_embd=n_head * rng.choice([2, 4, 6, 8]), bias=rng.random() < 0.5,
            pos_encoding=rng.choice(POS_ENCODINGS), norm=rng.choice(NORMS), mlp=rng.choice(MLPS),
            intermediate_size=rng.choice([None, rng.randint(1, 100)]), tie_weights=rng.random() < 0.5))  # fmt: skip
    return configs


GPT2_SMALL = GPTConfig.classic(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
LLAMA_1B = GPTConfig.modern(vocab_size=128256, block_size=2048, n_layer=16, n_head=32, n_kv_head=8, n_embd=2048,
                            intermediate_size=8192, rope_theta=500000.0)  # Llama 3.2 1B's shape (its context cut)


def _whole_number(got: Any, what: str) -> int:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, numbers.Real) or not math.isfinite(got) or got != int(got):
        raise Wrong(f"{what} should return a whole number, got {type(got).__name__} {got!r}")
    return int(got)


# ---------------------------------------------------------------- exercise 1
def _parts(model: GPT) -> str:
    """The model's parameters by part, as named_parameters lists them (a tied matrix once)."""
    parts: Counter = Counter()
    for name, p in model.named_parameters():
        parts["one block" if name.startswith("layers.0.") else name.split(".")[0]] += p.numel()
    parts.pop("layers", None)
    return ", ".join(f"{k} {v:,}" for k, v in parts.items()) + ("" if "lm_head" in parts else " (lm_head tied)")


@exercise("day21.ex1", title="counting a GPT's parameters", kind="code", section="section 4, The model, top to bottom")
def check_count_parameters(fn: Any) -> str:
    configs = [GPTConfig.classic(vocab_size=65, n_layer=2, n_head=4, n_embd=128, block_size=16),
               GPTConfig.modern(vocab_size=65, n_layer=2, n_head=4, n_embd=48, block_size=256),
               GPTConfig.modern(vocab_size=65, n_layer=3, n_head=6, n_embd=96, tie_weights=False),
               *_random_configs(2101, 40), GPT2_SMALL, LLAMA_1B]
    counts = []
    for cfg in configs:
        model = _meta_model(cfg)
        want = sum(p.numel() for p in model.parameters())  # parameters() lists a tied matrix once
        counts.append(want)
        where = f"count_parameters({_describe(cfg)})"
        got = _whole_number(_call(fn, where, dataclasses.replace(cfg)), where)
        if got != want:
            raise Wrong(f"{where} returned {got:,}; course_lib's GPT(config) has {want:,} parameters "
                        f"({got - want:+,}). By part: {_parts(model)}")
    return (f"({len(configs)} configs, classic, modern and mixed: GPT-2 small has {counts[-2]:,} parameters, "
            f"Llama 3.2 1B's shape {counts[-1]:,})")


# ---------------------------------------------------------------- exercise 2
def _nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Which tokens (B, V) top-p keeps, without sorting: those whose strictly more likely tokens hold less than top_p."""
    possible = logits > float("-inf")  # (B, V): a logit of -inf stays -inf
    if top_p >= 1.0:
        return possible
    probs = F.softmax(logits.double(), dim=-1)  # (B, V)
    ahead = torch.where(probs[:, None, :] > probs[:, :, None], probs[:, None, :], 0.0).sum(-1)  # (B, V)
    return (ahead < top_p) & possible


def _nucleus_cases(seed: int) -> list[tuple[torch.Tensor, float, str]]:
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    cases = []
    for B, V in ((1, 1), (1, 5), (3, 10), (4, 65), (2, 200)):  # random logits, p all over (0, 1]
        for p in (1e-9, 0.3, 0.5, 0.9, 0.999, 1.0):
            cases.append((torch.randn(B, V, generator=gen, dtype=torch.float64) * rng.choice([0.5, 2, 5]), p,
                          "random logits"))
    for _ in range(6):  # p just below and just above the mass of the k most likely tokens
        logits = torch.randn(3, 12, generator=gen, dtype=torch.float64) * 2
        probs = F.softmax(logits, dim=-1).sort(dim=-1, descending=True).values
        k = rng.randint(1, 10)
        mass = probs[0, :k].sum().item()
        for p, what in ((mass - 1e-5, f"p just below the mass of row 0's {k} most likely"),
                        (mass + 1e-5, f"p just above the mass of row 0's {k} most likely")):
            cases.append((logits, p, what))
    for _ in range(8):  # ties: a few distinct values, many tokens sharing each
        logits = torch.randint(0, 4, (3, 16), generator=gen).double() * rng.choice([0.5, 1.0])
        for p in (1e-9, 0.2, 0.5, 0.8):
            cases.append((logits, p, "tied logits"))
    logits = torch.tensor([[2.0, 1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)  # the first 1.0 alone would reach p
    cases.append((logits, 0.6, "the three tied logits straddle p"))
    logits = torch.randn(2, 20, generator=gen, dtype=torch.float64)
    logits[:, ::3] = float("-inf")  # as left by top-k: probability 0, never kept
    for p in (0.5, 0.95, 1.0):
        cases.append((logits, p, "some logits already -inf (after top-k)"))
    return cases


def _show(x: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in x.tolist()) + "]"


@exercise("day21.ex2", title="the nucleus", kind="code", section="section 7, Generation: temperature, top-k and top-p")
def check_top_p(fn: Any) -> str:
    cases = _nucleus_cases(2102)
    ties_kept = 0
    for logits, p, what in cases:
        keep = _nucleus(logits, p)  # (B, V)
        want = torch.where(keep, logits, float("-inf"))  # (B, V)
        given = logits.clone()
        where = f"top_p_filter(logits of shape {tuple(logits.shape)}, top_p={p:.10g}) ({what})"
        got = _call(fn, where, given, p)
        if not torch.equal(given, logits):
            raise Wrong(f"{where} changed its input logits: return a new tensor")
        if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise Wrong(f"{where} should return a tensor of shape {tuple(logits.shape)}, got {shape}")
        got_keep = got.detach().double() > float("-inf")
        bad = (got_keep != keep).nonzero()
        if len(bad):
            b, i = (int(v) for v in bad[0])
            probs = F.softmax(logits[b].double(), dim=-1)
            order = probs.argsort(descending=True)[: min(12, len(probs))]
            raise Wrong(f"{where}: row {b}, token {i} (probability {probs[i].item():.6g}) should be "
                        f"{'kept' if keep[b, i] else 'removed (-inf)'}; your result keeps {int(got_keep[b].sum())} "
                        f"of the row's {logits.size(-1)} tokens, the nucleus has {int(keep[b].sum())}. The row's "
                        f"largest probabilities: {_show(probs[order])}")
        why = differs(got.detach().double().masked_fill(~keep, 0.0), want.masked_fill(~keep, 0.0), rtol=1e-6, atol=1e-9)
        if why:
            raise Wrong(f"{where}: the kept tokens should keep their logits unchanged: {why}")
        if p < 1:  # rows where a sort's first tokens reaching p would leave out a tie
            ranked = F.softmax(logits, dim=-1).sort(dim=-1, descending=True).values  # (B, V)
            ties_kept += int((keep.sum(-1) > (ranked.cumsum(-1) - ranked < p).sum(-1)).sum())
    return (f"({len(cases)} batches of logits, p from 1e-9 to 1, ties and -inf included; in {ties_kept} rows the "
            "ties kept more tokens than a sort would)")


# ---------------------------------------------------------------- exercise 3
DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def _cache_bytes(cfg: GPTConfig, batch: int, n_tokens: int, dtype: torch.dtype) -> int:
    """Bytes of keys and values in course_lib's KVCache for a model of cfg in dtype (n_tokens <= block_size)."""
    cache = KVCache.for_model(_meta_model(cfg).to(dtype), batch, max_len=n_tokens)  # on the meta device
    assert cache.max_len == n_tokens
    return cache.k.nbytes + cache.v.nbytes


@exercise("day21.ex3", title="the size of a KV-cache", kind="code", section="section 8, The KV-cache")
def check_kv_cache_bytes(fn: Any) -> str:
    rng = random.Random(2103)
    cases = [(GPT2_SMALL, 1, 1024, torch.float16), (LLAMA_1B, 1, 2048, torch.bfloat16),
             (GPTConfig.modern(vocab_size=65, n_layer=2, n_head=4, n_embd=48), 1, 256, torch.float32)]
    for cfg in _random_configs(2104, 24):
        cases.append((cfg, rng.randint(1, 8), rng.randint(1, cfg.block_size), rng.choice(DTYPES)))
    for cfg, batch, n_tokens, dtype in cases:
        want = _cache_bytes(cfg, batch, n_tokens, dtype)
        where = f"kv_cache_bytes({_describe(cfg)}, batch={batch}, n_tokens={n_tokens}, dtype={dtype})"
        got = _whole_number(_call(fn, where, dataclasses.replace(cfg), batch, n_tokens, dtype), where)
        if got != want:
            cache = KVCache.for_model(_meta_model(cfg).to(dtype), batch, max_len=n_tokens)
            raise Wrong(f"{where} returned {got:,}; course_lib's KVCache for that model holds {want:,} bytes: "
                        f"k and v of shape {tuple(cache.k.shape)} each, {cache.k.element_size()} bytes a number")
    gpt2, llama = (_cache_bytes(*c) / 2**20 for c in cases[:2])
    return (f"({len(cases)} models, batches and dtypes: GPT-2 small's 1,024 tokens in float16 take {gpt2:.0f} MiB, "
            f"Llama 3.2 1B's 2,048 in bfloat16 {llama:.0f} MiB with 8 key/value heads for 32 query heads)")


# ---------------------------------------------------------------- exercise 4
TINY_DEFAULTS = dict(n_layer=2, n_embd=32, lr=1e-3, warmup_iters=0, max_iters=300)  # what tiny_run changes
TINY_MAX_ITERS = 300  # the budget: at most this many steps ...
TINY_MAX_PARAMS = 120_000  # ... of a model with at most this many parameters
TINY_MARGIN = 0.2  # nats/char below the bigram model: the target
_TRAIN_CHARS, _VAL_CHARS, _BLOCK, _BATCH = 200_000, 20_000, 32, 16


@lru_cache(maxsize=1)
def _tiny_data() -> tuple[torch.Tensor, torch.Tensor, int]:
    from course_lib.lm_eval import shakespeare_splits
    from course_lib.tokenizers import CharTokenizer

    train_text, val_text = shakespeare_splits()
    tok = CharTokenizer.from_text(train_text + val_text)  # the day's 65 characters
    train = torch.tensor(tok.encode(train_text[:_TRAIN_CHARS]))  # (200000,)
    val = torch.tensor(tok.encode(val_text[:_VAL_CHARS]))  # (20000,)
    return train, val, tok.vocab_size


def _val_windows() -> tuple[torch.Tensor, torch.Tensor]:
    _, val, _ = _tiny_data()
    n = (len(val) - 1) // _BLOCK * _BLOCK
    return val[:n].view(-1, _BLOCK), val[1 : n + 1].view(-1, _BLOCK)  # (624, 32) each: every target once


@lru_cache(maxsize=1)
def tiny_bigram_loss() -> float:
    """Nats per character of an add-one bigram model of the same 200,000 training characters, on tiny_run's targets."""
    train, _, V = _tiny_data()
    counts = torch.ones(V, V, dtype=torch.float64)  # add-one smoothing
    counts.index_put_((train[:-1], train[1:]), torch.ones(len(train) - 1, dtype=torch.float64), accumulate=True)
    log_probs = (counts / counts.sum(-1, keepdim=True)).log()  # (V, V): row = previous character
    x, y = _val_windows()  # x[b, t] is the character before y[b, t]
    return -log_probs[x.flatten(), y.flatten()].mean().item()


def _tiny_settings(settings: Any) -> dict[str, Any]:
    """TINY_DEFAULTS with ``settings`` (a dict of changes) applied, checked; a ValueError says what is wrong."""
    if not isinstance(settings, dict):
        raise ValueError(f"the settings should be a dict of changes to {TINY_DEFAULTS}, got {type(settings).__name__}")
    unknown = sorted(set(settings) - set(TINY_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}: choose among {sorted(TINY_DEFAULTS)}")
    s = {**TINY_DEFAULTS, **settings}
    for name in ("n_layer", "n_embd", "warmup_iters", "max_iters"):
        if isinstance(s[name], bool) or not isinstance(s[name], int) or s[name] < (0 if name == "warmup_iters" else 1):
            raise ValueError(f"{name} should be a whole number >= {0 if name == 'warmup_iters' else 1}, got {s[name]!r}")
    if isinstance(s["lr"], bool) or not isinstance(s["lr"], numbers.Real) or not 0 < s["lr"] <= 1:
        raise ValueError(f"lr should be a number in (0, 1], got {s['lr']!r}")
    if s["max_iters"] > TINY_MAX_ITERS:
        raise ValueError(f"max_iters={s['max_iters']} is over the budget of {TINY_MAX_ITERS} steps")
    if s["n_layer"] > 4:
        raise ValueError(f"n_layer={s['n_layer']}: at most 4 layers")
    if s["n_embd"] % 4:
        raise ValueError(f"n_embd={s['n_embd']}: two heads of an even width (for RoPE) need a multiple of 4")
    n_params = _meta_model(_tiny_config(s)).num_parameters(non_embedding=False)
    if n_params > TINY_MAX_PARAMS:
        raise ValueError(f"n_layer={s['n_layer']}, n_embd={s['n_embd']} make {n_params:,} parameters, over the "
                         f"budget of {TINY_MAX_PARAMS:,}")
    return s


def _tiny_config(s: dict[str, Any]) -> GPTConfig:
    return GPTConfig.modern(vocab_size=65, n_layer=s["n_layer"], n_head=2, n_embd=s["n_embd"], block_size=_BLOCK)


def tiny_run(settings: dict[str, Any] | None = None) -> float:
    """Train a tiny modern GPT on 200,000 characters of the training split; return its validation loss (nats/char).

    ``settings`` changes any of TINY_DEFAULTS (n_layer, n_embd, lr, warmup_iters, max_iters); the rest is fixed:
    two query heads sharing one key/value head, a context of 32, 16 windows a step, AdamW (decay 0.1 on matrices,
    betas 0.9, 0.95), warm-up then cosine down to lr / 10 at max_iters, clipping at 1. The loss is the mean over
    the same 19,968 predictions of the first 20,000 validation characters (windows of 32, no overlap). Fixed seeds:
    the same settings always give the same loss. About 1-3 s on one CPU thread.
    """
    from course_lib.batches import get_batch
    from course_lib.schedule import configure_optimizer, lr_at

    s = _tiny_settings({} if settings is None else settings)
    train, _, V = _tiny_data()
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(2105)
        model = GPT(_tiny_config(s))
    opt = configure_optimizer(model, 0.1, s["lr"], (0.9, 0.95))
    batches = torch.Generator().manual_seed(2106)
    model.train()
    for it in range(s["max_iters"]):
        for group in opt.param_groups:
            group["lr"] = lr_at(it, s["lr"], s["lr"] / 10, s["warmup_iters"], s["max_iters"])
        x, y = get_batch(train, _BLOCK, _BATCH, batches)  # (16, 32) each
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        _, val_loss = model(*_val_windows())
    return val_loss.item()


@exercise("day21.ex4", title="beat the bigram in 300 steps", kind="experiment", section="section 3.6, The training step")
def check_tiny_run(answer: Any) -> str:
    try:
        s = _tiny_settings(answer)
    except ValueError as err:
        raise Wrong(str(err)) from None
    changes = {k: v for k, v in s.items() if TINY_DEFAULTS[k] != v}
    loss, bigram = tiny_run(answer), tiny_bigram_loss()
    target = bigram - TINY_MARGIN
    if not math.isfinite(loss) or loss >= target:
        raise Wrong(f"with {changes or 'the defaults'} the tiny GPT reaches a validation loss of {loss:.4f} nats/char; "
                    f"the bigram model scores {bigram:.4f}, and the target is {TINY_MARGIN} below it, {target:.4f}")
    n_params = _meta_model(_tiny_config(s)).num_parameters(non_embedding=False)
    return (f"({changes}: {loss:.4f} nats/char after {s['max_iters']} steps with {n_params:,} parameters; the bigram "
            f"scores {bigram:.4f})")
