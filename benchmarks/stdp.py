"""Benchmark: Song-Abbott STDP (1000 Poisson inputs -> 1 neuron, plastic) on the torch engine
against Brian2 (Cython runtime and C++ standalone).

The network is :func:`experiments.song_abbott.song_abbott_network` (Brian2's
``examples/synapses/STDP.py``), ``--duration-s`` of biological time (100 s) at dt = 0.1 ms,
i.e. 10^6 steps. Measured, in this one process and one after the other:

* ``torch`` -- the engine's fused, event-driven, compiled path (``fused=True,
  compile=True``; :func:`neuro.engines.torch_plasticity.run_fused`), one trial, with each
  Poisson sampler of ``--samplers``: ``intervals`` (geometric inter-spike intervals, ~1,500
  random numbers per simulated second) and ``bernoulli`` (one uniform number per input and
  step, the step-by-step engine's stream: 10^9 numbers per run). A short warm-up run compiles
  first; its wall time is ``compile_s`` and ``sim_s`` excludes it, as Brian2 standalone's
  ``sim_s`` excludes code generation and compilation;
* ``torch-step`` -- the generic step-by-step loop (``fused=False``) for ``--step-seconds``
  (default 5 s), scaled to the full duration (``extrapolated: true``);
* ``brian2-example`` -- Brian2's example as a Brian2 user writes it (the equations of
  ``STDP.py``, ``method="exact"``, event-driven traces), on ``cython`` (Cython cache warmed by a
  short run first; ``sim_s`` is ``Network.run``) and on ``cpp_standalone`` (serial, no OpenMP;
  ``sim_s`` is Brian2's main-loop timer, ``compile_s`` code generation and compilation);
* ``brian2-engine`` -- the same network through spikebridge's Brian2 engine
  (:func:`neuro.simulation.simulate` with ``engine="brian2"``), C++ standalone;
* ``trials`` -- ``--trials`` seeds (32): one batched torch pass (``batch_size=32``, every
  trial learning its own weights) against as many Brian2 C++ standalone runs, estimated as
  ``trials x`` the standalone ``sim_s`` of one run (the binary needs no rebuild per seed, so
  compilation is left out; Poisson input means each seed is a full run). Throughput = trials
  x simulated seconds / wall seconds.

Each result line carries the weight fractions below 0.1 gmax and above 0.9 gmax and the final
output rate (Brian2's example: about 27% and 17%), so the speed is of a run that learnt the
same thing. JSON lines go to stdout (``event``: ``setup``, ``run``, ``trials``, ``targets``),
progress to stderr. Targets (the issue's): torch <= 0.2 x Brian2's Cython run time for one
run, and >= 5 x Brian2 C++ standalone's throughput over 32 batched seeds.

Timing on a shared 2-core machine (see ``shared/PEERS.md``): torch with ``--threads`` threads
(default 1); every line carries the load average; compare lines of one invocation only.

Run from the repository root::

    python benchmarks/stdp.py                     # 100 s, 32 trials (~10 min)
    python benchmarks/stdp.py --quick             # 5 s, 4 trials: smoke check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments.song_abbott import (
    PROJECTION,
    SongAbbottConfig,
    output_rate,
    song_abbott_network,
    weight_fractions,
)
from neuro.simulation import simulate


def log(msg: str) -> None:
    print(f"[stdp {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def _outcome(weights: np.ndarray, w_max: float, rate_last_hz: float) -> dict:
    low, high = weight_fractions(weights, w_max)
    return {"fraction_below_0.1_gmax": round(low, 4), "fraction_above_0.9_gmax": round(high, 4),
            "rate_last_10pct_hz": round(rate_last_hz, 2)}


def _last_rate(result) -> float:
    _, rates = output_rate(result, 1.0)
    return float(rates[:, -max(1, rates.shape[1] // 10):].mean())


# --------------------------------------------------------------------------------------------
# torch
# --------------------------------------------------------------------------------------------


def measure_torch(config: SongAbbottConfig, duration_s: float, batch: int, sampler: str,
                  seed: int) -> dict:
    network = song_abbott_network(config, seed=seed, monitor_weights=False)
    w_max = network.projections[0].plasticity.w_max
    options = dict(fused=True, compile=True, poisson_sampler=sampler, batch_size=batch,
                   seed=seed)
    log(f"torch fused compiled B={batch} {sampler}: warm-up (compilation)")
    t0 = time.perf_counter()
    simulate(network, 200.0, **options)
    compile_s = time.perf_counter() - t0
    log(f"torch fused compiled B={batch} {sampler}: {duration_s:g} s")
    timings: dict = {}
    result = simulate(network, duration_s * 1000.0, timings=timings, **options)
    sim_s = result.wall_time_s
    return dict(event="run", engine="torch", path="fused-compiled", sampler=sampler,
                batch_size=batch, duration_s=duration_s, sim_s=round(sim_s, 3),
                compile_s=round(compile_s, 3), total_s=round(timings["total_s"] + compile_s, 3),
                us_per_step=round(sim_s / (duration_s * 1e4) * 1e6, 2),
                threads=torch.get_num_threads(), loadavg=loadavg(),
                **_outcome(result.weights[PROJECTION], w_max, _last_rate(result)))


def measure_torch_step(config: SongAbbottConfig, duration_s: float, step_seconds: float,
                       seed: int) -> dict:
    network = song_abbott_network(config, seed=seed, monitor_weights=False)
    log(f"torch step-by-step: {step_seconds:g} s (scaled to {duration_s:g} s)")
    result = simulate(network, step_seconds * 1000.0, seed=seed)
    per_step = result.wall_time_s / (step_seconds * 1e4)
    return dict(event="run", engine="torch", path="step-by-step", sampler="bernoulli",
                batch_size=1, duration_s=duration_s, simulated_s=step_seconds,
                extrapolated=True, sim_s=round(per_step * duration_s * 1e4, 2),
                us_per_step=round(per_step * 1e6, 2), threads=torch.get_num_threads(),
                loadavg=loadavg())


# --------------------------------------------------------------------------------------------
# Brian2
# --------------------------------------------------------------------------------------------


def brian2_example(config: SongAbbottConfig, duration_s: float, target: str, seed: int,
                   directory: str | None = None) -> dict:
    """Brian2's ``STDP.py`` model, written as a Brian2 user writes it (explicit Network and
    namespace). Returns sim/compile times and the outcome."""
    import brian2 as b2
    from brian2 import Hz, ms, mV, second
    from brian2.devices.device import get_device, set_device

    c = config
    standalone = target == "cpp_standalone"
    old_target = b2.prefs.codegen.target
    if standalone:
        set_device("cpp_standalone", directory=directory, build_on_run=False)
    else:
        b2.prefs.codegen.target = target
    try:
        b2.seed(seed)
        a_pre = c.dA_pre * c.gmax
        namespace = dict(
            taum=c.tau_m_ms * ms, taupre=c.tau_pre_ms * ms, taupost=c.tau_post_ms * ms,
            Ee=c.E_e_mV * mV, vt=c.V_th_mV * mV, vr=c.V_reset_mV * mV, El=c.E_L_mV * mV,
            taue=c.tau_e_ms * ms, gmax=c.gmax, dApre=a_pre,
            dApost=-a_pre * c.tau_pre_ms / c.tau_post_ms * c.depression_ratio)
        clock = dict(dt=c.dt_ms * ms)
        inputs = b2.PoissonGroup(c.n_inputs, rates=c.rate_hz * Hz, name="inputs", **clock)
        neuron = b2.NeuronGroup(
            1, "dv/dt = (ge * (Ee - vr) + El - v) / taum : volt\ndge/dt = -ge / taue : 1",
            threshold="v > vt", reset="v = vr", method="exact", name="neuron",
            namespace=namespace, **clock)
        neuron.v = c.E_L_mV * mV
        synapses = b2.Synapses(
            inputs, neuron,
            "w : 1\ndApre/dt = -Apre / taupre : 1 (event-driven)\n"
            "dApost/dt = -Apost / taupost : 1 (event-driven)",
            on_pre="ge += w\nApre += dApre\nw = clip(w + Apost, 0, gmax)",
            on_post="Apost += dApost\nw = clip(w + Apre, 0, gmax)",
            namespace=namespace, name="synapses", **clock)
        synapses.connect()
        synapses.w = "rand() * gmax"
        spikes = b2.SpikeMonitor(neuron, name="spikes")
        net = b2.Network(inputs, neuron, synapses, spikes)
        compile_s = None
        if standalone:
            net.run(duration_s * second, namespace={})
            t0 = time.perf_counter()
            get_device().build(directory=directory, compile=True, run=True, debug=False)
            wall = time.perf_counter() - t0
            sim_s = float(get_device()._last_run_time)
            compile_s = wall - sim_s
        else:
            t0 = time.perf_counter()
            net.run(duration_s * second, namespace={})
            sim_s = time.perf_counter() - t0
        weights = np.asarray(synapses.w[:], dtype=np.float64)
        times = np.asarray(spikes.t[:] / second)
    finally:
        if standalone:
            get_device().reinit()
            set_device("runtime")
        else:
            b2.prefs.codegen.target = old_target
    tail = duration_s * 0.9
    rate_last = float(np.sum(times >= tail) / (duration_s - tail))
    return dict(sim_s=sim_s, compile_s=compile_s,
                **_outcome(weights[None], c.gmax, rate_last))


def measure_brian2_example(config, duration_s: float, target: str, seed: int,
                           workdir: Path) -> dict:
    directory = None
    if target == "cython":
        log("brian2 example cython: warming the Cython cache (short run)")
        brian2_example(config, 0.05, "cython", seed)
    else:
        directory = str(workdir / "example_standalone")
        shutil.rmtree(directory, ignore_errors=True)
    log(f"brian2 example {target}: {duration_s:g} s")
    t0 = time.perf_counter()
    out = brian2_example(config, duration_s, target, seed, directory)
    total = time.perf_counter() - t0
    return dict(event="run", engine="brian2", model="example", target=target,
                duration_s=duration_s, sim_s=round(out.pop("sim_s"), 3),
                compile_s=None if out["compile_s"] is None else round(out.pop("compile_s"), 3),
                total_s=round(total, 3),
                us_per_step=None, loadavg=loadavg(),
                **{k: v for k, v in out.items() if k != "compile_s"})


def measure_brian2_engine(config, duration_s: float, target: str, seed: int) -> dict:
    network = song_abbott_network(config, seed=seed, monitor_weights=False)
    w_max = network.projections[0].plasticity.w_max
    if target == "cython":
        log("brian2 engine cython: warming the Cython cache (short run)")
        simulate(network, 50.0, "brian2", seed=seed, brian2_target="cython")
    log(f"brian2 engine {target}: {duration_s:g} s")
    timings: dict = {}
    t0 = time.perf_counter()
    result = simulate(network, duration_s * 1000.0, "brian2", seed=seed, brian2_target=target,
                      timings=timings)
    total = time.perf_counter() - t0
    return dict(event="run", engine="brian2", model="engine", target=target,
                duration_s=duration_s, sim_s=round(result.wall_time_s, 3),
                compile_s=(round(timings["compile_s"], 3) if "compile_s" in timings else None),
                total_s=round(total, 3), loadavg=loadavg(),
                **_outcome(result.weights[PROJECTION], w_max, _last_rate(result)))


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "brian2", "numpy", "spikebridge"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration-s", type=float, default=100.0)
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samplers", nargs="+", default=["intervals", "bernoulli"],
                        choices=["intervals", "bernoulli"])
    parser.add_argument("--step-seconds", type=float, default=5.0,
                        help="simulated seconds of the step-by-step torch loop (0: skip)")
    parser.add_argument("--brian2", nargs="*",
                        default=["example-cython", "example-standalone", "engine-standalone"],
                        choices=["example-cython", "example-standalone", "engine-cython",
                                 "engine-standalone"])
    parser.add_argument("--quick", action="store_true",
                        help="5 s, 4 trials, 1 s of step-by-step loop")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration_s, args.trials, args.step_seconds = 5.0, 4, 1.0
    torch.set_num_threads(args.threads)
    config = SongAbbottConfig()
    emit(dict(event="setup", duration_s=args.duration_s, steps=int(args.duration_s * 1e4),
              trials=args.trials, threads=args.threads, seed=args.seed,
              cpu=platform.processor() or platform.machine(), cpus=os.cpu_count(),
              versions=_versions(), loadavg=loadavg()))
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="stdp_bench_") as tmp:
        workdir = Path(tmp)
        for sampler in args.samplers:
            rec = measure_torch(config, args.duration_s, 1, sampler, args.seed)
            runs[f"torch-{sampler}"] = rec
            emit(rec)
        if args.step_seconds > 0:
            rec = measure_torch_step(config, args.duration_s, args.step_seconds, args.seed)
            runs["torch-step"] = rec
            emit(rec)
        for name in args.brian2:
            model, target = name.split("-")
            target = "cpp_standalone" if target == "standalone" else target
            if model == "example":
                rec = measure_brian2_example(config, args.duration_s, target, args.seed, workdir)
            else:
                rec = measure_brian2_engine(config, args.duration_s, target, args.seed)
            runs[name] = rec
            emit(rec)
        trials = None
        if args.trials > 0:
            rec = measure_torch(config, args.duration_s, args.trials, "intervals", args.seed)
            runs["torch-batch"] = rec
            emit(rec)
            standalone = runs.get("example-standalone") or runs.get("engine-standalone")
            if standalone is not None:
                brian_s = args.trials * standalone["sim_s"]
                trials = dict(
                    event="trials", trials=args.trials, duration_s=args.duration_s,
                    torch_sim_s=rec["sim_s"], torch_compile_s=rec["compile_s"],
                    brian2_standalone_model=standalone["model"],
                    brian2_standalone_sim_s_estimated=round(brian_s, 2),
                    brian2_estimate="trials x one run's main-loop time (no rebuild per seed)",
                    torch_throughput_bio_s_per_s=round(args.trials * args.duration_s
                                                       / rec["sim_s"], 2),
                    brian2_throughput_bio_s_per_s=round(args.trials * args.duration_s
                                                        / brian_s, 2),
                    ratio_torch_over_brian2_throughput=round(brian_s / rec["sim_s"], 2),
                    loadavg=loadavg())
                emit(trials)
    targets = []
    best_torch = min((r for k, r in runs.items() if k.startswith("torch-")
                      and k not in ("torch-batch", "torch-step")),
                     key=lambda r: r["sim_s"], default=None)
    cython = runs.get("example-cython") or runs.get("engine-cython")
    if best_torch is not None and cython is not None:
        ratio = best_torch["sim_s"] / cython["sim_s"]
        targets.append(dict(target="torch <= 0.2 x Brian2 Cython run time (one run)",
                            torch=f"{best_torch['path']} {best_torch['sampler']}",
                            measured_ratio=round(ratio, 3), met=ratio <= 0.2))
        bern = runs.get("torch-bernoulli")
        if bern is not None:
            ratio_b = bern["sim_s"] / cython["sim_s"]
            targets.append(dict(target="same, Bernoulli sampler (the step-by-step stream)",
                                measured_ratio=round(ratio_b, 3), met=ratio_b <= 0.2))
    if trials is not None:
        ratio = trials["ratio_torch_over_brian2_throughput"]
        targets.append(dict(target=">= 5 x Brian2 C++ standalone throughput, 32 seeds",
                            measured_ratio=ratio, met=ratio >= 5.0))
    emit(dict(event="targets", targets=targets, loadavg=loadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
