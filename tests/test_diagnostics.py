"""Conversion diagnostics (:mod:`bridge.diagnostics`) on a small trained digits MLP.

Numbers lie in their ranges, rates agree better with the ANN as T grows, the attribution adds up
to the loss, the sweep orders its scales, and every plot function returns a figure.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from ann.datasets import load_digits
from ann.evaluation import evaluate
from ann.models import MLPConfig, build_model, macs
from ann.training import TrainConfig, train
from bridge import diagnostics as d
from bridge.conversion import convert, expected_rates
from bridge.graph import LIF, Affine, Flatten, Input, Output, SpikingGraph
from bridge.runners import run

T = 128


@pytest.fixture(scope="module")
def setup():
    """A two-hidden-layer MLP trained on digits, its conversion and one run of T steps."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = load_digits(seed=0)
        torch.manual_seed(0)
        model = build_model(MLPConfig(input_shape=(1, 8, 8), num_classes=10, hidden=(48, 32)))
        train(model, data.train, data.val, TrainConfig(epochs=15, lr=3e-3, batch_size=32),
              progress=False)
        model.eval()
        images, labels = data.test.images[:200], data.test.labels[:200]
        graph = convert(model, data.train.images).graph
        result = run(graph, images, T, record_spikes=False)
        ann = evaluate(model, data.test).accuracy
        ann_subset = float((model(images).argmax(1) == labels).double().mean())
    finally:
        torch.set_num_threads(previous)
    return {"data": data, "model": model, "graph": graph, "result": result, "images": images,
            "labels": labels, "ann": ann, "ann_subset": ann_subset}


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def test_accuracy_curve(setup):
    curve = d.accuracy_curve(setup["result"], setup["labels"])
    assert curve.T == T and curve.steps[0] == 1 and curve.steps[-1] == T
    assert np.all((curve.accuracy >= 0) & (curve.accuracy <= 1))
    assert np.array_equal(curve.accuracy, setup["result"].accuracy(setup["labels"]))
    assert list(curve.table()) == [8, 16, 32, 64, 128]
    assert curve.at(T) >= setup["ann_subset"] - 0.03
    with pytest.raises(ValueError, match="T must be in 1..128"):
        curve.at(0)
    fig = d.plot_accuracy_vs_T({"p99.9": curve}, setup["ann_subset"])
    assert isinstance(fig, Figure) and fig.axes[0].get_xscale() == "log"
    assert _png(fig).startswith(b"\x89PNG")


def test_rate_model_accuracy_matches_expected_rates(setup):
    graph, images, labels = setup["graph"], setup["images"], setup["labels"]
    readout = expected_rates(graph, images)["output"]
    expected = float((readout.argmax(1) == labels).double().mean())
    assert d.rate_model_accuracy(graph, images, labels) == expected


def test_layer_agreement_improves_with_T(setup):
    agreement = d.layer_agreement(setup["graph"], setup["images"], (4, 16, 64, T))
    assert list(agreement) == setup["graph"].neuron_layers()
    for name, a in agreement.items():
        assert a.steps == (4, 16, 64, T)
        assert np.all((a.correlation >= -1) & (a.correlation <= 1))
        assert np.all(a.rmse >= 0) and np.all(a.mean_abs_error >= 0)
        assert np.all((a.snn_rate >= 0) & (a.snn_rate <= 1))
        assert 0 <= a.expected_rate <= 1 and 0 <= a.saturated_fraction <= 1
        assert a.correlation[-1] > 0.99, name
        assert a.rmse[-1] < a.rmse[0] / 4, name
        assert abs(a.snn_rate[-1] - a.expected_rate) < 0.02
    # The same rates as a run of T steps (counts read mid-run equal a shorter run's counts).
    first = setup["graph"].neuron_layers()[0]
    short = run(setup["graph"], setup["images"], 16)
    target = expected_rates(setup["graph"], setup["images"])[first]
    rmse = float(((short.spike_counts[first] / 16 - target) ** 2).double().mean().sqrt())
    assert agreement[first].rmse[1] == pytest.approx(rmse, rel=1e-6)
    fig = d.plot_layer_agreement(agreement)
    assert len(fig.axes) == 2 and _png(fig).startswith(b"\x89PNG")


