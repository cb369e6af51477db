r"""Hodgkin–Huxley conductance-based neurons, exponential Euler in both engines.

.. math::

    C_m \frac{dv}{dt} &= g_L (E_L - v) + \bar g_{Na} m^3 h (E_{Na} - v)
                         + \bar g_K n^4 (E_K - v) + I_{in}, \\
    \frac{dx}{dt} &= \alpha_x(v)(1 - x) - \beta_x(v)\, x, \qquad x \in \{m, h, n\}.

Two sets of kinetics share the equations, the state and the step:

* :class:`HHParams` (:data:`HODGKIN_HUXLEY`): the squid giant axon of Hodgkin & Huxley (1952),
  J. Physiol. 117:500, in the modern convention shifted so that rest is at -65 mV
  (e.g. Gerstner et al., *Neuronal Dynamics*, Table 2.1; Dayan & Abbott ch. 5.6).
* :class:`TraubMilesParams` (:data:`TRAUB_MILES`): the Traub & Miles (1991) kinetics as
  simplified for benchmark 3 (COBAHH) of Brette et al. (2007), J. Comput. Neurosci. 23:349;
  Brian2's ``examples/COBAHH.py``.

Conductance densities are turned into absolute values for a patch of 20 000 µm²
(= 2e-4 cm², COBAHH's area): 1 µF/cm² → 200 pF and 1 mS/cm² → 200 nS.

Spikes: there is no reset, the dynamics make the spike. A spike is the upward crossing of
``V_spike``: the neuron spikes in a step where :math:`v_{old} \le V_{spike} < v_{new}`. Brian2
expresses it with ``threshold='v > V_spike'`` and ``refractory='v > V_spike'`` (a neuron
becomes able to spike again only once it has been at or below ``V_spike`` at the start of a
step). There is no refractory period or reset mode beyond this: refractoriness is intrinsic
(Na inactivation, K activation). Both definitions agree as long as the initial ``v`` is below
``V_spike``.

Removable singularities: rates of the form :math:`k\,u/(1 - e^{-u})` are written
:math:`k/\mathrm{exprel}(-u)` in both engines.
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
    decay_factor,
    exprel,
    relax,
)
from neuro.models.base import Brian2Equations, NeuronModel

__all__ = [
    "HHParams",
    "TraubMilesParams",
    "HHState",
    "hh_initial_state",
    "hh_step",
    "hh_brian2",
    "HODGKIN_HUXLEY",
    "TRAUB_MILES",
]

Rates = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _check_common(p: HHParams | TraubMilesParams) -> None:
    check_finite(p)
    check_positive(p, "C_m", "g_L")
    check_non_negative(p, "g_Na", "g_K")
    if not p.V_init < p.V_spike:
        raise ValueError(
            f"{type(p).__name__}.V_init ({p.V_init} mV) must be below "
            f"{type(p).__name__}.V_spike ({p.V_spike} mV), or the first spike is missed"
        )


@dataclass(frozen=True)
class HHParams:
    """Hodgkin & Huxley (1952) squid axon, shifted to rest at -65 mV, for 20 000 µm².

    Attributes
    ----------
    C_m : membrane capacitance, pF (1 µF/cm²).
    g_Na, g_K, g_L : maximal sodium, potassium and leak conductances, nS
        (120, 36 and 0.3 mS/cm²).
    E_Na, E_K, E_L : reversal potentials, mV.
    V_spike : spike detection level, mV (upward crossing).
    V_init : initial membrane potential, mV; the gates start at their steady state there.

    Rates (1/ms, ``v`` in mV)::

        alpha_m = 1 / exprel(-(v + 40)/10)     beta_m = 4 exp(-(v + 65)/18)
        alpha_h = 0.07 exp(-(v + 65)/20)       beta_h = 1 / (1 + exp(-(v + 35)/10))
        alpha_n = 0.1 / exprel(-(v + 55)/10)   beta_n = 0.125 exp(-(v + 65)/80)
    """

    C_m: float = 200.0
    g_Na: float = 24000.0
    g_K: float = 7200.0
    g_L: float = 60.0
    E_Na: float = 50.0
    E_K: float = -77.0
    E_L: float = -54.387
    V_spike: float = -20.0
    V_init: float = -65.0

    #: Largest allowed step, ms (see :meth:`check_dt`).
    max_dt_ms = 0.05

    def __post_init__(self) -> None:
        _check_common(self)

    def check_dt(self, dt_ms: float) -> None:
        """Require ``dt <= 0.05 ms``.

        Exponential Euler is stable for any step, but its accuracy is set by the spike: the
        fastest gate (``m``) has a time constant down to ~0.04 ms and the upstroke lasts
        ~0.5 ms. The error is first order: at 10 µA/cm² (2 nA here) the firing rate is low by
        ~2.3 % at 0.05 ms, ~1.1 % at 0.025 ms and ~0.4 % at 0.01 ms (against 0.002 ms).
        """
        check_dt_limit(dt_ms, self.max_dt_ms, "the HHParams accuracy limit")

    def rates(self, v: torch.Tensor) -> Rates:
        """``(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n)`` at ``v`` (mV), 1/ms."""
        alpha_m = 1.0 / exprel(-(v + 40.0) / 10.0)
        beta_m = 4.0 * torch.exp(-(v + 65.0) / 18.0)
        alpha_h = 0.07 * torch.exp(-(v + 65.0) / 20.0)
        beta_h = 1.0 / (1.0 + torch.exp(-(v + 35.0) / 10.0))
        alpha_n = 0.1 / exprel(-(v + 55.0) / 10.0)
        beta_n = 0.125 * torch.exp(-(v + 65.0) / 80.0)
        return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n

    def brian2_rates(self) -> str:
        """The rate functions as Brian2 sub-expressions."""
        return (
            "alpha_m = 1/exprel(-(v + 40*mV)/(10*mV))/ms : Hz\n"
            "beta_m = 4*exp(-(v + 65*mV)/(18*mV))/ms : Hz\n"
            "alpha_h = 0.07*exp(-(v + 65*mV)/(20*mV))/ms : Hz\n"
            "beta_h = 1/(1 + exp(-(v + 35*mV)/(10*mV)))/ms : Hz\n"
            "alpha_n = 0.1/exprel(-(v + 55*mV)/(10*mV))/ms : Hz\n"
            "beta_n = 0.125*exp(-(v + 65*mV)/(80*mV))/ms : Hz\n"
        )


@dataclass(frozen=True)
class TraubMilesParams:
    """Traub–Miles kinetics of the COBAHH benchmark (Brette et al. 2007), for 20 000 µm².

    Attributes
    ----------
    C_m : membrane capacitance, pF (1 µF/cm²).
    g_Na, g_K, g_L : maximal sodium, delayed-rectifier potassium and leak conductances, nS
        (100, 30 and 0.05 mS/cm²).
    E_Na, E_K, E_L : reversal potentials, mV.
    V_T : shift of the rate functions, mV (-63 mV in the benchmark).
    V_spike : spike detection level, mV (upward crossing; -20 mV in the benchmark).
    V_init : initial membrane potential, mV; the gates start at their steady state there.

    Without input this model has no resting state: the steady-state current is inward at every
    potential (at least ~32 pA, near -61 mV), so it fires spontaneously, at ~13.5 Hz (a
    holding current of about -40 pA silences it). The COBAHH network keeps it in check with
    inhibition.

    Rates (1/ms, ``v`` in mV)::

        alpha_m = 1.28 / exprel((13 - v + V_T)/4)   beta_m = 1.4 / exprel((v - V_T - 40)/5)
        alpha_h = 0.128 exp((17 - v + V_T)/18)      beta_h = 4 / (1 + exp((40 - v + V_T)/5))
        alpha_n = 0.16 / exprel((15 - v + V_T)/5)   beta_n = 0.5 exp((10 - v + V_T)/40)
    """

    C_m: float = 200.0
    g_Na: float = 20000.0
    g_K: float = 6000.0
    g_L: float = 10.0
    E_Na: float = 50.0
    E_K: float = -90.0
    E_L: float = -60.0
    V_T: float = -63.0
    V_spike: float = -20.0
    V_init: float = -60.0

    #: Largest allowed step, ms (see :meth:`check_dt`).
    max_dt_ms = 0.1

    def __post_init__(self) -> None:
        _check_common(self)

    def check_dt(self, dt_ms: float) -> None:
        """Require ``dt <= 0.1 ms``: the step of the COBAHH benchmark, which Brette et al.
        (2007) and Brian2's example integrate with exponential Euler.

        The error is first order and larger than for :class:`HHParams` (the fastest gate has a
        time constant down to ~0.03 ms): at 200 pA the firing rate is low by ~6.6 % at 0.1 ms,
        ~3.6 % at 0.05 ms and ~0.7 % at 0.01 ms (against 0.002 ms). Use 0.05 ms or less when
        single-neuron accuracy matters more than matching the benchmark.
        """
        check_dt_limit(dt_ms, self.max_dt_ms, "the TraubMilesParams accuracy limit")

    def rates(self, v: torch.Tensor) -> Rates:
        """``(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n)`` at ``v`` (mV), 1/ms."""
        u = v - self.V_T
        alpha_m = 1.28 / exprel((13.0 - u) / 4.0)
        beta_m = 1.4 / exprel((u - 40.0) / 5.0)
        alpha_h = 0.128 * torch.exp((17.0 - u) / 18.0)
        beta_h = 4.0 / (1.0 + torch.exp((40.0 - u) / 5.0))
        alpha_n = 0.16 / exprel((15.0 - u) / 5.0)
        beta_n = 0.5 * torch.exp((10.0 - u) / 40.0)
        return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n

    def brian2_rates(self) -> str:
        """The rate functions as Brian2 sub-expressions (``V_T`` from the namespace)."""
        return (
            "alpha_m = 1.28/exprel((13*mV - v + V_T)/(4*mV))/ms : Hz\n"
            "beta_m = 1.4/exprel((v - V_T - 40*mV)/(5*mV))/ms : Hz\n"
            "alpha_h = 0.128*exp((17*mV - v + V_T)/(18*mV))/ms : Hz\n"
            "beta_h = 4/(1 + exp((40*mV - v + V_T)/(5*mV)))/ms : Hz\n"
            "alpha_n = 0.16/exprel((15*mV - v + V_T)/(5*mV))/ms : Hz\n"
            "beta_n = 0.5*exp((10*mV - v + V_T)/(40*mV))/ms : Hz\n"
        )


class HHState(NamedTuple):
    """State of :data:`HODGKIN_HUXLEY` and :data:`TRAUB_MILES`, tensors ``(batch, n)``.

    v : membrane potential, mV.
    m, h, n : gating variables (sodium activation and inactivation, potassium activation),
        dimensionless in [0, 1].
    """

    v: torch.Tensor
    m: torch.Tensor
    h: torch.Tensor
    n: torch.Tensor


def _steady_gates(
    params: HHParams | TraubMilesParams, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n = params.rates(v)
    return (
        alpha_m / (alpha_m + beta_m),
        alpha_h / (alpha_h + beta_h),
        alpha_n / (alpha_n + beta_n),
    )


def hh_initial_state(
    params: HHParams | TraubMilesParams,
    shape: tuple[int, ...],
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> HHState:
    """``v = V_init`` and every gate at its steady state ``alpha / (alpha + beta)`` there."""
    v = torch.full(shape, params.V_init, device=device, dtype=dtype)
    m, h, n = _steady_gates(params, v)
    return HHState(v=v, m=m, h=h, n=n)


def hh_step(
    state: HHState, i_in: torch.Tensor, params: HHParams | TraubMilesParams, dt_ms: float
) -> tuple[torch.Tensor, HHState]:
    r"""One exponential-Euler step of a Hodgkin–Huxley neuron, then spike detection.

    Every variable is advanced with the others frozen at their old values (Brian2's
    ``exponential_euler``), which is exact for the frozen system because each equation is
    linear in its own variable:

    .. math::

        x &\leftarrow x_\infty + (x - x_\infty)\, e^{-\Delta t(\alpha_x + \beta_x)},
            \quad x_\infty = \frac{\alpha_x}{\alpha_x + \beta_x}, \quad x \in \{m, h, n\}, \\
        v &\leftarrow v_\infty + (v - v_\infty)\, e^{-\Delta t\, g/C_m},
            \quad g = g_L + \bar g_{Na} m^3 h + \bar g_K n^4, \\
        v_\infty &= \big(g_L E_L + \bar g_{Na} m^3 h E_{Na} + \bar g_K n^4 E_K + I\big)/g,

    with the rates :math:`\alpha_x, \beta_x` at the old :math:`v`. A spike where
    :math:`v_{old} \le V_{spike} < v_{new}`; no reset.

    References: Hodgkin & Huxley (1952), J. Physiol. 117:500; Traub & Miles (1991);
    Brette et al. (2007), J. Comput. Neurosci. 23:349 (benchmark 3).

    Parameters
    ----------
    state : :class:`HHState`.
    i_in : total input current, pA, shape ``(batch, n)``.
    params : :class:`HHParams` or :class:`TraubMilesParams`.
    dt_ms : time step, ms.
    """
    v, m, h, n = state
    alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n = params.rates(v)

    g_na = params.g_Na * (m * m * m) * h
    g_k = params.g_K * (n * n) * (n * n)
    g_tot = params.g_L + g_na + g_k
    v_inf = (params.g_L * params.E_L + g_na * params.E_Na + g_k * params.E_K + i_in) / g_tot
    v_new = relax(v, v_inf, decay_factor(dt_ms, params.C_m / g_tot))

    def gate(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        rate = alpha + beta
        return relax(x, alpha / rate, decay_factor(dt_ms, 1.0 / rate))

    m = gate(m, alpha_m, beta_m)
    h = gate(h, alpha_h, beta_h)
    n = gate(n, alpha_n, beta_n)

    spikes = (v <= params.V_spike) & (v_new > params.V_spike)
    return spikes, HHState(v=v_new, m=m, h=h, n=n)


def hh_brian2(params: HHParams | TraubMilesParams) -> Brian2Equations:
    """The same neuron as Brian2 equations, method ``exponential_euler`` (as :func:`hh_step`).

    ``refractory='v > V_spike'`` makes Brian2 spike only on an upward crossing; no reset.
    """
    import brian2 as b2  # imported here so that torch-only use does not pay for Brian2

    model = (
        "dv/dt = (g_L*(E_L - v) + g_Na*m**3*h*(E_Na - v) + g_K*n**4*(E_K - v) + I_in)/C_m"
        " : volt\n"
        "dm/dt = alpha_m*(1 - m) - beta_m*m : 1\n"
        "dh/dt = alpha_h*(1 - h) - beta_h*h : 1\n"
        "dn/dt = alpha_n*(1 - n) - beta_n*n : 1\n"
    ) + params.brian2_rates()
    namespace = {
        "C_m": params.C_m * b2.pF,
        "g_Na": params.g_Na * b2.nS,
        "g_K": params.g_K * b2.nS,
        "g_L": params.g_L * b2.nS,
        "E_Na": params.E_Na * b2.mV,
        "E_K": params.E_K * b2.mV,
        "E_L": params.E_L * b2.mV,
        "V_spike": params.V_spike * b2.mV,
    }
    if isinstance(params, TraubMilesParams):
        namespace["V_T"] = params.V_T * b2.mV
    v0 = torch.tensor(params.V_init, dtype=torch.float64)
    m0, h0, n0 = (float(x) for x in _steady_gates(params, v0))
    return Brian2Equations(
        model=model,
        threshold="v > V_spike",
        reset="",
        refractory="v > V_spike",
        method="exponential_euler",
        namespace=namespace,
        initial_values={"v": params.V_init * b2.mV, "m": m0, "h": h0, "n": n0},
    )


HODGKIN_HUXLEY = NeuronModel(
    name="hodgkin_huxley",
    params_type=HHParams,
    state_type=HHState,
    initial_state=hh_initial_state,
    step=hh_step,
    brian2=hh_brian2,
)

TRAUB_MILES = NeuronModel(
    name="traub_miles",
    params_type=TraubMilesParams,
    state_type=HHState,
    initial_state=hh_initial_state,
    step=hh_step,
    brian2=hh_brian2,
)
