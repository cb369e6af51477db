r"""Rate-based Hebbian rules: plain Hebbian with decay, Oja, Sanger (GHA) and BCM.

They act on rate vectors as the literature defines them: presynaptic :math:`x` ``(batch, n_pre)``
and postsynaptic :math:`y` ``(batch, n_post)`` (in Hz, or dimensionless activations); the caller
computes :math:`y` (for the linear neuron of Oja and Sanger, ``y = x @ w``). Weights are
``(n_pre, n_post)``: column :math:`j` holds the input weights of output :math:`j`. Each step
returns the change for one sample (per trial), reduced over the batch by ``batch_reduce`` for
shared weights (``"sum"`` is the sum of the per-sample changes, ``"mean"`` their average,
i.e. one mini-batch step), or per trial for ``(batch, n_pre, n_post)`` weights.

The learning rates are per sample. :func:`bcm_spiking_step` is the BCM rule on spike trains,
with rates estimated by exponential traces and a rate of change per ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from neuro.models._common import (
    check_finite,
    check_non_negative,
    check_positive,
    decay_factor,
    relax,
)
from neuro.plasticity.base import (
    as_float,
    check_state_shape,
    check_state_shapes,
    check_step_inputs,
    outer,
)

__all__ = [
    "HebbianParams",
    "hebbian_step",
    "OjaParams",
    "oja_step",
    "SangerParams",
    "sanger_step",
    "BCMParams",
    "bcm_step",
    "SpikingBCMParams",
    "SpikingBCMState",
    "bcm_spiking_initial_state",
    "bcm_spiking_step",
]


def _sum_over_batch(per_trial_vector: torch.Tensor, weights: torch.Tensor,
                    batch_reduce: str) -> torch.Tensor:
    """``(batch, n_post)`` -> ``(1, n_post)`` (sum/mean) for shared weights, ``(batch, 1, n_post)``
    for per-trial weights: the factor that multiplies ``w`` column-wise."""
    if weights.dim() == 3:
        return per_trial_vector[:, None, :]
    total = per_trial_vector.sum(0, keepdim=True)
    return total / per_trial_vector.shape[0] if batch_reduce == "mean" else total


# --------------------------------------------------------------------------- plain Hebbian


@dataclass(frozen=True)
class HebbianParams:
    r"""Plain Hebbian learning with weight decay, :math:`\Delta w = \eta (x y^\top - \gamma w)`.

    Attributes
    ----------
    eta : learning rate per sample (>= 0).
    gamma : weight decay (>= 0); 0 is Hebb's unstable rule.
    """

    eta: float = 0.01
    gamma: float = 0.0

    def __post_init__(self) -> None:
        check_finite(self)
        check_non_negative(self, "eta", "gamma")


def hebbian_step(
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    params: HebbianParams,
    *,
    batch_reduce: str = "sum",
    learning: bool = True,
    lr_scale: float = 1.0,
) -> torch.Tensor:
    r"""Plain Hebbian change with decay, :math:`\Delta w_{ij} = \eta (x_i y_j - \gamma w_{ij})`.

    Reference: Hebb, *The Organization of Behavior* (1949); Gerstner & Kistler, *Spiking Neuron
    Models* (2002), ch. 10.

    Parameters
    ----------
    x : presynaptic rates ``(batch, n_pre)``.
    y : postsynaptic rates ``(batch, n_post)``.
    weights : ``(n_pre, n_post)`` or ``(batch, n_pre, n_post)``.
    params : :class:`HebbianParams`.
    batch_reduce : ``"sum"`` or ``"mean"`` of the per-sample changes (shared weights).
    learning : ``False`` returns zeros.
    lr_scale : multiplies :math:`\eta`.

    Returns
    -------
    delta_w : same shape as ``weights``.
    """
    check_step_inputs(x, y, weights, None, batch_reduce, lr_scale, what="rates")
    if not learning or lr_scale == 0:
        return torch.zeros_like(weights)
    x, y = as_float(x, weights), as_float(y, weights)
    n = 1 if weights.dim() == 3 or batch_reduce == "mean" else x.shape[0]
    hebb = outer(x, y, weights, batch_reduce)
    return (lr_scale * params.eta) * (hebb - params.gamma * n * weights)


# --------------------------------------------------------------------------- Oja


@dataclass(frozen=True)
class OjaParams:
    """Oja's rule. ``eta``: learning rate per sample (>= 0)."""

    eta: float = 0.01

    def __post_init__(self) -> None:
        check_finite(self)
        check_non_negative(self, "eta")


