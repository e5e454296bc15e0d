"""Part 3's assistant: the chat tokenizer, the template and its mask, the grown model, the
masked loss, the fine-tuning loop, the data recipe and the chat session.

References: Hugging Face ``tokenizers`` (the same ids with the special tokens added),
``F.cross_entropy`` with ``ignore_index`` (the masked loss), hand-counted masks, and the
un-grown model (the old logits after growing the vocabulary).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib import sft
from course_lib.chat import ASSISTANT, CHAT_TOKENS, END, USER, ChatSession, Message, add_chat_tokens, encode_chat, \
    grow_vocab, render_chat  # fmt: skip
from course_lib.model import GPT, GPTConfig
from course_lib.model.generation import SamplingSettings
from course_lib.tokenizers import BPETokenizer, CharTokenizer, ChatTokenizer, from_dict

TEXT = ("GREMIO:\nGood morrow, neighbour Baptista.\n\nBAPTISTA:\nGood morrow, neighbour Gremio.\nGod save you.\n\n"
        "PETRUCHIO:\nAnd you, good sir! Pray, have you not a daughter\nCall'd Katharina, fair and virtuous?\n\n"
        "BAPTISTA:\nI have a daughter, sir, called Katharina.\n\nGREMIO:\nYou are too blunt: go to it orderly.\n")  # fmt: skip


@pytest.fixture(scope="module")
def bases():
    char = CharTokenizer.from_text(TEXT + "?W" + "Continue this speech as")
    bpe = BPETokenizer.train(TEXT * 3, 300, pattern="gpt2", special_tokens=["<|endoftext|>"])
    return {"char": char, "bpe": bpe}


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_chat_tokens_keep_every_old_id(bases, kind):
    base = bases[kind]
    tok = add_chat_tokens(base)
    assert tok.base_vocab_size == base.vocab_size and tok.vocab_size == base.vocab_size + 3
    assert [tok.special_id(t) for t in CHAT_TOKENS] == [base.vocab_size, base.vocab_size + 1, base.vocab_size + 2]
    for line in TEXT.split("\n"):
        assert tok.encode(line) == base.encode(line)
    assert tok.decode(list(range(base.vocab_size))) == base.decode(list(range(base.vocab_size)))
    assert add_chat_tokens(tok) is tok


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_template_round_trip(bases, kind):
    tok = add_chat_tokens(bases[kind])
    messages = [Message("user", "Good morrow?"), Message("assistant", "God save you."), Message("user", "And you")]
    ids, mask = encode_chat(tok, messages, add_generation_prompt=True)
    text = render_chat(messages, add_generation_prompt=True)
    assert text == "<|user|>Good morrow?<|end|><|assistant|>God save you.<|end|><|user|>And you<|end|><|assistant|>"
    assert tok.decode(ids) == text
    assert tok.encode(text, allowed_special="all") == ids
    assert len(mask) == len(ids)
    # the Hugging Face tokenizer with the same tokens added gives the same ids
    assert tok.to_hf().encode(text).ids == ids
    again = from_dict(tok.to_dict())
    assert isinstance(again, ChatTokenizer) and again.encode(text, allowed_special="all") == ids


def test_mask_by_hand():
    tok = add_chat_tokens(CharTokenizer.from_text("abc"))  # a=0 b=1 c=2 user=3 assistant=4 end=5
    ids, mask = encode_chat(tok, [Message("user", "ab"), Message("assistant", "ca"), Message("user", "b"),
                                  Message("assistant", "c")])  # fmt: skip
    assert ids == [3, 0, 1, 5, 4, 2, 0, 5, 3, 1, 5, 4, 2, 5]
    assert mask == [False, False, False, False, False, True, True, True, False, False, False, False, True, True]


def test_special_strings_in_text_are_refused_or_plain(bases):
    tok = add_chat_tokens(bases["bpe"])
    with pytest.raises(ValueError, match="special token '<\\|end\\|>'"):
        tok.encode("so <|end|> it")
    ids, _ = encode_chat(tok, [Message("user", "so <|end|> it")])
    assert ids.count(tok.special_id(END)) == 1  # only the template's own end of turn
    with pytest.raises(ValueError, match="already a ChatTokenizer"):
        ChatTokenizer(tok, ["<|x|>"])
    with pytest.raises(ValueError, match="already special tokens"):
        ChatTokenizer(bases["bpe"], ["<|endoftext|>"])
    with pytest.raises(ValueError, match="role"):
        Message("system", "hi")


def tiny_model(vocab_size, tie=True, seed=0, block_size=48):
    torch.manual_seed(seed)
    cfg = GPTConfig.modern(vocab_size=vocab_size, block_size=block_size, n_layer=1, n_head=2, n_embd=32,
                           tie_weights=tie)  # fmt: skip
    return GPT(cfg)


@pytest.mark.parametrize("tie", [True, False])
def test_grow_vocab_keeps_old_logits(tie):
    model = tiny_model(20, tie=tie)
    x = torch.randint(0, 20, (2, 10))
    before = model(x)[0]
    grow_vocab(model, 23)
    after = model(x)[0]
    assert after.shape == (2, 10, 23) and model.config.vocab_size == 23
    torch.testing.assert_close(after[..., :20], before, rtol=0, atol=0)
    assert (model.lm_head.weight is model.embed_tokens.weight) == tie
    torch.testing.assert_close(model.embed_tokens.weight[21], model.embed_tokens.weight[:20].mean(0))
    with pytest.raises(ValueError, match="only grows"):
        grow_vocab(model, 10)


def test_masked_loss_against_ignore_index():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7, requires_grad=True)
    targets = torch.randint(0, 7, (2, 5))
    mask = torch.tensor([[0, 1, 1, 0, 0], [0, 0, 0, 1, 0]], dtype=torch.bool)
    loss = sft.masked_cross_entropy(logits, targets, mask)
    ref = F.cross_entropy(logits.flatten(0, 1), targets.masked_fill(~mask, -100).flatten(), ignore_index=-100)
    torch.testing.assert_close(loss, ref)
    by_hand = -sum(F.log_softmax(logits[b, t], -1)[targets[b, t]] for b, t in [(0, 1), (0, 2), (1, 3)]) / 3
    torch.testing.assert_close(loss, by_hand)
    loss.backward()
    assert logits.grad[~mask].abs().max() == 0 and logits.grad[mask].abs().max() > 0
    with pytest.raises(ValueError, match="no position"):
        sft.masked_cross_entropy(logits, targets, torch.zeros_like(mask))


def test_speeches_and_questions():
    s = sft.speeches(TEXT)
    assert [x.speaker for x in s] == ["GREMIO", "BAPTISTA", "PETRUCHIO", "BAPTISTA", "GREMIO"]
    assert s[2].lines == ("And you, good sir! Pray, have you not a daughter", "Call'd Katharina, fair and virtuous?")
    qs = sft.speaker_questions(TEXT, seed=3)
    assert qs == sft.speaker_questions(TEXT, seed=3) and len(qs) == 5
    for q, speech in zip(qs, s):
        assert q.answer == speech.speaker and q.answer in q.choices and len(set(q.choices)) == 2
        assert q.prompt == f"Who says this, {q.choices[0]} or {q.choices[1]}?\n{speech.lines[0]}"
    assert {q.choices.index(q.answer) for q in sft.speaker_questions(TEXT * 20, seed=0)} == {0, 1}
    cont = sft.continuation_requests(TEXT)
    assert [c.answer for c in cont] == ["God save you.", "Call'd Katharina, fair and virtuous?"]
    # BAPTISTA has 2 speeches, GREMIO 2, PETRUCHIO 1: naming the more frequent candidate
    q = sft.Example((Message("user", "?"),), "speaker", "PETRUCHIO", ("GREMIO", "PETRUCHIO"))
    assert sft.frequency_baseline([q], TEXT) == 0.0


def test_next_speaker_questions():
    qs = sft.next_speaker_questions(TEXT)
    assert [q.answer for q in qs] == ["PETRUCHIO", "BAPTISTA", "GREMIO"]
    assert qs[0].prompt == "Who speaks next?\nGREMIO: Good morrow,\nBAPTISTA: Good morrow,"  # cut at 20 characters
    assert qs[1].prompt.endswith("PETRUCHIO: And you, good sir!")  # 29 characters: cut to "And you, good sir!"
    assert sft.next_speaker_questions(TEXT, n_context=3, snippet_chars=0)[0].prompt == \
        "Who speaks next?\nGREMIO\nBAPTISTA\nPETRUCHIO"  # fmt: skip
    assert sft._snippet("abcdefghijklmnopqrstuvwxyz", 5) == "abcde"  # no space to cut at
    assert [sft.shown_speakers(q) for q in qs] == [["GREMIO", "BAPTISTA"], ["BAPTISTA", "PETRUCHIO"],
                                                  ["PETRUCHIO", "BAPTISTA"]]  # fmt: skip


def test_sft_data_pads_and_masks():
    tok = add_chat_tokens(CharTokenizer.from_text(TEXT + "?W" + "Continue this speech as"))
    examples = sft.speaker_questions(TEXT, seed=0)
    data = sft.SFTData.build(tok, examples, block_size=200)
    assert len(data) == 5 and data.n_dropped == 0
    ids0, mask0 = encode_chat(tok, examples[0].messages)
    assert data.ids[0, : len(ids0)].tolist() == ids0 and data.mask[0].sum() == sum(mask0)
    x, y, m = data.batch(torch.tensor([0, 1]))
    assert torch.equal(x[:, 1:], y[:, :-1]) and m.shape == y.shape
    assert tok.decode(y[0][m[0]].tolist()) == examples[0].answer + END
    lengths = sorted(len(encode_chat(tok, ex.messages)[0]) for ex in examples)
    short = sft.SFTData.build(tok, examples, block_size=lengths[2] - 1)
    assert short.n_dropped == sum(n > lengths[2] for n in lengths) > 0 and short.ids.size(1) == lengths[2]
    with pytest.raises(ValueError, match="no conversation fits"):
        sft.SFTData.build(tok, examples, block_size=lengths[0] - 2)


def test_fine_tune_lowers_the_masked_loss_and_is_reproducible():
    tok = add_chat_tokens(CharTokenizer.from_text(TEXT + "?W" + "Continue this speech as"))
    data = sft.SFTData.build(tok, sft.continuation_requests(TEXT) + sft.speaker_questions(TEXT), 128)
    assert data.n_dropped == 0

    def run():
        model = grow_vocab(tiny_model(tok.base_vocab_size, block_size=128), tok.vocab_size)
        return sft.fine_tune(model, data, sft.FineTuneConfig(steps=40, batch_size=4, lr=3e-3, warmup_iters=4))

    a, b = run(), run()
    assert a.losses == b.losses
    assert sum(a.losses[-5:]) / 5 < 0.7 * sum(a.losses[:5]) / 5


def test_chat_session_fits_the_window():
    tok = add_chat_tokens(CharTokenizer.from_text(TEXT + "?W" + "Continue this speech as"))
    model = grow_vocab(tiny_model(tok.base_vocab_size), tok.vocab_size)
    session = ChatSession(model, tok, SamplingSettings(max_new_tokens=8, temperature=0.0))
    room = model.config.block_size - 8
    first = session.reply("Good morrow?")
    assert first.dropped_turns == 0 and len(session.history) == 2
    long = "Good morrow, neighbour Baptista. " * 2  # 66 characters: more than the room by itself
    for turn_no in range(1, 4):
        turn = session.reply(long)
        assert len(session.last_prompt) <= room and turn.prompt_tokens == len(session.last_prompt)
        assert turn.dropped_turns == 2 * turn_no  # everything before the newest message
    assert len(session.history) == 8
    assert tok.decode(session.last_prompt).endswith(long[-10:] + END + ASSISTANT)
    session.reset()
    assert session.history == []
    with pytest.raises(ValueError, match="base model"):
        ChatSession(model, CharTokenizer.from_text(TEXT))


def test_chat_session_stops_at_the_end_of_turn():
    tok = add_chat_tokens(CharTokenizer.from_text(TEXT + "?W" + "Continue this speech as"))
    model = grow_vocab(tiny_model(tok.base_vocab_size), tok.vocab_size)
    end, a, b = tok.special_id(END), *tok.encode("Go")
    seen = {}

    def fake_stream(idx, settings, generator):
        seen["eos"], seen["prompt"] = settings.eos_id, idx[0].tolist()
        return iter(torch.tensor([t]) for t in (a, b, end, a))

    model.generate_stream = fake_stream
    session = ChatSession(model, tok)
    assert session.reply("Who?").text == "Go" and seen["eos"] == end
    assert seen["prompt"] == encode_chat(tok, [Message("user", "Who?")], add_generation_prompt=True)[0]
    assert session.history[-1] == Message("assistant", "Go") and USER in tok.special_tokens


@pytest.fixture(scope="module")
def chat_checkpoint(tmp_path_factory):
    """A tiny model fine-tuned for a few steps on the template, saved with its chat tokenizer."""
    from course_lib.checkpoint import save_checkpoint

    tok = add_chat_tokens(CharTokenizer.from_text(TEXT + "?W" + "Continue this speech as"))
    model = grow_vocab(tiny_model(tok.base_vocab_size, block_size=128), tok.vocab_size)
    data = sft.SFTData.build(tok, sft.continuation_requests(TEXT), 128)
    sft.fine_tune(model, data, sft.FineTuneConfig(steps=5, batch_size=2, warmup_iters=1))
    return save_checkpoint(tmp_path_factory.mktemp("chat"), model, step=5, tokenizer=tok.to_dict()), tok


def test_a_chat_checkpoint_reloads_with_its_tokenizer(chat_checkpoint):
    from course_lib.checkpoint import load_checkpoint

    path, tok = chat_checkpoint
    ckpt = load_checkpoint(path)
    again = ckpt.require_tokenizer()
    assert isinstance(again, ChatTokenizer) and again.special_tokens == tok.special_tokens
    assert ckpt.model.config.vocab_size == tok.vocab_size


def test_cli_chat_keeps_a_history_inside_the_window(chat_checkpoint, monkeypatch, capsys):
    import io

    from course_lib.checkpoint import load_checkpoint
    from course_lib.cli import main

    path, tok = chat_checkpoint
    long = "Good morrow, neighbour Baptista. Good morrow, neighbour Gremio."  # 62 characters
    lines = ["Good morrow?", "/explain", "/stats", long, long, "/tokens 3", "And you?", "/reset", "/reset", "/bogus",
             "/help"]  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["chat", "--ckpt", str(path), "--max-new-tokens", "6", "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert "chat template" in out and out.count("assistant: ") == 4
    # the same replies from a ChatSession driven directly
    session = ChatSession(load_checkpoint(path).model, tok, SamplingSettings(max_new_tokens=6, temperature=0.0))
    expected = [session.reply(m).text for m in ("Good morrow?", long, long)]
    session.settings = SamplingSettings(max_new_tokens=3, temperature=0.0)
    expected.append(session.reply("And you?").text)
    for text in expected:
        assert f"assistant: {text}" in out
    assert "earlier messages no longer fit the context" in out  # the second long message pushed the first out
    assert "the prompt:" in out and "chose" in out  # /explain
    assert "conversation: 2 messages" in out  # /stats after the first reply
    assert "max new tokens = 3" in out and out.count("the conversation is forgotten") == 2
    assert "unknown command '/bogus'" in out and "/explain" in out


def test_cli_chat_refuses_characters_it_cannot_read(chat_checkpoint, monkeypatch, capsys):
    import io

    from course_lib.checkpoint import load_checkpoint
    from course_lib.cli import main

    path, tok = chat_checkpoint
    monkeypatch.setattr("sys.stdin", io.StringIO("Good morrow \u00e9\nGood\\\nmorrow?\n"))
    assert main(["chat", "--ckpt", str(path), "--max-new-tokens", "4", "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert "not in the vocabulary" in out and out.count("assistant: ") == 1
    assert "> Good\n  morrow?\n" in out  # a line ending in a backslash goes on on the next line
    session = ChatSession(load_checkpoint(path).model, tok, SamplingSettings(max_new_tokens=4, temperature=0.0))
    assert f"assistant: {session.reply('Good' + chr(10) + 'morrow?').text}" in out


def test_chat_box_sends_resets_and_shows_a_recording():
    pytest.importorskip("ipywidgets")
    from course_lib.widgets.chat import chat_box

    tok = add_chat_tokens(CharTokenizer.from_text(TEXT + "?W" + "Continue this speech as"))
    model = grow_vocab(tiny_model(tok.base_vocab_size), tok.vocab_size)
    session = ChatSession(model, tok, SamplingSettings(max_new_tokens=5, temperature=0.0))
    box = chat_box(session)
    reference = ChatSession(model, tok, SamplingSettings(max_new_tokens=5, temperature=0.0)).reply("Good morrow?")
    box.text_input.value = "Good morrow?"  # what pressing Enter does: the value changes, the message is sent
    assert box.turns == [("user", "Good morrow?"), ("assistant", reference.text)]
    assert box.text_input.value == "" and "tokens in" in box.status.value
    assert "Good morrow?" in box.transcript.value and "a recorded conversation" in box.static_html()
    box.text_input.value = "And you?"  # a second message joins the same conversation
    assert len(box.turns) == 4 and len(session.history) == 4
    box.send_button.click()  # with the box empty the button sends nothing
    assert len(box.turns) == 4
    assert box.send("\u00e9") == "" and "not in the vocabulary" in box.status.value and len(box.turns) == 4
    bundle = box._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "text/html" in data and "application/vnd.jupyter.widget-view+json" in data
    box.reset()
    assert box.turns == [] and session.history == [] and "no messages yet" in box.transcript.value


def test_user_text_never_becomes_a_special_token_of_the_base(bases):
    tok = add_chat_tokens(bases["bpe"])  # the base has <|endoftext|> of its own
    ids, _ = encode_chat(tok, [Message("user", "so <|endoftext|> it")])
    assert bases["bpe"].special_tokens["<|endoftext|>"] not in ids
    assert tok.decode(ids) == "<|user|>so <|endoftext|> it<|end|>"


def test_fine_tune_stops_before_a_non_finite_update():
    tok = add_chat_tokens(CharTokenizer.from_text(TEXT + "?W" + "Continue this speech as"))
    model = grow_vocab(tiny_model(tok.base_vocab_size, block_size=128), tok.vocab_size)
    data = sft.SFTData.build(tok, sft.continuation_requests(TEXT), 128)
    with torch.no_grad():
        model.norm.weight.fill_(float("nan"))
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(FloatingPointError, match="lower config.lr"):
        sft.fine_tune(model, data, sft.FineTuneConfig(steps=3, batch_size=2))
    for p, q in zip(model.parameters(), before):  # no update was applied
        torch.testing.assert_close(p, q, rtol=0, atol=0, equal_nan=True)
    with pytest.raises(ValueError, match="no messages"):
        ChatSession(model, tok).prompt_ids([])
