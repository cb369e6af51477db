"""Simulation engines: a vectorised torch engine and a Brian2 engine.

Both read only a :class:`~neuro.network.Network` (and its built
:class:`~neuro.network.Connectome`) and return a :class:`~neuro.records.SimulationResult`.
Use :func:`neuro.simulation.simulate` rather than calling them directly.
"""

from neuro.engines.brian2_engine import run_brian2
from neuro.engines.torch_engine import choose_propagation, run_torch

__all__ = ["run_torch", "run_brian2", "choose_propagation"]
