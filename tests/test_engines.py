"""Engines: analytic checks (f-I curve, synaptic kernels, delays) and torch/Brian2 equivalence.

Brian2 tests use the ``numpy`` runtime target (no compilation) unless they say otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuro import engines as engines_mod
from neuro import simulation as simulate_mod
from neuro.connectivity import AllToAll, Explicit, FixedProbability, OneToOne, Uniform
from neuro.models.lif import LIF, LIFParams
from neuro.network import (
    CurrentInput,
    Network,
    PoissonInput,
    Population,
    PopulationRateMonitor,
    Projection,
    SpikeGeneratorInput,
    SpikeMonitor,
    StateMonitor,
)
from neuro.simulation import simulate
from neuro.synapses import conductance_alpha, conductance_exp, current_alpha, current_exp

P = LIFParams()  # C_m 250 pF, tau_m 10 ms, E_L -65, V_th -50, V_reset -65, t_ref 2 ms
B2 = "numpy"


def test_public_names():
    for mod in (engines_mod, simulate_mod):
        for name in mod.__all__:
            assert hasattr(mod, name)


# ---------------------------------------------------------------------------------------------
# f-I curve
# ---------------------------------------------------------------------------------------------


def closed_form_period_ms(i_pA: float, p: LIFParams = P) -> float:
    """ISI under a constant current: t_ref + tau ln((RI + E_L - V_r) / (RI + E_L - V_th))."""
    v_inf = p.E_L + p.R_m * i_pA
    return p.t_ref + p.tau_m * math.log((v_inf - p.V_reset) / (v_inf - p.V_th))


def fi_network(currents: np.ndarray) -> Network:
    return Network([Population("n", currents.size, LIF, P)],
                   inputs=[CurrentInput("n", currents)], monitors=[SpikeMonitor("n")],
                   dt_ms=0.01)


CURRENTS = np.array([400.0, 500.0, 800.0, 1500.0])


def _check_fi(result):
    for k, train in enumerate(result.spikes["n"].trains()):
        isi = np.diff(train).mean()
        assert isi == pytest.approx(closed_form_period_ms(CURRENTS[k]), rel=0.01), CURRENTS[k]


def test_fi_curve_torch():
    _check_fi(simulate(fi_network(CURRENTS), 500.0))


@pytest.mark.brian2
def test_fi_curve_brian2():
    _check_fi(simulate(fi_network(CURRENTS), 500.0, "brian2", brian2_target=B2))


# ---------------------------------------------------------------------------------------------
# Synaptic kernels and delays, against closed forms
# ---------------------------------------------------------------------------------------------

T0_MS, DT = 2.0, 0.1


def kernel_network(synapse, weight: float, delay_ms: float = 0.0) -> Network:
    """One input spike at T0 onto one (silent) LIF neuron; record the synaptic variables."""
    variables = [synapse.variable] + ([synapse.aux_variable] if synapse.aux_variable else [])
    return Network(
        [Population("n", 1, LIF, P)],
        inputs=[SpikeGeneratorInput("s", 1, np.array([0]), np.array([T0_MS]))],
        projections=[Projection("s", "n", synapse, OneToOne(), weight, delay_ms=delay_ms)],
        monitors=[StateMonitor("n", v) for v in variables] + [StateMonitor("n", "v")],
        dt_ms=DT)


def expected_kernel(synapse, weight, delay_ms, times):
    """Closed form sampled at the step starts: the jump acts from t0 + delay + dt on."""
    s = times - (T0_MS + delay_ms + DT)
    on = s > -1e-9
    s = np.where(on, s, 0.0)
    if synapse.kernel == "exponential":
        return np.where(on, weight * np.exp(-s / synapse.tau_ms), 0.0)
    return np.where(on, weight * (s / synapse.tau_ms) * np.exp(1 - s / synapse.tau_ms), 0.0)


SYNAPSES = [current_exp("syn", 5.0), conductance_exp("syn", 3.0, 0.0),
            current_alpha("syn", 2.0), conductance_alpha("syn", 4.0, -80.0)]


def _check_kernel(result, synapse, weight, delay_ms):
    rec = result.states[f"n.{synapse.variable}"]
    got = rec.values[0, :, 0]
    want = expected_kernel(synapse, weight, delay_ms, rec.times_ms)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * weight)
    assert rec.unit == synapse.unit


@pytest.mark.parametrize("synapse", SYNAPSES, ids=lambda s: f"{s.kind}-{s.kernel}")
def test_synaptic_kernel_torch(synapse):
    r = simulate(kernel_network(synapse, 2.0), 30.0, dtype=torch.float64)
    _check_kernel(r, synapse, 2.0, 0.0)


@pytest.mark.brian2
@pytest.mark.parametrize("synapse", SYNAPSES, ids=lambda s: f"{s.kind}-{s.kernel}")
def test_synaptic_kernel_brian2(synapse):
    r = simulate(kernel_network(synapse, 2.0), 30.0, "brian2", brian2_target=B2)
    _check_kernel(r, synapse, 2.0, 0.0)


@pytest.mark.parametrize("engine", ["torch", pytest.param("brian2", marks=pytest.mark.brian2)])
def test_delay_arrives_exactly_later(engine):
    syn = current_exp("syn", 5.0)
    r = simulate(kernel_network(syn, 100.0, delay_ms=1.5), 10.0, engine, brian2_target=B2,
                 dtype=torch.float64)
    _check_kernel(r, syn, 100.0, 1.5)
    rec = r.states["n.I_syn"]
    first = rec.times_ms[np.argmax(rec.values[0, :, 0] > 0)]
    assert first == pytest.approx(T0_MS + 1.5 + DT)
    # the membrane leaves rest in the step after the synaptic jump
    v = r.states["n.v"]
    assert v.times_ms[np.argmax(v.values[0, :, 0] > P.E_L + 1e-9)] == pytest.approx(first + DT)


# ---------------------------------------------------------------------------------------------
# A small deterministic network, both engines
# ---------------------------------------------------------------------------------------------


def small_network(seed: int = 0, conductance_update: str = "exponential") -> Network:
    rng = np.random.default_rng(seed)
    n_in, n = 20, 12
    times = np.round(rng.uniform(0, 190, 400) / DT) * DT
    idx = rng.integers(0, n_in, 400)
    _, keep = np.unique(np.stack([idx, np.rint(times / DT)]), axis=1, return_index=True)
    inp = SpikeGeneratorInput("inp", n_in, idx[keep], times[keep])
    pre = np.repeat(np.arange(n), n)
    post = np.tile(np.arange(n), n)
    return Network(
        [Population("a", n, LIF, P), Population("b", 4, LIF, LIFParams(tau_m=15.0, t_ref=3.0))],
        inputs=[inp, CurrentInput("a", np.linspace(0, 300, n))],
        projections=[
            Projection("inp", "a", current_exp("exc", 5.0), FixedProbability(0.4),
                       Uniform(300, 900), delay_ms=np.float64(0.5)),
            Projection("inp", "a", conductance_exp("ampa", 2.0, 0.0), FixedProbability(0.2),
                       Uniform(5, 20), delay_ms=0.0),
            Projection("a", "a", current_alpha("inh", 3.0, inhibitory=True), Explicit(pre, post),
                       Uniform(50, 150), delay_ms=np.round(rng.uniform(0.1, 3, n * n), 1)),
            Projection("a", "b", conductance_alpha("exc", 2.0, 0.0), AllToAll(), 30.0,
                       delay_ms=1.0),
        ],
        monitors=[SpikeMonitor("a"), SpikeMonitor("b"), StateMonitor("a", "v", every=5),
                  PopulationRateMonitor("a")],
        dt_ms=DT, seed=seed, conductance_update=conductance_update)


def assert_same_spikes(r1, r2, pop, trial1=0, trial2=0, tol_ms=DT + 1e-9):
    s1, s2 = r1.spikes[pop], r2.spikes[pop]
    for t1, t2 in zip(s1.trains(trial1), s2.trains(trial2), strict=True):
        assert t1.size == t2.size, (t1, t2)
        if t1.size:
            assert np.max(np.abs(t1 - t2)) <= tol_ms


def test_small_network_fires():
    r = simulate(small_network(), 200.0, dtype=torch.float64)
    counts = r.spikes["a"].counts()
    assert counts.sum() > 50 and r.spikes["b"].counts().sum() > 0
    assert r.population_rates_hz["a"].shape == (1, 2000)
    assert r.population_rates_hz["a"].sum() * DT / 1000 * 12 == pytest.approx(counts.sum())
    assert r.states["a.v"].values.shape == (1, 400, 12)


@pytest.mark.brian2
@pytest.mark.parametrize("update", ["exponential", "explicit"])
def test_small_network_torch_vs_brian2(update):
    net = small_network(conductance_update=update)
    rt = simulate(net, 200.0, dtype=torch.float64)
    rb = simulate(net, 200.0, "brian2", brian2_target=B2)
    assert rb.engine == "brian2:numpy" and rt.engine == "torch"
    assert rt.spikes["a"].counts().sum() > 50
    assert_same_spikes(rt, rb, "a")
    assert_same_spikes(rt, rb, "b")
    np.testing.assert_allclose(rt.states["a.v"].values, rb.states["a.v"].values, atol=1e-6)
    np.testing.assert_allclose(rt.population_rates_hz["a"], rb.population_rates_hz["a"],
                               atol=1e-6)


@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_propagation_modes_agree(mode):
    net = small_network()
    ref = simulate(net, 200.0, dtype=torch.float64, propagation="event")
    other = simulate(net, 200.0, dtype=torch.float64, propagation=mode)
    assert_same_spikes(ref, other, "a", tol_ms=1e-9)
    assert_same_spikes(ref, other, "b", tol_ms=1e-9)


@pytest.mark.parametrize("batch", [1, 2])
def test_compiled_step_agrees(batch):
    """compile=True (float spikes and block spike counts out of the compiled step; B = 2 scans
    blocks of 8, B = 1 falls back to a plain nonzero) gives the eager engine's spikes."""
    net = small_network()
    timings = {}
    ref = simulate(net, 100.0, dtype=torch.float64, propagation="event", batch_size=batch)
    comp = simulate(net, 100.0, dtype=torch.float64, propagation="event", batch_size=batch,
                    compile=True, timings=timings)
    assert timings["compile_s"] > 0 and timings["compile_s"] <= timings["setup_s"]
    for k in range(batch):
        for pop in ("a", "b"):
            assert_same_spikes(ref, comp, pop, trial1=k, trial2=k, tol_ms=1e-9)
    np.testing.assert_allclose(comp.states["a.v"].values, ref.states["a.v"].values, atol=1e-9)


