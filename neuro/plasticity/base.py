r"""The contract every plasticity rule in :mod:`neuro.plasticity` follows, and the shared pieces.

A rule is

* a frozen parameter dataclass, validated in ``__post_init__`` (a ``ValueError`` names the
  field: non-positive time constants, NaN, inverted weight bounds ``w_min >= w_max``);
* a *pure* step that returns a weight change and the new state without mutating its inputs
  (SpikingJelly's ``stdp_linear_step`` style)::

      delta_w, new_traces = rule_step(pre_spikes, post_spikes, traces, weights, params, dt_ms,
                                      batch_reduce="sum", learning=True, lr_scale=1.0)

  (rate rules take rate vectors ``x``, ``y`` instead of spikes and return only ``delta_w``);
* :func:`apply_weight_change`, a separate step that adds ``delta_w`` and clips to the bounds;
* for spike-based rules, ``<rule>_brian2(params)``: the same rule as Brian2 ``Synapses`` strings
  (:class:`Brian2Plasticity`), event-driven traces as in Brian2's ``examples/synapses/STDP.py``.

Shapes and batching
-------------------
Spikes are ``(batch, n_pre)`` and ``(batch, n_post)`` (bool or float 0/1). Weights are either

* ``(n_pre, n_post)``: one weight matrix shared by every trial of the batch. The per-trial changes
  are then reduced over the batch, by ``batch_reduce="sum"`` or ``"mean"`` (an explicit argument
  of every step); or
* ``(batch, n_pre, n_post)``: independent weights per trial (e.g. batched independent seeds);
  ``batch_reduce`` is ignored and ``delta_w`` has the same shape.

Traces are ``(batch, n)``: each trial has its own spike history even when weights are shared.

Discretisation
--------------
Traces relax exactly over a step, :math:`a \leftarrow a\,e^{-\Delta t/\tau}` (decay factors from
:func:`neuro.models._common.decay_factor`), and then jump on this step's spikes: by one
(``interaction="all_to_all"``: every earlier spike counts) or to one
(``interaction="nearest"``: only the nearest earlier spike counts). Within a step presynaptic
spikes are processed before postsynaptic ones, as in Brian2 (the ``pre`` pathway has
``order=-1``, the ``post`` pathway ``order=1``), so a pre and a post spike in the same step count
as "pre before post" (:math:`\Delta t = 0^+`, potentiation).

Freezing and learning-rate schedules
------------------------------------
The convention for frozen weights is the keyword ``learning=False`` of every step: the traces (and
other state, such as BCM's threshold or R-STDP's eligibility) still advance, so that learning can
resume from a correct spike history, and ``delta_w`` is zero. ``lr_scale`` (default 1) multiplies
every amplitude and learning rate of the rule for this step; it is where a value from
:mod:`neuro.plasticity.schedules` goes. ``learning=False`` is the same as ``lr_scale=0``. On the
Brian2 side the shared synaptic variable ``lr`` (initial value 1) plays the role of ``lr_scale``;
set it to 0 to freeze.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import torch

from neuro.models._common import check_dt_positive

__all__ = [
    "BatchReduce",
    "Interaction",
    "WeightDependence",
    "WeightBounds",
    "Brian2Plasticity",
    "apply_weight_change",
]

#: How a change of shared weights is reduced over the batch.
BatchReduce = Literal["sum", "mean"]
#: Which earlier spikes a spike interacts with: all of them (traces add) or the nearest (reset).
Interaction = Literal["all_to_all", "nearest"]
#: How a weight change depends on the weight: not at all (hard bounds by clipping) or soft bounds.
WeightDependence = Literal["additive", "multiplicative"]


@dataclass(frozen=True)
class WeightBounds:
    """Closed interval ``[w_min, w_max]`` a weight is clipped to (in the weight's unit).

    Either end may be infinite (unbounded); neither may be NaN.
    """

    w_min: float = 0.0
    w_max: float = 1.0

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class Brian2Plasticity:
    """A plasticity rule written for :class:`brian2.Synapses`.

    Attributes
    ----------
    model
        Synapse model: the traces (``(event-driven)`` or ``(clock-driven)``), the shared learning
        rate ``lr : 1 (shared)`` and, unless the engine declares it, the weight ``w``.
    on_pre, on_post
        Code run on a presynaptic / postsynaptic spike. They update ``w`` and the traces only.
        The engine *prepends* the transmission statement (e.g. ``g_exc_post += w``) to
        ``on_pre``, so that a spike is transmitted with the weight from before its own update,
        as in Brian2's ``examples/synapses/STDP.py`` and as in a torch loop that computes the
        synaptic input from ``w`` and applies ``delta_w`` at the end of the step. With synaptic
        delays ``on_pre`` runs at the delayed time; the torch rule must then be given the
        delayed presynaptic spikes for the two to agree.
    namespace
        Parameter values as Brian2 quantities, referenced by name in the strings above.
    initial_values
        Initial values of the synaptic variables (``lr`` and traces).
    method
        Integration method for clock-driven variables, or ``None`` when there are none.
    extra_code
        Named code blocks the engine runs at other times, e.g. ``{"reward": ...}`` for R-STDP,
        meant for ``Synapses.run_regularly(code, when="after_synapses")``.
    """

    model: str
    on_pre: str
    on_post: str
    namespace: dict[str, Any] = field(default_factory=dict)
    initial_values: dict[str, Any] = field(default_factory=dict)
    method: str | None = None
    extra_code: dict[str, str] = field(default_factory=dict)


def apply_weight_change(
    weights: torch.Tensor,
    delta_w: torch.Tensor,
    bounds: WeightBounds | tuple[float, float] | Any | None = None,
) -> torch.Tensor:
    """New weights ``clip(weights + delta_w, w_min, w_max)``; the inputs are not modified.

    Parameters
    ----------
    weights : ``(n_pre, n_post)`` or ``(batch, n_pre, n_post)``.
    delta_w : a change of the same shape, as returned by a rule's step (multiply it by a
        learning rate first if the rule's step was not given ``lr_scale``).
    bounds : a :class:`WeightBounds`, a ``(w_min, w_max)`` pair, any object with ``w_min`` and
        ``w_max`` attributes (e.g. the rule's parameters), or ``None`` for no clipping.

    Returns
    -------
    A new tensor.
    """
    if delta_w.shape != weights.shape:
        raise ValueError(
            f"delta_w has shape {tuple(delta_w.shape)}, weights {tuple(weights.shape)}"
        )
    new = weights + delta_w
    if bounds is None:
        return new
    if isinstance(bounds, tuple):
        bounds = WeightBounds(*bounds)
    w_min, w_max = float(bounds.w_min), float(bounds.w_max)
    if not w_min < w_max:
        raise ValueError(f"bounds.w_min ({w_min}) must be below bounds.w_max ({w_max})")
    lo = w_min if math.isfinite(w_min) else None
    hi = w_max if math.isfinite(w_max) else None
    return new if lo is None and hi is None else new.clamp(min=lo, max=hi)


# --------------------------------------------------------------------------- validation


def check_bounds(params: object, lo: str = "w_min", hi: str = "w_max") -> None:
    """Raise ``ValueError`` if the bounds are NaN or not ordered ``lo < hi``."""
    name = type(params).__name__
    w_min, w_max = getattr(params, lo), getattr(params, hi)
    for field_name, value in ((lo, w_min), (hi, w_max)):
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise ValueError(f"{name}.{field_name} must be a number, got {value!r}")
    if not w_min < w_max:
        raise ValueError(f"{name}.{lo} ({w_min}) must be below {name}.{hi} ({w_max})")


def check_choice(params: object, name: str, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless the field ``name`` is one of ``choices``."""
    value = getattr(params, name)
    if value not in choices:
        raise ValueError(
            f"{type(params).__name__}.{name} must be one of {choices}, got {value!r}"
        )


def check_finite_floats(params: object) -> None:
    """Like :func:`neuro.models._common.check_finite` but ignoring the weight bounds, which may
    be infinite."""
    for f in dataclasses.fields(params):  # type: ignore[arg-type]
        if f.name in ("w_min", "w_max"):
            continue
        value = getattr(params, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            raise ValueError(f"{type(params).__name__}.{f.name} must be finite, got {value!r}")


def check_batch_reduce(batch_reduce: str) -> None:
    if batch_reduce not in ("sum", "mean"):
        raise ValueError(f"batch_reduce must be 'sum' or 'mean', got {batch_reduce!r}")


def check_lr_scale(lr_scale: float) -> None:
    if not (isinstance(lr_scale, int | float) and math.isfinite(lr_scale) and lr_scale >= 0):
        raise ValueError(f"lr_scale must be a finite number >= 0, got {lr_scale!r}")


# --------------------------------------------------------------------------- shapes


def check_shapes(
    pre: torch.Tensor, post: torch.Tensor, weights: torch.Tensor, what: str = "spikes"
) -> tuple[int, int, int]:
    """Check ``pre (batch, n_pre)``, ``post (batch, n_post)`` against the weights; return
    ``(batch, n_pre, n_post)``."""
    if pre.dim() != 2 or post.dim() != 2:
        raise ValueError(
            f"pre and post {what} must be (batch, n); got {tuple(pre.shape)} and "
            f"{tuple(post.shape)}"
        )
    batch, n_pre = pre.shape
    if post.shape[0] != batch:
        raise ValueError(
            f"pre and post {what} have different batch sizes: {batch}, {post.shape[0]}"
        )
    n_post = post.shape[1]
    if weights.dim() == 2:
        expected: tuple[int, ...] = (n_pre, n_post)
    elif weights.dim() == 3:
        expected = (batch, n_pre, n_post)
    else:
        raise ValueError(
            f"weights must be (n_pre, n_post) or (batch, n_pre, n_post), got {tuple(weights.shape)}"
        )
    if tuple(weights.shape) != expected:
        raise ValueError(f"weights have shape {tuple(weights.shape)}, expected {expected}")
    return batch, n_pre, n_post


def check_state_shape(name: str, tensor: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {shape}")


def check_state_shapes(name: str, state: Any, shapes: dict[str, tuple[int, ...]]) -> None:
    """:func:`check_state_shape` for several fields of a state ``NamedTuple``; the errors name
    the field as ``<name>.<field>`` (e.g. ``traces.a_pre``)."""
    for field_name, shape in shapes.items():
        check_state_shape(f"{name}.{field_name}", getattr(state, field_name), shape)


def check_step_inputs(
    pre: torch.Tensor,
    post: torch.Tensor,
    weights: torch.Tensor,
    dt_ms: float | None,
    batch_reduce: str,
    lr_scale: float,
    what: str = "spikes",
) -> tuple[int, int, int]:
    """Validate the arguments every rule's step shares and return ``(batch, n_pre, n_post)``.

    In order: ``dt_ms > 0`` (skipped when ``None``, for steps without a time step), then
    ``batch_reduce``, ``lr_scale`` and the shapes (:func:`check_shapes`; ``what`` names ``pre``
    and ``post`` in its errors, ``"spikes"`` or ``"rates"``).
    """
    if dt_ms is not None:
        check_dt_positive(dt_ms)
    check_batch_reduce(batch_reduce)
    check_lr_scale(lr_scale)
    return check_shapes(pre, post, weights, what)


def as_float(spikes: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Spikes (bool or 0/1) as the dtype and device of ``like``."""
    return spikes.to(dtype=like.dtype, device=like.device)


def outer(
    u: torch.Tensor, v: torch.Tensor, weights: torch.Tensor, batch_reduce: str
) -> torch.Tensor:
    r"""Per-trial outer products :math:`u_b v_b^\top`, reduced over the batch for shared weights.

    ``u`` is ``(batch, n_pre)``, ``v`` ``(batch, n_post)``. Returns ``(n_pre, n_post)``
    (sum or mean over ``b``) when ``weights`` is 2-D, ``(batch, n_pre, n_post)`` when 3-D.
    """
    if weights.dim() == 3:
        return u[:, :, None] * v[:, None, :]
    total = u.transpose(0, 1) @ v
    return total / u.shape[0] if batch_reduce == "mean" else total


def reduce_batch(per_trial: torch.Tensor, weights: torch.Tensor, batch_reduce: str) -> torch.Tensor:
    """Reduce a ``(batch, ...)`` per-trial change to the shape of ``weights``."""
    if weights.dim() == per_trial.dim():
        return per_trial
    return per_trial.mean(0) if batch_reduce == "mean" else per_trial.sum(0)


def bump(trace: torch.Tensor, spikes: torch.Tensor, interaction: str) -> torch.Tensor:
    """A trace after this step's spikes: ``+1`` (all-to-all) or reset to 1 (nearest)."""
    if interaction == "all_to_all":
        return trace + spikes
    return torch.where(spikes > 0, torch.ones_like(trace), trace)


class PairDrive(NamedTuple):
    r"""The two outer-product factors of one kind of weight change, per trial.

    The change of synapse :math:`(i, j)` in trial :math:`b` is :math:`u_{bi} v_{bj}` (times the
    weight dependence). Depression is processed before potentiation.
    """

    u: torch.Tensor
    v: torch.Tensor


def pair_weight_change(
    depression: PairDrive,
    potentiation: PairDrive,
    weights: torch.Tensor,
    weight_dependence: str,
    w_min: float,
    w_max: float,
    batch_reduce: str,
) -> torch.Tensor:
    r"""Weight change of one step from a depression and a potentiation drive (both >= 0).

    additive
        :math:`\Delta w = -D + P` with :math:`D_{ij} = \sum_b u^D_{bi} v^D_{bj}` and likewise
        :math:`P`.
    multiplicative (soft bounds)
        :math:`\Delta w^- = -D \odot (w - w_{min})/R`, then potentiation from the depressed
        weight, :math:`\Delta w^+ = P \odot (w_{max} - w - \Delta w^-)/R`, with
        :math:`R = w_{max} - w_{min}`. The sequential form is what an event-driven simulator
        computes when a pre and a post spike fall in the same step; the cross term
        :math:`\sum_b P_b \odot D_b` is again an outer product, of
        :math:`u^P u^D` and :math:`v^P v^D`.
    """
    dep = outer(depression.u, depression.v, weights, batch_reduce)
    pot = outer(potentiation.u, potentiation.v, weights, batch_reduce)
    if weight_dependence == "additive":
        return pot - dep
    span = w_max - w_min
    below = (weights - w_min) / span
    cross = outer(
        potentiation.u * depression.u, potentiation.v * depression.v, weights, batch_reduce
    )
    return -dep * below + pot * ((w_max - weights) / span) + cross * below / span


def brian2_weight_unit(w_unit: str) -> tuple[Any, str]:
    """The Brian2 unit named ``w_unit`` (``"1"`` for dimensionless weights) and the base unit
    to write after ``w :`` in a model."""
    if w_unit == "1":
        return 1.0, "1"
    import brian2 as b2

    unit = getattr(b2, w_unit, None)
    if not isinstance(unit, b2.Unit):
        raise ValueError(f"w_unit must be '1' or the name of a Brian2 unit, got {w_unit!r}")
    # model strings need the base unit of the dimension ("siemens" for nS)
    return unit, repr(b2.get_unit(unit.dim))


def brian2_trace_bump(interaction: str) -> str:
    """How a Brian2 trace jumps on its neuron's spike, as in :func:`bump`: ``"+= 1"``
    (``"all_to_all"``) or ``"= 1"`` (``"nearest"``); written after the trace's name."""
    return "+= 1" if interaction == "all_to_all" else "= 1"


def brian2_weight_dependence(weight_dependence: str) -> tuple[str, str]:
    r"""The factors :math:`g_-(w)`, :math:`g_+(w)` of depression and potentiation as Brian2 code
    to append to the amplitude: none for ``"additive"``; the soft bounds
    :math:`(w - w_{min})/(w_{max} - w_{min})` and :math:`(w_{max} - w)/(w_{max} - w_{min})` for
    ``"multiplicative"`` (:func:`pair_weight_change`)."""
    if weight_dependence == "additive":
        return "", ""
    return "*(w - w_min)/(w_max - w_min)", "*(w_max - w)/(w_max - w_min)"


def brian2_clip(expression: str) -> str:
    """``w = clip(<expression>, w_min, w_max)``: the per-event hard bound of the Brian2 mirrors."""
    return f"w = clip({expression}, w_min, w_max)"
