r"""Run a :class:`~bridge.graph.SpikingGraph` with snnTorch neurons, batched, on CPU or CUDA.

The runner reads only the graph; the time loop is written once, over layers (a handful of
tensor operations per layer and step), never over neurons.

Neurons
-------
Each :class:`~bridge.graph.IF` node follows snnTorch's
``snn.Leaky(beta=1.0, threshold=theta, reset_mechanism=reset, init_hidden=False)``, its
membrane passed in and out explicitly, never kept as hidden state. snnTorch (default
``reset_delay=True``) applies the reset of a spike emitted at step :math:`t-1` at the start of
step :math:`t`:

.. math::

    U[t] = U[t-1] + I[t] - \Theta(U[t-1] - \theta)\,\theta, \qquad
    s[t] = \Theta(U[t] - \theta)

(``reset="subtract"``; ``"zero"`` likewise, :math:`U[t] = (1 - \Theta(U[t-1] - \theta))
U[t-1] + I[t]`). With :math:`\beta = 1` these are exactly the spike trains of the graph's
integrate-threshold-reset order (:mod:`bridge.graph`); only the stored membrane :math:`U` is the
value before the pending reset. For speed the runner evaluates these two lines itself, as three
or four in-place tensor operations instead of the dozen of ``snn.Leaky.forward`` (which also
clamps :math:`\beta`, multiplies by it and by the graded-spike factor, and recomputes the
reset through the surrogate function); it performs snnTorch's arithmetic in snnTorch's order
(:math:`(U + I) - \theta` where snnTorch computes :math:`(1 \cdot U + I) - 1 \cdot \theta`),
so spikes and membranes are bit-for-bit those of ``snn.Leaky`` (checked in
``tests/test_conversion.py``).

Per-channel and per-neuron thresholds are tensors shaped to broadcast over the layer
(``(C, 1, 1)`` for a ``(C, H, W)`` layer), which ``snn.Leaky`` supports (it compares
``mem - threshold`` and subtracts ``reset * threshold`` elementwise), so no layer is rescaled.

snnTorch appends every neuron it creates to a class-level registry
(``snn.SpikingNeuron.instances``) that only its hidden-state helpers use; the runner removes its
own neurons from it so that they are freed with the network.

Synaptic operations
-------------------
For every :class:`~bridge.graph.Affine` / :class:`~bridge.graph.Conv2d` node, each input event
costs one accumulate per outgoing synapse (:func:`bridge.graph.fan_out`). A spike that reaches the
node through an average pool counts once per pooled unit it enters (the pool is folded into the
synapses). A node whose input is not spikes (the first layer under ``encoding="current"``, or a
synaptic node fed by another one) does multiply-accumulates instead: every non-zero input element
times its fan-out, every step; those are reported apart as ``analog_macs_per_step``.

Speed
-----
:func:`run` avoids work that cannot change the result: under ``encoding="current"`` the input
is the same every step, so the layers before the first stateful node (the first synaptic
layer, and any pooling or flattening before the first neurons) are evaluated once per batch and
their current reused (their multiply-accumulates are still counted every step); pooling
without padding combines strided views (average: added in :func:`F.avg_pool2d`'s order, then
the same division; max: an elementwise maximum, without the indices :func:`F.max_pool2d`
computes), bit-identical to those functions; comparisons write float spikes directly; the
per-step spike and operation totals stay on the device and are gathered once per batch.
Everything runs under :func:`torch.inference_mode`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import snntorch as snn
import torch
import torch.nn.functional as F

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
    decay_factor,
    fan_out,
    graph_macs,
)

__all__ = ["SNNState", "SNNTorchNetwork", "SNNRunResult", "run"]


@dataclass(frozen=True)
class SNNState:
    """The complete state of a network between two steps, as a value.

    Attributes
    ----------
    tensors : ``{node name: tensor}`` with a leading batch dimension: the membrane potential of
        every IF/LIF node (snnTorch's, before the pending reset), the running spike count of
        every MaxPool2d node and the accumulated readout of the Output node.
    step : number of steps taken.
    """

    tensors: Mapping[str, torch.Tensor]
    step: int

    def to(self, device: str | torch.device) -> SNNState:
        """A copy on ``device``."""
        return SNNState({k: v.to(device) for k, v in self.tensors.items()}, self.step)

    def clone(self) -> SNNState:
        return SNNState({k: v.clone() for k, v in self.tensors.items()}, self.step)


def _threshold_for(threshold: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Reshape a scalar / per-channel / per-neuron threshold to broadcast over ``(B, *shape)``."""
    if threshold.ndim == 0 or tuple(threshold.shape) == shape:
        return threshold.clone()
    return threshold.reshape((shape[0],) + (1,) * (len(shape) - 1)).clone()


class SNNTorchNetwork:
    """A graph compiled for snnTorch on one device.

    Parameters
    ----------
    graph : the network.
    device : ``"cpu"``, ``"cuda"``, ... where parameters and state live.

    Examples
    --------
    >>> net = SNNTorchNetwork(graph)                       # doctest: +SKIP
    >>> state = net.initial_state(batch_size=len(images))  # doctest: +SKIP
    >>> for t in range(T):                                 # doctest: +SKIP
    ...     out, state = net.step(state, net.encode(images))
    """

    def __init__(self, graph: SpikingGraph, device: str | torch.device = "cpu") -> None:
        self.graph = graph
        self.device = torch.device(device)
        self._ops: list[tuple[str, str, dict]] = []
        # Scale turning a synaptic node's input into event counts; None for analog input.
        event_scale: float | None = 1.0 if graph.input.encoding == "poisson" else None
        for name, node in graph.items():
            in_shape = graph.input_shape_of(name)
            shape = graph.shapes[name]
            if isinstance(node, Input):
                self._ops.append((name, "input", {}))
            elif isinstance(node, (Affine, Conv2d)):
                params = {
                    "weight": node.weight.to(self.device),
                    "bias": node.bias.to(self.device),
                    "fan_out": fan_out(node, in_shape).reshape(-1).to(self.device),
                    "event_scale": event_scale,
                }
                if isinstance(node, Conv2d):
                    params.update(stride=node.stride, padding=node.padding)
                    self._ops.append((name, "conv", params))
                else:
                    self._ops.append((name, "affine", params))
                event_scale = None
            elif isinstance(node, AvgPool2d):
                self._ops.append((name, "avgpool", {
                    "kernel_size": node.kernel_size, "stride": node.stride,
                    "padding": node.padding,
                }))
                if event_scale is not None:
                    event_scale *= math.prod(node.kernel_size)
            elif isinstance(node, MaxPool2d):
                self._ops.append((name, "maxpool", {
                    "kernel_size": node.kernel_size, "stride": node.stride,
                    "padding": node.padding, "in_shape": in_shape,
                }))
            elif isinstance(node, Flatten):
                self._ops.append((name, "flatten", {}))
            elif isinstance(node, IF):
                # snn.Leaky(beta=1, reset_mechanism=node.reset) evaluated in place (_if_step).
                threshold = _threshold_for(node.threshold, shape).to(self.device)
                v0 = (node.v_init_fraction * threshold).expand(shape)
                self._ops.append((name, "if", {
                    "v0": v0, "reset": node.reset, "threshold": threshold,
                    "scalar": float(threshold) if threshold.ndim == 0 else None,
                }))
                event_scale = 1.0
            elif isinstance(node, LIF):
                threshold = _threshold_for(node.threshold, shape)
                # snnTorch subtracts theta *after* the decay (U[t+1] = beta U[t] + I - S[t]
                # theta); the graph resets first and decays the residual. So for LIF the
                # neuron only integrates and fires, and the runner applies the reset.
                neuron = snn.Leaky(
                    beta=decay_factor(node.tau_ms, graph.dt_ms),
                    threshold=threshold,
                    reset_mechanism="none",
                    init_hidden=False,
                )
                _forget(neuron)
                neuron = neuron.to(self.device)
                v0 = (node.v_init_fraction * threshold).expand(shape).to(self.device)
                self._ops.append((name, "neuron", {
                    "module": neuron, "v0": v0, "own_reset": node.reset,
                    "threshold": threshold.to(self.device),
                }))
                event_scale = 1.0
            elif isinstance(node, Output):
                self._ops.append((name, "output", {}))
            else:  # pragma: no cover - SpikingGraph admits no other node type
                raise TypeError(f"unsupported node {type(node).__name__}")

    # ------------------------------------------------------------------ public API

    @property
    def neuron_layers(self) -> list[str]:
        return [name for name, kind, _ in self._ops if kind in ("if", "neuron")]

    @property
    def synaptic_layers(self) -> list[str]:
        return [name for name, kind, _ in self._ops if kind in ("affine", "conv")]

    @property
    def analog_input_layers(self) -> list[str]:
        """Synaptic layers whose input is not spikes (their operations are MACs)."""
        return [
            name for name, kind, p in self._ops
            if kind in ("affine", "conv") and p["event_scale"] is None
        ]

    def initial_state(self, batch_size: int) -> SNNState:
        """Membranes at :math:`f_0\\theta`, max-pool counts and the readout at zero."""
        tensors: dict[str, torch.Tensor] = {}
        for name, kind, params in self._ops:
            if kind in ("if", "neuron"):
                v0 = params["v0"]
                tensors[name] = v0.unsqueeze(0).expand(batch_size, *v0.shape).clone()
            elif kind == "maxpool":
                tensors[name] = torch.zeros((batch_size, *params["in_shape"]), device=self.device)
            elif kind == "output":
                shape = self.graph.shapes[name]
                tensors[name] = torch.zeros((batch_size, *shape), device=self.device)
        return SNNState(tensors, 0)

    def encode(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The Input node's signal for one step: the images (``"current"``) or Bernoulli spikes
        with probability equal to the intensity (``"poisson"``; ``generator`` must live on the
        network's device)."""
        images = images.to(self.device, torch.float32)
        if self.graph.input.encoding == "current":
            return images
        noise = torch.rand(images.shape, generator=generator, device=self.device)
        return torch.lt(noise, images, out=torch.empty_like(images))

    def step(self, state: SNNState, x_t: torch.Tensor) -> tuple[torch.Tensor, SNNState]:
        """Advance one time step.

        Parameters
        ----------
        state : the state after the previous step (:meth:`initial_state` at first).
        x_t : the Input node's signal at this step, ``(B, *input_shape)`` (see :meth:`encode`).

        Returns
        -------
        out_t : the Output node's accumulated readout :math:`o[t]`, ``(B, K)``.
        state : the new state (the given one is not modified).
        """
        out, new_state, _, _ = self._advance(state, x_t, record=False)
        return out, new_state

    def step_recorded(
        self, state: SNNState, x_t: torch.Tensor
    ) -> tuple[torch.Tensor, SNNState, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """:meth:`step`, also returning what :func:`run` records.

        Returns
        -------
        out_t, state : as :meth:`step`.
        spikes : ``{neuron layer: (B, *shape)}`` the spikes emitted at this step.
        operations : ``{synaptic layer: 0-d tensor}`` synaptic operations (or, for
            :attr:`analog_input_layers`, multiply-accumulates) at this step, summed over the
            batch.
        """
        out, new_state, spikes, ops = self._advance(state, x_t, record=True)
        return out, new_state, spikes, {k: v for k, (v, _) in ops.items()}

    # ------------------------------------------------------------------ internals

    def _constant_prefix(self) -> int:
        """Number of leading operations whose output is the same every step: under current
        encoding, those before the first stateful node (neurons, max-pool counts, readout)."""
        if self.graph.input.encoding != "current":
            return 0
        for i, (_, kind, _) in enumerate(self._ops):
            if kind in ("if", "neuron", "maxpool", "output"):
                return i
        return len(self._ops)  # pragma: no cover - a graph always ends in its Output

    def _advance(self, state: SNNState, x: torch.Tensor, record: bool, start: int = 0):
        """One step; with ``record`` also ``{neuron: spikes}`` and ``{synaptic: (ops, analog)}``.

        ``start`` > 0 skips the first ``start`` operations: ``x`` is then the output of operation
        ``start - 1`` (see :meth:`_constant_prefix`), and their operations are not recorded.
        """
        tensors = dict(state.tensors)
        spikes: dict[str, torch.Tensor] = {}
        ops: dict[str, tuple[torch.Tensor, bool]] = {}
        x = self._apply(self._ops[start:], x, tensors, spikes if record else None,
                        ops if record else None)
        return x, SNNState(tensors, state.step + 1), spikes, ops

    @staticmethod
    def _apply(operations, x: torch.Tensor, tensors: dict[str, torch.Tensor],
               spikes: dict | None, ops: dict | None) -> torch.Tensor:
        """Run ``operations`` on ``x``, replacing the state entries they advance in
        ``tensors``; record spikes and synaptic operations where the dicts are given."""
        for name, kind, p in operations:
            if kind == "input":
                continue
            if kind in ("affine", "conv"):
                if ops is not None:
                    flat = x.reshape(x.shape[0], -1)
                    if p["event_scale"] is None:
                        ops[name] = ((flat != 0).to(flat.dtype) @ p["fan_out"]).sum(), True
                    else:
                        ops[name] = (flat @ p["fan_out"]).sum() * p["event_scale"], False
                if kind == "affine":
                    x = F.linear(x, p["weight"], p["bias"])
                else:
                    x = F.conv2d(x, p["weight"], p["bias"], p["stride"], p["padding"])
            elif kind == "if":
                x, tensors[name] = _if_step(tensors[name], x, p["threshold"], p["scalar"],
                                            p["reset"])
                if spikes is not None:
                    spikes[name] = x
            elif kind == "neuron":
                x, v = p["module"](x, tensors[name])
                if p["own_reset"] == "subtract":
                    v = v - x * p["threshold"]
                elif p["own_reset"] == "zero":
                    v = v * (1.0 - x)
                tensors[name] = v
                if spikes is not None:
                    spikes[name] = x
            elif kind == "avgpool":
                x = _avg_pool(x, p["kernel_size"], p["stride"], p["padding"])
            elif kind == "maxpool":
                # The winner's spike passes exactly when the window's largest count grows.
                before = tensors[name]
                counts = before + x
                tensors[name] = counts
                pool = (p["kernel_size"], p["stride"], p["padding"])
                x = _max_pool(counts, *pool).sub_(_max_pool(before, *pool))
            elif kind == "flatten":
                x = x.reshape(x.shape[0], -1)
            elif kind == "output":
                x = tensors[name] + x
                tensors[name] = x
        return x


def _if_step(u: torch.Tensor, current: torch.Tensor, threshold: torch.Tensor,
             scalar: float | None, reset: str) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One step of ``snn.Leaky(beta=1.0, threshold, reset_mechanism=reset)``:
    :math:`r = \Theta(U - \theta)`, :math:`U' = (U + I) - r\theta` (subtract) or
    :math:`U' = (1 - r)U + I` (zero), :math:`s = \Theta(U' - \theta)`; returns ``(s, U')`` as
    float tensors, ``u`` unchanged. ``scalar`` is ``float(threshold)`` for a 0-d threshold.

    Comparisons write float 0/1 directly (``torch.gt(..., out=float)``): on CPU that is several
    times faster than a boolean mask converted to float. Every product below has a factor 0 or
    1, so it is exact and each line rounds once, as snnTorch's does.
    """
    theta = threshold if scalar is None else scalar
    if reset == "subtract":
        fired = torch.gt(u, theta, out=torch.empty_like(u))  # the pending reset
        v = u + current
        if scalar is not None:
            v.add_(fired, alpha=-scalar)
        else:
            v.addcmul_(fired, threshold, value=-1.0)
    else:
        kept = torch.le(u, theta, out=torch.empty_like(u))  # 1 - the pending reset
        v = torch.addcmul(current, kept, u)
    return torch.gt(v, theta, out=torch.empty_like(v)), v


def _pool_views(x: torch.Tensor, kernel_size, stride):
    """The strided views of ``x`` that a floor-mode, unpadded 2-d pool combines, row-major."""
    (kh, kw), (sh, sw) = kernel_size, stride
    h_out = (x.shape[-2] - kh) // sh + 1
    w_out = (x.shape[-1] - kw) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield x[..., i:i + sh * (h_out - 1) + 1:sh, j:j + sw * (w_out - 1) + 1:sw]


def _avg_pool(x: torch.Tensor, kernel_size, stride, padding) -> torch.Tensor:
    """:func:`F.avg_pool2d` (floor mode); without padding as a sum of strided views, added in
    the kernel's row-major order and divided by the window size as that function does (several
    times faster on CPU for the small windows of converted networks)."""
    if tuple(padding) != (0, 0):
        return F.avg_pool2d(x, kernel_size, stride, padding)
    views = _pool_views(x, kernel_size, stride)
    total = next(views).clone()
    for view in views:
        total.add_(view)
    return total.div_(kernel_size[0] * kernel_size[1])


def _max_pool(x: torch.Tensor, kernel_size, stride, padding) -> torch.Tensor:
    """:func:`F.max_pool2d` (floor mode); without padding as the elementwise maximum of strided
    views (on CPU several times faster than that function, which also computes indices)."""
    if tuple(padding) != (0, 0):
        return F.max_pool2d(x, kernel_size, stride, padding)
    views = _pool_views(x, kernel_size, stride)
    total = next(views).clone()
    for view in views:
        torch.maximum(total, view, out=total)
    return total


def _forget(neuron: torch.nn.Module) -> None:
    """Remove ``neuron`` from snnTorch's class-level registry (identity, not equality)."""
    registry = snn.SpikingNeuron.instances
    for i in range(len(registry) - 1, -1, -1):
        if registry[i] is neuron:
            del registry[i]


@dataclass(frozen=True)
class SNNRunResult:
    """What :func:`run` measured.

    Attributes
    ----------
    T : number of time steps; ``dt_ms`` : duration of a step in ms.
    predictions : int64 ``(T, N)``; row ``t`` is :math:`\\arg\\max o[t+1]`, the prediction after
        ``t + 1`` steps, so accuracy against ``T`` comes out of one run.
    output : ``(N, K)`` accumulated readout after ``T`` steps (divide by ``T`` to compare with
        the ANN's logits after normalisation).
    spikes_per_step : ``{neuron layer: (T,)}`` spikes of the layer at each step, summed over
        neurons and samples.
    neuron_rates : ``{neuron layer: layer shape}`` spikes per neuron per step, averaged over
        samples and steps (multiply by ``1000 / dt_ms`` for Hz).
    spike_counts : ``{neuron layer: (N, *layer shape)}`` spikes per sample and neuron, or
        ``None`` unless ``record_spikes``.
    synops_per_step : ``{synaptic layer: (T,)}`` spike-driven synaptic operations
        (accumulates), summed over samples.
    analog_macs_per_step : ``{synaptic layer: (T,)}`` multiply-accumulates on non-spike input.
    ann_macs : ``{synaptic layer: MACs}`` of one dense ANN pass (:func:`bridge.graph.graph_macs`).
    wall_time_s : seconds for the whole run (encoding, simulation, transfers).
    device : where it ran.
    """

    T: int
    dt_ms: float
    predictions: torch.Tensor
    output: torch.Tensor
    spikes_per_step: dict[str, torch.Tensor]
    neuron_rates: dict[str, torch.Tensor]
    spike_counts: dict[str, torch.Tensor] | None
    synops_per_step: dict[str, torch.Tensor]
    analog_macs_per_step: dict[str, torch.Tensor]
    ann_macs: dict[str, int]
    wall_time_s: float
    device: str

    @property
    def num_samples(self) -> int:
        return int(self.predictions.shape[1])

    def accuracy(self, labels: torch.Tensor) -> np.ndarray:
        """Accuracy after each number of steps ``1..T``, a float array ``(T,)``."""
        labels = torch.as_tensor(labels).reshape(1, -1).cpu()
        if labels.shape[1] != self.num_samples:
            raise ValueError(f"{labels.shape[1]} labels for {self.num_samples} samples")
        return (self.predictions == labels).double().mean(dim=1).numpy()

    def synops_per_sample(self) -> dict[str, float]:
        """Spike-driven synaptic operations per sample over the whole run, per layer."""
        return {k: float(v.sum()) / self.num_samples for k, v in self.synops_per_step.items()}

    def analog_macs_per_sample(self) -> dict[str, float]:
        """Multiply-accumulates on analog input per sample over the whole run, per layer."""
        return {
            k: float(v.sum()) / self.num_samples for k, v in self.analog_macs_per_step.items()
        }

    def spikes_per_sample(self) -> dict[str, float]:
        """Spikes per sample over the whole run, per neuron layer."""
        return {k: float(v.sum()) / self.num_samples for k, v in self.spikes_per_step.items()}


def run(
    graph: SpikingGraph,
    images: torch.Tensor,
    T: int,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    record_spikes: bool = True,
    seed: int = 0,
) -> SNNRunResult:
    """Simulate ``graph`` on ``images`` for ``T`` steps, batch by batch.

    Parameters
    ----------
    graph : the network.
    images : ``(N, *input_shape)`` float tensor; in :math:`[0, 1]` for Poisson encoding.
    T : number of time steps (>= 1).
    device : where to simulate.
    batch_size : samples simulated together.
    record_spikes : keep per-sample, per-neuron spike counts (memory ``N`` x neurons).
    seed : seed of the Poisson encoder (a generator on ``device``; unused for current input).

    Returns
    -------
    SNNRunResult
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    images = torch.as_tensor(images)
    if tuple(images.shape[1:]) != graph.input_shape or images.ndim < 2:
        raise ValueError(
            f"images must have shape (N, *{graph.input_shape}), got {tuple(images.shape)}"
        )
    if len(images) == 0:
        raise ValueError("images is empty")
    if graph.input.encoding == "poisson" and (images.min() < 0 or images.max() > 1):
        raise ValueError("Poisson encoding needs intensities in [0, 1]")
    device = torch.device(device)
    start = time.perf_counter()
    net = SNNTorchNetwork(graph, device)
    generator = None
    if graph.input.encoding == "poisson":
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    n = len(images)
    predictions = torch.empty((T, n), dtype=torch.int64)
    outputs = []
    spikes_per_step = {k: torch.zeros(T, dtype=torch.float64, device=device)
                       for k in net.neuron_layers}
    synops = {k: torch.zeros(T, dtype=torch.float64, device=device) for k in net.synaptic_layers}
    analog = {k: torch.zeros(T, dtype=torch.float64, device=device) for k in net.synaptic_layers}
    counts_all: dict[str, list[torch.Tensor]] = {k: [] for k in net.neuron_layers}
    totals = {k: torch.zeros(graph.shapes[k], dtype=torch.float64, device=device)
              for k in net.neuron_layers}
    prefix = net._constant_prefix()
    with torch.inference_mode():
        for lo in range(0, n, batch_size):
            batch = images[lo:lo + batch_size].to(device, torch.float32)
            b = len(batch)
            state = net.initial_state(b)
            counts = {k: torch.zeros((b, *graph.shapes[k]), device=device)
                      for k in net.neuron_layers}
            preds = torch.empty((T, b), dtype=torch.int64, device=device)
            step_spikes: dict[str, list[torch.Tensor]] = {k: [] for k in net.neuron_layers}
            step_ops: dict[str, list[torch.Tensor]] = {}
            constant_ops: dict[str, tuple[torch.Tensor, bool]] = {}
            x0 = None
            if prefix:  # the same current every step: computed once
                x0 = net._apply(net._ops[:prefix], net.encode(batch), {}, None, constant_ops)
            for t in range(T):
                x = x0 if x0 is not None else net.encode(batch, generator)
                out, state, spikes, ops = net._advance(state, x, True, start=prefix)
                preds[t] = out.argmax(dim=1)
                for k, s in spikes.items():
                    counts[k].add_(s)
                    step_spikes[k].append(s.sum())
                for k, (value, _) in ops.items():
                    step_ops.setdefault(k, []).append(value)
            for k, values in step_spikes.items():
                spikes_per_step[k] += torch.stack(values)
            for k, (value, is_analog) in constant_ops.items():
                (analog if is_analog else synops)[k] += value
            kinds = dict(ops.items())
            for k, values in step_ops.items():
                (analog if kinds[k][1] else synops)[k] += torch.stack(values)
            predictions[:, lo:lo + b] = preds.cpu()
            outputs.append(out.cpu())
            for k, c in counts.items():
                totals[k] += c.sum(dim=0)
                if record_spikes:
                    counts_all[k].append(c.cpu())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    has_analog = set(net.analog_input_layers)
    return SNNRunResult(
        T=T,
        dt_ms=graph.dt_ms,
        predictions=predictions,
        output=torch.cat(outputs),
        spikes_per_step={k: v.cpu() for k, v in spikes_per_step.items()},
        neuron_rates={k: (v / (n * T)).float().cpu() for k, v in totals.items()},
        spike_counts={k: torch.cat(v) for k, v in counts_all.items()} if record_spikes else None,
        synops_per_step={k: v.cpu() for k, v in synops.items() if k not in has_analog},
        analog_macs_per_step={k: analog[k].cpu() for k in has_analog},
        ann_macs=graph_macs(graph),
        wall_time_s=wall,
        device=str(device),
    )
