r"""Spiking networks trained directly with surrogate gradients through snnTorch (BPTT).

The other road from ANNs to SNNs: instead of converting a trained ANN (:mod:`bridge.conversion`),
a network of ``snn.Leaky`` neurons is trained end to end by backpropagation through time, the
non-differentiable spike replaced by a smooth surrogate in the backward pass only [1]_ [2]_ [3]_.

Network
-------
``[Conv2d -> (MaxPool2d | AvgPool2d)(2) -> Leaky] * len(conv_channels) -> Flatten ->
[Linear -> Leaky] * len(hidden) -> Linear -> Leaky`` (the last ``Leaky`` is the output layer,
one neuron per class). Pooling acts on the synaptic currents, before the neurons. Block ``i``
is named ``conv1, conv2, ...``, ``fc1, fc2, ...`` and ``out``; the name stands for its synapses
*and* the neurons they feed.

Neuron
------
``snn.Leaky(beta, threshold=theta, reset_mechanism=reset, init_hidden=False)`` with
:math:`\beta = e^{-\Delta t/\tau}` (:func:`bridge.graph.decay_factor`; ``tau_ms=math.inf`` is an
IF neuron). Its membrane is passed in and out explicitly at every step; the state of a forward
pass is created inside it (``init_leaky()``) and dropped at its end. snnTorch (default
``reset_delay=True``) applies the reset of a spike emitted at step :math:`t-1` at step :math:`t`:

.. math::

    U[t] = \beta U[t-1] + I[t] - s[t-1]\,\theta \quad(\text{"subtract"}), \qquad
    U[t] = \beta (1 - s[t-1]) U[t-1] + I[t] \quad(\text{"zero"}), \qquad
    s[t] = \Theta(U[t] - \theta),

with :math:`I[t] = W s_{\text{in}}[t] + b` (the reset term is detached from the graph, as
snnTorch does). The backward pass replaces :math:`\Theta'` by

* ``"fast_sigmoid"`` [1]_: :math:`\partial s/\partial U = 1 / (1 + k\,|U - \theta|)^2`
  (``slope`` :math:`k`);
* ``"atan"`` [2]_: :math:`\partial s/\partial U = (\alpha/2) / (1 + (\pi\alpha (U - \theta)/2)^2)`
  (``alpha``).

snnTorch registers every neuron in a class-level list; the neurons built here are removed from
it (as in :mod:`bridge.runners.snntorch_runner`) so that they are freed with the network.

Input and output
----------------
Encoding ``"current"``: the image is the input current of the first layer at every step (it is
computed once per forward pass, since it does not change). ``"rate"``: at every step each pixel
emits a spike with probability equal to its intensity (Bernoulli, a seeded generator).

Decoding ``"count"`` (the default): the logits are the output spike counts over the ``T``
steps, :math:`z_k = \sum_t s_k[t]`, and the loss is the cross-entropy of ``z`` (what
``snntorch.functional.ce_count_loss`` computes). ``"membrane"``: the logits are the mean output
membrane :math:`z_k = \frac1T\sum_t U_k[t]`. The prediction after ``t`` steps is the argmax of
the same quantity accumulated over the first ``t`` steps (ties go to the lowest class index).

Energy
------
:func:`evaluate_surrogate_snn` counts, like :func:`bridge.runners.run`, one synaptic operation
(an accumulate) per input spike and outgoing synapse (:func:`bridge.graph.fan_out`), per layer
and summed over the ``T`` steps; a first layer fed with analog current does multiply-accumulates
instead (every non-zero pixel times its fan-out, every step), reported apart. ``ann_macs`` is the
dense multiply-accumulate count of one pass of the ANN with the same synapses.

Training reproducibility
------------------------
As :func:`ann.training.train`: epoch ``e`` shuffles with :func:`ann.training.epoch_generator`
``(seed, e)``, and the rate encoder of epoch ``e`` draws from a generator seeded from
``(seed, e)`` too, so an epoch does not depend on what ran before it. The initial weights come
from ``config.seed`` (:func:`build_surrogate_snn` does not touch torch's global generator).
With ``checkpoint_path`` the training state is saved atomically after every epoch, and a run
killed after epoch ``k`` and resumed ends with bit-identical weights and history (same device,
torch build and thread count).

References
----------
.. [1] F. Zenke and S. Ganguli, "SuperSpike: Supervised learning in multilayer spiking neural
   networks", Neural Computation 30(6), 2018.
.. [2] W. Fang et al., "Incorporating learnable membrane time constants to enhance learning of
   spiking neural networks", ICCV 2021.
.. [3] E. O. Neftci, H. Mostafa and F. Zenke, "Surrogate gradient learning in spiking neural
   networks", IEEE Signal Processing Magazine 36(6), 2019.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import snntorch as snn
import torch
import torch.nn.functional as F
from snntorch import surrogate as snn_surrogate
from torch import nn
from tqdm.auto import tqdm

from ann.serialization import atomic_torch_save, read_checkpoint
from ann.training import cross_entropy_epoch, epoch_generator, is_improvement
from bridge.graph import Affine, Conv2d, decay_factor, fan_out
from bridge.runners.snntorch_runner import _forget

if TYPE_CHECKING:
    from ann.datasets import Split

__all__ = [
    "SURROGATES",
    "ENCODINGS",
    "DECODINGS",
    "SURROGATE_CHECKPOINT_FORMAT",
    "SurrogateSNNConfig",
    "SurrogateSNN",
    "SurrogateTrainResult",
    "SurrogateEvaluation",
    "build_surrogate_snn",
    "train_surrogate_snn",
    "evaluate_surrogate_snn",
    "decode_output",
]

SURROGATES = ("fast_sigmoid", "atan")
ENCODINGS = ("current", "rate")
DECODINGS = ("count", "membrane")
_RESETS = ("subtract", "zero")
_POOLINGS = ("max", "avg", "none")
_MONITORS = ("val_accuracy", "val_loss")
_HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
# Fields that only steer training; the others fix the network and what its forward pass does.
_TRAINING_FIELDS = frozenset({"lr", "epochs", "batch_size", "monitor", "seed"})
SURROGATE_CHECKPOINT_FORMAT = "spikebridge-surrogate-checkpoint"
_CHECKPOINT_VERSION = 1
_ENCODER_STREAM = 1  # keeps the encoder's seeds apart from the shuffling's


def _positive_ints(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise ValueError(f"{name} must contain positive integers only, got {value!r}")
    return tuple(int(v) for v in value)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_positive_float(name: str, value: Any, *, allow_inf: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not value > 0 or (math.isinf(value) and not allow_inf) or math.isnan(value):
        raise ValueError(f"{name} must be positive{'' if allow_inf else ' and finite'}, "
                         f"got {value!r}")


@dataclass(frozen=True)
class SurrogateSNNConfig:
    """Architecture, neuron, coding and training of a surrogate-gradient SNN.

    Attributes
    ----------
    hidden : widths of the hidden fully connected spiking layers.
    conv_channels : output channels of the convolutional front end (``()``: none).
    kernel_size : odd side of the square kernels (stride 1, "same" zero padding).
    pooling : ``"max"``, ``"avg"`` (2x2, on the currents after each convolution) or ``"none"``.
    tau_ms : membrane time constant in ms (> 0; ``math.inf`` for an IF neuron).
    dt_ms : duration of one time step in ms (> 0). :attr:`beta` is
        :math:`e^{-\\Delta t/\\tau}`; :meth:`from_beta` goes the other way.
    threshold : firing threshold :math:`\\theta` (> 0, in the units of the input current).
    reset : ``"subtract"`` (reset by subtraction of :math:`\\theta`) or ``"zero"``.
    surrogate : ``"fast_sigmoid"`` (uses ``slope``) or ``"atan"`` (uses ``alpha``).
    slope : steepness :math:`k` of the fast-sigmoid surrogate (> 0).
    alpha : width parameter :math:`\\alpha` of the arctan surrogate (> 0).
    T : time steps per sample (>= 1).
    encoding : ``"current"`` or ``"rate"`` (see the module docstring).
    decoding : ``"count"`` or ``"membrane"`` (see the module docstring).
    lr : Adam learning rate (> 0).
    epochs : number of training epochs (>= 1).
    batch_size : training samples per step (>= 1).
    monitor : ``"val_accuracy"`` (higher is better) or ``"val_loss"``; picks the best epoch
        (strict improvement, so the earliest of equal epochs).
    seed : seed (>= 0) of the initial weights, the shuffling and the rate encoder.
    """

    hidden: tuple[int, ...] = (128,)
    conv_channels: tuple[int, ...] = ()
    kernel_size: int = 3
    pooling: str = "max"
    tau_ms: float = 10.0
    dt_ms: float = 1.0
    threshold: float = 1.0
    reset: str = "subtract"
    surrogate: str = "fast_sigmoid"
    slope: float = 25.0
    alpha: float = 2.0
    T: int = 16
    encoding: str = "current"
    decoding: str = "count"
    lr: float = 1e-3
    epochs: int = 10
    batch_size: int = 64
    monitor: str = "val_accuracy"
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", _positive_ints("hidden", self.hidden))
        object.__setattr__(self, "conv_channels",
                           _positive_ints("conv_channels", self.conv_channels))
        _check_int("kernel_size", self.kernel_size, 1)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd ('same' padding), got {self.kernel_size}")
        for name, allowed in (("pooling", _POOLINGS), ("reset", _RESETS),
                              ("surrogate", SURROGATES), ("encoding", ENCODINGS),
                              ("decoding", DECODINGS), ("monitor", _MONITORS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        _check_positive_float("tau_ms", self.tau_ms, allow_inf=True)
        for name in ("dt_ms", "threshold", "slope", "alpha", "lr"):
            _check_positive_float(name, getattr(self, name))
        _check_int("T", self.T, 1)
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("seed", self.seed, 0)

    @property
    def beta(self) -> float:
        """Membrane decay per step :math:`\\beta = e^{-\\Delta t/\\tau}`."""
        return decay_factor(self.tau_ms, self.dt_ms)

    @classmethod
    def from_beta(cls, beta: float, *, dt_ms: float = 1.0, **kwargs: Any) -> SurrogateSNNConfig:
        """A config whose neurons decay by ``beta`` in (0, 1] per step of ``dt_ms``:
        :math:`\\tau = -\\Delta t / \\ln\\beta` (``math.inf`` for ``beta == 1``)."""
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 < beta <= 1:
            raise ValueError(f"beta must be in (0, 1], got {beta!r}")
        tau_ms = math.inf if beta == 1 else -dt_ms / math.log(beta)
        return cls(tau_ms=tau_ms, dt_ms=dt_ms, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the fields (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SurrogateSNNConfig:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on an unknown key."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown field(s) {unknown} in a SurrogateSNNConfig")
        return cls(**data)

    def model_fields(self) -> dict[str, Any]:
        """The fields that fix the network and its forward pass (all but the training ones)."""
        return {k: v for k, v in self.to_dict().items() if k not in _TRAINING_FIELDS}


def _spike_function(config: SurrogateSNNConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    if config.surrogate == "fast_sigmoid":
        return snn_surrogate.fast_sigmoid(slope=config.slope)
    return snn_surrogate.atan(alpha=config.alpha)


class SurrogateSNN(nn.Module):
    """The spiking network of :func:`build_surrogate_snn` (see the module docstring).

    Attributes
    ----------
    config, input_shape, num_classes : what it was built from.
    layer_names : block names, input to output (``conv1``..., ``fc1``..., ``out``).
    synapses : one :class:`torch.nn.Sequential` per block (``Conv2d`` + pool, or ``Linear``,
        the first one after the convolutions preceded by ``Flatten``).
    neurons : one ``snn.Leaky`` per block.
    layer_sizes : ``{block: neurons}``.
    ann_macs : ``{block: multiply-accumulates of one dense pass through its synapses}``.
    """

    def __init__(
        self, config: SurrogateSNNConfig, input_shape: Sequence[int], num_classes: int
    ) -> None:
        super().__init__()
        self.config = config
        self.input_shape = _positive_ints("input_shape", input_shape)
        _check_int("num_classes", num_classes, 2)
        self.num_classes = num_classes
        if config.conv_channels and len(self.input_shape) != 3:
            raise ValueError(
                f"a conv front end needs input_shape (C, H, W), got {self.input_shape}"
            )
        self.layer_names: list[str] = []
        self.layer_sizes: dict[str, int] = {}
        self.ann_macs: dict[str, int] = {}
        self.synapses = nn.ModuleList()
        self.neurons = nn.ModuleList()
        shape = self.input_shape
        k, pad = config.kernel_size, config.kernel_size // 2
        for i, channels in enumerate(config.conv_channels, start=1):
            conv = nn.Conv2d(shape[0], channels, k, padding=pad)
            node = Conv2d(weight=conv.weight.detach(), bias=conv.bias.detach(), stride=1,
                          padding=pad)
            conv_shape = node.output_shape(shape)
            layers: list[nn.Module] = [conv]
            out_shape = conv_shape
            if config.pooling != "none":
                pool = nn.MaxPool2d(2) if config.pooling == "max" else nn.AvgPool2d(2)
                layers.append(pool)
                out_shape = (channels, conv_shape[1] // 2, conv_shape[2] // 2)
                if min(out_shape[1:]) < 1:
                    raise ValueError(
                        f"input_shape {self.input_shape} is too small for "
                        f"{len(config.conv_channels)} conv blocks with 2x2 pooling"
                    )
            self._add_block(f"conv{i}", nn.Sequential(*layers), fan_out(node, shape),
                            math.prod(conv_shape) * shape[0] * k * k, out_shape)
            shape = out_shape
        widths = [*config.hidden, num_classes]
        names = [f"fc{i}" for i in range(1, len(config.hidden) + 1)] + ["out"]
        for j, (name, width) in enumerate(zip(names, widths, strict=True)):
            in_features = math.prod(shape)
            linear = nn.Linear(in_features, width)
            layers = [nn.Flatten(), linear] if j == 0 else [linear]
            node = Affine(weight=linear.weight.detach(), bias=linear.bias.detach())
            self._add_block(name, nn.Sequential(*layers), fan_out(node, (in_features,)),
                            in_features * width, (width,))
            shape = (width,)

    def _add_block(self, name: str, synapse: nn.Sequential, fan: torch.Tensor, macs: int,
                   out_shape: tuple[int, ...]) -> None:
        config = self.config
        neuron = snn.Leaky(
            beta=config.beta,
            threshold=config.threshold,
            spike_grad=_spike_function(config),
            reset_mechanism=config.reset,
            init_hidden=False,
        )
        _forget(neuron)
        # Synapses leaving each input element, flattened; moves with the module, not saved.
        self.register_buffer(f"_fan_out_{len(self.layer_names)}", fan.reshape(-1),
                             persistent=False)
        self.synapses.append(synapse)
        self.neurons.append(neuron)
        self.layer_names.append(name)
        self.layer_sizes[name] = math.prod(out_shape)
        self.ann_macs[name] = int(macs)

    def _fan_out(self, i: int) -> torch.Tensor:
        return getattr(self, f"_fan_out_{i}")

    def encode(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One step of input: Bernoulli spikes of probability ``images`` (``"rate"``; the
        ``generator`` must live on the images' device, ``None`` uses torch's global one)."""
        noise = torch.rand(images.shape, generator=generator, device=images.device)
        return (noise < images).to(images.dtype)

    def forward(
        self,
        x: torch.Tensor,
        *,
        T: int | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Simulate ``T`` steps (``config.T`` by default) of the batch ``x``.

        Parameters
        ----------
        x : images ``(B, *input_shape)``, intensities in :math:`[0, 1]` for rate encoding.
        T : number of steps.
        generator : the rate encoder's random generator (on ``x``'s device).

        Returns
        -------
        spk_out_rec, mem_out_rec : ``(T, B, num_classes)`` output spikes and membranes.
        """
        spk, mem, _ = self._simulate(x, T, generator, record=False)
        return spk, mem

    def _simulate(
        self,
        x: torch.Tensor,
        T: int | None,
        generator: torch.Generator | None,
        record: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor] | None]:
        """The time loop. With ``record`` also ``{"spikes", "synops", "analog_macs"}``, each
        ``(layers, T)`` summed over the batch (synops: events into the block's synapses)."""
        T = self.config.T if T is None else T
        _check_int("T", T, 1)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"x must have shape (B, *{self.input_shape}), got {tuple(x.shape)}"
            )
        current = self.config.encoding == "current"
        n_layers = len(self.neurons)
        stats = None
        if record:
            stats = {key: torch.zeros((n_layers, T), dtype=torch.float64, device=x.device)
                     for key in ("spikes", "synops", "analog_macs")}
        # Fresh state for this pass (snnTorch's init_leaky: empty, replaced by zeros shaped
        # like the first input current).
        mems = [neuron.init_leaky() for neuron in self.neurons]
        static_input = self.synapses[0](x) if current else None
        spk_rec, mem_rec = [], []
        try:
            for t in range(T):
                events = x if current else self.encode(x, generator)
                for i, (synapse, neuron) in enumerate(zip(self.synapses, self.neurons,
                                                          strict=True)):
                    if stats is not None:
                        flat = events.reshape(events.shape[0], -1)
                        if i == 0 and current:
                            stats["analog_macs"][i, t] = (
                                (flat != 0).to(flat.dtype) @ self._fan_out(i)).sum()
                        else:
                            stats["synops"][i, t] = (flat @ self._fan_out(i)).sum()
                    cur = static_input if i == 0 and current else synapse(events)
                    events, mems[i] = neuron(cur, mems[i])
                    if stats is not None:
                        stats["spikes"][i, t] = events.sum()
                spk_rec.append(events)
                mem_rec.append(mems[-1])
        finally:
            # snnTorch also keeps the last membrane on the module; drop it so that no graph
            # outlives the pass and the module stays copyable.
            for neuron in self.neurons:
                neuron.mem = torch.zeros(0, device=x.device)
        return torch.stack(spk_rec), torch.stack(mem_rec), stats


