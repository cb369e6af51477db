r"""A small typed graph for feed-forward spiking networks, in the style of NIR.

A :class:`SpikingGraph` is a dictionary of frozen-dataclass nodes, a list of edges and the time
step ``dt_ms``. Shapes are inferred and checked when the graph is built, so a graph that exists
is a graph that runs. The graph is what the ANN-to-SNN converter produces
(:func:`bridge.conversion.convert`), what the runners read (:mod:`bridge.runners`) and what is
exchanged with NIR files (:mod:`bridge.nir_io`).

Semantics (one time step :math:`t = 1, \dots, T` lasts ``dt_ms`` milliseconds)
--------------------------------------------------------------------------------
Every node maps the signal of its predecessor at step :math:`t` to its own signal at step
:math:`t`; there are no delays, so a spike reaches the output in the step it is emitted.

* :class:`Input` -- ``encoding="current"``: the image itself every step (a constant current
  equal to the pixel intensity); ``encoding="poisson"``: a Bernoulli spike per pixel and step
  with probability equal to the intensity (rate coding, at most one spike per step; intensities
  must lie in :math:`[0, 1]`).
* :class:`Affine` -- :math:`y[t] = W x[t] + b`; :class:`Conv2d` likewise with a convolution. The
  bias is a constant current injected every step.
* :class:`AvgPool2d` -- average pooling of its input, a linear operation (applied to spikes it
  passes fractional values on; no neuron follows it).
* :class:`MaxPool2d` -- a *spiking* max-pool gated by running spike counts: each window passes
  on, at step :math:`t`, the spike of its winner, the unit with the largest cumulative count
  :math:`c_i[t] = \sum_{t' \le t} s_i[t']` (including step :math:`t`); the winner changes
  only when another unit's count strictly exceeds the winner's. A winner's spike always raises
  the window's largest count and a change of winner happens only through such a spike, so the
  output is :math:`\max_i c_i[t] - \max_i c_i[t-1] \in \{0, 1\}`: the output count equals
  the largest input count at every step, and the output rate converges to the largest input
  rate. (Gating on counts alone, without keeping the winner on ties, passes both spike trains
  of two equally fast units firing out of phase: twice the rate.) Its state is the running
  count.
* :class:`Flatten` -- reshapes ``(C, H, W)`` to ``(C*H*W,)``.
* :class:`IF` -- integrate-and-fire, integrate then threshold then reset:

  .. math::

      v[t] = v[t-1] + I[t], \qquad
      s[t] = \Theta(v[t] - \theta), \qquad
      v[t] \leftarrow \begin{cases} v[t] - s[t]\,\theta & \text{reset="subtract"} \\
                                    (1 - s[t])\,v[t] & \text{reset="zero"} \end{cases}

  with :math:`I[t] = W s_{\mathrm{in}}[t] + b` the input current, :math:`\Theta(x) = 1` for
  :math:`x > 0` and 0 otherwise (a neuron fires when :math:`v > \theta`, strictly, as in NIR and
  snnTorch), and :math:`v[0] = f_0\,\theta` with ``v_init_fraction`` :math:`f_0`
  (0.5 for QCFS-trained networks, Bu et al. 2022).
* :class:`LIF` -- the same with a leak: :math:`v[t] = \beta v[t-1] + I[t]`,
  :math:`\beta = \exp(-\Delta t/\tau)` (:func:`decay_factor`, exact for a current held constant
  over the step and entering as charge per step). ``tau_ms`` is stored, never :math:`\beta`.
* :class:`Output` -- the readout: it accumulates the current it receives,
  :math:`o[t] = \sum_{t' \le t} y[t']`, and never spikes. The prediction at step :math:`t` is
  :math:`\arg\max o[t]`.

The graph must be a chain from its one :class:`Input` to its one :class:`Output`. Nothing has a
default: ``dt_ms``, thresholds, reset modes, initial membrane fractions and the input encoding
are given explicitly.

Thresholds are a scalar (a 0-d tensor), one value per channel (shape ``(C,)`` for a
``(C, H, W)`` or ``(C,)`` layer) or one value per neuron (the layer's shape).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import torch

from ann.serialization import atomic_torch_save

__all__ = [
    "ENCODINGS",
    "RESET_MODES",
    "GRAPH_FORMAT",
    "GRAPH_FORMAT_VERSION",
    "Input",
    "Affine",
    "Conv2d",
    "AvgPool2d",
    "MaxPool2d",
    "Flatten",
    "IF",
    "LIF",
    "Output",
    "Node",
    "NODE_TYPES",
    "SpikingGraph",
    "GraphError",
    "decay_factor",
    "save_graph",
    "load_graph",
    "graph_macs",
    "fan_out",
]

ENCODINGS = ("current", "poisson")
RESET_MODES = ("subtract", "zero")
GRAPH_FORMAT = "spikebridge-snn-graph"
GRAPH_FORMAT_VERSION = 1


class GraphError(ValueError):
    """A graph or node is malformed: wrong shapes, missing nodes, bad parameters."""


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def decay_factor(tau_ms: float, dt_ms: float) -> float:
    r"""Membrane decay per step :math:`\beta = \exp(-\Delta t / \tau)`.

    The one place where a time constant becomes a decay factor (exact integration of
    :math:`\tau\,\dot v = -v` over one step).

    Parameters
    ----------
    tau_ms : membrane time constant in ms (> 0; ``math.inf`` gives 1, an IF neuron).
    dt_ms : time step in ms (> 0).
    """
    tau_ms, dt_ms = float(tau_ms), float(dt_ms)
    if not tau_ms > 0:
        raise GraphError(f"tau_ms must be > 0, got {tau_ms}")
    if not (math.isfinite(dt_ms) and dt_ms > 0):
        raise GraphError(f"dt_ms must be positive and finite, got {dt_ms}")
    return math.exp(-dt_ms / tau_ms)


def _tensor(name: str, value: Any, ndim: int | Sequence[int] | None = None) -> torch.Tensor:
    """A detached float32 CPU copy of ``value``; raise unless finite (and of ``ndim`` dims)."""
    try:
        tensor = torch.as_tensor(value, dtype=torch.float32).detach().clone().cpu()
    except (TypeError, ValueError, RuntimeError) as error:
        raise GraphError(f"{name} must be a numeric array, got {type(value).__name__}") from error
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if tensor.ndim not in allowed:
            raise GraphError(
                f"{name} must have {ndim} dimension(s), got shape {tuple(tensor.shape)}"
            )
    if not torch.isfinite(tensor).all():
        raise GraphError(f"{name} must be finite")
    return tensor


def _pair(name: str, value: Any, minimum: int) -> tuple[int, int]:
    """``(a, b)`` from an int or a pair of ints, each >= ``minimum``."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    try:
        pair = tuple(value)
    except TypeError as error:
        raise GraphError(f"{name} must be an int or a pair of ints, got {value!r}") from error
    if len(pair) != 2 or any(isinstance(v, bool) or int(v) != v for v in pair):
        raise GraphError(f"{name} must be an int or a pair of ints, got {value!r}")
    pair = (int(pair[0]), int(pair[1]))
    if min(pair) < minimum:
        raise GraphError(f"{name} must be >= {minimum}, got {pair}")
    return pair


