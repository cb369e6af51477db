"""The Krotov-Hopfield competing-hidden-units learner of :mod:`ann.hebbian` on the digits."""

from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure

import ann.hebbian as hebbian
from ann.evaluation import evaluate
from ann.hebbian import (
    HebbianClassifier,
    HebbianFeatures,
    KrotovHopfieldParams,
    hebbian_learning_rate,
    initial_hebbian_weights,
    krotov_hopfield_update,
    p_norms,
    plot_receptive_fields,
    train_hebbian_layer,
)
from ann.training import TrainConfig

# K = 100, k = 2, 100 Hebbian epochs, 50 readout epochs: 93.9-97.8 % test accuracy (mean
# 95.8 %) over seeds 0..5 of data split and learner, about 1.5 s per run on one thread.
QUICK_HEBBIAN = KrotovHopfieldParams(hidden_units=100, p=3.0, k=2, delta=0.4, epochs=100)
QUICK_READOUT = TrainConfig(lr=1e-2, epochs=50, batch_size=100, monitor="val_accuracy")
QUICK_MIN_ACCURACY = 0.90

# Two units, three inputs, p = 3, k = 2 (the loser is the k-th), delta = 0.4: computed by hand.
W_HAND = torch.tensor([[1.0, 0.5, -0.5], [0.5, 0.5, 0.0]], dtype=torch.float64)
PARAMS_HAND = KrotovHopfieldParams(hidden_units=2, p=3.0, k=2, delta=0.4)


# --------------------------------------------------------------------------- the rule


def test_update_by_hand_single_input():
    # sign(W)|W|^2 = [[1, .25, -.25], [.25, .25, 0]]; v = [1, 2, 1]
    # I = [1 + .5 - .25, .25 + .5] = [1.25, 0.75]: unit 0 wins (g = 1), unit 1 is k-th (g = -.4)
    # ds_0 = v - 1.25 W_0 = [-.25, 1.375, 1.625]
    # ds_1 = -.4 (v - .75 W_1) = -.4 [.625, 1.625, 1] = [-.25, -.65, -.4]
    # max |ds| = 1.625, lr = 0.1
    v = torch.tensor([[1.0, 2.0, 1.0]], dtype=torch.float64)
    ds = torch.tensor([[-0.25, 1.375, 1.625], [-0.25, -0.65, -0.4]], dtype=torch.float64)
    delta_w = krotov_hopfield_update(W_HAND, v, PARAMS_HAND, lr=0.1)
    torch.testing.assert_close(delta_w, 0.1 * ds / 1.625, rtol=1e-12, atol=1e-15)


def test_update_by_hand_sums_over_the_minibatch():
    # Second input v' = [0, 0, 1]: I = [-.25, 0], so unit 1 wins and unit 0 is k-th.
    # ds_1 += v' - 0 * W_1 = [0, 0, 1]
    # ds_0 += -.4 (v' + .25 W_0) = -.4 [.25, .125, .875] = [-.1, -.05, -.35]
    # totals: ds_0 = [-.35, 1.325, 1.275], ds_1 = [-.25, -.65, .6]; max |ds| = 1.325
    v = torch.tensor([[1.0, 2.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    ds = torch.tensor([[-0.35, 1.325, 1.275], [-0.25, -0.65, 0.6]], dtype=torch.float64)
    delta_w = krotov_hopfield_update(W_HAND, v, PARAMS_HAND, lr=0.02)
    torch.testing.assert_close(delta_w, 0.02 * ds / 1.325, rtol=1e-12, atol=1e-15)


def test_update_is_pure_and_its_largest_change_is_lr():
    generator = torch.Generator().manual_seed(3)
    weights = torch.randn(30, 64, generator=generator)
    inputs = torch.rand(16, 1, 8, 8, generator=generator)
    before_w, before_x = weights.clone(), inputs.clone()
    params = KrotovHopfieldParams(hidden_units=30, k=7)
    delta_w = krotov_hopfield_update(weights, inputs, params, lr=0.05)
    assert torch.equal(weights, before_w) and torch.equal(inputs, before_x)
    assert delta_w.shape == weights.shape
    assert delta_w.abs().max().item() == pytest.approx(0.05, rel=1e-6)
    # Only units ranked first or k-th for some input change.
    currents = (weights.sign() * weights.abs().pow(2)) @ inputs.reshape(16, -1).T
    ranked = torch.topk(currents, 7, dim=0).indices
    touched = set(ranked[0].tolist()) | set(ranked[6].tolist())
    changed = set(torch.nonzero(delta_w.abs().sum(dim=1)).flatten().tolist())
    assert changed == touched
    assert torch.equal(krotov_hopfield_update(weights, inputs, params, lr=0.0),
                       torch.zeros_like(weights))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"hidden_units": 0}, "hidden_units"), ({"k": 1}, "k"), ({"k": 8, "hidden_units": 7}, "k"),
     ({"p": 0.5}, "p"), ({"delta": -0.1}, "delta"), ({"eps0": 0.0}, "eps0"),
     ({"epochs": 0}, "epochs"), ({"batch_size": 2.0}, "batch_size"),
     ({"precision": 0.0}, "precision"), ({"init_std": 0.0}, "init_std")],
)
def test_params_are_validated(kwargs, field):
    with pytest.raises(ValueError, match=field):
        KrotovHopfieldParams(**kwargs)


