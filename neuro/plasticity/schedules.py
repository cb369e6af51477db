r"""Learning-rate schedules: tiny pure functions of the step (or epoch) index.

Their value is passed as ``lr_scale`` to a rule's step (or set as the Brian2 synapses' shared
``lr``); it multiplies the rule's amplitudes or learning rate. ``lr_scale = 0`` (or
``learning=False``) freezes the weights.

.. math::

    \text{constant: } \eta_k = \eta_0, \qquad
    \text{exponential: } \eta_k = \eta_0 \gamma^k, \qquad
    \text{step: } \eta_k = \eta_0 \gamma^{\lfloor k / s \rfloor}.
"""

from __future__ import annotations

import math

__all__ = ["lr_constant", "lr_exponential", "lr_step"]


def _check(step: int, lr0: float, gamma: float = 1.0) -> None:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be an integer >= 0, got {step!r}")
    if not (math.isfinite(lr0) and lr0 >= 0):
        raise ValueError(f"lr0 must be a finite number >= 0, got {lr0!r}")
    if not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")


def lr_constant(step: int, lr0: float = 1.0) -> float:
    """``lr0`` at every step."""
    _check(step, lr0)
    return float(lr0)


def lr_exponential(step: int, lr0: float = 1.0, gamma: float = 0.99) -> float:
    """``lr0 * gamma**step``."""
    _check(step, lr0, gamma)
    return float(lr0 * gamma**step)


def lr_step(step: int, lr0: float = 1.0, step_size: int = 10, gamma: float = 0.1) -> float:
    """``lr0 * gamma**(step // step_size)``: multiplied by ``gamma`` every ``step_size`` steps."""
    _check(step, lr0, gamma)
    if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
        raise ValueError(f"step_size must be an integer >= 1, got {step_size!r}")
    return float(lr0 * gamma ** (step // step_size))
