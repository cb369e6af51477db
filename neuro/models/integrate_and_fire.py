r"""Non-leaky (perfect) integrate-and-fire neuron.

.. math::

    C_m \frac{dv}{dt} = I_{in},

integrated exactly for a current constant over a step, :math:`v \leftarrow v + I\,\Delta t/C_m`;
a spike when :math:`v > V_{th}` (strictly), then reset to :math:`V_{reset}` or by subtraction of
:math:`V_{th} - V_{reset}`. No leak, no refractory period.

This is the neuron of rate-based ANN-to-SNN conversion (the ``IF`` node of
:mod:`bridge.graph`, NIR's ``IF``, snnTorch's ``Leaky`` with :math:`\beta = 1`): with
:math:`C_m = \Delta t` (pF, ms) one step of 1 pA raises :math:`v` by exactly 1 mV, so a graph's
dimensionless per-step charges map to pA one to one. The threshold is strict because a perfect
integrator fed with quantised inputs lands *on* the threshold often, and the converted networks
are defined with :math:`\Theta(v - \theta)`, :math:`\Theta(0) = 0`. ``V_th = math.inf`` gives a
pure integrator that never fires (a readout).

Reference: Lapicque (1907); Gerstner, Kistler, Naud & Paninski, *Neuronal Dynamics* (2014),
ch. 1.3; B. Rueckauer et al., Front. Neurosci. 11:682 (2017) for its use in conversion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

from neuro.models._common import check_dt_positive, check_positive
from neuro.models.base import Brian2Equations, NeuronModel

__all__ = ["IFParams", "IFState", "if_initial_state", "if_step", "if_brian2", "IF"]


@dataclass(frozen=True)
class IFParams:
    """Parameters of :data:`IF`.

    Attributes
    ----------
    C_m : membrane capacitance, pF (a current of ``C_m`` pA raises ``v`` by 1 mV per ms).
    V_th : spike threshold, mV (a spike when ``v > V_th`` after integration); ``math.inf``
        for an integrator that never fires.
    V_reset : reset potential and initial ``v``, mV; must be below ``V_th``.
    reset_mode : ``"value"``: ``v <- V_reset``; ``"subtract"``: ``v <- v - (V_th - V_reset)``,
        which keeps the overshoot (the reset of rate-based conversion).
    """

    C_m: float = 250.0
    V_th: float = -50.0
    V_reset: float = -65.0
    reset_mode: Literal["value", "subtract"] = "value"

    def __post_init__(self) -> None:
        for name in ("C_m", "V_reset"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"IFParams.{name} must be finite, got {getattr(self, name)!r}")
        check_positive(self, "C_m")
        if math.isnan(self.V_th) or self.V_th == -math.inf:
            raise ValueError(f"IFParams.V_th must be a number or +inf, got {self.V_th!r}")
        if not self.V_reset < self.V_th:
            raise ValueError(
                f"IFParams.V_reset ({self.V_reset} mV) must be below IFParams.V_th "
                f"({self.V_th} mV)"
            )
        if self.reset_mode not in ("value", "subtract"):
            raise ValueError(
                f"IFParams.reset_mode must be 'value' or 'subtract', got {self.reset_mode!r}"
            )

    def check_dt(self, dt_ms: float) -> None:
        """Any positive ``dt``: the update is exact and there is no time constant to resolve."""
        check_dt_positive(dt_ms)


class IFState(NamedTuple):
    """State of :data:`IF`, tensors of shape ``(batch, n)``.

    v : membrane potential, mV.
    """

    v: torch.Tensor


def if_initial_state(
    params: IFParams,
    shape: tuple[int, ...],
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> IFState:
    """``v = V_reset``."""
    return IFState(v=torch.full(shape, params.V_reset, device=device, dtype=dtype))


def if_step(
    state: IFState, i_in: torch.Tensor, params: IFParams, dt_ms: float
) -> tuple[torch.Tensor, IFState]:
    r"""One step: integrate, threshold, reset.

    .. math::

        v \leftarrow v + I\,\frac{\Delta t}{C_m}, \qquad s = [v > V_{th}], \qquad
        v \leftarrow \begin{cases} V_{reset} & \text{reset\_mode="value"} \\
        v - (V_{th} - V_{reset}) & \text{reset\_mode="subtract"} \end{cases}
        \text{ where } s.

    The factor :math:`\Delta t/C_m` is one Python float, so ``C_m == dt_ms`` adds the current
    itself, without rounding.

    Parameters
    ----------
    state : :class:`IFState`.
    i_in : total input current, pA, shape ``(batch, n)``.
    params : :class:`IFParams`.
    dt_ms : time step, ms.

    Returns
    -------
    spikes : bool tensor ``(batch, n)``.
    new_state : :class:`IFState`.
    """
    v = state.v + i_in * (dt_ms / params.C_m)
    spikes = v > params.V_th
    if params.reset_mode == "value":
        v = torch.where(spikes, torch.full_like(v, params.V_reset), v)
    else:
        v = torch.where(spikes, v - (params.V_th - params.V_reset), v)
    return spikes, IFState(v=v)


def if_brian2(params: IFParams) -> Brian2Equations:
    """The same neuron as Brian2 equations.

    ``euler`` is exact here: the right-hand side does not depend on ``v`` and the engine holds
    ``I_in`` constant over the step.
    """
    import brian2 as b2  # imported here so that torch-only use does not pay for Brian2

    reset = "v = V_reset" if params.reset_mode == "value" else "v = v - (V_th - V_reset)"
    return Brian2Equations(
        model="dv/dt = I_in/C_m : volt\n",
        threshold="v > V_th",
        reset=reset,
        refractory=None,
        method="euler",
        namespace={
            "C_m": params.C_m * b2.pF,
            "V_th": params.V_th * b2.mV,
            "V_reset": params.V_reset * b2.mV,
        },
        initial_values={"v": params.V_reset * b2.mV},
    )


IF = NeuronModel(
    name="if",
    params_type=IFParams,
    state_type=IFState,
    initial_state=if_initial_state,
    step=if_step,
    brian2=if_brian2,
)
