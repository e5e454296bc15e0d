"""Day 21: the course's training recipes, each a named, complete set of settings.

A :class:`Recipe` holds everything ``python -m course_lib train`` needs: the data, the
tokenizer, the model shape and the optimisation settings. :data:`PRESETS` names the
recipes the course uses; explicit command-line flags override a preset's values:

    python -m course_lib train --preset shakespeare-char-cpu --max-iters 500

A recipe turns itself into what the library trains with: ``recipe.build_tokenizer(text,
train_text)``, ``recipe.model_config(tok.vocab_size)`` (a GPTConfig) and
``recipe.train_config(checkpoint_dir=..., progress=...)`` (a TrainConfig). A setting that
cannot work raises :class:`~course_lib.config.ConfigError` naming the recipe field, which
the command line turns into its flag (``beta2`` -> ``--beta2``).

>>> PRESETS["shakespeare-char-nanogpt"].block_size
64
>>> dataclasses.replace(PRESETS["shakespeare-char-cpu"], max_iters=500).max_iters
500
>>> PRESETS["shakespeare-char-cpu"].model_config(vocab_size=65).n_kv_head  # modern: n_head // 2
2
>>> dataclasses.replace(PRESETS["shakespeare-char-cpu"], beta2=1.5).train_config()  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
course_lib.config.ConfigError: beta2 must be in [0, 1), got 1.5: ...
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from course_lib.config import ConfigError, check_int, from_dict_strict, is_finite_number

if TYPE_CHECKING:  # imported inside the methods: --help must answer without importing torch
    from course_lib.model import GPTConfig
    from course_lib.schedule import TrainConfig
    from course_lib.tokenizers import Tokenizer

ARCHS = ("classic", "modern")  # GPTConfig.classic (GPT-2) or GPTConfig.modern (Llama)
TOKENIZERS = ("char", "bpe")
OPTIMIZERS = ("adamw", "muon")  # torch.optim.AdamW, or course_lib.muon.Muon (AdamW for what is not a block matrix)
DEFAULT_PRESET = "shakespeare-char-cpu"  # what `python -m course_lib train` runs without --preset
DEFAULT_BPE_VOCAB = 512  # --tokenizer bpe without --vocab-size: 256 byte tokens + 256 merges


@dataclass(frozen=True)
class Recipe:
    """One training run, fully specified. The field defaults are a base for presets to change;
    the command line's defaults are ``PRESETS[DEFAULT_PRESET]``, not ``Recipe()``."""

    description: str = "a small character-level GPT on tiny Shakespeare, sized for a laptop CPU"
    # --- data and tokenizer
    dataset: str = "tinyshakespeare"  # a registered text corpus, split 90% train / 10% validation
    tokenizer: str = "char"  # "char" (one id per character) or "bpe" (byte-level BPE)
    vocab_size: int | None = None  # BPE only: 256 byte tokens + merges; char: set by the text
    # --- model (see course_lib.model.GPTConfig)
    arch: str = "classic"  # "classic" (GPT-2 layout) or "modern" (Llama layout)
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads: 32 dims each at width 128
    n_kv_head: int | None = None  # key/value heads; None: the arch's default (modern: n_head // 2)
    n_embd: int = 128  # width of the residual stream
    block_size: int = 128  # context length in tokens
    dropout: float = 0.0  # a 3,000-step run on a million characters barely overfits
    bias: bool | None = None  # biases in Linear and norms; None: the arch's default (classic yes)
    # --- optimisation (see course_lib.schedule.TrainConfig)
    batch_size: int = 32  # windows per step: 32 x 128 = 4,096 tokens
    max_iters: int = 3000  # optimisation steps
    lr: float = 2e-3  # peak learning rate; a small model tolerates a large one
    min_lr: float = 2e-4  # end of the cosine decay, lr / 10
    warmup_iters: int = 100  # linear warm-up steps
    weight_decay: float = 0.1  # AdamW decay on matrices and embeddings
    beta2: float = 0.99  # AdamW's second-moment decay; 0.99 suits small batches (nanoGPT)
    grad_clip: float = 1.0  # max gradient norm; 0 turns clipping off
    optimizer: str = "adamw"  # "adamw", or "muon" for the blocks' matrices (AdamW for the rest)
    muon_lr: float = 0.02  # Muon's peak rate (optimizer="muon" only)
    eval_interval: int = 250  # steps between evaluations (and checkpoints)
    eval_iters: int = 40  # batches per split in each loss estimate
    seed: int = 1337  # model initialisation and batch draws

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON-ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Inverse of :meth:`to_dict`; unknown keys raise a ValueError naming the valid ones."""
        return from_dict_strict(cls, data, "recipe")

    # --- what the library trains with -----------------------------------------------------
    def build_tokenizer(self, text: str, train_text: str) -> Tokenizer:
        """The characters of the whole ``text``, or BPE merges learned from ``train_text`` only.

        The character vocabulary comes from the whole text, as nanoGPT does: the validation
        part may hold a character the training part never shows, which a vocabulary of the
        training part alone could not encode. Only the set of characters is shared.
        """
        from course_lib.tokenizers import BPETokenizer, CharTokenizer

        if self.tokenizer == "char":
            return CharTokenizer.from_text(text)
        if self.tokenizer == "bpe":
            vocab_size = self.vocab_size or DEFAULT_BPE_VOCAB
            if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 257:
                raise ConfigError("vocab_size", f"vocab_size={vocab_size!r}: byte-level BPE starts from 256 byte "
                                                "tokens, so ask for at least 257 (e.g. 512)")
            return BPETokenizer.train(train_text, vocab_size, pattern="gpt2")
        raise ConfigError("tokenizer", f"unknown tokenizer {self.tokenizer!r}: choose one of {', '.join(TOKENIZERS)}")

    def model_config(self, vocab_size: int) -> GPTConfig:
        """GPTConfig.classic or .modern with the recipe's shape and ``vocab_size`` tokens.

        ``n_kv_head`` and ``bias`` left at None take the architecture's default. A setting
        that cannot work raises :class:`ConfigError` naming the recipe field(s).
        """
        from course_lib.model import GPTConfig

        for name in ("n_layer", "n_head", "n_embd", "block_size"):
            check_int(name, getattr(self, name), low=1)
        if self.n_kv_head is not None:
            check_int("n_kv_head", self.n_kv_head, low=1)
        if self.arch not in ARCHS:
            raise ConfigError("arch", f"unknown arch {self.arch!r}: choose one of {', '.join(ARCHS)}")
        if not is_finite_number(self.dropout) or not 0 <= self.dropout < 1:
            raise ConfigError("dropout", f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.bias not in (None, True, False):
            raise ConfigError("bias", f"bias must be True, False or None (the arch's default), got {self.bias!r}")
        shape: dict[str, Any] = dict(vocab_size=vocab_size, n_layer=self.n_layer, n_head=self.n_head,
                                     n_embd=self.n_embd, block_size=self.block_size, dropout=self.dropout)
        for name in ("n_kv_head", "bias"):  # None: the architecture's own default
            if getattr(self, name) is not None:
                shape[name] = getattr(self, name)
        factory = GPTConfig.modern if self.arch == "modern" else GPTConfig.classic
        try:
            return factory(**shape)
        except ConfigError:
            raise
        except ValueError as err:
            # every field passed the checks above on its own, so what GPTConfig refuses is how
            # the heads share the width: n_embd by n_head, query heads by key/value heads
            heads = ("n_head", "n_kv_head") if self.n_kv_head is not None else ("n_head",)
            raise ConfigError((*heads, "n_embd"), str(err)) from None

    def train_config(self, **runtime: Any) -> TrainConfig:
        """The TrainConfig of the recipe's optimisation settings, plus ``runtime`` ones.

        ``runtime`` sets TrainConfig fields a recipe does not hold: ``checkpoint_dir``,
        ``progress``, ``dtype``, ``compile``, ``log_every``... AdamW's beta1 is the usual 0.9.
        A setting that cannot work raises :class:`ConfigError` naming the recipe field
        (``beta2``, where TrainConfig says ``betas``).

        >>> cfg = PRESETS["shakespeare-char-cpu"].train_config(progress=False)
        >>> cfg.betas, cfg.max_iters, cfg.checkpoint_dir
        ((0.9, 0.99), 6000, None)
        """
        from course_lib.schedule import TrainConfig

        settings: dict[str, Any] = dict(
            max_iters=self.max_iters, batch_size=self.batch_size, lr=self.lr, min_lr=self.min_lr,
            warmup_iters=self.warmup_iters, weight_decay=self.weight_decay, betas=(0.9, self.beta2),
            grad_clip=self.grad_clip, optimizer=self.optimizer, muon_lr=self.muon_lr, eval_interval=self.eval_interval, eval_iters=self.eval_iters, seed=self.seed,
        )  # fmt: skip
        clash = sorted(set(settings) & set(runtime))
        if clash:
            raise TypeError(f"{', '.join(clash)}: recipe settings, not runtime ones; change them on the recipe, "
                            f"e.g. dataclasses.replace(recipe, {_RECIPE_NAME.get(clash[0], clash[0])}=...)")
        try:
            return TrainConfig(**settings, **runtime)
        except ConfigError as err:
            raise ConfigError([_RECIPE_NAME.get(f, f) for f in err.fields], str(err)) from None


PRESETS: dict[str, Recipe] = {
    # Tuned for the fastest fall of the validation loss per second on a 2-core CPU, from
    # short runs compared at equal tokens and the step times measured on an idle machine
    # (bench/bench_training.py measures the result). On a CPU a token costs about the same
    # whatever the batch (1,024 to 2,048 tokens a step: 37,000-40,000 tokens/s here), so
    # what counts is how much the model learns per token and what a token costs:
    # - the modern layout learned far more per token: val 1.88 after 1M tokens at batch 16,
    #   against 2.05 for the classic layout with the same settings;
    # - 2 layers (the fewest that can form induction heads) cost half as much per token as
    #   4 and learned almost as much: 1.86-1.88 after 1M tokens, against ~1.85 for 4 layers;
    #   3 layers and width 96 did worse per second;
    # - batches of 8 to 16 windows of 128 learned about equally per token (8 x 256 and
    #   32 x 128 less); lr 2e-3 to 4e-3 were within seed-to-seed noise (~0.02), 6e-3 was
    #   worse by 0.03; no clipping (+0.03), a 30-step warm-up or no weight decay did not help.
    "shakespeare-char-cpu": Recipe(
        description="a 2-layer Llama-style GPT on tiny Shakespeare characters, tuned for a 2-core CPU",
        arch="modern",  # RoPE, RMSNorm, SwiGLU, no biases; 2 key/value heads for 4 query heads
        n_layer=2,  # 0.40M parameters
        n_head=4,
        n_embd=128,
        block_size=64,  # context 128 costs 25% more per token and did worse at equal time
        dropout=0.0,  # a few passes over the text: little overfitting to fight
        batch_size=24,  # 24 x 64 = 1,536 tokens a step
        max_iters=6000,  # 9.2M tokens, 9 passes over the training text. bench/bench_presets.py:
        # 1.503 nats/char on day 16's yardstick, against 1.535 for context 128 x 4,000 steps
        lr=3e-3,  # 5e-3 did worse
        min_lr=3e-5,  # the cosine decays to lr / 100
        warmup_iters=100,
        weight_decay=0.1,
        beta2=0.99,
        grad_clip=1.0,
        eval_interval=500,
        eval_iters=20,  # 2 splits x 20 x 1,536 tokens per evaluation, ~2% of the run
    ),
    # nanoGPT's README command for a CPU, on top of config/train_shakespeare_char.py and
    # train.py's defaults: bias=False, beta2=0.99, weight_decay=0.1, grad_clip=1.0,
    # lr_decay_iters = max_iters = 2000, gradient_accumulation_steps=1, eval_interval=250.
    "shakespeare-char-nanogpt": Recipe(
        description="nanoGPT's CPU recipe for Shakespeare characters, setting for setting",
        arch="classic",
        n_layer=4,
        n_head=4,
        n_embd=128,
        block_size=64,
        dropout=0.0,
        bias=False,
        batch_size=12,
        max_iters=2000,
        lr=1e-3,
        min_lr=1e-4,
        warmup_iters=100,
        weight_decay=0.1,
        beta2=0.99,
        grad_clip=1.0,
        eval_interval=250,
        eval_iters=20,
        seed=1337,
    ),
}


def get_preset(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name raises a KeyError listing the known ones."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}: choose one of {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


_RECIPE_NAME = {"betas": "beta2"}  # TrainConfig field -> the recipe field that sets it
