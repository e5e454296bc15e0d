"""Shared test settings.

The unit tests use tiny tensors, which gain nothing from threads; under pytest-xdist two
workers on a 2-core machine would also fight over the cores and slow small-tensor work
many times over. Every test therefore computes on one thread (restored afterwards).
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
