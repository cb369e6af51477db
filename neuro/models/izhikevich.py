r"""Izhikevich (2003) simple spiking model, forward Euler in both engines.

.. math::

    \frac{dv}{dt} &= 0.04 v^2 + 5 v + 140 - u + I_{in}/C, \\
    \frac{du}{dt} &= a (b v - u),

with :math:`v` in mV and :math:`t` in ms; when :math:`v \ge V_{peak}` (30 mV):
:math:`v \leftarrow c`, :math:`u \leftarrow u + d`.

Input mapping. The paper's input :math:`I` is a dimensionless "current" that enters
:math:`dv/dt` directly, i.e. it is in mV/ms. Here the input is a current in pA divided by a
capacitance :math:`C` (pF), since pA/pF = mV/ms; with the default :math:`C = 1` pF a current of
``10`` pA is the paper's :math:`I = 10`. :math:`u` is in mV (it enters like :math:`v`
per ms), :math:`a` is in 1/ms, :math:`b` is dimensionless and :math:`c, d` are in mV.

No refractory period and no reset mode: the model has none (the reset to :math:`c` and the jump
of :math:`u` shape the after-spike dynamics), as in the paper.

Reference: E. M. Izhikevich, "Simple model of spiking neurons", IEEE Trans. Neural Networks
14:1569 (2003); presets from its Fig. 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from neuro.models._common import check_dt_limit, check_finite, check_positive
from neuro.models.base import Brian2Equations, NeuronModel

__all__ = [
    "IzhikevichParams",
    "IzhikevichState",
    "izhikevich_initial_state",
    "izhikevich_step",
    "izhikevich_brian2",
    "IZHIKEVICH",
    "REGULAR_SPIKING",
    "INTRINSICALLY_BURSTING",
    "CHATTERING",
    "FAST_SPIKING",
    "LOW_THRESHOLD_SPIKING",
    "THALAMO_CORTICAL",
    "RESONATOR",
    "IZHIKEVICH_PRESETS",
]

#: Largest step for the ``v`` equation, ms: the paper's own code integrates ``v`` with forward
#: Euler sub-steps of 0.5 ms (two per 1 ms step); larger steps make the quadratic upswing blow
#: up inaccurately.
IZHIKEVICH_MAX_DT_MS = 0.5


@dataclass(frozen=True)
class IzhikevichParams:
    """Parameters of :data:`IZHIKEVICH` (defaults: regular spiking).

    Attributes
    ----------
    a : time scale (rate) of the recovery variable ``u``, 1/ms; positive.
    b : sensitivity of ``u`` to sub-threshold ``v``, dimensionless.
    c : after-spike reset value of ``v``, mV; below ``V_peak``.
    d : after-spike increment of ``u``, mV.
    V_peak : spike cut-off, mV (30 in the paper).
    C : capacitance mapping input current to the paper's units, pF: ``I_paper = I_in / C``.
    V_init : initial ``v``, mV; ``u`` starts at ``b * V_init`` (as in the paper's code).
    """

    a: float = 0.02
    b: float = 0.2
    c: float = -65.0
    d: float = 8.0
    V_peak: float = 30.0
    C: float = 1.0
    V_init: float = -65.0

    def __post_init__(self) -> None:
        check_finite(self)
        check_positive(self, "a", "C")
        if not self.c < self.V_peak:
            raise ValueError(
                f"IzhikevichParams.c ({self.c} mV) must be below "
                f"IzhikevichParams.V_peak ({self.V_peak} mV)"
            )
        if not self.V_init < self.V_peak:
            raise ValueError(
                f"IzhikevichParams.V_init ({self.V_init} mV) must be below "
                f"IzhikevichParams.V_peak ({self.V_peak} mV)"
            )

    def check_dt(self, dt_ms: float) -> None:
        """Require ``dt <= min(0.5 ms, 0.1 / a)`` (forward Euler; ``1/a`` is the time constant
        of ``u``, 0.5 ms the paper's Euler sub-step for ``v``)."""
        if 0.1 / self.a < IZHIKEVICH_MAX_DT_MS:
            check_dt_limit(dt_ms, 0.1 / self.a, f"0.1 / IzhikevichParams.a ({self.a:g} /ms)")
        else:
            check_dt_limit(dt_ms, IZHIKEVICH_MAX_DT_MS, "the paper's Euler sub-step for v")


class IzhikevichState(NamedTuple):
    """State of :data:`IZHIKEVICH`, tensors of shape ``(batch, n)``.

    v : membrane potential, mV.
    u : recovery variable, mV.
    """

    v: torch.Tensor
    u: torch.Tensor


def izhikevich_initial_state(
    params: IzhikevichParams,
    shape: tuple[int, ...],
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> IzhikevichState:
    """``v = V_init``, ``u = b * V_init``."""
    v = torch.full(shape, params.V_init, device=device, dtype=dtype)
    return IzhikevichState(v=v, u=params.b * v)


def izhikevich_step(
    state: IzhikevichState, i_in: torch.Tensor, params: IzhikevichParams, dt_ms: float
) -> tuple[torch.Tensor, IzhikevichState]:
    r"""One forward-Euler step: integrate, threshold, reset.

    Both derivatives at the old state (Brian2's ``euler``; the paper's code instead takes two
    0.5 ms half steps for :math:`v` and then updates :math:`u` with the new :math:`v`):

    .. math::

        v &\leftarrow v + \Delta t\,\big(0.04 v^2 + 5 v + 140 - u + I/C\big), \\
        u &\leftarrow u + \Delta t\, a (b v - u),

    then where :math:`v \ge V_{peak}`: :math:`v \leftarrow c`, :math:`u \leftarrow u + d`.

    Reference: Izhikevich (2003), IEEE Trans. Neural Networks 14:1569, eqs. (1)–(3).

    Parameters
    ----------
    state : :class:`IzhikevichState`.
    i_in : total input current, pA, shape ``(batch, n)``.
    params : :class:`IzhikevichParams`.
    dt_ms : time step, ms.
    """
    v, u = state.v, state.u
    dv = 0.04 * v * v + 5.0 * v + 140.0 - u + i_in / params.C
    du = params.a * (params.b * v - u)
    v = v + dt_ms * dv
    u = u + dt_ms * du

    spikes = v >= params.V_peak
    v = torch.where(spikes, torch.full_like(v, params.c), v)
    u = torch.where(spikes, u + params.d, u)
    return spikes, IzhikevichState(v=v, u=u)


def izhikevich_brian2(params: IzhikevichParams) -> Brian2Equations:
    """The same model as Brian2 equations, method ``euler`` (as :func:`izhikevich_step`)."""
    import brian2 as b2  # imported here so that torch-only use does not pay for Brian2

    model = (
        "dv/dt = (0.04/mV*v**2 + 5*v + 140*mV - u)/ms + I_in/C : volt\ndu/dt = a*(b*v - u) : volt\n"
    )
    return Brian2Equations(
        model=model,
        threshold="v >= V_peak",
        reset="v = c\nu += d",
        refractory=None,
        method="euler",
        namespace={
            "a": params.a / b2.ms,
            "b": params.b,
            "c": params.c * b2.mV,
            "d": params.d * b2.mV,
            "V_peak": params.V_peak * b2.mV,
            "C": params.C * b2.pF,
        },
        initial_values={"v": params.V_init * b2.mV, "u": params.b * params.V_init * b2.mV},
    )


IZHIKEVICH = NeuronModel(
    name="izhikevich",
    params_type=IzhikevichParams,
    state_type=IzhikevichState,
    initial_state=izhikevich_initial_state,
    step=izhikevich_step,
    brian2=izhikevich_brian2,
)

# --------------------------------------------------------------------------- presets
# Izhikevich (2003), Fig. 2 (a, b, c, d).

REGULAR_SPIKING = IzhikevichParams(a=0.02, b=0.2, c=-65.0, d=8.0)
INTRINSICALLY_BURSTING = IzhikevichParams(a=0.02, b=0.2, c=-55.0, d=4.0)
CHATTERING = IzhikevichParams(a=0.02, b=0.2, c=-50.0, d=2.0)
FAST_SPIKING = IzhikevichParams(a=0.1, b=0.2, c=-65.0, d=2.0)
LOW_THRESHOLD_SPIKING = IzhikevichParams(a=0.02, b=0.25, c=-65.0, d=2.0)
THALAMO_CORTICAL = IzhikevichParams(a=0.02, b=0.25, c=-65.0, d=0.05)
RESONATOR = IzhikevichParams(a=0.1, b=0.26, c=-65.0, d=2.0)

#: The seven cortical/thalamic cell classes of Izhikevich (2003), Fig. 2, by name.
IZHIKEVICH_PRESETS: dict[str, IzhikevichParams] = {
    "regular_spiking": REGULAR_SPIKING,
    "intrinsically_bursting": INTRINSICALLY_BURSTING,
    "chattering": CHATTERING,
    "fast_spiking": FAST_SPIKING,
    "low_threshold_spiking": LOW_THRESHOLD_SPIKING,
    "thalamo_cortical": THALAMO_CORTICAL,
    "resonator": RESONATOR,
}
