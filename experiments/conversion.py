"""Experiment ``conversion``: train an ANN, convert it to an IF-neuron SNN, and see where the
SNN loses accuracy.

Trains (or loads) an MLP or CNN, converts it with :func:`bridge.convert`, runs the SNN up to
``T_max`` steps with :func:`bridge.run`, and writes the accuracy-against-T curve (the ANN as a
horizontal line), the per-layer agreement of firing rates with the normalised ANN activations,
synaptic operations against accuracy (next to the ANN's MACs), a normalisation-percentile sweep
and the attribution of the loss to layers (:mod:`bridge.diagnostics`).

Presets::

    spikebridge run conversion                          # digits MLP
    spikebridge run conversion --set dataset=fashion-mnist                # Fashion MLP
    spikebridge run conversion --set dataset=fashion-mnist --set model=cnn
    spikebridge run conversion --set dataset=fashion-mnist --set model=cnn \\
        --set activation=qcfs --set qcfs_levels=8       # QCFS-trained CNN
    spikebridge run conversion --set model_path=runs/backprop-.../model.pt

The CNN is the issue's: conv16-3x3, avgpool, conv32-3x3, avgpool, fc10 (no hidden layer).
"""

from __future__ import annotations

import time
from typing import Literal

import torch
from torch import nn

from ann.activations import QCFS
from ann.datasets import Split, load_dataset
from ann.evaluation import evaluate
from ann.models import CNNConfig, MLPConfig, build_model, macs
from ann.serialization import load_model, save_model
from ann.training import TrainConfig, train
from bridge.calibration import activation_percentiles
from bridge.conversion import convert
from bridge.diagnostics import (
    accuracy_curve,
    layer_agreement,
    layer_attribution,
    operations_curve,
    percentile_sweep,
    plot_accuracy_vs_T,
    plot_layer_agreement,
    plot_layer_attribution,
    plot_operations_vs_accuracy,
    plot_percentile_sweep,
)
from bridge.graph import save_graph
from bridge.runners import run as run_snn
from experiments.registry import Experiment, ExperimentConfig, RunOutput
from experiments.run_record import RunContext

__all__ = ["ConversionConfig", "QUICK", "qcfs_from_relu", "run", "EXPERIMENT"]


class ConversionConfig(ExperimentConfig):
    """Settings of ``conversion`` (``--set key=value``)."""

    dataset: Literal["digits", "fashion-mnist"] = "digits"
    data_dir: str | None = None
    """Folder of the Fashion-MNIST IDX files (default: the Debian package's)."""
    train_limit: int | None = None
    """Train on a seeded subset of this many training images; ``None`` uses all."""
    n_test: int | None = 2000
    """Evaluate ANN and SNN on the first N test images; ``None`` uses the whole test split."""
    model: Literal["mlp", "cnn"] = "mlp"
    hidden: tuple[int, ...] | None = None
    """Hidden widths (MLP) or of the fully connected head (CNN); ``None``: (256,) for the MLP,
    () for the CNN."""
    channels: tuple[int, ...] = (16, 32)
    pooling: Literal["avg", "max"] = "avg"
    batch_norm: bool = False
    activation: Literal["relu", "qcfs"] = "relu"
    qcfs_levels: int = 8
    qcfs_init: Literal["relu", "scratch"] = "relu"
    """QCFS only: ``relu`` trains the ReLU network first, copies its weights and sets every
    threshold to the ``qcfs_percentile`` of the ReLU outputs, then fine-tunes with QCFS for
    ``qcfs_epochs`` at ``qcfs_lr``; ``scratch`` trains the QCFS network from its default
    initialisation (every threshold 8.0)."""
    qcfs_epochs: int = 5
    qcfs_lr: float = 3e-4
    qcfs_percentile: float = 99.9
    model_path: str | None = None
    """Load this saved model (``ann.serialization``) instead of training one."""
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    patience: int | None = 5
    percentile: float | Literal["max"] = 99.9
    """Normalisation percentile of the post-ReLU activations, or ``max``."""
    channel_wise: bool = False
    v_init_fraction: float = 0.5
    """Initial membrane of the IF neurons replacing ReLUs, in thresholds (QCFS uses its shift)."""
    input_encoding: Literal["current", "poisson"] = "current"
    n_calib: int = 5000
    """Calibrate on the first N training images."""
    T_max: int = 256
    report_T: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
    snn_batch_size: int = 256
    sweep_percentiles: tuple[float | Literal["max"], ...] = (99.0, 99.9, 99.99, "max")
    n_sweep: int = 1000
    """Test images of the percentile sweep (the first N)."""
    n_diagnostics: int = 500
    """Test images of the per-layer agreement and attribution (the first N)."""


