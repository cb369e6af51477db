"""Figures of the Diehl & Cook network: receptive fields, a presentation's raster, the learning
curve. Object-oriented matplotlib only (as :mod:`neuro.plots`): each function draws into the
``ax`` it is given or a fresh :class:`~matplotlib.figure.Figure` and returns the figure; write it
with :func:`neuro.plots.save_figure`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from neuro.plots import raster
from neuro.records import SpikeRecord

__all__ = ["receptive_fields", "presentation_raster", "accuracy_curve"]


def receptive_fields(
    weights: torch.Tensor | np.ndarray,
    image_shape: tuple[int, int],
    *,
    max_neurons: int | None = None,
    columns: int | None = None,
    fig: Figure | None = None,
    cmap: str = "hot_r",
    title: str | None = None,
) -> Figure:
    """The input weights of each excitatory neuron as an image, tiled in a grid (the paper's
    Fig. 2B).

    Parameters
    ----------
    weights : ``(n_input, n_exc)`` with ``n_input = prod(image_shape)``.
    image_shape : ``(height, width)`` of one input image.
    max_neurons : draw only the first ones (``None``: all).
    columns : tiles per row (``None``: about square).
    fig : draw into this figure (``None``: a new one).
    cmap : colour map; all tiles share one colour scale from 0 to the largest weight.
    """
    w = weights.detach().cpu().numpy() if isinstance(weights, torch.Tensor) else np.asarray(weights)
    height, width = image_shape
    if w.ndim != 2 or w.shape[0] != height * width:
        raise ValueError(
            f"weights must be (n_input, n_exc) with n_input = {height}*{width}, got {w.shape}"
        )
    n = w.shape[1] if max_neurons is None else min(max_neurons, w.shape[1])
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * height, cols * width), np.nan)
    for j in range(n):
        r, c = divmod(j, cols)
        tile = w[:, j].reshape(height, width)
        grid[r * height:(r + 1) * height, c * width:(c + 1) * width] = tile
    if fig is None:
        size = min(8.0, 1.0 + 0.35 * cols * max(1.0, width / 8))
        fig = Figure(figsize=(size, size * rows / cols), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap=cmap, vmin=0.0, vmax=float(np.nanmax(w[:, :n])) or 1.0,
                      interpolation="nearest")
    for r in range(1, rows):
        ax.axhline(r * height - 0.5, color="0.7", linewidth=0.3)
    for c in range(1, cols):
        ax.axvline(c * width - 0.5, color="0.7", linewidth=0.3)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label="Weight")
    return fig


def presentation_raster(
    exc: SpikeRecord,
    inh: SpikeRecord | None = None,
    *,
    trial: int = 0,
    ax: Axes | None = None,
    title: str | None = None,
    marker_size: float = 8.0,
) -> Figure:
    """Spikes of one presentation (:func:`~neuro.diehl_cook.torch_network.present` with
    ``record=True``): excitatory neurons, and the inhibitory ones above them when given.
    ``title`` replaces the population name at the top left; spikes are few, so the markers
    are larger than :func:`neuro.plots.raster`'s default."""
    if inh is None:
        record = exc if title is None else dataclasses.replace(exc, population=title)
        return raster(record, trial=trial, ax=ax, marker_size=marker_size)
    n = exc.n_neurons
    merged = SpikeRecord(
        population=title or "excitatory and inhibitory", n_neurons=n + inh.n_neurons,
        batch_size=exc.batch_size, duration_ms=exc.duration_ms, dt_ms=exc.dt_ms,
        trial=np.concatenate([exc.trial, inh.trial]),
        neuron=np.concatenate([exc.neuron, inh.neuron + n]),
        time_ms=np.concatenate([exc.time_ms, inh.time_ms]),
    )
    return raster(merged, trial=trial, ax=ax, marker_size=marker_size,
                  groups={"exc": (0, n), "inh": (n, n + inh.n_neurons)})


def accuracy_curve(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    ax: Axes | None = None,
    chance: float | None = None,
    title: str | None = None,
) -> Figure:
    """Test accuracy against training examples seen, one line a run.

    ``curves`` maps a label to ``(samples_seen, accuracy)`` sequences (accuracy in [0, 1],
    drawn in %); ``chance`` draws a dashed line at that accuracy.
    """
    if ax is None:
        fig = Figure(figsize=(5.0, 3.2), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.get_figure(root=True)
    for label, (seen, acc) in curves.items():
        if len(seen) != len(acc):
            raise ValueError(f"curve {label!r}: {len(seen)} sample counts, {len(acc)} accuracies")
        ax.plot(np.asarray(seen), 100.0 * np.asarray(acc), marker="o", markersize=3, label=label)
    if chance is not None:
        ax.axhline(100.0 * chance, color="0.5", linestyle="--", linewidth=0.8, label="chance")
    ax.set_xlabel("Training examples")
    ax.set_ylabel("Test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    if curves or chance is not None:
        ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return fig
