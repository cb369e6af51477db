r"""Diagnostics of an ANN-to-SNN conversion: where, when and why the SNN loses accuracy.

Each diagnostic is a function that returns numbers (a frozen dataclass) and a ``plot_*``
function that turns them into a :class:`matplotlib.figure.Figure` (object-oriented API, no
pyplot state). All of them read a :class:`~bridge.graph.SpikingGraph` whose neurons are
:class:`~bridge.graph.IF` with reset by subtraction, i.e. the graphs of :func:`bridge.convert`.

* :func:`accuracy_curve` -- accuracy after ``t = 1..T`` steps, from one run's per-step
  predictions (:attr:`~bridge.runners.SNNRunResult.predictions`).
* :func:`layer_agreement` -- per layer, how well the SNN's firing rates after ``t`` steps match
  the rates it should approach, the ANN's normalised activations
  :math:`\mathrm{clip}(a_l/\lambda_l, 0, 1)` (:func:`bridge.conversion.expected_rates`): Pearson
  correlation and RMS error over all samples and neurons, and the fraction of neurons saturated
  at one spike per step (activations above the percentile, which the SNN clips).
* :func:`percentile_sweep` -- convert with several percentiles (99, 99.9, 99.99, ``"max"``)
  and compare accuracy against ``T``.
* :func:`layer_attribution` -- which layer loses the accuracy (see below).
* :func:`operations_curve` -- synaptic operations per image against accuracy, next to the ANN's
  multiply-accumulates.

Attribution
-----------
Let the graph have IF layers :math:`1..L`. The *hybrid* network :math:`H_k` feeds the exact
rates of layer :math:`k` (the rate model, :func:`~bridge.conversion.expected_rates`) as a
constant current into the rest of the graph, so layers :math:`1..k` are replaced by their
:math:`T\to\infty` limit and layers :math:`k+1..L` still spike. :math:`H_0` is the SNN itself
and :math:`H_L` is the rate model, whose accuracy does not depend on :math:`T`. With
:math:`A_k(T)` the accuracy of :math:`H_k` after :math:`T` steps, the ANN-to-SNN loss splits
exactly into

.. math::

    A_\mathrm{ANN} - A_0(T) = \underbrace{(A_\mathrm{ANN} - A_L)}_{\text{ANN vs rate model}}
    + \sum_{k=1}^{L} \underbrace{(A_k(T) - A_{k-1}(T))}_{\text{layer } k},

where the first term is what the rate model itself loses against the ANN: for a ReLU network
the clipping of activations above :math:`\lambda_l` (zero for ``"max"`` on the calibration data),
for a QCFS network also its quantisation, which the SNN only reproduces at :math:`T = L`
(a QCFS network that relies on its quantisation shows a large term here and an accuracy that
falls again as :math:`T` grows), and the term of layer :math:`k` is the accuracy recovered when
layer :math:`k`'s spike trains are replaced by their exact rates, given that all earlier layers
already are. The order (from the
input side) is a choice: errors that a layer inherits from earlier layers are charged to the
earlier layers. Terms may be negative (errors of two layers can cancel).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from bridge.conversion import convert, expected_rates
from bridge.graph import IF, Input, SpikingGraph
from bridge.runners import SNNRunResult, SNNTorchNetwork, run

__all__ = [
    "DEFAULT_PERCENTILES",
    "REPORT_STEPS",
    "AccuracyCurve",
    "accuracy_curve",
    "rate_model_accuracy",
    "LayerAgreement",
    "layer_agreement",
    "SweepEntry",
    "PercentileSweep",
    "percentile_sweep",
    "LayerAttribution",
    "layer_attribution",
    "tail_graph",
    "OperationsCurve",
    "operations_curve",
    "plot_accuracy_vs_T",
    "plot_layer_agreement",
    "plot_percentile_sweep",
    "plot_layer_attribution",
    "plot_operations_vs_accuracy",
]

DEFAULT_PERCENTILES: tuple[float | str, ...] = (99.0, 99.9, 99.99, "max")
"""Percentiles of :func:`percentile_sweep` by default."""

REPORT_STEPS: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
"""Numbers of time steps at which accuracies are reported."""


def _steps_up_to(steps: Iterable[int], T: int) -> tuple[int, ...]:
    """The entries of ``steps`` in ``1..T``, sorted, without repeats."""
    return tuple(sorted({int(t) for t in steps if 1 <= int(t) <= T}))


def _check_images(graph: SpikingGraph, images: torch.Tensor, labels: Any = None) -> torch.Tensor:
    images = torch.as_tensor(images, dtype=torch.float32)
    if images.ndim < 2 or tuple(images.shape[1:]) != graph.input_shape:
        raise ValueError(
            f"images must have shape (N, *{graph.input_shape}), got {tuple(images.shape)}"
        )
    if labels is not None and len(torch.as_tensor(labels)) != len(images):
        raise ValueError(f"{len(torch.as_tensor(labels))} labels for {len(images)} images")
    return images


def _check_if_graph(graph: SpikingGraph) -> list[str]:
    """The IF layers of ``graph``; raise unless every neuron is IF with reset by subtraction."""
    layers = graph.neuron_layers()
    for name in layers:
        node = graph.nodes[name]
        if not (isinstance(node, IF) and node.reset == "subtract"):
            raise ValueError(
                f"diagnostics need IF neurons with reset by subtraction (converted graphs); "
                f"node {name!r} is {node.type_name} with reset {getattr(node, 'reset', None)!r}"
            )
    return layers


# --------------------------------------------------------------------------------------------
# accuracy against T
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AccuracyCurve:
    """Accuracy after each number of steps ``1..T``.

    Attributes
    ----------
    accuracy : float array ``(T,)``; entry ``t - 1`` is the accuracy after ``t`` steps.
    """

    accuracy: np.ndarray

    @property
    def T(self) -> int:
        return len(self.accuracy)

    @property
    def steps(self) -> np.ndarray:
        """``1..T``."""
        return np.arange(1, self.T + 1)

    def at(self, T: int) -> float:
        """Accuracy after ``T`` steps (``1 <= T <= self.T``)."""
        if not 1 <= T <= self.T:
            raise ValueError(f"T must be in 1..{self.T}, got {T}")
        return float(self.accuracy[T - 1])

    def table(self, steps: Iterable[int] = REPORT_STEPS) -> dict[int, float]:
        """``{T: accuracy}`` for the entries of ``steps`` that this curve reaches."""
        return {t: self.at(t) for t in _steps_up_to(steps, self.T)}


def accuracy_curve(result: SNNRunResult, labels: torch.Tensor) -> AccuracyCurve:
    """Accuracy after ``1..T`` steps from one run (:meth:`SNNRunResult.accuracy`)."""
    return AccuracyCurve(np.asarray(result.accuracy(labels), dtype=np.float64))


def rate_model_accuracy(graph: SpikingGraph, images: torch.Tensor, labels: torch.Tensor) -> float:
    r"""Accuracy of the rate model, the SNN's :math:`T \to \infty` limit (the ANN with every
    activation clipped at its scale :math:`\lambda_l`)."""
    images = _check_images(graph, images, labels)
    _check_if_graph(graph)
    readout = expected_rates(graph, images)[graph.output_name]
    labels = torch.as_tensor(labels).reshape(-1)
    return float((readout.argmax(dim=1) == labels).double().mean())


# --------------------------------------------------------------------------------------------
# per-layer agreement of rates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LayerAgreement:
    """SNN firing rates of one IF layer against the rates it should approach.

    Rates are in spikes per step; statistics run over all samples and neurons of the layer.

    Attributes
    ----------
    layer : the IF node.
    steps : the numbers of steps ``T`` at which the rates were compared.
    correlation : Pearson correlation per entry of ``steps`` (NaN if either side is constant).
    rmse : root-mean-square rate error per entry of ``steps``.
    mean_abs_error : mean absolute rate error per entry of ``steps``.
    snn_rate : mean SNN rate per entry of ``steps``.
    expected_rate : mean expected rate (:func:`~bridge.conversion.expected_rates`).
    saturated_fraction : fraction of expected rates at one spike per step (clipped activations).
    """

    layer: str
    steps: tuple[int, ...]
    correlation: np.ndarray
    rmse: np.ndarray
    mean_abs_error: np.ndarray
    snn_rate: np.ndarray
    expected_rate: float
    saturated_fraction: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly, keyed by ``T``."""
        return {
            "steps": list(self.steps),
            "correlation": {t: _float(v) for t, v in zip(self.steps, self.correlation,
                                                         strict=True)},
            "rmse": {t: float(v) for t, v in zip(self.steps, self.rmse, strict=True)},
            "mean_abs_error": {t: float(v) for t, v in zip(self.steps, self.mean_abs_error,
                                                           strict=True)},
            "snn_rate": {t: float(v) for t, v in zip(self.steps, self.snn_rate, strict=True)},
            "expected_rate": self.expected_rate,
            "saturated_fraction": self.saturated_fraction,
        }


