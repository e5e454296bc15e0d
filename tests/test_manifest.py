"""course_lib.manifest: a checkpoint's manifest is checked before anything is built from it."""

from __future__ import annotations

import doctest
import hashlib
import io
import json
import os
import pickle
import stat
import time
from pathlib import Path

import pytest
import torch

from course_lib import manifest
from course_lib.checkpoint import CheckpointError, checkpoint_tokenizer, load_checkpoint, save_checkpoint
from course_lib.manifest import LIMITS, MAX_PARAMETERS, parameter_count
from course_lib.model import GPT, GPTConfig
from course_lib.tokenizers import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, BPETokenizer, CharTokenizer
from ddp_worker import TinyConfig, TinyLM

TEXT = "to be or not to be, that is the question; aaaa bbb"


def gpt_checkpoint(tmp_path: Path, tokenizer=None, vocab_size: int | None = None) -> Path:
    torch.manual_seed(0)
    vocab = vocab_size or (tokenizer.vocab_size if tokenizer is not None else 16)
    model = GPT(GPTConfig.modern(vocab_size=vocab, block_size=8, n_layer=1, n_head=2, n_embd=16))
    stored = None if tokenizer is None else tokenizer.to_dict()  # as the CLI stores it
    return save_checkpoint(tmp_path / "run", model, step=1, tokenizer=stored)


def edit_manifest(folder: Path, change) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    change(meta)
    (folder / "meta.json").write_text(json.dumps(meta))


def replace_weights(folder: Path, data: bytes) -> None:
    """Swap model.safetensors for ``data`` and make the manifest agree (size and sha256)."""
    (folder / "model.safetensors").write_bytes(data)
    edit_manifest(folder, lambda m: m["files"].update(
        {"model.safetensors": {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}}))


# ---------------------------------------------------------------- sizes
@pytest.mark.parametrize("kw", [
    {}, {"tie_weights": False}, {"bias": True}, {"n_kv_head": 1}, {"intermediate_size": 40},
    {"pos_encoding": "learned", "norm": "layernorm", "mlp": "gelu", "bias": True},
    {"pos_encoding": "sinusoidal", "mlp": "gelu"}, {"norm": "layernorm", "bias": False},
])  # fmt: skip
@pytest.mark.parametrize("preset", [GPTConfig.classic, GPTConfig.modern])
def test_parameter_count_from_the_config_matches_the_built_model(preset, kw):
    cfg = preset(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_embd=32, **kw)
    assert parameter_count(cfg) == GPT(cfg).num_parameters(non_embedding=False)


def test_a_huge_vocabulary_is_refused_before_anything_is_allocated(tmp_path):
    folder = gpt_checkpoint(tmp_path)
    edit_manifest(folder, lambda m: m["model_config"].update(vocab_size=10**10, n_embd=4096, n_head=32))
    start = time.perf_counter()
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(folder)  # the old loader tried to allocate 163 TB here
    message = str(err.value)
    assert "model_config vocab_size=10000000000 is outside 1..1,048,576" in message
    assert "nothing was built" in message and str(folder / "meta.json") in message
    assert time.perf_counter() - start < 5


def test_a_model_over_the_parameter_cap_is_refused_with_its_size(tmp_path):
    folder = gpt_checkpoint(tmp_path)
    big = {"vocab_size": LIMITS["vocab_size"], "n_embd": LIMITS["n_embd"], "n_head": 128, "n_kv_head": 64}
    edit_manifest(folder, lambda m: m["model_config"].update(big))
    cfg = GPTConfig.from_dict({**json.loads((folder / "meta.json").read_text())["model_config"]})
    with pytest.raises(CheckpointError, match=f"a model of {parameter_count(cfg) + 2 * 8 * 128:,} parameters") as err:
        load_checkpoint(folder)
    assert f"({MAX_PARAMETERS:,}: 8 GB of float32 weights)" in str(err.value)


@pytest.mark.parametrize("key, value", [("n_layer", 10_000), ("block_size", 1 << 30), ("n_head", 0),
                                        ("n_embd", "128"), ("vocab_size", True)])
def test_every_size_is_capped_and_must_be_a_positive_int(tmp_path, key, value):
    folder = gpt_checkpoint(tmp_path)
    edit_manifest(folder, lambda m: m["model_config"].update({key: value}))
    with pytest.raises(CheckpointError, match=f"model_config {key}={value!r} is outside"):
        load_checkpoint(folder)


