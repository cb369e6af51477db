"""Every experiment, registered in one place.

An experiment is a module with a pydantic configuration class (its defaults are the full
configuration), the overrides that make the ``--quick`` configuration, and a
``run(config, ctx) -> RunOutput`` function built from library calls.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from experiments.run_record import RunContext

__all__ = ["ExperimentConfig", "RunOutput", "Experiment", "EXPERIMENTS", "get_experiment"]


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


def _experiments() -> dict[str, Experiment]:
    from experiments import backprop

    found = [backprop.EXPERIMENT]
    return {experiment.name: experiment for experiment in found}


EXPERIMENTS: dict[str, Experiment] = _experiments()


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; a ``KeyError`` lists the valid names otherwise."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        valid = ", ".join(sorted(EXPERIMENTS))
        raise KeyError(f"unknown experiment {name!r}; valid experiments: {valid}") from None
