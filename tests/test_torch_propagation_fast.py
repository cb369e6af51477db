"""The torch engine's compiled fast path: the step that returns the decayed synaptic state as new
tensors (the time loop rebinds the synaptic buffers every step), conductance sums written as
chains of additions, the in-place step kept for plastic networks, and the spike log of
event-driven sources. Each is checked against the eager engine or against Brian2.

Brian2 tests use the ``numpy`` runtime target (no compilation).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro.coba import coba_network
from neuro.connectivity import AllToAll, FixedProbability, Uniform
from neuro.engines.torch_engine import _SpikeLog
from neuro.models.lif import LIF, LIFParams
from neuro.network import (
    CurrentInput,
    Network,
    Population,
    PopulationRateMonitor,
    Projection,
    SpikeGeneratorInput,
    SpikeMonitor,
    StateMonitor,
    WeightMonitor,
)
from neuro.plasticity import PairSTDPParams
from neuro.simulation import simulate
from neuro.synapses import conductance_alpha, conductance_exp, current_alpha, current_exp

B2 = "numpy"


def _same_spikes(a, b, pop, trials):
    for k in range(trials):
        for t1, t2 in zip(a.spikes[pop].trains(k), b.spikes[pop].trains(k), strict=True):
            np.testing.assert_allclose(t1, t2, atol=1e-9)


def test_compiled_coba_equals_eager_with_monitored_conductances():
    """COBA without delays (the ring buffer is the conductance tensor itself, rebound every
    step on the compiled path), 3 trials, conductances and v monitored."""
    mons = [SpikeMonitor("exc"), SpikeMonitor("inh"), PopulationRateMonitor("exc"),
            StateMonitor("exc", "v", neurons=[0, 7, 100], every=3),
            StateMonitor("exc", "g_exc", neurons=[0, 7, 100]),
            StateMonitor("inh", "g_inh", neurons=[1, 50])]
    net = coba_network(400, monitors=mons)
    kw = dict(dtype=torch.float64, batch_size=3, seed=4)
    eager = simulate(net, 80.0, **kw)
    comp = simulate(net, 80.0, compile=True, **kw)
    assert eager.spikes["exc"].time_ms.size > 100
    for pop in ("exc", "inh"):
        _same_spikes(eager, comp, pop, 3)
    for key in ("exc.v", "exc.g_exc", "inh.g_inh"):
        assert np.abs(eager.states[key].values).max() > 0
        np.testing.assert_allclose(comp.states[key].values, eager.states[key].values,
                                   rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(comp.population_rates_hz["exc"],
                                  eager.population_rates_hz["exc"])


def _many_synapses_network() -> Network:
    """One population with three conductances and two currents (sums over more than two
    variables of a kind), driven by spike generators."""
    rng = np.random.default_rng(3)
    n_in, n = 12, 6
    syns = [conductance_exp("ampa", 2.0, 0.0), conductance_exp("nmda", 8.0, 0.0),
            conductance_exp("gaba", 6.0, -80.0), current_exp("ie", 3.0),
            current_exp("ii", 4.0, inhibitory=True)]
    weights = [(4.0, 12.0), (1.0, 4.0), (2.0, 8.0), (100.0, 400.0), (50.0, 200.0)]
    inputs, projections = [], []
    for k, (syn, (lo, hi)) in enumerate(zip(syns, weights, strict=True)):
        times = np.unique(np.round(rng.uniform(0, 290, 300), 1))
        idx = rng.integers(0, n_in, times.size)
        inputs.append(SpikeGeneratorInput(f"in{k}", n_in, idx, times))
        projections.append(Projection(f"in{k}", "cells", syn, FixedProbability(0.5),
                                      Uniform(lo, hi)))
    params = LIFParams(C_m=200.0, tau_m=20.0, E_L=-65.0, V_th=-52.0, V_reset=-62.0, t_ref=2.0)
    return Network([Population("cells", n, LIF, params)], inputs=inputs,
                   projections=projections,
                   monitors=[SpikeMonitor("cells"), StateMonitor("cells", "v")], dt_ms=0.1,
                   seed=2)


@pytest.mark.brian2
def test_three_conductances_two_currents_against_brian2():
    net = _many_synapses_network()
    b = simulate(net, 300.0, "brian2", brian2_target=B2)
    for compile_ in (False, True):
        t = simulate(net, 300.0, dtype=torch.float64, compile=compile_)
        assert t.spikes["cells"].time_ms.size > 10
        np.testing.assert_allclose(t.spikes["cells"].time_ms, b.spikes["cells"].time_ms,
                                   atol=1e-9)
        np.testing.assert_array_equal(t.spikes["cells"].neuron, b.spikes["cells"].neuron)
        np.testing.assert_allclose(t.states["cells.v"].values, b.states["cells.v"].values,
                                   atol=1e-6)


def test_compiled_alpha_only_network_equals_eager():
    """No exponential variables at all (the compiled step passes that empty state through)
    and a ring buffer of one slot that is not the synaptic state (alpha kernels)."""
    rng = np.random.default_rng(0)
    times = np.unique(np.round(rng.uniform(0, 190, 300), 1))
    idx = rng.integers(0, 10, times.size)
    g_a, i_c = conductance_alpha("a", 2.0, 0.0), current_alpha("c", 3.0)
    net = Network(
        [Population("p", 8, LIF, LIFParams())],
        inputs=[SpikeGeneratorInput("inp", 10, idx, times), CurrentInput("p", 250.0)],
        projections=[Projection("inp", "p", i_c, FixedProbability(0.5), Uniform(5.0, 400.0)),
                     Projection("inp", "p", g_a, FixedProbability(0.5), Uniform(5.0, 20.0)),
                     Projection("p", "p", g_a, FixedProbability(0.3), 3.0)],
        monitors=[SpikeMonitor("p"), StateMonitor("p", "v"), StateMonitor("p", "g_a")],
        dt_ms=0.1)
    eager = simulate(net, 200.0, dtype=torch.float64, batch_size=2)
    comp = simulate(net, 200.0, dtype=torch.float64, batch_size=2, compile=True)
    assert eager.spikes["p"].time_ms.size > 100
    _same_spikes(eager, comp, "p", 2)
    for key in ("p.v", "p.g_a"):
        np.testing.assert_allclose(comp.states[key].values, eager.states[key].values,
                                   rtol=1e-9, atol=1e-9)


def test_compiled_plastic_network_equals_eager():
    """Plasticity keeps the in-place compiled step (its runtime holds the synaptic tensors)."""
    gen = np.random.default_rng(5)
    n_in = 30
    idx = np.repeat(np.arange(n_in), gen.poisson(10.0, n_in))
    times = np.round(gen.uniform(0, 400, idx.size), 1)
    keep = np.unique(np.stack([idx, times * 10]).T, axis=0, return_index=True)[1]
    params = LIFParams(C_m=200.0, tau_m=20.0, E_L=-70.0, V_th=-54.0, V_reset=-60.0, t_ref=2.0)
    exc = conductance_exp("exc", 5.0, 0.0)
    rule = PairSTDPParams(A_plus=0.4, A_minus=0.45, w_min=0.0, w_max=8.0)
    net = Network(
        [Population("cells", 8, LIF, params)],
        inputs=[SpikeGeneratorInput("inp", n_in, idx[keep], times[keep])],
        projections=[
            Projection("inp", "cells", exc, FixedProbability(0.6), Uniform(2.0, 6.0),
                       plasticity=rule, name="ff"),
            Projection("cells", "cells", exc, AllToAll(), 1.0, delay_ms=1.5),
        ],
        monitors=[SpikeMonitor("cells"), WeightMonitor("ff", synapses=[0, 3], every=10)],
        dt_ms=0.1, seed=5)
    eager = simulate(net, 400.0, dtype=torch.float64, batch_size=2)
    comp = simulate(net, 400.0, dtype=torch.float64, batch_size=2, compile=True)
    assert eager.spikes["cells"].time_ms.size > 20
    _same_spikes(eager, comp, "cells", 2)
    np.testing.assert_allclose(comp.weights["ff"], eager.weights["ff"], rtol=1e-12)


@pytest.mark.parametrize("batched", [False, True])
def test_spike_log_returns_every_step_in_order(batched):
    log = _SpikeLog(every=3)
    gen = torch.Generator().manual_seed(0)
    expected = []
    for t in (0, 2, 3, 7, 8, 9, 12):
        k = int(torch.randint(1, 5, (), generator=gen))
        rows = torch.randint(0, 100, (k,), generator=gen)
        trial = torch.randint(0, 4, (k,), generator=gen) if batched else None
        log.add(t, trial, rows)
        expected.append(np.column_stack([np.full(k, t), np.zeros(k, np.int64) if trial is None
                                         else trial.numpy(), rows.numpy()]))
    np.testing.assert_array_equal(log.hits(), np.concatenate(expected))
