"""Day 21: the trainer that takes a language model from random weights to a checkpoint.

It trains any ``nn.Module`` with ``forward(idx, targets=None) -> (logits, loss)`` and a
dataclass ``config`` (with ``block_size`` and ``to_dict()``), such as ``course_lib.model.GPT``:

>>> cfg = TrainConfig(max_iters=2000, batch_size=32, lr=6e-4, checkpoint_dir="runs/gpt")
>>> history = Trainer(model, train_ids, val_ids, cfg).fit()   # doctest: +SKIP
>>> history.plot()                                             # doctest: +SKIP

What one step does: warm-up/cosine learning rate (:func:`~course_lib.schedule.lr_at`),
``grad_accum_steps`` micro-batches under autocast (bf16 on recent GPUs, float32 on CPU
and MPS), gradient clipping, an AdamW update. Every ``eval_interval`` steps it estimates
train and validation loss, records them in a :class:`History`, may stop early, writes a
checkpoint and calls each ``callback(trainer, record)``. Launched with ``torchrun`` it runs
DistributedDataParallel: one process per device, each drawing its own batches.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from course_lib.batches import _check_tokens, estimate_loss, get_batch
from course_lib.checkpoint import CheckpointError, best_checkpoint, latest_checkpoint, load_checkpoint, save_checkpoint
from course_lib.device import get_device, recommended_dtype
from course_lib.progress import finish
from course_lib.schedule import _DTYPES, TrainConfig, configure_optimizer

__all__ = ["EvalRecord", "History", "TrainConfig", "Trainer"]


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation: what a callback receives and what :class:`History` stores."""

    step: int  # optimisation steps completed
    train_loss: float  # mean cross-entropy (nats/token) on random training windows
    val_loss: float
    val_perplexity: float  # exp(val_loss)
    lr: float  # learning rate of the last step
    elapsed_s: float  # wall time since the run started (summed over resumes)
    tokens_per_sec: float  # training throughput since the previous evaluation
    improved: bool  # a new best validation loss


