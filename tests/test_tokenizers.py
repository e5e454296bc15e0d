"""Tests for course_lib.tokenizers: BPE training and encoding, special tokens, dicts and files, CharTokenizer.

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

import numpy as np
import torch

import course_lib.tokenizers
from course_lib.tokenizers import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    bpe,
    char,
    from_dict,
    hf_export,
    patterns,
    registry,
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


def naive_encode(tok: BPETokenizer, text: str, k: int | None = None) -> list[int]:
    """Apply each merge (only the first ``k`` when given), in order, to every chunk of the text."""
    pieces = [text] if tok.pattern is None else regex.findall(tok.pattern, text)
    id_of = {t: i for i, t in tok.vocab.items()}
    out = []
    for piece in pieces:
        ids = list(piece.encode("utf-8"))
        for a, b in tok.merges[:k]:
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


@pytest.mark.parametrize("tok", [TOKS["gpt2"], CharTokenizer.from_text("hello")], ids=["bpe", "char"])
def test_decode_names_an_id_outside_the_vocabulary(tok):
    n = tok.vocab_size
    for bad in (n, n + 1000, -1):
        with pytest.raises(ValueError, match=rf"id {bad} is outside this tokenizer's vocabulary of {n} tokens: "
                                             rf"ids run from 0 to {n - 1}"):
            tok.decode([0, 1, bad, 2])
    with pytest.raises(ValueError, match=r"id 1\.5 is not an integer"):
        tok.decode([0, 1.5])
    # numpy and torch integers are ids too, out of range ones named the same way
    assert tok.decode(np.array([1, 0])) == tok.decode(torch.tensor([1, 0])) == tok.decode([1, 0])
    with pytest.raises(ValueError, match=f"id {n} is outside"):
        tok.decode(torch.tensor([0, n]))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_max_merges_applies_only_the_first_merges(pattern):
    """Reference: the naive encoder with the first k merges; chunks over 32 bytes take the fast path."""
    tok = TOKS[pattern]
    text = SAMPLE[:300] + "ab" * 40 + " " * 50
    for k in (0, 1, 5, 37, 199):
        assert tok.encode(text, max_merges=k) == naive_encode(tok, text, k) == tok.encode_ordinary(text, max_merges=k)
    assert tok.encode(text, max_merges=0) == list(text.encode("utf-8"))
    # all merges: the same as no limit, and the partial encodings above left nothing in the cache
    assert tok.encode(text, max_merges=len(tok.merges)) == tok.encode(text) == naive_encode(tok, text)
    # special tokens keep their ids whatever the limit
    eot = tok.special_tokens["<|endoftext|>"]
    assert tok.encode("ab<|endoftext|>", allowed_special="all", max_merges=0) == [97, 98, eot]
    for bad in (-1, len(tok.merges) + 1, 2.0, True):
        with pytest.raises(ValueError, match=f"max_merges={bad!r}: this tokenizer has 200 merges, so pass 0..200"):
            tok.encode("ab", max_merges=bad)


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
    ids = tok.encode(text, allowed_special="all")
    assert [i for i in ids if i >= n] == [n + 1, n + 2, n]
    assert ids[0] == n + 1 and ids[-1] == n and tok.decode(ids) == text
    plain = tok.encode_ordinary(text)
    assert max(plain) < n and tok.decode(plain) == text
    with pytest.raises(ValueError, match="not special tokens"):
        tok.encode(text, allowed_special={"<|system|>"})


def test_special_tokens_in_ordinary_text_are_refused_unless_allowed():
    """tiktoken's policy: the caller says whether a special token's string is the token or text."""
    tok = TOKS["gpt4"]
    eot, user = tok.special_tokens["<|endoftext|>"], tok.special_tokens["<|user|>"]
    text = "Hi<|user|>there<|endoftext|>"
    with pytest.raises(ValueError, match=r"special token '<\|user\|>' at position 2: pass "
                                         r"allowed_special=\{'<\|user\|>'\} \(or 'all'\) .*encode_ordinary"):
        tok.encode(text)
    # allowing one is not allowing the other: the first one not allowed is named
    with pytest.raises(ValueError, match=r"'<\|endoftext\|>' at position 15"):
        tok.encode(text, allowed_special={"<|user|>"})
    both = tok.encode(text, allowed_special={"<|user|>", "<|endoftext|>"})
    assert both == tok.encode(text, allowed_special="all")
    assert both == tok.encode_ordinary("Hi") + [user] + tok.encode_ordinary("there") + [eot]
    with pytest.raises(ValueError, match="encode_ordinary"):
        tok.encode(text, allowed_special="none")  # not a value: a string is not a set of tokens
    # text without a special token's string encodes the same under every choice
    assert tok.encode("Hi <|user there") == tok.encode("Hi <|user there", allowed_special="all") == \
        tok.encode_ordinary("Hi <|user there")
    # and a tokenizer without special tokens never refuses
    assert BPETokenizer().encode("<|endoftext|>") == list(b"<|endoftext|>")


def test_longest_special_token_wins():
    tok = BPETokenizer.train("hello", 260, special_tokens=["<|a|>", "<|a|>b"])
    n = 256 + len(tok.merges)
    assert tok.encode("<|a|>b<|a|>", allowed_special="all") == [n + 1, n]
    with pytest.raises(ValueError, match="duplicate"):
        BPETokenizer.train("hello", 260, special_tokens=["<|a|>", "<|a|>"])
    with pytest.raises(ValueError, match="ordinary tokens"):
        BPETokenizer.train("hello", 260, special_tokens=["h"])


# ---- dicts and files ------------------------------------------------------------
@pytest.mark.parametrize("pattern", PATTERNS)
def test_to_dict_from_dict_round_trip(pattern):
    tok = TOKS[pattern]
    data = json.loads(json.dumps(tok.to_dict()))  # JSON-able, as a checkpoint manifest stores it
    assert data["type"] == "course_lib.BPETokenizer" and data["version"] == 1
    assert data["merges"][0] == [hf_export.token_to_str(a) for a in tok.merges[0]]
    for loaded in (BPETokenizer.from_dict(data), from_dict(data)):
        assert type(loaded) is BPETokenizer and loaded.vocab == tok.vocab and loaded.pattern == tok.pattern
        assert loaded.special_tokens == tok.special_tokens and loaded.merges == tok.merges
    char_tok = CharTokenizer.from_text("hello world", unknown="<unk>")
    loaded = from_dict(json.loads(json.dumps(char_tok.to_dict())))
    assert type(loaded) is CharTokenizer and loaded.itos == char_tok.itos and loaded.unknown == "<unk>"


def test_from_dict_names_the_known_types():
    known = r"the known types are course_lib\.CharTokenizer, course_lib\.BPETokenizer"
    with pytest.raises(ValueError, match=rf"has type 'course_lib\.WordTokenizer'; {known}"):
        from_dict({"type": "course_lib.WordTokenizer", "words": []})
    with pytest.raises(ValueError, match=rf"has no 'type'; {known}"):
        from_dict({"chars": ["a"]})
    with pytest.raises(ValueError, match=r"no 'type' \(it looks like Hugging Face's tokenizer\.json"):
        from_dict(json.loads(TOKS["gpt2"].to_hf().to_str()))
    with pytest.raises(ValueError, match="has a list, not a dict"):
        from_dict([1, 2])
    assert set(registry.TOKENIZER_TYPES) == {"course_lib.CharTokenizer", "course_lib.BPETokenizer", "course_lib.ChatTokenizer"}
    # the class's own from_dict refuses the other class, and a version it does not know
    with pytest.raises(ValueError, match="not a course_lib.BPETokenizer"):
        BPETokenizer.from_dict(CharTokenizer.from_text("abc").to_dict())
    with pytest.raises(ValueError, match="format version is 2; this course_lib reads version 1"):
        CharTokenizer.from_dict({**CharTokenizer.from_text("abc").to_dict(), "version": 2})
    with pytest.raises(ValueError, match="'merges' are missing"):
        BPETokenizer.from_dict({"type": "course_lib.BPETokenizer", "version": 1, "pattern": None})


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("name", ["tok.json", "tokenizer.json"])
def test_save_load_round_trip(tmp_path, pattern, name):
    tok = TOKS[pattern]
    path = tok.save(tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == tok.to_dict()  # the course's format whatever the name: Hugging Face's only by save_hf
    for loaded in (BPETokenizer.load(path), course_lib.tokenizers.load(path), Tokenizer.load(path)):
        assert type(loaded) is BPETokenizer and loaded.merges == tok.merges
        assert loaded.special_tokens == tok.special_tokens
        assert loaded.pattern == tok.pattern and loaded.vocab == tok.vocab
        text = SAMPLE + SPECIALS[1]
        assert loaded.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")


def test_files_written_before_still_load(tmp_path):
    """Files as earlier versions wrote them, spelled out here: the course's JSON, and (BPE's save
    to a name ending in tokenizer.json) Hugging Face's."""
    bpe_file = {"type": "course_lib.BPETokenizer", "version": 1, "pattern": GPT2_SPLIT_PATTERN,
                "special_tokens": {"<|endoftext|>": 258}, "merges": [["Ġ", "t"], ["Ġt", "h"]]}  # fmt: skip
    char_file = {"type": "course_lib.CharTokenizer", "version": 1, "chars": ["\n", " ", "a"], "unknown": "<unk>"}
    (tmp_path / "bpe.json").write_text(json.dumps(bpe_file), encoding="utf-8")
    (tmp_path / "char.json").write_text(json.dumps(char_file), encoding="utf-8")
    bpe_tok = BPETokenizer.load(tmp_path / "bpe.json")
    assert bpe_tok.merges == [(b" ", b"t"), (b" t", b"h")]
    assert bpe_tok.encode(" th<|endoftext|>", allowed_special="all") == [257, 258]
    char_tok = course_lib.tokenizers.load(tmp_path / "char.json")
    assert char_tok.encode("a \nb") == [2, 1, 0, 3] and char_tok.decode([3]) == "<unk>"
    (tmp_path / "tokenizer.json").write_text(bpe_tok.to_hf().to_str(), encoding="utf-8")
    assert course_lib.tokenizers.load(tmp_path / "tokenizer.json").merges == bpe_tok.merges


def test_saved_files_are_readable_as_the_umask_allows(tmp_path):
    before = os.umask(0o022)
    try:
        paths = [TOKS["gpt2"].save(tmp_path / "tok.json"), TOKS["gpt2"].save_hf(tmp_path / "tokenizer.json"),
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
    (tmp_path / "other.json").write_text(json.dumps({"type": "something.Else"}))
    with pytest.raises(ValueError, match=r"other\.json: the tokenizer has type 'something\.Else'; the known types"):
        course_lib.tokenizers.load(tmp_path / "other.json")


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


@pytest.mark.parametrize("module", [course_lib.tokenizers, bpe, char, patterns, train, hf_export, registry])
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


def test_char_encode_error_lists_every_unknown_character():
    from course_lib.tokenizers import UnknownCharacterError

    tok = CharTokenizer.from_text("abc")
    with pytest.raises(UnknownCharacterError, match=r"character 'z' \(U\+007A\) at position 2") as info:
        tok.encode("abzéz☃")
    assert info.value.characters == ["z", "é", "☃"] and info.value.position == 2
    assert isinstance(info.value, ValueError)