def _set(node: Any, name: str, value: Any) -> None:
    object.__setattr__(node, name, value)


def _pool_shape(kind: str, shape: tuple[int, ...], kernel, stride, padding) -> tuple[int, ...]:
    if len(shape) != 3:
        raise GraphError(f"{kind} needs a (C, H, W) input, got shape {shape}")
    c, h, w = shape
    out_h = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    out_w = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    if out_h < 1 or out_w < 1:
        raise GraphError(
            f"{kind} with kernel {kernel}, stride {stride}, padding {padding} does not fit an "
            f"input of shape {shape}"
        )
    return (c, out_h, out_w)


# --------------------------------------------------------------------------------------------
# nodes
# --------------------------------------------------------------------------------------------


class _NodeBase:
    """Shared behaviour: ``to_dict`` / ``from_dict`` and ``output_shape``."""

    type_name: ClassVar[str]

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:  # pragma: no cover
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """Plain values: tensors stay tensors, tuples become lists; a ``"type"`` key is added."""
        out: dict[str, Any] = {"type": self.type_name}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, eq=False)
class Input(_NodeBase):
    """Where images enter.

    Attributes
    ----------
    shape : shape of one input without the batch dimension, e.g. ``(1, 8, 8)``.
    encoding : ``"current"`` (the intensity as a constant current every step) or ``"poisson"``
        (a Bernoulli spike with probability equal to the intensity every step; at most one spike
        per step, so a rate of at most ``1/dt_ms``).
    """

    type_name: ClassVar[str] = "Input"
    shape: tuple[int, ...]
    encoding: str

    def __post_init__(self) -> None:
        try:
            shape = tuple(int(s) for s in self.shape)
        except (TypeError, ValueError) as error:
            raise GraphError(
                f"Input shape must be a sequence of ints, got {self.shape!r}"
            ) from error
        if not shape or min(shape) < 1:
            raise GraphError(f"Input shape must be non-empty and positive, got {self.shape!r}")
        _set(self, "shape", shape)
        if self.encoding not in ENCODINGS:
            raise GraphError(f"Input encoding must be one of {ENCODINGS}, got {self.encoding!r}")

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return self.shape


