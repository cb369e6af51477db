r"""Experiment ``rstdp``: reward-modulated STDP teaches one neuron to respond to a target input
pattern and not to another (Izhikevich 2007; Florian 2007).

Two groups of ``n_per_group`` Poisson inputs drive one leaky integrate-and-fire neuron through
current synapses (exponential, 5 ms). A *pattern* raises one group to ``pattern_rate_hz`` for
``present_ms`` while everything else fires at ``background_hz``; patterns A (the target) and B
alternate, each presentation followed by ``gap_ms`` of background. At first the neuron answers
both patterns alike. During training every output spike delivers a reward,

.. math::

    R = +1 \text{ if pattern A is shown}, \qquad R = -1 \text{ if pattern B is shown},

(none during gaps; ``target=B`` swaps the roles), and the weights follow R-STDP
(:class:`~neuro.plasticity.RSTDPParams`, Izhikevich's :math:`A_- = 1.5 A_+`): each synapse's
eligibility :math:`e` collects the pair-STDP terms and decays with :math:`\tau_e`; a reward
changes the weight by :math:`\eta R e`. At the moment of a spike the pairings that caused it
leave a positive eligibility on the active group's synapses, so punished spikes weaken the
other group's synapses until the neuron no longer answers it, while rewarded spikes hold the
target group up against the net depression that :math:`A_- > A_+` gives uncorrelated
activity. (With :math:`A_- = A_+` rewarded firing feeds on itself and both groups' weights
run away.)

One simulation holds three phases (no reward means no weight change, so the test phases need
no special handling): ``n_test`` presentations before training, ``n_train`` with reward,
``n_test`` after. The report gives the response rates per pattern before and after, the
discrimination index

.. math::

    D = \frac{r_{target} - r_{other}}{r_{target} + r_{other}} \in [-1, 1]

(0: no preference; 1: responds to the target only), its course over training (the learning
curve), and the final weights of each group. Trials of a torch batch are independent seeds.

The reward is a callable of each step's output spikes (a closed loop), supported by the
torch engine and by Brian2's runtime targets (``engine=brian2``).

References: Izhikevich, Cereb. Cortex 17:2443 (2007); Florian, Neural Comput. 19:1468 (2007);
Frémaux & Gerstner, Front. Neural Circuits 9:85 (2016).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from matplotlib.figure import Figure

from experiments.registry import Experiment, ExperimentConfig, RunOutput
from experiments.run_record import RunContext
from neuro.connectivity import AllToAll, Uniform
from neuro.models.lif import LIF, LIFParams
from neuro.network import Network, PoissonInput, Population, Projection, SpikeMonitor
from neuro.plasticity import RSTDPParams
from neuro.records import SimulationResult
from neuro.simulation import simulate
from neuro.synapses import current_exp

__all__ = ["RSTDPConfig", "QUICK", "run", "schedule", "rstdp_network", "response_rates",
           "discrimination_index", "EXPERIMENT"]

PROJECTION = "rstdp"


class RSTDPConfig(ExperimentConfig):
    """Settings of ``rstdp`` (``--set key=value``)."""

    n_per_group: int = 50
    pattern_rate_hz: float = 40.0
    background_hz: float = 5.0
    present_ms: float = 200.0
    gap_ms: float = 100.0
    target: Literal["A", "B"] = "A"
    """The rewarded pattern (the other one is punished)."""
    n_test: int = 20
    """Presentations (half A, half B) before and after training."""
    n_train: int = 200
    dt_ms: float = 0.5
    w_init_pA: tuple[float, float] = (20.0, 50.0)
    """Initial weights, uniform in this range (pA): the neuron answers both patterns."""
    w_max_pA: float = 100.0
    eta_pA: float = 0.5
    """Weight change per unit of reward times eligibility (pA)."""
    tau_e_ms: float = 200.0
    A_plus: float = 1.0
    A_minus: float = 1.5
    tau_stdp_ms: float = 20.0
    engine: Literal["torch", "brian2"] = "torch"
    brian2_target: Literal["cython", "numpy"] = "cython"
    batch_size: int = 4
    """torch: independent seeds."""
    curve_block: int = 10
    """Training presentations per point of the learning curve (point 0: the pre-test)."""


QUICK = {"n_train": 60, "n_test": 10, "batch_size": 2}


def schedule(config: RSTDPConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step: the pattern shown (0 = A, 1 = B, -1 = gap) and the phase (0 pre-test, 1
    training, 2 post-test); per presentation: its first step. Patterns alternate A, B, ..."""
    present = int(round(config.present_ms / config.dt_ms))
    gap = int(round(config.gap_ms / config.dt_ms))
    counts = (config.n_test, config.n_train, config.n_test)
    pattern, phase, starts = [], [], []
    step = 0
    for ph, n in enumerate(counts):
        for k in range(n):
            starts.append(step)
            pattern += [k % 2] * present + [-1] * gap
            phase += [ph] * (present + gap)
            step += present + gap
    return np.array(pattern), np.array(phase), np.array(starts)