def build_surrogate_snn(
    config: SurrogateSNNConfig, input_shape: Sequence[int], num_classes: int
) -> SurrogateSNN:
    """Build the network of ``config`` for inputs ``(B, *input_shape)`` and ``num_classes``.

    The initial weights are PyTorch's default initialisation drawn from ``config.seed`` (torch's
    global random state is left as it was). The network is on the CPU.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return SurrogateSNN(config, input_shape, num_classes)


def decode_output(spk_out_rec: torch.Tensor, mem_out_rec: torch.Tensor,
                  decoding: str) -> torch.Tensor:
    """Logits ``(B, K)`` from the ``(T, B, K)`` output records: spike counts (``"count"``) or the
    mean membrane (``"membrane"``)."""
    if decoding == "count":
        return spk_out_rec.sum(dim=0)
    if decoding == "membrane":
        return mem_out_rec.mean(dim=0)
    raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _check_split(split: Split, model: SurrogateSNN, name: str) -> None:
    if len(split) == 0:
        raise ValueError(f"{name} is empty")
    if tuple(split.images.shape[1:]) != model.input_shape:
        raise ValueError(f"{name} images have shape {tuple(split.images.shape[1:])}, the "
                         f"network takes {model.input_shape}")
    if model.config.encoding == "rate" and (split.images.min() < 0 or split.images.max() > 1):
        raise ValueError(f"rate encoding needs {name} intensities in [0, 1]")


def _seeded_generator(device: torch.device, *entropy: int) -> torch.Generator:
    derived = int(np.random.SeedSequence(list(entropy)).generate_state(1, dtype=np.uint64)[0])
    generator = torch.Generator(device=device)
    generator.manual_seed(derived)
    return generator


@dataclass(frozen=True)
class SurrogateEvaluation:
    """What :func:`evaluate_surrogate_snn` measured (per-sample figures are means).

    Attributes
    ----------
    T : time steps simulated.
    accuracy : fraction correct after ``T`` steps.
    loss : mean cross-entropy of the decoded logits (nats per sample).
    accuracy_per_step : ``(T,)``; entry ``t`` is the accuracy after ``t + 1`` steps.
    spikes_per_sample : ``{block: spikes its neurons emit per sample over T steps}``.
    layer_sizes : ``{block: neurons}``.
    synops_per_sample : ``{block: spike-driven synaptic operations into its synapses per
        sample}`` (all blocks except an analog-fed first one).
    analog_macs_per_sample : ``{block: multiply-accumulates on analog input per sample}``
        (the first block under current encoding; else empty).
    ann_macs : ``{block: MACs of one dense ANN pass}``.
    num_samples : samples evaluated; ``wall_time_s`` : seconds; ``device`` : where it ran.
    """

    T: int
    accuracy: float
    loss: float
    accuracy_per_step: np.ndarray
    spikes_per_sample: dict[str, float]
    layer_sizes: dict[str, int]
    synops_per_sample: dict[str, float]
    analog_macs_per_sample: dict[str, float]
    ann_macs: dict[str, int]
    num_samples: int
    wall_time_s: float
    device: str

    @property
    def total_synops(self) -> float:
        """Spike-driven synaptic operations per inference, all blocks."""
        return float(sum(self.synops_per_sample.values()))

    @property
    def total_ann_macs(self) -> int:
        return int(sum(self.ann_macs.values()))

    def spike_rates(self) -> dict[str, float]:
        """Spikes per neuron per step, per block (multiply by ``1000 / dt_ms`` for Hz)."""
        return {k: v / (self.layer_sizes[k] * self.T) for k, v in self.spikes_per_sample.items()}


def evaluate_surrogate_snn(
    model: SurrogateSNN,
    split: Split,
    T: int | None = None,
    *,
    batch_size: int = 256,
    seed: int = 0,
) -> SurrogateEvaluation:
    """Accuracy (against time), loss, spike counts and synaptic operations on ``split``.

    Runs on the model's device in eval mode under :func:`torch.inference_mode`, restoring the
    model's mode afterwards.

    Parameters
    ----------
    model : the network.
    split : images and labels.
    T : time steps (``model.config.T`` by default).
    batch_size : samples simulated together.
    seed : seed of the rate encoder (unused for current input).
    """
    T = model.config.T if T is None else T
    _check_int("T", T, 1)
    _check_int("batch_size", batch_size, 1)
    _check_split(split, model, "split")
    device = _model_device(model)
    decoding = model.config.decoding
    generator = _seeded_generator(device, seed) if model.config.encoding == "rate" else None
    n = len(split)
    n_layers = len(model.layer_names)
    correct = torch.zeros(T, dtype=torch.float64, device=device)
    totals = {key: torch.zeros((n_layers, T), dtype=torch.float64, device=device)
              for key in ("spikes", "synops", "analog_macs")}
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            for lo in range(0, n, batch_size):
                x = split.images[lo:lo + batch_size].to(device)
                y = split.labels[lo:lo + batch_size].to(device)
                spk, mem, stats = model._simulate(x, T, generator, record=True)
                readout = spk if decoding == "count" else mem
                predictions = readout.cumsum(dim=0).argmax(dim=2)  # (T, B)
                correct += (predictions == y).sum(dim=1)
                loss_sum += F.cross_entropy(decode_output(spk, mem, decoding), y,
                                            reduction="sum")
                for key, value in stats.items():
                    totals[key] += value
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    finally:
        model.train(was_training)
    wall = time.perf_counter() - start
    per_sample = {key: (value.sum(dim=1) / n).cpu().tolist() for key, value in totals.items()}
    names = model.layer_names
    analog = {names[0]} if model.config.encoding == "current" else set()
    accuracy_per_step = (correct / n).cpu().numpy()
    return SurrogateEvaluation(
        T=T,
        accuracy=float(accuracy_per_step[-1]),
        loss=float(loss_sum) / n,
        accuracy_per_step=accuracy_per_step,
        spikes_per_sample=dict(zip(names, per_sample["spikes"], strict=True)),
        layer_sizes=dict(model.layer_sizes),
        synops_per_sample={k: v for k, v in zip(names, per_sample["synops"], strict=True)
                           if k not in analog},
        analog_macs_per_sample={k: v for k, v in zip(names, per_sample["analog_macs"],
                                                     strict=True) if k in analog},
        ann_macs=dict(model.ann_macs),
        num_samples=n,
        wall_time_s=wall,
        device=str(device),
    )


@dataclass
class SurrogateTrainResult:
    """What :func:`train_surrogate_snn` returns.

    Attributes
    ----------
    history : ``{"train_loss", "train_accuracy", "val_loss", "val_accuracy"}``, one float per
        epoch. Train metrics are averaged over the epoch's batches as the weights change;
        validation metrics come from :func:`evaluate_surrogate_snn` after the epoch.
    best_epoch : index (from 0) of the epoch whose weights the model ends with.
    epochs_run : epochs completed, across resumes.
    samples_seen : training samples processed, across resumes.
    wall_time_s : training time in seconds (validation included), across resumes.
    epoch_times_s : seconds of each epoch (training and validation).
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = -1
    epochs_run: int = 0
    samples_seen: int = 0
    wall_time_s: float = 0.0
    epoch_times_s: list[float] = field(default_factory=list)


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def _load_checkpoint(path: Path, model: SurrogateSNN, optimizer: torch.optim.Optimizer,
                     config: SurrogateSNNConfig, device: torch.device) -> dict[str, Any]:
    state = read_checkpoint(path, SURROGATE_CHECKPOINT_FORMAT, _CHECKPOINT_VERSION,
                            "surrogate-training", device)
    saved, current = dict(state["config"]), config.to_dict()
    # Only the epoch budget may change: extending a run continues it exactly.
    saved.pop("epochs", None)
    current.pop("epochs")
    if saved != current or list(state["input_shape"]) != list(model.input_shape) \
            or state["num_classes"] != model.num_classes:
        changed = sorted(k for k in current if saved.get(k) != current[k])
        raise ValueError(f"checkpoint {path} was written for another configuration or network "
                         f"(differing fields: {changed or 'input_shape/num_classes'}); use "
                         "another checkpoint path or the original configuration")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state


