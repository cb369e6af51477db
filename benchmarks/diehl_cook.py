"""Benchmark: training the Diehl & Cook (2015) network, torch engine against Brian2.

The paper's network (:data:`neuro.diehl_cook.DIEHL_COOK_2015_PARAMS`: 784 inputs, 400
excitatory and 400 inhibitory neurons, 350 ms presentations of 0.5 ms steps, STDP, adaptive
thresholds, weight normalisation, the intensity loop) is trained on the same ``--samples``
Fashion-MNIST training images (``ann.datasets.load_fashion_mnist``; random images, noted in the
``setup`` line, when the data set is not installed) from the same initial weights, in one
process, one engine after the other:

* **torch** (:func:`neuro.diehl_cook.train_diehl_cook`, float32, ``--threads`` threads, default
  1) with batch size 1 (the paper's algorithm) and each ``--batches`` size (copies sharing the
  weights: a different algorithm, see :mod:`neuro.diehl_cook.torch_network`), on every
  ``--devices`` entry (``cuda`` is reported as not measured when no CUDA device exists). A
  one-sample warm-up at the same batch size runs first (CUDA context, allocator); ``sim_s``
  is the training call, ``total_s`` adds the warm-up and moving the images to the device;
* **Brian2 C++ standalone** (:func:`neuro.diehl_cook.brian2_network.run_diehl_cook_brian2`,
  serial, float64): the whole training as one compiled run, with the intensity loop, the rest
  and the normalisation as code of the network at each presentation boundary (see that
  module's docstring for how this differs from the torch loop: the number of presentations is
  fixed to ``--samples``, so an example shown again leaves fewer examples finished;
  ``examples_done`` says how many). ``sim_s`` is Brian2's main-loop timer, ``total_s`` the
  whole call (building the objects, code generation, compilation, the run, reading back);
* **Brian2 runtime (Cython)** on ``--cython-samples`` examples (0: skip): ``sim_s`` is
  ``Network.run``; ``compile_s`` a run of no steps before it (code generation, and Cython
  compilation unless the code objects are in the cache ``~/.cython/brian_extensions`` from an
  earlier invocation), which ``total_s`` includes.

One JSON object per line on stdout (progress on stderr), ``event``:

* ``setup``: versions, CPU, threads, data source, samples, load average;
* ``run``: one engine and configuration: ``sim_s``, ``total_s``, ``sim_per_sample_s``,
  ``sim_per_presentation_s``, ``epoch_s`` (60,000 samples at ``sim_per_sample_s``) and
  ``epoch_total_s`` (that plus the one-off setup/compilation), ``presentations``,
  ``exc_spikes_per_sample`` (from the threshold increments, ``sum(theta - decayed theta_0) /
  theta_plus``, the same estimate on both engines; Brian2 also gives the counted value),
  ``loadavg``;
* ``ratio``: torch / Brian2 standalone, seconds per sample (simulation), per torch
  configuration;
* ``targets``: the issue's targets (torch CPU <= 0.33 x Brian2 standalone per sample; torch on
  an H100 <= 0.03 x) with the best configuration of each device, all configurations listed,
  and ``met``; a device without a measurement says ``measured: false``.

Run from the repository root::

    python benchmarks/diehl_cook.py                  # 100 samples, batches 1/16/64, Cython 5
    python benchmarks/diehl_cook.py --quick          # smoke check: 8 samples, batches 1/4
    python benchmarks/diehl_cook.py --devices cpu cuda --batches 16 64 256
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
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from any directory
    sys.path.insert(0, str(REPO))

EPOCH = 60_000
TARGET_CPU = 0.33
TARGET_GPU = 0.03


def log(msg: str) -> None:
    print(f"[diehl_cook {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return []


def load_images(n: int, seed: int):
    """``n`` Fashion-MNIST training images ``(n, 784)`` float32 in [0, 1], or random ones."""
    import torch

    from ann.datasets import DatasetError, load_fashion_mnist

    try:
        data = load_fashion_mnist(train_limit=n, test_limit=1, val_size=0, seed=seed)
        return data.train.images.reshape(-1, 784)[:n], "fashion-mnist (train)"
    except (DatasetError, OSError) as err:
        log(f"Fashion-MNIST not available ({err}); using random images")
        gen = torch.Generator().manual_seed(seed)
        # about Fashion-MNIST's mean intensity (0.29): uniform [0, 1] pixels, 60% of them dark
        img = torch.rand((n, 784), generator=gen)
        img[torch.rand((n, 784), generator=gen) < 0.6] = 0.0
        return img, "random images (Fashion-MNIST not installed)"


def _spikes_from_theta(theta, params, presentations: int) -> float:
    """Excitatory spikes in all, from the threshold increments: :math:`\theta` minus what is left
    of ``theta_init`` after ``presentations`` presentations and rests (that decay is worth
    several spikes per sample; the decay of the increments themselves is negligible)."""
    import math

    import numpy as np

    elapsed = presentations * (params.t_present_ms + params.t_rest_ms)
    baseline = params.theta_init * math.exp(-elapsed / params.tau_theta_ms)
    gain = np.asarray(theta, dtype=np.float64) - baseline
    return float(gain.sum() / params.theta_plus)


def _record(engine: str, target: str, n_samples: int, examples: int, presentations: int,
            sim_s: float, total_s: float, spikes: float, extra: dict[str, Any]) -> dict:
    per_sample = sim_s / examples
    return dict(
        event="run", engine=engine, target=target, n_samples=n_samples, examples_done=examples,
        presentations=presentations, sim_s=round(sim_s, 4), total_s=round(total_s, 3),
        sim_per_sample_s=round(per_sample, 5),
        sim_per_presentation_s=round(sim_s / presentations, 5),
        epoch_s=round(per_sample * EPOCH, 1),
        epoch_total_s=round(per_sample * EPOCH + (total_s - sim_s), 1),
        exc_spikes_per_sample=round(spikes / examples, 2), **extra, loadavg=loadavg())


def measure_torch(images, params, device: str, batch: int, threads: int) -> dict:
    import torch

    from neuro.diehl_cook import train_diehl_cook

    n = images.shape[0]
    log(f"torch {device} batch {batch}: {n} samples")
    t0 = time.perf_counter()
    data = images.to(device)
    warm = train_diehl_cook(data[:batch], params, batch_size=batch, seed=1, device=device,
                            progress=False, shuffle=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    res = train_diehl_cook(data, params, batch_size=batch, seed=0, device=device,
                           progress=False, shuffle=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t2 = time.perf_counter()
    spikes = _spikes_from_theta(res.theta.double().cpu().numpy(), params, res.presentations)
    return _record("torch", device, n, res.samples_seen, res.presentations, res.wall_time_s,
                   t2 - t0, spikes,
                   dict(batch_size=batch, threads=threads, dtype="float32",
                        warmup_s=round(t1 - t0, 3), config=f"{device}-b{batch}",
                        warmup_presentations=warm.presentations))


def measure_brian2(images, params, target: str, n: int, workdir: Path) -> dict:
    import numpy as np

    from neuro.diehl_cook import DiehlCookNetwork
    from neuro.diehl_cook.brian2_network import run_diehl_cook_brian2

    net = DiehlCookNetwork.create(params, seed=0)  # torch's initial weights and theta
    directory = None
    if target == "cpp_standalone":
        directory = workdir / "standalone"
        shutil.rmtree(directory, ignore_errors=True)
    log(f"brian2 {target}: {n} presentations (code generation and compilation included)")
    t0 = time.perf_counter()
    run = run_diehl_cook_brian2(net.weights.double(), net.theta.double(), params,
                                images=images[:n], learning=True, n_presentations=n,
                                target=target, brian2_directory=None if directory is None
                                else str(directory))
    total = time.perf_counter() - t0
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
    examples = max(run.examples_done, 1)
    extra = dict(batch_size=1, threads=1, dtype="float64", config=f"brian2-{target}",
                 setup_s=round(run.timings["setup_s"], 3),
                 compile_s=round(run.timings["compile_s"], 3),
                 exc_spikes_per_sample_counted=round(float(run.counts.sum()) / examples, 2),
                 retries=int(np.sum(run.intensity > run.intensity.min())))
    return _record("brian2", target, n, examples, n, run.timings["run_s"], total,
                   _spikes_from_theta(run.theta, params, n), extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100,
                        help="training samples per configuration (default 100)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64],
                        help="torch batch sizes (default 1 16 64)")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"],
                        help="torch devices (default cpu cuda; cuda is skipped without CUDA)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--cython-samples", type=int, default=5,
                        help="samples for Brian2 runtime (Cython); 0 skips it (default 5)")
    parser.add_argument("--no-standalone", action="store_true",
                        help="skip Brian2 C++ standalone")
    parser.add_argument("--seed", type=int, default=0, help="image subset seed")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the standalone project goes (a temporary directory)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke check: 8 samples, batches 1 and 4, no Cython")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.batches, args.cython_samples = 8, [1, 4], 0
    if args.samples < max(args.batches):
        parser.error(f"--samples ({args.samples}) must be at least the largest batch "
                     f"({max(args.batches)})")

    import brian2
    import numpy
    import torch

    from neuro.diehl_cook import DIEHL_COOK_2015_PARAMS

    torch.set_num_threads(args.threads)
    params = DIEHL_COOK_2015_PARAMS
    images, source = load_images(args.samples, args.seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="spikebridge_diehl_cook_"))
    workdir.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()

    def emit(rec: dict) -> None:
        print(json.dumps(rec), flush=True)

    emit(dict(event="setup", python=platform.python_version(), torch=torch.__version__,
              brian2=brian2.__version__, numpy=numpy.__version__,
              cpu=platform.processor() or platform.machine(), cpus=os.cpu_count(),
              threads=args.threads, cuda=torch.cuda.get_device_name(0) if cuda else None,
              data=source, samples=args.samples, batches=args.batches, devices=args.devices,
              cython_samples=args.cython_samples, n_input=params.n_input, n_exc=params.n_exc,
              dt_ms=params.dt_ms, t_present_ms=params.t_present_ms, loadavg=loadavg()))

    torch_runs: dict[str, dict] = {}
    brian2_runs: dict[str, dict] = {}
    try:
        for device in args.devices:
            if device.startswith("cuda") and not cuda:
                emit(dict(event="run", engine="torch", target=device, measured=False,
                          reason="no CUDA device on this machine", loadavg=loadavg()))
                continue
            for batch in args.batches:
                rec = measure_torch(images, params, device, batch, args.threads)
                torch_runs[rec["config"]] = rec
                emit(rec)
        if not args.no_standalone:
            brian2_runs["cpp_standalone"] = rec = measure_brian2(
                images, params, "cpp_standalone", args.samples, workdir)
            emit(rec)
        if args.cython_samples > 0:
            brian2_runs["cython"] = rec = measure_brian2(
                images, params, "cython", min(args.cython_samples, args.samples), workdir)
            emit(rec)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    standalone = brian2_runs.get("cpp_standalone")
    ratios: dict[str, float] = {}
    if standalone:
        for config, rec in torch_runs.items():
            ratios[config] = rec["sim_per_sample_s"] / standalone["sim_per_sample_s"]
            emit(dict(event="ratio", config=config, device=rec["target"],
                      batch_size=rec["batch_size"],
                      sim_per_sample_torch_over_standalone=round(ratios[config], 4),
                      sim_per_presentation_torch_over_standalone=round(
                          rec["sim_per_presentation_s"] / standalone["sim_per_presentation_s"], 4),
                      torch_sim_per_sample_s=rec["sim_per_sample_s"],
                      standalone_sim_per_sample_s=standalone["sim_per_sample_s"],
                      loadavg=loadavg()))

    def target(device_prefix: str, limit: float, gpu: bool) -> dict:
        mine = {c: r for c, r in ratios.items() if c.startswith(device_prefix)}
        if not mine:
            reason = ("no Brian2 standalone measurement" if not standalone and torch_runs
                      else "no CUDA device on this machine" if gpu and not cuda
                      else f"torch not run on {device_prefix}")
            return dict(measured=False, target=f"<= {limit}", reason=reason)
        best = min(mine, key=mine.get)
        out = dict(measured=True, value=round(mine[best], 4), config=best, target=f"<= {limit}",
                   met=bool(mine[best] <= limit), all={c: round(v, 4) for c, v in mine.items()})
        if gpu:
            out["device_name"] = torch.cuda.get_device_name(0)
            out["note"] = "the target is for an H100; compare on one"
        return out

    emit(dict(event="targets", quantity="torch / Brian2 standalone, seconds per training sample",
              cpu=target("cpu", TARGET_CPU, False), gpu=target("cuda", TARGET_GPU, True),
              samples=args.samples, loadavg=loadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
