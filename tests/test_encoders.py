"""Encoders: Poisson/rate/latency spike codes, injected currents, explicit spike rasters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuro.encoders import (
    constant_current,
    latency_code,
    latency_spike_times,
    poisson_spikes,
    ramp_current,
    rate_code,
    sinusoidal_current,
    spike_times_to_raster,
    step_current,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -------------------------------------------------------------------------------------- poisson


def test_poisson_shape_dtype():
    s = poisson_spikes(torch.full((3, 4), 10.0), n_steps=7, dt_ms=1.0, generator=gen())
    assert s.shape == (7, 3, 4) and s.dtype == torch.bool


def test_poisson_empirical_rate_within_few_sigma():
    rate, n, n_steps, dt = 50.0, 2000, 1000, 0.1
    s = poisson_spikes(torch.full((n,), rate), n_steps, dt, gen(1))
    p = rate * dt / 1000.0
    expected = n * n_steps * p
    sigma = math.sqrt(n * n_steps * p * (1 - p))
    assert abs(s.sum().item() - expected) < 5 * sigma


def test_poisson_seed_determinism():
    rates = torch.linspace(0, 100, 50)
    a = poisson_spikes(rates, 200, 1.0, gen(7))
    b = poisson_spikes(rates, 200, 1.0, gen(7))
    c = poisson_spikes(rates, 200, 1.0, gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_poisson_zero_and_certain_rates():
    s = poisson_spikes(torch.tensor([0.0, 1000.0]), 100, 1.0, gen())
    assert s[:, 0].sum() == 0
    assert s[:, 1].all()  # p = 1 exactly is allowed


def test_poisson_probability_above_one_errors():
    with pytest.raises(ValueError, match="lower the rate or dt"):
        poisson_spikes(torch.tensor([20_000.0]), 10, 0.1, gen())


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_poisson_rejects_negative_and_nan(bad):
    with pytest.raises(ValueError):
        poisson_spikes(torch.tensor([10.0, bad]), 10, 1.0, gen())


@pytest.mark.parametrize("kwargs", [{"n_steps": 0}, {"dt_ms": 0.0}, {"dt_ms": -1.0}])
def test_poisson_rejects_bad_grid(kwargs):
    args = {"n_steps": 10, "dt_ms": 1.0} | kwargs
    with pytest.raises(ValueError):
        poisson_spikes(torch.tensor([1.0]), generator=gen(), **args)


def test_poisson_time_varying_rates():
    n_steps, n, dt = 400, 500, 1.0
    rates = torch.zeros(n_steps, n)
    rates[n_steps // 2 :] = 200.0
    s = poisson_spikes(rates, n_steps, dt, gen(2), time_varying=True)
    assert s.shape == (n_steps, n)
    assert s[: n_steps // 2].sum() == 0
    p = 0.2
    m = n_steps // 2 * n
    assert abs(s[n_steps // 2 :].sum().item() - m * p) < 5 * math.sqrt(m * p * (1 - p))


def test_poisson_time_varying_shape_checked():
    with pytest.raises(ValueError, match="n_steps"):
        poisson_spikes(torch.ones(5, 3), 6, 1.0, gen(), time_varying=True)


def test_poisson_accepts_python_numbers():
    s = poisson_spikes([10.0, 20.0], 5, 1.0, gen())
    assert s.shape == (5, 2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_poisson_on_gpu_is_seeded():
    g1 = torch.Generator(device="cuda").manual_seed(3)
    g2 = torch.Generator(device="cuda").manual_seed(3)
    rates = torch.full((100,), 50.0, device="cuda")
    a, b = poisson_spikes(rates, 50, 1.0, g1), poisson_spikes(rates, 50, 1.0, g2)
    assert a.is_cuda and torch.equal(a, b)


# ------------------------------------------------------------------------------------ rate code


def test_rate_code_shape_and_proportional_intensity():
    n_img, n_steps, dt, r_max = 64, 500, 1.0, 100.0
    levels = torch.tensor([0.0, 0.25, 0.5, 1.0])
    images = levels.view(1, 1, 2, 2).expand(n_img, 1, 2, 2)
    s = rate_code(images, r_max, n_steps, dt, gen(4))
    assert s.shape == (n_steps, n_img, 4)
    counts = s.sum(dim=(0, 1)).double()
    trials = n_steps * n_img
    for c, x in zip(counts.tolist(), levels.tolist(), strict=True):
        p = x * r_max * dt / 1000.0
        assert abs(c - trials * p) <= 5 * math.sqrt(trials * p * (1 - p)) + 1e-9


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_rate_code_validates_range(bad):
    images = torch.zeros(2, 1, 2, 2)
    images[0, 0, 0, 0] = bad
    with pytest.raises(ValueError):
        rate_code(images, 100.0, 10, 1.0, gen())


def test_rate_code_seeded():
    images = torch.rand(3, 1, 4, 4, generator=gen(0))
    assert torch.equal(
        rate_code(images, 80.0, 20, 1.0, gen(5)), rate_code(images, 80.0, 20, 1.0, gen(5))
    )


# ---------------------------------------------------------------------------------- latency code


def test_latency_brighter_fires_earlier_and_once():
    x = torch.tensor([[1.0, 0.75, 0.5, 0.25, 0.005, 0.0]])
    s = latency_code(x, t_max_ms=20.0, dt_ms=1.0, threshold=0.01)
    assert s.shape == (21, 1, 6)
    counts = s.sum(dim=0)[0]
    assert counts.tolist() == [1, 1, 1, 1, 0, 0]
    first = s[:, 0, :4].float().argmax(dim=0)
    assert first.tolist() == [0, 5, 10, 15]  # t = t_max (1 - x)


def test_latency_linear_times():
    x = torch.tensor([[1.0, 0.5, 0.0]])
    t = latency_spike_times(x, 10.0, threshold=0.0)
    assert t.tolist() == [[0.0, 5.0, 10.0]]


def test_latency_log_mode():
    x = torch.tensor([[1.0, 0.5, 0.2, 0.1, 0.05]])
    tau, thr = 5.0, 0.1
    t = latency_spike_times(x, 50.0, threshold=thr, mode="log", tau_ms=tau)
    expected = [tau * math.log(v / (v - thr)) for v in (1.0, 0.5, 0.2)]
    assert np.allclose(t[0, :3].numpy(), expected)
    assert math.isinf(t[0, 3]) and math.isinf(t[0, 4])  # at or below threshold: silent
    s = latency_code(x, 50.0, 0.5, threshold=thr, mode="log", tau_ms=tau)
    assert s.sum(dim=0)[0].tolist() == [1, 1, 1, 0, 0]
    with pytest.raises(ValueError, match="tau_ms"):
        latency_code(x, 50.0, 0.5, mode="log")


def test_latency_drops_spikes_past_n_steps():
    x = torch.tensor([[1.0, 0.1]])
    s = latency_code(x, 10.0, 1.0, n_steps=5)
    assert s.shape == (5, 1, 2) and s.sum(dim=0)[0].tolist() == [1, 0]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=30),
    st.floats(0.0, 0.9),
)
def test_latency_properties(values, threshold):
    x = torch.tensor([values], dtype=torch.float64)
    s = latency_code(x, t_max_ms=25.0, dt_ms=0.5, threshold=threshold)
    counts = s.sum(dim=0)[0]
    assert torch.equal(counts, (x[0] >= threshold).long())
    first = torch.where(counts > 0, s[:, 0].double().argmax(dim=0), torch.tensor(10**6))
    order = torch.argsort(x[0], descending=True)
    fired = counts[order] > 0
    assert torch.all(first[order][fired].diff() >= 0)  # brighter never later


def test_latency_validates_images():
    with pytest.raises(ValueError):
        latency_code(torch.tensor([[1.2]]), 10.0, 1.0)
    with pytest.raises(ValueError, match="batch"):
        latency_code(torch.tensor([0.5]), 10.0, 1.0)


# ---------------------------------------------------------------------------------- currents


def test_constant_current():
    i = constant_current(100.0, 5)
    assert i.shape == (5, 1) and torch.all(i == 100.0)
    i = constant_current(torch.tensor([1.0, 2.0, 3.0]), 4)
    assert i.shape == (4, 3) and torch.equal(i[2], torch.tensor([1.0, 2.0, 3.0]))
    assert constant_current(5.0, 3, n=10).shape == (3, 10)
    with pytest.raises(ValueError):
        constant_current(torch.tensor([1.0, 2.0]), 3, n=3)


def test_step_current():
    i = step_current(200.0, n_steps=10, dt_ms=1.0, start_ms=2.0, stop_ms=5.0, baseline_pA=-10.0)
    assert i[:, 0].tolist() == [-10, -10, 200, 200, 200, -10, -10, -10, -10, -10]
    i = step_current([1.0, 2.0], n_steps=4, dt_ms=0.5, start_ms=1.0)
    assert i.shape == (4, 2) and i[:2].sum() == 0 and i[2:].tolist() == [[1, 2], [1, 2]]
    with pytest.raises(ValueError):
        step_current(1.0, 4, 1.0, start_ms=3.0, stop_ms=1.0)


def test_ramp_current():
    i = ramp_current(0.0, 90.0, 10)
    assert i.shape == (10, 1)
    assert torch.allclose(i[:, 0], torch.arange(10.0) * 10.0)
    assert ramp_current([0.0, 10.0], 20.0, 3)[:, 1].tolist() == [10.0, 15.0, 20.0]


def test_sinusoidal_current():
    i = sinusoidal_current(50.0, 10.0, n_steps=101, dt_ms=1.0, offset_pA=100.0)
    assert i.shape == (101, 1)
    assert i[0, 0].item() == pytest.approx(100.0)
    assert i[25, 0].item() == pytest.approx(150.0, abs=1e-3)  # quarter period of 100 ms
    assert i[75, 0].item() == pytest.approx(50.0, abs=1e-3)
    assert i.mean().item() == pytest.approx(100.0, abs=0.6)


def test_currents_keep_dtype_and_device():
    i = constant_current(torch.tensor([1.0], dtype=torch.float64), 3)
    assert i.dtype == torch.float64
    i = ramp_current(0.0, 1.0, 3, dtype=torch.float64, device="cpu")
    assert i.dtype == torch.float64


# ------------------------------------------------------------------------------ spike generator


def test_spike_times_to_raster():
    r = spike_times_to_raster([0, 2, 1, 0], [0.0, 1.0, 2.5, 4.9], n=3, n_steps=5, dt_ms=1.0)
    # a spike lands in the step that contains it (Brian2's SpikeGeneratorGroup convention)
    assert r.shape == (5, 3) and r.dtype == torch.bool
    assert r[0, 0] and r[1, 2] and r[2, 1] and r[4, 0] and r.sum() == 4


@pytest.mark.parametrize(
    ("idx", "t", "match"),
    [
        ([0], [-1.0], "non-negative"),
        ([0], [5.0], "after the end"),
        ([3], [1.0], r"\[0, 3\)"),
        ([0, 0], [1.0, 1.9], "same time step"),
        ([0, 1], [1.0], "indices"),
    ],
)
def test_spike_times_to_raster_validation(idx, t, match):
    with pytest.raises(ValueError, match=match):
        spike_times_to_raster(idx, t, n=3, n_steps=5, dt_ms=1.0)


@settings(max_examples=40, deadline=None)
@given(st.sets(st.tuples(st.integers(0, 7), st.integers(0, 49)), max_size=60))
def test_spike_times_to_raster_round_trip(events):
    events = sorted(events)
    idx = [e[0] for e in events]
    t = [e[1] * 0.1 for e in events]
    r = spike_times_to_raster(idx, t, n=8, n_steps=50, dt_ms=0.1)
    assert r.sum().item() == len(events)
    steps, neurons = np.nonzero(r.numpy())
    assert sorted(zip(neurons.tolist(), steps.tolist(), strict=True)) == events
