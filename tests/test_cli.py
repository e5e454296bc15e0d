"""The command line: train (char and BPE, resume, overwrite), generate, chat, info, bench, errors.

Models are tiny and trained for real on tiny Shakespeare; outputs are compared with the
library called directly (``GPT.generate`` with the same seed), with hand-counted parameter
numbers and with the text itself.
"""

from __future__ import annotations

import contextlib
import io
import re
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_lib.checkpoint import best_checkpoint, load_checkpoint
from course_lib.cli import build_parser, main
from course_lib.cli.generate import TextStream
from course_lib.cli.train import resolve_recipe
from course_lib.data import load_text, train_val_split
from course_lib.model import GPT, GPTConfig
from course_lib.trainer import History
from course_lib.presets import DEFAULT_BPE_VOCAB, DEFAULT_PRESET, PRESETS, Recipe
from course_lib.tokenizers import BPETokenizer, CharTokenizer

TINY = ["--arch", "classic", "--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--batch-size", "8",
        "--eval-iters", "2", "--warmup-iters", "5", "--lr", "3e-3", "--no-progress"]  # fmt: skip
# 1 classic block at width 32, vocab 65, context 32, tied lm_head, counted by hand:
# embed_tokens 65*32 + embed_positions 32*32 + 2 LayerNorms 2*64 + q,k,v,o 4*(32*32+32)
# + MLP (32*128+128) + (128*32+32) + final LayerNorm 64
TINY_PARAMS = 65 * 32 + 32 * 32 + 2 * 64 + 4 * (32 * 32 + 32) + (32 * 128 + 128) + (128 * 32 + 32) + 64


