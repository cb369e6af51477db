"""Experiment ``coba``: the COBA benchmark network (Vogels & Abbott 2005; Brette et al. 2007).

4,000 conductance-based LIF neurons (80% excitatory), connection probability 2%, exponential
conductances (E_exc 0 mV, E_inh −80 mV, τ_exc 5 ms, τ_inh 10 ms), dt 0.1 ms, on a selectable
engine. Writes a raster, population rates, rate and ISI-CV distributions.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
from matplotlib.figure import Figure

from experiments.registry import Experiment, ExperimentConfig, RunOutput
from experiments.run_record import RunContext
from neuro.analysis import fano_factor, isi_cv, pairwise_correlation, population_rate
from neuro.coba import coba_network
from neuro.plots import raster, rate_histogram
from neuro.simulation import simulate

__all__ = ["CobaConfig", "run", "synaptic_events", "EXPERIMENT"]


class CobaConfig(ExperimentConfig):
    """Settings of ``coba`` (``--set key=value``)."""

    n: int = 4000
    p: float = 0.02
    duration_ms: float = 1000.0
    dt_ms: float = 0.1
    engine: Literal["torch", "brian2"] = "torch"
    brian2_target: Literal["cython", "numpy", "cpp_standalone"] = "cython"
    variant: Literal["brian2", "brette2007"] = "brian2"
    """``brian2``: the Brian2 benchmark suite's driven COBA; ``brette2007``: self-sustained."""
    raster_neurons: int = 400
    transient_ms: float = 100.0
    """Statistics ignore the first ``transient_ms`` (the random initial state)."""


QUICK = {"n": 1000, "p": 0.08, "duration_ms": 400.0, "raster_neurons": 200}


def _plot(result, config: CobaConfig, rates_exc, rates_inh, cv) -> Figure:
    fig = Figure(figsize=(11, 7), layout="constrained")
    grid = fig.add_gridspec(2, 3, height_ratios=[3, 2])
    ax_raster = fig.add_subplot(grid[0, :])
    n_exc = result.spikes["exc"].n_neurons
    raster(result.spikes["exc"], max_neurons=config.raster_neurons, ax=ax_raster,
           color="tab:blue")
    shown = min(config.raster_neurons, n_exc)
    ax_raster.set_title(f"COBA, N = {config.n}: first {shown} of {n_exc} excitatory neurons, "
                        f"engine {result.engine}")
    ax_rate = fig.add_subplot(grid[1, 0])
    for name, color in (("exc", "tab:blue"), ("inh", "tab:red")):
        times, rate = population_rate(result.spikes[name], bin_ms=5.0)
        ax_rate.plot(times, rate, color=color, lw=1, label=name)
    ax_rate.set_xlabel("time (ms)")
    ax_rate.set_ylabel("population rate (Hz)")
    ax_rate.legend(frameon=False)
    ax_rate.set_title("population rate (5 ms bins)")
    ax_hist = fig.add_subplot(grid[1, 1])
    rate_histogram(rates_exc, ax=ax_hist, label="exc")
    rate_histogram(rates_inh, ax=ax_hist, label="inh")
    ax_hist.set_title("firing rates")
    ax_cv = fig.add_subplot(grid[1, 2])
    finite = cv[np.isfinite(cv)]
    ax_cv.hist(finite, bins=30, color="0.4")
    ax_cv.set_xlabel("ISI CV")
    ax_cv.set_ylabel("neurons")
    ax_cv.set_title("irregularity")
    return fig


def run(config: CobaConfig, ctx: RunContext) -> RunOutput:
    """Build the network, simulate it once, measure rates, irregularity and synchrony."""
    network = coba_network(config.n, p=config.p, dt_ms=config.dt_ms, seed=ctx.seed,
                           variant=config.variant)
    connectome = network.build()
    timings: dict = {}
    start = time.perf_counter()
    result = simulate(network, config.duration_ms, engine=config.engine, seed=ctx.seed,
                      device=ctx.device if config.engine == "torch" else "cpu",
                      brian2_target=config.brian2_target, progress=ctx.progress,
                      connectome=connectome, timings=timings)
    total = time.perf_counter() - start
    t0, t1 = config.transient_ms, config.duration_ms
    exc, inh = result.spikes["exc"], result.spikes["inh"]
    rates_exc, rates_inh = _rates(exc, t0, t1), _rates(inh, t0, t1)
    cv = isi_cv(exc)[0]
    events = synaptic_events(result, connectome)
    metrics = {
        "engine": result.engine,
        "device": result.device,
        "n": config.n,
        "exc_rate_hz": float(rates_exc.mean()),
        "inh_rate_hz": float(rates_inh.mean()),
        "exc_isi_cv": float(np.nanmean(cv)),
        "exc_fano_factor_100ms": float(np.nanmean(fano_factor(exc, 100.0, t0, t1))),
        "exc_pairwise_correlation_5ms": pairwise_correlation(exc, 5.0, n_pairs=2000,
                                                             rng=ctx.seed, t_start_ms=t0),
        "simulation_wall_time_s": result.wall_time_s,
        "total_wall_time_s": total,
        "synaptic_events_per_s": events / result.wall_time_s,
        "timings_s": timings,
        "synapses": sum(p.n_synapses for p in connectome.projections),
        "synaptic_events": events,
    }
    figure = ctx.save_figure(_plot(result, config, rates_exc, rates_inh, cv), "coba")
    report = f"""## Result

| quantity | value |
| --- | --- |
| engine | {result.engine} on {result.device} |
| neurons | {config.n} (p = {config.p}), {config.duration_ms:g} ms at dt = {config.dt_ms} ms |
| excitatory rate | {metrics['exc_rate_hz']:.2f} Hz |
| inhibitory rate | {metrics['inh_rate_hz']:.2f} Hz |
| excitatory ISI CV | {metrics['exc_isi_cv']:.2f} |
| Fano factor (100 ms) | {metrics['exc_fano_factor_100ms']:.2f} |
| pairwise correlation (5 ms bins) | {metrics['exc_pairwise_correlation_5ms']:.3f} |
| simulation wall time | {result.wall_time_s:.2f} s (total {total:.2f} s) |

Statistics exclude the first {t0:g} ms. The asynchronous irregular state of Vogels & Abbott
(2005) shows as a CV near or above 1 and a weak pairwise correlation.

![COBA]({figure})
"""
    return RunOutput(metrics=metrics, report=report)


def synaptic_events(result, connectome) -> int:
    """Spikes delivered to synapses during the run: every spike times its neuron's out-degree."""
    events = 0
    for projection in connectome.projections:
        record = result.spikes[projection.source]
        out_degree = np.bincount(projection.pre, minlength=record.n_neurons)
        events += int(out_degree[record.neuron].sum())
    return events


def _rates(record, t0: float, t1: float) -> np.ndarray:
    keep = (record.time_ms >= t0) & (record.time_ms < t1) & (record.trial == 0)
    counts = np.bincount(record.neuron[keep], minlength=record.n_neurons)
    return counts / ((t1 - t0) / 1000.0)


EXPERIMENT = Experiment(
    name="coba",
    description="The COBA benchmark network (Vogels & Abbott 2005): raster, rates, ISI CV.",
    config_type=CobaConfig,
    run=run,
    quick=QUICK,
)
