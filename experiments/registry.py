"""Every experiment, registered in one place.

An experiment is a module with a pydantic configuration class (its defaults are the full
configuration), the overrides that make the ``--quick`` configuration, and a
``run(config, ctx) -> RunOutput`` function built from library calls.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from experiments.run_record import RunContext

__all__ = ["ExperimentConfig", "RunOutput", "Experiment", "all_experiments", "get_experiment"]


class ExperimentConfig(BaseModel):
    """Base of every experiment's configuration: frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _scalar_to_tuple(cls, values: Any) -> Any:
        """Let ``--set hidden=32`` mean ``hidden=(32,)`` for tuple-valued settings."""
        if not isinstance(values, dict):
            return values
        out = dict(values)
        for key, value in values.items():
            field = cls.model_fields.get(key)
            if field is not None and typing.get_origin(field.annotation) is tuple:
                if not isinstance(value, list | tuple):
                    out[key] = (value,)
        return out


@dataclass(frozen=True)
class RunOutput:
    """What an experiment returns: metrics (JSON-able) and the Markdown body of its report."""

    metrics: dict[str, Any]
    report: str


@dataclass(frozen=True)
class Experiment:
    """A named, reproducible experiment."""

    name: str
    description: str
    config_type: type[ExperimentConfig]
    run: Callable[[Any, RunContext], RunOutput]
    quick: dict[str, Any] = field(default_factory=dict)


@functools.cache
def all_experiments() -> dict[str, Experiment]:
    """Every experiment by name. The list below is the one place experiments are registered;
    modules are imported on first use because each experiment module imports this one."""
    from experiments import (
        backprop,
        bcm_selectivity,
        coba,
        compare,
        conversion,
        neuron_zoo,
        oja_pca,
        rstdp,
        song_abbott,
        stdp_frequency,
        stdp_window,
    )

    found = [
        backprop.EXPERIMENT,
        neuron_zoo.EXPERIMENT,
        coba.EXPERIMENT,
        stdp_window.EXPERIMENT,
        stdp_frequency.EXPERIMENT,
        oja_pca.EXPERIMENT,
        bcm_selectivity.EXPERIMENT,
        song_abbott.EXPERIMENT,
        rstdp.EXPERIMENT,
        conversion.EXPERIMENT,
        compare.EXPERIMENT,
    ]
    return {experiment.name: experiment for experiment in found}


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; a ``KeyError`` lists the valid names otherwise."""
    try:
        return all_experiments()[name]
    except KeyError:
        valid = ", ".join(sorted(all_experiments()))
        raise KeyError(f"unknown experiment {name!r}; valid experiments: {valid}") from None