def oja_step(
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    params: OjaParams,
    *,
    batch_reduce: str = "sum",
    learning: bool = True,
    lr_scale: float = 1.0,
) -> torch.Tensor:
    r"""Oja's rule for each output independently,
    :math:`\Delta w_{ij} = \eta\, y_j (x_i - y_j w_{ij})`.

    With :math:`y = w^\top x` (a linear neuron) a single output's weight vector converges to the
    unit-norm principal eigenvector of :math:`\langle x x^\top \rangle`.
    Reference: Oja, J. Math. Biol. 15:267 (1982).

    Parameters and returns as :func:`hebbian_step` with :class:`OjaParams`.
    """
    check_step_inputs(x, y, weights, None, batch_reduce, lr_scale, what="rates")
    if not learning or lr_scale == 0:
        return torch.zeros_like(weights)
    x, y = as_float(x, weights), as_float(y, weights)
    hebb = outer(x, y, weights, batch_reduce)
    y2 = _sum_over_batch(y * y, weights, batch_reduce)
    return (lr_scale * params.eta) * (hebb - y2 * weights)


# --------------------------------------------------------------------------- Sanger / GHA


@dataclass(frozen=True)
class SangerParams:
    """Sanger's generalised Hebbian algorithm. ``eta``: learning rate per sample (>= 0)."""

    eta: float = 0.01

    def __post_init__(self) -> None:
        check_finite(self)
        check_non_negative(self, "eta")


def sanger_step(
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    params: SangerParams,
    *,
    batch_reduce: str = "sum",
    learning: bool = True,
    lr_scale: float = 1.0,
) -> torch.Tensor:
    r"""Sanger's generalised Hebbian algorithm for :math:`k` outputs,

    .. math::

        \Delta w_{ij} = \eta\, y_j \Bigl(x_i - \sum_{l \le j} w_{il}\, y_l\Bigr),
        \qquad\text{i.e.}\qquad
        \Delta W = \eta \bigl(x y^\top - W\, \mathrm{triu}(y y^\top)\bigr).

    With :math:`y = W^\top x` the columns converge to the first :math:`k` unit-norm principal
    components, in order. Output 1 follows Oja's rule.
    Reference: Sanger, Neural Networks 2:459 (1989).

    Parameters and returns as :func:`hebbian_step` with :class:`SangerParams`.
    """
    check_step_inputs(x, y, weights, None, batch_reduce, lr_scale, what="rates")
    if not learning or lr_scale == 0:
        return torch.zeros_like(weights)
    x, y = as_float(x, weights), as_float(y, weights)
    hebb = outer(x, y, weights, batch_reduce)
    k = torch.arange(y.shape[1], device=y.device)
    # upper-triangular mask by comparison: torch.triu is an OpenMP region, ms-slow on busy CPUs
    yy = outer(y, y, weights, batch_reduce) * (k[:, None] <= k[None, :])
    return (lr_scale * params.eta) * (hebb - weights @ yy)


# --------------------------------------------------------------------------- BCM


@dataclass(frozen=True)
class BCMParams:
    r"""BCM rule with a sliding threshold (Intrator & Cooper form).

    Attributes
    ----------
    eta : learning rate per sample (>= 0).
    tau_theta : time constant of the sliding threshold, ms (or samples, with ``dt_ms = 1``).
    y0 : normalising rate of the threshold, :math:`\theta \to \langle y^2 \rangle / y_0`
        (the unit of ``y``; > 0).
    """

    eta: float = 1e-4
    tau_theta: float = 1000.0
    y0: float = 1.0

    def __post_init__(self) -> None:
        check_finite(self)
        check_non_negative(self, "eta")
        check_positive(self, "tau_theta", "y0")