def _float(value: float) -> float | None:
    """``None`` for NaN (JSON has no NaN)."""
    value = float(value)
    return None if np.isnan(value) else value


@dataclass
class _Moments:
    """Running sums for the correlation and errors of two paired samples, in float64."""

    n: float = 0.0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    syy: float = 0.0
    sxy: float = 0.0
    sabs: float = 0.0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x, y = x.double().reshape(-1), y.double().reshape(-1)
        self.n += x.numel()
        self.sx += float(x.sum())
        self.sy += float(y.sum())
        self.sxx += float(x @ x)
        self.syy += float(y @ y)
        self.sxy += float(x @ y)
        self.sabs += float((x - y).abs().sum())

    def correlation(self) -> float:
        vx = self.n * self.sxx - self.sx**2
        vy = self.n * self.syy - self.sy**2
        if vx <= 0 or vy <= 0:
            return float("nan")
        return float(np.clip((self.n * self.sxy - self.sx * self.sy) / np.sqrt(vx * vy), -1, 1))

    def rmse(self) -> float:
        return float(np.sqrt(max(self.sxx - 2 * self.sxy + self.syy, 0.0) / self.n))


def layer_agreement(
    graph: SpikingGraph,
    images: torch.Tensor,
    steps: Sequence[int] = REPORT_STEPS,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, LayerAgreement]:
    """Per IF layer, SNN rates after each ``T`` in ``steps`` against the expected rates.

    One simulation of ``max(steps)`` steps, batch by batch; the spike counts are read at every
    ``T`` in ``steps``, so the rates compared at ``T`` are those of a run of ``T`` steps.

    Parameters
    ----------
    graph : a graph of IF neurons with reset by subtraction.
    images : ``(N, *input_shape)``.
    steps : numbers of steps (>= 1) at which to compare.
    batch_size, device : as :func:`bridge.run`.
    seed : seed of the Poisson encoder (unused under current encoding).

    Returns
    -------
    dict
        ``{IF node: LayerAgreement}`` in graph order.
    """
    images = _check_images(graph, images)
    layers = _check_if_graph(graph)
    steps = _steps_up_to(steps, max(steps)) if steps else ()
    if not steps:
        raise ValueError("steps must hold at least one number >= 1")
    T = steps[-1]
    device = torch.device(device)
    net = SNNTorchNetwork(graph, device)
    moments = {(k, t): _Moments() for k in layers for t in steps}
    snn_sum = {(k, t): 0.0 for k in layers for t in steps}
    expected_sum = dict.fromkeys(layers, 0.0)
    saturated = dict.fromkeys(layers, 0.0)
    count = dict.fromkeys(layers, 0)
    generator = None
    if graph.input.encoding == "poisson":
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    with torch.inference_mode():
        for lo in range(0, len(images), batch_size):
            batch = images[lo:lo + batch_size]
            target = {k: v.to(device) for k, v in expected_rates(graph, batch).items()}
            for k in layers:
                expected_sum[k] += float(target[k].double().sum())
                saturated[k] += float((target[k] >= 1.0).double().sum())
                count[k] += target[k].numel()
            batch = batch.to(device)
            state = net.initial_state(len(batch))
            counts = {k: torch.zeros_like(target[k]) for k in layers}
            for t in range(1, T + 1):
                _, state, spikes, _ = net.step_recorded(state, net.encode(batch, generator))
                for k in layers:
                    counts[k] += spikes[k]
                if t in steps:
                    for k in layers:
                        rates = counts[k] / t
                        moments[(k, t)].add(rates, target[k])
                        snn_sum[(k, t)] += float(rates.double().sum())
    out = {}
    for k in layers:
        m = [moments[(k, t)] for t in steps]
        out[k] = LayerAgreement(
            layer=k,
            steps=steps,
            correlation=np.array([x.correlation() for x in m]),
            rmse=np.array([x.rmse() for x in m]),
            mean_abs_error=np.array([x.sabs / x.n for x in m]),
            snn_rate=np.array([snn_sum[(k, t)] / count[k] for t in steps]),
            expected_rate=expected_sum[k] / count[k],
            saturated_fraction=saturated[k] / count[k],
        )
    return out


