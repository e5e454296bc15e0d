"""``info --check-device``: the same tiny run on the CPU and on a device, compared step by step.

No accelerator here, so the device side is the CPU itself (the losses must agree exactly) and a CPU
with a deliberately wrong kernel (a SiLU that adds 0.1), which the check must catch.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib import device_check
from course_lib.cli import main


def test_the_cpu_agrees_with_itself_and_the_run_learns():
    report = device_check.check_device("cpu", steps=30)
    assert report.cpu_losses == report.device_losses and report.max_difference == 0.0 and report.ok
    assert report.cpu_losses[-1] < report.cpu_losses[0] - 0.5  # a real run: the optimiser state matters
    assert "OK: cpu trains like the CPU" in str(report)


def test_a_wrong_kernel_is_caught(monkeypatch):
    real_train, real_silu = device_check._train, F.silu
    calls = []

    def train(device, steps, seed):  # the second run (the "device") computes SiLU wrongly: 0.1 too large
        calls.append(device)
        if len(calls) == 2:
            monkeypatch.setattr(F, "silu", lambda x: x * torch.sigmoid(x) + 0.1)
        try:
            return real_train(device, steps, seed)
        finally:
            monkeypatch.setattr(F, "silu", real_silu)

    monkeypatch.setattr(device_check, "_train", train)
    report = device_check.check_device("cpu", steps=30)
    assert len(calls) == 2 and not report.ok and report.max_difference > device_check.TOLERANCE
    assert report.cpu_losses[0] != report.device_losses[0]
    assert "WARNING" in str(report) and "COURSE_DEVICE=cpu" in str(report)


def test_cli_says_there_is_nothing_to_compare_on_a_cpu(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert main(["info", "--check-device"]) == 0
    assert "no other device to compare it with" in capsys.readouterr().out


def test_cli_info_needs_a_checkpoint_or_the_check(capsys):
    assert main(["info"]) == 2
    assert "--check-device" in capsys.readouterr().err


def test_an_unavailable_device_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="cannot check cuda"):
        device_check.check_device("cuda")
