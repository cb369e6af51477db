"""Input encoders: spike trains and injected currents as torch tensors.

Every encoder is a pure function. Outputs are time-major, ``(n_steps, ...)``, so that step ``k``
of a simulation reads ``out[k]`` (time of step ``k`` is ``k * dt_ms``). Randomness comes only from
an explicit :class:`torch.Generator`; the output lives on the device of the input (or of the
generator), so the same seed gives the same spikes on the same device.

Units: time ms, rate Hz, current pA.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

__all__ = [
    "poisson_spikes",
    "rate_code",
    "latency_spike_times",
    "latency_code",
    "constant_current",
    "step_current",
    "ramp_current",
    "sinusoidal_current",
    "spike_times_to_raster",
]

TensorLike = torch.Tensor | float | Sequence[float]


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _check_steps(n_steps: int) -> int:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive int, got {n_steps!r}")
    return n_steps


def _check_dt(dt_ms: float) -> float:
    dt_ms = float(dt_ms)
    if not math.isfinite(dt_ms) or dt_ms <= 0.0:
        raise ValueError(f"dt_ms must be positive and finite, got {dt_ms}")
    return dt_ms


def _as_float_tensor(x: TensorLike, device: torch.device | str | None = None) -> torch.Tensor:
    """A floating tensor; keeps a floating dtype, promotes integers/bools to float32."""
    t = torch.as_tensor(x, device=device)
    if not torch.is_floating_point(t):
        t = t.to(torch.float32)
    return t


def _images_2d(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """``(N, C, H, W)`` (or any ``(N, ...)``) in ``[0, 1]`` flattened to ``(N, features)``."""
    images = _as_float_tensor(images)
    if images.ndim < 2:
        raise ValueError(f"{name} must have a batch dimension, shape (N, ...); got {images.shape}")
    if torch.isnan(images).any():
        raise ValueError(f"{name} contain NaN")
    lo, hi = images.min().item(), images.max().item()
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} must lie in [0, 1] (got range [{lo:g}, {hi:g}]); normalise them first, "
            "e.g. divide 8-bit pixels by 255"
        )
    return images.flatten(1)


# --------------------------------------------------------------------------------------------
# spike encoders
# --------------------------------------------------------------------------------------------


def poisson_spikes(
    rates_hz: TensorLike,
    n_steps: int,
    dt_ms: float,
    generator: torch.Generator | None = None,
    *,
    time_varying: bool = False,
) -> torch.Tensor:
    r"""Bernoulli approximation of independent Poisson spike trains.

    In each step of length :math:`\Delta t` a neuron with rate :math:`r` spikes with probability

    .. math:: p = r \, \Delta t, \qquad (r \text{ in Hz}, \ \Delta t \text{ in s}),

    independently across steps and neurons, which approaches a Poisson process as
    :math:`p \to 0` (the count in :math:`T` has mean :math:`rT` and variance
    :math:`rT(1 - p)`).

    Parameters
    ----------
    rates_hz
        Rates in Hz, any shape ``S`` (constant in time), or, with ``time_varying=True``, shape
        ``(n_steps, *S)`` giving the rate of every step. Non-negative, finite.
    n_steps
        Number of time steps.
    dt_ms
        Time step, ms.
    generator
        Source of randomness (seed it for reproducible spikes). Its device must match the device
        of ``rates_hz``.
    time_varying
        Whether the first axis of ``rates_hz`` is time. Explicit, because a rate vector of
        length ``n_steps`` would otherwise be ambiguous.

    Returns
    -------
    torch.Tensor
        Boolean spikes, shape ``(n_steps, *S)``, on the device of ``rates_hz``.

    Raises
    ------
    ValueError
        If a rate is negative or NaN, or if :math:`r \Delta t > 1` (more than one spike per step
        would be needed).
    """
    n_steps = _check_steps(n_steps)
    dt_ms = _check_dt(dt_ms)
    # Python numbers go to the generator's device; tensors stay where they are.
    on_generator = generator is not None and not isinstance(rates_hz, torch.Tensor)
    rates = _as_float_tensor(rates_hz, device=generator.device if on_generator else None)
    if torch.isnan(rates).any():
        raise ValueError("rates_hz contain NaN")
    if (rates < 0).any():
        raise ValueError(f"rates_hz must be non-negative (min {rates.min().item():g} Hz)")
    if time_varying and (rates.ndim == 0 or rates.shape[0] != n_steps):
        raise ValueError(
            f"time-varying rates_hz must have shape (n_steps={n_steps}, ...), got "
            f"{tuple(rates.shape)}"
        )
    p = rates * (dt_ms / 1000.0)
    p_max = p.max().item() if p.numel() else 0.0
    if p_max > 1.0:
        raise ValueError(
            f"spike probability per step rate*dt = {p_max:g} > 1 (max rate "
            f"{rates.max().item():g} Hz, dt {dt_ms:g} ms): lower the rate or dt "
            f"(dt must be <= {1000.0 / rates.max().item():g} ms at this rate)"
        )
    shape = tuple(rates.shape) if time_varying else (n_steps, *rates.shape)
    u = torch.rand(shape, generator=generator, device=rates.device, dtype=rates.dtype)
    return u < p


def rate_code(
    images: torch.Tensor,
    max_rate_hz: float,
    n_steps: int,
    dt_ms: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Rate-code images as Poisson spike trains (Diehl & Cook, 2015).

    Pixel :math:`x \in [0, 1]` becomes a Poisson train of rate

    .. math:: r = x \, r_{\max}.

    Parameters
    ----------
    images
        Intensities in ``[0, 1]``, shape ``(N, C, H, W)`` (or any ``(N, ...)``).
    max_rate_hz
        Rate of a pixel of intensity 1, Hz (Diehl & Cook use 63.75 Hz, i.e. 255 / 4).
    n_steps, dt_ms
        Number of steps and step length (ms).
    generator
        Seeded :class:`torch.Generator` for reproducibility.

    Returns
    -------
    torch.Tensor
        Boolean spikes, shape ``(n_steps, N, C*H*W)``.

    References
    ----------
    P. U. Diehl and M. Cook, "Unsupervised learning of digit recognition using spike-timing-
    dependent plasticity", Front. Comput. Neurosci. 9:99 (2015).
    """
    max_rate_hz = float(max_rate_hz)
    if not math.isfinite(max_rate_hz) or max_rate_hz < 0:
        raise ValueError(f"max_rate_hz must be non-negative and finite, got {max_rate_hz}")
    flat = _images_2d(images)
    return poisson_spikes(flat * max_rate_hz, n_steps, dt_ms, generator)


