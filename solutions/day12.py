"""Day 12: solutions, and wrong answers the checkers must reject."""

import unicodedata


# day12.ex1 ------------------------------------------------------------------------------
def my_utf8_decode(data: bytes) -> str:
    """UTF-8 bytes -> str, reading the first byte's leading bits for the length (valid input assumed)."""
    out, i = [], 0
    while i < len(data):
        b0 = data[i]
        if b0 < 0x80:  # 0xxxxxxx
            n, cp = 1, b0
        elif b0 >> 5 == 0b110:  # 110xxxxx
            n, cp = 2, b0 & 0b11111
        elif b0 >> 4 == 0b1110:  # 1110xxxx
            n, cp = 3, b0 & 0b1111
        else:  # 11110xxx
            n, cp = 4, b0 & 0b111
        for b in data[i + 1 : i + n]:
            cp = (cp << 6) | (b & 0b111111)  # 6 payload bits per continuation byte
        out.append(chr(cp))
        i += n
    return "".join(out)


# day12.ex2 ------------------------------------------------------------------------------
def strip_accents(s: str) -> str:
    """NFD splits each accented letter into base + combining marks; drop the marks."""
    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))


# day12.ex3 ------------------------------------------------------------------------------
# Bisection on k with Vocab.build(train_words, max_size=k).oov_rate(val_words) < 0.2 (whole corpus).
SMALLEST_VOCAB = 1234
# end day12.ex3

# day12.ex4 ------------------------------------------------------------------------------
# 9 ASCII characters (n, a, v, e, c, a, f and the two spaces) take 1 byte each,
# ï (U+00EF) and é (U+00E9) take 2 bytes each, 😀 (U+1F600) takes 4.
N_BYTES = 9 * 1 + 2 * 2 + 4  # 17
# end day12.ex4

SOLUTIONS = {
    "day12.ex1": my_utf8_decode,
    "day12.ex2": strip_accents,
    "day12.ex3": SMALLEST_VOCAB,
    "day12.ex4": N_BYTES,
}


# ---------------------------------------------------------------- wrong answers
def _decode_latin1(data: bytes) -> str:  # one character per byte
    return "".join(chr(b) for b in data)


def _decode_keeps_marker_bits(data: bytes) -> str:  # keeps the continuation bytes' leading 10
    out, i = [], 0
    while i < len(data):
        b0 = data[i]
        n = 1 if b0 < 0x80 else 2 if b0 >> 5 == 0b110 else 3 if b0 >> 4 == 0b1110 else 4
        cp = b0 & (0xFF >> (n + 1)) if n > 1 else b0
        for b in data[i + 1 : i + n]:
            cp = (cp << 6) | b
        out.append(chr(cp % 0x110000))
        i += n
    return "".join(out)


def _decode_at_most_three(data: bytes) -> str:  # treats 11110xxx as a 3-byte start
    out, i = [], 0
    while i < len(data):
        b0 = data[i]
        n, cp = (1, b0) if b0 < 0x80 else (2, b0 & 0b11111) if b0 >> 5 == 0b110 else (3, b0 & 0b1111)
        for b in data[i + 1 : i + n]:
            cp = (cp << 6) | (b & 0b111111)
        out.append(chr(cp))
        i += n
    return "".join(out)


def _strip_nfc(s: str) -> str:  # NFC keeps the letters precomposed: nothing to drop
    return "".join(c for c in unicodedata.normalize("NFC", s) if not unicodedata.combining(c))


def _strip_non_ascii(s: str) -> str:  # also drops other scripts and emoji
    return "".join(c for c in unicodedata.normalize("NFD", s) if c.isascii())


def _strip_nfkd_no_drop(s: str) -> str:  # decomposes but forgets to drop the marks
    return unicodedata.normalize("NFD", s)


WRONG = {
    "day12.ex1": [_decode_latin1, _decode_keeps_marker_bits, _decode_at_most_three, lambda data: str(data)],
    "day12.ex2": [_strip_nfc, _strip_non_ascii, _strip_nfkd_no_drop, lambda s: s],
    "day12.ex3": [1000,  # still above 20%
                  3000,  # below 20%, but far from the smallest
                  1233,  # one word short
                  10000],  # the largest of the notebook's sizes
    "day12.ex4": [len("naïve café 😀"),  # code points, not bytes
                  9 + 2 + 4,  # ï and é counted as 1 byte
                  9 + 2 * 2 + 3,  # the emoji counted as 3 bytes
                  "17"],  # a string
}
