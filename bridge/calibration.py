r"""Activation statistics for data-based normalisation (Rueckauer et al. 2017).

:func:`activation_percentiles` runs a flat list of layers on calibration images and returns, for
each requested layer, the :math:`p`-th percentile :math:`\lambda` of that layer's outputs (the
post-ReLU activations), over the whole layer or per channel. The percentile is exact (linear
interpolation between order statistics, as :func:`numpy.percentile`) and is computed in
batches while keeping only the largest values, so memory does not grow with the number of images.

Zeros count: the statistic is taken over all outputs of the layer, including the many that ReLU
sets to zero (as SpikingJelly's and sinabs' converters do, and as the "total activity
distribution" of Rueckauer et al.); with ``percentile="max"`` it is the maximum.

References
----------
B. Rueckauer, I.-A. Lungu, Y. Hu, M. Pfeiffer, S.-C. Liu, "Conversion of continuous-valued deep
networks to efficient event-driven networks for image classification", Front. Neurosci. 11:682
(2017).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "MIN_CALIBRATION_SAMPLES",
    "CalibrationError",
    "check_calibration_images",
    "percentile_fraction",
    "activation_percentiles",
]

MIN_CALIBRATION_SAMPLES = 10


class CalibrationError(ValueError):
    """Calibration images or settings cannot give the requested statistics."""


def percentile_fraction(percentile: float | str) -> float:
    """``percentile`` in ``(0, 100]`` or ``"max"`` as a fraction ``q`` in ``(0, 1]``."""
    if percentile == "max":
        return 1.0
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)):
        raise CalibrationError(
            f"percentile must be a number in (0, 100] or 'max', got {percentile!r}"
        )
    if not 0 < percentile <= 100:
        raise CalibrationError(f"percentile must be in (0, 100] or 'max', got {percentile!r}")
    return float(percentile) / 100.0


def check_calibration_images(
    images: torch.Tensor, layers: Sequence[nn.Module], *, min_samples: int = MIN_CALIBRATION_SAMPLES
) -> torch.Tensor:
    """Validate calibration images against a flat list of layers; return them as float32.

    Raises
    ------
    CalibrationError
        If ``images`` is not a tensor of at least 2 dimensions, holds fewer than ``min_samples``
        samples or non-finite values, or does not fit the layers (the message names the layer
        that fails and the shape it received).
    """
    if not isinstance(images, torch.Tensor):
        raise CalibrationError(
            f"calibration images must be a torch.Tensor (N, C, H, W), got {type(images).__name__}"
        )
    if images.ndim < 2:
        raise CalibrationError(
            f"calibration images must have a batch dimension, (N, C, H, W); got shape "
            f"{tuple(images.shape)}"
        )
    if len(images) < min_samples:
        raise CalibrationError(
            f"calibration needs at least {min_samples} images, got {len(images)}; pass (a "
            "subset of) the training images"
        )
    images = images.detach().to("cpu", torch.float32)
    if not torch.isfinite(images).all():
        raise CalibrationError("calibration images contain NaN or infinite values")
    x = images[:2]
    with torch.no_grad():
        for index, layer in enumerate(layers):
            try:
                x = layer(x)
            except RuntimeError as error:
                raise CalibrationError(
                    f"calibration images of shape {tuple(images.shape)} do not fit the model: "
                    f"layer {index} ({type(layer).__name__}) fails on an input of shape "
                    f"{tuple(x.shape)}: {error}"
                ) from error
    return images


def _needed(n: int, q: float) -> tuple[int, int, float]:
    """Ascending order statistics ``lo`` and ``lo + 1`` and weight ``frac`` of the quantile."""
    position = q * (n - 1)
    lo = min(int(math.floor(position)), n - 1)
    return lo, min(lo + 1, n - 1), position - lo


def activation_percentiles(
    layers: Sequence[nn.Module],
    images: torch.Tensor,
    at: Sequence[int],
    *,
    percentile: float | str,
    channel_wise: bool,
    batch_size: int = 256,
) -> dict[int, torch.Tensor]:
    r"""The ``percentile`` of the outputs of ``layers[i]`` for every ``i`` in ``at``.

    Parameters
    ----------
    layers : a flat list of modules applied in order (already in eval mode).
    images : ``(N, ...)`` calibration images (validated with :func:`check_calibration_images`).
    at : indices of the layers whose outputs are measured.
    percentile : ``p`` in ``(0, 100]`` or ``"max"``.
    channel_wise : one statistic per channel (dimension 1 of the output: the channels of a
        ``(N, C, H, W)`` output, the features of an ``(N, F)`` one) instead of one per layer.
    batch_size : images per forward pass.

    Returns
    -------
    dict
        ``{i: lambda}``: a 0-d tensor, or ``(C,)`` with ``channel_wise``.

    Raises
    ------
    CalibrationError
        If a statistic would rest on fewer values than the percentile needs: for ``p < 100``
        at least :math:`100/(100-p)` values per statistic (1000 for 99.9), else the percentile
        is indistinguishable from the maximum; use ``"max"`` or more images.
    """
    q = percentile_fraction(percentile)
    images = check_calibration_images(images, layers)
    targets = sorted(set(at))
    n_images = len(images)
    with torch.no_grad():
        probe = images[:1]
        sizes: dict[int, tuple[int, int]] = {}  # i -> (statistics, values per statistic)
        for index, layer in enumerate(layers):
            probe = layer(probe)
            if index in targets:
                per_sample = probe[0].numel()
                if channel_wise:
                    if probe.ndim < 2:
                        raise CalibrationError(f"layer {index} has no channel dimension")
                    channels = probe.shape[1]
                    sizes[index] = (channels, n_images * per_sample // channels)
                else:
                    sizes[index] = (1, n_images * per_sample)
    if q < 1.0:
        minimum = math.ceil(1.0 / (1.0 - q) - 1e-9)
        for index, (_, count) in sizes.items():
            if count < minimum:
                raise CalibrationError(
                    f"the {percentile}th percentile of layer {index} "
                    f"({type(layers[index]).__name__}) needs at least {minimum} values per "
                    f"{'channel' if channel_wise else 'layer'}, but {n_images} images give "
                    f"{count}; pass more images or use percentile='max'"
                )
    keep = {i: sizes[i][1] - _needed(sizes[i][1], q)[0] for i in targets}
    top: dict[int, torch.Tensor | None] = {i: None for i in targets}
    with torch.no_grad():
        for lo in range(0, n_images, batch_size):
            x = images[lo:lo + batch_size]
            for index, layer in enumerate(layers):
                x = layer(x)
                if index in top:
                    if channel_wise:
                        values = x.transpose(0, 1).reshape(x.shape[1], -1)
                    else:
                        values = x.reshape(1, -1)
                    current = top[index]
                    if current is not None:
                        values = torch.cat([current, values], dim=1)
                    k = min(keep[index], values.shape[1])
                    top[index] = torch.topk(values, k, dim=1, sorted=True).values
                if index >= targets[-1]:
                    break
    result: dict[int, torch.Tensor] = {}
    for index in targets:
        n = sizes[index][1]
        lo, hi, frac = _needed(n, q)
        descending = top[index]
        assert descending is not None
        low = descending[:, n - 1 - lo]
        high = descending[:, n - 1 - hi]
        value = low + frac * (high - low)
        result[index] = value if channel_wise else value.reshape(())
    return result
