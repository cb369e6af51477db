r"""Reward-modulated STDP: an eligibility trace of pair STDP, turned into a weight change by
reward.

Each synapse keeps an eligibility trace :math:`e` that decays with :math:`\tau_e` and
accumulates the pair-STDP term (pre and post traces as in :mod:`neuro.plasticity.stdp`):

.. math::

    \tau_e \frac{de}{dt} = -e + \sum_{\text{post spikes}} A_+ a_+ \delta(t - t_{post})
                              - \sum_{\text{pre spikes}} A_- a_- \delta(t - t_{pre}),

and the weight changes only when reward :math:`R` is delivered,

.. math::

    \Delta w = \eta\, (R - \bar R)\, e,

where :math:`\bar R` is a fixed baseline or a running average of past rewards,
:math:`\bar R \leftarrow \bar R + \alpha (R - \bar R)` after each delivery (the reward-prediction
form of Frémaux & Gerstner 2016; with :math:`\bar R = 0` it is Izhikevich's 2007 rule with the
dopamine concentration integrated over the step). For a continuous modulator :math:`d(t)`
(:math:`dw/dt = \eta\, d\, e`), deliver :math:`R = d\,\Delta t` every step.

Defaults follow Izhikevich (2007): :math:`A_+ = 1`, :math:`A_- = 1.5`, :math:`\tau_\pm = 20` ms,
:math:`\tau_e = 1` s; ``eta`` and the bounds are problem-specific.

References: Izhikevich, Cereb. Cortex 17:2443 (2007); Florian, Neural Comput. 19:1468 (2007);
Frémaux & Gerstner, Front. Neural Circuits 9:85 (2016).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

from neuro.models._common import check_non_negative, check_positive, decay_factor
from neuro.plasticity.base import (
    Brian2Plasticity,
    Interaction,
    as_float,
    brian2_clip,
    brian2_trace_bump,
    brian2_weight_unit,
    check_bounds,
    check_choice,
    check_finite_floats,
    check_state_shape,
    check_state_shapes,
    check_step_inputs,
    reduce_batch,
)
from neuro.plasticity.stdp import PairTraces, pair_events

__all__ = [
    "RSTDPParams",
    "RSTDPState",
    "rstdp_initial_state",
    "rstdp_step",
    "rstdp_brian2",
]


@dataclass(frozen=True)
class RSTDPParams:
    """Parameters of reward-modulated STDP (:func:`rstdp_step`).

    Attributes
    ----------
    A_plus, A_minus : eligibility increments of a pre-before-post / post-before-pre pair
        (dimensionless, >= 0).
    tau_plus, tau_minus : pre / post trace time constants, ms.
    tau_e : eligibility time constant, ms.
    eta : weight change per unit of (reward - baseline) times eligibility (weight's unit).
    w_min, w_max : weight bounds.
    interaction : ``"all_to_all"`` or ``"nearest"`` (of the STDP traces).
    baseline_mode : ``"fixed"`` (:math:`\\bar R` = ``baseline``) or ``"running"`` (starts at
        ``baseline``, then the running average of delivered rewards).
    baseline : the fixed baseline, or the running average's initial value.
    baseline_alpha : running-average rate per reward delivery, in ``(0, 1]``.
    """

    A_plus: float = 1.0
    A_minus: float = 1.5
    tau_plus: float = 20.0
    tau_minus: float = 20.0
    tau_e: float = 1000.0
    eta: float = 0.01
    w_min: float = 0.0
    w_max: float = 1.0
    interaction: Interaction = "all_to_all"
    baseline_mode: Literal["fixed", "running"] = "fixed"
    baseline: float = 0.0
    baseline_alpha: float = 0.1

    def __post_init__(self) -> None:
        check_finite_floats(self)
        check_positive(self, "tau_plus", "tau_minus", "tau_e", "baseline_alpha")
        check_non_negative(self, "A_plus", "A_minus", "eta")
        check_bounds(self)
        check_choice(self, "interaction", ("all_to_all", "nearest"))
        check_choice(self, "baseline_mode", ("fixed", "running"))
        if self.baseline_alpha > 1:
            raise ValueError(
                f"RSTDPParams.baseline_alpha must be in (0, 1], got {self.baseline_alpha!r}"
            )


class RSTDPState(NamedTuple):
    """State of R-STDP.

    a_pre, a_post : STDP traces ``(batch, n_pre)``, ``(batch, n_post)``.
    eligibility : ``(batch, n_pre, n_post)``: per trial even for shared weights, since each trial
        has its own spikes and its own reward.
    baseline : reward baseline :math:`\\bar R` per trial, ``(batch,)``.
    """

    a_pre: torch.Tensor
    a_post: torch.Tensor
    eligibility: torch.Tensor
    baseline: torch.Tensor


def rstdp_initial_state(
    batch: int,
    n_pre: int,
    n_post: int,
    params: RSTDPParams,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> RSTDPState:
    """No spike history, zero eligibility, the baseline at ``params.baseline``."""
    return RSTDPState(
        a_pre=torch.zeros((batch, n_pre), device=device, dtype=dtype),
        a_post=torch.zeros((batch, n_post), device=device, dtype=dtype),
        eligibility=torch.zeros((batch, n_pre, n_post), device=device, dtype=dtype),
        baseline=torch.full((batch,), params.baseline, device=device, dtype=dtype),
    )


def rstdp_step(
    pre_spikes: torch.Tensor,
    post_spikes: torch.Tensor,
    reward: torch.Tensor | float | None,
    state: RSTDPState,
    weights: torch.Tensor,
    params: RSTDPParams,
    dt_ms: float,
    *,
    batch_reduce: str = "sum",
    learning: bool = True,
    lr_scale: float = 1.0,
) -> tuple[torch.Tensor, RSTDPState]:
    r"""One step of R-STDP; pure (returns the change, does not apply it).

    Update order (named and fixed): decay the STDP traces and the eligibility by
    :math:`e^{-\Delta t/\tau}`; add this step's pair-STDP term to :math:`e` (pre spikes before
    post spikes, as :func:`neuro.plasticity.stdp.stdp_pair_step`); if reward is delivered,
    :math:`\Delta w = \eta\,(R - \bar R)\,e` with the eligibility *including* this step, then the
    running baseline moves towards :math:`R`.

    Parameters
    ----------
    pre_spikes, post_spikes : ``(batch, n_pre)``, ``(batch, n_post)``.
    reward : ``None`` (no reward this step: ``delta_w`` is zero and the baseline stays), a float
        (the same for every trial) or a ``(batch,)`` tensor.
    state : :class:`RSTDPState`.
    weights : ``(n_pre, n_post)`` shared, or ``(batch, n_pre, n_post)``.
    params : :class:`RSTDPParams`.
    dt_ms : time step, ms.
    batch_reduce : ``"sum"`` or ``"mean"`` over trials, for shared weights.
    learning : ``False`` freezes the weights; traces, eligibility and baseline still advance.
    lr_scale : multiplies ``eta`` (not the eligibility increments) for this step.

    Returns
    -------
    delta_w : same shape as ``weights``.
    new_state : :class:`RSTDPState`.
    """
    batch, n_pre, n_post = check_step_inputs(
        pre_spikes, post_spikes, weights, dt_ms, batch_reduce, lr_scale
    )
    check_state_shapes("state", state, {
        "a_pre": (batch, n_pre),
        "a_post": (batch, n_post),
        "eligibility": (batch, n_pre, n_post),
        "baseline": (batch,),
    })
    pre, post = as_float(pre_spikes, weights), as_float(post_spikes, weights)
    p = params
    depression, potentiation, traces = pair_events(
        pre, post, PairTraces(state.a_pre, state.a_post), p.tau_plus, p.tau_minus,
        p.interaction, dt_ms,
    )
    stdp = (p.A_plus * potentiation.u)[:, :, None] * potentiation.v[:, None, :] - (
        p.A_minus * depression.u
    )[:, :, None] * depression.v[:, None, :]
    eligibility = state.eligibility * decay_factor(dt_ms, p.tau_e) + stdp

    if reward is None:
        return torch.zeros_like(weights), RSTDPState(
            traces.a_pre, traces.a_post, eligibility, state.baseline
        )
    reward_t = torch.as_tensor(reward, dtype=weights.dtype, device=weights.device)
    reward_t = reward_t.expand(batch) if reward_t.dim() == 0 else reward_t
    check_state_shape("reward", reward_t, (batch,))
    surprise = reward_t - state.baseline
    if learning and lr_scale != 0:
        delta_w = reduce_batch(
            (lr_scale * p.eta) * surprise[:, None, None] * eligibility, weights, batch_reduce
        )
    else:
        delta_w = torch.zeros_like(weights)
    if p.baseline_mode == "running":
        baseline = state.baseline + p.baseline_alpha * surprise
    else:
        baseline = state.baseline
    return delta_w, RSTDPState(traces.a_pre, traces.a_post, eligibility, baseline)


def rstdp_brian2(
    params: RSTDPParams, *, w_unit: str = "1", declare_weight: bool = True
) -> Brian2Plasticity:
    """The same rule as Brian2 ``Synapses`` strings.

    The STDP traces are event-driven; the eligibility ``elig`` (Brian2 reserves ``e``) is
    clock-driven (``method="exact"``) because reward reads it at arbitrary times.
    ``extra_code["reward"]`` applies a reward: the engine sets the shared variable
    ``reward_signal`` to :math:`R - \\bar R` on a reward step (0 otherwise, and keeps the
    running baseline itself) and runs the code with
    ``Synapses.run_regularly(code, when="after_synapses")`` so that, as in :func:`rstdp_step`,
    it reads the eligibility including this step's spikes. Arguments as
    :func:`neuro.plasticity.stdp.stdp_pair_brian2`.
    """
    import brian2 as b2

    unit, unit_name = brian2_weight_unit(w_unit)
    reset = brian2_trace_bump(params.interaction)
    model = (
        "dapre/dt = -apre/tau_plus : 1 (event-driven)\n"
        "dapost/dt = -apost/tau_minus : 1 (event-driven)\n"
        "delig/dt = -elig/tau_e : 1 (clock-driven)\n"
        "lr : 1 (shared)\n"
        "reward_signal : 1 (shared)\n"
    )
    if declare_weight:
        model += f"w : {unit_name}\n"
    return Brian2Plasticity(
        model=model,
        on_pre=f"elig -= A_minus*apost\napre {reset}\n",
        on_post=f"elig += A_plus*apre\napost {reset}\n",
        namespace={
            "A_plus": params.A_plus,
            "A_minus": params.A_minus,
            "tau_plus": params.tau_plus * b2.ms,
            "tau_minus": params.tau_minus * b2.ms,
            "tau_e": params.tau_e * b2.ms,
            "eta": params.eta * unit,
            "w_min": params.w_min * unit,
            "w_max": params.w_max * unit,
        },
        initial_values={"lr": 1.0, "reward_signal": 0.0, "apre": 0.0, "apost": 0.0, "elig": 0.0},
        method="exact",
        extra_code={"reward": brian2_clip("w + lr*eta*reward_signal*elig") + "\n"},
    )
