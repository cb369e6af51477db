"""Runners: simulate a :class:`bridge.graph.SpikingGraph`, reading nothing but the graph.

:mod:`bridge.runners.snntorch_runner` runs it with snnTorch neurons on CPU or CUDA.
"""

from bridge.runners.snntorch_runner import SNNRunResult, SNNState, SNNTorchNetwork, run

__all__ = ["SNNRunResult", "SNNState", "SNNTorchNetwork", "run"]
