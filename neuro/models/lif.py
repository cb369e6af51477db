r"""Leaky integrate-and-fire neuron, integrated exactly for a current constant over a step.

.. math::

    \tau_m \frac{dv}{dt} = -(v - E_L) + R\,I_{in}, \qquad R = \tau_m / C_m,

with threshold :math:`v \ge V_{th}`, reset to :math:`V_{reset}` (or by subtraction of
:math:`V_{th} - V_{reset}`) and an absolute refractory period :math:`t_{ref}` during which
:math:`v` is clamped and the input ignored.

Reference: Lapicque (1907); Gerstner, Kistler, Naud & Paninski, *Neuronal Dynamics* (2014),
ch. 1.3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

from neuro.models._common import (
    check_dt_limit,
    check_finite,
    check_non_negative,
    check_positive,
    decay_factor,
    refractory_hold,
    relax,
)
from neuro.models.base import Brian2Equations, NeuronModel

__all__ = ["LIFParams", "LIFState", "lif_initial_state", "lif_step", "lif_brian2", "LIF"]


@dataclass(frozen=True)
class LIFParams:
    """Parameters of :data:`LIF`.

    Attributes
    ----------
    C_m : membrane capacitance, pF.
    tau_m : membrane time constant, ms. The leak conductance is derived:
        ``g_L = C_m / tau_m`` (nS), the input resistance ``R = tau_m / C_m`` (GOhm).
    E_L : leak reversal (resting) potential, mV.
    V_th : spike threshold, mV (a spike when ``v >= V_th`` after integration).
    V_reset : reset potential, mV; must be below ``V_th``.
    t_ref : absolute refractory period, ms (0 for none).
    reset_mode : ``"value"``: ``v <- V_reset``; ``"subtract"``: ``v <- v - (V_th - V_reset)``,
        which keeps the overshoot above threshold (a neuron exactly at ``V_th`` lands on
        ``V_reset`` either way).
    """

    C_m: float = 250.0
    tau_m: float = 10.0
    E_L: float = -65.0
    V_th: float = -50.0
    V_reset: float = -65.0
    t_ref: float = 2.0
    reset_mode: Literal["value", "subtract"] = "value"

    def __post_init__(self) -> None:
        check_finite(self)
        check_positive(self, "C_m", "tau_m")
        check_non_negative(self, "t_ref")
        if not self.V_reset < self.V_th:
            raise ValueError(
                f"LIFParams.V_reset ({self.V_reset} mV) must be below "
                f"LIFParams.V_th ({self.V_th} mV)"
            )
        if self.reset_mode not in ("value", "subtract"):
            raise ValueError(
                f"LIFParams.reset_mode must be 'value' or 'subtract', got {self.reset_mode!r}"
            )

    @property
    def g_L(self) -> float:
        """Leak conductance ``C_m / tau_m``, nS."""
        return self.C_m / self.tau_m

    @property
    def R_m(self) -> float:
        """Input resistance ``tau_m / C_m``, GOhm (so that ``R_m * pA = mV``)."""
        return self.tau_m / self.C_m

    def check_dt(self, dt_ms: float) -> None:
        """Require ``dt <= 0.1 * tau_m``.

        The sub-threshold update is exact for any ``dt``; the limit keeps the threshold test,
        which only sees grid points, and the refractory count (in whole steps) accurate.
        """
        check_dt_limit(dt_ms, 0.1 * self.tau_m, f"0.1 * LIFParams.tau_m ({self.tau_m:g} ms)")


class LIFState(NamedTuple):
    """State of :data:`LIF`, tensors of shape ``(batch, n)``.

    v : membrane potential, mV.
    refrac_ms : refractory time left, ms, counted from the last spike time (see
        :func:`neuro.models._common.refractory_hold`).
    """

    v: torch.Tensor
    refrac_ms: torch.Tensor


def lif_initial_state(
    params: LIFParams,
    shape: tuple[int, ...],
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> LIFState:
    """Resting state: ``v = E_L``, not refractory."""
    v = torch.full(shape, params.E_L, device=device, dtype=dtype)
    return LIFState(v=v, refrac_ms=torch.zeros_like(v))


def lif_step(
    state: LIFState, i_in: torch.Tensor, params: LIFParams, dt_ms: float
) -> tuple[torch.Tensor, LIFState]:
    r"""One step of the LIF neuron: integrate (exactly), threshold, reset, refractory.

    For neurons not held refractory, with the input current frozen over the step,

    .. math::

        v_{t+\Delta t} = E_L + R I + (v_t - E_L - R I)\, e^{-\Delta t/\tau_m},
        \qquad R = \tau_m / C_m,

    which is the exact solution of :math:`\tau_m \dot v = -(v - E_L) + R I` (and what Brian2's
    ``exponential_euler`` computes for it). Then a spike where :math:`v \ge V_{th}`, reset
    (``reset_mode``), and the refractory countdown restarts at :math:`t_{ref}`. Held neurons
    keep :math:`v` and ignore :math:`I` (Brian2's ``(unless refractory)``).

    Parameters
    ----------
    state : :class:`LIFState`.
    i_in : total input current, pA, shape ``(batch, n)``.
    params : :class:`LIFParams`.
    dt_ms : time step, ms (checked once by the engine with ``params.check_dt``).

    Returns
    -------
    spikes : bool tensor ``(batch, n)``.
    new_state : :class:`LIFState`.
    """
    held, refrac = refractory_hold(state.refrac_ms, dt_ms)
    v_inf = params.E_L + params.R_m * i_in
    v_free = relax(state.v, v_inf, decay_factor(dt_ms, params.tau_m))
    v = torch.where(held, state.v, v_free)

    spikes = (v >= params.V_th) & ~held
    if params.reset_mode == "value":
        v = torch.where(spikes, torch.full_like(v, params.V_reset), v)
    else:
        v = torch.where(spikes, v - (params.V_th - params.V_reset), v)
    refrac = torch.where(spikes, torch.full_like(refrac, params.t_ref), refrac)
    return spikes, LIFState(v=v, refrac_ms=refrac)


def lif_brian2(params: LIFParams) -> Brian2Equations:
    """The same LIF neuron as Brian2 equations.

    Method ``exponential_euler``: for an input that does not depend on ``v`` within the step
    (a ``TimedArray``, or any ``I_in`` declared ``(constant over dt)``, as the Brian2 engine
    does) it is the same update as :func:`lif_step`, the exact solution for ``I_in`` frozen
    over the step. ``"exact"`` gives the same numbers there, but Brian2 refuses it as soon as
    ``I_in`` contains ``g*(E - v)`` with ``g`` a state variable of its own (``dg/dt = ...``
    makes the system non-linear), whereas ``exponential_euler`` only needs linearity in ``v``
    with the other variables frozen, which holds for every input. (If ``I_in`` did depend on
    ``v`` within the step, Brian2 would integrate the conductance term exactly for frozen
    ``g`` while the torch step freezes the whole current: an O(dt) difference.)
    """
    import brian2 as b2  # imported here so that torch-only use does not pay for Brian2

    reset = "v = V_reset" if params.reset_mode == "value" else "v = v - (V_th - V_reset)"
    return Brian2Equations(
        model="dv/dt = (E_L - v)/tau_m + I_in/C_m : volt (unless refractory)\n",
        threshold="v >= V_th",
        reset=reset,
        refractory="t_ref",
        method="exponential_euler",
        namespace={
            "C_m": params.C_m * b2.pF,
            "tau_m": params.tau_m * b2.ms,
            "E_L": params.E_L * b2.mV,
            "V_th": params.V_th * b2.mV,
            "V_reset": params.V_reset * b2.mV,
            "t_ref": params.t_ref * b2.ms,
        },
        initial_values={"v": params.E_L * b2.mV},
    )


LIF = NeuronModel(
    name="lif",
    params_type=LIFParams,
    state_type=LIFState,
    initial_state=lif_initial_state,
    step=lif_step,
    brian2=lif_brian2,
)
