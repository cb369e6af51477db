"""Benchmark: ANN-to-SNN conversion, spikebridge against SpikingJelly's ann2snn, on CPU.

Trains each model once (cached under ``--cache``), converts it with spikebridge
(:func:`bridge.convert`, run with :func:`bridge.run`) and with SpikingJelly 2.0.0
(``ann2snn.Converter(recipe=RateCodingRecipe(loader, mode=...))``), in the two modes "99.9%"
and "max", on the same calibration images and the same test images, and prints JSON lines:

* ``{"event": "setup", ...}`` -- threads, images, steps, versions, machine load;
* ``{"event": "ann", "model": ...}`` -- the ANN's test accuracy and how it was trained;
* ``{"event": "snn", "model", "tool", "mode", "accuracy": {T: ...}, "loss_points": {T: ...},
  "time_per_image_ms", ...}`` -- one per model, tool and mode;
* ``{"event": "compare", "model", "mode", "accuracy_diff_points": {T: sb - sj},
  "paired": {T: {"only_sb", "only_sj", "p"}}, "time_ratio_sj_over_sb"}`` -- side by side, with
  the images only one tool classifies correctly and the exact McNemar p-value of the difference;
* ``{"event": "rate_model", "model", "mode", "accuracy": {T: ...}}`` -- what the two initial
  membranes approach: spikebridge's graph as a rate model (no spikes), as converted
  (``"shift": 0``, the limit of rounding spike counts) and with every neuron layer's bias
  lowered by :math:`\theta/(2T)` (``"shift": "-theta/2T"``), the mean effect of flooring them
  as an empty initial membrane does;
* ``{"event": "targets", ...}`` -- the issue's targets, each with the measured figure.

Run from the repository root::

    python benchmarks/conversion.py                  # all five models, 2,000 test images
    python benchmarks/conversion.py --models digits-mlp --n-test 500 --repeats 2

Timing: torch runs with ``--threads`` threads (default 1). Every SNN first runs once on all
the test images for ``max(T)`` steps (accuracy after every ``T`` comes out of that one run), then
``--repeats`` more times on the first ``--time-images`` test images, the tools interleaved; the
time per image reported is the minimum over all these runs (each run's time divided by its
number of images). spikebridge is timed through :func:`bridge.run` as users call it
(``record_spikes=False``; it still counts spikes and synaptic operations), SpikingJelly through
the loop of its own examples (``torch.no_grad()``, ``reset_net``, then ``T`` calls of the
converted module, summing the outputs). Both see the same batches (``--batch-size``).

The QCFS model is the ReLU Fashion CNN fine-tuned with QCFS activations (8 levels) for 4
epochs, its thresholds started at the 99.9th percentile of the ReLU outputs
(:func:`experiments.conversion.qcfs_from_relu`). SpikingJelly knows only ``nn.ReLU``: it is given
a copy in which every QCFS is an ``nn.ReLU`` (it then calibrates its own thresholds);
spikebridge uses the learned QCFS thresholds and ignores the percentile.

With ``--bare-step``, the spikebridge network of mode "99.9%" is also timed as a bare loop of
:meth:`bridge.SNNTorchNetwork.step` (tool ``spikebridge-bare-step``: no spike or
synaptic-operation counting, and no reuse of the constant first-layer current that
:func:`bridge.run` makes), which separates the cost of the counting from that of the neurons.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from scipy.stats import binomtest
from torch import nn
from tqdm.auto import tqdm

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: import this checkout's packages
    sys.path.insert(0, str(REPO))

from ann.activations import QCFS  # noqa: E402
from ann.datasets import DatasetSplits, Split, load_dataset  # noqa: E402
from ann.evaluation import evaluate  # noqa: E402
from ann.models import CNNConfig, MLPConfig, ModelConfig, build_model  # noqa: E402
from ann.serialization import load_model, save_model  # noqa: E402
from ann.training import TrainConfig, train  # noqa: E402
from bridge import SNNTorchNetwork, convert, run  # noqa: E402
from bridge.diagnostics import rate_model_accuracy  # noqa: E402
from bridge.graph import IF, Affine, Conv2d, SpikingGraph  # noqa: E402
from experiments.conversion import qcfs_from_relu  # noqa: E402

STEPS = (8, 16, 32, 64, 128, 256)
MODES = ("99.9%", "max")


@dataclass(frozen=True)
class Spec:
    """One benchmarked model: its data set, architecture and training settings."""

    name: str
    dataset: str
    make_config: Callable[[tuple[int, int, int]], ModelConfig]
    train: TrainConfig
    base: str | None = None
    """QCFS only: the ReLU model it is fine-tuned from (weights copied, thresholds set to the
    99.9th percentile of the ReLU outputs, :func:`experiments.conversion.qcfs_from_relu`)."""


def _specs(epochs: int | None) -> dict[str, Spec]:
    def tc(default_epochs: int, lr: float = 1e-3, batch_size: int = 64) -> TrainConfig:
        return TrainConfig(epochs=epochs or default_epochs, lr=lr, batch_size=batch_size,
                           patience=4, seed=0)

    fashion_cnn = {"num_classes": 10, "channels": (16, 32), "kernel_size": 3, "padding": 1,
                   "hidden": ()}
    specs = [
        Spec("digits-mlp", "digits",
             lambda s: MLPConfig(input_shape=s, num_classes=10, hidden=(256,)),
             tc(60, lr=1e-3, batch_size=32)),
        Spec("fashion-mlp", "fashion-mnist",
             lambda s: MLPConfig(input_shape=s, num_classes=10, hidden=(256,)), tc(20)),
        Spec("fashion-cnn", "fashion-mnist",
             lambda s: CNNConfig(input_shape=s, pooling="avg", **fashion_cnn), tc(20)),
        Spec("fashion-cnn-bn-maxpool", "fashion-mnist",
             lambda s: CNNConfig(input_shape=s, pooling="max", batch_norm=True, **fashion_cnn),
             tc(20)),
        Spec("fashion-cnn-qcfs", "fashion-mnist",
             lambda s: CNNConfig(input_shape=s, pooling="avg", activation="qcfs", qcfs_levels=8,
                                 **fashion_cnn), tc(4, lr=3e-4), base="fashion-cnn"),
    ]
    return {s.name: s for s in specs}


def emit(record: dict[str, Any]) -> None:
    """One JSON line on stdout."""
    print(json.dumps(record, sort_keys=False), flush=True)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("spikebridge", "torch", "snntorch", "spikingjelly", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _spikingjelly() -> tuple[Any, Any] | str:
    """``(ann2snn, functional)`` of SpikingJelly, or why they cannot be imported."""
    try:
        from spikingjelly.activation_based import ann2snn, functional
    except Exception as error:  # ImportError, or a broken dependency at import time
        return f"{type(error).__name__}: {error}"
    return ann2snn, functional


# ------------------------------------------------------------------------------------- models


def _cache_key(spec: Spec, config: ModelConfig, specs: dict[str, Spec]) -> dict[str, Any]:
    key: dict[str, Any] = {"model": config.to_dict(), "train": spec.train.to_dict()}
    if spec.base is not None:
        base = specs[spec.base]
        key["base"] = _cache_key(base, base.make_config(tuple(config.input_shape)), specs)
    return key


def trained_model(spec: Spec, data: DatasetSplits, cache: Path,
                  specs: dict[str, Spec]) -> tuple[nn.Module, dict]:
    """The trained ANN of ``spec``, from the cache or trained now (and cached)."""
    config = spec.make_config(data.input_shape)
    key = json.dumps(_cache_key(spec, config, specs), sort_keys=True)
    path = cache / f"{spec.name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.pt"
    if path.is_file():
        model, _, extra = load_model(path)
        return model.eval(), {**extra, "cached": True, "path": str(path)}
    torch.manual_seed(0)
    model = build_model(config)
    extra: dict[str, Any] = {}
    if spec.base is not None:
        base, base_info = trained_model(specs[spec.base], data, cache, specs)
        qcfs_from_relu(base, model, data.train.images[:5000], 99.9)
        extra["fine_tuned_from"] = base_info["path"]
        extra["initial_thresholds"] = [m.threshold.item() for m in model if isinstance(m, QCFS)]
    result = train(model, data.train, data.val, spec.train, progress=True)
    extra.update({
        "train_wall_time_s": result.wall_time_s,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "val_accuracy": result.history["val_accuracy"][result.best_epoch],
        "train_config": spec.train.to_dict(),
    })
    save_model(path, model, config, extra=extra)
    return model.eval(), {**extra, "cached": False, "path": str(path)}


@functools.cache
def _dataset(name: str) -> DatasetSplits:
    return load_dataset(name, seed=0)


def _relu_copy(model: nn.Module) -> nn.Module:
    """A copy with every QCFS replaced by ``nn.ReLU`` (what SpikingJelly can convert)."""
    clone = copy.deepcopy(model)
    for name, module in list(clone.named_children()):
        if isinstance(module, QCFS):
            setattr(clone, name, nn.ReLU())
    return clone


# ------------------------------------------------------------------------------------- running


def _load_avg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on every platform
        return None


def run_spikebridge(graph, images: torch.Tensor, T: int, batch_size: int) -> torch.Tensor:
    """Predictions ``(T, N)`` of a spikebridge graph."""
    return run(graph, images, T, batch_size=batch_size, record_spikes=False).predictions


def run_spikebridge_bare(graph, images: torch.Tensor, T: int, batch_size: int) -> torch.Tensor:
    """Predictions ``(T, N)`` from bare :meth:`SNNTorchNetwork.step` calls (nothing counted)."""
    net = SNNTorchNetwork(graph)
    predictions = torch.empty((T, len(images)), dtype=torch.int64)
    with torch.inference_mode():
        for lo in range(0, len(images), batch_size):
            x = images[lo:lo + batch_size]
            state = net.initial_state(len(x))
            for t in range(T):
                out, state = net.step(state, net.encode(x))
                predictions[t, lo:lo + len(x)] = out.argmax(dim=1)
    return predictions


def run_spikingjelly(snn: nn.Module, functional: Any, images: torch.Tensor, T: int,
                     batch_size: int) -> torch.Tensor:
    """Predictions ``(T, N)`` of a SpikingJelly network (the loop of its examples)."""
    predictions = torch.empty((T, len(images)), dtype=torch.int64)
    with torch.no_grad():
        for lo in range(0, len(images), batch_size):
            x = images[lo:lo + batch_size]
            functional.reset_net(snn)
            out = None
            for t in range(T):
                y = snn(x)
                out = y if out is None else out + y
                predictions[t, lo:lo + len(x)] = out.argmax(dim=1)
    return predictions


def paired_test(ours: torch.Tensor, theirs: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """Exact McNemar test of two classifiers on the same images: the images only one of them
    gets right, and the two-sided binomial p-value of that split under "equally accurate"."""
    right_a, right_b = ours == labels, theirs == labels
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_sb": only_a, "only_sj": only_b, "p": round(float(p), 4)}


def floor_shifted(graph: SpikingGraph, T: int) -> SpikingGraph:
    """``graph`` with the bias of the synaptic layer before each IF layer lowered by
    :math:`\theta/(2T)`: as a rate model, the mean effect of flooring every spike count after
    ``T`` steps (empty initial membrane) instead of rounding it (membrane at :math:`\theta/2`)."""
    nodes = dict(graph.nodes)
    names = list(nodes)
    for i, name in enumerate(names):
        if not isinstance(nodes[name], IF):
            continue
        j = i - 1
        while not isinstance(nodes[names[j]], (Affine, Conv2d)):
            j -= 1
        synapse, threshold = nodes[names[j]], nodes[name].threshold
        if threshold.ndim > 1:
            threshold = threshold.flatten(1).mean(dim=1)  # per neuron: a channel's mean
        nodes[names[j]] = dataclasses.replace(synapse, bias=synapse.bias - threshold / (2 * T))
    return SpikingGraph(nodes=nodes, edges=graph.edges, dt_ms=graph.dt_ms)


def rate_models(graph: SpikingGraph, images: torch.Tensor, labels: torch.Tensor,
                steps) -> dict[str, Any]:
    """Accuracy of ``graph`` as a rate model, as converted and floor-shifted for each T."""
    def accuracy(g: SpikingGraph) -> float:
        return round(rate_model_accuracy(g, images, labels), 6)

    return {"shift 0": accuracy(graph),
            "shift -theta/2T": {t: accuracy(floor_shifted(graph, t)) for t in steps}}


def accuracy_table(predictions: torch.Tensor, labels: torch.Tensor, steps) -> dict[int, float]:
    correct = (predictions == labels.reshape(1, -1)).double().mean(dim=1)
    return {t: round(float(correct[t - 1]), 6) for t in steps if t <= len(correct)}


def benchmark_model(spec: Spec, specs: dict[str, Spec], args: argparse.Namespace, sj: Any,
                    bar: tqdm) -> dict:
    """Every measurement of one model; emits its lines and returns them for the targets."""
    data = _dataset(spec.dataset)
    bar.set_postfix_str(f"{spec.name}: training / loading")
    model, info = trained_model(spec, data, args.cache, specs)
    images = data.test.images[:args.n_test]
    labels = data.test.labels[:args.n_test]
    calibration = data.train.images[:args.n_calib]
    test = evaluate(model, Split(images, labels))
    emit({"event": "ann", "model": spec.name, "dataset": spec.dataset,
          "architecture": spec.make_config(data.input_shape).to_dict(),
          "test_images": len(images), "ann_accuracy": round(test.accuracy, 6),
          "full_test_accuracy": round(evaluate(model, data.test).accuracy, 6), **info})
    T = max(args.steps)
    runners: dict[tuple[str, str], Callable[[torch.Tensor], torch.Tensor]] = {}
    conversion_s: dict[tuple[str, str], float] = {}
    for mode in MODES:
        bar.set_postfix_str(f"{spec.name}: converting ({mode})")
        start = time.perf_counter()
        options = {} if args.v_init is None else {"v_init_fraction": args.v_init}
        graph = convert(model, calibration, percentile=99.9 if mode == "99.9%" else "max",
                        channel_wise=args.channel_wise, **options).graph
        conversion_s[("spikebridge", mode)] = time.perf_counter() - start
        emit({"event": "rate_model", "model": spec.name, "mode": mode,
              "accuracy": rate_models(graph, images, labels, args.steps)})
        runners[("spikebridge", mode)] = (
            lambda x, g=graph: run_spikebridge(g, x, T, args.batch_size))
        if mode == MODES[0] and args.bare_step:
            conversion_s[("spikebridge-bare-step", mode)] = conversion_s[("spikebridge", mode)]
            runners[("spikebridge-bare-step", mode)] = (
                lambda x, g=graph: run_spikebridge_bare(g, x, T, args.batch_size))
        if isinstance(sj, tuple):
            ann2snn, functional = sj
            loader = [(calibration[i:i + args.batch_size], None)
                      for i in range(0, len(calibration), args.batch_size)]
            start = time.perf_counter()
            recipe = ann2snn.RateCodingRecipe(loader, mode=mode)
            snn = ann2snn.Converter(recipe=recipe).convert(_relu_copy(model)).eval()
            conversion_s[("spikingjelly", mode)] = time.perf_counter() - start
            runners[("spikingjelly", mode)] = (
                lambda x, s=snn, f=functional: run_spikingjelly(s, f, x, T, args.batch_size))
    times: dict[tuple[str, str], list[float]] = {key: [] for key in runners}
    predictions: dict[tuple[str, str], torch.Tensor] = {}
    loads = []
    timing_images = images[:args.time_images]
    for repeat in range(args.repeats + 1):
        # Run 0: every test image (accuracy, and timed); then --repeats timing runs on the
        # first --time-images, the tools interleaved.
        subset = images if repeat == 0 else timing_images
        for key, function in runners.items():
            if key[0] == "spikebridge-bare-step" and repeat == 0:
                continue  # same spikes as spikebridge: timing only
            bar.set_postfix_str(f"{spec.name}: {key[0]} {key[1]} run {repeat}")
            loads.append(_load_avg())
            start = time.perf_counter()
            result = function(subset)
            times[key].append((time.perf_counter() - start) / len(subset))
            if repeat == 0:
                predictions[key] = result
    records = {}
    for (tool, mode), elapsed in times.items():
        accuracy = accuracy_table(predictions[(tool if tool != "spikebridge-bare-step"
                                               else "spikebridge", mode)], labels, args.steps)
        record = {
            "event": "snn", "model": spec.name, "tool": tool, "mode": mode,
            "accuracy": accuracy,
            "loss_points": {t: round(100 * (test.accuracy - a), 3) for t, a in accuracy.items()},
            "time_per_image_ms": round(1000 * min(elapsed), 4),
            "run_times_per_image_ms": [round(1000 * x, 4) for x in elapsed],
            "T": T, "conversion_s": round(conversion_s[(tool, mode)], 3),
        }
        if tool == "spikingjelly" and spec.make_config(data.input_shape).activation == "qcfs":
            record["note"] = "QCFS replaced by nn.ReLU for SpikingJelly (it converts only ReLU)"
        records[(tool, mode)] = record
        emit(record)
    for mode in MODES:
        sb, other = records.get(("spikebridge", mode)), records.get(("spikingjelly", mode))
        if sb is None or other is None:
            continue
        emit({"event": "compare", "model": spec.name, "mode": mode,
              "accuracy_diff_points": {t: round(100 * (sb["accuracy"][t] - other["accuracy"][t]),
                                                3) for t in sb["accuracy"]},
              "paired": {t: paired_test(predictions[("spikebridge", mode)][t - 1],
                                        predictions[("spikingjelly", mode)][t - 1], labels)
                         for t in sb["accuracy"]},
              "time_ratio_sj_over_sb": round(other["time_per_image_ms"]
                                             / sb["time_per_image_ms"], 3),
              "spikebridge_ms": sb["time_per_image_ms"],
              "spikingjelly_ms": other["time_per_image_ms"],
              **({"time_ratio_sj_over_sb_bare_step":
                  round(other["time_per_image_ms"] / bare["time_per_image_ms"], 3),
                  "spikebridge_bare_step_ms": bare["time_per_image_ms"]}
                 if (bare := records.get(("spikebridge-bare-step", mode))) else {}),
              "load_avg_during_runs": [x for x in loads if x is not None]})
    return {"ann_accuracy": test.accuracy, "records": records, "predictions": predictions,
            "labels": labels}


# ------------------------------------------------------------------------------------- targets


def targets(results: dict[str, dict]) -> list[dict[str, Any]]:
    """The issue's targets, each with the figure measured and whether it is met."""
    out = []

    def add(name: str, measured: Any, met: bool | None) -> None:
        out.append({"target": name, "measured": measured, "met": met})

    def sb(model: str, mode: str = "99.9%") -> dict | None:
        return results.get(model, {}).get("records", {}).get(("spikebridge", mode))

    cnn = sb("fashion-cnn")
    if cnn:
        for t, limit in ((16, 1.0), (32, 0.3)):
            if t in cnn["loss_points"]:
                loss = cnn["loss_points"][t]
                add(f"fashion-cnn loss <= {limit} point at T={t}", loss, loss <= limit)
    worst = {}
    for model, result in results.items():
        for mode in MODES:
            a = result["records"].get(("spikebridge", mode))
            b = result["records"].get(("spikingjelly", mode))
            if a and b:
                diff = {t: round(100 * (a["accuracy"][t] - b["accuracy"][t]), 3)
                        for t in a["accuracy"]}
                worst[f"{model} {mode}"] = min(diff.values())
    if worst:
        add("spikebridge >= SpikingJelly at every T on every model (worst sb - sj, points)",
            worst, all(v >= 0 for v in worst.values()))
        behind = {}
        for model, result in results.items():
            for mode in MODES:
                a = result["predictions"].get(("spikebridge", mode))
                b = result["predictions"].get(("spikingjelly", mode))
                if a is None or b is None:
                    continue
                for t in result["records"][("spikebridge", mode)]["accuracy"]:
                    test = paired_test(a[t - 1], b[t - 1], result["labels"])
                    if test["only_sj"] > test["only_sb"]:
                        behind[f"{model} {mode} T={t}"] = test
        add("where spikebridge < SpikingJelly: exact McNemar test (none significant at p < 0.05)",
            behind, all(v["p"] >= 0.05 for v in behind.values()))
    qcfs, relu = sb("fashion-cnn-qcfs"), results.get("fashion-cnn")
    if qcfs and 8 in qcfs["loss_points"]:
        add("QCFS SNN at T=8 within 0.5 point of its ANN", qcfs["loss_points"][8],
            qcfs["loss_points"][8] <= 0.5)
    if qcfs and relu:
        gap = round(100 * (relu["ann_accuracy"] - results["fashion-cnn-qcfs"]["ann_accuracy"]), 3)
        add("QCFS ANN within 1 point of the ReLU ANN (ReLU - QCFS, points)", gap, gap <= 1.0)
    bn = sb("fashion-cnn-bn-maxpool")
    if bn and 64 in bn["loss_points"]:
        add("BN+maxpool CNN loss <= 1 point at T=64", bn["loss_points"][64],
            bn["loss_points"][64] <= 1.0)
    ratios = {}
    for model, result in results.items():
        for mode in MODES:
            a = result["records"].get(("spikebridge", mode))
            b = result["records"].get(("spikingjelly", mode))
            if a and b:
                ratios[f"{model} {mode}"] = round(b["time_per_image_ms"] / a["time_per_image_ms"],
                                                  3)
    if ratios:
        add("inference at least as fast as SpikingJelly per image (sj / sb time)", ratios,
            all(r >= 1.0 for r in ratios.values()))
    return out


