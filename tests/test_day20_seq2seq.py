"""Day 20, section 8 trains day 14's GRU encoder-decoder again, beside one with cross-attention.

The notebook holds a copy of day 14's data generator, model and training loop (a notebook cannot
import another), so these tests keep the copy honest: run from both notebooks' own source, the
two make the same batches, build the same model, and take the same training steps with the same
settings. Only the definitions are executed, not the notebooks (a second or two on a CPU).
"""

from __future__ import annotations

import ast
import math
import random
import string
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm, trange

from course_lib.device import seed_everything
from course_lib.tokenizers import CharTokenizer

ROOT = Path(__file__).resolve().parents[1]
DAY14 = ROOT / "notebooks" / "day14_seq2seq_bottleneck.ipynb"
DAY20 = ROOT / "notebooks" / "day20_attention.ipynb"
STEPS = 5  # training steps compared


def _parameters(path: Path) -> dict:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(cell.source).body}


def _definitions(path: Path, names: set[str], **overrides) -> dict:
    """The notebook's parameters (with ``overrides``), then only its top-level definitions and
    assignments of ``names``, executed in order in one namespace."""
    ns = {"math": math, "random": random, "string": string, "torch": torch, "nn": nn, "F": F, "tqdm": tqdm,
          "trange": trange, "CharTokenizer": CharTokenizer, "seed_everything": seed_everything}
    ns.update(_parameters(path), **overrides)
    found = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.parse(cell.source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                name = node.name
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
            else:
                continue
            if name in names:
                exec(compile(ast.Module([node], type_ignores=[]), path.name, "exec"), ns)
                found.add(name)
    assert found == names, f"{path.name} no longer defines {sorted(names - found)}"
    return ns


@pytest.fixture(scope="module")
def day14() -> dict:
    return _definitions(DAY14, {"tok", "DOT", "make_batch", "Seq2Seq", "train_seq2seq"}, max_steps=STEPS)


@pytest.fixture(scope="module")
def day20() -> dict:
    names = {"my_attention", "letter_tok", "DOT", "make_batch", "Seq2Seq", "AttentionSeq2Seq", "train_seq2seq"}
    return _definitions(DAY20, names, s2s_steps=STEPS)


def test_settings_are_day14s():
    p14, p20 = _parameters(DAY14), _parameters(DAY20)
    for name14, name20 in [("embed_dim", "s2s_embed_dim"), ("train_max_len", "s2s_train_max_len"),
                           ("test_max_len", "s2s_test_max_len"), ("batch_size", "s2s_batch_size"),
                           ("learning_rate", "s2s_lr"), ("grad_clip", "s2s_grad_clip"), ("n_test", "s2s_n_test"),
                           ("seed", "seed")]:  # fmt: skip
        assert p20[name20] == p14[name14], (name20, p20[name20], name14, p14[name14])
    assert p20["s2s_hidden_size"] == p14["hidden_sizes"][-1]  # day 14's main model
    assert p20["s2s_steps"] <= p14["max_steps"]  # the notebook says: fewer steps, never more


def test_same_task_and_batches(day14, day20):
    assert day20["letter_tok"].itos == day14["tok"].itos and day20["DOT"] == day14["DOT"]
    for length in (1, 7, 16):
        a = day14["make_batch"](length, 5, torch.Generator().manual_seed(length))
        b = day20["make_batch"](length, 5, torch.Generator().manual_seed(length))
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)


def test_gru_baseline_trains_as_on_day14(day14, day20):
    hidden = _parameters(DAY20)["s2s_hidden_size"]
    model14, losses14 = day14["train_seq2seq"](hidden)
    model20, losses20 = day20["train_seq2seq"](day20["Seq2Seq"])
    assert len(losses20) == STEPS
    torch.testing.assert_close(losses20, losses14, rtol=0, atol=0)
    state14, state20 = model14.state_dict(), model20.state_dict()
    assert state14.keys() == state20.keys()
    for name in state14:
        torch.testing.assert_close(state20[name], state14[name], rtol=0, atol=0, msg=name)


def test_attention_model_shares_the_recipe(day20):
    """The attention model trains in the same loop and has day 14's parts plus two projections."""
    model, losses = day20["train_seq2seq"](day20["AttentionSeq2Seq"])
    assert len(losses) == STEPS and all(torch.isfinite(torch.tensor(losses)))
    baseline = day20["Seq2Seq"](27, 32, 128)
    extra = set(model.state_dict()) - set(baseline.state_dict())
    assert extra == {"q_proj.weight", "k_proj.weight"}, extra
    src, dec_in, dec_out = day20["make_batch"](6, 3, torch.Generator().manual_seed(0))
    logits, loss = model(src, dec_in, dec_out)
    assert logits.shape == (3, 7, 27) and loss.ndim == 0
