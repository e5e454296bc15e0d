"""Day 18: word embeddings — skip-gram with negative sampling (word2vec) and its evaluation.

Mikolov et al. (2013) learn a vector per word by asking each word to predict the words
around it. The pieces, in the order a training run uses them:

1. :func:`build_vocab` keeps words seen at least ``min_count`` times (no unknown token:
   rarer words are dropped from the text, as word2vec does); :func:`encode_words` turns
   the text into ids.
2. :func:`keep_probabilities` / :func:`subsample` drop frequent words at random, each
   occurrence kept with probability ``min(1, sqrt(t / f(w)))``.
3. :func:`skipgram_pairs` makes (center, context) pairs inside a dynamic window.
4. :func:`noise_distribution` gives ``P_n(w) ∝ count(w) ** 0.75``, the distribution the
   negatives are drawn from; :func:`sgns_loss` is the objective a :class:`SkipGram` computes.
5. :func:`train_skipgram` ties them together; :class:`WordVectors` answers nearest
   neighbours, analogies and the standard similarity and analogy benchmarks.

>>> vocab = build_vocab("the cat sat on the mat the end".split(), min_count=2)
>>> vocab.itos, encode_words("the cat and the dog".split(), vocab).tolist()
(['the'], [0, 0])
>>> centers, contexts = skipgram_pairs(torch.tensor([7, 8, 9]), window=1, dynamic=False)
>>> list(zip(centers.tolist(), contexts.tolist()))
[(7, 8), (8, 7), (8, 9), (9, 8)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from course_lib.data import Analogy
from course_lib.progress import finish
from course_lib.text import Vocab, words

__all__ = [
    "SkipGram", "SkipGramConfig", "WordVectors", "build_vocab", "encode_words", "keep_probabilities",
    "noise_distribution", "rankdata", "sgns_loss", "skipgram_pairs", "spearman", "subsample",
    "tokenize", "train_skipgram",
]  # fmt: skip


# ---------------------------------------------------------------- text -> ids
def tokenize(text: str) -> list[str]:
    """Lowercase words of ``text``, punctuation dropped (day 12's :func:`course_lib.text.words`)."""
    return words(text, lowercase=True)


def build_vocab(tokens: Iterable[str], min_count: int = 5) -> Vocab:
    """Words seen at least ``min_count`` times, most frequent first, with their counts; no unknown token."""
    full = Vocab.build(tokens, min_count=min_count)  # id 0 is '<unk>', standing for the dropped words
    if len(full) == 1:
        raise ValueError(f"no word occurs {min_count} times or more: lower min_count or use more text")
    return Vocab(itos=full.itos[1:], counts=full.counts[1:], unk_token=None)


def encode_words(tokens: Sequence[str], vocab: Vocab) -> torch.Tensor:
    """Ids (N,) int64 of the tokens that are in ``vocab``; the others are dropped, not replaced."""
    if isinstance(tokens, str):
        raise TypeError("encode_words() takes a list of words: split the text first with tokenize(text)")
    stoi = vocab.stoi
    return torch.tensor([stoi[t] for t in tokens if t in stoi], dtype=torch.long)


# ---------------------------------------------------------------- sampling
def keep_probabilities(counts: Sequence[int] | torch.Tensor, t: float = 1e-3) -> torch.Tensor:
    """Probability (V,) of keeping one occurrence of each word: ``min(1, sqrt(t / f))``.

    ``f = count / total`` is the word's frequency; Mikolov et al. (2013) discard an occurrence
    with probability ``1 - sqrt(t / f)``, so only words more frequent than ``t`` are thinned.
    (word2vec's C code uses the variant ``sqrt(t / f) + t / f``.)
    """
    if t <= 0:
        raise ValueError(f"t={t}: the subsampling threshold must be positive (e.g. 1e-3; 1e-5 for huge corpora)")
    c = torch.as_tensor(counts, dtype=torch.float64)  # (V,)
    if c.ndim != 1 or (c < 0).any() or c.sum() <= 0:
        raise ValueError("counts must be a 1-D sequence of non-negative word counts with a positive total")
    f = c / c.sum()  # (V,)
    return torch.sqrt(t / f).clamp(max=1.0)  # (V,); an unseen word (f = 0) gets 1


def subsample(ids: torch.Tensor, keep: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep each position of ``ids`` (N,) with probability ``keep[ids]``; returns the kept ids."""
    draws = torch.rand(ids.shape, generator=generator, dtype=torch.float64)  # (N,)
    return ids[draws < keep[ids]]


def noise_distribution(counts: Sequence[int] | torch.Tensor, power: float = 0.75) -> torch.Tensor:
    """The negative-sampling distribution (V,): ``count ** power``, normalised to sum to 1."""
    c = torch.as_tensor(counts, dtype=torch.float64)  # (V,)
    if c.ndim != 1 or (c < 0).any() or c.sum() <= 0:
        raise ValueError("counts must be a 1-D sequence of non-negative word counts with a positive total")
    p = c.pow(power)  # (V,)
    return p / p.sum()


def skipgram_pairs(
    ids: torch.Tensor, window: int, dynamic: bool = True, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """All (center, context) pairs of ``ids`` (N,): the words at most ``window`` positions away.

    With ``dynamic=True`` each center draws its own window size uniformly from 1..window
    (word2vec's trick: near words count more often than far ones). Returns ``centers`` and
    ``contexts``, both (P,) int64, ordered by center position, then by context position.
    """
    if window < 1:
        raise ValueError(f"window={window}: pass at least 1 (how many words on each side)")
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D (N,), got shape {tuple(ids.shape)}")
    n = ids.numel()
    pos = torch.arange(n)  # (N,)
    reach = torch.randint(1, window + 1, (n,), generator=generator) if dynamic else torch.full((n,), window)  # (N,)
    center_pos, context_pos = [], []
    for offset in range(-window, window + 1):
        if offset == 0:
            continue
        ok = (reach >= abs(offset)) & (pos + offset >= 0) & (pos + offset < n)  # (N,)
        center_pos.append(pos[ok])
        context_pos.append(pos[ok] + offset)
    c, x = torch.cat(center_pos), torch.cat(context_pos)  # (P,), (P,)
    order = torch.argsort(c * n + x)  # by center, then by context position
    return ids[c[order]], ids[x[order]]


# ---------------------------------------------------------------- the model
def sgns_loss(center: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """Mean skip-gram negative-sampling loss over a batch.

    ``center`` (B, D) input vectors v_c, ``context`` (B, D) output vectors u_o, ``negatives``
    (B, K, D) output vectors u_k of the noise words:
    ``-[log σ(u_o·v_c) + Σ_k log σ(-u_k·v_c)]``, averaged over the B pairs.
    """
    pos = (center * context).sum(-1)  # (B,)
    neg = (negatives * center[:, None, :]).sum(-1)  # (B, K)
    return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean()


@dataclass
class SkipGramConfig:
    """Settings of :func:`train_skipgram` (defaults suit a corpus of about 200,000 words)."""

    embedding_dim: int = 100  # size of each word vector
    window: int = 5  # context words on each side (the dynamic window draws 1..window)
    negatives: int = 5  # noise words per (center, context) pair
    subsample_t: float | None = 1e-3  # subsampling threshold; None keeps every word
    noise_power: float = 0.75  # exponent of the unigram noise distribution
    epochs: int = 5  # passes over the text (fresh subsampling and windows each time)
    batch_size: int = 4096  # pairs per step (large batches keep a CPU epoch to a few seconds)
    lr: float = 1e-2  # Adam's learning rate, decayed linearly to 0 over training
    seed: int = 0  # seeds the initialisation, the subsampling, the windows and the negatives


class SkipGram(nn.Module):
    """Two embedding tables: ``in_embed`` (the word vectors v) and ``out_embed`` (context vectors u)."""

    def __init__(self, vocab_size: int, embedding_dim: int) -> None:
        super().__init__()
        self.in_embed = nn.Embedding(vocab_size, embedding_dim)  # (V, D) v_w, the vectors we keep
        self.out_embed = nn.Embedding(vocab_size, embedding_dim)  # (V, D) u_w, used only for training
        nn.init.uniform_(self.in_embed.weight, -0.5 / embedding_dim, 0.5 / embedding_dim)  # word2vec's init
        nn.init.zeros_(self.out_embed.weight)

    def forward(self, center: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """SGNS loss (scalar) for word ids ``center`` (B,), ``context`` (B,) and ``negatives`` (B, K)."""
        return sgns_loss(self.in_embed(center), self.out_embed(context), self.out_embed(negatives))

    def __repr__(self) -> str:
        v, d = self.in_embed.weight.shape
        return f"SkipGram(vocab_size={v}, embedding_dim={d}, params={2 * v * d:,})"


def train_skipgram(
    ids: torch.Tensor, vocab: Vocab, cfg: SkipGramConfig, progress: bool = True
) -> tuple[SkipGram, list[float]]:
    """Train a :class:`SkipGram` on the encoded text ``ids`` (N,); returns it and the loss of every step."""
    if ids.ndim != 1 or ids.numel() < 2:
        raise ValueError("ids must be a 1-D tensor of at least 2 word ids: encode the text with encode_words()")
    if int(ids.max()) >= len(vocab) or int(ids.min()) < 0:
        raise ValueError(f"ids run outside the vocabulary of {len(vocab)} words: encode with the same vocab")
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # the initialisation
    model = SkipGram(len(vocab), cfg.embedding_dim)
    noise = noise_distribution(vocab.counts, cfg.noise_power).float()  # (V,)
    keep = None if cfg.subsample_t is None else keep_probabilities(vocab.counts, cfg.subsample_t)  # (V,)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    # Each epoch draws new pairs, so the number of steps is known only approximately in advance.
    expected_pairs = (ids.numel() if keep is None else float(keep[ids].sum())) * (cfg.window + 1)  # 2 E[reach]
    total_steps = cfg.epochs * max(1, math.ceil(expected_pairs / cfg.batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / total_steps))
    losses: list[float] = []
    bar = tqdm(total=total_steps, desc="skip-gram", disable=not progress)
    for _ in range(cfg.epochs):
        kept = ids if keep is None else subsample(ids, keep, gen)  # (N',)
        centers, contexts = skipgram_pairs(kept, cfg.window, dynamic=True, generator=gen)  # (P,), (P,)
        perm = torch.randperm(centers.numel(), generator=gen)  # (P,)
        for i in range(0, perm.numel(), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]  # (B,)
            neg = torch.multinomial(noise, idx.numel() * cfg.negatives, replacement=True, generator=gen)
            loss = model(centers[idx], contexts[idx], neg.view(-1, cfg.negatives))  # neg: (B, K)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched.last_epoch < total_steps:
                sched.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    finish(bar)  # the step count was an estimate: the bar ends complete at the steps taken
    return model.eval(), losses


# ---------------------------------------------------------------- using the vectors
def rankdata(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..N (float64) of ``x`` (N,); tied values share the mean of their ranks.

    >>> rankdata(torch.tensor([10.0, 20.0, 20.0, 5.0])).tolist()
    [2.0, 3.5, 3.5, 1.0]
    """
    x = torch.as_tensor(x, dtype=torch.float64)  # (N,)
    _, inverse, counts = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)  # (U,)
    last = torch.cumsum(counts, 0).double()  # (U,) rank of the last copy of each value
    return (last - (counts.double() - 1) / 2)[inverse]  # (N,) mean of ranks last-count+1 .. last


def spearman(x: torch.Tensor | Sequence[float], y: torch.Tensor | Sequence[float]) -> float:
    """Spearman's rank correlation: the Pearson correlation of the (tie-averaged) ranks."""
    rx, ry = rankdata(torch.as_tensor(x)), rankdata(torch.as_tensor(y))  # (N,), (N,)
    if rx.numel() != ry.numel() or rx.numel() < 2:
        raise ValueError(f"spearman needs two sequences of the same length >= 2, got {rx.numel()} and {ry.numel()}")
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = (rx.square().sum() * ry.square().sum()).sqrt()
    if denom == 0:
        raise ValueError("one of the sequences is constant: its rank correlation is undefined")
    return float((rx * ry).sum() / denom)


class WordVectors:
    """A (V, D) matrix of word vectors with its words, queried by cosine similarity.

    >>> wv = WordVectors(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), ["a", "b", "c"])
    >>> [w for w, _ in wv.nearest("a", k=2)]
    ['b', 'c']
    """

    def __init__(self, vectors: torch.Tensor, itos: Sequence[str]) -> None:
        if vectors.ndim != 2 or vectors.shape[0] != len(itos):
            raise ValueError(
                f"vectors must be (V, D) with one row per word: got {tuple(vectors.shape)} for {len(itos)} words"
            )
        self.itos = list(itos)
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.vectors = vectors.detach().float().cpu()  # (V, D)
        self.unit = F.normalize(self.vectors, dim=1)  # (V, D) rows of length 1 (a zero row stays 0)

    @classmethod
    def from_model(cls, model: SkipGram, vocab: Vocab) -> WordVectors:
        """The input vectors ``in_embed`` of a trained :class:`SkipGram`."""
        return cls(model.in_embed.weight, vocab.itos)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: object) -> bool:
        return word in self.stoi

    def _id(self, word: str) -> int:
        if word not in self.stoi:
            raise KeyError(f"{word!r} is not in the vocabulary of {len(self)} words: check `word in vectors` first")
        return self.stoi[word]

    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of two words' vectors."""
        return float(self.unit[self._id(w1)] @ self.unit[self._id(w2)])

    def _top(self, query: torch.Tensor, exclude: Iterable[int], k: int) -> list[tuple[str, float]]:
        scores = self.unit @ F.normalize(query, dim=0)  # (V,) cosine with every word
        scores[list(exclude)] = -math.inf
        top = torch.topk(scores, min(k, len(self) - 1))
        return [(self.itos[i], float(s)) for s, i in zip(top.values, top.indices.tolist())]

    def nearest(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` words most cosine-similar to ``word`` (itself excluded), with their cosines."""
        i = self._id(word)
        return self._top(self.unit[i], [i], k)

    def analogy(self, a: str, b: str, c: str, k: int = 1) -> list[tuple[str, float]]:
        """3CosAdd: ``a`` is to ``b`` as ``c`` is to ...? The words closest to b - a + c (unit vectors).

        The three query words are excluded from the answers, as in Mikolov et al.'s evaluation.
        """
        ia, ib, ic = self._id(a), self._id(b), self._id(c)
        return self._top(self.unit[ib] - self.unit[ia] + self.unit[ic], [ia, ib, ic], k)

    def evaluate_analogies(self, analogies: Sequence[Analogy]) -> tuple[float, float]:
        """(accuracy, coverage): coverage = fraction of questions whose four words are known;
        accuracy = fraction of those whose 3CosAdd answer is ``d`` (nan when none is covered)."""
        if len(analogies) == 0:
            raise ValueError("no analogy questions given: pass e.g. course_lib.data.load_analogies()")
        covered = [q for q in analogies if all(w in self.stoi for w in (q.a, q.b, q.c, q.d))]
        if not covered:
            return math.nan, 0.0
        ids = torch.tensor([[self.stoi[w] for w in (q.a, q.b, q.c, q.d)] for q in covered])  # (Q, 4)
        correct = 0
        for chunk in ids.split(1024):  # (q, 4)
            target = F.normalize(self.unit[chunk[:, 1]] - self.unit[chunk[:, 0]] + self.unit[chunk[:, 2]], dim=1)
            scores = target @ self.unit.T  # (q, V)
            scores.scatter_(1, chunk[:, :3], -math.inf)  # never answer a query word
            correct += int((scores.argmax(1) == chunk[:, 3]).sum())
        return correct / len(covered), len(covered) / len(analogies)

    def evaluate_similarity(self, pairs: Sequence[tuple[str, str, float]]) -> tuple[float, float]:
        """(spearman, coverage) on (word1, word2, human score) pairs such as WordSim-353.

        Spearman's rank correlation between human scores and cosines over the pairs whose two
        words are known (nan when fewer than two are); coverage = that fraction of the pairs.
        """
        if len(pairs) == 0:
            raise ValueError("no word pairs given: pass e.g. course_lib.data.load_wordsim353()")
        known = [(w1, w2, s) for w1, w2, s in pairs if w1 in self.stoi and w2 in self.stoi]
        if len(known) < 2:
            return math.nan, len(known) / len(pairs)
        cos = [self.similarity(w1, w2) for w1, w2, _ in known]
        return spearman([s for _, _, s in known], cos), len(known) / len(pairs)

    def __repr__(self) -> str:
        v, d = self.vectors.shape
        return f"WordVectors(words={v:,}, dim={d}, e.g. {self.itos[:5]})"
