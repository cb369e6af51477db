"""The neuro runner (:mod:`bridge.runners.neuro_runner`) against the snnTorch runner and Brian2.

Cross-runner agreement: converted digits networks (an MLP and a CNN with average pooling) are
rounded to weights on a grid of 2**-8 with power-of-two thresholds, so every membrane value
both runners compute (snnTorch in float32, neuro in float64) is exact and the two must give
*identical* spikes, predictions, readouts and operation counts, ties on the threshold included.
On the unrounded graph float32 rounding may decide a spike differently; there the tolerance is
stated (>= 99.9 % of the per-neuron spike counts, >= 99 % of the predictions; measured: 100 %).
Brian2 (``brian2`` marker) runs a small network in float64 like the torch engine, on the
unrounded graph (where exact ties are improbable) and must agree spike for spike.

The trained networks are module-scoped fixtures; tests only read them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ann.models import CNNConfig, MLPConfig
from bridge.conversion import convert
from bridge.diagnostics import accuracy_curve, operations_curve
from bridge.graph import (
    IF,
    LIF,
    Affine,
    AvgPool2d,
    Conv2d,
    Flatten,
    Input,
    MaxPool2d,
    Output,
    SpikingGraph,
)
from bridge.runners import run
from bridge.runners.neuro_runner import (
    BRIAN2_MAX_NEURONS,
    CondLIFParams,
    NeuroRunnerError,
    run_neuro,
    to_network,
)
from neuro.models import IF as NEURO_IF
from neuro.models import IFParams
from neuro.network import CurrentInput
from neuro.simulation import simulate

GRID = 2.0**-8


@pytest.fixture(scope="module")
def mlp(train_on_digits):
    return train_on_digits(MLPConfig(input_shape=(1, 8, 8), num_classes=10, hidden=(32,)),
                    epochs=6, lr=3e-3)


@pytest.fixture(scope="module")
def cnn(train_on_digits):
    config = CNNConfig(input_shape=(1, 8, 8), num_classes=10, channels=(4, 8), pooling="avg")
    return train_on_digits(config, epochs=8, lr=1e-2)


def _dyadic(graph: SpikingGraph) -> SpikingGraph:
    """The graph with weights and biases rounded to multiples of :data:`GRID` (thresholds must
    be powers of two), so that both runners compute every membrane value exactly."""
    data = graph.to_dict()
    for node in data["nodes"].values():
        for key in ("weight", "bias"):
            if key in node:
                node[key] = torch.round(node[key] / GRID) * GRID
        if "threshold" in node:
            exponent = torch.log2(node["threshold"])
            assert torch.equal(exponent, torch.round(exponent)), "thresholds must be 2**k"
    return SpikingGraph.from_dict(data)


def _assert_identical(a, b) -> None:
    """Two SNNRunResults describe the same spikes, predictions, readout and operations."""
    assert torch.equal(a.predictions, b.predictions)
    assert a.spike_counts.keys() == b.spike_counts.keys()
    for k in a.spike_counts:
        assert a.spike_counts[k].sum() > 0, f"layer {k} is silent: the test is vacuous"
        assert torch.equal(a.spike_counts[k], b.spike_counts[k]), k
        assert torch.equal(a.spikes_per_step[k].double(), b.spikes_per_step[k].double()), k
    assert torch.equal(a.output.double(), b.output.double())
    for mine, theirs in ((a.synops_per_step, b.synops_per_step),
                         (a.analog_macs_per_step, b.analog_macs_per_step)):
        assert mine.keys() == theirs.keys()
        for k in mine:
            assert torch.equal(mine[k].double(), theirs[k].double()), k
    assert a.ann_macs == b.ann_macs


# ------------------------------------------------------------------ agreement with snnTorch


@pytest.mark.parametrize("encoding", ["current", "poisson"])
@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_neuro_and_snntorch_runners_agree_exactly(net, encoding, digits, request):
    model = request.getfixturevalue(net)
    graph = _dyadic(convert(model, digits.train.images, input_encoding=encoding).graph)
    images, labels = digits.test.images[:48], digits.test.labels[:48]
    T = 24
    # two batches: the Poisson generator must run on across batches as in the snnTorch runner
    theirs = run(graph, images, T, batch_size=32, seed=3)
    ours = run_neuro(graph, images, T, batch_size=32, seed=3)
    _assert_identical(theirs, ours)
    assert ours.accuracy(labels)[-1] >= 0.6


def test_unrounded_graph_agrees_within_stated_tolerance(mlp, digits):
    graph = convert(mlp, digits.train.images).graph
    images = digits.test.images[:100]
    theirs = run(graph, images, 32)
    ours = run_neuro(graph, images, 32)
    for k in theirs.spike_counts:
        same = (theirs.spike_counts[k] == ours.spike_counts[k]).double().mean().item()
        assert same >= 0.999, f"{k}: only {same:.4%} of spike counts agree"
    assert (theirs.predictions == ours.predictions).double().mean().item() >= 0.99
    torch.testing.assert_close(ours.output.float(), theirs.output, rtol=1e-4, atol=1e-3)


def test_per_channel_thresholds_and_reset_to_zero_agree_exactly(digits):
    """Hand-built CNN: per-channel power-of-two thresholds, reset to zero, avg-pool folded into
    the next convolution, two synaptic nodes in a row (analog MACs of a spiking source)."""
    g = torch.Generator().manual_seed(5)

    def grid(*shape, scale=0.5):
        return torch.round(torch.randn(*shape, generator=g) * scale / GRID) * GRID

    graph = SpikingGraph.sequential([
        Input(shape=(1, 8, 8), encoding="current"),
        Conv2d(grid(4, 1, 3, 3), grid(4, scale=0.1), stride=1, padding=1),
        IF(threshold=torch.tensor([0.5, 1.0, 2.0, 1.0]), reset="zero", v_init_fraction=0.25),
        AvgPool2d(2, 2, 0),
        Conv2d(grid(6, 4, 3, 3), grid(6, scale=0.1), stride=1, padding=0),
        IF(threshold=torch.tensor(0.5), reset="subtract", v_init_fraction=0.5),
        Flatten(),
        Affine(grid(12, 24, scale=0.3), grid(12, scale=0.1)),
        Affine(grid(10, 12, scale=0.3), grid(10, scale=0.1)),
        Output(),
    ], dt_ms=0.5)
    images = digits.test.images[:20]
    theirs = run(graph, images, 16)
    for propagation in ("auto", "event", "sparse"):  # every propagation mode of the engine
        ours = run_neuro(graph, images, 16, propagation=propagation)
        _assert_identical(theirs, ours)
    assert set(ours.analog_macs_per_step) == {"conv2d_1", "affine_8"}


def test_lif_nodes_agree_within_tolerance(digits):
    """Graph LIF nodes become neuro LIF neurons (>= threshold, exact exponential step)."""
    g = torch.Generator().manual_seed(0)
    graph = SpikingGraph.sequential([
        Input(shape=(1, 8, 8), encoding="current"), Flatten(),
        Affine(torch.randn(32, 64, generator=g) * 0.3, torch.randn(32, generator=g) * 0.1),
        LIF(tau_ms=20.0, threshold=torch.rand(32, generator=g) + 0.5, reset="subtract",
            v_init_fraction=0.5),
        Affine(torch.randn(10, 32, generator=g) * 0.3, torch.randn(10, generator=g) * 0.1),
        Output(),
    ], dt_ms=1.0)
    images = digits.test.images[:50]
    theirs, ours = run(graph, images, 30), run_neuro(graph, images, 30)
    counts_a, counts_b = theirs.spike_counts["lif_3"], ours.spike_counts["lif_3"]
    assert counts_a.sum() > 1000
    assert (counts_a == counts_b).double().mean().item() >= 0.999
    assert (theirs.predictions == ours.predictions).double().mean().item() >= 0.99
    short = SpikingGraph.sequential([
        Input(shape=(4,), encoding="current"),
        LIF(tau_ms=5.0, threshold=torch.tensor(1.0), reset="zero", v_init_fraction=0.0),
        Output()], dt_ms=1.0)
    with pytest.raises(NeuroRunnerError, match=r"node 'lif_1'.*dt <= 0.1 tau_m"):
        run_neuro(short, torch.ones(1, 4), 5)


# ------------------------------------------------------------------ outputs and errors


def test_accuracy_vs_T_and_operations_have_the_right_shapes(mlp, digits):
    graph = convert(mlp, digits.train.images).graph
    images, labels = digits.test.images[:30], digits.test.labels[:30]
    T = 12
    result = run_neuro(graph, images, T, batch_size=16, record_spikes=False)
    assert result.predictions.shape == (T, 30) and result.predictions.dtype == torch.int64
    assert result.accuracy(labels).shape == (T,)
    assert result.output.shape == (30, 10)
    assert result.spike_counts is None
    assert set(result.spikes_per_step) == {"if_2"} and result.spikes_per_step["if_2"].shape == (T,)
    assert result.neuron_rates["if_2"].shape == (32,)
    assert result.synops_per_step["fc_3"].shape == (T,)
    assert result.analog_macs_per_step["fc_1"].shape == (T,)
    assert result.ann_macs == {"fc_1": 64 * 32, "fc_3": 32 * 10}
    curve = accuracy_curve(result, labels)
    assert curve.accuracy.shape == (T,)
    ops = operations_curve(result, labels)
    assert ops.synops.shape == (T,) and np.all(np.diff(ops.synops) >= 0)
    # the readout after T steps is the one whose argmax is the last prediction
    assert torch.equal(result.output.argmax(dim=1), result.predictions[-1])


def test_layout_shifts_and_the_network_simulates_directly(mlp, digits):
    images = digits.test.images[:5]
    for encoding, first in (("current", 0), ("poisson", 1)):
        graph = convert(mlp, digits.train.images, input_encoding=encoding).graph
        network, layout = to_network(graph, images, 10)
        assert layout.shift == {"if_2": first, "output": first + 1}
        assert layout.n_steps == 10 + first + 2
        assert layout.population == {"if_2": "layer1", "output": "readout"}
        assert layout.neurons == 32 + 10
    # simulating the network by hand gives the runner's readout
    result = simulate(network, layout.n_steps * graph.dt_ms, batch_size=5,
                      dtype=torch.float64)
    readout = result.states["readout.v"].values[:, layout.n_steps - 1]
    expected = run_neuro(graph, images, 10).output.numpy()
    np.testing.assert_array_equal(readout, expected)


def test_maxpool_graph_gives_a_clear_error(digits):
    graph = SpikingGraph.sequential([
        Input(shape=(1, 8, 8), encoding="current"),
        Conv2d(torch.ones(2, 1, 3, 3) * 0.1, torch.zeros(2), stride=1, padding=1),
        IF(threshold=torch.tensor(1.0), reset="subtract", v_init_fraction=0.5),
        ("pool", MaxPool2d(2, 2, 0)), Flatten(),
        Affine(torch.ones(10, 32) * 0.1, torch.zeros(10)), Output(),
    ], dt_ms=1.0)
    with pytest.raises(NeuroRunnerError, match=r"node 'pool' is a MaxPool2d.*snnTorch runner.*"
                                               r"average pooling"):
        run_neuro(graph, digits.test.images[:2], 4)


def test_too_large_network_for_brian2_gives_a_clear_error():
    n = BRIAN2_MAX_NEURONS + 1
    graph = SpikingGraph.sequential([
        Input(shape=(4,), encoding="current"),
        Affine(torch.ones(n, 4), torch.zeros(n)),
        IF(threshold=torch.tensor(1.0), reset="subtract", v_init_fraction=0.5),
        Affine(torch.ones(2, n), torch.zeros(2)), Output(),
    ], dt_ms=1.0)
    with pytest.raises(NeuroRunnerError, match=rf"{n + 2} neurons.*at most "
                                               rf"{BRIAN2_MAX_NEURONS}.*engine='torch'"):
        run_neuro(graph, torch.ones(1, 4), 3, engine="brian2")


def test_bad_arguments(mlp, digits):
    graph = convert(mlp, digits.train.images).graph
    images = digits.test.images[:2]
    with pytest.raises(NeuroRunnerError, match="neuron must be one of"):
        run_neuro(graph, images, 4, neuron="hh")
    with pytest.raises(NeuroRunnerError, match="engine must be"):
        run_neuro(graph, images, 4, engine="nest")
    with pytest.raises(ValueError, match="T must be an integer"):
        run_neuro(graph, images, 0)
    with pytest.raises(ValueError, match=r"images must have shape"):
        run_neuro(graph, torch.ones(2, 64), 4)
    with pytest.raises(ValueError, match="E_inh < V_reset < V_th < E_exc"):
        CondLIFParams(V_reset=-40.0)
    with pytest.raises(ValueError, match="tau_syn"):
        CondLIFParams(tau_syn=0.0)


# ------------------------------------------------------------------ conductance-based LIF


def test_conductance_lif_keeps_most_of_the_accuracy(cnn, digits):
    """The CNN's second layer receives excitatory and inhibitory conductances (the folded
    avg-pool and convolution); the first gets the images as a current."""
    graph = convert(cnn, digits.train.images).graph
    images, labels = digits.test.images[:100], digits.test.labels[:100]
    T = 32
    exact = run_neuro(graph, images, T)
    cond = run_neuro(graph, images, T, neuron="lif_cond")
    network, _ = to_network(graph, images[:1], T, neuron="lif_cond")
    assert {p.synapse.name for p in network.projections} == {"exc", "inh", "syn"}
    acc_if, acc_cond = exact.accuracy(labels)[-1], cond.accuracy(labels)[-1]
    assert acc_cond >= acc_if - 0.1, (acc_if, acc_cond)
    # a different neuron: the spike trains are not the IF's, but the rates follow them
    for layer in ("if_1", "if_4"):
        assert not torch.equal(exact.spike_counts[layer], cond.spike_counts[layer])
        rates_if = exact.neuron_rates[layer].reshape(-1).numpy()
        rates_cond = cond.neuron_rates[layer].reshape(-1).numpy()
        assert np.corrcoef(rates_if, rates_cond)[0, 1] > 0.8, layer
    # slower synapses (5 ms conductances) are accepted and still classify
    slow = run_neuro(graph, images, T, neuron="lif_cond", cond_params=CondLIFParams(tau_syn=5.0))
    assert slow.accuracy(labels)[-1] >= 0.5
    # leak compensation: a tonic current C_m (V_ref - E_L) / tau_m into every IF layer, which
    # gives back part of the charge the leak takes (more spikes in the deep layer)
    params = CondLIFParams(leak_compensation=True)
    network, _ = to_network(graph, images[:1], T, neuron="lif_cond", cond_params=params)
    # constant (n,) currents: the tonic ones (biases of deeper layers switch on later, so
    # they are (steps, n); the first layer's image current is per trial)
    tonic = {i.target: np.unique(i.amplitude_pA).tolist() for i in network.inputs
             if isinstance(i, CurrentInput) and not i.per_trial and np.ndim(i.amplitude_pA) == 1}
    assert tonic == {"layer1": [pytest.approx(250.0 * 7.5 / 20.0)],
                     "layer2": [pytest.approx(250.0 * 7.5 / 20.0)]}
    compensated = run_neuro(graph, images, T, neuron="lif_cond", cond_params=params)
    assert compensated.spikes_per_sample()["if_4"] > cond.spikes_per_sample()["if_4"]
    assert compensated.accuracy(labels)[-1] >= acc_if - 0.1


# ------------------------------------------------------------------ the IF neuron model


def test_if_model_integrates_exactly_with_a_strict_threshold():
    params = IFParams(C_m=0.5, V_th=1.0, V_reset=0.0, reset_mode="subtract")
    state = NEURO_IF.initial_state(params, (1, 3), "cpu", torch.float64)
    current = torch.tensor([[0.25, 0.125, -1.0]], dtype=torch.float64)  # dt/C = 1 for dt=0.5
    fired = []
    for _ in range(8):
        spikes, state = NEURO_IF.step(state, current, params, 0.5)
        fired.append(spikes[0].tolist())
    # neuron 0 reaches exactly 1.0 after 4 steps: no spike (strict); 1.25 -> spike, 0.25;
    # then 0.5, 0.75 and exactly 1.0 again
    assert [f[0] for f in fired] == [False] * 4 + [True, False, False, False]
    assert state.v[0, 0].item() == 1.0
    assert not any(f[1] for f in fired) and state.v[0, 1].item() == 1.0
    assert state.v[0, 2].item() == -8.0
    readout = IFParams(C_m=1.0, V_th=math.inf, V_reset=0.0)
    s, st = NEURO_IF.step(NEURO_IF.initial_state(readout, (1, 1), "cpu", torch.float64),
                          torch.full((1, 1), 1e30, dtype=torch.float64),
                          readout, 1.0)
    assert not s.any() and st.v.item() == 1e30
    with pytest.raises(ValueError, match="V_reset"):
        IFParams(V_th=0.0, V_reset=0.0)


# ------------------------------------------------------------------ Brian2


@pytest.fixture(scope="module")
def tiny_mlp(train_on_digits):
    return train_on_digits(MLPConfig(input_shape=(1, 8, 8), num_classes=10, hidden=(16, 16)),
                    epochs=4, lr=5e-3)


@pytest.mark.brian2
@pytest.mark.parametrize(("encoding", "neuron"),
                         [("current", "if"), ("poisson", "if"), ("current", "lif_cond")])
def test_brian2_runner_agrees_with_the_torch_engine(tiny_mlp, digits, encoding, neuron):
    graph = convert(tiny_mlp, digits.train.images, input_encoding=encoding).graph
    images = digits.test.images[:3]
    torch_result = run_neuro(graph, images, 16, neuron=neuron)
    brian = run_neuro(graph, images, 16, neuron=neuron, engine="brian2")
    assert brian.device == "brian2:numpy"
    assert torch.equal(torch_result.predictions, brian.predictions)
    for k, counts in torch_result.spike_counts.items():
        assert counts.sum() > 0
        assert torch.equal(counts, brian.spike_counts[k]), k
    torch.testing.assert_close(brian.output, torch_result.output, rtol=1e-9, atol=1e-9)
    if neuron == "if":  # and both agree with snnTorch
        assert torch.equal(run(graph, images, 16).predictions, brian.predictions)