@dataclass
class History:
    """The evaluations of a run, one list entry each, plus the best validation loss."""

    iters: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    elapsed_s: list[float] = field(default_factory=list)
    tokens_per_sec: list[float] = field(default_factory=list)
    best_val_loss: float | None = None
    best_iter: int | None = None
    stopped_early: bool = False

    @property
    def val_perplexity(self) -> list[float]:
        return [_safe_exp(v) for v in self.val_loss]

    def append(self, r: EvalRecord) -> None:
        for name in ("train_loss", "val_loss", "lr", "elapsed_s", "tokens_per_sec"):
            getattr(self, name).append(getattr(r, name))
        self.iters.append(r.step)
        if r.improved:
            self.best_val_loss, self.best_iter = r.val_loss, r.step

    def mean_tokens_per_sec(self, tokens_per_step: int) -> float:
        """Training throughput over the run so far: tokens trained / seconds the steps took.

        Evaluation time is left out: each interval's time is its tokens over its own rate.
        Two intervals of 10 steps of 100 tokens at 1,000 and 4,000 tokens/s took 1 s and
        0.25 s, so 2,000 tokens in 1.25 s: 1,600 tokens/s.
        """
        tokens, seconds = 0.0, 0.0
        for i in range(1, len(self.iters)):
            n = (self.iters[i] - self.iters[i - 1]) * tokens_per_step
            if n > 0 and self.tokens_per_sec[i] > 0:
                tokens, seconds = tokens + n, seconds + n / self.tokens_per_sec[i]
        return tokens / seconds if seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(**d)

    def plot(self, ax: Any = None) -> Any:
        """Train and validation loss against steps, best point starred; returns the Figure."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 3.5))
            plt.close(fig)  # returned, not auto-shown: a notebook displays it once
        ax.plot(self.iters, self.train_loss, label="train")
        ax.plot(self.iters, self.val_loss, label="validation")
        if self.best_iter is not None:
            ax.plot([self.best_iter], [self.best_val_loss], "*", ms=12, label=f"best val {self.best_val_loss:.3f}")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats / token)")
        ax.grid(alpha=0.3)
        ax.legend()
        return ax.figure

    def __repr__(self) -> str:
        best = "none" if self.best_val_loss is None else f"{self.best_val_loss:.4f} at step {self.best_iter}"
        return f"History({len(self.iters)} evaluations, best val loss {best}, stopped_early={self.stopped_early})"


def _safe_exp(x: float) -> float:
    return math.exp(x) if x < 700 else math.inf


def _grad_scaler(device: torch.device, enabled: bool) -> Any:
    """Loss scaling keeps float16 gradients from underflowing; bf16 and float32 need none."""
    if hasattr(torch.amp, "GradScaler"):  # torch >= 2.3
        return torch.amp.GradScaler(device.type if enabled else "cpu", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled and device.type == "cuda")  # pragma: no cover


def _dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the variables torchrun sets; (0, 1, 0) otherwise."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1, 0
    rank = int(os.environ["RANK"])
    return rank, int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", rank))


class Trainer:
    """Train ``model`` on ``train_data`` (N,) token ids, validating on ``val_data`` (M,).

    ``callbacks`` are called as ``callback(trainer, record)`` after each evaluation (and
    after its checkpoint); a live plot in a notebook is one such callback, and
    :meth:`request_stop` ends the run cleanly. ``tokenizer`` (optional, with ``to_dict()``)
    is stored in the checkpoints so that a saved model can be used on its own.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: torch.Tensor,
        val_data: torch.Tensor,
        cfg: TrainConfig | None = None,
        device: torch.device | str | None = None,
        callbacks: Iterable[Callable[[Trainer, EvalRecord], None]] = (),
        tokenizer: Any = None,
    ) -> None:
        self.cfg = cfg = cfg if cfg is not None else TrainConfig()
        self.rank, self.world_size, local_rank = _dist_env()
        self.ddp = self.world_size > 1
        self._owns_group = False
        if self.ddp:
            device = self._init_distributed(local_rank, device)
        self.device = torch.device(device) if device is not None else get_device()
        self.is_main = self.rank == 0
        model_block = getattr(getattr(model, "config", None), "block_size", None)
        self.block_size = cfg.block_size or model_block
        if self.block_size is None:
            raise ValueError("set TrainConfig.block_size, or give the model a config with a block_size field")
        if model_block is not None and self.block_size > model_block:
            raise ValueError(f"block_size {self.block_size} exceeds the model's block_size {model_block}")
        _check_tokens(train_data, self.block_size, "train_data")
        _check_tokens(val_data, self.block_size, "val_data")
        self.train_data, self.val_data, self.tokenizer = train_data, val_data, tokenizer
        self.ptdtype = recommended_dtype(self.device) if cfg.dtype == "auto" else _DTYPES[cfg.dtype]
        if self.ptdtype == torch.bfloat16 and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("this GPU has no bfloat16 support: use dtype='float16' or 'auto'")
        self.scaler = _grad_scaler(self.device, enabled=self.ptdtype == torch.float16)  # float16 only
        self.raw_model = model.to(self.device)
        self.optimizer = configure_optimizer(self.raw_model, cfg.weight_decay, cfg.lr, cfg.betas, self.device,
                                             cfg.optimizer, cfg.muon_lr, cfg.muon_momentum)
        self._compiling = cfg.compile  # until the first step has run compiled, or fallen back
        self._wrap(torch.compile(self.raw_model) if cfg.compile else self.raw_model)
        self.generator = torch.Generator().manual_seed(cfg.seed + self.rank)  # each rank its own batches
        self.callbacks = list(callbacks)
        self.history = History()
        self.step = 0
        self._bad_evals = 0  # evaluations since the last improvement
        self._n_evals = 0
        self._stop_requested = False
        self._last_saved: int | None = None

    def _wrap(self, model: nn.Module) -> None:
        """Use ``model`` (the raw model or its compiled form) for the training steps."""
        self.model: nn.Module = model
        if self.ddp:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def _fall_back_to_eager(self, err: Exception) -> None:
        """torch.compile could not build the step here (no C++ compiler, a backend that does not
        support the device...): say why, and train the same model uncompiled."""
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        warnings.warn(f"torch.compile failed on the first step ({type(err).__name__}: {first}); training "
                      f"without it, which gives the same model, only slower. Set compile=False to skip the attempt.",
                      RuntimeWarning, stacklevel=3)
        self.optimizer.zero_grad(set_to_none=True)
        self._compiling = False
        self._wrap(self.raw_model)

    # -- distributed -----------------------------------------------------------------
    def _init_distributed(self, local_rank: int, device: torch.device | str | None) -> torch.device:
        if not dist.is_available():
            raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
        use_cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
        chosen = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(chosen)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
            self._owns_group = True
        return chosen

    def close(self) -> None:
        """End the process group this trainer started (call at the end of a torchrun script)."""
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self._owns_group = False

    def _all_mean(self, values: list[float]) -> list[float]:
        if not self.ddp:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)  # sum over ranks
        return (t / self.world_size).tolist()

    # -- one step ----------------------------------------------------------------------
    @property
    def tokens_per_step(self) -> int:
        return self.cfg.batch_size * self.block_size * self.cfg.grad_accum_steps * self.world_size

    def _autocast(self):
        if self.ptdtype == torch.float32:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.ptdtype)

    def _train_step(self) -> torch.Tensor:
        if self._compiling:  # the first compiled step compiles: if that fails, the step runs uncompiled
            state = self.generator.get_state()
            try:
                loss = self._step()
            except Exception as err:  # noqa: BLE001 - any compiler failure; the eager step below re-raises real errors
                self.generator.set_state(state)  # the eager step draws the same batch
                self._fall_back_to_eager(err)
                return self._step()
            self._compiling = False
            return loss
        return self._step()

    def _step(self) -> torch.Tensor:
        cfg, accum = self.cfg, self.cfg.grad_accum_steps
        for group in self.optimizer.param_groups:  # Muon's groups run at lr_ratio times the schedule
            group["lr"] = cfg.lr_at(self.step) * group.get("lr_ratio", 1.0)
        for micro in range(accum):
            x, y = get_batch(self.train_data, self.block_size, cfg.batch_size, self.generator, self.device)  # (B, T)
            last = micro == accum - 1
            with self.model.no_sync() if self.ddp and not last else nullcontext():  # all-reduce once per step
                with self._autocast():
                    _, loss = self.model(x, y)
                self.scaler.scale(loss / accum).backward()  # mean over the accum micro-batches
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    # -- the loop ----------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the run to stop; it ends after the current step (at the next evaluation under DDP)."""
        self._stop_requested = True

    @property
    def finishing(self) -> bool:
        """True once no step is left: ``max_iters`` reached, early stopping, or a stop asked for.

        Read inside a callback, it says whether this evaluation is the run's last.
        """
        return self.step >= self.cfg.max_iters or self.history.stopped_early or self._stop_requested

    def fit(self, resume_from: str | os.PathLike | None = None) -> History:
        """Train until ``max_iters``, early stopping or :meth:`request_stop`; return the history.

        ``resume_from`` is a checkpoint folder, or ``"latest"`` / ``"best"`` in ``checkpoint_dir``:
        weights, optimizer, step (hence the learning rate), random states and history come back,
        so the resumed run continues exactly as an uninterrupted one would.
        """
        cfg = self.cfg
        self._stop_requested = False
        if resume_from is not None:
            self._resume(resume_from)
        self._clock = (time.perf_counter(), self.history.elapsed_s[-1] if self.history.elapsed_s else 0.0)
        self._last_eval = (self._clock[0], self.step)
        self._postfix: dict[str, str] = {}  # what the progress bar shows: loss, lr, val, ppl
        bar = tqdm(total=cfg.max_iters, initial=self.step, desc="training", dynamic_ncols=True,
                   disable=not (cfg.progress and self.is_main))
        try:
            if not self.history.iters:
                self._evaluate(bar)  # the starting point of the curves
            while self.step < cfg.max_iters and not (self._stop_requested and not self.ddp):
                loss = self._train_step()
                self.step += 1
                bar.update(1)
                if cfg.log_every and self.step % cfg.log_every == 0:
                    self._postfix.update(loss=f"{loss.item():.4f}", lr=f"{cfg.lr_at(self.step - 1):.2e}")
                    bar.set_postfix(self._postfix)
                if (self.step % cfg.eval_interval == 0 or self.step == cfg.max_iters) and self._evaluate(bar):
                    break
            if self.history.iters[-1] != self.step:
                self._evaluate(bar)
            if cfg.checkpoint_dir is not None and self.step > 0 and self._last_saved != self.step:
                self.save_checkpoint()  # the final state is always on disk
            finish(bar)  # an early stop or a stop button ends the bar complete, not red
        finally:
            bar.close()  # after an exception the bar stays short (red)
        return self.history

    def _evaluate(self, bar: tqdm) -> bool:
        """Estimate losses, record, checkpoint, call back; True when the run should stop."""
        cfg = self.cfg
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        (t_last, s_last), (t_start, offset) = self._last_eval, self._clock
        tps = (self.step - s_last) * self.tokens_per_step / (now - t_last) if self.step > s_last else 0.0
        gen = torch.Generator().manual_seed(cfg.seed + 10_000 + self.rank)  # same windows every evaluation
        with self._autocast():
            losses = estimate_loss(self.raw_model, {"train": self.train_data, "val": self.val_data},  # uncompiled:
                                   self.block_size, cfg.batch_size, cfg.eval_iters, gen)  # no eval-mode graph to build
        train_loss, val_loss, tps = self._all_mean([losses["train"], losses["val"], tps])
        improved = self.history.best_val_loss is None or val_loss < self.history.best_val_loss
        self._bad_evals = 0 if improved else self._bad_evals + 1
        self._n_evals += 1
        record = EvalRecord(self.step, train_loss, val_loss, _safe_exp(val_loss), cfg.lr_at(max(self.step - 1, 0)),
                            offset + time.perf_counter() - t_start, tps, improved)
        self.history.append(record)
        patience = cfg.early_stopping_patience
        self.history.stopped_early = stop = patience is not None and self._bad_evals > patience
        self._postfix.update(val=f"{val_loss:.4f}", ppl=f"{record.val_perplexity:.1f}")
        bar.set_postfix(self._postfix)
        periodic = self._n_evals % cfg.checkpoint_every == 0 or (cfg.keep_best and improved)
        if cfg.checkpoint_dir is not None and self.step > 0 and periodic:
            self.save_checkpoint()
        for callback in self.callbacks:
            callback(self, record)
        stop = stop or self._stop_requested
        if self.ddp:  # a stop asked for on any rank stops every rank, at the same step
            stop = self._all_mean([float(stop)])[0] > 0
        self._last_eval = (time.perf_counter(), self.step)
        return stop

    # -- checkpoints -------------------------------------------------------------------
    def _rng_states(self) -> dict[str, torch.Tensor]:
        state = self.generator.get_state()  # (5056,) uint8
        states = [state]
        if self.ddp:  # rank 0 writes every rank's batch generator
            local = state.to(self.device)
            states = [torch.empty_like(local) for _ in range(self.world_size)]
            dist.all_gather(states, local)
        rng = {f"data.rank{r}": s.cpu() for r, s in enumerate(states)}
        rng["torch_cpu"] = torch.get_rng_state()
        if torch.cuda.is_available():
            rng.update({f"torch_cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
        return rng

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoint_dir/ckpt-{step}`` (rank 0 only); every rank must call it."""
        if self.cfg.checkpoint_dir is None:
            raise ValueError("TrainConfig.checkpoint_dir is None: set it to a folder to save checkpoints")
        rng = self._rng_states()
        self._last_saved = self.step
        if not self.is_main:
            return None
        h = self.history
        # tokens_per_sec: over the whole run up to this step (evaluations excluded), the figure
        # python -m course_lib train prints at the end and info reads back; each interval's own
        # rate is in the stored history
        metrics = {"train_loss": h.train_loss[-1], "val_loss": h.val_loss[-1], "val_perplexity": h.val_perplexity[-1],
                   "elapsed_s": h.elapsed_s[-1],
                   "tokens_per_sec": h.mean_tokens_per_sec(self.tokens_per_step)} if h.iters else {}  # fmt: skip
        state = {"history": h.to_dict(), "bad_evals": self._bad_evals, "n_evals": self._n_evals,
                 "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                 "world_size": self.world_size}
        return save_checkpoint(self.cfg.checkpoint_dir, self.raw_model, self.optimizer, step=self.step,
                               train_config=self.cfg, tokenizer=self.tokenizer, metrics=metrics,
                               extra={"trainer": state}, rng=rng)

    def _resume(self, resume_from: str | os.PathLike) -> None:
        if str(resume_from) in ("latest", "best"):
            if self.cfg.checkpoint_dir is None:
                raise ValueError(f"resume_from={resume_from!r} needs TrainConfig.checkpoint_dir")
            find = latest_checkpoint if str(resume_from) == "latest" else best_checkpoint
            info = find(self.cfg.checkpoint_dir)
            if info is None:
                raise CheckpointError(f"no complete checkpoint in {self.cfg.checkpoint_dir}: "
                                      "train without resume_from first, or point it at a checkpoint folder")
            resume_from = info.path
        ckpt = load_checkpoint(resume_from, model=self.raw_model, optimizer=self.optimizer)
        state = ckpt.meta.get("extra", {}).get("trainer")
        if state is None:
            raise CheckpointError(f"{ckpt.path} was not saved by a Trainer: load it with load_checkpoint() instead")
        self.step = ckpt.step
        self.history = History.from_dict(state["history"])
        self._bad_evals, self._n_evals = state["bad_evals"], state["n_evals"]
        self._last_saved = self.step
        if self.scaler.is_enabled() and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        mine = ckpt.rng.get(f"data.rank{self.rank}")
        if mine is not None and state.get("world_size") == self.world_size:
            self.generator.set_state(mine)
        else:  # another world size: a fresh, repeatable stream per rank
            self.generator.manual_seed(self.cfg.seed + self.rank + 7919 * self.step)
        torch.set_rng_state(ckpt.rng["torch_cpu"])
        cuda = [ckpt.rng[f"torch_cuda.{i}"] for i in range(sum(k.startswith("torch_cuda.") for k in ckpt.rng))]
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.raw_model.parameters())
        return (f"Trainer({type(self.raw_model).__name__}, {n:,} parameters, device={self.device}, "
                f"dtype={str(self.ptdtype).replace('torch.', '')}, world_size={self.world_size}, step={self.step})")