# --------------------------------------------------------------------------------------------
# operations against accuracy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class OperationsCurve:
    """Cumulative operations per image and accuracy after ``1..T`` steps.

    Attributes
    ----------
    accuracy : ``(T,)`` accuracy after ``t`` steps.
    synops : ``(T,)`` spike-driven synaptic operations (accumulates) per image up to step ``t``.
    analog_macs : ``(T,)`` multiply-accumulates on non-spike input (the first layer under
        current encoding) per image up to step ``t``.
    ann_macs : multiply-accumulates of one ANN inference.
    """

    accuracy: np.ndarray
    synops: np.ndarray
    analog_macs: np.ndarray
    ann_macs: int

    @property
    def total(self) -> np.ndarray:
        """Synaptic operations plus analog MACs, per image, up to each step."""
        return self.synops + self.analog_macs

    def at(self, T: int) -> dict[str, float]:
        """Accuracy and operations per image after ``T`` steps, and the ratio to the ANN."""
        if not 1 <= T <= len(self.accuracy):
            raise ValueError(f"T must be in 1..{len(self.accuracy)}, got {T}")
        i = T - 1
        return {
            "accuracy": float(self.accuracy[i]),
            "synops_per_image": float(self.synops[i]),
            "analog_macs_per_image": float(self.analog_macs[i]),
            "ops_per_image": float(self.total[i]),
            "ops_over_ann_macs": float(self.total[i] / self.ann_macs) if self.ann_macs else None,
        }


