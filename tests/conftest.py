"""Shared test settings.

Under pytest-xdist every worker is its own process; with torch's default of one thread
per core, two workers on a 2-core machine oversubscribe the CPU and small-tensor tests
slow down many times over. Each worker therefore computes on one thread.
"""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
