"""Experiment ``rstdp``, quick configuration (60 rewarded/punished presentations, 2 seeds),
called directly."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import rstdp
from experiments.run_record import RunContext, read_json, write_json


def _run(tmp_path, **overrides):
    ctx = RunContext(run_dir=tmp_path, seed=0, device="cpu", quick=True, progress=False)
    config = rstdp.RSTDPConfig(**{**rstdp.QUICK, **overrides})
    out = rstdp.run(config, ctx)
    write_json(tmp_path / "metrics.json", out.metrics)  # JSON-able
    return read_json(tmp_path / "metrics.json"), out.report


@pytest.mark.parametrize("target", ["A", "B"])
def test_quick_reward_teaches_the_target(tmp_path, target):
    """Before training the two groups are drawn alike, so the discrimination index is noise
    around 0 (|D| < 0.35 over 5 + 5 test presentations). After 60 presentations D >= 0.6 in
    every trial, i.e. the target evokes at least four times the other pattern's rate, and the
    neuron still answers the target (>= 10 Hz): discrimination by suppressing the punished
    pattern, not by falling silent. Swapping the target swaps the learnt preference, so it is
    the reward that decides."""
    metrics, report = _run(tmp_path, target=target)
    before = np.array(metrics["discrimination_before_per_trial"])
    after = np.array(metrics["discrimination_after_per_trial"])
    assert np.all(np.abs(before) < 0.35)
    assert np.all(after >= 0.6)
    assert np.all(after - before >= 0.4)
    assert metrics["rate_target_after_hz"] >= 10.0
    assert metrics["rate_other_after_hz"] < 0.25 * metrics["rate_target_after_hz"]
    weights_target = metrics["mean_weight_A_pA" if target == "A" else "mean_weight_B_pA"]
    weights_other = metrics["mean_weight_B_pA" if target == "A" else "mean_weight_A_pA"]
    assert weights_target > weights_other
    curve = metrics["learning_curve_discrimination"]
    assert curve[-1] > metrics["discrimination_before"]
    assert (tmp_path / "rstdp.png").read_bytes().startswith(b"\x89PNG")
    assert "discrimination index" in report


def test_schedule_and_rates():
    config = rstdp.RSTDPConfig(n_train=4, n_test=2, present_ms=10.0, gap_ms=5.0, dt_ms=0.5)
    pattern, phase, starts = rstdp.schedule(config)
    assert pattern.size == 8 * 30 and list(starts) == [30 * k for k in range(8)]
    assert list(pattern[starts]) == [0, 1, 0, 1, 0, 1, 0, 1]
    assert list(phase[starts]) == [0, 0, 1, 1, 1, 1, 2, 2]
    assert np.all(pattern[starts + 20] == -1)  # gap after each presentation
    reward = rstdp.make_reward(pattern, phase, target=1)
    fired = {"neuron": np.array([[True], [False]])}
    assert reward(int(starts[0]), fired) is None  # test phase: no reward
    np.testing.assert_array_equal(reward(int(starts[2]), fired), [-1.0, np.nan])
    np.testing.assert_array_equal(reward(int(starts[3]), fired), [1.0, np.nan])
    assert reward(int(starts[3]) + 25, fired) is None  # gap
    np.testing.assert_allclose(rstdp.discrimination_index(np.array([3.0, 0.0, 1.0]),
                                                          np.array([1.0, 0.0, 3.0])),
                               [0.5, 0.0, -0.5])


@pytest.mark.slow
@pytest.mark.brian2
def test_quick_on_brian2(tmp_path):
    """The closed-loop reward (a Brian2 network operation) teaches Brian2's neuron too."""
    metrics, _ = _run(tmp_path, engine="brian2")
    assert metrics["trials"] == 1
    assert metrics["discrimination_after"] >= 0.6
    assert metrics["discrimination_after"] - metrics["discrimination_before"] >= 0.4
