"""Tests for course_lib.tokenizers against Hugging Face ``tokenizers`` (the exports and their files).

Hugging Face always reads special tokens as special, so our ids to compare with are
``encode(text, allowed_special="all")``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

import course_lib.tokenizers
from course_lib.tokenizers import BPETokenizer, CharTokenizer, bytes_to_unicode, token_from_str, token_to_str

TEXT = (
    "ROMEO:\nBut, soft! what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n\n"
    "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\n\n"
    "Ünïcödé: café, naïve, 東京は晴れです。北京欢迎你。한국어 텍스트. Ελληνικά. Русский текст.\n"
    "😀😃😄 👍🏽 🇫🇷 e\u0301e\u0301 o\u0308\u0304 ‍zero\u200bwidth\ttab  two   three    four\r\nCRLF\n\n\n"
)  # fmt: skip
SPECIALS = ["<|endoftext|>", "<|user|>", "<|assistant|>"]
CUSTOM = r"\p{L}+|\p{N}+"  # leaves gaps (spaces, punctuation) that become chunks of their own
KINDS = [None, "gpt2", "gpt4", CUSTOM]
TOKS = {k: BPETokenizer.train(TEXT * 3 + TEXT.lower(), 256 + 150, pattern=k, special_tokens=SPECIALS) for k in KINDS}
HFS = {k: tok.to_hf() for k, tok in TOKS.items()}

CASES = {
    "empty": "",
    "ascii": "But, soft! what light through yonder window breaks?",
    "emoji": "😀 👍🏽👍🏿 🇫🇷🇯🇵 👨\u200d👩\u200d👧\u200d👦 ❤️",
    "cjk": "東京は晴れです。北京欢迎你。漢字かなカナ",
    "combining": "e\u0301 a\u0308\u0304 Z\u0351\u0362\u0327 ñ vs n\u0303",
    "whitespace runs": "a  b   c    d\t\t e \u00a0\u3000 f      ",
    "newlines": "\n\nline\r\nline\rline\n\n\n   \n",
    "mixed scripts": "Hello Мир 世界 مرحبا שלום नमस्ते Γειά 123 ١٢٣ ½ Ⅻ",
    "special tokens": "<|user|>Hi<|assistant|> Hello!<|endoftext|><|user|><|user|>",
    "special look-alikes": "<|user> <user|> <|endoftext| <|unknown|>",
    "numbers": "3.14159 1234567890 2024-01-01 1,000,000",
    "contractions": "don't DON'T I'll we've they're it's 'tis",
    "long": "Romeo " * 40 + "x" * 80,
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES)
def test_export_encodes_and_decodes_like_ours(kind, case):
    text = CASES[case]
    ids = TOKS[kind].encode(text, allowed_special="all")
    assert HFS[kind].encode(text).ids == ids
    assert HFS[kind].decode(ids, skip_special_tokens=False) == text == TOKS[kind].decode(ids)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=80))
def test_export_matches_on_arbitrary_text(kind, text):
    ids = TOKS[kind].encode(text, allowed_special="all")
    assert HFS[kind].encode(text).ids == ids
    assert HFS[kind].decode(ids, skip_special_tokens=False) == text


@settings(max_examples=40, deadline=None)
@given(parts=st.lists(st.one_of(st.sampled_from(SPECIALS), st.text(alphabet="<|>user ab\n", max_size=8)), max_size=8))
def test_export_matches_around_special_tokens(parts):
    text = "".join(parts)
    ids = TOKS["gpt4"].encode(text, allowed_special="all")
    assert HFS["gpt4"].encode(text).ids == ids


def test_export_with_unusual_special_tokens():
    tok = BPETokenizer.train(TEXT, 300, pattern="gpt4", special_tokens=["<|ユーザー|>", "<| user |>", "[END]"])
    text = "hi<|ユーザー|> x<| user |>y[END][END]"
    ids = tok.encode(text, allowed_special="all")
    assert tok.to_hf().encode(text).ids == ids and [i for i in ids if i >= 300] == [300, 301, 302, 302]
    assert tok.to_hf().decode(ids, skip_special_tokens=False) == text == tok.decode(ids)


def test_export_decodes_invalid_utf8_like_ours():
    tok = TOKS["gpt2"]
    for ids in ([0xE2, 0x82], [0xFF, ord("a")], [0xF0, 0x9F, 0x98]):
        assert HFS["gpt2"].decode(ids) == tok.decode(ids) == bytes(ids).decode("utf-8", errors="replace")


def test_export_structure():
    hf, tok = HFS["gpt2"], TOKS["gpt2"]
    assert hf.get_vocab_size() == tok.vocab_size
    assert hf.token_to_id("Ġthe") == next(i for i, t in tok.vocab.items() if t == b" the")
    assert all(hf.id_to_token(i) == token_to_str(tok.vocab[i]) for i in range(256 + len(tok.merges)))
    assert {hf.token_to_id(s): s for s in SPECIALS} == {i: s for s, i in tok.special_tokens.items()}


def test_byte_table_is_gpt2s():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("!")] == "!" and table[0] == "Ā"
    # Hugging Face's own ByteLevel alphabet is the same set of characters
    from tokenizers.pre_tokenizers import ByteLevel

    assert set(ByteLevel.alphabet()) == set(table.values())
    assert token_from_str(token_to_str(bytes(range(256)))) == bytes(range(256))
    with pytest.raises(ValueError, match="not in GPT-2's table"):
        token_from_str("a b")


@pytest.mark.parametrize("kind", KINDS)
def test_saved_tokenizer_json_loads_in_hugging_face(tmp_path, kind):
    path = TOKS[kind].save_hf(tmp_path / "bpe-hf.json")  # save_hf writes Hugging Face's format, any name
    hf = Tokenizer.from_file(str(path))
    text = CASES["mixed scripts"] + CASES["special tokens"] + CASES["emoji"]
    assert hf.encode(text).ids == TOKS[kind].encode(text, allowed_special="all")
    for loaded in (BPETokenizer.load(path), course_lib.tokenizers.load(path)):  # and it reads back
        assert loaded.merges == TOKS[kind].merges and loaded.special_tokens == TOKS[kind].special_tokens
        assert loaded.pattern == TOKS[kind].pattern


def test_foreign_tokenizer_json_is_refused(tmp_path):
    from tokenizers import models, pre_tokenizers

    hf = Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "ab": 2}, merges=[("a", "b")]))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(use_regex=False)
    hf.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ValueError, match="numbers its tokens differently"):
        BPETokenizer.load(tmp_path / "tokenizer.json")
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ValueError, match="Tokenizer.from_file"):
        BPETokenizer.load(tmp_path / "tokenizer.json")


# ---- the character tokenizer ------------------------------------------------------------
CHAR_TEXT = TEXT + "\t\r\n  \"quotes\" 'single' (brackets) [x] {y} <z> a|b ~`^$*+?.\\ 100% #1 @you &c;\n"
CHAR_TOK = CharTokenizer.from_text(CHAR_TEXT)


@pytest.mark.parametrize("unknown", [None, "<unk>", "?"])
def test_char_export_encodes_and_decodes_like_ours(unknown):
    tok = CharTokenizer.from_text(CHAR_TEXT, unknown=unknown)
    hf = tok.to_hf()
    for text in (CHAR_TEXT, "ROMEO:\nBut, soft!\n\n  what light?", "\n", " ", "", "e\u0301 👍🏽"):
        ids = tok.encode(text)
        assert hf.encode(text).ids == ids
        assert hf.decode(ids) == tok.decode(ids) == text
    assert hf.get_vocab_size() == tok.vocab_size
    assert all(hf.id_to_token(i) == s for i, s in enumerate(tok.itos))


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=sorted(set(CHAR_TEXT)), max_size=80))
def test_char_export_matches_on_arbitrary_text(text):
    ids = CHAR_TOK.encode(text)
    assert CHAR_TOK.to_hf().encode(text).ids == ids and CHAR_TOK.to_hf().decode(ids) == text


def test_char_export_of_unseen_characters():
    """With an unknown token both give its id; without one both refuse the character."""
    tok = CharTokenizer.from_text("abc\n", unknown="<unk>")
    assert tok.to_hf().encode("az\n☃").ids == tok.encode("az\n☃") == [1, 4, 0, 4]
    strict = CharTokenizer.from_text("abc\n")
    with pytest.raises(ValueError, match="character 'z'"):
        strict.encode("az")
    with pytest.raises(Exception, match="UNK"):
        strict.to_hf().encode("az")


@pytest.mark.parametrize("unknown", [None, "<unk>", "?"])
def test_char_tokenizer_json_loads_in_hugging_face_and_back(tmp_path, unknown):
    tok = CharTokenizer.from_text(CHAR_TEXT, unknown=unknown)
    path = tok.save_hf(tmp_path / "tokenizer.json")
    hf = Tokenizer.from_file(str(path))
    assert hf.encode(CHAR_TEXT).ids == tok.encode(CHAR_TEXT) and hf.decode(tok.encode(CHAR_TEXT)) == CHAR_TEXT
    for loaded in (CharTokenizer.load(path), course_lib.tokenizers.load(path)):
        assert type(loaded) is CharTokenizer and loaded.itos == tok.itos and loaded.unknown == tok.unknown
    with pytest.raises(ValueError, match="has no BPE model"):
        BPETokenizer.load(path)
    with pytest.raises(ValueError, match="no WordLevel model"):
        CharTokenizer.load(TOKS["gpt2"].save_hf(tmp_path / "bpe.json"))


def test_foreign_word_level_json_is_refused(tmp_path):
    from tokenizers import models, pre_tokenizers

    hf = Tokenizer(models.WordLevel(vocab={"a": 0, "b": 1}, unk_token="<unk>"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()  # splits into words, not characters
    hf.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ValueError, match="does not split the text into single characters"):
        course_lib.tokenizers.load(tmp_path / "tokenizer.json")
    unigram = Tokenizer(models.Unigram([("a", -1.0)], 0, byte_fallback=False))
    unigram.save(str(tmp_path / "unigram.json"))
    with pytest.raises(ValueError, match="with a Unigram model; the course reads the WordLevel and BPE models"):
        course_lib.tokenizers.load(tmp_path / "unigram.json")
