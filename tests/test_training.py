"""Training, evaluation and plots of :mod:`ann` on the bundled digits data set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ann.datasets import Split
from ann.evaluation import Evaluation, evaluate, predict
from ann.models import MLPConfig, build_model
from ann.plots import plot_confusion_matrix, plot_learning_curves
from ann.training import HISTORY_KEYS, TrainConfig, epoch_generator, train

# A quick configuration that reaches >= 96.5 % test accuracy for every init seed 0..9 in
# about 0.15 s per run.
QUICK = TrainConfig(optimizer="adam", lr=1e-2, epochs=20, batch_size=64, seed=0)


def _model(digits, seed=0, **kwargs):
    torch.manual_seed(seed)
    return build_model(MLPConfig(digits.input_shape, digits.num_classes, **kwargs))


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"lr": 0.0}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"patience": 0}, "patience"),
        ({"monitor": "train_loss"}, "monitor"),
        ({"seed": -1}, "seed"),
    ],
)
def test_train_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**kwargs)


def test_train_config_dict_round_trip():
    config = TrainConfig(optimizer="sgd", lr=0.1, patience=3, monitor="val_accuracy", seed=7)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_epoch_order_depends_only_on_seed_and_epoch():
    first = torch.randperm(100, generator=epoch_generator(3, 5))
    again = torch.randperm(100, generator=epoch_generator(3, 5))
    assert torch.equal(first, again)
    assert not torch.equal(first, torch.randperm(100, generator=epoch_generator(3, 6)))
    assert not torch.equal(first, torch.randperm(100, generator=epoch_generator(4, 5)))


# --------------------------------------------------------------------------- training


def test_mlp_learns_digits(digits):
    model = _model(digits, hidden=(128,))
    result = train(model, digits.train, digits.val, QUICK, progress=False)
    assert result.epochs_run == QUICK.epochs and not result.stopped_early
    assert set(result.history) == set(HISTORY_KEYS)
    assert all(len(v) == QUICK.epochs for v in result.history.values())
    assert result.samples_seen == QUICK.epochs * len(digits.train)
    assert result.wall_time_s > 0
    # The model ends with the best validation weights.
    best = result.best_epoch
    assert result.history["val_loss"][best] == min(result.history["val_loss"])
    assert evaluate(model, digits.val).loss == pytest.approx(result.history["val_loss"][best])
    assert evaluate(model, digits.test).accuracy >= 0.95


def test_same_seed_gives_identical_history(digits):
    config = TrainConfig(lr=1e-2, epochs=3, seed=1)
    runs = []
    for _ in range(2):
        model = _model(digits, hidden=(32,))
        runs.append((model, train(model, digits.train, digits.val, config, progress=False)))
    (model_a, result_a), (model_b, result_b) = runs
    assert result_a.history == result_b.history
    assert _states_equal(model_a, model_b)
    # The shuffle seed matters on its own, with the same initialisation.
    other = _model(digits, hidden=(32,))
    result_c = train(other, digits.train, digits.val, TrainConfig(lr=1e-2, epochs=3, seed=2),
                     progress=False)
    assert result_c.history != result_a.history


class _Crash(Exception):
    pass


@pytest.mark.parametrize(
    ("config", "model_kwargs"),
    [
        (TrainConfig(lr=1e-2, epochs=6, batch_size=50, patience=10, seed=3), {"hidden": (32,)}),
        (TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4, epochs=6,
                     batch_size=50, monitor="val_accuracy", seed=4),
         {"hidden": (32, 16), "batch_norm": True}),
    ],
    ids=["adam", "sgd-batchnorm"],
)
def test_crash_and_resume_is_bit_identical(digits, tmp_path, config, model_kwargs):
    reference_model = _model(digits, **model_kwargs)
    reference = train(reference_model, digits.train, digits.val, config, progress=False)

    checkpoint = tmp_path / "run" / "checkpoint.pt"

    def crash_after_epoch_2(epoch, history):
        assert len(history["val_loss"]) == epoch + 1
        if epoch == 2:
            raise _Crash

    with pytest.raises(_Crash):
        train(_model(digits, **model_kwargs), digits.train, digits.val, config,
              checkpoint_path=checkpoint, progress=False, on_epoch_end=crash_after_epoch_2)
    assert checkpoint.is_file()
    assert not list(checkpoint.parent.glob("*.tmp"))

    # A different initialisation: everything must come from the checkpoint.
    resumed_model = _model(digits, seed=123, **model_kwargs)
    epochs_seen = []
    resumed = train(resumed_model, digits.train, digits.val, config, checkpoint_path=checkpoint,
                    progress=False, on_epoch_end=lambda epoch, history: epochs_seen.append(epoch))
    assert epochs_seen == [3, 4, 5]
    assert resumed.history == reference.history
    assert resumed.best_epoch == reference.best_epoch
    assert resumed.epochs_run == reference.epochs_run == 6
    assert resumed.samples_seen == reference.samples_seen
    assert _states_equal(resumed_model, reference_model)

    # Resuming a finished run trains nothing and gives the same result again.
    again_model = _model(digits, seed=7, **model_kwargs)
    again = train(again_model, digits.train, digits.val, config, checkpoint_path=checkpoint,
                  progress=False, on_epoch_end=lambda epoch, history: epochs_seen.append(epoch))
    assert epochs_seen == [3, 4, 5]
    assert again.history == reference.history
    assert _states_equal(again_model, reference_model)


def test_checkpoint_of_another_model_is_rejected(digits, tmp_path):
    checkpoint = tmp_path / "ckpt.pt"
    config = TrainConfig(epochs=1)
    train(_model(digits, hidden=(16,)), digits.train, digits.val, config,
          checkpoint_path=checkpoint, progress=False)
    with pytest.raises(ValueError, match=r"ckpt\.pt belongs to a different model"):
        train(_model(digits, hidden=(24,)), digits.train, digits.val, config,
              checkpoint_path=checkpoint, progress=False)
    with pytest.raises(ValueError, match=r"ckpt\.pt was written with a different TrainConfig"):
        train(_model(digits, hidden=(16,)), digits.train, digits.val,
              TrainConfig(epochs=1, lr=0.5), checkpoint_path=checkpoint, progress=False)


def test_garbage_checkpoint_is_rejected(digits, tmp_path):
    checkpoint = tmp_path / "ckpt.pt"
    checkpoint.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(ValueError, match=r"ckpt\.pt"):
        train(_model(digits, hidden=(16,)), digits.train, digits.val, TrainConfig(epochs=1),
              checkpoint_path=checkpoint, progress=False)


def test_early_stopping_when_nothing_improves(digits):
    # Adam steps of 1e-30 leave float32 weights unchanged, so the validation loss never
    # strictly improves after the first epoch.
    config = TrainConfig(lr=1e-30, epochs=50, patience=3)
    result = train(_model(digits, hidden=(16,)), digits.train, digits.val, config,
                   progress=False)
    assert result.stopped_early
    assert result.best_epoch == 0
    assert result.epochs_run == 1 + config.patience


def test_early_stopping_on_overfitting(digits):
    config = TrainConfig(lr=1e-2, epochs=300, patience=3)
    result = train(_model(digits, hidden=(128,)), digits.train, digits.val, config,
                   progress=False)
    assert result.stopped_early
    assert result.epochs_run < config.epochs
    assert result.best_epoch == result.epochs_run - 1 - config.patience


def test_single_sample_tail_batch_with_batch_norm(digits):
    # 1258 training images: batch size 1257 leaves a tail of one, which batch norm rejects.
    n = len(digits.train)
    result = train(_model(digits, hidden=(16,), batch_norm=True), digits.train, digits.val,
                   TrainConfig(epochs=1, batch_size=n - 1), progress=False)
    assert result.samples_seen == n


def test_progress_bar(digits, capsys):
    train(_model(digits, hidden=(16,)), digits.train, digits.val, TrainConfig(epochs=2),
          progress=True)
    assert "val_loss" in capsys.readouterr().err
    train(_model(digits, hidden=(16,)), digits.train, digits.val, TrainConfig(epochs=2),
          progress=False)
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- evaluation


def test_evaluate_and_predict(digits):
    model = _model(digits, hidden=(32,))
    train(model, digits.train, digits.val, TrainConfig(lr=1e-2, epochs=3), progress=False)
    model.train()
    result = evaluate(model, digits.test, batch_size=100)
    assert model.training  # the previous mode is restored
    assert isinstance(result, Evaluation)
    n = len(digits.test)
    assert result.confusion.shape == (10, 10)
    assert result.confusion.dtype == np.int64
    assert result.confusion.sum() == n == result.num_samples
    assert np.trace(result.confusion) / n == pytest.approx(result.accuracy)
    np.testing.assert_array_equal(result.confusion.sum(axis=1),
                                  np.bincount(digits.test.labels.numpy(), minlength=10))

    labels = predict(model, digits.test.images, batch_size=64)
    assert model.training
    assert labels.dtype == torch.int64 and labels.shape == (n,)
    assert (labels == digits.test.labels).double().mean().item() == pytest.approx(result.accuracy)
    model.eval()
    with torch.no_grad():
        logits = model(digits.test.images)
    assert torch.equal(labels, logits.argmax(dim=1))
    expected_loss = F.cross_entropy(logits, digits.test.labels).item()
    assert result.loss == pytest.approx(expected_loss, rel=1e-5)


def test_evaluate_rejects_labels_out_of_range(digits):
    model = _model(digits, hidden=(8,))
    bad = Split(images=digits.test.images[:4], labels=torch.tensor([0, 1, 2, 10]))
    with pytest.raises(ValueError, match="labels"):
        evaluate(model, bad)


# --------------------------------------------------------------------------- plots


def test_plot_learning_curves(tmp_path):
    history = {
        "train_loss": [1.0, 0.5, 0.3],
        "val_loss": [1.1, 0.6, 0.5],
        "train_accuracy": [0.5, 0.8, 0.9],
        "val_accuracy": [0.4, 0.7, 0.85],
    }
    fig = plot_learning_curves(history, best_epoch=2, title="digits")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_xlabel() == "epoch" and "loss" in loss_ax.get_ylabel()
    assert acc_ax.get_ylabel() == "accuracy"
    assert len(loss_ax.get_lines()) == 3  # train, validation, best-epoch marker
    fig.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_plot_confusion_matrix(tmp_path):
    confusion = np.array([[5, 1, 0], [0, 3, 3], [0, 0, 0]])
    fig = plot_confusion_matrix(confusion, ["a", "b", "c"])
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # the matrix and its colour bar
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [str(v) for v in confusion.ravel()]
    image = ax.get_images()[0].get_array()
    np.testing.assert_allclose(image[1], [0.0, 0.5, 0.5])
    np.testing.assert_allclose(image[2], [0.0, 0.0, 0.0])  # an empty row stays finite
    fig.savefig(tmp_path / "confusion.png")

    big = plot_confusion_matrix(np.eye(20, dtype=int))
    assert len(big.axes[0].texts) == 0  # no counts written in a large matrix
    with pytest.raises(ValueError, match="class names"):
        plot_confusion_matrix(confusion, ["a", "b"])