def test_a_config_that_is_not_a_gpt_config_is_a_checkpoint_error(tmp_path):
    folder = gpt_checkpoint(tmp_path)
    edit_manifest(folder, lambda m: m["model_config"].update(norm="batchnorm"))
    with pytest.raises(CheckpointError, match="model_config is not a valid GPTConfig .*batchnorm"):
        load_checkpoint(folder)


def test_a_malformed_manifest_is_refused(tmp_path):
    folder = gpt_checkpoint(tmp_path)
    edit_manifest(folder, lambda m: m.update(step="seven"))
    with pytest.raises(CheckpointError, match="is malformed: it needs an integer 'step'"):
        load_checkpoint(folder)


# ---------------------------------------------------------------- the tokenizer
def test_an_unknown_split_pattern_is_refused_and_never_compiled(tmp_path, monkeypatch):
    tok = BPETokenizer.train(TEXT, 262, pattern="gpt2")
    folder = gpt_checkpoint(tmp_path, tok)
    edit_manifest(folder, lambda m: m["tokenizer"].update(pattern="(a|aa)+c"))  # hangs on 40 "a"s
    import regex

    compiled = []
    monkeypatch.setattr(regex, "compile", lambda *a, **k: compiled.append(a) or pytest.fail("compiled"))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(folder)
    message = str(err.value)
    assert "split pattern '(a|aa)+c' is not one the course knows" in message
    assert "Known patterns: 'gpt2', 'gpt4'" in message and "Re-train the tokenizer" in message
    assert compiled == []


@pytest.mark.parametrize("stored, expected", [("gpt2", GPT2_SPLIT_PATTERN), (GPT4_SPLIT_PATTERN, GPT4_SPLIT_PATTERN),
                                              (None, None)])
def test_known_patterns_by_name_or_exact_string_are_accepted(tmp_path, stored, expected):
    tok = BPETokenizer.train(TEXT, 262, pattern="gpt4")
    folder = gpt_checkpoint(tmp_path, tok)
    edit_manifest(folder, lambda m: m["tokenizer"].update(pattern=stored))
    loaded = load_checkpoint(folder).tokenizer
    assert isinstance(loaded, BPETokenizer) and loaded.pattern == expected
    assert loaded.merges == tok.merges


def test_the_stored_tokenizer_comes_back_and_matches(tmp_path):
    tok = CharTokenizer.from_text(TEXT)
    ckpt = load_checkpoint(gpt_checkpoint(tmp_path, tok))
    assert isinstance(ckpt.tokenizer, CharTokenizer) and ckpt.tokenizer.itos == tok.itos
    assert ckpt.tokenizer.vocab_size == ckpt.model.config.vocab_size


def test_a_tokenizer_whose_vocabulary_differs_from_the_model_is_refused(tmp_path):
    tok = CharTokenizer.from_text(TEXT)  # 15 distinct characters
    folder = gpt_checkpoint(tmp_path, tok, vocab_size=tok.vocab_size + 5)
    with pytest.raises(CheckpointError, match=f"tokenizer has {tok.vocab_size} tokens but the model's vocab_size "
                                              f"is {tok.vocab_size + 5}"):
        load_checkpoint(folder)
    folder = save_checkpoint(tmp_path / "tiny", TinyLM(TinyConfig()), step=1, tokenizer=tok.to_dict())
    with pytest.raises(CheckpointError, match="model's vocab_size is 16"):  # also when loading into a given model
        load_checkpoint(folder, model=TinyLM(TinyConfig()))


def test_the_tokenizer_alone_is_read_without_the_weights(tmp_path):
    tok = BPETokenizer.train(TEXT, 262, pattern="gpt2", special_tokens=["<|endoftext|>"])
    model = GPT(GPTConfig.modern(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=16))
    folder = save_checkpoint(tmp_path / "obj", model, step=1, tokenizer=tok)  # an object: its to_dict() is stored
    assert json.loads((folder / "meta.json").read_text())["tokenizer"] == tok.to_dict()
    (folder / "model.safetensors").unlink()  # checkpoint_tokenizer never reads the weights
    loaded = checkpoint_tokenizer(folder)
    assert isinstance(loaded, BPETokenizer) and loaded.merges == tok.merges
    assert loaded.special_tokens == tok.special_tokens and loaded.pattern == GPT2_SPLIT_PATTERN
    edit_manifest(folder, lambda m: m["tokenizer"].update(pattern="(a|aa)+c"))  # checked as load_checkpoint does
    with pytest.raises(CheckpointError, match="split pattern '.a.aa.+c' is not one the course knows"):
        checkpoint_tokenizer(folder)
    edit_manifest(folder, lambda m: m["model_config"].update(vocab_size=300))
    edit_manifest(folder, lambda m: m["tokenizer"].update(pattern="gpt2"))
    with pytest.raises(CheckpointError, match="but the model's vocab_size is 300"):
        checkpoint_tokenizer(folder)


