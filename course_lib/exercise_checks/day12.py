"""Day 12's exercises: a UTF-8 decoder, stripping accents, the smallest vocabulary for a target OOV rate, counting bytes."""

from __future__ import annotations

import random
import unicodedata
from functools import lru_cache
from typing import Any

from course_lib.exercises import call_reported as _call
from course_lib.exercises import Waiting, Wrong, call_answer, exercise



@exercise("day12.ex1", title="a UTF-8 decoder", kind="code", section="section 2, UTF-8: code points as bytes")
def check_utf8_decode(fn: Any) -> str:
    rng = random.Random(1212)
    edges = [0, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF]  # each range's ends
    texts = ["", "hello", "é", "naïve café 😀", "".join(map(chr, edges))]
    for _ in range(6):  # random code points from each of the four lengths, mixed
        ranges = [(0, 0x7F), (0x80, 0x7FF), (0x800, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]
        texts.append("".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(rng.randint(1, 40))))
    for text in texts:
        data = text.encode("utf-8")
        got = _call(fn, f"my_utf8_decode({data!r})", data)
        if got != text:
            raise Wrong(f"my_utf8_decode({data!r}) returned {got!r}; bytes.decode('utf-8') gives {text!r}")
    return f"({len(texts)} byte strings, every length of character and each range's ends, decode like bytes.decode)"


def _base_letter(ch: str) -> str:
    """A precomposed letter's base, from its Unicode name: 'LATIN SMALL LETTER E WITH ACUTE' -> 'e'."""
    name = unicodedata.name(ch, "")
    if " WITH " in name:
        try:
            return unicodedata.lookup(name.split(" WITH ")[0])
        except KeyError:
            return ch
    return ch


@exercise("day12.ex2", title="stripping accents", kind="code", section="section 3, Normalisation")
def check_strip_accents(fn: Any) -> str:
    cases = {  # hand-worked
        "": "",
        "Crème brûlée à la façon de Zoë": "Creme brulee a la facon de Zoe",
        "cafe\u0301": "cafe",  # already decomposed: the combining accent goes
        "Ångström, 中文 and 😀 stay": "Angstrom, 中文 and 😀 stay",
        "plain ASCII text": "plain ASCII text",
    }
    rng = random.Random(1213)  # random accented Latin letters, with their bases read from the Unicode names
    accented = [chr(cp) for cp in range(0xC0, 0x180) if " WITH " in unicodedata.name(chr(cp), "")
                and unicodedata.decomposition(chr(cp)) and not unicodedata.decomposition(chr(cp)).startswith("<")]
    for _ in range(5):
        s = "".join(rng.choice(accented + list("abc xyz")) for _ in range(20))
        cases[s] = "".join(_base_letter(c) for c in s)
    for s, want in cases.items():
        got = _call(fn, f"strip_accents({s!r})", s)
        if got != want:
            raise Wrong(f"strip_accents({s!r}) returned {got!r}, expected {want!r}")
    return f"({len(cases)} strings, precomposed and decomposed accents, other scripts left alone)"


@lru_cache(maxsize=1)
def _words_split() -> tuple[list[str], list[str]]:
    from course_lib.data import load_text, train_val_split
    from course_lib.text import words

    train_text, val_text = train_val_split(load_text("tinyshakespeare"))  # the whole corpus
    return words(train_text), words(val_text)


def _oov(k: int) -> float:
    from course_lib.text import Vocab

    train_words, val_words = _words_split()
    return Vocab.build(train_words, max_size=k).oov_rate(val_words)


@exercise("day12.ex3", title="the smallest vocabulary for 20% OOV", kind="experiment",
          section="section 5, Out-of-vocabulary words")
def check_smallest_vocab(answer: Any) -> str:
    try:
        k = int(answer)
    except (TypeError, ValueError):
        raise Wrong(f"expected a vocabulary size (an int), got {answer!r}") from None
    if k != answer or k < 1:
        raise Wrong(f"expected a positive whole number of words, got {answer!r}")
    rate = _oov(k)
    if not rate < 0.2:
        raise Wrong(f"with the {k:,} most frequent training words, {rate:.1%} of the validation words are unknown; "
                    f"the target is below 20%")
    smaller = int(0.9 * k)
    if smaller >= 1 and _oov(smaller) < 0.2:
        raise Wrong(f"{k:,} words reach {rate:.1%}, but so few as {smaller:,} already stay below 20% "
                    f"({_oov(smaller):.1%}): find the smallest size, to within 10%")
    return f"({k:,} words leave {rate:.1%} of the validation words unknown, {_oov(max(smaller, 1)):.1%} with {smaller:,})"


@exercise("day12.ex4", title="counting bytes", kind="value", section="section 2, UTF-8: code points as bytes")
def check_count_bytes(answer: Any) -> str:
    s = "naïve café 😀"
    expected = len(s.encode("utf-8"))
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or answer != expected:
        side = "" if not isinstance(answer, (int, float)) else (" (too few)" if answer < expected else " (too many)")
        raise Wrong(f"{answer!r}{side} is not the number of bytes of {s!r} in UTF-8")
    return f"({len(s)} code points, {expected} bytes)"
