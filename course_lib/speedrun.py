"""Part 3: a CPU speedrun: how fast can a GPT on TinyShakespeare characters reach a target loss?

``python -m course_lib bench speedrun`` trains :data:`SPEEDRUN` (Muon, a small Llama-style
GPT) and stops once the course's yardstick (:func:`course_lib.lm_eval.score_text`: every
validation character, overlapping windows) reaches each target in turn, 1.70 and then 1.55
nats per character. It reports the seconds of training to each one (the Trainer's own loss
estimates included, the yardstick's exact scoring excluded and listed apart) and the share
of the CPUs other processes used meanwhile, since torch's threads slow down many times over
when another program holds a core: a time taken on a busy machine says so.

The exact score is expensive (every one of the 111,538 validation characters), so it runs
only once the Trainer's cheap estimate (``eval_iters`` random windows, every
``check_every`` steps) is within :data:`NEAR` of the next target; a target counts as
reached at the first check where the exact score is at or below it.

Each finished run can be appended to ``bench/results/speedrun.json``, the records that
Part 3's speedrun chapter shows (date, seconds, recipe, commit, CPU share of others).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_lib.presets import PRESETS, Recipe

TARGETS = (1.70, 1.55)  # nats/char on the yardstick
NEAR = 0.06  # score exactly once the estimate is this close to the next target
GOALS_S = {1.70: 45.0, 1.55: 180.0}  # on a 2-core CPU

# The day-21 model (2 blocks, width 128, context 64, 24 windows a step) with Muon on its
# block matrices and a schedule short enough to end near 1.55 nats/char.
SPEEDRUN = dataclasses.replace(
    PRESETS["shakespeare-char-cpu"],
    description="day 21's model with Muon and a 2,400-step schedule: the CPU speedrun",
    optimizer="muon",
    muon_lr=0.01,  # 0.01 reached 1.513 in 3,000 steps where 0.02 reached 1.519 and 0.04 did worse
    max_iters=2400,
    warmup_iters=100,
    lr=3e-3,
    min_lr=3e-5,
    eval_interval=100,  # the check interval: a cheap estimate every 100 steps
    eval_iters=8,
)


@dataclass
class Split:
    """One target reached (or not)."""

    target: float
    reached: bool
    step: int | None = None
    train_s: float | None = None  # training seconds to the check that reached it
    nats_per_char: float | None = None  # the exact score at that check


@dataclass
class SpeedrunResult:
    splits: list[Split]
    steps: int  # steps trained
    train_s: float  # seconds of training (the Trainer's estimates included)
    scoring_s: float  # seconds of exact scoring, not counted in train_s
    others: str  # share of the CPUs other processes used, e.g. "3%"
    recipe: dict[str, Any]
    threads: int
    date: str = field(default_factory=lambda: datetime.date.today().isoformat())
    commit: str = "unknown"
    machine: str = field(default_factory=lambda: f"{platform.machine()}, {os.cpu_count()} CPUs")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def cpu_busy_seconds() -> float | None:
    """CPU seconds all processes have used since boot (Linux /proc/stat), or None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def others_share(busy_before: float | None, own_before: float, wall: float) -> str:
    """The share of the machine's CPUs other processes used since ``busy_before``, as text."""
    busy_after = cpu_busy_seconds()
    if busy_before is None or busy_after is None or wall <= 0:
        return "unknown"
    own = time.process_time() - own_before
    return f"{max(0.0, busy_after - busy_before - own) / (wall * (os.cpu_count() or 1)):.0%}"


def git_commit(where: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=where or Path(__file__).resolve().parent)  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_speedrun(recipe: Recipe = SPEEDRUN, targets: tuple[float, ...] = TARGETS, *, device: str = "cpu",
                 progress: bool = False, log=print) -> SpeedrunResult:  # noqa: ANN001 - log: a print-like
    """Train ``recipe`` until the yardstick reaches every target (or the steps run out)."""
    import torch

    from course_lib.device import seed_everything
    from course_lib.lm_eval import score_text, shakespeare_splits
    from course_lib.model import GPT
    from course_lib.trainer import Trainer

    if list(targets) != sorted(targets, reverse=True):
        raise ValueError(f"targets must fall, e.g. (1.70, 1.55); got {targets}")
    train_text, val_text = shakespeare_splits()
    tok = recipe.build_tokenizer(train_text + val_text, train_text)
    train_ids, val_ids = torch.tensor(tok.encode(train_text)), torch.tensor(tok.encode(val_text))
    seed_everything(recipe.seed)
    model = GPT(recipe.model_config(tok.vocab_size))
    cfg = recipe.train_config(progress=progress, dtype="float32", log_every=0 if not progress else 10)
    splits = [Split(t, False) for t in targets]
    clock = {"scoring": 0.0, "start": 0.0}

    def on_eval(trainer: Trainer, record) -> None:  # noqa: ANN001 - an EvalRecord
        pending = [s for s in splits if not s.reached]
        if not pending or record.val_loss > pending[0].target + NEAR:
            return
        t0 = time.perf_counter()
        trained = t0 - clock["start"] - clock["scoring"]  # the seconds before this check, less earlier scoring
        exact = score_text(trainer.raw_model, tok, val_text, recipe.block_size, batch_size=64).nats_per_char
        clock["scoring"] += time.perf_counter() - t0
        log(f"step {record.step:,}: estimate {record.val_loss:.4f}, yardstick {exact:.4f} ({trained:.1f} s trained)")
        for s in pending:
            if exact <= s.target:
                s.reached, s.step, s.train_s, s.nats_per_char = True, record.step, round(trained, 1), round(exact, 4)
                log(f"  reached {s.target} nats/char at step {record.step:,} after {trained:.1f} s of training")
        if all(s.reached for s in splits):
            trainer.request_stop()

    trainer = Trainer(model, train_ids, val_ids, cfg, device=device, callbacks=[on_eval])
    busy, own = cpu_busy_seconds(), time.process_time()
    clock["start"] = time.perf_counter()
    trainer.fit()
    wall = time.perf_counter() - clock["start"]
    return SpeedrunResult(splits, trainer.step, round(wall - clock["scoring"], 1), round(clock["scoring"], 1),
                          others_share(busy, own, wall), recipe.to_dict(), torch.get_num_threads(),
                          commit=git_commit())  # fmt: skip


