"""Plasticity rules: hand-computed two-spike / two-sample changes, invariants, and (``brian2``
marker) the Brian2 ``Synapses`` strings of each spike-based rule against the torch step.

Spike times are on the time grid: a spike at ``t`` is in step ``round(t / dt)``, as Brian2's
``SpikeGeneratorGroup`` emits it.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import neuro.plasticity as plasticity
from neuro.plasticity import (
    DIEHL_COOK_2015,
    SONG_2000,
    TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_FULL,
    TRIPLET_PRESETS,
    TRIPLET_VISUAL_ALL_TO_ALL_MINIMAL,
    TRIPLET_VISUAL_NEAREST_FULL,
    AdaptiveThresholdParams,
    BCMParams,
    HebbianParams,
    OjaParams,
    PairSTDPParams,
    RSTDPParams,
    SangerParams,
    SpikingBCMParams,
    SynapticScalingParams,
    TripletSTDPParams,
    WeightBounds,
    adaptive_threshold_step,
    apply_weight_change,
    bcm_spiking_initial_state,
    bcm_spiking_step,
    bcm_step,
    effective_threshold,
    hebbian_step,
    lr_constant,
    lr_exponential,
    lr_step,
    normalize_columns,
    oja_step,
    rstdp_initial_state,
    rstdp_step,
    sanger_step,
    stdp_pair_initial_traces,
    stdp_pair_step,
    stdp_triplet_initial_traces,
    stdp_triplet_step,
    synaptic_scaling_step,
)

F64 = torch.float64
INF = math.inf

# A pair rule with distinct, unround constants so that a swapped tau or amplitude shows.
PAIR = PairSTDPParams(A_plus=0.01, A_minus=0.012, tau_plus=16.8, tau_minus=33.7,
                      w_min=-INF, w_max=INF)
RSTDP = RSTDPParams(A_plus=1.0, A_minus=1.5, tau_plus=20.0, tau_minus=25.0, tau_e=300.0,
                    eta=0.02, w_min=-INF, w_max=INF)

# ----------------------------------------------------------------------------- helpers


def spike_raster(times_ms: list[list[float]], n_steps: int, dt: float) -> torch.Tensor:
    """``(n_steps, n)`` 0/1 raster from per-neuron spike times (ms, on the grid)."""
    raster = torch.zeros((n_steps, len(times_ms)), dtype=F64)
    for i, times in enumerate(times_ms):
        for t in times:
            raster[round(t / dt), i] = 1.0
    return raster


def run_rule(rule: str, params, pre_times, post_times, t_ms: float, dt: float, w0,
             rewards: dict[int, float] | None = None, clip: bool = True):
    """Simulate one trial of a spike-based rule in torch (float64); return the final weights
    ``(n_pre, n_post)`` and the final state."""
    n_steps = round(t_ms / dt)
    pre = spike_raster(pre_times, n_steps, dt)
    post = spike_raster(post_times, n_steps, dt)
    w = torch.as_tensor(np.asarray(w0, dtype=float), dtype=F64).clone()
    n_pre, n_post = w.shape
    if rule == "pair":
        state = stdp_pair_initial_traces(1, n_pre, n_post, dtype=F64)
    elif rule == "triplet":
        state = stdp_triplet_initial_traces(1, n_pre, n_post, dtype=F64)
    else:
        state = rstdp_initial_state(1, n_pre, n_post, params, dtype=F64)
    for k in range(n_steps):
        s_pre, s_post = pre[k : k + 1], post[k : k + 1]
        if rule == "pair":
            dw, state = stdp_pair_step(s_pre, s_post, state, w, params, dt)
        elif rule == "triplet":
            dw, state = stdp_triplet_step(s_pre, s_post, state, w, params, dt)
        else:
            reward = None if rewards is None or k not in rewards else rewards[k]
            dw, state = rstdp_step(s_pre, s_post, reward, state, w, params, dt)
        w = apply_weight_change(w, dw, params if clip else None)
    return w, state


def single_pair_dw(rule: str, params, pre_times, post_times, t_ms=60.0, dt=0.1, w0=0.0):
    w, _ = run_rule(rule, params, [pre_times], [post_times], t_ms, dt, [[w0]])
    return float(w[0, 0]) - w0


# ----------------------------------------------------------------------------- contract


def test_public_names_exist_and_are_unique():
    assert len(set(plasticity.__all__)) == len(plasticity.__all__)
    for name in plasticity.__all__:
        assert hasattr(plasticity, name), name


def test_plasticity_imports_neither_brian2_nor_other_packages():
    code = (
        "import sys, neuro.plasticity\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('ann', 'bridge', 'experiments', 'brian2'))\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


INVALID = [
    (PairSTDPParams, {"tau_plus": 0.0}, "tau_plus"),
    (PairSTDPParams, {"tau_minus": -1.0}, "tau_minus"),
    (PairSTDPParams, {"A_plus": math.nan}, "A_plus"),
    (PairSTDPParams, {"A_minus": -0.1}, "A_minus"),
    (PairSTDPParams, {"w_min": 1.0, "w_max": 1.0}, "w_min"),
    (PairSTDPParams, {"w_min": 2.0, "w_max": 1.0}, "w_max"),
    (PairSTDPParams, {"w_max": math.nan}, "w_max"),
    (PairSTDPParams, {"weight_dependence": "multiplicative", "w_max": INF}, "w_max"),
    (PairSTDPParams, {"weight_dependence": "soft"}, "weight_dependence"),
    (PairSTDPParams, {"interaction": "nearest_neighbour"}, "interaction"),
    (TripletSTDPParams, {"tau_x": 0.0}, "tau_x"),
    (TripletSTDPParams, {"tau_y": -3.0}, "tau_y"),
    (TripletSTDPParams, {"A3_plus": math.inf}, "A3_plus"),
    (TripletSTDPParams, {"w_min": 5.0, "w_max": 1.0}, "w_min"),
    (RSTDPParams, {"tau_e": -5.0}, "tau_e"),
    (RSTDPParams, {"eta": math.nan}, "eta"),
    (RSTDPParams, {"baseline_alpha": 2.0}, "baseline_alpha"),
    (RSTDPParams, {"baseline_mode": "ema"}, "baseline_mode"),
    (HebbianParams, {"eta": math.nan}, "eta"),
    (HebbianParams, {"gamma": -1.0}, "gamma"),
    (OjaParams, {"eta": -0.1}, "eta"),
    (SangerParams, {"eta": math.inf}, "eta"),
    (BCMParams, {"tau_theta": 0.0}, "tau_theta"),
    (BCMParams, {"y0": 0.0}, "y0"),
    (SpikingBCMParams, {"tau_pre": -1.0}, "tau_pre"),
    (AdaptiveThresholdParams, {"tau_theta": 0.0}, "tau_theta"),
    (AdaptiveThresholdParams, {"theta_plus": math.nan}, "theta_plus"),
    (SynapticScalingParams, {"beta": -1.0}, "beta"),
    (WeightBounds, {"w_min": 1.0, "w_max": 0.0}, "w_min"),
]


@pytest.mark.parametrize(("cls", "kwargs", "name"), INVALID)
def test_invalid_parameters_name_the_field(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)


def test_invalid_call_arguments():
    w = torch.zeros((2, 3), dtype=F64)
    traces = stdp_pair_initial_traces(1, 2, 3, dtype=F64)
    pre, post = torch.zeros((1, 2)), torch.zeros((1, 3))
    with pytest.raises(ValueError, match="batch_reduce"):
        stdp_pair_step(pre, post, traces, w, PAIR, 0.1, batch_reduce="max")
    with pytest.raises(ValueError, match="dt_ms"):
        stdp_pair_step(pre, post, traces, w, PAIR, 0.0)
    with pytest.raises(ValueError, match="weights"):
        stdp_pair_step(pre, post, traces, w.T, PAIR, 0.1)
    with pytest.raises(ValueError, match="a_post"):
        stdp_pair_step(pre, post, traces._replace(a_post=torch.zeros((1, 2))), w, PAIR, 0.1)
    with pytest.raises(ValueError, match="lr_scale"):
        stdp_pair_step(pre, post, traces, w, PAIR, 0.1, lr_scale=-1.0)


# ----------------------------------------------------------------------------- pair STDP


@pytest.mark.parametrize("interaction", ["all_to_all", "nearest"])
def test_pair_window_hand_computed(interaction):
    params = dataclasses.replace(PAIR, interaction=interaction)
    # pre at 0, post at 10 ms: potentiation A+ exp(-10/tau+)
    assert single_pair_dw("pair", params, [0.0], [10.0]) == pytest.approx(
        0.01 * math.exp(-10.0 / 16.8), rel=1e-12
    )
    # post at 0, pre at 10 ms: depression -A- exp(-10/tau-)
    assert single_pair_dw("pair", params, [10.0], [0.0]) == pytest.approx(
        -0.012 * math.exp(-10.0 / 33.7), rel=1e-12
    )
    # the same step counts as pre before post: +A+
    assert single_pair_dw("pair", params, [5.0], [5.0]) == pytest.approx(0.01, rel=1e-12)


def test_nearest_and_all_to_all_differ_on_a_spike_triplet_as_predicted():
    a_p, a_m, tp, tm = 0.01, 0.012, 16.8, 33.7
    all_to_all = dataclasses.replace(PAIR, interaction="all_to_all")
    nearest = dataclasses.replace(PAIR, interaction="nearest")
    # pre, pre, post: all-to-all pairs the post spike with both pre spikes, nearest with one
    pre, post = [0.0, 5.0], [10.0]
    assert single_pair_dw("pair", all_to_all, pre, post) == pytest.approx(
        a_p * (math.exp(-10 / tp) + math.exp(-5 / tp)), rel=1e-12)
    assert single_pair_dw("pair", nearest, pre, post) == pytest.approx(
        a_p * math.exp(-5 / tp), rel=1e-12)
    # post, post, pre
    pre, post = [12.0], [0.0, 4.0]
    assert single_pair_dw("pair", all_to_all, pre, post) == pytest.approx(
        -a_m * (math.exp(-12 / tm) + math.exp(-8 / tm)), rel=1e-12)
    assert single_pair_dw("pair", nearest, pre, post) == pytest.approx(
        -a_m * math.exp(-8 / tm), rel=1e-12)
    # pre, post, pre: the same in both schemes (each spike has one partner on each side)
    pre, post = [0.0, 20.0], [7.0]
    expected = a_p * math.exp(-7 / tp) - a_m * math.exp(-13 / tm)
    assert single_pair_dw("pair", all_to_all, pre, post) == pytest.approx(expected, rel=1e-12)
    assert single_pair_dw("pair", nearest, pre, post) == pytest.approx(expected, rel=1e-12)


def test_multiplicative_pair_hand_computed():
    soft = PairSTDPParams(A_plus=0.1, A_minus=0.2, tau_plus=16.8, tau_minus=33.7, w_min=0.0,
                          w_max=2.0, weight_dependence="multiplicative")
    w0 = 0.5
    assert single_pair_dw("pair", soft, [0.0], [10.0], w0=w0) == pytest.approx(
        0.1 * math.exp(-10 / 16.8) * (2.0 - w0) / 2.0, rel=1e-12)
    assert single_pair_dw("pair", soft, [10.0], [0.0], w0=w0) == pytest.approx(
        -0.2 * math.exp(-10 / 33.7) * (w0 - 0.0) / 2.0, rel=1e-12)
    # post at 0; pre and post together at 10: depression first, potentiation from the
    # depressed weight (pre trace = 1 from this step's pre spike)
    dep = 0.2 * math.exp(-10 / 33.7) * w0 / 2.0
    pot = 0.1 * 1.0 * (2.0 - (w0 - dep)) / 2.0
    assert single_pair_dw("pair", soft, [10.0], [0.0, 10.0], w0=w0) == pytest.approx(
        pot - dep, rel=1e-12)


@pytest.mark.parametrize("interaction", ["all_to_all", "nearest"])
def test_soft_bounds_keep_weights_in_range(interaction):
    # large amplitudes and high rates; nearest keeps traces <= 1 so no clipping is needed
    params = PairSTDPParams(A_plus=0.9, A_minus=0.9, w_min=-1.0, w_max=1.0,
                            weight_dependence="multiplicative", interaction=interaction)
    gen = torch.Generator().manual_seed(0)
    batch, n_pre, n_post, dt = 4, 5, 3, 1.0
    w = torch.rand((n_pre, n_post), generator=gen, dtype=F64) * 2 - 1
    traces = stdp_pair_initial_traces(batch, n_pre, n_post, dtype=F64)
    lo, hi = 0.0, 0.0
    for _ in range(1000):
        pre = torch.rand((batch, n_pre), generator=gen) < 0.1
        post = torch.rand((batch, n_post), generator=gen) < 0.1
        dw, traces = stdp_pair_step(pre, post, traces, w, params, dt, batch_reduce="mean")
        clip = params if interaction == "all_to_all" else None
        w = apply_weight_change(w, dw, clip)
        lo, hi = min(lo, float(w.min())), max(hi, float(w.max()))
    assert -1.0 <= lo and hi <= 1.0
    assert lo < -0.5 and hi > 0.5  # and they do move


def test_additive_hard_bounds_clip():
    params = dataclasses.replace(PAIR, A_plus=0.3, w_min=0.0, w_max=1.0)
    w, _ = run_rule("pair", params, [[0.0, 10.0, 20.0]], [[1.0, 11.0, 21.0]], 30.0, 1.0, [[0.9]])
    assert float(w[0, 0]) == 1.0
    assert torch.equal(apply_weight_change(torch.tensor([0.5]), torch.tensor([-2.0]), (0.0, 1.0)),
                       torch.tensor([0.0]))


def test_batch_reduce_and_per_trial_weights():
    gen = torch.Generator().manual_seed(1)
    batch, n_pre, n_post = 3, 4, 2
    pre = (torch.rand((batch, n_pre), generator=gen) < 0.5).double()
    post = (torch.rand((batch, n_post), generator=gen) < 0.5).double()
    traces = stdp_pair_initial_traces(batch, n_pre, n_post, dtype=F64)
    traces = traces._replace(a_pre=torch.rand((batch, n_pre), generator=gen, dtype=F64),
                             a_post=torch.rand((batch, n_post), generator=gen, dtype=F64))
    soft = PairSTDPParams(A_plus=0.1, A_minus=0.2, weight_dependence="multiplicative")
    for params in (PAIR, soft):
        w = torch.rand((n_pre, n_post), generator=gen, dtype=F64)
        per_trial_w = w.expand(batch, n_pre, n_post)
        dw_sum, _ = stdp_pair_step(pre, post, traces, w, params, 0.5, batch_reduce="sum")
        dw_mean, _ = stdp_pair_step(pre, post, traces, w, params, 0.5, batch_reduce="mean")
        dw_trial, _ = stdp_pair_step(pre, post, traces, per_trial_w, params, 0.5)
        assert dw_trial.shape == (batch, n_pre, n_post)
        singles = torch.stack([
            stdp_pair_step(pre[b : b + 1], post[b : b + 1],
                           type(traces)(traces.a_pre[b : b + 1], traces.a_post[b : b + 1]),
                           w, params, 0.5)[0]
            for b in range(batch)
        ])
        torch.testing.assert_close(dw_trial, singles, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(dw_sum, singles.sum(0), rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(dw_mean, singles.mean(0), rtol=1e-12, atol=1e-15)


def test_learning_flag_and_lr_scale():
    pre, post = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0]])
    w = torch.zeros((2, 1), dtype=F64)
    traces = stdp_pair_initial_traces(1, 2, 1, dtype=F64)
    traces = traces._replace(a_post=torch.tensor([[0.5]], dtype=F64))
    dw, new = stdp_pair_step(pre, post, traces, w, PAIR, 1.0)
    dw_frozen, new_frozen = stdp_pair_step(pre, post, traces, w, PAIR, 1.0, learning=False)
    dw_half, _ = stdp_pair_step(pre, post, traces, w, PAIR, 1.0, lr_scale=0.5)
    assert torch.count_nonzero(dw_frozen) == 0 and torch.count_nonzero(dw) > 0
    for a, b in zip(new, new_frozen, strict=True):  # traces advance even when frozen
        assert torch.equal(a, b)
    torch.testing.assert_close(dw_half, 0.5 * dw)


# ----------------------------------------------------------------------------- triplet STDP


def test_triplet_hand_computed_full_hippocampal():
    p = TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_FULL
    p = dataclasses.replace(p, w_min=-INF)
    a2p, a3p, a2m, a3m = p.A2_plus, p.A3_plus, p.A2_minus, p.A3_minus
    tp, tm, tx, ty = p.tau_plus, p.tau_minus, p.tau_x, p.tau_y
    # a single pair is pair STDP with A2 amplitudes
    assert single_pair_dw("triplet", p, [0.0], [10.0]) == pytest.approx(
        a2p * math.exp(-10 / tp), rel=1e-12)
    assert single_pair_dw("triplet", p, [10.0], [0.0]) == pytest.approx(
        -a2m * math.exp(-10 / tm), rel=1e-12)
    # post 0, pre 5, post 10: the second post spike sees o2 of the first one
    expected = -a2m * math.exp(-5 / tm) + math.exp(-5 / tp) * (a2p + a3p * math.exp(-10 / ty))
    assert single_pair_dw("triplet", p, [5.0], [0.0, 10.0]) == pytest.approx(expected, rel=1e-12)
    # pre 0, post 5, pre 10: the second pre spike sees r2 of the first one
    expected = a2p * math.exp(-5 / tp) - math.exp(-5 / tm) * (a2m + a3m * math.exp(-10 / tx))
    assert single_pair_dw("triplet", p, [0.0, 10.0], [5.0]) == pytest.approx(expected, rel=1e-12)


def test_triplet_minimal_model_needs_a_triplet_to_potentiate():
    p = TRIPLET_VISUAL_ALL_TO_ALL_MINIMAL
    assert p.A2_plus == 0.0 and p.A3_minus == 0.0
    assert single_pair_dw("triplet", p, [0.0], [10.0], w0=1.0) == 0.0
    # post 0, pre 10, post 20 (the Sjöström-style post-pre-post triplet)
    expected = -p.A2_minus * math.exp(-10 / p.tau_minus) + (
        math.exp(-10 / p.tau_plus) * p.A3_plus * math.exp(-20 / p.tau_y))
    assert single_pair_dw("triplet", p, [10.0], [0.0, 20.0], w0=1.0) == pytest.approx(
        expected, rel=1e-12)


def test_triplet_nearest_and_all_to_all_differ_as_predicted():
    base = dataclasses.replace(TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_FULL, w_min=-INF)
    p = base
    a2p, a3p, a2m, a3m = p.A2_plus, p.A3_plus, p.A2_minus, p.A3_minus
    tp, tm, ty = p.tau_plus, p.tau_minus, p.tau_y
    # post 0, post 3, pre 5, post 10
    pre, post = [5.0], [0.0, 3.0, 10.0]
    o1_all = math.exp(-5 / tm) + math.exp(-2 / tm)
    o2_all = math.exp(-10 / ty) + math.exp(-7 / ty)
    o1_near, o2_near = math.exp(-2 / tm), math.exp(-7 / ty)
    r1 = math.exp(-5 / tp)
    all_to_all = -o1_all * a2m + r1 * (a2p + a3p * o2_all)
    nearest = -o1_near * a2m + r1 * (a2p + a3p * o2_near)
    assert single_pair_dw("triplet", p, pre, post) == pytest.approx(all_to_all, rel=1e-12)
    near = dataclasses.replace(p, interaction="nearest")
    assert single_pair_dw("triplet", near, pre, post) == pytest.approx(nearest, rel=1e-12)
    assert a3m > 0 and all_to_all != pytest.approx(nearest)


def test_triplet_with_zero_triplet_amplitudes_is_pair_stdp():
    trip = TripletSTDPParams(A2_plus=0.01, A3_plus=0.0, A2_minus=0.012, A3_minus=0.0,
                             tau_plus=16.8, tau_minus=33.7, w_min=-INF)
    gen = np.random.default_rng(3)
    pre = [sorted(gen.choice(400, 12, replace=False) * 0.5) for _ in range(2)]
    post = [sorted(gen.choice(400, 12, replace=False) * 0.5) for _ in range(3)]
    w0 = np.zeros((2, 3))
    w_trip, _ = run_rule("triplet", trip, pre, post, 200.0, 0.5, w0)
    w_pair, _ = run_rule("pair", PAIR, pre, post, 200.0, 0.5, w0)
    torch.testing.assert_close(w_trip, w_pair, rtol=1e-12, atol=1e-15)


def test_triplet_presets_are_the_published_table():
    table = {  # Pfister & Gerstner 2006, Tables 3 and 4: A2+, A3+, A2-, A3-, tau_x, tau_y
        "visual_all_to_all_minimal": (0.0, 6.5e-3, 7.1e-3, 0.0, 101.0, 114.0),
        "visual_all_to_all_full": (5e-10, 6.2e-3, 7e-3, 2.3e-4, 101.0, 125.0),
        "visual_nearest_minimal": (0.0, 5e-2, 8e-3, 0.0, 714.0, 40.0),
        "visual_nearest_full": (8.8e-11, 5.3e-2, 6.6e-3, 3.1e-3, 714.0, 40.0),
        "hippocampal_all_to_all_minimal": (5.3e-3, 8e-3, 3.5e-3, 0.0, 946.0, 40.0),
        "hippocampal_all_to_all_full": (6.1e-3, 6.7e-3, 1.6e-3, 1.4e-3, 946.0, 27.0),
        "hippocampal_nearest_minimal": (4.6e-3, 9.1e-3, 3e-3, 0.0, 575.0, 48.0),
        "hippocampal_nearest_full": (4.6e-3, 9.1e-3, 3e-3, 7.5e-9, 575.0, 47.0),
    }
    assert set(TRIPLET_PRESETS) == set(table)
    for name, row in table.items():
        p = TRIPLET_PRESETS[name]
        assert (p.A2_plus, p.A3_plus, p.A2_minus, p.A3_minus, p.tau_x, p.tau_y) == row, name
        assert (p.tau_plus, p.tau_minus) == (16.8, 33.7)
        assert p.interaction == ("nearest" if "nearest" in name else "all_to_all")


# ----------------------------------------------------------------------------- R-STDP


def test_rstdp_hand_computed():
    # pre 0, post 10; reward 1 delivered at 500 ms: dw = eta * R * A+ e^{-10/tau+} e^{-490/tau_e}
    dt = 1.0
    e_500 = math.exp(-10 / 20.0) * math.exp(-490 / 300.0)
    w, state = run_rule("rstdp", RSTDP, [[0.0]], [[10.0]], 501.0, dt, [[0.0]], rewards={500: 1.0})
    assert float(w[0, 0]) == pytest.approx(0.02 * e_500, rel=1e-12)
    assert float(state.eligibility[0, 0, 0]) == pytest.approx(e_500, rel=1e-12)
    # without reward nothing changes, but the eligibility is the same
    w, state = run_rule("rstdp", RSTDP, [[0.0]], [[10.0]], 501.0, dt, [[0.0]])
    assert float(w[0, 0]) == 0.0
    assert float(state.eligibility[0, 0, 0]) == pytest.approx(e_500, rel=1e-12)
    # post 0, pre 10: negative eligibility -A- e^{-10/tau-}
    _, state = run_rule("rstdp", RSTDP, [[10.0]], [[0.0]], 11.0, dt, [[0.0]])
    assert float(state.eligibility[0, 0, 0]) == pytest.approx(-1.5 * math.exp(-10 / 25.0),
                                                               rel=1e-12)


def test_rstdp_running_baseline():
    params = dataclasses.replace(RSTDP, baseline_mode="running", baseline=0.2,
                                 baseline_alpha=0.25)
    e = torch.full((1, 1, 1), 2.0, dtype=F64)
    state = rstdp_initial_state(1, 1, 1, params, dtype=F64)._replace(eligibility=e)
    no_spike = torch.zeros((1, 1))
    w = torch.zeros((1, 1), dtype=F64)
    d = math.exp(-1.0 / 300.0)
    dw, state = rstdp_step(no_spike, no_spike, 1.0, state, w, params, 1.0)
    assert float(dw) == pytest.approx(0.02 * (1.0 - 0.2) * 2.0 * d, rel=1e-12)
    assert float(state.baseline) == pytest.approx(0.2 + 0.25 * 0.8, rel=1e-12)
    dw, state = rstdp_step(no_spike, no_spike, 1.0, state, w, params, 1.0)
    assert float(dw) == pytest.approx(0.02 * (1.0 - 0.4) * 2.0 * d * d, rel=1e-12)
    # a fixed baseline stays put
    fixed = dataclasses.replace(params, baseline_mode="fixed")
    _, state = rstdp_step(no_spike, no_spike, 1.0, rstdp_initial_state(1, 1, 1, fixed), w.float(),
                          fixed, 1.0)
    assert float(state.baseline) == pytest.approx(0.2)


def test_rstdp_batch_rewards():
    batch = 2
    params = RSTDP
    state = rstdp_initial_state(batch, 1, 1, params, dtype=F64)
    state = state._replace(eligibility=torch.tensor([1.0, 3.0], dtype=F64).view(2, 1, 1))
    s = torch.zeros((batch, 1))
    d = math.exp(-1.0 / 300.0)
    reward = torch.tensor([1.0, -1.0], dtype=F64)
    w = torch.zeros((1, 1), dtype=F64)
    dw_sum, _ = rstdp_step(s, s, reward, state, w, params, 1.0, batch_reduce="sum")
    dw_mean, _ = rstdp_step(s, s, reward, state, w, params, 1.0, batch_reduce="mean")
    dw_trial, _ = rstdp_step(s, s, reward, state, w.expand(2, 1, 1), params, 1.0)
    assert float(dw_sum) == pytest.approx(0.02 * d * (1.0 - 3.0), rel=1e-12)
    assert float(dw_mean) == pytest.approx(0.02 * d * (1.0 - 3.0) / 2, rel=1e-12)
    torch.testing.assert_close(dw_trial.flatten(), 0.02 * d * torch.tensor([1.0, -3.0], dtype=F64))


# ----------------------------------------------------------------------------- rate rules


def test_hebbian_hand_computed():
    params = HebbianParams(eta=0.1, gamma=0.5)
    w = torch.tensor([[0.5], [-0.5]], dtype=F64)
    x = torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=F64)
    y = torch.tensor([[3.0], [-1.0]], dtype=F64)
    # sample 1: 0.1 * ((3, 6) - 0.5 (0.5, -0.5)) = (0.275, 0.625)
    # sample 2: 0.1 * ((0, -1) - 0.5 (0.5, -0.5)) = (-0.025, -0.075)
    dw = hebbian_step(x, y, w, params, batch_reduce="sum")
    torch.testing.assert_close(dw, torch.tensor([[0.25], [0.55]], dtype=F64))
    dw = hebbian_step(x, y, w, params, batch_reduce="mean")
    torch.testing.assert_close(dw, torch.tensor([[0.125], [0.275]], dtype=F64))
    dw = hebbian_step(x, y, w.expand(2, 2, 1), params)
    torch.testing.assert_close(dw, torch.tensor([[[0.275], [0.625]], [[-0.025], [-0.075]]],
                                                dtype=F64))


def test_oja_hand_computed():
    w = torch.tensor([[0.6], [0.8]], dtype=F64)
    x = torch.tensor([[1.0, 2.0]], dtype=F64)
    y = x @ w  # 2.2
    # 0.1 * 2.2 * ((1, 2) - 2.2 (0.6, 0.8)) = 0.22 * (-0.32, 0.24)
    dw = oja_step(x, y, w, OjaParams(eta=0.1))
    torch.testing.assert_close(dw, torch.tensor([[-0.0704], [0.0528]], dtype=F64))


def test_sanger_hand_computed():
    w = torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=F64)
    x = torch.tensor([[1.0, 2.0]], dtype=F64)
    y = x @ w  # (1, 2.5)
    # output 1: 1 * ((1, 2) - (1, 0) * 1) = (0, 2)
    # output 2: 2.5 * ((1, 2) - (1, 0) * 1 - (0.5, 1) * 2.5) = 2.5 * (-1.25, -0.5)
    dw = sanger_step(x, y, w, SangerParams(eta=0.1))
    torch.testing.assert_close(dw, torch.tensor([[0.0, -0.3125], [0.2, -0.125]], dtype=F64))
    # per-trial weights give the same
    dw3 = sanger_step(x, y, w[None], SangerParams(eta=0.1))
    torch.testing.assert_close(dw3[0], dw)


def test_bcm_hand_computed():
    params = BCMParams(eta=0.01, tau_theta=10.0, y0=2.0)
    x = torch.tensor([[1.0, 2.0]], dtype=F64)
    y = torch.tensor([[3.0]], dtype=F64)
    theta = torch.tensor([[1.0]], dtype=F64)
    dw, new_theta = bcm_step(x, y, theta, torch.zeros((2, 1), dtype=F64), params, 1.0)
    # 0.01 * (1, 2) * 3 * (3 - 1)
    torch.testing.assert_close(dw, torch.tensor([[0.06], [0.12]], dtype=F64))
    assert float(new_theta) == pytest.approx(4.5 + (1.0 - 4.5) * math.exp(-0.1), rel=1e-12)
    # below threshold: depression
    dw, _ = bcm_step(x, y, torch.tensor([[5.0]], dtype=F64), torch.zeros((2, 1), dtype=F64),
                     params, 1.0)
    assert bool((dw < 0).all())


def correlated_gaussian(n: int, cov: np.ndarray, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.multivariate_normal(np.zeros(len(cov)), cov, size=n), dtype=F64)


def test_oja_converges_to_the_first_principal_component():
    cov = np.array([[3.0, 1.2], [1.2, 1.0]])
    data = correlated_gaussian(4000, cov, seed=0)
    w = torch.tensor([[0.1], [-0.4]], dtype=F64)
    params = OjaParams(eta=0.005)
    for k in range(len(data)):
        x = data[k : k + 1]
        w = w + oja_step(x, x @ w, w, params)
    pc1 = torch.as_tensor(np.linalg.eigh(cov)[1][:, -1], dtype=F64)
    cosine = abs(float(w[:, 0] @ pc1)) / float(w.norm())
    assert cosine >= 0.99
    assert float(w.norm()) == pytest.approx(1.0, abs=0.05)


def test_sanger_converges_to_the_first_two_principal_components():
    cov = np.diag([4.0, 2.0, 0.5])
    rot = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    cov = rot @ cov @ rot.T
    data = correlated_gaussian(3000, cov, seed=2)
    w = torch.as_tensor(np.random.default_rng(3).normal(scale=0.3, size=(3, 2)), dtype=F64)
    params = SangerParams(eta=0.004)
    for k in range(0, len(data), 2):  # mini-batches of two, averaged
        x = data[k : k + 2]
        w = w + sanger_step(x, x @ w, w, params, batch_reduce="mean")
    pcs = np.linalg.eigh(cov)[1][:, ::-1]
    for j in range(2):
        col = w[:, j].numpy()
        assert abs(col @ pcs[:, j]) / np.linalg.norm(col) >= 0.98
        assert np.linalg.norm(col) == pytest.approx(1.0, abs=0.08)


def test_bcm_threshold_tracks_mean_square_activity():
    gen = torch.Generator().manual_seed(4)
    params = BCMParams(eta=0.0, tau_theta=200.0, y0=2.0)
    x = torch.ones((1, 1), dtype=F64)
    theta = torch.zeros((1, 1), dtype=F64)
    w = torch.zeros((1, 1), dtype=F64)
    values = []
    for k in range(6000):
        y = 4.0 * torch.rand((1, 1), generator=gen, dtype=F64)  # <y^2> = 16/3
        _, theta = bcm_step(x, y, theta, w, params, 1.0)
        if k >= 2000:
            values.append(float(theta))
    assert np.mean(values) == pytest.approx(16.0 / 3.0 / 2.0, rel=0.03)
    # constant activity: exact relaxation towards y^2 / y0
    theta = torch.zeros((1, 1), dtype=F64)
    for _ in range(50):
        _, theta = bcm_step(x, torch.full((1, 1), 3.0, dtype=F64), theta, w, params, 2.0)
    assert float(theta) == pytest.approx(4.5 * (1 - math.exp(-100.0 / 200.0)), rel=1e-12)


def test_spiking_bcm_rate_estimates_and_sign():
    params = SpikingBCMParams(eta=1e-6, tau_theta=1000.0, y0=10.0, tau_pre=50.0, tau_post=50.0)
    state = bcm_spiking_initial_state(1, 1, 1, dtype=F64, theta_hz=5.0)
    w = torch.zeros((1, 1), dtype=F64)
    one = torch.ones((1, 1))
    dw, state = bcm_spiking_step(one, one, state, w, params, 1.0)
    # one spike each: rates 1000/50 = 20 Hz; dw = eta dt 20 * 20 * (20 - 5)
    assert float(state.x_bar) == pytest.approx(20.0) and float(state.y_bar) == pytest.approx(20.0)
    assert float(dw) == pytest.approx(1e-6 * 20 * 20 * 15, rel=1e-12)


# ----------------------------------------------------------------------------- homeostasis


def test_adaptive_threshold_decays_exactly_and_jumps():
    p = AdaptiveThresholdParams(theta_plus=0.2, tau_theta=1000.0)
    theta = torch.full((2, 3), 1.0, dtype=F64)
    none = torch.zeros((2, 3), dtype=torch.bool)
    for _ in range(1000):
        theta = adaptive_threshold_step(theta, none, p, 0.5)
    torch.testing.assert_close(theta, torch.full((2, 3), math.exp(-0.5), dtype=F64),
                               rtol=1e-12, atol=0)
    spikes = torch.zeros((2, 3), dtype=torch.bool)
    spikes[1, 2] = True
    new = adaptive_threshold_step(theta, spikes, p, 0.5)
    assert float(new[1, 2]) == pytest.approx(math.exp(-0.5) * math.exp(-0.5 / 1000) + 0.2)
    assert float(new[0, 0]) == pytest.approx(math.exp(-0.5) * math.exp(-0.5 / 1000))
    assert torch.equal(adaptive_threshold_step(new, spikes, p, 0.5, learning=False), new)
    torch.testing.assert_close(effective_threshold(-52.0, new), new - 52.0)
    assert (DIEHL_COOK_2015.theta_plus, DIEHL_COOK_2015.tau_theta) == (0.05, 1e7)


def test_normalize_columns_makes_sums_exact():
    gen = torch.Generator().manual_seed(5)
    w = torch.rand((784, 10), generator=gen, dtype=F64)
    w[:, 3] = 0.0
    out = normalize_columns(w, 78.0)
    sums = out.sum(0)
    assert torch.equal(out[:, 3], w[:, 3])
    keep = torch.arange(10) != 3
    torch.testing.assert_close(sums[keep], torch.full((9,), 78.0, dtype=F64), rtol=1e-14, atol=0)
    batched = normalize_columns(w[None].expand(2, 784, 10), 78.0)
    torch.testing.assert_close(batched[1], out)
    torch.testing.assert_close(normalize_columns(w.float()).sum(0)[keep],
                               torch.full((9,), 78.0), rtol=1e-5, atol=0)


def test_synaptic_scaling_hand_computed():
    p = SynapticScalingParams(beta=1e-3, target_rate=5.0)
    w = torch.tensor([[1.0, 2.0]], dtype=F64)
    rate = torch.tensor([[3.0, 7.0]], dtype=F64)
    dw = synaptic_scaling_step(w, rate, p, 2.0)
    torch.testing.assert_close(dw, torch.tensor([[1e-3 * 2 * 1 * 2, 1e-3 * 2 * 2 * -2]],
                                                dtype=F64))


# ----------------------------------------------------------------------------- purity


def test_steps_do_not_mutate_their_inputs():
    gen = torch.Generator().manual_seed(6)
    batch, n_pre, n_post = 2, 3, 4

    def rand(*shape):
        return torch.rand(shape, generator=gen, dtype=F64)

    pre = rand(batch, n_pre) < 0.5
    post = rand(batch, n_post) < 0.5
    w = rand(n_pre, n_post)
    x, y, theta = rand(batch, n_pre), rand(batch, n_post), rand(batch, n_post)
    pair_traces = stdp_pair_initial_traces(batch, n_pre, n_post, dtype=F64)._replace(
        a_pre=rand(batch, n_pre), a_post=rand(batch, n_post))
    trip_traces = type(stdp_triplet_initial_traces(1, 1, 1))(
        rand(batch, n_pre), rand(batch, n_pre), rand(batch, n_post), rand(batch, n_post))
    r_state = rstdp_initial_state(batch, n_pre, n_post, RSTDP, dtype=F64)._replace(
        eligibility=rand(batch, n_pre, n_post))
    soft = PairSTDPParams(weight_dependence="multiplicative")
    calls = [
        lambda: stdp_pair_step(pre, post, pair_traces, w, soft, 0.1),
        lambda: stdp_pair_step(pre, post, pair_traces, w, dataclasses.replace(
            PAIR, interaction="nearest"), 0.1),
        lambda: stdp_triplet_step(pre, post, trip_traces, w, TRIPLET_VISUAL_NEAREST_FULL, 0.1),
        lambda: rstdp_step(pre, post, 1.0, r_state, w, RSTDP, 0.1),
        lambda: hebbian_step(x, y, w, HebbianParams(gamma=0.1)),
        lambda: oja_step(x, y, w, OjaParams()),
        lambda: sanger_step(x, y, w, SangerParams()),
        lambda: bcm_step(x, y, theta, w, BCMParams(), 0.1),
        lambda: adaptive_threshold_step(theta, post, DIEHL_COOK_2015, 0.1),
        lambda: normalize_columns(w),
        lambda: synaptic_scaling_step(w, y, SynapticScalingParams(), 0.1),
        lambda: apply_weight_change(w, w.clone(), (0.0, 0.5)),
    ]
    inputs = [pre, post, w, x, y, theta, *pair_traces, *trip_traces, *r_state]
    before = [t.clone() for t in inputs]
    for call in calls:
        call()
    for t, b in zip(inputs, before, strict=True):
        assert torch.equal(t, b)


def test_schedules():
    assert lr_constant(7, 0.3) == 0.3
    assert lr_exponential(3, 2.0, 0.5) == pytest.approx(0.25)
    assert [lr_step(k, 1.0, step_size=2, gamma=0.1) for k in range(5)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01])
    with pytest.raises(ValueError, match="step"):
        lr_exponential(-1)
    with pytest.raises(ValueError, match="gamma"):
        lr_step(1, gamma=0.0)
    with pytest.raises(ValueError, match="step_size"):
        lr_step(1, step_size=0)
    # the schedule's value scales the rule through lr_scale
    pre, post = torch.ones((1, 1)), torch.ones((1, 1))
    w = torch.zeros((1, 1), dtype=F64)
    traces = stdp_pair_initial_traces(1, 1, 1, dtype=F64)
    dw, _ = stdp_pair_step(pre, post, traces, w, SONG_2000, 1.0, lr_scale=lr_exponential(2, 1, 0.5))
    assert float(dw) == pytest.approx(0.25 * SONG_2000.A_plus)


# ----------------------------------------------------------------------------- Brian2


def run_brian2(plastic, pre_times, post_times, t_ms: float, dt: float, w0: np.ndarray,
               unit=1.0, rewards: dict[int, float] | None = None):
    """The same trial in Brian2 (numpy target, explicit ``Network``): two
    ``SpikeGeneratorGroup``s, all-to-all ``Synapses`` built from the rule's strings. Returns the
    final ``Synapses`` variables as ``(n_pre, n_post)`` arrays (``w`` divided by ``unit``).
    ``rewards`` (step -> R - baseline) drives R-STDP's ``reward_signal`` and reward code as the
    engine is meant to: set at the start of the step, applied after the synapses."""
    import brian2 as b2

    n_pre, n_post = w0.shape
    old_target, old_dt = b2.prefs.codegen.target, b2.defaultclock.dt
    b2.prefs.codegen.target = "numpy"
    try:
        b2.defaultclock.dt = dt * b2.ms

        def generator(times_ms):
            idx = [i for i, ts in enumerate(times_ms) for _ in ts]
            ts = [t for ts in times_ms for t in ts]
            return b2.SpikeGeneratorGroup(len(times_ms), idx, np.asarray(ts) * b2.ms)

        pre, post = generator(pre_times), generator(post_times)
        kwargs = {} if plastic.method is None else {"method": plastic.method}
        syn = b2.Synapses(pre, post, model=plastic.model, on_pre=plastic.on_pre,
                          on_post=plastic.on_post, namespace=plastic.namespace, **kwargs)
        syn.connect()
        for name, value in plastic.initial_values.items():
            setattr(syn, name, value)
        i, j = syn.i[:], syn.j[:]
        syn.w[:] = w0[i, j] * unit
        objects = [pre, post, syn]
        if rewards is not None:
            syn.run_regularly(plastic.extra_code["reward"], when="after_synapses")

            @b2.network_operation(when="start")
            def deliver(t):
                syn.reward_signal = rewards.get(round(float(t / b2.ms) / dt), 0.0)

            objects.append(deliver)
        b2.Network(*objects).run(round(t_ms / dt) * dt * b2.ms, namespace={})
        out = {}
        for name in ("w", "elig"):
            if name in syn.variables:
                arr = np.zeros((n_pre, n_post))
                arr[i, j] = np.asarray(getattr(syn, name)[:] / unit if name == "w"
                                       else getattr(syn, name)[:])
                out[name] = arr
        return out
    finally:
        b2.prefs.codegen.target = old_target
        b2.defaultclock.dt = old_dt


def random_trains(n: int, t_ms: float, dt: float, rate_hz: float, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    n_steps = round(t_ms / dt)
    return [sorted((np.nonzero(rng.random(n_steps) < rate_hz * dt / 1000)[0] * dt).tolist())
            for _ in range(n)]


PAIR_VARIANTS = [
    PAIR,
    dataclasses.replace(PAIR, interaction="nearest"),
    PairSTDPParams(A_plus=0.05, A_minus=0.06, tau_plus=16.8, tau_minus=33.7, w_min=0.0,
                   w_max=1.0, weight_dependence="multiplicative"),
    PairSTDPParams(A_plus=0.05, A_minus=0.06, tau_plus=16.8, tau_minus=33.7, w_min=0.0,
                   w_max=1.0, weight_dependence="multiplicative", interaction="nearest"),
]


@pytest.mark.brian2
def test_pair_brian2_two_spikes_hand_computed():
    from neuro.plasticity import stdp_pair_brian2

    w0 = np.zeros((1, 1))
    out = run_brian2(stdp_pair_brian2(PAIR), [[0.0]], [[10.0]], 20.0, 0.1, w0)
    assert out["w"][0, 0] == pytest.approx(0.01 * math.exp(-10 / 16.8), rel=1e-9)
    out = run_brian2(stdp_pair_brian2(PAIR), [[10.0]], [[0.0]], 20.0, 0.1, w0)
    assert out["w"][0, 0] == pytest.approx(-0.012 * math.exp(-10 / 33.7), rel=1e-9)


@pytest.mark.brian2
@pytest.mark.parametrize("params", PAIR_VARIANTS,
                         ids=["additive-all", "additive-nearest", "soft-all", "soft-nearest"])
def test_pair_stdp_matches_brian2(params):
    from neuro.plasticity import stdp_pair_brian2

    dt, t_ms = 1.0, 300.0
    pre = random_trains(3, t_ms, dt, 40.0, seed=10)
    post = random_trains(2, t_ms, dt, 40.0, seed=11)
    post[0] = sorted(set(post[0]) | {pre[0][0], pre[1][1]})  # same-step pre and post spikes
    w0 = np.full((3, 2), 0.5)
    w_torch, _ = run_rule("pair", params, pre, post, t_ms, dt, w0)
    w_b2 = run_brian2(stdp_pair_brian2(params), pre, post, t_ms, dt, w0)["w"]
    assert not np.allclose(w_b2, w0)
    np.testing.assert_allclose(w_torch.numpy(), w_b2, rtol=1e-9, atol=1e-12)


@pytest.mark.brian2
@pytest.mark.parametrize("params", [TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_FULL,
                                    TRIPLET_VISUAL_NEAREST_FULL,
                                    dataclasses.replace(TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_FULL,
                                                        w_max=1.0,
                                                        weight_dependence="multiplicative")],
                         ids=["hippocampal-all", "visual-nearest", "soft"])
def test_triplet_stdp_matches_brian2(params):
    from neuro.plasticity import stdp_triplet_brian2

    dt, t_ms = 1.0, 300.0
    pre = random_trains(2, t_ms, dt, 50.0, seed=20)
    post = random_trains(2, t_ms, dt, 50.0, seed=21)
    w0 = np.full((2, 2), 0.5)
    w_torch, _ = run_rule("triplet", params, pre, post, t_ms, dt, w0)
    w_b2 = run_brian2(stdp_triplet_brian2(params), pre, post, t_ms, dt, w0)["w"]
    assert not np.allclose(w_b2, w0)
    np.testing.assert_allclose(w_torch.numpy(), w_b2, rtol=1e-9, atol=1e-12)
    # and the two-spike hand value: post 0, pre 5, post 10 (the first synapse only)
    p = dataclasses.replace(params, w_min=-INF, w_max=INF, weight_dependence="additive")
    expected = -p.A2_minus * math.exp(-5 / p.tau_minus) + math.exp(-5 / p.tau_plus) * (
        p.A2_plus + p.A3_plus * math.exp(-10 / p.tau_y))
    out = run_brian2(stdp_triplet_brian2(p), [[5.0]], [[0.0, 10.0]], 12.0, 0.5, np.zeros((1, 1)))
    assert out["w"][0, 0] == pytest.approx(expected, rel=1e-9)


@pytest.mark.brian2
def test_rstdp_eligibility_matches_brian2():
    from neuro.plasticity import rstdp_brian2

    dt, t_ms = 1.0, 300.0
    pre = random_trains(2, t_ms, dt, 40.0, seed=30)
    post = random_trains(3, t_ms, dt, 40.0, seed=31)
    w0 = np.zeros((2, 3))
    _, state = run_rule("rstdp", RSTDP, pre, post, t_ms, dt, w0)
    out = run_brian2(rstdp_brian2(RSTDP), pre, post, t_ms, dt, w0)
    np.testing.assert_allclose(state.eligibility[0].numpy(), out["elig"], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(out["w"], w0)  # no reward, no change
    # with rewards: the reward code reads the same eligibility as rstdp_step
    rewards = {150: 1.0, 151: -0.5, 299: 2.0}
    w_torch, _ = run_rule("rstdp", RSTDP, pre, post, t_ms, dt, w0, rewards=rewards)
    out = run_brian2(rstdp_brian2(RSTDP), pre, post, t_ms, dt, w0, rewards=rewards)
    assert not np.allclose(out["w"], w0)
    np.testing.assert_allclose(w_torch.numpy(), out["w"], rtol=1e-9, atol=1e-12)
    # two spikes, hand-computed: pre 0, post 10, eligibility read at the end of 100 ms
    out = run_brian2(rstdp_brian2(RSTDP), [[0.0]], [[10.0]], 100.0, dt, np.zeros((1, 1)))
    expected = math.exp(-10 / 20.0) * math.exp(-89 / 300.0)  # 89 decays after the post step
    assert out["elig"][0, 0] == pytest.approx(expected, rel=1e-9)


@pytest.mark.brian2
def test_brian2_strings_carry_weight_units():
    import brian2 as b2

    from neuro.plasticity import stdp_pair_brian2

    params = PairSTDPParams(A_plus=0.5, A_minus=0.6, w_min=0.0, w_max=10.0)
    plastic = stdp_pair_brian2(params, w_unit="nS")
    assert "w : siemens" in plastic.model
    assert plastic.namespace["A_plus"] == 0.5 * b2.nS
    assert "w :" not in stdp_pair_brian2(params, declare_weight=False).model
    out = run_brian2(plastic, [[0.0]], [[10.0]], 20.0, 0.5, np.full((1, 1), 1.0), unit=b2.nS)
    assert out["w"][0, 0] == pytest.approx(1.0 + 0.5 * math.exp(-10 / 20.0), rel=1e-9)
    with pytest.raises(ValueError, match="w_unit"):
        stdp_pair_brian2(params, w_unit="parsec")


@pytest.mark.brian2
def test_adaptive_threshold_matches_brian2():
    import brian2 as b2

    from neuro.plasticity import adaptive_threshold_brian2

    params = AdaptiveThresholdParams(theta_plus=0.3, tau_theta=10.0)
    dt, n_steps, spike_step = 0.1, 200, 50
    theta = torch.full((1, 2), 1.0, dtype=F64)
    for k in range(n_steps):
        spikes = torch.tensor([[k == spike_step, False]])
        theta = adaptive_threshold_step(theta, spikes, params, dt)

    adaptation = adaptive_threshold_brian2(params)
    old_target, old_dt = b2.prefs.codegen.target, b2.defaultclock.dt
    b2.prefs.codegen.target = "numpy"
    try:
        b2.defaultclock.dt = dt * b2.ms
        group = b2.NeuronGroup(2, adaptation.model, method="exact",
                               threshold=f"i == 0 and abs(t - {spike_step * dt}*ms) < 0.5*dt",
                               reset=adaptation.reset, namespace=adaptation.namespace)
        group.theta = 1.0 * b2.mV
        b2.Network(group).run(n_steps * dt * b2.ms, namespace={})
        np.testing.assert_allclose(np.asarray(group.theta[:] / b2.mV), theta[0].numpy(),
                                   rtol=1e-9)
    finally:
        b2.prefs.codegen.target = old_target
        b2.defaultclock.dt = old_dt
