"""Spike-train statistics on :class:`~neuro.records.SpikeRecord` or plain spike-time lists.

All functions are vectorised numpy over spikes (``bincount`` over flat group ids rather than
loops over spikes or neurons), so they scale to large populations. Times are in ms, rates in Hz.

Two spike inputs are accepted where it makes sense:

* a :class:`SpikeRecord` (all trials of a population), or
* *trains*: a sequence of 1-D arrays, the spike times (ms) of each neuron of a single trial.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

from neuro.records import SpikeRecord

__all__ = [
    "firing_rates",
    "rate_from_spike_times",
    "interspike_intervals",
    "isi_cv",
    "mean_isi_cv",
    "binned_counts",
    "fano_factor",
    "pairwise_correlation",
    "population_rate",
    "fi_curve",
]

Trains = Sequence[np.ndarray]
Spikes = SpikeRecord | Trains

# Bin edges and spike times are both multiples of dt computed in floating point; this relative
# slack puts a spike at exactly an edge into the bin that starts there.
_EDGE_EPS = 1e-9


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _window(record: SpikeRecord, t_start_ms: float, t_stop_ms: float | None) -> tuple[float, float]:
    t0 = float(t_start_ms)
    t1 = float(record.duration_ms) if t_stop_ms is None else float(t_stop_ms)
    if not (math.isfinite(t0) and math.isfinite(t1)) or t1 <= t0:
        raise ValueError(f"need t_start_ms < t_stop_ms, got [{t0}, {t1}]")
    return t0, t1


def _trains_to_events(trains: Trains) -> tuple[np.ndarray, np.ndarray, int]:
    """Trains of one trial as flat ``(neuron, time)`` arrays plus the neuron count."""
    arrays = [np.asarray(t, dtype=np.float64).reshape(-1) for t in trains]
    n = len(arrays)
    lengths = np.array([a.size for a in arrays], dtype=np.int64)
    neuron = np.repeat(np.arange(n, dtype=np.int64), lengths)
    time = np.concatenate(arrays) if n else np.zeros(0)
    return neuron, time, n


def _grouped_events(spikes: Spikes) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Flat ``(group, time)`` with ``group = trial * n + neuron``, and the output shape."""
    if isinstance(spikes, SpikeRecord):
        group = spikes.trial.astype(np.int64) * spikes.n_neurons + spikes.neuron.astype(np.int64)
        shape = (spikes.batch_size, spikes.n_neurons)
        return group, np.asarray(spikes.time_ms, dtype=np.float64), shape
    neuron, time, n = _trains_to_events(spikes)
    return neuron, time, (n,)


