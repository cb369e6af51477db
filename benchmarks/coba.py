"""Benchmark: the COBA network on the torch engine against Brian2 (C++ standalone and Cython).

The model is :func:`neuro.coba.coba_network` (Brian2's COBA benchmark script: 80% excitatory,
20% inhibitory LIF neurons, exponential conductances, ``p = 0.02``, constant drive), simulated
for ``--duration-ms`` of biological time at every ``--sizes`` N, the same connectome and the
same initial state on every engine (Brian2 through :mod:`neuro.engines.brian2_engine`). One
JSON line per measurement goes to stdout, progress to stderr:

* ``{"event": "setup", ...}`` -- versions, threads, CPU, load average;
* ``{"event": "run", "engine", "target", "n", "batch_size", ...}`` -- one per engine and N,
  for torch one per ``--torch-configs`` entry (default ``eager``: the default options, and
  ``compile``: ``compile=True``, whose compilation counts in ``total_s`` and ``compile_s``
  but not in ``sim_s``, as Brian2 standalone's does not):

  - ``sim_s``: simulation only, the minimum over ``--repeats`` runs (torch: the engine's time
    loop; Brian2 C++ standalone: Brian2's own main-loop timer, the repeats rerunning the
    compiled binary; Brian2 runtime: the time of ``Network.run()``, which includes its
    ~0.2 s of Python-side preparation);
  - ``total_s``: time to result in a fresh process -- a ``python -c`` subprocess that imports,
    builds the connectome, simulates (Brian2: code generation and compilation included) and
    prints the firing rate; timed from spawn to that line. Brian2 runtime is measured with a
    warm Cython cache (a short run of the same N in another process first).
    ``total_excl_torch_s`` subtracts the time the child spent importing torch, which
    ``neuro`` imports but a plain Brian2 script would not (the Brian2 ratios use it, which
    favours Brian2);
  - ``events_per_s``: synaptic events per second of simulation time, spikes x mean
    out-degree / ``sim_s``; ``rate_exc_hz`` the excitatory firing rate (mean over trials);
  - ``threads``, ``loadavg`` (1, 5, 15 min, at the end of the measurement);
* ``{"event": "ratio", ...}`` -- torch / Brian2 standalone (simulation only) and
  torch total / Brian2 runtime warm total, per N;
* ``{"event": "trials", ...}`` -- ``--trials`` trials of N = 4,000 with seeds ``0..trials-1``:
  one batched torch pass (``batch_size=trials``) against as many Brian2 C++ standalone runs.
  Brian2 builds once; each trial reruns the compiled binary with that trial's initial
  membrane potentials passed on the command line (``pop_exc.v=<file>``, the mechanism behind
  ``device.run(run_args=...)``; COBA has no other randomness after the build), so no trial
  pays for code generation. ``--repeats`` rounds alternate the torch batch (a fresh process
  per configuration) and the Brian2 reruns; each side's best round counts. Throughput =
  trials x simulated seconds / simulation time;
* ``{"event": "targets", ...}`` -- the issue's targets with the measured figures, each for
  the best torch configuration (named, all configurations listed).

Timing on a shared 2-core machine (see ``shared/PEERS.md``): torch runs with ``--threads``
threads (default 1), Brian2 standalone serially (no OpenMP), and every figure carries the load
average; compare figures from one invocation only.

Run from the repository root::

    python benchmarks/coba.py                         # N = 4,000, 16,000, 64,000; 1 s
    python benchmarks/coba.py --quick                 # smoke check: N = 4,000, 0.2 s
    python benchmarks/coba.py --sizes 16000 --engines torch standalone --trials 0 \
        --torch-configs '{"compiled": {"compile": true}}'

The children import ``neuro`` from the checkout that holds this script (``PYTHONPATH``), so
``python <other checkout>/benchmarks/coba.py`` measures that checkout.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MARK = "@@COBA "
ENGINES = ("torch", "standalone", "cython")

# The child: a fresh interpreter that imports, builds, simulates and prints the rate. It prints
# its first result as soon as it exists (the parent timestamps that line), then optional
# simulation-only repeats in the same process.
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
cfg = json.loads(sys.argv[1])
import torch
torch.set_num_threads(cfg["threads"])
t_torch = time.perf_counter()
from neuro.coba import coba_network
from neuro.simulation import simulate
t_import = time.perf_counter()
net = coba_network(cfg["n"])
connectome = net.build()
t_built = time.perf_counter()
if cfg["engine"] == "torch":
    kw = dict(engine="torch", batch_size=cfg["batch_size"], **cfg["options"])
else:
    kw = dict(engine="brian2", brian2_target=cfg["target"], **cfg["options"])

def once():
    tm = {}
    res = simulate(net, cfg["duration_ms"], seed=cfg["seed"], connectome=connectome,
                   timings=tm, **kw)
    exc = res.spikes["exc"]
    inh = res.spikes["inh"]
    b = res.spikes["exc"].batch_size
    n_exc = exc.n_neurons
    counts = [int((exc.trial == k).sum()) for k in range(b)]
    return dict(
        sim_s=res.wall_time_s, timings=tm,
        spikes=int(exc.trial.size + inh.trial.size),
        rate_exc_hz=[c / n_exc / (res.duration_ms / 1000.0) for c in counts],
        spikes_exc=counts)

out = once()
t_done = time.perf_counter()
out.update(event="first", import_torch_s=t_torch - t0, import_s=t_import - t0,
           build_s=t_built - t_import, child_total_s=t_done - t0,
           n_synapses=int(sum(p.n_synapses for p in connectome.projections)))
print("@@COBA " + json.dumps(out), flush=True)
for _ in range(cfg["repeats"] - 1):
    print("@@COBA " + json.dumps(dict(event="repeat", **once())), flush=True)
"""


