"""The QCFS activation (Bu et al., ICLR 2022) and its use in :func:`ann.build_model`."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ann.activations import QCFS, qcfs, qcfs_modules
from ann.evaluation import evaluate
from ann.models import CNNConfig, MLPConfig, build_model, model_config_from_dict
from ann.serialization import load_model, save_model
from ann.training import TrainConfig, train


def _qcfs(levels: int, threshold: float, shift: float = 0.5) -> QCFS:
    return QCFS(levels=levels, threshold=threshold, shift=shift).double()


def _reference(x: torch.Tensor, threshold: torch.Tensor, levels: int) -> torch.Tensor:
    """The authors' expression, with a straight-through floor, differentiated by autograd."""
    scaled = torch.clamp(x / threshold, 0, 1) * levels + 0.5
    floored = scaled + (torch.floor(scaled) - scaled).detach()
    return floored / levels * threshold


# --------------------------------------------------------------------------- forward


def test_forward_matches_hand_computed_values():
    # lambda = 2, L = 4: step lambda / L = 0.5; with shift 0.5 the level is x / 0.5 rounded
    # half up, clipped to 0..4.
    module = _qcfs(levels=4, threshold=2.0)
    x = torch.tensor([-3.0, -0.1, 0.0, 0.2, 0.25, 0.3, 0.74, 0.75, 1.2, 1.7, 1.76, 2.0, 2.6, 9.0],
                     dtype=torch.float64)
    expected = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 1.0, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0],
                            dtype=torch.float64)
    torch.testing.assert_close(module(x), expected, rtol=0, atol=0)


