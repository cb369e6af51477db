r"""The Diehl & Cook (2015) network in torch: state, one pure step, one presentation, the rest.

Equations and constants are those of :class:`~neuro.diehl_cook.params.DiehlCookParams`. This
module fixes the *discretisation*, which the Brian2 counterpart
(:mod:`neuro.diehl_cook.brian2_network`) reproduces.

Time grid and order within a step
---------------------------------
Step :math:`n` covers :math:`[t_n, t_n + \Delta t)` with :math:`t_n = n\,\Delta t` counted from the
start of the presentation; spikes of step :math:`n` are stamped :math:`t_n` (Brian2's convention).
One step (:func:`diehl_cook_step`) does, in Brian2's default schedule
``groups -> thresholds -> synapses -> resets``:

1. **groups** (state update, every variable from its value at the start of the step):

   * held (refractory) neurons keep :math:`v` (Brian2 ``(unless refractory)``), see
     :func:`neuro.models._common.refractory_hold`; the others relax exactly with the
     conductances frozen over the step (Brian2 ``exponential_euler``):
     :math:`v \leftarrow v_\infty + (v - v_\infty)\,e^{-\Delta t/\tau_{eff}}`,
     :math:`v_\infty = (E_{rest} + g_e E_{exc} + g_i E_{inh})/(1 + g_e + g_i)`,
     :math:`\tau_{eff} = \tau_m/(1 + g_e + g_i)` (excitatory: :math:`E_{inh}` = ``E_inh_on_exc``;
     inhibitory: its own constants and ``E_inh_on_inh``);
   * conductances :math:`g \leftarrow g\,e^{-\Delta t/\tau_g}` (exact);
   * STDP traces :math:`x \leftarrow x\,e^{-\Delta t/\tau_x}` (exact; identical to Brian2's
     event-driven traces evaluated at :math:`t_n`, because a trace set to 1 in step :math:`m`
     has decayed by :math:`e^{-(n-m)\Delta t/\tau}` at step :math:`n`);
   * (learning only) :math:`\theta \leftarrow \theta\,e^{-\Delta t/\tau_\theta}`.

2. **thresholds**: excitatory spike where :math:`v > V_{th} + \theta - \text{offset}` and not
   held; inhibitory spike where :math:`v > V_{th,inh}` and not held.

3. **synapses** (no synaptic delays: the paper's text and BindsNET have none; the original Brian
   code's random 0-10 ms input delays are omitted), in this order:

   a. input -> excitatory, ``on_pre`` (Brian2 pathway ``order=-1``): for every input spike
      :math:`i`: :math:`g_{e,j} \mathrel{+}= w_{ij}` with the weights *before* this step's
      plasticity; then (learning) :math:`x_{pre,i} = 1` and
      :math:`w_{ij} \leftarrow \mathrm{clip}(w_{ij} - \nu_{pre}\,x_{post1,j}, 0, w_{max})`;
   b. input -> excitatory, ``on_post`` (``order=+1``, after a.): for every excitatory spike
      :math:`j` (learning): :math:`w_{ij} \leftarrow \mathrm{clip}(w_{ij} + \nu_{post}\,x_{pre,i}
      \,x_{post2,j}, 0, w_{max})` with :math:`x_{post2}` before its reset (and :math:`x_{pre}`
      *after* a., so a pre and a post spike in the same step count as pre-before-post), then
      :math:`x_{post1,j} = x_{post2,j} = 1`;
   c. excitatory -> inhibitory (one-to-one): :math:`g_{e,inh,j} \mathrel{+}= w_{exc\to inh}`;
   d. inhibitory -> excitatory (all but the partner):
      :math:`g_{i,exc,k} \mathrel{+}= w_{inh\to exc}` for every :math:`k \ne j`.

   The conductance additions (a, c, d) commute, so only a. before b. matters.

4. **resets**: :math:`v \leftarrow V_{reset}`, refractory countdown restarts at :math:`t_{ref}`;
   (learning) :math:`\theta_j \mathrel{+}= \theta_+` for each excitatory spike.

With ``learning=False`` nothing learned changes: no STDP, no :math:`\theta` decay or increment;
the STDP traces are then not advanced either (they only matter to learning).

Batching
--------
A batch of :math:`B` examples runs in :math:`B` copies of the network that share the weights
:math:`W` (``(n_input, n_exc)``) and :math:`\theta` (``(n_exc,)``); each copy has its own
membrane, conductances, refractory countdowns and traces (:class:`DiehlCookState`, leading
dimension :math:`B`). In a step the weight change is the **sum** of the copies' changes
(depression of every copy, then clip; then potentiation of every copy, then clip) and
:math:`\theta` grows by :math:`\theta_+` times the number of copies in which the neuron fired.
So :math:`B = 1` is exactly the paper's network. What batching changes for :math:`B > 1`:

* the weights move by the summed change of :math:`B` examples (a :math:`B` times larger
  effective learning rate per presentation), and :math:`\theta` by the summed jumps;
* the changes are applied step by step, so a copy sees the changes the other copies made in
  *earlier* steps of the presentation (not those of the same step), whereas in the paper each
  example sees only the changes of the examples before it;
* the weight normalisation, the decay of :math:`\theta` over the rest and the rest itself act
  once per presentation of the batch instead of once per example;
* examples that evoke too few spikes are shown again as a sub-batch of only those copies
  (:func:`present_until_responsive`), while the others wait.

The rest between examples
-------------------------
Instead of simulating ``t_rest_ms`` (150 ms, 300 steps) without input, :func:`rest` applies its
closed form: conductances and traces decay exactly (:math:`e^{-t_{rest}/\tau}`), the refractory
countdown is cleared, :math:`\theta` decays by :math:`e^{-t_{rest}/\tau_\theta}` (learning only),
and :math:`v` relaxes towards :math:`E_{rest}` with :math:`\tau_m`,
:math:`v \leftarrow E_{rest} + (v - E_{rest})\,e^{-t_{rest}/\tau_m}`. The approximation is to
neglect the conductances left at the end of the presentation in the membrane equation (they
decay within 1-2 ms, i.e. within 1 % of the rest) and the few spikes they could still cause (an
inhibitory neuron driven in the last step can fire once more); the refractory hold of a neuron
that fired at the very end (at most ``t_ref``) is neglected too.

The trace convention above makes this exact for the traces: after the last step (time
:math:`t_{N-1}`) the rest decays them over ``t_rest_ms`` and the first step of the next
presentation over one more :math:`\Delta t`, i.e. over the time from the last step of one
presentation to the first of the next.

Speed
-----
Input spikes of a presentation are drawn in one call (:func:`poisson_input`) and turned into
per-step index lists once; a step then touches only the rows of :math:`W` whose input spiked
(conductance input, depression) and the columns whose excitatory neuron fired (potentiation),
with ``index_add_``. For that reason :func:`diehl_cook_step` updates ``weights`` **in place**
(and returns it); every other input (state, theta) is left untouched. The dense neuron update
uses 0-dim tensors for its constants (half the cost of Python numbers per op), does the resets
with float spike masks (``x * (1 - s) + a * s``, exact for finite ``x``, several times cheaper on
the CPU than ``masked_fill`` with a bool mask), and asks the host whether there are excitatory
spikes once (the indices the potentiation needs) rather than two or three times. It can be run
through :func:`torch.compile` (``compiled=True``: bit-identical in our tests, about a third
faster with batch 1). With one example at a time a step is some 60 small torch operations, so
Python and dispatch overhead, not arithmetic, set the speed; batches amortise it.

Measured (torch 2.13 CPU, one thread, 784 inputs, 400 excitatory neurons, learning on, random
MNIST-like images with mean intensity 0.13, about 16 spikes an example, process CPU time per
training example on a shared 2-core machine with load average 6): batch 1 0.074 s (compiled
0.056 s), batch 16 0.011 s, batch 64 0.008 s; Brian2's C++ standalone needs about 0.061 s.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from neuro.diehl_cook.params import DiehlCookParams
from neuro.models._common import decay_factor, refractory_hold, relax
from neuro.records import SpikeRecord

__all__ = [
    "DiehlCookState",
    "InputEvents",
    "Presentation",
    "ResponsivePresentation",
    "SpikeTotals",
    "START_INTENSITY",
    "initial_state",
    "initial_weights",
    "initial_theta",
    "diehl_cook_step",
    "rest",
    "input_rates",
    "poisson_input",
    "present",
    "present_until_responsive",
    "index_state",
    "check_images",
]

#: The input intensity every example starts at (the original code's ``input_intensity = 2``):
#: a pixel of intensity 1 then fires at ``max_rate_hz``.
START_INTENSITY = 2.0


class DiehlCookState(NamedTuple):
    """Per-copy state of the network; every field has leading dimension ``B`` (the batch).

    Attributes
    ----------
    v_exc, v_inh : membrane potentials ``(B, n_exc)``, mV.
    ge_exc, gi_exc : excitatory / inhibitory conductance of the excitatory neurons ``(B, n_exc)``,
        dimensionless (units of the leak conductance).
    ge_inh, gi_inh : the same for the inhibitory neurons (``gi_inh`` stays 0: there is no
        inhibitory -> inhibitory connection; it is kept so both layers have the same equations).
    refrac_exc, refrac_inh : refractory time left ``(B, n_exc)``, ms, counted from the last
        spike's time stamp (:func:`neuro.models._common.refractory_hold`).
    x_pre : presynaptic STDP trace of every input ``(B, n_input)``.
    x_post1, x_post2 : postsynaptic STDP traces ``(B, n_exc)`` (:math:`\\tau_{post1}`,
        :math:`\\tau_{post2}`).

    :math:`\\theta` (``(n_exc,)``) is not here: it is learned and shared by the copies, so it is
    kept with the weights.
    """

    v_exc: torch.Tensor
    v_inh: torch.Tensor
    ge_exc: torch.Tensor
    gi_exc: torch.Tensor
    ge_inh: torch.Tensor
    gi_inh: torch.Tensor
    refrac_exc: torch.Tensor
    refrac_inh: torch.Tensor
    x_pre: torch.Tensor
    x_post1: torch.Tensor
    x_post2: torch.Tensor


class InputEvents(NamedTuple):
    """The input spikes of one step as index lists: spike ``k`` is input ``neuron[k]`` of copy
    ``batch[k]`` (both ``int64``, same length, no repeated pair). Equivalent to a bool
    ``(B, n_input)`` mask. ``flat`` optionally holds ``batch * n_input + neuron`` (computed
    when missing)."""

    batch: torch.Tensor
    neuron: torch.Tensor
    flat: torch.Tensor | None = None


@dataclass(frozen=True)
class _Factors:
    """Decay factors of one step and of the rest, computed once per parameter set."""

    k_exc: float  # dt / tau_m_exc
    k_inh: float  # dt / tau_m_inh
    ge: float
    gi: float
    pre: float
    post1: float
    post2: float
    theta: float
    rest_v_exc: float
    rest_v_inh: float
    rest_ge: float
    rest_gi: float
    rest_pre: float
    rest_post1: float
    rest_post2: float
    rest_theta: float


@functools.lru_cache(maxsize=64)
def _factors(params: DiehlCookParams) -> _Factors:
    dt, rest = params.dt_ms, params.t_rest_ms
    return _Factors(
        k_exc=dt / params.tau_m_exc,
        k_inh=dt / params.tau_m_inh,
        ge=decay_factor(dt, params.tau_ge_ms),
        gi=decay_factor(dt, params.tau_gi_ms),
        pre=decay_factor(dt, params.tau_pre_ms),
        post1=decay_factor(dt, params.tau_post1_ms),
        post2=decay_factor(dt, params.tau_post2_ms),
        theta=decay_factor(dt, params.tau_theta_ms),
        rest_v_exc=decay_factor(rest, params.tau_m_exc),
        rest_v_inh=decay_factor(rest, params.tau_m_inh),
        rest_ge=decay_factor(rest, params.tau_ge_ms),
        rest_gi=decay_factor(rest, params.tau_gi_ms),
        rest_pre=decay_factor(rest, params.tau_pre_ms),
        rest_post1=decay_factor(rest, params.tau_post1_ms),
        rest_post2=decay_factor(rest, params.tau_post2_ms),
        rest_theta=decay_factor(rest, params.tau_theta_ms),
    )


# --------------------------------------------------------------------------- initial values


def initial_state(
    params: DiehlCookParams,
    batch_size: int = 1,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> DiehlCookState:
    """Resting state of ``batch_size`` copies: :math:`v = E_{rest}` of each layer, conductances,
    refractory countdowns and traces zero.

    (The original code starts the membranes 40 mV below rest; that only affects the first
    example, so the resting value is used.)
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    shape = (batch_size, params.n_exc)
    zeros = functools.partial(torch.zeros, device=device, dtype=dtype)
    return DiehlCookState(
        v_exc=torch.full(shape, params.E_rest_exc, device=device, dtype=dtype),
        v_inh=torch.full(shape, params.E_rest_inh, device=device, dtype=dtype),
        ge_exc=zeros(shape),
        gi_exc=zeros(shape),
        ge_inh=zeros(shape),
        gi_inh=zeros(shape),
        refrac_exc=zeros(shape),
        refrac_inh=zeros(shape),
        x_pre=zeros((batch_size, params.n_input)),
        x_post1=zeros(shape),
        x_post2=zeros(shape),
    )


