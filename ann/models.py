"""Architectures of the ANNs: frozen configuration records and the networks built from them.

A configuration is a JSON-friendly value (``to_dict`` / ``from_dict``, with a ``kind`` key) that
fully determines the architecture, so a saved model is its configuration plus a state dict.
Every network is a flat :class:`torch.nn.Sequential` whose non-linearities are
:class:`torch.nn.ReLU` *modules* (never ``F.relu``), or :class:`ann.activations.QCFS` modules in
the same positions with ``activation="qcfs"``: the ANN-to-SNN converter finds and replaces them.
Batch-norm layers, when present, follow the layer they normalise so that they can be folded into
it.

Two architectures:

* :class:`MLPConfig`: ``Flatten -> [Linear -> (BatchNorm1d) -> ReLU] * len(hidden) -> Linear``.
* :class:`CNNConfig`: ``[Conv2d -> (BatchNorm2d) -> ReLU -> (AvgPool2d | MaxPool2d)(2)]
  * len(channels) -> Flatten -> [Linear -> (BatchNorm1d) -> ReLU] * len(hidden) -> Linear``.

:func:`macs` counts the multiply-accumulate operations of one inference, the ANN side of the
ANN/SNN energy comparison.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ann.activations import QCFS

__all__ = [
    "MLPConfig",
    "CNNConfig",
    "ModelConfig",
    "POOLING_KINDS",
    "ACTIVATIONS",
    "build_model",
    "model_config_from_dict",
    "macs",
    "macs_per_layer",
]

POOLING_KINDS = ("avg", "max", "none")
ACTIVATIONS = ("relu", "qcfs")


def _int_tuple(name: str, value: Any) -> tuple[int, ...]:
    """Coerce a sequence of integers (a list read from JSON, say) to a tuple, or raise."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a sequence of integers, got {value!r}")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int):
            raise ValueError(f"{name} must contain integers, got {value!r}")
        out.append(int(item))
    return tuple(out)


def _check_positive(name: str, values: Sequence[int]) -> None:
    if any(v <= 0 for v in values):
        raise ValueError(f"{name} must contain positive sizes only, got {tuple(values)}")


def _check_common(config: MLPConfig | CNNConfig) -> None:
    """Validate (and coerce to tuples) the fields shared by both architectures."""
    input_shape = _int_tuple("input_shape", config.input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            f"input_shape must be (channels, height, width), got {config.input_shape!r}"
        )
    _check_positive("input_shape", input_shape)
    object.__setattr__(config, "input_shape", input_shape)

    num_classes = config.num_classes
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")

    hidden = _int_tuple("hidden", config.hidden)
    _check_positive("hidden", hidden)
    object.__setattr__(config, "hidden", hidden)

    for name in ("bias", "batch_norm"):
        if not isinstance(getattr(config, name), bool):
            raise ValueError(f"{name} must be a bool, got {getattr(config, name)!r}")

    if config.activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {config.activation!r}")
    levels = config.qcfs_levels
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"qcfs_levels must be an integer >= 1, got {levels!r}")


