"""Test-session settings and shared fixtures.

Tests run torch on one thread: results are then bit-for-bit repeatable between the test process
and the subprocesses some tests start (which inherit ``OMP_NUM_THREADS``), and a second busy
process on a 2-core machine cannot stall torch's thread pool (see shared/PEERS.md).
"""

import os

import pytest
import torch

from ann.datasets import load_digits

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread():
    """Every test starts on one torch thread, whatever an earlier test set."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits split with seed 0; read-only in every test that uses it."""
    return load_digits(seed=0)