def log(msg: str) -> None:
    print(f"[coba {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return []


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    return env


def run_child(cfg: dict, threads: int, timeout: float) -> tuple[float, list[dict]]:
    """Spawn the child; return (seconds from spawn to its first result, its JSON records)."""
    with tempfile.TemporaryFile(mode="w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg)], cwd=REPO,
                                env=child_env(threads), stdout=subprocess.PIPE, stderr=err,
                                text=True)
        first = None
        records = []
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(MARK):
                if first is None:
                    first = time.perf_counter() - t0
                records.append(json.loads(line[len(MARK):]))
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        if rc != 0 or first is None:
            err.seek(0)
            tail = err.read()[-4000:]
            raise RuntimeError(f"child {cfg} failed (exit {rc}):\n{tail}")
    return first, records


# --------------------------------------------------------------------------------------------
# Brian2 C++ standalone: rerun the compiled binary (no rebuild)
# --------------------------------------------------------------------------------------------


def _write_initial_v(n: int, seed: int, directory: Path) -> list[str]:
    """Command-line arguments that set trial ``seed``'s initial ``v`` (volts, float64)."""
    import numpy as np

    from neuro.coba import coba_network

    net = coba_network(n)
    args = []
    for pop in ("exc", "inh"):
        v_mv = net.initial_values(pop, seed)["v"]
        path = directory / f"v_{pop}_{seed}.bin"
        (np.asarray(v_mv, dtype=np.float64) / 1000.0).tofile(path)
        args.append(f"pop_{pop}.v={path}")
    return args


def _spike_count(results: Path, monitor: str) -> int:
    import numpy as np

    files = glob.glob(str(results / f"_array_{monitor}_N_*"))
    if len(files) != 1:
        raise RuntimeError(f"cannot find the spike count of {monitor} in {results}")
    return int(np.fromfile(files[0], dtype=np.int32)[0])


def rerun_standalone(directory: Path, n: int, seed: int) -> dict:
    """Run the built binary once for trial ``seed``; main-loop time, process wall, spikes."""
    results = directory / f"results_seed{seed}"
    results.mkdir(exist_ok=True)
    args = [str(directory / "main"), "--results_dir", str(results) + os.sep]
    args += _write_initial_v(n, seed, directory)
    t0 = time.perf_counter()
    subprocess.run(args, cwd=directory, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    info = (results / "last_run_info.txt").read_text().split()
    out = dict(sim_s=float(info[0]), process_s=wall,
               spikes_exc=_spike_count(results, "spikemon_0"),
               spikes_inh=_spike_count(results, "spikemon_1"))
    shutil.rmtree(results, ignore_errors=True)
    return out


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


def _record(engine: str, target: str | None, n: int, batch: int, args, total: float,
            recs: list[dict], sim_times: list[float], extra: dict | None = None) -> dict:
    first = recs[0]
    sim_s = min(sim_times)
    mean_out = first["n_synapses"] / n
    out = dict(
        event="run", engine=engine, target=target, n=n, batch_size=batch,
        duration_ms=args.duration_ms, sim_s=round(sim_s, 4),
        sim_s_all=[round(s, 4) for s in sim_times], total_s=round(total, 3),
        total_excl_torch_s=round(total - first["import_torch_s"], 3),
        import_s=round(first["import_s"], 3), import_torch_s=round(first["import_torch_s"], 3),
        build_s=round(first["build_s"], 3),
        setup_s=round(first["timings"].get("setup_s", float("nan")), 3),
        compile_s=(round(first["timings"]["compile_s"], 3)
                   if "compile_s" in first["timings"] else None),
        rate_exc_hz=round(sum(first["rate_exc_hz"]) / len(first["rate_exc_hz"]), 3),
        spikes=first["spikes"], n_synapses=first["n_synapses"],
        events_per_s=round(first["spikes"] * mean_out / sim_s),
        us_per_step=round(sim_s / (args.duration_ms / 0.1) * 1e6, 1),
        threads=args.threads if engine == "torch" else 1, loadavg=loadavg(),
    )
    if extra:
        out.update(extra)
    return out


def measure_torch(n: int, args, config: str, batch: int = 1) -> dict:
    options = args.torch_configs[config]
    cfg = dict(engine="torch", n=n, duration_ms=args.duration_ms, seed=0, batch_size=batch,
               threads=args.threads, options=options, repeats=args.repeats)
    log(f"torch ({config}) N={n} B={batch}: fresh process, {args.repeats} run(s)")
    total, recs = run_child(cfg, args.threads, args.timeout)
    sims = [r["sim_s"] for r in recs]
    return _record("torch", None, n, batch, args, total, recs, sims,
                   {"config": config, "options": options})


def measure_cython(n: int, args) -> dict:
    base = dict(engine="brian2", target="cython", n=n, seed=0, batch_size=1, threads=1,
                options={}, repeats=1)
    log(f"brian2 cython N={n}: warming the Cython cache (short run, separate process)")
    run_child(dict(base, duration_ms=min(10.0, args.duration_ms)), 1, args.timeout)
    log(f"brian2 cython N={n}: fresh process, warm cache, {args.repeats} run(s)")
    total, recs = run_child(dict(base, duration_ms=args.duration_ms, repeats=args.repeats), 1,
                            args.timeout)
    sims = [r["sim_s"] for r in recs]
    return _record("brian2", "cython", n, 1, args, total, recs, sims)


def measure_standalone(n: int, args, workdir: Path) -> tuple[dict, Path]:
    directory = workdir / f"standalone_{n}"
    shutil.rmtree(directory, ignore_errors=True)
    cfg = dict(engine="brian2", target="cpp_standalone", n=n, duration_ms=args.duration_ms,
               seed=0, batch_size=1, threads=1, repeats=1,
               options=dict(brian2_directory=str(directory), clean=False))
    log(f"brian2 standalone N={n}: fresh process (code generation + compilation + run)")
    total, recs = run_child(cfg, 1, args.timeout)
    sims = [recs[0]["sim_s"]]
    check = None
    for k in range(args.repeats - 1):
        log(f"brian2 standalone N={n}: rerun {k + 1} of the compiled binary")
        rr = rerun_standalone(directory, n, 0)
        sims.append(rr["sim_s"])
        check = rr["spikes_exc"] == recs[0]["spikes_exc"][0]
    return _record("brian2", "cpp_standalone", n, 1, args, total, recs, sims,
                   {"rerun_reproduces_spikes": check}), directory


def measure_trials(args, standalone_dir: Path | None, workdir: Path) -> list[dict]:
    """``--repeats`` rounds, each: one batched torch run per configuration (fresh process),
    then the ``trials`` Brian2 standalone reruns; the minimum over rounds of each."""
    n, trials = 4000, args.trials
    with_b2 = "standalone" in args.engines
    if with_b2 and (standalone_dir is None or not (standalone_dir / "main").exists()):
        _, standalone_dir = measure_standalone(n, argparse.Namespace(**{**vars(args),
                                                                        "repeats": 1}), workdir)
    once = argparse.Namespace(**{**vars(args), "repeats": 1})
    torch_rounds: dict[str, list[dict]] = {config: [] for config in args.torch_configs}
    b2_rounds: list[list[dict]] = []
    for k in range(args.repeats):
        for config in args.torch_configs:
            torch_rounds[config].append(measure_torch(n, once, config, batch=trials))
        if with_b2:
            log(f"brian2 standalone N={n}: {trials} reruns of the compiled binary, seeds "
                f"0..{trials - 1} (round {k + 1} of {args.repeats})")
            b2_rounds.append([rerun_standalone(standalone_dir, n, seed)
                              for seed in range(trials)])
    torch_recs = []
    for rounds in torch_rounds.values():
        rec = dict(min(rounds, key=lambda r: r["sim_s"]))
        rec["sim_s_all"] = [r["sim_s"] for r in rounds]
        rec["total_s"] = min(r["total_s"] for r in rounds)
        torch_recs.append(rec)
    out: list[dict] = list(torch_recs)
    if not with_b2:
        return out
    sums = [sum(r["sim_s"] for r in runs) for runs in b2_rounds]
    runs = b2_rounds[sums.index(min(sums))]
    sim = min(sums)
    proc = min(sum(r["process_s"] for r in rr) for rr in b2_rounds)
    n_exc = int(round(0.8 * n))
    rates = [r["spikes_exc"] / n_exc / (args.duration_ms / 1000.0) for r in runs]
    mean_out = torch_recs[0]["n_synapses"] / n
    spikes = sum(r["spikes_exc"] + r["spikes_inh"] for r in runs)
    b2 = dict(event="run", engine="brian2", target="cpp_standalone", n=n, batch_size=1,
              trials=trials, duration_ms=args.duration_ms, sim_s=round(sim, 4),
              sim_s_all=[round(x, 4) for x in sums],
              process_s=round(proc, 3), rate_exc_hz=round(sum(rates) / trials, 3),
              spikes=spikes, events_per_s=round(spikes * mean_out / sim),
              threads=1, loadavg=loadavg())
    out.append(b2)
    thr_b2 = trials * args.duration_ms / 1000.0 / sim
    for rec in torch_recs:
        sim_t = rec["sim_s"]
        thr_torch = trials * args.duration_ms / 1000.0 / sim_t
        out.append(dict(
            event="trials", config=rec["config"], n=n, trials=trials,
            duration_ms=args.duration_ms, torch_batched_sim_s=sim_t,
            torch_batched_total_s=rec["total_s"], brian2_standalone_sim_s_sum=round(sim, 4),
            brian2_standalone_process_s_sum=round(proc, 3),
            throughput_torch_trial_s_per_s=round(thr_torch, 3),
            throughput_brian2_trial_s_per_s=round(thr_b2, 3),
            throughput_ratio=round(thr_torch / thr_b2, 3),
            throughput_ratio_incl_process=round(proc / rec["total_s"], 3),
            rate_exc_hz_torch=rec["rate_exc_hz"], rate_exc_hz_brian2=b2["rate_exc_hz"],
            threads=args.threads, loadavg=loadavg()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 16000, 64000])
    parser.add_argument("--duration-ms", type=float, default=1000.0)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--trials", type=int, default=32,
                        help="batched trials of N = 4,000 (0 to skip)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="simulation-only runs per engine and N (the minimum is reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--torch-configs", type=json.loads,
                        default={"eager": {}, "compile": {"compile": True}},
                        help="JSON dict: torch configuration name -> engine options")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per child process (s)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where Brian2 standalone projects go (a temporary directory)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke check: N = 4,000, 0.2 s, 4 trials, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.duration_ms, args.trials, args.repeats = [4000], 200.0, 4, 1
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="spikebridge_coba_"))
    workdir.mkdir(parents=True, exist_ok=True)

    import brian2
    import numpy
    import torch

    def emit(rec: dict) -> None:
        print(json.dumps(rec), flush=True)

    emit(dict(event="setup", python=platform.python_version(), torch=torch.__version__,
              brian2=brian2.__version__, numpy=numpy.__version__, cpu=platform.processor()
              or platform.machine(), cpus=os.cpu_count(), threads=args.threads,
              sizes=args.sizes, duration_ms=args.duration_ms, engines=args.engines,
              repeats=args.repeats, trials=args.trials, torch_configs=args.torch_configs,
              loadavg=loadavg()))
    results: dict[tuple[str, int], dict] = {}
    torch_runs: dict[tuple[str, int], dict] = {}
    standalone_4k = None
    trial_summaries: list[dict] = []
    try:
        for n in args.sizes:
            if "torch" in args.engines:
                for config in args.torch_configs:
                    torch_runs[config, n] = rec = measure_torch(n, args, config)
                    emit(rec)
            if "standalone" in args.engines:
                rec, directory = measure_standalone(n, args, workdir)
                results["standalone", n] = rec
                emit(rec)
                if n == 4000:
                    standalone_4k = directory
                else:
                    shutil.rmtree(directory, ignore_errors=True)
            if "cython" in args.engines:
                results["cython", n] = rec = measure_cython(n, args)
                emit(rec)
            s, c = results.get(("standalone", n)), results.get(("cython", n))
            for config in args.torch_configs:
                t = torch_runs.get((config, n))
                if not (t and (s or c)):
                    continue
                emit(dict(
                    event="ratio", n=n, config=config,
                    sim_torch_over_standalone=round(t["sim_s"] / s["sim_s"], 3) if s else None,
                    sim_torch_over_cython=round(t["sim_s"] / c["sim_s"], 3) if c else None,
                    total_torch_over_cython_warm=(round(t["total_s"] / c["total_excl_torch_s"],
                                                        3) if c else None),
                    events_per_s_torch=t["events_per_s"],
                    events_per_s_standalone=s["events_per_s"] if s else None,
                    rate_exc_hz=dict(torch=t["rate_exc_hz"],
                                     standalone=s["rate_exc_hz"] if s else None,
                                     cython=c["rate_exc_hz"] if c else None),
                    loadavg=loadavg()))
        if args.trials and "torch" in args.engines:
            for rec in measure_trials(args, standalone_4k, workdir):
                emit(rec)
                if rec["event"] == "trials":
                    trial_summaries.append(rec)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    # each target with the best torch configuration (named), all configurations listed
    targets: dict[str, Any] = {}

    def best(key: str, values: dict[str, float], target: str, ok) -> None:
        if values:
            config = min(values, key=values.get) if target.startswith("<") else \
                max(values, key=values.get)
            targets[key] = dict(value=round(values[config], 3), config=config, target=target,
                                met=bool(ok(values[config])),
                                all={k: round(v, 3) for k, v in values.items()})

    for n in (16000, 64000):
        s = results.get(("standalone", n))
        if s:
            best(f"sim_torch_over_standalone_{n}",
                 {cf: torch_runs[cf, n]["sim_s"] / s["sim_s"] for cf in args.torch_configs
                  if (cf, n) in torch_runs}, "<= 1.0", lambda r: r <= 1.0)
    c = results.get(("cython", 4000))
    if c:
        best("total_torch_over_cython_warm_4000",
             {cf: torch_runs[cf, 4000]["total_s"] / c["total_excl_torch_s"]
              for cf in args.torch_configs if (cf, 4000) in torch_runs},
             "<= 0.3", lambda r: r <= 0.3)
    best(f"throughput_{args.trials}_trials_torch_over_standalone",
         {rec["config"]: rec["throughput_ratio"] for rec in trial_summaries}, ">= 5",
         lambda r: r >= 5)
    emit(dict(event="targets", duration_ms=args.duration_ms, **targets, loadavg=loadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
