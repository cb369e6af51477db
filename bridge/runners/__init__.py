"""Runners: simulate a :class:`bridge.graph.SpikingGraph`, reading nothing but the graph.

:mod:`bridge.runners.snntorch_runner` runs it with snnTorch neurons on CPU or CUDA;
:mod:`bridge.runners.neuro_runner` runs it on spikebridge's own simulator :mod:`neuro` (torch
engine or Brian2), with the graph's IF neurons or conductance-based LIF neurons.
"""

from bridge.runners.neuro_runner import (
    CondLIFParams,
    NeuroLayout,
    NeuroRunnerError,
    run_neuro,
    to_network,
)
from bridge.runners.snntorch_runner import SNNRunResult, SNNState, SNNTorchNetwork, run

__all__ = [
    "SNNRunResult",
    "SNNState",
    "SNNTorchNetwork",
    "run",
    "CondLIFParams",
    "NeuroLayout",
    "NeuroRunnerError",
    "run_neuro",
    "to_network",
]