QUICK = {
    "hidden": (64,), "epochs": 15, "lr": 3e-3, "batch_size": 32, "patience": None,
    "T_max": 64, "n_sweep": 200, "n_diagnostics": 200,
}


def _model_config(config: ConversionConfig, input_shape, num_classes):
    common = {"input_shape": input_shape, "num_classes": num_classes,
              "batch_norm": config.batch_norm, "activation": config.activation,
              "qcfs_levels": config.qcfs_levels}
    if config.model == "mlp":
        hidden = (256,) if config.hidden is None else config.hidden
        return MLPConfig(hidden=hidden, **common)
    hidden = () if config.hidden is None else config.hidden
    return CNNConfig(channels=config.channels, pooling=config.pooling, hidden=hidden,
                     kernel_size=3, padding=1, **common)


def _load_data(config: ConversionConfig, seed: int):
    if config.dataset == "digits":
        return load_dataset("digits", seed=seed)
    kwargs: dict = {"seed": seed}
    if config.data_dir is not None:
        kwargs["root"] = config.data_dir
    if config.train_limit is not None:
        kwargs["train_limit"] = config.train_limit
    return load_dataset(config.dataset, **kwargs)


def qcfs_from_relu(
    relu_model: nn.Sequential,
    qcfs_model: nn.Sequential,
    calibration_images: torch.Tensor,
    percentile: float | str = 99.9,
) -> nn.Sequential:
    """Initialise a QCFS network from a trained ReLU network of the same architecture.

    Copies every weight into ``qcfs_model`` (in place, and returned) and sets the threshold
    :math:`\\lambda` of each QCFS layer to the ``percentile`` of the outputs of the ReLU it
    replaces on ``calibration_images`` (the scale the converter would give that ReLU), so that
    the quantisation grid covers the activations the network already uses. Training from the
    default threshold (8.0) instead can leave :math:`\\lambda` far above the activations, and a
    network that then relies on its coarse quantisation converts well only at :math:`T = L`.
    """
    relu_layers, qcfs_layers = list(relu_model), list(qcfs_model)
    if len(relu_layers) != len(qcfs_layers):
        raise ValueError("the ReLU and QCFS networks have different numbers of layers")
    positions = []
    for i, (a, b) in enumerate(zip(relu_layers, qcfs_layers, strict=True)):
        if isinstance(b, QCFS):
            if not isinstance(a, nn.ReLU):
                raise ValueError(f"layer {i}: QCFS where the ReLU network has {type(a).__name__}")
            positions.append(i)
        elif type(a) is not type(b):
            raise ValueError(f"layer {i}: {type(a).__name__} against {type(b).__name__}")
    problems = qcfs_model.load_state_dict(relu_model.state_dict(), strict=False)
    expected = {f"{i}.threshold" for i in positions}
    if problems.unexpected_keys or set(problems.missing_keys) != expected:
        raise ValueError(f"the networks' parameters differ: {problems}")
    was_training = relu_model.training
    relu_model.eval()
    try:
        scales = activation_percentiles(relu_layers, calibration_images, positions,
                                        percentile=percentile, channel_wise=False)
    finally:
        relu_model.train(was_training)
    with torch.no_grad():
        for i in positions:
            qcfs_layers[i].threshold.fill_(max(float(scales[i]), 1e-6))
    return qcfs_model


