"""course_lib.device: the choice order, the override, the fallback warning, seeding."""

import random

import numpy as np
import pytest
import torch

from course_lib import device as dev


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)


def _fake(monkeypatch, cuda: bool, mps: bool):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1 if cuda else 0)
    monkeypatch.setattr(dev, "_mps_available", lambda: mps)


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_order_is_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    _fake(monkeypatch, cuda, mps)
    assert dev.get_device().type == expected


def test_env_override_wins_over_prefer(monkeypatch):
    _fake(monkeypatch, cuda=False, mps=False)
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert dev.get_device(prefer="cuda") == torch.device("cpu")
    assert "COURSE_DEVICE=cpu" in dev.describe().reason


def test_unavailable_request_falls_back_with_warning(monkeypatch):
    _fake(monkeypatch, cuda=False, mps=False)
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.warns(UserWarning, match="not available here; fell back to cpu"):
        assert dev.get_device() == torch.device("cpu")


def test_missing_cuda_index_falls_back(monkeypatch):
    _fake(monkeypatch, cuda=True, mps=False)
    with pytest.warns(UserWarning, match="cuda:3"):
        assert dev.get_device(prefer="cuda:3") == torch.device("cuda")


@pytest.mark.parametrize("bad", ["gpu", "tpu", "cuda:x"])
def test_unknown_device_names_raise_clear_error(bad):
    with pytest.raises(ValueError, match="use one of 'cuda', 'cuda:N', 'mps' or 'cpu'"):
        dev.get_device(prefer=bad)


def test_describe_reports_choice_reason_and_dtype(monkeypatch):
    _fake(monkeypatch, cuda=False, mps=False)
    info = dev.describe()
    text = str(info)
    assert info.device == torch.device("cpu")
    assert info.dtype == torch.float32
    assert "device: cpu" in text and "why: no CUDA GPU and no Apple Metal" in text
    assert "recommended dtype: float32" in text


def test_recommended_dtype(monkeypatch):
    assert dev.recommended_dtype(torch.device("cpu")) == torch.float32
    assert dev.recommended_dtype(torch.device("mps")) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert dev.recommended_dtype(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert dev.recommended_dtype(torch.device("cuda")) == torch.float32


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3)

    dev.seed_everything(123)
    first = draw()
    dev.seed_everything(123)
    second = draw()
    assert first[:2] == second[:2]
    torch.testing.assert_close(first[2], second[2], rtol=0, atol=0)
    with pytest.raises(ValueError):
        dev.seed_everything(-1)


def test_course_device_that_is_no_device_names_the_variable(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "garbage")
    with pytest.raises(ValueError, match=r"^COURSE_DEVICE=garbage is not a device name: set it to cuda, cuda:N"):
        dev.get_device()


def test_parse_device_and_unavailable_reason(monkeypatch):
    assert dev.parse_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="use one of"):
        dev.parse_device("gpu")
    _fake(monkeypatch, cuda=False, mps=False)
    assert dev.unavailable_reason(torch.device("cpu")) is None
    assert dev.unavailable_reason(torch.device("cuda")).startswith("no CUDA GPU is visible here")
    assert dev.unavailable_reason(torch.device("mps")) == "Apple Metal (MPS) is not available here"
    _fake(monkeypatch, cuda=True, mps=False)  # one GPU
    assert dev.unavailable_reason(torch.device("cuda:0")) is None
    assert dev.unavailable_reason(torch.device("cuda:3")) == "only 1 CUDA GPU is visible here (cuda:0)"