def test_learning_rate_decays_linearly():
    params = KrotovHopfieldParams(eps0=0.04, epochs=4)
    rates = [hebbian_learning_rate(params, e) for e in range(4)]
    assert rates == pytest.approx([0.04, 0.03, 0.02, 0.01])
    with pytest.raises(ValueError):
        hebbian_learning_rate(params, 4)


# --------------------------------------------------------------------------- training


def test_winners_p_norm_approaches_one(digits):
    """The decay term makes ||W_mu||_p = 1 the fixed point of every unit that learns."""
    params = KrotovHopfieldParams(hidden_units=20, p=3.0, k=2, delta=0.4, epochs=100)
    images = digits.train.images.reshape(len(digits.train), -1)
    start = initial_hebbian_weights(params, images.shape[1], seed=0)
    weights = train_hebbian_layer(images, params, seed=0, progress=False)
    currents = (weights.sign() * weights.abs().pow(params.p - 1)) @ images.T
    winners = currents.argmax(dim=0).unique()
    assert len(winners) >= 5
    initial = p_norms(start[winners], params.p)
    final = p_norms(weights[winners], params.p)
    assert initial.min() > 3.0  # N(0, 1) weights in 64 dimensions
    assert (final - 1).abs().median() < 0.05
    # A unit that only started winning late in training may still be on its way.
    assert ((final - 1).abs() < 0.1).float().mean() >= 0.75


def test_training_is_deterministic_by_seed(digits):
    params = KrotovHopfieldParams(hidden_units=10, k=2, epochs=3)
    a = train_hebbian_layer(digits.train.images, params, seed=4, progress=False)
    b = train_hebbian_layer(digits.train.images, params, seed=4, progress=False)
    c = train_hebbian_layer(digits.train.images, params, seed=5, progress=False)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == (10, 64) and a.dtype == torch.float32