@dataclass(frozen=True, eq=False)
class Affine(_NodeBase):
    r"""Dense synapses :math:`y = W x + b`.

    Attributes
    ----------
    weight : ``(out_features, in_features)``, dimensionless (threshold units per input spike).
    bias : ``(out_features,)``, injected every step.
    """

    type_name: ClassVar[str] = "Affine"
    weight: torch.Tensor
    bias: torch.Tensor

    def __post_init__(self) -> None:
        weight = _tensor("Affine weight", self.weight, 2)
        bias = _tensor("Affine bias", self.bias, 1)
        if bias.shape[0] != weight.shape[0]:
            raise GraphError(
                f"Affine bias has {bias.shape[0]} entries but weight has {weight.shape[0]} rows"
            )
        _set(self, "weight", weight)
        _set(self, "bias", bias)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        expected = (self.weight.shape[1],)
        if input_shape != expected:
            hint = " (insert a Flatten node before it)" if len(input_shape) > 1 else ""
            raise GraphError(
                f"Affine with weight {tuple(self.weight.shape)} needs input shape {expected}, "
                f"got {input_shape}{hint}"
            )
        return (self.weight.shape[0],)


@dataclass(frozen=True, eq=False)
class Conv2d(_NodeBase):
    """2-D convolution (cross-correlation, as :func:`torch.nn.functional.conv2d`), zero padding.

    Attributes
    ----------
    weight : ``(C_out, C_in, kH, kW)``.
    bias : ``(C_out,)``, injected every step.
    stride : ``(sH, sW)`` (an int is accepted).
    padding : ``(pH, pW)`` zeros on each side (an int is accepted).
    """

    type_name: ClassVar[str] = "Conv2d"
    weight: torch.Tensor
    bias: torch.Tensor
    stride: tuple[int, int]
    padding: tuple[int, int]

    def __post_init__(self) -> None:
        weight = _tensor("Conv2d weight", self.weight, 4)
        bias = _tensor("Conv2d bias", self.bias, 1)
        if bias.shape[0] != weight.shape[0]:
            raise GraphError(
                f"Conv2d bias has {bias.shape[0]} entries but weight has {weight.shape[0]} "
                "output channels"
            )
        _set(self, "weight", weight)
        _set(self, "bias", bias)
        _set(self, "stride", _pair("Conv2d stride", self.stride, 1))
        _set(self, "padding", _pair("Conv2d padding", self.padding, 0))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        c_out, c_in, kh, kw = self.weight.shape
        if len(input_shape) != 3 or input_shape[0] != c_in:
            raise GraphError(
                f"Conv2d with weight {tuple(self.weight.shape)} needs a ({c_in}, H, W) input, "
                f"got {input_shape}"
            )
        _, h, w = _pool_shape("Conv2d", input_shape, (kh, kw), self.stride, self.padding)
        return (c_out, h, w)


@dataclass(frozen=True, eq=False)
class AvgPool2d(_NodeBase):
    """Average pooling, a linear operation; padded zeros count in the average.

    Attributes
    ----------
    kernel_size, stride, padding : pairs of ints (an int is accepted).
    """

    type_name: ClassVar[str] = "AvgPool2d"
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    def __post_init__(self) -> None:
        _set(self, "kernel_size", _pair("AvgPool2d kernel_size", self.kernel_size, 1))
        _set(self, "stride", _pair("AvgPool2d stride", self.stride, 1))
        _set(self, "padding", _pair("AvgPool2d padding", self.padding, 0))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return _pool_shape("AvgPool2d", input_shape, self.kernel_size, self.stride, self.padding)


