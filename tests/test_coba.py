"""The COBA benchmark: construction, plausible rates, torch vs Brian2, and a timing print."""

from __future__ import annotations

import numpy as np
import pytest

from neuro import coba as coba_mod
from neuro.coba import COBA_PARAMS, coba_network
from neuro.simulation import simulate


def test_public_names():
    for name in coba_mod.__all__:
        assert hasattr(coba_mod, name)


def test_coba_structure():
    net = coba_network(4000, seed=1)
    assert [p.n for p in net.populations] == [3200, 800]
    assert COBA_PARAMS.g_L == pytest.approx(10.0)
    conn = net.build()
    n_syn = sum(p.n_synapses for p in conn.projections)
    assert abs(n_syn - 0.02 * 4000**2) < 5 * np.sqrt(0.02 * 0.98 * 4000**2)
    weights = {p.name: np.unique(p.weight) for p in conn.projections}
    assert weights["exc->inh:exc"].tolist() == [6.0] and weights["inh->exc:inh"].tolist() == [67.0]
    big = coba_network(16000, scale_weights=True)
    assert big.projections[0].weights == pytest.approx(1.5)


def test_coba_torch_short_run_plausible():
    """50 ms of the full N=4,000 network: the drive makes it fire within a plausible range."""
    r = simulate(coba_network(4000), 100.0)
    rate = r.spikes["exc"].rates_hz().mean()
    assert 5.0 < rate < 60.0
    assert r.population_rates_hz["exc"].shape == (1, 1000)


def test_coba_brette2007_variant_builds():
    net = coba_network(400, variant="brette2007")
    r = simulate(net, 20.0)
    assert r.spikes["exc"].n_neurons == 320


SEEDS = (0, 1, 2)
DURATION_MS = 500.0


@pytest.mark.slow
@pytest.mark.brian2
def test_coba_rates_torch_vs_brian2():
    """Mean excitatory rate within 5% between engines (3 seeds, N=4,000, 500 ms, cython).

    Brian2's COBA benchmark fires at about 23 Hz at N=4,000 (with Euler integration); our
    exponential integration gives a few percent more.
    """
    net = coba_network(4000)
    conn = net.build()
    rates = {"torch": [], "brian2": []}
    for seed in SEEDS:
        rt = simulate(net, DURATION_MS, seed=seed, connectome=conn)
        rb = simulate(net, DURATION_MS, "brian2", seed=seed, connectome=conn,
                      brian2_target="cython")
        rates["torch"].append(rt.spikes["exc"].rates_hz().mean())
        rates["brian2"].append(rb.spikes["exc"].rates_hz().mean())
    mt, mb = np.mean(rates["torch"]), np.mean(rates["brian2"])
    print(f"\nCOBA N=4000 exc rate: torch {mt:.2f} Hz, brian2 {mb:.2f} Hz "
          f"(per seed torch {np.round(rates['torch'], 2)}, brian2 {np.round(rates['brian2'], 2)})")
    assert abs(mt - mb) / mb < 0.05
    assert 15.0 < mt < 35.0 and 15.0 < mb < 35.0
