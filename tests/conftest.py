"""Test-session settings.

Tests run torch on one thread: results are then bit-for-bit repeatable between the test process
and the subprocesses some tests start (which inherit ``OMP_NUM_THREADS``), and a second busy
process on a 2-core machine cannot stall torch's thread pool (see shared/PEERS.md).
"""

import os

import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)