@dataclass(frozen=True, eq=False)
class MaxPool2d(_NodeBase):
    r"""Spiking max-pool gated by running spike counts: output
    :math:`\max_i c_i[t] - \max_i c_i[t-1]` (see the module docstring).

    Attributes
    ----------
    kernel_size, stride, padding : pairs of ints (an int is accepted); padding never wins.
    """

    type_name: ClassVar[str] = "MaxPool2d"
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    def __post_init__(self) -> None:
        _set(self, "kernel_size", _pair("MaxPool2d kernel_size", self.kernel_size, 1))
        _set(self, "stride", _pair("MaxPool2d stride", self.stride, 1))
        _set(self, "padding", _pair("MaxPool2d padding", self.padding, 0))
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise GraphError(
                f"MaxPool2d padding {self.padding} must be at most half the kernel "
                f"{self.kernel_size}"
            )

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return _pool_shape("MaxPool2d", input_shape, self.kernel_size, self.stride, self.padding)


@dataclass(frozen=True, eq=False)
class Flatten(_NodeBase):
    """Reshape the whole per-sample signal to one dimension, ``(C, H, W) -> (C*H*W,)``."""

    type_name: ClassVar[str] = "Flatten"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(input_shape),)


def _check_neuron(kind: str, threshold: Any, reset: str, v_init_fraction: Any) -> tuple:
    threshold = _tensor(f"{kind} threshold", threshold)
    if not (threshold > 0).all():
        raise GraphError(f"{kind} thresholds must be > 0")
    if reset not in RESET_MODES:
        raise GraphError(f"{kind} reset must be one of {RESET_MODES}, got {reset!r}")
    if isinstance(v_init_fraction, bool):
        raise GraphError(f"{kind} v_init_fraction must be a number, got {v_init_fraction!r}")
    fraction = float(v_init_fraction)
    if not 0.0 <= fraction < 1.0:
        raise GraphError(f"{kind} v_init_fraction must be in [0, 1), got {v_init_fraction!r}")
    return threshold, fraction


def _check_threshold_shape(kind: str, threshold: torch.Tensor, shape: tuple[int, ...]) -> None:
    t_shape = tuple(threshold.shape)
    if t_shape in ((), shape, (shape[0],)):
        return
    raise GraphError(
        f"{kind} threshold of shape {t_shape} does not fit a layer of shape {shape}: use a "
        f"scalar, one value per channel {(shape[0],)} or one per neuron {shape}"
    )


@dataclass(frozen=True, eq=False)
class IF(_NodeBase):
    r"""Integrate-and-fire neurons, :math:`v[t] = v[t-1] + I[t]`, fire when :math:`v > \theta`.

    Attributes
    ----------
    threshold : :math:`\theta` in the units of the input current, > 0: a 0-d tensor, ``(C,)``
        per channel or the layer's shape per neuron.
    reset : ``"subtract"`` (:math:`v \leftarrow v - \theta`, keeps the residual; the choice for
        conversion, Rueckauer et al. 2017) or ``"zero"`` (:math:`v \leftarrow 0`).
    v_init_fraction : initial membrane :math:`v[0] = f_0 \theta`, :math:`f_0 \in [0, 1)`.
    """

    type_name: ClassVar[str] = "IF"
    threshold: torch.Tensor
    reset: str
    v_init_fraction: float

    def __post_init__(self) -> None:
        threshold, fraction = _check_neuron("IF", self.threshold, self.reset, self.v_init_fraction)
        _set(self, "threshold", threshold)
        _set(self, "v_init_fraction", fraction)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        _check_threshold_shape("IF", self.threshold, input_shape)
        return input_shape


