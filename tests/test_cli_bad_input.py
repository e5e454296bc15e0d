"""``python -m course_lib train`` given bad input: one paragraph naming the flag, exit 2, nothing lost.

Each test starts from a real (tiny) previous run in the folder, with a user's own files next
to it whose names look like the run's (``ckpt-notes.txt``, ``ckpt-my-photos/``), and checks
byte for byte that a refused command left every file as it was.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from course_lib.cli import main
from course_lib.cli.common import pick_device

try:
    import fcntl
except ImportError:  # Windows: the CLI takes no lock there
    fcntl = None

# a run that is not refused lasts 2 steps; later flags override these
TINY = ["--max-iters", "2", "--eval-interval", "1", "--arch", "classic", "--n-layer", "1", "--n-head", "2",
        "--n-embd", "32", "--block-size", "32", "--batch-size", "8", "--eval-iters", "2", "--warmup-iters", "1",
        "--no-progress"]  # fmt: skip
PREFIX = "python -m course_lib train: error: "


@pytest.fixture(autouse=True)
def on_cpu(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A finished 2-step run: run.json, tokenizer.json, metrics.json, ckpt-000001, ckpt-000002."""
    out = tmp_path_factory.mktemp("bad_input") / "run"
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()):
        mp.setenv("COURSE_DEVICE", "cpu")
        assert main(["train", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture
def old_run(template, tmp_path) -> Path:
    """The previous run, plus files of the user's whose names start like a checkpoint's."""
    out = tmp_path / "run"
    shutil.copytree(template, out)
    (out / "ckpt-notes.txt").write_text("my notes on the checkpoints", encoding="utf-8")
    (out / "ckpt-my-photos").mkdir()
    (out / "ckpt-my-photos" / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    return out


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}  # fmt: skip


def refused(args: list[str], capsys, one_line: bool = True) -> tuple[str, str]:
    """Run ``train ARGS``; it must exit 2 with one paragraph and no traceback. Returns (stdout, message)."""
    assert main(["train", *args]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(PREFIX) and "Traceback" not in err, err
    assert err.count("\n") == 1 or not one_line, err
    return out, err[len(PREFIX) :]


# ---------------------------------------------------------------- --overwrite deletes last, and only the run
@pytest.mark.parametrize("flags, expected", [
    (["--beta2", "1.5"], ["beta2 must be in [0, 1), got 1.5", "--beta2"]),
    (["--seed", "-1"], ["seed must be an int from 0", "--seed"]),
    (["--weight-decay", "-1"], ["weight_decay must be a finite number >= 0", "--weight-decay"]),
    (["--lr", "inf"], ["lr must be a positive finite number, got inf", "--lr"]),
    (["--lr", "nan"], ["lr must be a positive finite number, got nan", "--lr"]),
    (["--grad-clip", "-1"], ["grad_clip must be a finite number >= 0", "--grad-clip"]),
    (["--warmup-iters", "-1"], ["warmup_iters must be an int >= 0", "--warmup-iters"]),
    (["--n-layer", "0"], ["n_layer must be a positive int", "--n-layer"]),
    (["--device", "gpu"], ["--device gpu is not a device name", "cuda, cuda:N, mps or cpu"]),
])  # fmt: skip
def test_a_bad_setting_is_named_before_the_data_loads_and_deletes_nothing(flags, expected, old_run, capsys):
    before = snapshot(old_run)
    printed, message = refused(["--out", str(old_run), "--overwrite", *TINY, *flags], capsys)
    assert all(e in message for e in expected), message
    assert printed == ""  # refused before "data: ..." : no corpus loaded, no tokenizer trained
    assert snapshot(old_run) == before


def test_a_block_size_longer_than_the_data_deletes_nothing(old_run, capsys):
    before = snapshot(old_run)
    printed, message = refused(["--out", str(old_run), "--overwrite", *TINY, "--block-size", "200000"], capsys)
    assert "--block-size 200000 is too long" in message and "validation split has 111,539" in message
    assert printed.startswith("data: tinyshakespeare")  # found once the data is tokenized, still before any write
    assert snapshot(old_run) == before


def test_missing_data_deletes_nothing(old_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    before = snapshot(old_run)
    _, message = refused(["--out", str(old_run), "--overwrite", *TINY], capsys, one_line=False)  # lists sources
    assert "Could not obtain data set 'tinyshakespeare'" in message
    assert snapshot(old_run) == before


def test_overwrite_removes_the_run_and_nothing_else(old_run, capsys):
    mine = {k: v for k, v in snapshot(old_run).items() if k.startswith(("ckpt-notes", "ckpt-my-photos", "notes"))}
    old_tokenizer = (old_run / "tokenizer.json").read_bytes()
    assert main(["train", "--out", str(old_run), "--overwrite", *TINY, "--max-iters", "1", "--n-embd", "16"]) == 0
    after = snapshot(old_run)
    assert {k: v for k, v in after.items() if k in mine} == mine  # the user's files, byte for byte
    assert sorted(p.name for p in old_run.glob("ckpt-0*")) == ["ckpt-000001"]  # ckpt-000002 was the old run's
    assert json.loads((old_run / "run.json").read_text())["recipe"]["n_embd"] == 16
    assert json.loads((old_run / "metrics.json").read_text())["iters"] == 1
    assert (old_run / "tokenizer.json").read_bytes() == old_tokenizer  # rewritten: the same characters


def test_overwrite_refuses_a_checkpoint_folder_holding_other_files(old_run, capsys):
    (old_run / "ckpt-000002" / "my-analysis.ipynb").write_text("{}", encoding="utf-8")
    before = snapshot(old_run)
    _, message = refused(["--out", str(old_run), "--overwrite", *TINY], capsys)
    assert "ckpt-000002 holds my-analysis.ipynb" in message and "not deleted" in message
    assert snapshot(old_run) == before  # not even the other checkpoint or run.json


# ---------------------------------------------------------------- one run per folder at a time
@contextlib.contextmanager
def held_lock(out: Path):
    """What a second train process holds while it writes into ``out``."""
    fd = os.open(out / ".train.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


@pytest.mark.skipif(fcntl is None, reason="no flock on this system")
@pytest.mark.parametrize("mode", [["--overwrite"], ["--resume", "--max-iters", "3"]])
def test_a_second_run_into_a_busy_folder_is_refused(mode, old_run, capsys):
    before = snapshot(old_run)
    with held_lock(old_run):
        printed, message = refused(["--out", str(old_run), *mode, *([] if "--resume" in mode else TINY)], capsys)
    assert "another python -m course_lib train is writing there" in message and ".train.lock" in message
    assert "done:" not in printed and snapshot(old_run) == before


@pytest.mark.skipif(fcntl is None, reason="no flock on this system")
def test_the_lock_is_held_for_the_whole_run(tmp_path, monkeypatch):
    import course_lib.cli.train as train

    out = tmp_path / "run"
    busy: list[bool] = []

    def probe(trainer, record):  # called after each evaluation, while the run is training
        fd = os.open(out / ".train.lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            busy.append(False)
        except BlockingIOError:
            busy.append(True)
        finally:
            os.close(fd)

    monkeypatch.setattr(train, "_print_eval", probe)
    assert main(["train", "--out", str(out), *TINY]) == 0
    assert busy == [True, True, True]  # steps 0, 1, 2
    with held_lock(out):  # released at the end
        pass


# ---------------------------------------------------------------- resume
def test_resume_refuses_a_new_seed_and_accepts_the_stored_one(old_run, capsys):
    before = snapshot(old_run)
    _, message = refused(["--out", str(old_run), "--resume", "--seed", "99"], capsys)
    assert "--resume cannot change --seed" in message and "another --out" in message
    assert snapshot(old_run) == before
    same_seed = ["--out", str(old_run), "--resume", "--seed", "1337", "--max-iters", "3", "--no-progress"]
    assert main(["train", *same_seed]) == 0
    assert json.loads((old_run / "metrics.json").read_text())["iters"] == 3


# ---------------------------------------------------------------- a run whose loss diverges
def test_a_diverging_run_stops_and_exits_1(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--out", str(out), *TINY, "--max-iters", "20", "--eval-interval", "2", "--lr", "1e6"]
    assert main(args) == 1  # it ran; its result is unusable
    printed, err = capsys.readouterr()
    assert err.startswith(PREFIX + "training diverged: the training loss became nan") and err.count("\n") == 1
    assert "Lower --lr (1e+06 now" in err and "done:" not in printed
    m = json.loads((out / "metrics.json").read_text())
    assert m["iters"] == 2 and [h["iter"] for h in m["history"]] == [0, 2]  # stopped at the first NaN, not at 20


# ---------------------------------------------------------------- folders that cannot be written
@contextlib.contextmanager
def read_only(folder: Path):
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("this user may write into read-only folders (root), so permissions cannot be tested")
        yield
    finally:
        folder.chmod(0o755)


def test_out_inside_a_read_only_folder(tmp_path, capsys):
    parent = tmp_path / "shared"
    parent.mkdir()
    with read_only(parent):
        printed, message = refused(["--out", str(parent / "run"), *TINY], capsys)
    assert f"--out {parent / 'run'}: permission denied" in message and f"in {parent} to create it" in message
    assert printed == "" and not (parent / "run").exists()


def test_resume_into_a_read_only_run_trains_nothing(old_run, capsys):
    before = snapshot(old_run)
    with read_only(old_run):
        printed, message = refused(["--out", str(old_run), "--resume", "--max-iters", "4"], capsys)
    assert "permission denied" in message and "--resume could not save the steps it trains" in message
    assert printed == "" and snapshot(old_run) == before  # refused before the data loaded, let alone training


# ---------------------------------------------------------------- devices
def test_course_device_garbage_names_the_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DEVICE", "garbage")
    _, message = refused(["--out", str(tmp_path / "run"), *TINY], capsys)
    assert message.startswith("COURSE_DEVICE=garbage is not a device name") and "cuda, cuda:N, mps or cpu" in message
    assert "--device None" not in message and not (tmp_path / "run").exists()


def test_device_cuda_without_a_gpu_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no UserWarning about a fallback: a refusal instead
        _, message = refused(["--out", str(tmp_path / "run"), "--device", "cuda", *TINY], capsys)
    assert message.startswith("--device cuda: no CUDA GPU is visible here") and "use --device cpu" in message
    assert not (tmp_path / "run").exists()


def test_pick_device_flag_wins_and_course_device_falls_back_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr("course_lib.device._mps_available", lambda: False)
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pick_device(None) == torch.device("cpu")  # the variable asks; the machine lacks it: fall back
        assert capsys.readouterr().err == ("warning: COURSE_DEVICE=cuda asked for cuda, which is not available "
                                           "here; fell back to cpu\n")
        assert pick_device("cpu") == torch.device("cpu")  # the flag wins over the variable, silently
        assert capsys.readouterr().err == ""