def test_spike_indices_by_blocks():
    from neuro.engines.torch_engine import _nz_block, _spike_indices

    gen = torch.Generator().manual_seed(0)
    for b, n in ((1, 64), (3, 40), (4, 1000)):
        block = _nz_block(b * n)
        for p in (0.0, 0.01, 0.3):
            spikes = (torch.rand((b, n), generator=gen) < p).float()
            sums = spikes.view(-1, block).sum(1)
            found = _spike_indices(spikes, sums, block)
            plain = _spike_indices(spikes, None, None)
            if found is None:
                assert plain is None and spikes.sum() == 0
                continue
            trial, neuron = found
            assert torch.equal(neuron, plain[1])
            assert torch.equal(plain[0], torch.zeros_like(neuron) if trial is None else trial)


def test_no_merge_agrees():
    net = small_network()
    ref = simulate(net, 100.0, dtype=torch.float64)
    other = simulate(net, 100.0, dtype=torch.float64, merge_populations=False)
    assert_same_spikes(ref, other, "a", tol_ms=1e-9)


def test_float32_close_to_float64():
    net = small_network()
    r64 = simulate(net, 200.0, dtype=torch.float64)
    r32 = simulate(net, 200.0, dtype=torch.float32)
    # rounding may move a threshold crossing by one step, and tonic firing carries that on
    for t64, t32 in zip(r64.spikes["a"].trains(), r32.spikes["a"].trains(), strict=True):
        assert abs(t64.size - t32.size) <= 1
        k = min(t64.size, t32.size)
        assert np.all(np.abs(t64[:k] - t32[:k]) <= 5 * DT + 1e-9)
    diff = np.abs(r32.states["a.v"].values - r64.states["a.v"].values)
    assert np.median(diff) < 1e-3 and np.mean(diff > 1.0) < 0.05  # large only where spikes moved


