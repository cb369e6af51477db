"""Surrogate-gradient SNN training through snnTorch (:mod:`bridge.surrogate`)."""

from __future__ import annotations

import copy
import math

import pytest
import snntorch as snn
import torch

from ann.datasets import Split
from bridge.surrogate import (
    SurrogateSNNConfig,
    build_surrogate_snn,
    decode_output,
    evaluate_surrogate_snn,
    train_surrogate_snn,
)

# Quick configuration: test accuracy 0.908-0.955 over init seeds 0..9 on digits (seed 0), about
# 1.2 s per run on one thread; the test asks for 0.88.
QUICK = SurrogateSNNConfig(hidden=(64,), T=8, epochs=6, lr=5e-3, batch_size=64, seed=0)


@pytest.fixture(scope="module")
def small(digits):
    """A 300/100-sample subset for the reproducibility tests."""
    return (Split(digits.train.images[:300], digits.train.labels[:300]),
            Split(digits.val.images[:100], digits.val.labels[:100]))


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hidden": (0,)}, "hidden"),
        ({"conv_channels": (8, -1)}, "conv_channels"),
        ({"kernel_size": 2}, "kernel_size"),
        ({"pooling": "sum"}, "pooling"),
        ({"tau_ms": 0.0}, "tau_ms"),
        ({"dt_ms": -1.0}, "dt_ms"),
        ({"threshold": 0.0}, "threshold"),
        ({"reset": "none"}, "reset"),
        ({"surrogate": "sigmoid"}, "surrogate"),
        ({"slope": 0.0}, "slope"),
        ({"T": 0}, "T"),
        ({"encoding": "latency"}, "encoding"),
        ({"decoding": "max"}, "decoding"),
        ({"lr": 0.0}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": True}, "batch_size"),
        ({"monitor": "train_loss"}, "monitor"),
        ({"seed": -1}, "seed"),
    ],
)
def test_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SurrogateSNNConfig(**kwargs)


def test_config_beta_round_trip():
    config = SurrogateSNNConfig(tau_ms=20.0, dt_ms=1.0, hidden=[32, 16])
    assert config.hidden == (32, 16)
    assert config.beta == pytest.approx(math.exp(-1 / 20))
    assert SurrogateSNNConfig.from_beta(0.9).beta == pytest.approx(0.9, rel=1e-12)
    assert SurrogateSNNConfig.from_beta(1.0).tau_ms == math.inf
    assert SurrogateSNNConfig.from_beta(1.0).beta == 1.0
    assert SurrogateSNNConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        SurrogateSNNConfig.from_dict({"widths": [3]})
    with pytest.raises(ValueError, match="beta"):
        SurrogateSNNConfig.from_beta(1.5)


# --------------------------------------------------------------------------- network


@pytest.mark.parametrize("encoding", ["current", "rate"])
def test_forward_shapes_mlp_and_cnn(encoding):
    x = torch.rand(5, 1, 8, 8)
    mlp = build_surrogate_snn(SurrogateSNNConfig(hidden=(16, 12), T=7, encoding=encoding),
                              (1, 8, 8), 10)
    spk, mem = mlp(x)
    assert spk.shape == mem.shape == (7, 5, 10)
    assert set(spk.unique().tolist()) <= {0.0, 1.0}
    assert mlp.layer_names == ["fc1", "fc2", "out"]
    assert mlp(x, T=3)[0].shape == (3, 5, 10)

    cnn = build_surrogate_snn(
        SurrogateSNNConfig(conv_channels=(4, 6), hidden=(), T=4, encoding=encoding),
        (1, 8, 8), 3)
    spk, mem = cnn(x)
    assert spk.shape == mem.shape == (4, 5, 3)
    assert cnn.layer_names == ["conv1", "conv2", "out"]
    assert cnn.layer_sizes == {"conv1": 4 * 4 * 4, "conv2": 6 * 2 * 2, "out": 3}
    with pytest.raises(ValueError, match="shape"):
        cnn(torch.rand(5, 1, 7, 7))


def test_build_is_seeded_and_leaves_global_rng_alone():
    before = torch.get_rng_state()
    a = build_surrogate_snn(SurrogateSNNConfig(seed=3), (1, 8, 8), 10)
    b = build_surrogate_snn(SurrogateSNNConfig(seed=3), (1, 8, 8), 10)
    c = build_surrogate_snn(SurrogateSNNConfig(seed=4), (1, 8, 8), 10)
    assert torch.equal(torch.get_rng_state(), before)
    assert _states_equal(a, b) and not _states_equal(a, c)


