"""The spiking graph of :mod:`bridge.graph`: shape checks, explicit parameters, dict / file / NIR
round trips (identical SNN outputs after each)."""

from __future__ import annotations

import importlib
import math

import nir
import numpy as np
import pytest
import torch

from bridge.graph import (
    IF,
    LIF,
    Affine,
    AvgPool2d,
    Conv2d,
    Flatten,
    GraphError,
    Input,
    MaxPool2d,
    Output,
    SpikingGraph,
    decay_factor,
    fan_out,
    graph_macs,
    load_graph,
    save_graph,
)
from bridge.nir_io import NIRExportError, NIRImportError, from_nir, read_nir, to_nir, write_nir
from bridge.runners import run


def _cnn_graph(encoding: str = "current", *, maxpool: bool = False, lif: bool = True):
    """A small graph with every node type: per-channel thresholds, an initial membrane,
    average (or spiking max) pooling, an LIF layer with reset to zero."""
    g = torch.Generator().manual_seed(1)
    pool = MaxPool2d(2, 2, 0) if maxpool else AvgPool2d(2, 2, 0)
    hidden = (
        LIF(tau_ms=20.0, threshold=torch.tensor(0.8), reset="zero", v_init_fraction=0.0)
        if lif
        else IF(threshold=torch.tensor(0.8), reset="zero", v_init_fraction=0.0)
    )
    layers = [
        ("input", Input(shape=(1, 8, 8), encoding=encoding)),
        ("conv", Conv2d(torch.randn(4, 1, 3, 3, generator=g), 0.1 * torch.randn(4, generator=g),
                        stride=1, padding=1)),
        ("if1", IF(threshold=torch.tensor([1.0, 0.5, 2.0, 1.5]), reset="subtract",
                   v_init_fraction=0.5)),
        ("pool", pool),
        ("flat", Flatten()),
        ("fc1", Affine(torch.randn(20, 64, generator=g) * 0.3, torch.zeros(20))),
        ("hidden", hidden),
        ("fc2", Affine(torch.randn(10, 20, generator=g), torch.randn(10, generator=g))),
        ("output", Output()),
    ]
    return SpikingGraph.sequential(layers, dt_ms=0.5)


def _images(n: int = 6) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(2))


def _assert_same_run(a: SpikingGraph, b: SpikingGraph, T: int = 24) -> None:
    images = _images()
    ra, rb = run(a, images, T, seed=3), run(b, images, T, seed=3)
    assert torch.equal(ra.output, rb.output)
    assert torch.equal(ra.predictions, rb.predictions)
    assert ra.spike_counts.keys() == rb.spike_counts.keys()
    for name in ra.spike_counts:
        assert torch.equal(ra.spike_counts[name], rb.spike_counts[name])
    assert sum(float(c.sum()) for c in ra.spike_counts.values()) > 0  # not a vacuous test


# ------------------------------------------------------------------------- construction


def test_shapes_are_inferred():
    graph = _cnn_graph()
    assert graph.order[0] == "input" and graph.order[-1] == "output"
    assert graph.shapes["conv"] == (4, 8, 8)
    assert graph.shapes["pool"] == (4, 4, 4)
    assert graph.shapes["flat"] == (64,)
    assert graph.shapes["output"] == (10,)
    assert graph.neuron_layers() == ["if1", "hidden"]
    assert graph_macs(graph) == {"conv": 4 * 8 * 8 * 9, "fc1": 64 * 20, "fc2": 200}


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([Input((1, 8, 8), "current"), Affine(torch.ones(3, 64), torch.zeros(3)), Output()],
         r"affine_1.*needs input shape \(64,\), got \(1, 8, 8\).*Flatten"),
        ([Input((2, 8, 8), "current"), Conv2d(torch.ones(3, 1, 3, 3), torch.zeros(3), 1, 0),
          Flatten(), Output()],
         r"conv2d_1.*needs a \(1, H, W\) input, got \(2, 8, 8\)"),
        ([Input((1, 2, 2), "current"), AvgPool2d(3, 3, 0), Flatten(), Output()],
         r"avgpool2d_1.*does not fit"),
        ([Input((4,), "current"), IF(torch.ones(3), "subtract", 0.0), Output()],
         r"if_1.*threshold of shape \(3,\) does not fit a layer of shape \(4,\)"),
        ([Input((2, 4, 4), "current"), IF(torch.ones(4), "subtract", 0.0), Flatten(), Output()],
         r"threshold of shape \(4,\) does not fit"),
        ([Input((1, 8, 8), "current"), Output()], r"Output needs a 1-D input"),
    ],
)
def test_shape_errors_name_the_node(layers, message):
    with pytest.raises(GraphError, match=message):
        SpikingGraph.sequential(layers, dt_ms=1.0)


