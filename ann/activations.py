"""Activation modules for ANNs meant for ANN-to-SNN conversion.

:class:`QCFS` is the quantization clip-floor-shift activation of Bu et al. (ICLR 2022). A network
trained with it in place of ReLU converts to an integrate-and-fire SNN that is accurate after as
few time steps as the activation has quantisation levels. :func:`qcfs_modules` lists the QCFS
layers of a model in execution order, as the converter reads them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["QCFS", "qcfs", "qcfs_modules"]


class _QCFSFunction(torch.autograd.Function):
    """Forward: the quantised clip. Backward: straight-through floor, as in the authors' code.

    The authors compute ``lam * floor(clamp(x / lam, 0, 1) * L + 0.5) / L`` and let autograd
    differentiate it with an identity gradient for the floor. For ``shift == 0.5`` that equals
    the paper's ``clip(floor(x L / lam + shift), 0, L)`` in the forward pass; the backward pass
    below writes out the gradients of the authors' expression so that they hold for any shift:

    * ``d out / d x = 1`` for ``0 <= x <= lam`` and ``0`` outside;
    * ``d out / d lam = q / L - x / lam`` for ``0 <= x <= lam`` (minus the rounding error
      relative to ``lam``), ``1`` for ``x > lam`` and ``0`` for ``x < 0``, where ``q`` is the
      integer level.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, threshold: torch.Tensor, levels: int, shift: float):
        scaled = x / threshold
        level = torch.clamp(torch.floor(scaled * levels + shift), 0, levels)
        ctx.save_for_backward(scaled, level)
        ctx.levels = levels
        ctx.threshold_shape = threshold.shape
        ctx.threshold_dtype = threshold.dtype
        return level * (threshold / levels)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        scaled, level = ctx.saved_tensors
        inside = (scaled >= 0) & (scaled <= 1)
        grad_x = grad_threshold = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_output * inside.to(grad_output.dtype)
        if ctx.needs_input_grad[1]:
            local = level / ctx.levels - torch.where(inside, scaled, torch.zeros_like(scaled))
            grad_threshold = (
                (grad_output * local).sum().reshape(ctx.threshold_shape).to(ctx.threshold_dtype)
            )
        return grad_x, grad_threshold, None, None


def qcfs(x: torch.Tensor, threshold: torch.Tensor, levels: int, shift: float = 0.5) -> torch.Tensor:
    r"""Functional form of :class:`QCFS`: :math:`\frac{\lambda}{L}\,\mathrm{clip}(\lfloor
    xL/\lambda + \varphi\rfloor, 0, L)` with a straight-through floor.

    Parameters
    ----------
    x : pre-activations, any shape.
    threshold : :math:`\lambda`, a scalar tensor (0-d or one element), same units as ``x``.
    levels : :math:`L`, number of quantisation levels (>= 1).
    shift : :math:`\varphi`.
    """
    return _QCFSFunction.apply(x, threshold, levels, shift)


class QCFS(nn.Module):
    r"""Quantization clip-floor-shift activation (Bu et al., 2022).

    .. math::

        h(x) = \frac{\lambda}{L}\,
               \mathrm{clip}\!\left(\left\lfloor \frac{x L}{\lambda} + \varphi \right\rfloor,
               0, L\right)

    with :math:`L` quantisation levels, a trainable threshold :math:`\lambda` (one scalar per
    layer, in the units of the pre-activation ``x``) and the shift :math:`\varphi`. The output
    takes the :math:`L + 1` values :math:`k\lambda/L`, :math:`k = 0, \dots, L`. Training uses a
    straight-through estimator for the floor, following the authors' code: the gradient with
    respect to ``x`` is 1 for :math:`0 \le x \le \lambda` and 0 outside; the gradient with
    respect to :math:`\lambda` is :math:`h(x)/\lambda - x/\lambda` for
    :math:`0 \le x \le \lambda`, 1 for :math:`x > \lambda` and 0 for :math:`x < 0`.

    ANN-to-SNN conversion replaces this module by integrate-and-fire neurons with threshold
    :math:`\theta = \lambda` (reset by subtraction) and initial membrane potential
    :math:`\varphi\theta`, which is :math:`\theta/2` for the default :math:`\varphi = 1/2`. After
    :math:`T` steps the SNN's firing rate times :math:`\theta` approximates :math:`h`; with
    :math:`\varphi = 1/2` the expected conversion error is zero for every :math:`T`, not only
    :math:`T = L` (Bu et al., Theorem 2), and at :math:`T = L` the SNN reproduces :math:`h`
    exactly when the input current is constant.

    Parameters
    ----------
    levels : :math:`L`, number of quantisation levels (an integer >= 1); the number of time
        steps at which the converted SNN matches the ANN.
    threshold : initial :math:`\lambda` (> 0, finite). The authors' code starts every layer at
        8.0; a value near a high percentile of the layer's pre-activations trains faster.
    shift : :math:`\varphi` in ``[0, 1)``; 0.5 is the value that makes the expected conversion
        error zero.

    Attributes
    ----------
    levels : int
    threshold : torch.nn.Parameter
        :math:`\lambda`, a 0-d trainable tensor.
    shift : float

    References
    ----------
    T. Bu, W. Fang, J. Ding, P. Dai, Z. Yu, T. Huang, "Optimal ANN-SNN Conversion for
    High-accuracy and Ultra-low-latency Spiking Neural Networks", ICLR 2022.
    https://openreview.net/forum?id=7B3IJMM1k_M
    """

    def __init__(self, levels: int = 8, threshold: float = 8.0, shift: float = 0.5) -> None:
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"QCFS levels must be an integer >= 1, got {levels!r}")
        threshold = float(threshold)
        if not (math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"QCFS threshold (lambda) must be finite and > 0, got {threshold}")
        shift = float(shift)
        if not 0 <= shift < 1:
            raise ValueError(f"QCFS shift (phi) must be in [0, 1), got {shift}")
        self.levels = levels
        self.shift = shift
        self.threshold = nn.Parameter(torch.tensor(threshold))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return qcfs(x, self.threshold, self.levels, self.shift)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, threshold={self.threshold.item():.4g}, shift={self.shift}"


def qcfs_modules(model: nn.Module) -> list[QCFS]:
    """The :class:`QCFS` modules of ``model`` (nested ones included), in registration order.

    For the flat :class:`torch.nn.Sequential` networks of :func:`ann.build_model` that is the
    order in which they run.
    """
    return [module for module in model.modules() if isinstance(module, QCFS)]
