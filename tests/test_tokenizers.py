"""Tests for course_lib.tokenizers: BPE training and encoding, special tokens, files, CharTokenizer.

References: hand-worked merges, a naive trainer written here (recounts every pair
after every merge), and a naive encoder (applies each merge in order to the whole text).
"""

from __future__ import annotations

import doctest
import json
import os
import stat

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

import course_lib.tokenizers
from course_lib.tokenizers import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    bpe,
    char,
    hf_export,
    patterns,
    train,
    train_bpe,
)
from course_lib.tokenizers.train import inverted_key

SAMPLE = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n\n"
    "Café naïve façade, déjà vu; Straße, Ärger, Öl, über — «quotes» 'single' \"double\".\n"
    "Привет, как дела? Всё хорошо. Γειά σου κόσμε! 日本語のテキストと中文文本。\n"
    "emoji 😀🎉👍🏽 family 👨\u200d👩\u200d👧 combining e\u0301 a\u0308 n\u0303; हिन्दी पाठ; مرحبا بالعالم\n"
    "tabs\tand   spaces   \n\n\nnumbers 12345 3.14159 2024-01-01; don't I'll we've THEY'RE it's\n"
)  # fmt: skip
CHAT = "<|user|>Good morrow, how are you?<|assistant|>Well, I thank you.<|endoftext|>"
TRAIN_TEXT = "<|endoftext|>".join([SAMPLE, SAMPLE.upper(), SAMPLE.replace(" ", "  "), SAMPLE[::-1]]) + CHAT * 20
SPECIALS = ["<|endoftext|>", "<|user|>", "<|assistant|>"]
PATTERNS = [None, "gpt2", "gpt4"]
TOKS = {p: BPETokenizer.train(TRAIN_TEXT, 256 + 200, pattern=p, special_tokens=SPECIALS) for p in PATTERNS}


