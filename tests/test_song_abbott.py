"""Experiment ``song-abbott``, quick configuration (250 inputs at 60 Hz for 25 s: the pairings
per synapse and the total drive of the full 100 s run; 8 seeds, so that a tail fraction has a
standard error of ~0.8 points), called directly."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import song_abbott
from experiments.run_record import RunContext, read_json, write_json


def _run(tmp_path, **overrides):
    ctx = RunContext(run_dir=tmp_path, seed=1, device="cpu", quick=True, progress=False)
    config = song_abbott.SongAbbottConfig(**{**song_abbott.QUICK, **overrides})
    out = song_abbott.run(config, ctx)
    write_json(tmp_path / "metrics.json", out.metrics)  # JSON-able
    return read_json(tmp_path / "metrics.json"), out.report


def test_quick_torch_weights_become_bimodal(tmp_path):
    """Both tails grow from the uniform start's 10% to >= 15% (the full run and Brian2's
    example end near 27% / 17%), and the output rate falls and settles."""
    metrics, report = _run(tmp_path, engine="torch")
    torch_summary = metrics["engines"]["torch"]
    assert torch_summary["trials"] == 8
    assert metrics["fraction_below_0.1_gmax"] >= 0.15
    assert metrics["fraction_above_0.9_gmax"] >= 0.15
    rates = np.array(torch_summary["output_rate_hz"])
    assert rates[0] > 1.5 * torch_summary["output_rate_last_10pct_hz"]
    assert 10.0 < torch_summary["output_rate_last_10pct_hz"] < 45.0
    assert (tmp_path / "song_abbott.png").read_bytes().startswith(b"\x89PNG")
    assert "w > 0.9 gmax" in report


def test_network_matches_brian2_example():
    """The defaults are Brian2's ``examples/synapses/STDP.py``."""
    config = song_abbott.SongAbbottConfig()
    net = song_abbott.song_abbott_network(config)
    rule = net.projections[0].plasticity
    unit = 60.0  # pA per unit of g_e: g_L = 1 nS times (E_e - v_r) = 60 mV
    assert rule.w_max == pytest.approx(0.01 * unit)
    assert rule.A_plus == pytest.approx(0.01 * 0.01 * unit)
    assert rule.A_minus == pytest.approx(1.05 * rule.A_plus)
    assert (rule.tau_plus, rule.tau_minus) == (20.0, 20.0)
    params = net.populations[0].params
    assert (params.tau_m, params.E_L, params.V_th, params.V_reset, params.t_ref) == \
        (10.0, -74.0, -54.0, -60.0, 0.0)
    assert net.inputs[0].n == 1000 and net.inputs[0].rates_hz == 15.0
    assert song_abbott.weight_fractions(np.array([0.0, 0.05, 0.5, 0.95]), 1.0) == (0.5, 0.25)


@pytest.mark.slow
@pytest.mark.brian2
def test_quick_both_engines_agree(tmp_path):
    """Brian2 (Cython) runs the same quick configuration; both engines' tails are >= 15% and
    their final weight distributions are close."""
    metrics, _ = _run(tmp_path, engine="both")
    for name in ("torch", "brian2"):
        summary = metrics["engines"][name]
        assert summary["fraction_below_0.1_gmax"] >= 0.15, name
        assert summary["fraction_above_0.9_gmax"] >= 0.15, name
    assert metrics["ks_distance_torch_vs_brian2"] < 0.15
