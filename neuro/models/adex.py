r"""Adaptive exponential integrate-and-fire neuron (AdEx), forward Euler in both engines.

.. math::

    C \frac{dv}{dt} &= -g_L (v - E_L) + g_L \Delta_T \exp\!\left(\frac{v - V_T}{\Delta_T}\right)
                       - w + I_{in}, \\
    \tau_w \frac{dw}{dt} &= a (v - E_L) - w,

spike when :math:`v \ge V_{peak}`, then :math:`v \leftarrow V_{reset}`,
:math:`w \leftarrow w + b`; during :math:`t_{ref}` after a spike :math:`v` is clamped and the
input ignored while :math:`w` keeps evolving.

References: Brette & Gerstner (2005), J. Neurophysiol. 94:3637; firing-pattern presets from
Naud, Marcille, Clopath & Gerstner (2008), Biol. Cybern. 99:335, Table 1.

Reset mode: only reset *to a value*. Subtracting ``V_peak - V_reset`` would keep the overshoot,
but in the AdEx the overshoot past ``V_peak`` is an artefact of the step hitting the exponential
blow-up (it can be many orders of magnitude), not a quantity to carry over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from neuro.models._common import (
    check_dt_limit,
    check_finite,
    check_non_negative,
    check_positive,
    refractory_hold,
)
from neuro.models.base import Brian2Equations, NeuronModel

__all__ = [
    "AdExParams",
    "AdExState",
    "adex_initial_state",
    "adex_step",
    "adex_brian2",
    "ADEX",
    "ADEX_TONIC",
    "ADEX_ADAPTING",
    "ADEX_INITIAL_BURST",
    "ADEX_REGULAR_BURSTING",
    "ADEX_DELAYED_ACCELERATING",
    "ADEX_DELAYED_REGULAR_BURSTING",
    "ADEX_TRANSIENT",
    "ADEX_IRREGULAR",
    "ADEX_PRESETS",
    "ADEX_PRESET_CURRENTS_PA",
]

#: Largest step forward Euler is allowed to take, ms, whatever the time constants: the spike
#: upswing driven by the exponential term lasts a fraction of a millisecond, so larger steps
#: mistime spikes noticeably. 0.1 ms is Brian2's default step, used by its AdEx examples.
ADEX_MAX_DT_MS = 0.1


@dataclass(frozen=True)
class AdExParams:
    """Parameters of :data:`ADEX` (defaults: Brette & Gerstner 2005).

    Attributes
    ----------
    C : membrane capacitance, pF.
    g_L : leak conductance, nS.
    E_L : leak reversal potential, mV.
    V_T : effective threshold, where the exponential term takes over from the leak, mV.
    Delta_T : slope factor of the exponential, mV.
    tau_w : adaptation time constant, ms.
    a : sub-threshold adaptation conductance, nS (may be negative, e.g. Naud's presets).
    b : spike-triggered adaptation current increment, pA.
    V_reset : reset potential, mV; below ``V_peak``.
    V_peak : spike detection (cut-off) potential, mV; above ``V_T``.
    t_ref : absolute refractory period, ms (0 for none).
    """

    C: float = 281.0
    g_L: float = 30.0
    E_L: float = -70.6
    V_T: float = -50.4
    Delta_T: float = 2.0
    tau_w: float = 144.0
    a: float = 4.0
    b: float = 80.5
    V_reset: float = -70.6
    V_peak: float = 20.0
    t_ref: float = 0.0

    def __post_init__(self) -> None:
        check_finite(self)
        check_positive(self, "C", "g_L", "Delta_T", "tau_w")
        check_non_negative(self, "t_ref")
        if not self.V_reset < self.V_peak:
            raise ValueError(
                f"AdExParams.V_reset ({self.V_reset} mV) must be below "
                f"AdExParams.V_peak ({self.V_peak} mV)"
            )
        if not self.V_T < self.V_peak:
            raise ValueError(
                f"AdExParams.V_T ({self.V_T} mV) must be below AdExParams.V_peak ({self.V_peak} mV)"
            )

    @property
    def tau_m(self) -> float:
        """Membrane time constant ``C / g_L``, ms."""
        return self.C / self.g_L

    @property
    def exp_arg_max(self) -> float:
        """Cap of the exponent ``(v - V_T)/Delta_T``: its value at ``V_peak``."""
        return (self.V_peak - self.V_T) / self.Delta_T

    def check_dt(self, dt_ms: float) -> None:
        """Require ``dt <= min(0.1 * C/g_L, 0.1 * tau_w, 0.1 ms)`` (forward Euler)."""
        limits = {
            f"0.1 * AdExParams.C/AdExParams.g_L ({self.tau_m:g} ms)": 0.1 * self.tau_m,
            f"0.1 * AdExParams.tau_w ({self.tau_w:g} ms)": 0.1 * self.tau_w,
            "the forward-Euler cap for the exponential upswing": ADEX_MAX_DT_MS,
        }
        rule = min(limits, key=limits.__getitem__)
        check_dt_limit(dt_ms, limits[rule], rule)


class AdExState(NamedTuple):
    """State of :data:`ADEX`, tensors of shape ``(batch, n)``.

    v : membrane potential, mV.
    w : adaptation current, pA.
    refrac_ms : refractory time left, ms (see :func:`neuro.models._common.refractory_hold`).
    """

    v: torch.Tensor
    w: torch.Tensor
    refrac_ms: torch.Tensor


def adex_initial_state(
    params: AdExParams,
    shape: tuple[int, ...],
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> AdExState:
    """``v = E_L``, ``w = 0``, not refractory."""
    v = torch.full(shape, params.E_L, device=device, dtype=dtype)
    return AdExState(v=v, w=torch.zeros_like(v), refrac_ms=torch.zeros_like(v))


def adex_step(
    state: AdExState, i_in: torch.Tensor, params: AdExParams, dt_ms: float
) -> tuple[torch.Tensor, AdExState]:
    r"""One forward-Euler step of the AdEx neuron: integrate, threshold, reset, refractory.

    Both derivatives are evaluated at the old state (Brian2's ``euler``):

    .. math::

        v &\leftarrow v + \frac{\Delta t}{C}\Big[-g_L(v - E_L)
              + g_L\Delta_T e^{\min((v - V_T)/\Delta_T,\ (V_{peak} - V_T)/\Delta_T)} - w + I\Big],\\
        w &\leftarrow w + \frac{\Delta t}{\tau_w}\big[a(v - E_L) - w\big],

    then a spike where :math:`v \ge V_{peak}`: :math:`v \leftarrow V_{reset}`,
    :math:`w \leftarrow w + b`, refractory countdown restarts at :math:`t_{ref}`.
    The exponent is capped at its value at :math:`V_{peak}`; since :math:`v < V_{peak}` at the
    start of every step (it is reset) the cap only guards against overflow from an initial
    state above :math:`V_{peak}`. Held (refractory) neurons keep :math:`v`; :math:`w` evolves.

    Reference: Brette & Gerstner (2005), J. Neurophysiol. 94:3637.

    Parameters
    ----------
    state : :class:`AdExState`.
    i_in : total input current, pA, shape ``(batch, n)``.
    params : :class:`AdExParams`.
    dt_ms : time step, ms.
    """
    held, refrac = refractory_hold(state.refrac_ms, dt_ms)
    v, w = state.v, state.w
    exp_arg = torch.clamp((v - params.V_T) / params.Delta_T, max=params.exp_arg_max)
    dv = (
        -params.g_L * (v - params.E_L) + params.g_L * params.Delta_T * torch.exp(exp_arg) - w + i_in
    ) / params.C
    dw = (params.a * (v - params.E_L) - w) / params.tau_w
    v = torch.where(held, v, v + dt_ms * dv)
    w = w + dt_ms * dw

    spikes = (v >= params.V_peak) & ~held
    v = torch.where(spikes, torch.full_like(v, params.V_reset), v)
    w = torch.where(spikes, w + params.b, w)
    refrac = torch.where(spikes, torch.full_like(refrac, params.t_ref), refrac)
    return spikes, AdExState(v=v, w=w, refrac_ms=refrac)


def adex_brian2(params: AdExParams) -> Brian2Equations:
    """The same AdEx neuron as Brian2 equations, method ``euler`` (as :func:`adex_step`;
    Brian2's ``exponential_euler`` refuses the model: it is not linear in ``v``)."""
    import brian2 as b2  # imported here so that torch-only use does not pay for Brian2

    model = (
        "dv/dt = (-g_L*(v - E_L) + g_L*Delta_T*exp(clip((v - V_T)/Delta_T, -inf, exp_arg_max))"
        " - w + I_in)/C : volt (unless refractory)\n"
        "dw/dt = (a*(v - E_L) - w)/tau_w : amp\n"
    )
    return Brian2Equations(
        model=model,
        threshold="v >= V_peak",
        reset="v = V_reset\nw += b",
        refractory="t_ref",
        method="euler",
        namespace={
            "C": params.C * b2.pF,
            "g_L": params.g_L * b2.nS,
            "E_L": params.E_L * b2.mV,
            "V_T": params.V_T * b2.mV,
            "Delta_T": params.Delta_T * b2.mV,
            "tau_w": params.tau_w * b2.ms,
            "a": params.a * b2.nS,
            "b": params.b * b2.pA,
            "V_reset": params.V_reset * b2.mV,
            "V_peak": params.V_peak * b2.mV,
            "t_ref": params.t_ref * b2.ms,
            "exp_arg_max": params.exp_arg_max,
        },
        initial_values={"v": params.E_L * b2.mV, "w": 0 * b2.pA},
    )


ADEX = NeuronModel(
    name="adex",
    params_type=AdExParams,
    state_type=AdExState,
    initial_state=adex_initial_state,
    step=adex_step,
    brian2=adex_brian2,
)


# --------------------------------------------------------------------------- presets
# Naud et al. (2008), Table 1. Spikes are cut at V_peak = 0 mV; t_ref = 0.


def _naud(
    C: float, g_L: float, E_L: float, tau_w: float, a: float, b: float, V_reset: float
) -> AdExParams:
    return AdExParams(
        C=C,
        g_L=g_L,
        E_L=E_L,
        V_T=-50.0,
        Delta_T=2.0,
        tau_w=tau_w,
        a=a,
        b=b,
        V_reset=V_reset,
        V_peak=0.0,
        t_ref=0.0,
    )


ADEX_TONIC = _naud(200.0, 10.0, -70.0, 30.0, 2.0, 0.0, -58.0)
ADEX_ADAPTING = _naud(200.0, 12.0, -70.0, 300.0, 2.0, 60.0, -58.0)
ADEX_INITIAL_BURST = _naud(130.0, 18.0, -58.0, 150.0, 4.0, 120.0, -50.0)
ADEX_REGULAR_BURSTING = _naud(200.0, 10.0, -58.0, 120.0, 2.0, 100.0, -46.0)
ADEX_DELAYED_ACCELERATING = _naud(200.0, 12.0, -70.0, 300.0, -10.0, 0.0, -58.0)
ADEX_DELAYED_REGULAR_BURSTING = _naud(100.0, 10.0, -65.0, 90.0, -10.0, 30.0, -47.0)
ADEX_TRANSIENT = _naud(100.0, 10.0, -65.0, 90.0, 10.0, 100.0, -47.0)
ADEX_IRREGULAR = _naud(100.0, 12.0, -60.0, 130.0, -11.0, 30.0, -48.0)

#: Firing-pattern presets of Naud et al. (2008), by name.
ADEX_PRESETS: dict[str, AdExParams] = {
    "tonic": ADEX_TONIC,
    "adapting": ADEX_ADAPTING,
    "initial_burst": ADEX_INITIAL_BURST,
    "regular_bursting": ADEX_REGULAR_BURSTING,
    "delayed_accelerating": ADEX_DELAYED_ACCELERATING,
    "delayed_regular_bursting": ADEX_DELAYED_REGULAR_BURSTING,
    "transient": ADEX_TRANSIENT,
    "irregular": ADEX_IRREGULAR,
}

#: The step current (pA) Naud et al. (2008) apply to show each pattern.
ADEX_PRESET_CURRENTS_PA: dict[str, float] = {
    "tonic": 500.0,
    "adapting": 500.0,
    "initial_burst": 400.0,
    "regular_bursting": 210.0,
    "delayed_accelerating": 300.0,
    "delayed_regular_bursting": 110.0,
    "transient": 180.0,
    "irregular": 160.0,
}
