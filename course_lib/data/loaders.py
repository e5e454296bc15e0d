"""Day 1: loading the registered data sets as Python strings, lists and arrays.

Each loader calls :func:`course_lib.data.fetch` (verified, cached) and parses the file.

>>> text = load_text("tinyshakespeare")      # 1,115,394 characters
>>> names = load_names()                      # 5,163 lowercase first names
>>> images, labels = load_mnist()             # (5000, 28, 28) uint8, (5000,) int64
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from course_lib.data.download import fetch

S = TypeVar("S")


def load_text(name: str = "tinyshakespeare") -> str:
    """The whole text of a registered text corpus, decoded as UTF-8."""
    return fetch(name).read_text(encoding="utf-8")


def load_names() -> list[str]:
    """The 1990 US Census first names (male and female), lowercase, unique, sorted.

    Each line of the census files reads ``NAME  freq  cumfreq  rank``; only the name is kept.
    """
    names: set[str] = set()
    for part in ("names-male", "names-female"):
        for line in fetch(part).read_text(encoding="ascii").splitlines():
            if line.strip():
                names.add(line.split()[0].lower())
    return sorted(names)


def _read_csv_gz(name: str) -> np.ndarray:
    with gzip.open(fetch(name), "rt", encoding="ascii") as f:
        return np.array([[int(v) for v in row] for row in csv.reader(f) if row], dtype=np.int64)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits: images (N, 8, 8) uint8 in 0..16, labels (N,)."""
    table = _read_csv_gz("digits")  # (1797, 65): 64 pixels then the label
    return table[:, :64].reshape(-1, 8, 8).astype(np.uint8), table[:, 64]


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """5,000 real MNIST digits: images (5000, 28, 28) uint8 in 0..255, labels (5000,).

    The file is sorted by label (500 of each digit): shuffle before splitting.
    """
    table = _read_csv_gz("mnist-5k")  # (5000, 785): 784 pixels then the label
    return table[:, :784].reshape(-1, 28, 28).astype(np.uint8), table[:, 784]


@dataclass(frozen=True)
class Analogy:
    """``a`` is to ``b`` as ``c`` is to ``d``, from one section of the test set."""

    section: str
    a: str
    b: str
    c: str
    d: str


def load_analogies() -> list[Analogy]:
    """Mikolov et al.'s 19,544 analogy questions, lowercased, with their section names."""
    out: list[Analogy] = []
    section = ""
    for line in fetch("questions-words").read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            section = line[1:].strip()
        elif line.strip():
            a, b, c, d = line.lower().split()
            out.append(Analogy(section, a, b, c, d))
    return out


def load_wordsim353() -> list[tuple[str, str, float]]:
    """WordSim-353 pairs as (word1, word2, mean human score on 0..10), lowercased."""
    rows = []
    for line in fetch("wordsim353").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        w1, w2, score = line.split("\t")
        rows.append((w1.lower(), w2.lower(), float(score)))
    return rows


def train_val_split(seq: S, val_fraction: float = 0.1) -> tuple[S, S]:
    """Split a sequence into its first (1 - val_fraction) and its last val_fraction.

    A contiguous split (not a shuffle), so validation text is text the model never saw
    a neighbour of — the convention for TinyShakespeare (90% / 10%).

    >>> train_val_split("abcdefghij", 0.2)
    ('abcdefgh', 'ij')
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    n = len(seq)  # type: ignore[arg-type]
    cut = n - max(1, round(n * val_fraction))
    if cut < 1:
        raise ValueError(f"a sequence of length {n} is too short to split")
    return seq[:cut], seq[cut:]  # type: ignore[index,return-value]
