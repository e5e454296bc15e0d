"""Day 21: ``python -m course_lib generate`` and ``chat``: text streamed from a checkpoint.

Tokens are printed as soon as they are sampled. A byte-level BPE token can hold half of a
multi-byte character (``"é"`` is two bytes), so printing each token's own decoding would
show broken characters. :class:`TextStream` decodes the whole growing continuation and
prints only the new suffix, holding back a trailing U+FFFD (an incomplete character) until
the next token completes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from typing import TextIO

import torch

from course_lib.cli import UsageError
from course_lib.cli.common import load_for_inference, pick_device, tokenizer_kind
from course_lib.model.generation import SamplingError, SamplingSettings
from course_lib.tokenizers import CharTokenizer, Tokenizer, UnknownCharacterError

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
class Reply:
    """What one generation produced."""

    text: str
    n_tokens: int
    seconds: float
    ids: list[int] = dataclasses.field(default_factory=list)  # the generated token ids


FLAGS = {"max_new_tokens": "--max-new-tokens", "temperature": "--temperature", "top_k": "--top-k",
         "top_p": "--top-p"}  # fmt: skip


def settings_from_args(args: argparse.Namespace) -> SamplingSettings:
    """The sampling flags as a SamplingSettings; a bad value is a UsageError naming its flag."""
    try:
        return SamplingSettings(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                top_k=args.top_k, top_p=args.top_p, use_cache=not args.no_cache)  # fmt: skip
    except SamplingError as err:
        flag = FLAGS[err.setting]
        off = f"; leave {flag} out for no limit" if err.setting in ("top_k", "top_p") else ""
        raise UsageError(f"{flag} must be {err.rule}, got {err.value}{off}.") from None


def _not_in_vocabulary(tok: CharTokenizer, err: UnknownCharacterError) -> UsageError:
    """The char tokenizer's error, said for the command line: every unknown character, what to do."""
    unknown = sorted(err.characters)
    listed = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unknown[:10])
    listed += f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
    return UsageError("the prompt has characters that are not in the vocabulary of this checkpoint's char "
                      f"tokenizer ({tok.vocab_size} characters, those of its training text): {listed}. A "
                      "character-level model can only read characters it was trained on: leave them out or "
                      "replace them, or train with --tokenizer bpe, which reads any text.")  # fmt: skip


def encode_prompt(tok: Tokenizer, prompt: str) -> list[int]:
    """The prompt's token ids; a prompt the tokenizer cannot read is a UsageError saying why.

    Called before anything is printed, so that an error never runs into a half-written line.
    """
    try:
        ids = tok.encode(prompt)
    except UnknownCharacterError as err:
        raise _not_in_vocabulary(tok, err) from None
    except ValueError as err:
        raise UsageError(f"the prompt cannot be encoded: {err}") from None
    if not ids:
        raise UsageError("the prompt is empty after encoding: give at least one character.")
    return ids


def stream_reply(model: torch.nn.Module, tok: Tokenizer, ids: list[int], s: SamplingSettings,
                 generator: torch.Generator | None, out: TextIO) -> Reply:  # fmt: skip
    """Continue the prompt ``ids`` (from :func:`encode_prompt`), writing the new text to ``out``
    as it comes; return what was written."""
    device = next(model.parameters()).device
    idx = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
    stream, pieces, n = TextStream(tok), [], 0
    start = time.perf_counter()
    for token in model.generate_stream(idx, settings=s, generator=generator):
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
    return Reply("".join(pieces) + rest, n, seconds, stream.ids)


def _generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    return None if seed is None else torch.Generator(device=device).manual_seed(seed)


