"""Fast mode, the exercise checker, and settings errors that name their field (ConfigError)."""

import dataclasses
import doctest
import math
import pickle

import pytest
import torch

from course_lib import fast_mode, pick, presets, schedule
from course_lib.config import ConfigError
from course_lib.exercises import check
from course_lib.model import GPTConfig
from course_lib.presets import PRESETS, Recipe
from course_lib.schedule import TrainConfig


@pytest.mark.parametrize(("value", "fast"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_fast_mode_switch(monkeypatch, value, fast):
    monkeypatch.setenv("COURSE_FAST", value)
    assert fast_mode() is fast
    assert pick(full=5000, fast=50) == (50 if fast else 5000)


def test_fast_mode_rejects_nonsense(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "maybe")
    with pytest.raises(ValueError, match="COURSE_FAST"):
        fast_mode()


def test_check_waits_for_placeholder(capsys):
    result = check("Ex", ..., expected=1)
    assert not result and result.waiting
    assert "waiting" in capsys.readouterr().out


def test_check_result_displays_nothing_in_a_notebook(capsys):
    """The message is printed once; IPython's formatter makes no output of the result."""
    from IPython.core.formatters import DisplayFormatter

    result = check("Ex", 2, expected=2)
    assert result and not result.waiting
    assert capsys.readouterr().out == "Ex: correct!\n"
    data, _ = DisplayFormatter().format(result)
    assert data == {}
    assert capsys.readouterr().out == ""


def test_check_accepts_right_and_rejects_wrong_answers():
    assert check("Ex", torch.tensor([1.0, 2.0]), expected=[1.0, 2.0 + 1e-9])
    assert check("Ex", {"a": 1}, expected={"a": 1})
    assert check("Ex", 4, test=lambda x: x % 2 == 0)
    with pytest.raises(AssertionError, match="shape"):
        check("Ex", [1, 2, 3], expected=[1, 2])
    with pytest.raises(AssertionError, match="Hint: think"):
        check("Ex", 0.5, expected=0.25, hint="think")
    with pytest.raises(AssertionError, match="expected 'abc'"):
        check("Ex", "abd", expected="abc")


# ---------------------------------------------------------------- settings errors that name their field
def test_config_error_is_a_value_error_with_its_fields():
    err = ConfigError(("lr", "min_lr"), "need 0 <= min_lr <= lr")
    assert isinstance(err, ValueError) and err.fields == ("lr", "min_lr") and str(err) == "need 0 <= min_lr <= lr"
    copy = pickle.loads(pickle.dumps(err))
    assert copy.fields == err.fields and str(copy) == str(err)
    assert ConfigError("lr", "x").fields == ("lr",)


def test_docstring_examples_of_presets_and_schedule_hold():
    assert doctest.testmod(presets).failed == 0
    assert doctest.testmod(schedule).failed == 0


@pytest.mark.parametrize(("settings", "field"), [
    (dict(lr=math.inf), "lr"), (dict(lr=math.nan), "lr"), (dict(lr=0.0), "lr"),
    (dict(lr=1e-4, min_lr=1e-3), "min_lr"), (dict(weight_decay=-1.0), "weight_decay"),
    (dict(weight_decay=math.inf), "weight_decay"), (dict(betas=(0.9, 1.5)), "betas"),
    (dict(betas=(0.9,)), "betas"), (dict(grad_clip=-1.0), "grad_clip"), (dict(seed=-1), "seed"),
    (dict(seed=2**63), "seed"), (dict(max_iters=True), "max_iters"), (dict(warmup_iters=-1), "warmup_iters"),
    (dict(block_size=0), "block_size"), (dict(early_stopping_patience=-1), "early_stopping_patience"),
    (dict(dtype="fp8"), "dtype"),
])  # fmt: skip
def test_train_config_names_the_field_it_refuses(settings, field):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**settings)
    assert field in caught.value.fields and field.split("_")[0] in str(caught.value)


def test_train_config_from_dict_is_strict():
    cfg = TrainConfig(max_iters=7, betas=(0.9, 0.99), checkpoint_dir="runs/x")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['max_iter'\]"):
        TrainConfig.from_dict({"max_iter": 7})


def test_recipe_model_config_is_the_arch_preset_with_the_recipe_shape():
    cpu = PRESETS["shakespeare-char-cpu"]  # modern, 2 layers, 4 heads, width 128, context 64
    expected = GPTConfig.modern(vocab_size=65, n_layer=2, n_head=4, n_embd=128, block_size=64, dropout=0.0)
    assert cpu.model_config(65) == expected and expected.n_kv_head == 2  # modern's default: n_head // 2
    nano = PRESETS["shakespeare-char-nanogpt"]  # classic with bias=False, as nanoGPT's CPU command
    assert nano.model_config(65) == GPTConfig.classic(vocab_size=65, n_layer=4, n_head=4, n_embd=128,
                                                      block_size=64, dropout=0.0, bias=False)


@pytest.mark.parametrize(("changes", "fields"), [
    (dict(dropout=1.5), ("dropout",)),
    (dict(n_layer=0), ("n_layer",)),
    (dict(arch="rnn"), ("arch",)),
    (dict(n_kv_head=-2), ("n_kv_head",)),
    (dict(n_embd=30, n_head=4), ("n_head", "n_embd")),  # GPTConfig's own check, attributed by the recipe
    (dict(arch="modern", n_head=4, n_kv_head=3), ("n_head", "n_kv_head", "n_embd")),
])  # fmt: skip
def test_recipe_model_config_names_the_recipe_fields(changes, fields):
    with pytest.raises(ConfigError) as caught:
        dataclasses.replace(Recipe(), **changes).model_config(65)
    assert caught.value.fields == fields


def test_recipe_train_config_translates_the_recipe():
    recipe = PRESETS["shakespeare-char-cpu"]
    cfg = recipe.train_config(checkpoint_dir="runs/x", progress=False)
    by_hand = TrainConfig(max_iters=6000, batch_size=24, lr=3e-3, min_lr=3e-5, warmup_iters=100, weight_decay=0.1,
                          betas=(0.9, 0.99), grad_clip=1.0, eval_interval=500, eval_iters=20, seed=1337,
                          checkpoint_dir="runs/x", progress=False)  # fmt: skip
    assert cfg == by_hand
    with pytest.raises(ConfigError) as caught:  # TrainConfig says betas; the recipe's field is beta2
        dataclasses.replace(recipe, beta2=1.5).train_config()
    assert caught.value.fields == ("beta2",) and "beta2 must be in [0, 1)" in str(caught.value)
    with pytest.raises(TypeError, match=r"dataclasses.replace\(recipe, lr=...\)"):
        recipe.train_config(lr=1.0)  # a recipe setting is changed on the recipe, not passed at run time


def test_recipe_build_tokenizer():
    text = "abc abc\nxyz"  # 'x', 'y', 'z' only in the part that is not training text
    char = Recipe(tokenizer="char").build_tokenizer(text, text[:8])
    assert char.decode(char.encode("xyz")) == "xyz" and char.vocab_size == len(set(text))
    with pytest.raises(ConfigError) as caught:
        Recipe(tokenizer="bpe", vocab_size=100).build_tokenizer(text, text)
    assert caught.value.fields == ("vocab_size",) and "at least 257" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        Recipe(tokenizer="words").build_tokenizer(text, text)
    assert caught.value.fields == ("tokenizer",)