def bcm_step(
    x: torch.Tensor,
    y: torch.Tensor,
    theta: torch.Tensor,
    weights: torch.Tensor,
    params: BCMParams,
    dt_ms: float,
    *,
    batch_reduce: str = "sum",
    learning: bool = True,
    lr_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One sample of the BCM rule with sliding threshold,

    .. math::

        \Delta w_{ij} = \eta\, x_i\, y_j (y_j - \theta_j), \qquad
        \tau_\theta \frac{d\theta_j}{dt} = \frac{y_j^2}{y_0} - \theta_j .

    The weight change uses the threshold from *past* activity (the value passed in); then
    :math:`\theta` relaxes exactly over ``dt_ms`` towards :math:`y^2/y_0` with :math:`y` frozen
    over the step, :math:`\theta \leftarrow y^2/y_0 + (\theta - y^2/y_0) e^{-\Delta t/\tau_\theta}`.
    For stationary input :math:`\theta` tracks :math:`\langle y^2 \rangle / y_0`.

    References: Bienenstock, Cooper & Munro, J. Neurosci. 2:32 (1982); Intrator & Cooper,
    Neural Networks 5:3 (1992); Dayan & Abbott, *Theoretical Neuroscience* (2001), eq. 8.11.

    Parameters
    ----------
    x, y, weights, batch_reduce, learning, lr_scale : as :func:`hebbian_step`.
    theta : sliding thresholds ``(batch, n_post)`` (per trial), unit of ``y``.
    params : :class:`BCMParams`.
    dt_ms : time between samples, ms. ``learning=False`` still moves the threshold.

    Returns
    -------
    delta_w : same shape as ``weights``.
    new_theta : ``(batch, n_post)``.
    """
    check_step_inputs(x, y, weights, dt_ms, batch_reduce, lr_scale, what="rates")
    check_state_shape("theta", theta, tuple(y.shape))
    x, y = as_float(x, weights), as_float(y, weights)
    new_theta = relax(theta, y * y / params.y0, decay_factor(dt_ms, params.tau_theta))
    if not learning or lr_scale == 0:
        return torch.zeros_like(weights), new_theta
    phi = y * (y - theta)
    return (lr_scale * params.eta) * outer(x, phi, weights, batch_reduce), new_theta


@dataclass(frozen=True)
class SpikingBCMParams:
    r"""BCM on spike trains (:func:`bcm_spiking_step`).

    Attributes
    ----------
    eta : rate of weight change, :math:`dw/dt = \eta\, \bar x \bar y (\bar y - \theta)`,
        in weight units per (ms Hz^3) (>= 0).
    tau_theta : sliding-threshold time constant, ms.
    y0 : normalising rate, Hz.
    tau_pre, tau_post : time constants of the rate estimates, ms.
    """

    eta: float = 1e-9
    tau_theta: float = 10_000.0
    y0: float = 10.0
    tau_pre: float = 100.0
    tau_post: float = 100.0

    def __post_init__(self) -> None:
        check_finite(self)
        check_non_negative(self, "eta")
        check_positive(self, "tau_theta", "y0", "tau_pre", "tau_post")


class SpikingBCMState(NamedTuple):
    """Rate estimates ``x_bar`` ``(batch, n_pre)``, ``y_bar`` ``(batch, n_post)`` and threshold
    ``theta`` ``(batch, n_post)``, all in Hz."""

    x_bar: torch.Tensor
    y_bar: torch.Tensor
    theta: torch.Tensor


def bcm_spiking_initial_state(
    batch: int,
    n_pre: int,
    n_post: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    theta_hz: float = 0.0,
) -> SpikingBCMState:
    """Zero rate estimates and a threshold of ``theta_hz``."""
    post = torch.zeros((batch, n_post), device=device, dtype=dtype)
    return SpikingBCMState(
        x_bar=torch.zeros((batch, n_pre), device=device, dtype=dtype),
        y_bar=post,
        theta=torch.full_like(post, theta_hz),
    )


def bcm_spiking_step(
    pre_spikes: torch.Tensor,
    post_spikes: torch.Tensor,
    state: SpikingBCMState,
    weights: torch.Tensor,
    params: SpikingBCMParams,
    dt_ms: float,
    *,
    batch_reduce: str = "sum",
    learning: bool = True,
    lr_scale: float = 1.0,
) -> tuple[torch.Tensor, SpikingBCMState]:
    r"""BCM driven by spikes: rates estimated by traces, then :func:`bcm_step`.

    :math:`\bar x \leftarrow \bar x\, e^{-\Delta t/\tau_{pre}} + s_{pre} / \tau_{pre}` (in Hz, so
    a neuron firing regularly at rate :math:`r` has :math:`\langle \bar x \rangle = r`), likewise
    :math:`\bar y`; then :math:`\Delta w = \eta\,\Delta t\, \bar x \bar y (\bar y - \theta)` and
    :math:`\theta` relaxes towards :math:`\bar y^2/y_0`.
    """
    batch, n_pre, n_post = check_step_inputs(
        pre_spikes, post_spikes, weights, dt_ms, batch_reduce, lr_scale
    )
    check_state_shapes("state", state, {"x_bar": (batch, n_pre), "y_bar": (batch, n_post)})
    pre, post = as_float(pre_spikes, weights), as_float(post_spikes, weights)
    x_bar = state.x_bar * decay_factor(dt_ms, params.tau_pre) + pre * (1000.0 / params.tau_pre)
    y_bar = state.y_bar * decay_factor(dt_ms, params.tau_post) + post * (1000.0 / params.tau_post)
    rate_params = BCMParams(eta=params.eta * dt_ms, tau_theta=params.tau_theta, y0=params.y0)
    delta_w, theta = bcm_step(
        x_bar, y_bar, state.theta, weights, rate_params, dt_ms,
        batch_reduce=batch_reduce, learning=learning, lr_scale=lr_scale,
    )
    return delta_w, SpikingBCMState(x_bar=x_bar, y_bar=y_bar, theta=theta)
