r"""Synaptic kinetics: current- or conductance-based, exponential or alpha kernel.

A :class:`Synapse` describes one *type* of synaptic input a population receives (for example
"exc" and "inh"). Every projection that names the same synapse onto the same target adds into
the same synaptic variable; each target population then sums all its synaptic variables into the
neuron's input current ``I_in`` (pA):

.. math::

    I_\mathrm{in} = I_\mathrm{ext} + \sum_{k\,\in\,\mathrm{current}} I_k
                   + \sum_{k\,\in\,\mathrm{conductance}} g_k\,(E_k - v).

Kernels (``s`` is ``I_k`` in pA or ``g_k`` in nS, ``w`` the weight of the spiking synapse):

exponential
    :math:`\tau\,\dot s = -s`, and :math:`s \leftarrow s + w` on a presynaptic spike.
    One spike gives :math:`s(t) = w\,e^{-t/\tau}`.
alpha
    :math:`\tau\,\dot s = x - s`, :math:`\tau\,\dot x = -x`, and
    :math:`x \leftarrow x + e\,w` on a spike, so one spike gives
    :math:`s(t) = w\,(t/\tau)\,e^{1 - t/\tau}`, which peaks at :math:`w` when :math:`t = \tau`.

Both are linear and are advanced *exactly* over a step ``dt`` with :func:`propagators`
(the one place decay factors are computed).

Sign convention: conductance weights (nS) must be non-negative, and whether a conductance
synapse excites or inhibits follows from its reversal potential ``E_rev_mV``. Current weights
(pA) are multiplied by the synapse's ``sign`` (+1 excitatory, -1 inhibitory), so weight
initialisers always produce magnitudes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Synapse",
    "current_exp",
    "current_alpha",
    "conductance_exp",
    "conductance_alpha",
    "propagators",
]


@dataclass(frozen=True)
class Synapse:
    """One type of synaptic input of a population.

    Parameters
    ----------
    name
        Identifier (letters, digits, underscore), e.g. ``"exc"``. The synaptic state variable on
        the target is ``g_<name>`` (nS) for conductance synapses and ``I_<name>`` (pA) for
        current synapses; an alpha kernel adds the auxiliary ``x_<name>``.
    kind
        ``"current"`` (weights in pA) or ``"conductance"`` (weights in nS).
    kernel
        ``"exponential"`` or ``"alpha"`` (see the module docstring).
    tau_ms
        Decay time constant (ms), positive.
    E_rev_mV
        Reversal potential (mV); required for conductance synapses, ``None`` for current ones.
    sign
        +1 (excitatory) or -1 (inhibitory) factor applied to current-based weights. Must be +1
        for conductance synapses (use ``E_rev_mV`` instead).
    """

    name: str
    kind: Literal["current", "conductance"] = "current"
    kernel: Literal["exponential", "alpha"] = "exponential"
    tau_ms: float = 5.0
    E_rev_mV: float | None = None
    sign: int = 1

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name.startswith("_"):
            raise ValueError(
                f"Synapse name {self.name!r} must be an identifier not starting with '_' "
                "(it names the variable g_<name> / I_<name>)."
            )
        if self.kind not in ("current", "conductance"):
            raise ValueError(
                f"Synapse {self.name!r}: kind must be 'current' or 'conductance', "
                f"got {self.kind!r}."
            )
        if self.kernel not in ("exponential", "alpha"):
            raise ValueError(
                f"Synapse {self.name!r}: kernel must be 'exponential' or 'alpha', "
                f"got {self.kernel!r}."
            )
        if not (math.isfinite(self.tau_ms) and self.tau_ms > 0):
            raise ValueError(
                f"Synapse {self.name!r}: tau_ms must be a positive number of ms, "
                f"got {self.tau_ms!r}."
            )
        if self.kind == "conductance":
            if self.E_rev_mV is None or not math.isfinite(self.E_rev_mV):
                raise ValueError(
                    f"Synapse {self.name!r}: a conductance synapse needs a finite reversal "
                    "potential E_rev_mV (e.g. 0.0 for excitation, -80.0 for inhibition)."
                )
            if self.sign != 1:
                raise ValueError(
                    f"Synapse {self.name!r}: conductance synapses take sign=+1; inhibition "
                    "follows from E_rev_mV below the membrane potential."
                )
        else:
            if self.E_rev_mV is not None:
                raise ValueError(
                    f"Synapse {self.name!r}: a current synapse has no reversal potential; "
                    "leave E_rev_mV=None or use kind='conductance'."
                )
            if self.sign not in (1, -1):
                raise ValueError(
                    f"Synapse {self.name!r}: sign must be +1 or -1, got {self.sign!r}."
                )

    @property
    def variable(self) -> str:
        """Name of the synaptic state variable on the target (``g_<name>`` or ``I_<name>``)."""
        return ("g_" if self.kind == "conductance" else "I_") + self.name

    @property
    def aux_variable(self) -> str | None:
        """Name of the alpha kernel's auxiliary variable (``x_<name>``), else ``None``."""
        return "x_" + self.name if self.kernel == "alpha" else None

    @property
    def unit(self) -> str:
        """Unit of the synaptic variable and of the weights: ``"nS"`` or ``"pA"``."""
        return "nS" if self.kind == "conductance" else "pA"

    @property
    def jump_scale(self) -> float:
        """Factor between a weight and the jump of the kernel's driven variable on a spike.

        1 for the exponential kernel (``s += w``), ``e`` for the alpha kernel (``x += e w``),
        so that the alpha response peaks at ``w``.
        """
        return math.e if self.kernel == "alpha" else 1.0


def current_exp(name: str, tau_ms: float, *, inhibitory: bool = False) -> Synapse:
    """Current-based synapse with an exponential kernel (weights in pA)."""
    return Synapse(name, "current", "exponential", tau_ms, None, -1 if inhibitory else 1)


def current_alpha(name: str, tau_ms: float, *, inhibitory: bool = False) -> Synapse:
    """Current-based synapse with an alpha kernel (weights in pA, peak current = weight)."""
    return Synapse(name, "current", "alpha", tau_ms, None, -1 if inhibitory else 1)


def conductance_exp(name: str, tau_ms: float, E_rev_mV: float) -> Synapse:
    """Conductance-based synapse with an exponential kernel (weights in nS)."""
    return Synapse(name, "conductance", "exponential", tau_ms, E_rev_mV)


def conductance_alpha(name: str, tau_ms: float, E_rev_mV: float) -> Synapse:
    """Conductance-based synapse with an alpha kernel (weights in nS, peak = weight)."""
    return Synapse(name, "conductance", "alpha", tau_ms, E_rev_mV)


def propagators(tau_ms: float, dt_ms: float) -> tuple[float, float]:
    r"""Exact one-step propagators of the synaptic kernels.

    With :math:`d = e^{-\Delta t/\tau}` and :math:`h = \Delta t/\tau`, the exponential kernel
    advances as :math:`s_{n+1} = d\,s_n`, and the alpha kernel as

    .. math::

        s_{n+1} = d\,(s_n + h\,x_n), \qquad x_{n+1} = d\,x_n,

    which is the exact solution of :math:`\tau\dot s = x - s,\ \tau\dot x = -x`.

    Returns
    -------
    (d, h) : decay factor and ``dt / tau``.
    """
    h = dt_ms / tau_ms
    return math.exp(-h), h