def main(argv: list[str] | None = None) -> int:
    specs = _specs(None)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=sorted(specs), default=list(specs),
                        help="models to benchmark (default: all)")
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/.cache"),
                        help="folder of trained models (default benchmarks/.cache)")
    parser.add_argument("--n-test", type=int, default=2000, help="first N test images")
    parser.add_argument("--n-calib", type=int, default=5000,
                        help="first N training images for calibration (both tools)")
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEPS),
                        help="T at which accuracy is reported; runs last max(T) steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timing runs per SNN after the accuracy run (min kept)")
    parser.add_argument("--time-images", type=int, default=512,
                        help="first N test images of each timing run (default 512)")
    parser.add_argument("--bare-step", action="store_true",
                        help="also time spikebridge as a bare loop of SNNTorchNetwork.step")
    parser.add_argument("--batch-size", type=int, default=256, help="images per SNN batch")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override every model's epoch budget (changes the cache key)")
    parser.add_argument("--channel-wise", action="store_true",
                        help="spikebridge: one scale per channel")
    parser.add_argument("--v-init", type=float, default=None,
                        help="spikebridge: initial membrane fraction of ReLU neurons "
                             "(default: convert's default)")
    parser.add_argument("--no-spikingjelly", action="store_true", help="run spikebridge only")
    args = parser.parse_args(argv)
    if args.epochs is not None:
        specs = _specs(args.epochs)
    torch.set_num_threads(args.threads)
    args.steps = sorted(set(args.steps))
    sj = "disabled with --no-spikingjelly" if args.no_spikingjelly else _spikingjelly()
    emit({"event": "setup", "threads": torch.get_num_threads(), "n_test": args.n_test,
          "n_calib": args.n_calib, "steps": args.steps, "repeats": args.repeats,
          "time_images": args.time_images, "bare_step": args.bare_step,
          "batch_size": args.batch_size, "channel_wise": args.channel_wise,
          "v_init": args.v_init, "cpu_count": os.cpu_count(), "load_avg": _load_avg(),
          "machine": platform.processor() or platform.machine(), "versions": _versions()})
    if not isinstance(sj, tuple):
        emit({"event": "spikingjelly_unavailable", "reason": sj,
              "hint": "pip install spikingjelly==2.0.0 -c <(echo torch==$(python -c "
                      "'import torch; print(torch.__version__.split(\"+\")[0])'))"})
    results = {}
    bar = tqdm(args.models, desc="models", file=sys.stderr)
    for name in bar:
        results[name] = benchmark_model(specs[name], specs, args, sj, bar)
    for record in targets(results):
        emit({"event": "targets", **record})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
