"""Shared pieces of the neuron models: decay factors, exponential relaxation, ``exprel``,
refractory bookkeeping and parameter validation.

Every model computes its decay factors with :func:`decay_factor` and its exponential-Euler
updates with :func:`relax`, so the discretisation is written once.
"""

from __future__ import annotations

import dataclasses
import math

import torch

__all__ = [
    "decay_factor",
    "relax",
    "exprel",
    "refractory_hold",
    "STEP_TOLERANCE",
    "check_finite",
    "check_positive",
    "check_non_negative",
    "check_dt_positive",
    "check_dt_limit",
]

#: Fraction of a step used as rounding tolerance when comparing times with ``dt``; the same
#: value as Brian2's ``timestep()`` (``int((t + 1e-3*dt) / dt)``), so that refractory periods
#: count the same number of steps in both engines.
STEP_TOLERANCE = 1e-3


def decay_factor(dt_ms: float, tau_ms: float | torch.Tensor) -> float | torch.Tensor:
    r"""Decay factor :math:`e^{-\Delta t/\tau}` of a linear relaxation over one step.

    ``tau_ms`` may be a float (returns a float, computed in double precision) or a tensor
    (returns a tensor, e.g. voltage-dependent gating time constants).
    """
    if isinstance(tau_ms, torch.Tensor):
        return torch.exp(-dt_ms / tau_ms)
    return math.exp(-dt_ms / tau_ms)


def relax(
    x: torch.Tensor, x_inf: torch.Tensor | float, decay: torch.Tensor | float
) -> torch.Tensor:
    r"""One exponential-Euler step :math:`x \leftarrow x_\infty + (x - x_\infty)\,d`.

    Exact for :math:`\dot x = (x_\infty - x)/\tau` with :math:`x_\infty, \tau` frozen over the
    step and :math:`d = e^{-\Delta t/\tau}` (:func:`decay_factor`). It is Brian2's
    ``exponential_euler`` written as a relaxation: Brian2 writes
    :math:`\dot x = A x + B` and :math:`x \leftarrow -B/A + (x + B/A)e^{A\Delta t}`,
    i.e. :math:`x_\infty = -B/A`, :math:`\tau = -1/A`.
    """
    return x_inf + (x - x_inf) * decay


def exprel(x: torch.Tensor) -> torch.Tensor:
    r"""Relative error exponential :math:`(e^x - 1)/x`, equal to 1 at :math:`x = 0`.

    Hodgkin–Huxley rate functions of the form :math:`k\,u/(1 - e^{-u})` have a removable
    singularity at :math:`u = 0`; written as :math:`k/\mathrm{exprel}(-u)` they are smooth.
    Brian2 provides the same function (``exprel``). Near zero the Taylor series
    :math:`1 + x/2 + x^2/6` is used (truncation error below :math:`10^{-13}` there).
    """
    small = x.abs() < 1e-4
    safe = torch.where(small, torch.ones_like(x), x)
    series = 1.0 + x * (0.5 + x / 6.0)
    return torch.where(small, series, torch.expm1(safe) / safe)


def refractory_hold(refrac_ms: torch.Tensor, dt_ms: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advance a refractory countdown by one step.

    ``refrac_ms`` is the refractory time left, counted from the spike time (the *start* of
    the step in which the threshold was crossed, as Brian2 stamps spikes). The step about to be
    taken is *held* (membrane clamped, input ignored, no spike) when it lies entirely within
    the refractory period, i.e. when at least one full step of refractory time is left after
    subtracting the step just elapsed. This reproduces Brian2's
    ``not_refractory = timestep(t - lastspike, dt) >= timestep(t_ref, dt)``: with
    ``t_ref = k dt`` a spike in step ``s`` holds steps ``s+1 ... s+k-1``.

    Returns
    -------
    held : bool tensor, the neurons clamped during this step.
    left : the refractory time left after this step (never negative).
    """
    left = torch.clamp(refrac_ms - dt_ms, min=0.0)
    held = left >= dt_ms * (1.0 - STEP_TOLERANCE)
    return held, left


# --------------------------------------------------------------------------- validation


def check_finite(params: object) -> None:
    """Raise ``ValueError`` naming the first float field of a dataclass that is NaN or inf."""
    for f in dataclasses.fields(params):  # type: ignore[arg-type]
        value = getattr(params, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            raise ValueError(f"{type(params).__name__}.{f.name} must be finite, got {value!r}")


def check_positive(params: object, *names: str) -> None:
    """Raise ``ValueError`` if any named field is not strictly positive."""
    for name in names:
        value = getattr(params, name)
        if not value > 0:
            raise ValueError(f"{type(params).__name__}.{name} must be positive, got {value!r}")


def check_non_negative(params: object, *names: str) -> None:
    """Raise ``ValueError`` if any named field is negative."""
    for name in names:
        value = getattr(params, name)
        if not value >= 0:
            raise ValueError(f"{type(params).__name__}.{name} must be >= 0, got {value!r}")


def check_dt_positive(dt_ms: float) -> None:
    """Raise ``ValueError`` unless ``dt_ms`` is a finite positive number."""
    if not (isinstance(dt_ms, int | float) and math.isfinite(dt_ms) and dt_ms > 0):
        raise ValueError(f"dt_ms must be a finite positive number of ms, got {dt_ms!r}")


def check_dt_limit(dt_ms: float, limit_ms: float, rule: str) -> None:
    """Raise ``ValueError`` when ``dt_ms`` exceeds ``limit_ms``; ``rule`` names the parameter
    and the rule that set the limit (e.g. ``"0.1 * LIFParams.tau_m (10 ms)"``)."""
    check_dt_positive(dt_ms)
    if dt_ms > limit_ms * (1.0 + 1e-9):
        raise ValueError(f"dt_ms={dt_ms:g} is too large: the limit is {rule} = {limit_ms:g} ms")