def latency_spike_times(
    images: torch.Tensor,
    t_max_ms: float,
    threshold: float = 0.01,
    *,
    mode: Literal["linear", "log"] = "linear",
    tau_ms: float | None = None,
) -> torch.Tensor:
    r"""Time-to-first-spike of every pixel, ms; ``inf`` for pixels that never fire.

    ``mode="linear"``: :math:`t = t_{\max}(1 - x)` for :math:`x \ge \theta`
    (so :math:`x = 1` fires at 0 and :math:`x = 0` at :math:`t_{\max}`).

    ``mode="log"`` (snnTorch's default latency code): the time an RC circuit with time constant
    :math:`\tau` driven by input :math:`x` takes to charge to :math:`\theta`,

    .. math:: t = \tau \ln\frac{x}{x - \theta}, \qquad x > \theta,

    kept only where :math:`t \le t_{\max}`.

    Parameters
    ----------
    images
        Intensities in ``[0, 1]``, shape ``(N, ...)``.
    t_max_ms
        Latest spike time, ms.
    threshold
        :math:`\theta`; pixels below it never fire (``log``: pixels at or below it).
    mode
        ``"linear"`` or ``"log"``.
    tau_ms
        :math:`\tau` (ms), required for ``mode="log"``.

    Returns
    -------
    torch.Tensor
        Float spike times, shape ``(N, features)``.
    """
    t_max_ms = float(t_max_ms)
    if not math.isfinite(t_max_ms) or t_max_ms < 0:
        raise ValueError(f"t_max_ms must be non-negative and finite, got {t_max_ms}")
    threshold = float(threshold)
    x = _images_2d(images)
    inf = torch.tensor(math.inf, dtype=x.dtype, device=x.device)
    if mode == "linear":
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        return torch.where(x >= threshold, t_max_ms * (1.0 - x), inf)
    if mode == "log":
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1) for mode='log', got {threshold}")
        if tau_ms is None or not math.isfinite(float(tau_ms)) or float(tau_ms) <= 0:
            raise ValueError(f"mode='log' needs a positive tau_ms, got {tau_ms!r}")
        above = x > threshold
        # Clamp inside the log so masked-out pixels never produce NaN/inf warnings.
        xs = torch.where(above, x, torch.ones_like(x))
        t = float(tau_ms) * torch.log(xs / (xs - threshold))
        return torch.where(above & (t <= t_max_ms), t, inf)
    raise ValueError(f"mode must be 'linear' or 'log', got {mode!r}")