def operations_curve(result: SNNRunResult, labels: torch.Tensor) -> OperationsCurve:
    """Accuracy and cumulative operations per image after each step of one run."""
    n = result.num_samples
    T = result.T

    def cumulative(per_step: Mapping[str, torch.Tensor]) -> np.ndarray:
        total = np.zeros(T)
        for values in per_step.values():
            total += values.double().numpy()
        return np.cumsum(total) / n

    return OperationsCurve(
        accuracy=np.asarray(result.accuracy(labels), dtype=np.float64),
        synops=cumulative(result.synops_per_step),
        analog_macs=cumulative(result.analog_macs_per_step),
        ann_macs=int(sum(result.ann_macs.values())),
    )


# --------------------------------------------------------------------------------------------
# percentile sweep
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SweepEntry:
    """One percentile of :func:`percentile_sweep`."""

    percentile: float | str
    curve: AccuracyCurve
    operations: OperationsCurve
    rate_model_accuracy: float
    scales: dict[str, float | list[float]]
    wall_time_s: float

    @property
    def label(self) -> str:
        return "max" if self.percentile == "max" else f"p{self.percentile:g}"


@dataclass(frozen=True, eq=False)
class PercentileSweep:
    """Accuracy against ``T`` for several normalisation percentiles."""

    entries: tuple[SweepEntry, ...]
    ann_accuracy: float | None = None

    def table(self, steps: Iterable[int] = REPORT_STEPS) -> dict[str, dict[int, float]]:
        """``{label: {T: accuracy}}``."""
        return {e.label: e.curve.table(steps) for e in self.entries}

    def best(self, T: int) -> SweepEntry:
        """The entry with the highest accuracy after ``T`` steps (the first on ties)."""
        return max(self.entries, key=lambda e: e.curve.at(T))

    def to_dict(self, steps: Iterable[int] = REPORT_STEPS) -> dict[str, Any]:
        steps = tuple(steps)
        return {
            e.label: {
                "percentile": e.percentile,
                "accuracy": e.curve.table(steps),
                "rate_model_accuracy": e.rate_model_accuracy,
                "synops_per_image": {t: e.operations.at(t)["synops_per_image"]
                                     for t in _steps_up_to(steps, e.curve.T)},
                "wall_time_s": e.wall_time_s,
            }
            for e in self.entries
        }