def _train(model, data, config: ConversionConfig, ctx: RunContext, *, lr: float, epochs: int,
           checkpoint: str):
    train_config = TrainConfig(lr=lr, epochs=epochs, batch_size=config.batch_size,
                               weight_decay=config.weight_decay, patience=config.patience,
                               seed=ctx.seed)
    result = train(model, data.train, data.val, train_config, device=ctx.device,
                   checkpoint_path=ctx.path(checkpoint), progress=ctx.progress)
    model.cpu().eval()
    return {
        "train_wall_time_s": result.wall_time_s,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val_accuracy": result.history["val_accuracy"][result.best_epoch],
    }


def _ann(config: ConversionConfig, data, ctx: RunContext):
    """The trained ANN, its configuration, training facts and the ReLU network it was
    fine-tuned from (QCFS from ReLU only, else ``None``)."""
    if config.model_path is not None:
        model, model_config, extra = load_model(config.model_path)
        return model.eval(), model_config, {"loaded_from": config.model_path,
                                            "saved_extra": extra}, None
    model_config = _model_config(config, data.input_shape, data.num_classes)
    torch.manual_seed(ctx.seed)
    if model_config.activation == "qcfs" and config.qcfs_init == "relu":
        relu_config = _model_config(config.model_copy(update={"activation": "relu"}),
                                    data.input_shape, data.num_classes)
        relu = build_model(relu_config)
        relu_training = _train(relu, data, config, ctx, lr=config.lr, epochs=config.epochs,
                               checkpoint="checkpoint_relu.pt")
        save_model(ctx.path("model_relu.pt"), relu, relu_config, extra={"dataset": data.name})
        model = qcfs_from_relu(relu, build_model(model_config),
                               data.train.images[:config.n_calib], config.qcfs_percentile)
        training = _train(model, data, config, ctx, lr=config.qcfs_lr,
                          epochs=config.qcfs_epochs, checkpoint="checkpoint.pt")
        training = {**training, "relu": relu_training}
    else:
        relu = None
        model = build_model(model_config)
        training = _train(model, data, config, ctx, lr=config.lr, epochs=config.epochs,
                          checkpoint="checkpoint.pt")
    save_model(ctx.path("model.pt"), model, model_config, extra={"dataset": data.name})
    return model, model_config, training, relu


def _steps(T_max: int) -> tuple[int, ...]:
    """1, 2, 4, ... up to ``T_max`` (and ``T_max``)."""
    steps, t = [], 1
    while t < T_max:
        steps.append(t)
        t *= 2
    return (*steps, T_max)