# ---------------------------------------------------------------------------------------------
# Batches, Poisson inputs, time-varying currents
# ---------------------------------------------------------------------------------------------


def poisson_network(amplitude, per_trial=False) -> Network:
    return Network(
        [Population("a", 30, LIF, P, initial={"v": Uniform(-65, -50)})],
        inputs=[PoissonInput("p", 50, np.linspace(5, 40, 50)),
                CurrentInput("a", amplitude, per_trial=per_trial)],
        projections=[Projection("p", "a", current_exp("exc", 5.0), FixedProbability(0.3),
                                Uniform(100, 300), delay_ms=1.0),
                     Projection("a", "a", conductance_exp("inh", 10.0, -80.0),
                                FixedProbability(0.2), 5.0, delay_ms=0.5)],
        monitors=[SpikeMonitor("a"), SpikeMonitor("p"), StateMonitor("a", "g_inh", [0, 3])],
        dt_ms=DT, seed=5)


def test_batch_equals_single_runs():
    b = 3
    amps = np.stack([np.full(30, 150.0 + 50 * k) for k in range(b)])
    batch = simulate(poisson_network(amps, per_trial=True), 200.0, batch_size=b, seed=10)
    assert batch.spikes["a"].batch_size == b
    for k in range(b):
        single = simulate(poisson_network(amps[k:k + 1], per_trial=True), 200.0, seed=10 + k)
        for pop in ("a", "p"):
            assert_same_spikes(batch, single, pop, trial1=k, tol_ms=1e-9)
        np.testing.assert_array_equal(batch.states["a.g_inh"].values[k],
                                      single.states["a.g_inh"].values[0])
    counts = batch.spikes["a"].counts()
    assert counts[0].sum() < counts[-1].sum()  # trials really differ


