"""Supervised training of the ANNs with cross-entropy, early stopping and exact resume.

Reproducibility contract
------------------------
* The caller seeds the initialisation (``torch.manual_seed`` before :func:`ann.build_model`).
* Epoch ``e`` (counted from 0) shuffles the training set with a :class:`torch.Generator` seeded
  from ``(config.seed, e)`` only, so an epoch's order does not depend on what ran before it.
* With ``checkpoint_path``, the complete training state is written atomically after every epoch;
  :func:`train` called again with the same path continues after the last finished epoch. A run
  killed after epoch ``k`` and resumed ends with bit-identical weights and history to a run that
  was never interrupted (same device, same torch build, same number of threads). Resuming also
  restores torch's global random state as it was after that epoch, so stochastic layers such as
  dropout continue exactly too.

The monitored validation metric (``config.monitor``) picks the best epoch; the model ends with
that epoch's weights. With ``config.patience`` set, training stops after ``patience`` epochs
without strict improvement.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ann.evaluation import evaluate
from ann.serialization import atomic_torch_save, read_checkpoint

if TYPE_CHECKING:
    from ann.datasets import Split

__all__ = [
    "OPTIMIZERS",
    "MONITORS",
    "HISTORY_KEYS",
    "CHECKPOINT_FORMAT",
    "TrainConfig",
    "TrainResult",
    "train",
    "epoch_generator",
    "cross_entropy_epoch",
    "is_improvement",
]

OPTIMIZERS = ("adam", "sgd")
MONITORS = ("val_loss", "val_accuracy")
HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
CHECKPOINT_FORMAT = "spikebridge-train-checkpoint"
_CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train`.

    Attributes
    ----------
    optimizer : ``"adam"`` or ``"sgd"``.
    lr : learning rate (> 0).
    momentum : SGD momentum in [0, 1); ignored by Adam.
    weight_decay : L2 penalty (>= 0), as the optimizer's ``weight_decay``.
    epochs : maximum number of epochs (>= 1).
    batch_size : training samples per step (>= 1). A last batch of a single sample is merged into
        the previous batch, so batch norm always sees at least two samples.
    patience : stop after this many epochs without improvement of ``monitor``; ``None`` never
        stops early.
    monitor : ``"val_loss"`` (lower is better) or ``"val_accuracy"`` (higher is better); decides
        the best epoch and early stopping.
    seed : seed (>= 0) of the per-epoch shuffling.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 20
    batch_size: int = 64
    patience: int | None = None
    monitor: str = "val_loss"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.patience is not None and (
            isinstance(self.patience, bool) or not isinstance(self.patience, int)
            or self.patience < 1
        ):
            raise ValueError(f"patience must be None or an integer >= 1, got {self.patience!r}")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {MONITORS}, got {self.monitor!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on an unknown key."""
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown} in a TrainConfig")
        return cls(**data)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    history : ``{"train_loss", "train_accuracy", "val_loss", "val_accuracy"}``, one float per
        epoch run. Train metrics are averaged over the epoch's steps in train mode (as the
        weights change); validation metrics are measured in eval mode after the epoch.
    best_epoch : index (from 0) of the epoch whose weights the model ends with.
    epochs_run : number of epochs completed, across resumes.
    stopped_early : whether early stopping ended the run before ``config.epochs``.
    samples_seen : training samples processed, across resumes.
    wall_time_s : training time in seconds, across resumes.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = -1
    epochs_run: int = 0
    stopped_early: bool = False
    samples_seen: int = 0
    wall_time_s: float = 0.0


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The CPU generator that shuffles epoch ``epoch`` (from 0) of a run seeded with ``seed``.

    Its seed is derived from the pair ``(seed, epoch)`` with :class:`numpy.random.SeedSequence`,
    so neighbouring seeds and epochs give unrelated orders.
    """
    derived = int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0])
    generator = torch.Generator()
    generator.manual_seed(derived)
    return generator


def cross_entropy_epoch(
    forward: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    order: torch.Tensor,
    batches: Iterable[slice],
) -> tuple[float, float]:
    r"""One epoch of mini-batch gradient descent on the cross-entropy; the caller sets the mode.

    For each slice ``b`` of ``batches`` the samples ``order[b]`` are classified,
    :math:`z = \mathrm{forward}(x)`, and ``optimizer`` takes one step on the batch's mean loss
    :math:`L_b = -\frac{1}{|b|}\sum_{i \in b} \log \mathrm{softmax}(z_i)_{y_i}`
    (:func:`torch.nn.functional.cross_entropy`).

    Returns
    -------
    ``(train_loss, train_accuracy)``: :math:`\sum_b |b|\,L_b / N` and the fraction of the
    :math:`N` = ``len(order)`` samples classified correctly, both measured as the weights change.
    """
    loss_sum = 0.0
    correct = 0
    for batch in batches:
        index = order[batch]
        x, y = images[index], labels[index]
        optimizer.zero_grad(set_to_none=True)
        logits = forward(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(y)
        correct += int((logits.argmax(dim=1) == y).sum().item())
    n = len(order)
    return loss_sum / n, correct / n


def is_improvement(value: float, best: float | None, monitor: str) -> bool:
    """Whether ``value`` of the monitored metric strictly beats ``best`` (``None``: nothing yet):
    lower for ``"val_loss"``, higher for ``"val_accuracy"``."""
    if best is None:
        return True
    return value < best if monitor == "val_loss" else value > best


def _batch_slices(n: int, batch_size: int) -> list[slice]:
    """Consecutive batches covering ``range(n)``; a trailing single sample joins the last batch."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    stops = starts[1:] + [n]
    return [slice(start, stop) for start, stop in zip(starts, stops, strict=True)]


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def _check_same_model(path: Path, model: nn.Module, saved: Mapping[str, torch.Tensor]) -> None:
    """Raise ``ValueError`` unless ``saved`` has exactly the names and shapes of ``model``'s."""
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in saved.items()}
    if expected == found:
        return
    problems = []
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing:
        problems.append(f"missing {missing}")
    if unexpected:
        problems.append(f"unexpected {unexpected}")
    for name in sorted(set(expected) & set(found)):
        if expected[name] != found[name]:
            problems.append(f"{name} has shape {found[name]}, the model needs {expected[name]}")
    raise ValueError(
        f"checkpoint {path} belongs to a different model: " + "; ".join(problems[:5])
        + ". Use another checkpoint path or delete this file to start afresh."
    )


