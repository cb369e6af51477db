r"""Clock-driven, vectorised torch engine with a leading batch dimension.

One time step ``n`` (clock time :math:`t_n = n\,\Delta t`) runs in the same order as Brian2's
schedule, so that the two engines agree spike for spike on deterministic networks:

1. *record* sampled states (Brian2's ``start`` slot);
2. *input current* of every neuron group, from the state at :math:`t_n` (held over the step):
   :math:`I_\mathrm{in} = I_\mathrm{ext}(t_n) + \sum_k I_k + \sum_k g_k (E_k - v)`;
3. *neuron step* ``model.step(state, I_in, params, dt)`` (integrate, threshold, reset); spikes
   are stamped :math:`t_n`. A population with ``threshold_adaptation`` first decays its
   :math:`\theta`, steps with the threshold raised to :math:`V_{th} + \theta` and adds
   :math:`\theta_+` at its spikes (Brian2: ``dtheta/dt`` in the state update, ``theta +=
   theta_plus`` in the reset); other groups pay nothing for it;
4. *synaptic decay*, exact: :math:`s \leftarrow d\,s` (exponential),
   :math:`s \leftarrow d\,(s + h\,x),\ x \leftarrow d\,x` (alpha),
   with :math:`d = e^{-\Delta t/\tau}`, :math:`h = \Delta t/\tau`;
5. *input spikes* of step ``n`` (Poisson: :math:`P = r\,\Delta t`; spike generators);
6. *propagation*: a spike of step ``n`` through a synapse of delay ``D`` steps is written
   into slot ``(n + D) mod L`` of a ring buffer of per-step synaptic input;
7. *arrivals*: slot ``n mod L`` is added to the synaptic variables (``s += w``;
   ``x += e w`` for alpha kernels) and cleared.

A delay of 0 steps therefore acts within the same step (as Brian2's ``synapses`` slot after
``thresholds``), and a sampled synaptic variable shows the jump from :math:`t_{n+D+1}` on.

Design
------
* Populations that share a model object and equal parameters are merged into one *group*
  (one state tensor, one ``model.step`` call per step), e.g. COBA's E and I populations.
* All synaptic variables of all groups live in one flat ``(B, M)`` tensor per kernel kind, so
  the decay is one multiply. Conductances of a group are laid out ``(k, n)``; the input
  current sums them as a chain of elementwise additions over the ``k`` slices.
* Propagation, per spike source (each group, all Poisson inputs, all generators) chooses:

  ``"event"``  (CPU default) gathers the outgoing synapses of the neurons that spiked
  (``nonzero``) from a padded per-neuron table of ring-buffer offsets
  (``delay * B * M + column``; int64, int32 for tables over 64 MB) and weights, and
  ``scatter_add_``\ s them into the flattened ring buffer: four tensor ops, work ~ spikes x
  out-degree, independent of ``N^2``. The same ``nonzero`` feeds the spike monitors;
  ``"dense"``  (small or dense sources; CUDA up to 2**26 entries) ``spikes @ W`` with ``W`` of
  shape ``(n_src, D*M)`` for the ``D`` distinct delay values (the product then lands in the
  ``D`` ring slots with one ``index_add_``);
  ``"sparse"`` (CUDA beyond that) the same product with ``W^T`` as ``torch.sparse_csr``.

  Measured on the 2-core CPU, 1 thread, float32, COBA N = 4,000, p = 0.02 (320k synapses,
  ~24 Hz): event 88 us/step, CSR 361 us/step, dense 5.2 ms/step -- dense and CSR pay for
  every synapse every step whatever the activity.
* Without delays and alpha kernels the ring buffer is the synaptic state itself (one slot).
* Spikes of event-driven sources are kept as the index lists their propagation computes
  (concatenated every 128 steps, see :class:`_SpikeLog`); other monitored sources are
  written into a preallocated on-device ``(chunk, B, n)`` boolean buffer and turned into
  index arrays once per chunk; population rates are computed from them afterwards.
* ``compile=True`` compiles the dense part of the step (2--4) with inductor, before the time
  loop (``timings["compile_s"]``; see :func:`_compile_step`): one or a few fused C++ loops
  instead of ~25 tensor ops, called without TorchDynamo's per-call guards. The spikes leave
  the kernel as 0/1 floats with the spike count of every block of 32 entries, and
  ``nonzero`` scans only the blocks that spiked. Without plasticity the compiled step returns
  the decayed synaptic state as new tensors (the time loop rebinds the buffers) rather than
  decaying it in place: the input currents, neuron update, decay and spike output are then
  one loop over the neurons (4.5 instead of 7.5 MB of memory traffic per step for 32 trials
  of COBA N = 4,000, 4 passes before). Measured with ``benchmarks/coba.py`` (1 s of
  COBA, 1 thread, shared 2-core machine, one run), time loop per step eager / compiled:
  N = 4,000 145 / 57 us, 16,000 228 / 51 us, 64,000 459 / 167 us, 32 trials of 4,000 in one
  batch 1.19 ms / 286 us (before the one-loop step; after it, 225-245 us for the batch,
  against 26-27 us per step for each of the 32 Brian2 standalone runs: 3.6-3.7x the
  throughput, load average 1-5).
  Compilation costs 4--6 s in a fresh process (imports and tracing; the
  kernels come from inductor's disk cache) and ~0.3 s for a later call in the same process,
  so it pays for runs of seconds of simulated time at N >= 16,000 or for batches, not for a
  short run of a small network; off by default.
* ``compile=True`` on the CPU also compiles each event-driven source's propagation
  (:meth:`_Source.compile_events`): one scalar C++ loop per step takes the two ``nonzero``
  results of the block scan, computes each spike's trial and table row once and adds its
  table row into the buffer, with no ``(spikes, width)`` temporaries; padding entries point
  at distinct columns, so that their (zero) additions do not queue on one address. The
  additions keep their order, so results are bit-identical to the eager engine's. Measured
  (32 trials of COBA N = 4,000, 1 thread, CPU time of the loop, median of 6 rounds of the
  previous and this code alternating in one process on the shared machine): 312 -> 266 us
  per step. With the one-loop step, the loop's split (wall time at load ~1-2): ~135 us for
  the compiled step (128,000 neurons, one ``exp`` and one division each, ~45 us of it the
  ``exp``; the block sums ~7 us), ~60-75 us for the propagation kernel (~35,000 table
  entries, 28% of them padding; bounds checks of the table's offsets are off), ~34 us for
  the block scan (three small ops) and ~5 us of Python around them; a network too small to
  matter still costs ~28 us per step.
"""

from __future__ import annotations

import copy
import functools
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from neuro.engines.torch_plasticity import PlasticityRuntime
from neuro.models._common import decay_factor
from neuro.network import (
    ADAPTIVE_THRESHOLD_PARAMETER,
    THETA,
    Connectome,
    CurrentInput,
    Network,
    PoissonInput,
    Population,
    PopulationRateMonitor,
    SpikeGeneratorInput,
    SpikeMonitor,
    StateMonitor,
)
from neuro.plasticity.homeostasis import (
    AdaptiveThresholdParams,
    adaptive_threshold_step,
    effective_threshold,
)
from neuro.records import (
    SimulationResult,
    SpikeRecord,
    StateRecord,
    rates_from_hits,
    spikes_from_hits,
)
from neuro.synapses import Synapse, propagators

__all__ = ["run_torch", "choose_propagation"]

