r"""Run a :class:`~bridge.graph.SpikingGraph` on spikebridge's own simulator, :mod:`neuro`.

The runner reads only the graph and builds a :class:`neuro.network.Network` from it, which
either engine simulates: the batched torch engine (CPU or CUDA, each image a trial of the
batch) or Brian2 (one image per run, for small networks: :data:`BRIAN2_MAX_NEURONS`,
:data:`BRIAN2_MAX_SYNAPSES`). It returns the :class:`~bridge.runners.SNNRunResult` of the
snnTorch runner, so :mod:`bridge.diagnostics` reads both.

Mapping
-------
* Every :class:`~bridge.graph.IF` / :class:`~bridge.graph.LIF` node becomes a
  :class:`~neuro.network.Population`; the :class:`~bridge.graph.Output` becomes a population
  ``readout`` of :data:`neuro.models.IF` integrators with :math:`V_{th} = \infty`, whose
  membrane (recorded every step) is the accumulated readout :math:`o[t]`.
* The linear nodes between two neuron layers (:class:`~bridge.graph.Affine`,
  :class:`~bridge.graph.Conv2d`, :class:`~bridge.graph.AvgPool2d`, :class:`~bridge.graph.Flatten`)
  are folded into one affine map :math:`x \mapsto M x + c`: :math:`M` becomes one
  :class:`~neuro.connectivity.Explicit` projection (convolutions unrolled into
  ``(pre, post, weight)`` lists, zero entries dropped), :math:`c` (the biases) a
  :class:`~neuro.network.CurrentInput`.
* Input ``"current"``: the current of the first layer, :math:`M x + c` for each image, is a
  per-trial :class:`~neuro.network.CurrentInput`. Input ``"poisson"``: a
  :class:`~neuro.network.SpikeGeneratorInput` of Bernoulli spikes drawn exactly as the snnTorch
  runner draws them (one ``torch.Generator`` on the CPU seeded with ``seed``, one
  ``torch.rand(batch.shape)`` per batch of ``batch_size`` images and step), so both runners see
  the same spikes.
* :class:`~bridge.graph.MaxPool2d` is not a synapse between neurons: the runner refuses it
  (:class:`NeuroRunnerError`); use the snnTorch runner or an average pool.

Neurons (``neuron=``)
---------------------
``"if"`` -- exact. An IF node becomes :data:`neuro.models.IF` with :math:`C_m = \Delta t`
(pF, ms), :math:`V_{th} = 1` mV, :math:`V_{reset} = 0`, the node's reset mode and
:math:`v[0] = f_0` mV: the membrane is measured in units of the neuron's own threshold, so
the weights onto neuron :math:`i` are divided by :math:`\theta_i` (pA). Synapses are current
pulses that last one step: an exponential current synapse with
:math:`\tau = \Delta t / 1000`, whose decay factor :math:`e^{-1000}` is 0 in floating point,
so a spike adds its weight to the target's current during exactly the next step. The neuron
update :math:`v \leftarrow v + I\,\Delta t/C_m` with :math:`\Delta t/C_m = 1` is then the
graph's :math:`v[t] = v[t-1] + I[t]`, threshold (strict) and reset included. An LIF node becomes
:data:`neuro.models.LIF` (:math:`E_L = 0`, no refractory period) with the input scaled by
:math:`C_m/(\tau(1-\beta))` so that :math:`v[t] = \beta v[t-1] + I[t]`; neuro's LIF fires at
:math:`v \ge V_{th}`, not :math:`>`, and needs :math:`\Delta t \le 0.1\,\tau`.

``"lif_cond"`` -- biological. Every neuron node becomes a conductance-based LIF
(:data:`neuro.models.LIF` with excitatory and inhibitory conductance synapses), parameters from
:class:`CondLIFParams`. The scaling maps one threshold unit of the graph to the voltage
distance :math:`\Delta V = V_{th} - V_{reset}`: a current :math:`u` (bias or analog input, in
threshold units per step) becomes :math:`I = u\,\Delta V\,C_m/\Delta t` pA, and a weight
:math:`w > 0` a conductance

.. math::

    g = \frac{w\,\Delta V\,C_m\,(1 - d)}{\Delta t\,(E_{exc} - V_{ref})}, \qquad
    V_{ref} = \tfrac{1}{2}(V_{th} + V_{reset}),

(:math:`w < 0`: :math:`|w|` onto the inhibitory synapse, :math:`V_{ref} - E_{inh}` below),
with :math:`d = e^{-\Delta t/\tau_{syn}}`: the charge it delivers over its whole time course at
the membrane potential :math:`V_{ref}` raises :math:`v` by :math:`w\,\Delta V`. The leak, the
driving force :math:`E - v` (a neuron near :math:`E_{inh}` cannot be inhibited further) and
the refractory period make it an approximation of the converted network; the readout stays the
exact integrator. How much accuracy it keeps is measured, not assumed.

Time alignment
--------------
In :mod:`neuro` a spike emitted in step :math:`n` acts on its targets in step :math:`n + 1`
(delay 0 delivers at the end of the step), whereas the graph passes it on within the step. So
layer :math:`k` runs :math:`s_k` steps late: :math:`s_k` synaptic hops from the input (the
first layer of a current-encoded graph has :math:`s = 0`, of a Poisson-encoded one 1). Its
constant currents (biases) are switched on at step :math:`s_k` and its spikes at step
:math:`n` are the graph's spikes at step :math:`n - s_k`; the simulation lasts
:math:`T + s_{out} + 1` steps. With ``neuron="if"`` the spike trains are then the graph's,
step for step.

In ``"lif_cond"`` the deeper layers wait their :math:`s_k` steps at rest, their membranes
relaxing towards :math:`E_L` (or :math:`V_{ref}` with ``leak_compensation``).

Synaptic operations are counted as the snnTorch runner counts them (from the graph's
:func:`~bridge.graph.fan_out`, a spike through an average pool counting once per pooled unit),
from the recorded spikes, so the two runners report the same numbers for the same spikes.

Measured
--------
Digits (359 test images), ``T = 64``, batches of 256, one torch thread on a shared 2-core CPU
(load average about 10), converted with the defaults of :func:`bridge.convert`:

* MLP 64-256-10 (ANN 97.2 %): snnTorch runner 10,300 images/s, this runner (torch engine)
  550 images/s in float64 or float32. Spike counts (1.36 million) and predictions identical,
  unrounded graph; readouts within 5e-4 (snnTorch accumulates in float32). A quarter to a
  third of the time is the engine's time loop, most of the rest its
  :class:`~neuro.network.SpikeMonitor` bookkeeping (1.4 million spikes sorted into records).
* CNN conv16-avgpool-conv32-avgpool-fc10 (ANN 94.4 %): 1,100 against 45 images/s (unrolled
  convolutions: 204,800 explicit synapses instead of 4,608 shared weights); identical spikes.
* Brian2 (``"numpy"`` target), the MLP: 1.2 images/s, identical to snnTorch.
* ``"lif_cond"`` (default :class:`CondLIFParams`), accuracy after T = 4, 8, 16, 32, 64 steps:
  CNN 85.5, 91.1, 92.2, 92.5, 93.3 % (IF: 92.5, 94.4, 93.9, 94.4, 94.4 %); with
  ``leak_compensation`` 89.4, 92.2, 93.0, 93.9, 93.3 %; with 5 ms conductances 60.7, 87.7,
  90.0, 92.5, 92.2 %. The MLP keeps the IF's 97.2 % (its one hidden layer receives the images
  as a current, so only leak and threshold differ). The deep layer fires about half as much
  as the IF (2,240 against 4,370 spikes per image): the leak and the smaller driving force near
  threshold take charge the IF keeps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bridge.graph import (
    IF,
    LIF,
    Affine,
    AvgPool2d,
    Conv2d,
    Flatten,
    Input,
    MaxPool2d,
    Output,
    SpikingGraph,
    decay_factor,
    fan_out,
    graph_macs,
)
from bridge.runners.snntorch_runner import SNNRunResult
from neuro.connectivity import Explicit
from neuro.models import IF as NEURO_IF
from neuro.models import LIF as NEURO_LIF
from neuro.models import IFParams, LIFParams
from neuro.network import (
    CurrentInput,
    Network,
    Population,
    Projection,
    SpikeGeneratorInput,
    SpikeMonitor,
    StateMonitor,
)
from neuro.simulation import simulate
from neuro.synapses import Synapse

__all__ = [
    "NEURON_KINDS",
    "BRIAN2_MAX_NEURONS",
    "BRIAN2_MAX_SYNAPSES",
    "NeuroRunnerError",
    "CondLIFParams",
    "NeuroLayout",
    "to_network",
    "run_neuro",
]

NEURON_KINDS = ("if", "lif_cond")
#: Largest network (neurons, readout included) the Brian2 engine is asked to run: Brian2
#: simulates one image per run, so beyond a few thousand neurons the torch engine is the tool.
BRIAN2_MAX_NEURONS = 2_000
#: Largest number of synapses (after folding) for the Brian2 engine.
BRIAN2_MAX_SYNAPSES = 200_000
#: Synaptic time constant of the one-step current pulse, as a fraction of ``dt``: the decay
#: factor ``exp(-1000)`` underflows to exactly 0.
PULSE_TAU_FRACTION = 1e-3
_FOLD_CHUNK_ELEMS = 1 << 22
#: Beyond this many matrix entries (n_pre * n_post) the CPU runs use CSR propagation.
_CSR_MIN_ENTRIES = 1 << 18


class NeuroRunnerError(ValueError):
    """The graph or the request cannot be run on :mod:`neuro` (the message names the fix)."""


@dataclass(frozen=True)
class CondLIFParams:
    """Conductance-based LIF neurons for ``neuron="lif_cond"`` (units: pF, ms, mV).

    Attributes
    ----------
    C_m : membrane capacitance, pF.
    tau_m : membrane time constant, ms (graph LIF nodes keep their own ``tau_ms``); at least
        ``10 * dt`` (:meth:`neuro.models.LIFParams.check_dt`).
    E_L : leak reversal potential, mV.
    V_th, V_reset : threshold and reset, mV; one threshold unit of the graph is
        ``V_th - V_reset``.
    t_ref : absolute refractory period, ms (0: none, as in the graph).
    E_exc, E_inh : reversal potentials of the excitatory and inhibitory synapses, mV;
        ``E_exc > V_th`` and ``E_inh < V_reset``.
    tau_syn : decay time constant of the conductances, ms; ``None`` for a pulse lasting one
        step (:math:`\\tau = \\Delta t / 1000`).
    leak_compensation : inject into the neurons that replace IF nodes a constant current
        :math:`C_m (V_{ref} - E_L)/\\tau_m` (pA), a tonic background drive that cancels the leak
        at :math:`V_{ref}`: the membrane then rests at :math:`V_{ref}` (the IF's initial
        :math:`\\theta/2`) instead of :math:`E_L`.
    """

    C_m: float = 250.0
    tau_m: float = 20.0
    E_L: float = -65.0
    V_th: float = -50.0
    V_reset: float = -65.0
    t_ref: float = 0.0
    E_exc: float = 0.0
    E_inh: float = -80.0
    tau_syn: float | None = None
    leak_compensation: bool = False

    def __post_init__(self) -> None:
        for name in ("C_m", "tau_m", "E_L", "V_th", "V_reset", "t_ref", "E_exc", "E_inh"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise ValueError(f"CondLIFParams.{name} must be a finite number, got {value!r}")
        if not (self.C_m > 0 and self.tau_m > 0 and self.t_ref >= 0):
            raise ValueError("CondLIFParams: C_m and tau_m must be > 0 and t_ref >= 0")
        if not self.E_inh < self.V_reset < self.V_th < self.E_exc:
            raise ValueError(
                f"CondLIFParams needs E_inh < V_reset < V_th < E_exc, got {self.E_inh}, "
                f"{self.V_reset}, {self.V_th}, {self.E_exc} mV"
            )
        if self.tau_syn is not None and not (math.isfinite(self.tau_syn) and self.tau_syn > 0):
            raise ValueError(f"CondLIFParams.tau_syn must be None or > 0, got {self.tau_syn!r}")
        if not isinstance(self.leak_compensation, bool):
            raise ValueError("CondLIFParams.leak_compensation must be True or False")

    @property
    def delta_v(self) -> float:
        """One threshold unit in mV, ``V_th - V_reset``."""
        return self.V_th - self.V_reset

    @property
    def v_ref(self) -> float:
        """Membrane potential at which the driving forces are evaluated for the scaling, mV."""
        return 0.5 * (self.V_th + self.V_reset)


# --------------------------------------------------------------------------------------------
# the folded graph
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Segment:
    """The linear nodes ``ops`` between a spike source (or the input) and a target."""

    source: str
    ops: tuple[tuple[str, Any], ...]
    target: str


def _apply(ops, x: torch.Tensor, bias: bool = True) -> torch.Tensor:
    """The linear nodes ``ops`` applied to a batch ``x`` (in ``x``'s dtype)."""
    for _, node in ops:
        if isinstance(node, Affine):
            x = F.linear(x, node.weight.to(x.dtype), node.bias.to(x.dtype) if bias else None)
        elif isinstance(node, Conv2d):
            x = F.conv2d(x, node.weight.to(x.dtype), node.bias.to(x.dtype) if bias else None,
                         node.stride, node.padding)
        elif isinstance(node, AvgPool2d):
            x = F.avg_pool2d(x, node.kernel_size, node.stride, node.padding)
        elif isinstance(node, Flatten):
            x = x.reshape(x.shape[0], -1)
    return x


def _segments(graph: SpikingGraph) -> list[_Segment]:
    """Split the chain at every neuron node and at the Output."""
    out: list[_Segment] = []
    source, ops = graph.input_name, []
    for name, node in graph.items():
        if isinstance(node, Input):
            continue
        if isinstance(node, MaxPool2d):
            raise NeuroRunnerError(
                f"node {name!r} is a MaxPool2d: its spiking max-pool (gated by running spike "
                "counts) is not a synapse between neurons and has no neuro equivalent; run this "
                "graph with the snnTorch runner (bridge.runners.run) or convert a network "
                "with average pooling (CNNConfig(pooling='avg'))"
            )
        if isinstance(node, (Affine, Conv2d, AvgPool2d, Flatten)):
            ops.append((name, node))
        elif isinstance(node, (IF, LIF, Output)):
            out.append(_Segment(source, tuple(ops), name))
            source, ops = name, []
    return out


def _fold(ops, in_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                   np.ndarray]:
    """``(pre, post, weight, c)``: the non-zero entries of :math:`M` and the constant :math:`c`
    of the affine map of ``ops`` (float64, flat indices in C order)."""
    n_in = math.prod(in_shape)
    with torch.no_grad():
        const = _apply(ops, torch.zeros((1, *in_shape), dtype=torch.float64))[0].reshape(-1)
        n_out = const.numel()
        chunk = max(1, _FOLD_CHUNK_ELEMS // max(n_out, n_in))
        pres, posts, weights = [], [], []
        for lo in range(0, n_in, chunk):
            k = min(chunk, n_in - lo)
            basis = torch.zeros((k, n_in), dtype=torch.float64)
            basis[torch.arange(k), torch.arange(lo, lo + k)] = 1.0
            m = _apply(ops, basis.reshape(k, *in_shape), bias=False).reshape(k, n_out)
            rows, cols = torch.nonzero(m, as_tuple=True)
            pres.append((rows + lo).numpy())
            posts.append(cols.numpy())
            weights.append(m[rows, cols].numpy())
    return (np.concatenate(pres).astype(np.int64), np.concatenate(posts).astype(np.int64),
            np.concatenate(weights), const.numpy())


def _per_neuron(threshold: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """A scalar / per-channel / per-neuron threshold as one float64 value per neuron."""
    t = threshold.to(torch.float64)
    if t.ndim and tuple(t.shape) != shape:
        t = t.reshape((shape[0],) + (1,) * (len(shape) - 1))
    return t.expand(shape).reshape(-1).numpy().copy()


@dataclass(frozen=True)
class NeuroLayout:
    """How a graph sits in the :class:`~neuro.network.Network` that :func:`to_network` builds.

    Attributes
    ----------
    population : ``{graph node: population name}`` for every neuron node and the Output
        (``"readout"``); the Poisson input, if any, is the spike input ``"input"``.
    shift : ``{graph node: steps}`` by which each population runs late (see the module
        docstring); the Output's shift is ``shift[graph.output_name]``.
    n_steps : steps simulated for ``T`` graph steps, ``T + shift_out + 1``.
    synapses : total number of synapses after folding.
    neurons : total number of neurons, readout included.
    """

    population: dict[str, str]
    shift: dict[str, int]
    n_steps: int
    synapses: int
    neurons: int


class _Plan:
    """Everything about a graph that does not depend on the images: folded segments,
    populations, projections and shifts, for one neuron kind."""

    def __init__(self, graph: SpikingGraph, neuron: str, cond: CondLIFParams | None) -> None:
        if neuron not in NEURON_KINDS:
            raise NeuroRunnerError(f"neuron must be one of {NEURON_KINDS}, got {neuron!r}")
        if neuron == "lif_cond" and cond is None:
            cond = CondLIFParams()
        if cond is not None and not isinstance(cond, CondLIFParams):
            raise NeuroRunnerError(f"cond_params must be a CondLIFParams, got {type(cond)!r}")
        self.graph, self.neuron, self.cond = graph, neuron, cond
        self.dt = float(graph.dt_ms)
        self.segments = _segments(graph)
        self.poisson = graph.input.encoding == "poisson"
        self.population: dict[str, str] = {}
        self.shift: dict[str, int] = {}
        self.populations: list[Population] = []
        self.projections: list[Projection] = []
        self.bias: dict[str, np.ndarray] = {}  # target -> current (pA) per neuron, constant
        self.tonic: dict[str, np.ndarray] = {}  # population -> leak compensation (pA), always on
        self.analog_scale: np.ndarray | None = None  # first layer: pA per unit of current
        tau_pulse = self.dt * PULSE_TAU_FRACTION
        self.pulse = Synapse("syn", "current", "exponential", tau_pulse)
        if cond is not None:
            tau = cond.tau_syn if cond.tau_syn is not None else tau_pulse
            self.exc = Synapse("exc", "conductance", "exponential", tau, cond.E_exc)
            self.inh = Synapse("inh", "conductance", "exponential", tau, cond.E_inh)
            self.g_factor = (cond.delta_v * cond.C_m * (1.0 - math.exp(-self.dt / tau))
                             / self.dt)
        n_synapses = 0
        self.largest_matrix = 0  # n_pre * n_post of the largest projection
        for k, seg in enumerate(self.segments):
            node = graph.nodes[seg.target]
            shape = graph.shapes[seg.target]
            n = math.prod(shape)
            is_readout = isinstance(node, Output)
            pop = "readout" if is_readout else f"layer{k + 1}"
            self.population[seg.target] = pop
            # source shift: the input's current acts in step 0, spikes one step later
            if seg.source == graph.input_name:
                self.shift[seg.target] = 1 if self.poisson else 0
            else:
                self.shift[seg.target] = self.shift[seg.source] + 1
            model, params, initial, scale = self._neuron(seg.target, node, shape)
            self.populations.append(Population(pop, n, model, params, initial))
            if self._conductance(node) and isinstance(node, IF) and cond.leak_compensation:
                self.tonic[pop] = np.full(n, cond.C_m * (cond.v_ref - cond.E_L) / cond.tau_m)
            in_shape = graph.input_shape_of(seg.ops[0][0]) if seg.ops else \
                graph.shapes[seg.source]
            pre, post, weight, const = _fold(seg.ops, in_shape)
            if seg.source == graph.input_name and not self.poisson:
                # the first layer's whole current, biases included, comes from the images
                self.analog_scale = self._current_scale(node, scale)
                self.analog_segment = seg
                continue
            if np.any(const != 0):
                self.bias[pop] = const * self._current_scale(node, scale)
            src = "input" if seg.source == graph.input_name else self.population[seg.source]
            n_synapses += pre.size
            self.largest_matrix = max(self.largest_matrix, math.prod(in_shape) * n)
            if self._conductance(node):
                w = weight / scale[post]  # threshold units
                for syn, mask, e_rev in ((self.exc, w > 0, cond.E_exc),
                                         (self.inh, w < 0, cond.E_inh)):
                    if not mask.any():
                        continue
                    g = np.abs(w[mask]) * self.g_factor / abs(e_rev - cond.v_ref)
                    self.projections.append(Projection(
                        src, pop, syn, Explicit(pre[mask], post[mask]), g,
                        name=f"{src}->{pop}:{syn.name}"))
            else:
                pa = weight * self._current_scale(node, scale)[post]
                self.projections.append(Projection(src, pop, self.pulse, Explicit(pre, post),
                                                   pa, name=f"{src}->{pop}"))
        self.n_synapses = n_synapses
        self.n_neurons = sum(p.n for p in self.populations)

    def _conductance(self, node: Any) -> bool:
        return self.cond is not None and isinstance(node, (IF, LIF))

    def _neuron(self, name: str, node: Any, shape: tuple[int, ...]):
        """``(model, params, initial, theta)`` of a population (``theta`` per neuron)."""
        dt = self.dt
        n = math.prod(shape)
        if isinstance(node, Output):
            return NEURO_IF, IFParams(C_m=dt, V_th=math.inf, V_reset=0.0), None, np.ones(n)
        theta = _per_neuron(node.threshold, shape)
        if self.cond is not None:
            c = self.cond
            tau = node.tau_ms if isinstance(node, LIF) else c.tau_m
            params = LIFParams(C_m=c.C_m, tau_m=tau, E_L=c.E_L, V_th=c.V_th, V_reset=c.V_reset,
                               t_ref=c.t_ref,
                               reset_mode="subtract" if node.reset == "subtract" else "value")
            self._check_dt(name, params)
            return NEURO_LIF, params, {"v": c.V_reset + node.v_init_fraction * c.delta_v}, theta
        reset = "subtract" if node.reset == "subtract" else "value"
        initial = {"v": float(node.v_init_fraction)}
        if isinstance(node, IF):
            return NEURO_IF, IFParams(C_m=dt, V_th=1.0, V_reset=0.0, reset_mode=reset), \
                initial, theta
        params = LIFParams(C_m=dt, tau_m=node.tau_ms, E_L=0.0, V_th=1.0, V_reset=0.0,
                           t_ref=0.0, reset_mode=reset)
        self._check_dt(name, params)
        return NEURO_LIF, params, initial, theta

    def _check_dt(self, name: str, params: LIFParams) -> None:
        try:
            params.check_dt(self.dt)
        except ValueError as error:
            raise NeuroRunnerError(
                f"node {name!r}: neuro's LIF needs dt <= 0.1 tau_m, but dt_ms = {self.dt} and "
                f"tau_m = {params.tau_m} ms ({error}); use the snnTorch runner, a smaller "
                "dt_ms, or a longer CondLIFParams.tau_m"
            ) from error

    def _current_scale(self, node: Any, theta: np.ndarray) -> np.ndarray:
        """pA per unit of the graph's current, per target neuron."""
        if isinstance(node, Output):
            return np.ones_like(theta)
        if self.cond is not None:
            return self.cond.delta_v * self.cond.C_m / self.dt / theta
        if isinstance(node, LIF):
            # LIF step: v' = beta v + (1 - beta) R I with R = tau/C; make (1 - beta) R I = u
            beta = decay_factor(node.tau_ms, self.dt)
            return (self.dt / (node.tau_ms * (1.0 - beta))) / theta
        return 1.0 / theta  # IF: C_m = dt, so 1 pA for one step is 1 mV

    def propagation(self, device: str | torch.device, propagation: str) -> str:
        """The torch engine's propagation mode: on the CPU, ``"auto"`` takes CSR products
        for large projections. Converted networks fire a large fraction of their neurons in
        every step, where the engine's event-driven scatter (its CPU default beyond 2**18
        entries, tuned for sparse cortical activity) costs more: digits CNN (conv16-conv32,
        204,800 folded synapses), 64 images, T = 32, 1 thread, loaded 2-core machine: event
        2.2 s, dense 1.05 s, CSR 0.47 s."""
        if propagation != "auto" or torch.device(device).type != "cpu":
            return propagation
        return "sparse" if self.largest_matrix > _CSR_MIN_ENTRIES else "auto"

    def layout(self, T: int) -> NeuroLayout:
        return NeuroLayout(dict(self.population), dict(self.shift),
                           T + self.shift[self.graph.output_name] + 1, self.n_synapses,
                           self.n_neurons)

    def network(self, images: torch.Tensor, T: int,
                input_spikes: np.ndarray | None) -> Network:
        """The network for one batch of images (``input_spikes``: bool ``(T, B, n_in)``)."""
        inputs: list[Any] = [CurrentInput(pop, c) for pop, c in self.tonic.items()]
        for pop, current in self.bias.items():
            target = next(k for k, v in self.population.items() if v == pop)
            s = self.shift[target]
            if s == 0:
                inputs.append(CurrentInput(pop, current))
            else:
                rows = np.zeros((s + 1, current.size))
                rows[s] = current
                inputs.append(CurrentInput(pop, rows))
        if input_spikes is not None:
            steps, trials, idx = np.nonzero(input_spikes)
            n_in = input_spikes.shape[2]
            inputs.append(SpikeGeneratorInput("input", n_in, idx, steps * self.dt, trials))
        else:
            seg = self.analog_segment
            with torch.no_grad():
                x = _apply(seg.ops, images.to(torch.float64))
            amp = x.reshape(len(images), -1).numpy() * self.analog_scale
            inputs.append(CurrentInput(self.population[seg.target], amp, per_trial=True))
        monitors: list[Any] = [SpikeMonitor(p.name) for p in self.populations
                               if p.name != "readout"]
        monitors.append(StateMonitor("readout", "v"))
        return Network(populations=self.populations, inputs=inputs,
                       projections=self.projections, monitors=monitors, dt_ms=self.dt)


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------


def _check_images(graph: SpikingGraph, images: Any) -> torch.Tensor:
    images = torch.as_tensor(images)
    if images.ndim < 2 or tuple(images.shape[1:]) != graph.input_shape:
        raise ValueError(
            f"images must have shape (N, *{graph.input_shape}), got {tuple(images.shape)}"
        )
    if len(images) == 0:
        raise ValueError("images is empty")
    images = images.detach().to("cpu", torch.float32)
    if graph.input.encoding == "poisson" and (images.min() < 0 or images.max() > 1):
        raise ValueError("Poisson encoding needs intensities in [0, 1]")
    return images


def _bernoulli(batch: torch.Tensor, T: int, generator: torch.Generator) -> np.ndarray:
    """Input spikes ``(T, B, n_in)``: one ``torch.rand(batch.shape)`` per step, as the snnTorch
    runner draws them."""
    spikes = torch.stack([torch.rand(batch.shape, generator=generator) < batch
                          for _ in range(T)])
    return spikes.reshape(T, len(batch), -1).numpy()


@dataclass
class _BatchRecord:
    """What one batch produced: per layer ``(graph step, trial, neuron)`` of each spike
    (graph steps ``0..T-1``) and the readout ``(B, T, K)``."""

    spikes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    readout: np.ndarray


def _record(result: Any, plan: _Plan, T: int, trial_offset: int = 0) -> _BatchRecord:
    spikes = {}
    for name, pop in plan.population.items():
        if pop == "readout":
            continue
        rec = result.spikes[pop]
        step = np.rint(rec.time_ms / plan.dt).astype(np.int64) - plan.shift[name]
        keep = (step >= 0) & (step < T)
        spikes[name] = (step[keep], rec.trial[keep] + trial_offset, rec.neuron[keep])
    s_out = plan.shift[plan.graph.output_name]
    values = result.states["readout.v"].values  # (B, n_samples, K), sampled before each step
    return _BatchRecord(spikes, values[:, s_out + 1:s_out + 1 + T, :])


def _merge(records: list[_BatchRecord]) -> _BatchRecord:
    """Concatenate the per-image records of the Brian2 engine (trials already offset)."""
    spikes = {}
    for name in records[0].spikes:
        parts = [r.spikes[name] for r in records]
        spikes[name] = tuple(np.concatenate([p[i] for p in parts]) for i in range(3))
    return _BatchRecord(spikes, np.concatenate([r.readout for r in records]))


def _dense(events: tuple[np.ndarray, ...], T: int, B: int, shape: tuple[int, ...]
           ) -> torch.Tensor:
    """Spikes ``(T, B, *shape)`` (float64) from ``(step, trial, neuron)`` lists."""
    n = math.prod(shape)
    flat = np.bincount((events[0] * B + events[1]) * n + events[2], minlength=T * B * n)
    return torch.from_numpy(flat.astype(np.float64)).reshape(T, B, *shape)


def _operations(plan: _Plan, record: _BatchRecord, batch: torch.Tensor, T: int,
                input_spikes: np.ndarray | None) -> tuple[dict, dict]:
    """Synaptic operations and analog MACs per step of one batch, summed over its samples, as
    :class:`~bridge.runners.SNNTorchNetwork` counts them."""
    graph, B = plan.graph, len(batch)
    synops: dict[str, np.ndarray] = {}
    analog: dict[str, np.ndarray] = {}
    for seg in plan.segments:
        src_shape = graph.shapes[seg.source]
        for position, (name, node) in enumerate(seg.ops):
            if not isinstance(node, (Affine, Conv2d)):
                continue
            prefix = seg.ops[:position]
            fan = fan_out(node, graph.input_shape_of(name)).reshape(-1).to(torch.float64)
            spiking = seg.source != graph.input_name or plan.poisson
            if spiking and not any(isinstance(n, (Affine, Conv2d)) for _, n in prefix):
                if seg.source == graph.input_name:
                    steps, trials, idx = np.nonzero(input_spikes)
                    events = (steps, trials, idx)
                else:
                    events = record.spikes[seg.source]
                n = math.prod(src_shape)
                per_step = np.bincount(events[0] * n + events[2], minlength=T * n)
                x = torch.from_numpy(per_step.astype(np.float64)).reshape(T, *src_shape)
                scale = math.prod(math.prod(p.kernel_size) for _, p in prefix
                                  if isinstance(p, AvgPool2d))
                with torch.no_grad():
                    flat = _apply(prefix, x).reshape(T, -1)
                synops[name] = (flat @ fan).numpy() * scale
                continue
            with torch.no_grad():
                if seg.source == graph.input_name and not plan.poisson:
                    x = _apply(prefix, batch.to(torch.float64)).reshape(B, -1)
                    analog[name] = np.full(T, float(((x != 0).to(fan.dtype) @ fan).sum()))
                    continue
                if seg.source == graph.input_name:
                    x = torch.from_numpy(input_spikes.astype(np.float64))
                    x = x.reshape(T * B, *src_shape)
                else:
                    x = _dense(record.spikes[seg.source], T, B, src_shape)
                    x = x.reshape(T * B, *src_shape)
                flat = _apply(prefix, x).reshape(T, B, -1)
                analog[name] = ((flat != 0).to(fan.dtype) @ fan).sum(dim=1).numpy()
    return synops, analog


def _check_T(T: Any, batch_size: Any) -> None:
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")


def to_network(
    graph: SpikingGraph,
    images: torch.Tensor,
    T: int,
    *,
    neuron: str = "if",
    cond_params: CondLIFParams | None = None,
    seed: int = 0,
) -> tuple[Network, NeuroLayout]:
    """The :class:`~neuro.network.Network` that simulates ``graph`` on ``images`` (each image a
    trial) for ``T`` graph steps, and where the graph sits in it.

    Simulate it with ``neuro.simulate(network, layout.n_steps * graph.dt_ms,
    batch_size=len(images), ...)`` (torch), or one image at a time with Brian2. Arguments as
    :func:`run_neuro`.
    """
    _check_T(T, 1)
    images = _check_images(graph, images)
    plan = _Plan(graph, neuron, cond_params)
    spikes = None
    if plan.poisson:
        generator = torch.Generator()
        generator.manual_seed(seed)
        spikes = _bernoulli(images, T, generator)
    return plan.network(images, T, spikes), plan.layout(T)


def run_neuro(
    graph: SpikingGraph,
    images: torch.Tensor,
    T: int,
    *,
    neuron: str = "if",
    cond_params: CondLIFParams | None = None,
    engine: str = "torch",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    batch_size: int = 256,
    record_spikes: bool = True,
    seed: int = 0,
    brian2_target: str = "numpy",
    propagation: str = "auto",
) -> SNNRunResult:
    """Simulate ``graph`` on ``images`` for ``T`` steps with :mod:`neuro`, batch by batch.

    Parameters
    ----------
    graph : the network (no :class:`~bridge.graph.MaxPool2d`).
    images : ``(N, *input_shape)``; in :math:`[0, 1]` for Poisson encoding.
    T : number of graph time steps (>= 1).
    neuron : ``"if"`` (the graph's own neurons, exact) or ``"lif_cond"`` (conductance-based
        LIF, see the module docstring).
    cond_params : :class:`CondLIFParams` for ``"lif_cond"`` (defaults when ``None``).
    engine : ``"torch"`` or ``"brian2"`` (one image per run; at most
        :data:`BRIAN2_MAX_NEURONS` neurons and :data:`BRIAN2_MAX_SYNAPSES` synapses).
    device, dtype : torch engine device and float type (float64 by default, so that rounding
        does not decide a spike the graph's semantics do not).
    batch_size : images simulated together (torch), and the blocks in which Poisson spikes are
        drawn (both engines; equal to the snnTorch runner's ``batch_size`` for the same spikes).
    record_spikes : keep per-sample, per-neuron spike counts.
    seed : seed of the Poisson encoder (a CPU ``torch.Generator``, as the snnTorch runner on
        the CPU).
    brian2_target : Brian2 code generation target (``"numpy"``: no compilation, the fastest
        start for the small networks Brian2 is meant for here; ``"cython"``).
    propagation : the torch engine's spike propagation (``"event"``, ``"dense"``,
        ``"sparse"``); ``"auto"`` takes CSR products on the CPU for projections of more than
        2**18 matrix entries, else the engine's own choice.

    Returns
    -------
    SNNRunResult
        As :func:`bridge.runners.run`: predictions after every step, the readout after ``T``
        steps (in ``dtype``), spikes per layer and step, per-neuron rates and counts, synaptic
        operations and analog MACs per step, the ANN's MACs; ``device`` is the torch device, or
        ``"brian2:<target>"``.

    Raises
    ------
    NeuroRunnerError
        A max-pool in the graph, an unknown ``neuron`` or ``engine``, a network too large for
        Brian2, an LIF time constant below ``10 dt``.
    """
    _check_T(T, batch_size)
    images = _check_images(graph, images)
    start = time.perf_counter()
    plan = _Plan(graph, neuron, cond_params)
    layout = plan.layout(T)
    if engine not in ("torch", "brian2"):
        raise NeuroRunnerError(f"engine must be 'torch' or 'brian2', got {engine!r}")
    if engine == "brian2":
        if layout.neurons > BRIAN2_MAX_NEURONS or layout.synapses > BRIAN2_MAX_SYNAPSES:
            raise NeuroRunnerError(
                f"the network has {layout.neurons} neurons and {layout.synapses} synapses; the "
                f"Brian2 runner takes at most {BRIAN2_MAX_NEURONS} neurons and "
                f"{BRIAN2_MAX_SYNAPSES} synapses (it simulates one image per run): use "
                "engine='torch'"
            )
        if torch.device(device).type != "cpu":
            raise NeuroRunnerError("the Brian2 engine runs on the CPU; use device='cpu'")
    generator = None
    if plan.poisson:
        generator = torch.Generator()
        generator.manual_seed(seed)
    n = len(images)
    layers = graph.neuron_layers()
    predictions = torch.empty((T, n), dtype=torch.int64)
    outputs = []
    spikes_per_step = {k: np.zeros(T) for k in layers}
    totals = {k: np.zeros(math.prod(graph.shapes[k])) for k in layers}
    counts_all: dict[str, list[torch.Tensor]] = {k: [] for k in layers}
    synops: dict[str, np.ndarray] = {}
    analog: dict[str, np.ndarray] = {}
    connectome = None
    duration = layout.n_steps * plan.dt
    mode = plan.propagation(device, propagation)
    for lo in range(0, n, batch_size):
        batch = images[lo:lo + batch_size]
        b = len(batch)
        input_spikes = _bernoulli(batch, T, generator) if plan.poisson else None
        if engine == "torch":
            network = plan.network(batch, T, input_spikes)
            if connectome is None:
                connectome = network.build()
            result = simulate(network, duration, "torch", batch_size=b, device=str(device),
                              dtype=dtype, connectome=connectome, propagation=mode)
            record = _record(result, plan, T)
        else:
            parts = []
            for i in range(b):
                one = None if input_spikes is None else input_spikes[:, i:i + 1]
                network = plan.network(batch[i:i + 1], T, one)
                if connectome is None:
                    connectome = network.build()
                result = simulate(network, duration, "brian2", brian2_target=brian2_target,
                                  connectome=connectome)
                parts.append(_record(result, plan, T, trial_offset=i))
            record = _merge(parts)
        readout = torch.from_numpy(record.readout)  # (b, T, K)
        predictions[:, lo:lo + b] = readout.argmax(dim=2).T
        outputs.append(readout[:, -1].to(dtype))
        for k in layers:
            size = totals[k].size
            step, trial, idx = record.spikes[k]
            spikes_per_step[k] += np.bincount(step, minlength=T)
            per_sample = np.bincount(trial * size + idx, minlength=b * size).reshape(b, size)
            totals[k] += per_sample.sum(axis=0)
            if record_spikes:
                counts_all[k].append(torch.from_numpy(per_sample.astype(np.float32))
                                     .reshape(b, *graph.shapes[k]))
        ops, macs = _operations(plan, record, batch, T, input_spikes)
        for target, new in ((synops, ops), (analog, macs)):
            for k, v in new.items():
                target[k] = target.get(k, 0.0) + v
    wall = time.perf_counter() - start
    return SNNRunResult(
        T=T,
        dt_ms=graph.dt_ms,
        predictions=predictions,
        output=torch.cat(outputs),
        spikes_per_step={k: torch.from_numpy(v) for k, v in spikes_per_step.items()},
        neuron_rates={k: torch.from_numpy(v / (n * T)).float().reshape(graph.shapes[k])
                      for k, v in totals.items()},
        spike_counts={k: torch.cat(v) for k, v in counts_all.items()} if record_spikes else None,
        synops_per_step={k: torch.from_numpy(np.asarray(v, dtype=np.float64))
                         for k, v in synops.items()},
        analog_macs_per_step={k: torch.from_numpy(np.asarray(v, dtype=np.float64))
                              for k, v in analog.items()},
        ann_macs=graph_macs(graph),
        wall_time_s=wall,
        device=str(torch.device(device)) if engine == "torch" else f"brian2:{brian2_target}",
    )
