"""Plastic projections on both engines: hand-computed two-neuron cases, the torch runtime
against the pure rules, cross-engine equality on a small random network, batching, freezing,
rewards and validation.

Brian2 tests use the ``numpy`` runtime target (no compilation).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuro.connectivity import AllToAll, Explicit, FixedProbability, Uniform
from neuro.engines.torch_plasticity import _PlasticProjection
from neuro.models.lif import LIF, LIFParams
from neuro.network import (
    Network,
    PoissonInput,
    Population,
    Projection,
    SpikeGeneratorInput,
    SpikeMonitor,
    WeightMonitor,
)
from neuro.plasticity import (
    PairSTDPParams,
    RSTDPParams,
    TripletSTDPParams,
    apply_weight_change,
    rstdp_initial_state,
    rstdp_step,
    stdp_pair_initial_traces,
    stdp_pair_step,
    stdp_triplet_initial_traces,
    stdp_triplet_step,
)
from neuro.simulation import simulate
from neuro.synapses import conductance_exp, current_alpha, current_exp

B2 = "numpy"
EXC = current_exp("exc", 5.0)
PAIR = PairSTDPParams(A_plus=0.1, A_minus=0.12, tau_plus=20.0, tau_minus=20.0, w_min=0.0,
                      w_max=100.0)
PLASTIC = "inp->out:exc"


def _two_neurons(rule, pre_ms, drive_ms, *, delay_ms=0.0, w0=1.0, synapse=EXC,
                 monitors=()) -> Network:
    """A plastic synapse ``inp -> out`` (too weak to matter) and a strong static ``drive``
    that makes ``out`` fire once, one step after each drive spike."""
    return Network(
        [Population("out", 1, LIF, LIFParams())],
        inputs=[SpikeGeneratorInput("inp", 1, np.zeros(len(pre_ms), int), np.array(pre_ms)),
                SpikeGeneratorInput("drive", 1, np.zeros(len(drive_ms), int),
                                    np.array(drive_ms))],
        projections=[
            Projection("inp", "out", synapse, AllToAll(), w0, delay_ms=delay_ms,
                       plasticity=rule, name=PLASTIC),
            Projection("drive", "out", current_exp("drive", 0.5), AllToAll(), 50000.0),
        ],
        monitors=[SpikeMonitor("out"), *monitors], dt_ms=0.1)


def _run(network, duration, engine, **kw):
    if engine == "brian2":
        kw.setdefault("brian2_target", B2)
    return simulate(network, duration, engine, **kw)


ENGINES = ["torch", pytest.param("brian2", marks=pytest.mark.brian2)]


# --------------------------------------------------------------------------- hand-computed


@pytest.mark.parametrize("engine", ENGINES)
def test_pair_stdp_two_neurons_matches_hand_computation(engine):
    """pre 10 ms, post (driven) at 20.1 ms, pre again at 40 ms:
    w = w0 + A+ e^{-10.1/20} - A- e^{-19.9/20}."""
    net = _two_neurons(PAIR, [10.0, 40.0], [20.0], monitors=[WeightMonitor(PLASTIC)])
    result = _run(net, 60.0, engine, dtype=torch.float64) if engine == "torch" \
        else _run(net, 60.0, engine)
    np.testing.assert_allclose(result.spikes["out"].time_ms, [20.1], atol=1e-9)
    expected = 1.0 + 0.1 * math.exp(-10.1 / 20.0) - 0.12 * math.exp(-19.9 / 20.0)
    assert result.weights[PLASTIC].shape == (1, 1)
    assert result.weights[PLASTIC][0, 0] == pytest.approx(expected, rel=1e-12)
    trace = result.states[f"{PLASTIC}.w"]
    assert trace.unit == "pA" and trace.values.shape == (1, 600, 1)
    # sampled at step starts: the potentiation of step 201 shows from step 202 on
    np.testing.assert_allclose(trace.values[0, [201, 202], 0],
                               [1.0, 1.0 + 0.1 * math.exp(-10.1 / 20.0)], rtol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_delayed_plastic_synapse_learns_at_arrival(engine):
    """With a 3 ms delay the pre spike of 10 ms acts (and is paired) at 13 ms."""
    net = _two_neurons(PAIR, [10.0], [20.0], delay_ms=3.0)
    result = _run(net, 40.0, engine, dtype=torch.float64) if engine == "torch" \
        else _run(net, 40.0, engine)
    expected = 1.0 + 0.1 * math.exp(-(20.1 - 13.0) / 20.0)
    assert result.weights[PLASTIC][0, 0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_per_synapse_delays_two_synapses_match_hand_computation(engine):
    """One input neuron reaches ``out`` through two synapses, delays 3 and 15 ms; it spikes at
    10 and 40 ms, ``out`` at 20.1 ms. Synapse 0 (arrivals 13, 43 ms) is potentiated, then
    depressed; synapse 1 (arrivals 25, 55 ms) is depressed twice. Each synapse pairs its own
    arrivals, so a trace per presynaptic neuron could not give these numbers."""
    net = Network(
        [Population("out", 1, LIF, LIFParams())],
        inputs=[SpikeGeneratorInput("inp", 1, np.array([0, 0]), np.array([10.0, 40.0])),
                SpikeGeneratorInput("drive", 1, np.array([0]), np.array([20.0]))],
        projections=[
            Projection("inp", "out", EXC, Explicit([0, 0], [0, 0]), 1.0,
                       delay_ms=np.array([3.0, 15.0]), plasticity=PAIR, name=PLASTIC),
            Projection("drive", "out", current_exp("drive", 0.5), AllToAll(), 50000.0),
        ],
        monitors=[SpikeMonitor("out"), WeightMonitor(PLASTIC)], dt_ms=0.1)
    result = _run(net, 60.0, engine, dtype=torch.float64) if engine == "torch" \
        else _run(net, 60.0, engine)
    np.testing.assert_allclose(result.spikes["out"].time_ms, [20.1], atol=1e-9)
    a_plus, a_minus = PAIR.A_plus, PAIR.A_minus
    expected = [1.0 + a_plus * math.exp(-(20.1 - 13.0) / 20.0)
                - a_minus * math.exp(-(43.0 - 20.1) / 20.0),
                1.0 - a_minus * math.exp(-(25.0 - 20.1) / 20.0)
                - a_minus * math.exp(-(55.0 - 20.1) / 20.0)]
    np.testing.assert_allclose(result.weights[PLASTIC][0], expected, rtol=1e-12)
    # the depression of synapse 1 shows at its arrival (step 250), not at the spike (100)
    w1 = result.states[f"{PLASTIC}.w"].values[0, :, 1]
    np.testing.assert_array_equal(w1[:251], 1.0)
    assert w1[251] == pytest.approx(1.0 - a_minus * math.exp(-4.9 / 20.0), rel=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_triplet_two_neurons_matches_hand_computation(engine):
    """post, pre, post: the second post spike potentiates with the slow post trace o2."""
    rule = TripletSTDPParams(A2_plus=0.05, A3_plus=0.2, A2_minus=0.07, A3_minus=0.01,
                             tau_plus=16.8, tau_minus=33.7, tau_x=101.0, tau_y=125.0,
                             w_min=0.0, w_max=10.0)
    net = _two_neurons(rule, [15.0], [5.0, 25.0])
    result = _run(net, 40.0, engine, dtype=torch.float64) if engine == "torch" \
        else _run(net, 40.0, engine)
    t1, t2 = 5.1, 25.1
    dep = math.exp(-(15.0 - t1) / 33.7) * 0.07  # r2 = 0 before the only pre spike
    pot = math.exp(-(t2 - 15.0) / 16.8) * (0.05 + 0.2 * math.exp(-(t2 - t1) / 125.0))
    assert result.weights[PLASTIC][0, 0] == pytest.approx(1.0 - dep + pot, rel=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_rstdp_reward_array_two_neurons(engine):
    """Eligibility of a pre-post pair, then a reward of 2 at 50 ms (running baseline 0.5)."""
    rule = RSTDPParams(A_plus=1.0, A_minus=1.5, tau_e=100.0, eta=0.3, w_min=0.0, w_max=10.0,
                       baseline_mode="running", baseline=0.5, baseline_alpha=0.5)
    net = _two_neurons(rule, [10.0], [20.0])
    reward = np.full(800, np.nan)
    reward[500] = 2.0
    reward[600] = 2.0  # second delivery: surprise 2 - 1.25
    kw = {"dtype": torch.float64} if engine == "torch" else {}
    result = _run(net, 80.0, engine, reward=reward, **kw)
    e_post = math.exp(-10.1 / 20.0)  # eligibility created at 20.1 ms
    e50 = e_post * math.exp(-(50.0 - 20.1) / 100.0)
    e60 = e_post * math.exp(-(60.0 - 20.1) / 100.0)
    expected = 1.0 + 0.3 * (2.0 - 0.5) * e50 + 0.3 * (2.0 - 1.25) * e60
    assert result.weights[PLASTIC][0, 0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_alpha_kernel_and_frozen_learning(engine):
    net = _two_neurons(PAIR, [10.0, 40.0], [20.0], synapse=current_alpha("exc", 5.0))
    kw = {"dtype": torch.float64} if engine == "torch" else {}
    frozen = _run(net, 60.0, engine, learning=False, **kw)
    assert frozen.weights[PLASTIC][0, 0] == 1.0
    learnt = _run(net, 60.0, engine, **kw)
    assert learnt.weights[PLASTIC][0, 0] != 1.0


# --------------------------------------------------------------------------- pure rules


def _runtime(rule, pre, post, n_pre, n_post, batch, dense):
    """A bare torch runtime projection, all-to-all (dense view) or as a synapse list."""

    class BP:
        name = "p"
        synapse = EXC
        delay_steps = np.zeros(n_pre * n_post, dtype=np.int64)
        n_synapses = n_pre * n_post

    bp = BP()
    bp.pre = np.repeat(np.arange(n_pre), n_post)
    bp.post = np.tile(np.arange(n_post), n_pre)
    if not dense:  # same synapses in another order: no dense view possible
        order = np.lexsort((-bp.post, bp.pre))
        bp.pre, bp.post = bp.pre[order], bp.post[order]
    bp.weight = np.linspace(0.2, 0.8, n_pre * n_post)
    syn = torch.zeros((batch, n_post), dtype=torch.float64)
    proj = _PlasticProjection(bp, rule, source=("s", 0, n_pre), target=("t", 0, n_post),
                              syn_var=syn, col0=0, batch=batch, device=torch.device("cpu"),
                              dtype=torch.float64, dt=0.1)
    return proj, bp


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("kind", ["pair", "pair_soft", "triplet", "rstdp"])
def test_runtime_equals_pure_rules(kind, dense):
    """The engine's per-synapse update equals the pure step + apply_weight_change (bounds far
    away, so per-event and per-step clipping agree)."""
    gen = np.random.default_rng(3)
    batch, n_pre, n_post, steps = 3, 5, 4, 400
    pre = torch.as_tensor(gen.random((steps, batch, n_pre)) < 0.05)
    post = torch.as_tensor(gen.random((steps, batch, n_post)) < 0.05)
    if kind == "pair":
        rule = PairSTDPParams(A_plus=0.01, A_minus=0.012, w_min=-50.0, w_max=50.0)
    elif kind == "pair_soft":
        rule = PairSTDPParams(A_plus=0.05, A_minus=0.06, w_min=0.0, w_max=1.0,
                              weight_dependence="multiplicative", interaction="nearest")
    elif kind == "triplet":
        rule = TripletSTDPParams(A2_plus=0.01, A3_plus=0.02, A2_minus=0.01, A3_minus=0.005,
                                 w_min=-50.0, w_max=50.0)
    else:
        rule = RSTDPParams(eta=0.05, w_min=-50.0, w_max=50.0, baseline_mode="running")
    proj, bp = _runtime(rule, pre, post, n_pre, n_post, batch, dense)
    w = torch.zeros((batch, n_pre, n_post), dtype=torch.float64)
    w[:, bp.pre, bp.post] = torch.as_tensor(bp.weight)
    if kind == "triplet":
        state = stdp_triplet_initial_traces(batch, n_pre, n_post, dtype=torch.float64)
    elif kind == "rstdp":
        state = rstdp_initial_state(batch, n_pre, n_post, rule, dtype=torch.float64)
    else:
        state = stdp_pair_initial_traces(batch, n_pre, n_post, dtype=torch.float64)
    rewards = gen.normal(size=(steps, batch))
    for t in range(steps):
        deliver = t % 50 == 49
        if kind == "rstdp":
            r = torch.as_tensor(rewards[t]) if deliver else None
            delta, state = rstdp_step(pre[t], post[t], r, state, w, rule, 0.1)
        elif kind == "triplet":
            delta, state = stdp_triplet_step(pre[t], post[t], state, w, rule, 0.1)
        else:
            delta, state = stdp_pair_step(pre[t], post[t], state, w, rule, 0.1)
        w = apply_weight_change(w, delta, rule)
        reward = None
        if kind == "rstdp" and deliver:
            reward = (torch.as_tensor(rewards[t]), torch.ones(batch, dtype=torch.bool))
        proj.step(pre[t], post[t], t, True, reward)
    torch.testing.assert_close(proj.w, w[:, bp.pre, bp.post], rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- cross-engine


def _random_network(rule, seed=5) -> Network:
    gen = np.random.default_rng(seed)
    n_in, duration = 30, 400.0
    counts = gen.poisson(25.0 * duration / 1000.0, n_in)
    idx = np.repeat(np.arange(n_in), counts)
    times = np.round(gen.uniform(0, duration, idx.size), 1)
    keep = np.unique(np.stack([idx, times * 10]).T, axis=0, return_index=True)[1]
    params = LIFParams(C_m=200.0, tau_m=20.0, E_L=-70.0, V_th=-54.0, V_reset=-60.0, t_ref=2.0)
    exc = conductance_exp("exc", 5.0, 0.0)
    return Network(
        [Population("cells", 8, LIF, params)],
        inputs=[SpikeGeneratorInput("inp", n_in, idx[keep], times[keep])],
        projections=[
            Projection("inp", "cells", exc, FixedProbability(0.6), Uniform(2.0, 6.0),
                       plasticity=rule, name="ff"),
            Projection("cells", "cells", exc, FixedProbability(0.3), Uniform(0.5, 2.0),
                       delay_ms=1.5, plasticity=rule, name="rec"),
        ],
        monitors=[SpikeMonitor("cells"), WeightMonitor("ff", synapses=[0, 3, 7], every=10)],
        dt_ms=0.1, seed=seed)


@pytest.mark.brian2
@pytest.mark.parametrize("rule", [
    PairSTDPParams(A_plus=0.4, A_minus=0.45, w_min=0.0, w_max=8.0),
    TripletSTDPParams(A2_plus=0.2, A3_plus=0.3, A2_minus=0.3, A3_minus=0.05, w_min=0.0,
                      w_max=8.0),
], ids=["pair", "triplet"])
def test_random_network_same_weights_on_both_engines(rule):
    net = _random_network(rule)
    t = simulate(net, 400.0, "torch", dtype=torch.float64)
    b = simulate(net, 400.0, "brian2", brian2_target=B2)
    assert t.spikes["cells"].time_ms.size > 20  # the network is active, so weights move
    np.testing.assert_array_equal(t.spikes["cells"].time_ms, b.spikes["cells"].time_ms)
    for name in ("ff", "rec"):
        assert not np.allclose(t.weights[name], net.build().projections[0 if name == "ff"
                                                                        else 1].weight)
        np.testing.assert_allclose(t.weights[name], b.weights[name], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(t.states["ff.w"].values, b.states["ff.w"].values, rtol=1e-9)
    np.testing.assert_allclose(t.states["ff.w"].times_ms, b.states["ff.w"].times_ms)


def _random_delay_network(rule, seed=7) -> Network:
    """Feed-forward and recurrent plastic projections, every synapse with its own delay (0 to
    5 ms, whole steps; some 0)."""
    gen = np.random.default_rng(seed)
    n_in, n, duration = 30, 8, 400.0
    counts = gen.poisson(25.0 * duration / 1000.0, n_in)
    idx = np.repeat(np.arange(n_in), counts)
    times = np.round(gen.uniform(0, duration, idx.size), 1)
    keep = np.unique(np.stack([idx, times * 10]).T, axis=0, return_index=True)[1]
    params = LIFParams(C_m=200.0, tau_m=20.0, E_L=-70.0, V_th=-54.0, V_reset=-60.0, t_ref=2.0)
    exc = conductance_exp("exc", 5.0, 0.0)
    rec_pre, rec_post = np.nonzero((gen.random((n, n)) < 0.3) & ~np.eye(n, dtype=bool))
    return Network(
        [Population("cells", n, LIF, params)],
        inputs=[SpikeGeneratorInput("inp", n_in, idx[keep], times[keep])],
        projections=[
            Projection("inp", "cells", exc, AllToAll(), Uniform(1.0, 4.0),
                       delay_ms=np.round(gen.uniform(0.0, 5.0, n_in * n), 1),
                       plasticity=rule, name="ff"),
            Projection("cells", "cells", exc, Explicit(rec_pre, rec_post), Uniform(0.5, 2.0),
                       delay_ms=np.round(gen.uniform(0.5, 3.0, rec_pre.size), 1),
                       plasticity=rule, name="rec"),
        ],
        monitors=[SpikeMonitor("cells"), WeightMonitor("ff", synapses=[0, 3, 7], every=10)],
        dt_ms=0.1, seed=seed)


@pytest.mark.brian2
@pytest.mark.parametrize("rule", [
    PairSTDPParams(A_plus=0.4, A_minus=0.45, w_min=0.0, w_max=8.0),
    TripletSTDPParams(A2_plus=0.2, A3_plus=0.3, A2_minus=0.3, A3_minus=0.05, w_min=0.0,
                      w_max=8.0),
], ids=["pair", "triplet"])
def test_per_synapse_delays_same_weights_on_both_engines(rule):
    net = _random_delay_network(rule)
    built = {p.name: p for p in net.build().projections}
    assert np.unique(built["ff"].delay_steps).size > 20 and built["ff"].delay_steps.min() == 0
    t = simulate(net, 400.0, "torch", dtype=torch.float64)
    b = simulate(net, 400.0, "brian2", brian2_target=B2)
    assert t.spikes["cells"].time_ms.size > 20
    np.testing.assert_array_equal(t.spikes["cells"].time_ms, b.spikes["cells"].time_ms)
    for name in ("ff", "rec"):
        assert np.abs(t.weights[name] - built[name].weight).max() > 0.5  # they learnt
        np.testing.assert_allclose(t.weights[name], b.weights[name], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(t.states["ff.w"].values, b.states["ff.w"].values, rtol=1e-9)


def test_per_synapse_delays_batch_and_rstdp():
    """Per-synapse delays with R-STDP in a batch: trial b equals a single run with seed + b."""
    rule = RSTDPParams(A_plus=1.0, A_minus=1.2, tau_e=50.0, eta=0.05, w_min=0.0, w_max=2.0)
    net = Network(
        [Population("out", 2, LIF, LIFParams(C_m=10.0, tau_m=10.0, E_L=-74.0, V_th=-54.0,
                                             V_reset=-60.0, t_ref=1.0))],
        inputs=[PoissonInput("inp", 20, 30.0)],
        projections=[Projection("inp", "out", conductance_exp("exc", 5.0, 0.0), AllToAll(),
                                Uniform(0.2, 1.0), delay_ms=np.arange(40) % 9 * 0.5,
                                plasticity=rule, name="p")],
        dt_ms=0.5)
    reward = np.where(np.arange(400) % 40 == 39, 1.0, np.nan)
    batch = simulate(net, 200.0, batch_size=2, seed=3, dtype=torch.float64, reward=reward)
    single = simulate(net, 200.0, seed=4, dtype=torch.float64, reward=reward)
    assert not np.allclose(batch.weights["p"][1], net.build().projections[0].weight)
    np.testing.assert_allclose(batch.weights["p"][1], single.weights["p"][0], rtol=1e-12)


@pytest.mark.brian2
def test_rstdp_reward_callback_on_both_engines():
    """A closed-loop reward (+1 on every spike of ``out``) gives the same weights."""
    rule = RSTDPParams(A_plus=1.0, A_minus=1.5, tau_e=200.0, eta=0.2, w_min=0.0, w_max=10.0)
    net = _two_neurons(rule, [10.0, 30.0, 55.0], [20.0, 60.0])

    def reward(step, spikes):
        fired = np.asarray(spikes["out"]).any()
        return 1.0 if fired else None

    t = simulate(net, 80.0, "torch", dtype=torch.float64, reward=reward)
    b = simulate(net, 80.0, "brian2", brian2_target=B2, reward=reward)
    assert t.weights[PLASTIC][0, 0] != 1.0
    np.testing.assert_allclose(t.weights[PLASTIC], b.weights[PLASTIC], rtol=1e-12)


# --------------------------------------------------------------------------- batching


def _poisson_network(rule=PAIR):
    params = LIFParams(C_m=10.0, tau_m=10.0, E_L=-74.0, V_th=-54.0, V_reset=-60.0, t_ref=0.0)
    return Network(
        [Population("out", 1, LIF, params)], inputs=[PoissonInput("inp", 50, 20.0)],
        projections=[Projection("inp", "out", conductance_exp("exc", 5.0, 0.0), AllToAll(),
                                Uniform(0.0, 0.5),
                                plasticity=PairSTDPParams(A_plus=0.01, A_minus=0.0105,
                                                          w_min=0.0, w_max=0.5),
                                name="p")],
        monitors=[SpikeMonitor("out")], dt_ms=0.1)


def test_batched_trials_learn_independently():
    net = _poisson_network()
    batch = simulate(net, 300.0, batch_size=3, seed=10)
    assert batch.weights["p"].shape == (3, 50)
    assert not np.allclose(batch.weights["p"][0], batch.weights["p"][1])
    single = simulate(net, 300.0, seed=12)
    np.testing.assert_allclose(batch.weights["p"][2], single.weights["p"][0], rtol=1e-6)


def test_sparse_projection_and_inhibitory_current_synapse():
    """Synapse-list weights (Explicit) of an inhibitory current synapse: magnitudes learn."""
    net = Network(
        [Population("out", 2, LIF, LIFParams())],
        inputs=[SpikeGeneratorInput("inp", 3, np.array([0, 2, 1]), np.array([10.0, 12.0, 30.0])),
                SpikeGeneratorInput("drive", 2, np.array([0, 1]), np.array([20.0, 20.0]))],
        projections=[
            Projection("inp", "out", current_exp("inh", 5.0, inhibitory=True),
                       Explicit([0, 2, 1], [1, 0, 0]), 1.0, plasticity=PAIR, name="p"),
            Projection("drive", "out", current_exp("drive", 0.5), Explicit([0, 1], [0, 1]),
                       50000.0),
        ], dt_ms=0.1)
    w = simulate(net, 40.0, dtype=torch.float64).weights["p"][0]
    # synapses sorted by pre: (0->1) pre 10, post 20.1; (1->0) pre 30 after post 20.1;
    # (2->0) pre 12, post 20.1
    expected = [1 + 0.1 * math.exp(-10.1 / 20), 1 - 0.12 * math.exp(-9.9 / 20),
                1 + 0.1 * math.exp(-8.1 / 20)]
    np.testing.assert_allclose(w, expected, rtol=1e-12)


# --------------------------------------------------------------------------- validation


def test_plastic_projection_validation():
    exc = conductance_exp("exc", 5.0, 0.0)
    pop = [Population("out", 2, LIF, LIFParams())]
    inp = [PoissonInput("inp", 3, 10.0)]
    varied = Network(pop, inp, [Projection("inp", "out", exc, AllToAll(), 0.5,
                                           delay_ms=np.array([1.0, 2.0] * 3), plasticity=PAIR)])
    assert varied.build().projections[0].delay_steps.tolist() == [10, 20] * 3
    with pytest.raises(ValueError, match="bounds"):
        Network(pop, inp, [Projection("inp", "out", exc, AllToAll(), 500.0, plasticity=PAIR)])
    with pytest.raises(ValueError, match="bounds"):
        Network(pop, inp, [Projection("inp", "out", exc, AllToAll(), Uniform(0, 200.0),
                                      plasticity=PAIR)]).build()
    with pytest.raises(ValueError, match="plasticity must be"):
        Network(pop, inp, [Projection("inp", "out", exc, AllToAll(), 0.5, plasticity="stdp")])
    with pytest.raises(ValueError, match="not plastic"):
        Network(pop, inp, [Projection("inp", "out", exc, AllToAll(), 0.5, name="p")],
                monitors=[WeightMonitor("p")])
    net = Network(pop, inp, [Projection("inp", "out", exc, AllToAll(), 0.5, plasticity=PAIR)])
    with pytest.raises(ValueError, match="no R-STDP"):
        simulate(net, 1.0, reward=np.ones(10))


# --------------------------------------------------------------------------- fused path


def _feedforward_network() -> Network:
    """Poisson and generator inputs, static and plastic (sparse, all-to-all, nearest-spike)
    projections onto two populations, an external current, weight monitors."""
    from neuro.network import CurrentInput, PopulationRateMonitor

    params = LIFParams(C_m=10.0, tau_m=10.0, E_L=-74.0, V_th=-54.0, V_reset=-60.0, t_ref=1.0)
    gen = np.random.default_rng(1)
    idx = gen.integers(0, 6, 300)
    times = np.round(gen.uniform(0, 300.0, 300), 1)
    keep = np.unique(np.stack([idx, times * 10]).T, axis=0, return_index=True)[1]
    exc = conductance_exp("exc", 5.0, 0.0)
    return Network(
        [Population("a", 3, LIF, params), Population("b", 2, LIF, params)],
        inputs=[PoissonInput("p1", 40, 20.0), PoissonInput("p2", 10, np.linspace(5, 40, 10)),
                SpikeGeneratorInput("g", 6, idx[keep], times[keep]),
                CurrentInput("b", 80.0)],
        projections=[
            Projection("p1", "a", exc, FixedProbability(0.5), Uniform(0.0, 0.4),
                       plasticity=PairSTDPParams(A_plus=0.01, A_minus=0.0105, w_min=0.0,
                                                 w_max=0.4), name="sparse"),
            Projection("g", "b", current_exp("cur", 3.0), AllToAll(), 20.0,
                       plasticity=PairSTDPParams(A_plus=2.0, A_minus=2.2, w_min=0.0,
                                                 w_max=40.0, interaction="nearest"),
                       name="dense"),
            Projection("p2", "a", exc, AllToAll(), 0.05),
            Projection("p2", "b", exc, FixedProbability(0.5), 0.3),
        ],
        monitors=[SpikeMonitor("a"), SpikeMonitor("b"), SpikeMonitor("g"),
                  PopulationRateMonitor("b"), WeightMonitor("sparse", [0, 5, 9], every=20),
                  WeightMonitor("dense", every=40)],
        dt_ms=0.1, seed=3)


def _same(a, b):
    for name in ("a", "b", "g"):
        np.testing.assert_array_equal(a.spikes[name].trial, b.spikes[name].trial)
        np.testing.assert_array_equal(a.spikes[name].time_ms, b.spikes[name].time_ms)
        np.testing.assert_array_equal(a.spikes[name].neuron, b.spikes[name].neuron)
    np.testing.assert_array_equal(a.population_rates_hz["b"], b.population_rates_hz["b"])
    for name in ("sparse", "dense"):
        np.testing.assert_allclose(a.weights[name], b.weights[name], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(a.states[f"{name}.w"].values, b.states[f"{name}.w"].values,
                                   rtol=1e-10, atol=1e-12)


def test_fused_path_equals_step_by_step():
    """Same seed, Bernoulli sampler: the event-driven chunked path gives the step-by-step
    loop's spikes and weights (float64), also across chunk boundaries and with a batch."""
    net = _feedforward_network()
    kw = dict(batch_size=2, seed=4, dtype=torch.float64)
    step = simulate(net, 300.0, **kw)
    assert step.spikes["a"].time_ms.size > 20 and step.spikes["b"].time_ms.size > 20
    fused = simulate(net, 300.0, fused=True, **kw)
    _same(step, fused)
    frozen = simulate(net, 100.0, fused=True, learning=False, **kw)
    np.testing.assert_array_equal(frozen.weights["dense"], 20.0)