def rstdp_network(config: RSTDPConfig, pattern: np.ndarray, seed: int = 0) -> Network:
    """Inputs (two groups) -> one LIF neuron, plastic with R-STDP."""
    n = config.n_per_group
    rates = np.full((pattern.size, 2 * n), config.background_hz)
    for group in (0, 1):
        rates[pattern == group, group * n:(group + 1) * n] = config.pattern_rate_hz
    rule = RSTDPParams(A_plus=config.A_plus, A_minus=config.A_minus,
                       tau_plus=config.tau_stdp_ms, tau_minus=config.tau_stdp_ms,
                       tau_e=config.tau_e_ms, eta=config.eta_pA, w_min=0.0,
                       w_max=config.w_max_pA)
    params = LIFParams(C_m=250.0, tau_m=10.0, E_L=-70.0, V_th=-54.0, V_reset=-60.0, t_ref=2.0)
    return Network(
        populations=[Population("neuron", 1, LIF, params)],
        inputs=[PoissonInput("inputs", 2 * n, rates)],
        projections=[Projection("inputs", "neuron", current_exp("exc", 5.0), AllToAll(),
                                Uniform(*config.w_init_pA), plasticity=rule,
                                name=PROJECTION)],
        monitors=[SpikeMonitor("neuron")], dt_ms=config.dt_ms, seed=seed)


def make_reward(pattern: np.ndarray, phase: np.ndarray, target: int = 0):
    """The reward callable: +1 per output spike while the target is shown, -1 while the other
    pattern is, nothing otherwise (gaps, test phases); per trial, ``NaN`` = no delivery."""
    sign = np.where(pattern < 0, 0.0, np.where(pattern == target, 1.0, -1.0))
    sign[phase != 1] = 0.0

    def reward(step: int, spikes: dict):
        s = sign[step] if step < sign.size else 0.0
        if s == 0.0:
            return None
        fired = spikes["neuron"][:, 0]
        if isinstance(fired, torch.Tensor):
            if not bool(fired.any()):
                return None
            return torch.where(fired, s, float("nan"))
        return np.where(np.asarray(fired), s, np.nan) if np.any(fired) else None

    return reward


def response_rates(result: SimulationResult, pattern: np.ndarray, starts: np.ndarray,
                   config: RSTDPConfig) -> np.ndarray:
    """Output rate (Hz) during each presentation, shape ``(batch, presentations)``."""
    rec = result.spikes["neuron"]
    present = int(round(config.present_ms / config.dt_ms))
    steps = np.rint(rec.time_ms / config.dt_ms).astype(np.int64)
    counts = np.zeros((rec.batch_size, starts.size))
    which = np.searchsorted(starts, steps, side="right") - 1
    inside = (which >= 0) & (steps - starts[np.maximum(which, 0)] < present)
    np.add.at(counts, (rec.trial[inside], which[inside]), 1.0)
    return counts / (config.present_ms / 1000.0)


def discrimination_index(rate_target: np.ndarray, rate_other: np.ndarray) -> np.ndarray:
    """:math:`(r_{target} - r_{other}) / (r_{target} + r_{other})`, 0 where the neuron is
    silent to both."""
    total = rate_target + rate_other
    return np.where(total > 0, (rate_target - rate_other) / np.where(total > 0, total, 1.0), 0.0)


def _plot(curve_x, curve_t, curve_o, curve_d, weights, config: RSTDPConfig) -> Figure:
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    ax_rate, ax_d, ax_w = fig.subplots(1, 3)
    other = "B" if config.target == "A" else "A"
    ax_rate.plot(curve_x, curve_t.mean(0), "o-", color="tab:green",
                 label=f"{config.target} (rewarded)")
    ax_rate.plot(curve_x, curve_o.mean(0), "o-", color="tab:red", label=f"{other} (punished)")
    ax_rate.set_xlabel("training presentations")
    ax_rate.set_ylabel("response rate (Hz)")
    ax_rate.set_title("learning curve (mean over trials)")
    ax_rate.legend(frameon=False)
    for trial in curve_d:
        ax_d.plot(curve_x, trial, color="0.6", lw=0.8)
    ax_d.plot(curve_x, curve_d.mean(0), "k-", lw=2)
    ax_d.axhline(0.0, color="0.8", lw=0.8)
    ax_d.set_ylim(-1.05, 1.05)
    ax_d.set_xlabel("training presentations")
    ax_d.set_ylabel("discrimination index")
    ax_d.set_title("(r_target - r_other) / (r_target + r_other)")
    n = config.n_per_group
    ax_w.plot(np.arange(n), weights[0, :n], "o", color="tab:green", label="group A")
    ax_w.plot(np.arange(n, 2 * n), weights[0, n:], "o", color="tab:red", label="group B")
    ax_w.set_ylim(0, config.w_max_pA * 1.05)
    ax_w.set_xlabel("input")
    ax_w.set_ylabel("final weight (pA)")
    ax_w.set_title("weights after training (trial 0)")
    ax_w.legend(frameon=False)
    return fig


