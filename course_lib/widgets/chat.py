"""Part 3: a chat box for a fine-tuned model: a text field, a send button and the transcript.

    box = chat_box(session)        # a course_lib.chat.ChatSession
    box.send("Who art thou?")      # what the send button does: the reply joins the transcript
    box                            # displays in a notebook

Where no kernel runs (the built book), the output shows :meth:`ChatBox.static_html`: the
transcript as it stood when the cell ran, marked as a recording, without a dead text box.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from course_lib.widgets.static import StaticFallback

_STYLE = ("font-family: var(--jp-code-font-family, monospace); font-size: 13px; white-space: pre-wrap; "
          "border: 1px solid #ccc; border-radius: 4px; padding: 6px 10px; max-width: 720px")  # fmt: skip


def transcript_html(turns: list[tuple[str, str]], note: str = "") -> str:
    """A conversation as HTML: each (role, text) on its own line, the user's in bold."""
    rows = []
    for role, text in turns:
        who = "you" if role == "user" else "assistant"
        weight = "bold" if role == "user" else "normal"
        rows.append(f'<div style="margin: 3px 0"><span style="color: #666">{who}:</span> '
                    f'<span style="font-weight: {weight}">{html.escape(text)}</span></div>')  # fmt: skip
    body = "".join(rows) or '<div style="color: #666">(no messages yet)</div>'
    caption = f'<div style="color: #666; margin-bottom: 4px">{html.escape(note)}</div>' if note else ""
    return f'<div style="{_STYLE}">{caption}{body}</div>'


class ChatBox(StaticFallback, widgets.VBox):
    """The widget returned by :func:`chat_box`: ``text_input``, ``send_button``, ``reset_button``,
    ``transcript`` (an HTML widget); ``turns`` lists (role, text) pairs."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.turns: list[tuple[str, str]] = []
        self.text_input = widgets.Text(placeholder="type a message, then press Enter or send",
                                       continuous_update=False, layout=widgets.Layout(width="560px"))  # fmt: skip
        self.send_button = widgets.Button(description="send", button_style="primary")
        self.reset_button = widgets.Button(description="reset", tooltip="forget the conversation")
        self.status = widgets.HTML()
        self.transcript = widgets.HTML(transcript_html(self.turns))
        self.send_button.on_click(lambda _: self._send_from_box())
        self.text_input.observe(lambda _: self._send_from_box(), "value")  # Enter (or leaving the box) sends
        self.reset_button.on_click(lambda _: self.reset())
        controls = widgets.HBox([self.text_input, self.send_button, self.reset_button])
        super().__init__([self.transcript, controls, self.status])

    def _send_from_box(self) -> None:
        text = self.text_input.value
        self.text_input.value = ""
        if text.strip():
            self.send(text)

    def send(self, text: str) -> str:
        """Send ``text`` to the session; the reply (or the reason there is none) joins the transcript."""
        try:
            turn = self.session.reply(text)
        except ValueError as err:  # e.g. a character the tokenizer cannot read
            self.status.value = f'<span style="color: #b00">{html.escape(str(err))}</span>'
            return ""
        self.turns += [("user", text), ("assistant", turn.text)]
        dropped = f"; {turn.dropped_turns} older messages left out to fit the context" if turn.dropped_turns else ""
        self.status.value = (f'<span style="color: #666">{turn.n_tokens} tokens in {turn.seconds:.2f} s; the model '
                             f"read {turn.prompt_tokens} tokens{dropped}</span>")  # fmt: skip
        self.transcript.value = transcript_html(self.turns)
        return turn.text

    def reset(self) -> None:
        """Forget the conversation and clear the transcript."""
        self.session.reset()
        self.turns = []
        self.status.value = ""
        self.transcript.value = transcript_html(self.turns)

    def static_html(self) -> str:
        note = "a recorded conversation (in JupyterLab this is a chat box: type below it and press Enter)"
        return transcript_html(self.turns, note)


def chat_box(session: Any) -> ChatBox:
    """A chat widget for a :class:`course_lib.chat.ChatSession`."""
    return ChatBox(session)
