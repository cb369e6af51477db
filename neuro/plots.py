"""Figures of simulation records, object-oriented matplotlib only.

No function touches ``matplotlib.pyplot`` or its global state: each either draws into the ``ax``
it is given or creates a fresh :class:`matplotlib.figure.Figure`, and returns the figure. That
keeps plotting thread-safe, backend-independent and free of leaked figures in long runs.

Defaults aim at publication figures: labelled axes with units, no top/right spines, no grid,
small raster markers (rasterised, so vector outputs stay small).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from neuro.analysis import interspike_intervals
from neuro.records import SpikeRecord, StateRecord

__all__ = [
    "raster",
    "membrane_traces",
    "rate_histogram",
    "fi_curve_plot",
    "population_rate_plot",
    "isi_histogram",
    "save_figure",
]

_FIGSIZE = (5.0, 3.2)


def _axes(ax: Axes | None, figsize: tuple[float, float] = _FIGSIZE) -> tuple[Figure, Axes]:
    """The given axes and its (root) figure, or a fresh figure with one axes."""
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    return ax.get_figure(root=True), ax


def _despine(ax: Axes) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


def raster(
    record: SpikeRecord,
    trial: int = 0,
    max_neurons: int | None = None,
    ax: Axes | None = None,
    *,
    groups: Mapping[str, tuple[int, int]] | None = None,
    t_range_ms: tuple[float, float] | None = None,
    marker_size: float = 2.0,
    color: str = "k",
) -> Figure:
    """Spike raster: one dot per spike, time (ms) against neuron index.

    Parameters
    ----------
    record
        Spikes of one population.
    trial
        Trial (batch index) to show.
    max_neurons
        Show only neurons ``0 .. max_neurons-1`` (readable rasters of big populations).
    ax
        Axes to draw into; a new figure if ``None``.
    groups
        Optional colour split by index range, e.g. ``{"exc": (0, 800), "inh": (800, 1000)}``
        (half-open ranges); each group gets its own colour and legend entry. Spikes outside
        every range are not drawn.
    t_range_ms
        Time limits of the x axis, ms (default the whole run).
    marker_size
        Marker area in points^2.
    color
        Colour when ``groups`` is not given.

    Returns
    -------
    Figure
    """
    if not 0 <= trial < record.batch_size:
        raise ValueError(f"trial {trial} out of range for batch_size {record.batch_size}")
    fig, ax = _axes(ax)
    keep = record.trial == trial
    if max_neurons is not None:
        keep &= record.neuron < max_neurons
    t, i = record.time_ms[keep], record.neuron[keep]
    style = dict(s=marker_size, marker=".", linewidths=0, rasterized=True)
    if groups is None:
        ax.scatter(t, i, c=color, **style)
    else:
        for k, (label, (lo, hi)) in enumerate(groups.items()):
            sel = (i >= lo) & (i < hi)
            ax.scatter(t[sel], i[sel], color=f"C{k}", label=label, **style)
        # Above the axes: a raster has no empty corner to hold a legend.
        ax.legend(
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            ncols=len(groups),
            frameon=False,
            markerscale=3.0,
            borderaxespad=0.0,
            handletextpad=0.1,
        )
    n_shown = record.n_neurons if max_neurons is None else min(max_neurons, record.n_neurons)
    ax.set_xlim(*(t_range_ms if t_range_ms is not None else (0.0, record.duration_ms)))
    ax.set_ylim(-0.5, n_shown - 0.5)
    ax.set_xlabel("Time (ms)")
    ax.set_ylabel("Neuron index")
    ax.set_title(record.population, loc="left", fontsize="medium")
    _despine(ax)
    return fig


def membrane_traces(
    state: StateRecord,
    trial: int = 0,
    neurons: Sequence[int] | None = None,
    ax: Axes | None = None,
    *,
    spikes: SpikeRecord | None = None,
    spike_peak: float = 20.0,
    max_traces: int = 5,
) -> Figure:
    """Sampled state variable (e.g. membrane potential, mV) against time (ms).

    Parameters
    ----------
    state
        A :class:`StateRecord` (its ``unit`` labels the y axis).
    trial
        Trial to show.
    neurons
        Neuron *ids* (as in ``state.neurons``) to plot; default the first ``max_traces``
        recorded.
    ax
        Axes to draw into; a new figure if ``None``.
    spikes
        If given, each spike of a plotted neuron is drawn as a vertical line from the trace up
        to ``spike_peak`` (in the unit of the record): integrate-and-fire models reset
        without a spike shape, so the trace alone hides them.
    spike_peak
        Top of the pasted spikes, in ``state.unit``.
    max_traces
        Default number of traces.

    Returns
    -------
    Figure
    """
    if not 0 <= trial < state.values.shape[0]:
        raise ValueError(f"trial {trial} out of range for {state.values.shape[0]} trials")
    recorded = np.asarray(state.neurons)
    ids = recorded[:max_traces] if neurons is None else np.asarray(neurons)
    missing = np.setdiff1d(ids, recorded)
    if missing.size:
        raise ValueError(f"neurons {missing.tolist()} were not recorded")
    fig, ax = _axes(ax)
    column = {int(n): c for c, n in enumerate(recorded)}
    for k, nid in enumerate(ids):
        v = state.values[trial, :, column[int(nid)]]
        colour = f"C{k % 10}"
        ax.plot(state.times_ms, v, color=colour, lw=1.0, label=f"neuron {int(nid)}")
        if spikes is not None:
            sel = (spikes.trial == trial) & (spikes.neuron == nid)
            ts = spikes.time_ms[sel]
            if ts.size:
                ax.vlines(ts, np.interp(ts, state.times_ms, v), spike_peak, color=colour, lw=1.0)
    ax.set_xlabel("Time (ms)")
    ax.set_ylabel(f"{state.variable} ({state.unit})" if state.unit else state.variable)
    if len(ids) > 1:
        ax.legend(frameon=False, fontsize="small")
    _despine(ax)
    return fig


def rate_histogram(
    rates_hz: np.ndarray,
    bins: int | Sequence[float] = 30,
    ax: Axes | None = None,
    *,
    label: str | None = None,
) -> Figure:
    """Histogram of firing rates (Hz) across neurons (any shape, flattened; NaN ignored).

    Returns
    -------
    Figure
    """
    fig, ax = _axes(ax)
    r = np.asarray(rates_hz, dtype=np.float64).reshape(-1)
    r = r[np.isfinite(r)]
    ax.hist(r, bins=bins, histtype="stepfilled", alpha=0.7, label=label)
    ax.set_xlabel("Firing rate (Hz)")
    ax.set_ylabel("Neurons")
    if label is not None:
        ax.legend(frameon=False)
    _despine(ax)
    return fig


def fi_curve_plot(
    currents_pA: np.ndarray,
    rates_by_label: Mapping[str, np.ndarray],
    ax: Axes | None = None,
    *,
    markers: bool = True,
) -> Figure:
    """Firing rate (Hz) against injected current (pA), several models/engines overlaid.

    Parameters
    ----------
    currents_pA
        Currents, pA, shape ``(K,)``.
    rates_by_label
        ``{label: rates}``, each rates array of shape ``(K,)`` in Hz (e.g. ``{"torch": ...,
        "brian2": ..., "theory": ...}``).
    ax
        Axes to draw into; a new figure if ``None``.
    markers
        Mark the data points (useful to tell simulated from analytic curves).

    Returns
    -------
    Figure
    """
    currents = np.asarray(currents_pA, dtype=np.float64).reshape(-1)
    fig, ax = _axes(ax)
    for k, (label, rates) in enumerate(rates_by_label.items()):
        r = np.asarray(rates, dtype=np.float64).reshape(-1)
        if r.shape != currents.shape:
            raise ValueError(f"rates for {label!r} have {r.size} values, currents {currents.size}")
        ax.plot(
            currents, r, marker="o" if markers else None, ms=3, lw=1.2, color=f"C{k}", label=label
        )
    ax.set_xlabel("Input current (pA)")
    ax.set_ylabel("Firing rate (Hz)")
    if rates_by_label:
        ax.legend(frameon=False)
    _despine(ax)
    return fig


def population_rate_plot(
    times_ms: np.ndarray,
    rate_hz: np.ndarray,
    ax: Axes | None = None,
    *,
    label: str | None = None,
) -> Figure:
    """Population rate (Hz) against time (ms), e.g. from :func:`neuro.analysis.population_rate`
    or ``SimulationResult.population_rates_hz[name][trial]``. Call again with the same ``ax`` to
    overlay populations (pass ``label`` for a legend).

    Returns
    -------
    Figure
    """
    t = np.asarray(times_ms, dtype=np.float64).reshape(-1)
    r = np.asarray(rate_hz, dtype=np.float64).reshape(-1)
    if t.shape != r.shape:
        raise ValueError(f"times ({t.size}) and rates ({r.size}) differ in length")
    fig, ax = _axes(ax)
    ax.plot(t, r, lw=1.0, label=label)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("Time (ms)")
    ax.set_ylabel("Population rate (Hz)")
    if label is not None:
        ax.legend(frameon=False)
    _despine(ax)
    return fig


def isi_histogram(
    spikes: SpikeRecord | Sequence[np.ndarray],
    bins: int | Sequence[float] = 50,
    ax: Axes | None = None,
    *,
    log_y: bool = False,
) -> Figure:
    """Histogram of inter-spike intervals (ms), pooled over neurons and trials.

    Returns
    -------
    Figure
    """
    fig, ax = _axes(ax)
    isi = interspike_intervals(spikes)
    ax.hist(isi, bins=bins, histtype="stepfilled", alpha=0.7)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("Inter-spike interval (ms)")
    ax.set_ylabel("Count")
    _despine(ax)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 150) -> Path:
    """Write ``fig`` atomically: to a temporary file in the target directory, then
    :func:`os.replace` (so readers never see a half-written image).

    The format follows the suffix (``.png``, ``.pdf``, ``.svg``, ...); PNG when there is none.
    Missing parent directories are created.

    Returns
    -------
    Path
        The written path.
    """
    path = Path(path)
    fmt = path.suffix[1:].lower() or "png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=dpi)
        # mkstemp creates the file 0600; give it the permissions an ordinary write would.
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