def train_steps(recipe: Recipe, steps: int, tok: Any, train_ids: Any, val_ids: Any, *, device: Any = "cpu",
                eval_iters: int = 8) -> tuple[Any, Any, float]:
    """Train ``recipe``'s GPT from its seed for ``steps`` steps, warm-up (5%) and cosine sized to them.

    Returns ``(model, history, seconds)``: the seconds of ``Trainer.fit`` (its eight loss
    estimates included). Part 3's AdamW-against-Muon race and ``bench/bench_optimizers.py``
    train this way, so a run of ``steps`` means the same schedule in both.
    """
    from course_lib.device import seed_everything
    from course_lib.model import GPT
    from course_lib.trainer import Trainer

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number of at least 1, got {steps!r}")
    r = dataclasses.replace(recipe, max_iters=steps, warmup_iters=max(steps // 20, 1),
                            eval_interval=max(steps // 8, 1), eval_iters=eval_iters)  # fmt: skip
    seed_everything(r.seed)
    model = GPT(r.model_config(tok.vocab_size))
    trainer = Trainer(model, train_ids, val_ids, r.train_config(progress=False, dtype="float32"), device=device)
    t0 = time.perf_counter()
    history = trainer.fit()
    return model, history, time.perf_counter() - t0


def equal_time_steps(recipes: dict[str, Recipe], seconds: float, probe_steps: int, tok: Any, train_ids: Any,
                     val_ids: Any, *, device: Any = "cpu", rounds: int = 2) -> tuple[dict[str, float], dict[str, int]]:
    """How many steps of each recipe fit in ``seconds`` of training: ``(ms_per_step, steps)``.

    Each recipe trains ``probe_steps`` steps ``rounds`` times, the recipes alternating so that
    all see the same machine, and the fastest of its timings counts: a moment of load on the
    machine slows one probe, not the comparison.
    """
    if not seconds > 0 or probe_steps < 1 or rounds < 1:
        raise ValueError(f"seconds, probe_steps and rounds must be positive, got {seconds}, {probe_steps}, {rounds}")
    times: dict[str, list[float]] = {label: [] for label in recipes}
    for _ in range(rounds):
        for label, recipe in recipes.items():
            times[label].append(1000 * train_steps(recipe, probe_steps, tok, train_ids, val_ids, device=device,
                                                   eval_iters=1)[2] / probe_steps)  # fmt: skip
    ms = {label: min(t) for label, t in times.items()}
    return ms, {label: max(int(seconds * 1000 / ms[label]), 10) for label in ms}


def load_records(path: Path) -> list[dict[str, Any]]:
    """The records saved in ``path`` (a JSON list), oldest first; [] if the file does not exist."""
    if not path.exists():
        return []
    records = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(records, list):
        raise ValueError(f"{path} should hold a JSON list of speedrun records; move it aside and run again")
    return records


def append_record(path: Path, result: SpeedrunResult) -> None:
    """Add ``result`` to the records in ``path``, written atomically (nothing is lost on a crash)."""
    from course_lib.atomic import atomic_write_text

    records = load_records(path) + [result.to_dict()]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(records, indent=1) + "\n")


def recipe_summary(recipe: dict[str, Any]) -> str:
    return (f"{recipe['n_layer']}x{recipe['n_embd']}, ctx {recipe['block_size']}, batch {recipe['batch_size']}, "
            f"{recipe['optimizer']} (lr {recipe['lr']:g}"
            + (f", Muon {recipe['muon_lr']:g}" if recipe["optimizer"] == "muon" else "")
            + f"), {recipe['max_iters']:,}-step schedule")  # fmt: skip


def records_table(records: list[dict[str, Any]], targets: tuple[float, ...] = TARGETS) -> str:
    """A markdown table of the records, one row per run, fastest to the last target first."""
    def key(r: dict[str, Any]) -> float:
        last = [s for s in r["splits"] if s["target"] == targets[-1] and s["reached"]]
        return last[0]["train_s"] if last else float("inf")

    head = ["date"] + [f"to {t:.2f} (goal {GOALS_S.get(t, float('nan')):.0f} s)" for t in targets]
    head += ["steps", "others' CPU", "recipe", "commit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(records, key=key):
        cells = [r["date"]]
        for t in targets:
            s = next((s for s in r["splits"] if s["target"] == t), None)
            cells.append(f"{s['train_s']:.1f} s (step {s['step']:,})" if s and s["reached"] else "not reached")
        cells += [f"{r['steps']:,}", r["others"], recipe_summary(r["recipe"]), r["commit"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
