"""Tests for course_lib.widgets: what each widget shows must be what the model computes."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from course_lib.model import GPT, GPTConfig, SamplingSettings
from course_lib.tokenizers import BPETokenizer, CharTokenizer
from course_lib.trainer import EvalRecord, TrainConfig, Trainer

try:
    from course_lib.widgets import (
        TrainingMonitor,
        attention_explorer,
        attention_explorer_html,
        bpe_merge_stepper,
        encode_with_merges,
        merge_states,
        sampling_playground,
        stepper_html,
    )
    from course_lib.widgets._render import COLOUR_JS, colour_array, weight_colour

    HAVE_IPYWIDGETS = True
except ImportError:  # only the test that course_lib works without ipywidgets can run
    HAVE_IPYWIDGETS = False

TEXT = "ROMEO: But soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun."
TOK = CharTokenizer.from_text(TEXT + "<>/cpx")
PRESETS = {"classic": GPTConfig.classic, "modern": GPTConfig.modern}


@pytest.fixture(autouse=True)
def needs_ipywidgets(request: pytest.FixtureRequest) -> None:
    if not HAVE_IPYWIDGETS and request.node.name != "test_course_lib_imports_without_ipywidgets":
        pytest.skip("ipywidgets is not installed: pip install ipywidgets")


def tiny_model(kind: str, seed: int = 0) -> GPT:
    """2 layers x 2 heads; init_std=0.5 makes the heads' attention clearly different."""
    torch.manual_seed(seed)
    cfg = PRESETS[kind](vocab_size=TOK.vocab_size, n_layer=2, n_head=2, n_embd=16, block_size=32, init_std=0.5)
    return GPT(cfg).eval()


def model_attention(model: GPT, text: str, n: int = 32) -> np.ndarray:
    """Reference: (L, nh, T, T) straight from the model's forward pass."""
    idx = torch.tensor([TOK.encode(text)[:n]])
    with torch.no_grad():
        _, _, att = model(idx, return_attention=True)
    return att[:, 0].numpy()


def shown_weights(heatmap_html: str) -> list[float]:
    return [float(w) for w in re.findall(r'data-w="([0-9.]+)"', heatmap_html)]


# -- attention explorer (ipywidgets) --------------------------------------------------
@pytest.mark.parametrize("kind", ["classic", "modern"])
def test_sliders_show_the_models_attention(kind: str) -> None:
    model = tiny_model(kind)
    ref = model_attention(model, TEXT)  # (2, 2, 32, 32)
    w = attention_explorer(model, TOK, TEXT)
    seen = []
    for layer in range(2):
        for head in range(2):
            w.layer_slider.value, w.head_slider.value = layer, head
            np.testing.assert_allclose(w.current_weights, ref[layer, head], rtol=0, atol=1e-7)
            lower = ref[layer, head][np.tril_indices(32)]  # row by row, the keys each query sees
            np.testing.assert_allclose(shown_weights(w.heatmap.value), lower, atol=5e-4 + 1e-7)
            seen.append(w.current_weights.copy())
    assert not np.allclose(seen[0], seen[1]) and not np.allclose(seen[0], seen[2])  # the view really changed


def test_layer0_matches_attention_computed_by_hand() -> None:
    """Independent of the model's attention code: softmax(q k^T / sqrt(hd)) with a causal mask."""
    model = tiny_model("classic")
    ids = torch.tensor([TOK.encode(TEXT)[:32]])  # (1, T)
    with torch.no_grad():
        x = model.embed_tokens(ids) + model.embed_positions(torch.arange(32))  # (1, T, C)
        h = model.layers[0].input_layernorm(x)
        q = model.layers[0].self_attn.q_proj(h).view(32, 2, 8).transpose(0, 1)  # (nh, T, hd)
        k = model.layers[0].self_attn.k_proj(h).view(32, 2, 8).transpose(0, 1)  # (nh, T, hd)
        scores = q @ k.transpose(1, 2) / math.sqrt(8)  # (nh, T, T)
        scores = scores.masked_fill(torch.ones(32, 32).triu(1).bool(), float("-inf"))
        expected = scores.softmax(-1).numpy()  # (nh, T, T)
    w = attention_explorer(model, TOK, TEXT)
    for head in range(2):
        w.head_slider.value = head
        np.testing.assert_allclose(w.current_weights, expected[head], atol=1e-6)