def percentile_sweep(
    model: nn.Module,
    calibration_images: torch.Tensor,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    percentiles: Sequence[float | str] = DEFAULT_PERCENTILES,
    T: int = 256,
    ann_accuracy: float | None = None,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    **convert_kwargs: Any,
) -> PercentileSweep:
    """Convert ``model`` once per percentile and run each SNN for ``T`` steps.

    Parameters
    ----------
    model, calibration_images : as :func:`bridge.convert`.
    images, labels : the evaluation data.
    percentiles : numbers in ``(0, 100]`` or ``"max"``.
    T : steps of each run; the accuracy after every ``t <= T`` comes out of the same run.
    ann_accuracy : the ANN's accuracy on ``images``, kept for the plot.
    batch_size, device : as :func:`bridge.run`.
    **convert_kwargs : other arguments of :func:`bridge.convert` (``channel_wise``...).
    """
    if not percentiles:
        raise ValueError("percentiles must not be empty")
    entries = []
    for percentile in percentiles:
        start = time.perf_counter()
        conversion = convert(model, calibration_images, percentile=percentile, **convert_kwargs)
        graph = conversion.graph
        result = run(graph, images, T, batch_size=batch_size, device=device, record_spikes=False)
        entries.append(SweepEntry(
            percentile=percentile,
            curve=accuracy_curve(result, labels),
            operations=operations_curve(result, labels),
            rate_model_accuracy=rate_model_accuracy(graph, images, labels),
            scales=conversion.report.scales(),
            wall_time_s=time.perf_counter() - start,
        ))
    return PercentileSweep(tuple(entries), ann_accuracy)


# --------------------------------------------------------------------------------------------
# attribution to layers
# --------------------------------------------------------------------------------------------


def tail_graph(graph: SpikingGraph, after: str) -> SpikingGraph:
    """The part of ``graph`` after node ``after``, fed by a current-encoded Input of its shape.

    Running it on the rates of ``after`` as a constant current replaces everything up to and
    including ``after`` by its rate model.
    """
    if after not in graph.nodes or after == graph.output_name:
        raise ValueError(f"{after!r} is not an inner node of the graph")
    order = list(graph.order)
    rest = [(name, graph.nodes[name]) for name in order[order.index(after) + 1:]]
    name = f"{after}_rates"
    while name in graph.nodes:
        name += "_"
    head = (name, Input(shape=graph.shapes[after], encoding="current"))
    return SpikingGraph.sequential([head, *rest], dt_ms=graph.dt_ms)


