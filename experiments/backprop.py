"""Experiment ``backprop``: train an MLP or CNN with backprop and report how well it does.

The rate-based baseline every spiking learner in spikebridge is compared with. Writes learning
curves, a confusion matrix, the test accuracy and the training wall time.
"""

from __future__ import annotations

from typing import Literal

import torch

from ann.datasets import load_dataset
from ann.evaluation import evaluate
from ann.models import CNNConfig, MLPConfig, build_model, macs
from ann.plots import plot_confusion_matrix, plot_learning_curves
from ann.serialization import save_model
from ann.training import TrainConfig, train
from experiments.registry import Experiment, ExperimentConfig, RunOutput
from experiments.run_record import RunContext

__all__ = ["BackpropConfig", "run", "EXPERIMENT"]


class BackpropConfig(ExperimentConfig):
    """Settings of ``backprop`` (``--set key=value``)."""

    dataset: Literal["digits", "fashion-mnist", "mnist"] = "digits"
    data_dir: str | None = None
    """Folder of IDX files (required for ``mnist``; overrides the Fashion-MNIST default)."""
    train_limit: int | None = None
    """Use only this many training images (seeded subset); ``None`` uses all."""
    test_limit: int | None = None
    model: Literal["mlp", "cnn"] = "mlp"
    hidden: tuple[int, ...] = (256,)
    """Hidden widths of the MLP, or of the CNN's fully connected part (after the convolutions)."""
    channels: tuple[int, ...] = (32, 64)
    pooling: Literal["avg", "max"] = "avg"
    batch_norm: bool = True
    bias: bool = True
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 60
    batch_size: int = 64
    patience: int | None = 10
    """Stop when the validation loss has not improved for this many epochs."""


QUICK = {"hidden": (64,), "epochs": 15, "batch_size": 32, "lr": 3e-3, "patience": None}


def _load(config: BackpropConfig, seed: int):
    kwargs: dict = {"seed": seed}
    if config.dataset == "digits":
        return load_dataset("digits", **kwargs)
    if config.data_dir is not None:
        kwargs["root"] = config.data_dir
    if config.train_limit is not None:
        kwargs["train_limit"] = config.train_limit
    if config.test_limit is not None:
        kwargs["test_limit"] = config.test_limit
    return load_dataset(config.dataset, **kwargs)


def _model_config(config: BackpropConfig, input_shape, num_classes):
    if config.model == "mlp":
        return MLPConfig(input_shape=input_shape, num_classes=num_classes, hidden=config.hidden,
                         bias=config.bias, batch_norm=config.batch_norm)
    return CNNConfig(input_shape=input_shape, num_classes=num_classes, channels=config.channels,
                     pooling=config.pooling, hidden=config.hidden, bias=config.bias,
                     batch_norm=config.batch_norm)


def run(config: BackpropConfig, ctx: RunContext) -> RunOutput:
    """Train, evaluate on the held-out test split, plot, and save the model."""
    data = _load(config, ctx.seed)
    model_config = _model_config(config, data.input_shape, data.num_classes)
    torch.manual_seed(ctx.seed)
    model = build_model(model_config)
    train_config = TrainConfig(
        optimizer=config.optimizer, lr=config.lr, momentum=config.momentum,
        weight_decay=config.weight_decay, epochs=config.epochs, batch_size=config.batch_size,
        patience=config.patience, seed=ctx.seed,
    )
    result = train(model, data.train, data.val, train_config, device=ctx.device,
                   checkpoint_path=ctx.path("checkpoint.pt"), progress=ctx.progress)
    test = evaluate(model, data.test, device=ctx.device)
    save_model(ctx.path("model.pt"), model.cpu(), model_config,
               extra={"dataset": data.name, "test_accuracy": test.accuracy})

    curves = ctx.save_figure(
        plot_learning_curves(result.history, best_epoch=result.best_epoch), "learning_curves"
    )
    confusion = ctx.save_figure(plot_confusion_matrix(test.confusion, data.class_names),
                                "confusion_matrix")
    metrics = {
        "dataset": data.name,
        "model": config.model,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "best_val_accuracy": result.history["val_accuracy"][result.best_epoch],
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "train_samples": len(data.train),
        "samples_seen": result.samples_seen,
        "parameters": sum(p.numel() for p in model.parameters()),
        "macs_per_inference": macs(model, data.input_shape),
        "train_wall_time_s": result.wall_time_s,
        "history": result.history,
    }
    n_train, n_val, n_test = len(data.train), len(data.val), len(data.test)
    best_val = 100 * metrics["best_val_accuracy"]
    report = f"""## Result

| quantity | value |
| --- | --- |
| data set | {data.name} ({n_train} train / {n_val} val / {n_test} test) |
| model | {config.model}: {metrics['parameters']:,} parameters, \
{metrics['macs_per_inference']:,} MACs per inference |
| test accuracy | **{100 * test.accuracy:.2f}%** |
| best validation accuracy | {best_val:.2f}% \
(epoch {result.best_epoch + 1} of {result.epochs_run}) |
| training wall time | {result.wall_time_s:.1f} s on {ctx.device} |

## Learning curves

![learning curves]({curves})

## Confusion matrix (test split, rows: true class)

![confusion matrix]({confusion})
"""
    return RunOutput(metrics=metrics, report=report)


EXPERIMENT = Experiment(
    name="backprop",
    description="Train an MLP or CNN with backprop (digits, Fashion-MNIST or MNIST IDX files).",
    config_type=BackpropConfig,
    run=run,
    quick=QUICK,
)
