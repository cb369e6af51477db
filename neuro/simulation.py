"""The single entry point: :func:`simulate` a :class:`~neuro.network.Network` on an engine."""

from __future__ import annotations

from typing import Literal

import torch

from neuro.network import Connectome, Network
from neuro.records import SimulationResult

__all__ = ["simulate"]


def simulate(
    network: Network,
    duration_ms: float,
    engine: Literal["torch", "brian2"] = "torch",
    *,
    batch_size: int = 1,
    seed: int = 0,
    device: str = "cpu",
    dtype: torch.dtype | str = torch.float32,
    brian2_target: Literal["cython", "numpy", "cpp_standalone"] = "cython",
    progress: bool = False,
    connectome: Connectome | None = None,
    timings: dict | None = None,
    **engine_options,
) -> SimulationResult:
    """Simulate ``network`` for ``duration_ms`` (ms) and return the recorded results.

    Parameters
    ----------
    network : the validated :class:`~neuro.network.Network` (it carries ``dt_ms``).
    duration_ms : simulated time in ms, rounded to a whole number of steps.
    engine : ``"torch"`` (vectorised, batched, CPU or CUDA) or ``"brian2"``.
    batch_size : independent trials ``B`` sharing the connectome (torch only; Brian2 needs 1 --
        run several seeds as separate calls). Trial ``b`` uses seed ``seed + b``.
    seed : seed of the initial state and of the Poisson inputs (the connectome is seeded by
        ``network.seed``).
    device, dtype : torch device and float type (torch engine; Brian2 computes in float64).
    brian2_target : ``"cython"`` / ``"numpy"`` (runtime code generation) or
        ``"cpp_standalone"`` (compiled C++ project; built in a temporary directory unless
        ``brian2_directory=...`` is given).
    progress : show progress.
    connectome : reuse a prebuilt ``network.build()`` (both engines accept it).
    timings : optional dict filled with the time spent building, setting up and running (s).
    **engine_options : passed to the engine (torch: ``propagation``, ``compile``,
        ``merge_populations``, ``fused``, ``poisson_sampler``; brian2: ``brian2_directory``,
        ``clean``; both, for plastic projections and adaptive thresholds: ``learning=False``
        freezes the weights and the thresholds' ``theta``, ``reward=`` feeds R-STDP, see
        :mod:`neuro.engines.torch_plasticity`). Final plastic weights are in
        ``SimulationResult.weights``, final adaptive-threshold offsets in
        ``SimulationResult.theta``.

    Returns
    -------
    SimulationResult
        ``engine`` is ``"torch"`` or ``"brian2:<target>"``; ``wall_time_s`` is the time of the
        simulation loop itself (for C++ standalone, Brian2's own main-loop timer).
    """
    if engine == "torch":
        from neuro.engines.torch_engine import run_torch

        return run_torch(network, duration_ms, batch_size=batch_size, seed=seed, device=device,
                         dtype=dtype, connectome=connectome, progress=progress,
                         timings=timings, **engine_options)
    if engine == "brian2":
        if batch_size != 1:
            raise ValueError(
                f"The Brian2 engine simulates one trial per run (batch_size=1, got {batch_size});"
                " run several seeds as separate simulate() calls."
            )
        if device != "cpu":
            raise ValueError("The Brian2 engine runs on the CPU; use device='cpu'.")
        from neuro.engines.brian2_engine import run_brian2

        return run_brian2(network, duration_ms, seed=seed, target=brian2_target,
                          connectome=connectome, progress=progress, timings=timings,
                          **engine_options)
    raise ValueError(f"Unknown engine {engine!r}; use 'torch' or 'brian2'.")