@dataclass(frozen=True, eq=False)
class LayerAttribution:
    """Accuracies of the hybrid networks :math:`H_0..H_L` (module docstring).

    Attributes
    ----------
    layers : the IF layers ``1..L`` in graph order.
    hybrid : ``(L + 1, T)``; row ``k`` is the accuracy after ``1..T`` steps with layers
        ``1..k`` replaced by their exact rates (row 0: the SNN; row ``L``: the rate model).
    ann_accuracy : the ANN's accuracy on the same images, if given.
    """

    layers: tuple[str, ...]
    hybrid: np.ndarray
    ann_accuracy: float | None = None

    @property
    def T(self) -> int:
        return self.hybrid.shape[1]

    @property
    def rate_model_accuracy(self) -> float:
        return float(self.hybrid[-1, -1])

    def losses(self, T: int) -> dict[str, float]:
        """The loss after ``T`` steps split into ``"ann_vs_rate_model"`` (if the ANN accuracy is
        known)
        and one term per layer, in accuracy (fractions; they sum to ANN - SNN)."""
        if not 1 <= T <= self.T:
            raise ValueError(f"T must be in 1..{self.T}, got {T}")
        column = self.hybrid[:, T - 1]
        out: dict[str, float] = {}
        if self.ann_accuracy is not None:
            out["ann_vs_rate_model"] = float(self.ann_accuracy - column[-1])
        for k, layer in enumerate(self.layers, start=1):
            out[layer] = float(column[k] - column[k - 1])
        return out

    def worst_layer(self, T: int) -> str:
        """The layer whose term is the largest after ``T`` steps."""
        losses = {k: v for k, v in self.losses(T).items() if k != "ann_vs_rate_model"}
        return max(losses, key=losses.__getitem__)

    def to_dict(self, steps: Iterable[int] = REPORT_STEPS) -> dict[str, Any]:
        steps = _steps_up_to(steps, self.T)
        return {
            "layers": list(self.layers),
            "ann_accuracy": self.ann_accuracy,
            "rate_model_accuracy": self.rate_model_accuracy,
            "hybrid_accuracy": {
                ("snn" if k == 0 else f"exact_up_to_{self.layers[k - 1]}"):
                    {t: float(self.hybrid[k, t - 1]) for t in steps}
                for k in range(len(self.layers) + 1)
            },
            "loss_by_source": {t: self.losses(t) for t in steps},
        }


def layer_attribution(
    graph: SpikingGraph,
    images: torch.Tensor,
    labels: torch.Tensor,
    T: int,
    *,
    snn_result: SNNRunResult | None = None,
    ann_accuracy: float | None = None,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> LayerAttribution:
    """Accuracy of the hybrids :math:`H_0..H_L` after ``1..T`` steps (module docstring).

    Parameters
    ----------
    graph : a graph of IF neurons with reset by subtraction.
    images, labels : evaluation data.
    T : number of steps.
    snn_result : a run of ``graph`` on these images for at least ``T`` steps, reused as
        :math:`H_0` instead of simulating it again.
    ann_accuracy : the ANN's accuracy on these images (adds the ANN-vs-rate-model term).
    batch_size, device, seed : as :func:`bridge.run`.
    """
    images = _check_images(graph, images, labels)
    layers = _check_if_graph(graph)
    labels = torch.as_tensor(labels).reshape(-1)
    rows = []
    if snn_result is not None and snn_result.T >= T and snn_result.num_samples == len(images):
        rows.append(np.asarray(snn_result.accuracy(labels))[:T])
    else:
        rows.append(np.asarray(run(graph, images, T, batch_size=batch_size, device=device,
                                   record_spikes=False, seed=seed).accuracy(labels)))
    rates = expected_rates(graph, images)
    for k, layer in enumerate(layers, start=1):
        if k == len(layers):
            readout = rates[graph.output_name]
            rows.append(np.full(T, float((readout.argmax(dim=1) == labels).double().mean())))
            break
        tail = tail_graph(graph, layer)
        result = run(tail, rates[layer], T, batch_size=batch_size, device=device,
                     record_spikes=False)
        rows.append(np.asarray(result.accuracy(labels)))
    return LayerAttribution(tuple(layers), np.vstack(rows), ann_accuracy)


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------


def _log2_steps(ax: Any, T: int) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xlim(1, max(T, 2))
    ax.set_xlabel("time steps T")
    ax.grid(True, which="both", alpha=0.3)


def _ann_line(ax: Any, ann_accuracy: float | None, label: str = "ANN") -> None:
    if ann_accuracy is not None:
        ax.axhline(100 * ann_accuracy, color="black", linestyle="--", linewidth=1,
                   label=f"{label} ({100 * ann_accuracy:.2f}%)")


def _accuracy_ylim(ax: Any, values: Iterable[float], ann_accuracy: float | None) -> None:
    """Zoom the accuracy axis on the interesting range (the top 40 points around the ANN)."""
    values = [v for v in values if np.isfinite(v)]
    top = max([*values, ann_accuracy or 0.0])
    ax.set_ylim(max(0.0, 100 * top - 40), min(100.0, 100 * top + 2))


def plot_accuracy_vs_T(
    curves: AccuracyCurve | Mapping[str, AccuracyCurve],
    ann_accuracy: float | None = None,
    *,
    marks: Iterable[int] = REPORT_STEPS,
    title: str | None = None,
) -> Figure:
    """Accuracy against the number of time steps (log scale), the ANN as a horizontal line.

    Parameters
    ----------
    curves : one curve, or ``{label: curve}``.
    ann_accuracy : drawn as a dashed line.
    marks : steps marked with a dot on each curve.
    """
    if isinstance(curves, AccuracyCurve):
        curves = {"SNN": curves}
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    T = max(c.T for c in curves.values())
    for label, curve in curves.items():
        (line,) = ax.plot(curve.steps, 100 * curve.accuracy, label=label)
        marked = _steps_up_to(marks, curve.T)
        ax.plot(marked, [100 * curve.at(t) for t in marked], "o", color=line.get_color(),
                markersize=4)
    _ann_line(ax, ann_accuracy)
    _log2_steps(ax, T)
    _accuracy_ylim(ax, [float(c.accuracy.max()) for c in curves.values()], ann_accuracy)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="lower right")
    ax.set_title(title or "SNN accuracy against the number of time steps")
    return fig


