r"""Experiment ``bcm-selectivity``: a BCM neuron becomes selective to one of several input
patterns (Bienenstock, Cooper & Munro 1982; Intrator & Cooper 1992).

A linear rate neuron :math:`y = w^\top x` sees, at every step, one of ``n_patterns`` input
patterns chosen at random and learns with the BCM rule and its sliding threshold
(:func:`~neuro.plasticity.bcm_step`, one step per sample, ``dt_ms = 1`` so that ``tau_theta`` is
in samples),

.. math::

    \Delta w = \eta\, x\, y\,(y - \theta), \qquad
    \tau_\theta \dot\theta = y^2 / y_0 - \theta .

The patterns are equally similar to each other (a shared baseline on every input plus a block of
inputs of their own), so no pattern is favoured by the geometry: which one wins is decided by the
initial weights and the order of presentation (symmetry breaking), and differs between trials.
``n_trials`` independent neurons (own initial weights, own presentation order, seeded from the
run's seed and the trial index) run as the batch dimension of one pass, with per-trial weights.

Expected fixed point (selective): response :math:`c` to one pattern and 0 to the others, so
:math:`\theta = \langle y^2 \rangle / y_0 = c^2 / (K y_0)`, and :math:`c = \theta` gives
:math:`c = K y_0` with :math:`K` the number of patterns. Selectivity index of a neuron:
:math:`1 - \overline{y}_{non-preferred} / y_{preferred}`, responses rectified at 0.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from experiments.registry import Experiment, ExperimentConfig, RunOutput
from experiments.run_record import RunContext
from neuro.plasticity import BCMParams, bcm_step

__all__ = ["BCMSelectivityConfig", "run", "EXPERIMENT", "block_patterns", "selectivity_index"]


class BCMSelectivityConfig(ExperimentConfig):
    """Settings of ``bcm-selectivity`` (``--set key=value``)."""

    n_patterns: int = 5
    inputs_per_pattern: int = 4
    """Each pattern has its own block of this many inputs (d = n_patterns * inputs_per_pattern)."""
    baseline: float = 0.2
    """Activity of every input in every pattern, relative to the pattern's own block (1)."""
    n_steps: int = 30_000
    n_trials: int = 10
    """Independent neurons (trial 0 is the one plotted in detail)."""
    eta: float = 0.003
    tau_theta: float = 100.0
    """Sliding-threshold time constant, in samples."""
    y0: float = 1.0
    init_max: float = 0.2
    """Initial weights are uniform in [0, init_max]."""
    record_every: int = 50


QUICK = {"n_steps": 15_000, "n_trials": 4}


def block_patterns(n_patterns: int, inputs_per_pattern: int, baseline: float) -> np.ndarray:
    """``(n_patterns, d)`` unit-norm patterns: ``baseline`` everywhere plus 1 on the pattern's own
    block of inputs; every pair has the same overlap."""
    d = n_patterns * inputs_per_pattern
    patterns = np.full((n_patterns, d), float(baseline))
    for k in range(n_patterns):
        patterns[k, k * inputs_per_pattern:(k + 1) * inputs_per_pattern] += 1.0
    return patterns / np.linalg.norm(patterns, axis=1, keepdims=True)


