"""Experiment ``compare``: five learners on one data set, side by side.

On one data set (``digits`` by default; ``fashion-mnist``, or MNIST-format IDX files with
``--set dataset=mnist --set data_root=DIR``) it trains and evaluates

* ``backprop`` -- an MLP trained with backprop (:func:`ann.training.train`);
* ``converted`` -- that MLP converted to an IF-neuron SNN (:func:`bridge.convert`, simulated
  with :func:`bridge.runners.run`);
* ``surrogate`` -- a leaky spiking MLP trained with surrogate gradients through time
  (:func:`bridge.surrogate.train_surrogate_snn`);
* ``stdp`` -- the unsupervised STDP network of Diehl & Cook (2015) (:mod:`neuro.diehl_cook`),
  read out by assigning each excitatory neuron the class it responds to most;
* ``hebbian`` -- the competing-hidden-units Hebbian layer of Krotov & Hopfield (2019) with a
  linear readout (:class:`ann.hebbian.HebbianClassifier`),

and writes one table (test accuracy, labels used in training, training wall time, training
samples seen, inference time steps, operations per inference, device) and four figures:
validation accuracy against training samples seen, test accuracy against inference time steps,
first-layer receptive fields of the learners that have one, and a raster of the STDP network
on one test image.

Each learner's training checkpoints into the run folder, and a learner that finished writes
``learner_<name>.json``; ``spikebridge run compare --resume DIR`` skips finished learners and
continues the interrupted one from its checkpoint.

Counting conventions
--------------------
* *Labels used in training*: training labels a learner's parameters depend on; validation labels
  used only to pick the best epoch are counted apart. The STDP and Hebbian layers learn from
  images alone; their readout (label assignment, linear readout) uses labels, and the table says
  so.
* *Training samples seen*: presentations of a training image during training, all stages
  (epochs x images; for the STDP network also the labelled images presented to assign labels;
  for the converted SNN the ANN's plus the unlabelled calibration images).
* *Operations per inference*: for the ANNs (backprop, Hebbian) multiply-accumulates of one dense
  pass (:func:`ann.models.macs`); for the SNNs synaptic operations, one accumulate per spike and
  outgoing synapse, summed over the inference time steps, plus the multiply-accumulates of a
  first layer that takes the image as an analog current (as :mod:`bridge.diagnostics` counts).
* *Inference time steps*: 1 for the ANNs; ``T`` for the converted and surrogate SNNs (1 ms
  steps); for the STDP network the steps of one 350 ms presentation at 0.5 ms, times the mean
  number of presentations (an image that evokes fewer than 5 excitatory spikes is shown again
  at a higher intensity, as in the paper), which the table gives too.

Budgets
-------
The defaults are the full run on the digits: 2 min 35 s on a busy 2-core CPU (load average
about 8; most of it the STDP network). On Fashion-MNIST or MNIST the same defaults would show all
55,000 training images to the STDP network three times, hours on a CPU: limit it. This run took
23 minutes on the same machine (STDP 400 neurons 66.8 %, backprop 87.9 %; docs/experiments/
compare.md)::

    spikebridge run compare --set dataset=fashion-mnist --set train_limit=20000 \
        --set test_limit=2000 --set stdp_samples=20000 --set stdp_epochs=1 \
        --set stdp_n_assign=10000

``--quick`` shrinks every network and budget (under 2 minutes on a busy 2-core CPU).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter
from pydantic import Field, ValidationInfo, field_validator

from ann.datasets import DatasetError, DatasetSplits, Split, load_dataset
from ann.evaluation import evaluate
from ann.hebbian import HebbianClassifier, KrotovHopfieldParams, p_norms, plot_receptive_fields
from ann.models import MLPConfig, build_model, macs
from ann.serialization import load_model, save_model
from ann.training import TrainConfig, train
from bridge.conversion import convert
from bridge.diagnostics import accuracy_curve, operations_curve
from bridge.runners import run as run_snn
from bridge.surrogate import (
    SurrogateSNNConfig,
    build_surrogate_snn,
    evaluate_surrogate_snn,
    train_surrogate_snn,
)
from experiments.registry import Experiment, ExperimentConfig, RunOutput
from experiments.run_record import RunContext, read_json, write_json
from neuro.diehl_cook.labels import assign_labels, classify
from neuro.diehl_cook.params import DiehlCookParams
from neuro.diehl_cook.torch_network import (
    START_INTENSITY,
    input_rates,
    poisson_input,
    present,
)
from neuro.diehl_cook.training import (
    DiehlCookNetwork,
    evaluate_diehl_cook,
    matched_input_params,
    spike_counts,
    spike_totals,
    train_diehl_cook,
)
from neuro.plots import raster as plot_raster
from neuro.records import SpikeRecord

__all__ = ["LEARNERS", "CompareConfig", "QUICK", "run", "EXPERIMENT"]

Learner = Literal["backprop", "converted", "surrogate", "stdp", "hebbian"]

LEARNERS: dict[str, str] = {
    "backprop": "backprop ANN (MLP)",
    "converted": "ANN converted to SNN (IF)",
    "surrogate": "surrogate-gradient SNN (LIF)",
    "stdp": "STDP network (Diehl & Cook 2015)",
    "hebbian": "Hebbian rate network (Krotov & Hopfield 2019)",
}
"""Every learner by name, with the label used in the table and the plots."""

_DASHES = {"backprop": (0, (6, 3)), "hebbian": (3, (2, 2))}

_COLOURS = {"backprop": "C0", "converted": "C1", "surrogate": "C2", "stdp": "C3",
            "hebbian": "C4"}


_POSITIVE = ("epochs", "lr", "batch_size", "n_calib", "snn_T", "T_max", "surrogate_T",
             "surrogate_T_max", "surrogate_epochs", "surrogate_lr", "surrogate_batch_size",
             "surrogate_tau_ms", "stdp_n_exc", "stdp_epochs", "stdp_batch_size",
             "stdp_curve_points", "stdp_curve_images", "stdp_ops_images", "hebbian_units",
             "hebbian_eps0", "hebbian_readout_epochs", "snn_batch_size")
_POSITIVE_OR_NONE = ("train_limit", "test_limit", "stdp_samples", "stdp_n_assign",
                     "hebbian_epochs", "hebbian_batch_size",
                     "stdp_max_rate_hz", "n_test", "torch_threads")


class CompareConfig(ExperimentConfig):
    """Settings of ``compare`` (``--set key=value``). The defaults are the full run on digits."""

    dataset: Literal["digits", "fashion-mnist", "mnist", "idx"] = "digits"
    data_root: str | None = Field(default=None, validate_default=True)
    """Folder of the four MNIST-format IDX files: required for ``mnist`` and ``idx``; for
    ``fashion-mnist`` it replaces the default folder."""
    train_limit: int | None = None
    """IDX data sets only: train on a seeded subset of this many training images."""
    test_limit: int | None = None
    """IDX data sets only: test on a seeded subset of this many test images."""
    learners: tuple[Learner, ...] = ("backprop", "converted", "surrogate", "stdp", "hebbian")
    """Which learners to run (``converted`` needs ``backprop``)."""

    # (a) backprop ANN
    hidden: tuple[int, ...] = (256,)
    batch_norm: bool = True
    """BatchNorm after each hidden layer (the ``backprop`` experiment's recipe; conversion folds
    it into the weights)."""
    epochs: int = 60
    lr: float = 1e-3
    batch_size: int = 64
    patience: int | None = 10
    """Stop when the validation loss has not improved for this many epochs."""

    # (b) converted SNN
    percentile: float | Literal["max"] = 99.9
    """Normalisation percentile of the ANN's activations (:func:`bridge.convert`)."""
    n_calib: int = 5000
    """Unlabelled training images used to calibrate the conversion (the first N)."""
    snn_T: int = 64
    """Time steps at which the converted SNN is reported in the table."""
    T_max: int = Field(default=256, validate_default=True)
    """Longest simulation of the converted SNN (accuracy against T)."""

    # (c) surrogate-gradient SNN
    surrogate_hidden: tuple[int, ...] = (256,)
    surrogate_T: int = 16
    """Time steps per sample in training, and in the table."""
    surrogate_T_max: int = Field(default=64, validate_default=True)
    """Longest evaluation of the surrogate SNN (accuracy against T)."""
    surrogate_epochs: int = 30
    surrogate_lr: float = 2e-3
    surrogate_batch_size: int = 64
    surrogate_tau_ms: float = 10.0

    # (d) STDP network
    stdp_n_exc: int = 400
    stdp_epochs: int = 3
    stdp_samples: int | None = None
    """Training images presented per epoch (the first N of a seeded order); ``None``: all."""
    stdp_batch_size: int = 16
    """Images simulated in parallel (each in its own copy of the network's state)."""
    stdp_n_assign: int | None = None
    """Labelled training images presented to assign the neurons' classes; ``None``: all."""
    stdp_curve_points: int = 6
    """Points of the STDP learning curve (label assignment and validation at each)."""
    stdp_curve_images: int = 300
    """Labelled training images for assignment, and validation images, at each curve point."""
    stdp_ops_images: int = 100
    """Test images on which the STDP network's synaptic operations are counted."""
    stdp_max_rate_hz: float | None = None
    """Input rate of a pixel of intensity 1 at the starting intensity. ``None``: the paper's
    63.75 Hz scaled so that the mean summed input rate of a training image equals the paper's
    on MNIST (:func:`neuro.diehl_cook.training.matched_input_params`), about 335 Hz for the 8x8
    digits, whose 64 pixels otherwise drive the network so weakly that most images are shown
    4-5 times at rising intensity (6x slower training, 63 % against 55 % in a quick test)."""

    # (e) Hebbian rate network
    hebbian_units: int = 400
    hebbian_k: int = Field(default=2, validate_default=True)
    hebbian_delta: float = 0.4
    hebbian_p: float = 3.0
    hebbian_epochs: int | None = None
    """Hebbian epochs; ``None``: 200 on the digits, 60 elsewhere. On Fashion-MNIST (20,000
    training images, seed 0) longer training made the features worse: validation accuracy
    81.6 % after 60 epochs against 65.3 % after 200 (minibatches of 100; of 20: 73.9 % and
    65.2 %)."""
    hebbian_batch_size: int | None = None
    """Images per Hebbian update; ``None``: 20 on the digits, 100 elsewhere (see above)."""
    hebbian_eps0: float = 0.04
    """Largest weight change of a minibatch in the first Hebbian epoch. With the reference
    code's 0.02 and minibatches of 100, the 12 minibatches an epoch of the digits gives left
    every unit of K = 400 far from the unit p-sphere after 100 epochs (no unit learned; 95.3 %);
    minibatches of 20 at 0.04 for 200 epochs let 302 units converge (97.0 %)."""
    hebbian_readout_epochs: int = 60
    hebbian_center: bool | None = None
    """Subtract the mean training image first; ``None``: only off the digits data set."""

    n_test: int | None = None
    """Evaluate every learner on the first N test images; ``None``: the whole test split."""
    snn_batch_size: int = 256
    torch_threads: int | None = 1
    """Torch threads during the run (restored after); ``None`` keeps torch's setting. These
    networks are small: on a 2-core machine shared with other work, two threads ran the quick
    configuration 4 times slower than one (their workers spin waiting for a core)."""

    @field_validator("learners")
    @classmethod
    def _learners(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one learner: " + ", ".join(LEARNERS))
        if len(set(value)) != len(value):
            raise ValueError(f"learners are listed more than once: {value}")
        if "converted" in value and "backprop" not in value:
            raise ValueError("learner 'converted' converts the backprop ANN: add 'backprop'")
        # The table and the plots follow the canonical order.
        return tuple(name for name in LEARNERS if name in value)

    @field_validator("data_root")
    @classmethod
    def _data_root(cls, value: str | None, info: ValidationInfo) -> str | None:
        dataset = info.data.get("dataset")
        if value is None and dataset in ("mnist", "idx"):
            raise ValueError(f"dataset {dataset!r} is read from local IDX files: add "
                             "--set data_root=<folder holding train-images-idx3-ubyte[.gz], "
                             "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
                             "t10k-labels-idx1-ubyte[.gz]>")
        if value is not None and not Path(value).is_dir():
            raise ValueError(f"data_root {value!r} is not a folder; give the folder that holds "
                             "the IDX files (train-images-idx3-ubyte[.gz], ...)")
        return value

    @field_validator(*_POSITIVE)
    @classmethod
    def _positive(cls, value: float, info: ValidationInfo) -> float:
        if not value > 0:
            raise ValueError(f"{info.field_name} must be > 0, got {value}")
        return value

    @field_validator(*_POSITIVE_OR_NONE)
    @classmethod
    def _positive_or_none(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and not value > 0:
            raise ValueError(f"{info.field_name} must be None or > 0, got {value}")
        return value

    @field_validator("train_limit", "test_limit")
    @classmethod
    def _idx_only(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("dataset") == "digits":
            raise ValueError(f"{info.field_name} applies to the IDX data sets only; digits is "
                             "always used whole (n_test limits the test images)")
        return value

    @field_validator("T_max", "surrogate_T_max")
    @classmethod
    def _longest(cls, value: int, info: ValidationInfo) -> int:
        shorter = {"T_max": "snn_T", "surrogate_T_max": "surrogate_T"}[info.field_name]
        steps = info.data.get(shorter)
        if steps is not None and steps > value:
            raise ValueError(f"{shorter} ({steps}) must not exceed {info.field_name} ({value})")
        return value

    @field_validator("hebbian_k")
    @classmethod
    def _hebbian_k(cls, value: int, info: ValidationInfo) -> int:
        units = info.data.get("hebbian_units")
        if value < 2 or (units is not None and value > units):
            raise ValueError(f"hebbian_k must be in 2..hebbian_units ({units}), got {value}")
        return value


QUICK: dict[str, Any] = {
    "hidden": (64,), "epochs": 15, "lr": 3e-3, "batch_size": 32, "patience": None,
    "n_calib": 1000, "snn_T": 32, "T_max": 64,
    "surrogate_hidden": (64,), "surrogate_T": 8, "surrogate_T_max": 32,
    "surrogate_epochs": 6, "surrogate_lr": 5e-3,
    "stdp_n_exc": 100, "stdp_epochs": 2, "stdp_samples": 300, "stdp_n_assign": 300,
    "stdp_curve_points": 2, "stdp_curve_images": 100,
    "hebbian_units": 100, "hebbian_epochs": 100, "hebbian_readout_epochs": 50,
}
"""``--quick``: small networks and budgets (under 2 minutes on a busy 2-core CPU)."""


# --------------------------------------------------------------------------------------------
# data, devices, bookkeeping
# --------------------------------------------------------------------------------------------


def _load_data(config: CompareConfig, seed: int) -> DatasetSplits:
    if config.dataset == "digits":
        return load_dataset("digits", seed=seed)
    kwargs: dict[str, Any] = {"seed": seed}
    if config.data_root is not None:
        kwargs["root"] = config.data_root
    if config.train_limit is not None:
        kwargs["train_limit"] = config.train_limit
    if config.test_limit is not None:
        kwargs["test_limit"] = config.test_limit
    return load_dataset(config.dataset, **kwargs)


def _device_name(device: str) -> str:
    if device == "cuda":
        return f"cuda ({torch.cuda.get_device_name()})"
    return f"cpu ({torch.get_num_threads()} thread{'s' if torch.get_num_threads() > 1 else ''})"


def _first(split: Split, n: int | None) -> Split:
    if n is None or n >= len(split):
        return split
    return Split(split.images[:n], split.labels[:n])


def _curve(samples: list[int], accuracy: list[float]) -> dict[str, list]:
    return {"samples": [int(s) for s in samples], "val_accuracy": [float(a) for a in accuracy]}


class _Learners:
    """Runs each learner once: a learner whose ``learner_<name>.json`` exists in the run folder
    finished in an earlier (interrupted) run and is read back instead of run again."""

    def __init__(self, config: CompareConfig, ctx: RunContext, data: DatasetSplits):
        self.config, self.ctx, self.data = config, ctx, data
        self.test = _first(data.test, config.n_test)
        self.ann: torch.nn.Sequential | None = None

    def result(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        path = self.ctx.path(f"learner_{name}.json")
        if path.is_file():
            return read_json(path)
        torch.manual_seed(self.ctx.seed)
        result = {"learner": name, "label": LEARNERS[name],
                  "device": _device_name(self.ctx.device), **fn()}
        write_json(path, result)
        return result

    # ---------------------------------------------------------------------------- (a) backprop

    def backprop(self) -> dict[str, Any]:
        config, ctx, data = self.config, self.ctx, self.data
        model_config = MLPConfig(input_shape=data.input_shape, num_classes=data.num_classes,
                                 hidden=config.hidden, batch_norm=config.batch_norm)
        model = build_model(model_config)
        train_config = TrainConfig(lr=config.lr, epochs=config.epochs,
                                   batch_size=config.batch_size, patience=config.patience,
                                   seed=ctx.seed)
        result = train(model, data.train, data.val, train_config, device=ctx.device,
                       checkpoint_path=ctx.path("checkpoint_backprop.pt"),
                       progress=ctx.progress)
        model.cpu().eval()
        save_model(ctx.path("ann_model.pt"), model, model_config, extra={"dataset": data.name})
        self.ann = model
        n_train = len(data.train)
        history = result.history["val_accuracy"]
        widths = "-".join(str(w) for w in (math.prod(data.input_shape), *config.hidden,
                                             data.num_classes))
        return {
            "setup": (f"ReLU MLP {widths}, {result.epochs_run} epochs of Adam (lr {config.lr:g}, "
                      f"batch {config.batch_size}), weights of the best validation epoch "
                      f"({result.best_epoch + 1})"),
            "test_accuracy": evaluate(model, self.test).accuracy,
            "labels_used": n_train,
            "labels_note": f"{n_train:,} train (+ {len(data.val):,} val to pick the epoch)",
            "train_wall_time_s": result.wall_time_s,
            "samples_seen": result.samples_seen,
            "inference_steps": 1,
            "ops_per_inference": macs(model, data.input_shape),
            "ops_note": "MACs",
            "samples_curve": _curve([(e + 1) * n_train for e in range(len(history))], history),
            "steps_curve": None,
            "receptive_fields": self._fields("backprop", model[1].weight, "backprop MLP"),
            "extra": {"epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
                      "model": model_config.to_dict()},
        }

    def _fields(self, name: str, weights: torch.Tensor, title: str,
                which: str = "the first 25 units") -> str:
        image_shape = self.data.input_shape
        shape = image_shape[1:] if image_shape[0] == 1 else image_shape
        fig = plot_receptive_fields(weights.detach().cpu(), shape, n=25,
                                    title=f"{title}: {which}")
        return self.ctx.save_figure(fig, f"receptive_fields_{name}")

    # --------------------------------------------------------------------------- (b) converted

    def converted(self) -> dict[str, Any]:
        config, ctx, data = self.config, self.ctx, self.data
        if self.ann is None:  # backprop finished in an earlier run
            self.ann, _, _ = load_model(ctx.path("ann_model.pt"))
        backprop = read_json(ctx.path("learner_backprop.json"))
        start = time.perf_counter()
        calibration = data.train.images[:config.n_calib]
        conversion = convert(self.ann, calibration, percentile=config.percentile)
        conversion_s = time.perf_counter() - start
        graph = conversion.graph
        kwargs = {"device": ctx.device, "batch_size": config.snn_batch_size,
                  "record_spikes": False, "seed": ctx.seed}
        result = run_snn(graph, self.test.images, config.T_max, **kwargs)
        curve = accuracy_curve(result, self.test.labels)
        ops = operations_curve(result, self.test.labels).at(config.snn_T)
        val = run_snn(graph, data.val.images, config.snn_T, **kwargs)
        val_accuracy = accuracy_curve(val, data.val.labels).at(config.snn_T)
        samples = backprop["samples_seen"] + len(calibration)
        return {
            "setup": (f"the backprop MLP with IF neurons (reset by subtraction), "
                      f"{config.percentile}-percentile normalisation on {len(calibration):,} "
                      f"unlabelled training images, image as input current, read out at "
                      f"T = {config.snn_T} (curve to {config.T_max})"),
            "test_accuracy": curve.at(config.snn_T),
            "labels_used": backprop["labels_used"],
            "labels_note": f"the backprop ANN's {backprop['labels_used']:,} train (+ "
                           f"{len(data.val):,} val); none in the conversion",
            "train_wall_time_s": backprop["train_wall_time_s"] + conversion_s,
            "samples_seen": samples,
            "inference_steps": config.snn_T,
            "ops_per_inference": ops["ops_per_image"],
            "ops_note": "synops + first-layer MACs",
            "samples_curve": _curve([samples], [val_accuracy]),
            "steps_curve": {"steps": curve.steps.tolist(),
                            "test_accuracy": curve.accuracy.tolist()},
            "receptive_fields": None,
            "extra": {"synops_per_inference": ops["synops_per_image"],
                      "analog_macs_per_inference": ops["analog_macs_per_image"],
                      "conversion_wall_time_s": conversion_s,
                      "calibration_images": len(calibration),
                      "percentile": config.percentile,
                      "accuracy_T_max": curve.at(config.T_max),
                      "inference_wall_time_s": result.wall_time_s},
        }

    # --------------------------------------------------------------------------- (c) surrogate

    def surrogate(self) -> dict[str, Any]:
        config, ctx, data = self.config, self.ctx, self.data
        snn_config = SurrogateSNNConfig(
            hidden=config.surrogate_hidden, T=config.surrogate_T, tau_ms=config.surrogate_tau_ms,
            lr=config.surrogate_lr, epochs=config.surrogate_epochs,
            batch_size=config.surrogate_batch_size, seed=ctx.seed)
        model = build_surrogate_snn(snn_config, data.input_shape, data.num_classes)
        result = train_surrogate_snn(model, data.train, data.val, snn_config, device=ctx.device,
                                     checkpoint_path=ctx.path("checkpoint_surrogate.pt"),
                                     progress=ctx.progress)
        test = evaluate_surrogate_snn(model, self.test, batch_size=config.snn_batch_size,
                                      seed=ctx.seed)
        longest = evaluate_surrogate_snn(model, self.test, T=config.surrogate_T_max,
                                         batch_size=config.snn_batch_size, seed=ctx.seed)
        n_train = len(data.train)
        history = result.history["val_accuracy"]
        analog = sum(test.analog_macs_per_sample.values())
        first = model.synapses[0][-1].weight
        widths = "-".join(str(w) for w in (math.prod(data.input_shape), *config.surrogate_hidden,
                                             data.num_classes))
        return {
            "setup": (f"LIF MLP {widths} (tau {config.surrogate_tau_ms:g} ms, dt 1 ms, reset by "
                      f"subtraction), image as input current, spike-count readout, T = "
                      f"{config.surrogate_T}; BPTT with a fast-sigmoid surrogate, "
                      f"{result.epochs_run} epochs of Adam (lr {config.surrogate_lr:g}, batch "
                      f"{config.surrogate_batch_size})"),
            "test_accuracy": test.accuracy,
            "labels_used": n_train,
            "labels_note": f"{n_train:,} train (+ {len(data.val):,} val to pick the epoch)",
            "train_wall_time_s": result.wall_time_s,
            "samples_seen": result.samples_seen,
            "inference_steps": config.surrogate_T,
            "ops_per_inference": test.total_synops + analog,
            "ops_note": "synops + first-layer MACs",
            "samples_curve": _curve([(e + 1) * n_train for e in range(len(history))], history),
            "steps_curve": {"steps": list(range(1, config.surrogate_T_max + 1)),
                            "test_accuracy": longest.accuracy_per_step.tolist()},
            "receptive_fields": self._fields("surrogate", first, "surrogate SNN"),
            "extra": {"synops_per_inference": test.total_synops,
                      "analog_macs_per_inference": analog,
                      "spike_rates_per_step": test.spike_rates(),
                      "best_epoch": result.best_epoch,
                      "config": snn_config.to_dict(),
                      "inference_wall_time_s": test.wall_time_s},
        }

    # -------------------------------------------------------------------------------- (d) stdp

    def stdp(self) -> dict[str, Any]:
        config, ctx, data = self.config, self.ctx, self.data
        train_images = data.train.images.reshape(len(data.train), -1)
        rate = {} if config.stdp_max_rate_hz is None else {"max_rate_hz": config.stdp_max_rate_hz}
        params = matched_input_params(train_images.shape[1], config.stdp_n_exc,
                                      float(train_images.mean()), **rate)
        n_samples = len(train_images) if config.stdp_samples is None \
            else min(config.stdp_samples, len(train_images))
        n_assign = len(train_images) if config.stdp_n_assign is None \
            else min(config.stdp_n_assign, len(train_images))
        total = config.stdp_epochs * n_samples
        every = max(1, math.ceil(total / config.stdp_curve_points))
        k = config.stdp_curve_images
        eval_kwargs = {"batch_size": config.snn_batch_size, "seed": ctx.seed}

        # The learning curve and the training time so far survive an interruption here; the
        # network itself is in the checkpoint, written at the same sample counts.
        progress_path = ctx.path("stdp_progress.json")
        progress = read_json(progress_path) if progress_path.is_file() \
            else {"curve": [], "train_time_s": 0.0}
        before = progress["train_time_s"]
        start, in_callbacks = time.perf_counter(), 0.0

        curve_offset = min(k, len(train_images))  # the labelled images of each curve point

        def on_progress(samples_seen: int, network: DiehlCookNetwork) -> None:
            nonlocal in_callbacks
            entered = time.perf_counter()
            result = evaluate_diehl_cook(network, data.val.images[:k], data.val.labels[:k],
                                         train_images[:k], data.train.labels[:k],
                                         n_classes=data.num_classes, **eval_kwargs)
            progress["curve"].append([samples_seen + curve_offset, result.accuracy])
            progress["train_time_s"] = before + entered - start - in_callbacks
            write_json(progress_path, progress)
            in_callbacks += time.perf_counter() - entered

        result = train_diehl_cook(
            train_images, params, n_samples=n_samples, epochs=config.stdp_epochs,
            batch_size=config.stdp_batch_size, seed=ctx.seed, device=ctx.device,
            checkpoint_path=ctx.path("checkpoint_stdp.pt"), checkpoint_every=every,
            resume=True, progress=ctx.progress, callback=on_progress, callback_every=every)
        network = result.network
        if not progress["curve"] or progress["curve"][-1][0] != result.samples_seen + curve_offset:
            # Interrupted after the last checkpoint but before its curve point was saved.
            on_progress(result.samples_seen, network)
        learning_s = progress["train_time_s"]

        start = time.perf_counter()
        assign_counts = spike_counts(network, train_images[:n_assign], **eval_kwargs)
        assignments = assign_labels(assign_counts, data.train.labels[:n_assign],
                                    data.num_classes)
        assign_s = time.perf_counter() - start
        counts = spike_counts(network, self.test.images.reshape(len(self.test), -1),
                              batch_size=config.snn_batch_size, seed=ctx.seed + 1)
        predictions = classify(counts, assignments, data.num_classes)
        ops = _stdp_operations(network, self.test.images[:config.stdp_ops_images],
                               seed=ctx.seed + 2)
        raster = self.ctx.save_figure(_plot_stdp_raster(ops.pop("raster"), self.test,
                                                        network.params), "stdp_raster")
        curve = progress["curve"]
        return {
            "setup": (f"{params.n_input} Poisson inputs (up to {params.max_rate_hz:.0f} Hz), "
                      f"{params.n_exc} excitatory + {params.n_exc} inhibitory conductance-based "
                      f"LIF neurons, triplet-like STDP, adaptive thresholds; "
                      f"{config.stdp_epochs} epoch(s) of {n_samples:,} images in batches of "
                      f"{config.stdp_batch_size}, {params.t_present_ms:g} ms per image at "
                      f"dt {params.dt_ms:g} ms"),
            "test_accuracy": float((predictions == self.test.labels).double().mean()),
            "labels_used": n_assign,
            "labels_note": (f"0 for STDP learning; {n_assign:,} train labels for the readout "
                            "only (assigning each neuron a class)"),
            "train_wall_time_s": learning_s + assign_s,
            "samples_seen": result.samples_seen + n_assign,
            "inference_steps": params.present_steps,
            "ops_per_inference": ops["synops_per_inference"],
            "ops_note": "synops",
            "samples_curve": _curve([c[0] for c in curve], [c[1] for c in curve]),
            "steps_curve": None,
            "receptive_fields": self._fields("stdp", network.weights.T, "STDP network"),
            "raster": raster,
            "extra": {**ops, "learning_wall_time_s": learning_s,
                      "assignment_wall_time_s": assign_s,
                      "unassigned_neurons": int((assignments < 0).sum()),
                      "presentation_ms": params.t_present_ms, "dt_ms": params.dt_ms,
                      "params": dataclasses.asdict(params)},
        }

    # ----------------------------------------------------------------------------- (e) hebbian

    def hebbian(self) -> dict[str, Any]:
        config, ctx, data = self.config, self.ctx, self.data
        digits = config.dataset == "digits"
        epochs = config.hebbian_epochs or (200 if digits else 60)
        batch_size = config.hebbian_batch_size or (20 if digits else 100)
        params = KrotovHopfieldParams(hidden_units=config.hebbian_units, p=config.hebbian_p,
                                      k=config.hebbian_k, delta=config.hebbian_delta,
                                      epochs=epochs, eps0=config.hebbian_eps0,
                                      batch_size=batch_size)
        readout = TrainConfig(lr=1e-2, epochs=config.hebbian_readout_epochs, batch_size=100,
                              monitor="val_accuracy", seed=ctx.seed)
        center = config.dataset != "digits" if config.hebbian_center is None \
            else config.hebbian_center
        classifier = HebbianClassifier(params, readout, seed=ctx.seed, center_inputs=center)
        directory = ctx.path("checkpoint_hebbian")
        directory.mkdir(exist_ok=True)
        stats = classifier.fit(data.train, data.val, num_classes=data.num_classes,
                               progress=ctx.progress, checkpoint_dir=directory)
        n_train, hidden = len(data.train), config.hebbian_units
        history = stats.readout.history["val_accuracy"]
        dim = math.prod(data.input_shape)
        # Units that won inputs converge to |W|_p = 1; the others keep their random initial
        # weights (|W|_p >> 1), so the first units of the layer may show only noise.
        distance = (p_norms(classifier.weights, params.p) - 1.0).abs()
        order = torch.argsort(distance)
        learned = int((distance < 0.05).sum())
        return {
            # HebbianClassifier trains on the images' device; they stay on the CPU.
            "device": _device_name("cpu"),
            "setup": (f"{hidden} hidden units (p = {params.p:g}, k = {params.k}, delta = "
                      f"{params.delta:g}), {params.epochs} Hebbian epochs (minibatches of "
                      f"{params.batch_size}, eps0 {params.eps0:g}), {learned} units converged, "
                      "features "
                      f"relu(Wv)^4.5{' of centred images' if center else ''}, linear readout "
                      f"trained {stats.readout.epochs_run} epochs with Adam"),
            "test_accuracy": classifier.accuracy(self.test),
            "labels_used": stats.labels_used,
            "labels_note": (f"0 for the Hebbian layer; {stats.labels_used:,} train "
                            f"(+ {stats.validation_labels_used:,} val) for the linear readout"),
            "train_wall_time_s": stats.total_wall_time_s,
            "samples_seen": stats.hebbian_samples_seen + stats.readout_samples_seen,
            "inference_steps": 1,
            "ops_per_inference": hidden * dim + hidden * data.num_classes,
            "ops_note": "MACs",
            "samples_curve": _curve(
                [stats.hebbian_samples_seen + (e + 1) * n_train for e in range(len(history))],
                history),
            "steps_curve": None,
            "receptive_fields": self._fields(
                "hebbian", classifier.weights[order[:25]],
                "Hebbian layer", "the 25 units nearest the unit p-sphere"),
            "extra": {"learned_units": learned,
                      "hebbian_samples_seen": stats.hebbian_samples_seen,
                      "readout_samples_seen": stats.readout_samples_seen,
                      "hebbian_wall_time_s": stats.hebbian_wall_time_s,
                      "readout_wall_time_s": stats.readout_wall_time_s,
                      "center_inputs": center, "params": params.to_dict()},
        }


# --------------------------------------------------------------------------------------------
# the STDP network's operations and raster
# --------------------------------------------------------------------------------------------


def _stdp_operations(network: DiehlCookNetwork, images: torch.Tensor,
                     seed: int) -> dict[str, Any]:
    r"""Synaptic operations per inference of the Diehl & Cook network, learning frozen.

    Every input spike reaches all ``n_exc`` excitatory neurons, every excitatory spike its one
    inhibitory partner and every inhibitory spike the other ``n_exc - 1`` excitatory neurons:

    .. math:: \mathrm{synops} = n_{exc} S_{in} + S_{exc} + (n_{exc} - 1) S_{inh},

    the spikes of all presentations of the test-time intensity loop
    (:func:`~neuro.diehl_cook.training.spike_totals`, the images in one batch). Also returns,
    under ``"raster"``, the spikes of one more presentation of the first image at the
    intensity it was accepted at (:func:`_stdp_raster`).
    """
    params = network.params
    n = len(images)
    totals, intensity = spike_totals(network, images, batch_size=max(n, 1), seed=seed)
    spikes = {name: int(getattr(totals, name).sum()) for name in ("input", "exc", "inh")}
    n_exc = params.n_exc
    synops = n_exc * spikes["input"] + spikes["exc"] + (n_exc - 1) * spikes["inh"]
    return {
        "synops_per_inference": synops / n,
        "input_spikes_per_inference": spikes["input"] / n,
        "exc_spikes_per_inference": spikes["exc"] / n,
        "inh_spikes_per_inference": spikes["inh"] / n,
        "presentations_per_inference": int(totals.presentations.sum()) / n,
        "ops_images": n,
        "raster": _stdp_raster(network, images[:1], float(intensity[0]), seed),
    }


def _stdp_raster(network: DiehlCookNetwork, image: torch.Tensor, intensity: float,
                 seed: int) -> dict[str, Any]:
    """The input, excitatory and inhibitory spikes of one presentation of ``image`` (a batch of
    one) at ``intensity``, learning frozen, starting at rest."""
    params = network.params
    flat = image.reshape(1, -1).to(network.device, network.weights.dtype)
    generator = torch.Generator(device=network.device).manual_seed(int(seed))
    rates = input_rates(flat, params, intensity)
    inputs = poisson_input(rates, params.present_steps, params.dt_ms, generator)
    shown = present(network.weights, network.theta, inputs, params, learning=False,
                    record=True)
    return {"input": inputs[0].cpu(), "exc": shown.exc_spikes, "inh": shown.inh_spikes,
            "intensity": intensity}


def _plot_stdp_raster(raster: dict[str, Any], test: Split, params: DiehlCookParams) -> Figure:
    """The input image, and the input, excitatory and inhibitory spikes of one presentation."""
    fig = Figure(figsize=(8.0, 6.4), layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=(1, 4))
    image_ax = fig.add_subplot(grid[0, 0])
    image = test.images[0]
    image_ax.imshow(image.reshape(-1, image.shape[-1]).numpy(), cmap="gray_r", vmin=0, vmax=1)
    image_ax.set_title(f"test image 0 (class {int(test.labels[0])})", fontsize="medium")
    image_ax.set_xticks([])
    image_ax.set_yticks([])
    steps, inputs = torch.nonzero(raster["input"], as_tuple=True)
    peak = params.max_rate_hz * raster["intensity"] / START_INTENSITY
    record = SpikeRecord(population=f"input ({params.n_input} Poisson sources, {peak:.0f} Hz "
                                    "at pixel intensity 1)",
                         n_neurons=params.n_input, batch_size=1,
                         duration_ms=params.t_present_ms, dt_ms=params.dt_ms,
                         trial=np.zeros(len(steps), dtype=np.int64),
                         neuron=inputs.numpy().astype(np.int64),
                         time_ms=steps.numpy() * params.dt_ms)
    axes = [fig.add_subplot(grid[i, 1]) for i in range(3)]
    plot_raster(record, ax=axes[0], color="0.3")
    for ax, name, colour in ((axes[1], "exc", "C3"), (axes[2], "inh", "C0")):
        spikes = raster[name]
        label = "excitatory" if name == "exc" else "inhibitory"
        plot_raster(dataclasses.replace(spikes, population=f"{label} ({spikes.n_neurons} "
                                                           "neurons)"),
                    ax=ax, color=colour, marker_size=30.0)
    fig.suptitle(f"STDP network, learning off: one {params.t_present_ms:g} ms presentation "
                 f"(dt = {params.dt_ms:g} ms)")
    return fig


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------


def plot_accuracy_vs_samples(results: dict[str, dict[str, Any]], title: str) -> Figure:
    """Validation accuracy against training samples seen (log scale), one line per learner."""
    fig = Figure(figsize=(6.8, 4.4), layout="constrained")
    ax = fig.subplots()
    for name, result in results.items():
        curve = result["samples_curve"]
        x, y = np.asarray(curve["samples"]), 100 * np.asarray(curve["val_accuracy"])
        style = "o" if len(x) == 1 else "o-"
        ax.plot(x, y, style, color=_COLOURS[name], markersize=3.5, label=result["label"])
    ax.set_xscale("log")
    ax.set_xlabel("training samples seen (image presentations)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    return fig


def plot_accuracy_vs_steps(results: dict[str, dict[str, Any]], title: str) -> Figure:
    """Test accuracy against inference time steps (log scale): SNN curves, the STDP network as
    one point at its presentation length, one-step ANNs as horizontal lines."""
    fig = Figure(figsize=(6.8, 4.4), layout="constrained")
    ax = fig.subplots()
    longest = 1
    for name, result in results.items():
        colour, label = _COLOURS[name], result["label"]
        accuracy = 100 * result["test_accuracy"]
        if result["steps_curve"] is not None:
            steps = result["steps_curve"]["steps"]
            ax.plot(steps, 100 * np.asarray(result["steps_curve"]["test_accuracy"]),
                    color=colour, label=label)
            ax.plot([result["inference_steps"]], [accuracy], "o", color=colour, markersize=5)
            longest = max(longest, steps[-1])
        elif result["inference_steps"] > 1:
            ax.plot([result["inference_steps"]], [accuracy], "s", color=colour, markersize=7,
                    label=f"{label} ({result['inference_steps']} steps)")
            longest = max(longest, result["inference_steps"])
        else:  # one pass of a rate network; two such lines may coincide, so dash them apart
            ax.axhline(accuracy, color=colour, linestyle=_DASHES.get(name, "--"), linewidth=1.4,
                       label=f"{label} (1 pass)")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlim(1, max(2, 1.3 * longest))
    ax.set_ylim(0, 100)
    ax.set_xlabel("inference time steps")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    return fig


# --------------------------------------------------------------------------------------------
# run and report
# --------------------------------------------------------------------------------------------


def run(config: CompareConfig, ctx: RunContext) -> RunOutput:
    """Train and evaluate every learner asked for (skipping finished ones), plot, report."""
    threads = torch.get_num_threads()
    if config.torch_threads is not None:
        torch.set_num_threads(config.torch_threads)
    try:
        return _run(config, ctx)
    finally:
        torch.set_num_threads(threads)


def _run(config: CompareConfig, ctx: RunContext) -> RunOutput:
    try:
        data = _load_data(config, ctx.seed)
    except DatasetError as error:
        from experiments.runner import UsageError  # the runner imports the registry

        raise UsageError(str(error)) from None
    learners = _Learners(config, ctx, data)
    results = {}
    for name in config.learners:
        results[name] = learners.result(name, getattr(learners, name))

    title = f"{data.name}: {len(data.train):,} training images"
    figures = {
        "samples": ctx.save_figure(plot_accuracy_vs_samples(results, title),
                                   "accuracy_vs_samples"),
        "steps": ctx.save_figure(plot_accuracy_vs_steps(results, title), "accuracy_vs_steps"),
    }
    table = [_row(result) for result in results.values()]
    metrics = {
        "dataset": data.name,
        "train_images": len(data.train),
        "val_images": len(data.val),
        "test_images": len(learners.test),
        "learner_order": list(results),
        "learners": results,
        "table": table,
        "torch_threads": torch.get_num_threads(),
    }
    return RunOutput(metrics=metrics, report=_report(metrics, figures, results))


_COLUMNS = ("learner", "test accuracy", "labels used in training", "training wall time",
            "training samples seen", "inference time steps", "operations per inference",
            "device")


def _row(result: dict[str, Any]) -> dict[str, str]:
    return {
        "learner": result["label"],
        "test accuracy": f"{100 * result['test_accuracy']:.2f}%",
        "labels used in training": result["labels_note"],
        "training wall time": f"{result['train_wall_time_s']:.1f} s",
        "training samples seen": f"{result['samples_seen']:,}",
        "inference time steps": str(result["inference_steps"]) + (
            f" ({result['extra']['presentations_per_inference']:.2f} presentations)"
            if result["learner"] == "stdp" else ""),
        "operations per inference": f"{result['ops_per_inference']:,.0f} ({result['ops_note']})",
        "device": result["device"],
    }


def _report(metrics: dict[str, Any], figures: dict[str, str],
            results: dict[str, dict[str, Any]]) -> str:
    head = "| " + " | ".join(_COLUMNS) + " |\n|" + " --- |" * len(_COLUMNS)
    rows = "\n".join("| " + " | ".join(row[c] for c in _COLUMNS) + " |"
                     for row in metrics["table"])
    fields = [(r["label"], r["receptive_fields"]) for r in results.values()
              if r.get("receptive_fields")]
    field_table = ""
    if fields:
        field_table = ("\n## First-layer receptive fields (25 units each; red positive, blue "
                       "negative)\n\n| " + " | ".join(label for label, _ in fields) + " |\n|"
                       + " --- |" * len(fields) + "\n| "
                       + " | ".join(f"![{label}]({png})" for label, png in fields) + " |\n")
    setups = "\n".join(f"- **{r['label']}**: {r['setup']}." for r in results.values())
    raster = ""
    if results.get("stdp", {}).get("raster"):
        raster = ("\n## STDP network on one test image\n\n"
                  f"![STDP raster]({results['stdp']['raster']})\n")
    return f"""## Result

{metrics['dataset']}: {metrics['train_images']:,} train / {metrics['val_images']:,} validation /
{metrics['test_images']:,} test images.

{head}
{rows}

{setups}

Labels: training labels the learner's parameters depend on; validation labels used only to pick
the best epoch are given in brackets. Samples seen: image presentations during training, all
stages. Operations: multiply-accumulates of one dense pass (ANNs); for the SNNs, synaptic
operations (one accumulate per spike and outgoing synapse) over the inference time steps plus
the multiply-accumulates of a first layer fed the image as an analog current.

## Accuracy against training samples seen

![accuracy against training samples]({figures['samples']})

## Accuracy against inference time steps

![accuracy against inference time steps]({figures['steps']})
{field_table}{raster}"""


EXPERIMENT = Experiment(
    name="compare",
    description="Backprop ANN, converted SNN, surrogate-gradient SNN, STDP network and Hebbian "
                "network on one data set: accuracy, labels, samples, time steps, operations.",
    config_type=CompareConfig,
    run=run,
    quick=QUICK,
)