def run_generate(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    s = settings_from_args(args)
    ckpt, tok = load_for_inference(args.ckpt, device)
    ids = encode_prompt(tok, args.prompt)  # every check done before the first character is printed
    sys.stdout.write(args.prompt)
    stream_reply(ckpt.model, tok, ids, s, _generator(args.seed, device), sys.stdout)
    sys.stdout.write("\n")
    return 0


HELP = """commands:
  /temp X     sampling temperature (0 = greedy)
  /tokens N   tokens per reply
  /topk K     sample among the K most likely tokens (0 or off: no limit)
  /topp P     nucleus sampling with probability P (1 or off: no limit)
  /stats      tokens generated, speed of the last reply, context used, model size, device
  /explain    how the last prompt was tokenized, and the model's top next tokens at each step of its reply
  /reset      forget the conversation
  /help       this list
  /quit       leave (end of input works too)
any other line is your message; end a line with \\ to go on with the message on the next line."""


_EXPECTED = {int: "give a whole number", float: "give a number"}
COMMANDS = {"/temp": ("temperature", float), "/tokens": ("max_new_tokens", int),
            "/topk": ("top_k", int), "/topp": ("top_p", float)}  # fmt: skip
_OFF = {"/topk": 0, "/topp": 1.0}  # the value that, like "off", means no limit


def _parse(name: str, value: str) -> float | int | None:
    kind = COMMANDS[name][1]
    if name in _OFF and value.lower() in ("off", "none"):
        return None
    number = kind(value)  # a ValueError for text that is not a number
    return None if name in _OFF and number == _OFF[name] else number


def _command(line: str, s: SamplingSettings, stats: str) -> tuple[SamplingSettings, str]:
    """Apply a chat command to ``s``: the settings from now on (``s`` itself when refused), and what to print."""
    name, _, value = line.partition(" ")
    value = value.strip()
    if name == "/help":
        return s, HELP
    if name == "/stats":
        return s, stats
    if name not in COMMANDS:
        return s, f"unknown command {name!r}\n{HELP}"
    field, kind = COMMANDS[name]
    try:
        new = _parse(name, value)
    except ValueError:
        return s, f"{name} {value!r}: {_EXPECTED[kind]}"
    try:
        s = dataclasses.replace(s, **{field: new})
    except SamplingError as err:
        old = getattr(s, field)
        return s, (f"{name} {value!r}: {field.replace('_', ' ')} must be {err.rule}; it stays "
                   f"{'off' if old is None else old}.")  # fmt: skip
    return s, f"{field.replace('_', ' ')} = {'off' if new is None else new}"


def run_chat(args: argparse.Namespace) -> int:
    """A conversation with a fine-tuned checkpoint (its tokenizer has the chat template's tokens);
    with a base model, each line is continued as text and nothing is remembered."""
    from course_lib.chat import CHAT_TOKENS, ChatSession

    device = pick_device(args.device)
    s = settings_from_args(args)
    ckpt, tok = load_for_inference(args.ckpt, device)
    model, generator = ckpt.model, _generator(args.seed, device)
    n_params = sum(p.numel() for p in model.parameters())
    is_chat = all(t in getattr(tok, "special_tokens", {}) for t in CHAT_TOKENS)
    session = ChatSession(model, tok, s, generator) if is_chat else None
    total, last = 0, Reply("", 0, 0.0)
    last_prompt: list[int] = []
    interactive = sys.stdin.isatty()
    kind = tokenizer_kind(tok) + (" + chat template" if is_chat else "")
    mode = ("each message is answered by the assistant; the conversation is kept within the "
            f"{model.config.block_size}-token context" if is_chat else
            "a base model: each line is continued as text, nothing is remembered (fine-tune it to chat: "
            "Part 3's assistant chapter)")  # fmt: skip
    print(f"chat with {ckpt.path} ({kind} tokenizer, {n_params:,} parameters, {device}); {mode}. "
          "/help lists the commands.", flush=True)  # fmt: skip
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:  # end of input
            break
        line = line.rstrip("\r\n")
        while line.endswith("\\") and session is not None:  # a message of several lines
            more = sys.stdin.readline()
            line = line[:-1] + "\n" + more.rstrip("\r\n")
            if not more:
                break
        command = line.strip()
        if command == "/quit":
            break
        if command.startswith("/"):
            if not interactive:
                print(f"> {command}")
            if command == "/reset":
                if session is not None:
                    session.reset()
                print("the conversation is forgotten" if session is not None else
                      "a base model keeps no conversation: nothing to forget", flush=True)  # fmt: skip
                continue
            if command.split(" ")[0] == "/explain":
                if session is not None:
                    print(session.explain(), flush=True)
                else:
                    from course_lib.chat import explain

                    print(explain(model, tok, last_prompt, last.ids), flush=True)
                continue
            speed = last.n_tokens / last.seconds if last.seconds > 0 else 0.0
            stats = (f"tokens generated: {total:,} (last reply {last.n_tokens:,}, {speed:,.1f} tokens/s); "
                     f"model parameters: {n_params:,}; device: {device}")
            if session is not None:
                used = len(session.last_prompt)
                stats += (f"; conversation: {len(session.history)} messages, the last prompt {used} of "
                          f"{model.config.block_size} tokens")  # fmt: skip
            s, reply = _command(command, s, stats)
            if session is not None:
                session.settings = s
            print(reply, flush=True)
            continue
        if not line:
            continue
        if not interactive:
            print("> " + line.replace("\n", "\n  "))
        try:
            if session is not None:
                last = _chat_reply(session, line, sys.stdout)
            else:
                last_prompt = encode_prompt(tok, line)
                last = stream_reply(model, tok, last_prompt, s, generator, sys.stdout)
        except UsageError as err:
            print(f"error: {err}", flush=True)
            continue
        total += last.n_tokens
        print(flush=True)
    return 0


def _chat_reply(session, line: str, out: TextIO) -> Reply:
    """Stream the assistant's answer to ``line``; a message the tokenizer cannot read is a UsageError."""
    tok = session.tok
    try:
        tok.encode_ordinary(line)
    except UnknownCharacterError as err:
        raise _not_in_vocabulary(tok.base, err) from None
    out.write("assistant: ")
    for piece in session.stream(line):
        out.write(piece)
        out.flush()
    turn = session.last_turn
    if turn.dropped_turns:
        out.write(f"\n({turn.dropped_turns} earlier messages no longer fit the context and were left out)")
    return Reply(turn.text, turn.n_tokens, turn.seconds, list(session.last_reply_ids))