_SPIKE_CHUNK_ELEMS = 1 << 24  # elements of the on-device spike chunk buffer
_POISSON_CHUNK_ELEMS = 1 << 22
_DENSE_MAX_ELEMS_CPU = 1 << 18
_DENSE_MAX_ELEMS_CUDA = 1 << 26
_INT64_TABLE_MAX_BYTES = 1 << 26  # larger event tables store int32 offsets


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------


@dataclass
class _Group:
    index: int
    model: Any
    params: Any
    pops: list[Population]
    offsets: dict[str, int] = field(default_factory=dict)
    n: int = 0
    # synaptic variable layout: list of (Synapse, kind-specific info)
    exp_vars: list[Synapse] = field(default_factory=list)
    alpha_vars: list[Synapse] = field(default_factory=list)
    exp_start: int = 0
    alpha_start: int = 0
    adaptation: AdaptiveThresholdParams | None = None


@functools.cache
def _with_theta(state_type: type) -> type:
    """The model's state named tuple with one more field, ``theta`` (one class per model)."""
    fields = [(f, torch.Tensor) for f in state_type._fields] + [(THETA, torch.Tensor)]
    return NamedTuple(f"{state_type.__name__}WithTheta", fields)


class _AdaptiveThreshold:
    r"""A group's adaptive threshold around its model's step (see
    :class:`~neuro.network.Population`): the state carries ``theta`` as a last field; a step
    decays it, runs ``model.step`` with the threshold parameter raised to
    :math:`V_{th} + \theta`, and adds the jumps with
    :func:`~neuro.plasticity.adaptive_threshold_step` (nothing changes with
    ``learning=False``)."""

    def __init__(self, group: _Group, learning: bool, dt: float) -> None:
        self.model, self.params, self.rule = group.model, group.params, group.adaptation
        self.learning = bool(learning)
        self.field = ADAPTIVE_THRESHOLD_PARAMETER[group.model.name]
        self.base = float(getattr(group.params, self.field))
        self.decay = decay_factor(dt, self.rule.tau_theta)
        self.model_state = group.model.state_type
        self.state_type = _with_theta(group.model.state_type)

    def initial(self, state: Any) -> Any:
        return self.state_type(*state, torch.zeros_like(state.v))

    def step(self, state: Any, i_in: torch.Tensor, dt: float) -> tuple[torch.Tensor, Any]:
        theta = state[-1]
        # Brian2's order: the state update decays theta before the threshold is tested
        seen = theta * self.decay if self.learning else theta
        params = copy.copy(self.params)  # a private copy: the frozen original is never touched
        object.__setattr__(params, self.field, effective_threshold(self.base, seen))
        spikes, new = self.model.step(self.model_state(*state[:-1]), i_in, params, dt)
        theta = adaptive_threshold_step(theta, spikes, self.rule, dt, learning=self.learning)
        return spikes, self.state_type(*new, theta)


def _params_equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - params holding arrays compare elementwise
        return a is b


def _make_groups(network: Network, merge: bool) -> list[_Group]:
    groups: list[_Group] = []
    for pop in network.populations:
        target = None
        if merge:
            for g in groups:
                if (g.model is pop.model and _params_equal(g.params, pop.params)
                        and g.adaptation == pop.threshold_adaptation):
                    target = g
                    break
        if target is None:
            target = _Group(len(groups), pop.model, pop.params, [],
                            adaptation=pop.threshold_adaptation)
            groups.append(target)
        target.offsets[pop.name] = target.n
        target.pops.append(pop)
        target.n += pop.n
    for g in groups:
        syns: list[Synapse] = []
        for pop in g.pops:
            for syn in network.synapses_of(pop.name):
                if syn not in syns:
                    syns.append(syn)
        # current variables first, then conductances, within each kernel kind
        ordered = sorted(syns, key=lambda s: s.kind == "conductance")
        g.exp_vars = [s for s in ordered if s.kernel == "exponential"]
        g.alpha_vars = [s for s in ordered if s.kernel == "alpha"]
    m_exp = m_alpha = 0
    for g in groups:
        g.exp_start, g.alpha_start = m_exp, m_alpha
        m_exp += len(g.exp_vars) * g.n
        m_alpha += len(g.alpha_vars) * g.n
    return groups


def choose_propagation(n_src: int, n_cols: int, n_delays: int, n_syn: int, device: str) -> str:
    """Pick ``"dense"``, ``"sparse"`` or ``"event"`` for one spike source.

    CPU: dense when the ``(n_src, D*M)`` matrix is small (<= 2**18 entries) or more than 30%
    full, else event-driven. CUDA: dense up to 2**26 entries, else CSR (event-driven would
    synchronise with the host every step).
    """
    elems = n_src * n_cols * n_delays
    density = n_syn / max(elems, 1)
    if str(device).startswith("cuda"):
        return "dense" if elems <= _DENSE_MAX_ELEMS_CUDA else "sparse"
    return "dense" if (elems <= _DENSE_MAX_ELEMS_CPU or density > 0.3) else "event"


def _unique_delays(parts: list[tuple]) -> np.ndarray:
    """Distinct delay values (steps) over all parts, cheap when a part has a single delay."""
    values: set[int] = set()
    for *_, d in parts:
        lo, hi = int(d.min()), int(d.max())
        values.update((lo,) if lo == hi else np.unique(d).tolist())
    return np.array(sorted(values), dtype=np.int64)