def latency_code(
    images: torch.Tensor,
    t_max_ms: float,
    dt_ms: float,
    threshold: float = 0.01,
    *,
    mode: Literal["linear", "log"] = "linear",
    tau_ms: float | None = None,
    n_steps: int | None = None,
) -> torch.Tensor:
    r"""Time-to-first-spike code: each pixel fires at most once, brighter pixels earlier.

    Spike times come from :func:`latency_spike_times` (linear :math:`t = t_{\max}(1 - x)`, or
    the RC-charging ``"log"`` code) and are placed in step :math:`k = \mathrm{round}(t /
    \Delta t)`.

    Parameters
    ----------
    images
        Intensities in ``[0, 1]``, shape ``(N, C, H, W)`` (or any ``(N, ...)``).
    t_max_ms
        Latest spike time, ms (the spike time of a pixel at ``threshold`` in linear mode).
    dt_ms
        Time step, ms.
    threshold
        Pixels below it never fire.
    mode, tau_ms
        See :func:`latency_spike_times`.
    n_steps
        Output length; default ``round(t_max_ms / dt_ms) + 1`` so that every spike fits. Spikes
        that fall at or after ``n_steps`` are dropped.

    Returns
    -------
    torch.Tensor
        Boolean spikes, shape ``(n_steps, N, features)``, at most one ``True`` per pixel.
    """
    dt_ms = _check_dt(dt_ms)
    times = latency_spike_times(images, t_max_ms, threshold, mode=mode, tau_ms=tau_ms)
    if n_steps is None:
        n_steps = int(round(float(t_max_ms) / dt_ms)) + 1
    n_steps = _check_steps(n_steps)
    finite = torch.isfinite(times)
    step = torch.round(torch.where(finite, times, torch.zeros_like(times)) / dt_ms).long()
    fires = finite & (step < n_steps)
    out = torch.zeros((n_steps, *times.shape), dtype=torch.bool, device=times.device)
    # One write per pixel column, so the False written for silent pixels cannot erase a spike.
    out.scatter_(0, torch.where(fires, step, 0).unsqueeze(0), fires.unsqueeze(0))
    return out


# --------------------------------------------------------------------------------------------
# injected currents
# --------------------------------------------------------------------------------------------


def _per_neuron(
    value: TensorLike,
    n: int | None,
    name: str,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
) -> torch.Tensor:
    """``value`` (scalar or ``(n,)``) broadcast to shape ``(n,)``."""
    t = _as_float_tensor(value, device=device)
    if dtype is not None:
        t = t.to(dtype)
    if t.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D per-neuron array, got {t.shape}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite")
    size = t.numel() if t.ndim == 1 else 1
    n = size if n is None else n
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if t.ndim == 1 and size not in (1, n):
        raise ValueError(f"{name} has {size} values but n = {n}")
    return t.reshape(-1).expand(n)


def _times_ms(n_steps: int, dt_ms: float, like: torch.Tensor) -> torch.Tensor:
    """Time of each step, ``k * dt``, shape ``(n_steps, 1)``."""
    k = torch.arange(n_steps, device=like.device, dtype=like.dtype)
    return (k * dt_ms).unsqueeze(1)


