"""Predictions and classification metrics of a trained ANN.

Both functions run the model in eval mode under :func:`torch.no_grad` and restore its previous
mode afterwards, whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from ann.datasets import Split

__all__ = ["Evaluation", "predict", "evaluate", "model_device"]


@dataclass(frozen=True)
class Evaluation:
    """Classification metrics on one split.

    Attributes
    ----------
    accuracy : fraction of correctly classified samples, in [0, 1].
    loss : mean cross-entropy (nats per sample).
    confusion : int64 array ``(num_classes, num_classes)``; ``confusion[i, j]`` counts samples of
        true class ``i`` predicted as ``j`` (rows are true classes).
    """

    accuracy: float
    loss: float
    confusion: np.ndarray

    @property
    def num_samples(self) -> int:
        """Number of samples evaluated (the sum of the confusion matrix)."""
        return int(self.confusion.sum())


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (or buffer); CPU for a model with neither."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _logits(
    model: nn.Module, images: torch.Tensor, batch_size: int, device: torch.device
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Logits of ``images`` in batches (the caller holds eval mode and ``no_grad``)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(images), batch_size):
        batch = slice(start, start + batch_size)
        yield batch, model(images[batch].to(device))


def predict(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int = 512,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Predicted class of every image.

    Parameters
    ----------
    model : a classifier mapping ``(N, C, H, W)`` images to ``(N, num_classes)`` logits.
    images : float tensor ``(N, C, H, W)``.
    batch_size : images per forward pass.
    device : where the batches are sent; ``None`` means the model's device. The model itself is
        not moved.

    Returns
    -------
    torch.Tensor
        int64 labels ``(N,)`` on the CPU.
    """
    device = model_device(model) if device is None else torch.device(device)
    predictions = []
    with _eval_mode(model):
        for _, logits in _logits(model, images, batch_size, device):
            predictions.append(logits.argmax(dim=1).cpu())
    if not predictions:
        return torch.zeros(0, dtype=torch.int64)
    return torch.cat(predictions)


def evaluate(
    model: nn.Module,
    split: Split,
    batch_size: int = 512,
    device: str | torch.device | None = None,
) -> Evaluation:
    """Accuracy, mean cross-entropy and confusion matrix of ``model`` on ``split``.

    The number of classes is the width of the model's output.

    Parameters
    ----------
    model : a classifier mapping ``(N, C, H, W)`` images to ``(N, num_classes)`` logits.
    split : images and labels.
    batch_size : images per forward pass.
    device : where the batches are sent; ``None`` means the model's device.

    Returns
    -------
    Evaluation
    """
    if len(split) == 0:
        raise ValueError("cannot evaluate on an empty split")
    device = model_device(model) if device is None else torch.device(device)
    total_loss = 0.0
    confusion: np.ndarray | None = None
    with _eval_mode(model):
        for batch, logits in _logits(model, split.images, batch_size, device):
            labels = split.labels[batch].to(device)
            num_classes = logits.shape[1]
            if labels.min() < 0 or labels.max() >= num_classes:
                raise ValueError(
                    f"labels must lie in [0, {num_classes}) for a model with {num_classes} "
                    f"outputs, got range [{labels.min().item()}, {labels.max().item()}]"
                )
            total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
            if confusion is None:
                confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
            pairs = labels * num_classes + logits.argmax(dim=1)
            counts = torch.bincount(pairs, minlength=num_classes * num_classes)
            confusion += counts.cpu().numpy().reshape(num_classes, num_classes)
    assert confusion is not None
    accuracy = float(np.trace(confusion) / confusion.sum())
    return Evaluation(accuracy=accuracy, loss=total_loss / len(split), confusion=confusion)