def run(config: RSTDPConfig, ctx: RunContext) -> RunOutput:
    """Pre-test, reward-modulated training, post-test in one simulation; report the rates."""
    pattern, phase, starts = schedule(config)
    network = rstdp_network(config, pattern, seed=ctx.seed)
    duration = pattern.size * config.dt_ms
    target = 0 if config.target == "A" else 1
    reward = make_reward(pattern, phase, target)
    if config.engine == "torch":
        result = simulate(network, duration, "torch", batch_size=config.batch_size,
                          seed=ctx.seed, device=ctx.device, reward=reward,
                          progress=ctx.progress)
    else:
        result = simulate(network, duration, "brian2", seed=ctx.seed,
                          brian2_target=config.brian2_target, reward=reward,
                          progress=ctx.progress)
    rates = response_rates(result, pattern, starts, config)
    shown = np.array([pattern[s] for s in starts])
    phase_of = np.array([phase[s] for s in starts])

    def mean_rate(ph: int, pat: int) -> np.ndarray:
        return rates[:, (phase_of == ph) & (shown == pat)].mean(1)

    other = 1 - target
    before_t, before_o = mean_rate(0, target), mean_rate(0, other)
    after_t, after_o = mean_rate(2, target), mean_rate(2, other)
    d_before = discrimination_index(before_t, before_o)
    d_after = discrimination_index(after_t, after_o)
    train = np.flatnonzero(phase_of == 1)
    block = max(2, config.curve_block // 2 * 2)
    edges = list(range(0, train.size - block + 1, block))
    curve_x = np.array([e + block for e in edges])
    curve_t = np.stack([rates[:, train[e:e + block]][:, shown[train[e:e + block]] == target]
                        .mean(1) for e in edges], 1)
    curve_o = np.stack([rates[:, train[e:e + block]][:, shown[train[e:e + block]] == other]
                        .mean(1) for e in edges], 1)
    # the pre-training test is the curve's point 0
    curve_x = np.concatenate([[0], curve_x])
    curve_t = np.concatenate([before_t[:, None], curve_t], 1)
    curve_o = np.concatenate([before_o[:, None], curve_o], 1)
    curve_d = discrimination_index(curve_t, curve_o)
    weights = result.weights[PROJECTION]
    n = config.n_per_group
    metrics = {
        "engine": result.engine,
        "trials": int(weights.shape[0]),
        "target": config.target,
        "rate_target_before_hz": float(before_t.mean()),
        "rate_other_before_hz": float(before_o.mean()),
        "rate_target_after_hz": float(after_t.mean()),
        "rate_other_after_hz": float(after_o.mean()),
        "discrimination_before": float(d_before.mean()),
        "discrimination_after": float(d_after.mean()),
        "discrimination_before_per_trial": d_before.tolist(),
        "discrimination_after_per_trial": d_after.tolist(),
        "learning_curve_presentations": curve_x.tolist(),
        "learning_curve_rate_target_hz": curve_t.mean(0).tolist(),
        "learning_curve_rate_other_hz": curve_o.mean(0).tolist(),
        "learning_curve_discrimination": curve_d.mean(0).tolist(),
        "mean_weight_A_pA": float(weights[:, :n].mean()),
        "mean_weight_B_pA": float(weights[:, n:].mean()),
        "simulated_s": duration / 1000.0,
        "simulation_wall_time_s": result.wall_time_s,
    }
    figure = ctx.save_figure(_plot(curve_x, curve_t, curve_o, curve_d, weights, config),
                             "rstdp")
    rows = "\n".join(
        f"| {label} training | {metrics[f'rate_target_{when}_hz']:.1f} | "
        f"{metrics[f'rate_other_{when}_hz']:.1f} | {metrics[f'discrimination_{when}']:.2f} |"
        for label, when in (("before", "before"), ("after", "after")))
    report = f"""## Result

{result.engine}, {metrics['trials']} independent trial(s); {config.n_train} training
presentations (A and B alternating, {config.present_ms:g} ms each), {config.n_test} test
presentations before and after.

Target (rewarded) pattern: {config.target}.

| | rate to target (Hz) | rate to other (Hz) | discrimination index |
| --- | --- | --- | --- |
{rows}

Mean final weight: group A {metrics['mean_weight_A_pA']:.1f} pA, group B
{metrics['mean_weight_B_pA']:.1f} pA (initially uniform in {config.w_init_pA} pA).

![R-STDP]({figure})
"""
    return RunOutput(metrics=metrics, report=report)


EXPERIMENT = Experiment(
    name="rstdp",
    description="Reward-modulated STDP (Izhikevich 2007): one neuron learns to answer a "
                "rewarded input pattern and not a punished one.",
    config_type=RSTDPConfig,
    run=run,
    quick=QUICK,
)
