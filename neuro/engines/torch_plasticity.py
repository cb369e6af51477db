r"""Plastic projections in the torch engine: per-synapse, per-trial weights learned every step.

A :class:`~neuro.network.Projection` with ``plasticity=<rule parameters>`` is not propagated by
the engine's static tables; :class:`PlasticityRuntime` owns it instead. It keeps

* the weights ``w`` of shape ``(batch, n_synapses)`` (in the order of the built connectome):
  every trial learns independently, so a batch of 32 seeds is 32 independent experiments;
* the rule's traces per presynaptic neuron ``(batch, n_pre)`` (per synapse with per-synapse
  delays, see below) and per postsynaptic neuron ``(batch, n_post)`` (R-STDP adds an
  eligibility per synapse), advanced with the math of the pure rules
  (:func:`neuro.plasticity.stdp.pair_events` for pair STDP and R-STDP, the update of
  :func:`neuro.plasticity.stdp_triplet_step` for triplet STDP).

Per-synapse terms :math:`u_{b,\mathrm{pre}(k)}\,v_{b,\mathrm{post}(k)}` are gathered at the
synapses' indices; a projection that is exactly all-to-all is handled as a dense
``(batch, n_pre, n_post)`` view of the same weights instead (no index gathers).

Per-synapse delays (a ``delay_ms`` array or initialiser) are what Brian2 does with a
per-synapse delay on the ``pre`` pathway: a presynaptic spike reaches synapse ``k`` after
``D_k`` steps, and only then is transmitted, depresses and bumps the presynaptic trace, which
is therefore a trace *per synapse* ``(batch, n_synapses)`` (Brian2's event-driven ``apre`` is a
synaptic variable too); the postsynaptic side is not delayed. The arrivals come from a ring of
the last ``max(D_k) + 1`` steps of presynaptic spikes, read at one index per synapse. A
projection whose synapses share one delay keeps per-neuron traces and a plain ring.

Update order within engine step ``t`` (after the neuron step that produced the postsynaptic
spikes of step ``t`` and after the input spikes of step ``t``), the same as Brian2's
``synapses`` slot with the ``pre`` pathway (``order=-1``) before the ``post`` pathway:

1. the presynaptic spikes that *arrive* now, i.e. those of step ``t - D`` for the projection's
   delay ``D`` (``t - D_k`` at synapse ``k`` when delays differ between synapses), are
   transmitted with the current weights (``g += w``; ``x += e w`` for alpha kernels), before
   their own weight update, exactly as the Brian2 engine prepends ``g_post += w`` to the
   rule's ``on_pre``;
2. traces decay by :math:`e^{-\Delta t/\tau}`; arriving presynaptic spikes depress (reading the
   postsynaptic trace before this step's postsynaptic spikes), ``w`` is clipped to
   ``[w_min, w_max]``; presynaptic traces jump;
3. postsynaptic spikes of step ``t`` potentiate (reading the presynaptic trace including this
   step's arrivals), ``w`` is clipped again; postsynaptic traces jump;
4. R-STDP: the eligibility collects steps 2--3 instead of ``w``; if a reward is delivered,
   :math:`\Delta w = \eta (R - \bar R) e` and the running baseline moves.

Clipping after the depression and again after the potentiation is what Brian2 computes per
event (the rules' ``on_pre``/``on_post`` each clip). The pure steps plus
:func:`~neuro.plasticity.apply_weight_change` clip once per step; the two differ only when a
synapse's pre and post spike fall in the same step *and* the first change crosses a bound.

Rewards (R-STDP), the ``reward`` option of the engines:

* ``None``: never delivered (the eligibility evolves, the weights do not change);
* an array ``(n_steps,)`` (every trial) or ``(batch, n_steps)``: the reward delivered in each
  step, ``NaN`` meaning no delivery (a step past the end of the array delivers nothing);
* a callable ``reward(step, spikes) -> None | float | array (batch,)``, called in every step
  with ``spikes`` a dict of the populations' boolean spikes of this step, ``(batch, n)``
  (torch tensors on the torch engine, numpy arrays of shape ``(1, n)`` on Brian2's runtime
  targets); ``None`` or ``NaN`` means no delivery. A callable makes the reward depend on the
  network's response (closed loop); it runs Python every step.

The same reward goes to every R-STDP projection.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from neuro.models._common import decay_factor
from neuro.network import Connectome, Network, WeightMonitor
from neuro.plasticity import PairSTDPParams, RSTDPParams, TripletSTDPParams
from neuro.plasticity.base import bump
from neuro.plasticity.stdp import PairTraces, pair_events
from neuro.records import StateRecord

__all__ = ["PlasticityRuntime", "RewardSchedule", "is_all_to_all"]

Reward = None | np.ndarray | Callable[[int, dict], Any]


def is_all_to_all(pre: np.ndarray, post: np.ndarray, n_pre: int, n_post: int) -> bool:
    """Whether synapse ``k`` is exactly ``(k // n_post, k % n_post)`` for every ``k``, so that
    ``(batch, n_synapses)`` weights are a ``(batch, n_pre, n_post)`` matrix."""
    count = n_pre * n_post
    return pre.size == count and np.array_equal(pre * n_post + post, np.arange(count))


class RewardSchedule:
    """The ``reward`` option turned into ``(reward (B,), delivered (B,) bool)`` per step."""

    def __init__(self, reward: Reward, n_steps: int, batch: int, device: torch.device,
                 dtype: torch.dtype) -> None:
        self.callback = None
        self.values = None
        self.any_step = None
        self.batch, self.device, self.dtype = batch, device, dtype
        if reward is None:
            return
        if callable(reward):
            self.callback = reward
            return
        arr = np.asarray(reward, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[0] not in (1, batch):
            raise ValueError(
                f"reward must be None, a callable, an (n_steps,) or a (batch, n_steps) array; "
                f"got shape {np.shape(reward)} with batch_size {batch}."
            )
        full = np.full((arr.shape[0], n_steps), np.nan)
        k = min(n_steps, arr.shape[1])
        full[:, :k] = arr[:, :k]
        full = np.broadcast_to(full, (batch, n_steps))
        self.any_step = np.any(np.isfinite(full), axis=0)
        self.values = torch.as_tensor(np.array(full.T), device=device, dtype=dtype)

    @property
    def active(self) -> bool:
        return self.callback is not None or self.values is not None

    def at(self, t: int, spikes: Callable[[], dict]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Reward and delivery mask of step ``t``; ``None`` when nothing is delivered."""
        if self.values is not None:
            if not self.any_step[t]:
                return None
            r = self.values[t]
        elif self.callback is not None:
            out = self.callback(t, spikes())
            if out is None:
                return None
            r = torch.as_tensor(out, device=self.device, dtype=self.dtype)
            r = r.expand(self.batch) if r.dim() == 0 else r.reshape(self.batch)
        else:
            return None
        delivered = torch.isfinite(r)
        return torch.where(delivered, r, torch.zeros_like(r)), delivered


class _PlasticProjection:
    """Weights, traces and index arrays of one plastic projection in the torch engine."""

    def __init__(self, bp, rule, *, source: tuple[str, int, int], target: tuple[str, int, int],
                 syn_var: torch.Tensor, col0: int, batch: int, device: torch.device,
                 dtype: torch.dtype, dt: float) -> None:
        self.name, self.rule = bp.name, rule
        self.src_block, self.src_off, self.n_pre = source
        self.tgt_block, self.tgt_off, self.n_post = target
        self.syn_var, self.col0 = syn_var, col0
        sign = bp.synapse.sign if bp.synapse.kind == "current" else 1
        self.scale = float(sign * bp.synapse.jump_scale)
        self.batch, self.dt = batch, dt
        delays = np.asarray(bp.delay_steps, dtype=np.int64)
        self.delay = int(delays.max()) if bp.n_synapses else 0
        # Delays that differ between synapses: presynaptic spikes arrive synapse by synapse,
        # so the presynaptic side (traces, arrivals) is kept per synapse (see arriving()).
        self.per_synapse = bool(bp.n_synapses) and int(delays.min()) != self.delay
        self.dense = (not self.per_synapse
                      and is_all_to_all(bp.pre, bp.post, self.n_pre, self.n_post))
        self.pre_idx = torch.as_tensor(bp.pre, device=device)
        self.post_idx = torch.as_tensor(bp.post, device=device)
        self.cols = self.post_idx + col0
        magnitude = np.abs(bp.weight) if sign != 1 else bp.weight
        self.w = torch.as_tensor(np.array(np.broadcast_to(magnitude, (batch, bp.n_synapses))),
                                 device=device, dtype=dtype).clone()
        self.w_min = rule.w_min if math.isfinite(rule.w_min) else None
        self.w_max = rule.w_max if math.isfinite(rule.w_max) else None
        self.check_any = device.type == "cpu"  # skipping idle terms costs a sync on CUDA
        n_trace = bp.n_synapses if self.per_synapse else self.n_pre
        zeros_pre = torch.zeros((batch, n_trace), device=device, dtype=dtype)
        zeros_post = torch.zeros((batch, self.n_post), device=device, dtype=dtype)
        if isinstance(rule, TripletSTDPParams):
            self.kind = "triplet"
            self.traces = [zeros_pre, zeros_pre.clone(), zeros_post, zeros_post.clone()]
            self.decays = [decay_factor(dt, rule.tau_plus), decay_factor(dt, rule.tau_x),
                           decay_factor(dt, rule.tau_minus), decay_factor(dt, rule.tau_y)]
        else:
            self.kind = "rstdp" if isinstance(rule, RSTDPParams) else "pair"
            self.traces = PairTraces(zeros_pre, zeros_post)
        if self.kind == "rstdp":
            self.eligibility = torch.zeros_like(self.w)
            self.decay_e = decay_factor(dt, rule.tau_e)
            self.baseline = torch.full((batch,), rule.baseline, device=device, dtype=dtype)
        self.history = self.read = None
        if self.per_synapse:
            # Spikes of the last L = max delay + 1 steps, flattened per trial: step t's spikes
            # at columns slot(t) * n_pre + i with slot(t) = t mod L; synapse k reads column
            # ((t - D_k) mod L) * n_pre + pre_k = (read_k + slot(t) * n_pre) mod (L * n_pre).
            slots = self.delay + 1
            self.history = torch.zeros((batch, slots * self.n_pre), dtype=torch.bool,
                                       device=device)
            self.read = torch.as_tensor((slots - delays) * self.n_pre + bp.pre, device=device)
        elif self.delay:
            self.history = torch.zeros((self.delay + 1, batch, self.n_pre), dtype=torch.bool,
                                       device=device)

    # -- pieces -----------------------------------------------------------------------------
    def pairwise(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``u[b, pre(k)] * v[b, post(k)]`` for every synapse ``k``, shape ``(B, S)``
        (``u[b, k]`` when the presynaptic side is per synapse)."""
        if self.dense:
            return (u.unsqueeze(2) * v.unsqueeze(1)).reshape(self.batch, -1)
        if self.per_synapse:
            return u * v.index_select(1, self.post_idx)
        return u.index_select(1, self.pre_idx) * v.index_select(1, self.post_idx)

    def clip_(self) -> None:
        if self.w_min is not None or self.w_max is not None:
            self.w.clamp_(min=self.w_min, max=self.w_max)

    def arriving(self, pre_now: torch.Tensor, t: int) -> torch.Tensor:
        """Presynaptic spikes arriving in step ``t``: those of step ``t - delay``, ``(B, n_pre)``;
        with per-synapse delays ``D_k``, those of step ``t - D_k`` at each synapse ``k``,
        ``(B, S)``."""
        if self.history is None:
            return pre_now
        slots = self.delay + 1
        if self.per_synapse:
            slot = (t % slots) * self.n_pre
            self.history[:, slot:slot + self.n_pre] = pre_now
            cols = (self.read + slot).remainder_(slots * self.n_pre)
            return self.history.index_select(1, cols)
        self.history[t % slots] = pre_now
        return self.history[(t + 1) % slots]

    def transmit(self, pre: torch.Tensor) -> None:
        if self.dense:
            out = torch.bmm(pre.unsqueeze(1), self.w.view(self.batch, self.n_pre, self.n_post))
            out = out.squeeze(1)
            target = self.syn_var[:, self.col0:self.col0 + self.n_post]
            target.add_(out, alpha=self.scale) if self.scale != 1 else target.add_(out)
        else:
            contrib = (pre if self.per_synapse else pre.index_select(1, self.pre_idx)) * self.w
            if self.scale != 1:
                contrib = contrib * self.scale
            self.syn_var.index_add_(1, self.cols, contrib)

    # -- one step ---------------------------------------------------------------------------
    def step(self, pre_now: torch.Tensor, post_b: torch.Tensor, t: int, learning: bool,
             reward: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        pre_b = self.arriving(pre_now, t)
        dtype = self.w.dtype
        any_pre = any_post = True
        if self.check_any:
            any_pre, any_post = bool(pre_b.any()), bool(post_b.any())
        pre = pre_b.to(dtype)
        post = post_b.to(dtype)
        if any_pre:
            self.transmit(pre)
        rule = self.rule
        if self.kind == "triplet":
            r1, r2, o1, o2 = (x * d for x, d in zip(self.traces, self.decays, strict=True))
            dep_u, dep_v = pre * (rule.A2_minus + rule.A3_minus * r2), o1
            r1, r2 = bump(r1, pre, rule.interaction), bump(r2, pre, rule.interaction)
            pot_u, pot_v = r1, post * (rule.A2_plus + rule.A3_plus * o2)
            o1, o2 = bump(o1, post, rule.interaction), bump(o2, post, rule.interaction)
            self.traces = [r1, r2, o1, o2]
            a_dep = a_pot = 1.0
        else:
            dep, pot, self.traces = pair_events(pre, post, self.traces, rule.tau_plus,
                                                rule.tau_minus, rule.interaction, self.dt)
            dep_u, dep_v, pot_u, pot_v = dep.u, dep.v, pot.u, pot.v
            a_dep, a_pot = rule.A_minus, rule.A_plus
        if self.kind == "rstdp":
            e = self.eligibility.mul_(self.decay_e)
            if any_pre:
                e.sub_(self.pairwise(dep_u, dep_v), alpha=a_dep)
            if any_post:
                e.add_(self.pairwise(pot_u, pot_v), alpha=a_pot)
            if reward is not None:
                value, delivered = reward
                surprise = torch.where(delivered, value - self.baseline,
                                       torch.zeros_like(value))
                if learning:
                    self.w.add_(surprise.unsqueeze(1) * e, alpha=rule.eta)
                    self.clip_()
                if rule.baseline_mode == "running":
                    self.baseline = self.baseline + rule.baseline_alpha * surprise
            return
        if not learning:
            return
        soft = rule.weight_dependence == "multiplicative"
        span = rule.w_max - rule.w_min
        if any_pre:
            change = self.pairwise(dep_u, dep_v)
            if soft:
                change = change * ((self.w - rule.w_min) / span)
            self.w.sub_(change, alpha=a_dep)
            self.clip_()
        if any_post:
            change = self.pairwise(pot_u, pot_v)
            if soft:
                change = change * ((rule.w_max - self.w) / span)
            self.w.add_(change, alpha=a_pot)
            self.clip_()


class PlasticityRuntime:
    """Every plastic projection of a network, driven by the torch engine's loop.

    The engine calls :meth:`record` at the start of each step, :meth:`step` after the step's
    spikes are known and the static synapses have delivered, and :meth:`results` at the end.
    Use :meth:`create`, which returns ``None`` for networks without plasticity.
    """

    def __init__(self, network: Network, connectome: Connectome, *, block_of: dict,
                 column_of: Callable, m_exp: int, syn_exp: torch.Tensor, syn_ax: torch.Tensor,
                 batch: int, n_steps: int, device: torch.device, dtype: torch.dtype,
                 learning: bool, reward: Reward) -> None:
        self.network, self.batch, self.learning = network, batch, bool(learning)
        self.dt = float(network.dt_ms)
        sources = network.spike_sources
        rules = {p.name: p.plasticity for p in network.projections}
        self.projections: dict[str, _PlasticProjection] = {}
        for bp in connectome.projections:
            rule = rules.get(bp.name)
            if rule is None:
                continue
            src_block, src_off = block_of[bp.source]
            tgt_block, tgt_off = block_of[bp.target]
            col = column_of(bp.target, bp.synapse)
            syn_var, col0 = (syn_exp, col) if bp.synapse.kernel == "exponential" \
                else (syn_ax, col - m_exp)
            self.projections[bp.name] = _PlasticProjection(
                bp, rule, source=(src_block, src_off, sources[bp.source].n),
                target=(tgt_block, tgt_off, sources[bp.target].n), syn_var=syn_var, col0=col0,
                batch=batch, device=device, dtype=dtype, dt=self.dt)
        self.reward = RewardSchedule(reward, n_steps, batch, device, dtype)
        if self.reward.active and not any(p.kind == "rstdp" for p in self.projections.values()):
            raise ValueError("reward was given but the network has no R-STDP projection "
                             "(plasticity=RSTDPParams(...)).")
        self.monitors = []
        for mon in network.monitors:
            if not isinstance(mon, WeightMonitor):
                continue
            proj = self.projections[mon.projection]
            n_syn = proj.w.shape[1]
            idx = (np.arange(n_syn) if mon.synapses is None
                   else np.asarray(mon.synapses, dtype=np.int64))
            if idx.size and idx.max() >= n_syn:
                raise ValueError(f"WeightMonitor on {mon.projection!r}: synapse index "
                                 f"{idx.max()} out of range (the projection has {n_syn}).")
            buf = torch.zeros((-(-n_steps // mon.every), batch, idx.size), device=device,
                              dtype=dtype)
            self.monitors.append((mon, proj, torch.as_tensor(idx, device=device), buf, idx))
        self.block_spikes: dict[str, torch.Tensor] = {}
        self._block_of_pop = {pop.name: block_of[pop.name] for pop in network.populations}

    @classmethod
    def create(cls, network: Network, connectome: Connectome, **kwargs: Any
               ) -> PlasticityRuntime | None:
        """A runtime for ``network``, or ``None`` when no projection is plastic (then a
        ``reward`` is an error)."""
        if all(p.plasticity is None for p in network.projections):
            if kwargs.get("reward") is not None:
                raise ValueError("reward was given but no projection is plastic.")
            return None
        return cls(network, connectome, **kwargs)

    @staticmethod
    def plastic_names(network: Network) -> set[str]:
        """Names of the plastic projections (the engine leaves them out of its static
        propagation)."""
        return {p.name for p in network.projections if p.plasticity is not None}

    def record(self, t: int) -> None:
        """Sample the weight monitors due at the start of step ``t``."""
        for mon, proj, idx, buf, _ in self.monitors:
            if t % mon.every == 0:
                buf[t // mon.every] = proj.w.index_select(1, idx)

    def _population_spikes(self) -> dict[str, torch.Tensor]:
        out = {}
        for pop in self.network.populations:
            blk, off = self._block_of_pop[pop.name]
            out[pop.name] = self.block_spikes[blk][:, off:off + pop.n]
        return out

    def step(self, t: int, block_spikes: dict[str, torch.Tensor]) -> None:
        """Transmit and learn in step ``t``; ``block_spikes`` maps the engine's spike blocks
        (``"group<i>"``, ``"poisson"``, ``"generators"``) to their bool ``(B, n)`` spikes."""
        self.block_spikes = block_spikes
        reward = self.reward.at(t, self._population_spikes) if self.reward.active else None
        for proj in self.projections.values():
            pre = block_spikes[proj.src_block]
            post = block_spikes[proj.tgt_block]
            proj.step(pre[:, proj.src_off:proj.src_off + proj.n_pre],
                      post[:, proj.tgt_off:proj.tgt_off + proj.n_post], t, self.learning,
                      reward)

    def results(self) -> tuple[dict[str, np.ndarray], dict[str, StateRecord]]:
        """Final weights ``(B, n_synapses)`` per projection and the weight monitors' records."""
        weights = {name: p.w.detach().cpu().numpy().astype(np.float64)
                   for name, p in self.projections.items()}
        states = {}
        for mon, proj, _, buf, idx in self.monitors:
            unit = "nS" if self._synapse_kind(proj.name) == "conductance" else "pA"
            values = buf.detach().cpu().numpy().astype(np.float64).transpose(1, 0, 2)
            states[f"{mon.projection}.w"] = StateRecord(
                population=mon.projection, variable="w", unit=unit, neurons=idx,
                times_ms=np.arange(values.shape[1]) * mon.every * self.dt, values=values)
        return weights, states

    def _synapse_kind(self, name: str) -> str:
        return next(p.synapse.kind for p in self.network.projections if p.name == name)


# ============================================================================================
# Fused, event-driven path for feed-forward plastic networks
# ============================================================================================

_FUSED_CHUNK_STEPS = 1000
_FUSED_UNROLL = 5


def fused_unsupported(network: Network, reward: Reward = None) -> str | None:
    """Why :func:`run_fused` cannot simulate ``network`` (``None`` when it can).

    The fused path takes networks whose projections all start at spike inputs
    (:class:`~neuro.network.PoissonInput` with constant rates, or
    :class:`~neuro.network.SpikeGeneratorInput`), without delays, with exponential synaptic
    kernels, static or learning with *additive* pair STDP; constant external currents; spike,
    rate and weight monitors.
    """
    from neuro.network import CurrentInput, PoissonInput, StateMonitor

    if reward is not None:
        return "rewards (R-STDP) need the step-by-step path"
    inputs = set()
    for inp in network.inputs:
        if isinstance(inp, CurrentInput):
            amp = np.asarray(inp.amplitude_pA)
            if amp.ndim - (1 if inp.per_trial else 0) > 1:
                return "time-varying external currents"
        elif isinstance(inp, PoissonInput):
            if callable(inp.rates_hz) or np.ndim(inp.rates_hz) > 1:
                return "time-varying Poisson rates"
            inputs.add(inp.name)
        else:
            inputs.add(inp.name)
    for proj in network.projections:
        what = f"projection {proj.name!r}"
        if proj.source not in inputs:
            return f"{what} starts at a population (only input -> population projections)"
        if proj.synapse.kernel != "exponential":
            return f"{what} has an alpha kernel"
        from neuro.connectivity import Initializer

        if isinstance(proj.delay_ms, Initializer) or np.any(np.asarray(proj.delay_ms) != 0):
            return f"{what} has delays"
        rule = proj.plasticity
        if rule is not None and not (isinstance(rule, PairSTDPParams)
                                     and rule.weight_dependence == "additive"):
            return f"{what}: only additive pair STDP is fused"
    for pop in network.populations:
        if pop.threshold_adaptation is not None:
            return f"population {pop.name!r} has an adaptive threshold"
    if any(isinstance(m, StateMonitor) for m in network.monitors):
        return "StateMonitor (record with the step-by-step path)"
    return None


def _poisson_generators(seed: int, batch: int, device: torch.device) -> list[torch.Generator]:
    """One generator per trial, seeded exactly as the step-by-step engine seeds them."""
    gens = []
    for b in range(batch):
        gen = torch.Generator(device=device)
        gen.manual_seed(int(np.random.SeedSequence([seed + b, 7]).generate_state(1)[0]))
        gens.append(gen)
    return gens


class _BernoulliInputs:
    """Poisson spikes drawn exactly as the step-by-step engine draws them (one uniform number
    per input and step, in blocks of the engine's length), so both paths see the same spikes."""

    def __init__(self, p: torch.Tensor, n_steps: int, gens: list, device, dtype) -> None:
        from neuro.engines.torch_engine import _POISSON_CHUNK_ELEMS

        self.p, self.n_steps, self.gens, self.device, self.dtype = p, n_steps, gens, device, dtype
        n, batch = p.numel(), len(gens)
        self.block = max(1, min(n_steps, _POISSON_CHUNK_ELEMS // max(1, batch * n)))
        self.start, self.spikes = -1, None

    def events(self, c: int, k: int) -> torch.Tensor:
        """``(t - c, b, i)`` rows of the spikes in steps ``c .. c+k-1``, sorted."""
        parts = []
        t = c
        while t < c + k:
            s = (t // self.block) * self.block
            if s != self.start:
                length = min(self.block, self.n_steps - s)
                u = torch.stack([torch.rand((length, self.p.numel()), generator=g,
                                            device=self.device, dtype=self.dtype)
                                 for g in self.gens], 1)
                self.spikes, self.start = u < self.p, s
            stop = min(c + k, s + self.spikes.shape[0])
            nz = self.spikes[t - s:stop - s].nonzero()
            nz[:, 0] += t - c
            parts.append(nz)
            t = stop
        return torch.cat(parts)


class _IntervalInputs:
    """Poisson spikes from geometric inter-spike intervals: per trial, the chunk's
    ``k x n`` grid (time-major) is one Bernoulli sequence at the largest probability
    :math:`p_{max}`, whose gaps are geometric; cells of smaller probability are thinned with
    probability :math:`p_i/p_{max}`. The same process as drawing every cell (the geometric gap
    is memoryless, so each chunk restarts exactly), with ~ ``k n p`` random numbers instead of
    ``k n``, but another random stream than the step-by-step engine's."""

    def __init__(self, p: torch.Tensor, gens: list, device) -> None:
        self.p = p.to(torch.float64)
        self.p_max = float(self.p.max()) if p.numel() else 0.0
        self.thin = self.p_max > 0 and bool((self.p < self.p_max).any())
        self.accept = self.p / self.p_max if self.p_max > 0 else self.p
        self.gens, self.device = gens, device

    def events(self, c: int, k: int) -> torch.Tensor:
        """``(t - c, b, i)`` rows of the spikes in steps ``c .. c+k-1``, sorted."""
        n, batch = self.p.numel(), len(self.gens)
        cells = k * n
        if self.p_max <= 0:
            return torch.zeros((0, 3), dtype=torch.long, device=self.device)
        mean = cells * self.p_max
        size = int(mean + 6.0 * math.sqrt(mean) + 16)
        # each trial draws from its own generator; the rest is one pass over all trials
        gaps = torch.empty((batch, size), dtype=torch.float64, device=self.device)
        for b, gen in enumerate(self.gens):
            gaps[b].geometric_(self.p_max, generator=gen)
        pos = torch.cumsum(gaps, 1) - 1.0
        short = torch.nonzero(pos[:, -1] < cells - 1).flatten().tolist()
        if short:  # rare: a trial needs more intervals to cover the chunk
            rows = [pos[b] for b in range(batch)]
            for b in short:
                end, parts = float(pos[b, -1]), [pos[b]]
                while end < cells - 1:
                    more = torch.empty(size, dtype=torch.float64, device=self.device)
                    more.geometric_(self.p_max, generator=self.gens[b])
                    parts.append(torch.cumsum(more, 0) + end)
                    end = float(parts[-1][-1])
                rows[b] = torch.cat(parts)
            width = max(r.numel() for r in rows)
            pos = torch.stack([torch.cat([r, r.new_full((width - r.numel(),), float(cells))])
                               for r in rows])
        trial, slot = torch.nonzero(pos < cells, as_tuple=True)
        flat = pos[trial, slot].to(torch.long)
        if self.thin:
            keep = torch.zeros(flat.numel(), dtype=torch.bool, device=self.device)
            counts = torch.bincount(trial, minlength=batch).tolist()
            start = 0
            for b, count in enumerate(counts):  # one thinning draw per trial, in order
                u = torch.rand(count, dtype=torch.float64, generator=self.gens[b],
                               device=self.device)
                keep[start:start + count] = u < self.accept[flat[start:start + count] % n]
                start += count
            trial, flat = trial[keep], flat[keep]
        out = torch.stack([flat // n, trial, flat % n], 1)
        order = torch.argsort(out[:, 0] * batch + out[:, 1], stable=True)
        return out[order]


def _padded_table(owner: np.ndarray, n_owner: int, values: list[np.ndarray],
                  fill: list[float]) -> list[np.ndarray]:
    """Row ``o`` lists ``values[*][k]`` for the entries ``k`` with ``owner[k] == o``, padded
    with ``fill`` (one table per value array)."""
    counts = np.bincount(owner, minlength=n_owner)
    width = max(1, int(counts.max()) if counts.size else 1)
    order = np.argsort(owner, kind="stable")
    rank = np.arange(owner.size) - (np.cumsum(counts) - counts)[owner[order]]
    out = []
    for vals, f in zip(values, fill, strict=True):
        table = np.full((n_owner, width), f, dtype=np.asarray(vals).dtype)
        table[owner[order], rank] = np.asarray(vals)[order]
        out.append(table)
    return out


def _event_width(source: Any, pre: np.ndarray, n_pre: int, n_steps: int, dt: float) -> int:
    """Padding width for a plastic projection's arrivals per trial and step, chosen once so
    that one compiled shape serves the whole run: Poisson sources, the mean count
    :math:`\\lambda = \\sum_i p_i d_i` (``d_i`` the out-degree) plus seven standard deviations
    (exceeded with probability < 1e-11 per step); spike generators, their largest count."""
    from neuro.network import PoissonInput

    degree = np.bincount(pre, minlength=n_pre).astype(np.float64)
    if isinstance(source, PoissonInput):
        lam = float(np.sum(source.rates_array(n_steps, dt) * dt / 1000.0 * degree))
        return _bucket(int(lam + 7.0 * math.sqrt(lam) + 6.0))
    steps = source.steps(dt)
    trials = np.zeros_like(steps) if source.trials is None else np.asarray(source.trials)
    if steps.size == 0:
        return _bucket(0)
    key = steps * (int(trials.max()) + 1) + trials
    counts = np.bincount(key, weights=degree[np.asarray(source.indices)])
    return _bucket(int(counts.max()))


def _bucket(m: int) -> int:
    """Padding width for ``m`` events per trial and step: a power of two >= 8, so that few
    shapes (hence few compilations) occur."""
    return max(8, 1 << max(0, int(m - 1).bit_length()))


def _plastic_events(proj: dict, events: torch.Tensor, length: int, batch: int,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The chunk's arrivals at one plastic projection as padded ``(length, batch, width)``
    int32 tensors of synapse, presynaptic and postsynaptic indices (padding: synapse ``S``,
    presynaptic neuron ``n_pre``, postsynaptic 0); the presynaptic table is ``None`` when
    synapse ``k`` leaves neuron ``k`` (the synapse table serves), the postsynaptic one when
    there is a single target neuron. ``width`` is ``proj["width"]`` unless a step has more
    arrivals (then the next power of two: another compiled shape)."""
    if proj["in_off"] == 0 and proj["n_pre"] == proj["n_inputs"]:
        e = events  # the projection's source is every input
    else:
        e = events[(events[:, 2] >= proj["in_off"])
                   & (events[:, 2] < proj["in_off"] + proj["n_pre"])]
    pre = e[:, 2] - proj["in_off"] if proj["in_off"] else e[:, 2]
    if proj["pre_is_synapse"]:  # one synapse per input, synapse k from input k
        flat_t, flat_b, flat_pre = e[:, 0], e[:, 1], pre
        flat_s = flat_post = pre
        if proj["n_post"] > 1:
            flat_post = proj["post_tab"][pre, 0]
    else:
        s_ids = proj["syn_tab"][pre]  # (E, out-degree), padded with S
        keep = s_ids < proj["S"]
        flat_t = e[:, 0:1].expand_as(s_ids)[keep]
        flat_b = e[:, 1:2].expand_as(s_ids)[keep]
        flat_pre = pre[:, None].expand_as(s_ids)[keep]
        flat_s = s_ids[keep]
        flat_post = proj["post_tab"][pre][keep]
    key = flat_t * batch + flat_b  # non-decreasing: events are sorted by (t, b)
    counts = torch.bincount(key, minlength=length * batch)
    width = max(proj["width"], _bucket(int(counts.max()) if counts.numel() else 0))
    rank = torch.arange(key.numel(), device=device) - (torch.cumsum(counts, 0) - counts)[key]

    lin = key * width + rank  # entry (t, b, rank) of the (length, batch, width) table
    buffers = proj.setdefault("event_buffers", {})

    def padded(name: str, values: torch.Tensor, fill: int) -> torch.Tensor:
        # the chunk's table reuses the memory of the last chunk's (fresh memory of a few MB
        # per chunk costed more than filling it); the compiled chunk keeps no reference to it
        shape = (length, batch, width)
        out = buffers.get(name)
        if out is None or out.shape != shape:
            out = buffers[name] = torch.empty(shape, device=device, dtype=torch.int32)
        out.fill_(fill)
        out.view(-1).index_copy_(0, lin, values.to(torch.int32))
        return out

    ev_syn = padded("syn", flat_s, proj["S"])
    # synapse k has presynaptic neuron k (one synapse per input): one table serves both
    ev_pre = None if proj["pre_is_synapse"] else padded("pre", flat_pre, proj["n_pre"])
    ev_post = None if proj["n_post"] == 1 else padded("post", flat_post, 0)
    return ev_syn, ev_pre, ev_post


def run_fused(network: Network, duration_ms: float, *, batch_size: int = 1, seed: int = 0,
              device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
              connectome: Connectome | None = None, compile: bool = False,
              progress: bool = False, timings: dict | None = None, learning: bool = True,
              poisson_sampler: str = "bernoulli", chunk_steps: int = _FUSED_CHUNK_STEPS):
    r"""Simulate a feed-forward plastic network in chunks of ``chunk_steps`` steps.

    The torch engine's ``fused=True`` path (see :func:`fused_unsupported` for the networks it
    takes). Differences from the step-by-step loop, none of them in the result beyond
    floating-point rounding:

    * the input spikes of a whole chunk are drawn at once and turned into event lists;
      static synapses' arrivals of the chunk are summed in one ``index_add_``;
    * plastic synapses are updated only where something happens (as Brian2 does): a
      presynaptic arrival touches the spiking neuron's synapses (gather, update, scatter,
      ``(batch, events)`` elements per step); a postsynaptic spike only adds
      :math:`e^{-(t - t_0)/\tau_+}` to an accumulator :math:`Q_j`. Presynaptic traces are kept
      scaled, :math:`\hat a_i = a_i\,e^{(t - t_0)/\tau_+}` (constant between the neuron's
      spikes), and the potentiation a synapse has received since its last arrival,
      :math:`\min(w_{max}, w + A_+ \hat a_i (Q_j - Q_{ij}^{last}))`, is applied when it is next
      read (additive STDP: between two arrivals a weight only grows, so the hard bound
      commutes). At every chunk end all pending potentiation is applied and
      :math:`t_0` moves on, which keeps the scaled numbers within
      :math:`e^{\pm k\,\Delta t/\tau_+}`;
    * with ``compile=True`` a chunk is one call of a :func:`torch.compile`\ d
      ``while_loop`` (inductor's C++ wrapper, ``_FUSED_UNROLL`` steps per iteration), so the
      loop runs without Python; the first call of a process pays the compilation (~10-40 s
      here; inductor caches it on disk). The loop is functional: every step copies the
      per-synapse arrays (weights, scaled traces), which is what a step costs at large
      ``batch x synapses`` (Song-Abbott, 32 trials: ~20 us per step).

    Measured (``benchmarks/stdp.py``) on the shared 2-core CPU, 1 thread, float32,
    Song-Abbott (1000 inputs, 1 neuron, 10^6 steps): compiled with
    ``poisson_sampler="intervals"``, 2.7-4.4 us per step for one trial (Brian2: Cython
    18-30 s, C++ standalone 2.8-3.2 s) and 21-23 us per step for 32 trials; the
    ``"bernoulli"`` sampler costs ~6-9 us more per step and trial (10^3 uniform numbers);
    the step-by-step loop takes 68-92 us per step.

    ``poisson_sampler="bernoulli"`` draws the same uniform numbers as the step-by-step engine
    (identical spikes for a seed); ``"intervals"`` draws geometric inter-spike intervals
    (:class:`_IntervalInputs`): the same Poisson process from ~1000x fewer random numbers at
    15 Hz and 0.1 ms, but another random stream.
    """
    import time

    from neuro.network import (
        CurrentInput,
        PoissonInput,
        PopulationRateMonitor,
        SpikeGeneratorInput,
        SpikeMonitor,
    )
    from neuro.records import SimulationResult, rates_from_hits, spikes_from_hits

    t_start = time.perf_counter()
    device = torch.device(device)
    B, dt = int(batch_size), float(network.dt_ms)
    n_steps = network.n_steps(duration_ms)
    if connectome is None:
        connectome = network.build()
    t_built = time.perf_counter()

    def tens(a, dt_=dtype):
        return torch.as_tensor(np.array(a), device=device, dtype=dt_)

    # ---- inputs: Poisson first, then generators, in one index space ----------------------
    poisson = [i for i in network.inputs if isinstance(i, PoissonInput)]
    generators = [i for i in network.inputs if isinstance(i, SpikeGeneratorInput)]
    in_off: dict[str, int] = {}
    n_in = 0
    for inp in [*poisson, *generators]:
        in_off[inp.name] = n_in
        n_in += inp.n
    n_poisson = sum(i.n for i in poisson)
    gens = _poisson_generators(seed, B, device)
    sampler: Any = None
    if n_poisson:
        p = tens(np.concatenate([i.rates_array(n_steps, dt) for i in poisson]) * dt / 1000.0)
        if poisson_sampler == "bernoulli":
            sampler = _BernoulliInputs(p, n_steps, gens, device, dtype)
        elif poisson_sampler == "intervals":
            sampler = _IntervalInputs(p, gens, device)
        else:
            raise ValueError(f"poisson_sampler must be 'bernoulli' or 'intervals', got "
                             f"{poisson_sampler!r}.")
    gen_rows = np.zeros((0, 3), dtype=np.int64)  # (step, trial, input index), sorted
    if generators:
        rows = []
        for inp in generators:
            steps = inp.steps(dt)
            idx = np.asarray(inp.indices, dtype=np.int64) + in_off[inp.name]
            if inp.trials is None:
                steps, idx = np.tile(steps, B), np.tile(idx, B)
                trials = np.repeat(np.arange(B), np.asarray(inp.indices).size)
            else:
                trials = np.asarray(inp.trials, dtype=np.int64)
            keep = (steps < n_steps) & (trials < B)
            rows.append(np.stack([steps[keep], trials[keep], idx[keep]], 1))
        gen_rows = np.concatenate(rows)
        gen_rows = gen_rows[np.lexsort((gen_rows[:, 2], gen_rows[:, 1], gen_rows[:, 0]))]
    gen_rows_t = torch.as_tensor(gen_rows, device=device)

    # ---- populations ---------------------------------------------------------------------
    pops = list(network.populations)
    pop_index = {p.name: k for k, p in enumerate(pops)}
    syn_types = [list(network.synapses_of(p.name)) for p in pops]
    states, syn, ext = [], [], []
    for pop, types in zip(pops, syn_types, strict=True):
        state = pop.model.initial_state(pop.params, (B, pop.n), device, dtype)
        vars_ = [torch.zeros((B, pop.n), device=device, dtype=dtype) for _ in types]
        overrides: dict[str, np.ndarray] = {}
        for b in range(B):
            for key, val in network.initial_values(pop.name, seed + b).items():
                if key in state._fields:
                    arr = overrides.setdefault(
                        key, getattr(state, key).detach().cpu().numpy().astype(np.float64))
                    arr[b] = val
                else:
                    k = next(j for j, s in enumerate(types) if s.variable == key)
                    vars_[k][b] = tens(val)
        if overrides:
            state = state._replace(**{k: torch.as_tensor(v, device=device,
                                                         dtype=getattr(state, k).dtype)
                                      for k, v in overrides.items()})
        states.append(state)
        syn.append(vars_)
        const = None
        for inp in network.inputs:
            if isinstance(inp, CurrentInput) and inp.target == pop.name:
                amp = np.asarray(inp.amplitude_pA, dtype=np.float64)
                amp = amp if inp.per_trial else amp[None]
                amp = np.broadcast_to(amp.reshape(amp.shape[0], -1), (amp.shape[0], pop.n))
                const = amp if const is None else const + amp
        ext.append(None if const is None else tens(const))
    from neuro.synapses import propagators

    decay = [[propagators(s.tau_ms, dt)[0] for s in types] for types in syn_types]
    exponential = network.conductance_update == "exponential"
    neg_dt_over_c = [-dt / (network.capacitance_of(p.name) or 1.0) for p in pops]

    # ---- static projections: per input neuron, (flat column, weight) --------------------
    col_base, n_cols = [], 0
    for pop, types in zip(pops, syn_types, strict=True):
        col_base.append(n_cols)
        n_cols += len(types) * pop.n
    rules = {p.name: p.plasticity for p in network.projections}
    st_owner, st_col, st_w = [], [], []
    plastic: list[dict] = []
    for bp in connectome.projections:
        if bp.n_synapses == 0:
            continue
        k = pop_index[bp.target]
        ty = syn_types[k].index(bp.synapse)
        if rules.get(bp.name) is None:
            st_owner.append(bp.pre + in_off[bp.source])
            st_col.append(col_base[k] + ty * pops[k].n + bp.post)
            st_w.append(bp.weight)
            continue
        rule = rules[bp.name]
        sign = bp.synapse.sign if bp.synapse.kind == "current" else 1
        n_pre, n_post, S = network.spike_sources[bp.source].n, pops[k].n, bp.n_synapses
        syn_tab, post_tab = _padded_table(bp.pre, n_pre, [np.arange(S), bp.post], [S, 0])
        w0 = np.abs(bp.weight) if sign != 1 else bp.weight
        w = torch.zeros((B, S + 1), device=device, dtype=dtype)
        w[:, :S] = tens(w0)
        plastic.append(dict(
            index=len(plastic), name=bp.name, rule=rule, pop=k, type=ty, sign=float(sign),
            n_pre=n_pre, n_post=n_post, S=S, n_inputs=n_in,
            pre_is_synapse=bool(S == n_pre and np.array_equal(bp.pre, np.arange(S))),
            in_off=in_off[bp.source], width=_event_width(network.spike_sources[bp.source],
                                                         bp.pre, n_pre, n_steps, dt),
            syn_tab=torch.as_tensor(syn_tab, device=device),
            post_tab=torch.as_tensor(post_tab, device=device),
            pre=torch.as_tensor(bp.pre, device=device),
            post=torch.as_tensor(bp.post, device=device),
            state=(w,                                                           # w
                   torch.zeros((B, n_pre + 1), device=device, dtype=dtype),     # a_hat
                   torch.zeros((B, S + 1), device=device, dtype=dtype),         # Q_last
                   torch.zeros((B, n_post), device=device, dtype=dtype),        # Q
                   torch.zeros((B, n_post), device=device, dtype=dtype)),       # a_post
            d_plus=decay_factor(dt, rule.tau_plus), d_minus=decay_factor(dt, rule.tau_minus),
            A_plus=rule.A_plus if learning else 0.0, A_minus=rule.A_minus if learning else 0.0,
            w_min=rule.w_min, w_max=rule.w_max, nearest=rule.interaction == "nearest"))
    static = None
    if st_owner:
        col_tab, w_tab = _padded_table(np.concatenate(st_owner), n_in,
                                       [np.concatenate(st_col), np.concatenate(st_w)],
                                       [0, 0.0])
        static = (torch.as_tensor(col_tab, device=device), tens(w_tab))

    # ---- monitors --------------------------------------------------------------------------
    # Weight monitors are sampled between chunks: the chunk length divides their intervals.
    K = max(1, min(int(chunk_steps), n_steps))
    wmons = []
    for mon in network.monitors:
        if isinstance(mon, WeightMonitor):
            proj = next(p for p in plastic if p["name"] == mon.projection)
            idx = (np.arange(proj["S"]) if mon.synapses is None
                   else np.asarray(mon.synapses, dtype=np.int64))
            if idx.size and idx.max() >= proj["S"]:
                raise ValueError(f"WeightMonitor on {mon.projection!r}: synapse index "
                                 f"{idx.max()} out of range (the projection has {proj['S']}).")
            K = math.gcd(K, mon.every)
            wmons.append((mon, proj, torch.as_tensor(idx, device=device)))
    spike_pops = {m.population for m in network.monitors
                  if isinstance(m, SpikeMonitor | PopulationRateMonitor)}

    def effective(proj, pstate, idx):
        """Weights of synapses ``idx`` (``None``: all) with their pending potentiation
        applied."""
        w, a_hat, q_last, q, _ = pstate
        if idx is None:  # all synapses: slices where the indices are a plain range
            S = proj["S"]
            a_pre = a_hat[:, :S] if proj["pre_is_synapse"] else a_hat[:, proj["pre"]]
            q_post = q[:, :1] if proj["n_post"] == 1 else q[:, proj["post"]]
            pending = proj["A_plus"] * a_pre * (q_post - q_last[:, :S])
            return (w[:, :S] + pending).clamp(max=proj["w_max"])
        pending = proj["A_plus"] * a_hat[:, proj["pre"][idx]] * (q[:, proj["post"][idx]]
                                                                 - q_last[:, idx])
        return (w[:, idx] + pending).clamp(max=proj["w_max"])

    # ---- one step, and a chunk of steps ---------------------------------------------------
    def at(x: torch.Tensor, u: Any) -> torch.Tensor:
        """Row ``u`` of ``x``; ``u`` an int, or a 0-d tensor inside the compiled loop."""
        return x[u] if isinstance(u, int) else x.index_select(0, u.reshape(1))[0]

    def step(u, states, syn, pstates, arrivals, ev, jumps, qscales, inplace):
        """Step ``u`` of the chunk; ``jumps[u]`` / ``qscales[u]`` hold
        :math:`e^{\\pm u\\,\\Delta t/\\tau_+}` of each plastic projection."""
        new_states, new_syn, all_spikes = [], [], []
        for m, pop in enumerate(pops):
            state, vars_ = states[m], syn[m]
            current = drive = g_tot = None
            for s, x in zip(syn_types[m], vars_, strict=True):
                if s.kind == "current":
                    current = x if current is None else current + x
                else:
                    d = x * (s.E_rev_mV - state.v)
                    drive = d if drive is None else drive + d
                    g_tot = x if g_tot is None else g_tot + x
            if drive is not None:
                if exponential:
                    nx = (g_tot * neg_dt_over_c[m]).clamp_max(-1e-20)
                    drive = drive * (torch.expm1(nx) / nx)
                current = drive if current is None else current + drive
            if ext[m] is not None:
                current = ext[m] if current is None else current + ext[m]
            if current is None:
                current = torch.zeros_like(state.v)
            elif current.shape != state.v.shape:
                current = current.expand_as(state.v)
            spk, state = pop.model.step(state, current, pop.params, dt)
            vars_ = [x * d for x, d in zip(vars_, decay[m], strict=True)]
            if arrivals is not None:
                a = at(arrivals, u)[:, col_base[m]:col_base[m] + len(vars_) * pop.n]
                vars_ = [x + a[:, i * pop.n:(i + 1) * pop.n] for i, x in enumerate(vars_)]
            new_states.append(state)
            new_syn.append(vars_)
            all_spikes.append(spk)
        states, syn = new_states, new_syn
        new_p = []
        for j, (proj, (w, a_hat, q_last, q, a_post), (ev_syn, ev_pre, ev_post)) in \
                enumerate(zip(plastic, pstates, ev, strict=True)):
            s_k = at(ev_syn, u).long()
            i_k = s_k if ev_pre is None else at(ev_pre, u).long()
            j_k = torch.zeros_like(s_k) if ev_post is None else at(ev_post, u).long()
            valid = (s_k < proj["S"]).to(dtype)
            a_post = a_post * proj["d_minus"]
            w_e = w.gather(1, s_k)
            a_e = a_hat.gather(1, i_k)
            q_e = q.gather(1, j_k)
            w_e = (w_e + proj["A_plus"] * a_e * (q_e - q_last.gather(1, s_k))).clamp(
                max=proj["w_max"])
            m, ty = proj["pop"], proj["type"]
            target = syn[m][ty].scatter_add(1, j_k, w_e * (valid * proj["sign"]))
            syn[m] = [target if i == ty else x for i, x in enumerate(syn[m])]
            w_e = (w_e - proj["A_minus"] * a_post.gather(1, j_k)).clamp(min=proj["w_min"])
            w = w.scatter_(1, s_k, w_e) if inplace else w.scatter(1, s_k, w_e)
            q_last = (q_last.scatter_(1, s_k, q_e) if inplace
                      else q_last.scatter(1, s_k, q_e))
            jump = at(jumps, u)[j]
            a_new = (jump if proj["nearest"] else a_e + jump) * valid
            a_hat = (a_hat.scatter_(1, i_k, a_new) if inplace
                     else a_hat.scatter(1, i_k, a_new))
            post = all_spikes[m].to(dtype)
            q = q + post * at(qscales, u)[j]
            a_post = torch.where(post > 0, torch.ones_like(a_post), a_post) \
                if proj["nearest"] else a_post + post
            new_p.append((w, a_hat, q_last, q, a_post))
        pstates = new_p
        spikes = torch.cat(all_spikes, 1) if len(all_spikes) > 1 else all_spikes[0]
        return states, syn, pstates, spikes

    def run_chunk(states, syn, pstates, arrivals, ev, jumps, qscales):
        """Every step of a chunk, looping in Python."""
        out = []
        for u in range(jumps.shape[0]):
            states, syn, pstates, spk = step(u, states, syn, pstates, arrivals, ev, jumps,
                                             qscales, True)
            out.append(spk)
        return states, syn, pstates, torch.stack(out)

    def run_chunk_loop(states, syn, pstates, arrivals, ev, jumps, qscales):
        """The same as one ``while_loop`` (compiled: the loop runs in generated C++). Its
        functional semantics copy the carried per-synapse arrays once per step (a captured
        array updated in place costs two copies: inductor functionalises the update and copies
        it back), which is what a step costs at large ``batch x synapses``."""
        from torch._higher_order_ops.while_loop import while_loop
        from torch.utils._pytree import tree_flatten, tree_unflatten

        length = jumps.shape[0]
        leaves, spec = tree_flatten((states, syn, pstates))
        # Spikes are bit-packed, 62 steps to an int64 word: the loop's functional update then
        # copies (B, n, length/62) words per step rather than a (length, B, n) buffer.
        words = torch.zeros((B, n_pop_total, -(-length // 62)), device=device,
                            dtype=torch.long)
        word_index = torch.arange(words.shape[2], device=device)

        unroll = math.gcd(_FUSED_UNROLL, length)

        def cond(u, *carried):
            return u < length

        def body(u, *carried):
            # ``unroll`` steps per iteration: the loop's fixed cost per iteration (allocating
            # and handing over the carried tensors) is shared by several steps
            st, sy, ps = tree_unflatten(list(carried[:-1]), spec)
            packed = carried[-1]
            for k in range(unroll):
                uk = u + k
                st, sy, ps, spk = step(uk, st, sy, ps, arrivals, ev, jumps, qscales, False)
                bit = spk.to(torch.long).unsqueeze(2) << (uk % 62)
                packed = packed + bit * (word_index == uk // 62)
            new_leaves, _ = tree_flatten((st, sy, ps))
            return (u + unroll, *new_leaves, packed)

        u0 = torch.zeros((), dtype=torch.long, device=device)
        res = while_loop(cond, body, (u0, *leaves, words))
        states, syn, pstates = tree_unflatten(list(res[1:-1]), spec)
        u = torch.arange(length, device=device)
        spikes = (res[-1][:, :, u // 62] >> (u % 62)) & 1  # (B, n, length)
        return states, syn, pstates, spikes.permute(2, 0, 1).bool()

    n_pop_total = sum(p.n for p in pops)
    compiled = (torch.compile(run_chunk_loop, dynamic=False, options={"cpp_wrapper": True})
                if compile else run_chunk)
    d_plus = np.array([p["d_plus"] for p in plastic], dtype=np.float64)
    powers = np.arange(K, dtype=np.float64)[:, None]
    jumps_all = tens(d_plus[None, :] ** -powers if plastic else np.zeros((K, 0)))
    qscales_all = tens(d_plus[None, :] ** powers if plastic else np.zeros((K, 0)))

    # ---- the loop ------------------------------------------------------------------------------
    pop_spike_parts, in_spike_parts = [], []
    wm_buf = [torch.zeros((-(-n_steps // m.every), B, idx.numel()), device=device, dtype=dtype)
              for m, _, idx in wmons]
    pstates = [p.pop("state") for p in plastic]
    record_inputs = any(name in in_off for name in spike_pops)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_steps, unit="step", desc="torch fused")
    t_setup = time.perf_counter()
    with torch.no_grad():
        for c in range(0, n_steps, K):
            length = min(K, n_steps - c)
            parts = []
            if sampler is not None:
                parts.append(sampler.events(c, length))
            if gen_rows.size:
                lo, hi = np.searchsorted(gen_rows[:, 0], [c, c + length])
                if hi > lo:
                    r = gen_rows_t[lo:hi].clone()
                    r[:, 0] -= c
                    parts.append(r)
            events = (torch.cat(parts) if parts
                      else torch.zeros((0, 3), dtype=torch.long, device=device))
            if len(parts) > 1:
                key = (events[:, 0] * B + events[:, 1]) * n_in + events[:, 2]
                events = events[torch.argsort(key)]
            if record_inputs and events.shape[0]:
                r = events.clone()
                r[:, 0] += c
                in_spike_parts.append(r.cpu().numpy())
            arrivals = None
            if static is not None:
                arrivals = torch.zeros((length * B * n_cols,), device=device, dtype=dtype)
                cols, ws = static[0][events[:, 2]], static[1][events[:, 2]]
                base = (events[:, 0] * B + events[:, 1]) * n_cols
                arrivals.index_add_(0, (base[:, None] + cols).reshape(-1), ws.reshape(-1))
                arrivals = arrivals.view(length, B, n_cols)
            ev = [_plastic_events(proj, events, length, B, device) for proj in plastic]
            for j, (mon, proj, idx) in enumerate(wmons):
                if c % mon.every == 0:
                    wm_buf[j][c // mon.every] = effective(proj, pstates[proj["index"]], idx)
            fn = compiled if length == K else run_chunk
            states, syn, pstates, spikes = fn(states, syn, pstates, arrivals, ev,
                                              jumps_all[:length], qscales_all[:length])
            if spike_pops:
                nz = spikes.nonzero()
                nz[:, 0] += c
                pop_spike_parts.append(nz.cpu().numpy())
            # apply pending potentiation, move the time origin of the scaled traces
            new_p = []
            for proj, ps in zip(plastic, pstates, strict=True):
                w, a_hat, q_last, q, a_post = ps
                S = proj["S"]
                w[:, :S] = effective(proj, ps, None)
                a_hat.mul_(proj["d_plus"] ** length).masked_fill_(a_hat < 1e-30, 0.0)
                new_p.append((w, a_hat, q_last.zero_(), q.zero_(), a_post))
            pstates = new_p
            if bar is not None:
                bar.update(length)
    if bar is not None:
        bar.close()
    t_run = time.perf_counter()

    # ---- records -------------------------------------------------------------------------------
    spikes_out, rates_out = {}, {}
    pop_hits = (np.concatenate(pop_spike_parts) if pop_spike_parts
                else np.zeros((0, 3), dtype=np.int64))
    in_hits = (np.concatenate(in_spike_parts) if in_spike_parts
               else np.zeros((0, 3), dtype=np.int64))
    pop_off = np.cumsum([0] + [p.n for p in pops])
    sources = network.spike_sources
    for mon in network.monitors:
        if not isinstance(mon, SpikeMonitor | PopulationRateMonitor):
            continue
        name = mon.population
        if name in pop_index:
            hits, off = pop_hits, int(pop_off[pop_index[name]])
        else:
            hits, off = in_hits, in_off[name]
        n = sources[name].n
        sel = (hits[:, 2] >= off) & (hits[:, 2] < off + n)
        step_i, trial, neuron = hits[sel, 0], hits[sel, 1], hits[sel, 2] - off
        if isinstance(mon, SpikeMonitor):
            spikes_out[name] = spikes_from_hits(name, n, B, n_steps, dt, step_i, trial, neuron)
        else:
            rates_out[name] = rates_from_hits(n, B, n_steps, dt, step_i, trial)
    weights = {p["name"]: ps[0][:, :p["S"]].detach().cpu().numpy().astype(np.float64)
               for p, ps in zip(plastic, pstates, strict=True)}
    states_out = {}
    for (mon, proj, idx), buf in zip(wmons, wm_buf, strict=True):
        kind = next(p.synapse.kind for p in network.projections if p.name == proj["name"])
        values = buf.detach().cpu().numpy().astype(np.float64).transpose(1, 0, 2)
        states_out[f"{mon.projection}.w"] = StateRecord(
            population=mon.projection, variable="w", unit="nS" if kind == "conductance"
            else "pA", neurons=idx, times_ms=np.arange(values.shape[1]) * mon.every * dt,
            values=values)
    t_end = time.perf_counter()
    if timings is not None:
        timings.update(build_s=t_built - t_start, setup_s=t_setup - t_built,
                       run_s=t_run - t_setup, total_s=t_end - t_start)
    return SimulationResult(
        engine="torch", device=str(device), dt_ms=dt, duration_ms=n_steps * dt,
        spikes=spikes_out, states=states_out, population_rates_hz=rates_out,
        wall_time_s=t_run - t_setup, weights=weights)
