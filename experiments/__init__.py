"""``experiments``: named, reproducible experiments and the ``spikebridge`` command.

Each experiment module holds a frozen configuration, its ``--quick`` overrides and a
``run(config, ctx)`` built from ``neuro``, ``ann`` and ``bridge`` calls; :mod:`.registry` lists
them in one place and :mod:`.runner` writes each run's folder. Nothing imports ``experiments``.
"""

from experiments.registry import Experiment, ExperimentConfig, RunOutput, all_experiments
from experiments.runner import UsageError, run_experiment

__all__ = [
    "Experiment",
    "ExperimentConfig",
    "RunOutput",
    "UsageError",
    "all_experiments",
    "run_experiment",
]