def train_surrogate_snn(
    model: SurrogateSNN,
    train: Split,
    val: Split,
    config: SurrogateSNNConfig,
    *,
    device: str | torch.device = "cpu",
    checkpoint_path: Path | str | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict[str, list[float]]], None] | None = None,
) -> SurrogateTrainResult:
    """Train ``model`` by backpropagation through time with Adam and cross-entropy.

    Parameters
    ----------
    model : built by :func:`build_surrogate_snn` from a config whose network fields equal
        ``config``'s (:meth:`SurrogateSNNConfig.model_fields`); trained in place on ``device``.
        It ends with the weights of the best validation epoch (``config.monitor``) and in the
        mode it had on entry.
    train, val : training and validation splits (moved to ``device`` whole).
    config : the run's configuration (``lr``, ``epochs``, ``batch_size``, ``monitor``,
        ``seed`` steer training).
    device : ``"cpu"``, ``"cuda"``, ...
    checkpoint_path : if given, the training state is saved there atomically after every
        epoch, and an existing file there is resumed from (see the module docstring).
    progress : show tqdm bars (epochs, and batches within an epoch).
    on_epoch_end : called as ``on_epoch_end(epoch, history)`` after each epoch and its
        checkpoint; an exception raised there stops training, leaving the checkpoint.

    Returns
    -------
    SurrogateTrainResult

    Raises
    ------
    ValueError
        If the model was built from another network configuration, a split is empty or does
        not fit, or the checkpoint is unreadable or belongs to another configuration (other
        than ``epochs``).
    """
    if model.config.model_fields() != config.model_fields():
        differ = sorted(k for k, v in config.model_fields().items()
                        if model.config.model_fields()[k] != v)
        raise ValueError(f"the model was built from another network configuration (fields "
                         f"{differ} differ); build it from this config")
    _check_split(train, model, "train")
    _check_split(val, model, "val")
    device = torch.device(device)
    checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    history: dict[str, list[float]] = {key: [] for key in _HISTORY_KEYS}
    epoch_times: list[float] = []
    start_epoch, best_epoch, samples_seen, elapsed_before = 0, -1, 0, 0.0
    best_value: float | None = None
    best_state = _clone_state(model)
    if checkpoint_path is not None and checkpoint_path.exists():
        state = _load_checkpoint(checkpoint_path, model, optimizer, config, device)
        history = {key: list(state["history"][key]) for key in _HISTORY_KEYS}
        epoch_times = list(state["epoch_times_s"])
        start_epoch = state["epoch"] + 1
        best_state, best_value, best_epoch = (state["best_state"], state["best_value"],
                                              state["best_epoch"])
        samples_seen, elapsed_before = state["samples_seen"], state["wall_time_s"]

    images, labels = train.images.to(device), train.labels.to(device)
    n = len(labels)
    batches = [slice(lo, lo + config.batch_size) for lo in range(0, n, config.batch_size)]
    was_training = model.training
    started = time.perf_counter()
    bar = tqdm(range(start_epoch, config.epochs), total=config.epochs, initial=start_epoch,
               desc="surrogate", unit="epoch", disable=not progress, leave=False)
    try:
        for epoch in bar:
            epoch_start = time.perf_counter()
            model.train()
            order = torch.randperm(n, generator=epoch_generator(config.seed, epoch)).to(device)
            encoder = (_seeded_generator(device, config.seed, epoch, _ENCODER_STREAM)
                       if config.encoding == "rate" else None)
            train_loss, train_accuracy = cross_entropy_epoch(
                lambda x, g=encoder: decode_output(*model(x, generator=g), config.decoding),
                optimizer, images, labels, order,
                tqdm(batches, desc=f"epoch {epoch}", unit="batch", disable=not progress,
                     leave=False),
            )
            samples_seen += n
            validation = evaluate_surrogate_snn(model, val, seed=config.seed)
            history["train_loss"].append(train_loss)
            history["train_accuracy"].append(train_accuracy)
            history["val_loss"].append(validation.loss)
            history["val_accuracy"].append(validation.accuracy)
            value = validation.loss if config.monitor == "val_loss" else validation.accuracy
            if is_improvement(value, best_value, config.monitor):
                best_value, best_epoch, best_state = value, epoch, _clone_state(model)
            epoch_times.append(time.perf_counter() - epoch_start)
            bar.set_postfix(loss=f"{history['train_loss'][-1]:.4f}",
                            val_acc=f"{validation.accuracy:.3f}")
            if checkpoint_path is not None:
                atomic_torch_save(
                    {
                        "format": SURROGATE_CHECKPOINT_FORMAT,
                        "version": _CHECKPOINT_VERSION,
                        "config": config.to_dict(),
                        "input_shape": list(model.input_shape),
                        "num_classes": model.num_classes,
                        "epoch": epoch,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "history": history,
                        "epoch_times_s": epoch_times,
                        "best_state": best_state,
                        "best_value": best_value,
                        "best_epoch": best_epoch,
                        "samples_seen": samples_seen,
                        "wall_time_s": elapsed_before + time.perf_counter() - started,
                    },
                    checkpoint_path,
                )
            if on_epoch_end is not None:
                on_epoch_end(epoch, {key: list(values) for key, values in history.items()})
    finally:
        bar.close()
        model.train(was_training)

    model.load_state_dict(best_state)
    return SurrogateTrainResult(
        history=history,
        best_epoch=best_epoch,
        epochs_run=len(history["train_loss"]),
        samples_seen=samples_seen,
        wall_time_s=elapsed_before + time.perf_counter() - started,
        epoch_times_s=epoch_times,
    )