def test_checkpoint_resume_gives_identical_weights(digits, tmp_path, monkeypatch):
    params = KrotovHopfieldParams(hidden_units=10, k=2, epochs=4)
    batches = len(digits.train) // params.batch_size
    reference = train_hebbian_layer(digits.train.images, params, seed=1, progress=False)

    # Interrupt in the middle of epoch 2 (from 0): the checkpoint holds epochs 0 and 1.
    calls = {"n": 0}
    real_update = hebbian.krotov_hopfield_update

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2 * batches + batches // 2:
            raise KeyboardInterrupt
        return real_update(*args, **kwargs)

    path = tmp_path / "hebbian.pt"
    monkeypatch.setattr(hebbian, "krotov_hopfield_update", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_hebbian_layer(digits.train.images, params, seed=1, progress=False,
                            checkpoint_path=path)
    monkeypatch.undo()
    saved = torch.load(path, weights_only=True)
    assert saved["epoch"] == 1
    assert saved["samples_seen"] == 2 * batches * params.batch_size

    resumed = train_hebbian_layer(digits.train.images, params, seed=1, progress=False,
                                  checkpoint_path=path)
    assert torch.equal(resumed, reference)
    assert torch.load(path, weights_only=True)["epoch"] == 3
    # A finished checkpoint returns its weights without training.
    again = train_hebbian_layer(digits.train.images, params, seed=1, progress=False,
                                checkpoint_path=path)
    assert torch.equal(again, reference)

    with pytest.raises(ValueError, match="KrotovHopfieldParams"):
        train_hebbian_layer(digits.train.images, KrotovHopfieldParams(hidden_units=10, k=3,
                            epochs=4), seed=1, progress=False, checkpoint_path=path)
    with pytest.raises(ValueError, match="seed"):
        train_hebbian_layer(digits.train.images, params, seed=2, progress=False,
                            checkpoint_path=path)
    with pytest.raises(ValueError, match="different training images"):
        train_hebbian_layer(digits.val.images.repeat(10, 1, 1, 1), params, seed=1,
                            progress=False, checkpoint_path=path)


def test_too_few_images_for_a_minibatch(digits):
    with pytest.raises(ValueError, match="minibatch"):
        train_hebbian_layer(digits.train.images[:50], KrotovHopfieldParams(k=2), progress=False)


# --------------------------------------------------------------------------- classifier


def test_classifier_on_digits(digits):
    clf = HebbianClassifier(QUICK_HEBBIAN, QUICK_READOUT, power=4.5, seed=0)
    stats = clf.fit(digits.train, digits.val, progress=False)
    accuracy = clf.accuracy(digits.test)
    assert accuracy >= QUICK_MIN_ACCURACY, accuracy

    n_train = len(digits.train)
    assert stats.labels_used == n_train
    assert stats.validation_labels_used == len(digits.val)
    assert stats.hebbian_samples_seen == 100 * (n_train // 100) * 100
    assert stats.readout_samples_seen == QUICK_READOUT.epochs * n_train
    assert stats.hebbian_wall_time_s > 0 and stats.readout_wall_time_s > 0
    assert stats.total_wall_time_s >= stats.hebbian_wall_time_s
    # The model is an ordinary classifier for ann.evaluation, and the hidden layer is frozen.
    assert evaluate(clf.model, digits.test).accuracy == accuracy
    features, readout = clf.model
    assert isinstance(features, HebbianFeatures)
    assert [name for name, _ in clf.model.named_parameters()] == ["1.weight", "1.bias"]
    assert clf.weights.shape == (100, 64)


def test_classifier_resumes_from_its_checkpoints(digits, tmp_path):
    params = KrotovHopfieldParams(hidden_units=20, k=2, epochs=3)
    readout = TrainConfig(lr=1e-2, epochs=3, batch_size=100)
    first = HebbianClassifier(params, readout, seed=2)
    stats = first.fit(digits.train, digits.val, progress=False, checkpoint_dir=tmp_path)
    assert (tmp_path / "hebbian.pt").is_file() and (tmp_path / "readout.pt").is_file()
    second = HebbianClassifier(params, readout, seed=2)
    again = second.fit(digits.train, digits.val, progress=False, checkpoint_dir=tmp_path)
    assert torch.equal(first.weights, second.weights)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    assert again.hebbian_samples_seen == stats.hebbian_samples_seen
    assert again.hebbian_wall_time_s == stats.hebbian_wall_time_s


def test_classifier_can_centre_its_inputs(digits):
    params = KrotovHopfieldParams(hidden_units=20, k=2, epochs=3)
    readout = TrainConfig(lr=1e-2, epochs=3, batch_size=100)
    clf = HebbianClassifier(params, readout, seed=0, center_inputs=True)
    clf.fit(digits.train, digits.val, progress=False)
    features = clf.model[0]
    mean = digits.train.images.reshape(len(digits.train), -1).mean(dim=0)
    torch.testing.assert_close(features.offset, mean)
    # The layer was learned on the centred images.
    centred = digits.train.images.reshape(len(digits.train), -1) - mean
    assert torch.equal(clf.weights, train_hebbian_layer(centred, params, 0, progress=False))
    plain = HebbianClassifier(params, readout, seed=0)
    plain.fit(digits.train, digits.val, progress=False)
    assert torch.equal(plain.model[0].offset, torch.zeros(64))


def test_classifier_needs_fit():
    clf = HebbianClassifier(KrotovHopfieldParams(hidden_units=10, k=2))
    with pytest.raises(RuntimeError, match="fit"):
        _ = clf.weights


# --------------------------------------------------------------------------- plot


def _image_count(fig: Figure) -> int:
    return sum(len(ax.images) for ax in fig.axes)


@pytest.mark.parametrize("shared_scale", [False, True])
def test_receptive_field_plot(shared_scale):
    weights = torch.randn(30, 64)
    fig = plot_receptive_fields(weights, (8, 8), n=12, shared_scale=shared_scale, title="W")
    assert isinstance(fig, Figure)
    assert _image_count(fig) == 12
    for ax in fig.axes:
        for image in ax.images:
            low, high = image.get_clim()
            assert low == -high  # symmetric colour scale


def test_receptive_field_plot_takes_any_first_layer():
    linear = torch.nn.Linear(2 * 4 * 4, 5)  # a backprop layer, two channels
    fig = plot_receptive_fields(linear.weight, (2, 4, 4), n=9)
    assert _image_count(fig) == 5  # capped at K
    assert fig.axes[0].images[0].get_array().shape == (4, 8)  # channels side by side
    with pytest.raises(ValueError, match="image_shape"):
        plot_receptive_fields(linear.weight, (5, 5))