@pytest.fixture(scope="module", autouse=True)
def cpu_one_thread():
    """CPU everywhere (the references below sample on the CPU), one torch thread: on a shared
    CPU more threads make tiny models far slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_DEVICE", "cpu")
        yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def text() -> str:
    return load_text("tinyshakespeare")


@pytest.fixture(scope="module")
def char_run(tmp_path_factory) -> Path:
    """A 30-step run; what train printed is kept next to the run folder, in train-stdout.txt."""
    out = tmp_path_factory.mktemp("cli") / "char"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["train", "--out", str(out), "--max-iters", "30", "--eval-interval", "10", *TINY]) == 0
    (out.parent / "train-stdout.txt").write_text(printed.getvalue(), encoding="utf-8")
    return out


def metrics_of(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def reference_sample(ckpt_dir: Path, tok, prompt: str, n: int, temperature: float, seed: int) -> str:
    """What GPT.generate itself produces from the checkpoint with a generator seeded ``seed``."""
    model = load_checkpoint(ckpt_dir).model
    idx = torch.tensor([tok.encode(prompt)])  # (1, T)
    out = model.generate(idx, n, temperature=temperature, generator=torch.Generator().manual_seed(seed))
    return tok.decode(out[0, idx.size(1) :].tolist())


def test_train_writes_metrics_checkpoints_and_tokenizer(char_run, text):
    m = metrics_of(char_run)
    for key in ("val_loss", "train_loss", "iters", "tokens_per_sec", "wall_s", "device", "config", "history"):
        assert key in m, key
    assert m["iters"] == 30 and m["device"] == "cpu" and m["config"]["n_layer"] == 1
    assert [h["iter"] for h in m["history"]] == [0, 10, 20, 30]
    assert set(m["history"][0]) == {"iter", "train_loss", "val_loss", "elapsed_s"}
    # an untrained model is nearly uniform over 65 characters; 30 steps must beat that clearly
    assert abs(m["history"][0]["val_loss"] - math.log(65)) < 0.1
    assert math.isfinite(m["val_loss"]) and m["val_loss"] < math.log(65) + 0.1
    assert m["val_loss"] < m["history"][0]["val_loss"] - 0.3
    assert m["val_loss"] == m["history"][-1]["val_loss"] and m["tokens_per_sec"] > 0 and m["wall_s"] > 0
    assert sorted(p.name for p in char_run.glob("ckpt-*")) == ["ckpt-000010", "ckpt-000020", "ckpt-000030"]
    tok = CharTokenizer.load(char_run / "tokenizer.json")
    assert tok.itos == sorted(set(text)) and tok.vocab_size == 65  # the whole text's characters
    assert json.loads((char_run / "run.json").read_text())["recipe"]["max_iters"] == 30


def test_resume_continues_to_more_steps(char_run, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(char_run, out)
    before = metrics_of(out)["history"]
    assert main(["train", "--out", str(out), "--resume", "--max-iters", "40", "--no-progress"]) == 0
    m = metrics_of(out)
    assert m["iters"] == 40 and [h["iter"] for h in m["history"]] == [0, 10, 20, 30, 40]
    assert m["history"][:4] == before  # the stored history came back, then one more evaluation
    assert (out / "ckpt-000040" / "meta.json").is_file()
    assert m["history"][-1]["elapsed_s"] > before[-1]["elapsed_s"]  # wall time summed over both parts


def test_generate_matches_the_library_and_the_vocabulary(char_run, capsys):
    args = ["generate", "--ckpt", str(char_run), "--prompt", "ROMEO:", "--max-new-tokens", "50"]
    assert main([*args, "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ROMEO:") and out.endswith("\n")
    new = out[len("ROMEO:") : -1]
    tok = CharTokenizer.load(char_run / "tokenizer.json")
    assert len(new) == 50 and set(new) <= set(tok.itos)
    best = best_checkpoint(char_run).path  # a run folder stands for its best checkpoint
    assert new == reference_sample(best, tok, "ROMEO:", 50, 0.8, 7)
    assert main([*args, "--seed", "7"]) == 0
    assert capsys.readouterr().out == out  # same seed, same text
    assert main([*args, "--seed", "8"]) == 0
    assert capsys.readouterr().out != out
    greedy = [*args, "--temperature", "0"]
    assert main(greedy) == 0 and main([*greedy, "--no-cache"]) == 0
    cached, uncached = capsys.readouterr().out.split("ROMEO:")[1:]
    assert cached == uncached  # the KV-cache changes the speed, not the text


def test_text_stream_never_breaks_a_character():
    tok = BPETokenizer()  # no merges: one token per byte, so 'é' and '☃' arrive in pieces
    text = "né ☃ ok"
    stream = TextStream(tok)
    pieces = [stream.push(i) for i in tok.encode(text)]
    assert "".join(pieces) + stream.flush() == text
    assert all("\ufffd" not in p for p in pieces)
    assert pieces[:3] == ["n", "", "é"]  # the first byte of 'é' waits for the second
    stream = TextStream(tok)
    assert stream.push(0xE2) == "" and stream.flush() == "\ufffd"  # at the end, an incomplete byte shows


def test_chat_with_piped_input(char_run, monkeypatch, capsys):
    lines = "/temp 0.5\n/stats\n/help\n/bogus\nROMEO:\n/stats\n/topk abc\n/quit\nnever read\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    assert main(["chat", "--ckpt", str(char_run), "--max-new-tokens", "20", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "temperature = 0.5" in out
    assert "unknown command '/bogus'" in out and out.count("/tokens N") == 2  # /help, and after /bogus
    assert f"model parameters: {TINY_PARAMS:,}; device: cpu" in out
    assert "tokens generated: 0 " in out and "tokens generated: 20 (last reply 20," in out
    assert "/topk 'abc': give a whole number" in out and "never read" not in out
    reply = out.split("> ROMEO:\n")[1].split("\n")[0]  # the model may write newlines itself
    tok = CharTokenizer.load(char_run / "tokenizer.json")
    expected = reference_sample(best_checkpoint(char_run).path, tok, "ROMEO:", 20, 0.5, 0)  # /temp took effect
    assert reply == expected.split("\n")[0]


def test_chat_refuses_a_bad_setting_and_goes_on(char_run, monkeypatch, capsys):
    lines = "/temp nan\n/tokens -1\n/topp 0\nROMEO:\n/quit\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    assert main(["chat", "--ckpt", str(char_run), "--max-new-tokens", "20", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "/temp 'nan': temperature must be a finite number >= 0 (0 = greedy); it stays 0.8." in out
    assert "/tokens '-1': max new tokens must be a whole number >= 0; it stays 20." in out
    assert "/topp '0': top p must be a number in (0, 1]; it stays off." in out
    reply = out.split("> ROMEO:\n")[1].split("\n")[0]  # the session went on, with the old settings
    tok = CharTokenizer.load(char_run / "tokenizer.json")
    assert reply == reference_sample(best_checkpoint(char_run).path, tok, "ROMEO:", 20, 0.8, 0).split("\n")[0]


@pytest.mark.parametrize("flags, message", [
    (["--temperature", "nan"], "--temperature must be a finite number >= 0 (0 = greedy), got nan."),
    (["--temperature", "inf"], "--temperature must be a finite number >= 0 (0 = greedy), got inf."),
    (["--top-k", "0"], "--top-k must be a whole number >= 1, got 0; leave --top-k out for no limit."),
    (["--top-p", "0"], "--top-p must be a number in (0, 1], got 0.0; leave --top-p out for no limit."),
    (["--max-new-tokens", "-5"], "--max-new-tokens must be a whole number >= 0, got -5."),
])  # fmt: skip
def test_bad_sampling_flags_exit_2_naming_the_flag(char_run, flags, message, capsys):
    assert main(["generate", "--ckpt", str(char_run), *flags]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"python -m course_lib generate: error: {message}\n"  # one paragraph, no traceback
    assert main(["chat", "--ckpt", str(char_run), *flags]) == 2
    assert message in capsys.readouterr().err


def test_a_tiny_temperature_is_greedy(char_run, capsys):
    args = ["generate", "--ckpt", str(char_run), "--prompt", "ROMEO:", "--max-new-tokens", "30", "--seed", "1"]
    assert main([*args, "--temperature", "1e-45"]) == 0 and main([*args, "--temperature", "0"]) == 0
    tiny, greedy = capsys.readouterr().out.split("ROMEO:")[1:]
    assert tiny == greedy  # 1e-45 is 0 to float32, and softmax(logits / T) tends to the argmax as T -> 0


def test_info_prints_step_and_parameter_count(char_run, capsys):
    assert main(["info", "--ckpt", str(char_run / "ckpt-000020")]) == 0
    out = capsys.readouterr().out
    meta = load_checkpoint(char_run / "ckpt-000020").meta
    built = GPT(GPTConfig.from_dict(meta["model_config"]))
    assert sum(p.numel() for p in built.parameters()) == TINY_PARAMS == 15_872
    assert "step: 20\n" in out and f"parameters: {TINY_PARAMS:,}\n" in out
    assert "tokenizer: char, vocab size 65" in out and f"val loss: {meta['metrics']['val_loss']:.4f}" in out
    assert "embed_tokens" in out and "[1, 32, 32]" in out  # the summary ran on one block_size window


def test_info_reports_the_throughput_train_printed(char_run, capsys):
    done = (char_run.parent / "train-stdout.txt").read_text(encoding="utf-8").splitlines()[-1]
    printed = re.search(r", ([\d,]+) tokens/s, ", done).group(1)  # "done: ..., 1,234 tokens/s, 5.8 s. ..."
    final = char_run / "ckpt-000030"
    assert main(["info", "--ckpt", str(final)]) == 0
    assert f"training speed: {printed} tokens/s\n" in capsys.readouterr().out
    stored = load_checkpoint(final).meta["metrics"]["tokens_per_sec"]
    assert metrics_of(char_run)["tokens_per_sec"] == stored and f"{stored:,.0f}" == printed
    # the figure is the whole run's: every trained token over the seconds the steps took
    history = History.from_dict(load_checkpoint(final).meta["extra"]["trainer"]["history"])
    tokens_per_step = 8 * 32  # --batch-size 8, --block-size 32
    seconds = sum(10 * tokens_per_step / t for t in history.tokens_per_sec[1:])  # 3 intervals of 10 steps
    assert stored == pytest.approx(30 * tokens_per_step / seconds)


def test_mean_tokens_per_sec_by_hand():
    # 10 steps of 100 tokens at 1,000 tokens/s (1 s), then 10 at 4,000 tokens/s (0.25 s): 2,000 in 1.25 s
    h = History(iters=[0, 10, 20], tokens_per_sec=[0.0, 1000.0, 4000.0])
    assert h.mean_tokens_per_sec(100) == pytest.approx(1600.0)
    assert History(iters=[0], tokens_per_sec=[0.0]).mean_tokens_per_sec(100) == 0.0  # nothing trained yet


def test_train_help_shows_the_defaults_a_run_uses(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "250")  # argparse wraps at the terminal width; one line per option here
    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    entries: dict[str, str] = {}  # "--n-layer" -> its help text, continuation lines joined
    flag_ = None
    for line in text.splitlines():
        if line.startswith("  -"):
            flag_ = line.split()[0].rstrip(",")
            entries[flag_] = line
        elif line.startswith("    ") and flag_ is not None:
            entries[flag_] += " " + line.strip()
        else:
            flag_ = None
    used = resolve_recipe(build_parser().parse_args(["train"]), Path("unused"))  # a run with no flags
    assert used == PRESETS[DEFAULT_PRESET]
    assert DEFAULT_PRESET in text.split("options:")[0] and "--preset" in text.split("options:")[0]
    fields = [f for f in Recipe.__dataclass_fields__ if f != "description"]
    for field in fields:
        help_ = entries["--" + field.replace("_", "-")]
        shown = re.search(r"\(default:? ([^)]*)\)", help_).group(1)
        value = getattr(used, field)
        if field == "vocab_size":  # None: the char tokenizer's vocabulary; with bpe, 512
            assert value is None and shown == str(DEFAULT_BPE_VOCAB)
        elif value is None:  # the architecture decides: the help says how
            assert "classic" in shown and "modern" in shown, (field, help_)
        else:
            assert shown == str(value), (field, shown, value)
    assert re.search(r"\(default ([^)]*)\)", entries["--preset"]).group(1) == DEFAULT_PRESET


def test_generate_checks_the_prompt_before_printing(char_run, capsys):
    assert main(["generate", "--ckpt", str(char_run), "--prompt", "ROMEO: caf\u00e9 \u2603"]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # the prompt is not echoed in front of the error
    assert err.startswith("python -m course_lib generate: error: the prompt has characters that are not in "
                          "the vocabulary") and err.count("\n") == 1  # one paragraph
    assert "'\u00e9' (U+00E9), '\u2603' (U+2603)" in err and "--tokenizer bpe" in err and "Traceback" not in err
    assert main(["generate", "--ckpt", str(char_run), "--prompt", ""]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "the prompt is empty" in err


def test_bpe_tokenizer_path(tmp_path, text, capsys):
    out = tmp_path / "bpe"
    args = ["train", "--out", str(out), "--tokenizer", "bpe", "--vocab-size", "300", "--max-iters", "10",
            "--eval-interval", "10", *TINY]  # fmt: skip
    assert main(args) == 0
    m = metrics_of(out)
    assert abs(m["history"][0]["val_loss"] - math.log(300)) < 0.15 and m["val_loss"] < m["history"][0]["val_loss"]
    tok = BPETokenizer.load(out / "tokenizer.json")
    assert tok.vocab_size == 300
    assert tok.merges == BPETokenizer.train(train_val_split(text)[0], 300, pattern="gpt2").merges  # train split
    capsys.readouterr()
    assert main(["generate", "--ckpt", str(out), "--prompt", "KING", "--max-new-tokens", "30", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert printed == "KING" + reference_sample(out / "ckpt-000010", tok, "KING", 30, 0.8, 3) + "\n"


@pytest.mark.parametrize("flags, message", [
    (["--n-embd", "30", "--n-head", "4"], ["n_embd=30 is not divisible by n_head=4", "--n-embd", "--n-head"]),
    (["--arch", "modern", "--n-head", "4", "--n-kv-head", "3"], ["n_kv_head=3", "--n-kv-head"]),
    (["--dropout", "1.5"], ["dropout must be in [0, 1)", "--dropout"]),
    (["--lr", "1e-4", "--min-lr", "1e-3"], ["min_lr <= lr", "--lr", "--min-lr"]),
    (["--max-iters", "0"], ["max_iters must be a positive int", "--max-iters"]),
    (["--dataset", "nope"], ["unknown dataset 'nope'", "tinyshakespeare"]),
    (["--preset", "nope"], ["unknown preset 'nope'", "shakespeare-char-cpu", "shakespeare-char-nanogpt"]),
    (["--vocab-size", "300"], ["--vocab-size applies to --tokenizer bpe only"]),
    (["--tokenizer", "bpe", "--vocab-size", "100"], ["at least 257"]),
    (["--resume", "--overwrite"], ["choose one"]),
    (["--tokenizer", "words"], ["invalid choice: 'words'"]),  # argparse's own check, also exit 2
])  # fmt: skip
def test_bad_train_flags_exit_2_with_a_message(flags, message, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err
    assert all(m in err for m in message), err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_existing_run_folder_is_protected(char_run, tmp_path, capsys):
    before = sorted(p.name for p in char_run.iterdir())
    assert main(["train", "--out", str(char_run), *TINY]) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "--resume" in err and "--overwrite" in err
    assert sorted(p.name for p in char_run.iterdir()) == before
    assert main(["train", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "run.json" in capsys.readouterr().err


def test_overwrite_replaces_only_the_previous_run(tmp_path):
    out = tmp_path / "run"
    (out / "ckpt-000999").mkdir(parents=True)
    (out / "ckpt-000999" / "meta.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    assert main(["train", "--out", str(out), "--overwrite", "--max-iters", "2", "--eval-interval", "2", *TINY]) == 0
    assert sorted(p.name for p in out.glob("ckpt-*")) == ["ckpt-000002"] and (out / "notes.txt").read_text() == "mine"


def test_inference_errors_exit_2(char_run, tmp_path, capsys):
    assert main(["generate", "--ckpt", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["generate", "--ckpt", str(char_run), "--prompt", "caf\u00e9"]) == 2
    assert "not in the vocabulary" in capsys.readouterr().err
    assert main(["generate", "--ckpt", str(char_run), "--top-p", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "--top-p" in err and "(0, 1]" in err and "1.5" in err
    broken = tmp_path / "ckpt-000010"
    shutil.copytree(char_run / "ckpt-000010", broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    assert main(["info", "--ckpt", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "truncated" in err and "Traceback" not in err


def test_presets_and_flag_overrides(capsys):
    nano = PRESETS["shakespeare-char-nanogpt"]  # nanoGPT README's CPU command and its config file
    assert (nano.n_layer, nano.n_head, nano.n_embd, nano.block_size, nano.batch_size) == (4, 4, 128, 64, 12)
    assert (nano.max_iters, nano.lr, nano.min_lr, nano.warmup_iters, nano.dropout) == (2000, 1e-3, 1e-4, 100, 0.0)
    assert (nano.bias, nano.beta2, nano.weight_decay) == (False, 0.99, 0.1)
    assert (nano.eval_interval, nano.eval_iters, nano.arch) == (250, 20, "classic")
    args = build_parser().parse_args(["train", "--preset", "shakespeare-char-nanogpt", "--max-iters", "5"])
    recipe = resolve_recipe(args, Path("unused"))
    assert recipe.max_iters == 5 and recipe.block_size == 64  # the flag wins, the rest is the preset
    assert main(["train", "--list-presets"]) == 0
    out = capsys.readouterr().out
    assert "shakespeare-char-cpu:" in out and "shakespeare-char-nanogpt:" in out and "block_size=64" in out


def test_bench_runs_every_script_and_reports_failures(tmp_path, monkeypatch, capsys):
    import course_lib.cli.bench as bench

    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "bench_ok.py").write_text("import sys, pathlib\npathlib.Path(sys.argv[0]).with_suffix('.args')"
                                        ".write_text(' '.join(sys.argv[1:]))\n")
    (folder / "bench_fail.py").write_text("raise SystemExit(3)\n")
    monkeypatch.setattr(bench, "bench_dir", lambda: folder)
    assert main(["bench", "--quick"]) == 1
    assert (folder / "bench_ok.args").read_text() == "--quick"
    out = capsys.readouterr().out
    assert "| bench_fail.py | FAILED (exit 3) |" in out and "| bench_ok.py | ok |" in out
    monkeypatch.setattr(bench, "bench_dir", lambda: tmp_path / "nothing")
    assert main(["bench"]) == 2
    assert "installed package" in capsys.readouterr().err


def test_entry_point_runs_as_a_module():
    import course_lib.__main__ as entry

    assert entry.main is main  # the console script 'course' calls course_lib.__main__:main
    done = subprocess.run([sys.executable, "-m", "course_lib", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert all(cmd in done.stdout for cmd in ("train", "generate", "chat", "info", "bench"))


def test_train_compile_flag_compiles_the_training_steps(tmp_path, monkeypatch):
    compiled = []

    def fake_compile(model, **kw):  # records the call; the steps then run the model itself
        compiled.append(type(model).__name__)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    assert main(["train", "--out", str(tmp_path / "c"), *TINY, "--max-iters", "4", "--eval-interval", "2",
                 "--compile"]) == 0
    assert compiled == ["GPT"]
    assert main(["train", "--out", str(tmp_path / "e"), *TINY, "--max-iters", "4", "--eval-interval", "2"]) == 0
    assert compiled == ["GPT"]  # without the flag, nothing is compiled
