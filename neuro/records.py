"""Plain result records of a simulation: numpy arrays with ``dt`` and units.

Every engine returns a :class:`SimulationResult`; analysis and plotting read only these records,
so results from the Brian2 and torch engines are handled identically. Times are in ms, rates in
Hz, voltages in mV, currents in pA, conductances in nS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SpikeRecord", "StateRecord", "SimulationResult", "spikes_from_hits",
           "rates_from_hits"]


@dataclass(frozen=True)
class SpikeRecord:
    """All spikes of one population, as three parallel arrays (one entry a spike).

    Attributes
    ----------
    population : name of the population.
    n_neurons : neurons in the population.
    batch_size : independent trials simulated together (1 for Brian2).
    duration_ms, dt_ms : simulated time and time step, ms.
    trial : int array, the trial (batch index) of each spike.
    neuron : int array, the neuron index of each spike.
    time_ms : float array, the spike time (ms), sorted within each trial.
    """

    population: str
    n_neurons: int
    batch_size: int
    duration_ms: float
    dt_ms: float
    trial: np.ndarray
    neuron: np.ndarray
    time_ms: np.ndarray

    def counts(self) -> np.ndarray:
        """Spike count of every neuron, shape ``(batch_size, n_neurons)``."""
        out = np.zeros((self.batch_size, self.n_neurons), dtype=np.int64)
        np.add.at(out, (self.trial, self.neuron), 1)
        return out

    def rates_hz(self) -> np.ndarray:
        """Mean firing rate of every neuron (Hz), shape ``(batch_size, n_neurons)``."""
        return self.counts() / (self.duration_ms / 1000.0)

    def trains(self, trial: int = 0) -> list[np.ndarray]:
        """Spike times (ms) of each neuron in one trial, as a list of sorted arrays."""
        mask = self.trial == trial
        neuron, time = self.neuron[mask], self.time_ms[mask]
        order = np.lexsort((time, neuron))
        neuron, time = neuron[order], time[order]
        splits = np.searchsorted(neuron, np.arange(1, self.n_neurons))
        return np.split(time, splits)


@dataclass(frozen=True)
class StateRecord:
    """A state variable of chosen neurons, sampled every ``sample_every`` steps.

    ``values`` has shape ``(batch_size, n_samples, len(neurons))`` and unit ``unit``;
    ``times_ms`` has shape ``(n_samples,)``.
    """

    population: str
    variable: str
    unit: str
    neurons: np.ndarray
    times_ms: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class SimulationResult:
    r"""What an engine returns: spikes, sampled states and population rates, with provenance.

    ``population_rates_hz[name]`` has shape ``(batch_size, n_steps)``: the fraction of the
    population spiking in each step divided by ``dt``.

    ``weights[name]`` holds the final weights of each *plastic* projection (one with
    ``plasticity=...``), shape ``(batch_size, n_synapses)`` in the order of the built
    connectome (``Network.build()``), in nS or pA (magnitudes, before an inhibitory current
    synapse's sign); empty for networks without plasticity. Weights over time come from a
    :class:`~neuro.network.WeightMonitor`, as ``states["<projection>.w"]``.

    ``theta[name]`` holds the final adaptive-threshold offsets :math:`\theta` (mV) of each
    population with ``threshold_adaptation=...``, shape ``(batch_size, n_neurons)``; empty
    when no population adapts its threshold. Over time, :math:`\theta` comes from a
    :class:`~neuro.network.StateMonitor` of the variable ``"theta"``.
    """

    engine: str
    device: str
    dt_ms: float
    duration_ms: float
    spikes: dict[str, SpikeRecord] = field(default_factory=dict)
    states: dict[str, StateRecord] = field(default_factory=dict)
    population_rates_hz: dict[str, np.ndarray] = field(default_factory=dict)
    wall_time_s: float = float("nan")
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    theta: dict[str, np.ndarray] = field(default_factory=dict)


def spikes_from_hits(population: str, n: int, batch: int, n_steps: int, dt_ms: float,
                     step: np.ndarray, trial: np.ndarray, neuron: np.ndarray) -> SpikeRecord:
    """A :class:`SpikeRecord` from unordered spikes given as step, trial and neuron indices
    (sorted by trial, then time, then neuron)."""
    order = np.lexsort((neuron, step, trial))
    return SpikeRecord(
        population=population, n_neurons=n, batch_size=batch, duration_ms=n_steps * dt_ms,
        dt_ms=dt_ms, trial=trial[order].astype(np.int64),
        neuron=neuron[order].astype(np.int64), time_ms=step[order] * dt_ms)


def rates_from_hits(n: int, batch: int, n_steps: int, dt_ms: float, step: np.ndarray,
                    trial: np.ndarray) -> np.ndarray:
    """Population rate (Hz) per trial and step, ``(batch, n_steps)``, from spikes given as step
    and trial indices of a population of ``n`` neurons."""
    counts = np.zeros((batch, n_steps))
    np.add.at(counts, (trial, step), 1.0)
    return counts / n / (dt_ms / 1000.0)
