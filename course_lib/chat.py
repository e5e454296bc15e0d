"""Part 3: a chat template, a model grown for its tokens, and a multi-turn chat session.

A base model continues text. To answer, it is shown conversations written in a
**template**: each turn opens with a role marker and closes with an end-of-turn marker,
all three of them new special tokens::

    <|user|>Who says this, GREMIO or TRANIO?
    Good morrow, neighbour Baptista.<|end|><|assistant|>GREMIO<|end|>

>>> from course_lib.tokenizers import CharTokenizer
>>> tok = add_chat_tokens(CharTokenizer.from_text("abc"))
>>> ids, mask = encode_chat(tok, [Message("user", "ab"), Message("assistant", "c")])
>>> tok.decode(ids)
'<|user|>ab<|end|><|assistant|>c<|end|>'
>>> [int(m) for m in mask]  # the assistant's words and its end marker: what fine-tuning teaches
[0, 0, 0, 0, 0, 1, 1]

:func:`grow_vocab` gives a pre-trained GPT rows for the new ids (the old rows untouched);
:class:`ChatSession` keeps a conversation, fits it into the context window and streams
replies until the model ends its turn.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from course_lib.model.generation import SamplingSettings
from course_lib.tokenizers import ChatTokenizer, Tokenizer

USER, ASSISTANT, END = "<|user|>", "<|assistant|>", "<|end|>"
CHAT_TOKENS = (USER, ASSISTANT, END)
ROLES = {"user": USER, "assistant": ASSISTANT}

__all__ = ["ASSISTANT", "CHAT_TOKENS", "END", "USER", "ChatSession", "Message", "add_chat_tokens",
           "encode_chat", "grow_vocab", "render_chat"]  # fmt: skip


@dataclass(frozen=True)
class Message:
    """One turn: ``role`` is "user" or "assistant"."""

    role: str
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role {self.role!r}: a message is from 'user' or 'assistant'")
        if not isinstance(self.content, str):
            raise ValueError(f"content must be text, got {type(self.content).__name__}")


def add_chat_tokens(tok: Tokenizer) -> ChatTokenizer:
    """``tok`` with the three chat tokens after its last id (a tokenizer that has them is returned as it is)."""
    if isinstance(tok, ChatTokenizer):
        if list(tok.special_tokens) != list(CHAT_TOKENS):
            raise ValueError(f"the tokenizer has the special tokens {list(tok.special_tokens)}, not the chat "
                             f"template's {list(CHAT_TOKENS)}")  # fmt: skip
        return tok
    return ChatTokenizer(tok, CHAT_TOKENS)


def encode_chat(tok: ChatTokenizer, messages: Sequence[Message], *,
                add_generation_prompt: bool = False) -> tuple[list[int], list[bool]]:  # fmt: skip
    """The ids of a conversation in the template, and for each id whether it is the assistant's.

    ``mask[i]`` is True for the assistant's content and its closing ``<|end|>``: the tokens a
    fine-tuned model must learn to produce (its role marker is the template's, not its own).
    ``add_generation_prompt`` appends ``<|assistant|>``: the prompt for the model's next reply.
    People's text is encoded as plain text, so typing ``<|end|>`` cannot end a turn.
    """
    ids: list[int] = []
    mask: list[bool] = []
    end = tok.special_id(END)
    for m in messages:
        content = tok.encode_ordinary(m.content)
        mine = m.role == "assistant"
        ids += [tok.special_id(ROLES[m.role]), *content, end]
        mask += [False] + [mine] * (len(content) + 1)
    if add_generation_prompt:
        ids.append(tok.special_id(ASSISTANT))
        mask.append(False)
    return ids, mask


def render_chat(messages: Sequence[Message], *, add_generation_prompt: bool = False) -> str:
    """The template as text (what ``tok.decode(encode_chat(...)[0])`` gives)."""
    text = "".join(f"{ROLES[m.role]}{m.content}{END}" for m in messages)
    return text + (ASSISTANT if add_generation_prompt else "")


@torch.no_grad()
def grow_vocab(model: nn.Module, vocab_size: int) -> nn.Module:
    """Give ``model`` (a course GPT) ``vocab_size`` ids, in place; the old rows keep their values.

    Each new embedding row starts as the mean of the old rows: a new token then looks like
    an average token rather than a random vector, so the first fine-tuning steps do not
    push the model's predictions anywhere extreme. With an untied ``lm_head``, its new rows
    start the same way. ``model.config.vocab_size`` is updated, so checkpoints record it.
    """
    old = model.config.vocab_size
    if vocab_size < old:
        raise ValueError(f"vocab_size={vocab_size} is smaller than the model's {old}: a vocabulary only grows")
    if vocab_size == old:
        return model
    emb = model.embed_tokens.weight
    new_emb = nn.Embedding(vocab_size, emb.size(1), device=emb.device, dtype=emb.dtype)
    new_emb.weight[:old] = emb
    new_emb.weight[old:] = emb.mean(0)
    tied = model.lm_head.weight is model.embed_tokens.weight
    model.embed_tokens = new_emb
    head = model.lm_head.weight
    model.lm_head = nn.Linear(head.size(1), vocab_size, bias=False, device=head.device, dtype=head.dtype)
    if tied:
        model.lm_head.weight = model.embed_tokens.weight
    else:
        model.lm_head.weight[:old] = head
        model.lm_head.weight[old:] = head.mean(0)
    model.config = dataclasses.replace(model.config, vocab_size=vocab_size)
    return model


@dataclass
class Turn:
    """What :meth:`ChatSession.reply` produced: the text, its tokens, how long it took."""

    text: str
    n_tokens: int
    seconds: float
    prompt_tokens: int  # tokens of the conversation the model read (after fitting it in the window)
    dropped_turns: int  # old messages left out to fit the window


class ChatSession:
    """A conversation with a fine-tuned model: the history, fitted into the context window.

    Each :meth:`reply` encodes the history with the template and a generation prompt. When
    that is longer than the room left for the reply (``max_new_tokens``, at most half the
    window: a longer reply slides the window past the prompt) the oldest messages are left out,
    whole, and a single message too long by itself is cut from the left, so that the model
    always sees the newest text and has room to answer. The reply stops at ``<|end|>``.
    """

    def __init__(self, model: nn.Module, tok: ChatTokenizer, settings: SamplingSettings | None = None,
                 generator: torch.Generator | None = None) -> None:  # fmt: skip
        missing = [t for t in CHAT_TOKENS if t not in getattr(tok, "special_tokens", {})]
        if missing:
            raise ValueError(f"the tokenizer has no {missing} tokens: this is a base model, not a fine-tuned "
                             "chat model; fine-tune it first (Part 3, the assistant chapter)")  # fmt: skip
        if model.config.vocab_size < tok.vocab_size:
            raise ValueError(f"the model has {model.config.vocab_size} ids and the tokenizer {tok.vocab_size}: "
                             "grow the model's vocabulary with grow_vocab(model, tok.vocab_size)")  # fmt: skip
        self.model, self.tok, self.generator = model, tok, generator
        self.settings = settings or SamplingSettings(max_new_tokens=64, temperature=0.0)
        self.history: list[Message] = []
        self.last_prompt: list[int] = []  # the ids the model read for the last reply
        self.last_reply_ids: list[int] = []  # the ids it generated, the closing marker included
        self.last_turn: Turn | None = None  # the last complete reply

    def reset(self) -> None:
        """Forget the conversation."""
        self.history.clear()
        self.last_prompt, self.last_reply_ids = [], []

    def explain(self, top: int = 5) -> str:
        """:func:`explain` for the last reply."""
        return explain(self.model, self.tok, self.last_prompt, self.last_reply_ids, top)

    def prompt_ids(self, messages: Sequence[Message]) -> tuple[list[int], int]:
        """The ids the model reads for ``messages`` (and how many old messages were left out)."""
        if not messages:
            raise ValueError("no messages: a prompt needs at least the user's message")
        block = self.model.config.block_size
        room = block - min(self.settings.max_new_tokens, block // 2)  # a reply longer than half slides the window
        for start in range(len(messages)):
            ids, _ = encode_chat(self.tok, messages[start:], add_generation_prompt=True)
            if len(ids) <= room:
                return ids, start
        ids, _ = encode_chat(self.tok, messages[-1:], add_generation_prompt=True)
        return ids[-room:], len(messages) - 1  # the newest message, cut from the left

    def stream(self, text: str) -> Iterator[str]:
        """Add the user's ``text``; yield the reply's text as it is generated; keep the reply.

        The history and ``last_turn`` change when the reply is complete: a stream closed early
        leaves the conversation as it was.
        """
        from course_lib.cli.generate import TextStream

        messages = [*self.history, Message("user", text)]
        ids, dropped = self.prompt_ids(messages)
        self.last_prompt = ids
        end = self.tok.special_id(END)
        s = dataclasses.replace(self.settings, eos_id=end)
        device = next(self.model.parameters()).device
        idx = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
        stream, reply_ids = TextStream(self.tok), []
        self.model.eval()
        start = time.perf_counter()
        self.last_reply_ids = []
        for token in self.model.generate_stream(idx, settings=s, generator=self.generator):
            t = int(token[0])
            self.last_reply_ids.append(t)
            if t >= self.tok.base_vocab_size:  # <|end|>, or a marker that would open a new turn
                break
            reply_ids.append(t)
            piece = stream.push(t)
            if piece:
                yield piece
        rest = stream.flush()
        if rest:
            yield rest
        reply = self.tok.decode(reply_ids)
        self.history = [*messages, Message("assistant", reply)]
        self.last_turn = Turn(reply, len(reply_ids), time.perf_counter() - start, len(ids), dropped)

    def reply(self, text: str) -> Turn:
        """Add the user's ``text`` and return the whole reply."""
        for _ in self.stream(text):
            pass
        return self.last_turn


def show_token(tok: Tokenizer, token_id: int) -> str:
    """One token as readable text: special tokens as they are, others quoted with escapes (``'\\n'``)."""
    text = tok.decode([token_id])
    if token_id >= getattr(tok, "base_vocab_size", tok.vocab_size):
        return text
    return repr(text)


@torch.no_grad()
def explain(model: nn.Module, tok: Tokenizer, prompt_ids: Sequence[int], reply_ids: Sequence[int],
            top: int = 5) -> str:  # fmt: skip
    """How the prompt was tokenized, and at each reply step the model's most likely next tokens.

    The probabilities are the model's own (softmax of its logits, temperature 1, before any
    top-k or top-p), recomputed in one forward pass over prompt + reply: the same numbers the
    sampler started from at each step. Steps beyond the context window are not shown.
    """
    if not prompt_ids:
        return "nothing to explain yet: send a message first"
    block = model.config.block_size
    lines = [f"the prompt: {len(prompt_ids)} tokens (the context window holds {block})",
             "  " + " ".join(f"[{show_token(tok, int(i))}]" for i in prompt_ids)]  # fmt: skip
    seq = [*prompt_ids, *reply_ids][:block]
    n_steps = len(seq) - len(prompt_ids)
    if n_steps <= 0 or not reply_ids:
        return "\n".join([*lines, "no reply tokens to explain"])
    device = next(model.parameters()).device
    logits, _ = model(torch.tensor([seq[:-1]], device=device))  # (1, T - 1, V): the last token predicts nothing
    probs = torch.softmax(logits[0].float(), dim=-1)  # (T, V)
    lines.append(f"each reply token, with the model's top {top} probabilities at that step (temperature 1):")
    for j in range(n_steps):
        p = probs[len(prompt_ids) - 1 + j]  # the distribution the j-th reply token was drawn from
        values, ids = p.topk(min(top, p.numel()))
        chosen = int(seq[len(prompt_ids) + j])
        alts = "  ".join(f"{show_token(tok, int(i))} {v:.2f}" for v, i in zip(values.tolist(), ids.tolist()))
        lines.append(f"  {j + 1:>3}. chose {show_token(tok, chosen)} ({float(p[chosen]):.2f})  |  {alts}")
    return "\n".join(lines)