@dataclass(frozen=True, eq=False)
class LIF(_NodeBase):
    r"""Leaky integrate-and-fire neurons, :math:`v[t] = \beta v[t-1] + I[t]`,
    :math:`\beta = e^{-\Delta t/\tau}`.

    Attributes
    ----------
    tau_ms : membrane time constant :math:`\tau` in ms (> 0).
    threshold, reset, v_init_fraction : as for :class:`IF`.
    """

    type_name: ClassVar[str] = "LIF"
    tau_ms: float
    threshold: torch.Tensor
    reset: str
    v_init_fraction: float

    def __post_init__(self) -> None:
        tau = float(self.tau_ms)
        if not (math.isfinite(tau) and tau > 0):
            raise GraphError(f"LIF tau_ms must be positive and finite, got {self.tau_ms!r}")
        _set(self, "tau_ms", tau)
        threshold, fraction = _check_neuron("LIF", self.threshold, self.reset, self.v_init_fraction)
        _set(self, "threshold", threshold)
        _set(self, "v_init_fraction", fraction)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        _check_threshold_shape("LIF", self.threshold, input_shape)
        return input_shape


@dataclass(frozen=True, eq=False)
class Output(_NodeBase):
    """Readout: accumulates the current it receives over time; never spikes. Needs a 1-D
    input (one value per class)."""

    type_name: ClassVar[str] = "Output"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 1:
            raise GraphError(
                f"Output needs a 1-D input (one value per class), got shape {input_shape}"
            )
        return input_shape


Node = Input | Affine | Conv2d | AvgPool2d | MaxPool2d | Flatten | IF | LIF | Output
NODE_TYPES: dict[str, type] = {
    cls.type_name: cls
    for cls in (Input, Affine, Conv2d, AvgPool2d, MaxPool2d, Flatten, IF, LIF, Output)
}
NEURON_TYPES = (IF, LIF)
SYNAPSE_TYPES = (Affine, Conv2d)


def _node_from_dict(name: str, data: Mapping[str, Any]) -> Node:
    if not isinstance(data, Mapping) or "type" not in data:
        raise GraphError(f"node {name!r} must be a mapping with a 'type' key")
    data = dict(data)
    kind = data.pop("type")
    if kind not in NODE_TYPES:
        raise GraphError(f"node {name!r} has unknown type {kind!r}; known: {sorted(NODE_TYPES)}")
    cls = NODE_TYPES[kind]
    names = {f.name for f in fields(cls)}
    unknown, missing = sorted(set(data) - names), sorted(names - set(data))
    if unknown or missing:
        raise GraphError(
            f"node {name!r} ({kind}): unknown field(s) {unknown}, missing field(s) {missing}"
        )
    try:
        return cls(**data)
    except GraphError as error:
        raise GraphError(f"node {name!r}: {error}") from error


