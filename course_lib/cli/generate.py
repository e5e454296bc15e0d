"""Day 21: ``python -m course_lib generate`` and ``chat``: text streamed from a checkpoint.

Tokens are printed as soon as they are sampled. A byte-level BPE token can hold half of a
multi-byte character (``"é"`` is two bytes), so printing each token's own decoding would
show broken characters. :class:`TextStream` decodes the whole growing continuation and
prints only the new suffix, holding back a trailing U+FFFD (an incomplete character) until
the next token completes it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import TextIO

import torch

from course_lib.cli import UsageError
from course_lib.cli.common import load_for_inference, pick_device, tokenizer_kind
from course_lib.tokenizers import CharTokenizer, Tokenizer

REPLACEMENT = "\ufffd"  # what decode() shows for bytes that are not (yet) a whole character


class TextStream:
    """Turn token ids, one at a time, into printable text without breaking characters.

    >>> from course_lib.tokenizers import CharTokenizer
    >>> s = TextStream(CharTokenizer.from_text("abc"))
    >>> s.push(0) + s.push(2) + s.flush()
    'ac'
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.printed = ""  # always a prefix of decode(ids)

    def push(self, token_id: int) -> str:
        """Add one id; return the text that is now complete and not yet returned."""
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids).rstrip(REPLACEMENT)  # hold an incomplete character back
        return self._advance(text)

    def flush(self) -> str:
        """The rest, incomplete characters included (shown as U+FFFD): call at the end."""
        return self._advance(self.tokenizer.decode(self.ids))

    def _advance(self, text: str) -> str:
        if not text.startswith(self.printed) or len(text) <= len(self.printed):
            return ""
        new, self.printed = text[len(self.printed) :], text
        return new


@dataclass
class Sampling:
    """The settings chat's commands change."""

    max_new_tokens: int
    temperature: float
    top_k: int | None
    top_p: float | None


@dataclass
class Reply:
    """What one generation produced."""

    text: str
    n_tokens: int
    seconds: float


def _check(s: Sampling) -> None:
    if s.max_new_tokens < 0:
        raise UsageError(f"max new tokens must be >= 0, got {s.max_new_tokens}.")
    if s.temperature < 0:
        raise UsageError(f"temperature must be >= 0 (0 = greedy), got {s.temperature}.")
    if s.top_k is not None and s.top_k < 1:
        raise UsageError(f"top-k must be a positive integer, got {s.top_k}.")
    if s.top_p is not None and not 0.0 < s.top_p <= 1.0:
        raise UsageError(f"top-p must be in (0, 1], got {s.top_p}.")


def encode_prompt(tok: Tokenizer, prompt: str) -> list[int]:
    """The prompt's token ids; a prompt the tokenizer cannot read is a UsageError saying why.

    Called before anything is printed, so that an error never runs into a half-written line.
    """
    if isinstance(tok, CharTokenizer) and tok.unknown_id is None:
        unknown = sorted(set(prompt) - set(tok.stoi))
        if unknown:
            listed = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unknown[:10])
            listed += f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise UsageError("the prompt has characters that are not in the vocabulary of this "
                             f"checkpoint's char tokenizer ({tok.vocab_size} characters, those of its training "
                             f"text): {listed}. A character-level model can only read characters it was trained "
                             "on: leave them out or replace them, or train with --tokenizer bpe, which reads "
                             "any text.")  # fmt: skip
    try:
        ids = tok.encode(prompt)
    except ValueError as err:
        raise UsageError(f"the prompt cannot be encoded: {err}") from None
    if not ids:
        raise UsageError("the prompt is empty after encoding: give at least one character.")
    return ids


