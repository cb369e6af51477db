r"""Experiment ``stdp-frequency``: the pairing-frequency dependence of STDP (Sjöström et al. 2001)
in the triplet rule, with the pair rule for contrast.

Protocol (Sjöström, Turrigiano & Nelson 2001, as modelled by Pfister & Gerstner 2006, Fig. 4):
``n_pairs`` pre/post pairs with :math:`\Delta t = t_{post} - t_{pre} = \pm 10` ms, repeated at
frequency :math:`\rho` from 0.1 to 50 Hz. All frequencies and both signs are one batch of the torch
rules, driven by :func:`experiments.stdp_window.spike_train_weights` (event-driven, exact trace
decay).

Normalisation: the triplet rules start at :math:`w_0 = 1`, since Pfister & Gerstner give their
amplitudes as changes of a weight equal to one (additive rule, no upper bound), so
:math:`\Delta w / w_0` is their relative change; the pair rule (Song et al. 2000, weights in units
of :math:`g_{max}`, bounds [0, 1]) starts at :math:`w_0 = 0.5`. Reported: :math:`\Delta w / w_0`
in % after the whole protocol.

Crossover: where a curve goes from depression to potentiation, found by root finding on the
simulated :math:`\Delta w(\rho)` between the grid frequencies that bracket the sign change.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from scipy.optimize import brentq

from experiments.registry import Experiment, ExperimentConfig, RunOutput
from experiments.run_record import RunContext
from experiments.stdp_window import (
    COLORS,
    TripletPresetName,
    pairing_spike_times,
    spike_train_weights,
)
from neuro.plasticity import SONG_2000, TRIPLET_PRESETS, PairSTDPParams, TripletSTDPParams

__all__ = ["STDPFrequencyConfig", "run", "EXPERIMENT", "SJOSTROM_FREQUENCIES_HZ",
           "pairing_frequency_curve", "crossover_frequency"]

#: Pairing frequencies of Sjöström et al. (2001), Hz.
SJOSTROM_FREQUENCIES_HZ = (0.1, 10.0, 20.0, 40.0, 50.0)


class STDPFrequencyConfig(ExperimentConfig):
    """Settings of ``stdp-frequency`` (``--set key=value``)."""

    n_pairs: int = 60
    """Pairs per frequency (60, as in Pfister & Gerstner's reproduction of Sjöström 2001)."""
    frequencies_hz: tuple[float, ...] = (0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0,
                                         35.0, 40.0, 45.0, 50.0)
    """Frequencies simulated; the Sjöström frequencies are always added."""
    delta_t_ms: float = 10.0
    """Pairs are simulated at +delta_t_ms and -delta_t_ms."""
    triplet_presets: tuple[TripletPresetName, ...] = (
        "visual_all_to_all_minimal", "visual_nearest_minimal")
    include_pair_rule: bool = True
    pair_w0: float = 0.5
    triplet_w0: float = 1.0
    onset_percent: float = 5.0
    """For a curve that never depresses: report the lowest frequency with Δw/w0 >= this (%)."""


QUICK = {"frequencies_hz": (0.1, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0)}


def pairing_frequency_curve(
    params: PairSTDPParams | TripletSTDPParams,
    w0: float,
    frequencies_hz: np.ndarray,
    delta_t_ms: float,
    n_pairs: int,
) -> np.ndarray:
    """Relative change Δw/w0 (%) after ``n_pairs`` pairs at each frequency (one batch)."""
    t_first = abs(delta_t_ms) + 100.0
    pre, post = [], []
    for frequency in frequencies_hz:
        p, q = pairing_spike_times([delta_t_ms], n_pairs, float(frequency), t_first)
        pre += p
        post += q
    return 100.0 * (spike_train_weights(params, pre, post, w0) - w0) / w0


def crossover_frequency(
    params: PairSTDPParams | TripletSTDPParams,
    w0: float,
    frequencies_hz: np.ndarray,
    curve: np.ndarray,
    delta_t_ms: float,
    n_pairs: int,
    upward: bool = True,
) -> float | None:
    """Lowest frequency where ``curve`` goes from depression (< 0) to potentiation (> 0)
    (``upward``; otherwise from potentiation to depression), refined by Brent's method on the
    simulated change; ``None`` without such a sign change."""
    sign = 1.0 if upward else -1.0
    for i in range(len(curve) - 1):
        if sign * curve[i] < 0 < sign * curve[i + 1]:
            def change(frequency: float) -> float:
                return float(pairing_frequency_curve(params, w0, np.array([frequency]),
                                                     delta_t_ms, n_pairs)[0])
            return float(brentq(change, frequencies_hz[i], frequencies_hz[i + 1], xtol=1e-3))
    return None


def _onset(frequencies_hz: np.ndarray, curve: np.ndarray, percent: float) -> float | None:
    above = np.nonzero(curve >= percent)[0]
    return float(frequencies_hz[above[0]]) if len(above) else None


def _plot(frequencies, results, delta_t) -> Figure:
    fig = Figure(figsize=(4 * len(results), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(results), sharey=True))
    for ax, (label, entry) in zip(axes, results.items(), strict=True):
        for sign, color, ls in (("plus", COLORS[0], "-"), ("minus", COLORS[3], "--")):
            value = entry[f"dw_relative_percent_{sign}"]
            dt = delta_t if sign == "plus" else -delta_t
            ax.plot(frequencies, value, ls=ls, marker="o", ms=3.5, color=color,
                    label=f"Δt = {dt:+g} ms")
            crossing = entry[f"crossover_hz_{sign}"]
            if crossing is not None:
                ax.axvline(crossing, color=color, lw=0.8, ls=":")
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("pairing frequency ρ (Hz)")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("Δw / w0 after the protocol (%)")
    axes[0].legend(frameon=False, fontsize=8)
    return fig


def _fmt_hz(value: float | None) -> str:
    return "none" if value is None else f"{value:.2f} Hz"


def run(config: STDPFrequencyConfig, ctx: RunContext) -> RunOutput:
    """Δw against pairing frequency for ±Δt, every rule; crossovers, plot and tables."""
    frequencies = np.array(sorted(set(config.frequencies_hz) | set(SJOSTROM_FREQUENCIES_HZ)))
    rules: dict = {}
    for name in config.triplet_presets:
        rules[f"triplet {name.replace('_', ' ')}"] = (TRIPLET_PRESETS[name], config.triplet_w0)
    if config.include_pair_rule:
        rules["pair (Song 2000)"] = (SONG_2000, config.pair_w0)

    results: dict = {}
    for label, (params, w0) in rules.items():
        entry: dict = {"w0": w0}
        for sign, dt in (("plus", config.delta_t_ms), ("minus", -config.delta_t_ms)):
            curve = pairing_frequency_curve(params, w0, frequencies, dt, config.n_pairs)
            entry[f"dw_relative_percent_{sign}"] = curve
            entry[f"crossover_hz_{sign}"] = crossover_frequency(
                params, w0, frequencies, curve, dt, config.n_pairs)
            entry[f"reverse_crossover_hz_{sign}"] = crossover_frequency(
                params, w0, frequencies, curve, dt, config.n_pairs, upward=False)
            entry[f"onset_hz_{sign}"] = _onset(frequencies, curve, config.onset_percent)
            entry[f"depression_at_lowest_{sign}"] = bool(curve[0] < 0)
            entry[f"potentiation_at_highest_{sign}"] = bool(curve[-1] > 0)
        results[label] = entry
    png = ctx.save_figure(_plot(frequencies, results, config.delta_t_ms), "stdp_frequency")

    index = {f: i for i, f in enumerate(frequencies)}
    header = " | ".join(f"{f:g} Hz" for f in SJOSTROM_FREQUENCIES_HZ)
    rows = []
    for label, entry in results.items():
        for sign, dt in (("plus", config.delta_t_ms), ("minus", -config.delta_t_ms)):
            values = entry[f"dw_relative_percent_{sign}"]
            cells = " | ".join(f"{values[index[f]]:+.1f}" for f in SJOSTROM_FREQUENCIES_HZ)
            rows.append(f"| {label} | {dt:+g} | {cells} | "
                        f"{_fmt_hz(entry[f'crossover_hz_{sign}'])} |")
    lines = []
    for label, entry in results.items():
        for sign, dt in (("plus", config.delta_t_ms), ("minus", -config.delta_t_ms)):
            curve = entry[f"dw_relative_percent_{sign}"]
            if np.all(curve >= 0):
                lines.append(
                    f"- {label}, Δt = {dt:+g} ms: no depression at any frequency "
                    f"({curve[0]:+.2g}% at {frequencies[0]:g} Hz); Δw/w0 ≥ "
                    f"{config.onset_percent:g}% from {_fmt_hz(entry[f'onset_hz_{sign}'])} on.")
            reverse = entry[f"reverse_crossover_hz_{sign}"]
            if reverse is not None:
                lines.append(f"- {label}, Δt = {dt:+g} ms: potentiation turns into depression "
                             f"at {_fmt_hz(reverse)}.")
    metrics = {
        "frequencies_hz": frequencies,
        "delta_t_ms": config.delta_t_ms,
        "n_pairs": config.n_pairs,
        "rules": results,
    }
    report = f"""## Pairing-frequency protocol

{config.n_pairs} pairs with Δt = ±{config.delta_t_ms:g} ms at each frequency ρ. Δw / w0 after the
protocol; triplet rules from w0 = {config.triplet_w0:g} (Pfister & Gerstner's amplitudes are
relative changes of a unit weight), the pair rule from w0 = {config.pair_w0:g} g_max.

![STDP against pairing frequency]({png})

## Δw / w0 (%) at the frequencies of Sjöström et al. (2001)

| rule | Δt (ms) | {header} | crossover (depression → potentiation) |
| --- | --- | {' | '.join('---' for _ in SJOSTROM_FREQUENCIES_HZ)} | --- |
{chr(10).join(rows)}

{chr(10).join(lines)}

## Against the reference

Sjöström et al. (2001), as reproduced by the triplet model of Pfister & Gerstner (2006, Fig. 4):
at low frequency pre-after-post (Δt = −10 ms) pairing depresses and pre-before-post (+10 ms)
gives no potentiation; potentiation grows with frequency for +10 ms, and at high frequency
(≳ 40 Hz) −10 ms pairing potentiates too. The triplet rule reproduces this through its
postsynaptic triplet term: at high frequency each postsynaptic spike follows another within
τ_y, so A3+ o2 potentiation outgrows the pair depression. Note that the +10 ms curve has no
depression phase in this model (it starts from no change), so its "crossover" is an onset; the
depression-to-potentiation crossover is on the −10 ms curve.

The pair rule has no term that grows with rate: its only frequency dependence comes from
neighbouring pairs overlapping at high frequency (at 50 Hz, +10 and −10 ms pairings are the same
spike train), and it goes the wrong way: +10 ms potentiation shrinks with frequency and −10 ms
stays depression.
"""
    return RunOutput(metrics=metrics, report=report)


EXPERIMENT = Experiment(
    name="stdp-frequency",
    description="Pairing-frequency dependence (Sjöström 2001) of the triplet rule, pair rule for "
    "contrast; depression-to-potentiation crossover.",
    config_type=STDPFrequencyConfig,
    run=run,
    quick=QUICK,
)