class _Source:
    """Outgoing synapses of one spike source, prepared for one propagation strategy.

    ``parts`` holds one ``(pre, col, weight, delay)`` tuple per projection from this source:
    presynaptic index within the source (sorted, as :meth:`Network.build` returns them),
    buffer column, weight (times the kernel's jump scale) and delay in steps.
    """

    def __init__(self, name: str, n: int, parts: list[tuple], *, batch: int, m_total: int,
                 ring: int, mode: str, device: torch.device, dtype: torch.dtype) -> None:
        self.name, self.n, self.mode = name, n, mode
        self.batch, self.m_total, self.ring = batch, m_total, ring
        self.n_syn = int(sum(p[0].size for p in parts))
        bm = batch * m_total
        self.bm, self.lbm = bm, ring * bm
        if self.n_syn == 0:
            self.mode = "none"
            return
        if mode == "event":
            # Padded per-neuron table of outgoing synapses: row i lists the flat ring-buffer
            # offsets (delay * B * M + column) and weights of neuron i's synapses; padding has
            # weight 0 (adding 0 anywhere is harmless). Filled part by part, without a global
            # sort or concatenation (N = 64,000 has 82 million synapses).
            counts = [np.bincount(p[0], minlength=n) for p in parts]
            total = np.sum(counts, axis=0)
            width = int(total.max())
            # int64 offsets feed scatter_add_ directly; int32 (converted per step) halves the
            # table where it is large (N = 64,000: 360 MB instead of 720 MB)
            small = n * width * 8 <= _INT64_TABLE_MAX_BYTES
            index_dtype = np.int32 if 2 * self.lbm < 2**31 - 1 and not small else np.int64
            # padding entries (weight 0) go to columns 0, 1, 2, ... of slot 0: adding 0 to
            # different places keeps the scatter's additions independent of each other (to one
            # place, each would wait for the previous one)
            dcol = np.empty((n, width), dtype=index_dtype)
            dcol[:] = np.arange(width) % max(m_total, 1)
            wpad = np.zeros((n, width), dtype=torch.empty((), dtype=dtype).numpy().dtype)
            base = np.zeros(n, dtype=np.int64)
            for (pre, col, weight, delay), cnt in zip(parts, counts, strict=True):
                if pre.size > 1 and np.any(pre[1:] < pre[:-1]):
                    order = np.argsort(pre, kind="stable")
                    pre, col, weight, delay = pre[order], col[order], weight[order], delay[order]
                # synapse k of this part (sorted by pre) is the (k - starts[i])-th of neuron
                # i = pre[k] and goes to table entry i * width + base[i] + k - starts[i]; the
                # row offsets are spread with np.repeat (pre is sorted): fewer full-size
                # temporaries than indexing with pre (N = 64,000: setup 6 -> 4-5 s CPU)
                flat = np.repeat(np.arange(n, dtype=np.int64) * width + base
                                 - (np.cumsum(cnt) - cnt), cnt)
                flat += np.arange(pre.size, dtype=np.int64)
                d_lo, d_hi = int(delay.min()), int(delay.max())
                if d_lo != d_hi:
                    dcol.reshape(-1)[flat] = delay * bm + col
                else:
                    dcol.reshape(-1)[flat] = col + d_lo * bm if d_lo else col
                wpad.reshape(-1)[flat] = weight
                base += cnt
            self.dcol = torch.as_tensor(dcol, device=device)
            self.wpad = torch.as_tensor(wpad, device=device)
        else:
            pre, col, weight, delay = (np.concatenate(x) for x in zip(*parts, strict=True))
            dvals, dinv = np.unique(delay, return_inverse=True)
            self.dvals = torch.as_tensor(dvals, device=device)
            self.single_delay = int(dvals[0]) if dvals.size == 1 else None
            self.n_delays = int(dvals.size)
            cols = dinv * m_total + col
            if mode == "dense":
                w = torch.zeros((n, self.n_delays * m_total), device=device, dtype=dtype)
                w.index_put_(
                    (torch.as_tensor(pre, device=device), torch.as_tensor(cols, device=device)),
                    torch.as_tensor(weight, device=device, dtype=dtype), accumulate=True)
                self.w = w
            else:
                with warnings.catch_warnings():  # "sparse CSR support is in beta"
                    warnings.simplefilter("ignore", UserWarning)
                    coo = torch.sparse_coo_tensor(
                        torch.as_tensor(np.stack([cols, pre]), device=device),
                        torch.as_tensor(weight, device=device, dtype=dtype),
                        (self.n_delays * m_total, n), check_invariants=True).coalesce()
                    self.wt = coo.to_sparse_csr()

    def propagate(self, spikes: torch.Tensor, t: int, buf: torch.Tensor,
                  buf_flat: torch.Tensor) -> None:
        """Add the input caused by ``spikes`` (bool ``(B, n)``) of step ``t`` to the buffer."""
        mode = self.mode
        if mode == "none":
            return
        if mode == "event":
            nz = spikes.nonzero()
            if nz.shape[0]:
                self.propagate_events(nz[:, 0], nz[:, 1], t, buf_flat)
            return
        x = spikes.to(buf.dtype)
        if mode == "dense":
            out = x @ self.w
        else:
            out = (self.wt @ x.T).T
        if self.single_delay is not None:
            buf[(t + self.single_delay) % self.ring] += out
        else:
            out = out.reshape(self.batch, self.n_delays, self.m_total).transpose(0, 1)
            buf.index_add_(0, (self.dvals + t) % self.ring, out)

    def propagate_events(self, trial: torch.Tensor | None, rows: torch.Tensor, t: int,
                         buf_flat: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Event mode: add the synapses of the ``k > 0`` spikes ``(trial, rows)`` (trial and
        neuron indices; ``trial`` is ignored when ``B = 1``) of step ``t`` to the buffer.
        Returns ``(trial, rows)``."""
        tgt = self.dcol.index_select(0, rows)
        if self.batch > 1:
            # in the table's index type: an int64 offset would promote (copy) the whole
            # (k, width) block
            tgt += (trial * self.m_total).to(tgt.dtype).unsqueeze(1)
        if self.ring > 1:
            tgt = (tgt + (t % self.ring) * self.bm).remainder_(self.lbm)
        # scatter_add_ with an int64 index: 1.5x faster than index_add_ here (both add in
        # index order on one thread)
        buf_flat.scatter_add_(0, tgt.view(-1).to(torch.int64),
                              self.wpad.index_select(0, rows).view(-1))
        return trial, rows

    def compile_events(self, buf_flat: torch.Tensor, block: int | None) -> None:
        """Compile this source's event propagation into one inductor loop (``compile=True``,
        CPU): find the spiking neurons' table rows, add the trial and ring offsets and
        accumulate the weights into the buffer, without materialising the ``(k, width)``
        offsets and weights. Traced with symbolic sizes (any number of spikes, one
        compilation) and called without TorchDynamo's guards; scalar code (``cpp.simdlen =
        1``: the scatter cannot use vectors) over an int32 copy of the table where offsets
        fit. The spikes come as :meth:`propagate_compiled` takes them: with ``block``, the
        hit blocks and the ``(block row, lane)`` pairs within them (the two nonzero()s of
        :func:`_spike_indices`, whose index arithmetic moves into the kernel), else
        ``(trial, neuron)``. The additions happen in the same order as in
        :meth:`propagate_events` (spike by spike in trial-major order, table column by
        column), so the results are the same to the bit."""
        from torch.fx.experimental.proxy_tensor import make_fx

        dcol = self.dcol
        if dcol.dtype == torch.int64 and 2 * self.lbm < 2**31 - 1:
            dcol = dcol.to(torch.int32)
        batch, m_total, ring, lbm, n = self.batch, self.m_total, self.ring, self.lbm, self.n

        def kernel(buf, dcol, wpad, first, second, shift):
            if block is None:
                trial, rows = first, second
            else:  # first: hit blocks; second: (row among them, lane) of every spike
                flat = first[second[:, 0]] * block + second[:, 1]
                trial = torch.div(flat, n, rounding_mode="floor")
                rows = flat - trial * n
            tgt = dcol[rows]
            if batch > 1:
                tgt = tgt + (trial * m_total).to(tgt.dtype).unsqueeze(1)
            if ring > 1:
                tgt = (tgt + shift).remainder(lbm)
            buf.index_put_((tgt,), wpad[rows], accumulate=True)
            # returned, hence computed once per spike (not again for every table column)
            return () if block is None else (trial, rows)

        # example sizes: none equal to another argument's, so that tracing keeps them symbols
        # of their own (equal sizes would be traced as one symbol)
        taken = {2, buf_flat.numel(), *dcol.shape}
        k = next(k for k in range(17, 17 + 2 * len(taken) + 2)
                 if k not in taken and k + 1 not in taken)
        device = buf_flat.device
        first = torch.zeros(k, dtype=torch.int64, device=device)
        # nonzero() returns its (k, 2) indices column by column (strides (1, k)) on the CPU
        second = (torch.zeros(k, dtype=torch.int64, device=device) if block is None
                  else torch.zeros((2, k + 1), dtype=torch.int64, device=device).t())
        shift = torch.zeros((), dtype=torch.int64, device=device)
        example = [torch.zeros_like(buf_flat), dcol, self.wpad, first, second, shift]
        graph = make_fx(kernel, tracing_mode="symbolic")(*example)
        fake = [x.meta["val"] for x in graph.graph.nodes if x.op == "placeholder"]
        # no bounds check per table entry (~10% of the kernel): the table's offsets lie in
        # the buffer by construction, and the rows and trials come from nonzero()
        with torch._inductor.config.patch({"cpp.simdlen": 1, "assert_indirect_indexing": False}):
            self._kernel = torch._inductor.compile(graph, fake)
        self._dcol_k, self._block = dcol, block
        self._shifts = [torch.tensor(d * self.bm, dtype=torch.int64, device=device)
                        for d in range(ring)]

    def propagate_compiled(self, first: torch.Tensor | None, second: torch.Tensor, t: int,
                           buf_flat: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """:meth:`propagate_events` through the kernel of :meth:`compile_events`, for the
        spikes ``(first, second)`` in the kernel's form (a single spike: the eager path, since
        a size of 1 is no size the kernel was traced for). Returns the spikes' trial and
        neuron indices (trial ``None`` when ``B = 1``)."""
        if self._block is None:
            if second.shape[0] < 2:
                self.propagate_events(first, second, t, buf_flat)
            else:
                self._kernel(buf_flat, self._dcol_k, self.wpad,
                             second if first is None else first, second,
                             self._shifts[t % self.ring])
            return first, second
        if second.shape[0] < 2:
            rows = first.index_select(0, second[:, 0]) * self._block + second[:, 1]
            trial = rows.div(self.n, rounding_mode="floor")
            rows = rows - trial * self.n
            self.propagate_events(trial, rows, t, buf_flat)
        else:
            if second.stride(0) != 1:  # the layout the kernel was traced with
                second = second.t().contiguous().t()
            trial, rows = self._kernel(buf_flat, self._dcol_k, self.wpad, first, second,
                                       self._shifts[t % self.ring])
        return (None if self.batch == 1 else trial), rows


class _SpikeLog:
    """Spikes of one event-driven source, step by step: the index tensors of every step are
    concatenated into one tensor every ``every`` steps.

    Keeping every step's small index tensors until the end instead left them scattered
    between the per-step state tensors in the heap, which then kept growing (fresh pages
    every step; measured with 32 trials of COBA N = 4,000 over 3,000 steps: 0.76 GB of growth
    and ~50 page faults per step, the first run in a process up to 1.8x slower than the
    second; with this log ~3 faults per step).
    """

    def __init__(self, every: int = 128) -> None:
        self.every = every
        self.pending: list[tuple[torch.Tensor | None, torch.Tensor]] = []
        self.chunks: list[tuple[torch.Tensor | None, torch.Tensor]] = []
        self.steps: list[int] = []
        self.counts: list[int] = []

    def add(self, t: int, trial: torch.Tensor | None, rows: torch.Tensor) -> None:
        """Record the spikes ``(trial, rows)`` of step ``t`` (``trial`` ``None``: trial 0)."""
        self.pending.append((trial, rows))
        self.steps.append(t)
        self.counts.append(rows.shape[0])
        if len(self.pending) == self.every:
            self._merge()

    def _merge(self) -> None:
        trials = [p[0] for p in self.pending]
        self.chunks.append((None if trials[0] is None else torch.cat(trials),
                            torch.cat([p[1] for p in self.pending])))
        self.pending = []

    def hits(self) -> np.ndarray:
        """``(spikes, 3)`` array of step, trial and neuron indices."""
        if self.pending:
            self._merge()
        neuron = torch.cat([c[1] for c in self.chunks]).cpu().numpy()
        trial = (np.zeros_like(neuron) if self.chunks[0][0] is None
                 else torch.cat([c[0] for c in self.chunks]).cpu().numpy())
        steps = np.repeat(np.asarray(self.steps, dtype=np.int64), self.counts)
        return np.column_stack([steps, trial, neuron])


def _nz_block(size: int) -> int | None:
    """Block length for :func:`_spike_indices`: the largest of 32, 16, 8 dividing ``size``."""
    return next((b for b in (32, 16, 8) if size % b == 0), None)


def _spike_indices(spikes: torch.Tensor, block_sums: torch.Tensor | None, block: int | None
                   ) -> tuple[torch.Tensor | None, torch.Tensor] | None:
    """Trial and neuron indices of the spikes ``(B, n)`` (``None`` if there are none).

    With ``block_sums``, the spike counts of consecutive blocks of ``block`` entries of the
    flattened spikes, only the blocks that spiked are scanned: a nonzero() over ``B n / block``
    counts and one over the hit blocks, instead of one over all ``B n`` entries (4-5x less
    time at ``B n = 128,000``). ``trial`` is ``None`` when ``B = 1``.
    """
    if block_sums is None:
        nz = spikes.nonzero()
        return (nz[:, 0], nz[:, 1]) if nz.shape[0] else None
    hit_blocks = block_sums.nonzero().view(-1)
    if hit_blocks.shape[0] == 0:
        return None
    hit = spikes.view(-1, block).index_select(0, hit_blocks).nonzero()
    flat = hit_blocks.index_select(0, hit[:, 0]).mul_(block).add_(hit[:, 1])
    b, n = spikes.shape
    if b == 1:
        return None, flat
    trial = flat.div(n, rounding_mode="floor")
    return trial, flat.sub_(trial * n)


def _compile_step(step, states, s_exp, s_ai, s_ax, ext_t, sums_present, syn_out):
    """Compile ``step(states, s_exp, s_ai, s_ax, ext_t) -> (spikes, new_states, sums, syn)``.

    The step is traced on fake tensors (:func:`~torch.fx.experimental.proxy_tensor.make_fx`)
    into one graph of flat tensor arguments and compiled with :func:`torch._inductor.compile`,
    so that a call skips TorchDynamo's frame evaluation and guards (measured at N = 16,000:
    21 instead of 36 us per call; about 15 us of every step). The compiled step is called
    once on copies of the arguments (it may update ``s_exp``, ``s_ai``, ``s_ax`` in place) so
    that kernels are loaded before the time loop. A step that cannot be traced that way
    (data-dependent Python control flow raises on fake tensors) falls back to
    :func:`torch.compile`. ``sums_present`` says which entries of ``sums`` are tensors;
    ``syn_out`` whether ``syn`` is the new ``(s_exp, s_ai, s_ax)`` (else ``None``: the step
    updates them in place).
    """
    types = [type(st) for st in states]
    sizes = [len(st) for st in states]
    present = [e is not None for e in ext_t]
    n_groups = len(states)

    def flatten(states, s_exp, s_ai, s_ax, ext_t):
        return ([x for st in states for x in st] + [s_exp, s_ai, s_ax]
                + [e for e in ext_t if e is not None])

    def unflatten(args):
        it = iter(args)
        states = [typ(*(next(it) for _ in range(k))) for typ, k in zip(types, sizes, strict=True)]
        s_exp, s_ai, s_ax = next(it), next(it), next(it)
        return states, s_exp, s_ai, s_ax, [next(it) if p else None for p in present]

    def flat_step(*args):
        spikes, new_states, sums, syn = step(*unflatten(args))
        return (*spikes, *(x for st in new_states for x in st),
                *(x for x in sums if x is not None), *(syn if syn_out else ()))

    def copies():
        return [x.clone() for x in flatten(states, s_exp, s_ai, s_ax, ext_t)]

    try:
        from torch.fx.experimental.proxy_tensor import make_fx

        example = copies()
        graph = make_fx(flat_step, tracing_mode="fake", _allow_non_fake_inputs=True)(*example)
        compiled = torch._inductor.compile(graph, example)
        cuts = np.cumsum([n_groups] + sizes).tolist()

        def call(states, s_exp, s_ai, s_ax, ext_t):
            out = compiled(*flatten(states, s_exp, s_ai, s_ax, ext_t))
            new_states = [typ(*out[a:b])
                          for typ, a, b in zip(types, cuts[:-1], cuts[1:], strict=True)]
            it = iter(out[cuts[-1]:])
            sums = [next(it) if p else None for p in sums_present]
            return out[:n_groups], new_states, sums, (tuple(it) if syn_out else None)

        call(*unflatten(copies()))
        return call
    except Exception:  # noqa: BLE001 - any tracing or lowering failure: use TorchDynamo
        compiled = torch.compile(step, dynamic=False)
        compiled(*unflatten(copies()))
        return compiled


# --------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------


def _as_dtype(dtype: Any) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    return {"float32": torch.float32, "float64": torch.float64}[str(dtype)]


def run_torch(
    network: Network,
    duration_ms: float,
    *,
    batch_size: int = 1,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
    connectome: Connectome | None = None,
    propagation: str = "auto",
    compile: bool = False,
    merge_populations: bool = True,
    progress: bool = False,
    timings: dict | None = None,
    learning: bool = True,
    reward: Any = None,
    fused: bool = False,
    poisson_sampler: str = "bernoulli",
) -> SimulationResult:
    """Simulate ``network`` for ``duration_ms`` with the torch engine.

    Parameters
    ----------
    network : the :class:`~neuro.network.Network`.
    duration_ms : simulated time (ms); rounded to a whole number of steps.
    batch_size : ``B`` independent trials sharing the connectome; trial ``b`` uses the seed
        ``seed + b`` for its initial state and Poisson inputs.
    seed : simulation seed (the connectome uses ``network.seed``).
    device, dtype : torch device (``"cpu"``/``"cuda"``) and float type (float32 default).
    connectome : a prebuilt ``network.build()`` to reuse (built here otherwise).
    propagation : ``"auto"``, ``"event"``, ``"dense"`` or ``"sparse"`` (see module docstring).
    compile : compile the dense part of the step with inductor before the time loop (see
        the module docstring for when it pays).
    merge_populations : merge populations sharing a model and parameters into one group.
    progress : show a tqdm progress bar.
    timings : if a dict is given, it receives ``build_s``, ``setup_s``, ``run_s``, ``total_s``
        (and ``compile_s``, the part of ``setup_s`` spent compiling, with ``compile=True``).
    learning : ``False`` freezes the weights of plastic projections (traces still advance)
        and the adaptive thresholds (``theta`` neither decays nor jumps).
    reward : reward of R-STDP projections: ``None``, an array ``(n_steps,)`` or
        ``(batch, n_steps)`` (``NaN``: no delivery) or a callable ``reward(step, spikes)``; see
        :mod:`neuro.engines.torch_plasticity`, which also gives the update order.
    fused : simulate feed-forward (plastic) networks in chunks, event-driven and, with
        ``compile=True``, compiled (:func:`~neuro.engines.torch_plasticity.run_fused`); falls
        back to the step-by-step loop with a warning for other networks.
    poisson_sampler : fused path only: ``"bernoulli"`` (the same spikes as the step-by-step
        loop) or ``"intervals"`` (geometric inter-spike intervals, far fewer random numbers).

    Returns
    -------
    SimulationResult with ``engine="torch"``.
    """
    t_start = time.perf_counter()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if fused:
        from neuro.engines import torch_plasticity

        reason = torch_plasticity.fused_unsupported(network, reward)
        if reason is None:
            return torch_plasticity.run_fused(
                network, duration_ms, batch_size=batch_size, seed=seed, device=device,
                dtype=_as_dtype(dtype), connectome=connectome, compile=compile,
                progress=progress, timings=timings, learning=learning,
                poisson_sampler=poisson_sampler)
        warnings.warn(f"fused=True ignored: {reason}.", UserWarning, stacklevel=2)
    device = torch.device(device)
    dtype = _as_dtype(dtype)
    dt = float(network.dt_ms)
    n_steps = network.n_steps(duration_ms)
    B = int(batch_size)
    if connectome is None:
        connectome = network.build()
    t_built = time.perf_counter()

    groups = _make_groups(network, merge_populations)
    group_of = {p.name: g for g in groups for p in g.pops}
    m_exp = sum(len(g.exp_vars) * g.n for g in groups)
    m_alpha = sum(len(g.alpha_vars) * g.n for g in groups)
    m_total = m_exp + m_alpha
    ring = connectome.max_delay_steps + 1

    def tens(a: Any, dt_: torch.dtype = dtype) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), device=device, dtype=dt_)

    # ---- synaptic constants ----------------------------------------------------------
    dec_exp = np.ones(m_exp)
    dec_alpha = np.ones(m_alpha)
    h_alpha = np.zeros(m_alpha)
    for g in groups:
        for k, syn in enumerate(g.exp_vars):
            a = g.exp_start + k * g.n
            dec_exp[a:a + g.n] = propagators(syn.tau_ms, dt)[0]
        for k, syn in enumerate(g.alpha_vars):
            a = g.alpha_start + k * g.n
            d, h = propagators(syn.tau_ms, dt)
            dec_alpha[a:a + g.n], h_alpha[a:a + g.n] = d, h
    dec_exp_t, dec_alpha_t, h_alpha_t = tens(dec_exp), tens(dec_alpha), tens(h_alpha)

    def column_of(target: str, syn: Synapse) -> int:
        """Buffer column of neuron 0 of population ``target`` for synapse ``syn``."""
        g = group_of[target]
        off = g.offsets[target]
        if syn.kernel == "exponential":
            return g.exp_start + g.exp_vars.index(syn) * g.n + off
        return m_exp + g.alpha_start + g.alpha_vars.index(syn) * g.n + off

    # ---- spike sources ---------------------------------------------------------------
    poisson = [i for i in network.inputs if isinstance(i, PoissonInput)]
    generators = [i for i in network.inputs if isinstance(i, SpikeGeneratorInput)]
    block_of: dict[str, tuple[str, int]] = {}
    for g in groups:
        for p in g.pops:
            block_of[p.name] = (f"group{g.index}", g.offsets[p.name])
    n_poisson = n_gen = 0
    for inp in poisson:
        block_of[inp.name] = ("poisson", n_poisson)
        n_poisson += inp.n
    for inp in generators:
        block_of[inp.name] = ("generators", n_gen)
        n_gen += inp.n
    block_size = {f"group{g.index}": g.n for g in groups}
    block_size.update(poisson=n_poisson, generators=n_gen)

    per_block: dict[str, list] = {b: [] for b in block_size}
    plastic_names = PlasticityRuntime.plastic_names(network)
    for bp in connectome.projections:
        if bp.n_synapses == 0 or bp.name in plastic_names:
            continue
        block, off = block_of[bp.source]
        col = column_of(bp.target, bp.synapse) + bp.post
        weight = bp.weight * bp.synapse.jump_scale if bp.synapse.jump_scale != 1 else bp.weight
        per_block[block].append((bp.pre + off if off else bp.pre, col, weight, bp.delay_steps))
    sources: dict[str, _Source] = {}
    for block, parts in per_block.items():
        if not parts:
            continue
        mode = propagation
        if mode == "auto":
            mode = choose_propagation(block_size[block], m_total, _unique_delays(parts).size,
                                      sum(p[0].size for p in parts), device.type)
        sources[block] = _Source(block, block_size[block], parts, batch=B, m_total=m_total,
                                 ring=ring, mode=mode, device=device, dtype=dtype)

    # ---- neuron state ----------------------------------------------------------------
    states = []
    syn_exp = torch.zeros((B, m_exp), device=device, dtype=dtype)
    syn_ai = torch.zeros((B, m_alpha), device=device, dtype=dtype)
    syn_ax = torch.zeros((B, m_alpha), device=device, dtype=dtype)
    adaptive = [None if g.adaptation is None else _AdaptiveThreshold(g, learning, dt)
                for g in groups]
    for g in groups:
        state = g.model.initial_state(g.params, (B, g.n), device, dtype)
        if adaptive[g.index] is not None:
            state = adaptive[g.index].initial(state)
        overrides: dict[str, np.ndarray] = {}
        for pop in g.pops:
            if not pop.initial:
                continue
            off = g.offsets[pop.name]
            for b in range(B):
                for key, val in network.initial_values(pop.name, seed + b).items():
                    if key in state._fields:
                        if key not in overrides:  # copied once, not once per trial
                            overrides[key] = (
                                getattr(state, key).detach().cpu().numpy().astype(np.float64))
                        overrides[key][b, off:off + pop.n] = val
                    else:
                        syn = next(s for s in network.synapses_of(pop.name)
                                   if key in (s.variable, s.aux_variable))
                        c = column_of(pop.name, syn)
                        if syn.kernel == "exponential":
                            syn_exp[b, c:c + pop.n] = tens(val)
                        elif key == syn.variable:
                            syn_ai[b, c - m_exp:c - m_exp + pop.n] = tens(val)
                        else:
                            syn_ax[b, c - m_exp:c - m_exp + pop.n] = tens(val)
        if overrides:
            state = state._replace(**{
                k: torch.as_tensor(v, device=device, dtype=getattr(state, k).dtype)
                for k, v in overrides.items()})
        states.append(state)

    plastic = PlasticityRuntime.create(
        network, connectome, block_of=block_of, column_of=column_of, m_exp=m_exp,
        syn_exp=syn_exp, syn_ax=syn_ax, batch=B, n_steps=n_steps, device=device, dtype=dtype,
        learning=learning, reward=reward)

    # ---- external currents -----------------------------------------------------------
    ext_const: list[torch.Tensor | None] = [None] * len(groups)
    ext_var: list[torch.Tensor | None] = [None] * len(groups)
    for g in groups:
        const = None
        var = None
        for inp in network.inputs:
            if not isinstance(inp, CurrentInput) or group_of[inp.target] is not g:
                continue
            amp = np.asarray(inp.amplitude_pA, dtype=np.float64)
            if not inp.per_trial:
                amp = amp[None]  # trial axis of length 1
            elif amp.shape[0] not in (1, B):
                raise ValueError(
                    f"CurrentInput to {inp.target!r}: per-trial amplitude has {amp.shape[0]} "
                    f"trials but batch_size is {B}."
                )
            off, n = g.offsets[inp.target], group_of[inp.target].n
            pn = network.population_map[inp.target].n
            if amp.ndim <= 2:  # (Bt,) scalar per trial or (Bt, n)
                full = np.zeros((amp.shape[0], n))
                full[:, off:off + pn] = amp.reshape(amp.shape[0], -1)
                const = full if const is None else const + full
            else:  # (Bt, T, n)
                rows = np.minimum(np.arange(n_steps), amp.shape[1] - 1)
                full = np.zeros((n_steps, amp.shape[0], n))
                full[:, :, off:off + pn] = amp[:, rows].transpose(1, 0, 2)
                var = full if var is None else var + full
        ext_const[g.index] = None if const is None else tens(const)
        ext_var[g.index] = None if var is None else tens(var)

    # ---- inputs ----------------------------------------------------------------------
    poisson_p = None
    poisson_varying = False
    if n_poisson:
        parts = [inp.rates_array(n_steps, dt) for inp in poisson]
        poisson_varying = any(p.ndim == 2 for p in parts)
        if poisson_varying:
            parts = [np.broadcast_to(p, (n_steps, p.shape[-1])) for p in parts]
        poisson_p = tens(np.concatenate(parts, axis=-1) * dt / 1000.0)
        gens = []
        for b in range(B):
            gen = torch.Generator(device=device)
            gen.manual_seed(int(np.random.SeedSequence([seed + b, 7]).generate_state(1)[0]))
            gens.append(gen)
        poisson_chunk = max(1, min(n_steps, _POISSON_CHUNK_ELEMS // max(1, B * n_poisson)))
    gen_spikes = None
    if n_gen:
        per_trial = any(inp.trials is not None for inp in generators)
        bt = B if per_trial else 1
        arr = np.zeros((n_steps, bt, n_gen), dtype=bool)
        for inp in generators:
            off = block_of[inp.name][1]
            steps = inp.steps(dt)
            trials = (np.zeros_like(steps) if inp.trials is None
                      else np.asarray(inp.trials, dtype=np.int64))
            if trials.size and trials.max() >= B:
                raise ValueError(
                    f"SpikeGeneratorInput {inp.name!r}: spikes for trial {trials.max()} but "
                    f"batch_size is {B}."
                )
            keep = steps < n_steps
            idx = np.asarray(inp.indices, dtype=np.int64)[keep] + off
            if inp.trials is None and per_trial:
                for b in range(bt):
                    arr[steps[keep], b, idx] = True
            else:
                arr[steps[keep], trials[keep], idx] = True
        gen_spikes = torch.as_tensor(arr, device=device).expand(n_steps, B, n_gen) \
            if bt == 1 else torch.as_tensor(arr, device=device)

    # ---- monitors --------------------------------------------------------------------
    spike_blocks: set[str] = set()
    for mon in network.monitors:
        if isinstance(mon, SpikeMonitor | PopulationRateMonitor):
            spike_blocks.add(block_of[mon.population][0])
    chunk_len = {}
    spike_buf = {}
    spike_hits: dict[str, list[np.ndarray]] = {b: [] for b in spike_blocks}
    for blk in spike_blocks:
        if blk in sources and sources[blk].mode == "event":
            continue  # recorded from the nonzero() of the propagation
        chunk_len[blk] = max(1, min(n_steps, _SPIKE_CHUNK_ELEMS // max(1, B * block_size[blk])))
        spike_buf[blk] = torch.zeros((chunk_len[blk], B, block_size[blk]), dtype=torch.bool,
                                     device=device)

    state_mons = []
    for mon in network.monitors:
        if not isinstance(mon, StateMonitor):
            continue
        g = group_of[mon.population]
        pop_n = network.population_map[mon.population].n
        neurons = np.arange(pop_n) if mon.neurons is None else np.asarray(mon.neurons, np.int64)
        n_samples = -(-n_steps // mon.every)
        syn = next((s for s in network.synapses_of(mon.population)
                    if mon.variable in (s.variable, s.aux_variable)), None)
        if syn is None:
            where = ("state", g.index, mon.variable)
            cols = neurons + g.offsets[mon.population]
        else:
            c = column_of(mon.population, syn)
            if syn.kernel == "exponential":
                where = ("exp",)
                cols = neurons + c
            else:
                where = ("ai",) if mon.variable == syn.variable else ("ax",)
                cols = neurons + c - m_exp
        buf = torch.zeros((n_samples, B, neurons.size), device=device, dtype=dtype)
        state_mons.append((mon, where, torch.as_tensor(cols, device=device), buf, neurons))

    # ---- the step --------------------------------------------------------------------
    e_of_group = []
    for g in groups:
        info = {}
        for kind, vars_, start in (("exp", g.exp_vars, g.exp_start),
                                   ("alpha", g.alpha_vars, g.alpha_start)):
            n_cur = sum(1 for s in vars_ if s.kind == "current")
            n_cond = len(vars_) - n_cur
            # reversal potentials as Python floats: the kernel rounds them to dtype, as a
            # tensor of them would be
            e_rev = [float(s.E_rev_mV) for s in vars_ if s.kind == "conductance"]
            info[kind] = (start, n_cur, n_cond, e_rev)
        e_of_group.append(info)

    exponential = network.conductance_update == "exponential"
    # -dt / C per group (C of each population broadcast over its neurons when they differ)
    neg_dt_over_c = []
    for g in groups:
        caps = [network.capacitance_of(p.name) or 1.0 for p in g.pops]
        if len(set(caps)) == 1:
            neg_dt_over_c.append(-dt / caps[0])
        else:
            neg_dt_over_c.append(tens(np.concatenate([np.full(p.n, -dt / c)
                                                      for p, c in zip(g.pops, caps,
                                                                      strict=True)])))

    def synaptic_current(g: _Group, v: torch.Tensor, s_exp: torch.Tensor,
                         s_ai: torch.Tensor) -> torch.Tensor | None:
        """Current (pA) of all synaptic variables of group ``g``; see Network's
        ``conductance_update`` for the factor applied to the conductance current."""
        current = drive = g_tot = None
        n = g.n
        for kind, src in (("exp", s_exp), ("alpha", s_ai)):
            start, n_cur, n_cond, e_rev = e_of_group[g.index][kind]
            # sums over the variables as chains of elementwise additions (not a sum over a
            # (B, k, n) view), so that a compiled step stays one pointwise loop over the
            # neurons (a reduction splits it off; the same sums for k = 2)
            for k in range(n_cur):
                cur = src[:, start + k * n:start + (k + 1) * n]
                current = cur if current is None else current + cur
            a = start + n_cur * n
            for k in range(n_cond):
                gk = src[:, a + k * n:a + (k + 1) * n]
                d = gk * (e_rev[k] - v)
                drive = d if drive is None else drive + d
                g_tot = gk if g_tot is None else g_tot + gk
        if drive is not None:
            if exponential:
                # phi(x) = (1 - e^-x)/x = expm1(-x)/(-x); clamping -x below -1e-20 makes
                # phi(0) = 1 exactly
                nx = (g_tot * neg_dt_over_c[g.index]).clamp_max_(-1e-20)
                drive = drive * (torch.expm1(nx) / nx)
            current = drive if current is None else current + drive
        return current

    def dense_step(states, s_exp, s_ai, s_ax, ext_t, decay=True):
        """Steps 2-4: input currents, neuron steps, in-place synaptic decay (unless
        ``decay=False``)."""
        spikes = []
        new_states = []
        for g, state in zip(groups, states, strict=True):
            i_in = synaptic_current(g, state.v, s_exp, s_ai)
            ext = ext_t[g.index]
            if ext is not None:
                i_in = ext if i_in is None else i_in + ext
            if i_in is None:
                i_in = torch.zeros_like(state.v)
            elif i_in.shape != state.v.shape:
                i_in = i_in.expand_as(state.v)
            adapt = adaptive[g.index]
            if adapt is None:
                spk, new = g.model.step(state, i_in, g.params, dt)
            else:
                spk, new = adapt.step(state, i_in, dt)
            spikes.append(spk)
            new_states.append(new)
        if not decay:
            return spikes, new_states
        if m_exp:
            s_exp.mul_(dec_exp_t)
        if m_alpha:
            s_ai.add_(h_alpha_t * s_ax).mul_(dec_alpha_t)
            s_ax.mul_(dec_alpha_t)
        return spikes, new_states

    nz_blocks = [_nz_block(B * g.n) if device.type == "cpu" else None for g in groups]

    # Per (group, variable) slices of the synaptic state and their decay factors (Python
    # floats), in the buffer's column order, for the functional compiled step below.
    exp_slices = [(g.exp_start + k * g.n, g.n, propagators(syn.tau_ms, dt)[0])
                  for g in groups for k, syn in enumerate(g.exp_vars)]
    alpha_slices = [(g.alpha_start + k * g.n, g.n, *propagators(syn.tau_ms, dt))
                    for g in groups for k, syn in enumerate(g.alpha_vars)]

    def decayed(s_exp, s_ai, s_ax):
        """Step 4 as new tensors: every slice of one variable of one group is decayed with
        its factor and the slices are concatenated in buffer order (the same products as the
        in-place decay of ``dense_step``)."""
        new_exp = (torch.cat([s_exp[:, a:a + n] * d for a, n, d in exp_slices], 1)
                   if m_exp else s_exp)
        if not m_alpha:
            return new_exp, s_ai, s_ax
        new_ai = torch.cat([(s_ai[:, a:a + n] + h * s_ax[:, a:a + n]) * d
                            for a, n, d, h in alpha_slices], 1)
        new_ax = torch.cat([s_ax[:, a:a + n] * d for a, n, d, _ in alpha_slices], 1)
        return new_exp, new_ai, new_ax

    def float_spikes_step(states, s_exp, s_ai, s_ax, ext_t):
        # Inductor stores a bool output element by element: returning the spikes as 0/1
        # floats made the compiled step ~8x faster at N = 16,000 (nonzero() and the dense
        # product take them as they are). Block spike counts for _spike_indices come out of
        # the same kernel. The synaptic state comes out as new tensors (see functional_syn).
        if functional_syn:
            spikes, new_states = dense_step(states, s_exp, s_ai, s_ax, ext_t, decay=False)
            syn = decayed(s_exp, s_ai, s_ax)
        else:
            spikes, new_states = dense_step(states, s_exp, s_ai, s_ax, ext_t)
            syn = None
        spikes = [s.to(dtype) for s in spikes]
        sums = [None if b is None else s.view(-1, b).sum(1)
                for s, b in zip(spikes, nz_blocks, strict=True)]
        return spikes, new_states, sums, syn

    step_fn = dense_step
    group_blocks = [f"group{g.index}" for g in groups]
    # Event-driven sources share one nonzero() per step between propagation and the spike
    # monitors (their spikes are kept as index lists, not in the dense chunk buffer).
    event_blocks = [b for b, src in sources.items() if src.mode == "event"]
    nz_hits = {b: _SpikeLog() for b in event_blocks if b in spike_blocks}
    dense_blocks = [b for b, src in sources.items() if src.mode not in ("event", "none")]
    buffered_blocks = [b for b in spike_blocks if b in spike_buf]
    block_sums: dict[str, torch.Tensor | None] = {}
    block_len = dict(zip(group_blocks, nz_blocks, strict=True))

    # Without delays and alpha kernels, arrivals go straight into the exponential variables
    # (same result as a one-slot ring buffer, two tensor ops fewer per step).
    direct = ring == 1 and m_alpha == 0
    if direct:
        ring_buf = syn_exp.view(1, B, m_exp)
    else:
        ring_buf = torch.zeros((ring, B, m_total), device=device, dtype=dtype)
    ring_flat = ring_buf.view(-1)
    consts = list(ext_const)
    has_var = any(v is not None for v in ext_var)

    def flush(blk: str, upto: int, t0: int) -> None:
        nz = spike_buf[blk][:upto].nonzero().cpu().numpy()
        if nz.size:
            nz[:, 0] += t0
            spike_hits[blk].append(nz)

    # Compiled without plasticity (whose runtime holds the synaptic tensors), the step returns
    # the decayed synaptic state as new tensors instead of decaying it in place: inductor then
    # fuses the input currents, the neuron update, the decay and the spike output into one
    # loop over the neurons (an in-place decay after reading the same buffer split it into
    # four passes: 7.5 -> 4.5 MB per step at 32 trials of COBA N = 4,000). The time loop
    # rebinds syn_exp, syn_ai, syn_ax (and the direct ring buffer) to the new tensors.
    functional_syn = plastic is None
    compile_s = None
    if compile and n_steps:
        # Compile now, so that the time loop (and ``wall_time_s``) excludes compilation, as
        # Brian2's main-loop timer does.
        t0 = time.perf_counter()
        ext0 = ([c if v is None else (v[0] if c is None else c + v[0])
                 for c, v in zip(consts, ext_var, strict=True)] if has_var else consts)
        with torch.no_grad():
            step_fn = _compile_step(float_spikes_step, states, syn_exp, syn_ai, syn_ax, ext0,
                                    [b is not None for b in nz_blocks], functional_syn)
            if device.type == "cpu":
                for blk in event_blocks:
                    sources[blk].compile_events(ring_flat, block_len.get(blk))
        compile_s = time.perf_counter() - t0
    # Per event-driven source: its block length (compiled: spike counts per block come out of
    # the compiled step, and its kernel takes the hit blocks and the (row, lane) pairs within
    # them as they are), its propagation (which returns the spikes' trial and neuron indices
    # for the monitors), where its spikes are recorded.
    compiled_events = compile_s is not None and device.type == "cpu"
    event_plan = [(blk, block_len.get(blk) if compiled_events else None,
                   sources[blk].propagate_compiled if compiled_events
                   else sources[blk].propagate_events,
                   nz_hits.get(blk)) for blk in event_blocks]
    t_setup = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_steps, unit="step", desc="torch")
    poisson_block = None
    with torch.no_grad():
        for t in range(n_steps):
            for mon, where, cols, buf, _ in state_mons:
                if t % mon.every == 0:
                    if where[0] == "state":
                        src = getattr(states[where[1]], where[2])
                    else:
                        src = {"exp": syn_exp, "ai": syn_ai, "ax": syn_ax}[where[0]]
                    buf[t // mon.every] = src.index_select(1, cols)
            if plastic is not None:
                plastic.record(t)
            if has_var:
                ext_t = [c if v is None else (v[t] if c is None else c + v[t])
                         for c, v in zip(consts, ext_var, strict=True)]
            else:
                ext_t = consts
            if compile_s is not None:
                spikes, states, sums, syn = step_fn(states, syn_exp, syn_ai, syn_ax, ext_t)
                block_sums = dict(zip(group_blocks, sums, strict=True))
                if syn is not None:
                    syn_exp, syn_ai, syn_ax = syn
                    if direct:
                        ring_flat = syn_exp.view(-1)
                        if dense_blocks:
                            ring_buf = syn_exp.view(1, B, m_exp)
            else:
                spikes, states = step_fn(states, syn_exp, syn_ai, syn_ax, ext_t)
            block_spikes = dict(zip(group_blocks, spikes, strict=True))
            if n_poisson:
                k = t % poisson_chunk
                if k == 0:
                    length = min(poisson_chunk, n_steps - t)
                    u = torch.stack([torch.rand((length, n_poisson), generator=gen,
                                                device=device, dtype=dtype) for gen in gens], 1)
                    p = poisson_p[t:t + length].unsqueeze(1) if poisson_varying else poisson_p
                    poisson_block = u < p
                block_spikes["poisson"] = poisson_block[k]
            if n_gen:
                block_spikes["generators"] = gen_spikes[t]
            for blk, blen, propagate, hits in event_plan:
                if blen:  # compiled: hit blocks and (row, lane) pairs, see _spike_indices
                    hit_blocks = block_sums[blk].nonzero().view(-1)
                    if hit_blocks.shape[0] == 0:
                        continue
                    found = (hit_blocks, block_spikes[blk].view(-1, blen)
                             .index_select(0, hit_blocks).nonzero())
                else:
                    found = _spike_indices(block_spikes[blk], block_sums.get(blk),
                                           block_len.get(blk))
                    if found is None:
                        continue
                found = propagate(*found, t, ring_flat)
                if hits is not None:
                    hits.add(t, *found)
            for blk in dense_blocks:
                sources[blk].propagate(block_spikes[blk], t, ring_buf, ring_flat)
            if not direct:
                slot = ring_buf[t % ring]
                if m_exp:
                    syn_exp.add_(slot[:, :m_exp])
                if m_alpha:
                    syn_ax.add_(slot[:, m_exp:])
                slot.zero_()
            if plastic is not None:
                if compile_s is not None:  # the plasticity runtime takes bool spikes
                    block_spikes.update((b, block_spikes[b].bool()) for b in group_blocks)
                plastic.step(t, block_spikes)
            for blk in buffered_blocks:
                c = chunk_len[blk]
                spike_buf[blk][t % c] = block_spikes[blk]
                if t % c == c - 1:
                    flush(blk, c, t - c + 1)
            if bar is not None and (t % 1000 == 999 or t == n_steps - 1):
                bar.update(t + 1 - bar.n)
    for blk in buffered_blocks:
        c = chunk_len[blk]
        rest = n_steps % c
        if rest:
            flush(blk, rest, n_steps - rest)
    for blk, log in nz_hits.items():
        if log.steps:
            spike_hits[blk].append(log.hits())
    if bar is not None:
        bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t_run = time.perf_counter()

    # ---- records ---------------------------------------------------------------------
    spikes_out: dict[str, SpikeRecord] = {}
    rates_out: dict[str, np.ndarray] = {}
    all_sources = network.spike_sources
    for mon in network.monitors:
        if not isinstance(mon, SpikeMonitor | PopulationRateMonitor):
            continue
        name = mon.population
        blk, off = block_of[name]
        n = all_sources[name].n
        hits = (np.concatenate(spike_hits[blk]) if spike_hits[blk]
                else np.zeros((0, 3), dtype=np.int64))
        sel = (hits[:, 2] >= off) & (hits[:, 2] < off + n)
        step_i, trial, neuron = hits[sel, 0], hits[sel, 1], hits[sel, 2] - off
        if isinstance(mon, SpikeMonitor):
            spikes_out[name] = spikes_from_hits(name, n, B, n_steps, dt, step_i, trial, neuron)
        else:
            rates_out[name] = rates_from_hits(n, B, n_steps, dt, step_i, trial)
    states_out: dict[str, StateRecord] = {}
    for mon, _, _, buf, neurons in state_mons:
        key = f"{mon.population}.{mon.variable}"
        k = 1
        while key in states_out:
            k += 1
            key = f"{mon.population}.{mon.variable}#{k}"
        values = buf.detach().cpu().numpy().astype(np.float64).transpose(1, 0, 2)
        states_out[key] = StateRecord(
            population=mon.population, variable=mon.variable,
            unit=network.unit_of(mon.population, mon.variable), neurons=neurons,
            times_ms=np.arange(values.shape[1]) * mon.every * dt, values=values)
    weights_out: dict[str, np.ndarray] = {}
    if plastic is not None:
        weights_out, weight_states = plastic.results()
        states_out.update(weight_states)
    theta_out: dict[str, np.ndarray] = {}
    for g, state in zip(groups, states, strict=True):
        if adaptive[g.index] is None:
            continue
        theta = getattr(state, THETA).detach().cpu().numpy().astype(np.float64)
        for pop in g.pops:
            off = g.offsets[pop.name]
            theta_out[pop.name] = theta[:, off:off + pop.n].copy()
    t_end = time.perf_counter()
    if timings is not None:
        timings.update(build_s=t_built - t_start, setup_s=t_setup - t_built,
                       run_s=t_run - t_setup, total_s=t_end - t_start)
        if compile_s is not None:
            timings["compile_s"] = compile_s  # part of setup_s
    return SimulationResult(
        engine="torch", device=str(device), dt_ms=dt, duration_ms=n_steps * dt,
        spikes=spikes_out, states=states_out, population_rates_hz=rates_out,
        wall_time_s=t_run - t_setup, weights=weights_out, theta=theta_out)