def naive_merge(ids: list[int], pair: tuple[int, int], idx: int) -> list[int]:
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def naive_train(text: str, vocab_size: int, pattern: str | None) -> list[tuple[bytes, bytes]]:
    """Recount every pair of every chunk after each merge; ties -> greatest (bytes, bytes)."""
    pieces = [text] if pattern is None else regex.findall(pattern, text)
    seqs = [list(p.encode("utf-8")) for p in pieces]
    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    while len(vocab) < vocab_size:
        counts: dict[tuple[int, int], int] = {}
        for seq in seqs:
            for pair in zip(seq, seq[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        a, b = max(counts, key=lambda p: (counts[p], vocab[p[0]], vocab[p[1]]))
        new = vocab[a] + vocab[b]
        idx = next((i for i, t in vocab.items() if t == new), None)
        if idx is None:
            idx = len(vocab)
            vocab[idx] = new
            merges.append((vocab[a], vocab[b]))
        seqs = [naive_merge(s, (a, b), idx) for s in seqs]
    return merges


def naive_encode(tok: BPETokenizer, text: str) -> list[int]:
    """Apply each merge, in order, to every chunk of the text."""
    pieces = [text] if tok.pattern is None else regex.findall(tok.pattern, text)
    id_of = {t: i for i, t in tok.vocab.items()}
    out = []
    for piece in pieces:
        ids = list(piece.encode("utf-8"))
        for a, b in tok.merges:
            ids = naive_merge(ids, (id_of[a], id_of[b]), id_of[a + b])
        out += ids
    return out


# ---- training ----------------------------------------------------------------------
def test_hand_worked_example():
    # "aaabdaaabac" pairs: aa x4 (two in each "aaa"), ab x2, bd, da, ba, ac x1.
    # 1) merge (a,a) -> 256, left to right:  256 a b d 256 a b a c
    #    now (256,a) x2 and (a,b) x2 tie; (b"aa", b"a") > (b"a", b"b") as tuples.
    # 2) merge (aa,a) -> 257:                257 b d 257 b a c
    # 3) merge (aaa,b) x2 -> 258:            258 d 258 a c
    tok = BPETokenizer.train("aaabdaaabac", 259)
    assert tok.merges == [(b"a", b"a"), (b"aa", b"a"), (b"aaa", b"b")]
    assert tok.vocab[258] == b"aaab"
    assert tok.encode("aaabdaaabac") == [258, ord("d"), 258, ord("a"), ord("c")]
    assert tok.decode([258, 97]) == "aaaba"
    assert train_bpe({b"aaabdaaabac": 1}, 259).counts == [4, 2, 2]


def test_training_prints_only_when_asked(capsys):
    BPETokenizer.train("aaabdaaabac", 259)
    assert capsys.readouterr().out == ""
    BPETokenizer.train("aaabdaaabac", 259, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "b'aa' + b'a' -> 257" in lines[1]


def test_ties_go_to_the_lexicographically_greatest_pair():
    # every pair occurs once: the first element decides ... ("az" < "ba" as tuples)
    assert BPETokenizer.train("az ba", 257, pattern="gpt2").merges == [(b"b", b"a")]
    # ... then the second when the first is equal
    assert BPETokenizer.train("ab ac", 257, pattern="gpt2").merges == [(b"a", b"c")]
    # bytes, not ids: after b"!!" (id 256), (a, z) beats (a, !!) although 122 < 256
    result = train_bpe({b"!!": 5, b"a!!": 1, b"az": 1}, 258)
    assert [(result.vocab[a], result.vocab[b]) for a, b, _ in result.merges] == [(b"!", b"!"), (b"a", b"z")]
    # a prefix is smaller: (a, bc) beats (a, b)
    result = train_bpe({b"bc": 5, b"abc": 1, b"ab": 1}, 258)
    assert [(result.vocab[a], result.vocab[b]) for a, b, _ in result.merges] == [(b"b", b"c"), (b"a", b"bc")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=6), min_size=2, max_size=8))
def test_inverted_key_reverses_bytes_order(tokens):
    assert sorted(tokens, key=inverted_key) == sorted(tokens, reverse=True)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_same_merges_as_naive_trainer(pattern):
    text = SAMPLE * 2 + SAMPLE.lower()
    regex_ = None if pattern is None else patterns.resolve_pattern(pattern)
    expected = naive_train(text, 256 + 80, regex_)
    assert BPETokenizer.train(text, 256 + 80, pattern=pattern).merges == expected


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab c\n", max_size=80), st.sampled_from([None, GPT2_SPLIT_PATTERN]))
def test_same_merges_as_naive_trainer_with_many_ties(text, pattern):
    assert BPETokenizer.train(text, 256 + 20, pattern=pattern).merges == naive_train(text, 256 + 20, pattern)


def test_merges_never_cross_chunk_boundaries():
    text = "a.b.c.d." * 100 + "hello hello hello"
    tok = BPETokenizer.train(text, 300, pattern="gpt2")
    learned = [a + b for a, b in tok.merges]
    assert learned and all(b"." not in t or set(t) == {ord(".")} for t in learned)
    assert all(len(patterns.split_text(t.decode(), tok.pattern)) == 1 for t in learned)
    # without a pattern, the most frequent pairs cross: (a,.) ... (d,.) x100, ties -> (d,.)
    assert BPETokenizer.train(text, 257).merges == [(b"d", b".")]


def test_training_stops_when_no_pair_is_left():
    tok = BPETokenizer.train("abab", 1000)
    assert tok.merges == [(b"a", b"b"), (b"ab", b"ab")] and tok.vocab_size == 258


def test_vocab_ids_and_bad_arguments():
    tok = TOKS["gpt2"]
    assert len(tok.merges) == 200 and tok.vocab_size == 256 + 200 + len(SPECIALS)
    assert all(tok.vocab[256 + k] == a + b for k, (a, b) in enumerate(tok.merges))
    with pytest.raises(ValueError, match="256"):
        BPETokenizer.train("abc", 100)
    with pytest.raises(ValueError, match="regex"):
        BPETokenizer.train("abc", 300, pattern="(unclosed")
    with pytest.raises(ValueError, match="already exists"):
        BPETokenizer([(b"a", b"b"), (b"b", b"c"), (b"ab", b"c"), (b"a", b"bc")])
    with pytest.raises(ValueError, match="training order"):
        BPETokenizer([(b"ab", b"c")])


# ---- encoding ----------------------------------------------------------------------
@pytest.mark.parametrize("pattern", PATTERNS)
def test_encode_matches_naive_encoder(pattern):
    tok = TOKS[pattern]
    text = SAMPLE + "x" * 100 + " " * 70 + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"  # long chunks too
    ids = tok.encode(text)
    assert ids == naive_encode(tok, text)
    assert len(tok.encode(SAMPLE)) < 0.6 * len(SAMPLE.encode("utf-8"))  # merges do apply


@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=120))
def test_decode_inverts_encode(pattern, text):
    tok = TOKS[pattern]
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=30, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list(SAMPLE)), min_size=40, max_size=200))
def test_encode_of_long_text_matches_naive_encoder(pattern, text):
    assert TOKS[pattern].encode_ordinary(text) == naive_encode(TOKS[pattern], text)