def test_no_state_outlives_a_forward_pass():
    """State is created inside forward: a pass does not depend on the previous one, the
    neurons are not in snnTorch's global registry, and the trained module can be deep-copied."""
    model = build_surrogate_snn(SurrogateSNNConfig(hidden=(16,), T=5), (1, 8, 8), 10)
    assert not any(n is m for n in model.neurons for m in snn.SpikingNeuron.instances)
    x = torch.rand(4, 1, 8, 8)
    first = model(x)
    model(torch.rand(9, 1, 8, 8) * 3)  # another batch size and drive in between
    second = model(x)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    decode_output(*model(x), "count").sum().backward()
    copy.deepcopy(model)


@pytest.mark.parametrize("surrogate", ["fast_sigmoid", "atan"])
def test_surrogate_gives_gradients_where_heaviside_gives_none(surrogate):
    torch.manual_seed(0)
    x = torch.rand(8, 20)
    weight = torch.randn(20, 10, requires_grad=True)
    # The exact spike function is a step: no gradient flows through it.
    hard = ((x @ weight) - 1.0 > 0).float()
    assert not hard.requires_grad
    hard_neuron = snn.Leaky(beta=0.9, surrogate_disable=True, init_hidden=False)
    spk, _ = hard_neuron(x @ weight, hard_neuron.init_leaky())
    assert not spk.requires_grad
    # The surrogate's backward pass gives non-zero gradients through the same spikes.
    config = SurrogateSNNConfig(hidden=(10,), T=6, surrogate=surrogate)
    model = build_surrogate_snn(config, (20,), 3)
    spk, mem = model(x)
    assert torch.equal(spk, (spk > 0).float())  # still binary in the forward pass
    decode_output(spk, mem, "count").sum().backward()
    for synapse in model.synapses:
        for parameter in synapse.parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0


# --------------------------------------------------------------------------- synops


def _hand_network(encoding):
    config = SurrogateSNNConfig(hidden=(2,), T=4, tau_ms=math.inf, threshold=1.0,
                                encoding=encoding)
    model = build_surrogate_snn(config, (1, 1, 3), 2)
    with torch.no_grad():
        fc1, out = model.synapses[0][1], model.synapses[1][0]
        fc1.weight.copy_(torch.tensor([[1.0, 0.0, 0.5], [0.2, 5.0, 0.2]]))
        fc1.bias.zero_()
        out.weight.zero_()
        out.bias.zero_()
    return model


@pytest.mark.parametrize("encoding", ["rate", "current"])
def test_synops_by_hand(encoding):
    # Input [1, 0, 1]: under rate coding pixel 0 and 2 spike at every step (p = 1), pixel 1
    # never. fc1 currents: 1.5 and 0.4. With beta = 1, theta = 1 and reset by subtraction one
    # step later, neuron 0 has U = 1.5, 2.0, 2.5, 3.0 (4 spikes) and neuron 1 U = 0.4, 0.8,
    # 1.2, 0.6 (1 spike, at step 3).
    model = _hand_network(encoding)
    split = Split(torch.tensor([[[[1.0, 0.0, 1.0]]]]), torch.tensor([0]))
    result = evaluate_surrogate_snn(model, split)
    assert result.spikes_per_sample == {"fc1": 5.0, "out": 0.0}
    # out: 5 hidden spikes x fan-out 2. fc1: 2 input events x fan-out 2 x 4 steps.
    if encoding == "rate":
        assert result.synops_per_sample == {"fc1": 16.0, "out": 10.0}
        assert result.analog_macs_per_sample == {}
    else:
        assert result.synops_per_sample == {"out": 10.0}
        assert result.analog_macs_per_sample == {"fc1": 16.0}
    assert result.ann_macs == {"fc1": 6, "out": 4}
    assert result.spike_rates()["fc1"] == pytest.approx(5 / (2 * 4))


def test_conv_synops_count_border_fan_out():
    # 3x3 image of ones, 2 channels, 3x3 kernel, 'same' padding: a corner pixel reaches 4
    # output positions, an edge pixel 6, the centre 9 -> 2 * (4*4 + 4*6 + 9) = 98 per step.
    config = SurrogateSNNConfig(conv_channels=(2,), pooling="none", hidden=(), T=3,
                                encoding="rate")
    model = build_surrogate_snn(config, (1, 3, 3), 2)
    result = evaluate_surrogate_snn(model, Split(torch.ones(2, 1, 3, 3), torch.tensor([0, 1])))
    assert result.synops_per_sample["conv1"] == 98.0 * 3
    assert result.ann_macs["conv1"] == 2 * 9 * 9


# --------------------------------------------------------------------------- training


