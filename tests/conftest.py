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


@pytest.fixture(scope="session")
def train_on_digits(digits):
    """``train_on_digits(config, epochs=, lr=)``: a model of ``config`` trained briefly on the
    digits (seed 0, Adam, batches of 32), in eval mode."""
    from ann.models import build_model
    from ann.training import TrainConfig, train

    def trained(config, *, epochs: int, lr: float):
        torch.manual_seed(0)
        model = build_model(config)
        train(model, digits.train, digits.val,
              TrainConfig(epochs=epochs, lr=lr, batch_size=32), progress=False)
        return model.eval()

    return trained
