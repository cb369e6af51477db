"""Training and evaluating the Diehl & Cook network: the learned parameters, the training loop
(checkpoints, exact resume, progress bar, callbacks) and the frozen-weights evaluation.

Training (:func:`train_diehl_cook`) shows the images in batches of ``batch_size`` (``1`` is the
paper: one example at a time) with :func:`~neuro.diehl_cook.torch_network.present_until_responsive`
(intensity loop, rest, weight normalisation after every presentation). The order of the images is
a fixed function of ``seed`` and the epoch, and the Poisson generator's state is checkpointed, so
a run resumed from a checkpoint gives the same weights as an uninterrupted one.

Retries with batches (``defer_retries``, on by default for ``batch_size > 1``): an example that
evokes fewer than ``min_spikes`` spikes is shown again at an intensity raised by
``intensity_step`` (at most ``max_retries`` times), as in the paper, but as a member of the
*next* batch (which takes that many fewer new images) instead of right away in a sub-batch of
the quiet examples alone, whose 700 steps cost nearly as much as a full batch. What it changes:
a retry is learned together with the next batch's new examples (their weight changes summed
step by step, as for any copies of a batch) rather than alone right after its own batch, so it
is learned one batch later, a batch may mix two epochs (retries of the last
batch of an epoch join the first of the next; the examples still waiting at the end are shown
in batches of their own), and ``samples_seen`` counts an example when it is first shown, so
checkpoints and callbacks fall a few examples past multiples of their ``*_every``. The examples
waiting are kept in the checkpoint, so resuming stays exact. With ``batch_size = 1`` nothing
is deferred.

Evaluation (:func:`evaluate_diehl_cook`) freezes learning (no STDP, no threshold adaptation),
assigns each excitatory neuron a class from its responses to a labelled set and classifies
another set (:mod:`neuro.diehl_cook.labels`).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from neuro.diehl_cook.labels import assign_labels as _assign_labels
from neuro.diehl_cook.labels import classify
from neuro.diehl_cook.params import DiehlCookParams, diehl_cook_params_for
from neuro.diehl_cook.torch_network import (
    START_INTENSITY,
    DiehlCookState,
    ResponsivePresentation,
    SpikeTotals,
    check_images,
    initial_state,
    initial_theta,
    initial_weights,
    present_until_responsive,
)
from neuro.plasticity.homeostasis import normalize_columns

__all__ = [
    "MNIST_MEAN_INTENSITY",
    "DIGITS_MEAN_INTENSITY",
    "matched_input_params",
    "DiehlCookNetwork",
    "TrainResult",
    "EvalResult",
    "train_diehl_cook",
    "spike_counts",
    "spike_totals",
    "evaluate_diehl_cook",
]

_CHECKPOINT_FORMAT = 1

#: Mean pixel intensity (pixel/255) of the MNIST training images, the input the paper's
#: constants were chosen for.
MNIST_MEAN_INTENSITY = 0.1307
#: Mean pixel intensity of scikit-learn's 8x8 digits scaled to [0, 1] (values 0..16 over 16).
DIGITS_MEAN_INTENSITY = 0.305


def matched_input_params(
    n_input: int, n_exc: int, mean_intensity: float, **overrides: float
) -> DiehlCookParams:
    r"""The paper's constants for other images, with the input rate scaled so that a neuron
    receives as many input spikes per second as with MNIST.

    :func:`~neuro.diehl_cook.params.diehl_cook_params_for` keeps the paper's 0.1 of column sum
    per input, so the mean excitatory drive of a neuron,
    :math:`\propto n_{input}\,\bar x\,r_{max}\,\bar w`, scales with
    :math:`n_{input}\,\bar x`: the 8x8 digits (64 inputs, :math:`\bar x` = 0.305) get 5.3
    times less than MNIST (784 inputs, :math:`\bar x` = 0.1307), the neurons barely reach
    threshold (6 spikes an example, the intensity loop running at its limit) and 100 neurons
    reach 60 % test accuracy after one epoch (batch 16). Here
    :math:`r_{max} = 63.75\ \text{Hz} \times 784 \cdot 0.1307 / (n_{input}\,\bar x)`
    (340 Hz for the digits) restores the paper's total input rate, about 6500 input spikes a
    second; with it the same run reaches 81 % (about 16 spikes an example). For MNIST itself
    it returns the paper's values.

    Parameters
    ----------
    n_input, n_exc : network size.
    mean_intensity : mean pixel intensity of the training images (in [0, 1]), e.g.
        :data:`DIGITS_MEAN_INTENSITY`.
    overrides : any other :class:`~neuro.diehl_cook.params.DiehlCookParams` field
        (``max_rate_hz`` here replaces the matched value).
    """
    if not 0.0 < mean_intensity <= 1.0:
        raise ValueError(f"mean_intensity must lie in (0, 1], got {mean_intensity!r}")
    if "max_rate_hz" not in overrides:
        base = DiehlCookParams().max_rate_hz
        overrides["max_rate_hz"] = base * 784 * MNIST_MEAN_INTENSITY / (n_input * mean_intensity)
    return diehl_cook_params_for(n_input, n_exc, **overrides)


@dataclass
class DiehlCookNetwork:
    """The learned parameters of a Diehl & Cook network, and the copies' carried-over state.

    Attributes
    ----------
    params : :class:`~neuro.diehl_cook.params.DiehlCookParams`.
    weights : input -> excitatory weights ``(n_input, n_exc)``.
    theta : threshold adaptation ``(n_exc,)``, mV, float64 (see
        :func:`~neuro.diehl_cook.torch_network.initial_theta`).
    state : the state of the training copies after their last rest (carried from one example to
        the next, as in the original code, which never resets the network); ``None`` before the
        first example.
    """

    params: DiehlCookParams
    weights: torch.Tensor
    theta: torch.Tensor
    state: DiehlCookState | None = None

    @classmethod
    def create(
        cls,
        params: DiehlCookParams,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> DiehlCookNetwork:
        """A fresh network: uniform random weights of ``dtype`` (drawn on the CPU from
        ``seed``, so identical on every device), normalised to ``column_sum``;
        :math:`\\theta` = ``theta_init`` in float64."""
        generator = torch.Generator().manual_seed(int(seed))
        weights = initial_weights(params, generator, device=device, dtype=dtype)
        weights = normalize_columns(weights, params.column_sum)
        return cls(params, weights, initial_theta(params, device=device))

    @property
    def device(self) -> torch.device:
        return self.weights.device

    def state_for(self, batch: int) -> DiehlCookState:
        """The state of the first ``batch`` copies; copies never used start at rest."""
        fresh = initial_state(self.params, batch, device=self.device, dtype=self.weights.dtype)
        if self.state is None:
            return fresh
        have = min(batch, self.state.v_exc.shape[0])
        return DiehlCookState(*(
            torch.cat([old[:have], new[have:]]) for old, new in zip(self.state, fresh, strict=True)
        ))

    def store_state(self, state: DiehlCookState) -> None:
        """Keep ``state`` as the state of the first copies (others are kept as they were)."""
        if self.state is None or self.state.v_exc.shape[0] <= state.v_exc.shape[0]:
            self.state = state
            return
        b = state.v_exc.shape[0]
        self.state = DiehlCookState(*(torch.cat([new, old[b:]]) for old, new in
                                      zip(self.state, state, strict=True)))

    def state_dict(self) -> dict[str, Any]:
        """Plain data (tensors, numbers, strings) that :func:`torch.load` reads with
        ``weights_only=True``; tensors are on the CPU."""
        return {
            "params": dataclasses.asdict(self.params),
            "weights": self.weights.detach().cpu(),
            "theta": self.theta.detach().cpu(),
            "state": None if self.state is None else {
                k: v.detach().cpu() for k, v in self.state._asdict().items()
            },
        }

    def load_state_dict(self, data: dict[str, Any]) -> None:
        """Load weights, theta and state written by :meth:`state_dict` (onto this network's
        device and dtype). The stored parameters must equal ``self.params``."""
        stored = DiehlCookParams(**data["params"])
        if stored != self.params:
            diff = [f.name for f in dataclasses.fields(stored)
                    if getattr(stored, f.name) != getattr(self.params, f.name)]
            raise ValueError(f"checkpoint was written with other DiehlCookParams (differ: {diff})")
        kw = {"device": self.device, "dtype": self.weights.dtype}
        self.weights = data["weights"].to(**kw)
        self.theta = data["theta"].to(device=self.device, dtype=torch.float64)
        state = data.get("state")
        self.state = None if state is None else DiehlCookState(
            **{k: v.to(**kw) for k, v in state.items()}
        )

    @classmethod
    def from_state_dict(
        cls, data: dict[str, Any], *, device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> DiehlCookNetwork:
        params = DiehlCookParams(**data["params"])
        net = cls(params, data["weights"].to(device=device, dtype=dtype),
                  data["theta"].to(device=device, dtype=torch.float64))
        net.load_state_dict(data)
        return net

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`state_dict` atomically (temporary file, then :func:`os.replace`)."""
        return _atomic_save(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: torch.device | str = "cpu",
             dtype: torch.dtype = torch.float32) -> DiehlCookNetwork:
        """Read a file written by :meth:`save` (``torch.load(weights_only=True)``)."""
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
        if "network" in data:  # a training checkpoint
            data = data["network"]
        return cls.from_state_dict(data, device=device, dtype=dtype)


