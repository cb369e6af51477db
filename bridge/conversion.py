r"""ANN-to-SNN conversion as a fixed pipeline of named steps.

:func:`convert` turns a trained ``nn.Sequential`` of supported layers (the networks of
:func:`ann.build_model`, or any model made of the layers in :data:`SUPPORTED_LAYERS`) into a
:class:`~bridge.graph.SpikingGraph` of integrate-and-fire neurons. It runs, in this order
(:data:`CONVERSION_STEPS`), each step a small function:

1. ``copy_model`` -- deep-copy the model to CPU float32 in eval mode; the caller's model is
   never modified (nor its train/eval mode).
2. ``flatten_layers`` -- list the leaf layers of (possibly nested) ``nn.Sequential`` containers.
3. ``check_supported`` -- every layer must be in :data:`SUPPORTED_LAYERS` with supported
   settings; an error names the layer (index, name, type) and lists what is supported.
   ``nn.Dropout`` and ``nn.Identity`` are identities in eval mode and are dropped (the report
   says so).
4. ``fold_batchnorm`` -- fold every batch-norm layer into the ``Linear``/``Conv2d`` before it,
   exactly (:func:`fold_batchnorm`): :math:`W' = W\gamma/\sigma`,
   :math:`b' = (b - \mu)\gamma/\sigma + \beta`, :math:`\sigma = \sqrt{\mathrm{var} + \epsilon}`.
5. ``check_structure`` -- a max-pool must take spikes (follow a ReLU/QCFS directly).
6. ``calibrate`` -- the scale :math:`\lambda_l` of every non-linearity: the ``percentile`` of its
   outputs on the calibration images, per layer or per channel (:mod:`bridge.calibration`); for
   a :class:`ann.activations.QCFS` layer, its learned threshold (Bu et al. 2022).
7. ``normalise`` -- data-based normalisation (Rueckauer et al. 2017), in the *weight* form:

   .. math::

       W_l \leftarrow W_l\,\frac{\lambda_{l-1}}{\lambda_l}, \qquad
       b_l \leftarrow \frac{b_l}{\lambda_l}, \qquad \theta_l = 1,

   where :math:`\lambda_{l-1}` is the scale of the layer's input (1 for the images; per input
   channel or feature with ``channel_wise``) and :math:`\lambda_l` that of the non-linearity the
   layer feeds. Every bias is divided by the scale of *its own* layer, so the earlier layers'
   scaling is accounted for (the signal entering layer :math:`l` is :math:`a_{l-1}/\lambda_{l-1}`).
   The last synaptic layer feeds no neuron and keeps :math:`\lambda = 1`: the readout current is
   the ANN's logit itself, so ``output / T`` approaches the logits. When a neuron layer's
   scale cannot be put into the weights (a scale of another shape, e.g. per-feature scales
   after a Flatten that follows the convolution), it goes into the threshold instead,
   :math:`\theta = \lambda_l / s` with :math:`s` the scale of the incoming current.
8. ``build_graph`` -- ``ReLU``/``QCFS`` become :class:`~bridge.graph.IF` neurons with reset by
   subtraction (initial membrane ``v_init_fraction`` :math:`\cdot\theta`, :math:`\theta/2` by
   default, for ReLU; ``shift`` :math:`\cdot\theta`, i.e. :math:`\theta/2`, for QCFS);
   ``Linear`` becomes :class:`~bridge.graph.Affine`, ``Conv2d`` :class:`~bridge.graph.Conv2d`;
   ``AvgPool2d`` stays a linear average of the spikes (no neuron after it: the next synaptic
   layer sees the fractional values, which is the same as folding the pool into its weights);
   ``MaxPool2d`` becomes the spiking max-pool of :class:`~bridge.graph.MaxPool2d` (gated by
   running spike counts); the last layer's current goes to an :class:`~bridge.graph.Output`
   readout that accumulates it.

With these choices an IF neuron with input current :math:`a_l/\lambda_l` per step fires at the
rate :math:`\mathrm{clip}(a_l/\lambda_l, 0, 1)` as :math:`T \to \infty`
(:func:`expected_rates`).

References
----------
B. Rueckauer, I.-A. Lungu, Y. Hu, M. Pfeiffer, S.-C. Liu, "Conversion of continuous-valued deep
networks to efficient event-driven networks for image classification", Front. Neurosci. 11:682
(2017).
T. Bu, W. Fang, J. Ding, P. Dai, Z. Yu, T. Huang, "Optimal ANN-SNN conversion for high-accuracy
and ultra-low-latency spiking neural networks", ICLR 2022.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bridge.calibration import (
    CalibrationError,
    activation_percentiles,
    check_calibration_images,
    percentile_fraction,
)
from bridge.graph import (
    ENCODINGS,
    IF,
    Affine,
    AvgPool2d,
    Conv2d,
    Flatten,
    Input,
    MaxPool2d,
    Output,
    SpikingGraph,
)

__all__ = [
    "CONVERSION_STEPS",
    "SUPPORTED_LAYERS",
    "ConversionError",
    "UnsupportedLayerError",
    "LayerReport",
    "ConversionReport",
    "Conversion",
    "convert",
    "fold_batchnorm",
    "expected_rates",
]

CONVERSION_STEPS = (
    "copy_model",
    "flatten_layers",
    "check_supported",
    "fold_batchnorm",
    "check_structure",
    "calibrate",
    "normalise",
    "build_graph",
)


def _qcfs_class() -> type | None:
    """:class:`ann.activations.QCFS` if that module exists (imported lazily), else ``None``."""
    try:
        from ann.activations import QCFS
    except ImportError:  # pragma: no cover - QCFS ships with ann
        return None
    return QCFS


def _supported() -> dict[str, str]:
    names = {
        "Linear": "-> Affine",
        "Conv2d": "-> Conv2d (groups=1, dilation=1, zero padding given as ints)",
        "BatchNorm1d": "folded into the Linear before it",
        "BatchNorm2d": "folded into the Conv2d before it",
        "ReLU": "-> IF neurons",
        "QCFS": "-> IF neurons, threshold = learned lambda, initial membrane shift*theta",
        "AvgPool2d": "-> AvgPool2d (ceil_mode=False, no divisor_override)",
        "MaxPool2d": "-> spiking MaxPool2d (dilation=1, ceil_mode=False), after a ReLU/QCFS",
        "Flatten": "-> Flatten (start_dim=1, end_dim=-1)",
        "Dropout": "dropped (identity in eval mode)",
        "Identity": "dropped",
    }
    return names


SUPPORTED_LAYERS: dict[str, str] = _supported()
"""``{layer type: what it becomes}``: the layers :func:`convert` accepts."""


class ConversionError(ValueError):
    """The model cannot be converted as it is."""


class UnsupportedLayerError(ConversionError):
    """A layer of an unsupported type or with unsupported settings."""


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerReport:
    """What happened to one layer of the model.

    Attributes
    ----------
    index : position in the flattened layer list.
    name : the module's name in the model (``"3"``, ``"features.0"``).
    type : the module's class name.
    action : what it became (``"Affine"``, ``"IF"``, ``"folded into 0"``, ``"dropped"``...).
    node : name of the graph node it became, or ``None``.
    scale : :math:`\\lambda` of a non-linearity (a float, or a list per channel), else ``None``.
    scale_source : ``"percentile 99.9"``, ``"max"`` or ``"QCFS threshold"`` for non-linearities.
    threshold : threshold of the IF node (float or list), else ``None``.
    """

    index: int
    name: str
    type: str
    action: str
    node: str | None = None
    scale: float | list[float] | None = None
    scale_source: str | None = None
    threshold: float | list[float] | None = None


@dataclass(frozen=True)
class ConversionReport:
    """The record of one conversion: steps run, settings and per-layer scale factors."""

    steps: tuple[str, ...]
    layers: tuple[LayerReport, ...]
    percentile: float | str
    channel_wise: bool
    input_encoding: str
    dt_ms: float
    num_calibration_images: int
    notes: tuple[str, ...] = ()

    def scales(self) -> dict[str, float | list[float]]:
        """``{IF node name: lambda}``."""
        return {
            layer.node: layer.scale
            for layer in self.layers
            if layer.scale is not None and layer.node is not None
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        data = asdict(self)
        data["steps"] = list(self.steps)
        data["notes"] = list(self.notes)
        return data


@dataclass(frozen=True)
class Conversion:
    """Result of :func:`convert`: the spiking graph and the report."""

    graph: SpikingGraph
    report: ConversionReport


# --------------------------------------------------------------------------------------------
# the steps
# --------------------------------------------------------------------------------------------


@dataclass
class _Work:
    """What the steps pass on."""

    layers: list[tuple[str, nn.Module]] = field(default_factory=list)
    reports: dict[int, LayerReport] = field(default_factory=dict)  # by original index
    index: list[int] = field(default_factory=list)  # original index of each layer
    notes: list[str] = field(default_factory=list)
    scales: dict[int, torch.Tensor] = field(default_factory=dict)  # by position in layers
    sources: dict[int, str] = field(default_factory=dict)
    specs: list[tuple[str, Any, int]] = field(default_factory=list)  # (node name, node, pos)


def _copy_model(model: nn.Module) -> nn.Module:
    """Step 1: an independent CPU float32 copy in eval mode."""
    if not isinstance(model, nn.Module):
        raise ConversionError(f"convert needs a torch.nn.Module, got {type(model).__name__}")
    clone = copy.deepcopy(model)
    return clone.to("cpu", torch.float32).eval()


def _flatten_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Step 2: leaf layers in order, descending into nested ``nn.Sequential``."""
    if not isinstance(model, nn.Sequential):
        if len(list(model.children())) == 0:
            return [("0", model)]
        raise ConversionError(
            f"convert needs an nn.Sequential (nested ones allowed) so that the order of the "
            f"layers is known; got {type(model).__name__}. Wrap its layers in nn.Sequential."
        )
    layers: list[tuple[str, nn.Module]] = []

    def walk(prefix: str, module: nn.Sequential) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if isinstance(child, nn.Sequential):
                walk(f"{full}.", child)
            else:
                layers.append((full, child))

    walk("", model)
    if not layers:
        raise ConversionError("the model has no layers")
    return layers


