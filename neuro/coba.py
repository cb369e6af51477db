"""The COBA benchmark network (Vogels & Abbott 2005; Brette et al. 2007, benchmark 1).

Two variants, both built from :mod:`neuro` records (a LIF population ``"exc"`` of ``0.8 n``
and ``"inh"`` of ``0.2 n`` neurons, exponential conductance synapses, fixed connection
probability ``p`` from every neuron to every neuron, autapses allowed as in Brian2's
``connect(p=...)``, no delays):

``variant="brian2"`` (default)
    The "COBA" script of the Brian2 benchmark suite (used for Brian2, Brian2GeNN, Brian2CUDA,
    ANNarchy and BrainPy comparisons): Brian2 equations

    .. code-block:: text

        dv/dt  = (ge*(Erev_exc-v) + gi*(Erev_inh-v) - (v-El) + I)*(1./taum)
               : volt (unless refractory)
        dge/dt = -ge/taue : 1
        dgi/dt = -gi/taui : 1

    with ``taum = 20 ms``, ``El = Vr = -60 mV``, ``Vt = -50 mV``, refractory ``5 ms``,
    ``Erev_exc = 0 mV``, ``Erev_inh = -80 mV``, ``taue = 5 ms``, ``taui = 10 ms``,
    ``I = 20 mV`` (a constant drive), ``we = 0.6``, ``wi = 6.7`` (conductances in units of
    the leak conductance), ``P.v = (randn()*5 - 55) mV``, ``ge = gi = 0``.
    In our units with ``C_m = 200 pF``, ``g_L = C_m / tau_m = 10 nS``: a 200 pA current,
    weights 6 nS and 67 nS.
``variant="brette2007"``
    The original self-sustained benchmark (Brian's ``examples/COBA.py``, R. Brette 2007): no
    external drive; initial ``v ~ N(-65, 5) mV``, ``g_exc ~ N(40, 15) nS``,
    ``g_inh ~ N(200, 120) nS`` (the ``randn()*1.5 + 4`` and ``randn()*12 + 20`` of the script,
    in units of ``g_L``).

Scaling: as in those benchmarks, ``n`` may grow (16,000; 64,000) with ``p`` and the weights
fixed, so each neuron receives ``p n`` synapses and the firing rate falls with ``n``.
``scale_weights=True`` instead multiplies the weights by ``4000 / n`` (constant mean input).
The time step of both scripts is 0.1 ms; the Brian2 script integrates with ``euler`` while
our engines use the exact/exponential update of :mod:`neuro.models.lif` and, by default, the
exponential conductance update of :class:`~neuro.network.Network` (``conductance_update``).
That matters at large ``n``: at ``n = 64,000`` the synchronous first step (16% of the neurons
start above threshold) gives each neuron ~3,700 nS, i.e. ``dt g / C`` ~ 1.9, and the explicit
(Euler) conductance update -- Brian2's ``euler`` as in the script, or
``conductance_update="explicit"`` here -- runs away to every neuron firing at 1/t_ref = 200 Hz
(checked with Brian2 2.9 C++ standalone), whereas Brian2's ``exponential_euler`` and our default
stay at a few Hz. Measured here (our engines, default update): about 24 Hz at 4,000 (torch
23.9 Hz, Brian2 24.7 Hz, mean of 3 seeds over 500 ms), 3.8 Hz at 16,000 (1 s), 1.6 Hz at 64,000
(first 300 ms, initial burst included).
"""

from __future__ import annotations

from collections.abc import Sequence

from neuro.connectivity import FixedProbability, NormalClipped
from neuro.models.lif import LIF, LIFParams
from neuro.network import (
    CurrentInput,
    Network,
    Population,
    PopulationRateMonitor,
    Projection,
    SpikeMonitor,
)
from neuro.synapses import conductance_exp

__all__ = ["coba_network", "COBA_PARAMS"]

#: LIF parameters of the COBA benchmark (pF, ms, mV).
COBA_PARAMS = LIFParams(C_m=200.0, tau_m=20.0, E_L=-60.0, V_th=-50.0, V_reset=-60.0, t_ref=5.0)

_EXC = conductance_exp("exc", tau_ms=5.0, E_rev_mV=0.0)
_INH = conductance_exp("inh", tau_ms=10.0, E_rev_mV=-80.0)


def coba_network(
    n: int = 4000,
    *,
    p: float = 0.02,
    dt_ms: float = 0.1,
    seed: int = 0,
    variant: str = "brian2",
    w_exc_nS: float = 6.0,
    w_inh_nS: float = 67.0,
    drive_pA: float | None = None,
    scale_weights: bool = False,
    conductance_update: str = "exponential",
    monitors: Sequence | None = None,
) -> Network:
    """Build the COBA network (see the module docstring for the two variants).

    Parameters
    ----------
    n : total neurons (80% ``"exc"``, 20% ``"inh"``).
    p : connection probability between any two neurons.
    dt_ms : time step (ms).
    seed : connectome seed.
    variant : ``"brian2"`` (driven by a constant current) or ``"brette2007"`` (self-sustained).
    w_exc_nS, w_inh_nS : conductance jumps (nS): 6 and 67 (0.6 and 6.7 times ``g_L``).
    drive_pA : constant current into every neuron; default 200 pA (``"brian2"``) or 0.
    scale_weights : multiply the weights by ``4000 / n``.
    conductance_update : see :class:`~neuro.network.Network` (``"explicit"`` mimics ``euler``).
    monitors : default: a :class:`SpikeMonitor` and a :class:`PopulationRateMonitor` on both
        populations.

    Returns
    -------
    Network
    """
    if variant not in ("brian2", "brette2007"):
        raise ValueError(
            f"coba_network: variant must be 'brian2' or 'brette2007', got {variant!r}."
        )
    n_exc = int(round(0.8 * n))
    n_inh = n - n_exc
    if n_exc < 1 or n_inh < 1:
        raise ValueError(f"coba_network: n={n} is too small for an 80/20 split.")
    scale = 4000.0 / n if scale_weights else 1.0
    if variant == "brian2":
        initial = {"v": NormalClipped(-55.0, 5.0, low=-float("inf"))}
        drive = 200.0 if drive_pA is None else drive_pA
    else:
        initial = {
            "v": NormalClipped(-65.0, 5.0, low=-float("inf")),
            "g_exc": NormalClipped(40.0, 15.0, low=-float("inf")),
            "g_inh": NormalClipped(200.0, 120.0, low=-float("inf")),
        }
        drive = 0.0 if drive_pA is None else drive_pA
    pops = [Population("exc", n_exc, LIF, COBA_PARAMS, initial),
            Population("inh", n_inh, LIF, COBA_PARAMS, initial)]
    projections = []
    for src, syn, w in (("exc", _EXC, w_exc_nS), ("inh", _INH, w_inh_nS)):
        for tgt in ("exc", "inh"):
            projections.append(Projection(src, tgt, syn, FixedProbability(p), w * scale))
    inputs = [CurrentInput(pop.name, drive) for pop in pops] if drive else []
    if monitors is None:
        monitors = [SpikeMonitor("exc"), SpikeMonitor("inh"),
                    PopulationRateMonitor("exc"), PopulationRateMonitor("inh")]
    return Network(populations=pops, inputs=inputs, projections=projections,
                   monitors=list(monitors), dt_ms=dt_ms, seed=seed,
                   conductance_update=conductance_update)