# --------------------------------------------------------------------------------------------
# the graph
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SpikingGraph:
    """A feed-forward spiking network: named nodes, edges and the time step.

    Parameters
    ----------
    nodes : ``{name: node}``; exactly one :class:`Input` and one :class:`Output`.
    edges : ``[(source, target), ...]`` forming one chain from the Input to the Output.
    dt_ms : duration of one time step in ms (> 0). Required: the IF dynamics are per step, but
        rates in Hz and LIF decay factors depend on it.

    Attributes
    ----------
    order : node names from the Input to the Output.
    shapes : ``{name: output shape}`` without the batch dimension, inferred at construction.

    Raises
    ------
    GraphError
        On a dangling edge, a branch, a cycle, a missing Input/Output, or a shape mismatch
        (the message names the node and both shapes).
    """

    nodes: dict[str, Node]
    edges: tuple[tuple[str, str], ...]
    dt_ms: float
    order: tuple[str, ...] = field(init=False, repr=False)
    shapes: dict[str, tuple[int, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.nodes, Mapping) or not self.nodes:
            raise GraphError("nodes must be a non-empty mapping {name: node}")
        nodes = dict(self.nodes)
        for name, node in nodes.items():
            if not isinstance(name, str) or not name:
                raise GraphError(f"node names must be non-empty strings, got {name!r}")
            if not isinstance(node, tuple(NODE_TYPES.values())):
                raise GraphError(
                    f"node {name!r} is a {type(node).__name__}, not one of {sorted(NODE_TYPES)}"
                )
        _set(self, "nodes", nodes)
        if isinstance(self.dt_ms, bool):
            raise GraphError(f"dt_ms must be a positive number, got {self.dt_ms!r}")
        try:
            dt = float(self.dt_ms)
        except (TypeError, ValueError) as error:
            raise GraphError(f"dt_ms must be a positive number, got {self.dt_ms!r}") from error
        if not (math.isfinite(dt) and dt > 0):
            raise GraphError(f"dt_ms must be positive and finite, got {self.dt_ms!r}")
        _set(self, "dt_ms", dt)
        edges = []
        for edge in self.edges:
            edge = tuple(edge)
            if len(edge) != 2:
                raise GraphError(f"an edge is a (source, target) pair, got {edge!r}")
            for end in edge:
                if end not in nodes:
                    raise GraphError(
                        f"edge {edge!r} names node {end!r}, which is not in the graph "
                        f"(nodes: {list(nodes)})"
                    )
            edges.append((str(edge[0]), str(edge[1])))
        _set(self, "edges", tuple(edges))
        order = self._chain()
        _set(self, "order", order)
        shapes: dict[str, tuple[int, ...]] = {}
        previous: tuple[int, ...] = ()
        for name in order:
            try:
                previous = nodes[name].output_shape(previous)
            except GraphError as error:
                before = f" (after {order[order.index(name) - 1]!r})" if name != order[0] else ""
                raise GraphError(f"node {name!r}{before}: {error}") from error
            shapes[name] = previous
        _set(self, "shapes", shapes)

    def _chain(self) -> tuple[str, ...]:
        inputs = [n for n, node in self.nodes.items() if isinstance(node, Input)]
        outputs = [n for n, node in self.nodes.items() if isinstance(node, Output)]
        if len(inputs) != 1 or len(outputs) != 1:
            raise GraphError(
                f"a graph needs exactly one Input and one Output node, got inputs {inputs} and "
                f"outputs {outputs}"
            )
        successor: dict[str, str] = {}
        predecessor: dict[str, str] = {}
        for source, target in self.edges:
            if source in successor:
                raise GraphError(
                    f"node {source!r} has two successors ({successor[source]!r}, {target!r}); "
                    "only chains are supported"
                )
            if target in predecessor:
                raise GraphError(
                    f"node {target!r} has two predecessors ({predecessor[target]!r}, "
                    f"{source!r}); only chains are supported"
                )
            successor[source] = target
            predecessor[target] = source
        order = [inputs[0]]
        while order[-1] in successor:
            order.append(successor[order[-1]])
            if len(order) > len(self.nodes):
                raise GraphError("the edges form a cycle")
        if order[-1] != outputs[0] or len(order) != len(self.nodes):
            unreached = [n for n in self.nodes if n not in order]
            raise GraphError(
                f"the edges must form one chain from Input {inputs[0]!r} to Output "
                f"{outputs[0]!r}; the chain from the Input ends at {order[-1]!r} and leaves "
                f"{unreached} unconnected"
            )
        return tuple(order)

    # ---------------------------------------------------------------------- access

    @property
    def input_name(self) -> str:
        return self.order[0]

    @property
    def output_name(self) -> str:
        return self.order[-1]

    @property
    def input(self) -> Input:
        """The :class:`Input` node."""
        return self.nodes[self.order[0]]  # type: ignore[return-value]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shapes[self.order[0]]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shapes[self.order[-1]]

    def items(self) -> Iterator[tuple[str, Node]]:
        """``(name, node)`` in chain order."""
        for name in self.order:
            yield name, self.nodes[name]

    def input_shape_of(self, name: str) -> tuple[int, ...]:
        """Shape of the signal entering node ``name`` (its predecessor's output)."""
        index = self.order.index(name)
        if index == 0:
            return self.shapes[name]
        return self.shapes[self.order[index - 1]]

    def neuron_layers(self) -> list[str]:
        """Names of the :class:`IF` and :class:`LIF` nodes, in order."""
        return [n for n, node in self.items() if isinstance(node, NEURON_TYPES)]

    def num_neurons(self) -> int:
        return sum(math.prod(self.shapes[n]) for n in self.neuron_layers())

    # ---------------------------------------------------------------------- (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        """Plain containers and tensors only (loadable with ``torch.load(weights_only=True)``).

        ``{"format", "version", "dt_ms", "nodes": {name: {"type", ...fields}}, "edges"}``;
        tensors are not copied.
        """
        return {
            "format": GRAPH_FORMAT,
            "version": GRAPH_FORMAT_VERSION,
            "dt_ms": self.dt_ms,
            "nodes": {name: node.to_dict() for name, node in self.nodes.items()},
            "edges": [list(edge) for edge in self.edges],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpikingGraph:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        GraphError
            On a wrong format or version, a missing ``dt_ms``, an unknown node type or field.
        """
        if not isinstance(data, Mapping):
            raise GraphError(f"a graph dict must be a mapping, got {type(data).__name__}")
        if data.get("format") != GRAPH_FORMAT:
            raise GraphError(f"not a spikebridge SNN graph (format {data.get('format')!r})")
        if data.get("version") != GRAPH_FORMAT_VERSION:
            raise GraphError(f"unsupported graph format version {data.get('version')!r}")
        for key in ("dt_ms", "nodes", "edges"):
            if key not in data:
                raise GraphError(f"graph dict lacks {key!r} (there is no default)")
        nodes = {name: _node_from_dict(name, node) for name, node in data["nodes"].items()}
        return cls(nodes=nodes, edges=tuple(tuple(e) for e in data["edges"]), dt_ms=data["dt_ms"])

    @classmethod
    def sequential(
        cls, layers: Sequence[tuple[str, Node]] | Sequence[Node], *, dt_ms: float
    ) -> SpikingGraph:
        """A chain of ``layers`` (``(name, node)`` pairs, or nodes named ``"<type>_<i>"``)."""
        named: list[tuple[str, Node]] = []
        for i, item in enumerate(layers):
            if isinstance(item, tuple):
                named.append(item)
            else:
                named.append((f"{item.type_name.lower()}_{i}", item))
        names = [n for n, _ in named]
        if len(set(names)) != len(names):
            raise GraphError(f"duplicate node names in {names}")
        edges = tuple(zip(names[:-1], names[1:], strict=True))
        return cls(nodes=dict(named), edges=edges, dt_ms=dt_ms)


def save_graph(graph: SpikingGraph, path: str | Path) -> None:
    """Write ``graph`` to one file with :func:`torch.save`, atomically.

    The file holds only plain containers and tensors (:meth:`SpikingGraph.to_dict`).
    """
    atomic_torch_save(graph.to_dict(), path)


def load_graph(path: str | Path) -> SpikingGraph:
    """Read a graph written by :func:`save_graph` (``torch.load(weights_only=True)``).

    Raises
    ------
    GraphError
        If the file cannot be read or is not a spikebridge graph.
    """
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or foreign files
        raise GraphError(
            f"cannot read graph file {path}: {type(error).__name__}: {error}"
        ) from error
    try:
        return SpikingGraph.from_dict(data)
    except GraphError as error:
        raise GraphError(f"{path}: {error}") from error


# --------------------------------------------------------------------------------------------
# operation counts
# --------------------------------------------------------------------------------------------


def fan_out(node: Affine | Conv2d, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Number of synapses leaving each input element of a synaptic node (shape ``input_shape``).

    For :class:`Affine` every input reaches ``out_features`` targets; for :class:`Conv2d` the
    count depends on the position (borders reach fewer outputs with padding or stride).
    """
    if isinstance(node, Affine):
        return torch.full(input_shape, float(node.weight.shape[0]))
    c_out, c_in, kh, kw = node.weight.shape
    out_shape = node.output_shape(input_shape)
    ones = torch.ones((1, c_out, *out_shape[1:]))
    counts = torch.nn.functional.conv_transpose2d(
        ones,
        torch.ones((c_out, c_in, kh, kw)),
        stride=node.stride,
        padding=node.padding,
        output_padding=(
            (input_shape[1] + 2 * node.padding[0] - kh) % node.stride[0],
            (input_shape[2] + 2 * node.padding[1] - kw) % node.stride[1],
        ),
    )
    return counts[0]


def graph_macs(graph: SpikingGraph) -> dict[str, int]:
    """Multiply-accumulates of one dense (ANN) pass of each synaptic node.

    ``out_features * in_features`` for :class:`Affine`, ``out_elements * C_in * kH * kW`` for
    :class:`Conv2d`: the count of :func:`ann.models.macs_per_layer` for the ANN the graph was
    converted from (batch-norm folding does not change it).
    """
    counts = {}
    for name, node in graph.items():
        if isinstance(node, Affine):
            counts[name] = int(node.weight.numel())
        elif isinstance(node, Conv2d):
            c_out, c_in, kh, kw = node.weight.shape
            counts[name] = int(math.prod(graph.shapes[name]) * c_in * kh * kw)
    return counts