def test_quick_training_reaches_accuracy(digits):
    model = build_surrogate_snn(QUICK, digits.input_shape, digits.num_classes)
    result = train_surrogate_snn(model, digits.train, digits.val, QUICK, progress=False)
    assert result.epochs_run == QUICK.epochs
    assert result.samples_seen == QUICK.epochs * len(digits.train)
    assert len(result.epoch_times_s) == QUICK.epochs and result.wall_time_s > 0
    assert result.history["val_accuracy"][result.best_epoch] == max(
        result.history["val_accuracy"])
    test = evaluate_surrogate_snn(model, digits.test)
    assert test.accuracy >= 0.88
    assert test.accuracy_per_step.shape == (QUICK.T,)
    assert test.accuracy_per_step[-1] == test.accuracy
    assert test.accuracy_per_step[0] < test.accuracy
    assert test.total_synops > 0 and test.analog_macs_per_sample["fc1"] > 0


def test_same_seed_same_history(small):
    train, val = small
    config = SurrogateSNNConfig(hidden=(32,), T=6, epochs=2, encoding="rate", seed=5)
    runs = []
    for _ in range(2):
        model = build_surrogate_snn(config, (1, 8, 8), 10)
        runs.append((model, train_surrogate_snn(model, train, val, config, progress=False)))
    (a, ra), (b, rb) = runs
    assert ra.history == rb.history and ra.best_epoch == rb.best_epoch
    assert _states_equal(a, b)


class _Crash(RuntimeError):
    pass


@pytest.mark.parametrize("how", ["crash", "extend"])
def test_checkpoint_resume_is_exact(small, tmp_path, how):
    train, val = small
    config = SurrogateSNNConfig(hidden=(32,), T=6, epochs=3, encoding="rate", seed=2,
                                monitor="val_loss")
    reference = build_surrogate_snn(config, (1, 8, 8), 10)
    expected = train_surrogate_snn(reference, train, val, config, progress=False)

    path = tmp_path / "run.pt"
    model = build_surrogate_snn(config, (1, 8, 8), 10)
    if how == "crash":
        def crash(epoch, history):
            if epoch == 1:
                raise _Crash

        with pytest.raises(_Crash):
            train_surrogate_snn(model, train, val, config, checkpoint_path=path,
                                progress=False, on_epoch_end=crash)
    else:
        short = SurrogateSNNConfig.from_dict({**config.to_dict(), "epochs": 1})
        train_surrogate_snn(model, train, val, short, checkpoint_path=path, progress=False)
    resumed_model = build_surrogate_snn(config, (1, 8, 8), 10)  # fresh process, as it were
    resumed = train_surrogate_snn(resumed_model, train, val, config, checkpoint_path=path,
                                  progress=False)
    assert resumed.history == expected.history
    assert resumed.best_epoch == expected.best_epoch
    assert resumed.samples_seen == expected.samples_seen
    assert _states_equal(resumed_model, reference)

    other = SurrogateSNNConfig.from_dict({**config.to_dict(), "lr": 1e-2})
    with pytest.raises(ValueError, match="lr"):
        train_surrogate_snn(build_surrogate_snn(other, (1, 8, 8), 10), train, val, other,
                            checkpoint_path=path, progress=False)


def test_train_rejects_a_model_of_another_config(small):
    train, val = small
    model = build_surrogate_snn(SurrogateSNNConfig(hidden=(32,)), (1, 8, 8), 10)
    with pytest.raises(ValueError, match="hidden"):
        train_surrogate_snn(model, train, val, SurrogateSNNConfig(hidden=(16,)), progress=False)


def test_membrane_decoding_trains(small):
    train, val = small
    config = SurrogateSNNConfig(hidden=(32,), T=6, epochs=3, lr=5e-3, decoding="membrane")
    model = build_surrogate_snn(config, (1, 8, 8), 10)
    result = train_surrogate_snn(model, train, val, config, progress=False)
    assert result.history["val_accuracy"][result.best_epoch] > 0.5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_and_evaluation(small):
    train, val = small
    config = SurrogateSNNConfig(hidden=(32,), T=6, epochs=2, encoding="rate")
    model = build_surrogate_snn(config, (1, 8, 8), 10)
    result = train_surrogate_snn(model, train, val, config, device="cuda", progress=False)
    assert next(model.parameters()).device.type == "cuda"
    assert result.history["val_accuracy"][-1] > 0.3
    on_gpu = evaluate_surrogate_snn(model, val)
    assert on_gpu.device.startswith("cuda")
    current = SurrogateSNNConfig(hidden=(32,), T=6)
    cpu_model = build_surrogate_snn(current, (1, 8, 8), 10)
    gpu_model = copy.deepcopy(cpu_model).to("cuda")
    cpu_eval = evaluate_surrogate_snn(cpu_model, val)
    gpu_eval = evaluate_surrogate_snn(gpu_model, val)
    assert abs(cpu_eval.accuracy - gpu_eval.accuracy) <= 0.05
