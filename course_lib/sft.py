"""Part 3: supervised fine-tuning (SFT) of a pre-trained GPT on conversations.

Three things, each small:

- **Data, derived from TinyShakespeare's own structure** (:func:`speeches`,
  :func:`speaker_questions`, :func:`continuation_requests`): every speech starts with its
  speaker's name, so the text itself answers questions such as "Who says this line, GREMIO or
  TRANIO?". Training questions come from the training split, held-out questions from the
  validation split (other scenes, other plays), so a right answer is not a memorised one.
- **The masked loss** (:func:`masked_cross_entropy`): the model reads the whole
  conversation but is graded only on the assistant's tokens; what the user wrote is given,
  not predicted.
- **The loop** (:func:`fine_tune`): AdamW with decay on matrices only, linear warm-up and
  cosine decay, gradient clipping, on padded batches of conversations (:class:`SFTData`).

>>> s = speeches("GREMIO:\\nGood morrow.\\n\\nBAPTISTA:\\nGood morrow, Gremio.\\nAnd you.\\n")
>>> [(x.speaker, x.lines) for x in s]
[('GREMIO', ('Good morrow.',)), ('BAPTISTA', ('Good morrow, Gremio.', 'And you.'))]
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.chat import END, Message, encode_chat
from course_lib.schedule import configure_optimizer, lr_at
from course_lib.tokenizers import ChatTokenizer

__all__ = ["Example", "FineTuneConfig", "SFTData", "Speech", "answer_questions", "choice_log_probs",
           "continuation_requests", "fine_tune", "fits", "next_speaker_questions", "shown_speakers", "frequency_baseline", "masked_cross_entropy",
           "speaker_questions", "speeches"]  # fmt: skip

_SPEAKER = re.compile(r"[A-Z][A-Z' ]*[A-Z]:")  # "GREMIO:", "KING RICHARD III:", "LADY CAPULET:"


@dataclass(frozen=True)
class Speech:
    """One speech: who speaks, its lines, and its place in the text (0, 1, 2, ...)."""

    speaker: str
    lines: tuple[str, ...]
    index: int


def speeches(text: str) -> list[Speech]:
    """The speeches of a TinyShakespeare text: blocks between blank lines that open with "NAME:".

    A block cut by the start or end of a split (no name line) is skipped.
    """
    out: list[Speech] = []
    for block in text.split("\n\n"):
        lines = block.strip("\n").split("\n")
        if len(lines) >= 2 and _SPEAKER.fullmatch(lines[0]):
            body = tuple(line for line in lines[1:] if line.strip())
            if body:
                out.append(Speech(lines[0][:-1], body, len(out)))
    return out


QUESTION = "Who says this, {a} or {b}?\n{line}"
NEXT_SPEAKER = "Who speaks next?\n{scene}"
CONTINUE = "Continue this speech as {speaker}:\n{line}"


@dataclass(frozen=True)
class Example:
    """A conversation for fine-tuning or evaluation, with what it asks and the right answer."""

    messages: tuple[Message, ...]
    task: str  # "speaker" or "continue"
    answer: str  # the assistant's reply
    choices: tuple[str, ...] = ()  # the names offered, for a speaker question

    @property
    def prompt(self) -> str:
        return self.messages[0].content


def speaker_questions(text: str, *, seed: int = 0, window: int = 10, max_line_chars: int = 60,
                      min_line_chars: int = 12) -> list[Example]:  # fmt: skip
    """One two-choice question per speech: "Who says this, A or B?" and one of its lines.

    One name is the speaker's; the other is a different speaker of a speech within
    ``window`` speeches of it (the same scene, as a rule), and a seeded coin decides which
    name comes first. The line is the speech's first line between ``min_line_chars`` and
    ``max_line_chars`` long; a speech without one, or with no other speaker near it, gives
    no question. The same text and seed always give the same questions.
    """
    rng = random.Random(seed)
    all_speeches = speeches(text)
    out: list[Example] = []
    for s in all_speeches:
        line = next((x for x in s.lines if min_line_chars <= len(x) <= max_line_chars), None)
        near = all_speeches[max(0, s.index - window) : s.index + window + 1]
        others = sorted({x.speaker for x in near} - {s.speaker})
        if line is None or not others:
            continue
        other = rng.choice(others)
        a, b = (s.speaker, other) if rng.random() < 0.5 else (other, s.speaker)
        question = Message("user", QUESTION.format(a=a, b=b, line=line))
        out.append(Example((question, Message("assistant", s.speaker)), "speaker", s.speaker, (a, b)))
    return out


def _snippet(line: str, max_chars: int) -> str:
    """The start of ``line``, cut at a word boundary to at most ``max_chars`` characters."""
    if len(line) <= max_chars:
        return line
    head, space, _ = line[: max_chars + 1].rpartition(" ")
    return head if space and head else line[:max_chars]


def next_speaker_questions(text: str, *, n_context: int = 2, snippet_chars: int = 20) -> list[Example]:
    """"Who speaks next?" after the last ``n_context`` speeches, each shown as "NAME: the start of its first line".

    The answer is the speaker of the speech that follows them in the text. One question per
    speech that has ``n_context`` speeches before it; a line is cut at a word boundary to at most
    ``snippet_chars`` characters, so that the question fits a small model's context;
    ``snippet_chars=0`` shows the names alone.
    """
    all_speeches = speeches(text)
    out: list[Example] = []
    for i in range(n_context, len(all_speeches)):
        before = all_speeches[i - n_context : i]
        shown = [s.speaker if snippet_chars == 0 else f"{s.speaker}: {_snippet(s.lines[0], snippet_chars)}"
                 for s in before]  # fmt: skip
        ask = Message("user", NEXT_SPEAKER.format(scene="\n".join(shown)))
        speaker = all_speeches[i].speaker
        out.append(Example((ask, Message("assistant", speaker)), "next speaker", speaker))
    return out


def shown_speakers(question: Example) -> list[str]:
    """The speakers a "Who speaks next?" question shows, oldest first."""
    return [line.split(":")[0] for line in question.prompt.split("\n")[1:]]


def continuation_requests(text: str, *, max_line_chars: int = 60) -> list[Example]:
    """"Continue this speech as NAME:" with a speech's first line; the answer is its second line."""
    out: list[Example] = []
    for s in speeches(text):
        if len(s.lines) >= 2 and len(s.lines[0]) <= max_line_chars and len(s.lines[1]) <= max_line_chars:
            ask = Message("user", CONTINUE.format(speaker=s.speaker, line=s.lines[0]))
            out.append(Example((ask, Message("assistant", s.lines[1])), "continue", s.lines[1]))
    return out