def test_query_selector_shows_that_tokens_row() -> None:
    model = tiny_model("modern")
    ref = model_attention(model, TEXT)
    w = attention_explorer(model, TOK, TEXT)
    assert w.query_selector.value == 31  # the last token by default
    w.layer_slider.value, w.head_slider.value, w.query_selector.value = 1, 1, 5
    np.testing.assert_allclose(w.current_row, ref[1, 1, 5], atol=1e-7)
    bars = [float(v) for v in re.findall(r"<title>[^<]*: ([0-9.]+)</title>", w.bars.value)]
    np.testing.assert_allclose(bars, ref[1, 1, 5, :6], atol=5e-4)  # keys 0..5, the ones query 5 sees
    assert '<tr class="q"><th class="r" title="query 5">' in w.heatmap.value  # the row is outlined


def test_editing_the_text_reruns_the_model() -> None:
    model = tiny_model("classic")
    w = attention_explorer(model, TOK, TEXT)
    w.query_selector.value = 7
    w.text_input.value = "It is the east"
    assert w.current_weights.shape == (14, 14) and len(w.query_selector.options) == 14
    assert w.query_selector.value == 7  # kept when still in range
    np.testing.assert_allclose(w.attention, model_attention(model, "It is the east"), atol=1e-7)
    assert w.tokens[2] == "␣" and w.error == ""
    w.text_input.value = "ZZZ"  # 'Z' is not in the vocabulary: say so, keep the last maps
    assert "not in the vocabulary" in w.error and w.current_weights.shape == (14, 14)


def test_all_heads_grid_draws_each_head() -> None:
    model = tiny_model("modern")
    ref = model_attention(model, TEXT)
    w = attention_explorer(model, TOK, TEXT, max_tokens=20)
    w.layer_slider.value, w.all_heads_toggle.value = 1, True
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', w.heatmap.value)
    assert len(uris) == 2
    from PIL import Image

    for head, uri in enumerate(uris):
        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB"))  # (T, T, 3)
        np.testing.assert_array_equal(img, colour_array(ref[1, head, :20, :20]))


def test_max_tokens_cuts_the_text() -> None:
    w = attention_explorer(tiny_model("classic"), TOK, TEXT, max_tokens=10)
    assert w.current_weights.shape == (10, 10) and "first 10 of" in w.status.value