def _config_to_dict(config: MLPConfig | CNNConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": config.kind}
    for name in config.__dataclass_fields__:
        value = getattr(config, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _config_kwargs(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments in ``data``; raise on a wrong ``kind`` or an unknown key."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind != cls.kind:
        raise ValueError(f"expected a model config of kind {cls.kind!r}, got kind {kind!r}")
    unknown = sorted(set(data) - set(cls.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} in a {cls.kind!r} model config")
    return data


@dataclass(frozen=True)
class MLPConfig:
    """A multi-layer perceptron on flattened images.

    Attributes
    ----------
    input_shape : ``(channels, height, width)`` of one input image.
    num_classes : number of output logits (>= 2).
    hidden : widths of the hidden layers, in order; ``()`` gives a linear classifier.
    bias : whether the linear layers have biases.
    batch_norm : whether a ``BatchNorm1d`` follows every hidden linear layer.
    activation : ``"relu"`` or ``"qcfs"`` (:class:`ann.activations.QCFS` in place of every ReLU).
    qcfs_levels : quantisation levels :math:`L` (>= 1) of the QCFS activations; unused with
        ``"relu"``.
    """

    kind: ClassVar[str] = "mlp"

    input_shape: tuple[int, int, int]
    num_classes: int
    hidden: tuple[int, ...] = (128,)
    bias: bool = True
    batch_norm: bool = False
    activation: str = "relu"
    qcfs_levels: int = 8

    def __post_init__(self) -> None:
        _check_common(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (tuples as lists) with the key ``"kind": "mlp"``."""
        return _config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MLPConfig:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on a wrong kind or unknown key."""
        return cls(**_config_kwargs(cls, data))


@dataclass(frozen=True)
class CNNConfig:
    """A convolutional network: conv blocks, then a multi-layer perceptron head.

    Each conv block is ``Conv2d(kernel_size, stride 1, padding) -> (BatchNorm2d) -> ReLU ->
    pool 2x2`` (no pool when ``pooling == "none"``).

    Attributes
    ----------
    input_shape : ``(channels, height, width)`` of one input image.
    num_classes : number of output logits (>= 2).
    channels : output channels of the conv blocks, in order (at least one block).
    kernel_size : side of the square convolution kernels.
    padding : zero padding on each side of the convolutions.
    pooling : ``"avg"`` (the usual choice for ANN-to-SNN conversion), ``"max"`` or ``"none"``.
    hidden : widths of the hidden linear layers after flattening.
    bias : whether the convolutions and linear layers have biases.
    batch_norm : whether a batch-norm layer follows every convolution and hidden linear layer.
    activation : ``"relu"`` or ``"qcfs"`` (:class:`ann.activations.QCFS` in place of every ReLU).
    qcfs_levels : quantisation levels :math:`L` (>= 1) of the QCFS activations; unused with
        ``"relu"``.
    """

    kind: ClassVar[str] = "cnn"

    input_shape: tuple[int, int, int]
    num_classes: int
    channels: tuple[int, ...] = (16, 32)
    kernel_size: int = 3
    padding: int = 1
    pooling: str = "avg"
    hidden: tuple[int, ...] = ()
    bias: bool = True
    batch_norm: bool = False
    activation: str = "relu"
    qcfs_levels: int = 8

    def __post_init__(self) -> None:
        _check_common(self)
        channels = _int_tuple("channels", self.channels)
        if not channels:
            raise ValueError("channels must name at least one conv block, got ()")
        _check_positive("channels", channels)
        object.__setattr__(self, "channels", channels)
        if isinstance(self.kernel_size, bool) or not isinstance(self.kernel_size, int):
            raise ValueError(f"kernel_size must be an integer, got {self.kernel_size!r}")
        if self.kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {self.kernel_size}")
        if isinstance(self.padding, bool) or not isinstance(self.padding, int):
            raise ValueError(f"padding must be an integer, got {self.padding!r}")
        if self.padding < 0:
            raise ValueError(f"padding must be >= 0, got {self.padding}")
        if self.pooling not in POOLING_KINDS:
            raise ValueError(f"pooling must be one of {POOLING_KINDS}, got {self.pooling!r}")
        # Walk the blocks once so that a too-small input fails here, naming the block.
        _, height, width = self.input_shape
        for block in range(len(channels)):
            height, width = self._block_output_size(height, width)
            if height < 1 or width < 1:
                raise ValueError(
                    f"input_shape {self.input_shape} is too small for {len(channels)} conv "
                    f"blocks (kernel_size={self.kernel_size}, padding={self.padding}, "
                    f"pooling={self.pooling!r}): the spatial size shrinks to zero in block "
                    f"{block}"
                )

    def _block_output_size(self, height: int, width: int) -> tuple[int, int]:
        shrink = self.kernel_size - 1 - 2 * self.padding
        height, width = height - shrink, width - shrink
        if self.pooling != "none":
            height, width = height // 2, width // 2
        return height, width

    def feature_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of the feature map after the last conv block."""
        _, height, width = self.input_shape
        for _ in self.channels:
            height, width = self._block_output_size(height, width)
        return (self.channels[-1], height, width)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (tuples as lists) with the key ``"kind": "cnn"``."""
        return _config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CNNConfig:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on a wrong kind or unknown key."""
        return cls(**_config_kwargs(cls, data))


ModelConfig = MLPConfig | CNNConfig

# The one place where model kinds are registered.
_CONFIG_KINDS: dict[str, type[MLPConfig] | type[CNNConfig]] = {
    MLPConfig.kind: MLPConfig,
    CNNConfig.kind: CNNConfig,
}


def model_config_from_dict(data: Mapping[str, Any]) -> ModelConfig:
    """Rebuild a model configuration from its ``to_dict()`` form, dispatching on ``kind``.

    Raises
    ------
    ValueError
        If ``kind`` is missing or unknown, or the fields are invalid.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"a model config must be a mapping, got {type(data).__name__}")
    kind = data.get("kind")
    if kind not in _CONFIG_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(_CONFIG_KINDS)}")
    return _CONFIG_KINDS[kind].from_dict(data)


def _activation(config: ModelConfig) -> nn.Module:
    """A fresh non-linearity: ``ReLU``, or ``QCFS`` with the configured levels."""
    if config.activation == "qcfs":
        return QCFS(levels=config.qcfs_levels)
    return nn.ReLU()


def _mlp_head(in_features: int, config: ModelConfig) -> list[nn.Module]:
    """``[Linear -> (BatchNorm1d) -> ReLU] * len(hidden) -> Linear`` from ``in_features``."""
    layers: list[nn.Module] = []
    for width in config.hidden:
        layers.append(nn.Linear(in_features, width, bias=config.bias))
        if config.batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(_activation(config))
        in_features = width
    layers.append(nn.Linear(in_features, config.num_classes, bias=config.bias))
    return layers


def build_model(config: ModelConfig) -> nn.Sequential:
    """Build the network described by ``config``, with PyTorch's default initialisation.

    Seed the global torch generator (``torch.manual_seed``) before calling this for a
    reproducible initialisation. The network maps ``(N, C, H, W)`` images to ``(N, num_classes)``
    logits. With ``activation="qcfs"`` every ``ReLU`` is replaced by
    ``QCFS(levels=config.qcfs_levels)`` at the same position, its threshold starting at 8.0.
    """
    if isinstance(config, MLPConfig):
        layers: list[nn.Module] = [nn.Flatten()]
        layers += _mlp_head(math.prod(config.input_shape), config)
        return nn.Sequential(*layers)
    if isinstance(config, CNNConfig):
        layers = []
        in_channels = config.input_shape[0]
        for out_channels in config.channels:
            layers.append(
                nn.Conv2d(
                    in_channels,
                    out_channels,
                    kernel_size=config.kernel_size,
                    padding=config.padding,
                    bias=config.bias,
                )
            )
            if config.batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(_activation(config))
            if config.pooling == "avg":
                layers.append(nn.AvgPool2d(2))
            elif config.pooling == "max":
                layers.append(nn.MaxPool2d(2))
            in_channels = out_channels
        layers.append(nn.Flatten())
        layers += _mlp_head(math.prod(config.feature_shape()), config)
        return nn.Sequential(*layers)
    raise TypeError(f"unsupported model config {type(config).__name__}")


def macs_per_layer(model: nn.Module, input_shape: Sequence[int]) -> dict[str, int]:
    """Multiply-accumulate operations of each ``Linear`` and ``Conv2d`` layer for one input.

    Counts only the weight products (``in_features * out_features`` for a linear layer,
    ``out_elements * in_channels / groups * kh * kw`` for a convolution); bias additions,
    batch norm, activations and pooling are not counted. The model is run once in eval mode on a
    zero input of shape ``(1, *input_shape)``; its previous mode is restored.

    Parameters
    ----------
    model : the network.
    input_shape : shape of one input without the batch dimension, e.g. ``(C, H, W)``.

    Returns
    -------
    dict
        ``{module name: MACs}`` in execution order (a module called twice counts twice).
    """
    counts: dict[str, int] = {}
    handles = []

    def hook(name: str):
        def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor):
            per_sample = output.numel() // output.shape[0]
            if isinstance(module, nn.Linear):
                n = per_sample * module.in_features
            else:
                kh, kw = module.kernel_size
                n = per_sample * (module.in_channels // module.groups) * kh * kw
            counts[name] = counts.get(name, 0) + int(n)

        return count

    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            handles.append(module.register_forward_hook(hook(name)))
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return counts


def macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Total multiply-accumulate operations of one inference; see :func:`macs_per_layer`."""
    return sum(macs_per_layer(model, input_shape).values())