def constant_current(
    amplitude_pA: TensorLike,
    n_steps: int,
    n: int | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    r"""Constant current :math:`I(t) = A`.

    Parameters
    ----------
    amplitude_pA
        :math:`A` in pA: a scalar, or one value per neuron (shape ``(n,)``).
    n_steps
        Number of time steps.
    n
        Number of neurons; default: the length of ``amplitude_pA`` (1 for a scalar).
    device, dtype
        Of the output (default: those of ``amplitude_pA``; float32 for Python numbers).

    Returns
    -------
    torch.Tensor
        Shape ``(n_steps, n)``, pA.
    """
    n_steps = _check_steps(n_steps)
    amp = _per_neuron(amplitude_pA, n, "amplitude_pA", device, dtype)
    return amp.unsqueeze(0).expand(n_steps, -1).clone()


def step_current(
    amplitude_pA: TensorLike,
    n_steps: int,
    dt_ms: float,
    start_ms: float,
    stop_ms: float | None = None,
    baseline_pA: TensorLike = 0.0,
    n: int | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    r"""Current step: :math:`I(t) = A` for :math:`t_{on} \le t < t_{off}`, baseline otherwise.

    Step ``k`` has time :math:`t = k \Delta t`.

    Parameters
    ----------
    amplitude_pA
        :math:`A` in pA, scalar or per neuron.
    n_steps, dt_ms
        Number of steps and step length (ms).
    start_ms, stop_ms
        :math:`t_{on}` and :math:`t_{off}` (ms); ``stop_ms=None`` keeps the step on to the end.
    baseline_pA
        Current outside the step, pA, scalar or per neuron.
    n, device, dtype
        As in :func:`constant_current`.

    Returns
    -------
    torch.Tensor
        Shape ``(n_steps, n)``, pA.
    """
    n_steps = _check_steps(n_steps)
    dt_ms = _check_dt(dt_ms)
    stop = math.inf if stop_ms is None else float(stop_ms)
    if float(start_ms) > stop:
        raise ValueError(f"start_ms ({start_ms}) must not exceed stop_ms ({stop_ms})")
    amp = _per_neuron(amplitude_pA, n, "amplitude_pA", device, dtype)
    base = _per_neuron(baseline_pA, amp.numel(), "baseline_pA", amp.device, amp.dtype)
    t = _times_ms(n_steps, dt_ms, amp)
    on = (t >= float(start_ms)) & (t < stop)
    return torch.where(on, amp, base)


def ramp_current(
    start_pA: TensorLike,
    stop_pA: TensorLike,
    n_steps: int,
    n: int | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    r"""Linear ramp over the whole run: :math:`I_k = I_0 + (I_1 - I_0)\,k / (K - 1)`.

    Step 0 carries :math:`I_0` and the last step :math:`I_1` (``K = n_steps``).

    Parameters
    ----------
    start_pA, stop_pA
        :math:`I_0` and :math:`I_1` in pA, scalar or per neuron.
    n_steps
        Number of steps :math:`K`.
    n, device, dtype
        As in :func:`constant_current`.

    Returns
    -------
    torch.Tensor
        Shape ``(n_steps, n)``, pA.
    """
    n_steps = _check_steps(n_steps)
    i0 = _per_neuron(start_pA, n, "start_pA", device, dtype)
    i1 = _per_neuron(stop_pA, i0.numel(), "stop_pA", i0.device, i0.dtype)
    if n_steps == 1:
        return i0.unsqueeze(0).clone()
    frac = torch.linspace(0.0, 1.0, n_steps, device=i0.device, dtype=i0.dtype).unsqueeze(1)
    return i0 + (i1 - i0) * frac


def sinusoidal_current(
    amplitude_pA: TensorLike,
    frequency_hz: TensorLike,
    n_steps: int,
    dt_ms: float,
    offset_pA: TensorLike = 0.0,
    phase_rad: TensorLike = 0.0,
    n: int | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    r"""Sinusoidal current :math:`I(t) = I_0 + A \sin(2\pi f t + \varphi)`.

    With :math:`t = k \Delta t` in seconds for step ``k``.

    Parameters
    ----------
    amplitude_pA
        :math:`A`, pA, scalar or per neuron.
    frequency_hz
        :math:`f`, Hz, scalar or per neuron.
    n_steps, dt_ms
        Number of steps and step length (ms).
    offset_pA
        :math:`I_0`, pA.
    phase_rad
        :math:`\varphi`, radians.
    n, device, dtype
        As in :func:`constant_current`.

    Returns
    -------
    torch.Tensor
        Shape ``(n_steps, n)``, pA.
    """
    n_steps = _check_steps(n_steps)
    dt_ms = _check_dt(dt_ms)
    amp = _per_neuron(amplitude_pA, n, "amplitude_pA", device, dtype)
    m = amp.numel()
    freq = _per_neuron(frequency_hz, m, "frequency_hz", amp.device, amp.dtype)
    off = _per_neuron(offset_pA, m, "offset_pA", amp.device, amp.dtype)
    phase = _per_neuron(phase_rad, m, "phase_rad", amp.device, amp.dtype)
    t_s = _times_ms(n_steps, dt_ms, amp) / 1000.0
    return off + amp * torch.sin(2.0 * math.pi * freq * t_s + phase)


# --------------------------------------------------------------------------------------------
# explicit spike generators
# --------------------------------------------------------------------------------------------


def spike_times_to_raster(
    indices: TensorLike,
    times_ms: TensorLike,
    n: int,
    n_steps: int,
    dt_ms: float,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Explicit spikes ``(neuron, time)`` as a boolean raster (like Brian2's
    ``SpikeGeneratorGroup``).

    Spike :math:`(i, t)` lands in step :math:`k = \lfloor t / \Delta t + 10^{-3} \rfloor`, the
    step that contains it, with the same tiny shift as Brian2's ``SpikeGeneratorGroup`` (so that a
    time that is a multiple of ``dt`` in floating point is not pushed into the previous step, and
    both engines see the spike in the same step).

    Parameters
    ----------
    indices
        Neuron index of each spike, integers in ``[0, n)``.
    times_ms
        Time of each spike, ms, in ``[0, n_steps * dt_ms)``.
    n
        Number of neurons.
    n_steps, dt_ms
        Number of steps and step length (ms).
    device
        Of the output.

    Returns
    -------
    torch.Tensor
        Boolean raster, shape ``(n_steps, n)``.

    Raises
    ------
    ValueError
        For mismatched lengths, indices out of range, negative or non-finite times, times past
        the end, or two spikes of one neuron in the same step (Brian2 refuses these too, rather
        than silently merging them).
    """
    n_steps = _check_steps(n_steps)
    dt_ms = _check_dt(dt_ms)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    idx = torch.as_tensor(indices, device=device).reshape(-1)
    t = torch.as_tensor(times_ms, device=idx.device, dtype=torch.float64).reshape(-1)
    if idx.numel() != t.numel():
        raise ValueError(f"{idx.numel()} indices but {t.numel()} times")
    out = torch.zeros((n_steps, n), dtype=torch.bool, device=idx.device)
    if idx.numel() == 0:
        return out
    if torch.is_floating_point(idx):
        if not torch.equal(idx, idx.round()):
            raise ValueError("indices must be integers")
    idx = idx.long()
    if idx.min().item() < 0 or idx.max().item() >= n:
        raise ValueError(f"indices must lie in [0, {n}), got [{idx.min()}, {idx.max()}]")
    if not torch.isfinite(t).all():
        raise ValueError("times_ms must be finite")
    if t.min().item() < 0:
        raise ValueError(f"times_ms must be non-negative, got {t.min().item():g} ms")
    step = torch.floor(t / dt_ms + 1e-3).long()
    if step.max().item() >= n_steps:
        raise ValueError(
            f"spike at {t.max().item():g} ms falls after the end of the run "
            f"({n_steps} steps of {dt_ms:g} ms = {n_steps * dt_ms:g} ms)"
        )
    flat = step * n + idx
    if torch.unique(flat).numel() != flat.numel():
        raise ValueError("two spikes of the same neuron fall in the same time step; lower dt_ms")
    out.view(-1)[flat] = True
    return out
