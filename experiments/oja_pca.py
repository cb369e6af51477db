r"""Experiment ``oja-pca``: Hebbian PCA (Oja, Sanger) against a linear autoencoder trained by
backprop, on the same correlated Gaussian samples.

Data: ``n_samples`` draws of :math:`x \sim \mathcal N(0, C)` in :math:`d` dimensions, with
:math:`C = U \operatorname{diag}(\lambda) U^\top`, the eigenvalues :math:`\lambda` from the
configuration (a clear gap after the first and after the k-th) and :math:`U` a random rotation
(seeded). The reference is the SVD of the same samples (right singular vectors).

Methods, each seeing the samples in the same order:

* **Oja** (1982), one linear neuron :math:`y = w^\top x`, one sample per step,
  :math:`\Delta w = \eta\,y(x - y w)` (:func:`~neuro.plasticity.oja_step`): converges to the first
  principal component with :math:`\|w\| \to 1`;
* **Sanger** (1989), k outputs :math:`y = W^\top x`,
  :math:`\Delta W = \eta(x y^\top - W \operatorname{triu}(y y^\top))`
  (:func:`~neuro.plasticity.sanger_step`): the first k components, in order;
* **linear autoencoder**, k hidden units, no biases, :math:`\hat x = D E x`, mean squared error,
  Adam, mini-batches, ``ae_epochs`` passes over the samples, its learning rate annealed by the
  same factor as the Hebbian rules'. Its optimum is any
  :math:`D E` that projects onto the top-k subspace (Baldi & Hornik 1989): it finds the subspace,
  not the individual components (the hidden units are an arbitrary mixture of them).

Both Hebbian rules use :math:`\eta_t = \eta_0 \gamma^t` (:func:`~neuro.plasticity.lr_exponential`)
so that the noise of the single-sample updates anneals. Compared: principal angles between each
method's subspace and the SVD's (``scipy.linalg.subspace_angles``), the projection-matrix
distance :math:`\|P_A - P_B\|_F / \sqrt{2k}` (0 same subspace, 1 orthogonal), the samples
presented until the largest principal angle first reaches, and until it settles (stays) below,
``threshold_deg`` (by default :math:`\arccos 0.99 = 8.1°`, the angle of cosine 0.99), and the
training wall time (evaluation excluded). All three run single-threaded
(``torch.set_num_threads(1)`` for their duration): the tensors are tiny, and the wall times then
compare like with like.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy.linalg import subspace_angles
from scipy.stats import special_ortho_group

from experiments.registry import Experiment, ExperimentConfig, RunOutput
from experiments.run_record import RunContext
from neuro.plasticity import OjaParams, SangerParams, lr_exponential, oja_step, sanger_step

__all__ = ["OjaPCAConfig", "run", "EXPERIMENT", "projection_distance", "samples_to_reach",
           "samples_to_settle"]


class OjaPCAConfig(ExperimentConfig):
    """Settings of ``oja-pca`` (``--set key=value``)."""

    eigenvalues: tuple[float, ...] = (6.0, 4.0, 2.5, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1)
    """Covariance spectrum; its length is the input dimension d."""
    n_samples: int = 10_000
    k: int = 3
    """Components for Sanger's rule and hidden units of the autoencoder."""
    eta0: float = 0.005
    """Initial learning rate of Oja's and Sanger's rules (per sample)."""
    eta_final_fraction: float = 0.05
    """The Hebbian learning rate decays exponentially to this fraction of ``eta0``."""
    init_scale: float = 0.1
    """Standard deviation of the initial Hebbian and autoencoder weights."""
    ae_lr: float = 0.03
    ae_batch_size: int = 32
    ae_epochs: int = 1
    """Passes over the samples (1: every method sees each sample once)."""
    threshold_deg: float = math.degrees(math.acos(0.99))
    eval_every: int = 50
    """Samples between two evaluations of the learning curves."""


QUICK = {"n_samples": 5000}


# --------------------------------------------------------------------------- measures