def _sorted_isis(group: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inter-spike intervals and the group each belongs to (consecutive spikes of a group)."""
    order = np.lexsort((time, group))
    g, t = group[order], time[order]
    same = g[1:] == g[:-1]
    return g[1:][same], np.diff(t)[same]


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


# --------------------------------------------------------------------------------------------
# rates
# --------------------------------------------------------------------------------------------


def firing_rates(
    record: SpikeRecord, t_start_ms: float = 0.0, t_stop_ms: float | None = None
) -> np.ndarray:
    r"""Mean firing rate of every neuron in every trial.

    .. math:: r_{b,i} = \frac{N_{b,i}[t_0, t_1)}{(t_1 - t_0) / 1000}

    Parameters
    ----------
    record
        Spikes of one population.
    t_start_ms, t_stop_ms
        Counting window :math:`[t_0, t_1)`, ms; default the whole run (discard a transient by
        raising ``t_start_ms``).

    Returns
    -------
    np.ndarray
        Rates in Hz, shape ``(batch_size, n_neurons)``.
    """
    t0, t1 = _window(record, t_start_ms, t_stop_ms)
    keep = (record.time_ms >= t0) & (record.time_ms < t1)
    flat = record.trial[keep].astype(np.int64) * record.n_neurons + record.neuron[keep]
    counts = np.bincount(flat, minlength=record.batch_size * record.n_neurons)
    return counts.reshape(record.batch_size, record.n_neurons) / ((t1 - t0) / 1000.0)


def rate_from_spike_times(trains: Trains, t_start_ms: float, t_stop_ms: float) -> np.ndarray:
    r"""Rate of each train over :math:`[t_0, t_1)`: :math:`r_i = N_i / ((t_1 - t_0)/1000)`.

    Parameters
    ----------
    trains
        Spike times (ms) of each neuron.
    t_start_ms, t_stop_ms
        Window, ms.

    Returns
    -------
    np.ndarray
        Rates in Hz, shape ``(len(trains),)``.
    """
    t0, t1 = float(t_start_ms), float(t_stop_ms)
    if t1 <= t0:
        raise ValueError(f"need t_start_ms < t_stop_ms, got [{t0}, {t1}]")
    neuron, time, n = _trains_to_events(trains)
    keep = (time >= t0) & (time < t1)
    return np.bincount(neuron[keep], minlength=n) / ((t1 - t0) / 1000.0)


# --------------------------------------------------------------------------------------------
# regularity
# --------------------------------------------------------------------------------------------


def interspike_intervals(spikes: Spikes) -> np.ndarray:
    r"""All inter-spike intervals (ms), pooled over neurons (and trials), as a 1-D array.

    The ISIs of neuron :math:`i` are :math:`\tau_k = t_{k+1} - t_k` of its sorted spike times.
    """
    _, isi = _sorted_isis(*_grouped_events(spikes)[:2])
    return isi


def isi_cv(spikes: Spikes, min_spikes: int = 3) -> np.ndarray:
    r"""Coefficient of variation of the inter-spike intervals of every neuron.

    .. math:: \mathrm{CV}_i = \frac{\sigma(\tau)}{\langle\tau\rangle}, \qquad
              \sigma^2(\tau) = \frac{1}{K} \sum_{k=1}^{K} (\tau_k - \langle\tau\rangle)^2

    over the :math:`K` ISIs of neuron :math:`i` (population variance, as in Softky & Koch 1993
    and ``elephant.statistics.cv``). A regular train has CV 0, a Poisson train CV 1.

    Parameters
    ----------
    spikes
        A :class:`SpikeRecord` or the trains of one trial.
    min_spikes
        Neurons with fewer spikes get NaN (default 3, i.e. at least two ISIs).

    Returns
    -------
    np.ndarray
        Shape ``(batch_size, n_neurons)`` for a record, ``(n,)`` for trains; NaN where
        undefined.
    """
    if min_spikes < 2:
        raise ValueError(f"min_spikes must be at least 2, got {min_spikes}")
    group, time, shape = _grouped_events(spikes)
    n_groups = math.prod(shape)
    g, isi = _sorted_isis(group, time)
    k = np.bincount(g, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(g, weights=isi, minlength=n_groups) / k
        # Two-pass variance: exact zero for regular trains (no E[x^2] - E[x]^2 cancellation).
        var = np.bincount(g, weights=(isi - mean[g]) ** 2, minlength=n_groups) / k
        cv = np.sqrt(var) / mean
    cv[k < min_spikes - 1] = np.nan
    return cv.reshape(shape)


def mean_isi_cv(spikes: Spikes, min_spikes: int = 3) -> float:
    """Population mean of :func:`isi_cv`, ignoring NaN (neurons with too few spikes).

    Returns NaN, without a warning, when no neuron has ``min_spikes`` spikes.
    """
    cv = isi_cv(spikes, min_spikes)
    valid = np.isfinite(cv)
    return float(cv[valid].mean()) if valid.any() else math.nan


# --------------------------------------------------------------------------------------------
# counts, variability, correlations
# --------------------------------------------------------------------------------------------


def binned_counts(
    record: SpikeRecord,
    bin_ms: float,
    t_start_ms: float = 0.0,
    t_stop_ms: float | None = None,
) -> np.ndarray:
    r"""Spike counts in consecutive bins :math:`[t_0 + j w, t_0 + (j+1) w)`.

    Only whole bins are used: :math:`J = \lfloor (t_1 - t_0) / w \rfloor`; spikes in a trailing
    partial bin are dropped.

    Parameters
    ----------
    record
        Spikes of one population.
    bin_ms
        Bin width :math:`w`, ms.
    t_start_ms, t_stop_ms
        Window, ms (default: the whole run).

    Returns
    -------
    np.ndarray
        Integer counts, shape ``(batch_size, n_neurons, J)``.
    """
    t0, t1 = _window(record, t_start_ms, t_stop_ms)
    bin_ms = float(bin_ms)
    if not math.isfinite(bin_ms) or bin_ms <= 0:
        raise ValueError(f"bin_ms must be positive, got {bin_ms}")
    n_bins = int(math.floor((t1 - t0) / bin_ms + _EDGE_EPS))
    if n_bins < 1:
        raise ValueError(f"bin_ms = {bin_ms} is longer than the window [{t0}, {t1}] ms")
    j = np.floor((record.time_ms - t0) / bin_ms + _EDGE_EPS).astype(np.int64)
    keep = (j >= 0) & (j < n_bins)
    flat = (
        record.trial[keep].astype(np.int64) * record.n_neurons + record.neuron[keep]
    ) * n_bins + j[keep]
    counts = np.bincount(flat, minlength=record.batch_size * record.n_neurons * n_bins)
    return counts.reshape(record.batch_size, record.n_neurons, n_bins)


def fano_factor(
    record: SpikeRecord,
    window_ms: float,
    t_start_ms: float = 0.0,
    t_stop_ms: float | None = None,
) -> np.ndarray:
    r"""Fano factor of each neuron's spike count across consecutive windows.

    .. math:: F_i = \frac{\operatorname{Var}[N_i]}{\operatorname{E}[N_i]}

    with the unbiased variance (``ddof=1``) over the windows of :func:`binned_counts`. A Poisson
    process has :math:`F = 1`, a regular train :math:`F \approx 0`.

    Returns
    -------
    np.ndarray
        Shape ``(batch_size, n_neurons)``; NaN for silent neurons.

    Raises
    ------
    ValueError
        If fewer than two windows fit in the run.
    """
    counts = binned_counts(record, window_ms, t_start_ms, t_stop_ms).astype(np.float64)
    if counts.shape[-1] < 2:
        raise ValueError("the Fano factor needs at least two windows; shorten window_ms")
    mean = counts.mean(axis=-1)
    var = counts.var(axis=-1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, var / mean, np.nan)


def pairwise_correlation(
    record: SpikeRecord,
    bin_ms: float,
    n_pairs: int | None = None,
    rng: np.random.Generator | int | None = None,
    *,
    trial: int = 0,
    t_start_ms: float = 0.0,
    t_stop_ms: float | None = None,
) -> float:
    r"""Mean Pearson correlation of binned spike counts over pairs of neurons.

    With :math:`z_i` the counts of neuron :math:`i` standardised over the :math:`J` bins
    (zero mean, unit population variance), :math:`r_{ij} = \frac{1}{J} z_i \cdot z_j`.
    Neurons with constant counts (e.g. silent) have no defined correlation and are left out.

    * ``n_pairs=None``: the exact mean over all :math:`M(M-1)/2` pairs of the :math:`M` active
      neurons, in :math:`O(MJ)` memory and time through

      .. math:: \sum_{i<j} r_{ij} = \frac{1}{2}\Big(\frac{1}{J}\big\|\sum_i z_i\big\|^2
                - M\Big).

    * ``n_pairs=K``: the mean over :math:`K` pairs drawn uniformly (with replacement) from the
      distinct ordered pairs, as in the usual sampled estimate for large networks.

    Parameters
    ----------
    record
        Spikes of one population.
    bin_ms
        Bin width, ms (correlations grow with it; 5-10 ms is common).
    n_pairs
        Number of sampled pairs, or ``None`` for all pairs.
    rng
        Generator (or seed) for the pair sampling.
    trial
        Trial to analyse.
    t_start_ms, t_stop_ms
        Window, ms.

    Returns
    -------
    float
        Mean correlation coefficient; NaN with fewer than two active neurons.
    """
    if not 0 <= trial < record.batch_size:
        raise ValueError(f"trial {trial} out of range for batch_size {record.batch_size}")
    counts = binned_counts(record, bin_ms, t_start_ms, t_stop_ms)[trial].astype(np.float64)
    std = counts.std(axis=1)
    active = std > 0
    m = int(active.sum())
    if m < 2:
        return math.nan
    z = (counts[active] - counts[active].mean(axis=1, keepdims=True)) / std[active, None]
    n_bins = z.shape[1]
    if n_pairs is None:
        total = z.sum(axis=0)
        pair_sum = 0.5 * (total @ total / n_bins - m)
        return float(pair_sum / (m * (m - 1) / 2))
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be positive, got {n_pairs}")
    gen = _as_rng(rng)
    i = gen.integers(0, m, size=n_pairs)
    j = (i + gen.integers(1, m, size=n_pairs)) % m  # uniform over j != i
    return float(np.einsum("pk,pk->p", z[i], z[j]).mean() / n_bins)


# --------------------------------------------------------------------------------------------
# population activity
# --------------------------------------------------------------------------------------------


def population_rate(
    record: SpikeRecord,
    bin_ms: float,
    *,
    smooth_ms: float | None = None,
    trial: int | None = 0,
    t_start_ms: float = 0.0,
    t_stop_ms: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Population firing rate: spikes of all neurons per bin, per neuron, per second.

    .. math:: A(t_j) = \frac{\sum_i N_i[t_j, t_j + w)}{n \, w / 1000}

    optionally smoothed by a Gaussian kernel of standard deviation ``smooth_ms`` (edges
    reflected, so the mean rate is preserved).

    Parameters
    ----------
    record
        Spikes of one population.
    bin_ms
        Bin width :math:`w`, ms.
    smooth_ms
        Standard deviation of the Gaussian smoothing kernel, ms; ``None`` for plain bins.
    trial
        Trial to analyse, or ``None`` to average over all trials.
    t_start_ms, t_stop_ms
        Window, ms.

    Returns
    -------
    times_ms, rate_hz : np.ndarray
        Bin centres (ms) and rate (Hz), both shape ``(J,)``.
    """
    counts = binned_counts(record, bin_ms, t_start_ms, t_stop_ms).sum(axis=1)  # (batch, J)
    if trial is None:
        per_bin = counts.mean(axis=0)
    elif 0 <= trial < record.batch_size:
        per_bin = counts[trial].astype(np.float64)
    else:
        raise ValueError(f"trial {trial} out of range for batch_size {record.batch_size}")
    rate = per_bin / (record.n_neurons * float(bin_ms) / 1000.0)
    if smooth_ms is not None:
        if smooth_ms <= 0:
            raise ValueError(f"smooth_ms must be positive, got {smooth_ms}")
        rate = gaussian_filter1d(rate, sigma=float(smooth_ms) / float(bin_ms), mode="reflect")
    times = float(t_start_ms) + (np.arange(rate.size) + 0.5) * float(bin_ms)
    return times, rate


def fi_curve(
    currents_pA: Sequence[float] | np.ndarray,
    simulate: Callable[[float], SpikeRecord],
    *,
    t_start_ms: float = 0.0,
) -> np.ndarray:
    r"""Frequency-current curve: the mean rate for each injected current.

    For each :math:`I` in ``currents_pA`` calls ``simulate(I)`` and averages
    :func:`firing_rates` over neurons and trials, counting from ``t_start_ms`` (to discard the
    transient).

    Parameters
    ----------
    currents_pA
        Currents to test, pA.
    simulate
        ``simulate(current_pA) -> SpikeRecord``, e.g.
        ``lambda i: engine.run(...).spikes["exc"]``.
    t_start_ms
        Start of the counting window, ms.

    Returns
    -------
    np.ndarray
        Rates in Hz, shape ``(len(currents_pA),)``.
    """
    rates = []
    for current in np.asarray(currents_pA, dtype=np.float64).reshape(-1):
        record = simulate(float(current))
        if not isinstance(record, SpikeRecord):
            raise TypeError(f"simulate must return a SpikeRecord, got {type(record).__name__}")
        rates.append(firing_rates(record, t_start_ms).mean())
    return np.asarray(rates, dtype=np.float64)