def run(config: ConversionConfig, ctx: RunContext) -> RunOutput:
    """Train or load, convert, simulate, diagnose, plot."""
    data = _load_data(config, ctx.seed)
    model, model_config, training, relu = _ann(config, data, ctx)
    n = len(data.test) if config.n_test is None else min(config.n_test, len(data.test))
    images, labels = data.test.images[:n], data.test.labels[:n]
    ann_accuracy = evaluate(model, Split(images, labels)).accuracy
    relu_accuracy = None if relu is None else evaluate(relu, Split(images, labels)).accuracy
    calibration = data.train.images[:config.n_calib]
    report_T = tuple(t for t in config.report_T if t <= config.T_max)

    start = time.perf_counter()
    conversion = convert(model, calibration, percentile=config.percentile,
                         channel_wise=config.channel_wise, input_encoding=config.input_encoding,
                         v_init_fraction=config.v_init_fraction)
    conversion_s = time.perf_counter() - start
    graph = conversion.graph
    save_graph(graph, ctx.path("snn_graph.pt"))
    result = run_snn(graph, images, config.T_max, device=ctx.device,
                 batch_size=config.snn_batch_size, record_spikes=False, seed=ctx.seed)
    curve = accuracy_curve(result, labels)
    ops = operations_curve(result, labels)

    start = time.perf_counter()
    n_diag = min(config.n_diagnostics, n)
    diag_images, diag_labels = images[:n_diag], labels[:n_diag]
    diag_ann = evaluate(model, Split(diag_images, diag_labels)).accuracy
    agreement = layer_agreement(graph, diag_images, _steps(config.T_max),
                                batch_size=config.snn_batch_size, device=ctx.device,
                                seed=ctx.seed)
    attribution = layer_attribution(
        graph, diag_images, diag_labels, config.T_max,
        snn_result=result if n_diag == n else None, ann_accuracy=diag_ann,
        batch_size=config.snn_batch_size, device=ctx.device, seed=ctx.seed)
    n_sweep = min(config.n_sweep, n)
    sweep = percentile_sweep(
        model, calibration, images[:n_sweep], labels[:n_sweep],
        percentiles=config.sweep_percentiles, T=config.T_max,
        ann_accuracy=evaluate(model, Split(images[:n_sweep], labels[:n_sweep])).accuracy,
        batch_size=config.snn_batch_size, device=ctx.device, channel_wise=config.channel_wise,
        input_encoding=config.input_encoding, v_init_fraction=config.v_init_fraction)
    diagnostics_s = time.perf_counter() - start

    title = f"{data.name} {config.model.upper()} ({model_config.activation})"
    figures = {
        "accuracy": ctx.save_figure(plot_accuracy_vs_T(
            curve, ann_accuracy, marks=report_T, title=f"{title}: SNN accuracy against T"),
            "accuracy_vs_T"),
        "agreement": ctx.save_figure(plot_layer_agreement(
            agreement, title=f"{title}: SNN rates against normalised ANN activations "
                             f"({n_diag} images)"), "layer_correlation"),
        "operations": ctx.save_figure(plot_operations_vs_accuracy(
            ops, ann_accuracy, marks=report_T, title=f"{title}: synaptic operations"),
            "synops_vs_accuracy"),
        "sweep": ctx.save_figure(plot_percentile_sweep(
            sweep, marks=report_T, title=f"{title}: normalisation percentile ({n_sweep} images)"),
            "percentile_sweep"),
        "attribution": ctx.save_figure(plot_layer_attribution(
            attribution, marks=report_T,
            title=f"{title}: which layer loses the accuracy ({n_diag} images)"),
            "layer_attribution"),
    }

    snn_accuracy = curve.table(report_T)
    metrics = {
        "dataset": data.name,
        "model": model_config.to_dict(),
        "test_images": n,
        "ann_accuracy": ann_accuracy,
        "relu_ann_accuracy": relu_accuracy,
        "qcfs_thresholds": [m.threshold.item() for m in model if isinstance(m, QCFS)],
        "ann_macs_per_image": macs(model, data.input_shape),
        "snn_accuracy": snn_accuracy,
        "loss_points": {t: 100 * (ann_accuracy - a) for t, a in snn_accuracy.items()},
        "snn_accuracy_T_max": curve.at(config.T_max),
        "operations": {t: ops.at(t) for t in report_T},
        "neurons": graph.num_neurons(),
        "conversion_report": conversion.report.to_dict(),
        "layer_agreement": {k: v.to_dict() for k, v in agreement.items()},
        "attribution": attribution.to_dict(report_T),
        "percentile_sweep": sweep.to_dict(report_T),
        "training": training,
        "conversion_wall_time_s": conversion_s,
        "snn_wall_time_s": result.wall_time_s,
        "snn_time_per_image_ms": 1000 * result.wall_time_s / n,
        "diagnostics_wall_time_s": diagnostics_s,
        "torch_threads": torch.get_num_threads(),
    }
    return RunOutput(metrics=metrics, report=_report(config, metrics, figures, report_T))


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _report(config: ConversionConfig, m: dict, figures: dict[str, str], report_T) -> str:
    rows = "\n".join(
        f"| {t} | {100 * m['snn_accuracy'][t]:.2f}% | {m['loss_points'][t]:+.2f} | "
        f"{m['operations'][t]['synops_per_image']:,.0f} | "
        f"{m['operations'][t]['analog_macs_per_image']:,.0f} | "
        f"{m['operations'][t]['ops_over_ann_macs']:.2f} |"
        for t in report_T
    )
    sweep = m["percentile_sweep"]
    sweep_rows = "\n".join(
        f"| {label} | " + " | ".join(f"{100 * v:.2f}" for v in entry["accuracy"].values()) + " |"
        for label, entry in sweep.items()
    )
    sweep_head = " | ".join(f"T={t}" for t in report_T)
    last = report_T[-1] if report_T else config.T_max
    losses = m["attribution"]["loss_by_source"].get(last, {})
    loss_rows = "\n".join(f"| {k} | {100 * v:+.2f} |" for k, v in losses.items())
    layers = "\n".join(
        f"| {name} | {_number(a['correlation'][config.T_max])} | "
        f"{a['rmse'][config.T_max]:.4f} | {100 * a['saturated_fraction']:.2f}% |"
        for name, a in m["layer_agreement"].items()
    )
    training = m["training"]
    if "loaded_from" in training:
        trained = f"loaded from `{training['loaded_from']}`"
    else:
        trained = (f"trained {training['epochs_run']} epochs in "
                   f"{training['train_wall_time_s']:.1f} s")
        if "relu" in training:
            relu = training["relu"]
            trained = (f"ReLU network trained {relu['epochs_run']} epochs "
                       f"({100 * m['relu_ann_accuracy']:.2f}%), then QCFS fine-tuned "
                       f"{training['epochs_run']} epochs; thresholds "
                       + ", ".join(f"{v:.3g}" for v in m["qcfs_thresholds"]))
    return f"""## Result

| quantity | value |
| --- | --- |
| data set | {m['dataset']}, first {m['test_images']} test images |
| model | {m['model']['kind']} ({m['model']['activation']}), {trained} |
| ANN accuracy | **{100 * m['ann_accuracy']:.2f}%**, {m['ann_macs_per_image']:,} MACs per image |
| conversion | percentile {config.percentile}, channel-wise {config.channel_wise}, \
v_init {config.v_init_fraction}, {config.input_encoding} input |
| SNN accuracy at T={config.T_max} | **{100 * m['snn_accuracy_T_max']:.2f}%** |
| SNN wall time | {m['snn_wall_time_s']:.2f} s ({m['snn_time_per_image_ms']:.3f} ms per image, \
T={config.T_max}, {m['torch_threads']} thread(s)) |

| T | SNN accuracy | loss (points) | synops / image | analog MACs / image | ops / ANN MACs |
| --- | --- | --- | --- | --- | --- |
{rows}

![accuracy against T]({figures['accuracy']})

## Per-layer agreement with the normalised ANN activations (T={config.T_max})

| layer | correlation | RMS rate error | saturated |
| --- | --- | --- | --- |
{layers}

![per-layer correlation]({figures['agreement']})

## Which layer loses the accuracy (T={last})

Loss split into `ann_vs_rate_model` (the SNN's T -> infinity limit against the ANN: clipping at
the scales, and a QCFS network's quantisation) and, per layer, the accuracy recovered by
replacing that layer's spikes with its exact rates (layers before it already replaced); see
`bridge.diagnostics`.

| source | accuracy lost (points) |
| --- | --- |
{loss_rows}

![attribution]({figures['attribution']})

## Synaptic operations

![synops against accuracy]({figures['operations']})

## Percentile sweep (accuracy %, first {min(config.n_sweep, m['test_images'])} images)

| normalisation | {sweep_head} |
| --- | {' | '.join('---' for _ in report_T)} |
{sweep_rows}

![percentile sweep]({figures['sweep']})
"""


EXPERIMENT = Experiment(
    name="conversion",
    description="Convert a trained MLP/CNN (ReLU or QCFS) to an IF-neuron SNN; accuracy vs T, "
                "per-layer diagnostics, synaptic operations and a percentile sweep.",
    config_type=ConversionConfig,
    run=run,
    quick=QUICK,
)
