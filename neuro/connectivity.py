"""Connectivity rules and weight/delay initialisers.

A rule is a frozen description; :meth:`build` turns it into explicit index arrays
``(pre, post)`` with a :class:`numpy.random.Generator`, once, so that every engine simulates the
identical connectome. Initialisers (:class:`Constant`, :class:`Uniform`, :class:`NormalClipped`,
:class:`LogNormal`) draw one value per synapse; they serve both for weights (pA or nS, see
:mod:`neuro.synapses`) and for delays (ms).

Index arrays are ``int64``, sorted by ``pre`` then ``post``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Connectivity",
    "AllToAll",
    "OneToOne",
    "FixedProbability",
    "Explicit",
    "Initializer",
    "Constant",
    "Uniform",
    "NormalClipped",
    "LogNormal",
]


class Connectivity:
    """Base class of connectivity rules: ``build(n_pre, n_post, rng, same_population)``."""

    def build(
        self, n_pre: int, n_post: int, rng: np.random.Generator, same_population: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError


def _drop_autapses(pre: np.ndarray, post: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = pre != post
    return pre[keep], post[keep]


@dataclass(frozen=True)
class AllToAll(Connectivity):
    """Every presynaptic neuron connects to every postsynaptic neuron.

    ``allow_autapses=False`` removes ``i -> i`` when source and target are the same population.
    """

    allow_autapses: bool = True

    def build(self, n_pre, n_post, rng, same_population=False):
        pre = np.repeat(np.arange(n_pre, dtype=np.int64), n_post)
        post = np.tile(np.arange(n_post, dtype=np.int64), n_pre)
        if same_population and not self.allow_autapses:
            pre, post = _drop_autapses(pre, post)
        return pre, post


@dataclass(frozen=True)
class OneToOne(Connectivity):
    """Neuron ``i`` connects to neuron ``i``; source and target must have the same size."""

    def build(self, n_pre, n_post, rng, same_population=False):
        if n_pre != n_post:
            raise ValueError(
                f"OneToOne needs equal sizes, got {n_pre} presynaptic and {n_post} "
                "postsynaptic neurons; use Explicit(pre, post) for another pairing."
            )
        idx = np.arange(n_pre, dtype=np.int64)
        return idx, idx.copy()


@dataclass(frozen=True)
class FixedProbability(Connectivity):
    """Each ordered pair ``(i, j)`` is connected independently with probability ``p``.

    Drawn by geometric gaps over the linear pair index ``i * n_post + j``, which is exact
    Bernoulli sampling in O(number of synapses) time and memory (so ``N = 64,000`` with
    ``p = 0.02`` is fine). Brian2's ``connect(p=...)`` also keeps autapses by default.
    """

    p: float
    allow_autapses: bool = True

    def __post_init__(self) -> None:
        if not (0.0 <= self.p <= 1.0):
            raise ValueError(f"FixedProbability: p must lie in [0, 1], got {self.p!r}.")

    def build(self, n_pre, n_post, rng, same_population=False):
        total = n_pre * n_post
        if self.p == 0.0 or total == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy()
        if self.p == 1.0:
            return AllToAll(self.allow_autapses).build(n_pre, n_post, rng, same_population)
        chunks = []
        position = -1
        expected = total * self.p
        chunk = int(expected + 6 * math.sqrt(expected) + 16)
        while True:
            pos = rng.geometric(self.p, size=chunk)
            np.cumsum(pos, out=pos)  # in place: few large temporaries at N = 64,000
            pos += position
            if pos[-1] >= total:
                chunks.append(pos[:np.searchsorted(pos, total)])
                break
            chunks.append(pos)
            position = int(pos[-1])
            chunk = max(chunk // 4, 1024)
        lin = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        pre, post = np.divmod(lin, n_post)
        del lin, chunks
        if same_population and not self.allow_autapses:
            pre, post = _drop_autapses(pre, post)
        return pre, post


@dataclass(frozen=True, eq=False)
class Explicit(Connectivity):
    """Explicit synapse lists: synapse ``k`` goes from ``pre[k]`` to ``post[k]``."""

    pre: np.ndarray
    post: np.ndarray

    def build(self, n_pre, n_post, rng, same_population=False):
        pre = np.asarray(self.pre)
        post = np.asarray(self.post)
        if pre.ndim != 1 or post.shape != pre.shape:
            raise ValueError(
                f"Explicit connectivity: pre and post must be 1-D of equal length, got shapes "
                f"{pre.shape} and {post.shape}."
            )
        if pre.size and not (np.issubdtype(pre.dtype, np.integer)
                             and np.issubdtype(post.dtype, np.integer)):
            raise ValueError("Explicit connectivity: pre and post must be integer arrays.")
        if pre.size and (pre.min() < 0 or pre.max() >= n_pre):
            raise ValueError(
                f"Explicit connectivity: pre indices must lie in [0, {n_pre}), got range "
                f"[{pre.min()}, {pre.max()}]."
            )
        if post.size and (post.min() < 0 or post.max() >= n_post):
            raise ValueError(
                f"Explicit connectivity: post indices must lie in [0, {n_post}), got range "
                f"[{post.min()}, {post.max()}]."
            )
        return pre.astype(np.int64), post.astype(np.int64)


class Initializer:
    """Base class of per-synapse value initialisers: ``sample(n, rng) -> (n,) float64``."""

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Initializer):
    """Every synapse gets ``value``."""

    value: float

    def sample(self, n, rng):
        return np.full(n, float(self.value))


@dataclass(frozen=True)
class Uniform(Initializer):
    """Uniform on ``[low, high)``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.high >= self.low:
            raise ValueError(f"Uniform: need high >= low, got [{self.low}, {self.high}).")

    def sample(self, n, rng):
        return rng.uniform(self.low, self.high, size=n)


@dataclass(frozen=True)
class NormalClipped(Initializer):
    """Normal ``N(mean, std^2)`` clipped into ``[low, high]`` (default: non-negative)."""

    mean: float
    std: float
    low: float = 0.0
    high: float = math.inf

    def __post_init__(self) -> None:
        if self.std < 0 or self.high < self.low:
            raise ValueError(
                f"NormalClipped: need std >= 0 and high >= low, got std={self.std}, "
                f"[{self.low}, {self.high}]."
            )

    def sample(self, n, rng):
        return np.clip(rng.normal(self.mean, self.std, size=n), self.low, self.high)


@dataclass(frozen=True)
class LogNormal(Initializer):
    r"""Log-normal with the given *mean* and *std* of the values themselves (not of the log).

    The underlying normal has :math:`\sigma^2 = \ln(1 + s^2/m^2)` and
    :math:`\mu = \ln m - \sigma^2/2`.
    """

    mean: float
    std: float

    def __post_init__(self) -> None:
        if not (self.mean > 0 and self.std >= 0):
            raise ValueError(
                f"LogNormal: need mean > 0 and std >= 0, got mean={self.mean}, std={self.std}."
            )

    def sample(self, n, rng):
        sigma2 = math.log1p((self.std / self.mean) ** 2)
        mu = math.log(self.mean) - sigma2 / 2
        return rng.lognormal(mu, math.sqrt(sigma2), size=n)
