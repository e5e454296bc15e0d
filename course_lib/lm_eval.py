"""Day 16: the shared yardstick — every language model scored on the same validation characters.

From day 15 to day 21 each model is measured on the *same* held-out text: the last 10%
of TinyShakespeare (111,539 characters), always the whole of it, in fast mode too (only
the training data shrinks there). Scores are in **nats per character**, so a model over
BPE tokens or words is compared fairly with a character model: it reports the *total*
negative log-likelihood of the validation text divided by the number of characters.

>>> r = Result(model="bigram (add-1)", day=15, nats_per_char=2.48, n_params=65 * 65)
>>> round(r.bits_per_char, 3), round(r.perplexity, 2)    # nats / ln 2, exp(nats)
(3.578, 11.94)
>>> path = record_result(r)            # saved in data/results/lm_results_{fast|full}.json
>>> load_results()["bigram (add-1)"] == r
True

Which characters are scored: a character model predicts ``val_text[1:]``, every
character after the first, which has no context to be predicted from. That is exactly
what :func:`course_lib.batches.evaluate_perplexity` scores on
``CharTokenizer.encode(val_text)``, and :func:`ngram_results` scores the same 111,538
predictions (the contexts come from the validation text only, shorter at its start).
"""

from __future__ import annotations

import contextlib
import html
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from course_lib.atomic import atomic_open
from course_lib.config import fast_mode

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

try:  # an advisory lock keeps two notebooks that record at once from losing a row
    import fcntl
except ImportError:  # Windows: no lock; the write itself stays atomic
    fcntl = None  # type: ignore[assignment]

Mode = Literal["fast", "full"]
VAL_FRACTION = 0.1  # the last 10% of TinyShakespeare is the validation text
_FORMAT_VERSION = 1


# ---------------------------------------------------------------- the data split
@lru_cache(maxsize=1)
def shakespeare_splits() -> tuple[str, str]:
    """``(train_text, val_text)``: the first 90% and the last 10% of TinyShakespeare.

    The same split in every mode and every day (1,003,855 and 111,539 characters).
    """
    from course_lib.data import load_text, train_val_split

    return train_val_split(load_text("tinyshakespeare"), VAL_FRACTION)


def nats_per_char(total_nats: float, n_chars: int) -> float:
    """Total negative log-likelihood of a text (natural log) per character of that text.

    For a model over tokens (BPE, words) pass the sum over *all its tokens* and the
    number of *characters* those tokens spell, so the figure is comparable with
    character models: e.g. tokens ``"ab" "c"`` with probabilities 1/2 and 1/4 spell
    3 characters: ``(ln 2 + ln 4) / 3 = ln 2``.

    >>> round(nats_per_char(math.log(2) + math.log(4), 3), 6) == round(math.log(2), 6)
    True
    """
    if not isinstance(n_chars, int) or n_chars < 1:
        raise ValueError(f"n_chars must be a positive int (characters of the scored text), got {n_chars!r}")
    if not math.isfinite(total_nats) or total_nats < 0:
        raise ValueError(f"total_nats must be a finite sum of -log p >= 0, got {total_nats}")
    return total_nats / n_chars


# ---------------------------------------------------------------- one row
@dataclass(frozen=True)
class Result:
    """One model's score on the validation characters.

    ``nats_per_char``: average negative log-likelihood per character (natural log).
    ``n_params``: trainable parameters (for an n-gram: the distinct n-grams it stores).
    """

    model: str  # unique name: recording another result with this name replaces it
    day: int  # the day that introduces the model (15..21)
    nats_per_char: float  # cross-entropy per character, natural log
    n_params: int | None = None  # parameters, or counts stored; None if not meaningful
    notes: str = ""  # what the reader should know (data used, settings)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be a non-empty name such as '5-gram (kneser-ney)', got {self.model!r}")
        if not isinstance(self.day, int) or not 1 <= self.day <= 21:
            raise ValueError(f"day must be the course day, an int from 1 to 21, got {self.day!r}")
        nats = float(self.nats_per_char)
        if not math.isfinite(nats) or nats < 0:
            raise ValueError(
                f"nats_per_char must be finite and >= 0, got {self.nats_per_char}: "
                "a model that gives a validation character probability 0 needs smoothing"
            )
        object.__setattr__(self, "nats_per_char", nats)
        if self.n_params is not None and (not isinstance(self.n_params, int) or self.n_params < 0):
            raise ValueError(f"n_params must be an int >= 0 or None, got {self.n_params!r}")

    @classmethod
    def from_total_nats(
        cls, model: str, day: int, total_nats: float, n_chars: int, n_params: int | None = None, notes: str = ""
    ) -> Result:
        """A row for a model over tokens: total nats of the validation text / its characters."""
        return cls(model, day, nats_per_char(total_nats, n_chars), n_params, notes)

    @property
    def bits_per_char(self) -> float:
        """nats / ln 2: what an ideal compressor driven by this model would spend per character."""
        return self.nats_per_char / math.log(2)

    @property
    def perplexity(self) -> float:
        """exp(nats per character): the per-character effective branching factor."""
        return math.exp(self.nats_per_char)