def _nodes():
    return {
        "in": Input((4,), "current"),
        "fc": Affine(torch.ones(2, 4), torch.zeros(2)),
        "out": Output(),
    }


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ((("in", "fc"), ("fc", "nowhere")), "not in the graph"),
        ((("in", "fc"),), "one chain from Input"),
        ((("in", "fc"), ("in", "out")), "two successors"),
        ((("in", "out"), ("fc", "out")), "two predecessors"),
    ],
)
def test_structure_errors(edges, message):
    with pytest.raises(GraphError, match=message):
        SpikingGraph(nodes=_nodes(), edges=edges, dt_ms=1.0)


def test_exactly_one_input_and_output():
    nodes = _nodes() | {"in2": Input((4,), "current")}
    with pytest.raises(GraphError, match="exactly one Input"):
        SpikingGraph(nodes=nodes, edges=(("in", "fc"), ("fc", "out")), dt_ms=1.0)


def test_no_hidden_defaults():
    edges = (("in", "fc"), ("fc", "out"))
    with pytest.raises(TypeError, match="dt_ms"):
        SpikingGraph(nodes=_nodes(), edges=edges)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        IF(threshold=torch.tensor(1.0))  # type: ignore[call-arg]  # reset, v_init_fraction
    with pytest.raises(TypeError):
        Input((4,))  # type: ignore[call-arg]  # encoding
    with pytest.raises(TypeError):
        LIF(threshold=torch.tensor(1.0), reset="zero", v_init_fraction=0.0)  # type: ignore
    data = SpikingGraph(nodes=_nodes(), edges=edges, dt_ms=1.0).to_dict()
    del data["dt_ms"]
    with pytest.raises(GraphError, match="lacks 'dt_ms'"):
        SpikingGraph.from_dict(data)
    for dt in (0.0, -1.0, math.nan, math.inf, True):
        with pytest.raises(GraphError, match="dt_ms"):
            SpikingGraph(nodes=_nodes(), edges=edges, dt_ms=dt)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: IF(torch.tensor(0.0), "subtract", 0.0), "thresholds must be > 0"),
        (lambda: IF(torch.tensor(1.0), "sometimes", 0.0), "reset must be one of"),
        (lambda: IF(torch.tensor(1.0), "subtract", 1.0), r"v_init_fraction must be in \[0, 1\)"),
        (lambda: LIF(0.0, torch.tensor(1.0), "zero", 0.0), "tau_ms must be positive"),
        (lambda: Input((1, 8, 8), "latency"), "encoding must be one of"),
        (lambda: Affine(torch.tensor([[math.nan]]), torch.zeros(1)), "must be finite"),
        (lambda: Conv2d(torch.ones(1, 1, 3, 3), torch.zeros(1), stride=0, padding=0),
         "stride must be >= 1"),
        (lambda: MaxPool2d(2, 2, 2), "padding"),
        (lambda: Affine(torch.ones(3, 4), torch.zeros(2)), "bias has 2 entries"),
    ],
)
def test_node_validation(make, message):
    with pytest.raises(GraphError, match=message):
        make()


def test_decay_factor():
    assert decay_factor(20.0, 1.0) == pytest.approx(math.exp(-1 / 20))
    assert decay_factor(math.inf, 1.0) == 1.0
    with pytest.raises(GraphError):
        decay_factor(-1.0, 1.0)


def test_fan_out_matches_brute_force():
    conv = Conv2d(torch.ones(3, 2, 3, 3), torch.zeros(3), stride=2, padding=1)
    shape = (2, 7, 6)
    x = torch.zeros((1, *shape), requires_grad=True)
    counts = torch.zeros(shape)
    out = torch.nn.functional.conv2d(x, torch.ones(3, 2, 3, 3), None, 2, 1)
    for index in range(out.numel()):
        (grad,) = torch.autograd.grad(out.reshape(-1)[index], x, retain_graph=True)
        counts += (grad[0] != 0).float()
    assert torch.equal(fan_out(conv, shape), counts)
    affine = Affine(torch.ones(5, 4), torch.zeros(5))
    assert torch.equal(fan_out(affine, (4,)), torch.full((4,), 5.0))


# ------------------------------------------------------------------------- round trips


