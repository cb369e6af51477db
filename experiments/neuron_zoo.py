"""Experiment ``neuron-zoo``: every neuron model, on both engines, side by side.

* f–I curves (steady-state firing rate against a constant input current) of LIF, AdEx,
  Izhikevich (regular spiking), Hodgkin–Huxley 1952 and Traub–Miles, each simulated on the
  torch engine and on Brian2; LIF is also compared with its closed form
  :math:`f = 1 / (t_{ref} + \\tau_m \\ln\\frac{RI}{RI - (V_{th} - E_L)})`.
* the Izhikevich (2003) firing patterns under a current step;
* a Hodgkin–Huxley action potential with its gating variables m, h, n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from matplotlib.figure import Figure

from experiments.registry import Experiment, ExperimentConfig, RunOutput
from experiments.run_record import RunContext
from neuro.models import (
    ADEX,
    HODGKIN_HUXLEY,
    IZHIKEVICH,
    IZHIKEVICH_PRESETS,
    LIF,
    REGULAR_SPIKING,
    TRAUB_MILES,
    AdExParams,
    HHParams,
    LIFParams,
    TraubMilesParams,
)
from neuro.models.base import NeuronModel
from neuro.network import CurrentInput, Network, Population, SpikeMonitor, StateMonitor
from neuro.plots import membrane_traces
from neuro.simulation import simulate

__all__ = ["NeuronZooConfig", "run", "EXPERIMENT", "lif_rate_hz", "steady_rates_hz"]


class NeuronZooConfig(ExperimentConfig):
    """Settings of ``neuron-zoo`` (``--set key=value``)."""

    duration_ms: float = 1000.0
    """Simulated time of each f–I point (the rate is measured over its second half)."""
    n_currents: int = 12
    engines: tuple[Literal["torch", "brian2"], ...] = ("torch", "brian2")
    brian2_target: Literal["cython", "numpy", "cpp_standalone"] = "cython"
    pattern_current_pA: float = 10.0
    """Step amplitude for the Izhikevich patterns (the paper's dimensionless units, C = 1 pF)."""
    pattern_duration_ms: float = 300.0


QUICK = {"duration_ms": 300.0, "n_currents": 6, "brian2_target": "numpy",
         "pattern_duration_ms": 200.0}


@dataclass(frozen=True)
class FICase:
    """One model of the f–I comparison: its parameters, current range (pA) and time step."""

    label: str
    model: NeuronModel
    params: object
    currents_pA: tuple[float, float]
    dt_ms: float


FI_CASES = (
    FICase("LIF", LIF, LIFParams(), (0.0, 1500.0), 0.02),
    FICase("AdEx", ADEX, AdExParams(), (0.0, 1500.0), 0.05),
    FICase("Izhikevich RS", IZHIKEVICH, REGULAR_SPIKING, (0.0, 20.0), 0.05),
    FICase("Hodgkin-Huxley", HODGKIN_HUXLEY, HHParams(), (0.0, 4000.0), 0.02),
    FICase("Traub-Miles", TRAUB_MILES, TraubMilesParams(), (-100.0, 800.0), 0.05),
)


def lif_rate_hz(params: LIFParams, current_pA: np.ndarray) -> np.ndarray:
    """Closed-form LIF rate (Hz) under a constant current (pA); 0 below rheobase."""
    drive = np.asarray(current_pA, dtype=np.float64) * params.tau_m / params.C_m  # R I, mV
    gap = params.V_th - params.E_L
    with np.errstate(divide="ignore", invalid="ignore"):
        period = params.t_ref + params.tau_m * np.log(drive / (drive - gap))
    return np.where(drive > gap, 1000.0 / period, 0.0)


def steady_rates_hz(trains: list[np.ndarray], t_start_ms: float, t_stop_ms: float) -> np.ndarray:
    """Rate of each train in ``[t_start, t_stop)``: 1 / mean ISI with at least two spikes there
    (no edge effects), else the spike count over the window."""
    rates = []
    for times in trains:
        window = times[(times >= t_start_ms) & (times < t_stop_ms)]
        if len(window) >= 2:
            rates.append(1000.0 / float(np.mean(np.diff(window))))
        else:
            rates.append(1000.0 * len(window) / (t_stop_ms - t_start_ms))
    return np.array(rates)


def _fi_rates(case: FICase, currents: np.ndarray, engine: str, config: NeuronZooConfig,
              seed: int) -> tuple[np.ndarray, float]:
    network = Network(
        populations=[Population("cells", len(currents), case.model, case.params)],
        inputs=[CurrentInput("cells", currents)],
        monitors=[SpikeMonitor("cells")],
        dt_ms=case.dt_ms,
    )
    result = simulate(network, config.duration_ms, engine=engine, seed=seed,
                      dtype="float64", brian2_target=config.brian2_target)
    trains = result.spikes["cells"].trains()
    return steady_rates_hz(trains, config.duration_ms / 2, config.duration_ms), result.wall_time_s


def _izhikevich_patterns(config: NeuronZooConfig, seed: int):
    dt = 0.1
    steps = int(round(config.pattern_duration_ms / dt))
    onset = int(round(20.0 / dt))
    current = np.zeros((steps, 1))
    current[onset:] = config.pattern_current_pA
    names = list(IZHIKEVICH_PRESETS)
    network = Network(
        populations=[Population(n, 1, IZHIKEVICH, IZHIKEVICH_PRESETS[n]) for n in names],
        inputs=[CurrentInput(n, current) for n in names],
        monitors=[StateMonitor(n, "v") for n in names] + [SpikeMonitor(n) for n in names],
        dt_ms=dt,
    )
    return names, simulate(network, config.pattern_duration_ms, engine="torch", seed=seed,
                           dtype="float64")


def _hh_action_potential(seed: int):
    dt, duration = 0.01, 30.0
    current = np.zeros((int(round(duration / dt)), 1))
    current[int(5.0 / dt):int(6.0 / dt)] = 4000.0  # a 1 ms, 4 nA pulse at 5 ms
    network = Network(
        populations=[Population("hh", 1, HODGKIN_HUXLEY, HHParams())],
        inputs=[CurrentInput("hh", current)],
        monitors=[StateMonitor("hh", var) for var in ("v", "m", "h", "n")],
        dt_ms=dt,
    )
    return simulate(network, duration, engine="torch", seed=seed, dtype="float64")


def _plot_fi(currents, rates, analytic) -> Figure:
    """One panel a model: torch as a line, Brian2 as open circles, the LIF closed form dashed."""
    fig = Figure(figsize=(3.6 * len(FI_CASES), 3.2), layout="constrained")
    axes = fig.subplots(1, len(FI_CASES))
    styles = {"torch": {"color": "tab:blue", "lw": 1.5},
              "brian2": {"ls": "none", "marker": "o", "mfc": "none", "color": "tab:orange"}}
    for ax, case in zip(axes, FI_CASES, strict=True):
        x = currents[case.label]
        for engine, values in rates[case.label].items():
            ax.plot(x, values, label=engine, **styles[engine])
        if case.label == "LIF":
            ax.plot(x, analytic, "k--", lw=1, label="closed form")
        ax.set_title(case.label)
        ax.set_xlabel("input current (pA)")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("firing rate (Hz)")
    axes[0].legend(frameon=False)
    return fig


def _plot_patterns(names, result) -> Figure:
    fig = Figure(figsize=(10, 1.6 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 1, sharex=True)
    for ax, name in zip(axes, names, strict=True):
        membrane_traces(_state(result, name, "v"), ax=ax)
        ax.set_title(name.replace("_", " "), fontsize=9, loc="left")
        ax.set_xlabel("")
    axes[-1].set_xlabel("time (ms)")
    return fig


def _state(result, population: str, variable: str):
    for record in result.states.values():
        if record.population == population and record.variable == variable:
            return record
    raise KeyError(f"no state record of {population}.{variable}")


def _plot_hh(result) -> Figure:
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax_v, ax_g = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    v = _state(result, "hh", "v")
    ax_v.plot(v.times_ms, v.values[0, :, 0], color="k")
    ax_v.set_ylabel("membrane potential (mV)")
    ax_v.set_title("Hodgkin–Huxley (1952) action potential, 1 ms 4 nA pulse at 5 ms")
    for gate, color in (("m", "tab:red"), ("h", "tab:blue"), ("n", "tab:green")):
        record = _state(result, "hh", gate)
        ax_g.plot(record.times_ms, record.values[0, :, 0], color=color, label=gate)
    ax_g.set_ylabel("gating variable")
    ax_g.set_xlabel("time (ms)")
    ax_g.legend(frameon=False, ncols=3)
    return fig


def run(config: NeuronZooConfig, ctx: RunContext) -> RunOutput:
    """f–I curves on both engines, Izhikevich patterns and an HH spike; plots and a table."""
    currents, rates, wall = {}, {}, {}
    for case in FI_CASES:
        currents[case.label] = np.linspace(*case.currents_pA, config.n_currents)
        rates[case.label], wall[case.label] = {}, {}
        for engine in config.engines:
            rates[case.label][engine], wall[case.label][engine] = _fi_rates(
                case, currents[case.label], engine, config, ctx.seed)
    lif_params = FI_CASES[0].params
    analytic = lif_rate_hz(lif_params, currents["LIF"])

    names, patterns = _izhikevich_patterns(config, ctx.seed)
    hh = _hh_action_potential(ctx.seed)
    fi_png = ctx.save_figure(_plot_fi(currents, rates, analytic), "fi_curves")
    patterns_png = ctx.save_figure(_plot_patterns(names, patterns), "izhikevich_patterns")
    hh_png = ctx.save_figure(_plot_hh(hh), "hh_action_potential")

    metrics: dict = {"fi": {}}
    rows = []
    for case in FI_CASES:
        entry = {"currents_pA": currents[case.label],
                 **{f"rates_hz_{e}": r for e, r in rates[case.label].items()},
                 **{f"wall_time_s_{e}": t for e, t in wall[case.label].items()}}
        if len(config.engines) == 2:
            diff = np.abs(rates[case.label]["torch"] - rates[case.label]["brian2"])
            entry["max_abs_rate_difference_hz"] = float(diff.max())
        metrics["fi"][case.label] = entry
        diff_text = f"{entry.get('max_abs_rate_difference_hz', math.nan):.3g}"
        rows.append(f"| {case.label} | {case.dt_ms} | {currents[case.label][0]:g} to "
                    f"{currents[case.label][-1]:g} | {diff_text} |")
    firing = analytic > 5.0
    for engine in config.engines:
        error = np.abs(rates["LIF"][engine][firing] - analytic[firing]) / analytic[firing]
        metrics[f"lif_max_relative_error_{engine}"] = float(error.max())
    pattern_counts = {n: int(patterns.spikes[n].counts().sum()) for n in names}
    metrics["izhikevich_spike_counts"] = pattern_counts

    lif_errors = ", ".join(f"{e}: {100 * metrics[f'lif_max_relative_error_{e}']:.2f}%"
                           for e in config.engines)
    report = f"""## f–I curves

Steady-state rate (1 / mean ISI over the second half of {config.duration_ms:g} ms) against a
constant current, on the engines {', '.join(config.engines)}. LIF against its closed form, largest
relative error where the closed form is above 5 Hz: {lif_errors}.

![f-I curves]({fi_png})

| model | dt (ms) | currents (pA) | largest torch–Brian2 rate difference (Hz) |
| --- | --- | --- | --- |
{chr(10).join(rows)}

## Izhikevich (2003) firing patterns

A {config.pattern_current_pA:g}-unit current step at 20 ms (C = 1 pF, so 1 pA is the paper's
unit). Spike counts: {', '.join(f'{n} {c}' for n, c in pattern_counts.items())}.

![Izhikevich patterns]({patterns_png})

## Hodgkin–Huxley action potential

The sodium activation m rises first, then inactivation h falls and potassium activation n
rises, repolarising the membrane.

![HH action potential]({hh_png})
"""
    return RunOutput(metrics=metrics, report=report)


EXPERIMENT = Experiment(
    name="neuron-zoo",
    description="f–I curves of every neuron model on both engines, Izhikevich patterns, an HH "
    "spike.",
    config_type=NeuronZooConfig,
    run=run,
    quick=QUICK,
)
