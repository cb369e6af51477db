"""Figures of ANN training and evaluation.

Built with matplotlib's object-oriented API (:class:`matplotlib.figure.Figure`, no pyplot global
state), so they work with any backend, including Agg, and never open a window. Save them with
``fig.savefig(path)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_learning_curves", "plot_confusion_matrix"]


def plot_learning_curves(
    history: Mapping[str, Sequence[float]],
    best_epoch: int | None = None,
    title: str | None = None,
) -> Figure:
    """Loss and accuracy per epoch, train against validation.

    Parameters
    ----------
    history : ``TrainResult.history``: lists ``train_loss``, ``val_loss``, ``train_accuracy``,
        ``val_accuracy`` (any missing key is skipped).
    best_epoch : if given, the best epoch (from 0) is marked with a vertical line.
    title : optional figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: loss (left) and accuracy (right); epochs are numbered from 1.
    """
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    panels = ((ax_loss, "loss", "cross-entropy loss"), (ax_acc, "accuracy", "accuracy"))
    for ax, metric, ylabel in panels:
        for prefix, label, style in (("train", "train", "-"), ("val", "validation", "--")):
            values = history.get(f"{prefix}_{metric}")
            if values:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, marker="o", markersize=3, label=label)
        if best_epoch is not None and best_epoch >= 0:
            ax.axvline(best_epoch + 1, color="grey", linestyle=":", label="best epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def plot_confusion_matrix(
    confusion: np.ndarray,
    class_names: Sequence[str] | None = None,
    annotate_up_to: int = 12,
    title: str | None = None,
) -> Figure:
    """Confusion matrix normalised per row (true class), with counts written in small matrices.

    Parameters
    ----------
    confusion : ``(K, K)`` counts, rows are true classes, columns predicted classes.
    class_names : ``K`` tick labels; defaults to ``0 .. K-1``.
    annotate_up_to : the counts are written in the cells when ``K <= annotate_up_to``.
    title : optional axes title.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the matrix and its colour bar (fraction of the true class).
    """
    confusion = np.asarray(confusion)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion must be a square matrix, got shape {confusion.shape}")
    k = confusion.shape[0]
    if class_names is None:
        class_names = [str(i) for i in range(k)]
    if len(class_names) != k:
        raise ValueError(f"{len(class_names)} class names for a {k}x{k} confusion matrix")
    row_sums = confusion.sum(axis=1, keepdims=True)
    # A class absent from the split has an empty row; show it as zeros rather than NaN.
    fractions = np.divide(
        confusion, row_sums, out=np.zeros(confusion.shape, dtype=float), where=row_sums > 0
    )

    side = min(3.0 + 0.45 * k, 12.0)
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of true class")
    ax.set_xticks(np.arange(k), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(np.arange(k), labels=list(class_names))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(title)
    if k <= annotate_up_to:
        for i in range(k):
            for j in range(k):
                # Dark text on light cells, light text on dark cells.
                color = "white" if fractions[i, j] > 0.5 else "black"
                ax.text(j, i, str(int(confusion[i, j])), ha="center", va="center",
                        color=color, fontsize=8)
    return fig