def test_layer_attribution_adds_up(setup):
    graph, images, labels = setup["graph"], setup["images"], setup["labels"]
    attribution = d.layer_attribution(graph, images, labels, T, snn_result=setup["result"],
                                      ann_accuracy=setup["ann_subset"])
    layers = graph.neuron_layers()
    assert attribution.layers == tuple(layers) and attribution.hybrid.shape == (3, T)
    assert np.all((attribution.hybrid >= 0) & (attribution.hybrid <= 1))
    # Row 0 is the SNN; the last row is the rate model, constant in T.
    assert np.array_equal(attribution.hybrid[0], setup["result"].accuracy(labels))
    assert np.all(attribution.hybrid[-1] == d.rate_model_accuracy(graph, images, labels))
    for t in (8, 32, T):
        losses = attribution.losses(t)
        assert set(losses) == {"ann_vs_rate_model", *layers}
        snn = setup["result"].accuracy(labels)[t - 1]
        assert sum(losses.values()) == pytest.approx(setup["ann_subset"] - snn, abs=1e-12)
    assert attribution.worst_layer(8) in layers
    # The middle hybrid (first layer exact) approaches the rate model as T grows.
    assert abs(attribution.hybrid[1, -1] - attribution.hybrid[2, -1]) <= 0.02
    report = attribution.to_dict()
    assert set(report["hybrid_accuracy"]) == {"snn", f"exact_up_to_{layers[0]}",
                                              f"exact_up_to_{layers[1]}"}
    fig = d.plot_layer_attribution(attribution)
    assert len(fig.axes) == 2 and _png(fig).startswith(b"\x89PNG")


def test_tail_graph_replaces_the_head_by_its_rates(setup):
    graph = setup["graph"]
    first = graph.neuron_layers()[0]
    tail = d.tail_graph(graph, first)
    assert tail.input_shape == graph.shapes[first]
    assert tail.order[1:] == graph.order[graph.order.index(first) + 1:]
    rates = expected_rates(graph, setup["images"])
    tail_rates = expected_rates(tail, rates[first])
    assert torch.allclose(tail_rates["output"], rates["output"], atol=1e-5)
    with pytest.raises(ValueError, match="not an inner node"):
        d.tail_graph(graph, "output")


def test_percentile_sweep(setup):
    data = setup["data"]
    sweep = d.percentile_sweep(setup["model"], data.train.images, setup["images"][:100],
                               setup["labels"][:100], percentiles=(99.0, 99.9, "max"), T=32,
                               ann_accuracy=setup["ann_subset"])
    assert [e.label for e in sweep.entries] == ["p99", "p99.9", "max"]
    first = setup["graph"].neuron_layers()[0]
    scales = [e.scales[first] for e in sweep.entries]
    assert scales[0] <= scales[1] <= scales[2]
    table = sweep.table((8, 32, 64))
    for label, row in table.items():
        assert list(row) == [8, 32], label
        assert all(0 <= v <= 1 for v in row.values())
    # Lower percentiles clip more: more spikes, more synaptic operations.
    synops = [e.operations.at(32)["synops_per_image"] for e in sweep.entries]
    assert synops[0] >= synops[2]
    assert sweep.best(32) in sweep.entries
    assert set(sweep.to_dict((8, 32))["max"]) >= {"accuracy", "rate_model_accuracy"}
    fig = d.plot_percentile_sweep(sweep)
    assert len(fig.axes) == 2 and _png(fig).startswith(b"\x89PNG")


def test_operations_curve(setup):
    result, labels = setup["result"], setup["labels"]
    ops = d.operations_curve(result, labels)
    assert ops.ann_macs == macs(setup["model"], (1, 8, 8))
    assert np.all(np.diff(ops.synops) >= 0) and np.all(np.diff(ops.analog_macs) >= 0)
    at = ops.at(T)
    assert at["synops_per_image"] == pytest.approx(sum(result.synops_per_sample().values()))
    assert at["analog_macs_per_image"] == pytest.approx(
        sum(result.analog_macs_per_sample().values()))
    assert at["ops_over_ann_macs"] == pytest.approx(at["ops_per_image"] / ops.ann_macs)
    fig = d.plot_operations_vs_accuracy({"SNN": ops}, setup["ann_subset"])
    assert _png(fig).startswith(b"\x89PNG")


def test_diagnostics_reject_other_graphs(setup):
    lif = SpikingGraph.sequential([
        ("input", Input(shape=(4,), encoding="current")),
        ("fc", Affine(weight=torch.ones(3, 4), bias=torch.zeros(3))),
        ("lif", LIF(threshold=1.0, tau_ms=10.0, reset="subtract", v_init_fraction=0.0)),
        ("flat", Flatten()),
        ("fc2", Affine(weight=torch.ones(2, 3), bias=torch.zeros(2))),
        ("output", Output()),
    ], dt_ms=1.0)
    with pytest.raises(ValueError, match="IF neurons with reset by subtraction"):
        d.layer_agreement(lif, torch.rand(5, 4), (4,))
    with pytest.raises(ValueError, match=r"images must have shape"):
        d.layer_agreement(setup["graph"], torch.rand(5, 3, 3), (4,))
