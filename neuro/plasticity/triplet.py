r"""Triplet spike-timing-dependent plasticity (Pfister & Gerstner 2006).

Two presynaptic traces :math:`r_1` (:math:`\tau_+`), :math:`r_2` (:math:`\tau_x`) and two
postsynaptic traces :math:`o_1` (:math:`\tau_-`), :math:`o_2` (:math:`\tau_y`), each
:math:`\tau\,\dot r = -r` between spikes and incremented by one at its own neuron's spikes
(all-to-all) or reset to one (nearest-spike). The weight changes at spikes, with the slow trace
read *just before* the spike's own increment (:math:`t - \epsilon`):

.. math::

    \text{post spike: } \Delta w = +r_1(t)\,\bigl[A_2^+ + A_3^+\, o_2(t - \epsilon)\bigr], \qquad
    \text{pre spike: } \Delta w = -o_1(t)\,\bigl[A_2^- + A_3^-\, r_2(t - \epsilon)\bigr].

Pair STDP is the special case :math:`A_3^\pm = 0`. Weight dependence and interaction as in
:mod:`neuro.plasticity.stdp` (the published fits are additive; for ``"multiplicative"`` the
bracketed amplitudes are multiplied by :math:`(w_{max}-w)/(w_{max}-w_{min})` and
:math:`(w-w_{min})/(w_{max}-w_{min})`).

Published parameter sets
------------------------
Pfister & Gerstner, J. Neurosci. 26:9673-9682 (2006), Table 3 (visual cortex, fitted to the
pairing-frequency data of Sjöström, Turrigiano & Nelson 2001) and Table 4 (hippocampal cultures,
fitted to the pair data of Bi & Poo 1998 and the triplet/quadruplet data of Wang et al. 2005),
with :math:`\tau_+ = 16.8` ms and :math:`\tau_- = 33.7` ms fixed in every row (from Bi & Poo 2001).
Amplitudes are relative changes (dimensionless: weight changes of a weight equal to one).

============================  =========  =========  =========  =========  ===========  =========
constant                      A2+        A3+        A2-        A3-        tau_x (ms)   tau_y (ms)
============================  =========  =========  =========  =========  ===========  =========
VISUAL_ALL_TO_ALL_MINIMAL     0          6.5e-3     7.1e-3     0          (101)        114
VISUAL_ALL_TO_ALL_FULL        5e-10      6.2e-3     7e-3       2.3e-4     101          125
VISUAL_NEAREST_MINIMAL        0          5e-2       8e-3       0          (714)        40
VISUAL_NEAREST_FULL           8.8e-11    5.3e-2     6.6e-3     3.1e-3     714          40
HIPPOCAMPAL_ALL_TO_ALL_MIN.   5.3e-3     8e-3       3.5e-3     0          (946)        40
HIPPOCAMPAL_ALL_TO_ALL_FULL   6.1e-3     6.7e-3     1.6e-3     1.4e-3     946          27
HIPPOCAMPAL_NEAREST_MINIMAL   4.6e-3     9.1e-3     3e-3       0          (575)        48
HIPPOCAMPAL_NEAREST_FULL      4.6e-3     9.1e-3     3e-3       7.5e-9     575          47
============================  =========  =========  =========  =========  ===========  =========

In the minimal models :math:`A_3^- = 0`, so :math:`\tau_x` has no effect and the paper leaves it
blank; the constants carry the full model's value of the same table and interaction (in
parentheses above) so that every trace has a valid time constant. The ``_NEAREST_`` sets use
``interaction="nearest"``. Bounds default to ``[0, inf)``: the fits have no upper bound.
The table was cross-checked against several independent open-source transcriptions of
Tables 3 and 4; note that NESTML's ``stdp_triplet`` defaults (``A2_plus = 7.5e-10``,
``A3_plus = 9.3e-3`` with the visual all-to-all time constants) are *not* a row of the paper.
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
    check_finite_floats,
    check_state_shapes,
    check_step_inputs,
    pair_weight_change,
)
from neuro.plasticity.stdp import check_weight_dependence

__all__ = [
    "TripletSTDPParams",
    "TripletTraces",
    "TRIPLET_VISUAL_ALL_TO_ALL_MINIMAL",
    "TRIPLET_VISUAL_ALL_TO_ALL_FULL",
    "TRIPLET_VISUAL_NEAREST_MINIMAL",
    "TRIPLET_VISUAL_NEAREST_FULL",
    "TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_MINIMAL",
    "TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_FULL",
    "TRIPLET_HIPPOCAMPAL_NEAREST_MINIMAL",
    "TRIPLET_HIPPOCAMPAL_NEAREST_FULL",
    "TRIPLET_PRESETS",
    "stdp_triplet_initial_traces",
    "stdp_triplet_step",
    "stdp_triplet_brian2",
]


@dataclass(frozen=True)
class TripletSTDPParams:
    """Parameters of triplet STDP (:func:`stdp_triplet_step`).

    Attributes
    ----------
    A2_plus, A3_plus : pair and triplet potentiation amplitudes (weight's unit, >= 0).
    A2_minus, A3_minus : pair and triplet depression amplitudes (weight's unit, >= 0).
    tau_plus, tau_x : fast / slow presynaptic trace time constants (``r1``, ``r2``), ms.
    tau_minus, tau_y : fast / slow postsynaptic trace time constants (``o1``, ``o2``), ms.
    w_min, w_max : weight bounds; may be infinite for additive STDP.
    weight_dependence : ``"additive"`` or ``"multiplicative"`` (soft bounds).
    interaction : ``"all_to_all"`` or ``"nearest"`` (nearest-spike: traces reset to 1).

    The defaults are the visual-cortex all-to-all minimal model (:data:`TRIPLET_PRESETS`).
    """

    A2_plus: float = 0.0
    A3_plus: float = 6.5e-3
    A2_minus: float = 7.1e-3
    A3_minus: float = 0.0
    tau_plus: float = 16.8
    tau_minus: float = 33.7
    tau_x: float = 101.0
    tau_y: float = 114.0
    w_min: float = 0.0
    w_max: float = math.inf
    weight_dependence: WeightDependence = "additive"
    interaction: Interaction = "all_to_all"

    def __post_init__(self) -> None:
        check_finite_floats(self)
        check_positive(self, "tau_plus", "tau_minus", "tau_x", "tau_y")
        check_non_negative(self, "A2_plus", "A3_plus", "A2_minus", "A3_minus")
        check_weight_dependence(self)


def _preset(a2p: float, a3p: float, a2m: float, a3m: float, tau_x: float, tau_y: float,
            interaction: Interaction) -> TripletSTDPParams:
    return TripletSTDPParams(A2_plus=a2p, A3_plus=a3p, A2_minus=a2m, A3_minus=a3m,
                             tau_x=tau_x, tau_y=tau_y, interaction=interaction)


#: Visual cortex, all-to-all, minimal (Pfister & Gerstner 2006, Table 3); tau_x unused.
TRIPLET_VISUAL_ALL_TO_ALL_MINIMAL = _preset(0.0, 6.5e-3, 7.1e-3, 0.0, 101.0, 114.0, "all_to_all")
#: Visual cortex, all-to-all, full (Table 3).
TRIPLET_VISUAL_ALL_TO_ALL_FULL = _preset(5e-10, 6.2e-3, 7e-3, 2.3e-4, 101.0, 125.0, "all_to_all")
#: Visual cortex, nearest-spike, minimal (Table 3); tau_x unused.
TRIPLET_VISUAL_NEAREST_MINIMAL = _preset(0.0, 5e-2, 8e-3, 0.0, 714.0, 40.0, "nearest")
#: Visual cortex, nearest-spike, full (Table 3).
TRIPLET_VISUAL_NEAREST_FULL = _preset(8.8e-11, 5.3e-2, 6.6e-3, 3.1e-3, 714.0, 40.0, "nearest")
#: Hippocampal cultures, all-to-all, minimal (Table 4); tau_x unused.
TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_MINIMAL = _preset(
    5.3e-3, 8e-3, 3.5e-3, 0.0, 946.0, 40.0, "all_to_all"
)
#: Hippocampal cultures, all-to-all, full (Table 4).
TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_FULL = _preset(
    6.1e-3, 6.7e-3, 1.6e-3, 1.4e-3, 946.0, 27.0, "all_to_all"
)
#: Hippocampal cultures, nearest-spike, minimal (Table 4); tau_x unused.
TRIPLET_HIPPOCAMPAL_NEAREST_MINIMAL = _preset(4.6e-3, 9.1e-3, 3e-3, 0.0, 575.0, 48.0, "nearest")
#: Hippocampal cultures, nearest-spike, full (Table 4).
TRIPLET_HIPPOCAMPAL_NEAREST_FULL = _preset(4.6e-3, 9.1e-3, 3e-3, 7.5e-9, 575.0, 47.0, "nearest")

#: Every published set, by name.
TRIPLET_PRESETS: dict[str, TripletSTDPParams] = {
    "visual_all_to_all_minimal": TRIPLET_VISUAL_ALL_TO_ALL_MINIMAL,
    "visual_all_to_all_full": TRIPLET_VISUAL_ALL_TO_ALL_FULL,
    "visual_nearest_minimal": TRIPLET_VISUAL_NEAREST_MINIMAL,
    "visual_nearest_full": TRIPLET_VISUAL_NEAREST_FULL,
    "hippocampal_all_to_all_minimal": TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_MINIMAL,
    "hippocampal_all_to_all_full": TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_FULL,
    "hippocampal_nearest_minimal": TRIPLET_HIPPOCAMPAL_NEAREST_MINIMAL,
    "hippocampal_nearest_full": TRIPLET_HIPPOCAMPAL_NEAREST_FULL,
}


class TripletTraces(NamedTuple):
    """Traces of triplet STDP, dimensionless: ``r1``, ``r2`` ``(batch, n_pre)`` and ``o1``,
    ``o2`` ``(batch, n_post)``, values just after the last step's spikes."""

    r1: torch.Tensor
    r2: torch.Tensor
    o1: torch.Tensor
    o2: torch.Tensor


def stdp_triplet_initial_traces(
    batch: int,
    n_pre: int,
    n_post: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> TripletTraces:
    """Zero traces (no spike history)."""
    pre = torch.zeros((batch, n_pre), device=device, dtype=dtype)
    post = torch.zeros((batch, n_post), device=device, dtype=dtype)
    return TripletTraces(r1=pre, r2=pre.clone(), o1=post, o2=post.clone())


def stdp_triplet_step(
    pre_spikes: torch.Tensor,
    post_spikes: torch.Tensor,
    traces: TripletTraces,
    weights: torch.Tensor,
    params: TripletSTDPParams,
    dt_ms: float,
    *,
    batch_reduce: str = "sum",
    learning: bool = True,
    lr_scale: float = 1.0,
) -> tuple[torch.Tensor, TripletTraces]:
    r"""One step of triplet STDP; pure (returns the change, does not apply it).

    Update order (named and fixed): decay the four traces exactly; presynaptic spikes depress by
    :math:`o_1 (A_2^- + A_3^- r_2)` with :math:`r_2` before its own increment, then increment
    (or reset) :math:`r_1, r_2`; postsynaptic spikes potentiate by
    :math:`r_1 (A_2^+ + A_3^+ o_2)` with :math:`r_1` *including* this step's presynaptic spike
    and :math:`o_2` before its own increment, then increment :math:`o_1, o_2`.

    Parameters and returns as :func:`neuro.plasticity.stdp.stdp_pair_step`, with
    :class:`TripletTraces` and :class:`TripletSTDPParams`; ``lr_scale`` multiplies the four
    amplitudes.
    """
    batch, n_pre, n_post = check_step_inputs(
        pre_spikes, post_spikes, weights, dt_ms, batch_reduce, lr_scale
    )
    pre_shape, post_shape = (batch, n_pre), (batch, n_post)
    check_state_shapes(
        "traces", traces, {"r1": pre_shape, "r2": pre_shape, "o1": post_shape, "o2": post_shape}
    )
    pre, post = as_float(pre_spikes, weights), as_float(post_spikes, weights)
    p = params
    r1 = traces.r1 * decay_factor(dt_ms, p.tau_plus)
    r2 = traces.r2 * decay_factor(dt_ms, p.tau_x)
    o1 = traces.o1 * decay_factor(dt_ms, p.tau_minus)
    o2 = traces.o2 * decay_factor(dt_ms, p.tau_y)

    depression = PairDrive(u=pre * (p.A2_minus + p.A3_minus * r2), v=o1)
    r1 = bump(r1, pre, p.interaction)
    r2 = bump(r2, pre, p.interaction)
    potentiation = PairDrive(u=r1, v=post * (p.A2_plus + p.A3_plus * o2))
    o1 = bump(o1, post, p.interaction)
    o2 = bump(o2, post, p.interaction)
    new_traces = TripletTraces(r1=r1, r2=r2, o1=o1, o2=o2)

    if not learning or lr_scale == 0:
        return torch.zeros_like(weights), new_traces
    delta_w = pair_weight_change(
        PairDrive(depression.u * lr_scale, depression.v),
        PairDrive(potentiation.u * lr_scale, potentiation.v),
        weights,
        p.weight_dependence,
        p.w_min,
        p.w_max,
        batch_reduce,
    )
    return delta_w, new_traces


def stdp_triplet_brian2(
    params: TripletSTDPParams, *, w_unit: str = "1", declare_weight: bool = True
) -> Brian2Plasticity:
    """The same rule as Brian2 ``Synapses`` strings, with event-driven traces.

    Statement order inside ``on_pre`` / ``on_post`` implements the :math:`t - \\epsilon`: the
    weight update reads ``r2`` / ``o2`` before they are incremented. Arguments and the per-event
    clipping as :func:`neuro.plasticity.stdp.stdp_pair_brian2`.
    """
    import brian2 as b2

    unit, unit_name = brian2_weight_unit(w_unit)
    reset = brian2_trace_bump(params.interaction)
    g_minus, g_plus = brian2_weight_dependence(params.weight_dependence)
    model = (
        "dr1/dt = -r1/tau_plus : 1 (event-driven)\n"
        "dr2/dt = -r2/tau_x : 1 (event-driven)\n"
        "do1/dt = -o1/tau_minus : 1 (event-driven)\n"
        "do2/dt = -o2/tau_y : 1 (event-driven)\n"
        "lr : 1 (shared)\n"
    )
    if declare_weight:
        model += f"w : {unit_name}\n"
    on_pre = (
        brian2_clip(f"w - lr*o1*(A2_minus + A3_minus*r2){g_minus}")
        + f"\nr1 {reset}\nr2 {reset}\n"
    )
    on_post = (
        brian2_clip(f"w + lr*r1*(A2_plus + A3_plus*o2){g_plus}")
        + f"\no1 {reset}\no2 {reset}\n"
    )
    return Brian2Plasticity(
        model=model,
        on_pre=on_pre,
        on_post=on_post,
        namespace={
            "A2_plus": params.A2_plus * unit,
            "A3_plus": params.A3_plus * unit,
            "A2_minus": params.A2_minus * unit,
            "A3_minus": params.A3_minus * unit,
            "tau_plus": params.tau_plus * b2.ms,
            "tau_minus": params.tau_minus * b2.ms,
            "tau_x": params.tau_x * b2.ms,
            "tau_y": params.tau_y * b2.ms,
            "w_min": params.w_min * unit,
            "w_max": params.w_max * unit,
        },
        initial_values={"lr": 1.0, "r1": 0.0, "r2": 0.0, "o1": 0.0, "o2": 0.0},
    )