def _layer_problem(module: nn.Module, qcfs: type | None) -> str | None:
    """Why ``module`` cannot be converted, or ``None`` if it can."""
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            return f"groups={module.groups} (only 1)"
        if tuple(module.dilation) != (1, 1):
            return f"dilation={module.dilation} (only 1)"
        if module.padding_mode != "zeros":
            return f"padding_mode={module.padding_mode!r} (only 'zeros')"
        if isinstance(module.padding, str):
            return f"padding={module.padding!r} (give the padding as ints)"
        return None
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if not module.track_running_stats or module.running_mean is None:
            return "no running statistics (track_running_stats=False)"
        return None
    if isinstance(module, nn.AvgPool2d):
        if module.ceil_mode:
            return "ceil_mode=True"
        if module.divisor_override is not None:
            return "divisor_override is set"
        if not module.count_include_pad and module.padding not in (0, (0, 0)):
            return "count_include_pad=False with padding"
        return None
    if isinstance(module, nn.MaxPool2d):
        if module.ceil_mode:
            return "ceil_mode=True"
        if module.dilation not in (1, (1, 1)):
            return f"dilation={module.dilation}"
        if module.return_indices:
            return "return_indices=True"
        return None
    if isinstance(module, nn.Flatten):
        if module.start_dim != 1 or module.end_dim != -1:
            return f"start_dim={module.start_dim}, end_dim={module.end_dim} (only 1, -1)"
        return None
    if isinstance(module, (nn.Linear, nn.ReLU, nn.Dropout, nn.Identity)):
        return None
    if qcfs is not None and isinstance(module, qcfs):
        return None
    return "unsupported type"