def _load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    device: torch.device,
) -> dict[str, Any]:
    """Restore model and optimizer from ``path`` and return the checkpoint's bookkeeping."""
    state = read_checkpoint(path, CHECKPOINT_FORMAT, _CHECKPOINT_VERSION, "training", device)
    _check_same_model(path, model, state["model"])
    saved_config = dict(state["train_config"])
    current = config.to_dict()
    # Only the epoch budget may change between runs: extending a run continues it exactly.
    saved_config.pop("epochs")
    current.pop("epochs")
    if saved_config != current:
        changed = sorted(k for k in current if saved_config.get(k) != current[k])
        raise ValueError(
            f"checkpoint {path} was written with a different TrainConfig (fields {changed} "
            "differ); use another checkpoint path or the original configuration"
        )
    model.load_state_dict(state["model"])
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise ValueError(
            f"checkpoint {path} belongs to a different model (its optimizer state does not fit "
            f"this model's parameters): {error}"
        ) from error
    if state["cpu_rng_state"] is not None:
        torch.set_rng_state(state["cpu_rng_state"].cpu())
    if state["cuda_rng_state"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng_state"].cpu(), device)
    return state


def train(
    model: nn.Module,
    train: Split,
    val: Split,
    config: TrainConfig,
    *,
    device: str | torch.device = "cpu",
    checkpoint_path: Path | str | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict[str, list[float]]], None] | None = None,
) -> TrainResult:
    """Train ``model`` with cross-entropy on ``train``, validating on ``val`` after each epoch.

    Parameters
    ----------
    model : classifier mapping ``(N, C, H, W)`` images to ``(N, num_classes)`` logits. It is
        moved to ``device`` and trained in place; it ends with the best validation weights and
        in the train/eval mode it had on entry.
    train, val : the training and validation splits.
    config : hyper-parameters.
    device : where to train; both splits are moved there whole.
    checkpoint_path : if given, the training state is saved there atomically after every epoch,
        and an existing file there is resumed from (see the module docstring).
    progress : show a tqdm bar over epochs.
    on_epoch_end : called as ``on_epoch_end(epoch, history)`` after each epoch (from 0) and
        after its checkpoint is written; ``history`` is a copy. An exception raised here stops
        training, leaving a checkpoint to resume from.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        If a split is empty, or the checkpoint cannot be read, was written with another
        ``TrainConfig`` (other than ``epochs``), or belongs to a different model.
    """
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"train and val must be non-empty, got {len(train)} and {len(val)}")
    device = torch.device(device)
    checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
    model.to(device)
    optimizer = _make_optimizer(model, config)

    history: dict[str, list[float]] = {key: [] for key in HISTORY_KEYS}
    start_epoch = 0
    best_state = _clone_state(model)
    best_value: float | None = None
    best_epoch = -1
    since_best = 0
    samples_seen = 0
    elapsed_before = 0.0
    stopped_early = False
    if checkpoint_path is not None and checkpoint_path.exists():
        state = _load_checkpoint(checkpoint_path, model, optimizer, config, device)
        history = {key: list(state["history"][key]) for key in HISTORY_KEYS}
        start_epoch = state["epoch"] + 1
        best_state = state["best_state"]
        best_value = state["best_value"]
        best_epoch = state["best_epoch"]
        since_best = state["since_best"]
        samples_seen = state["samples_seen"]
        elapsed_before = state["wall_time_s"]
        stopped_early = state["stopped_early"]

    images = train.images.to(device)
    labels = train.labels.to(device)
    n = len(labels)
    batches = _batch_slices(n, config.batch_size)
    was_training = model.training
    started = time.perf_counter()
    epochs = range(start_epoch, config.epochs) if not stopped_early else range(0)
    bar = tqdm(
        epochs, total=config.epochs, initial=start_epoch, desc="train", unit="epoch",
        disable=not progress, leave=False,
    )
    try:
        for epoch in bar:
            model.train()
            order = torch.randperm(n, generator=epoch_generator(config.seed, epoch)).to(device)
            train_loss, train_accuracy = cross_entropy_epoch(
                model, optimizer, images, labels, order, batches
            )
            samples_seen += n
            validation = evaluate(model, val, device=device)
            history["train_loss"].append(train_loss)
            history["train_accuracy"].append(train_accuracy)
            history["val_loss"].append(validation.loss)
            history["val_accuracy"].append(validation.accuracy)

            value = validation.loss if config.monitor == "val_loss" else validation.accuracy
            if is_improvement(value, best_value, config.monitor):
                best_value, best_epoch, since_best = value, epoch, 0
                best_state = _clone_state(model)
            else:
                since_best += 1
            stopped_early = (
                config.patience is not None
                and since_best >= config.patience
                and epoch + 1 < config.epochs
            )
            bar.set_postfix(
                train_loss=f"{history['train_loss'][-1]:.4f}",
                val_loss=f"{validation.loss:.4f}",
                val_acc=f"{validation.accuracy:.3f}",
            )
            if checkpoint_path is not None:
                atomic_torch_save(
                    {
                        "format": CHECKPOINT_FORMAT,
                        "version": _CHECKPOINT_VERSION,
                        "train_config": config.to_dict(),
                        "epoch": epoch,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "history": history,
                        "best_state": best_state,
                        "best_value": best_value,
                        "best_epoch": best_epoch,
                        "since_best": since_best,
                        "samples_seen": samples_seen,
                        "wall_time_s": elapsed_before + time.perf_counter() - started,
                        "stopped_early": stopped_early,
                        # Only used by stochastic layers (dropout); saved so they resume exactly.
                        "cpu_rng_state": torch.get_rng_state(),
                        "cuda_rng_state": (
                            torch.cuda.get_rng_state(device) if device.type == "cuda" else None
                        ),
                    },
                    checkpoint_path,
                )
            if on_epoch_end is not None:
                on_epoch_end(epoch, {key: list(values) for key, values in history.items()})
            if stopped_early:
                break
    finally:
        bar.close()
        model.train(was_training)

    model.load_state_dict(best_state)
    return TrainResult(
        history=history,
        best_epoch=best_epoch,
        epochs_run=len(history["train_loss"]),
        stopped_early=stopped_early,
        samples_seen=samples_seen,
        wall_time_s=elapsed_before + time.perf_counter() - started,
    )