def test_invalid_utf8_decodes_with_replacement():
    tok = TOKS["gpt2"]
    euro = tok.encode("€")  # 3 bytes
    assert tok.decode([0xE2, 0x82]) == b"\xe2\x82".decode("utf-8", errors="replace") == "\ufffd"
    assert tok.decode(euro) == "€"
    with pytest.raises(ValueError, match="ids run from 0"):
        tok.decode([tok.vocab_size])


# ---- special tokens -----------------------------------------------------------------
@pytest.mark.parametrize("pattern", PATTERNS)
def test_special_tokens_are_whole_and_after_the_merges(pattern):
    tok = TOKS[pattern]
    n = 256 + len(tok.merges)
    assert tok.special_tokens == {"<|endoftext|>": n, "<|user|>": n + 1, "<|assistant|>": n + 2}
    # never learned by merges, although the training text holds them 83 times ...
    assert not any(b"<|" in a + b or b"|>" in a + b for a, b in tok.merges)
    # ... which a tokenizer trained without special tokens does learn
    assert any(b"<|" in a + b for a, b in BPETokenizer.train(TRAIN_TEXT, 456, pattern=pattern).merges)
    text = "<|user|>Hello there<|assistant|>Hi!<|endoftext|>"
    ids = tok.encode(text)
    assert [i for i in ids if i >= n] == [n + 1, n + 2, n]
    assert ids[0] == n + 1 and ids[-1] == n and tok.decode(ids) == text
    plain = tok.encode(text, allowed_special="none")
    assert max(plain) < n and tok.decode(plain) == text
    only = tok.encode(text, allowed_special={"<|endoftext|>"})
    assert [i for i in only if i >= n] == [n]
    with pytest.raises(ValueError, match="not special tokens"):
        tok.encode(text, allowed_special={"<|system|>"})


def test_longest_special_token_wins():
    tok = BPETokenizer.train("hello", 260, special_tokens=["<|a|>", "<|a|>b"])
    n = 256 + len(tok.merges)
    assert tok.encode("<|a|>b<|a|>") == [n + 1, n]
    with pytest.raises(ValueError, match="duplicate"):
        BPETokenizer.train("hello", 260, special_tokens=["<|a|>", "<|a|>"])
    with pytest.raises(ValueError, match="ordinary tokens"):
        BPETokenizer.train("hello", 260, special_tokens=["h"])


