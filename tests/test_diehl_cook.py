"""The Diehl & Cook (2015) network on the torch side: hand-computed single steps, the STDP rule,
batching, freezing, determinism, checkpoints, read-out, a small learning check, bad inputs."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from neuro.diehl_cook import (
    DiehlCookNetwork,
    DiehlCookParams,
    assign_labels,
    classify,
    diehl_cook_params_for,
    diehl_cook_step,
    evaluate_diehl_cook,
    initial_state,
    input_rates,
    poisson_input,
    present,
    present_until_responsive,
    rest,
    spike_counts,
    spike_totals,
    train_diehl_cook,
)
from neuro.diehl_cook.torch_network import START_INTENSITY

F64 = torch.float64


def small_params(**overrides) -> DiehlCookParams:
    return diehl_cook_params_for(3, 2, **overrides)


def no_input(batch: int = 1, n_input: int = 3) -> torch.Tensor:
    return torch.zeros((batch, n_input), dtype=torch.bool)


def one_input(i: int, batch: int = 1, n_input: int = 3) -> torch.Tensor:
    s = no_input(batch, n_input)
    s[:, i] = True
    return s


def weights(p: DiehlCookParams) -> torch.Tensor:
    return torch.linspace(0.1, 0.6, p.n_input * p.n_exc, dtype=F64).reshape(p.n_input, p.n_exc)


def theta0(p: DiehlCookParams) -> torch.Tensor:
    return torch.full((p.n_exc,), p.theta_init, dtype=F64)


def forced(state, neuron: int, v: float = 0.0):
    """The state with excitatory neuron ``neuron`` of every copy pushed above threshold."""
    v_exc = state.v_exc.clone()
    v_exc[:, neuron] = v
    return state._replace(v_exc=v_exc)


def test_input_spike_raises_ge_by_the_weight_and_v_follows_exponential_euler():
    p = small_params()
    w = weights(p)
    s0 = initial_state(p, 1, dtype=F64)
    s1, w1, th1, exc, inh = diehl_cook_step(s0, w.clone(), theta0(p), one_input(1), p,
                                            learning=False)
    torch.testing.assert_close(s1.ge_exc[0], w[1], rtol=0, atol=0)
    assert not exc.any() and not inh.any()
    torch.testing.assert_close(w1, w, rtol=0, atol=0)
    # next step: v relaxes with tau_m/(1+ge) towards (E_rest + ge E_exc)/(1 + ge)
    s2, *_ = diehl_cook_step(s1, w.clone(), theta0(p), no_input(), p, learning=False)
    for j in range(p.n_exc):
        g = float(w[1, j])
        v_inf = (p.E_rest_exc + g * p.E_exc) / (1 + g)
        expect = v_inf + (p.E_rest_exc - v_inf) * math.exp(-p.dt_ms * (1 + g) / p.tau_m_exc)
        assert float(s2.v_exc[0, j]) == pytest.approx(expect, rel=1e-12)
        assert float(s2.ge_exc[0, j]) == pytest.approx(g * math.exp(-p.dt_ms / p.tau_ge_ms),
                                                       rel=1e-12)


def test_excitatory_spike_drives_its_partner_which_inhibits_the_others():
    p = small_params()
    w, th = weights(p), theta0(p)
    s, _, th1, exc, inh = diehl_cook_step(forced(initial_state(p, 1, dtype=F64), 0), w.clone(),
                                          th, no_input(), p, learning=False)
    assert exc.tolist() == [[True, False]] and not inh.any()
    assert s.ge_inh[0].tolist() == [p.w_exc_inh, 0.0]
    assert float(s.v_exc[0, 0]) == p.V_reset_exc and float(s.refrac_exc[0, 0]) == p.t_ref_exc
    torch.testing.assert_close(th1, th, rtol=0, atol=0)  # no adaptation without learning
    # the inhibitory partner: hand-computed membrane after one step, then it fires
    s2, _, _, exc2, inh2 = diehl_cook_step(s, w.clone(), th, no_input(), p, learning=False)
    g = p.w_exc_inh
    v_inf = (p.E_rest_inh + g * p.E_exc) / (1 + g)
    v = v_inf + (p.E_rest_inh - v_inf) * math.exp(-p.dt_ms * (1 + g) / p.tau_m_inh)
    assert v > p.V_th_inh
    assert inh2.tolist() == [[True, False]]
    assert float(s2.v_inh[0, 0]) == p.V_reset_inh
    # ... and inhibits every excitatory neuron but its partner
    assert s2.gi_exc[0].tolist() == [0.0, p.w_inh_exc]


def test_refractory_neuron_is_held_for_t_ref():
    p = small_params()
    w, th = weights(p), theta0(p)
    s, *_ = diehl_cook_step(forced(initial_state(p, 1, dtype=F64), 0), w.clone(), th,
                            no_input(), p, learning=False)
    held_steps = 0
    for _ in range(30):
        s = forced(s, 0)  # above threshold at every step: only refractoriness stops it
        s, _, _, exc, _ = diehl_cook_step(s, w.clone(), th, no_input(), p, learning=False)
        if exc[0, 0]:
            break
        held_steps += 1
    # Brian2: t_ref = k dt holds the k - 1 steps after the spike step
    assert held_steps == round(p.t_ref_exc / p.dt_ms) - 1


def test_stdp_depression_post_then_pre():
    p = small_params()
    w0, th = weights(p), theta0(p)
    w = w0.clone()
    s, w, th, *_ = diehl_cook_step(forced(initial_state(p, 1, dtype=F64), 0), w, th,
                                   no_input(), p, learning=True)
    k = 6
    for _ in range(k - 1):
        s, w, th, *_ = diehl_cook_step(s, w, th, no_input(), p, learning=True)
    s, w, th, exc, _ = diehl_cook_step(s, w, th, one_input(2), p, learning=True)
    assert not exc.any()
    expect = w0.clone()
    expect[2, 0] -= p.nu_pre * math.exp(-k * p.dt_ms / p.tau_post1_ms)
    torch.testing.assert_close(w, expect, rtol=0, atol=1e-15)
    assert float(s.x_pre[0, 2]) == 1.0


def test_stdp_triplet_potentiation_post_pre_post():
    p = small_params()
    w0, th = weights(p), theta0(p)
    w = w0.clone()
    s = forced(initial_state(p, 1, dtype=F64), 0)
    s, w, th, *_ = diehl_cook_step(s, w, th, no_input(), p, learning=True)  # post at step 0
    for _ in range(3):
        s, w, th, *_ = diehl_cook_step(s, w, th, no_input(), p, learning=True)
    s, w, th, *_ = diehl_cook_step(s, w, th, one_input(1), p, learning=True)  # pre at step 4
    for _ in range(15):
        s, w, th, *_ = diehl_cook_step(s, w, th, no_input(), p, learning=True)
    s, w, th, exc, _ = diehl_cook_step(forced(s, 0), w, th, no_input(), p, learning=True)
    assert exc[0, 0]  # post at step 20
    dt = p.dt_ms
    expect = w0.clone()
    expect[1, 0] -= p.nu_pre * math.exp(-4 * dt / p.tau_post1_ms)
    expect[1, 0] += p.nu_post * math.exp(-16 * dt / p.tau_pre_ms) * math.exp(
        -20 * dt / p.tau_post2_ms)
    torch.testing.assert_close(w, expect, rtol=0, atol=1e-15)
    assert float(s.x_post1[0, 0]) == 1.0 and float(s.x_post2[0, 0]) == 1.0
    # theta: two increments, decaying exactly in between
    d = math.exp(-dt / p.tau_theta_ms)
    expect_theta = (p.theta_init * d ** 21 + p.theta_plus * d ** 20 + p.theta_plus)
    assert float(th[0]) == pytest.approx(expect_theta, rel=1e-12)
    assert float(th[1]) == pytest.approx(p.theta_init * d ** 21, rel=1e-12)


def test_pre_and_post_in_the_same_step_count_as_pre_before_post():
    p = small_params()
    w0, th = weights(p), theta0(p)
    w = w0.clone()
    s = forced(initial_state(p, 1, dtype=F64), 0)
    s, w, th, *_ = diehl_cook_step(s, w, th, no_input(), p, learning=True)
    for _ in range(11):
        s, w, th, *_ = diehl_cook_step(s, w, th, no_input(), p, learning=True)
    s, w, th, exc, _ = diehl_cook_step(forced(s, 0), w, th, one_input(0), p, learning=True)
    assert exc[0, 0]
    expect = w0.clone()
    # the pre pathway runs first: depression with post1 before its reset, x_pre = 1 ...
    expect[0, 0] -= p.nu_pre * math.exp(-12 * p.dt_ms / p.tau_post1_ms)
    # ... then the post pathway sees x_pre = 1
    expect[0, 0] += p.nu_post * 1.0 * math.exp(-12 * p.dt_ms / p.tau_post2_ms)
    torch.testing.assert_close(w, expect, rtol=0, atol=1e-15)


def test_weights_are_clipped_to_zero_and_w_max():
    p = small_params(nu_pre=1.0, nu_post=5.0)
    th = theta0(p)
    w = torch.full((3, 2), 0.05, dtype=F64)
    s = forced(initial_state(p, 1, dtype=F64), 0)
    s, w, th, *_ = diehl_cook_step(s, w, th, no_input(), p, learning=True)
    s, w, th, *_ = diehl_cook_step(s, w, th, one_input(1), p, learning=True)
    assert float(w[1, 0]) == 0.0  # 0.05 - 1.0 * post1 < 0: clipped
    for _ in range(12):
        s, w, th, *_ = diehl_cook_step(s, w, th, no_input(), p, learning=True)
    s, w, th, *_ = diehl_cook_step(forced(s, 0), w, th, no_input(), p, learning=True)
    assert float(w[1, 0]) == p.w_max  # 0 + 5 * x_pre * x_post2 > w_max: clipped
    assert float(w[0, 0]) == 0.05 and float(w[2, 1]) == 0.05


def test_batch_of_identical_copies_gives_batch_times_the_change():
    p = small_params()
    w0, th0 = weights(p), theta0(p)

    def run(batch: int):
        w, th = w0.clone(), th0.clone()
        s = forced(initial_state(p, batch, dtype=F64), 0)
        s, w, th, *_ = diehl_cook_step(s, w, th, one_input(2, batch), p, learning=True)
        for n in range(1, 21):
            inp = one_input(1, batch) if n == 4 else no_input(batch)
            s, w, th, *_ = diehl_cook_step(forced(s, 0) if n == 20 else s, w, th, inp, p,
                                           learning=True)
        return w - w0, th

    dw1, th1 = run(1)
    dw3, th3 = run(3)
    assert dw1.abs().sum() > 0
    torch.testing.assert_close(dw3, 3 * dw1, rtol=1e-12, atol=1e-17)
    d = math.exp(-21 * p.dt_ms / p.tau_theta_ms)
    torch.testing.assert_close(th3 - th0 * d, 3 * (th1 - th0 * d), rtol=1e-9, atol=1e-12)


def test_normalisation_and_rest():
    p = diehl_cook_params_for(16, 4)
    net = DiehlCookNetwork.create(p, seed=1, dtype=F64)
    images = torch.rand((3, 16), generator=torch.Generator().manual_seed(0), dtype=F64)
    res = present_until_responsive(net.weights, net.theta, images, p, learning=True,
                                   generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(res.weights.sum(0), torch.full((4,), p.column_sum, dtype=F64))
    assert res.presentations >= 1 and float(res.intensity.min()) >= START_INTENSITY
    # the rest in closed form
    s = initial_state(p, 1, dtype=F64)._replace(
        v_exc=torch.full((1, 4), -50.0, dtype=F64), x_post2=torch.ones((1, 4), dtype=F64),
        refrac_exc=torch.full((1, 4), 3.0, dtype=F64))
    r, th = rest(s, net.theta, p, learning=True)
    expect_v = p.E_rest_exc + 15.0 * math.exp(-p.t_rest_ms / p.tau_m_exc)
    torch.testing.assert_close(r.v_exc, torch.full((1, 4), expect_v, dtype=F64))
    torch.testing.assert_close(r.x_post2, torch.full((1, 4), math.exp(-p.t_rest_ms / 40.0),
                                                     dtype=F64))
    assert not r.refrac_exc.any()
    torch.testing.assert_close(th, net.theta * math.exp(-p.t_rest_ms / p.tau_theta_ms))
    _, th_frozen = rest(s, net.theta, p, learning=False)
    torch.testing.assert_close(th_frozen, net.theta, rtol=0, atol=0)


def test_poisson_input_has_the_bernoulli_rate():
    rates = torch.tensor([[0.0, 10.0, 63.75, 500.0]], dtype=F64).repeat(200, 1)
    spikes = poisson_input(rates, 700, 0.5, torch.Generator().manual_seed(3))
    assert spikes.shape == (200, 700, 4) and spikes.dtype == torch.bool
    counts = spikes.sum(dim=1).to(F64)  # (200, 4)
    p = rates[0] * 0.5e-3
    mean, var = 700 * p, 700 * p * (1 - p)
    assert float(counts[:, 0].sum()) == 0.0
    for i in range(1, 4):  # sample mean of 200 binomials within 5 standard errors
        assert abs(float(counts[:, i].mean()) - float(mean[i])) < 5 * math.sqrt(var[i] / 200)
    # rate * dt >= 1 (reachable by the intensity loop): a spike every step, as in Brian2
    assert poisson_input(torch.tensor([[3000.0]]), 10, 0.5).all()


def test_present_with_rates_equals_present_with_the_drawn_spikes():
    p = diehl_cook_params_for(16, 4)
    net = DiehlCookNetwork.create(p, seed=2)
    rates = input_rates(torch.rand((2, 16), generator=torch.Generator().manual_seed(1)), p, 6.0)
    a = present(net.weights.clone(), net.theta, rates, p, learning=True,
                generator=torch.Generator().manual_seed(5), record=True)
    spikes = poisson_input(rates, p.present_steps, p.dt_ms, torch.Generator().manual_seed(5))
    b = present(net.weights.clone(), net.theta, spikes, p, learning=True, record=True)
    assert torch.equal(a.weights, b.weights) and torch.equal(a.counts, b.counts)
    assert a.counts.sum() > 0
    assert a.exc_spikes is not None and a.exc_spikes.counts().tolist() == a.counts.tolist()


def test_learning_false_changes_nothing_learned():
    p = diehl_cook_params_for(16, 4)
    net = DiehlCookNetwork.create(p, seed=0)
    w, th = net.weights.clone(), net.theta.clone()
    res = present_until_responsive(net.weights, net.theta, torch.ones((2, 16)), p,
                                   learning=False, generator=torch.Generator().manual_seed(0))
    assert res.counts.sum() > 0
    assert torch.equal(res.weights, w) and torch.equal(res.theta, th)
    assert torch.equal(net.weights, w)


def test_spike_totals_count_every_population_over_every_presentation():
    p = diehl_cook_params_for(16, 4, max_retries=4)
    net = DiehlCookNetwork.create(p, seed=2)
    net.weights.mul_(6)  # responsive enough that some images are accepted early, some late
    rates = input_rates(torch.rand((2, 16), generator=torch.Generator().manual_seed(1)), p, 6.0)
    spikes = poisson_input(rates, p.present_steps, p.dt_ms, torch.Generator().manual_seed(5))
    shown = present(net.weights, net.theta, spikes, p, learning=False, record=True,
                    count_all=True)
    assert shown.input_counts.tolist() == spikes.sum(dim=1).tolist()
    assert shown.inh_counts.tolist() == shown.inh_spikes.counts().tolist()
    assert shown.inh_counts.sum() > 0

    images = torch.tensor([1.0, 0.8, 0.5, 0.3, 0.1, 0.02])[:, None].expand(6, 16)
    totals, intensity = spike_totals(net, images, batch_size=6, seed=3)
    accepted = spike_counts(net, images, batch_size=6, seed=3).sum(dim=1)
    once = totals.presentations == 1
    assert once.any() and (totals.presentations > 1).any()
    assert torch.equal(intensity, START_INTENSITY + (totals.presentations - 1) * p.intensity_step)
    # the same draws as spike_counts: the accepted presentation is one of those summed
    assert torch.equal(totals.exc[once], accepted[once]) and (totals.exc >= accepted).all()
    # and the first presentation is the whole batch at the start intensity
    first = poisson_input(input_rates(images, p), p.present_steps, p.dt_ms,
                          torch.Generator().manual_seed(3)).sum(dim=(1, 2))
    assert torch.equal(totals.input[once], first[once])
    assert (totals.input[~once] > first[~once]).all()


BAR = 20  # pixels of one pattern


def _pattern_images(n_per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three disjoint bars of BAR pixels out of 3 * BAR, with a little noise elsewhere."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(3).repeat(n_per_class)
    labels = labels[torch.randperm(labels.numel(), generator=g)]
    images = 0.05 * torch.rand((labels.numel(), 3 * BAR), generator=g)
    for c in range(3):
        images[labels == c, BAR * c:BAR * (c + 1)] = 1.0
    return images, labels


def _pattern_params() -> DiehlCookParams:
    """The paper's network with 6 neurons, faster learning rates (x3) and brighter input (a bar
    has fewer pixels than a digit), shorter presentations to keep the test quick."""
    return diehl_cook_params_for(3 * BAR, 6, max_rate_hz=300.0, nu_post=0.03, nu_pre=0.0003,
                                 t_present_ms=200.0, t_rest_ms=50.0)


def test_same_seed_same_result_and_checkpoint_resume(tmp_path):
    p = _pattern_params()
    images, _ = _pattern_images(4)
    # 6 of the 12 images, two epochs, batches of 4 and 2 per epoch
    run = dict(n_samples=6, epochs=2, batch_size=4, seed=7, progress=False)
    a = train_diehl_cook(images, p, **run)
    b = train_diehl_cook(images, p, **run)
    assert torch.equal(a.weights, b.weights) and torch.equal(a.theta, b.theta)
    assert a.samples_seen == 12

    class Stop(Exception):
        pass

    seen_by_callback = []

    def interrupt(seen, net):
        seen_by_callback.append(seen)
        if seen == 6:  # the end of the first epoch
            raise Stop

    ckpt = tmp_path / "dc.pt"
    with pytest.raises(Stop):
        train_diehl_cook(images, p, **run, checkpoint_path=ckpt, checkpoint_every=2,
                         callback=interrupt, callback_every=2)
    assert seen_by_callback == [4, 6]
    resumed = train_diehl_cook(images, p, **run, checkpoint_path=ckpt, resume=True)
    assert resumed.samples_seen == 12 and resumed.seconds_per_sample > 0
    assert torch.equal(resumed.weights, a.weights) and torch.equal(resumed.theta, a.theta)
    loaded = DiehlCookNetwork.load(ckpt)
    assert torch.equal(loaded.weights, a.weights)
    with pytest.raises(ValueError, match="cannot resume"):
        train_diehl_cook(images, p, **{**run, "batch_size": 3}, checkpoint_path=ckpt,
                         resume=True)


def test_label_assignment_and_classification_by_hand():
    counts = torch.tensor([
        [5, 0, 1, 0],   # class 0
        [3, 1, 0, 0],   # class 0
        [0, 4, 2, 0],   # class 1
        [1, 0, 6, 0],   # class 2
    ])
    labels = torch.tensor([0, 0, 1, 2])
    assignments = assign_labels(counts, labels, 3)
    # neuron 0: class means (4, 0, 1) -> 0; neuron 1: (0.5, 4, 0) -> 1; neuron 2: (0.5, 2, 6) -> 2;
    # neuron 3 never fires -> unassigned
    assert assignments.tolist() == [0, 1, 2, -1]
    test_counts = torch.tensor([[1, 0, 3, 9], [2, 2, 1, 9], [0, 0, 0, 0]])
    assert classify(test_counts, assignments, 3).tolist() == [2, 0, 0]
    with pytest.raises(ValueError, match="labels must lie"):
        assign_labels(counts, torch.tensor([0, 0, 1, 3]), 3)
    with pytest.raises(ValueError, match="labels must be"):
        assign_labels(counts, labels[:3], 3)


@pytest.mark.slow
def test_network_learns_three_patterns():
    p = _pattern_params()
    images, labels = _pattern_images(10, seed=1)
    test_images, test_labels = _pattern_images(5, seed=2)
    result = train_diehl_cook(images, p, batch_size=1, seed=0, progress=False)
    w = result.weights  # (3 * BAR, 6)
    per_bar = w.reshape(3, BAR, 6).sum(dim=1) / w.sum(dim=0)  # share of each bar per neuron
    # initially 1/3 +- 0.04 for every bar and neuron; learning gives each bar its own neuron
    assert per_bar.max(dim=1).values.min() > 0.6
    ev = evaluate_diehl_cook(result.network, test_images, test_labels, images, labels,
                             batch_size=15)
    assert ev.accuracy > 0.9  # chance: 1/3


@pytest.mark.parametrize(
    "images, match",
    [
        (torch.rand(4, 15), "must have shape"),
        (torch.full((4, 16), float("nan")), "NaN"),
        (torch.full((4, 16), 2.0), r"must lie in \[0, 1\]"),
        (torch.full((4, 16), 255, dtype=torch.uint8), "floating point"),
    ],
)
def test_bad_images_are_rejected(images, match):
    p = diehl_cook_params_for(16, 4)
    with pytest.raises(ValueError, match=match):
        train_diehl_cook(images, p, progress=False)


def test_bad_shapes_are_rejected():
    p = small_params()
    s = initial_state(p, 1)
    with pytest.raises(ValueError, match="weights must have shape"):
        diehl_cook_step(s, torch.zeros(2, 2), torch.zeros(2), no_input(), p, learning=False)
    with pytest.raises(ValueError, match="share one dtype"):
        diehl_cook_step(s, torch.zeros(3, 2, dtype=F64), torch.zeros(2), no_input(), p,
                        learning=False)
    with pytest.raises(ValueError, match="input_spikes must be"):
        diehl_cook_step(s, torch.zeros(3, 2), torch.zeros(2), no_input(1, 4), p, learning=False)
    with pytest.raises(ValueError, match="input spikes must be bool"):
        present(torch.zeros(3, 2), torch.zeros(2), torch.zeros((1, 5, 3), dtype=torch.bool), p,
                learning=False)
    with pytest.raises(ValueError, match="batch_size"):
        train_diehl_cook(torch.rand(4, 3), p, batch_size=0, progress=False)


def test_plots_draw_the_weights_spikes_and_curve():
    from neuro.diehl_cook.plots import accuracy_curve, presentation_raster, receptive_fields

    w = torch.arange(12, dtype=torch.float32).reshape(4, 3)  # 2x2 images, 3 neurons
    fig = receptive_fields(w, (2, 2), columns=2)
    grid = fig.axes[0].get_images()[0].get_array()
    assert grid[0:2, 0:2].tolist() == w[:, 0].reshape(2, 2).tolist()
    assert grid[0:2, 2:4].tolist() == w[:, 1].reshape(2, 2).tolist()
    assert grid[2:4, 0:2].tolist() == w[:, 2].reshape(2, 2).tolist()
    with pytest.raises(ValueError, match="n_input"):
        receptive_fields(w, (3, 3))

    p = diehl_cook_params_for(16, 4)
    net = DiehlCookNetwork.create(p, seed=0)
    shown = present(net.weights, net.theta, input_rates(torch.ones((1, 16)), p, 6.0), p,
                    learning=False, generator=torch.Generator().manual_seed(0), record=True)
    fig = presentation_raster(shown.exc_spikes, shown.inh_spikes)
    offsets = [c.get_offsets() for c in fig.axes[0].collections]
    assert sum(len(o) for o in offsets) == int(shown.counts.sum()) + len(shown.inh_spikes.time_ms)

    fig = accuracy_curve({"torch": ([100, 200], [0.5, 0.75])}, chance=0.1)
    assert fig.axes[0].lines[0].get_ydata().tolist() == [50.0, 75.0]


def test_matched_input_params_keep_the_papers_input_rate():
    from neuro.diehl_cook import (
        DIGITS_MEAN_INTENSITY,
        MNIST_MEAN_INTENSITY,
        DiehlCookParams,
        matched_input_params,
    )

    mnist = matched_input_params(784, 400, MNIST_MEAN_INTENSITY)
    assert mnist.max_rate_hz == pytest.approx(DiehlCookParams().max_rate_hz)
    digits = matched_input_params(64, 100, DIGITS_MEAN_INTENSITY)
    total = 64 * DIGITS_MEAN_INTENSITY * digits.max_rate_hz
    assert total == pytest.approx(784 * MNIST_MEAN_INTENSITY * 63.75)
    assert digits.column_sum == pytest.approx(6.4 * 78 / 78.4)
    with pytest.raises(ValueError, match="mean_intensity"):
        matched_input_params(64, 100, 0.0)


@pytest.mark.slow
def test_compiled_step_gives_the_eager_result():
    p = diehl_cook_params_for(16, 4)
    net = DiehlCookNetwork.create(p, seed=3)
    rates = input_rates(torch.ones((1, 16)), p, 10.0)
    out = [present(net.weights.clone(), net.theta, rates, p, learning=True, compiled=compiled,
                   generator=torch.Generator().manual_seed(4)) for compiled in (False, True)]
    assert out[0].counts.sum() > 0
    assert torch.equal(out[0].counts, out[1].counts)
    torch.testing.assert_close(out[1].weights, out[0].weights, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out[1].theta, out[0].theta)


def test_theta_decays_exactly_in_a_float32_network():
    # the decay per step (1e-6 mV) is below float32 resolution at 20 mV: theta stays float64
    p = small_params()
    net = DiehlCookNetwork.create(p, seed=0)
    assert net.weights.dtype == torch.float32 and net.theta.dtype == F64
    s, w, th = initial_state(p, 1), net.weights, net.theta
    for _ in range(200):
        s, w, th, exc, _ = diehl_cook_step(s, w, th, no_input(), p, learning=True)
        assert not exc.any()
    expect = p.theta_init * math.exp(-200 * p.dt_ms / p.tau_theta_ms)
    torch.testing.assert_close(th, torch.full((2,), expect, dtype=F64), rtol=1e-12, atol=0)


def test_deferred_retries_resume_exactly_while_examples_wait(tmp_path):
    """Batched training defers the re-showing of unresponsive examples to the next batch; a run
    interrupted while such examples wait resumes to the uninterrupted run's weights."""
    p = dataclasses.replace(_pattern_params(), max_rate_hz=100.0)  # dim: some examples retry
    images, _ = _pattern_images(8)
    run = dict(epochs=1, batch_size=4, seed=3, progress=False)
    deferred = train_diehl_cook(images, p, **run)
    at_once = train_diehl_cook(images, p, **run, defer_retries=False)
    assert not torch.equal(deferred.weights, at_once.weights)  # the option is in effect
    single = dict(epochs=1, batch_size=1, seed=3, progress=False, n_samples=3)
    assert torch.equal(train_diehl_cook(images, p, **single).weights,
                       train_diehl_cook(images, p, **single, defer_retries=True).weights)

    class Stop(Exception):
        pass

    def interrupt(seen, net):
        if seen >= 12:
            raise Stop

    ckpt = tmp_path / "dc.pt"
    with pytest.raises(Stop):
        train_diehl_cook(images, p, **run, checkpoint_path=ckpt, checkpoint_every=4,
                         callback=interrupt, callback_every=4)
    waiting = torch.load(ckpt, weights_only=True)["pending"]["index"]
    assert waiting.numel() > 0, "the test should stop while examples wait for their retry"
    resumed = train_diehl_cook(images, p, **run, checkpoint_path=ckpt, resume=True)
    assert torch.equal(resumed.weights, deferred.weights)
    assert torch.equal(resumed.theta, deferred.theta)
