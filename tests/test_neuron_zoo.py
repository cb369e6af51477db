"""The `neuron-zoo` experiment, quick configuration, on both engines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.neuron_zoo import lif_rate_hz, steady_rates_hz
from experiments.runner import run_experiment
from neuro.models import LIFParams


def test_lif_closed_form_rate():
    params = LIFParams(C_m=250.0, tau_m=10.0, E_L=-65.0, V_th=-50.0, t_ref=2.0)
    # R I = 30 mV -> period = 2 + 10 ln(30 / 15) ms
    expected = 1000.0 / (2.0 + 10.0 * np.log(2.0))
    assert lif_rate_hz(params, np.array([750.0]))[0] == pytest.approx(expected)
    assert lif_rate_hz(params, np.array([375.0, 0.0])).tolist() == [0.0, 0.0]


def test_steady_rate_uses_isis_inside_the_window():
    trains = [np.array([10.0, 60.0, 70.0, 80.0]), np.array([75.0]), np.array([])]
    rates = steady_rates_hz(trains, 50.0, 100.0)
    assert rates.tolist() == [100.0, 20.0, 0.0]


@pytest.mark.brian2
def test_quick_neuron_zoo_agrees_between_engines(tmp_path):
    run_dir = run_experiment("neuron-zoo", quick=True, out=tmp_path / "zoo", progress=False)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for engine in ("torch", "brian2"):
        assert metrics[f"lif_max_relative_error_{engine}"] <= 0.01
    for label, entry in metrics["fi"].items():
        assert entry["max_abs_rate_difference_hz"] <= 1.0, label
        assert max(entry["rates_hz_torch"]) > 10.0, f"{label} never fires"
    counts = metrics["izhikevich_spike_counts"]
    assert counts["fast_spiking"] > 2 * counts["regular_spiking"]
    for name in ("fi_curves.png", "izhikevich_patterns.png", "hh_action_potential.png"):
        assert (run_dir / name).read_bytes().startswith(b"\x89PNG")
