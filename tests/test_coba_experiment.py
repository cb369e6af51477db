"""The `coba` experiment in its quick configuration."""

from __future__ import annotations

import json

import numpy as np

from experiments.coba import synaptic_events
from experiments.runner import run_experiment
from neuro.connectivity import Explicit
from neuro.models import LIF, LIFParams
from neuro.network import Network, Population, Projection, SpikeGeneratorInput, SpikeMonitor
from neuro.simulation import simulate
from neuro.synapses import current_exp


def test_synaptic_events_count_each_spike_times_its_out_degree():
    # source 0 -> targets 0, 1; source 1 -> target 0. Source 0 spikes twice, source 1 once.
    network = Network(
        populations=[Population("cells", 2, LIF, LIFParams())],
        inputs=[SpikeGeneratorInput("src", 2, np.array([0, 0, 1]), np.array([1.0, 5.0, 2.0]))],
        projections=[Projection("src", "cells", current_exp("e", 5.0),
                                Explicit(np.array([0, 0, 1]), np.array([0, 1, 0])), 1.0)],
        monitors=[SpikeMonitor("src")],
        dt_ms=0.1,
    )
    result = simulate(network, 10.0)
    assert synaptic_events(result, network.build()) == 2 * 2 + 1 * 1


def test_quick_coba_is_asynchronous_and_irregular(tmp_path):
    run_dir = run_experiment("coba", quick=True, out=tmp_path / "coba", progress=False)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 5.0 < metrics["exc_rate_hz"] < 60.0
    assert metrics["exc_isi_cv"] > 0.7
    assert abs(metrics["exc_pairwise_correlation_5ms"]) < 0.1
    assert metrics["synaptic_events"] > 0
    assert (run_dir / "coba.png").read_bytes().startswith(b"\x89PNG")
