"""Spike-train statistics against hand-computed cases and known Poisson values."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuro.analysis import (
    binned_counts,
    fano_factor,
    fi_curve,
    firing_rates,
    interspike_intervals,
    isi_cv,
    mean_isi_cv,
    pairwise_correlation,
    population_rate,
    rate_from_spike_times,
)
from neuro.encoders import poisson_spikes
from neuro.records import SimulationResult, SpikeRecord, StateRecord


def record_from_trains(
    trains_by_trial: list[list[np.ndarray]], duration_ms: float, dt_ms: float = 0.1
) -> SpikeRecord:
    """A SpikeRecord from per-trial lists of per-neuron spike times."""
    trial, neuron, time = [], [], []
    for b, trains in enumerate(trains_by_trial):
        for i, t in enumerate(trains):
            t = np.asarray(t, dtype=np.float64)
            trial.append(np.full(t.size, b))
            neuron.append(np.full(t.size, i))
            time.append(t)
    trial, neuron, time = (np.concatenate(a) for a in (trial, neuron, time))
    order = np.lexsort((time, trial))
    return SpikeRecord(
        population="test",
        n_neurons=len(trains_by_trial[0]),
        batch_size=len(trains_by_trial),
        duration_ms=duration_ms,
        dt_ms=dt_ms,
        trial=trial[order].astype(np.int64),
        neuron=neuron[order].astype(np.int64),
        time_ms=time[order],
    )


def record_from_raster(raster: torch.Tensor, dt_ms: float, population: str = "p") -> SpikeRecord:
    """A SpikeRecord from a boolean raster ``(n_steps, batch, n)`` (what the torch engine sees)."""
    n_steps, batch, n = raster.shape
    step, trial, neuron = np.nonzero(raster.numpy())
    order = np.lexsort((step, trial))
    return SpikeRecord(
        population, n, batch, n_steps * dt_ms, dt_ms,
        trial[order], neuron[order], step[order] * dt_ms,
    )  # fmt: skip


@pytest.fixture
def poisson_record() -> SpikeRecord:
    g = torch.Generator().manual_seed(11)
    raster = poisson_spikes(torch.full((1, 200), 20.0), 10_000, 1.0, g)
    return record_from_raster(raster, 1.0)


# ---------------------------------------------------------------------------------------- rates


def test_firing_rates_hand_built():
    rec = record_from_trains(
        [[[1.0, 2.0, 3.0], [], [400.0]], [[5.0], [10.0, 20.0, 30.0, 40.0], []]], 500.0
    )
    expected = np.array([[6.0, 0.0, 2.0], [2.0, 8.0, 0.0]])
    np.testing.assert_allclose(firing_rates(rec), expected)
    np.testing.assert_allclose(rec.rates_hz(), expected)  # agrees with the record's own method
    np.testing.assert_allclose(firing_rates(rec, 0.0, 100.0)[0], [30.0, 0.0, 0.0])
    with pytest.raises(ValueError):
        firing_rates(rec, 100.0, 50.0)


def test_rate_from_spike_times():
    rates = rate_from_spike_times([np.array([1.0, 2.0, 600.0]), np.array([])], 0.0, 500.0)
    np.testing.assert_allclose(rates, [4.0, 0.0])


# ------------------------------------------------------------------------------------ ISI, CV


def test_regular_train_cv_zero():
    trains = [np.arange(0.0, 1000.0, 10.0), np.arange(5.0, 1000.0, 25.0)]
    assert np.all(isi_cv(trains) == 0.0)
    # a dt grid in floating point: still zero up to rounding
    rec = record_from_trains([[np.arange(1000) * 0.1 * 7]], 1000.0)
    assert isi_cv(rec)[0, 0] == pytest.approx(0.0, abs=1e-9)


def test_cv_hand_computed_and_nan_for_few_spikes():
    trains = [
        np.array([0.0, 1.0, 4.0]),
        np.array([3.0, 7.0]),
        np.array([]),
        np.array([9.0, 0.0, 1.0]),
    ]
    cv = isi_cv(trains)
    assert cv[0] == pytest.approx(0.5)  # ISIs 1, 3: mean 2, std 1
    assert math.isnan(cv[1]) and math.isnan(cv[2])
    assert cv[3] == pytest.approx(0.5 * 7 / 4.5)  # unsorted input is sorted: ISIs 1, 8
    assert mean_isi_cv(trains) == pytest.approx((0.5 + 3.5 / 4.5) / 2)
    assert math.isnan(mean_isi_cv([np.array([1.0])]))
    np.testing.assert_allclose(interspike_intervals(trains), [1.0, 3.0, 4.0, 1.0, 8.0])


def test_cv_record_matches_trains_per_trial():
    rng = np.random.default_rng(0)
    trains = [
        [np.sort(rng.uniform(0, 100, rng.integers(0, 12))) for _ in range(6)] for _ in range(3)
    ]
    rec = record_from_trains(trains, 100.0)
    cv = isi_cv(rec)
    assert cv.shape == (3, 6)
    for b in range(3):
        np.testing.assert_allclose(cv[b], isi_cv(trains[b]), equal_nan=True)
        np.testing.assert_allclose(cv[b], isi_cv(rec.trains(b)), equal_nan=True)


def test_poisson_cv_near_one():
    rng = np.random.default_rng(1)
    trains = [np.cumsum(rng.exponential(10.0, size=200)) for _ in range(200)]
    assert mean_isi_cv(trains) == pytest.approx(1.0, abs=0.03)


# ------------------------------------------------------------------------------- counts, Fano


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 4), st.integers(0, 999)), max_size=80),
    st.sampled_from([0.1, 0.5, 1.0, 2.5, 7.0, 33.3]),
)
def test_binned_counts_sum_to_spikes(events, bin_ms):
    dt = 0.1
    events = sorted(set(events))
    trains = [
        [[s * dt for (b, i, s) in events if b == bb and i == ii] for ii in range(5)]
        for bb in (0, 1)
    ]
    rec = record_from_trains(trains, 100.0, dt)
    counts = binned_counts(rec, bin_ms)
    n_bins = counts.shape[-1]
    assert counts.shape == (2, 5, n_bins) and n_bins == int(math.floor(100.0 / bin_ms + 1e-9))
    covered = n_bins * bin_ms
    in_range = sum(1 for (_, _, s) in events if s * dt < covered - 1e-9)
    assert counts.sum() == in_range
    if n_bins * bin_ms == pytest.approx(100.0):
        np.testing.assert_array_equal(counts.sum(-1), rec.counts())


def test_binned_counts_edges():
    rec = record_from_trains([[[0.0, 0.3, 0.9999, 1.0]]], 2.0)
    np.testing.assert_array_equal(
        binned_counts(rec, 0.1)[0, 0, :11], [1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1]
    )


def test_fano_poisson_near_one(poisson_record):
    f = fano_factor(poisson_record, window_ms=100.0)
    assert f.shape == (1, 200)
    assert np.nanmean(f) == pytest.approx(1.0, abs=0.07)  # Bernoulli: 1 - p = 0.98


def test_fano_regular_zero_and_silent_nan():
    rec = record_from_trains([[np.arange(0.0, 1000.0, 10.0), np.array([])]], 1000.0)
    f = fano_factor(rec, window_ms=50.0)
    assert f[0, 0] == pytest.approx(0.0) and math.isnan(f[0, 1])
    with pytest.raises(ValueError, match="two windows"):
        fano_factor(rec, window_ms=600.0)


# -------------------------------------------------------------------------------- correlation


def test_identical_trains_correlation_one():
    rng = np.random.default_rng(2)
    train = np.sort(rng.uniform(0, 1000, 100))
    rec = record_from_trains([[train] * 10], 1000.0)
    assert pairwise_correlation(rec, bin_ms=5.0) == pytest.approx(1.0)
    assert pairwise_correlation(rec, bin_ms=5.0, n_pairs=50, rng=0) == pytest.approx(1.0)


def test_independent_trains_correlation_near_zero(poisson_record):
    assert abs(pairwise_correlation(poisson_record, bin_ms=10.0)) < 0.01
    assert abs(pairwise_correlation(poisson_record, bin_ms=10.0, n_pairs=2000, rng=3)) < 0.02


def test_all_pairs_formula_matches_corrcoef():
    rng = np.random.default_rng(4)
    trains = [np.sort(rng.uniform(0, 200, rng.integers(5, 40))) for _ in range(12)]
    trains[3] = np.array([])  # silent: excluded
    rec = record_from_trains([trains], 200.0)
    counts = binned_counts(rec, 10.0)[0]
    active = counts.std(axis=1) > 0
    r = np.corrcoef(counts[active])
    expected = r[np.triu_indices_from(r, k=1)].mean()
    assert pairwise_correlation(rec, 10.0) == pytest.approx(expected)
    assert math.isnan(
        pairwise_correlation(record_from_trains([[np.array([1.0]), []]], 200.0), 10.0)
    )


# ---------------------------------------------------------------------------- population rate


def test_population_rate_hand_built():
    rec = record_from_trains(
        [[[1.0, 12.0], [2.0, 3.0, 25.0]], [[1.0], []]], duration_ms=30.0
    )  # 2 neurons, bins of 10 ms
    t, r = population_rate(rec, 10.0)
    np.testing.assert_allclose(t, [5.0, 15.0, 25.0])
    np.testing.assert_allclose(r, np.array([3, 1, 1]) / (2 * 0.01))
    _, r_avg = population_rate(rec, 10.0, trial=None)
    np.testing.assert_allclose(r_avg, np.array([2.0, 0.5, 0.5]) / (2 * 0.01))


def test_population_rate_mean_and_smoothing(poisson_record):
    _, r = population_rate(poisson_record, 5.0)
    assert r.mean() == pytest.approx(firing_rates(poisson_record).mean())
    _, rs = population_rate(poisson_record, 5.0, smooth_ms=20.0)
    assert rs.mean() == pytest.approx(r.mean(), rel=1e-2)
    assert rs.std() < r.std()


# ------------------------------------------------------------------------------------ fi curve


def test_fi_curve_with_fake_simulator():
    def simulate(current_pA: float) -> SpikeRecord:
        rate = max(current_pA, 0.0) / 10.0  # Hz
        times = np.arange(0.0, 1000.0, 1000.0 / rate) if rate > 0 else np.array([])
        return record_from_trains([[times, times]], 1000.0)

    rates = fi_curve([0.0, 100.0, 200.0, 400.0], simulate)
    np.testing.assert_allclose(rates, [0.0, 10.0, 20.0, 40.0])
    with pytest.raises(TypeError):
        fi_curve([1.0], lambda i: 3.0)


# ------------------------------------------------------------------------------- neo export


def _small_result() -> SimulationResult:
    sp = record_from_trains([[[1.0, 5.0], [], [3.0]], [[2.0], [4.0, 50.0], []]], 100.0)
    st_ = StateRecord(
        "test", "v", "mV", np.array([0, 2]), np.arange(10) * 0.5, np.zeros((2, 10, 2)) - 65.0
    )
    return SimulationResult(
        "torch", "cpu", 0.1, 100.0, {"test": sp}, {"test.v": st_}, {"test": np.zeros((2, 1000))}
    )


def test_to_neo_without_neo_raises_clear_error(monkeypatch):
    from neuro.neo_export import to_neo

    monkeypatch.setitem(sys.modules, "neo", None)
    with pytest.raises(ImportError, match=r"pip install spikebridge\[neo\]"):
        to_neo(_small_result())


def test_to_neo():
    neo = pytest.importorskip("neo")
    pq = pytest.importorskip("quantities")
    from neuro.neo_export import to_neo

    block = to_neo(_small_result())
    assert isinstance(block, neo.Block) and len(block.segments) == 2
    seg = block.segments[1]
    assert len(seg.spiketrains) == 3
    st_ = seg.spiketrains[1]
    np.testing.assert_allclose(st_.rescale(pq.ms).magnitude, [4.0, 50.0])
    assert st_.annotations["neuron"] == 1 and float(st_.t_stop.rescale(pq.ms)) == 100.0
    v = seg.analogsignals[0]
    assert v.shape == (10, 2) and v.units == pq.mV
    assert float(v.sampling_period.rescale(pq.ms)) == pytest.approx(0.5)
    np.testing.assert_array_equal(v.array_annotations["neuron"], [0, 2])
    rate = seg.analogsignals[1]
    assert rate.units == pq.Hz and rate.shape == (1000, 1)
    assert len(block.groups) == 1 and len(block.groups[0].spiketrains) == 6
    assert block.annotations["engine"] == "torch"
