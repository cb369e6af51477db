r"""Pair-based spike-timing-dependent plasticity with traces.

A presynaptic trace :math:`a_+` (time constant :math:`\tau_+`) and a postsynaptic trace
:math:`a_-` (:math:`\tau_-`), both dimensionless,

.. math::

    \tau_+ \frac{da_+}{dt} = -a_+ + \sum_f \delta(t - t^f_{pre}), \qquad
    \tau_- \frac{da_-}{dt} = -a_- + \sum_f \delta(t - t^f_{post}),

and the weight changes at spikes,

.. math::

    \text{post spike: } \Delta w = +A_+\, a_+\, g_+(w), \qquad
    \text{pre spike: } \Delta w = -A_-\, a_-\, g_-(w),

so that an isolated pair with :math:`\Delta t = t_{post} - t_{pre}` gives the classic window
:math:`A_+ e^{-\Delta t/\tau_+}` for :math:`\Delta t > 0` and :math:`-A_- e^{\Delta t/\tau_-}` for
:math:`\Delta t < 0` (Bi & Poo 1998; Song, Miller & Abbott 2000).

Weight dependence: ``"additive"`` (:math:`g_\pm = 1`; hard bounds, by clipping with
:func:`~neuro.plasticity.base.apply_weight_change`) or ``"multiplicative"`` (soft bounds,
:math:`g_+ = (w_{max} - w)/(w_{max} - w_{min})`, :math:`g_- = (w - w_{min})/(w_{max} - w_{min})`;
van Rossum, Bi & Turrigiano 2000; Gütig et al. 2003 with :math:`\mu = 1`). The amplitudes are in
the weight's unit either way, and the soft-bounded weight stays in range without clipping as
long as :math:`A_\pm a_\pm \le w_{max} - w_{min}` (with nearest-spike interaction
:math:`a_\pm \le 1`, so :math:`A_\pm \le w_{max} - w_{min}` suffices).

Interaction: ``"all_to_all"`` (:math:`a \leftarrow a + 1`: every earlier spike counts) or
``"nearest"`` (:math:`a \leftarrow 1`: only the nearest earlier spike counts; the symmetric
nearest-spike scheme of Morrison, Diesmann & Gerstner 2008, Fig. 7).

References: Bi & Poo, J. Neurosci. 18:10464 (1998); Song, Miller & Abbott, Nat. Neurosci. 3:919
(2000); van Rossum, Bi & Turrigiano, J. Neurosci. 20:8812 (2000); Morrison, Diesmann & Gerstner,
Biol. Cybern. 98:459 (2008).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from neuro.models._common import check_non_negative, check_positive, decay_factor
from neuro.plasticity.base import (
    Brian2Plasticity,
    Interaction,
    PairDrive,
    WeightDependence,
    as_float,
    brian2_clip,
    brian2_trace_bump,
    brian2_weight_dependence,
    brian2_weight_unit,
    bump,
    check_bounds,
    check_choice,
    check_finite_floats,
    check_state_shapes,
    check_step_inputs,
    pair_weight_change,
)

__all__ = [
    "PairSTDPParams",
    "PairTraces",
    "SONG_2000",
    "stdp_pair_initial_traces",
    "stdp_pair_step",
    "stdp_pair_brian2",
]


def check_weight_dependence(params: object) -> None:
    """Validate ``weight_dependence`` and ``interaction``; soft bounds need finite bounds."""
    check_choice(params, "weight_dependence", ("additive", "multiplicative"))
    check_choice(params, "interaction", ("all_to_all", "nearest"))
    check_bounds(params)
    if params.weight_dependence == "multiplicative" and not (  # type: ignore[attr-defined]
        math.isfinite(params.w_min) and math.isfinite(params.w_max)  # type: ignore[attr-defined]
    ):
        raise ValueError(
            f"{type(params).__name__}.w_min and .w_max must be finite for "
            "weight_dependence='multiplicative'"
        )


@dataclass(frozen=True)
class PairSTDPParams:
    """Parameters of pair STDP (:func:`stdp_pair_step`).

    Attributes
    ----------
    A_plus, A_minus : potentiation / depression amplitudes, in the weight's unit (>= 0).
    tau_plus, tau_minus : pre / post trace time constants, ms.
    w_min, w_max : weight bounds (weight's unit); may be infinite for additive STDP.
    weight_dependence : ``"additive"`` (hard bounds) or ``"multiplicative"`` (soft bounds).
    interaction : ``"all_to_all"`` (traces add) or ``"nearest"`` (traces reset to 1).
    """

    A_plus: float = 0.005
    A_minus: float = 0.00525
    tau_plus: float = 20.0
    tau_minus: float = 20.0
    w_min: float = 0.0
    w_max: float = 1.0
    weight_dependence: WeightDependence = "additive"
    interaction: Interaction = "all_to_all"

    def __post_init__(self) -> None:
        check_finite_floats(self)
        check_positive(self, "tau_plus", "tau_minus")
        check_non_negative(self, "A_plus", "A_minus")
        check_weight_dependence(self)


#: Song, Miller & Abbott (2000): :math:`\tau_\pm = 20` ms, :math:`A_+ = 0.005`,
#: :math:`A_-/A_+ = 1.05`, weights in units of :math:`g_{max}` (so ``w_max = 1``), additive.
SONG_2000 = PairSTDPParams()


class PairTraces(NamedTuple):
    """Traces of pair STDP: ``a_pre`` ``(batch, n_pre)`` and ``a_post`` ``(batch, n_post)``,
    dimensionless, values just after the last step's spikes."""

    a_pre: torch.Tensor
    a_post: torch.Tensor


def stdp_pair_initial_traces(
    batch: int,
    n_pre: int,
    n_post: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> PairTraces:
    """Zero traces (no spike history)."""
    return PairTraces(
        a_pre=torch.zeros((batch, n_pre), device=device, dtype=dtype),
        a_post=torch.zeros((batch, n_post), device=device, dtype=dtype),
    )


def pair_events(
    pre: torch.Tensor,
    post: torch.Tensor,
    traces: PairTraces,
    tau_plus: float,
    tau_minus: float,
    interaction: str,
    dt_ms: float,
) -> tuple[PairDrive, PairDrive, PairTraces]:
    """Decay, then pre spikes (depression reads ``a_post``), then post spikes (potentiation reads
    ``a_pre`` including this step's pre spikes). Returns the *unit-amplitude* depression and
    potentiation drives and the new traces. Shared with R-STDP."""
    a_pre = traces.a_pre * decay_factor(dt_ms, tau_plus)
    a_post = traces.a_post * decay_factor(dt_ms, tau_minus)
    depression = PairDrive(u=pre, v=a_post)
    a_pre = bump(a_pre, pre, interaction)
    potentiation = PairDrive(u=a_pre, v=post)
    a_post = bump(a_post, post, interaction)
    return depression, potentiation, PairTraces(a_pre=a_pre, a_post=a_post)


def stdp_pair_step(
    pre_spikes: torch.Tensor,
    post_spikes: torch.Tensor,
    traces: PairTraces,
    weights: torch.Tensor,
    params: PairSTDPParams,
    dt_ms: float,
    *,
    batch_reduce: str = "sum",
    learning: bool = True,
    lr_scale: float = 1.0,
) -> tuple[torch.Tensor, PairTraces]:
    r"""One step of pair STDP; pure (returns the change, does not apply it).

    Update order (named and fixed): decay both traces by :math:`e^{-\Delta t/\tau}`; presynaptic
    spikes depress, :math:`\Delta w_{ij} \mathrel{-}= A_- a_{-,j} g_-(w_{ij})`, and bump
    :math:`a_{+,i}`; postsynaptic spikes potentiate,
    :math:`\Delta w_{ij} \mathrel{+}= A_+ a_{+,i} g_+(w_{ij} + \Delta w^-_{ij})`, and bump
    :math:`a_{-,j}`. A pre and a post spike in the same step thus count as pre-before-post.

    Parameters
    ----------
    pre_spikes : ``(batch, n_pre)``, bool or 0/1.
    post_spikes : ``(batch, n_post)``, bool or 0/1.
    traces : :class:`PairTraces` from the previous step (or :func:`stdp_pair_initial_traces`).
    weights : ``(n_pre, n_post)`` shared over the batch, or ``(batch, n_pre, n_post)``.
    params : :class:`PairSTDPParams`.
    dt_ms : time step, ms.
    batch_reduce : ``"sum"`` or ``"mean"`` of the per-trial changes, for shared weights.
    learning : ``False`` freezes the weights: ``delta_w`` is zero, the traces still advance.
    lr_scale : multiplies :math:`A_\pm` for this step (a learning-rate schedule's value).

    Returns
    -------
    delta_w : same shape as ``weights``.
    new_traces : :class:`PairTraces`.
    """
    batch, n_pre, n_post = check_step_inputs(
        pre_spikes, post_spikes, weights, dt_ms, batch_reduce, lr_scale
    )
    check_state_shapes("traces", traces, {"a_pre": (batch, n_pre), "a_post": (batch, n_post)})
    pre, post = as_float(pre_spikes, weights), as_float(post_spikes, weights)
    depression, potentiation, new_traces = pair_events(
        pre, post, traces, params.tau_plus, params.tau_minus, params.interaction, dt_ms
    )
    if not learning or lr_scale == 0:
        return torch.zeros_like(weights), new_traces
    delta_w = pair_weight_change(
        PairDrive(depression.u * (lr_scale * params.A_minus), depression.v),
        PairDrive(potentiation.u * (lr_scale * params.A_plus), potentiation.v),
        weights,
        params.weight_dependence,
        params.w_min,
        params.w_max,
        batch_reduce,
    )
    return delta_w, new_traces


def stdp_pair_brian2(
    params: PairSTDPParams, *, w_unit: str = "1", declare_weight: bool = True
) -> Brian2Plasticity:
    """The same rule as Brian2 ``Synapses`` strings, with event-driven traces.

    Parameters
    ----------
    params : :class:`PairSTDPParams`.
    w_unit : the weight's Brian2 unit by name (``"1"``, ``"nS"``, ``"pA"``, ...); amplitudes and
        bounds are given that unit.
    declare_weight : add ``w : <w_unit>`` to the model (``False`` when the engine declares ``w``).

    Each event clips ``w`` to ``[w_min, w_max]`` (the torch step leaves clipping to
    :func:`~neuro.plasticity.base.apply_weight_change` at the end of the step; the two differ
    only when a pre and a post spike of one synapse fall in the same step *and* the first one
    takes the weight out of bounds).
    """
    import brian2 as b2

    unit, unit_name = brian2_weight_unit(w_unit)
    reset = brian2_trace_bump(params.interaction)
    g_minus, g_plus = brian2_weight_dependence(params.weight_dependence)
    model = (
        "dapre/dt = -apre/tau_plus : 1 (event-driven)\n"
        "dapost/dt = -apost/tau_minus : 1 (event-driven)\n"
        "lr : 1 (shared)\n"
    )
    if declare_weight:
        model += f"w : {unit_name}\n"
    return Brian2Plasticity(
        model=model,
        on_pre=f"{brian2_clip(f'w - lr*A_minus*apost{g_minus}')}\napre {reset}\n",
        on_post=f"{brian2_clip(f'w + lr*A_plus*apre{g_plus}')}\napost {reset}\n",
        namespace={
            "A_plus": params.A_plus * unit,
            "A_minus": params.A_minus * unit,
            "tau_plus": params.tau_plus * b2.ms,
            "tau_minus": params.tau_minus * b2.ms,
            "w_min": params.w_min * unit,
            "w_max": params.w_max * unit,
        },
        initial_values={"lr": 1.0, "apre": 0.0, "apost": 0.0},
    )