# ---- files ------------------------------------------------------------------------
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("name", ["tok.json", "tokenizer.json"])
def test_save_load_round_trip(tmp_path, pattern, name):
    tok = TOKS[pattern]
    path = tok.save(tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left
    data = json.loads(path.read_text(encoding="utf-8"))
    assert ("model" in data) == (name == "tokenizer.json")
    loaded = BPETokenizer.load(path)
    assert loaded.merges == tok.merges and loaded.special_tokens == tok.special_tokens
    assert loaded.pattern == tok.pattern and loaded.vocab == tok.vocab
    assert loaded.encode(SAMPLE + SPECIALS[1]) == tok.encode(SAMPLE + SPECIALS[1])


def test_saved_files_are_readable_as_the_umask_allows(tmp_path):
    before = os.umask(0o022)
    try:
        paths = [TOKS["gpt2"].save(tmp_path / "tok.json"), TOKS["gpt2"].save(tmp_path / "tokenizer.json"),
                 CharTokenizer.from_text("abc").save(tmp_path / "char.json")]
    finally:
        os.umask(before)
    assert [stat.S_IMODE(p.stat().st_mode) for p in paths] == [0o644] * 3  # not mkstemp's 0o600


def test_load_rejects_other_files(tmp_path):
    CharTokenizer.from_text("abc").save(tmp_path / "char.json")
    with pytest.raises(ValueError, match="not a course_lib.BPETokenizer"):
        BPETokenizer.load(tmp_path / "char.json")
    with pytest.raises(FileNotFoundError, match="save one first"):
        BPETokenizer.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON tokenizer"):
        BPETokenizer.load(tmp_path / "bad.json")


# ---- CharTokenizer ----------------------------------------------------------------
def test_char_tokenizer_round_trip_and_vocab():
    text = "To be, or not to be: that is the question. Ça va? 日本"
    tok = CharTokenizer.from_text(text)
    assert tok.itos == sorted(set(text)) and tok.vocab_size == len(set(text))
    ids = tok.encode(text)
    assert ids == [sorted(set(text)).index(c) for c in text] and tok.decode(ids) == text
    with pytest.raises(ValueError, match="ids run from 0"):
        tok.decode([tok.vocab_size])


def test_char_tokenizer_unknown_character():
    tok = CharTokenizer.from_text("hello")
    with pytest.raises(ValueError, match=r"character 'z' \(U\+007A\) at position 2 .*unknown="):
        tok.encode("hez")
    unk = CharTokenizer.from_text("hello", unknown="<unk>")
    assert unk.vocab_size == 5 and unk.unknown_id == 4
    assert unk.encode("hez!") == [1, 0, 4, 4] and unk.decode(unk.encode("hez")) == "he<unk>"
    existing = CharTokenizer.from_text("hello?", unknown="?")
    assert existing.vocab_size == 5 and existing.encode("hi") == [existing.stoi["h"], existing.stoi["?"]]
    with pytest.raises(ValueError, match="empty text"):
        CharTokenizer.from_text("")


@pytest.mark.parametrize("unknown", [None, "<unk>", "?"])
def test_char_tokenizer_save_load(tmp_path, unknown):
    tok = CharTokenizer.from_text("hello world", unknown=unknown)
    loaded = CharTokenizer.load(tok.save(tmp_path / "chars.json"))
    assert loaded.itos == tok.itos and loaded.unknown_id == tok.unknown_id
    assert loaded.encode("hello") == tok.encode("hello")
    with pytest.raises(ValueError, match="not a course_lib.CharTokenizer"):
        CharTokenizer.load(TOKS[None].save(tmp_path / "bpe.json"))


@pytest.mark.parametrize("module", [course_lib.tokenizers, bpe, char, patterns, train, hf_export])
def test_docstring_examples(module):
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60), st.sampled_from([GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, r"\w+", r"(a)(b)?", "x*"]))
def test_split_text_keeps_every_character(text, pattern):
    chunks = patterns.split_text(text, pattern)
    assert "".join(chunks) == text and all(chunks)
    # the non-empty matches, in order; the chunks between them (gaps) never match
    matches = [m.group() for m in regex.finditer(pattern, text) if m.group()]
    assert [c for c in chunks if regex.fullmatch(pattern, c)] == matches
    if pattern in (GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN):  # these match every character
        assert chunks == regex.findall(pattern, text)


def test_named_patterns_are_the_published_ones():
    assert patterns.resolve_pattern("gpt2") == GPT2_SPLIT_PATTERN
    assert patterns.resolve_pattern("gpt4") == GPT4_SPLIT_PATTERN
    # GPT-4 splits digits in threes and keeps contractions case-insensitive
    assert patterns.split_text("I'LL pay 1234567", GPT4_SPLIT_PATTERN) == ["I", "'LL", " pay", " ", "123", "456", "7"]
    assert patterns.split_text("I'LL pay 1234567", GPT2_SPLIT_PATTERN) == ["I", "'", "LL", " pay", " 1234567"]