def stream_reply(model: torch.nn.Module, tok: Tokenizer, ids: list[int], s: Sampling, use_cache: bool,
                 generator: torch.Generator | None, out: TextIO) -> Reply:  # fmt: skip
    """Continue the prompt ``ids`` (from :func:`encode_prompt`), writing the new text to ``out``
    as it comes; return what was written."""
    device = next(model.parameters()).device
    idx = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
    stream, pieces, n = TextStream(tok), [], 0
    start = time.perf_counter()
    for token in model.generate_stream(idx, s.max_new_tokens, s.temperature, s.top_k, s.top_p,
                                       use_cache=use_cache, generator=generator):  # fmt: skip
        n += 1
        piece = stream.push(int(token[0]))
        if piece:
            out.write(piece)
            out.flush()
            pieces.append(piece)
    seconds = time.perf_counter() - start
    rest = stream.flush()
    out.write(rest)
    out.flush()
    return Reply("".join(pieces) + rest, n, seconds)


def _generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    return None if seed is None else torch.Generator(device=device).manual_seed(seed)


def run_generate(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    s = Sampling(args.max_new_tokens, args.temperature, args.top_k, args.top_p)
    _check(s)
    ckpt, tok = load_for_inference(args.ckpt, device)
    ids = encode_prompt(tok, args.prompt)  # every check done before the first character is printed
    sys.stdout.write(args.prompt)
    stream_reply(ckpt.model, tok, ids, s, not args.no_cache, _generator(args.seed, device), sys.stdout)
    sys.stdout.write("\n")
    return 0


HELP = """commands:
  /temp X     sampling temperature (0 = greedy)
  /tokens N   tokens per reply
  /topk K     sample among the K most likely tokens (0 or off: no limit)
  /topp P     nucleus sampling with probability P (1 or off: no limit)
  /stats      tokens generated, speed of the last reply, model size, device
  /help       this list
  /quit       leave (end of input works too)
any other line is a prompt for the model to continue."""


_EXPECTED = {int: "give a whole number", float: "give a number"}


def _optional(value: str, kind: type, off: float) -> float | int | None:
    return None if value.lower() in ("off", "none") or kind(value) == off else kind(value)


def _command(line: str, s: Sampling, stats: str) -> str:
    """Apply a chat command to ``s``; return what to print."""
    name, _, value = line.partition(" ")
    value = value.strip()
    setters = {"/temp": ("temperature", float), "/tokens": ("max_new_tokens", int),
               "/topk": ("top_k", int), "/topp": ("top_p", float)}  # fmt: skip
    if name == "/help":
        return HELP
    if name == "/stats":
        return stats
    if name not in setters:
        return f"unknown command {name!r}\n{HELP}"
    field, kind = setters[name]
    old = getattr(s, field)
    try:
        new = _optional(value, kind, 0 if name == "/topk" else 1.0) if name in ("/topk", "/topp") else kind(value)
        setattr(s, field, new)
        _check(s)
    except (ValueError, UsageError) as err:
        setattr(s, field, old)
        return f"{name} {value!r}: {err if isinstance(err, UsageError) else _EXPECTED[kind]}"
    return f"{field.replace('_', ' ')} = {new}"


def run_chat(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    s = Sampling(args.max_new_tokens, args.temperature, args.top_k, args.top_p)
    _check(s)
    ckpt, tok = load_for_inference(args.ckpt, device)
    model, generator = ckpt.model, _generator(args.seed, device)
    n_params = sum(p.numel() for p in model.parameters())
    total, last = 0, Reply("", 0, 0.0)
    interactive = sys.stdin.isatty()
    print(f"chat with {ckpt.path} ({tokenizer_kind(tok)} tokenizer, {n_params:,} parameters, {device}); "
          "/help lists the commands.", flush=True)
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:  # end of input
            break
        line = line.rstrip("\r\n")
        if line.strip() == "/quit":
            break
        if line.startswith("/"):
            speed = last.n_tokens / last.seconds if last.seconds > 0 else 0.0
            stats = (f"tokens generated: {total:,} (last reply {last.n_tokens:,}, {speed:,.1f} tokens/s); "
                     f"model parameters: {n_params:,}; device: {device}")
            print(_command(line.strip(), s, stats), flush=True)
            continue
        if not line:
            continue
        if not interactive:
            print(f"> {line}")
        try:
            last = stream_reply(model, tok, encode_prompt(tok, line), s, not args.no_cache, generator, sys.stdout)
        except UsageError as err:
            print(f"error: {err}", flush=True)
            continue
        total += last.n_tokens
        print(flush=True)
    return 0