def _check_supported(work: _Work) -> None:
    """Step 3: every layer is supported; identities are dropped."""
    qcfs = _qcfs_class()
    kept, index = [], []
    supported = "; ".join(f"{k} ({v})" for k, v in SUPPORTED_LAYERS.items())
    for i, (name, module) in enumerate(work.layers):
        problem = _layer_problem(module, qcfs)
        if problem is not None:
            raise UnsupportedLayerError(
                f"layer {i} (name {name!r}, type {type(module).__name__}) cannot be converted: "
                f"{problem}. Supported layers: {supported}"
            )
        if isinstance(module, (nn.Dropout, nn.Identity)):
            work.reports[i] = LayerReport(i, name, type(module).__name__, "dropped (identity)")
            work.notes.append(f"layer {i} ({name}, {type(module).__name__}) dropped: identity "
                              "in eval mode")
            continue
        kept.append((name, module))
        index.append(i)
    work.layers, work.index = kept, index


def _fold_pair(layer: nn.Linear | nn.Conv2d, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> nn.Module:
    """A new Linear/Conv2d computing ``bn(layer(x))`` in eval mode."""
    with torch.no_grad():
        std = torch.sqrt(bn.running_var + bn.eps)
        gamma = bn.weight if bn.weight is not None else torch.ones_like(std)
        beta = bn.bias if bn.bias is not None else torch.zeros_like(std)
        factor = gamma / std
        bias = layer.bias if layer.bias is not None else torch.zeros_like(std)
        folded = copy.deepcopy(layer)
        if folded.bias is None:
            folded.bias = nn.Parameter(torch.zeros_like(std))
        shape = (-1,) + (1,) * (layer.weight.ndim - 1)
        folded.weight.copy_(layer.weight * factor.reshape(shape))
        folded.bias.copy_((bias - bn.running_mean) * factor + beta)
    return folded


def _fold_batchnorm_layers(work: _Work) -> None:
    """Step 4: fold each batch norm into the layer before it."""
    kept: list[tuple[str, nn.Module]] = []
    index: list[int] = []
    for (name, module), i in zip(work.layers, work.index, strict=True):
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            previous = kept[-1][1] if kept else None
            pairs = ((nn.Linear, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d))
            if not any(isinstance(previous, a) and isinstance(module, b) for a, b in pairs):
                before = type(previous).__name__ if previous is not None else "nothing"
                raise UnsupportedLayerError(
                    f"layer {i} (name {name!r}, type {type(module).__name__}) follows "
                    f"{before}; a batch norm can only be folded into the Linear (BatchNorm1d) or "
                    "Conv2d (BatchNorm2d) directly before it"
                )
            out_features = previous.weight.shape[0]
            if module.num_features != out_features:
                raise UnsupportedLayerError(
                    f"layer {i} ({name}, {type(module).__name__}) has {module.num_features} "
                    f"features but the layer before it has {out_features} outputs"
                )
            kept[-1] = (kept[-1][0], _fold_pair(previous, module))
            work.reports[i] = LayerReport(
                i, name, type(module).__name__, f"folded into layer {index[-1]}"
            )
            continue
        kept.append((name, module))
        index.append(i)
    work.layers, work.index = kept, index


def fold_batchnorm(model: nn.Module) -> nn.Sequential:
    """A copy of ``model`` with every batch norm folded into the layer before it.

    Exact in eval mode: the copy is in eval mode and gives the model's eval-mode outputs (up to
    rounding). Identities (Dropout, Identity) are kept. The model is not modified.

    Raises
    ------
    UnsupportedLayerError
        If a batch norm does not directly follow a Linear/Conv2d of matching width.
    """
    work = _Work(layers=_flatten_layers(_copy_model(model)))
    work.index = list(range(len(work.layers)))
    _fold_batchnorm_layers(work)
    return nn.Sequential(*(module for _, module in work.layers)).eval()


def _is_neuron(module: nn.Module) -> bool:
    qcfs = _qcfs_class()
    return isinstance(module, nn.ReLU) or (qcfs is not None and isinstance(module, qcfs))


def _check_structure(work: _Work) -> None:
    """Step 5: a max-pool takes spikes, i.e. directly follows a non-linearity (or max-pool)."""
    previous: nn.Module | None = None
    for (name, module), i in zip(work.layers, work.index, strict=True):
        if isinstance(module, nn.MaxPool2d) and not (
            previous is not None and (_is_neuron(previous) or isinstance(previous, nn.MaxPool2d))
        ):
            before = type(previous).__name__ if previous is not None else "the input"
            raise UnsupportedLayerError(
                f"layer {i} (name {name!r}, type MaxPool2d) follows {before}; a spiking max-pool "
                "needs spikes, so it must directly follow a ReLU or QCFS. Move it after the "
                "non-linearity (max-pool and ReLU commute, so the ANN is unchanged)"
            )
        previous = module
    if not any(_is_neuron(m) for _, m in work.layers):
        work.notes.append("the model has no ReLU/QCFS: the graph has no neurons")


def _scale_text(value: torch.Tensor) -> float | list[float]:
    return float(value) if value.ndim == 0 else [float(v) for v in value.reshape(-1)]


def _calibrate(
    work: _Work, images: torch.Tensor, percentile: float | str, channel_wise: bool,
    batch_size: int,
) -> None:
    """Step 6: lambda of every non-linearity (percentile, or a QCFS's learned threshold)."""
    qcfs = _qcfs_class()
    modules = [m for _, m in work.layers]
    relus = [p for p, m in enumerate(modules) if isinstance(m, nn.ReLU)]
    for p, module in enumerate(modules):
        if qcfs is not None and isinstance(module, qcfs):
            work.scales[p] = module.threshold.detach().reshape(()).to(torch.float32).clone()
            work.sources[p] = "QCFS threshold"
    if relus:
        found = activation_percentiles(
            modules, images, relus, percentile=percentile, channel_wise=channel_wise,
            batch_size=batch_size,
        )
        source = "max" if percentile_fraction(percentile) == 1.0 else f"percentile {percentile}"
        for p, value in found.items():
            dead = value <= 0
            if bool(dead.any()):
                # A unit silent on all calibration data: any positive scale keeps it silent.
                work.notes.append(
                    f"layer {work.index[p]} ({work.layers[p][0]}): {int(dead.sum())} "
                    "channel(s) never active on the calibration images; their scale is set to 1"
                )
                value = torch.where(dead, torch.ones_like(value), value)
            work.scales[p] = value
            work.sources[p] = source


def _next_neuron(modules: list[nn.Module], p: int) -> int | None:
    """Position of the non-linearity fed by synaptic layer ``p`` through linear ops only."""
    for q in range(p + 1, len(modules)):
        if _is_neuron(modules[q]):
            return q
        if isinstance(modules[q], (nn.Linear, nn.Conv2d)):
            return None
    return None


def _broadcast_scale(scale: torch.Tensor, size: int) -> torch.Tensor:
    """A scale (scalar or per-channel) as a vector of ``size`` entries."""
    if scale.ndim == 0:
        return scale.expand(size)
    if scale.numel() == size:
        return scale.reshape(size)
    raise ConversionError(f"a scale of {scale.numel()} entries does not fit {size} channels")


def _normalise(work: _Work, input_shape: tuple[int, ...], init_fraction: float) -> None:
    """Step 7: the normalised parameters of every node (``build_graph`` chains them).

    ``scale`` is the factor between the ANN's signal and the SNN's at the current position:
    SNN = ANN / scale (a 0-d tensor, or one entry per channel / feature).
    """
    qcfs = _qcfs_class()
    modules = [m for _, m in work.layers]
    scale = torch.tensor(1.0)
    shape = tuple(input_shape)
    specs: list[tuple[str, Any, int]] = []
    for p, (name, module) in enumerate(work.layers):
        tag = name.replace(".", "_")
        with torch.no_grad():
            out_shape = tuple(module(torch.zeros((1, *shape))).shape[1:])
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            c_in, c_out = module.weight.shape[1], module.weight.shape[0]
            target = _next_neuron(modules, p)
            s_out = torch.tensor(1.0)
            if target is not None:
                lam = work.scales[target]
                # Per-channel scales go into the weights only if they are this layer's channels.
                if lam.ndim == 0 or (lam.numel() == c_out and _same_channels(modules, p, target)):
                    s_out = lam
            s_in = _broadcast_scale(scale, c_in)
            s_o = _broadcast_scale(s_out, c_out)
            extra = (1,) * (module.weight.ndim - 2)
            weight = module.weight.detach() * s_in.reshape(1, c_in, *extra)
            weight = weight / s_o.reshape(c_out, 1, *extra)
            bias = module.bias.detach() if module.bias is not None else torch.zeros(c_out)
            bias = bias / s_o
            if isinstance(module, nn.Linear):
                node = Affine(weight=weight, bias=bias)
                specs.append((f"fc_{tag}", node, p))
            else:
                node = Conv2d(weight=weight, bias=bias, stride=module.stride,
                              padding=module.padding)
                specs.append((f"conv_{tag}", node, p))
            scale = s_out
        elif _is_neuron(module):
            lam = work.scales[p]
            channels = out_shape[0]
            threshold = _broadcast_scale(lam, channels) / _broadcast_scale(scale, channels)
            if bool((threshold == threshold.reshape(-1)[0]).all()):
                threshold = threshold.reshape(-1)[0].clone()
            fraction = init_fraction
            if qcfs is not None and isinstance(module, qcfs):
                fraction = float(module.shift)
            node = IF(threshold=threshold, reset="subtract", v_init_fraction=fraction)
            specs.append((f"if_{tag}", node, p))
            scale = lam
        elif isinstance(module, nn.AvgPool2d):
            specs.append((f"avgpool_{tag}", AvgPool2d(
                kernel_size=module.kernel_size,
                stride=module.stride if module.stride is not None else module.kernel_size,
                padding=module.padding), p))
        elif isinstance(module, nn.MaxPool2d):
            specs.append((f"maxpool_{tag}", MaxPool2d(
                kernel_size=module.kernel_size,
                stride=module.stride if module.stride is not None else module.kernel_size,
                padding=module.padding), p))
        elif isinstance(module, nn.Flatten):
            if scale.ndim == 1 and len(shape) > 1:
                scale = scale.repeat_interleave(math.prod(shape[1:]))
            specs.append((f"flatten_{tag}", Flatten(), p))
        else:  # pragma: no cover - excluded by check_supported
            raise UnsupportedLayerError(f"layer {name} ({type(module).__name__})")
        shape = out_shape
    work.specs = specs


def _same_channels(modules: list[nn.Module], p: int, q: int) -> bool:
    """Whether the channels of layer ``p``'s output reach layer ``q`` unchanged (no Flatten)."""
    return not any(isinstance(m, nn.Flatten) for m in modules[p + 1:q])


def _build_graph(
    work: _Work, input_shape: tuple[int, ...], encoding: str, dt_ms: float
) -> SpikingGraph:
    """Step 8: the chain Input -> nodes -> Output, and the per-layer report."""
    nodes: list[tuple[str, Any]] = [("input", Input(shape=input_shape, encoding=encoding))]
    for node_name, node, p in work.specs:
        nodes.append((node_name, node))
        i = work.index[p]
        name, module = work.layers[p]
        kind = type(module).__name__
        if isinstance(node, IF):
            work.reports[i] = LayerReport(
                i, name, kind, "IF (reset by subtraction)", node_name,
                scale=_scale_text(work.scales[p]), scale_source=work.sources[p],
                threshold=_scale_text(node.threshold),
            )
        else:
            action = "spiking MaxPool2d" if isinstance(node, MaxPool2d) else node.type_name
            work.reports[i] = LayerReport(i, name, kind, action, node_name)
    nodes.append(("output", Output()))
    return SpikingGraph.sequential(nodes, dt_ms=dt_ms)


# --------------------------------------------------------------------------------------------
# the pipeline
# --------------------------------------------------------------------------------------------


def convert(
    model: nn.Module,
    calibration_images: torch.Tensor,
    *,
    percentile: float | str = 99.9,
    channel_wise: bool = False,
    input_encoding: str = "current",
    dt_ms: float = 1.0,
    v_init_fraction: float = 0.5,
    batch_size: int = 256,
) -> Conversion:
    r"""Convert a trained ANN to a spiking graph of IF neurons (see the module docstring).

    Parameters
    ----------
    model : an ``nn.Sequential`` (nested allowed) of :data:`SUPPORTED_LAYERS`; not modified.
    calibration_images : ``(N, C, H, W)`` training images, at least
        :data:`~bridge.calibration.MIN_CALIBRATION_SAMPLES`; the graph's input shape is
        ``calibration_images.shape[1:]``.
    percentile : ``p`` in ``(0, 100]`` of the post-ReLU activations, or ``"max"``. 99.9 is the
        "robust normalisation" of Rueckauer et al. (2017).
    channel_wise : one scale per channel (feature) instead of one per layer.
    input_encoding : ``"current"`` (pixel intensity as a constant current) or ``"poisson"``.
    dt_ms : duration of one time step in ms, recorded in the graph.
    v_init_fraction : initial membrane of the IF neurons that replace ReLUs, as a fraction of
        the threshold (QCFS layers use their own shift, 0.5 by default). The default 0.5 makes
        the spike count after :math:`T` steps of a constant input :math:`r` round :math:`rT`
        instead of flooring it (the shift of Bu et al. 2022), which removes the systematic
        under-estimate of the rates at small :math:`T`; 0 is the classic choice.
    batch_size : images per forward pass during calibration.

    Returns
    -------
    Conversion
        ``graph`` and ``report`` (steps run, per-layer scale factors and thresholds, notes).

    Raises
    ------
    UnsupportedLayerError
        Naming the layer (index, name, type) and listing the supported layers.
    CalibrationError
        Too few calibration images, or images that do not fit the model.
    """
    if input_encoding not in ENCODINGS:
        raise ConversionError(
            f"input_encoding must be one of {ENCODINGS}, got {input_encoding!r}"
        )
    percentile_fraction(percentile)  # validate before any work
    work = _Work()
    steps_run: list[str] = []

    def step(name: str, function: Callable[[], Any]) -> Any:
        result = function()
        steps_run.append(name)
        return result

    copied = step("copy_model", lambda: _copy_model(model))
    work.layers = step("flatten_layers", lambda: _flatten_layers(copied))
    work.index = list(range(len(work.layers)))
    step("check_supported", lambda: _check_supported(work))
    step("fold_batchnorm", lambda: _fold_batchnorm_layers(work))
    step("check_structure", lambda: _check_structure(work))
    images = check_calibration_images(calibration_images, [m for _, m in work.layers])
    if input_encoding == "poisson" and (images.min() < 0 or images.max() > 1):
        raise CalibrationError("Poisson encoding needs images with intensities in [0, 1]")
    input_shape = tuple(images.shape[1:])
    step("calibrate", lambda: _calibrate(work, images, percentile, channel_wise, batch_size))
    step("normalise", lambda: _normalise(work, input_shape, v_init_fraction))
    graph = step("build_graph", lambda: _build_graph(work, input_shape, input_encoding, dt_ms))
    assert tuple(steps_run) == CONVERSION_STEPS
    report = ConversionReport(
        steps=tuple(steps_run),
        layers=tuple(work.reports[i] for i in sorted(work.reports)),
        percentile=percentile,
        channel_wise=channel_wise,
        input_encoding=input_encoding,
        dt_ms=float(dt_ms),
        num_calibration_images=len(images),
        notes=tuple(work.notes),
    )
    return Conversion(graph=graph, report=report)


# --------------------------------------------------------------------------------------------
# the rate model
# --------------------------------------------------------------------------------------------


def expected_rates(graph: SpikingGraph, images: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""Firing rates the graph approaches as :math:`T \to \infty`, from the graph alone.

    Each IF node (reset by subtraction) with a constant input current :math:`I` fires at
    :math:`\mathrm{clip}(I/\theta, 0, 1)` spikes per step; average pools average the rates,
    max-pools take the largest, synaptic nodes apply their weights to the rates. For a converted
    network the rates are the ANN's normalised activations :math:`a_l/\lambda_l`, clipped to 1.

    Parameters
    ----------
    graph : a graph whose neurons are all :class:`~bridge.graph.IF` with ``reset="subtract"``.
    images : ``(N, *input_shape)``; under Poisson encoding the intensities are the input rates.

    Returns
    -------
    dict
        ``{IF node: (N, *shape)}`` rates in spikes per step, and ``{output node: (N, K)}`` the
        readout current per step (its accumulated value divided by :math:`T`).
    """
    x = torch.as_tensor(images, dtype=torch.float32)
    rates: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, node in graph.items():
            if isinstance(node, Input):
                continue
            if isinstance(node, Affine):
                x = F.linear(x, node.weight, node.bias)
            elif isinstance(node, Conv2d):
                x = F.conv2d(x, node.weight, node.bias, node.stride, node.padding)
            elif isinstance(node, AvgPool2d):
                x = F.avg_pool2d(x, node.kernel_size, node.stride, node.padding)
            elif isinstance(node, MaxPool2d):
                x = F.max_pool2d(x, node.kernel_size, node.stride, node.padding)
            elif isinstance(node, Flatten):
                x = x.reshape(x.shape[0], -1)
            elif isinstance(node, IF) and node.reset == "subtract":
                threshold = node.threshold
                if threshold.ndim == 1 and x.ndim > 2:
                    threshold = threshold.reshape(-1, *(1,) * (x.ndim - 2))
                x = torch.clamp(x / threshold, 0.0, 1.0)
                rates[name] = x
            elif isinstance(node, Output):
                rates[name] = x
            else:
                raise ConversionError(
                    f"expected_rates has no closed form for node {name!r} "
                    f"({node.type_name}, reset {getattr(node, 'reset', None)!r})"
                )
    return rates