def selectivity_index(responses: np.ndarray) -> np.ndarray:
    """``1 - mean(non-preferred) / preferred`` of each row of ``(trials, patterns)`` responses,
    rectified at 0; 0 for a row with no positive response."""
    r = np.maximum(np.asarray(responses, dtype=np.float64), 0.0)
    preferred = r.max(1)
    others = (r.sum(1) - preferred) / (r.shape[1] - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(preferred > 0, 1.0 - others / preferred, 0.0)


def _simulate(config: BCMSelectivityConfig, patterns: np.ndarray, seed: int):
    n_patterns, d = patterns.shape
    rngs = [np.random.default_rng([seed, trial]) for trial in range(config.n_trials)]
    w0 = np.stack([rng.uniform(0.0, config.init_max, (d, 1)) for rng in rngs])
    order = np.stack([rng.integers(0, n_patterns, config.n_steps) for rng in rngs], axis=1)
    p = torch.from_numpy(patterns)
    w = torch.from_numpy(w0)  # (trials, d, 1): independent neurons
    theta = torch.zeros((config.n_trials, 1), dtype=torch.float64)
    shown = torch.from_numpy(order)
    params = BCMParams(eta=config.eta, tau_theta=config.tau_theta, y0=config.y0)
    steps, responses, thetas = [], [], []
    for t in range(config.n_steps):
        if t % config.record_every == 0:
            steps.append(t)
            responses.append(torch.einsum("kd,bdo->bk", p, w).numpy())
            thetas.append(theta[:, 0].numpy().copy())
        x = p[shown[t]]
        y = torch.einsum("bd,bdo->bo", x, w)
        delta_w, theta = bcm_step(x, y, theta, w, params, 1.0)
        w = w + delta_w
    steps.append(config.n_steps)
    responses.append(torch.einsum("kd,bdo->bk", p, w).numpy())
    thetas.append(theta[:, 0].numpy().copy())
    return (np.array(steps), np.stack(responses), np.stack(thetas), w[:, :, 0].numpy())


def _plot(config, patterns, steps, responses, thetas, weights, winners) -> Figure:
    n_patterns = patterns.shape[0]
    colors = [f"C{k}" for k in range(n_patterns)]
    fig = Figure(figsize=(11, 7), layout="constrained")
    (ax_r, ax_w), (ax_m, ax_c) = fig.subplots(2, 2)
    for k in range(n_patterns):
        ax_r.plot(steps, responses[:, 0, k], color=colors[k], lw=1, label=f"pattern {k}")
    ax_r.plot(steps, thetas[:, 0], color="k", ls="--", lw=0.8, label="threshold θ")
    ax_r.axhline(n_patterns * config.y0, color="0.5", ls=":", lw=0.8, label="K·y0")
    ax_r.set_xlabel("samples presented")
    ax_r.set_ylabel("response y = w·x (arbitrary rate units)")
    ax_r.set_title("trial 0: response to each pattern, and θ", fontsize=9)
    ax_r.legend(frameon=False, fontsize=7, ncols=2)

    block = config.inputs_per_pattern
    ax_w.bar(np.arange(weights.shape[1]), weights[0],
             color=[colors[i // block] for i in range(weights.shape[1])])
    ax_w.axhline(0, color="0.6", lw=0.5)
    ax_w.set_xlabel("input index (coloured by the pattern whose block it is)")
    ax_w.set_ylabel("final weight w_i (dimensionless)")
    ax_w.set_title("trial 0: final weights", fontsize=9)

    final = responses[-1]
    image = ax_m.imshow(final, aspect="auto", cmap="viridis")
    ax_m.set_xlabel("pattern")
    ax_m.set_ylabel("trial")
    ax_m.set_xticks(range(n_patterns))
    ax_m.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_m.set_title("final responses of every trial", fontsize=9)
    fig.colorbar(image, ax=ax_m, label="response y (arbitrary rate units)")

    counts = np.bincount(winners, minlength=n_patterns)
    ax_c.bar(range(n_patterns), counts, color=colors)
    ax_c.set_xlabel("preferred pattern")
    ax_c.set_ylabel("number of trials")
    ax_c.set_xticks(range(n_patterns))
    ax_c.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_c.set_title("which pattern won (symmetry breaking)", fontsize=9)
    for ax in (ax_r, ax_w, ax_c):
        ax.spines[["top", "right"]].set_visible(False)
    return fig


def run(config: BCMSelectivityConfig, ctx: RunContext) -> RunOutput:
    """Train ``n_trials`` BCM neurons on random presentations of the patterns; measure."""
    patterns = block_patterns(config.n_patterns, config.inputs_per_pattern, config.baseline)
    overlap = float(patterns[0] @ patterns[1])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of tiny steps: OpenMP regions stall on a busy CPU
    try:
        steps, responses, thetas, weights = _simulate(config, patterns, ctx.seed)
    finally:
        torch.set_num_threads(threads)
    final = responses[-1]
    winners = final.argmax(1)
    selectivity = selectivity_index(final)
    preferred = final.max(1)
    tail = steps >= 0.9 * config.n_steps
    theta_tail = thetas[tail].mean(0)
    expected = config.n_patterns * config.y0
    png = ctx.save_figure(_plot(config, patterns, steps, responses, thetas, weights, winners),
                          "bcm_selectivity")

    metrics = {
        "pattern_overlap_cosine": overlap,
        "winners": winners,
        "winner_counts": np.bincount(winners, minlength=config.n_patterns),
        "selectivity_index": selectivity,
        "selectivity_index_trial0": float(selectivity[0]),
        "selectivity_index_mean": float(selectivity.mean()),
        "preferred_response": preferred,
        "final_responses": final,
        "theta_mean_last_10_percent": theta_tail,
        "expected_preferred_response": expected,
        "final_weights_trial0": weights[0],
    }
    rows = "\n".join(
        f"| {i} | {winners[i]} | {preferred[i]:.2f} | {selectivity[i]:.3f} | "
        f"{theta_tail[i]:.2f} | " + ", ".join(f"{v:+.2f}" for v in final[i]) + " |"
        for i in range(config.n_trials))
    report = f"""## Setting

A linear neuron with {config.n_patterns * config.inputs_per_pattern} inputs; {config.n_patterns}
patterns (each its own block of {config.inputs_per_pattern} inputs plus a baseline of
{config.baseline:g}; every pair of patterns has cosine {overlap:.2f}), one chosen at random per
sample, {config.n_steps:,} samples. BCM: η = {config.eta:g}, τ_θ = {config.tau_theta:g} samples,
y0 = {config.y0:g}. {config.n_trials} independent trials (own initial weights and presentation
order).

![BCM selectivity]({png})

## Result beside the BCM fixed point

Reference (Bienenstock, Cooper & Munro 1982; Intrator & Cooper 1992): the stable fixed points are
selective, response K·y0 = {expected:g} to one pattern and 0 to the others, with θ = ⟨y²⟩/y0 =
K·y0; which pattern is chosen depends on the initial condition.

| quantity | value | reference |
| --- | --- | --- |
| selectivity index, trial 0 | **{selectivity[0]:.3f}** | 1 (fully selective) |
| selectivity index, mean over {config.n_trials} trials | {selectivity.mean():.3f} \
(min {selectivity.min():.3f}) | 1 |
| preferred response, mean | {preferred.mean():.2f} | K·y0 = {expected:g} |
| θ over the last 10% of samples, mean | {theta_tail.mean():.2f} | K·y0 = {expected:g} |
| winning pattern per trial | {', '.join(str(int(w)) for w in winners)} | differs by trial |

| trial | preferred pattern | preferred response | selectivity | θ (last 10%) | final responses |
| --- | --- | --- | --- | --- | --- |
{rows}
"""
    return RunOutput(metrics=metrics, report=report)


EXPERIMENT = Experiment(
    name="bcm-selectivity",
    description="A BCM neuron with a sliding threshold becomes selective to one of several "
    "equally similar input patterns; the winner differs by seed.",
    config_type=BCMSelectivityConfig,
    run=run,
    quick=QUICK,
)
