"""ANN-to-SNN conversion (:mod:`bridge.conversion`) and the snnTorch runner.

Invariants: batch-norm folding is exact, the user's model is untouched, unsupported layers and
bad calibration data fail clearly, SNN firing rates approach the normalised ANN activations as T
grows, converted digits networks reach the ANN's accuracy, one step at a time equals one run,
and the synaptic operation count is right on a hand-built graph.

The trained networks are module-scoped fixtures (training each once keeps the file under a few
seconds per network); tests only read them, and :func:`convert` copies them.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ann.activations import QCFS
from ann.datasets import load_digits
from ann.evaluation import evaluate
from ann.models import CNNConfig, MLPConfig, build_model, macs, macs_per_layer
from bridge.calibration import CalibrationError
from bridge.conversion import (
    CONVERSION_STEPS,
    UnsupportedLayerError,
    convert,
    expected_rates,
    fold_batchnorm,
)
from bridge.graph import (
    IF,
    LIF,
    Affine,
    AvgPool2d,
    Flatten,
    Input,
    MaxPool2d,
    Output,
    SpikingGraph,
)
from bridge.runners import SNNTorchNetwork, run

TS = (8, 16, 32, 64, 128, 256)


@pytest.fixture(scope="module")
def mlp(train_on_digits):
    config = MLPConfig(input_shape=(1, 8, 8), num_classes=10, hidden=(128,))
    return train_on_digits(config, epochs=20, lr=2e-3)


@pytest.fixture(scope="module")
def cnn_avg(train_on_digits):
    config = CNNConfig(input_shape=(1, 8, 8), num_classes=10, channels=(8, 16), pooling="avg")
    return train_on_digits(config, epochs=40, lr=1e-2)


@pytest.fixture(scope="module")
def cnn_max_bn(train_on_digits):
    config = CNNConfig(input_shape=(1, 8, 8), num_classes=10, channels=(8, 16), pooling="max",
                       batch_norm=True)
    return train_on_digits(config, epochs=25, lr=2e-3)


def _with_random_batchnorm(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """Give every batch norm non-trivial running statistics and affine parameters."""
    torch.manual_seed(1)
    model.train()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.weight.uniform_(0.5, 2.0)
                module.bias.uniform_(-0.5, 0.5)
        for _ in range(3):
            model(images * 3.0 + 0.2)
    return model.eval()


# ------------------------------------------------------------------------- batch norm, copying


@pytest.mark.parametrize(
    "config",
    [
        MLPConfig(input_shape=(1, 8, 8), num_classes=10, hidden=(32, 16), batch_norm=True),
        CNNConfig(input_shape=(1, 8, 8), num_classes=10, channels=(8, 16), pooling="max",
                  hidden=(16,), batch_norm=True),
        CNNConfig(input_shape=(1, 8, 8), num_classes=10, channels=(4,), batch_norm=True,
                  bias=False),
    ],
)
def test_batchnorm_folding_is_exact(config, digits):
    torch.manual_seed(0)
    model = _with_random_batchnorm(build_model(config), digits.train.images[:64])
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in folded.modules())
    with torch.no_grad():
        expected, got = model(digits.test.images), folded(digits.test.images)
    assert (expected - got).abs().max().item() <= 1e-5


def test_convert_does_not_mutate_the_model(digits):
    torch.manual_seed(0)
    config = CNNConfig(input_shape=(1, 8, 8), num_classes=10, channels=(4,), batch_norm=True)
    model = _with_random_batchnorm(build_model(config), digits.train.images[:64])
    model.train()  # the caller's mode must survive
    before = copy.deepcopy(model.state_dict())
    convert(model, digits.train.images[:200], percentile="max")
    assert model.training
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


# ------------------------------------------------------------------------- clear errors


def test_unsupported_layer_is_named_with_the_supported_list(digits):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Sigmoid(), nn.Linear(16, 10))
    with pytest.raises(UnsupportedLayerError) as error:
        convert(model, digits.train.images)
    message = str(error.value)
    assert "layer 2 (name '2', type Sigmoid)" in message
    for supported in ("Linear", "Conv2d", "ReLU", "QCFS", "AvgPool2d", "MaxPool2d", "BatchNorm1d"):
        assert supported in message


def test_unsupported_settings_and_structure(digits):
    images = digits.train.images
    with pytest.raises(UnsupportedLayerError, match=r"layer 0 .*Conv2d.*groups=2"):
        convert(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.Flatten(), nn.Linear(72, 10)),
                images)
    with pytest.raises(UnsupportedLayerError, match=r"layer 2 .*BatchNorm1d.*follows ReLU"):
        convert(nn.Sequential(nn.Flatten(), nn.ReLU(), nn.BatchNorm1d(64), nn.Linear(64, 10)),
                images)
    with pytest.raises(UnsupportedLayerError, match=r"layer 1 .*MaxPool2d.*follows Conv2d"):
        convert(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
                              nn.Flatten(), nn.Linear(64, 10)), images)


def test_dropout_is_dropped_and_reported(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(16, 10))
    conversion = convert(model, digits.train.images)
    assert any("Dropout" in note and "identity" in note for note in conversion.report.notes)
    assert conversion.report.layers[3].action.startswith("dropped")
    assert not any(isinstance(n, MaxPool2d) for n in conversion.graph.nodes.values())


def test_calibration_errors(mlp, digits):
    with pytest.raises(CalibrationError, match="at least 10 images, got 3"):
        convert(mlp, digits.train.images[:3])
    with pytest.raises(CalibrationError, match=r"shape \(100, 1, 7, 7\) do not fit.*layer 1"):
        convert(mlp, torch.rand(100, 1, 7, 7))
    with pytest.raises(CalibrationError, match="needs at least 1000 values per channel"):
        convert(mlp, digits.train.images[:50], channel_wise=True)
    with pytest.raises(CalibrationError, match="percentile"):
        convert(mlp, digits.train.images, percentile=0)
    with pytest.raises(CalibrationError, match="intensities in"):
        convert(mlp, digits.train.images * 2, input_encoding="poisson")


# ------------------------------------------------------------------------- normalisation, rates


def test_report_and_normalisation(mlp, digits):
    conversion = convert(mlp, digits.train.images)
    report = conversion.report
    assert report.steps == CONVERSION_STEPS
    json.dumps(report.to_dict())
    (neuron,) = [layer for layer in report.layers if layer.node and layer.node.startswith("if")]
    assert neuron.scale_source == "percentile 99.9" and neuron.threshold == 1.0
    lam = neuron.scale
    with torch.no_grad():
        hidden = mlp[:3](digits.train.images)
    assert lam == pytest.approx(float(np.percentile(hidden.numpy(), 99.9)), rel=1e-5)
    rates = expected_rates(conversion.graph, digits.test.images)
    with torch.no_grad():
        ann_hidden, logits = mlp[:3](digits.test.images), mlp(digits.test.images)
    # Normalised activations a / lambda, clipped to one spike per step.
    assert torch.allclose(rates[neuron.node], torch.clamp(ann_hidden / lam, 0, 1), atol=1e-5)
    unclipped = mlp[2](mlp[1](mlp[0](digits.test.images))).detach() / lam
    if bool((unclipped <= 1).all()):  # then the readout is the ANN's logits exactly
        assert torch.allclose(rates["output"], logits, atol=1e-4)


def _flatten_before_relu():
    return nn.Sequential(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten()), nn.ReLU(),
                         nn.Linear(256, 10))


@pytest.mark.parametrize("channel_wise", [False, True])
@pytest.mark.parametrize(
    "make",
    [
        lambda: build_model(MLPConfig(input_shape=(1, 8, 8), num_classes=10, hidden=(32, 16),
                                      batch_norm=True)),
        lambda: build_model(CNNConfig(input_shape=(1, 8, 8), num_classes=10, channels=(4, 8),
                                      pooling="avg", hidden=(16,), batch_norm=True)),
        lambda: build_model(CNNConfig(input_shape=(1, 8, 8), num_classes=10, channels=(4, 8),
                                      pooling="max", bias=False)),
        _flatten_before_relu,  # per-feature scales go into the thresholds, not the conv
    ],
)
def test_normalisation_preserves_the_ann(make, channel_wise, digits):
    # With the max as scale nothing is clipped on the calibration images, so the rate model of
    # the graph reproduces the ANN: logits exactly, hidden layers as a / lambda.
    torch.manual_seed(0)
    model = _with_random_batchnorm(make(), digits.train.images[:64])
    images = digits.train.images[:300]
    conversion = convert(model, images, percentile="max", channel_wise=channel_wise)
    rates = expected_rates(conversion.graph, images)
    with torch.no_grad():
        logits = model(images)
    assert torch.allclose(rates["output"], logits, atol=1e-4, rtol=1e-4)
    for name in conversion.graph.neuron_layers():
        assert rates[name].max() <= 1.0


def test_rates_converge_to_normalised_activations(mlp, digits):
    conversion = convert(mlp, digits.train.images)
    images = digits.test.images[:150]
    (name,) = conversion.graph.neuron_layers()
    target = expected_rates(conversion.graph, images)[name]
    errors = {}
    for T in (32, 256):
        result = run(conversion.graph, images, T)
        rates = result.spike_counts[name] / T
        errors[T] = (rates - target).abs().mean().item()
        if T == 256:
            corr = np.corrcoef(rates.reshape(-1).numpy(), target.reshape(-1).numpy())[0, 1]
            assert corr >= 0.99
            assert torch.allclose(result.neuron_rates[name], rates.mean(dim=0), atol=1e-6)
    assert errors[256] < errors[32]


# ------------------------------------------------------------------------- accuracy


def _accuracy_vs_T(graph: SpikingGraph, split, T: int) -> np.ndarray:
    return run(graph, split.images, T, record_spikes=False).accuracy(split.labels)


def test_converted_mlp_matches_the_ann(mlp, digits):
    ann_accuracy = evaluate(mlp, digits.test).accuracy
    assert ann_accuracy >= 0.95
    # v_init_fraction=0 (rates floored, not rounded): the curve climbs from a low start.
    graph = convert(mlp, digits.train.images, v_init_fraction=0.0).graph
    accuracy = _accuracy_vs_T(graph, digits.test, 256)
    assert accuracy[128 - 1] >= ann_accuracy - 0.01
    curve = [accuracy[T - 1] for T in (1, 2, 4, 8, 16, 32, 64, 128, 256)]
    assert curve[0] < curve[-1] - 0.2
    for i in range(1, len(curve)):  # mostly increasing: never a point below the best so far
        assert curve[i] >= max(curve[:i]) - 0.01, curve


@pytest.mark.parametrize(("fixture", "channel_wise"), [("cnn_avg", False),
                                                       ("cnn_max_bn", False),
                                                       ("cnn_max_bn", True)])
def test_converted_cnns_match_the_ann(request, digits, fixture, channel_wise):
    model = request.getfixturevalue(fixture)
    ann_accuracy = evaluate(model, digits.test).accuracy
    assert ann_accuracy >= 0.95
    conversion = convert(model, digits.train.images, channel_wise=channel_wise)
    kinds = {type(node) for node in conversion.graph.nodes.values()}
    assert (MaxPool2d if fixture == "cnn_max_bn" else AvgPool2d) in kinds
    accuracy = _accuracy_vs_T(conversion.graph, digits.test, 64)
    assert accuracy[64 - 1] >= ann_accuracy - 0.02


def test_qcfs_layers_use_their_threshold_and_half_initial_membrane(digits):
    torch.manual_seed(0)
    levels = 4
    model = build_model(MLPConfig(input_shape=(1, 8, 8), num_classes=10, hidden=(64,),
                                  activation="qcfs", qcfs_levels=levels))
    qcfs = model[2]
    assert isinstance(qcfs, QCFS)
    with torch.no_grad():
        qcfs.threshold.fill_(1.3)
    conversion = convert(model, digits.train.images)
    (layer,) = [r for r in conversion.report.layers if r.type == "QCFS"]
    assert layer.scale == pytest.approx(1.3) and layer.scale_source == "QCFS threshold"
    node = conversion.graph.nodes[layer.node]
    assert isinstance(node, IF) and node.v_init_fraction == 0.5 and float(node.threshold) == 1.0
    # Constant input current: after T = L steps the spike counts are the QCFS levels (Bu et al.).
    images = digits.test.images[:100]
    counts = run(conversion.graph, images, levels).spike_counts[layer.node]
    with torch.no_grad():
        quantised = model[:3](images) / 1.3 * levels
    assert (counts == torch.round(quantised)).float().mean().item() >= 0.99


# ------------------------------------------------------------------------- runner


@pytest.mark.parametrize("encoding", ["current", "poisson"])
def test_single_steps_match_one_run(cnn_max_bn, digits, encoding):
    graph = convert(cnn_max_bn, digits.train.images, input_encoding=encoding).graph
    images, T = digits.test.images[:20], 12
    result = run(graph, images, T, seed=5)
    net = SNNTorchNetwork(graph)
    generator = torch.Generator().manual_seed(5)
    state = net.initial_state(len(images))
    before = state.clone()
    for t in range(T):
        out, state = net.step(state, net.encode(images, generator))
        assert torch.equal(out.argmax(dim=1), result.predictions[t])
    assert torch.equal(out, result.output)
    assert state.step == T
    first = graph.neuron_layers()[0]
    assert not torch.equal(before.tensors[first], state.tensors[first])  # the state moved on
    assert torch.equal(net.initial_state(len(images)).tensors[first], before.tensors[first])


@pytest.mark.parametrize(
    ("neuron", "beta"),
    [
        (IF(torch.tensor([1.0, 2.0]), "subtract", 0.5), 1.0),  # per-channel thresholds
        (IF(torch.tensor(1.0), "zero", 0.0), 1.0),
        (LIF(10.0, torch.tensor(1.0), "subtract", 0.0), math.exp(-0.5 / 10.0)),
        (LIF(10.0, torch.tensor([0.8, 1.2]), "zero", 0.25), math.exp(-0.5 / 10.0)),
    ],
)
def test_runner_follows_the_documented_dynamics(neuron, beta):
    # v[t] = beta v[t-1] + I[t]; spike if v > theta; v -= theta (subtract) or v = 0 (zero).
    graph = SpikingGraph.sequential([
        ("input", Input((2, 1, 1), "current")),
        ("neuron", neuron),
        ("flat", Flatten()),
        ("readout", Affine(torch.eye(2), torch.zeros(2))),
        ("output", Output()),
    ], dt_ms=0.5)
    currents = torch.tensor([[0.37, 0.71], [0.93, 0.29], [0.0, 1.43]]).reshape(3, 2, 1, 1)
    T = 30
    result = run(graph, currents, T)
    theta = neuron.threshold.reshape(-1).expand(2)
    v = neuron.v_init_fraction * theta.expand(3, 2).clone()
    counts = torch.zeros(3, 2)
    for _ in range(T):
        v = beta * v + currents.reshape(3, 2)
        spike = (v > theta).float()
        v = v - spike * theta if neuron.reset == "subtract" else v * (1 - spike)
        counts += spike
    assert torch.equal(result.spike_counts["neuron"].reshape(3, 2), counts)
    assert torch.equal(result.output, counts)
    assert counts.sum() > 10


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("threshold", [torch.tensor(0.75), torch.tensor([0.5, 1.0, 1.5])])
def test_if_neurons_are_snntorch_leaky_bit_for_bit(reset, threshold):
    # The runner evaluates snn.Leaky(beta=1) itself; spikes and membranes must be snnTorch's,
    # to the last bit, with currents that put membranes on the threshold (ties) and
    # currents whose sums round.
    import snntorch as snn

    from bridge.runners.snntorch_runner import _forget

    shape = (3, 4, 5)
    graph = SpikingGraph.sequential([
        ("input", Input(shape, "current")),
        ("if", IF(threshold, reset, 0.5)),
        ("flat", Flatten()),
        ("readout", Affine(torch.ones(2, 60), torch.zeros(2))),
        ("output", Output()),
    ], dt_ms=1.0)
    g = torch.Generator().manual_seed(1)
    theta = threshold.reshape(-1, 1, 1) if threshold.ndim else threshold
    leaky = snn.Leaky(beta=1.0, threshold=theta.clone(), reset_mechanism=reset,
                      init_hidden=False)
    _forget(leaky)
    net = SNNTorchNetwork(graph)
    state = net.initial_state(6)
    mem = state.tensors["if"].clone()
    fired = 0.0
    with torch.no_grad():
        for t in range(60):
            current = torch.rand((6, *shape), generator=g) * 0.9 - 0.1
            if t % 7 == 0:  # exact ties: the membrane lands on the threshold
                current = (theta - mem).expand(6, *shape).clone()
            spikes, mem = leaky(current, mem)
            _, state, ours, _ = net.step_recorded(state, current)
            assert torch.equal(ours["if"], spikes)
            assert torch.equal(state.tensors["if"], mem)
            fired += float(spikes.sum())
    assert 0.1 * 60 * 360 < fired < 0.9 * 60 * 360


@pytest.mark.parametrize(("kernel", "stride", "padding"),
                         [(2, 2, 0), (3, 3, 0), (3, 1, 0), (2, 3, 0), (3, 2, 1)])
def test_runner_pools_equal_torchs(kernel, stride, padding):
    from bridge.runners.snntorch_runner import _avg_pool, _max_pool

    x = torch.randn(4, 3, 13, 14, generator=torch.Generator().manual_seed(0))
    spikes = (x > 0.3).float()
    pair = ((kernel, kernel), (stride, stride), (padding, padding))
    for value in (x, spikes):
        assert torch.equal(_avg_pool(value, *pair), F.avg_pool2d(value, *pair))
        assert torch.equal(_max_pool(value, *pair), F.max_pool2d(value, *pair))


def test_spiking_maxpool_passes_the_largest_count():
    # Two units firing at the same rate out of phase: the pool must pass rate 1/2, not 1.
    graph = SpikingGraph.sequential([
        ("input", Input((1, 1, 2), "current")),
        ("if", IF(threshold=torch.ones(1, 1, 2), reset="subtract",
                  v_init_fraction=0.0)),
        ("pool", MaxPool2d((1, 2), (1, 2), 0)),
        ("flat", Flatten()),
        ("readout", Affine(torch.ones(1, 1), torch.zeros(1))),
        ("output", Output()),
    ], dt_ms=1.0)
    net = SNNTorchNetwork(graph)
    state = net.initial_state(1)
    state.tensors["if"][0, 0, 0, 1] = 0.3  # second unit half a period ahead
    x = torch.full((1, 1, 1, 2), 0.5)
    counts = torch.zeros(2)
    for _ in range(40):
        out, state, spikes, _ = net.step_recorded(state, x)
        counts += spikes["if"].reshape(-1)
        assert out.item() == counts.max().item()
    assert counts.tolist() == [19.0, 20.0]  # odd steps from t=3, even steps from t=2
    assert out.item() == 20.0  # gating on counts without keeping the winner would give 39


def test_synaptic_operations_on_a_tiny_graph():
    # input (current, analog) -> 3 IF -> affine to 2 outputs
    # Currents 0.65, 0.35 and 0.57 never sum to exactly the threshold within 10 steps, so float
    # rounding cannot decide a spike.
    w1 = torch.tensor([[0.65, 0.0], [0.35, 0.22], [0.0, 0.0]])
    graph = SpikingGraph.sequential([
        ("input", Input((2,), "current")),
        ("fc1", Affine(w1, torch.zeros(3))),
        ("if", IF(torch.tensor(1.0), "subtract", 0.0)),
        ("fc2", Affine(torch.ones(2, 3), torch.zeros(2))),
        ("output", Output()),
    ], dt_ms=1.0)
    x, T = torch.tensor([[1.0, 0.0], [1.0, 1.0]]), 10
    result = run(graph, x, T)
    # Reference IF: v += I; spike if v > 1; v -= 1.
    current = x @ w1.T
    v, spikes = torch.zeros(2, 3), []
    for _ in range(T):
        v = v + current
        s = (v > 1).float()
        v = v - s
        spikes.append(s)
    spikes = torch.stack(spikes)  # (T, N, 3)
    assert torch.equal(result.spike_counts["if"], spikes.sum(0))
    per_step = spikes.sum(dim=(1, 2)).double()
    assert torch.equal(result.spikes_per_step["if"], per_step)
    assert torch.equal(result.synops_per_step["fc2"], per_step * 2)  # fan-out 2
    nonzero_inputs = float((x != 0).sum())
    assert torch.equal(result.analog_macs_per_step["fc1"], torch.full((T,), nonzero_inputs * 3))
    assert result.synops_per_sample()["fc2"] == float(spikes.sum()) * 2 / 2
    assert result.ann_macs == {"fc1": 6, "fc2": 6}


def test_synops_count_spikes_through_average_pooling():
    graph = SpikingGraph.sequential([
        ("input", Input((1, 2, 2), "poisson")),
        ("pool", AvgPool2d(2, 2, 0)),
        ("flat", Flatten()),
        ("fc", Affine(torch.ones(3, 1), torch.zeros(3))),
        ("output", Output()),
    ], dt_ms=1.0)
    images = torch.rand(5, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    result = run(graph, images, 30)
    # Every input spike reaches the 3 targets once; the readout sums them (avg * 3 targets).
    input_spikes = result.output.sum() / 3 * 4
    assert result.synops_per_step["fc"].sum().item() == pytest.approx(3 * input_spikes.item())
    assert result.analog_macs_per_step == {}


def test_ann_macs_match_the_model(cnn_max_bn):
    graph = convert(cnn_max_bn, load_digits(seed=0).train.images[:200], percentile="max").graph
    result = run(graph, torch.zeros(2, 1, 8, 8), 2)
    assert sum(result.ann_macs.values()) == macs(cnn_max_bn, (1, 8, 8))
    assert sorted(result.ann_macs.values()) == sorted(macs_per_layer(cnn_max_bn,
                                                                     (1, 8, 8)).values())


def test_run_argument_errors(mlp, digits):
    graph = convert(mlp, digits.train.images[:200], percentile="max").graph
    with pytest.raises(ValueError, match="T must be"):
        run(graph, digits.test.images, 0)
    with pytest.raises(ValueError, match=r"images must have shape \(N, \*\(1, 8, 8\)\)"):
        run(graph, torch.zeros(3, 64), 4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_matches_cpu(mlp, digits):
    graph = convert(mlp, digits.train.images).graph
    cpu = run(graph, digits.test.images, 64)
    gpu = run(graph, digits.test.images, 64, device="cuda")
    assert gpu.device.startswith("cuda")
    agree = (cpu.predictions[-1] == gpu.predictions[-1]).float().mean().item()
    assert agree >= 0.99  # float rounding may flip a spike at a threshold crossing
    for name in cpu.spike_counts:
        assert (cpu.spike_counts[name] - gpu.spike_counts[name]).abs().mean().item() < 0.05
