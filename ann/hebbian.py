r"""Rate-based Hebbian learning with competing hidden units (Krotov & Hopfield, 2019).

The non-spiking biological counterpart of the spiking STDP networks: a hidden layer of
:math:`K` units learns receptive fields from images alone with a local, competitive Hebbian
rule; a linear readout trained with backprop on top of the frozen layer is the only part that
sees labels.

Learning rule
-------------
For a minibatch of inputs :math:`v` (pixels in :math:`[0, 1]`) and weights
:math:`W \in \mathbb{R}^{K \times D}`, hidden unit :math:`\mu` receives the current

.. math::

    I_\mu = \langle W_\mu, v \rangle_p, \qquad
    \langle x, y \rangle_p = \sum_i \operatorname{sign}(x_i) \, |x_i|^{p-1} \, y_i .

The units are ranked by current; the strongest is pushed towards the input (Hebbian) and the
:math:`k`-th strongest away from it (anti-Hebbian):

.. math::

    g(Q_\mu) = \begin{cases} 1 & \text{rank 1} \\ -\Delta & \text{rank } k \\ 0 &
    \text{otherwise,} \end{cases}
    \qquad
    \mathrm{d}s_\mu = \sum_{v \in \text{batch}} g(Q_\mu) \, \bigl(v - I_\mu W_\mu\bigr),

    W \leftarrow W + \varepsilon_e \, \frac{\mathrm{d}s}{\max(\max_{\mu i} |\mathrm{d}s_{\mu i}|,
    \text{precision})} ,

with :math:`\varepsilon_e = \varepsilon_0 (1 - e / E)` decaying linearly over the :math:`E`
epochs. Normalising by the largest entry of :math:`\mathrm{d}s` makes the largest weight change
of every minibatch exactly :math:`\varepsilon_e` (dimensionless, like the weights). The decay
term :math:`-I_\mu W_\mu` drives every active unit's weights to the unit :math:`p`-sphere,
:math:`\|W_\mu\|_p = 1`: :math:`\tfrac{d}{dt}\|W_\mu\|_p^p \propto g\,I_\mu\,(1 -
\|W_\mu\|_p^p)`.

This module follows the authors' published NumPy implementation line by line (weights drawn
from :math:`\mathcal{N}(\mu, \sigma)`, the linear learning-rate decay, the ``prec`` floor on the
normaliser, full minibatches only), from the notebook
``Unsupervised_learning_algorithm_MNIST.ipynb`` in https://github.com/DimaKrotov/Biological_Learning
(Apache 2.0), the reference code of the paper.

Classifier
----------
:class:`HebbianClassifier` freezes the learned layer, computes the features
:math:`h_\mu = \max(\sum_i W_{\mu i} v_i, 0)^n` (the paper's readout nonlinearity, :math:`n = 4.5`)
and trains a linear readout with cross-entropy and Adam through :func:`ann.training.train` (the
paper uses :math:`\tanh` outputs with a :math:`|c - t|^m` loss; cross-entropy is the usual
substitute). It counts how many labels, and how many training samples each stage, used.
Optionally it subtracts the mean training image from every input first (``center_inputs``),
which kept the rule from collapsing onto one winner on Fashion-MNIST.

References
----------
.. [1] D. Krotov and J. J. Hopfield, "Unsupervised learning by competing hidden units",
   PNAS 116 (16), 7723-7731, 2019. https://doi.org/10.1073/pnas.1820458116
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from tqdm.auto import tqdm

from ann.datasets import Split
from ann.evaluation import Evaluation, evaluate
from ann.serialization import atomic_torch_save, read_checkpoint
from ann.training import TrainConfig, TrainResult, epoch_generator, train

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "HEBBIAN_CHECKPOINT_FORMAT",
    "DEFAULT_READOUT",
    "KrotovHopfieldParams",
    "krotov_hopfield_update",
    "hebbian_learning_rate",
    "p_norms",
    "initial_hebbian_weights",
    "train_hebbian_layer",
    "HebbianFeatures",
    "HebbianStats",
    "HebbianClassifier",
    "plot_receptive_fields",
]

HEBBIAN_CHECKPOINT_FORMAT = "spikebridge-hebbian-checkpoint"
_CHECKPOINT_VERSION = 1
# Tag mixed into the seed of the weight initialisation, so it never coincides with the stream
# that shuffles an epoch (`epoch_generator(seed, epoch)`).
_INIT_STREAM = 0x4B48


@dataclass(frozen=True)
class KrotovHopfieldParams:
    r"""Hyper-parameters of the competing-hidden-units rule (names of the reference code in
    brackets).

    Attributes
    ----------
    hidden_units : number of hidden units :math:`K` [``hid``], >= ``k``.
    p : Lebesgue norm of the weights [``p``], >= 1; the weights converge to
        :math:`\|W_\mu\|_p = 1`. The paper uses 3 on MNIST.
    k : ranking parameter [``k``], integer >= 2: the ``k``-th most active unit gets the
        anti-Hebbian update. The paper uses 7.
    delta : strength :math:`\Delta \geq 0` of the anti-Hebbian update [``delta``].
    eps0 : initial learning rate [``eps0``], > 0: the largest absolute weight change of a
        minibatch in the first epoch (weights are dimensionless).
    epochs : number of passes over the data [``Nep``]; the learning rate decays linearly from
        ``eps0`` to ``eps0 / epochs``.
    batch_size : inputs per update [``Num``]; only full minibatches are used, so each epoch
        sees ``(N // batch_size) * batch_size`` inputs (a different remainder is left out each
        epoch because the order is reshuffled).
    precision : floor of the normaliser :math:`\max|\mathrm{d}s|` [``prec``], > 0.
    init_mean, init_std : mean and standard deviation (> 0) of the Gaussian initial weights
        [``mu``, ``sigma``].

    The defaults are the paper's MNIST setting (:math:`K = 2000`, :math:`p = 3`, :math:`k = 7`,
    :math:`\Delta = 0.4`) with the reference notebook's schedule (``eps0 = 0.02``, 200 epochs of
    minibatches of 100). With few hidden units keep ``k`` small: the anti-Hebbian push can
    silence every unit but the ``k - 1`` strongest (on the 8x8 digits, ``K = 100, k = 7`` kept 6
    winners after 300 epochs and the readout fell to 76 %; ``k = 2`` gave 96 %).
    """

    hidden_units: int = 2000
    p: float = 3.0
    k: int = 7
    delta: float = 0.4
    eps0: float = 0.02
    epochs: int = 200
    batch_size: int = 100
    precision: float = 1e-30
    init_mean: float = 0.0
    init_std: float = 1.0

    def __post_init__(self) -> None:
        for name in ("hidden_units", "k", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.k < 2:
            raise ValueError(f"k must be >= 2 (rank 1 is the Hebbian winner), got {self.k}")
        if self.k > self.hidden_units:
            raise ValueError(
                f"k={self.k} needs at least k hidden units, got hidden_units={self.hidden_units}"
            )
        if not (math.isfinite(self.p) and self.p >= 1):
            raise ValueError(f"p must be a finite number >= 1, got {self.p}")
        if not (math.isfinite(self.delta) and self.delta >= 0):
            raise ValueError(f"delta must be a finite number >= 0, got {self.delta}")
        for name in ("eps0", "precision", "init_std"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if not math.isfinite(self.init_mean):
            raise ValueError(f"init_mean must be finite, got {self.init_mean}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the fields."""
        return asdict(self)


