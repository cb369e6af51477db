r"""Homeostasis: adaptive threshold, weight normalisation and synaptic scaling.

Adaptive threshold (Diehl & Cook 2015)
    Each neuron has a threshold offset :math:`\theta` (mV) that jumps by :math:`\theta_+` at each
    of its spikes and decays with :math:`\tau_\theta`; its effective threshold is
    :math:`V_{th} + \theta`. In the paper :math:`\theta_+ = 0.05` mV and
    :math:`\tau_\theta = 10^7` ms (:data:`DIEHL_COOK_2015`).
Weight normalisation (Diehl & Cook 2015)
    The input weights of each excitatory neuron (a column of ``W``) are rescaled to a fixed sum,
    78 in the paper (:data:`DIEHL_COOK_2015_COLUMN_SUM`), after each example.
Synaptic scaling (van Rossum, Bi & Turrigiano 2000)
    Multiplicative scaling of all input weights of a neuron towards a target rate,
    :math:`dw_{ij}/dt = \beta\, w_{ij} (r_{target} - \bar r_j)`.

References: Diehl & Cook, Front. Comput. Neurosci. 9:99 (2015); van Rossum, Bi & Turrigiano,
J. Neurosci. 20:8812 (2000); Turrigiano et al., Nature 391:892 (1998).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from neuro.models._common import (
    check_dt_positive,
    check_finite,
    check_non_negative,
    check_positive,
    decay_factor,
)
from neuro.plasticity.base import check_batch_reduce, reduce_batch

__all__ = [
    "AdaptiveThresholdParams",
    "DIEHL_COOK_2015",
    "DIEHL_COOK_2015_COLUMN_SUM",
    "adaptive_threshold_step",
    "effective_threshold",
    "Brian2ThresholdAdaptation",
    "adaptive_threshold_brian2",
    "normalize_columns",
    "SynapticScalingParams",
    "synaptic_scaling_step",
]


@dataclass(frozen=True)
class AdaptiveThresholdParams:
    """Adaptive threshold (:func:`adaptive_threshold_step`).

    Attributes
    ----------
    theta_plus : increment of the threshold offset at each spike, mV (>= 0).
    tau_theta : decay time constant of the offset, ms.
    """

    theta_plus: float = 0.05
    tau_theta: float = 1e7

    def __post_init__(self) -> None:
        check_finite(self)
        check_non_negative(self, "theta_plus")
        check_positive(self, "tau_theta")


#: Diehl & Cook (2015): :math:`\theta_+ = 0.05` mV, :math:`\tau_\theta = 10^7` ms.
DIEHL_COOK_2015 = AdaptiveThresholdParams(theta_plus=0.05, tau_theta=1e7)
#: Diehl & Cook (2015): sum of the input weights of each excitatory neuron (784 inputs).
DIEHL_COOK_2015_COLUMN_SUM = 78.0


def adaptive_threshold_step(
    theta: torch.Tensor,
    post_spikes: torch.Tensor,
    params: AdaptiveThresholdParams,
    dt_ms: float,
    *,
    learning: bool = True,
) -> torch.Tensor:
    r"""New threshold offsets: exact decay, then the jump of this step's spikes,

    .. math::

        \theta \leftarrow \theta\, e^{-\Delta t/\tau_\theta} + \theta_+ s .

    Parameters
    ----------
    theta : threshold offsets ``(batch, n)``, mV.
    post_spikes : ``(batch, n)``, bool or 0/1, the neurons' spikes of this step.
    params : :class:`AdaptiveThresholdParams`.
    dt_ms : time step, ms.
    learning : ``False`` holds :math:`\theta` fixed (neither decay nor jumps), as in the test phase
        of Diehl & Cook: here :math:`\theta` *is* the learned quantity, so freezing it is the
        analogue of freezing weights.

    Returns
    -------
    new_theta : ``(batch, n)``; ``theta`` is not modified.
    """
    check_dt_positive(dt_ms)
    if tuple(post_spikes.shape) != tuple(theta.shape):
        raise ValueError(
            f"post_spikes has shape {tuple(post_spikes.shape)}, theta {tuple(theta.shape)}"
        )
    if not learning:
        return theta.clone()
    spikes = post_spikes.to(dtype=theta.dtype, device=theta.device)
    return theta * decay_factor(dt_ms, params.tau_theta) + params.theta_plus * spikes


def effective_threshold(v_th: float | torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    r"""The threshold a neuron with offset :math:`\theta` fires at, :math:`V_{th} + \theta` (mV)."""
    return v_th + theta


@dataclass(frozen=True)
class Brian2ThresholdAdaptation:
    """The adaptive threshold as pieces of a :class:`brian2.NeuronGroup`.

    model : equation to append to the neuron model (``theta`` in volt).
    threshold_offset : expression to add to the neuron's threshold value (``"+ theta"``).
    reset : statement to append to the reset.
    namespace : parameter values.
    """

    model: str
    threshold_offset: str
    reset: str
    namespace: dict[str, Any] = field(default_factory=dict)


def adaptive_threshold_brian2(params: AdaptiveThresholdParams) -> Brian2ThresholdAdaptation:
    """The same adaptive threshold for Brian2 (as in Diehl & Cook's published code:
    ``dtheta/dt = -theta/tau_theta``, reset ``theta += theta_plus``)."""
    import brian2 as b2

    return Brian2ThresholdAdaptation(
        model="dtheta/dt = -theta/tau_theta : volt\n",
        threshold_offset="+ theta",
        reset="theta += theta_plus\n",
        namespace={"theta_plus": params.theta_plus * b2.mV, "tau_theta": params.tau_theta * b2.ms},
    )


def normalize_columns(weights: torch.Tensor, target_sum: float = DIEHL_COOK_2015_COLUMN_SUM
                      ) -> torch.Tensor:
    r"""Rescale each column (the input weights of one postsynaptic neuron) to sum to
    ``target_sum``: :math:`w_{ij} \leftarrow w_{ij}\, S / \sum_k w_{kj}`.

    Parameters
    ----------
    weights : ``(n_pre, n_post)`` or ``(batch, n_pre, n_post)``; columns are along ``dim=-2``.
    target_sum : the column sum :math:`S` (78 in Diehl & Cook 2015).

    Returns
    -------
    A new tensor. Columns that sum to zero are returned unchanged (there is nothing to scale).
    """
    if weights.dim() not in (2, 3):
        raise ValueError(f"weights must be 2-D or 3-D, got shape {tuple(weights.shape)}")
    sums = weights.sum(dim=-2, keepdim=True)
    zero = sums == 0
    factor = torch.where(zero, torch.ones_like(sums), target_sum / torch.where(zero, 1.0, sums))
    return weights * factor


@dataclass(frozen=True)
class SynapticScalingParams:
    r"""Synaptic scaling (:func:`synaptic_scaling_step`).

    Attributes
    ----------
    beta : scaling rate, 1/(ms Hz) (>= 0).
    target_rate : target postsynaptic rate, Hz (>= 0).
    """

    beta: float = 1e-7
    target_rate: float = 5.0

    def __post_init__(self) -> None:
        check_finite(self)
        check_non_negative(self, "beta", "target_rate")


def synaptic_scaling_step(
    weights: torch.Tensor,
    post_rate: torch.Tensor,
    params: SynapticScalingParams,
    dt_ms: float,
    *,
    batch_reduce: str = "sum",
    learning: bool = True,
) -> torch.Tensor:
    r"""Weight change of multiplicative synaptic scaling over one step,

    .. math::

        \Delta w_{ij} = \beta\, \Delta t\, w_{ij} \bigl(r_{target} - \bar r_j\bigr),

    where :math:`\bar r_j` (Hz) is a running estimate of neuron :math:`j`'s rate (e.g. a trace).

    Parameters
    ----------
    weights : ``(n_pre, n_post)`` or ``(batch, n_pre, n_post)``.
    post_rate : ``(batch, n_post)``, Hz.
    params : :class:`SynapticScalingParams`.
    dt_ms : time step, ms.
    batch_reduce : ``"sum"`` or ``"mean"`` of the per-trial changes, for shared weights.
    learning : ``False`` returns zeros.
    """
    check_dt_positive(dt_ms)
    check_batch_reduce(batch_reduce)
    if post_rate.dim() != 2 or post_rate.shape[1] != weights.shape[-1]:
        raise ValueError(
            f"post_rate must be (batch, {weights.shape[-1]}), got {tuple(post_rate.shape)}"
        )
    if not learning:
        return torch.zeros_like(weights)
    error = (params.target_rate - post_rate.to(weights.dtype))[:, None, :]  # (batch, 1, n_post)
    per_trial = params.beta * dt_ms * weights * error
    return reduce_batch(per_trial, weights, batch_reduce)