def initial_weights(
    params: DiehlCookParams,
    generator: torch.Generator,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Input weights ``(n_input, n_exc)`` uniform in ``[w_init_min, w_init_max]`` (the original
    code: ``(rand + 0.01) * 0.3``), *not* yet normalised.

    The values are drawn on the CPU with ``generator`` (a CPU generator) and then moved, so the
    same seed gives the same weights on every device.
    """
    w = torch.rand((params.n_input, params.n_exc), generator=generator, dtype=torch.float64)
    w = params.w_init_min + (params.w_init_max - params.w_init_min) * w
    return w.to(device=device, dtype=dtype)


def initial_theta(
    params: DiehlCookParams,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Initial threshold adaptation ``(n_exc,)``, all ``theta_init`` mV.

    Float64 by default whatever the precision of the rest of the network: its decay per step,
    :math:`\theta\,\Delta t/\tau_\theta \approx 10^{-6}` mV, is below the float32
    resolution of a :math:`\theta` of 20 mV (:math:`1.9\cdot 10^{-6}` mV), so in float32 the
    decay would be rounded to zero or to twice its value step by step.
    """
    return torch.full((params.n_exc,), params.theta_init, device=device, dtype=dtype)


def index_state(state: DiehlCookState, index: torch.Tensor | slice) -> DiehlCookState:
    """The copies ``index`` of a state (a new state; fields indexed along the batch)."""
    return DiehlCookState(*(field[index] for field in state))


# --------------------------------------------------------------------------- one step


def _check_step_shapes(
    state: DiehlCookState, weights: torch.Tensor, theta: torch.Tensor, params: DiehlCookParams
) -> None:
    if tuple(weights.shape) != (params.n_input, params.n_exc):
        raise ValueError(
            f"weights must have shape (n_input, n_exc) = ({params.n_input}, {params.n_exc}), "
            f"got {tuple(weights.shape)}"
        )
    if tuple(theta.shape) != (params.n_exc,):
        raise ValueError(f"theta must have shape ({params.n_exc},), got {tuple(theta.shape)}")
    dtypes = {t.dtype for t in (weights, *state)}
    if len(dtypes) != 1:
        raise ValueError(
            f"weights and state must share one dtype, got {sorted(map(str, dtypes))}"
        )
    if not theta.is_floating_point():
        raise ValueError(f"theta must be floating point (float64 advised), got {theta.dtype}")
    batch = state.v_exc.shape[0]
    if tuple(state.v_exc.shape) != (batch, params.n_exc) or tuple(state.x_pre.shape) != (
        batch,
        params.n_input,
    ):
        raise ValueError(
            f"state does not fit params: v_exc {tuple(state.v_exc.shape)}, x_pre "
            f"{tuple(state.x_pre.shape)}; expected (B, {params.n_exc}) and (B, {params.n_input})"
        )


def _as_events(input_spikes: torch.Tensor | InputEvents, batch: int, n_input: int) -> InputEvents:
    if isinstance(input_spikes, InputEvents):
        return input_spikes
    if not isinstance(input_spikes, torch.Tensor) or tuple(input_spikes.shape) != (batch, n_input):
        shape = tuple(input_spikes.shape) if isinstance(input_spikes, torch.Tensor) else None
        raise ValueError(
            f"input_spikes must be a bool tensor (B, n_input) = ({batch}, {n_input}) or "
            f"InputEvents, got {type(input_spikes).__name__} of shape {shape}"
        )
    b, i = torch.nonzero(input_spikes, as_tuple=True)
    return InputEvents(b, i)


class _Constants(NamedTuple):
    """The numbers a step uses, as Python floats (for :func:`torch.compile`, which bakes them
    in) or as 0-dim tensors of the state's dtype (eager: an op with a tensor operand is about
    twice as fast as one with a Python number, which torch first wraps into a tensor), except
    :data:`_SCALAR_CONSTANTS`, always floats."""

    one: float | torch.Tensor
    neg_k_exc: float | torch.Tensor  # -dt / tau_m_exc
    neg_k_inh: float | torch.Tensor
    E_rest_exc: float | torch.Tensor
    E_rest_inh: float | torch.Tensor
    E_exc: float | torch.Tensor
    E_inh_on_exc: float | torch.Tensor
    E_inh_on_inh: float | torch.Tensor
    d_ge: float | torch.Tensor
    d_gi: float | torch.Tensor
    d_pre: float | torch.Tensor
    d_post1: float | torch.Tensor
    d_post2: float | torch.Tensor
    d_theta: float | torch.Tensor
    v_th_exc: float | torch.Tensor  # V_th_exc - theta_offset
    V_th_inh: float | torch.Tensor
    V_reset_exc: float | torch.Tensor
    V_reset_inh: float | torch.Tensor
    t_ref_exc: float | torch.Tensor
    t_ref_inh: float | torch.Tensor
    w_exc_inh: float | torch.Tensor
    w_inh_exc: float | torch.Tensor
    theta_plus: float | torch.Tensor


#: Constants that stay Python floats in eager mode too: they are only used as the ``alpha`` of
#: an ``add``, which takes a number (a tensor would be read back first).
_SCALAR_CONSTANTS = frozenset({"V_reset_exc", "V_reset_inh", "t_ref_exc", "t_ref_inh",
                               "w_exc_inh"})


@functools.lru_cache(maxsize=64)
def _constants(
    params: DiehlCookParams, dtype: torch.dtype | None = None, device: torch.device | None = None
) -> _Constants:
    """:class:`_Constants` of ``params``: floats when ``dtype`` is ``None``, else 0-dim
    tensors."""
    p, f = params, _factors(params)
    values = _Constants(
        one=1.0, neg_k_exc=-f.k_exc, neg_k_inh=-f.k_inh, E_rest_exc=p.E_rest_exc,
        E_rest_inh=p.E_rest_inh, E_exc=p.E_exc, E_inh_on_exc=p.E_inh_on_exc,
        E_inh_on_inh=p.E_inh_on_inh, d_ge=f.ge, d_gi=f.gi, d_pre=f.pre, d_post1=f.post1,
        d_post2=f.post2, d_theta=f.theta, v_th_exc=p.V_th_exc - p.theta_offset,
        V_th_inh=p.V_th_inh, V_reset_exc=p.V_reset_exc, V_reset_inh=p.V_reset_inh,
        t_ref_exc=p.t_ref_exc, t_ref_inh=p.t_ref_inh, w_exc_inh=p.w_exc_inh,
        w_inh_exc=p.w_inh_exc, theta_plus=p.theta_plus,
    )
    if dtype is None:
        return values
    tensors = {k: v if k in _SCALAR_CONSTANTS else torch.tensor(v, dtype=dtype, device=device)
               for k, v in values._asdict().items()}
    # theta's constants in double precision: theta is kept in float64 (initial_theta)
    for k in ("d_theta", "theta_plus", "v_th_exc"):
        tensors[k] = torch.tensor(getattr(values, k), dtype=torch.float64, device=device)
    return _Constants(**tensors)


def _neuron_update(
    state: DiehlCookState,
    theta: torch.Tensor,
    dt_ms: float,
    c: _Constants,
    learning: bool,
    skip_quiet: bool,
) -> tuple[torch.Tensor, ...]:
    """The dense part of a step: (1) groups, (2) thresholds, (4) resets and the theta jump, and
    the conductance jumps of (3c)/(3d) (they read only this step's spikes).

    Moving the resets before the input synapses (3a/3b) changes nothing: those read and write
    only the input conductance, the weights and the STDP traces. ``skip_quiet`` skips the
    spike-driven updates when there are no spikes (eager mode: fewer kernels); ``False`` keeps
    the function free of data-dependent branches (for :func:`torch.compile`).

    Returns the new ``v_exc, v_inh, ge_exc, gi_exc, ge_inh, gi_inh, refrac_exc, refrac_inh,
    x_pre, x_post1, x_post2`` (traces decayed, not yet reset), ``theta``, the spikes (bool),
    ``post`` (the excitatory spikes' ``nonzero`` indices when eager and learning, else ``None``)
    and the float excitatory spike mask ``s`` and ``1 - s`` (``None`` when skipped: no spikes).
    """
    # (1) groups: every variable from the values at the start of the step.
    held_e, refrac_e = refractory_hold(state.refrac_exc, dt_ms)
    held_i, refrac_i = refractory_hold(state.refrac_inh, dt_ms)
    ge, gi = state.ge_exc, state.gi_exc
    g_tot = ge + gi + c.one
    v_inf = (ge * c.E_exc + gi * c.E_inh_on_exc + c.E_rest_exc) / g_tot
    v_exc = torch.where(held_e, state.v_exc,
                        relax(state.v_exc, v_inf, torch.exp(g_tot * c.neg_k_exc)))
    ge, gi = state.ge_inh, state.gi_inh
    g_tot = ge + gi + c.one
    v_inf = (ge * c.E_exc + gi * c.E_inh_on_inh + c.E_rest_inh) / g_tot
    v_inh = torch.where(held_i, state.v_inh,
                        relax(state.v_inh, v_inf, torch.exp(g_tot * c.neg_k_inh)))
    ge_exc = state.ge_exc * c.d_ge
    gi_exc = state.gi_exc * c.d_gi
    ge_inh = state.ge_inh * c.d_ge
    gi_inh = state.gi_inh * c.d_gi
    if learning:
        x_pre = state.x_pre * c.d_pre
        x_post1 = state.x_post1 * c.d_post1
        x_post2 = state.x_post2 * c.d_post2
        theta = theta * c.d_theta
    else:
        x_pre, x_post1, x_post2 = state.x_pre, state.x_post1, state.x_post2

    # (2) thresholds; for bool tensors ``a > b`` is ``a & ~b`` in one operation
    exc_spikes = torch.gt(v_exc > theta + c.v_th_exc, held_e)
    inh_spikes = torch.gt(v_inh > c.V_th_inh, held_i)

    # Resets and jumps by arithmetic with float spike masks s (0 or 1), keep = 1 - s:
    # x * keep + a * s is x where s = 0 and a where s = 1, exactly (x finite), and costs a few
    # fast float kernels where masked_fill_ on a bool mask is several times slower. Likewise
    # x + w * s (alpha, a fused multiply-add) is x + w or x exactly. v_exc, v_inh, refrac_e,
    # refrac_i are this step's own tensors, so the resets are done in place.
    # (3c) excitatory -> inhibitory partner; (4) excitatory resets and theta jumps. In eager
    # mode with learning the spikes' indices (the potentiation needs them) say if there are any.
    post = exc_f = exc_keep = None
    if skip_quiet and learning:
        post = torch.nonzero(exc_spikes, as_tuple=True)
        fired = bool(post[0].numel())
    else:
        fired = not skip_quiet or bool(exc_spikes.any())
    if fired:
        exc_f = exc_spikes.to(ge_inh.dtype)
        exc_keep = c.one - exc_f
        ge_inh = torch.add(ge_inh, exc_f, alpha=c.w_exc_inh)
        v_exc.mul_(exc_keep).add_(exc_f, alpha=c.V_reset_exc)
        refrac_e.mul_(exc_keep).add_(exc_f, alpha=c.t_ref_exc)
        if learning:
            theta = theta + exc_spikes.sum(dim=0).to(theta.dtype) * c.theta_plus
    # (3d) each inhibitory spike inhibits every excitatory neuron of its copy but its partner;
    # (4) inhibitory resets
    if not skip_quiet or bool(inh_spikes.any()):
        inh_f = inh_spikes.to(gi_exc.dtype)
        inh_keep = c.one - inh_f
        gi_exc = gi_exc + (inh_f.sum(dim=1, keepdim=True) - inh_f) * c.w_inh_exc
        v_inh.mul_(inh_keep).add_(inh_f, alpha=c.V_reset_inh)
        refrac_i.mul_(inh_keep).add_(inh_f, alpha=c.t_ref_inh)
    return (v_exc, v_inh, ge_exc, gi_exc, ge_inh, gi_inh, refrac_e, refrac_i, x_pre, x_post1,
            x_post2, theta, exc_spikes, inh_spikes, post, exc_f, exc_keep)


@functools.lru_cache(maxsize=8)
def _compiled_neuron_update(params: DiehlCookParams, learning: bool):
    """:func:`_neuron_update` for fixed params, compiled by :func:`torch.compile` (a few fused
    kernels instead of some fifty small ones; compiled on first use, which takes a while)."""
    c, dt = _constants(params), params.dt_ms

    def update(state: DiehlCookState, theta: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return _neuron_update(state, theta, dt, c, learning, skip_quiet=False)

    return torch.compile(update, fullgraph=True)


def diehl_cook_step(
    state: DiehlCookState,
    weights: torch.Tensor,
    theta: torch.Tensor,
    input_spikes: torch.Tensor | InputEvents,
    params: DiehlCookParams,
    *,
    learning: bool,
    check: bool = True,
    compiled: bool = False,
) -> tuple[DiehlCookState, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Advance ``B`` copies of the network by one step ``dt_ms`` (order: module docstring).

    Parameters
    ----------
    state : :class:`DiehlCookState` of ``B`` copies at the start of the step.
    weights : input -> excitatory weights ``(n_input, n_exc)``, shared by the copies. **Updated
        in place** when ``learning`` (and returned); not touched otherwise.
    theta : threshold adaptation ``(n_exc,)``, mV, shared by the copies (not modified); may
        have a higher precision than the state (:func:`initial_theta`).
    input_spikes : this step's input spikes, bool ``(B, n_input)``, or the same as
        :class:`InputEvents` (what :func:`present` passes; cheaper).
    params : :class:`~neuro.diehl_cook.params.DiehlCookParams`.
    learning : STDP and the threshold adaptation on (training) or off (testing).
    check : validate shapes (``False`` skips it, for the inner loop of :func:`present`).
    compiled : run the neuron update through :func:`torch.compile` (same results up to
        floating-point rounding; pays off only for long runs).

    Returns
    -------
    state : the new state (new tensors).
    weights : the same tensor as ``weights`` (changed in place when learning).
    theta : the new threshold adaptation (a new tensor).
    exc_spikes, inh_spikes : bool ``(B, n_exc)``, this step's spikes.
    """
    if check:
        _check_step_shapes(state, weights, theta, params)
    p = params
    events = _as_events(input_spikes, state.v_exc.shape[0], p.n_input)
    if compiled:
        out = _compiled_neuron_update(params, learning)(state, theta)
    else:
        c = _constants(params, state.v_exc.dtype, state.v_exc.device)
        out = _neuron_update(state, theta, p.dt_ms, c, learning, skip_quiet=True)
    (v_exc, v_inh, ge_exc, gi_exc, ge_inh, gi_inh, refrac_e, refrac_i, x_pre, x_post1, x_post2,
     theta, exc_spikes, inh_spikes, post, exc_f, exc_keep) = out

    # (3a) input -> excitatory, on_pre: conductance with the old weights, then depression.
    if events.batch.numel():
        rows = weights.index_select(0, events.neuron)  # (K, n_exc), before this step's STDP
        # ge_exc and x_pre are this step's own tensors (decayed above): in-place is safe
        ge_exc.index_add_(0, events.batch, rows)
        if learning:
            flat = events.flat if events.flat is not None else (
                events.batch * p.n_input + events.neuron)
            x_pre.view(-1).index_fill_(0, flat, 1.0)
            if x_post1.shape[0] == 1:  # one copy: every spiking input appears once
                rows = torch.sub(rows, x_post1, alpha=p.nu_pre).clamp_(0.0, p.w_max)
            else:  # an input may spike in several copies: sum their depressions, then clip
                weights.index_add_(0, events.neuron, x_post1.index_select(0, events.batch),
                                   alpha=-p.nu_pre)
                rows = weights.index_select(0, events.neuron).clamp_(0.0, p.w_max)
            weights.index_copy_(0, events.neuron, rows)
    # (3b) on_post: potentiation with x_post2 before its reset, then reset the post traces.
    if learning:
        post_b, post_j = post if post is not None else torch.nonzero(exc_spikes, as_tuple=True)
    if learning and post_b.numel():
        scale = x_post2.masked_select(exc_spikes) * p.nu_post  # the order of nonzero
        delta = x_pre.index_select(0, post_b) * scale[:, None]  # (K, n_input)
        weights.index_add_(1, post_j, delta.T)
        cols = weights.index_select(1, post_j).clamp_(0.0, p.w_max)
        weights.index_copy_(1, post_j, cols)
        # set to 1 where fired, as the resets in _neuron_update; the traces are this step's own
        # tensors (decayed above), so in place is safe
        x_post1.mul_(exc_keep).add_(exc_f)
        x_post2.mul_(exc_keep).add_(exc_f)

    new_state = DiehlCookState(
        v_exc=v_exc, v_inh=v_inh, ge_exc=ge_exc, gi_exc=gi_exc, ge_inh=ge_inh, gi_inh=gi_inh,
        refrac_exc=refrac_e, refrac_inh=refrac_i, x_pre=x_pre, x_post1=x_post1, x_post2=x_post2,
    )
    return new_state, weights, theta, exc_spikes, inh_spikes


# --------------------------------------------------------------------------- the rest


def rest(
    state: DiehlCookState,
    theta: torch.Tensor,
    params: DiehlCookParams,
    *,
    learning: bool,
) -> tuple[DiehlCookState, torch.Tensor]:
    r"""The ``t_rest_ms`` without input between two presentations, in closed form.

    .. math::

        v \leftarrow E_{rest} + (v - E_{rest})\,e^{-t_{rest}/\tau_m},\quad
        g \leftarrow g\,e^{-t_{rest}/\tau_g},\quad x \leftarrow x\,e^{-t_{rest}/\tau_x},\quad
        \theta \leftarrow \theta\,e^{-t_{rest}/\tau_\theta}\ (\text{learning}),

    refractory countdowns cleared. Approximation (see the module docstring): the conductances
    left at the end of the presentation are neglected in :math:`v` (they decay within 1-2 ms)
    and so are the spikes they might still cause. Traces are decayed only when ``learning``
    (as in :func:`diehl_cook_step`).

    Returns
    -------
    (state, theta) : new tensors.
    """
    f = _factors(params)
    p = params
    if learning:
        x_pre, x_post1, x_post2 = (state.x_pre * f.rest_pre, state.x_post1 * f.rest_post1,
                                   state.x_post2 * f.rest_post2)
        theta = theta * f.rest_theta
    else:
        x_pre, x_post1, x_post2 = state.x_pre, state.x_post1, state.x_post2
        theta = theta.clone()
    new_state = DiehlCookState(
        v_exc=relax(state.v_exc, p.E_rest_exc, f.rest_v_exc),
        v_inh=relax(state.v_inh, p.E_rest_inh, f.rest_v_inh),
        ge_exc=state.ge_exc * f.rest_ge,
        gi_exc=state.gi_exc * f.rest_gi,
        ge_inh=state.ge_inh * f.rest_ge,
        gi_inh=state.gi_inh * f.rest_gi,
        refrac_exc=torch.zeros_like(state.refrac_exc),
        refrac_inh=torch.zeros_like(state.refrac_inh),
        x_pre=x_pre,
        x_post1=x_post1,
        x_post2=x_post2,
    )
    return new_state, theta


# --------------------------------------------------------------------------- input


def check_images(images: torch.Tensor, n_input: int, name: str = "images") -> torch.Tensor:
    """Validate and flatten a batch of images to ``(N, n_input)``.

    Accepts ``(N, n_input)`` or any ``(N, ...)`` whose trailing dimensions hold ``n_input``
    values (e.g. ``(N, 1, 28, 28)``); values must be finite and in ``[0, 1]``.
    """
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(np.asarray(images))
    if images.dim() < 2 or math.prod(images.shape[1:]) != n_input:
        raise ValueError(
            f"{name} must have shape (N, {n_input}) or (N, ...) with {n_input} values per image "
            f"(n_input of the params), got {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise ValueError(
            f"{name} must be floating point in [0, 1], got dtype {images.dtype}; "
            "divide 8-bit images by 255"
        )
    flat = images.reshape(images.shape[0], n_input)
    if not bool(torch.isfinite(flat).all()):
        raise ValueError(f"{name} contain NaN or inf values")
    if flat.numel() and (float(flat.min()) < 0.0 or float(flat.max()) > 1.0):
        raise ValueError(
            f"{name} must lie in [0, 1], got values in [{float(flat.min()):g}, "
            f"{float(flat.max()):g}]; scale the pixels (e.g. divide 8-bit images by 255)"
        )
    return flat


def input_rates(
    images: torch.Tensor, params: DiehlCookParams, intensity: float | torch.Tensor = START_INTENSITY
) -> torch.Tensor:
    r"""Poisson rates (Hz) of the input neurons, :math:`r = x\,r_{max}\,\kappa/\kappa_0` with
    :math:`\kappa_0` = :data:`START_INTENSITY` (= the original code's ``pixel/8 * intensity``
    for 8-bit pixels).

    ``images`` ``(B, n_input)`` in [0, 1] (see :func:`check_images`); ``intensity`` a number or a
    ``(B,)`` tensor (one intensity per example).
    """
    if isinstance(intensity, torch.Tensor):
        intensity = intensity.to(images.dtype).reshape(-1, 1)
    return images * (params.max_rate_hz / START_INTENSITY) * intensity


def _poisson_events(
    rates_hz: torch.Tensor,
    steps: int,
    dt_ms: float,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Poisson spikes of a presentation as events ``(step, copy, input)``, sorted by step.

    Each input spikes in a step with probability :math:`p = r\,\Delta t` independently of the
    other steps (Brian2's ``PoissonGroup``: ``rand() < rates*dt``; :math:`p \ge 1`, which the
    intensity loop can reach, is a spike every step). Equivalently, and much
    cheaper than one random number per step, the steps between spikes are geometric:
    :math:`k = \lfloor \ln(1-u)/\ln(1-p) \rfloor + 1`, :math:`u` uniform; gaps are drawn in
    blocks until every input's spikes run past the presentation.
    """
    if rates_hz.dim() != 2:
        raise ValueError(f"rates_hz must be (B, n_input), got shape {tuple(rates_hz.shape)}")
    batch, n_input = rates_hz.shape
    prob = (rates_hz.to(torch.float64) * (dt_ms * 1e-3)).clamp(max=1.0)
    src_b, src_i = torch.nonzero(prob > 0, as_tuple=True)
    device = rates_hz.device
    empty = torch.zeros(0, dtype=torch.int64, device=device)
    if src_b.numel() == 0:
        return empty, empty, empty
    log_q = torch.log1p(-prob[src_b, src_i])  # -inf where p = 1: a spike every step
    mean = steps * float(prob.max())
    block = int(min(steps, math.ceil(mean + 6.0 * math.sqrt(mean) + 8.0)))
    rows = torch.arange(src_b.numel(), device=device)
    last = torch.full((src_b.numel(),), -1, dtype=torch.int64, device=device)
    found_rows, found_steps = [], []
    while rows.numel():
        u = torch.rand((rows.numel(), block), generator=generator, dtype=torch.float64,
                       device=device)
        gaps = torch.floor(torch.log1p(-u) / log_q[rows, None]).to(torch.int64) + 1
        pos = last[rows, None] + torch.cumsum(gaps, dim=1)
        hit = pos < steps
        r, c = torch.nonzero(hit, as_tuple=True)
        found_rows.append(rows[r])
        found_steps.append(pos[r, c])
        more = hit[:, -1]  # every gap of the block fell inside: the row needs another block
        last[rows[more]] = pos[more, -1]
        rows = rows[more]
    which = torch.cat(found_rows)
    step = torch.cat(found_steps)
    b, i = src_b[which], src_i[which]
    order = torch.argsort((step * batch + b) * n_input + i)
    return step[order], b[order], i[order]


def poisson_input(
    rates_hz: torch.Tensor,
    steps: int,
    dt_ms: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Poisson input spikes of a presentation, bool ``(B, steps, n_input)``: each input spikes
    in a step with probability :math:`r\,\Delta t` (Brian2's ``PoissonGroup``), drawn as
    geometric inter-spike intervals in one go (see :func:`_poisson_events`).

    ``generator`` must live on the device of ``rates_hz`` (``None``: torch's default one).
    :func:`present` given the rates and the same generator state draws the same spikes.
    """
    step, b, i = _poisson_events(rates_hz, steps, dt_ms, generator)
    spikes = torch.zeros((rates_hz.shape[0], steps, rates_hz.shape[1]), dtype=torch.bool,
                         device=rates_hz.device)
    spikes[b, step, i] = True
    return spikes


# --------------------------------------------------------------------------- presentation


class Presentation(NamedTuple):
    """What :func:`present` returns.

    counts : excitatory spike counts ``(B, n_exc)`` (int64).
    weights : the weights (the same tensor, changed in place when learning).
    theta : the new threshold adaptation ``(n_exc,)``.
    state : the state at the end of the presentation (before the rest).
    exc_spikes, inh_spikes : :class:`~neuro.records.SpikeRecord` of the excitatory and inhibitory
        layers (spike times ``step * dt_ms`` from the start of the presentation) when
        ``record=True``, else ``None``.
    input_counts, inh_counts : spike counts (int64) of the input ``(B, n_input)`` and inhibitory
        ``(B, n_exc)`` neurons when ``count_all=True``, else ``None``.
    """

    counts: torch.Tensor
    weights: torch.Tensor
    theta: torch.Tensor
    state: DiehlCookState
    exc_spikes: SpikeRecord | None = None
    inh_spikes: SpikeRecord | None = None
    input_counts: torch.Tensor | None = None
    inh_counts: torch.Tensor | None = None


def _record(name: str, params: DiehlCookParams, batch: int, events: list[torch.Tensor]
            ) -> SpikeRecord:
    if events:
        ev = torch.cat(events).cpu().numpy()  # (K, 3): step, copy, neuron
    else:
        ev = np.zeros((0, 3), dtype=np.int64)
    order = np.lexsort((ev[:, 0], ev[:, 1]))  # by copy, then time
    ev = ev[order]
    return SpikeRecord(
        population=name, n_neurons=params.n_exc, batch_size=batch,
        duration_ms=params.t_present_ms, dt_ms=params.dt_ms, trial=ev[:, 1].astype(np.int64),
        neuron=ev[:, 2].astype(np.int64), time_ms=ev[:, 0] * params.dt_ms,
    )


def present(
    weights: torch.Tensor,
    theta: torch.Tensor,
    rates_or_spikes: torch.Tensor,
    params: DiehlCookParams,
    *,
    learning: bool,
    generator: torch.Generator | None = None,
    record: bool = False,
    state: DiehlCookState | None = None,
    compiled: bool = False,
    count_all: bool = False,
) -> Presentation:
    """Show a batch of examples for ``t_present_ms`` (``params.present_steps`` steps).

    Parameters
    ----------
    weights, theta : the shared learned parameters ``(n_input, n_exc)`` and ``(n_exc,)``;
        ``weights`` is changed **in place** when ``learning`` (clone it to keep the original).
    rates_or_spikes : either floating-point input rates ``(B, n_input)`` in Hz (Poisson spikes
        are drawn with ``generator``, :func:`poisson_input`; see :func:`input_rates`) or the
        input spikes themselves, a bool tensor ``(B, present_steps, n_input)``.
    params : :class:`~neuro.diehl_cook.params.DiehlCookParams`.
    learning : STDP and threshold adaptation on or off.
    generator : random generator for the Poisson draw (on the device of the rates).
    record : also return the excitatory and inhibitory spikes as records (for a raster).
    state : the copies' state at the start (e.g. after :func:`rest`); ``None`` starts from
        :func:`initial_state`.
    compiled : use :func:`torch.compile` for the neuron update (:func:`diehl_cook_step`).
    count_all : also count the spikes of the input and inhibitory neurons
        (:attr:`Presentation.input_counts`, :attr:`Presentation.inh_counts`).

    Returns
    -------
    :class:`Presentation`. Normalisation and the rest are *not* done here
    (:func:`present_until_responsive` does both).
    """
    steps = params.present_steps
    if rates_or_spikes.dtype == torch.bool:
        if rates_or_spikes.dim() != 3 or tuple(rates_or_spikes.shape[1:]) != (
            steps, params.n_input
        ):
            raise ValueError(
                f"input spikes must be bool (B, present_steps, n_input) = (B, {steps}, "
                f"{params.n_input}), got {tuple(rates_or_spikes.shape)}"
            )
        spikes = rates_or_spikes.to(weights.device)
    else:
        if rates_or_spikes.dim() != 2 or rates_or_spikes.shape[1] != params.n_input:
            raise ValueError(
                f"input rates must be (B, n_input) = (B, {params.n_input}) in Hz, got "
                f"{tuple(rates_or_spikes.shape)}"
            )
        if not bool(torch.isfinite(rates_or_spikes).all()) or bool((rates_or_spikes < 0).any()):
            raise ValueError("input rates must be finite and >= 0 Hz")
        spikes = None
        ev_step, ev_batch, ev_input = _poisson_events(
            rates_or_spikes.to(weights.device), steps, params.dt_ms, generator
        )
    batch = rates_or_spikes.shape[0]
    if state is None:
        state = initial_state(params, batch, device=weights.device, dtype=weights.dtype)
    _check_step_shapes(state, weights, theta, params)
    if state.v_exc.shape[0] != batch:
        raise ValueError(f"state has {state.v_exc.shape[0]} copies, the input {batch}")

    if spikes is not None:  # all input events at once, sorted by step: (step, copy, input)
        ev_step, ev_batch, ev_input = torch.nonzero(spikes.permute(1, 0, 2), as_tuple=True)
    bounds = [0, *torch.cumsum(torch.bincount(ev_step, minlength=steps), 0).tolist()]
    ev_flat = ev_batch * params.n_input + ev_input

    counts = torch.zeros((batch, params.n_exc), dtype=torch.int64, device=weights.device)
    inh_counts = torch.zeros_like(counts) if count_all else None
    exc_events: list[torch.Tensor] = []
    inh_events: list[torch.Tensor] = []
    for n in range(steps):
        lo, hi = bounds[n], bounds[n + 1]
        step_events = InputEvents(ev_batch[lo:hi], ev_input[lo:hi], ev_flat[lo:hi])
        state, weights, theta, exc, inh = diehl_cook_step(
            state, weights, theta, step_events, params, learning=learning, check=False,
            compiled=compiled,
        )
        counts += exc
        if inh_counts is not None:
            inh_counts += inh
        if record:
            for spk, store in ((exc, exc_events), (inh, inh_events)):
                idx = torch.nonzero(spk)
                if idx.numel():
                    step_col = torch.full((idx.shape[0], 1), n, dtype=idx.dtype, device=idx.device)
                    store.append(torch.cat([step_col, idx], dim=1))
    exc_rec = _record("exc", params, batch, exc_events) if record else None
    inh_rec = _record("inh", params, batch, inh_events) if record else None
    input_counts = None
    if count_all:
        input_counts = torch.bincount(ev_flat, minlength=batch * params.n_input).view(
            batch, params.n_input)
    return Presentation(counts, weights, theta, state, exc_rec, inh_rec, input_counts, inh_counts)


class SpikeTotals(NamedTuple):
    """Spikes each example evoked over *all* its presentations (retries included), each ``(B,)``
    int64: ``input``, ``exc`` and ``inh``, summed over the neurons of each population, and
    ``presentations``, how many times the example was shown."""

    input: torch.Tensor
    exc: torch.Tensor
    inh: torch.Tensor
    presentations: torch.Tensor


class ResponsivePresentation(NamedTuple):
    """What :func:`present_until_responsive` returns.

    counts : excitatory spike counts ``(B, n_exc)`` of the accepted presentation of each example.
    weights, theta : the learned parameters after all presentations (normalised when learning).
    state : the copies' state after the last presentation and its rest.
    intensity : ``(B,)``, the intensity of each example's accepted presentation.
    presentations : how many presentations (sub-batches included) were run.
    totals : :class:`SpikeTotals` of every example when ``count_all=True``, else ``None``.
    """

    counts: torch.Tensor
    weights: torch.Tensor
    theta: torch.Tensor
    state: DiehlCookState
    intensity: torch.Tensor
    presentations: int
    totals: SpikeTotals | None = None


def present_until_responsive(
    weights: torch.Tensor,
    theta: torch.Tensor,
    images: torch.Tensor,
    params: DiehlCookParams,
    *,
    learning: bool,
    generator: torch.Generator | None = None,
    state: DiehlCookState | None = None,
    normalize: bool = True,
    compiled: bool = False,
    intensity: torch.Tensor | None = None,
    max_retries: int | None = None,
    count_all: bool = False,
) -> ResponsivePresentation:
    r"""Present a batch of images as the paper does, raising the intensity until they respond.

    Each example starts at intensity :data:`START_INTENSITY`. After every presentation the
    network rests (:func:`rest`) and, when ``learning`` and ``normalize``, the weights are
    normalised (every column sums to ``column_sum``,
    :func:`neuro.plasticity.homeostasis.normalize_columns`; the original code normalises
    before every presentation, the same thing given normalised initial weights). Examples that
    evoked fewer than ``min_spikes`` excitatory spikes have their intensity raised by
    ``intensity_step`` and are shown again, as a sub-batch of only those copies, with learning
    unchanged (as in the original code), at most ``max_retries`` times; the last presentation
    counts.

    Parameters
    ----------
    weights, theta : shared learned parameters (``weights`` may be changed in place; use the
        returned tensors).
    images : ``(B, n_input)`` in ``[0, 1]``.
    params, learning, generator : as in :func:`present`.
    state : the ``B`` copies' state (``None``: :func:`initial_state`).
    normalize : normalise the weights after each presentation when learning.
    compiled : use :func:`torch.compile` for the neuron update (:func:`present`).
    intensity : ``(B,)`` starting intensity of each example (``None``: all
        :data:`START_INTENSITY`), e.g. that of an example being shown again.
    max_retries : at most this many presentations after the first (``None``:
        ``params.max_retries``; ``0``: show each example once, whatever it evokes).
    count_all : also return the spikes of every population over all presentations
        (:attr:`ResponsivePresentation.totals`), e.g. to count synaptic operations. It draws
        no random numbers, so the presentations are the same either way.
    """
    from neuro.plasticity.homeostasis import normalize_columns

    images = check_images(images, params.n_input)
    batch = images.shape[0]
    device = weights.device
    images = images.to(device=device, dtype=weights.dtype)
    if state is None:
        state = initial_state(params, batch, device=device, dtype=weights.dtype)
    if max_retries is None:
        max_retries = params.max_retries
    if not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    if intensity is None:
        intensity = torch.full((batch,), START_INTENSITY, dtype=weights.dtype, device=device)
    else:
        if tuple(intensity.shape) != (batch,):
            raise ValueError(f"intensity must have shape ({batch},) (one value per image), got "
                             f"{tuple(intensity.shape)}")
        intensity = intensity.to(device=device, dtype=weights.dtype).clone()
    counts = torch.zeros((batch, params.n_exc), dtype=torch.int64, device=device)
    pending = torch.arange(batch, device=device)
    presentations = 0
    totals = None
    if count_all:
        totals = SpikeTotals(*torch.zeros((4, batch), dtype=torch.int64, device=device))
    for attempt in range(max_retries + 1):
        whole = pending.numel() == batch
        sub_state = state if whole else index_state(state, pending)
        rates = input_rates(images[pending], params, intensity[pending])
        pres = present(weights, theta, rates, params, learning=learning, generator=generator,
                       state=sub_state, compiled=compiled, count_all=count_all)
        presentations += 1
        if totals is not None:
            totals.input.index_add_(0, pending, pres.input_counts.sum(dim=1))
            totals.exc.index_add_(0, pending, pres.counts.sum(dim=1))
            totals.inh.index_add_(0, pending, pres.inh_counts.sum(dim=1))
            totals.presentations.index_add_(0, pending, torch.ones_like(pending))
        weights, theta = pres.weights, pres.theta
        rested, theta = rest(pres.state, theta, params, learning=learning)
        if learning and normalize:
            weights = normalize_columns(weights, params.column_sum)
        if whole:
            state = rested
        else:
            state = DiehlCookState(*(s.index_copy(0, pending, r)
                                     for s, r in zip(state, rested, strict=True)))
        counts[pending] = pres.counts
        if attempt == max_retries:
            break
        quiet = pres.counts.sum(dim=1) < params.min_spikes
        if not bool(quiet.any()):
            break
        pending = pending[quiet]
        intensity[pending] += params.intensity_step
    return ResponsivePresentation(counts, weights, theta, state, intensity, presentations, totals)
