"""Plots return Figures with the expected artists; save_figure writes PNGs atomically."""

from __future__ import annotations

import os

import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure

from neuro import plots
from neuro.records import SpikeRecord, StateRecord

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def record() -> SpikeRecord:
    rng = np.random.default_rng(0)
    n_spikes = 300
    trial = rng.integers(0, 2, n_spikes)
    neuron = rng.integers(0, 50, n_spikes)
    time = rng.uniform(0, 200, n_spikes)
    order = np.lexsort((time, trial))
    return SpikeRecord("exc", 50, 2, 200.0, 0.1, trial[order], neuron[order], time[order])


@pytest.fixture
def state() -> StateRecord:
    t = np.arange(0, 200, 0.5)
    values = -65.0 + 10.0 * np.sin(t[None, :, None] / 20.0 + np.arange(3)[None, None, :])
    return StateRecord("exc", "v", "mV", np.array([0, 4, 7]), t, np.repeat(values, 2, axis=0))


def n_points(fig: Figure) -> int:
    return sum(
        len(c.get_offsets()) for c in fig.axes[0].collections if isinstance(c, PathCollection)
    )


def test_raster_points_and_labels(record):
    fig = plots.raster(record, trial=1)
    assert isinstance(fig, Figure)
    assert n_points(fig) == int((record.trial == 1).sum())
    ax = fig.axes[0]
    assert "ms" in ax.get_xlabel() and "Neuron" in ax.get_ylabel()
    assert not ax.spines["top"].get_visible()


def test_raster_max_neurons_and_groups(record):
    fig = plots.raster(record, max_neurons=10)
    assert n_points(fig) == int(((record.trial == 0) & (record.neuron < 10)).sum())
    fig = plots.raster(record, groups={"exc": (0, 40), "inh": (40, 50)})
    sizes = [len(c.get_offsets()) for c in fig.axes[0].collections]
    t0 = record.trial == 0
    assert sizes == [
        int((t0 & (record.neuron < 40)).sum()),
        int((t0 & (record.neuron >= 40)).sum()),
    ]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["exc", "inh"]
    with pytest.raises(ValueError):
        plots.raster(record, trial=5)


def test_draws_into_given_axes(record):
    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    assert plots.raster(record, ax=ax2) is fig
    assert n_points(fig) == 0 and len(ax2.collections) == 1


def test_membrane_traces(state, record):
    fig = plots.membrane_traces(state, trial=1)
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and ax.get_ylabel() == "v (mV)" and "ms" in ax.get_xlabel()
    np.testing.assert_allclose(ax.lines[1].get_ydata(), state.values[1, :, 1])
    fig = plots.membrane_traces(state, neurons=[4], spikes=record)
    ax = fig.axes[0]
    vlines = [c for c in ax.collections if isinstance(c, LineCollection)]
    expected = int(((record.trial == 0) & (record.neuron == 4)).sum())
    assert len(ax.lines) == 1 and sum(len(c.get_segments()) for c in vlines) == expected
    with pytest.raises(ValueError, match="not recorded"):
        plots.membrane_traces(state, neurons=[1])


def test_histograms(record):
    fig = plots.rate_histogram(np.array([1.0, 2.0, np.nan, 5.0]), bins=4)
    assert "Hz" in fig.axes[0].get_xlabel() and len(fig.axes[0].patches) == 1
    fig = plots.isi_histogram(record, bins=10, log_y=True)
    ax = fig.axes[0]
    assert "ms" in ax.get_xlabel() and ax.get_yscale() == "log"


def test_fi_curve_plot():
    currents = np.linspace(0, 500, 6)
    fig = plots.fi_curve_plot(currents, {"torch": currents / 10, "brian2": currents / 10 + 1})
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["torch", "brian2"]
    assert "pA" in ax.get_xlabel() and "Hz" in ax.get_ylabel()
    with pytest.raises(ValueError, match="torch"):
        plots.fi_curve_plot(currents, {"torch": currents[:3]})


def test_population_rate_plot_overlay():
    t = np.arange(100.0)
    fig = plots.population_rate_plot(t, np.ones(100), label="exc")
    plots.population_rate_plot(t, 2 * np.ones(100), ax=fig.axes[0], label="inh")
    assert len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError):
        plots.population_rate_plot(t, np.ones(5))


def test_no_pyplot_figures_leak(record):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plots.raster(record)
    plots.fi_curve_plot([1.0], {"a": [2.0]})
    assert plt.get_fignums() == before


def test_save_figure_png_atomic(tmp_path, record):
    fig = plots.raster(record)
    path = plots.save_figure(fig, tmp_path / "sub" / "raster.png", dpi=50)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert os.listdir(path.parent) == ["raster.png"]
    # overwrite in place, still no temporary files left
    plots.save_figure(plots.rate_histogram([1.0, 2.0]), path, dpi=50)
    assert os.listdir(path.parent) == ["raster.png"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_save_figure_failure_keeps_old_file(tmp_path, record, monkeypatch):
    path = tmp_path / "f.png"
    path.write_bytes(b"old")
    fig = plots.raster(record)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", boom)
    with pytest.raises(RuntimeError):
        plots.save_figure(fig, path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.png"]