def _orthonormal(columns: np.ndarray) -> np.ndarray:
    q, _ = np.linalg.qr(columns)
    return q


def projection_distance(a: np.ndarray, b: np.ndarray) -> float:
    r""":math:`\|P_A - P_B\|_F / \sqrt{2k}` between the column spaces of ``a`` and ``b``
    (both ``(d, k)``): 0 for the same subspace, 1 for orthogonal ones."""
    qa, qb = _orthonormal(a), _orthonormal(b)
    diff = qa @ qa.T - qb @ qb.T
    return float(np.linalg.norm(diff) / math.sqrt(2 * a.shape[1]))


def _max_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(subspace_angles(a, b).max()))


def _abs_cosines(w: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``|cos|`` between column ``i`` of ``w`` and column ``i`` of ``u``."""
    return np.abs(np.sum(w * u, 0)) / (np.linalg.norm(w, axis=0) * np.linalg.norm(u, axis=0))


def samples_to_reach(samples: np.ndarray, error: np.ndarray, threshold: float) -> int | None:
    """First sample count with ``error`` at or below ``threshold``; ``None`` if never."""
    below = np.nonzero(error <= threshold)[0]
    return int(samples[below[0]]) if len(below) else None


def samples_to_settle(samples: np.ndarray, error: np.ndarray, threshold: float) -> int | None:
    """First sample count after which ``error`` stays at or below ``threshold``; ``None`` if it
    is above at the end."""
    above = np.nonzero(error > threshold)[0]
    if len(above) == 0:
        return int(samples[0])
    if above[-1] == len(error) - 1:
        return None
    return int(samples[above[-1] + 1])


def _sample_counts(curves: dict, threshold: float) -> dict:
    samples, error = np.array(curves["samples"]), np.array(curves["max_angle_deg"])
    return {"samples_to_reach": samples_to_reach(samples, error, threshold),
            "samples_to_settle": samples_to_settle(samples, error, threshold)}


# --------------------------------------------------------------------------- learners


def _hebbian(rule: str, x: torch.Tensor, w: torch.Tensor, config: OjaPCAConfig, u: np.ndarray):
    """Run Oja (``w`` is (d, 1)) or Sanger (``w`` is (d, k)) over the samples, one per step.
    Returns the final weights, the curves and the training wall time."""
    step, params = ((oja_step, OjaParams(eta=config.eta0)) if rule == "oja"
                    else (sanger_step, SangerParams(eta=config.eta0)))
    gamma = config.eta_final_fraction ** (1.0 / len(x))
    curves: dict[str, list] = {"samples": [], "max_angle_deg": [], "abs_cos": [], "norm": []}
    wall = 0.0

    def record(n: int) -> None:
        wn = w.numpy().astype(np.float64)
        curves["samples"].append(n)
        curves["max_angle_deg"].append(_max_angle_deg(wn, u[:, : wn.shape[1]]))
        curves["abs_cos"].append(_abs_cosines(wn, u[:, : wn.shape[1]]).tolist())
        curves["norm"].append(np.linalg.norm(wn, axis=0).tolist())

    record(0)
    for t in range(len(x)):
        start = time.perf_counter()
        xt = x[t : t + 1]
        w = w + step(xt, xt @ w, w, params, lr_scale=lr_exponential(t, 1.0, gamma))
        wall += time.perf_counter() - start
        if (t + 1) % config.eval_every == 0 or t + 1 == len(x):
            record(t + 1)
    return w.numpy().astype(np.float64), curves, wall


def _autoencoder(x: torch.Tensor, config: OjaPCAConfig, u: np.ndarray, seed: int):
    """Linear autoencoder (no biases), MSE, Adam. Subspace: the decoder's column space."""
    d, k = x.shape[1], config.k
    generator = torch.Generator().manual_seed(seed)
    encoder = torch.nn.Linear(d, k, bias=False)
    decoder = torch.nn.Linear(k, d, bias=False)
    with torch.no_grad():
        encoder.weight.normal_(0.0, config.init_scale, generator=generator)
        decoder.weight.normal_(0.0, config.init_scale, generator=generator)
    model = torch.nn.Sequential(encoder, decoder)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.ae_lr)
    n_steps = config.ae_epochs * math.ceil(len(x) / config.ae_batch_size)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(
        optimizer, gamma=config.eta_final_fraction ** (1.0 / n_steps))
    curves: dict[str, list] = {"samples": [], "max_angle_deg": [], "loss": []}
    wall, seen, next_eval = 0.0, 0, 0

    def record(loss: float) -> None:
        dec = decoder.weight.detach().numpy().astype(np.float64)
        curves["samples"].append(seen)
        curves["max_angle_deg"].append(_max_angle_deg(dec, u[:, :k]))
        curves["loss"].append(loss)

    with torch.no_grad():
        record(float(torch.mean((model(x) - x) ** 2)))
    for _ in range(config.ae_epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), config.ae_batch_size):
            start = time.perf_counter()
            batch = x[order[i : i + config.ae_batch_size]]
            loss = torch.mean((model(batch) - batch) ** 2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            wall += time.perf_counter() - start
            seen += len(batch)
            if seen >= next_eval + config.eval_every:
                next_eval = seen
                record(float(loss.detach()))
    record(float(loss.detach()))
    return decoder.weight.detach().numpy().astype(np.float64), curves, wall


# --------------------------------------------------------------------------- plots


def _plot_oja(oja) -> Figure:
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax_c, ax_n = fig.subplots(1, 2)
    cos = [c[0] for c in oja["abs_cos"]]
    ax_c.plot(oja["samples"], cos, color="tab:blue")
    ax_c.axhline(0.99, color="0.5", ls="--", lw=0.8, label="0.99")
    ax_c.set_ylabel("|cos(w, first SVD component)|")
    ax_c.set_ylim(0, 1.02)
    ax_c.legend(frameon=False)
    ax_n.plot(oja["samples"], [n[0] for n in oja["norm"]], color="tab:green")
    ax_n.axhline(1.0, color="0.5", ls="--", lw=0.8)
    ax_n.set_ylabel("weight norm ‖w‖")
    for ax in (ax_c, ax_n):
        ax.set_xlabel("samples presented")
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle("Oja's rule on correlated Gaussian inputs", fontsize=10)
    return fig


def _plot_subspace(oja, sanger, ae, threshold_deg) -> Figure:
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_a, ax_s = fig.subplots(1, 2)
    ax_a.semilogy(oja["samples"], oja["max_angle_deg"], label="Oja (first component)")
    ax_a.semilogy(sanger["samples"], sanger["max_angle_deg"], label="Sanger (top-k subspace)")
    ax_a.semilogy(ae["samples"], ae["max_angle_deg"], label="autoencoder, Adam (top-k subspace)")
    ax_a.axhline(threshold_deg, color="0.5", ls="--", lw=0.8, label=f"{threshold_deg:.1f}°")
    ax_a.set_xlabel("samples presented")
    ax_a.set_ylabel("largest principal angle to SVD (degrees)")
    ax_a.legend(frameon=False, fontsize=8)
    cos = np.array(sanger["abs_cos"])
    for i in range(cos.shape[1]):
        ax_s.plot(sanger["samples"], cos[:, i], label=f"component {i + 1}")
    ax_s.axhline(0.99, color="0.5", ls="--", lw=0.8)
    ax_s.set_xlabel("samples presented")
    ax_s.set_ylabel("|cos(Sanger column i, SVD component i)|")
    ax_s.set_ylim(0, 1.02)
    ax_s.legend(frameon=False, fontsize=8)
    for ax in (ax_a, ax_s):
        ax.spines[["top", "right"]].set_visible(False)
    return fig


# --------------------------------------------------------------------------- run


def _passes(n: int) -> str:
    return "1 pass" if n == 1 else f"{n} passes"


def run(config: OjaPCAConfig, ctx: RunContext) -> RunOutput:
    """Sample the data, run Oja, Sanger and the autoencoder, compare with the SVD."""
    eigenvalues = np.asarray(config.eigenvalues, dtype=np.float64)
    d, k = len(eigenvalues), config.k
    if not 1 <= k < d:
        raise ValueError(f"k must be in [1, d - 1] = [1, {d - 1}], got {k}")
    rng = np.random.default_rng(ctx.seed)
    rotation = special_ortho_group.rvs(d, random_state=rng)
    samples = rng.standard_normal((config.n_samples, d)) * np.sqrt(eigenvalues) @ rotation.T
    svd_wall = math.inf
    for _ in range(5):  # best of 5: one SVD is short enough for a busy CPU to distort it
        start = time.perf_counter()
        _, singular, vt = np.linalg.svd(samples, full_matrices=False)
        svd_wall = min(svd_wall, time.perf_counter() - start)
    u = vt.T  # (d, d), columns: principal directions of the samples

    x = torch.from_numpy(samples).to(torch.float32)
    w_oja0 = torch.from_numpy(rng.normal(0.0, config.init_scale, (d, 1))).to(torch.float32)
    w_sanger0 = torch.from_numpy(rng.normal(0.0, config.init_scale, (d, k))).to(torch.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like with like; tiny ops in OpenMP regions stall on a busy CPU
    try:
        w_oja, oja, oja_wall = _hebbian("oja", x, w_oja0, config, u)
        w_sanger, sanger, sanger_wall = _hebbian("sanger", x, w_sanger0, config, u)
        decoder, ae, ae_wall = _autoencoder(x, config, u, ctx.seed)
    finally:
        torch.set_num_threads(threads)

    threshold = config.threshold_deg
    oja_cos = float(_abs_cosines(w_oja, u[:, :1])[0])
    sanger_cos = _abs_cosines(w_sanger, u[:, :k])
    ae_dirs = decoder / np.linalg.norm(decoder, axis=0)
    ae_best_cos = np.abs(u[:, :k].T @ ae_dirs).max(1)  # best-matching hidden unit per component
    results = {
        "oja": {
            "cosine_first_component": oja_cos,
            "cosine_true_first_eigenvector": float(_abs_cosines(w_oja, rotation[:, :1])[0]),
            "weight_norm": float(np.linalg.norm(w_oja)),
            **_sample_counts(oja, threshold),
            "samples_presented": config.n_samples,
            "wall_time_s": oja_wall,
            "curves": oja,
        },
        "sanger": {
            "cosines": sanger_cos,
            "weight_norms": np.linalg.norm(w_sanger, axis=0),
            "principal_angles_deg": np.degrees(subspace_angles(w_sanger, u[:, :k])),
            "projection_distance": projection_distance(w_sanger, u[:, :k]),
            **_sample_counts(sanger, threshold),
            "samples_presented": config.n_samples,
            "wall_time_s": sanger_wall,
            "curves": sanger,
        },
        "autoencoder": {
            "principal_angles_deg": np.degrees(subspace_angles(decoder, u[:, :k])),
            "projection_distance": projection_distance(decoder, u[:, :k]),
            "best_cosine_per_component": ae_best_cos,
            "hidden_units_gram": ae_dirs.T @ ae_dirs,
            **_sample_counts(ae, threshold),
            "samples_presented": config.n_samples * config.ae_epochs,
            "wall_time_s": ae_wall,
            "curves": ae,
        },
        "svd": {"singular_values": singular, "wall_time_s": svd_wall},
    }
    oja_png = ctx.save_figure(_plot_oja(oja), "oja_convergence")
    subspace_png = ctx.save_figure(_plot_subspace(oja, sanger, ae, threshold), "subspace_error")

    def samples_text(entry) -> str:
        reach, settle = entry["samples_to_reach"], entry["samples_to_settle"]
        if reach is None:
            return "not reached"
        return f"{reach:,} / " + ("not settled" if settle is None else f"{settle:,}")

    sanger_cells = ", ".join(f"{c:.4f}" for c in sanger_cos)
    ae_cells = ", ".join(f"{c:.3f}" for c in ae_best_cos)
    sanger_angles = ", ".join(f"{a:.2f}" for a in results["sanger"]["principal_angles_deg"])
    ae_angles = ", ".join(f"{a:.2f}" for a in results["autoencoder"]["principal_angles_deg"])
    r_oja, r_sanger, r_ae = results["oja"], results["sanger"], results["autoencoder"]
    report = f"""## Data

{config.n_samples:,} samples of a {d}-dimensional Gaussian, covariance eigenvalues
{', '.join(f'{v:g}' for v in eigenvalues)} in a random basis (seed {ctx.seed}). Reference: the SVD
of the same samples ({1e3 * svd_wall:.2f} ms). "Samples to reach / settle": samples presented
until the largest principal angle to the SVD's subspace first falls below {threshold:.2f}° (cosine
0.99) / until it stays below it for the rest of training (the single-sample learners fluctuate
around their solution, so "reach" can be luck).

## Oja's rule (one linear neuron, one sample per step)

| quantity | value | reference |
| --- | --- | --- |
| \\|cos\\| with the first SVD component | **{oja_cos:.4f}** | ≥ 0.99 |
| weight norm | {r_oja['weight_norm']:.4f} | → 1 (Oja 1982) |
| samples to reach / settle below {threshold:.1f}° | {samples_text(r_oja)} | |
| training wall time | {r_oja['wall_time_s']:.2f} s | |

![Oja convergence]({oja_png})

## Top-{k} subspace: Sanger's rule against a linear autoencoder trained by backprop

| quantity | Sanger (Hebbian, one sample per step) | \
autoencoder (Adam, batch {config.ae_batch_size}, lr {config.ae_lr:g}) |
| --- | --- | --- |
| principal angles to SVD subspace (°) | {sanger_angles} | {ae_angles} |
| projection distance ‖P − P_SVD‖_F/√(2k) | {r_sanger['projection_distance']:.4f} | \
{r_ae['projection_distance']:.4f} |
| \\|cos\\| with SVD components 1..{k} | {sanger_cells} (column i vs component i) | {ae_cells} \
(best hidden unit per component) |
| samples presented | {r_sanger['samples_presented']:,} ({_passes(1)}) | \
{r_ae['samples_presented']:,} ({_passes(config.ae_epochs)}, \
{math.ceil(config.n_samples / config.ae_batch_size) * config.ae_epochs:,} updates) |
| samples to reach / settle below {threshold:.1f}° | {samples_text(r_sanger)} | \
{samples_text(r_ae)} |
| training wall time | {r_sanger['wall_time_s']:.2f} s | {r_ae['wall_time_s']:.2f} s |

![subspace error]({subspace_png})

## What each method achieves, and at what cost

- **Oja** finds the first principal component with a unit-norm weight vector, using only the
  local quantities of one synapse (x_i, y, w_i) and one sample at a time.
- **Sanger** finds the first {k} components *individually and in order* (column i ≈ component i);
  the cost is a non-local term (output j is decorrelated from outputs l < j).
- **The linear autoencoder** trained by backprop finds the same subspace but not the components:
  its hidden units are a mixture of them (best \\|cos\\| per component {ae_cells}), and its loss
  has no reason to prefer one basis of the subspace over another (Baldi & Hornik 1989).
- **Cost**: samples and wall time are in the tables. The wall times here are dominated by the
  Python overhead of one update per sample (Hebbian) or per mini-batch (autoencoder), not by
  arithmetic: per sample Oja does O(d), Sanger O(dk²), the autoencoder O(dk) forward and
  backward plus the Adam update. The exact answer, an SVD of all samples, took
  {1e3 * svd_wall:.2f} ms: on a stored data set neither learner competes with linear algebra;
  what they offer is online learning with constant memory.
"""
    return RunOutput(metrics=results, report=report)


EXPERIMENT = Experiment(
    name="oja-pca",
    description="Oja's and Sanger's Hebbian PCA against a linear autoencoder trained by "
    "backprop: subspace found, samples and wall time.",
    config_type=OjaPCAConfig,
    run=run,
    quick=QUICK,
)
