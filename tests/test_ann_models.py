"""Architectures, MAC counts and model files of :mod:`ann`."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ann.models import (
    CNNConfig,
    MLPConfig,
    build_model,
    macs,
    macs_per_layer,
    model_config_from_dict,
)
from ann.serialization import ModelFileError, load_model, save_model


def _layer_types(model: nn.Module) -> list[type]:
    return [type(m) for m in model]


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    "config",
    [
        MLPConfig((1, 8, 8), 10),
        MLPConfig((1, 8, 8), 10, hidden=()),
        MLPConfig((3, 4, 5), 7, hidden=(32, 16), bias=False),
        MLPConfig((1, 8, 8), 10, hidden=(32, 16), batch_norm=True),
        CNNConfig((1, 8, 8), 10),
        CNNConfig((1, 28, 28), 10, channels=(8, 16), pooling="max", hidden=(32,)),
        CNNConfig((3, 16, 16), 5, channels=(4,), pooling="none", bias=False),
        CNNConfig((1, 12, 12), 10, channels=(4, 4), kernel_size=3, padding=0, batch_norm=True),
    ],
    ids=lambda c: json.dumps(c.to_dict()),
)
def test_output_shape(config):
    torch.manual_seed(0)
    model = build_model(config)
    assert isinstance(model, nn.Sequential)
    x = torch.rand(4, *config.input_shape)
    assert model(x).shape == (4, config.num_classes)
    model.eval()
    assert model(x[:1]).shape == (1, config.num_classes)


def test_mlp_layers():
    model = build_model(MLPConfig((1, 8, 8), 10, hidden=(32, 16), batch_norm=True, bias=False))
    assert _layer_types(model) == [
        nn.Flatten,
        nn.Linear, nn.BatchNorm1d, nn.ReLU,
        nn.Linear, nn.BatchNorm1d, nn.ReLU,
        nn.Linear,
    ]
    assert all(m.bias is None for m in model if isinstance(m, nn.Linear))
    assert model[1].in_features == 64


@pytest.mark.parametrize(("pooling", "pool_type"), [("avg", nn.AvgPool2d), ("max", nn.MaxPool2d)])
def test_cnn_layers(pooling, pool_type):
    config = CNNConfig((1, 8, 8), 10, channels=(4, 6), pooling=pooling, hidden=(12,),
                       batch_norm=True)
    model = build_model(config)
    assert _layer_types(model) == [
        nn.Conv2d, nn.BatchNorm2d, nn.ReLU, pool_type,
        nn.Conv2d, nn.BatchNorm2d, nn.ReLU, pool_type,
        nn.Flatten,
        nn.Linear, nn.BatchNorm1d, nn.ReLU,
        nn.Linear,
    ]
    assert config.feature_shape() == (6, 2, 2)
    assert model[9].in_features == 6 * 2 * 2


def test_cnn_without_pooling_has_no_pool_layers():
    model = build_model(CNNConfig((1, 8, 8), 10, channels=(4,), pooling="none"))
    assert not any(isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)) for m in model)
    assert sum(isinstance(m, nn.ReLU) for m in model) == 1


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    "config",
    [
        MLPConfig((1, 8, 8), 10, hidden=(32, 16), bias=False, batch_norm=True),
        CNNConfig((3, 32, 32), 10, channels=(8, 16, 32), kernel_size=5, padding=2,
                  pooling="max", hidden=(64,), bias=False, batch_norm=True),
    ],
)
def test_config_dict_round_trip(config):
    data = config.to_dict()
    assert data["kind"] == config.kind
    restored = model_config_from_dict(json.loads(json.dumps(data)))
    assert restored == config
    assert type(restored).from_dict(data) == config
    assert isinstance(restored.input_shape, tuple) and isinstance(restored.hidden, tuple)


def test_lists_are_coerced_to_tuples():
    config = MLPConfig([1, 8, 8], 10, hidden=[5])
    assert config.input_shape == (1, 8, 8) and config.hidden == (5,)
    assert hash(config) == hash(MLPConfig((1, 8, 8), 10, hidden=(5,)))


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: MLPConfig((1, 8), 10), "input_shape"),
        (lambda: MLPConfig((0, 8, 8), 10), "input_shape"),
        (lambda: MLPConfig((1, 8, 8), 1), "num_classes"),
        (lambda: MLPConfig((1, 8, 8), 10, hidden=(16, 0)), "hidden"),
        (lambda: MLPConfig((1, 8, 8), 10, hidden=(1.5,)), "hidden"),
        (lambda: MLPConfig((1, 8, 8), 10, bias="yes"), "bias"),
        (lambda: CNNConfig((1, 8, 8), 10, channels=()), "channels"),
        (lambda: CNNConfig((1, 8, 8), 10, channels=(4, -1)), "channels"),
        (lambda: CNNConfig((1, 8, 8), 10, kernel_size=0), "kernel_size"),
        (lambda: CNNConfig((1, 8, 8), 10, padding=-1), "padding"),
        (lambda: CNNConfig((1, 8, 8), 10, pooling="median"), "pooling"),
        (lambda: CNNConfig((1, 8, 8), 10, channels=(4, 4, 4, 4)), "input_shape"),
        (lambda: CNNConfig((1, 4, 4), 10, channels=(4,), kernel_size=5, padding=0),
         "input_shape"),
    ],
)
def test_invalid_config_names_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_config_from_dict_errors():
    with pytest.raises(ValueError, match="unknown model kind"):
        model_config_from_dict({"kind": "transformer"})
    with pytest.raises(ValueError, match="unknown field"):
        model_config_from_dict({"kind": "mlp", "input_shape": [1, 8, 8], "num_classes": 10,
                                "dropout": 0.5})
    with pytest.raises(ValueError, match="kind"):
        MLPConfig.from_dict(CNNConfig((1, 8, 8), 10).to_dict())


# --------------------------------------------------------------------------- MACs


def test_macs_of_small_mlp_by_hand():
    # Flatten 2x3x4 = 24 -> Linear 24x10 -> ReLU -> Linear 10x5 -> ReLU -> Linear 5x3.
    model = build_model(MLPConfig((2, 3, 4), 3, hidden=(10, 5)))
    assert macs(model, (2, 3, 4)) == 24 * 10 + 10 * 5 + 5 * 3
    assert list(macs_per_layer(model, (2, 3, 4)).values()) == [240, 50, 15]


def test_macs_of_small_cnn_by_hand():
    # Conv 1->4, 3x3, padding 1 on 8x8: 4*8*8 outputs of 1*3*3 MACs; avg pool to 4x4;
    # Flatten 4*4*4 = 64 -> Linear 64x10.
    config = CNNConfig((1, 8, 8), 10, channels=(4,), batch_norm=True)
    model = build_model(config)
    model.train()
    assert macs(model, config.input_shape) == 4 * 8 * 8 * 9 + 64 * 10
    assert model.training  # the mode is restored


# --------------------------------------------------------------------------- model files


@pytest.mark.parametrize(
    "config",
    [
        MLPConfig((1, 8, 8), 10, hidden=(16,), batch_norm=True),
        CNNConfig((1, 8, 8), 10, channels=(4, 8), pooling="max", batch_norm=True),
    ],
)
def test_save_load_round_trip(tmp_path, config):
    torch.manual_seed(0)
    model = build_model(config)
    # Give batch norm non-trivial running statistics.
    model.train()
    model(torch.rand(16, *config.input_shape))
    model.eval()
    x = torch.rand(5, *config.input_shape)
    expected = model(x)
    path = tmp_path / "sub" / "model.pt"
    save_model(path, model, config, extra={"accuracy": 0.9, "note": "test", "t": torch.ones(2)})
    loaded, loaded_config, extra = load_model(path)
    assert loaded_config == config
    assert extra["accuracy"] == 0.9 and extra["note"] == "test"
    assert torch.equal(extra["t"], torch.ones(2))
    assert not loaded.training
    assert torch.equal(loaded(x), expected)
    assert not list(path.parent.glob("*.tmp"))  # no temporary file is left behind


def test_save_rejects_extra_that_weights_only_cannot_load(tmp_path):
    config = MLPConfig((1, 8, 8), 10)
    with pytest.raises(TypeError, match="extra"):
        save_model(tmp_path / "m.pt", build_model(config), config, extra={"f": object()})


def test_load_missing_file(tmp_path):
    path = tmp_path / "absent.pt"
    with pytest.raises(ModelFileError, match="absent.pt") as info:
        load_model(path)
    assert info.value.path == path
    assert isinstance(info.value, ValueError)


def test_load_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"this is not a torch file \x00\x01\x02" * 10)
    with pytest.raises(ModelFileError, match="garbage.pt.*not a readable torch file"):
        load_model(path)


def test_load_wrong_format(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ModelFileError, match="other.pt.*not a spikebridge ANN file"):
        load_model(path)
    torch.save(torch.zeros(3), path)
    with pytest.raises(ModelFileError, match="not a spikebridge ANN file"):
        load_model(path)


def test_load_mismatched_state_dict(tmp_path):
    config = MLPConfig((1, 8, 8), 10, hidden=(16,))
    path = tmp_path / "mismatch.pt"
    save_model(path, build_model(MLPConfig((1, 8, 8), 10, hidden=(32,))), config)
    with pytest.raises(ModelFileError, match="mismatch.pt.*does not match"):
        load_model(path)