def fits(tok: ChatTokenizer, example: Example, block_size: int) -> bool:
    """Whether the conversation, with any of the offered answers, fits a context of ``block_size``:
    the model reads at most ``block_size`` tokens to predict the last one."""
    prompt, _ = encode_chat(tok, example.messages[:1], add_generation_prompt=True)
    answers = example.choices or (example.answer,)
    longest = max(len(tok.encode_ordinary(a)) for a in answers)
    return len(prompt) + longest + 1 <= block_size + 1  # + 1: the closing <|end|>


def frequency_baseline(questions: Sequence[Example], train_text: str) -> float:
    """Accuracy of always naming the candidate with more speeches in ``train_text`` (the majority class).

    A tie goes to the first name offered.
    """
    counts = Counter(s.speaker for s in speeches(train_text))
    right = sum(max(q.choices, key=lambda name: counts[name]) == q.answer for q in questions)
    return right / len(questions)


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the positions where ``mask`` is True.

    logits (B, T, V), targets (B, T), mask (B, T) bool. Positions outside the mask (the
    user's words, the template's markers, padding) add nothing to the loss or its gradient.
    """
    if not bool(mask.any()):
        raise ValueError("the mask selects no position: a batch needs at least one assistant token")
    losses = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none")  # (B*T,)
    return losses[mask.flatten()].mean()


@dataclass
class SFTData:
    """Conversations as padded tensors: ``ids`` (N, L) and the assistant ``mask`` (N, L).

    Every conversation is encoded with the template; those longer than ``block_size + 1``
    tokens are left out (``n_dropped`` counts them). Rows are padded with ``<|end|>``, masked off.
    """

    ids: torch.Tensor
    mask: torch.Tensor
    n_dropped: int = 0

    @classmethod
    def build(cls, tok: ChatTokenizer, examples: Sequence[Example], block_size: int) -> SFTData:
        encoded = [encode_chat(tok, ex.messages) for ex in examples]
        kept = [(i, m) for i, m in encoded if len(i) <= block_size + 1]
        if not kept:
            raise ValueError(f"no conversation fits in block_size + 1 = {block_size + 1} tokens: use shorter "
                             "examples or a model with a longer context")  # fmt: skip
        length = max(len(i) for i, _ in kept)
        pad = tok.special_id(END)
        ids = torch.full((len(kept), length), pad, dtype=torch.long)
        mask = torch.zeros((len(kept), length), dtype=torch.bool)
        for row, (i, m) in enumerate(kept):
            ids[row, : len(i)] = torch.tensor(i)
            mask[row, : len(m)] = torch.tensor(m)
        return cls(ids, mask, len(encoded) - len(kept))

    def __len__(self) -> int:
        return self.ids.size(0)

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inputs (B, L-1), targets (B, L-1) and the mask on the targets (B, L-1) for ``rows``."""
        ids, mask = self.ids[rows], self.mask[rows]
        return ids[:, :-1], ids[:, 1:], mask[:, 1:]


