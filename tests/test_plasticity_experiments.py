"""The plasticity experiments (`stdp-window`, `stdp-frequency`, `oja-pca`, `bcm-selectivity`),
quick configurations, called directly; plus the event-driven STDP driver against closed forms and
a dense loop."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from experiments import bcm_selectivity, oja_pca, stdp_frequency, stdp_window
from experiments.run_record import RunContext, read_json, write_json
from neuro.plasticity import (
    SONG_2000,
    TRIPLET_VISUAL_ALL_TO_ALL_MINIMAL,
    apply_weight_change,
    stdp_triplet_initial_traces,
    stdp_triplet_step,
)


def _run(module, config_type, tmp_path, seed=0):
    ctx = RunContext(run_dir=tmp_path, seed=seed, device="cpu", quick=True, progress=False)
    out = module.run(config_type(**module.QUICK), ctx)
    write_json(tmp_path / "metrics.json", out.metrics)  # JSON-able
    return read_json(tmp_path / "metrics.json"), out.report


def _assert_png(path):
    assert path.read_bytes().startswith(b"\x89PNG"), path


# --------------------------------------------------------------------------- STDP driver


def test_isolated_pair_gives_the_pair_window():
    pre, post = stdp_window.pairing_spike_times([10.0, -10.0], 1, 1.0, t_first_ms=50.0)
    w = stdp_window.spike_train_weights(SONG_2000, pre, post, w0=0.5)
    assert w[0] - 0.5 == pytest.approx(SONG_2000.A_plus * math.exp(-10.0 / 20.0), rel=1e-12)
    assert w[1] - 0.5 == pytest.approx(-SONG_2000.A_minus * math.exp(-10.0 / 20.0), rel=1e-12)


def test_event_driven_driver_matches_a_dense_loop():
    """Skipping spike-free stretches in one exact-decay step equals stepping every 0.1 ms."""
    params = TRIPLET_VISUAL_ALL_TO_ALL_MINIMAL
    pre, post = stdp_window.pairing_spike_times([7.0, -12.0, 0.0], 5, 20.0, t_first_ms=20.0)
    event_driven = stdp_window.spike_train_weights(params, pre, post, w0=1.0)

    dt, n_steps = 0.1, 3000
    def raster(times):
        spikes = torch.zeros(n_steps, len(times), 1, dtype=torch.float64)
        for b, t in enumerate(times):
            spikes[np.round(t / dt).astype(int) - 1, b, 0] = 1.0  # step i ends at (i + 1) dt
        return spikes
    pre_r, post_r = raster(pre), raster(post)
    w = torch.ones(3, 1, 1, dtype=torch.float64)
    traces = stdp_triplet_initial_traces(3, 1, 1, dtype=torch.float64)
    for i in range(n_steps):
        delta_w, traces = stdp_triplet_step(pre_r[i], post_r[i], traces, w, params, dt)
        w = apply_weight_change(w, delta_w, params)
    np.testing.assert_allclose(event_driven, w[:, 0, 0].numpy(), rtol=1e-10)


# --------------------------------------------------------------------------- experiments


def test_stdp_window_quick(tmp_path):
    metrics, report = _run(stdp_window, stdp_window.STDPWindowConfig, tmp_path)
    pair = metrics["rules"]["pair (Song 2000)"]
    assert pair["potentiation_when_pre_first"] and pair["depression_when_post_first"]
    assert pair["bi_poo_shape"]
    fit = pair["fit"]
    assert fit["tau_plus_ms"] == pytest.approx(SONG_2000.tau_plus, rel=0.1)
    assert fit["tau_minus_ms"] == pytest.approx(SONG_2000.tau_minus, rel=0.1)
    assert fit["A_plus"] == pytest.approx(SONG_2000.A_plus, rel=0.1)
    assert fit["A_minus"] == pytest.approx(SONG_2000.A_minus, rel=0.1)
    hippocampal = metrics["rules"]["triplet hippocampal all to all minimal"]
    assert hippocampal["bi_poo_shape"]
    assert hippocampal["fit"]["tau_plus_ms"] == pytest.approx(16.8, rel=0.1)
    assert hippocampal["fit"]["tau_minus_ms"] == pytest.approx(33.7, rel=0.1)
    # visual cortex, no pair potentiation term: depression-only at 1 Hz
    visual = metrics["rules"]["triplet visual all to all minimal"]
    assert visual["peak_potentiation_per_pair"] < 1e-3 * visual["peak_depression_per_pair"]
    assert not visual["bi_poo_shape"]
    _assert_png(tmp_path / "stdp_window.png")
    assert "stdp_window.png" in report


def test_stdp_frequency_quick(tmp_path):
    metrics, _ = _run(stdp_frequency, stdp_frequency.STDPFrequencyConfig, tmp_path)
    frequencies = metrics["frequencies_hz"]
    assert frequencies[0] == 0.1 and frequencies[-1] == 50.0
    triplet = metrics["rules"]["triplet visual all to all minimal"]
    plus, minus = triplet["dw_relative_percent_plus"], triplet["dw_relative_percent_minus"]
    # +10 ms: no change at 0.1 Hz, potentiation growing to 50 Hz
    assert abs(plus[0]) < 0.1 and plus[-1] > 20.0
    assert np.all(np.diff(plus) >= -1e-9)
    # -10 ms: depression at 0.1 Hz, potentiation at 50 Hz, a crossover in between
    assert minus[0] < -10.0 and minus[-1] > 20.0
    assert 20.0 < triplet["crossover_hz_minus"] < 50.0
    nearest = metrics["rules"]["triplet visual nearest minimal"]
    assert 20.0 < nearest["crossover_hz_minus"] < 50.0
    # the pair rule: -10 ms never potentiates
    pair = metrics["rules"]["pair (Song 2000)"]
    assert pair["crossover_hz_minus"] is None
    assert max(pair["dw_relative_percent_minus"]) < 0
    _assert_png(tmp_path / "stdp_frequency.png")


def test_oja_pca_quick(tmp_path):
    metrics, _ = _run(oja_pca, oja_pca.OjaPCAConfig, tmp_path)
    assert metrics["oja"]["cosine_first_component"] >= 0.99
    assert metrics["oja"]["weight_norm"] == pytest.approx(1.0, abs=0.05)
    assert min(metrics["sanger"]["cosines"]) >= 0.98
    assert max(metrics["sanger"]["principal_angles_deg"]) < 8.1
    assert max(metrics["autoencoder"]["principal_angles_deg"]) < 8.1
    # the autoencoder finds the subspace, not the individual components
    assert min(metrics["autoencoder"]["best_cosine_per_component"]) < 0.98
    for method in ("oja", "sanger", "autoencoder"):
        assert metrics[method]["samples_to_settle"] is not None, method
        assert metrics[method]["wall_time_s"] > 0
    _assert_png(tmp_path / "oja_convergence.png")
    _assert_png(tmp_path / "subspace_error.png")


def test_bcm_selectivity_quick_and_reproducible(tmp_path):
    metrics, _ = _run(bcm_selectivity, bcm_selectivity.BCMSelectivityConfig, tmp_path / "a")
    assert metrics["selectivity_index_trial0"] >= 0.8
    assert min(metrics["selectivity_index"]) >= 0.8
    expected = metrics["expected_preferred_response"]
    assert np.mean(metrics["preferred_response"]) == pytest.approx(expected, rel=0.2)
    _assert_png(tmp_path / "a" / "bcm_selectivity.png")
    again, _ = _run(bcm_selectivity, bcm_selectivity.BCMSelectivityConfig, tmp_path / "b")
    assert json.dumps(again, sort_keys=True) == json.dumps(metrics, sort_keys=True)


def test_selectivity_index():
    index = bcm_selectivity.selectivity_index(np.array([[4.0, 0.0, -1.0], [2.0, 2.0, 2.0],
                                                        [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(index, [1.0, 0.0, 0.0])


def test_projection_distance():
    e = np.eye(4)
    assert oja_pca.projection_distance(e[:, :2], e[:, [1, 0]] * 3.0) == pytest.approx(0.0,
                                                                                      abs=1e-12)
    assert oja_pca.projection_distance(e[:, :2], e[:, 2:]) == pytest.approx(1.0)