def test_forward_without_shift_is_clipped_floor():
    module = _qcfs(levels=4, threshold=2.0, shift=0.0)
    x = torch.tensor([-1.0, 0.3, 0.49, 0.5, 0.99, 1.0, 1.99, 2.0, 3.0], dtype=torch.float64)
    expected = torch.tensor([0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 1.5, 2.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(module(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("levels", [1, 2, 4, 8, 16])
def test_output_takes_at_most_levels_plus_one_values(levels):
    threshold = 1.7
    module = _qcfs(levels=levels, threshold=threshold)
    out = module(torch.linspace(-5.0, 5.0, 20001, dtype=torch.float64))
    values = torch.unique(out)
    # The input range covers all levels, so every one of the L + 1 values occurs.
    assert len(values) == levels + 1
    torch.testing.assert_close(values, torch.arange(levels + 1, dtype=torch.float64)
                               * (threshold / levels))


def test_forward_keeps_shape_and_dtype():
    module = QCFS(levels=3, threshold=1.0)
    x = torch.randn(2, 3, 4, 5)
    out = module(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert (out >= 0).all() and (out <= 1.0).all()


def test_integrate_and_fire_neuron_reproduces_qcfs_after_L_steps():
    # The conversion the docstring promises: IF neuron, threshold theta = lambda, reset by
    # subtraction, initial membrane potential theta / 2, constant input x for T = L steps.
    levels, threshold = 5, 1.3
    module = _qcfs(levels=levels, threshold=threshold)
    x = torch.linspace(-0.7, 2.1, 57, dtype=torch.float64) + 1e-3  # off the level boundaries
    v = torch.full_like(x, threshold / 2)
    count = torch.zeros_like(x)
    for _ in range(levels):
        v = v + x
        spikes = (v >= threshold).to(x.dtype)
        v = v - spikes * threshold
        count += spikes
    torch.testing.assert_close(count * threshold / levels, module(x))


# --------------------------------------------------------------------------- gradients


def test_straight_through_gradient_passes_inside_and_blocks_outside():
    module = _qcfs(levels=4, threshold=2.0)
    x = torch.tensor([-1.0, -0.1, 0.1, 0.6, 1.2, 1.9, 2.1, 5.0], dtype=torch.float64,
                     requires_grad=True)
    (grad_x,) = torch.autograd.grad(module(x).sum(), [x])
    expected = torch.tensor([0, 0, 1, 1, 1, 1, 0, 0], dtype=torch.float64)
    torch.testing.assert_close(grad_x, expected, rtol=0, atol=0)


def test_threshold_gradient_is_the_authors():
    # d out / d lambda = q / L - x / lambda inside [0, lambda], 1 above, 0 below.
    levels, lam = 4, 2.0
    module = _qcfs(levels=levels, threshold=lam)
    x = torch.tensor([-1.0, 0.1, 0.6, 1.2, 1.9, 2.1, 5.0], dtype=torch.float64)
    upstream = torch.tensor([3.0, 1.0, -2.0, 0.5, 1.5, 2.0, -1.0], dtype=torch.float64)
    (grad_lam,) = torch.autograd.grad(module(x), [module.threshold], grad_outputs=upstream)
    q = torch.tensor([0, 0, 1, 2, 4, 4, 4], dtype=torch.float64)
    inside = (x >= 0) & (x <= lam)
    local = q / levels - torch.where(inside, x / lam, torch.zeros_like(x))
    expected = (upstream * local).sum()
    assert grad_lam.shape == module.threshold.shape == ()
    torch.testing.assert_close(grad_lam, expected)
    # Hand-computed: 0 + 1*(0 - 0.05) + -2*(0.25 - 0.3) + 0.5*(0.5 - 0.6) + 1.5*(1 - 0.95)
    #                + 2*1 + -1*1
    assert grad_lam.item() == pytest.approx(-0.05 + 0.1 - 0.05 + 0.075 + 2.0 - 1.0)


def test_gradients_match_the_authors_expression():
    torch.manual_seed(0)
    for levels in (1, 3, 8):
        x = (torch.randn(6, 7, dtype=torch.float64) * 3).requires_grad_()
        upstream = torch.randn(6, 7, dtype=torch.float64)
        module = _qcfs(levels=levels, threshold=2.5)
        out = module(x)
        grads = torch.autograd.grad(out, [x, module.threshold], grad_outputs=upstream)

        x_ref = x.detach().clone().requires_grad_()
        lam_ref = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
        out_ref = _reference(x_ref, lam_ref, levels)
        grads_ref = torch.autograd.grad(out_ref, [x_ref, lam_ref], grad_outputs=upstream)

        torch.testing.assert_close(out, out_ref)
        torch.testing.assert_close(grads[0], grads_ref[0])
        torch.testing.assert_close(grads[1], grads_ref[1])


def test_functional_form_without_threshold_gradient():
    x = torch.tensor([0.3, 1.4], requires_grad=True)
    out = qcfs(x, torch.tensor(1.0), levels=2)
    torch.testing.assert_close(out, torch.tensor([0.5, 1.0]))
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([1.0, 0.0]))


def test_every_threshold_of_a_model_receives_a_gradient():
    torch.manual_seed(0)
    model = build_model(MLPConfig((1, 8, 8), 10, hidden=(16, 12), activation="qcfs"))
    # Inputs large enough that some pre-activations fall inside (0, 8).
    x = torch.rand(32, 1, 8, 8) * 30
    loss = nn.functional.cross_entropy(model(x), torch.arange(32) % 10)
    loss.backward()
    modules = qcfs_modules(model)
    assert len(modules) == 2
    for module in modules:
        assert module.threshold.grad is not None
        assert module.threshold.grad.abs().item() > 0


# --------------------------------------------------------------------------- module


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"levels": 0}, "levels"),
        ({"levels": -2}, "levels"),
        ({"levels": 2.0}, "levels"),
        ({"levels": True}, "levels"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": -1.0}, "threshold"),
        ({"threshold": math.nan}, "threshold"),
        ({"threshold": math.inf}, "threshold"),
        ({"shift": -0.1}, "shift"),
        ({"shift": 1.0}, "shift"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QCFS(**kwargs)


def test_attributes_and_repr():
    module = QCFS(levels=4)
    assert module.levels == 4 and module.shift == 0.5
    assert isinstance(module.threshold, nn.Parameter) and module.threshold.requires_grad
    assert module.threshold.item() == 8.0
    assert list(dict(module.named_parameters())) == ["threshold"]
    assert repr(module) == "QCFS(levels=4, threshold=8, shift=0.5)"


# --------------------------------------------------------------------------- models


def _swap_relu(kinds: list[type]) -> list[type]:
    return [QCFS if kind is nn.ReLU else kind for kind in kinds]


@pytest.mark.parametrize(
    "config",
    [
        MLPConfig((1, 8, 8), 10, hidden=(32, 16), batch_norm=True),
        CNNConfig((1, 8, 8), 10, channels=(4, 6), pooling="max", hidden=(12,), batch_norm=True),
    ],
    ids=["mlp", "cnn"],
)
def test_qcfs_sits_where_relu_would(config):
    relu_kinds = [type(m) for m in build_model(config)]
    qcfs_config = type(config).from_dict({**config.to_dict(), "activation": "qcfs",
                                          "qcfs_levels": 3})
    model = build_model(qcfs_config)
    assert [type(m) for m in model] == _swap_relu(relu_kinds)
    modules = qcfs_modules(model)
    assert modules == [m for m in model if isinstance(m, QCFS)]
    assert len({id(m) for m in modules}) == len(modules) == relu_kinds.count(nn.ReLU)
    assert all(m.levels == 3 and m.threshold.item() == 8.0 for m in modules)
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_relu_models_have_no_qcfs():
    assert qcfs_modules(build_model(MLPConfig((1, 8, 8), 10))) == []


@pytest.mark.parametrize(
    "config",
    [
        MLPConfig((1, 8, 8), 10, hidden=(16,), activation="qcfs", qcfs_levels=4),
        CNNConfig((1, 8, 8), 10, channels=(4,), activation="qcfs", qcfs_levels=2),
        MLPConfig((1, 8, 8), 10, qcfs_levels=5),
    ],
)
def test_config_round_trip_with_activation_fields(config):
    data = config.to_dict()
    assert data["activation"] == config.activation
    assert data["qcfs_levels"] == config.qcfs_levels
    assert model_config_from_dict(data) == config


def test_config_without_activation_fields_defaults_to_relu():
    data = MLPConfig((1, 8, 8), 10).to_dict()
    del data["activation"], data["qcfs_levels"]
    config = MLPConfig.from_dict(data)
    assert config.activation == "relu" and config.qcfs_levels == 8


@pytest.mark.parametrize("cls", [MLPConfig, CNNConfig])
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activation": "gelu"}, "activation"),
        ({"activation": "QCFS"}, "activation"),
        ({"qcfs_levels": 0}, "qcfs_levels"),
        ({"qcfs_levels": 2.5}, "qcfs_levels"),
        ({"qcfs_levels": True}, "qcfs_levels"),
        ({"activation": "qcfs", "qcfs_levels": -1}, "qcfs_levels"),
    ],
)
def test_invalid_activation_fields_are_rejected(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls((1, 8, 8), 10, **kwargs)


def test_save_and_load_keep_the_thresholds(tmp_path):
    config = MLPConfig((1, 8, 8), 10, hidden=(16, 8), activation="qcfs", qcfs_levels=4)
    torch.manual_seed(0)
    model = build_model(config)
    with torch.no_grad():
        for value, module in zip((1.5, 2.5), qcfs_modules(model), strict=True):
            module.threshold.fill_(value)
    save_model(tmp_path / "m.pt", model, config)
    loaded, loaded_config, _ = load_model(tmp_path / "m.pt")
    assert loaded_config == config
    assert [m.threshold.item() for m in qcfs_modules(loaded)] == [1.5, 2.5]
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model.eval()(x))


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("levels", [4, 8])
def test_qcfs_mlp_learns_digits(digits, levels):
    # Same recipe as the ReLU baseline in test_training.py; about 0.5 s per run.
    config = TrainConfig(optimizer="adam", lr=1e-2, epochs=20, batch_size=64, seed=0)
    torch.manual_seed(0)
    model = build_model(MLPConfig(digits.input_shape, digits.num_classes, hidden=(128,),
                                  activation="qcfs", qcfs_levels=levels))
    initial = qcfs_modules(model)[0].threshold.item()
    train(model, digits.train, digits.val, config, progress=False)
    assert evaluate(model, digits.test).accuracy >= 0.95
    # The threshold is trained, and stays positive.
    assert 0 < qcfs_modules(model)[0].threshold.item() != initial