@dataclass(frozen=True)
class FineTuneConfig:
    """The fine-tuning recipe: fewer steps and a smaller learning rate than pre-training."""

    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 30
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: give a whole number >= 1")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise ValueError(f"lr={self.lr}, min_lr={self.min_lr}: need lr > 0 and 0 <= min_lr <= lr")


@dataclass
class FineTuneHistory:
    """The masked loss of every step, and the wall time."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def fine_tune(model: nn.Module, data: SFTData, config: FineTuneConfig = FineTuneConfig(),
              callback=None) -> FineTuneHistory:  # fmt: skip
    """Train ``model`` on ``data`` with the masked loss; return the loss of every step.

    Batches are drawn with a generator seeded by ``config.seed`` (rows sampled with
    replacement), so the same model, data and config give the same run. ``callback(step,
    loss)`` is called after each step.
    """
    import time

    device = next(model.parameters()).device
    opt = configure_optimizer(model, config.weight_decay, config.lr, config.betas, device)
    g = torch.Generator().manual_seed(config.seed)
    history = FineTuneHistory()
    model.train()
    start = time.perf_counter()
    for step in range(config.steps):
        lr = lr_at(step, config.lr, config.min_lr, config.warmup_iters, config.steps)
        for group in opt.param_groups:
            group["lr"] = lr
        rows = torch.randint(len(data), (config.batch_size,), generator=g)
        x, y, m = (t.to(device) for t in data.batch(rows))
        logits, _ = model(x)
        loss = masked_cross_entropy(logits, y, m)
        if not math.isfinite(loss.item()):  # before the update: the weights stay as they were
            raise FloatingPointError(f"the loss became {loss.item()} at step {step}: lower config.lr")
        loss.backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        history.losses.append(loss.item())
        if callback is not None:
            callback(step, history.losses[-1])
    history.seconds = time.perf_counter() - start
    model.eval()
    return history


@torch.no_grad()
def answer_questions(model: nn.Module, tok: ChatTokenizer, questions: Sequence[Example], *,
                     max_new_tokens: int = 24) -> list[str]:  # fmt: skip
    """Greedy replies to the first message of each question, one question at a time.

    Each prompt is ``<|user|>question<|end|><|assistant|>``; a reply ends at ``<|end|>``.
    """
    end = tok.special_id(END)
    device = next(model.parameters()).device
    model.eval()
    replies: list[str] = []
    for q in questions:
        prompt = encode_chat(tok, q.messages[:1], add_generation_prompt=True)[0]
        out = _greedy(model, prompt, max_new_tokens, end, device)
        replies.append(tok.decode([t for t in out if t < tok.base_vocab_size]))
    return replies


def _greedy(model: nn.Module, prompt: list[int], max_new_tokens: int, end: int, device: torch.device) -> list[int]:
    idx = torch.tensor([prompt], device=device)
    out = model.generate(idx, max_new_tokens, temperature=0, eos_id=end)[0, len(prompt) :].tolist()
    return out[: out.index(end)] if end in out else out


@torch.no_grad()
def choice_log_probs(model: nn.Module, tok: ChatTokenizer, question: Example) -> list[float]:
    """The log-probability the model gives each offered answer (its tokens and ``<|end|>``) after the prompt.

    Multiple choice scored by likelihood: no generation, so a model that has not learned
    the format can still show what it knows. One forward pass per choice.
    """
    prompt, _ = encode_chat(tok, question.messages[:1], add_generation_prompt=True)
    device = next(model.parameters()).device
    end = tok.special_id(END)
    model.eval()  # no dropout: the same question always gets the same scores
    scores = []
    for choice in question.choices:
        ids = prompt + tok.encode_ordinary(choice) + [end]
        logp = model(torch.tensor([ids[:-1]], device=device))[0][0].float().log_softmax(-1)  # (T - 1, V)
        targets = torch.tensor(ids[len(prompt) :], device=device)
        scores.append(float(logp[len(prompt) - 1 :].gather(1, targets[:, None]).sum()))
    return scores