def test_event_propagation_batch_equals_single_runs():
    """The event-driven path with B > 1 (trial offsets in the table's index type, spikes
    recorded from the propagation's nonzero()) against single runs."""
    b = 2
    amps = np.stack([np.full(30, 150.0 + 100 * k) for k in range(b)])
    batch = simulate(poisson_network(amps, per_trial=True), 200.0, batch_size=b, seed=3,
                     propagation="event")
    for k in range(b):
        single = simulate(poisson_network(amps[k:k + 1], per_trial=True), 200.0, seed=3 + k,
                          propagation="dense")
        for pop in ("a", "p"):
            assert_same_spikes(batch, single, pop, trial1=k, tol_ms=1e-9)
        np.testing.assert_allclose(batch.states["a.g_inh"].values[k],
                                   single.states["a.g_inh"].values[0], rtol=1e-5, atol=1e-4)


def test_event_table_int32_offsets(monkeypatch):
    """Large event tables keep int32 offsets (converted per step): same spikes."""
    from neuro.engines import torch_engine

    net = poisson_network(np.full(30, 200.0))
    ref = simulate(net, 100.0, batch_size=2, propagation="event")
    monkeypatch.setattr(torch_engine, "_INT64_TABLE_MAX_BYTES", 0)
    small = simulate(net, 100.0, batch_size=2, propagation="event")
    for k in range(2):
        for pop in ("a", "p"):
            assert_same_spikes(ref, small, pop, trial1=k, trial2=k, tol_ms=1e-9)


def test_poisson_rates():
    rates = np.linspace(5, 40, 50)
    r = simulate(poisson_network(0.0), 1000.0, batch_size=4)
    got = r.spikes["p"].rates_hz().mean(0)
    sd = np.sqrt(rates / 1.0 / 4)
    assert np.all(np.abs(got - rates) < 5 * sd)


