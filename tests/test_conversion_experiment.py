"""The ``conversion`` experiment: its quick configuration writes every plot and metric, and the
SNN reaches the ANN's accuracy; the Fashion-MNIST CNN preset is the issue's network."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import experiments.runner as runner
from ann.models import CNNConfig, build_model
from experiments import conversion
from experiments.runner import make_config, run_experiment

PNGS = ("accuracy_vs_T.png", "layer_correlation.png", "synops_vs_accuracy.png",
        "percentile_sweep.png", "layer_attribution.png")


@pytest.fixture(autouse=True)
def _registered(monkeypatch):
    """Find the experiment by name whether or not the registry lists it yet."""
    original = runner.get_experiment

    def lookup(name: str):
        return conversion.EXPERIMENT if name == "conversion" else original(name)

    monkeypatch.setattr(runner, "get_experiment", lookup)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_quick_conversion_writes_plots_and_metrics(tmp_path):
    run_dir = run_experiment("conversion", quick=True, out=tmp_path / "quick", progress=False)
    for name in PNGS:
        assert (run_dir / name).read_bytes().startswith(b"\x89PNG"), name
        assert f"]({name})" in (run_dir / "report.md").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())["config"]
    T_max = config["T_max"]
    assert T_max == 64
    assert set(metrics["snn_accuracy"]) == {"8", "16", "32", "64"}
    assert abs(metrics["ann_accuracy"] - metrics["snn_accuracy_T_max"]) <= 0.02
    for t, accuracy in metrics["snn_accuracy"].items():
        assert 0 <= accuracy <= 1
        assert metrics["loss_points"][t] == pytest.approx(100 * (metrics["ann_accuracy"]
                                                                 - accuracy))
        ops = metrics["operations"][t]
        assert ops["synops_per_image"] > 0 and ops["ops_over_ann_macs"] > 0
    for layer in metrics["layer_agreement"].values():
        assert layer["correlation"][str(T_max)] > 0.99
    assert set(metrics["percentile_sweep"]) == {"p99", "p99.9", "p99.99", "max"}
    assert metrics["attribution"]["layers"] == list(metrics["layer_agreement"])
    for key in ("snn_wall_time_s", "conversion_wall_time_s", "snn_time_per_image_ms"):
        assert metrics[key] > 0
    assert metrics["training"]["epochs_run"] == 15

    # The saved model is converted again, without training, when named with model_path.
    again = run_experiment("conversion", quick=True, out=tmp_path / "loaded", progress=False,
                           settings={"model_path": str(run_dir / "model.pt"), "T_max": 16,
                                     "sweep_percentiles": ["max"], "n_diagnostics": 50})
    loaded = json.loads((again / "metrics.json").read_text())
    assert loaded["ann_accuracy"] == metrics["ann_accuracy"]
    assert loaded["snn_accuracy"]["16"] == metrics["snn_accuracy"]["16"]
    assert "loaded_from" in loaded["training"] and not (again / "model.pt").exists()


def test_fashion_cnn_preset_is_the_issues_network():
    config = make_config(conversion.EXPERIMENT, {"dataset": "fashion-mnist", "model": "cnn"})
    model_config = conversion._model_config(config, (1, 28, 28), 10)
    model = build_model(model_config)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "ReLU", "AvgPool2d", "Conv2d", "ReLU", "AvgPool2d", "Flatten",
                     "Linear"]
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(16, (3, 3)), (32, (3, 3))]
    assert model[-1].in_features == 32 * 7 * 7 and model[-1].out_features == 10
    qcfs = make_config(conversion.EXPERIMENT, {"model": "cnn", "activation": "qcfs",
                                               "qcfs_levels": 8, "percentile": "max"})
    assert qcfs.percentile == "max"
    built = build_model(conversion._model_config(qcfs, (1, 28, 28), 10))
    assert [type(m).__name__ for m in built].count("QCFS") == 2
    mlp = conversion._model_config(make_config(conversion.EXPERIMENT, {}), (1, 8, 8), 10)
    assert mlp.kind == "mlp" and mlp.hidden == (256,)


def test_qcfs_from_relu_copies_weights_and_calibrates_thresholds():
    torch.manual_seed(0)
    relu_config = CNNConfig(input_shape=(1, 8, 8), num_classes=10, channels=(4, 8))
    relu = build_model(relu_config)
    qcfs = build_model(CNNConfig(
        input_shape=(1, 8, 8), num_classes=10, channels=(4, 8), activation="qcfs"))
    images = torch.rand(200, 1, 8, 8)
    conversion.qcfs_from_relu(relu, qcfs, images, percentile="max")
    for a, b in zip(relu, qcfs, strict=True):
        if isinstance(a, nn.Conv2d | nn.Linear):
            assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    with torch.no_grad():
        first = relu[:2](images)
        assert qcfs[1].threshold.item() == pytest.approx(first.max().item())
        second = relu[:5](images)
        assert qcfs[4].threshold.item() == pytest.approx(second.max().item())
    with pytest.raises(ValueError, match="layer 0: Conv2d against Linear"):
        conversion.qcfs_from_relu(relu, nn.Sequential(*[nn.Linear(2, 2)] * len(relu)), images)
