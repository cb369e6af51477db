"""The one network description shared by every engine: a small typed graph of frozen records.

Nodes are :class:`Population` (neurons of one :class:`~neuro.models.base.NeuronModel`) and
inputs (:class:`PoissonInput`, :class:`SpikeGeneratorInput`); edges are :class:`Projection`
(source -> target through a :class:`~neuro.synapses.Synapse`, with a connectivity rule, weights
and delays); :class:`CurrentInput` injects an external current into a population; monitors say
what to record. :class:`Network` validates the whole graph on construction and carries ``dt``.

No engine code lives here. :meth:`Network.build` instantiates the connectivity *once*, with a
seeded :class:`numpy.random.Generator`, into explicit ``(pre, post, weight, delay_steps)``
arrays (a :class:`Connectome`); both engines simulate that identical connectome.

Units: time ms, voltage mV, capacitance pF, conductance nS, current pA, rate Hz.

Delays
------
Delays are rounded to the nearest multiple of ``dt`` with a :class:`UserWarning` when they are
not already a multiple (within 1e-6 of a step); negative delays are an error. A delay of 0 steps
is allowed and, as in Brian2, acts within the same time step (see :mod:`neuro.engines`).

Randomness
----------
The connectome depends only on ``Network.seed`` and the projection's name. The initial state
and Poisson inputs of simulation trial ``b`` depend only on the simulation seed ``seed + b``
(see :func:`trial_rng`), so trial ``b`` of a batch equals a single run with seed ``seed + b``,
and the Brian2 engine draws the identical initial state as torch trial 0.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuro.connectivity import (
    AllToAll,
    Connectivity,
    Explicit,
    FixedProbability,
    Initializer,
    OneToOne,
)
from neuro.models.base import NeuronModel
from neuro.plasticity import (
    AdaptiveThresholdParams,
    PairSTDPParams,
    RSTDPParams,
    TripletSTDPParams,
)
from neuro.synapses import Synapse

__all__ = [
    "Population",
    "PoissonInput",
    "SpikeGeneratorInput",
    "CurrentInput",
    "Projection",
    "SpikeMonitor",
    "StateMonitor",
    "PopulationRateMonitor",
    "WeightMonitor",
    "Network",
    "BuiltProjection",
    "Connectome",
    "trial_rng",
    "ADAPTIVE_THRESHOLD_PARAMETER",
    "THETA",
]

Value = float | np.ndarray | Initializer
#: The spike-based rules a :class:`Projection` can learn with (``plasticity=...``).
PLASTICITY_RULES = (PairSTDPParams, TripletSTDPParams, RSTDPParams)
#: Models that take an adaptive threshold (``Population(threshold_adaptation=...)``), by model
#: name: the parameter field holding the hard threshold that the engines raise by ``theta``.
#: Models absent here have no such threshold (AdEx and Izhikevich cut the spike at ``V_peak``,
#: Hodgkin-Huxley detects it at ``V_spike``; raising those would not delay the spike).
ADAPTIVE_THRESHOLD_PARAMETER = {"lif": "V_th"}
#: Name of the adaptive-threshold offset (mV) as a state variable of a population.
THETA = "theta"


def trial_rng(seed: int, *keys: str | int) -> np.random.Generator:
    """A numpy generator determined by ``seed`` and string/int keys (stable across runs)."""
    words = [int(seed) & 0xFFFFFFFF]
    for key in keys:
        words.append(zlib.crc32(key.encode()) if isinstance(key, str) else int(key) & 0xFFFFFFFF)
    return np.random.default_rng(words)


# --------------------------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Population:
    r"""``n`` neurons of one model with one parameter set.

    Parameters
    ----------
    name : unique identifier of the population.
    n : number of neurons.
    model : the :class:`~neuro.models.base.NeuronModel` (e.g. ``neuro.models.lif.LIF``).
    params : an instance of ``model.params_type``.
    initial : optional initial values of state variables, by name: a scalar, an ``(n,)``
        array, or an :class:`~neuro.connectivity.Initializer` drawn per neuron and per trial
        (e.g. ``{"v": Uniform(-60, -50)}``). Synaptic variables (``g_exc``, ``I_syn``) may be
        given too, and ``"theta"`` (mV) with an adaptive threshold (e.g. the offsets learnt in
        an earlier run, ``result.theta[name][b]``). Variables not given start at the model's
        own initial state (or 0).
    threshold_adaptation : ``None`` (a fixed threshold) or
        :class:`~neuro.plasticity.AdaptiveThresholdParams`: the adaptive threshold of Diehl &
        Cook (2015). Each neuron (and each trial) has an offset :math:`\theta` (mV, from 0
        unless ``initial["theta"]``) added to the model's threshold parameter
        (:data:`ADAPTIVE_THRESHOLD_PARAMETER`: ``V_th`` of the LIF; other models are
        rejected). In every step, on both engines,

        .. math::

            \theta \leftarrow \theta\, e^{-\Delta t/\tau_\theta}, \quad
            \text{spike if } v \ge V_{th} + \theta, \quad
            \theta \leftarrow \theta + \theta_+ \text{ at a spike}

        (the decay is Brian2's state update, before the threshold; the jump is part of the
        reset). The whole model step sees :math:`V_{th} + \theta`: with
        ``reset_mode="subtract"`` the LIF subtracts :math:`V_{th} + \theta - V_{reset}`.
        ``simulate(..., learning=False)`` holds :math:`\theta` fixed (no decay, no jumps), as
        it freezes plastic weights. ``theta`` can be recorded with a :class:`StateMonitor`
        (mV); its final value is ``SimulationResult.theta[name]``, shape ``(batch, n)``.
    """

    name: str
    n: int
    model: NeuronModel
    params: Any
    initial: dict[str, Value] | None = None
    threshold_adaptation: AdaptiveThresholdParams | None = None


@dataclass(frozen=True, eq=False)
class PoissonInput:
    """``n`` independent Poisson spike sources (a spike in a step with probability rate*dt).

    ``rates_hz`` is a scalar, a per-neuron ``(n,)`` array, a time-varying ``(steps, n)`` array
    (row ``k`` holds during step ``k``; the last row holds afterwards), or a callable
    ``rates_hz(t_ms) -> array`` that receives the 1-D array of step start times (ms) and
    returns an array broadcastable to ``(steps, n)``.
    """

    name: str
    n: int
    rates_hz: float | np.ndarray | Callable[[np.ndarray], np.ndarray]

    def rates_array(self, n_steps: int, dt_ms: float) -> np.ndarray:
        """Rates (Hz) as ``(n,)`` when constant or ``(n_steps, n)`` when time-varying."""
        rates = self.rates_hz
        if callable(rates):
            t = np.arange(n_steps) * dt_ms
            out = np.broadcast_to(np.asarray(rates(t), dtype=np.float64), (n_steps, self.n))
            return np.array(out)
        arr = np.asarray(rates, dtype=np.float64)
        if arr.ndim == 0:
            return np.full(self.n, float(arr))
        if arr.ndim == 1:
            return arr
        rows = np.minimum(np.arange(n_steps), arr.shape[0] - 1)
        return arr[rows]


@dataclass(frozen=True, eq=False)
class SpikeGeneratorInput:
    """``n`` sources that spike at given times: neuron ``indices[k]`` at ``times_ms[k]``.

    Times are rounded to the nearest step. ``trials`` (optional, torch batches only) gives the
    trial of each spike; without it every trial receives the same spikes.
    """

    name: str
    n: int
    indices: np.ndarray
    times_ms: np.ndarray
    trials: np.ndarray | None = None

    def steps(self, dt_ms: float) -> np.ndarray:
        """Step index of every spike."""
        return np.rint(np.asarray(self.times_ms, dtype=np.float64) / dt_ms).astype(np.int64)


@dataclass(frozen=True, eq=False)
class CurrentInput:
    """An external current (pA) injected into population ``target``.

    ``amplitude_pA`` is a scalar, ``(n,)`` (per neuron) or ``(steps, n)`` (time-varying: row
    ``k`` during step ``k``, the last row afterwards). With ``per_trial=True`` a leading trial
    axis is added: ``(B, n)`` or ``(B, steps, n)`` (torch batches; the Brian2 engine takes
    ``B = 1``).
    """

    target: str
    amplitude_pA: float | np.ndarray
    per_trial: bool = False


@dataclass(frozen=True, eq=False)
class Projection:
    """Synapses from ``source`` (a population or input) to ``target`` (a population).

    Parameters
    ----------
    source, target : node names.
    synapse : the kinetics (:class:`~neuro.synapses.Synapse`); projections with the same
        synapse name onto the same target share its synaptic variable.
    connectivity : an :class:`~neuro.connectivity.Connectivity` rule.
    weights : pA (current synapses) or nS (conductance synapses): a scalar, an array with one
        value per synapse (in the order of the built ``(pre, post)`` lists; for
        :class:`~neuro.connectivity.AllToAll` also an ``(n_pre, n_post)`` matrix), or an
        initialiser. Current weights are multiplied by ``synapse.sign``; conductance weights
        must be non-negative.
    delay_ms : a scalar (per projection), a per-synapse array, or an initialiser (ms).
    name : defaults to ``"<source>-><target>:<synapse name>"``.
    plasticity : ``None`` (static weights) or the parameters of a spike-based rule of
        :mod:`neuro.plasticity` (:class:`~neuro.plasticity.PairSTDPParams`,
        :class:`~neuro.plasticity.TripletSTDPParams`, :class:`~neuro.plasticity.RSTDPParams`):
        both engines then learn the weights with that rule (amplitudes and bounds in the
        weight's unit, nS or pA; for an inhibitory current synapse the rule acts on the
        magnitude). A plastic projection needs initial weights within the rule's
        ``[w_min, w_max]``. Its delays may differ between synapses (an array or an initialiser,
        as for static projections): as in Brian2 with a per-synapse delay on the ``pre``
        pathway, a presynaptic spike reaches synapse ``k`` after that synapse's delay, and
        only then is transmitted, depresses (``on_pre``) and bumps the synapse's presynaptic
        trace; postsynaptic spikes act at once (``on_post`` has no delay). See
        :mod:`neuro.engines.torch_plasticity` for the update order.
    """

    source: str
    target: str
    synapse: Synapse
    connectivity: Connectivity
    weights: Value
    delay_ms: Value = 0.0
    name: str = ""
    plasticity: Any = None

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", f"{self.source}->{self.target}:{self.synapse.name}")


# --------------------------------------------------------------------------------------------
# Monitors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpikeMonitor:
    """Record every spike of a population (or input)."""

    population: str


@dataclass(frozen=True, eq=False)
class StateMonitor:
    """Record ``variable`` of ``neurons`` (all when ``None``) every ``every`` steps.

    Samples are taken at the start of steps ``0, every, 2 every, ...`` (Brian2's ``start``
    slot), i.e. at times ``k * every * dt``.
    """

    population: str
    variable: str
    neurons: np.ndarray | Sequence[int] | None = None
    every: int = 1


@dataclass(frozen=True)
class PopulationRateMonitor:
    """Record the population rate (fraction of neurons spiking in a step / dt, Hz)."""

    population: str


@dataclass(frozen=True, eq=False)
class WeightMonitor:
    """Record the weights of chosen synapses of a plastic projection every ``every`` steps.

    ``synapses`` are indices into the built projection (the order of
    ``Network.build()``'s arrays, sorted by presynaptic neuron); ``None`` records all of them.
    Samples are taken at the start of steps ``0, every, ...`` like :class:`StateMonitor`; the
    result is ``SimulationResult.states["<projection>.w"]``, a
    :class:`~neuro.records.StateRecord` whose ``population`` is the projection's name and
    whose ``neurons`` are the synapse indices (unit nS or pA).
    """

    projection: str
    synapses: np.ndarray | Sequence[int] | None = None
    every: int = 1


Monitor = SpikeMonitor | StateMonitor | PopulationRateMonitor | WeightMonitor


# --------------------------------------------------------------------------------------------
# Built connectome
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BuiltProjection:
    """A projection instantiated into explicit synapse arrays (one entry a synapse).

    ``weight`` is in pA (sign applied) or nS; ``delay_steps`` in time steps. Synapses are
    sorted by ``pre``.
    """

    name: str
    source: str
    target: str
    synapse: Synapse
    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    delay_steps: np.ndarray

    @property
    def n_synapses(self) -> int:
        return int(self.pre.size)


@dataclass(frozen=True, eq=False)
class Connectome:
    """Every projection of a :class:`Network`, instantiated with ``Network.seed``."""

    projections: tuple[BuiltProjection, ...]
    dt_ms: float
    seed: int

    @property
    def max_delay_steps(self) -> int:
        return max((int(p.delay_steps.max()) for p in self.projections if p.n_synapses), default=0)


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------


def _expected_count(conn: Connectivity, n_pre: int, n_post: int, same: bool) -> int | None:
    if isinstance(conn, AllToAll):
        if same and not conn.allow_autapses:
            return n_pre * n_post - min(n_pre, n_post)
        return n_pre * n_post
    if isinstance(conn, OneToOne):
        return n_pre
    if isinstance(conn, Explicit):
        return int(np.asarray(conn.pre).size)
    return None


def _check_plastic_weights(weight: np.ndarray, rule: Any, what: str) -> None:
    """Initial weights of a plastic projection must lie within the rule's bounds."""
    if weight.size and (weight.min() < rule.w_min or weight.max() > rule.w_max):
        raise ValueError(
            f"{what}: initial weights span [{weight.min():g}, {weight.max():g}] but the "
            f"plasticity rule bounds them to [{rule.w_min:g}, {rule.w_max:g}]; draw them "
            "within the bounds."
        )


def _steps_from_delay(delay_ms: np.ndarray, dt_ms: float, what: str) -> np.ndarray:
    delay_ms = np.asarray(delay_ms, dtype=np.float64)
    if not np.all(np.isfinite(delay_ms)):
        raise ValueError(f"{what}: delays must be finite numbers of ms.")
    if np.any(delay_ms < 0):
        raise ValueError(
            f"{what}: negative delay {float(delay_ms.min())} ms; delays must be >= 0."
        )
    steps = np.rint(delay_ms / dt_ms)
    if np.any(np.abs(delay_ms / dt_ms - steps) > 1e-6):
        warnings.warn(
            f"{what}: delays are not multiples of dt = {dt_ms} ms and were rounded to the "
            "nearest step; give multiples of dt to silence this warning.",
            UserWarning,
            stacklevel=4,
        )
    return steps.astype(np.int64)


@dataclass(frozen=True, eq=False)
class Network:
    r"""A validated network: populations, inputs, projections, monitors, and ``dt``.

    Parameters
    ----------
    populations : the neuron populations.
    inputs : :class:`PoissonInput`, :class:`SpikeGeneratorInput` and :class:`CurrentInput`.
    projections : the :class:`Projection` edges.
    monitors : :class:`SpikeMonitor`, :class:`StateMonitor`, :class:`PopulationRateMonitor`.
    dt_ms : the time step (ms), checked against every population's ``params.check_dt``.
    seed : seed of the connectome (connectivity, random weights and delays).
    conductance_update : how conductance input enters the membrane over one step, with all
        variables held at their values at the start of the step (both engines):

        ``"exponential"`` (default) -- the step-averaged current of the membrane relaxing
        towards the synaptic reversal potentials,

        .. math::

            I_\mathrm{syn} = \varphi(x) \sum_k g_k (E_k - v), \quad
            x = \frac{\Delta t \sum_k g_k}{C}, \quad \varphi(x) = \frac{1 - e^{-x}}{x},

        which is stable however large the conductances (as Brian2's ``exponential_euler``);
        ``C`` is the model's capacitance (``params.C_m`` or ``params.C``, pF).
        ``"explicit"`` -- :math:`I_\mathrm{syn} = \sum_k g_k (E_k - v)` (forward Euler in the
        conductance term, as Brian2's ``euler``); it overshoots once
        :math:`\Delta t \sum_k g_k / C > 1` and diverges above 2 (COBA at N = 64,000 with
        fixed ``p`` and weights runs away to 200 Hz this way, in Brian2 too).

    Raises
    ------
    ValueError
        On unknown or duplicate names, shape mismatches, NaN or negative-conductance weights,
        negative delays, an unknown monitored variable, or a ``dt`` too large for a model; the
        message names the offending item and the fix.
    """

    populations: Sequence[Population]
    inputs: Sequence[PoissonInput | SpikeGeneratorInput | CurrentInput] = ()
    projections: Sequence[Projection] = ()
    monitors: Sequence[Monitor] = ()
    dt_ms: float = 0.1
    seed: int = 0
    conductance_update: str = "exponential"
    _synapses: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for attr in ("populations", "inputs", "projections", "monitors"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        self._validate()

    # -- lookups -------------------------------------------------------------------------
    @property
    def population_map(self) -> dict[str, Population]:
        return {p.name: p for p in self.populations}

    @property
    def spike_sources(self) -> dict[str, Population | PoissonInput | SpikeGeneratorInput]:
        """Every node that emits spikes (populations and spike inputs), by name."""
        out: dict[str, Any] = {p.name: p for p in self.populations}
        out.update({i.name: i for i in self.inputs if not isinstance(i, CurrentInput)})
        return out

    def synapses_of(self, population: str) -> tuple[Synapse, ...]:
        """Synapse types received by a population (one per synapse name), in first-seen order."""
        return tuple(self._synapses.get(population, {}).values())

    def variables_of(self, population: str) -> tuple[str, ...]:
        """Recordable variables of a population: model state fields and synaptic variables."""
        pop = self.population_map[population]
        names = list(pop.model.state_type._fields)
        if pop.threshold_adaptation is not None:
            names.append(THETA)
        for syn in self.synapses_of(population):
            names.append(syn.variable)
            if syn.aux_variable:
                names.append(syn.aux_variable)
        return tuple(names)

    def unit_of(self, population: str, variable: str) -> str:
        """Unit of a recordable variable: synaptic ones by their kind, ``v`` in mV, other model
        variables from an optional ``units`` mapping on the model's state type (else ``""``)."""
        for syn in self.synapses_of(population):
            if variable in (syn.variable, syn.aux_variable):
                return syn.unit
        if variable == "v":
            return "mV"
        if variable == THETA and self.population_map[population].threshold_adaptation:
            return "mV"
        units = getattr(self.population_map[population].model.state_type, "units", None)
        return dict(units).get(variable, "") if units else ""

    def capacitance_of(self, population: str) -> float | None:
        """Membrane capacitance (pF) of a population's model: ``params.C_m`` or ``params.C``."""
        params = self.population_map[population].params
        for name in ("C_m", "C"):
            value = getattr(params, name, None)
            if isinstance(value, int | float) and value > 0:
                return float(value)
        return None

    def n_steps(self, duration_ms: float) -> int:
        """Number of steps simulated for ``duration_ms`` (rounded to the nearest step)."""
        return int(round(duration_ms / self.dt_ms))

    # -- validation ----------------------------------------------------------------------
    def _validate(self) -> None:
        dt = self.dt_ms
        if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"Network: dt_ms must be a positive number of ms, got {dt!r}.")
        names: set[str] = set()
        for node in (*self.populations, *(i for i in self.inputs
                                         if not isinstance(i, CurrentInput))):
            kind = type(node).__name__
            if not isinstance(node.name, str) or not node.name.isidentifier():
                raise ValueError(
                    f"{kind} name {node.name!r} must be an identifier (letters, digits, _)."
                )
            if node.name in names:
                raise ValueError(
                    f"{kind} {node.name!r}: the name is used twice; every population and input "
                    "needs a unique name."
                )
            names.add(node.name)
            if not (isinstance(node.n, int | np.integer) and node.n > 0):
                raise ValueError(f"{kind} {node.name!r}: n must be a positive int, got {node.n!r}.")

        pops = self.population_map
        for pop in self.populations:
            if not isinstance(pop.model, NeuronModel):
                raise ValueError(
                    f"Population {pop.name!r}: model must be a NeuronModel (e.g. "
                    "neuro.models.lif.LIF), got {type(pop.model).__name__}."
                )
            if not isinstance(pop.params, pop.model.params_type):
                raise ValueError(
                    f"Population {pop.name!r}: params must be a "
                    f"{pop.model.params_type.__name__} for model {pop.model.name!r}, got "
                    f"{type(pop.params).__name__}."
                )
            if pop.threshold_adaptation is not None:
                self._validate_threshold_adaptation(pop)
            check = getattr(pop.params, "check_dt", None)
            if check is not None:
                try:
                    check(dt)
                except ValueError as err:
                    raise ValueError(
                        f"Population {pop.name!r}: dt_ms = {dt} is too large for model "
                        f"{pop.model.name!r}: {err} Use a smaller Network dt_ms."
                    ) from err

        for inp in self.inputs:
            self._validate_input(inp, pops)

        sources = self.spike_sources
        synapses: dict[str, dict[str, Synapse]] = {}
        for proj in self.projections:
            self._validate_projection(proj, sources, pops, synapses)
        object.__setattr__(self, "_synapses", synapses)
        pnames = [p.name for p in self.projections]
        dup = {n for n in pnames if pnames.count(n) > 1}
        if dup:
            raise ValueError(
                f"Projection names {sorted(dup)} are used twice; give each Projection a "
                "distinct name=..."
            )

        if self.conductance_update not in ("exponential", "explicit"):
            raise ValueError(
                f"Network: conductance_update must be 'exponential' or 'explicit', got "
                f"{self.conductance_update!r}."
            )
        for pop in self.populations:
            has_cond = any(s.kind == "conductance" for s in self.synapses_of(pop.name))
            if (has_cond and self.conductance_update == "exponential"
                    and self.capacitance_of(pop.name) is None):
                raise ValueError(
                    f"Population {pop.name!r}: conductance synapses with "
                    "conductance_update='exponential' need the model's capacitance, but "
                    f"{type(pop.params).__name__} has no C_m or C field; use "
                    "Network(conductance_update='explicit')."
                )

        for pop in self.populations:
            for key, value in (pop.initial or {}).items():
                if key not in self.variables_of(pop.name):
                    raise ValueError(
                        f"Population {pop.name!r}: initial value for unknown variable {key!r}; "
                        f"known variables are {list(self.variables_of(pop.name))}."
                    )
                if not isinstance(value, Initializer):
                    arr = np.asarray(value, dtype=np.float64)
                    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != pop.n):
                        raise ValueError(
                            f"Population {pop.name!r}: initial {key!r} must be a scalar, an "
                            f"({pop.n},) array or an Initializer, got shape {arr.shape}."
                        )
                    if not np.all(np.isfinite(arr)):
                        raise ValueError(
                            f"Population {pop.name!r}: initial {key!r} contains NaN or inf."
                        )

        for mon in self.monitors:
            self._validate_monitor(mon, sources, pops)

    def _validate_input(self, inp: Any, pops: dict[str, Population]) -> None:
        dt = self.dt_ms
        if isinstance(inp, CurrentInput):
            if inp.target not in pops:
                raise ValueError(
                    f"CurrentInput: unknown target population {inp.target!r}; known "
                    f"populations are {sorted(pops)}."
                )
            n = pops[inp.target].n
            amp = np.asarray(inp.amplitude_pA, dtype=np.float64)
            shape = amp.shape[1:] if inp.per_trial else amp.shape
            if inp.per_trial and amp.ndim == 0:
                raise ValueError(
                    f"CurrentInput to {inp.target!r}: per_trial=True needs a leading trial "
                    "axis, shape (B, n) or (B, steps, n)."
                )
            if not (shape == () or shape[-1:] == (n,)) or len(shape) > 2:
                raise ValueError(
                    f"CurrentInput to {inp.target!r}: amplitude_pA must be a scalar, ({n},) or "
                    f"(steps, {n}){' after the trial axis' if inp.per_trial else ''}, got shape "
                    f"{amp.shape}."
                )
            if not np.all(np.isfinite(amp)):
                raise ValueError(f"CurrentInput to {inp.target!r}: amplitude contains NaN/inf.")
        elif isinstance(inp, PoissonInput):
            if not callable(inp.rates_hz):
                rates = np.asarray(inp.rates_hz, dtype=np.float64)
                if not (rates.ndim == 0 or rates.shape[-1] == inp.n) or rates.ndim > 2:
                    raise ValueError(
                        f"PoissonInput {inp.name!r}: rates_hz must be a scalar, ({inp.n},) or "
                        f"(steps, {inp.n}), got shape {rates.shape}."
                    )
                if not np.all(np.isfinite(rates)) or np.any(rates < 0):
                    raise ValueError(
                        f"PoissonInput {inp.name!r}: rates_hz must be finite and >= 0."
                    )
                if rates.size and rates.max() * dt / 1000.0 > 1.0:
                    raise ValueError(
                        f"PoissonInput {inp.name!r}: rate {rates.max()} Hz exceeds 1/dt = "
                        f"{1000.0 / dt} Hz; use a smaller dt_ms or several sources."
                    )
        elif isinstance(inp, SpikeGeneratorInput):
            idx = np.asarray(inp.indices)
            times = np.asarray(inp.times_ms, dtype=np.float64)
            if idx.shape != times.shape or idx.ndim != 1:
                raise ValueError(
                    f"SpikeGeneratorInput {inp.name!r}: indices and times_ms must be 1-D of "
                    f"equal length, got {idx.shape} and {times.shape}."
                )
            if idx.size and (idx.min() < 0 or idx.max() >= inp.n):
                raise ValueError(
                    f"SpikeGeneratorInput {inp.name!r}: indices must lie in [0, {inp.n})."
                )
            if not np.all(np.isfinite(times)) or np.any(times < 0):
                raise ValueError(
                    f"SpikeGeneratorInput {inp.name!r}: times_ms must be finite and >= 0."
                )
            trials = np.zeros_like(idx) if inp.trials is None else np.asarray(inp.trials)
            if trials.shape != idx.shape:
                raise ValueError(
                    f"SpikeGeneratorInput {inp.name!r}: trials must match indices in shape."
                )
            keys = np.stack([trials, idx, inp.steps(dt)], axis=1) if idx.size else None
            if keys is not None and np.unique(keys, axis=0).shape[0] != idx.size:
                raise ValueError(
                    f"SpikeGeneratorInput {inp.name!r}: a neuron spikes twice within one time "
                    f"step of {dt} ms; remove duplicates or use a smaller dt_ms."
                )
        else:
            raise ValueError(
                f"Network inputs must be PoissonInput, SpikeGeneratorInput or CurrentInput, got "
                f"{type(inp).__name__}."
            )

    def _validate_projection(
        self,
        proj: Projection,
        sources: dict[str, Any],
        pops: dict[str, Population],
        synapses: dict[str, dict[str, Synapse]],
    ) -> None:
        what = f"Projection {proj.name!r}"
        if proj.source not in sources:
            raise ValueError(
                f"{what}: unknown source {proj.source!r}; known populations and spike inputs "
                f"are {sorted(sources)}."
            )
        if proj.target not in pops:
            raise ValueError(
                f"{what}: unknown target population {proj.target!r}; known populations are "
                f"{sorted(pops)}."
            )
        if not isinstance(proj.synapse, Synapse):
            raise ValueError(f"{what}: synapse must be a neuro.synapses.Synapse.")
        if not isinstance(proj.connectivity, Connectivity):
            raise ValueError(
                f"{what}: connectivity must be AllToAll, OneToOne, FixedProbability or Explicit."
            )
        n_pre, n_post = sources[proj.source].n, pops[proj.target].n
        same = proj.source == proj.target
        if isinstance(proj.connectivity, OneToOne) and n_pre != n_post:
            raise ValueError(
                f"{what}: OneToOne needs equal sizes, got source n={n_pre} and target "
                f"n={n_post}; use Explicit(pre, post) instead."
            )
        if isinstance(proj.connectivity, Explicit):
            try:
                proj.connectivity.build(n_pre, n_post, np.random.default_rng(0))
            except ValueError as err:
                raise ValueError(f"{what}: {err}") from err
        count = _expected_count(proj.connectivity, n_pre, n_post, same)
        syn = proj.synapse
        for label, value in (("weights", proj.weights), ("delay_ms", proj.delay_ms)):
            if isinstance(value, Initializer):
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.ndim > 0:
                ok_matrix = (label == "weights" and isinstance(proj.connectivity, AllToAll)
                             and arr.shape == (n_pre, n_post))
                if count is None:
                    raise ValueError(
                        f"{what}: per-synapse {label} arrays need a connectivity with a known "
                        "number of synapses (AllToAll, OneToOne, Explicit); use an Initializer "
                        f"with {type(proj.connectivity).__name__}."
                    )
                if not ok_matrix and arr.shape != (count,):
                    raise ValueError(
                        f"{what}: {label} has shape {arr.shape} but the projection has {count} "
                        f"synapses; give a scalar or an array of shape ({count},)."
                    )
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{what}: {label} contain NaN or inf.")
            if label == "weights" and syn.kind == "conductance" and np.any(arr < 0):
                raise ValueError(
                    f"{what}: conductance weights (nS) must be >= 0; inhibition comes from the "
                    f"synapse's reversal potential E_rev_mV = {syn.E_rev_mV}."
                )
            if label == "delay_ms" and arr.size:
                _steps_from_delay(arr, self.dt_ms, what)
        if isinstance(proj.connectivity, FixedProbability) and not 0 <= proj.connectivity.p <= 1:
            raise ValueError(f"{what}: p must lie in [0, 1].")
        if proj.plasticity is not None:
            self._validate_plasticity(proj, what)
        existing = synapses.setdefault(proj.target, {})
        other = existing.get(syn.name)
        if other is not None and other != syn:
            raise ValueError(
                f"{what}: synapse {syn.name!r} onto {proj.target!r} is defined twice with "
                f"different kinetics ({other} vs {syn}); give the second one another name."
            )
        existing[syn.name] = syn

    @staticmethod
    def _validate_threshold_adaptation(pop: Population) -> None:
        what = f"Population {pop.name!r}"
        if not isinstance(pop.threshold_adaptation, AdaptiveThresholdParams):
            raise ValueError(
                f"{what}: threshold_adaptation must be None or "
                "neuro.plasticity.AdaptiveThresholdParams(theta_plus=..., tau_theta=...), got "
                f"{type(pop.threshold_adaptation).__name__}."
            )
        field_name = ADAPTIVE_THRESHOLD_PARAMETER.get(pop.model.name)
        if field_name is None:
            raise ValueError(
                f"{what}: model {pop.model.name!r} has no threshold parameter that an adaptive "
                f"threshold can raise; threshold_adaptation works with the models "
                f"{sorted(ADAPTIVE_THRESHOLD_PARAMETER)} (use neuro.models.LIF)."
            )
        value = getattr(pop.params, field_name, None)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(
                f"{what}: threshold_adaptation needs a scalar {type(pop.params).__name__}."
                f"{field_name}, got {value!r}."
            )
        if THETA in pop.model.state_type._fields:
            raise ValueError(
                f"{what}: model {pop.model.name!r} already has a state variable {THETA!r}, "
                "which the adaptive threshold would shadow."
            )

    @staticmethod
    def _validate_plasticity(proj: Projection, what: str) -> None:
        rule = proj.plasticity
        if not isinstance(rule, PLASTICITY_RULES):
            raise ValueError(
                f"{what}: plasticity must be None or one of "
                f"{[r.__name__ for r in PLASTICITY_RULES]}, got {type(rule).__name__}."
            )
        if proj.synapse.kind == "conductance" and rule.w_min < 0:
            raise ValueError(
                f"{what}: plasticity w_min = {rule.w_min} would allow negative conductances; "
                "use w_min >= 0."
            )
        if not isinstance(proj.weights, Initializer):
            _check_plastic_weights(np.asarray(proj.weights, dtype=np.float64), rule, what)

    def _validate_monitor(self, mon: Any, sources: dict[str, Any],
                          pops: dict[str, Population]) -> None:
        kind = type(mon).__name__
        if isinstance(mon, SpikeMonitor | PopulationRateMonitor):
            if mon.population not in sources:
                raise ValueError(
                    f"{kind}: unknown population {mon.population!r}; known are {sorted(sources)}."
                )
        elif isinstance(mon, StateMonitor):
            if mon.population not in pops:
                raise ValueError(
                    f"StateMonitor: unknown population {mon.population!r}; known populations "
                    f"are {sorted(pops)}."
                )
            known = self.variables_of(mon.population)
            if mon.variable not in known:
                raise ValueError(
                    f"StateMonitor on {mon.population!r}: unknown variable {mon.variable!r}; "
                    f"known variables are {list(known)}."
                )
            if not (isinstance(mon.every, int | np.integer) and mon.every >= 1):
                raise ValueError(
                    f"StateMonitor on {mon.population!r}: every must be an int >= 1 (steps)."
                )
            if mon.neurons is not None:
                idx = np.asarray(mon.neurons)
                n = pops[mon.population].n
                if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
                    raise ValueError(
                        f"StateMonitor on {mon.population!r}: neurons must be a 1-D list of "
                        f"indices in [0, {n})."
                    )
        elif isinstance(mon, WeightMonitor):
            projections = {p.name: p for p in self.projections}
            if mon.projection not in projections:
                raise ValueError(
                    f"WeightMonitor: unknown projection {mon.projection!r}; known projections "
                    f"are {sorted(projections)}."
                )
            if projections[mon.projection].plasticity is None:
                raise ValueError(
                    f"WeightMonitor: projection {mon.projection!r} is not plastic (its weights "
                    "never change); give it plasticity=... or read Network.build() instead."
                )
            if not (isinstance(mon.every, int | np.integer) and mon.every >= 1):
                raise ValueError(
                    f"WeightMonitor on {mon.projection!r}: every must be an int >= 1 (steps)."
                )
            if mon.synapses is not None:
                idx = np.asarray(mon.synapses)
                if idx.ndim != 1 or (idx.size and idx.min() < 0):
                    raise ValueError(
                        f"WeightMonitor on {mon.projection!r}: synapses must be a 1-D list of "
                        "indices >= 0."
                    )
        else:
            raise ValueError(
                f"Network monitors must be SpikeMonitor, StateMonitor, PopulationRateMonitor or "
                f"WeightMonitor, got {type(mon).__name__}."
            )

    # -- instantiation -------------------------------------------------------------------
    def build(self) -> Connectome:
        """Instantiate every projection into explicit arrays, seeded by ``self.seed``.

        Each projection's synapses come out sorted by presynaptic index (stable, so the order
        of explicit lists is kept within a presynaptic neuron).
        """
        sources = self.spike_sources
        built = []
        for proj in self.projections:
            rng = trial_rng(self.seed, "projection", proj.name)
            n_pre, n_post = sources[proj.source].n, self.population_map[proj.target].n
            same = proj.source == proj.target
            pre, post = proj.connectivity.build(n_pre, n_post, rng, same)
            count = pre.size
            what = f"Projection {proj.name!r}"
            weight = self._values(proj.weights, count, rng, pre, post, n_pre, n_post)
            if isinstance(proj.weights, Initializer):
                if not np.all(np.isfinite(weight)):
                    raise ValueError(f"{what}: the weight initialiser produced NaN or inf.")
                if proj.synapse.kind == "conductance" and np.any(weight < 0):
                    raise ValueError(
                        f"{what}: conductance weights (nS) must be >= 0; clip the initialiser "
                        "(e.g. NormalClipped(low=0))."
                    )
            if proj.plasticity is not None and isinstance(proj.weights, Initializer):
                _check_plastic_weights(weight, proj.plasticity, what)
            if proj.synapse.kind == "current" and proj.synapse.sign != 1:
                weight *= proj.synapse.sign
            if isinstance(proj.delay_ms, Initializer) or np.ndim(proj.delay_ms) > 0:
                delay = self._values(proj.delay_ms, count, rng, pre, post, n_pre, n_post)
                steps = _steps_from_delay(delay, self.dt_ms, what)
            else:  # one delay for the whole projection: convert once
                step = _steps_from_delay(np.float64(proj.delay_ms), self.dt_ms, what)
                steps = np.full(count, int(step), dtype=np.int64)
            if count > 1 and np.any(pre[1:] < pre[:-1]):
                order = np.argsort(pre, kind="stable")
                pre, post, weight, steps = pre[order], post[order], weight[order], steps[order]
            built.append(BuiltProjection(
                name=proj.name, source=proj.source, target=proj.target, synapse=proj.synapse,
                pre=pre, post=post, weight=weight, delay_steps=steps,
            ))
        return Connectome(tuple(built), self.dt_ms, self.seed)

    @staticmethod
    def _values(value: Value, count: int, rng: np.random.Generator, pre: np.ndarray,
                post: np.ndarray, n_pre: int, n_post: int) -> np.ndarray:
        if isinstance(value, Initializer):
            return np.asarray(value.sample(count, rng), dtype=np.float64)
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            return np.full(count, float(arr))
        if arr.shape == (n_pre, n_post) and arr.shape != (count,):
            return arr[pre, post]
        return arr.copy()

    def initial_values(self, population: str, seed: int) -> dict[str, np.ndarray]:
        """The explicitly given initial values of one population for one trial seed, ``(n,)``."""
        pop = self.population_map[population]
        rng = trial_rng(seed, "initial", pop.name)
        out = {}
        for key in sorted(pop.initial or {}):
            value = pop.initial[key]
            if isinstance(value, Initializer):
                out[key] = np.asarray(value.sample(pop.n, rng), dtype=np.float64)
            else:
                out[key] = np.broadcast_to(np.asarray(value, dtype=np.float64), (pop.n,)).copy()
        return out