def test_time_varying_current():
    steps = 1000
    amp = np.zeros((steps, 2))
    amp[200:600, 0] = 800.0  # a 40 ms pulse into neuron 0 only
    net = Network([Population("a", 2, LIF, P)], inputs=[CurrentInput("a", amp)],
                  monitors=[SpikeMonitor("a")], dt_ms=DT)
    r = simulate(net, 100.0)
    t0 = r.spikes["a"].trains()[0]
    assert r.spikes["a"].trains()[1].size == 0
    assert t0.size > 2 and t0.min() >= 20.0 and t0.max() < 60.0


@pytest.mark.brian2
def test_time_varying_inputs_brian2():
    steps = 1000
    amp = np.zeros((steps, 2))
    amp[200:600, 0] = 800.0
    net = Network([Population("a", 2, LIF, P)],
                  inputs=[CurrentInput("a", amp),
                          PoissonInput("p", 100, lambda t: np.where(t[:, None] < 50, 200.0, 0.0))],
                  monitors=[SpikeMonitor("a"), SpikeMonitor("p")], dt_ms=DT)
    rb = simulate(net, 100.0, "brian2", brian2_target=B2)
    rt = simulate(net, 100.0)
    assert_same_spikes(rt, rb, "a", tol_ms=1e-9)
    tp = rb.spikes["p"].time_ms
    assert tp.max() < 50.0 and abs(tp.size - 100 * 200 * 0.05) < 5 * math.sqrt(1000)


@pytest.mark.brian2
def test_poisson_network_brian2():
    r = simulate(poisson_network(150.0), 500.0, "brian2", brian2_target=B2, seed=3)
    rates = np.linspace(5, 40, 50)
    got = r.spikes["p"].rates_hz()[0]
    assert np.all(np.abs(got - rates) < 5 * np.sqrt(rates / 0.5))
    assert abs(got.mean() - rates.mean()) < 4 * np.sqrt(rates.mean() / 0.5 / 50)
    assert r.spikes["a"].counts().sum() > 0
    with pytest.raises(ValueError, match="not of the model's Brian2 equations"):
        net = Network([Population("a", 2, LIF, P)], monitors=[StateMonitor("a", "refrac_ms")])
        simulate(net, 1.0, "brian2", brian2_target=B2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    net = small_network()
    rc = simulate(net, 200.0, dtype=torch.float64)
    rg = simulate(net, 200.0, dtype=torch.float64, device="cuda")
    assert_same_spikes(rc, rg, "a", tol_ms=1e-9)


def test_brian2_refuses_batches():
    with pytest.raises(ValueError, match="one trial per run"):
        simulate(small_network(), 10.0, "brian2", batch_size=2)


@pytest.mark.slow
@pytest.mark.brian2
def test_brian2_targets_cython_and_standalone():
    net = small_network()
    rt = simulate(net, 200.0, dtype=torch.float64)
    timings: dict = {}
    rs = simulate(net, 200.0, "brian2", brian2_target="cpp_standalone", timings=timings)
    assert rs.engine == "brian2:cpp_standalone" and "compile_s" in timings
    assert_same_spikes(rt, rs, "a")
    rc = simulate(net, 200.0, "brian2", brian2_target="cython")  # runtime works again
    assert rc.engine == "brian2:cython"
    assert_same_spikes(rt, rc, "a")


@pytest.mark.parametrize("update", ["exponential", "explicit"])
def test_large_conductance_stays_bounded(update):
    """A 20,000 nS inhibitory jump (dt*g/C = 8): the exponential update relaxes v towards
    E_rev without overshoot; the explicit one overshoots far below it."""
    syn = conductance_exp("inh", 10.0, -80.0)
    net = Network([Population("n", 1, LIF, P, initial={"v": -55.0})],
                  inputs=[SpikeGeneratorInput("s", 1, np.array([0]), np.array([1.0]))],
                  projections=[Projection("s", "n", syn, OneToOne(), 20000.0)],
                  monitors=[StateMonitor("n", "v")], dt_ms=DT, conductance_update=update)
    v = simulate(net, 5.0, dtype=torch.float64).states["n.v"].values[0, :, 0]
    if update == "exponential":
        assert v.min() >= -80.0 - 1e-9 and v[-1] == pytest.approx(-80.0, abs=1.0)
    else:
        assert v.min() < -200.0