# ---------------------------------------------------------------- the table
@dataclass
class ResultsTable:
    """Results by model name, shown worst (most nats per character) first."""

    _rows: dict[str, Result] = field(default_factory=dict)

    @classmethod
    def of(cls, results: Iterable[Result]) -> ResultsTable:
        table = cls()
        for r in results:
            table.add(r)
        return table

    def add(self, result: Result) -> ResultsTable:
        """Add a row, replacing any row with the same model name; returns the table."""
        if not isinstance(result, Result):
            raise TypeError(f"add() takes a Result, got {type(result).__name__}")
        self._rows[result.model] = result
        return self

    @property
    def rows(self) -> list[Result]:
        """The rows sorted by nats per character, descending (the best model last)."""
        return sorted(self._rows.values(), key=lambda r: (-r.nats_per_char, r.day, r.model))

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Result]:
        return iter(self.rows)

    def __getitem__(self, model: str) -> Result:
        try:
            return self._rows[model]
        except KeyError:
            raise KeyError(f"no result named {model!r}; recorded: {sorted(self._rows)}") from None

    def __contains__(self, model: object) -> bool:
        return model in self._rows

    _HEADER = ("model", "day", "nats/char", "bits/char", "perplexity", "params", "notes")

    def _cells(self) -> list[tuple[str, ...]]:
        return [
            (r.model, str(r.day), f"{r.nats_per_char:.4f}", f"{r.bits_per_char:.3f}", f"{r.perplexity:.2f}",
             "" if r.n_params is None else f"{r.n_params:,}", r.notes)
            for r in self.rows
        ]  # fmt: skip

    def to_markdown(self) -> str:
        """A Markdown table (one line per model)."""
        lines = ["| " + " | ".join(self._HEADER) + " |", "|" + "---|" * len(self._HEADER)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self._cells()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in self._HEADER)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self._cells()
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return f"ResultsTable({len(self)} models)\n" + self.to_markdown()

    def plot(self, ax: Axes | None = None) -> Figure:
        """Horizontal bars of bits per character, best model at the bottom; returns the figure."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.35 * max(len(self), 3) + 1))
        rows = self.rows
        ys = range(len(rows))
        ax.barh(ys, [r.bits_per_char for r in rows], color=[f"C{r.day % 10}" for r in rows])
        ax.set_yticks(list(ys), [f"{r.model} (day {r.day})" for r in rows])
        ax.invert_yaxis()  # worst at the top, best at the bottom
        for y, r in zip(ys, rows):
            ax.text(r.bits_per_char, y, f" {r.bits_per_char:.2f}", va="center", fontsize=8)
        ax.set(xlabel="bits per character on the validation text (lower is better)")
        ax.margins(x=0.12)
        fig = ax.figure
        fig.tight_layout()
        return fig


# ---------------------------------------------------------------- persistence
def current_mode() -> Mode:
    """``"fast"`` when ``COURSE_FAST`` is on, else ``"full"``: each mode has its own file."""
    return "fast" if fast_mode() else "full"


def results_path(mode: Mode | None = None) -> Path:
    """``<data dir>/results/lm_results_{fast|full}.json`` (``COURSE_DATA_DIR`` moves it)."""
    from course_lib.data import data_dir

    mode = current_mode() if mode is None else mode
    if mode not in ("fast", "full"):
        raise ValueError(f"mode must be 'fast', 'full' or None (the current mode), got {mode!r}")
    return data_dir() / "results" / f"lm_results_{mode}.json"


def _read(path: Path) -> ResultsTable:
    if not path.is_file():
        return ResultsTable()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = [Result(**row) for row in data["results"]]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{path} is not a results file this course can read ({err}): delete it and re-run the notebooks"
        ) from None
    return ResultsTable.of(rows)


def _write(path: Path, table: ResultsTable) -> None:
    """Write through a temporary file in the same folder, then swap it in (atomic)."""
    payload = {"version": _FORMAT_VERSION, "results": [asdict(r) for r in table.rows]}
    with atomic_open(path, "w") as f:
        json.dump(payload, f, ensure_ascii=False, indent=1)
        f.write("\n")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s lock file during a read-modify-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def record_result(result: Result, mode: Mode | None = None) -> Path:
    """Save ``result`` to this mode's results file (replacing a row of the same name).

    Returns the file's path. The write is atomic: a reader sees the old file or the new one.
    """
    if not isinstance(result, Result):
        raise TypeError(f"record_result() takes a Result, got {type(result).__name__}")
    path = results_path(mode)
    with _locked(path):
        table = _read(path).add(result)
        _write(path, table)
    return path


def load_results(mode: Mode | None = None) -> ResultsTable:
    """Everything recorded so far in this mode (an empty table if nothing was)."""
    return _read(results_path(mode))


# ---------------------------------------------------------------- the n-gram baselines
def _smoothing_label(smoothing: str, k: float, discount: float) -> str:
    if smoothing == "add-k":
        return f"add-{k:g}"
    if smoothing == "kneser-ney":
        return "kneser-ney" if discount == 0.75 else f"kneser-ney D={discount:g}"
    return smoothing


def ngram_results(
    orders: Sequence[int] = (1, 2, 3, 4, 5),
    smoothing: str = "kneser-ney",
    *,
    k: float = 1.0,
    discount: float = 0.75,
    train_chars: int | None = None,
) -> list[Result]:
    """Fit :class:`~course_lib.ngram.NGramModel` of each order on the training text and
    score the validation characters ``val_text[1:]``; one :class:`Result` per order.

    ``k`` is used by add-k (and the interpolated unigram), ``discount`` by Kneser-Ney
    (interpolated smoothing uses equal weights). ``train_chars`` keeps only the first
    characters of the training text; the validation text is always all of it. Model
    names look like ``"5-gram (kneser-ney)"``; ``n_params`` counts the distinct m-grams
    (m = 1..n) the model stores. A few seconds for orders 1-5 on the full text.
    """
    from course_lib.ngram import NGramModel

    train_text, val_text = shakespeare_splits()
    vocab = sorted(set(train_text) | set(val_text))  # all 65 characters, also for a training prefix
    if train_chars is not None:
        if train_chars < 1:
            raise ValueError(f"train_chars must be a positive number of characters or None, got {train_chars}")
        train_text = train_text[:train_chars]
    label = _smoothing_label(smoothing, k, discount)
    results = []
    for n in orders:
        lm = NGramModel(n, smoothing=smoothing, k=k, discount=discount).fit(train_text, vocab=vocab)
        log_probs = lm.token_log_probs(val_text)[1:]  # (len(val) - 1,) as evaluate_perplexity
        stored = lm.stored_ngrams  # distinct m-grams, m = 1..n
        notes = f"trained on {len(train_text):,} chars" + ("" if train_chars is None else " (a prefix)")
        results.append(Result(f"{n}-gram ({label})", 15, float(-log_probs.mean()), stored, notes))
    return results


# ---------------------------------------------------------------- neural models: sliding windows
@dataclass(frozen=True)
class WindowScore:
    """What :func:`score_windows` measured: summed nats over ``n_predictions`` scored tokens.

    ``min_context``: the fewest tokens any prediction after the first window saw (the
    first window's tokens see 1, 2, ..., ``block_size``: nothing precedes them).
    """

    total_nats: float
    n_predictions: int
    block_size: int
    stride: int
    min_context: int

    @property
    def nats_per_token(self) -> float:
        return self.total_nats / self.n_predictions


def window_plan(n_tokens: int, block_size: int, stride: int) -> list[tuple[int, int]]:
    """The windows :func:`score_windows` runs: ``(start, first_scored)`` pairs.

    Token ``i`` (``1 <= i < n_tokens``) is predicted from the tokens before it. A window
    ``start`` holds inputs ``ids[start : start + block_size]`` and so predicts tokens
    ``start + 1 .. start + block_size``; it *scores* only those from ``first_scored`` on,
    which no earlier window scored. The first window scores all it predicts; each later one
    moves ``stride`` tokens on and scores its last ``stride`` predictions, so each of those
    saw at least ``block_size - stride + 1`` tokens. The last window ends at the last token.

    >>> window_plan(10, block_size=4, stride=2)   # tokens 1-4, then 5-6, 7-8, 9
    [(0, 1), (2, 5), (4, 7), (5, 9)]
    """
    if not 1 <= stride <= block_size:
        raise ValueError(f"stride must be between 1 and block_size = {block_size}, got {stride}")
    if n_tokens < 2:
        raise ValueError(f"need at least 2 tokens to score a prediction, got {n_tokens}")
    last = n_tokens - 1  # the last token index to predict
    if last <= block_size:
        return [(0, 1)]
    plan, scored_to = [(0, 1)], block_size  # tokens 1..block_size are scored
    while scored_to < last:
        end = min(scored_to + stride, last)  # score tokens scored_to + 1 .. end
        plan.append((end - block_size, scored_to + 1))
        scored_to = end
    return plan


def score_windows(
    model: torch.nn.Module,
    ids: torch.Tensor,
    block_size: int,
    *,
    stride: int | None = None,
    batch_size: int = 32,
) -> WindowScore:
    """The yardstick for a neural model: score every token of ``ids`` (N,) but the first, once.

    ``model(x)`` must return logits ``(b, t, V)`` (or a tuple whose first item they are) for
    inputs ``x`` (b, t) of at most ``block_size`` tokens. Overlapping windows
    (:func:`window_plan`, ``stride = block_size // 2`` by default) give every token after
    the first window at least half a context of history; ``stride = block_size`` is the
    non-overlapping cut, where a token at window position ``t`` sees only ``t + 1`` tokens
    (but for the last window, which ends at the last token).
    The sum is taken in float64. A model in training mode is put in eval mode meanwhile.
    """
    import torch.nn.functional as F

    from course_lib.batches import device_of

    if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or ids.dtype.is_floating_point:
        raise ValueError(f"ids must be a 1-D tensor of token ids, got {type(ids).__name__} "
                         f"{tuple(getattr(ids, 'shape', ()))}: use torch.tensor(tok.encode(text)).")
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int (the model's context), got {block_size!r}")
    stride = max(1, block_size // 2) if stride is None else stride
    plan = window_plan(ids.numel(), block_size, stride)
    n = ids.numel()
    device = device_of(model)
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64)
    try:
        with torch.no_grad():
            if len(plan) == 1:  # the whole text fits in one (shorter) window
                groups = [[(0, 1)]]
                width = n - 1
            else:
                groups = [plan[i : i + batch_size] for i in range(0, len(plan), batch_size)]
                width = block_size
            for group in groups:
                starts = torch.tensor([s for s, _ in group])  # (b,)
                offsets = starts[:, None] + torch.arange(width)  # (b, T)
                out = model(ids[offsets].long().to(device))
                logits = out[0] if isinstance(out, tuple) else out  # (b, T, V)
                nll = F.cross_entropy(logits.double().flatten(0, 1), ids[offsets + 1].long().to(device).flatten(),
                                      reduction="none").view(len(group), width).cpu()  # (b, T)
                # window position t predicts token start + t + 1: keep those from first_scored on
                first = torch.tensor([f - s - 1 for s, f in group])  # (b,)
                keep = torch.arange(width)[None, :] >= first[:, None]  # (b, T)
                total += nll[keep].sum()
    finally:
        model.train(was_training)
    min_context = block_size - stride + 1 if len(plan) > 1 else 1
    return WindowScore(total.item(), n - 1, block_size, stride, min_context)


@dataclass(frozen=True)
class TextScore:
    """:func:`score_text`'s result: nats summed over the scored characters of a text."""

    total_nats: float
    n_chars: int  # the characters those predictions spell: all but the first token's
    windows: WindowScore

    @property
    def nats_per_char(self) -> float:
        return nats_per_char(self.total_nats, self.n_chars)


def score_text(
    model: torch.nn.Module,
    tokenizer,  # noqa: ANN001 (a course_lib tokenizer: encode and decode)
    text: str,
    block_size: int,
    *,
    stride: int | None = None,
    batch_size: int = 32,
) -> TextScore:
    """Every neural row of the results table: ``text`` encoded, scored by :func:`score_windows`,
    normalised per character.

    All tokens but the first are predicted, so the characters scored are the text's but
    those of its first token: for a character model ``len(text) - 1``, the same 111,538
    predictions as the n-grams'. For BPE the first token spells a few more.

    >>> from course_lib.tokenizers import CharTokenizer
    >>> class Uniform(torch.nn.Module):       # every token equally likely
    ...     def forward(self, x):
    ...         return torch.zeros(*x.shape, 4)
    >>> s = score_text(Uniform(), CharTokenizer.from_text("abcd"), "abcdabcd", block_size=4)
    >>> s.n_chars, round(s.nats_per_char, 6) == round(math.log(4), 6)
    (7, True)
    """
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)  # (N,)
    windows = score_windows(model, ids, block_size, stride=stride, batch_size=batch_size)
    n_chars = len(text) - len(tokenizer.decode(ids[:1].tolist()))
    return TextScore(windows.total_nats, n_chars, windows)