def plot_layer_agreement(
    agreement: Mapping[str, LayerAgreement], *, title: str | None = None
) -> Figure:
    """Per layer: correlation (left) and RMS error (right) of SNN rates against the ANN's
    normalised activations, against ``T``."""
    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    ax_corr, ax_err = fig.subplots(1, 2)
    T = 1
    for name, a in agreement.items():
        label = f"{name} (saturated {100 * a.saturated_fraction:.2g}%)"
        ax_corr.plot(a.steps, a.correlation, marker="o", markersize=4, label=label)
        ax_err.plot(a.steps, a.rmse, marker="o", markersize=4, label=name)
        T = max(T, max(a.steps))
    for ax in (ax_corr, ax_err):
        _log2_steps(ax, T)
    ax_corr.set_ylabel("Pearson correlation, SNN rate vs ANN")
    ax_corr.set_ylim(top=1.0)
    ax_err.set_ylabel("RMS rate error (spikes / step)")
    ax_err.set_yscale("log")
    ax_corr.legend(loc="lower right", fontsize="small")
    fig.suptitle(title or "Per-layer agreement of SNN firing rates with normalised ANN "
                 "activations")
    return fig


def plot_percentile_sweep(
    sweep: PercentileSweep, *, marks: Iterable[int] = REPORT_STEPS, title: str | None = None
) -> Figure:
    """Accuracy against ``T`` for each normalisation percentile (left) and the accuracy of each
    at the marked ``T`` (right)."""
    fig = Figure(figsize=(11.0, 4.0), layout="constrained")
    ax, ax_bar = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    T = max(e.curve.T for e in sweep.entries)
    for e in sweep.entries:
        ax.plot(e.curve.steps, 100 * e.curve.accuracy, label=e.label)
    _ann_line(ax, sweep.ann_accuracy)
    _log2_steps(ax, T)
    _accuracy_ylim(ax, [float(e.curve.accuracy.max()) for e in sweep.entries],
                   sweep.ann_accuracy)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="lower right", title="normalisation")
    marked = _steps_up_to(marks, T)
    width = 0.8 / max(len(sweep.entries), 1)
    x = np.arange(len(marked))
    for i, e in enumerate(sweep.entries):
        values = [100 * e.curve.at(t) if t <= e.curve.T else np.nan for t in marked]
        ax_bar.bar(x + (i - (len(sweep.entries) - 1) / 2) * width, values, width, label=e.label)
    ax_bar.set_xticks(x, [str(t) for t in marked])
    ax_bar.set_xlabel("time steps T")
    ax_bar.set_ylabel("test accuracy (%)")
    low = min((e.curve.at(t) for e in sweep.entries for t in marked if t <= e.curve.T),
              default=0.0)
    ax_bar.set_ylim(max(0.0, 100 * low - 5), 100)
    if sweep.ann_accuracy is not None:
        ax_bar.axhline(100 * sweep.ann_accuracy, color="black", linestyle="--", linewidth=1)
    ax_bar.grid(True, axis="y", alpha=0.3)
    fig.suptitle(title or "Normalisation percentile against accuracy")
    return fig


