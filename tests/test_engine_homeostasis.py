"""Adaptive threshold (Diehl & Cook 2015) on engine populations: a hand-computed LIF under a
constant current, torch against Brian2 over 1 s, freezing with ``learning=False``, batches,
and validation.

Brian2 tests use the ``numpy`` runtime target (no compilation).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from neuro.models.izhikevich import IZHIKEVICH, REGULAR_SPIKING
from neuro.models.lif import LIF, LIFParams
from neuro.network import (
    CurrentInput,
    Network,
    Population,
    SpikeMonitor,
    StateMonitor,
)
from neuro.plasticity import AdaptiveThresholdParams
from neuro.simulation import simulate

B2 = "numpy"
DT = 0.1
ENGINES = ["torch", pytest.param("brian2", marks=pytest.mark.brian2)]
# No refractory period, so that the inter-spike intervals have a closed form on the grid.
PARAMS = LIFParams(C_m=250.0, tau_m=10.0, E_L=-65.0, V_th=-50.0, V_reset=-65.0, t_ref=0.0)
ADAPT = AdaptiveThresholdParams(theta_plus=2.0, tau_theta=100.0)


def _network(current_pA, *, params=PARAMS, adapt=ADAPT, initial=None, every=1) -> Network:
    current = np.atleast_1d(np.asarray(current_pA, dtype=np.float64))
    return Network(
        [Population("n", current.size, LIF, params, initial=initial,
                    threshold_adaptation=adapt)],
        inputs=[CurrentInput("n", current)],
        monitors=[SpikeMonitor("n"),
                  *([StateMonitor("n", "theta", every=every)] if adapt else [])], dt_ms=DT)


def _run(network, duration, engine, **kw):
    if engine == "brian2":
        return simulate(network, duration, engine, brian2_target=B2, **kw)
    return simulate(network, duration, engine, dtype=torch.float64, **kw)


def _hand_spikes(current_pA: float, n_steps: int, params=PARAMS, adapt=ADAPT):
    r"""Spike steps and final :math:`\theta` of one LIF neuron (``t_ref = 0``) from closed forms.

    From the reset, ``j`` steps of exact integration give
    :math:`v_j = v_\infty + (V_{reset} - v_\infty) d^j`, :math:`d = e^{-\Delta t/\tau_m}`,
    and the threshold offset decays to :math:`\theta_n q^j`, :math:`q = e^{-\Delta t/\tau_\theta}`:
    the next spike is the first ``j`` with :math:`v_j \ge V_{th} + \theta_n q^j`; then
    :math:`\theta_{n+1} = \theta_n q^j + \theta_+`. A spike is stamped at the start of the step
    whose integration crossed the threshold.
    """
    v_inf = params.E_L + params.tau_m / params.C_m * current_pA
    d, q = math.exp(-DT / params.tau_m), math.exp(-DT / adapt.tau_theta)
    steps, theta, last, v0 = [], 0.0, -1, params.E_L  # "step -1": at rest, theta = 0
    while True:
        j = 1
        while v_inf + (v0 - v_inf) * d**j < params.V_th + theta * q**j:
            j += 1
            if last + j >= n_steps:
                return np.array(steps), theta * q ** (n_steps - 1 - last)
        last += j
        steps.append(last)
        theta = theta * q**j + adapt.theta_plus
        v0 = params.V_reset


@pytest.mark.parametrize("engine", ENGINES)
def test_lif_adaptive_threshold_matches_hand_computation(engine):
    """Under a constant 700 pA (v_inf = -37 mV) each spike raises the threshold by 2 mV
    (decaying with 100 ms), so the intervals lengthen from 9.2 ms on (18 spikes in 300 ms)."""
    n_steps = 3000
    want, theta_end = _hand_spikes(700.0, n_steps)
    result = _run(_network(700.0), n_steps * DT, engine)
    got = result.spikes["n"].time_ms
    assert want.size == 18
    assert np.all(np.diff(np.diff(want)[:8]) > 0)  # adaptation lengthens the intervals
    np.testing.assert_allclose(got, want * DT, atol=1e-9)
    assert result.theta["n"].shape == (1, 1)
    assert result.theta["n"][0, 0] == pytest.approx(theta_end, rel=1e-12)
    # without adaptation the same neuron fires regularly, and more often
    plain = _run(_network(700.0, adapt=None), n_steps * DT, engine)
    assert plain.spikes["n"].time_ms.size > got.size and plain.theta == {}
    # the recorded theta: 0 before the first spike, theta_plus just after it (step starts)
    rec = result.states["n.theta"]
    assert rec.unit == "mV" and rec.values.shape == (1, n_steps, 1)
    first = int(want[0])
    np.testing.assert_allclose(rec.values[0, :first + 1, 0], 0.0, atol=0)
    assert rec.values[0, first + 1, 0] == pytest.approx(ADAPT.theta_plus, rel=1e-12)


@pytest.mark.brian2
def test_torch_and_brian2_agree_over_one_second():
    """Four currents, both reset modes, a refractory period and a starting theta: the same
    spikes (within one step) and the same final theta (1e-9 relative), float64."""
    params = LIFParams(C_m=200.0, tau_m=20.0, E_L=-70.0, V_th=-54.0, V_reset=-60.0, t_ref=2.0)
    adapt = AdaptiveThresholdParams(theta_plus=0.5, tau_theta=300.0)
    currents = np.array([250.0, 400.0, 700.0, 1500.0])
    initial = {"theta": np.array([0.0, 1.0, 2.0, 3.0])}
    nets = {
        mode: Network(
            [Population("n", 4, LIF, dataclasses.replace(params, reset_mode=mode),
                        initial=initial, threshold_adaptation=adapt)],
            inputs=[CurrentInput("n", currents)],
            monitors=[SpikeMonitor("n"), StateMonitor("n", "theta", neurons=[1, 3],
                                                      every=50)], dt_ms=DT)
        for mode in ("value", "subtract")
    }
    for net in nets.values():
        t = _run(net, 1000.0, "torch")
        b = _run(net, 1000.0, "brian2")
        assert t.spikes["n"].time_ms.size > 100
        np.testing.assert_array_equal(t.spikes["n"].counts(), b.spikes["n"].counts())
        for a, c in zip(t.spikes["n"].trains(), b.spikes["n"].trains(), strict=True):
            assert np.max(np.abs(a - c), initial=0.0) <= DT + 1e-9
        np.testing.assert_allclose(t.theta["n"], b.theta["n"], rtol=1e-9, atol=0)
        np.testing.assert_allclose(t.states["n.theta"].values, b.states["n.theta"].values,
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(t.states["n.theta"].times_ms, b.states["n.theta"].times_ms)


@pytest.mark.parametrize("engine", ENGINES)
def test_learning_false_holds_theta(engine):
    """Frozen: theta keeps its initial value (neither decays nor jumps), so the neuron fires
    regularly at the raised threshold V_th + theta."""
    theta0 = np.array([0.0, 4.0])
    net = _network([500.0, 500.0], initial={"theta": theta0}, every=7)
    result = _run(net, 300.0, engine, learning=False)
    np.testing.assert_array_equal(result.theta["n"], theta0[None])
    np.testing.assert_array_equal(result.states["n.theta"].values[0],
                                  np.broadcast_to(theta0, (-(-3000 // 7), 2)))
    trains = result.spikes["n"].trains()
    isi = [np.diff(tr) for tr in trains]
    v_inf = PARAMS.E_L + PARAMS.tau_m / PARAMS.C_m * 500.0
    for k, th in enumerate(theta0):  # the continuous-time interval, up to one step
        closed = PARAMS.tau_m * math.log((v_inf - PARAMS.V_reset)
                                         / (v_inf - PARAMS.V_th - th))
        assert np.ptp(isi[k]) < 1e-9 and 0 <= isi[k][0] - closed < DT
    learnt = _run(net, 300.0, engine)
    assert np.all(learnt.theta["n"] != theta0)


def test_batch_trials_adapt_independently():
    """Per-trial currents: trial b of a batch equals a single run with its current."""
    pop = Population("n", 2, LIF, PARAMS, threshold_adaptation=ADAPT)
    amps = np.array([[450.0, 600.0], [520.0, 800.0]])
    batch = simulate(Network([pop], inputs=[CurrentInput("n", amps, per_trial=True)],
                             monitors=[SpikeMonitor("n")], dt_ms=DT),
                     200.0, batch_size=2, dtype=torch.float64)
    assert batch.theta["n"].shape == (2, 2)
    for b in range(2):
        single = _run(_network(amps[b]), 200.0, "torch")
        np.testing.assert_array_equal(batch.theta["n"][b], single.theta["n"][0])
        np.testing.assert_array_equal(batch.spikes["n"].counts()[b], single.spikes["n"].counts()[0])


def test_adaptive_and_plain_populations_are_not_merged():
    """Same model and parameters, one with an adaptive threshold: the plain one fires as
    alone (the engine keeps them in separate groups)."""
    net = Network(
        [Population("a", 1, LIF, PARAMS, threshold_adaptation=ADAPT),
         Population("p", 1, LIF, PARAMS)],
        inputs=[CurrentInput("a", 500.0), CurrentInput("p", 500.0)],
        monitors=[SpikeMonitor("a"), SpikeMonitor("p")], dt_ms=DT)
    both = simulate(net, 200.0, dtype=torch.float64)
    plain = _run(_network(500.0, adapt=None), 200.0, "torch")
    adapted = _run(_network(500.0), 200.0, "torch")
    np.testing.assert_array_equal(both.spikes["p"].time_ms, plain.spikes["n"].time_ms)
    np.testing.assert_array_equal(both.spikes["a"].time_ms, adapted.spikes["n"].time_ms)
    assert set(both.theta) == {"a"}


def test_validation_and_fused_fallback():
    with pytest.raises(ValueError, match="model 'izhikevich' has no threshold parameter"):
        Network([Population("n", 1, IZHIKEVICH, REGULAR_SPIKING, threshold_adaptation=ADAPT)])
    with pytest.raises(ValueError, match="threshold_adaptation must be None or"):
        Network([Population("n", 1, LIF, PARAMS, threshold_adaptation=(0.05, 1e7))])
    with pytest.raises(ValueError, match="unknown variable 'theta'"):
        Network([Population("n", 1, LIF, PARAMS)], monitors=[StateMonitor("n", "theta")])
    net = _network(500.0)
    assert net.unit_of("n", "theta") == "mV"
    with pytest.warns(UserWarning, match="adaptive threshold"):
        fused = simulate(net, 20.0, fused=True, dtype=torch.float64)
    np.testing.assert_array_equal(fused.theta["n"], _run(net, 20.0, "torch").theta["n"])


@pytest.mark.slow
def test_compiled_step_equals_eager():
    """``compile=True`` traces the adaptive step too (theta is part of the group's state)."""
    net = _network([500.0, 900.0])
    eager = _run(net, 100.0, "torch")
    compiled = _run(net, 100.0, "torch", compile=True)
    np.testing.assert_array_equal(compiled.spikes["n"].time_ms, eager.spikes["n"].time_ms)
    np.testing.assert_allclose(compiled.theta["n"], eager.theta["n"], rtol=1e-12)
    np.testing.assert_allclose(compiled.states["n.theta"].values,
                               eager.states["n.theta"].values, rtol=1e-12)
