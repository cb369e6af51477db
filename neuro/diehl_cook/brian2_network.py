r"""The Diehl & Cook (2015) network in Brian2: the torch discretisation as one explicit
``brian2.Network`` that presents a whole sequence of examples in a single ``run()``.

Equations and constants are those of :class:`~neuro.diehl_cook.params.DiehlCookParams` (with
units: mV, ms, Hz; conductances and weights dimensionless), and every step follows the order that
:mod:`neuro.diehl_cook.torch_network` fixes, which is Brian2's default schedule
``groups -> thresholds -> synapses -> resets``:

* ``exc`` and ``inh`` ``NeuronGroup`` (``method="exponential_euler"``, which is exact for the
  conductance decays and for :math:`v` with the conductances frozen over the step):

  .. math::

      \tau_m \frac{dv}{dt} = (E_{rest} - v) + g_e (E_{exc} - v) + g_i (E_{inh} - v)
      \quad (\text{unless refractory}),\qquad
      \tau_{g_e}\frac{dg_e}{dt} = -g_e,\qquad \tau_{g_i}\frac{dg_i}{dt} = -g_i,

  excitatory threshold ``v > V_th - offset + theta`` (Brian2 adds ``and not_refractory``),
  reset ``v = V_reset`` and, when learning, ``theta += theta_plus``;
  :math:`\tau_\theta\,d\theta/dt = -\theta` when learning (``theta`` is constant otherwise);
* ``Synapses`` input -> exc (all to all, weight ``w``), without delays. Learning:

  .. code-block:: text

      on_pre:  ge_post += w; xpre = 1; w = clip(w - nu_pre*xpost1, 0, w_max)
      on_post: post2before = xpost2; w = clip(w + nu_post*xpre*post2before, 0, w_max);
               xpost1 = 1; xpost2 = 1

  with event-driven traces ``xpre``, ``xpost1``, ``xpost2`` (the original code's ``pre``,
  ``post1``, ``post2``, renamed because ``Synapses.pre`` is the pathway: assigning
  ``synapses.pre = values`` silently replaces the pathway attribute instead of setting the
  trace). Brian2 runs the ``pre`` pathway (``order=-1``) before the ``post`` one
  (``order=+1``), as the torch step does. Without learning ``on_pre`` is ``ge_post += w``
  alone;
* ``Synapses`` exc -> inh one to one (``ge_post += w_exc_inh``) and inh -> exc all but the
  partner (``gi_post += w_inh_exc``).

A sequence of presentations in one run
--------------------------------------
C++ standalone compiles one program and cannot call back into Python between examples, so the
loop that :func:`~neuro.diehl_cook.torch_network.present_until_responsive` writes in Python
runs here as code of the network itself, at every presentation boundary :math:`t = pT`
(``run_regularly`` operations with ``dt = t_present``, in the ``groups`` slot before the state
update; each is a no-op at :math:`t = 0`):

1. the **controller** (a one-neuron group on a ``t_present`` clock; images only) reads the
   presentation's excitatory spike count (a summed variable, evaluated only on its clock) and
   either moves on to the next example at the starting intensity or, below ``min_spikes``,
   shows the same example again with the intensity raised by ``intensity_step`` (at most
   ``max_retries`` times), exactly as the torch loop does;
2. **the rest**, in closed form as in :func:`~neuro.diehl_cook.torch_network.rest`:
   :math:`v \leftarrow E_{rest} + (v - E_{rest})e^{-t_{rest}/\tau_m}`, conductances and (when
   learning) traces and :math:`\theta` times :math:`e^{-t_{rest}/\tau}`, refractoriness cleared
   (``lastspike`` set to -10 000 s); Brian2's clock does not advance over the rest;
3. (learning) **weight normalisation**, :math:`w_{ij} \leftarrow w_{ij}\,S/\sum_k w_{kj}` (columns
   that sum to 0 are left as they are). The column sums are kept up to date incrementally
   (every ``w`` change adds its difference to the excitatory neuron's ``wsum``), because a
   Brian2 summed variable would re-add all ``n_input x n_exc`` weights in every step; the
   running sum is reset to ``S`` after each normalisation, so its rounding never accumulates
   over more than one presentation.

The input is either Poisson spikes from images (a ``NeuronGroup`` spiking where
``rand() < r*dt``, as Brian2's ``PoissonGroup`` does, with the rate
:math:`r = x\,r_{max}\,\kappa/\kappa_0` looked up in a ``TimedArray`` by the controller's
current example and intensity, linked variables), or explicit spike trains (a
``SpikeGeneratorGroup`` with the trains laid end to end, one presentation per example, no
intensity loop: the counterpart of calling :func:`~neuro.diehl_cook.torch_network.present`
with spikes, then ``rest`` and the normalisation). The run covers ``n_presentations``
presentations; the boundary work after the last one (its rest and normalisation) is done in
numpy on the values read back, so the returned weights, :math:`\theta` and state are those
after the last rest, as in the torch loop.

Differences from the torch loop
-------------------------------
The dynamics, rest, normalisation and intensity loop are the same; what differs is
bookkeeping: the number of presentations is fixed in advance (``n_presentations``; with
retries fewer examples may be finished, :attr:`Brian2DiehlCookRun.examples_done`), Poisson
spikes come from Brian2's random numbers (same statistics as torch, not the same spikes), the
column sums used for normalisation carry the rounding of the incremental updates within one
presentation (relative ~1e-15), and one copy of the network is simulated (torch's batch of
copies sharing weights has no Brian2 counterpart).

Targets: ``"cython"`` or ``"numpy"`` runtime code generation, or ``"cpp_standalone"`` (built
with ``build_on_run=False`` then ``device.build``; the device is reset to runtime afterwards,
so later calls work). Brian2 computes in float64.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from neuro.diehl_cook.params import DiehlCookParams
from neuro.diehl_cook.torch_network import START_INTENSITY
from neuro.engines.brian2_engine import brian2_target
from neuro.models._common import STEP_TOLERANCE

__all__ = ["Brian2DiehlCookRun", "run_diehl_cook_brian2"]

#: ``lastspike`` after the rest: long enough ago that no neuron is refractory (Brian2's own
#: initial value).
_NEVER_S = -1e4

_STATE_FIELDS = ("v_exc", "v_inh", "ge_exc", "gi_exc", "ge_inh", "gi_inh")


class Brian2DiehlCookRun(NamedTuple):
    """What :func:`run_diehl_cook_brian2` returns (numpy arrays, float64 unless stated).

    Attributes
    ----------
    counts : excitatory spike counts of every presentation ``(P, n_exc)``, int64.
    example : index of the example shown in each presentation ``(P,)``, int64.
    intensity : input intensity :math:`\\kappa` of each presentation ``(P,)``.
    weights : input -> excitatory weights ``(n_input, n_exc)`` after the last presentation, its
        rest and (learning) normalisation.
    theta : threshold adaptation ``(n_exc,)``, mV, after the last rest.
    state : ``v_exc``, ``v_inh`` (mV), ``ge_exc``, ``gi_exc``, ``ge_inh``, ``gi_inh`` ``(n_exc,)``
        after the last rest.
    examples_done : how many examples were finished (shown until responsive, or at the
        ``max_retries`` limit) within the ``P`` presentations.
    timings : seconds: ``setup_s`` (building the Brian2 objects), ``run_s`` (the simulation
        loop: ``Network.run`` on the runtime targets, Brian2's own main-loop timer for C++
        standalone), ``compile_s`` (runtime: a ``run`` of no steps before, which generates the
        code and compiles it or loads it from the Cython cache; standalone: code generation,
        compilation and the program's start-up and file I/O), ``total_s`` (the whole call).
    engine : ``"brian2:<target>"``.
    """

    counts: np.ndarray
    example: np.ndarray
    intensity: np.ndarray
    weights: np.ndarray
    theta: np.ndarray
    state: dict[str, np.ndarray]
    examples_done: int
    timings: dict[str, float]
    engine: str

    def example_counts(self) -> np.ndarray:
        """Counts of the last (accepted) presentation of each finished example
        ``(examples_done, n_exc)``, the torch loop's ``counts``."""
        out = np.zeros((self.examples_done, self.counts.shape[1]), dtype=np.int64)
        for p, k in enumerate(self.example):
            if k < self.examples_done:
                out[k] = self.counts[p]
        return out


# --------------------------------------------------------------------------- device handling


# --------------------------------------------------------------------------- inputs


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_inputs(params: DiehlCookParams, images: Any, spikes: Any
                  ) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    if (images is None) == (spikes is None):
        raise ValueError("run_diehl_cook_brian2 needs exactly one of images= (Poisson input "
                         "with the intensity loop) or spikes= (explicit input spike trains).")
    if images is not None:
        img = _as_numpy(images).astype(np.float64)
        if img.ndim < 2 or math.prod(img.shape[1:]) != params.n_input:
            raise ValueError(f"images must have shape (N, {params.n_input}) or (N, ...) with "
                             f"{params.n_input} values each, got {img.shape}")
        img = img.reshape(img.shape[0], params.n_input)
        if not np.isfinite(img).all() or (img.size and (img.min() < 0 or img.max() > 1)):
            raise ValueError("images must be finite and lie in [0, 1] (divide 8-bit images "
                             "by 255)")
        return img, None, img.shape[0]
    spk = _as_numpy(spikes)
    steps = params.present_steps
    if spk.dtype != np.bool_ or spk.ndim != 3 or spk.shape[1:] != (steps, params.n_input):
        raise ValueError(f"spikes must be bool (N, present_steps, n_input) = (N, {steps}, "
                         f"{params.n_input}), got {spk.dtype} {spk.shape}")
    return None, spk, spk.shape[0]


def _initial_state(params: DiehlCookParams, state: Any) -> dict[str, np.ndarray]:
    """State at the start as numpy arrays (mV, ms): rest (``v = E_rest``, everything else 0)
    unless ``state`` gives fields of :class:`~neuro.diehl_cook.torch_network.DiehlCookState`
    (one copy)."""
    n, n_in = params.n_exc, params.n_input
    out = {"v_exc": np.full(n, params.E_rest_exc), "v_inh": np.full(n, params.E_rest_inh)}
    for name in _STATE_FIELDS[2:] + ("refrac_exc", "refrac_inh", "x_post1", "x_post2"):
        out[name] = np.zeros(n)
    out["x_pre"] = np.zeros(n_in)
    if state is None:
        return out
    get = state.get if isinstance(state, Mapping) else lambda k, d=None: getattr(state, k, d)
    for name in list(out):
        value = get(name, None)
        if value is None:
            continue
        arr = _as_numpy(value).astype(np.float64)
        if arr.ndim == 2 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.shape != out[name].shape or not np.isfinite(arr).all():
            raise ValueError(f"state.{name} must be finite with shape {out[name].shape} or "
                             f"(1, {out[name].shape[0]}) (one copy), got {arr.shape}")
        out[name] = arr
    return out


def _lastspike_s(refrac_ms: np.ndarray, t_ref_ms: float, dt_ms: float) -> np.ndarray:
    r"""Brian2 ``lastspike`` (s, at t = 0) equivalent to torch's refractory time left.

    Torch sets ``r = t_ref`` in the step of the spike and holds a step while at least one step
    (``dt``, less Brian2's 1e-3 step tolerance) is left after subtracting ``dt``; so ``r`` counts
    as its whole number of steps :math:`R = \lfloor r/\Delta t + 10^{-3} \rfloor` and the neuron
    fired :math:`t_{ref} - R\Delta t + \Delta t` before :math:`t = 0`.
    """
    whole = np.floor(refrac_ms / dt_ms + STEP_TOLERANCE) * dt_ms
    return np.where(whole > 0, -(t_ref_ms - whole + dt_ms) * 1e-3, _NEVER_S)


# --------------------------------------------------------------------------- the network


def _factors(params: DiehlCookParams) -> dict[str, float]:
    """Decay factors over the rest, :math:`e^{-t_{rest}/\\tau}`."""
    rest = params.t_rest_ms
    taus = {"v_exc": params.tau_m_exc, "v_inh": params.tau_m_inh, "ge": params.tau_ge_ms,
            "gi": params.tau_gi_ms, "pre": params.tau_pre_ms, "post1": params.tau_post1_ms,
            "post2": params.tau_post2_ms, "theta": params.tau_theta_ms}
    return {f"f_{k}": math.exp(-rest / tau) for k, tau in taus.items()}


def _rest_code() -> str:
    """The rest at a presentation boundary (a no-op at :math:`t = 0`): membrane relaxation
    towards ``E_rest``, conductance decay, refractoriness cleared."""
    return ("not_first = int(t > not_before)\n"
            "v = E_rest + (v - E_rest)*(1 - not_first + not_first*f_v)\n"
            "ge = ge*(1 - not_first + not_first*f_ge)\n"
            "gi = gi*(1 - not_first + not_first*f_gi)\n"
            "lastspike = lastspike + not_first*(never - lastspike)\n")


def _neuron_groups(b2, params: DiehlCookParams, learning: bool, clock_dt):
    from brian2 import ms, mV

    p = params
    f = _factors(p)
    membrane = """
    dv/dt = ((E_rest - v) + ge*(E_exc - v) + gi*(E_inh - v)) / tau_m : volt (unless refractory)
    dge/dt = -ge/tau_ge : 1
    dgi/dt = -gi/tau_gi : 1
    """
    common = dict(E_exc=p.E_exc * mV, tau_ge=p.tau_ge_ms * ms, tau_gi=p.tau_gi_ms * ms,
                  not_before=1e-9 * ms)
    exc_ns = dict(common, E_rest=p.E_rest_exc * mV, E_inh=p.E_inh_on_exc * mV,
                  tau_m=p.tau_m_exc * ms, V_reset=p.V_reset_exc * mV,
                  V_th_minus_offset=(p.V_th_exc - p.theta_offset) * mV,
                  theta_plus=p.theta_plus * mV, tau_theta=p.tau_theta_ms * ms,
                  column_sum=p.column_sum, never=_NEVER_S * b2.second,
                  f_v=f["f_v_exc"], f_ge=f["f_ge"], f_gi=f["f_gi"], f_theta=f["f_theta"])
    exc_model = membrane + "count : 1\n"
    exc_reset = "v = V_reset\ncount += 1"
    exc_boundary = _rest_code() + "count = 0\n"
    if learning:
        exc_model += "dtheta/dt = -theta/tau_theta : volt\nwsum : 1\n"
        exc_reset += "\ntheta += theta_plus"
        exc_boundary += ("theta = theta*(1 - not_first + not_first*f_theta)\n"
                         # the columns were just normalised (_input_synapses): restart the sum
                         "wsum = wsum + not_first*int(wsum > 0)*(column_sum - wsum)\n")
    else:
        exc_model += "theta : volt\n"
    exc = b2.NeuronGroup(
        p.n_exc, exc_model, threshold="v > V_th_minus_offset + theta", reset=exc_reset,
        refractory=p.t_ref_exc * ms, method="exponential_euler", namespace=exc_ns,
        dt=clock_dt, name="dc_exc")
    inh_ns = dict(common, E_rest=p.E_rest_inh * mV, E_inh=p.E_inh_on_inh * mV,
                  tau_m=p.tau_m_inh * ms, V_reset=p.V_reset_inh * mV, V_th=p.V_th_inh * mV,
                  never=_NEVER_S * b2.second, f_v=f["f_v_inh"], f_ge=f["f_ge"], f_gi=f["f_gi"])
    inh = b2.NeuronGroup(
        p.n_exc, membrane, threshold="v > V_th", reset="v = V_reset",
        refractory=p.t_ref_inh * ms, method="exponential_euler", namespace=inh_ns,
        dt=clock_dt, name="dc_inh")
    t_present = p.t_present_ms * ms
    # order: after the controller (-20, -19), after the weight normalisation (-10), before the
    # state updates (0)
    exc.run_regularly(exc_boundary, dt=t_present, when="groups", order=-5,
                      name="dc_exc_boundary")
    inh.run_regularly(_rest_code(), dt=t_present, when="groups", order=-5,
                      name="dc_inh_boundary")
    return exc, inh


def _input_synapses(b2, params: DiehlCookParams, source, exc, learning: bool, clock_dt):
    from brian2 import ms

    p = params
    if not learning:
        syn = b2.Synapses(source, exc, "w : 1", on_pre="ge_post += w", dt=clock_dt,
                          name="dc_input_exc")
        return syn
    f = _factors(p)
    model = """
    w : 1
    dxpre/dt = -xpre/tau_pre : 1 (event-driven)
    dxpost1/dt = -xpost1/tau_post1 : 1 (event-driven)
    dxpost2/dt = -xpost2/tau_post2 : 1 (event-driven)
    """
    # wsum_post follows every change of w (the column sums for the normalisation)
    on_pre = """
    ge_post += w
    xpre = 1.
    wsum_post -= w
    w = clip(w - nu_pre*xpost1, 0, w_max)
    wsum_post += w
    """
    on_post = """
    post2before = xpost2
    wsum_post -= w
    w = clip(w + nu_post*xpre*post2before, 0, w_max)
    wsum_post += w
    xpost1 = 1.
    xpost2 = 1.
    """
    namespace = dict(tau_pre=p.tau_pre_ms * ms, tau_post1=p.tau_post1_ms * ms,
                     tau_post2=p.tau_post2_ms * ms, nu_pre=p.nu_pre, nu_post=p.nu_post,
                     w_max=p.w_max, column_sum=p.column_sum, not_before=1e-9 * ms,
                     f_pre=f["f_pre"], f_post1=f["f_post1"], f_post2=f["f_post2"])
    syn = b2.Synapses(source, exc, model, on_pre=on_pre, on_post=on_post, namespace=namespace,
                      dt=clock_dt, name="dc_input_exc")
    boundary = """
    not_first = int(t > not_before)
    xpre = xpre*(1 - not_first + not_first*f_pre)
    xpost1 = xpost1*(1 - not_first + not_first*f_post1)
    xpost2 = xpost2*(1 - not_first + not_first*f_post2)
    w = w*(1 + not_first*int(wsum_post > 0)*(column_sum/(wsum_post + int(wsum_post <= 0)) - 1))
    """
    syn.run_regularly(boundary, dt=p.t_present_ms * ms, when="groups", order=-10,
                      name="dc_input_exc_boundary")
    return syn


def _controller(b2, params: DiehlCookParams, exc, t_present):
    """One neuron on the presentation clock: example index ``k``, intensity ``kappa``, tries.

    At each boundary (not at :math:`t = 0`) it reads the presentation's excitatory spike count
    ``total`` (a summed variable of the exc -> controller synapses, evaluated on the
    controller's clock only, just before this code) and advances to the next example when the
    count reached ``min_spikes`` or the tries are used up."""
    from brian2 import ms

    p = params
    ctrl = b2.NeuronGroup(1, "total : 1\nk : 1\nkappa : 1\ntries : 1", dt=t_present,
                          order=-20, name="dc_controller",
                          namespace=dict(min_spikes=float(p.min_spikes),
                                         max_retries=float(p.max_retries),
                                         kappa0=START_INTENSITY, kappa_step=p.intensity_step,
                                         not_before=1e-9 * ms))
    ctrl.kappa = START_INTENSITY
    ctrl.run_regularly("""
        not_first = int(t > not_before)
        adv = not_first*clip(int(total >= min_spikes) + int(tries >= max_retries), 0, 1)
        tries = (tries + not_first)*(1 - adv)
        k = k + adv
        kappa = kappa0 + tries*kappa_step
        """, dt=t_present, when="groups", order=-19, name="dc_controller_update")
    counter = b2.Synapses(exc, ctrl, "total_post = count_pre : 1 (summed)", dt=t_present,
                          name="dc_exc_count")
    counter.connect(i=np.arange(params.n_exc, dtype=np.int32),
                    j=np.zeros(params.n_exc, dtype=np.int32))
    return ctrl, counter


def _poisson_input(b2, params: DiehlCookParams, images: np.ndarray, ctrl, clock_dt):
    """Input neurons spiking where ``rand() < r dt`` (Brian2's ``PoissonGroup``) with the rate
    of the controller's example ``k`` and intensity ``kappa``."""
    from brian2 import Hz, second

    # rates per unit intensity, one row per example, looked up at "time" k seconds
    # a last row of zeros: presentations after the last example get no input
    per_kappa = np.vstack([images, np.zeros((1, params.n_input))])
    per_kappa *= params.max_rate_hz / START_INTENSITY
    if per_kappa.max(initial=0.0) * START_INTENSITY * params.dt_ms * 1e-3 > 1.0:
        raise ValueError("input rate exceeds one spike per step; lower max_rate_hz")
    stimulus = b2.TimedArray(per_kappa * Hz, dt=1 * second)
    source = b2.NeuronGroup(
        params.n_input, "k : 1 (linked)\nkappa : 1 (linked)",
        threshold="rand() < stimulus(k*second, i)*kappa*dt",
        namespace={"stimulus": stimulus}, dt=clock_dt, name="dc_input")
    index = np.zeros(params.n_input, dtype=np.int64)
    source.k = b2.linked_var(ctrl, "k", index=index)
    source.kappa = b2.linked_var(ctrl, "kappa", index=index)
    return source


def _spike_input(b2, params: DiehlCookParams, spikes: np.ndarray, n_presentations: int,
                 clock_dt):
    """The explicit trains end to end: example ``p`` in presentation ``p``."""
    steps = params.present_steps
    ex, step, idx = np.nonzero(spikes[:n_presentations])
    t_index = ex.astype(np.int64) * steps + step
    return b2.SpikeGeneratorGroup(params.n_input, idx.astype(np.int32),
                                  t_index * clock_dt, dt=clock_dt, name="dc_input")


def run_diehl_cook_brian2(
    weights: Any,
    theta: Any,
    params: DiehlCookParams,
    *,
    images: Any = None,
    spikes: Any = None,
    learning: bool = True,
    n_presentations: int | None = None,
    state: Any = None,
    target: str = "cython",
    seed: int = 0,
    brian2_directory: str | None = None,
) -> Brian2DiehlCookRun:
    """Present a sequence of examples to the Diehl & Cook network with Brian2 (one run).

    Parameters
    ----------
    weights : input -> excitatory weights ``(n_input, n_exc)`` (numpy or torch), not changed.
    theta : threshold adaptation ``(n_exc,)``, mV.
    params : :class:`~neuro.diehl_cook.params.DiehlCookParams`.
    images : ``(N, n_input)`` (or ``(N, ...)``) in ``[0, 1]``: Poisson input at
        :math:`x\\,r_{max}\\,\\kappa/\\kappa_0` with the intensity loop (as
        :func:`~neuro.diehl_cook.torch_network.present_until_responsive`, one example at a
        time).
    spikes : bool ``(N, present_steps, n_input)``: explicit input trains, each example shown
        once (no intensity loop; ``min_spikes`` is not used).
    learning : STDP, threshold adaptation and weight normalisation on or off.
    n_presentations : presentations to simulate (default ``N``; with explicit spikes at most
        ``N``). With ``images`` and retries, fewer than ``N`` examples may be finished;
        presentations after the last example get no input.
    state : optional start state, a :class:`~neuro.diehl_cook.torch_network.DiehlCookState` of
        one copy (or a mapping with some of its field names; missing fields are at rest):
        membranes, conductances, refractory time left (mapped onto Brian2's ``lastspike``) and
        STDP traces. Default: rest.
    target : ``"cython"``, ``"numpy"`` or ``"cpp_standalone"``.
    seed : seeds Brian2's random numbers (the Poisson input).
    brian2_directory : C++ standalone project directory (kept); a temporary one (removed)
        otherwise.

    Returns
    -------
    :class:`Brian2DiehlCookRun`.
    """
    import brian2 as b2
    from brian2 import ms, mV

    t_start = time.perf_counter()
    p = params
    img, spk, n_examples = _check_inputs(p, images, spikes)
    if n_presentations is None:
        n_presentations = n_examples
    if not isinstance(n_presentations, int) or n_presentations < 1:
        raise ValueError(f"n_presentations must be a positive integer, got {n_presentations!r}")
    if spk is not None and n_presentations > n_examples:
        raise ValueError(f"n_presentations = {n_presentations} but only {n_examples} explicit "
                         "spike trains were given (each is shown once)")
    w0 = _as_numpy(weights).astype(np.float64)
    th0 = _as_numpy(theta).astype(np.float64)
    if w0.shape != (p.n_input, p.n_exc):
        raise ValueError(f"weights must have shape (n_input, n_exc) = ({p.n_input}, {p.n_exc}), "
                         f"got {w0.shape}")
    if th0.shape != (p.n_exc,):
        raise ValueError(f"theta must have shape ({p.n_exc},), got {th0.shape}")
    start = _initial_state(p, state)

    with brian2_target(target, brian2_directory, prefix="spikebridge_diehl_cook_") as directory:
        b2.seed(seed)
        clock_dt = p.dt_ms * ms
        t_present = p.t_present_ms * ms
        exc, inh = _neuron_groups(b2, p, learning, clock_dt)
        objects: list[Any] = [exc, inh]
        ctrl = None
        if img is not None:
            ctrl, counter = _controller(b2, p, exc, t_present)
            source = _poisson_input(b2, p, img, ctrl, clock_dt)
            objects += [ctrl, counter, source]
        else:
            source = _spike_input(b2, p, spk, n_presentations, clock_dt)
            objects.append(source)
        syn = _input_synapses(b2, p, source, exc, learning, clock_dt)
        pre_idx = np.repeat(np.arange(p.n_input, dtype=np.int32), p.n_exc)
        post_idx = np.tile(np.arange(p.n_exc, dtype=np.int32), p.n_input)
        syn.connect(i=pre_idx, j=post_idx)
        syn.w = w0.ravel()
        exc_inh = b2.Synapses(exc, inh, on_pre="ge_post += w_exc_inh", dt=clock_dt,
                              namespace={"w_exc_inh": p.w_exc_inh}, name="dc_exc_inh")
        exc_inh.connect(j="i")
        inh_exc = b2.Synapses(inh, exc, on_pre="gi_post += w_inh_exc", dt=clock_dt,
                              namespace={"w_inh_exc": p.w_inh_exc}, name="dc_inh_exc")
        inh_exc.connect(condition="i != j")
        objects += [syn, exc_inh, inh_exc]

        exc.v = start["v_exc"] * mV
        inh.v = start["v_inh"] * mV
        exc.ge, exc.gi = start["ge_exc"], start["gi_exc"]
        inh.ge, inh.gi = start["ge_inh"], start["gi_inh"]
        exc.theta = th0 * mV
        exc.lastspike = _lastspike_s(start["refrac_exc"], p.t_ref_exc, p.dt_ms) * b2.second
        inh.lastspike = _lastspike_s(start["refrac_inh"], p.t_ref_inh, p.dt_ms) * b2.second
        if learning:
            exc.wsum = w0.sum(axis=0)
            # per-synapse event-driven traces; torch decays its traces in every step, the first
            # one included, so they count as last updated one step before t = 0
            syn.xpre = start["x_pre"][pre_idx]
            syn.xpost1 = start["x_post1"][post_idx]
            syn.xpost2 = start["x_post2"][post_idx]
            syn.lastupdate = -clock_dt
        # presentation p's counts are read at the start of step pT, before the boundary work
        count_mon = b2.StateMonitor(exc, "count", record=True, dt=t_present, when="start",
                                    name="dc_count_monitor")
        objects.append(count_mon)
        if ctrl is not None:
            # example and intensity of presentation p, after the boundary work of pT
            ctrl_mon = b2.StateMonitor(ctrl, ["k", "kappa"], record=0, dt=t_present, when="end",
                                       name="dc_controller_monitor")
            objects.append(ctrl_mon)
        net = b2.Network(*objects)
        t_setup = time.perf_counter()
        duration = n_presentations * t_present
        if directory is not None:
            net.run(duration, namespace={})
            t0 = time.perf_counter()
            b2.get_device().build(directory=directory, compile=True, run=True, debug=False)
            wall = time.perf_counter() - t0
            last = getattr(b2.get_device(), "_last_run_time", None)
            run_s = float(last) if last is not None else wall
            compile_s = wall - run_s
        else:
            # a run of no steps generates (and for Cython compiles or loads) the code objects,
            # so that run_s times the simulation alone
            t0 = time.perf_counter()
            net.run(0 * ms, namespace={})
            t1 = time.perf_counter()
            net.run(duration, namespace={})
            run_s = time.perf_counter() - t1
            compile_s = t1 - t0

        # ---- read back (before the device is reset) ----------------------------------
        counts = np.empty((n_presentations, p.n_exc), dtype=np.int64)
        recorded = np.asarray(count_mon.count[:], dtype=np.float64).T  # (samples, n_exc)
        counts[:-1] = np.rint(recorded[1:n_presentations])
        counts[-1] = np.rint(np.asarray(exc.count[:]))
        if ctrl is not None:
            example = np.rint(np.asarray(ctrl_mon.k[0], dtype=np.float64)).astype(np.int64)
            intensity = np.asarray(ctrl_mon.kappa[0], dtype=np.float64)
            example, intensity = example[:n_presentations], intensity[:n_presentations]
            ok = counts[-1].sum() >= p.min_spikes
            tries_left = float(np.asarray(ctrl.tries[:])[0]) < p.max_retries
            examples_done = int(example[-1]) + (0 if (not ok and tries_left) else 1)
            examples_done = min(examples_done, n_examples)
        else:
            example = np.arange(n_presentations, dtype=np.int64)
            intensity = np.full(n_presentations, START_INTENSITY)
            examples_done = n_presentations
        w_flat = np.asarray(syn.w[:], dtype=np.float64)
        i_idx, j_idx = np.asarray(syn.i[:]), np.asarray(syn.j[:])
        w = np.empty((p.n_input, p.n_exc))
        w[i_idx, j_idx] = w_flat
        theta_out = np.asarray(exc.theta[:] / mV, dtype=np.float64)
        end = {"v_exc": np.asarray(exc.v[:] / mV, dtype=np.float64),
               "v_inh": np.asarray(inh.v[:] / mV, dtype=np.float64),
               "ge_exc": np.asarray(exc.ge[:], dtype=np.float64),
               "gi_exc": np.asarray(exc.gi[:], dtype=np.float64),
               "ge_inh": np.asarray(inh.ge[:], dtype=np.float64),
               "gi_inh": np.asarray(inh.gi[:], dtype=np.float64)}

    # ---- the last presentation's boundary work (rest, normalisation), in numpy ------------
    f = _factors(p)
    end["v_exc"] = p.E_rest_exc + (end["v_exc"] - p.E_rest_exc) * f["f_v_exc"]
    end["v_inh"] = p.E_rest_inh + (end["v_inh"] - p.E_rest_inh) * f["f_v_inh"]
    for layer in ("exc", "inh"):
        end[f"ge_{layer}"] = end[f"ge_{layer}"] * f["f_ge"]
        end[f"gi_{layer}"] = end[f"gi_{layer}"] * f["f_gi"]
    if learning:
        theta_out = theta_out * f["f_theta"]
        sums = w.sum(axis=0, keepdims=True)
        w = w * np.where(sums > 0, p.column_sum / np.where(sums > 0, sums, 1.0), 1.0)
    t_end = time.perf_counter()
    timings = {"setup_s": t_setup - t_start, "compile_s": compile_s, "run_s": run_s,
               "total_s": t_end - t_start}
    return Brian2DiehlCookRun(counts=counts, example=example, intensity=intensity, weights=w,
                              theta=theta_out, state=end, examples_done=examples_done,
                              timings=timings, engine=f"brian2:{target}")