def hebbian_learning_rate(params: KrotovHopfieldParams, epoch: int) -> float:
    """Learning rate :math:`\\varepsilon_0 (1 - e/E)` of epoch ``epoch`` (from 0)."""
    if not 0 <= epoch < params.epochs:
        raise ValueError(f"epoch must be in [0, {params.epochs}), got {epoch}")
    return params.eps0 * (1.0 - epoch / params.epochs)


def p_norms(weights: torch.Tensor, p: float) -> torch.Tensor:
    """:math:`\\|W_\\mu\\|_p = (\\sum_i |W_{\\mu i}|^p)^{1/p}` of every row (hidden unit)."""
    return weights.abs().pow(p).sum(dim=1).pow(1.0 / p)


def _flatten(inputs: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` or ``(N, D)`` to ``(N, D)``."""
    if inputs.ndim < 2:
        raise ValueError(f"inputs must be shaped (N, D) or (N, C, H, W), got {tuple(inputs.shape)}")
    return inputs.reshape(len(inputs), -1)


def krotov_hopfield_update(
    weights: torch.Tensor,
    inputs: torch.Tensor,
    params: KrotovHopfieldParams,
    lr: float,
) -> torch.Tensor:
    r"""Weight change of one minibatch under the competing-hidden-units rule.

    .. math::

        I_\mu = \sum_i \operatorname{sign}(W_{\mu i}) |W_{\mu i}|^{p-1} v_i, \quad
        \mathrm{d}s_\mu = \sum_{v} g(Q_\mu) (v - I_\mu W_\mu), \quad
        \Delta W = \mathrm{lr} \, \frac{\mathrm{d}s}{\max(\max|\mathrm{d}s|, \mathrm{precision})}

    with :math:`g = 1` for the unit of largest current, :math:`g = -\Delta` for the
    :math:`k`-th largest and 0 otherwise, per input (module docstring; Krotov & Hopfield 2019,
    eq. 3 and the reference notebook).

    Parameters
    ----------
    weights : ``(K, D)`` float tensor; not modified.
    inputs : ``(B, D)`` or ``(B, C, H, W)`` tensor of the minibatch, same dtype and device.
    params : the rule's parameters (``p``, ``k``, ``delta``, ``precision``).
    lr : learning rate (>= 0): the largest absolute entry of the returned change.

    Returns
    -------
    torch.Tensor
        ``delta_w``, shaped like ``weights``. Apply it with ``weights + delta_w``.
    """
    if weights.ndim != 2:
        raise ValueError(f"weights must be (K, D), got shape {tuple(weights.shape)}")
    inputs = _flatten(inputs)
    hidden, dim = weights.shape
    if inputs.shape[1] != dim:
        raise ValueError(f"inputs have {inputs.shape[1]} features, weights expect {dim}")
    if hidden < params.k:
        raise ValueError(f"{hidden} hidden units cannot rank the k={params.k}-th")
    if not lr >= 0:
        raise ValueError(f"lr must be >= 0, got {lr}")
    batch = len(inputs)
    currents = (weights.sign() * weights.abs().pow(params.p - 1.0)) @ inputs.T  # (K, B)
    ranked = torch.topk(currents, params.k, dim=0).indices  # (k, B), rank 1 first
    columns = torch.arange(batch, device=weights.device)
    g = torch.zeros_like(currents)
    g[ranked[0], columns] = 1.0
    g[ranked[params.k - 1], columns] = -params.delta
    # g has two non-zeros per column, so the Hebbian term g @ v is two scatter-adds.
    hebbian = torch.zeros_like(weights)
    hebbian.index_add_(0, ranked[0], inputs)
    hebbian.index_add_(0, ranked[params.k - 1], inputs, alpha=-params.delta)
    decay = (g * currents).sum(dim=1, keepdim=True) * weights
    ds = hebbian - decay
    scale = torch.clamp(ds.abs().max(), min=params.precision)
    return ds * (lr / scale)


def _init_generator(seed: int) -> torch.Generator:
    derived = int(
        np.random.SeedSequence([seed, _INIT_STREAM]).generate_state(1, dtype=np.uint64)[0]
    )
    generator = torch.Generator()
    generator.manual_seed(derived)
    return generator


def initial_hebbian_weights(
    params: KrotovHopfieldParams, dim: int, seed: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Gaussian initial weights ``(hidden_units, dim)`` drawn from a generator seeded by
    ``seed`` alone (torch's global random state is untouched)."""
    noise = torch.randn(params.hidden_units, dim, generator=_init_generator(seed), dtype=dtype)
    return params.init_mean + params.init_std * noise


def _data_fingerprint(data: torch.Tensor) -> dict[str, Any]:
    """Shape and sums of the training data, to refuse resuming on different images."""
    as_double = data.double()
    return {
        "shape": list(data.shape),
        "sum": float(as_double.sum()),
        "weighted_sum": float(
            (as_double.sum(dim=1) * torch.arange(len(data), device=data.device)).sum()
        ),
    }


def _load_hebbian_checkpoint(
    path: Path, params: KrotovHopfieldParams, seed: int, fingerprint: dict[str, Any]
) -> dict[str, Any]:
    state = read_checkpoint(path, HEBBIAN_CHECKPOINT_FORMAT, _CHECKPOINT_VERSION, "Hebbian")
    saved = dict(state["params"])
    if saved != params.to_dict():
        changed = sorted(k for k, v in params.to_dict().items() if saved.get(k) != v)
        raise ValueError(
            f"checkpoint {path} was written with different KrotovHopfieldParams (fields "
            f"{changed} differ; the learning-rate schedule depends on epochs too); use another "
            "checkpoint path or the original parameters"
        )
    if state["seed"] != seed:
        raise ValueError(f"checkpoint {path} was written with seed {state['seed']}, not {seed}")
    if state["data"] != fingerprint:
        raise ValueError(f"checkpoint {path} was written for different training images")
    return state


def _hebbian_checkpoint_totals(path: Path) -> tuple[int, float]:
    """``(samples_seen, wall_time_s)`` accumulated in a finished Hebbian checkpoint."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    return int(state["samples_seen"]), float(state["wall_time_s"])


def train_hebbian_layer(
    images: torch.Tensor,
    params: KrotovHopfieldParams,
    seed: int = 0,
    progress: bool = True,
    checkpoint_path: Path | str | None = None,
) -> torch.Tensor:
    """Learn the hidden layer from images alone with :func:`krotov_hopfield_update`.

    Epoch ``e`` (from 0) visits the images in the order ``torch.randperm(N,
    generator=ann.training.epoch_generator(seed, e))`` in consecutive full minibatches, with
    learning rate :func:`hebbian_learning_rate`. Initial weights come from
    :func:`initial_hebbian_weights`. Nothing reads torch's global random state, so the result
    depends only on the images, ``params`` and ``seed`` (bit-identical on the same torch build
    and number of threads).

    Parameters
    ----------
    images : ``(N, C, H, W)`` or ``(N, D)`` float tensor; labels are never seen. Trained in the
        images' dtype on their device.
    params : hyper-parameters.
    seed : seed (>= 0) of the initial weights and of every epoch's order.
    progress : show a tqdm bar over epochs.
    checkpoint_path : if given, ``{epoch, weights, ...}`` is written there atomically after
        every epoch, and an existing file there (same params, seed and images) is resumed from:
        a run interrupted after epoch ``e`` and resumed ends with the same weights as one
        never interrupted.

    Returns
    -------
    torch.Tensor
        The learned weights ``(hidden_units, D)``, on the images' device.

    Raises
    ------
    ValueError
        If there are fewer images than one minibatch, or the checkpoint does not match.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    data = _flatten(images)
    if not data.is_floating_point():
        raise ValueError(f"images must be a float tensor, got {data.dtype}")
    n, dim = data.shape
    if n < params.batch_size:
        raise ValueError(f"{n} images are fewer than one minibatch of {params.batch_size}")
    device = data.device
    batches = n // params.batch_size
    checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
    fingerprint = _data_fingerprint(data) if checkpoint_path is not None else {}

    weights = initial_hebbian_weights(params, dim, seed, dtype=data.dtype).to(device)
    start_epoch, samples_seen, elapsed_before = 0, 0, 0.0
    if checkpoint_path is not None and checkpoint_path.exists():
        state = _load_hebbian_checkpoint(checkpoint_path, params, seed, fingerprint)
        weights = state["weights"].to(device=device, dtype=data.dtype)
        start_epoch = state["epoch"] + 1
        samples_seen = state["samples_seen"]
        elapsed_before = state["wall_time_s"]

    started = time.perf_counter()
    bar = tqdm(
        range(start_epoch, params.epochs), total=params.epochs, initial=start_epoch,
        desc="hebbian", unit="epoch", disable=not progress, leave=False,
    )
    try:
        for epoch in bar:
            lr = hebbian_learning_rate(params, epoch)
            order = torch.randperm(n, generator=epoch_generator(seed, epoch)).to(device)
            for b in range(batches):
                batch = data[order[b * params.batch_size:(b + 1) * params.batch_size]]
                weights = weights + krotov_hopfield_update(weights, batch, params, lr)
            samples_seen += batches * params.batch_size
            norms = p_norms(weights, params.p)
            bar.set_postfix(lr=f"{lr:.2e}", p_norm=f"{float(norms.mean()):.3f}")
            if checkpoint_path is not None:
                atomic_torch_save(
                    {
                        "format": HEBBIAN_CHECKPOINT_FORMAT,
                        "version": _CHECKPOINT_VERSION,
                        "params": params.to_dict(),
                        "seed": seed,
                        "data": fingerprint,
                        "epoch": epoch,
                        "weights": weights.cpu(),
                        "samples_seen": samples_seen,
                        "wall_time_s": elapsed_before + time.perf_counter() - started,
                    },
                    checkpoint_path,
                )
    finally:
        bar.close()
    return weights


class HebbianFeatures(nn.Module):
    r"""The frozen hidden layer: :math:`h_\mu = \max(\sum_i W_{\mu i} (v_i - c_i), 0)^n / s_\mu`.

    ``weights`` (``(K, D)``), ``offset`` :math:`c` (``(D,)``, zeros unless the inputs were
    centred) and ``scale`` :math:`s` (``(K,)``, > 0) are buffers, not parameters, so an
    optimizer over ``parameters()`` never changes them. :math:`s` only rescales each feature to
    order 1 for the readout's optimizer, which a linear readout could absorb in its weights: it
    changes the conditioning, not the model. :meth:`HebbianClassifier.fit` sets it to each
    unit's root-mean-square feature over the training images (no labels needed). Without it,
    units still far from the unit sphere (:math:`\|W_\mu\|_p \gg 1`, rarely winners) give
    features :math:`\|W_\mu\|_p^n` times larger than the learned ones and Adam's steps of
    bounded size cannot weigh the learned ones in.
    """

    def __init__(
        self,
        weights: torch.Tensor,
        power: float = 4.5,
        scale: torch.Tensor | None = None,
        offset: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if weights.ndim != 2:
            raise ValueError(f"weights must be (K, D), got shape {tuple(weights.shape)}")
        if not (math.isfinite(power) and power >= 1):
            raise ValueError(f"power must be a finite number >= 1, got {power}")
        hidden, dim = weights.shape
        like = {"dtype": weights.dtype, "device": weights.device}
        scale = torch.ones(hidden, **like) if scale is None else torch.as_tensor(scale, **like)
        if scale.shape != (hidden,) or not bool(torch.all(torch.isfinite(scale) & (scale > 0))):
            raise ValueError(f"scale must hold {hidden} finite values > 0")
        offset = torch.zeros(dim, **like) if offset is None else torch.as_tensor(offset, **like)
        if offset.shape != (dim,):
            raise ValueError(f"offset must have shape ({dim},), got {tuple(offset.shape)}")
        self.power = float(power)
        self.register_buffer("weights", weights.detach().clone())
        self.register_buffer("scale", scale.detach().clone())
        self.register_buffer("offset", offset.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        currents = (x.reshape(len(x), -1) - self.offset) @ self.weights.T
        return F.relu(currents).pow(self.power) / self.scale

    def extra_repr(self) -> str:
        hidden, dim = self.weights.shape
        return f"in_features={dim}, hidden_units={hidden}, power={self.power}"


@dataclass
class HebbianStats:
    """What :meth:`HebbianClassifier.fit` counted.

    Attributes
    ----------
    labels_used : training labels used (by the readout only; the Hebbian layer uses none).
    validation_labels_used : validation labels used to pick the readout's best epoch.
    hebbian_samples_seen : training images presented to the Hebbian layer, all epochs.
    readout_samples_seen : training samples presented to the readout, all epochs.
    hebbian_wall_time_s : time of the Hebbian stage in seconds (across resumes).
    feature_wall_time_s : time to compute the frozen layer's features of train and val.
    readout_wall_time_s : time of the readout's training (across resumes).
    readout : the readout's :class:`ann.training.TrainResult` (history, best epoch).
    """

    labels_used: int = 0
    validation_labels_used: int = 0
    hebbian_samples_seen: int = 0
    readout_samples_seen: int = 0
    hebbian_wall_time_s: float = 0.0
    feature_wall_time_s: float = 0.0
    readout_wall_time_s: float = 0.0
    readout: TrainResult = field(default_factory=TrainResult)

    @property
    def total_wall_time_s(self) -> float:
        """All three stages, in seconds."""
        return self.hebbian_wall_time_s + self.feature_wall_time_s + self.readout_wall_time_s


DEFAULT_READOUT = TrainConfig(
    optimizer="adam", lr=1e-2, epochs=60, batch_size=100, monitor="val_accuracy", seed=0
)


class HebbianClassifier:
    """Krotov-Hopfield hidden layer plus a linear readout trained with backprop.

    Parameters
    ----------
    hebbian : parameters of the unsupervised layer.
    readout : :class:`ann.training.TrainConfig` of the readout (cross-entropy; its
        ``monitor`` picks the best epoch on the validation split).
    power : exponent :math:`n` (>= 1) of the features :math:`\\max(W v, 0)^n`.
    seed : seed of the Hebbian layer (:func:`train_hebbian_layer`) and of the readout's
        initial weights; the readout's shuffling uses ``readout.seed``.
    center_inputs : subtract the mean training image (computed without labels) from every
        input, for the Hebbian layer and the features. Off by default, as in the reference
        MNIST code; the authors' CIFAR-10 script standardises its inputs instead. With raw
        Fashion-MNIST pixels (dense, all >= 0) the rule collapsed: after 300 epochs of 10k
        images one unit won every input and the other 399 of K = 400 converged to the same
        negative image (test accuracy 22 %); centred, 329 units won and the accuracy was 69 %.

    Attributes
    ----------
    model : after :meth:`fit`, ``nn.Sequential(HebbianFeatures, nn.Linear)`` mapping images to
        logits; usable with :func:`ann.evaluation.evaluate` and :func:`ann.evaluation.predict`.
    stats : the :class:`HebbianStats` of the last :meth:`fit`.
    """

    def __init__(
        self,
        hebbian: KrotovHopfieldParams,
        readout: TrainConfig = DEFAULT_READOUT,
        *,
        power: float = 4.5,
        seed: int = 0,
        center_inputs: bool = False,
    ) -> None:
        if not (math.isfinite(power) and power >= 1):
            raise ValueError(f"power must be a finite number >= 1, got {power}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.hebbian = hebbian
        self.readout = readout
        self.power = float(power)
        self.seed = seed
        self.center_inputs = bool(center_inputs)
        self.model: nn.Sequential | None = None
        self.stats: HebbianStats | None = None

    @property
    def weights(self) -> torch.Tensor:
        """The learned hidden weights ``(K, D)``."""
        return self._fitted()[0].weights

    def _fitted(self) -> nn.Sequential:
        if self.model is None:
            raise RuntimeError("call fit() first")
        return self.model

    def fit(
        self,
        train_split: Split,
        val_split: Split,
        *,
        num_classes: int | None = None,
        progress: bool = True,
        checkpoint_dir: Path | str | None = None,
    ) -> HebbianStats:
        """Learn the hidden layer on ``train_split``'s images, then the readout on its labels.

        Parameters
        ----------
        train_split : images for both stages, labels for the readout.
        val_split : picks the readout's best epoch (``readout.monitor``).
        num_classes : width of the readout; by default ``max(train labels) + 1``.
        progress : tqdm bars for both stages.
        checkpoint_dir : if given, ``hebbian.pt`` and ``readout.pt`` there checkpoint the two
            stages every epoch and are resumed from when present.

        Returns
        -------
        HebbianStats
            Also kept as :attr:`stats`.
        """
        if len(train_split) == 0 or len(val_split) == 0:
            raise ValueError("train and val splits must be non-empty")
        if num_classes is None:
            num_classes = int(train_split.labels.max()) + 1
        directory = None if checkpoint_dir is None else Path(checkpoint_dir)
        hebbian_path = None if directory is None else directory / "hebbian.pt"
        readout_path = None if directory is None else directory / "readout.pt"

        started = time.perf_counter()
        flat = train_split.images.reshape(len(train_split), -1)
        offset = flat.mean(dim=0) if self.center_inputs else torch.zeros_like(flat[0])
        weights = train_hebbian_layer(flat - offset, self.hebbian, self.seed, progress,
                                      hebbian_path)
        hebbian_time = time.perf_counter() - started
        batches = len(train_split) // self.hebbian.batch_size
        hebbian_samples = self.hebbian.epochs * batches * self.hebbian.batch_size
        if hebbian_path is not None:
            hebbian_samples, hebbian_time = _hebbian_checkpoint_totals(hebbian_path)

        started = time.perf_counter()
        with torch.no_grad():
            raw = _features(HebbianFeatures(weights, self.power, offset=offset), flat)
            rms = raw.square().mean(dim=0).sqrt()
            # A unit silent on every training image keeps scale 1 (its feature stays 0 there).
            scale = torch.where(rms > 0, rms, torch.ones_like(rms))
            features = HebbianFeatures(weights, self.power, scale, offset)
            train_h = raw / scale
            val_h = _features(features, val_split.images)
        feature_time = time.perf_counter() - started

        hidden = weights.shape[0]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            linear = nn.Linear(hidden, num_classes)
        head = nn.Sequential(nn.Flatten(), linear)
        result = train(
            head,
            Split(images=train_h.reshape(-1, hidden, 1, 1), labels=train_split.labels),
            Split(images=val_h.reshape(-1, hidden, 1, 1), labels=val_split.labels),
            self.readout,
            checkpoint_path=readout_path,
            progress=progress,
        )
        self.model = nn.Sequential(features, linear)
        self.stats = HebbianStats(
            labels_used=len(train_split),
            validation_labels_used=len(val_split),
            hebbian_samples_seen=hebbian_samples,
            readout_samples_seen=result.samples_seen,
            hebbian_wall_time_s=hebbian_time,
            feature_wall_time_s=feature_time,
            readout_wall_time_s=result.wall_time_s,
            readout=result,
        )
        return self.stats

    def evaluate(self, split: Split) -> Evaluation:
        """Accuracy, loss and confusion matrix on ``split`` (:func:`ann.evaluation.evaluate`)."""
        return evaluate(self._fitted(), split)

    def accuracy(self, split: Split) -> float:
        """Fraction of ``split`` classified correctly."""
        return self.evaluate(split).accuracy


def _features(features: HebbianFeatures, images: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    return torch.cat([features(images[i:i + chunk]) for i in range(0, len(images), chunk)])


def plot_receptive_fields(
    weights: torch.Tensor | np.ndarray,
    image_shape: Sequence[int],
    n: int = 25,
    *,
    columns: int | None = None,
    shared_scale: bool = False,
    title: str | None = None,
) -> Figure:
    """The first ``n`` hidden units' input weights drawn as images, on a grid.

    Works for any first layer stored as a ``(K, D)`` matrix (Hebbian, STDP, or a backprop
    ``nn.Linear.weight``), so they can be compared side by side.

    Parameters
    ----------
    weights : ``(K, D)`` array; row ``j`` is unit ``j``'s receptive field.
    image_shape : ``(H, W)`` or ``(C, H, W)`` with product ``D``; channels are drawn next to
        each other.
    n : number of units drawn, ``1 <= n``; capped at ``K``.
    columns : grid width; by default about ``sqrt(n)``.
    shared_scale : one colour scale for all units (shows relative magnitudes, as the reference
        code does) instead of one per unit (shows each unit's shape).
    title : optional figure title.

    Returns
    -------
    matplotlib.figure.Figure
        ``n`` image axes, each on a symmetric diverging colour map (``bwr``: red positive, blue
        negative, white zero).
    """
    matrix = np.asarray(
        weights.detach().cpu().numpy() if isinstance(weights, torch.Tensor) else weights,
        dtype=np.float64,
    )
    shape = tuple(int(s) for s in image_shape)
    if matrix.ndim != 2:
        raise ValueError(f"weights must be (K, D), got shape {matrix.shape}")
    if len(shape) not in (2, 3) or math.prod(shape) != matrix.shape[1]:
        raise ValueError(
            f"image_shape must be (H, W) or (C, H, W) with product {matrix.shape[1]}, got {shape}"
        )
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    n = min(n, matrix.shape[0])
    channels, height, width = shape if len(shape) == 3 else (1, *shape)
    cols = columns if columns is not None else math.ceil(math.sqrt(n))
    if cols < 1:
        raise ValueError(f"columns must be >= 1, got {cols}")
    rows = math.ceil(n / cols)
    tiles = (
        matrix[:n].reshape(n, channels, height, width).transpose(0, 2, 1, 3)
        .reshape(n, height, channels * width)
    )
    shared = float(np.abs(tiles).max()) or 1.0
    fig = Figure(figsize=(1.1 * cols * channels, 1.1 * rows + (0.4 if title else 0.0)),
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    image = None
    for j, ax in enumerate(axes):
        if j >= n:
            ax.remove()
            continue
        limit = shared if shared_scale else (float(np.abs(tiles[j]).max()) or 1.0)
        image = ax.imshow(tiles[j], cmap="bwr", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    if shared_scale and image is not None:
        fig.colorbar(image, ax=list(axes[:n]), shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig
