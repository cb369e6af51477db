"""``neuro``: a spiking-network simulator with a Brian2 engine and a batched PyTorch engine.

Describe a network once (:class:`Network` of :class:`Population`, inputs, :class:`Projection`
and monitors), then :func:`simulate` it with ``engine="torch"`` (CPU or CUDA, batched trials) or
``engine="brian2"`` (the reference, with code generation). Units throughout: ms, mV, pF, nS, pA,
Hz. Neuron models live in :mod:`neuro.models`, plasticity rules in :mod:`neuro.plasticity`,
encoders in :mod:`neuro.encoders`, analysis in :mod:`neuro.analysis`, plots in
:mod:`neuro.plots`.

``neuro`` never imports ``ann``, ``bridge`` or ``experiments``.
"""

from neuro.coba import coba_network
from neuro.connectivity import (
    AllToAll,
    Constant,
    Explicit,
    FixedProbability,
    LogNormal,
    NormalClipped,
    OneToOne,
    Uniform,
)
from neuro.models import MODELS, NeuronModel
from neuro.network import (
    CurrentInput,
    Network,
    PoissonInput,
    Population,
    PopulationRateMonitor,
    Projection,
    SpikeGeneratorInput,
    SpikeMonitor,
    StateMonitor,
    WeightMonitor,
)
from neuro.records import SimulationResult, SpikeRecord, StateRecord
from neuro.simulation import simulate
from neuro.synapses import (
    Synapse,
    conductance_alpha,
    conductance_exp,
    current_alpha,
    current_exp,
)

__all__ = [
    "simulate",
    "Network",
    "Population",
    "PoissonInput",
    "SpikeGeneratorInput",
    "CurrentInput",
    "Projection",
    "SpikeMonitor",
    "StateMonitor",
    "PopulationRateMonitor",
    "WeightMonitor",
    "Synapse",
    "current_exp",
    "current_alpha",
    "conductance_exp",
    "conductance_alpha",
    "AllToAll",
    "OneToOne",
    "FixedProbability",
    "Explicit",
    "Constant",
    "Uniform",
    "NormalClipped",
    "LogNormal",
    "MODELS",
    "NeuronModel",
    "SimulationResult",
    "SpikeRecord",
    "StateRecord",
    "coba_network",
]