def test_a_checkpoint_without_a_course_tokenizer_says_so(tmp_path):
    folder = gpt_checkpoint(tmp_path)  # no tokenizer
    with pytest.raises(CheckpointError, match="stores no tokenizer, so its ids cannot be turned into text"):
        checkpoint_tokenizer(folder)
    ckpt = load_checkpoint(folder)
    assert ckpt.tokenizer is None
    with pytest.raises(CheckpointError, match="stores no tokenizer"):
        ckpt.require_tokenizer()
    edit_manifest(folder, lambda m: m.update(tokenizer={"type": "someone.Else", "vocab": ["a"]}))
    ckpt = load_checkpoint(folder)  # a tokenizer of another kind is kept in meta, not rebuilt
    assert ckpt.tokenizer is None and ckpt.meta["tokenizer"]["type"] == "someone.Else"
    with pytest.raises(CheckpointError, match="a tokenizer of type 'someone.Else', not one of the course's"):
        ckpt.require_tokenizer()
    with pytest.raises(CheckpointError, match="someone.Else"):
        checkpoint_tokenizer(folder)


def test_a_malformed_tokenizer_is_a_checkpoint_error(tmp_path):
    folder = gpt_checkpoint(tmp_path, CharTokenizer.from_text(TEXT))
    edit_manifest(folder, lambda m: m["tokenizer"].update(chars=["ab", "c"]))
    with pytest.raises(CheckpointError, match="the stored tokenizer is malformed"):
        load_checkpoint(folder)


# ---------------------------------------------------------------- the weights
def _torch_save_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"embed_tokens.weight": torch.zeros(2, 2)}, buf)
    return buf.getvalue()


@pytest.mark.parametrize("how", ["truncated", "pickled", "torch.save", "malformed header"])
def test_an_unreadable_weights_file_names_the_file_and_says_what_to_do(tmp_path, how):
    folder = gpt_checkpoint(tmp_path)
    good = (folder / "model.safetensors").read_bytes()
    data = {"truncated": good[: len(good) // 3], "pickled": pickle.dumps({"w": [1.0]}),
            "torch.save": _torch_save_bytes(), "malformed header": (40).to_bytes(8, "little") + b"{" * 40}[how]
    replace_weights(folder, data)  # the manifest agrees, so only safetensors itself can tell
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(folder)
    message = str(err.value)
    assert message.startswith(f"{folder / 'model.safetensors'} is not a readable safetensors file")
    assert "Re-train the model, re-download the checkpoint, or pick another one" in message
    assert "\n" not in message and err.value.__cause__ is None and err.value.__suppress_context__


def test_nan_weights_are_refused_with_a_clear_message(tmp_path):
    model = TinyLM(TinyConfig())
    with torch.no_grad():
        model.up_proj.weight[0, 0] = float("nan")
        model.lm_head.weight[1, 1] = float("inf")
    folder = save_checkpoint(tmp_path, model, step=3)
    with pytest.raises(CheckpointError, match=r"NaN or infinite \(up_proj.weight, lm_head.weight\)|"
                                              r"NaN or infinite \(lm_head.weight, up_proj.weight\)") as err:
        load_checkpoint(folder, model=TinyLM(TinyConfig()))
    assert "diverged" in str(err.value) and "earlier checkpoint" in str(err.value)


def test_checkpoint_files_are_readable_as_the_umask_allows(tmp_path):
    before = os.umask(0o022)
    try:
        folder = save_checkpoint(tmp_path, TinyLM(TinyConfig()), step=1)
    finally:
        os.umask(before)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes == {"model.safetensors": 0o644, "meta.json": 0o644}  # not mkstemp's 0o600


def test_docstring_examples():
    assert doctest.testmod(manifest).failed == 0