def test_dict_round_trip_gives_identical_outputs():
    graph = _cnn_graph("poisson")
    again = SpikingGraph.from_dict(graph.to_dict())
    assert again.order == graph.order and again.shapes == graph.shapes
    assert again.dt_ms == graph.dt_ms
    assert torch.equal(again.nodes["if1"].threshold, graph.nodes["if1"].threshold)
    _assert_same_run(graph, again)


def test_file_round_trip_gives_identical_outputs(tmp_path):
    graph = _cnn_graph(maxpool=True)
    path = tmp_path / "net.pt"
    save_graph(graph, path)
    assert [p.name for p in tmp_path.iterdir()] == ["net.pt"]  # written atomically, no leftovers
    raw = torch.load(path, weights_only=True)  # plain containers and tensors only
    assert raw["format"] == "spikebridge-snn-graph" and raw["dt_ms"] == 0.5
    _assert_same_run(graph, load_graph(path))


def test_load_graph_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(GraphError, match="cannot read graph file"):
        load_graph(bad)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(GraphError, match="not a spikebridge SNN graph"):
        load_graph(other)


@pytest.mark.parametrize("encoding", ["current", "poisson"])
def test_nir_round_trip_gives_identical_outputs(tmp_path, encoding):
    graph = _cnn_graph(encoding)
    path = tmp_path / "net.nir"
    write_nir(graph, path)
    again = read_nir(path)
    assert again.dt_ms == graph.dt_ms
    assert again.input.encoding == encoding
    assert again.order == graph.order
    assert again.nodes["if1"].threshold.shape == (4,)  # per-channel threshold compressed back
    assert again.nodes["if1"].v_init_fraction == 0.5
    assert again.nodes["if1"].reset == "subtract"
    assert again.nodes["hidden"].tau_ms == 20.0 and again.nodes["hidden"].reset == "zero"
    _assert_same_run(graph, again)


def test_nir_file_carries_dt_and_reset_in_metadata(tmp_path):
    path = tmp_path / "net.nir"
    write_nir(_cnn_graph(), path)
    raw = nir.read(path)
    assert float(raw.metadata["dt_ms"]) == 0.5
    assert isinstance(raw.nodes["if1"], nir.IF)
    assert raw.nodes["if1"].v_threshold.shape == (4, 8, 8)
    assert str(raw.nodes["if1"].metadata["reset"]) == "subtract"
    assert isinstance(raw.nodes["hidden"], nir.LIF)
    assert np.allclose(raw.nodes["hidden"].tau, 0.02)  # seconds


def test_nir_export_rejects_spiking_maxpool():
    with pytest.raises(NIRExportError, match="MaxPool2d.*NIR 1.0"):
        to_nir(_cnn_graph(maxpool=True))


def test_nir_import_of_a_foreign_graph_needs_dt_and_encoding():
    foreign = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([3])}),
        nir.Affine(weight=np.eye(3, dtype=np.float32), bias=np.zeros(3, dtype=np.float32)),
        nir.IF(r=np.full(3, 2.0), v_threshold=np.full(3, 3.0)),
        nir.Affine(weight=np.ones((2, 3), dtype=np.float32), bias=np.zeros(2, dtype=np.float32)),
        nir.Output(output_type={"output": np.array([2])}),
    )
    with pytest.raises(NIRImportError, match="pass dt_ms"):
        from_nir(foreign)
    with pytest.raises(NIRImportError, match="input_encoding"):
        from_nir(foreign, dt_ms=1.0)
    graph = from_nir(foreign, dt_ms=1.0, input_encoding="current")
    neuron = graph.nodes["if"]
    # v' = v / r turns IF(r=2, theta=3) into IF(r=1, theta=1.5) with the same spikes.
    assert float(neuron.threshold) == 1.5 and neuron.threshold.ndim == 0
    assert neuron.reset == "zero" and neuron.v_init_fraction == 0.0  # NIR's own semantics


def test_nir_import_rejects_unknown_nodes():
    foreign = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([3])}),
        nir.Threshold(threshold=np.ones(3)),
        nir.Output(output_type={"output": np.array([3])}),
    )
    with pytest.raises(NIRImportError, match="Threshold has no spikebridge equivalent"):
        from_nir(foreign, dt_ms=1.0, input_encoding="current")


def test_public_names():
    names = ("bridge", "bridge.graph", "bridge.nir_io", "bridge.conversion", "bridge.calibration",
             "bridge.runners", "bridge.runners.snntorch_runner")
    modules = [importlib.import_module(name) for name in names]
    for module in modules:
        assert len(set(module.__all__)) == len(module.__all__), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