def test_fused_falls_back_with_a_warning():
    net = _random_network(PAIR)  # recurrent plastic projection
    with pytest.warns(UserWarning, match="fused=True ignored"):
        simulate(net, 5.0, fused=True)


def test_interval_sampler_rates():
    """Geometric inter-spike intervals give the Poisson rates (and thinning, per-neuron
    rates), trial b of a batch equals a single run with seed + b."""
    rates = np.array([5.0, 20.0, 80.0])
    net = Network([Population("n", 1, LIF, LIFParams())],
                  inputs=[PoissonInput("p", 3, rates)], monitors=[SpikeMonitor("p")],
                  dt_ms=0.1)
    res = simulate(net, 20000.0, fused=True, poisson_sampler="intervals", batch_size=2, seed=7)
    counts = res.spikes["p"].counts()
    np.testing.assert_allclose(counts.mean(0) / 20.0, rates, rtol=0.1)
    single = simulate(net, 20000.0, fused=True, poisson_sampler="intervals", seed=8)
    np.testing.assert_array_equal(single.spikes["p"].counts()[0], counts[1])


@pytest.mark.slow
def test_fused_compiled_equals_step_by_step():
    net = _feedforward_network()
    kw = dict(batch_size=2, seed=4, dtype=torch.float64)
    _same(simulate(net, 300.0, **kw), simulate(net, 300.0, fused=True, compile=True, **kw))