# -- kernel-free explorer -------------------------------------------------------------
def embedded(html_text: str) -> dict:
    blocks = re.findall(r'<script type="application/json" class="attn-data">(.*?)</script>', html_text, re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


@pytest.mark.parametrize("kind", ["classic", "modern"])
def test_html_explorer_embeds_every_layer_and_head(kind: str) -> None:
    model = tiny_model(kind)
    ref = model_attention(model, TEXT)
    out = attention_explorer_html(model, TOK, TEXT)
    data = embedded(out._repr_html_())
    assert (data["n_layer"], data["n_head"], data["scale"]) == (2, 2, 1000)
    assert data["tokens"] == [TOK.decode([i]).replace(" ", "␣").replace("\n", "↵") for i in TOK.encode(TEXT)[:32]]
    for layer in range(2):
        for head in range(2):
            rows = data["w"][layer][head]
            assert [len(r) for r in rows] == list(range(1, 33))  # causal: query i sees keys 0..i
            for i, row in enumerate(rows):
                np.testing.assert_allclose(np.array(row) / 1000, ref[layer, head, i, : i + 1], atol=1e-3)
    # without JavaScript the page shows layer 0, head 0
    np.testing.assert_allclose(shown_weights(out.html), ref[0, 0][np.tril_indices(32)], atol=1e-3)
    assert 'data-role="layer"' in out.html and 'data-role="head"' in out.html and 'class="attn-explorer"' in out.html
    assert "http" not in out.html and "require" not in out.html  # nothing fetched from elsewhere


def test_html_explorers_get_unique_ids_and_survive_markup_in_the_text() -> None:
    model = tiny_model("classic")
    a = attention_explorer_html(model, TOK, "x</script><b>")
    b = attention_explorer_html(model, TOK, "x</script><b>")
    assert a.element_id != b.element_id
    assert a.html.count(a.element_id) >= 2 and b.element_id not in a.html
    assert a.html.count("</script>") == 2 and "<b>" not in a.html  # the text cannot close a tag
    assert embedded(a.html)["tokens"][1:4] == ["<", "/", "s"]


def test_html_script_parses_and_its_colours_match_python() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    out = attention_explorer_html(tiny_model("classic"), TOK, "ROMEO")
    script = re.findall(r"<script>(.*?)</script>", out.html, re.S)[0]
    check = subprocess.run([node, "--check", "-"], input=script, text=True, capture_output=True, timeout=30)
    assert check.returncode == 0, check.stderr
    ws = [0.0, 0.001, 0.0625, 0.3, 0.5, 0.999, 1.0]
    js = COLOUR_JS + f";console.log(JSON.stringify({ws}.map(colour)))"
    run = subprocess.run([node, "-e", js], text=True, capture_output=True, timeout=30)
    assert json.loads(run.stdout) == [weight_colour(w) for w in ws]


# -- sampling playground --------------------------------------------------------------
def test_playground_distribution_follows_the_settings() -> None:
    model = tiny_model("classic")
    p = sampling_playground(model, TOK, "ROMEO:")
    with torch.no_grad():
        logits = model(torch.tensor([TOK.encode("ROMEO:")]))[0][0, -1].double().numpy()  # (V,)
    ref = np.exp(logits - logits.max())
    np.testing.assert_allclose(p.current_probs, ref / ref.sum(), atol=1e-6)
    p.temperature_slider.value = 0.5
    ref = np.exp(2 * (logits - logits.max()))
    np.testing.assert_allclose(p.current_probs, ref / ref.sum(), atol=1e-6)
    p.top_p_slider.value = 0.6  # nucleus by hand: the fewest most likely tokens reaching 0.6
    probs = ref / ref.sum()
    order = np.argsort(-probs)
    n = int(np.searchsorted(np.cumsum(probs[order]), 0.6) + 1)
    expected = np.zeros_like(probs)
    expected[order[:n]] = probs[order[:n]] / probs[order[:n]].sum()
    np.testing.assert_allclose(p.current_probs, expected, atol=1e-6)
    assert abs(p.current_probs.sum() - 1) < 1e-6
    p.top_p_slider.value, p.top_k_slider.value = 1.0, 1
    assert (p.current_probs > 0).sum() == 1 and p.current_probs.argmax() == logits.argmax()
    assert "1 of" in p.summary.value


def test_playground_samples_with_its_settings() -> None:
    model = tiny_model("modern")
    a, b = sampling_playground(model, TOK, "ROMEO:", seed=3), sampling_playground(model, TOK, "ROMEO:", seed=3)
    assert a.sample() == b.sample() and len(a.last_sample) == 200  # one character per token
    a.temperature_slider.value, a.top_k_slider.value, a.top_p_slider.value = 0.5, 5, 0.9
    assert a.settings == SamplingSettings(max_new_tokens=200, temperature=0.5, top_k=5, top_p=0.9)
    a.top_k_slider.value, a.top_p_slider.value = 0, 1.0  # 0 and 1 switch them off
    assert a.settings == SamplingSettings(max_new_tokens=200, temperature=0.5)
    a.temperature_slider.value = 0.0  # greedy = what generate gives at temperature 0
    idx = torch.tensor([TOK.encode("ROMEO:")])
    greedy = TOK.decode(model.generate(idx, 200, temperature=0.0)[0, 6:].tolist())
    assert a.sample() == greedy and html.escape(greedy) in a.output.value
    a.prompt_input.value = ""
    assert "empty" in a.error


# -- BPE merge stepper ----------------------------------------------------------------
BPE_TEXT = (TEXT + " The theatre, the thither — naïve café! ") * 4


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.train(BPE_TEXT, vocab_size=330, pattern="gpt4", special_tokens=["<|endoftext|>"])


def test_stepper_endpoints_are_bytes_and_encode(bpe: BPETokenizer) -> None:
    text = "the naïve theatre<|endoftext|>Juliet"
    s = bpe_merge_stepper(bpe, text)
    plain = text.replace("<|endoftext|>", "")
    assert encode_with_merges(bpe, plain, 0) == list(plain.encode("utf-8"))
    assert s.current_tokens == list(text[:17].encode()) + [bpe.special_tokens["<|endoftext|>"]] + list(b"Juliet")
    s.step_slider.value = len(bpe.merges)
    ids = bpe.encode(text, allowed_special="all")  # the stepper shows special tokens as their ids
    assert s.current_tokens == ids
    assert f"<b>{len(ids)}</b> tokens" in s.info.value


def test_stepper_matches_hugging_face_at_every_k(bpe: BPETokenizer) -> None:
    """Reference: a Hugging Face tokenizer built from only the first k merges."""
    text = TEXT + " naïve theatre" + "ab" * 30  # a chunk longer than 32 bytes too
    for k in [0, 1, 7, 30, len(bpe.merges) - 1, len(bpe.merges)]:
        hf = BPETokenizer(bpe.merges[:k], bpe.pattern).to_hf()
        assert encode_with_merges(bpe, text, k) == hf.encode(text).ids, k


def test_stepper_hand_worked_example() -> None:
    tok = BPETokenizer([(b"t", b"h"), (b"th", b"e"), (b"e", b"e")])
    s = bpe_merge_stepper(tok, "thee")
    got = []
    for k in range(4):
        s.step_slider.value = k
        got.append(s.current_tokens)
    assert got == [[116, 104, 101, 101], [256, 101, 101], [257, 101], [257, 101]]  # "th", "the"; "ee" comes too late
    with pytest.raises(ValueError, match="k must be in 0..3"):
        encode_with_merges(tok, "thee", 4)


# -- static stand-ins: what the book shows, where no kernel runs ----------------------
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def standins(bpe: BPETokenizer) -> dict:
    model = tiny_model("classic")
    return {"stepper": bpe_merge_stepper(bpe, "the naïve theatre"), "explorer": attention_explorer(model, TOK, TEXT),
            "playground": sampling_playground(model, TOK, "ROMEO:")}  # fmt: skip


def test_each_widget_output_carries_the_widget_and_a_static_stand_in(bpe: BPETokenizer) -> None:
    from IPython.core.formatters import DisplayFormatter

    formatter = DisplayFormatter()  # what IPython runs on a cell's last value
    for name, w in standins(bpe).items():
        data, _ = formatter.format(w)
        assert {"text/plain", WIDGET_VIEW, "text/html"} <= set(data), name
        assert data[WIDGET_VIEW]["model_id"] == w.model_id  # JupyterLab still gets the live widget
        marker = {"stepper": 'class="bpe-stepper"', "explorer": 'class="attn-explorer"', "playground": "entropy"}
        assert marker[name] in data["text/html"], name
        assert "text/html" not in formatter.format(w, exclude={"text/html"})[0]
        assert set(w._repr_mimebundle_(include={WIDGET_VIEW})) >= {WIDGET_VIEW}
    data, _ = formatter.format(TrainingMonitor().widget)  # stays a widget: its state is saved in the page
    assert WIDGET_VIEW in data and "text/html" not in data


def bpe_data(html_text: str) -> dict:
    blocks = re.findall(r'<script type="application/json" class="bpe-data">(.*?)</script>', html_text, re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


def state_at(data: dict, k: int) -> list[int]:
    """What the page's script shows at slider position k: the last state that starts at or before k."""
    return [ids for start, ids, *_ in data["steps"] if start <= k][-1]


def test_static_stepper_embeds_the_tokens_at_every_k(bpe: BPETokenizer) -> None:
    text = "the naïve theatre<|endoftext|>Juliet, the thither!\n" + TEXT[:60]
    data = bpe_data(stepper_html(bpe, text))
    n = len(bpe.merges)
    assert data["n"] == n and data["bytes"] == len(text.encode("utf-8"))
    starts = [step[0] for step in data["steps"]]
    assert starts[0] == 0 and starts == sorted(set(starts))
    for k in range(n + 1):  # every slider position, against the live widget's own function
        assert state_at(data, k) == encode_with_merges(bpe, text, k), k
    for (_, a, *_), (_, b, *_) in zip(data["steps"], data["steps"][1:]):
        assert a != b  # each stored state is a change
    for start, ids, per, last in data["steps"][1:]:
        assert per == f"{len(text.encode()) / len(ids):.2f}" and last.startswith(f"merge {start - 1}:")
    assert {int(i) for i in data["tok"]} == {i for _, ids, *_ in data["steps"] for i in ids}
    assert data["tok"][str(bpe.special_tokens["<|endoftext|>"])][0] == "<|endoftext|>"


def test_static_stepper_opens_at_encode(bpe: BPETokenizer) -> None:
    text = "the naïve theatre<|endoftext|>Juliet"
    out = stepper_html(bpe, text)
    n, ids = len(bpe.merges), bpe.encode(text, allowed_special="all")
    assert re.search(rf'data-role="merges" min="0" max="{n}" step="1" value="{n}"', out)
    assert f'data-role="view" data-k="{n}" data-tokens="{len(ids)}"' in out
    view = out.split('data-role="view"')[1].split("</div>")[0]  # drawn in Python, before any script runs
    assert [int(i) for i in re.findall(r'title="id (\d+):', view)] == ids
    assert f"{n} of {n} merges" in out and f"<b>{len(ids)}</b> tokens for {len(text.encode())} bytes" in out
    data = bpe_data(out)
    plain = list(b"the na\xc3\xafve theatre")
    assert data["steps"][0][1] == plain + [bpe.special_tokens["<|endoftext|>"]] + list(b"Juliet")  # k = 0: bytes
    assert data["steps"][-1][1] == ids  # k = n: encode
    assert "http" not in out and "require" not in out and "jupyter-widgets" not in out


def test_static_stepper_hand_worked_example() -> None:
    tok = BPETokenizer([(b"t", b"h"), (b"th", b"e"), (b"e", b"e")])
    assert merge_states(tok, "thee") == [(0, [116, 104, 101, 101]), (1, [256, 101, 101]), (2, [257, 101])]
    assert merge_states(tok, "eeth") == [(0, [101, 101, 116, 104]), (1, [101, 101, 256]), (3, [258, 256])]
    out = stepper_html(tok, "thee")  # at k = 3 the last merge to change "thee" is merge 1, not merge 2
    assert "the last to change this text: merge 1: th + e → the (id 257)" in out
    assert bpe_data(stepper_html(tok, "</script><b>"))["tok"]["60"][0] == "<"
    assert stepper_html(tok, "</script>").count("</script>") == 2  # the text cannot close the script


def test_widget_doctests() -> None:
    import doctest

    from course_lib.widgets import _render, bpe

    for module in (bpe, _render):
        failed, attempted = doctest.testmod(module)
        assert failed == 0 and attempted > 0, module.__name__


def test_static_stepper_script_parses() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    out = stepper_html(BPETokenizer([(b"t", b"h")]), "the")
    script = re.findall(r"<script>(.*?)</script>", out, re.S)[0]
    check = subprocess.run([node, "--check", "-"], input=script, text=True, capture_output=True, timeout=30)
    assert check.returncode == 0, check.stderr


def test_static_explorer_shows_the_live_explorers_maps() -> None:
    model = tiny_model("modern")
    w = attention_explorer(model, TOK, TEXT)
    out = w.static_html()
    assert 'class="attn-explorer"' in out and 'data-role="head"' in out and "JupyterLab" in out
    data = embedded(out)
    assert data["tokens"] == w.tokens and (data["n_layer"], data["n_head"]) == (2, 2)
    ref = model_attention(model, TEXT)  # (2, 2, 32, 32)
    for layer in range(2):
        for head in range(2):
            for i, row in enumerate(data["w"][layer][head]):
                np.testing.assert_allclose(np.array(row) / 1000, ref[layer, head, i, : i + 1], atol=1e-3)
    w.text_input.value = "It is"
    assert len(embedded(w.static_html())["tokens"]) == 5  # the stand-in follows the text on screen


def test_static_playground_shows_the_widgets_numbers() -> None:
    p = sampling_playground(tiny_model("classic"), TOK, "ROMEO:")
    for temperature, top_k in [(1.0, 0), (0.7, 5)]:
        p.temperature_slider.value, p.top_k_slider.value = temperature, top_k
        out = p.static_html()
        probs = p.current_probs
        entropy = -sum(float(q) * math.log2(float(q)) for q in probs if q > 0)  # from the numbers, not the widget
        assert abs(p.entropy - entropy) < 1e-5  # float32 probabilities
        assert f"entropy {entropy:.2f} bits" in out and f"{int((probs > 0).sum())} of {probs.size} tokens" in out
        order = np.argsort(-p.before_filter, kind="stable")[:20]
        bars = [float(v) for v in re.findall(r"<span>([0-9.]+)</span></div>", out)]
        np.testing.assert_allclose(bars, probs[order], atol=5e-4)
        assert f"temperature {temperature:g}, top-k {top_k or 'off'}, top-p off" in out
    assert "<input" not in out and "<button" not in out and "press sample" in out  # a picture, no dead controls


def labelled(widget) -> list:
    """The widget and all widgets inside it that show a description."""
    found = [widget] if getattr(widget, "description", "") else []
    for child in getattr(widget, "children", ()):
        found += labelled(child)
    return found


def test_labels_are_not_cut_off(bpe: BPETokenizer) -> None:
    import ipywidgets

    for name, w in standins(bpe).items():
        controls = labelled(w)
        assert controls, name
        for c in controls:
            if isinstance(c, (ipywidgets.Button, ipywidgets.ToggleButton)):  # the text sits inside the button
                assert c.layout.width == "auto", (name, c.description)
            else:  # the label left of the control
                assert c.style.description_width == "initial", (name, c.description)


# -- training monitor -----------------------------------------------------------------
def record(step: int, loss: float) -> EvalRecord:
    return EvalRecord(step, loss, loss + 0.1, math.exp(loss + 0.1), 1e-3, 0.1 * step, 1000.0, True)


def tiny_trainer(max_iters: int, callbacks: list) -> Trainer:
    torch.manual_seed(0)
    model = GPT(GPTConfig.classic(vocab_size=TOK.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=16))
    data = torch.tensor(TOK.encode(TEXT * 10))
    cfg = TrainConfig(max_iters=max_iters, batch_size=4, eval_interval=2, eval_iters=2, warmup_iters=0,
                      progress=False, dtype="float32")  # fmt: skip
    return Trainer(model, data[:800], data[800:], cfg, device="cpu", callbacks=callbacks)


def test_monitor_records_and_draws_each_callback() -> None:
    m = TrainingMonitor()
    for step, loss in [(0, 4.0), (10, 3.0), (20, 2.5)]:
        m(None, record(step, loss))
    assert [r.step for r in m.records] == [0, 10, 20]
    lines = re.findall(r'<polyline points="([^"]+)"', m.chart.value)
    assert len(lines) == 2 and all(len(pts.split()) == 3 for pts in lines)
    assert "step 20, train 2.5000, val 2.6000" in m.status.value


def test_monitor_as_a_real_trainer_callback() -> None:
    m = TrainingMonitor()
    history = tiny_trainer(6, [m]).fit()
    assert [r.step for r in m.records] == history.iters == [0, 2, 4, 6]
    assert [r.val_loss for r in m.records] == history.val_loss
    assert m.stop_button.disabled and m.stop_button.description == "done"  # the run is over


def test_stop_button_is_live_until_the_last_evaluation() -> None:
    m = TrainingMonitor()
    states = []
    trainer = tiny_trainer(4, [m, lambda t, r: states.append((r.step, m.stop_button.disabled))])
    trainer.fit()
    assert states == [(0, False), (2, False), (4, True)]


def test_stop_button_ends_the_run() -> None:
    m = TrainingMonitor()

    def press_stop_at_step_4(trainer: Trainer, rec: EvalRecord) -> None:
        if rec.step == 4:
            m.stop_button.click()

    history = tiny_trainer(20, [m, press_stop_at_step_4]).fit()
    assert history.iters[-1] == 4 and "stopping" in m.status.value and m.stop_button.disabled


def test_monitor_runs_fit_in_the_background() -> None:
    m = TrainingMonitor()
    m.start(tiny_trainer(4, []))
    history = m.wait(timeout=60)
    assert history is not None and [r.step for r in m.records] == history.iters == [0, 2, 4]
    assert m.stop_button.disabled and "done" in m.status.value


# -- course_lib works without ipywidgets ----------------------------------------------
def test_course_lib_imports_without_ipywidgets() -> None:
    code = textwrap.dedent("""
        import sys
        import course_lib, course_lib.model, course_lib.trainer, course_lib.tokenizers
        assert "ipywidgets" not in sys.modules, "course_lib imported ipywidgets"
        sys.modules["ipywidgets"] = None  # as if it were not installed
        try:
            import course_lib.widgets
        except ImportError as err:
            assert "pip install ipywidgets" in str(err), err
        else:
            raise AssertionError("course_lib.widgets imported without ipywidgets")
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