def plot_layer_attribution(
    attribution: LayerAttribution,
    *,
    marks: Iterable[int] = REPORT_STEPS,
    title: str | None = None,
) -> Figure:
    """Left: accuracy of the hybrids :math:`H_k` against ``T``. Right: the ANN-to-SNN loss at
    the marked ``T`` split into the rate model's own loss and one term per layer (points of
    accuracy)."""
    fig = Figure(figsize=(11.0, 4.0), layout="constrained")
    ax, ax_bar = fig.subplots(1, 2)
    steps = np.arange(1, attribution.T + 1)
    for k in range(len(attribution.layers) + 1):
        if k == 0:
            label = "SNN (all layers spiking)"
        elif k == len(attribution.layers):
            label = "rate model (all layers exact)"
        else:
            label = f"exact rates up to {attribution.layers[k - 1]}"
        ax.plot(steps, 100 * attribution.hybrid[k], label=label)
    _ann_line(ax, attribution.ann_accuracy)
    _log2_steps(ax, attribution.T)
    _accuracy_ylim(ax, [float(attribution.hybrid.max())], attribution.ann_accuracy)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="lower right", fontsize="small")
    marked = _steps_up_to(marks, attribution.T)
    sources = list(attribution.losses(marked[0]).keys()) if marked else []
    width = 0.8 / max(len(sources), 1)
    x = np.arange(len(marked))
    for i, source in enumerate(sources):
        values = [100 * attribution.losses(t)[source] for t in marked]
        ax_bar.bar(x + (i - (len(sources) - 1) / 2) * width, values, width, label=source)
    ax_bar.axhline(0, color="black", linewidth=0.8)
    ax_bar.set_xticks(x, [str(t) for t in marked])
    ax_bar.set_xlabel("time steps T")
    ax_bar.set_ylabel("accuracy lost (points)")
    ax_bar.grid(True, axis="y", alpha=0.3)
    if sources:
        ax_bar.legend(fontsize="small")
    fig.suptitle(title or "Which layer loses the accuracy")
    return fig


def plot_operations_vs_accuracy(
    curves: OperationsCurve | Mapping[str, OperationsCurve],
    ann_accuracy: float | None = None,
    *,
    marks: Iterable[int] = REPORT_STEPS,
    title: str | None = None,
) -> Figure:
    """Accuracy against cumulative operations per image (synaptic operations plus the MACs of
    layers with analog input), with the ANN as a point at its MACs; marked dots are labelled
    with their ``T``."""
    if isinstance(curves, OperationsCurve):
        curves = {"SNN": curves}
    fig = Figure(figsize=(6.6, 4.4), layout="constrained")
    ax = fig.subplots()
    ann_macs = 0
    for label, c in curves.items():
        (line,) = ax.plot(c.total, 100 * c.accuracy, label=label)
        for t in _steps_up_to(marks, len(c.accuracy)):
            ax.plot(c.total[t - 1], 100 * c.accuracy[t - 1], "o", color=line.get_color(),
                    markersize=4)
            ax.annotate(f"T={t}", (c.total[t - 1], 100 * c.accuracy[t - 1]),
                        textcoords="offset points", xytext=(3, -10), fontsize="x-small")
        ann_macs = max(ann_macs, c.ann_macs)
    if ann_macs:
        ax.axvline(ann_macs, color="grey", linestyle=":", linewidth=1,
                   label=f"ANN: {ann_macs:,} MACs / image")
        if ann_accuracy is not None:
            ax.plot([ann_macs], [100 * ann_accuracy], "*", color="black", markersize=10,
                    label=f"ANN ({100 * ann_accuracy:.2f}%)")
    ax.set_xscale("log")
    ax.set_xlabel("operations per image (synaptic ops + analog MACs)")
    ax.set_ylabel("test accuracy (%)")
    _accuracy_ylim(ax, [float(c.accuracy.max()) for c in curves.values()], ann_accuracy)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(title or "Synaptic operations against accuracy")
    return fig