def _atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_diehl_cook` returns.

    network : the trained :class:`DiehlCookNetwork` (``weights`` and ``theta`` are its tensors).
    samples_seen : training examples shown so far (including those of a resumed checkpoint).
    presentations : presentations run in this call (an example shown again at a higher
        intensity counts again; sub-batches count once).
    wall_time_s : wall-clock time of this call, s, without the time spent in ``callback``.
    seconds_per_sample : ``wall_time_s`` per example trained in this call.
    """

    network: DiehlCookNetwork
    samples_seen: int
    presentations: int
    wall_time_s: float
    seconds_per_sample: float

    @property
    def weights(self) -> torch.Tensor:
        return self.network.weights

    @property
    def theta(self) -> torch.Tensor:
        return self.network.theta


def _epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> torch.Tensor:
    """The order of the images in an epoch: a function of ``(seed, epoch)`` only."""
    if not shuffle:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch + 1)
    return torch.randperm(n, generator=generator)


def _progress_bar(total: int, initial: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="sample", desc=desc,
                dynamic_ncols=True, leave=False)


def train_diehl_cook(
    images: torch.Tensor,
    params: DiehlCookParams,
    *,
    n_samples: int | None = None,
    epochs: int = 1,
    batch_size: int = 1,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    shuffle: bool = True,
    network: DiehlCookNetwork | None = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 1000,
    resume: bool = False,
    progress: bool = True,
    callback: Callable[[int, DiehlCookNetwork], None] | None = None,
    callback_every: int = 1000,
    compiled: bool = False,
    defer_retries: bool | None = None,
) -> TrainResult:
    """Train a Diehl & Cook network without labels.

    Parameters
    ----------
    images : ``(N, n_input)`` or ``(N, ...)`` pixel intensities in ``[0, 1]``.
    params : :class:`~neuro.diehl_cook.params.DiehlCookParams` (``n_input`` must match).
    n_samples : use only the first ``n_samples`` images (``None``: all); each epoch shows each
        of them once, so ``epochs * n_samples`` examples are shown in all.
    epochs : passes over the images.
    batch_size : examples shown at once in copies sharing weights and theta (``1`` is the
        paper; see :mod:`neuro.diehl_cook.torch_network` for what batching changes). Batches do
        not straddle epochs.
    seed : seeds the initial weights, the image order (reshuffled every epoch when
        ``shuffle``) and the Poisson input.
    device, dtype : where and in what precision to simulate.
    network : continue training this network (its params must be ``params``) instead of a fresh
        one (:meth:`DiehlCookNetwork.create` with ``seed``).
    checkpoint_path : write a checkpoint here (atomically) every ``checkpoint_every`` examples
        and at the end.
    resume : if ``checkpoint_path`` exists, continue from it (it must have been written with the
        same params, seed, batch size, image count and shuffle); the result equals an
        uninterrupted run.
    progress : show a tqdm progress bar.
    callback : ``callback(samples_seen, network)`` after every batch that reaches a multiple of
        ``callback_every`` examples, and after the last batch; the network is live (copy what
        you keep). Learning is on again after it returns, so it may evaluate the network
        (:func:`evaluate_diehl_cook` does not modify it).
    compiled : run the neuron update through :func:`torch.compile`
        (:func:`~neuro.diehl_cook.torch_network.diehl_cook_step`): the same results, about a
        third less time per step with batch 1 on a CPU, after a compilation of a minute or so.
    defer_retries : show an example that evoked fewer than ``min_spikes`` spikes again (at its
        raised intensity, up to ``max_retries`` times) as part of the *next* batch, which then
        takes that many fewer new images, instead of right away in a sub-batch of the quiet
        examples alone (a presentation of 700 steps for a few copies). ``None``: on when
        ``batch_size > 1``; with ``batch_size = 1`` it is always off (the paper). See the
        module docstring for what it changes.

    Returns
    -------
    :class:`TrainResult`.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if defer_retries is None:
        defer_retries = batch_size > 1
    defer_retries = bool(defer_retries) and batch_size > 1
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    for name, every in (("checkpoint_every", checkpoint_every), ("callback_every", callback_every)):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"{name} must be a positive integer, got {every!r}")
    flat = check_images(images, params.n_input)
    if n_samples is not None:
        if not isinstance(n_samples, int) or not 1 <= n_samples <= flat.shape[0]:
            raise ValueError(
                f"n_samples must be an integer in 1 .. {flat.shape[0]} (the number of images), "
                f"got {n_samples!r}"
            )
        flat = flat[:n_samples]
    n_used = flat.shape[0]
    if n_used == 0:
        raise ValueError("images is empty")
    device = torch.device(device)
    flat = flat.to(device=device, dtype=dtype)

    if network is None:
        network = DiehlCookNetwork.create(params, seed=seed, device=device, dtype=dtype)
    elif network.params != params:
        raise ValueError("network.params differ from params")
    generator = torch.Generator(device=device).manual_seed(int(seed) + 1)
    samples_seen = 0
    run_key = {"seed": int(seed), "batch_size": batch_size, "n_images": n_used,
               "shuffle": bool(shuffle)}
    if defer_retries:
        run_key["defer_retries"] = True
    # examples waiting to be shown again (defer_retries): image index, intensity, retries so far
    pending_idx = torch.zeros(0, dtype=torch.int64)
    pending_intensity = torch.zeros(0, dtype=torch.float64)
    pending_tries = torch.zeros(0, dtype=torch.int64)
    if resume and checkpoint_path is not None and Path(checkpoint_path).exists():
        data = torch.load(Path(checkpoint_path), map_location="cpu", weights_only=True)
        if data.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError(f"{checkpoint_path} is not a Diehl & Cook training checkpoint")
        if data["run"] != run_key:
            raise ValueError(
                f"cannot resume from {checkpoint_path}: it was written by a run with "
                f"{data['run']}, this run has {run_key}"
            )
        network.load_state_dict(data["network"])
        generator.set_state(data["generator"])
        samples_seen = int(data["samples_seen"])
        if "pending" in data:
            pending_idx, pending_intensity, pending_tries = (
                data["pending"][k] for k in ("index", "intensity", "tries"))

    def save_checkpoint() -> None:
        if checkpoint_path is None:
            return
        _atomic_save({
            "format": _CHECKPOINT_FORMAT,
            "run": run_key,
            "samples_seen": samples_seen,
            "network": network.state_dict(),
            "generator": generator.get_state(),
            "pending": {"index": pending_idx, "intensity": pending_intensity,
                        "tries": pending_tries},
        }, checkpoint_path)

    total = epochs * n_used
    presentations = 0
    start_seen = samples_seen
    in_callback = 0.0
    start = time.perf_counter()
    bar = _progress_bar(total, samples_seen, progress, "Diehl & Cook training")
    order_epoch, order = -1, torch.empty(0, dtype=torch.int64)
    try:
        while samples_seen < total or pending_idx.numel():
            new_idx = order[:0]
            if samples_seen < total:
                epoch, offset = divmod(samples_seen, n_used)
                if epoch != order_epoch:
                    order_epoch, order = epoch, _epoch_order(n_used, seed, epoch, shuffle)
                take = batch_size - pending_idx.numel()
                new_idx = order[offset:min(offset + take, n_used, offset + total - samples_seen)]
            n_new = new_idx.numel()
            idx = torch.cat([pending_idx, new_idx.cpu()])
            batch = idx.numel()
            intensity = None
            if defer_retries:
                intensity = torch.cat([pending_intensity, torch.full(
                    (n_new,), START_INTENSITY, dtype=torch.float64)])
            result = present_until_responsive(
                network.weights, network.theta, flat[idx.to(device)], params, learning=True,
                generator=generator, state=network.state_for(batch), compiled=compiled,
                intensity=intensity, max_retries=0 if defer_retries else None,
            )
            network.weights, network.theta = result.weights, result.theta
            network.store_state(result.state)
            presentations += result.presentations
            if defer_retries:
                tries = torch.cat([pending_tries, torch.zeros(n_new, dtype=torch.int64)])
                quiet = (result.counts.sum(dim=1) < params.min_spikes).cpu()
                again = quiet & (tries < params.max_retries)
                pending_idx, pending_tries = idx[again], tries[again] + 1
                pending_intensity = intensity[again] + params.intensity_step
            before, samples_seen = samples_seen, samples_seen + n_new
            bar.update(n_new)
            bar.set_postfix(spikes=f"{float(result.counts.sum(1).float().mean()):.1f}",
                            intensity=f"{float(result.intensity.mean()):.2f}", refresh=False)
            finished = samples_seen >= total and not pending_idx.numel()
            if samples_seen // checkpoint_every > before // checkpoint_every or finished:
                save_checkpoint()
            if callback is not None and (
                samples_seen // callback_every > before // callback_every or finished
            ):
                entered = time.perf_counter()
                callback(samples_seen, network)
                in_callback += time.perf_counter() - entered
    finally:
        bar.close()
    wall = time.perf_counter() - start - in_callback
    trained = samples_seen - start_seen
    return TrainResult(network, samples_seen, presentations, wall,
                       wall / trained if trained else float("nan"))


def _frozen_responses(
    network: DiehlCookNetwork,
    flat: torch.Tensor,
    batch_size: int,
    seed: int,
    progress: bool,
    count_all: bool = False,
) -> Iterator[tuple[int, ResponsivePresentation]]:
    """Show the images ``flat`` (``(N, n_input)``, checked by
    :func:`~neuro.diehl_cook.torch_network.check_images`) in batches of ``batch_size``, learning
    frozen, each with the intensity loop
    (:func:`~neuro.diehl_cook.torch_network.present_until_responsive`) and starting at rest;
    yield ``(index of the batch's first image, result)`` per batch. ``network`` is not
    modified."""
    params = network.params
    flat = flat.to(device=network.device, dtype=network.weights.dtype)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    generator = torch.Generator(device=network.device).manual_seed(int(seed))
    bar = _progress_bar(flat.shape[0], 0, progress, "Diehl & Cook responses")
    try:
        for lo in range(0, flat.shape[0], batch_size):
            chunk = flat[lo:lo + batch_size]
            yield lo, present_until_responsive(network.weights, network.theta, chunk, params,
                                               learning=False, generator=generator,
                                               count_all=count_all)
            bar.update(chunk.shape[0])
    finally:
        bar.close()


def spike_counts(
    network: DiehlCookNetwork,
    images: torch.Tensor,
    *,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    """Excitatory spike counts ``(N, n_exc)`` (int64, CPU) of every image with learning frozen.

    Each image is shown with the intensity loop (as in the original test phase) to a copy that
    starts at rest; ``network`` (weights, theta, carried state) is not modified.
    """
    flat = check_images(images, network.params.n_input)
    out = torch.zeros((flat.shape[0], network.params.n_exc), dtype=torch.int64)
    for lo, res in _frozen_responses(network, flat, batch_size, seed, progress):
        out[lo:lo + res.counts.shape[0]] = res.counts.cpu()
    return out


def spike_totals(
    network: DiehlCookNetwork,
    images: torch.Tensor,
    *,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> tuple[SpikeTotals, torch.Tensor]:
    """The spikes of every population that each image evokes with learning frozen: the cost of
    an inference.

    The presentations are those of :func:`spike_counts` with the same arguments (the same
    random draws), but every presentation of the intensity loop counts, not only the accepted
    one.

    Returns
    -------
    totals : :class:`~neuro.diehl_cook.torch_network.SpikeTotals`, each field ``(N,)`` int64
        on the CPU: input, excitatory and inhibitory spikes of each image over all its
        presentations, and how many presentations it took.
    intensity : ``(N,)``, the intensity of each image's accepted (last) presentation.
    """
    flat = check_images(images, network.params.n_input)
    totals = SpikeTotals(*torch.zeros((4, flat.shape[0]), dtype=torch.int64))
    intensity = torch.zeros(flat.shape[0], dtype=network.weights.dtype)
    for lo, res in _frozen_responses(network, flat, batch_size, seed, progress,
                                     count_all=True):
        hi = lo + res.counts.shape[0]
        for total, chunk in zip(totals, res.totals, strict=True):
            total[lo:hi] = chunk.cpu()
        intensity[lo:hi] = res.intensity.cpu()
    return totals, intensity


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate_diehl_cook` returns.

    accuracy : fraction of ``images`` classified correctly.
    predictions : ``(N,)`` predicted classes.
    assignments : ``(n_exc,)`` class of every excitatory neuron (``-1``: never fired).
    counts, assign_counts : spike counts ``(N, n_exc)`` of the evaluated and the assignment set.
    wall_time_s : wall-clock time, s.
    """

    accuracy: float
    predictions: torch.Tensor
    assignments: torch.Tensor
    counts: torch.Tensor
    assign_counts: torch.Tensor
    wall_time_s: float


def evaluate_diehl_cook(
    network: DiehlCookNetwork,
    images: torch.Tensor,
    labels: torch.Tensor,
    assign_images: torch.Tensor,
    assign_labels: torch.Tensor,
    *,
    n_classes: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> EvalResult:
    """Accuracy of a trained network with learning frozen (no STDP, no theta change).

    The neurons are assigned classes from their responses to ``assign_images`` /
    ``assign_labels`` (:func:`~neuro.diehl_cook.labels.assign_labels`), then ``images`` are
    classified (:func:`~neuro.diehl_cook.labels.classify`) and compared with ``labels``.
    ``n_classes`` defaults to ``max(label) + 1`` over both label sets. ``network`` is not
    modified.
    """
    start = time.perf_counter()
    labels = torch.as_tensor(labels).long().cpu()
    assign_labels = torch.as_tensor(assign_labels).long().cpu()
    if labels.dim() != 1 or labels.shape[0] != len(images):
        raise ValueError(f"labels must be (N,) with N = {len(images)} images, got "
                         f"{tuple(labels.shape)}")
    if n_classes is None:
        n_classes = int(max(int(labels.max()), int(assign_labels.max()))) + 1
    assign_counts = spike_counts(network, assign_images, batch_size=batch_size, seed=seed,
                                 progress=progress)
    assignments = _assign_labels(assign_counts, assign_labels, n_classes)
    counts = spike_counts(network, images, batch_size=batch_size, seed=seed + 1,
                          progress=progress)
    predictions = classify(counts, assignments, n_classes)
    accuracy = float((predictions == labels).double().mean())
    return EvalResult(accuracy, predictions, assignments, counts, assign_counts,
                      time.perf_counter() - start)
