"""Run an experiment into its own folder, fresh or resumed.

This is what the CLI calls; tests call it directly too. User mistakes raise
:class:`UsageError` with a one-line message that lists the valid choices.
"""

from __future__ import annotations

import json
import random
import shlex
import sys
import time
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import torch

from experiments.registry import Experiment, ExperimentConfig, get_experiment
from experiments.run_record import (
    RunContext,
    atomic_write_text,
    package_versions,
    read_json,
    write_json,
)

__all__ = ["UsageError", "parse_settings", "make_config", "run_experiment", "seed_everything"]


class UsageError(ValueError):
    """A mistake in how an experiment was asked for; the message says how to fix it."""


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds code that uses the global generator
    torch.manual_seed(seed)


def _parse_value(text: str) -> Any:
    """A ``--set`` value: JSON if it parses (numbers, true/false, null, lists), a comma list
    (``128,64``), or else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if "," in text:
            return [part.strip() for part in text.split(",")]
        return text


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["key=value", ...]`` into a dict of parsed values."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects key=value, got {pair!r}")
        settings[key.strip()] = _parse_value(value.strip())
    return settings


def _describe_field(config_type: type[ExperimentConfig], key: str) -> str:
    """The type of a config field, with its valid choices when it has a fixed set."""
    annotation = config_type.model_fields[key].annotation
    choices = [a for a in typing.get_args(annotation) if typing.get_origin(a) is typing.Literal]
    if typing.get_origin(annotation) is typing.Literal:
        choices = [annotation]
    if choices:
        values = [str(v) for literal in choices for v in typing.get_args(literal)]
        return "one of " + ", ".join(values)
    return str(annotation).replace("typing.", "")


def make_config(
    experiment: Experiment, settings: dict[str, Any], quick: bool = False
) -> ExperimentConfig:
    """Defaults, then the ``--quick`` overrides, then the user's settings; validated."""
    config_type = experiment.config_type
    valid = sorted(config_type.model_fields)
    for key in settings:
        if key not in config_type.model_fields:
            raise UsageError(
                f"unknown setting {key!r} for experiment {experiment.name}; "
                f"valid settings: {', '.join(valid)}"
            )
    values = {**(experiment.quick if quick else {}), **settings}
    try:
        return config_type(**values)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "?"
        if key not in values:  # a default rejected because of another setting
            raise UsageError(
                f"setting {key!r} of experiment {experiment.name}: {first['msg']}"
            ) from None
        expected = _describe_field(config_type, key) if key in config_type.model_fields else ""
        raise UsageError(
            f"invalid value {values[key]!r} for setting {key!r} of experiment "
            f"{experiment.name}: {first['msg']}" + (f"; expected {expected}" if expected else "")
        ) from None


def check_device(device: str) -> str:
    """Check that ``device`` can be used; say what to do otherwise."""
    if device not in ("cpu", "cuda"):
        raise UsageError(f"unknown device {device!r}; valid devices: cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            "--device cuda was asked for, but PyTorch sees no CUDA GPU on this machine "
            f"(torch {torch.__version__}); run with --device cpu"
        )
    return device


def _default_run_dir(name: str, seed: int, quick: bool) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{name}{'-quick' if quick else ''}-seed{seed}-{stamp}"


def _report_header(experiment: Experiment, record: dict[str, Any]) -> str:
    lines = [
        f"# {experiment.name}",
        "",
        experiment.description,
        "",
        f"- command: `{record['command']}`",
        f"- seed: {record['seed']}; device: {record['device']}; quick: {record['quick']}",
        f"- started: {record['started']}",
        "",
    ]
    return "\n".join(lines) + "\n"


def run_experiment(
    name: str,
    *,
    quick: bool = False,
    seed: int = 0,
    device: str = "cpu",
    out: str | Path | None = None,
    settings: list[str] | dict[str, Any] | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Run experiment ``name`` and return its run folder.

    With ``resume``, the configuration, seed and device are read back from that folder's
    ``config.json`` and the experiment continues from its last checkpoint.
    """
    experiment = _lookup(name)
    if resume is not None:
        if settings or out is not None:
            raise UsageError("--resume takes the settings and folder of the run it resumes; "
                             "drop --set/--out")
        run_dir = Path(resume)
        if not (run_dir / "config.json").is_file():
            raise UsageError(f"{run_dir} is not a run folder (no config.json); give the folder "
                             "of an interrupted run")
        record = read_json(run_dir / "config.json")
        if record["experiment"] != experiment.name:
            raise UsageError(f"{run_dir} holds a run of {record['experiment']!r}, not {name!r}")
        if (run_dir / "metrics.json").is_file():
            raise UsageError(f"{run_dir} has already finished (metrics.json exists); "
                             f"see it with: spikebridge show {run_dir}")
        config = make_config(experiment, record["config"], quick=False)
        seed, device, quick = record["seed"], record["device"], record["quick"]
        check_device(device)
    else:
        values = parse_settings(settings) if isinstance(settings, list) else dict(settings or {})
        config = make_config(experiment, values, quick=quick)
        check_device(device)
        run_dir = Path(out) if out is not None else _default_run_dir(name, seed, quick)
        if (run_dir / "config.json").exists():
            raise UsageError(f"{run_dir} already holds a run; choose another --out, or continue "
                             f"it with --resume {run_dir}")
        run_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "experiment": experiment.name,
            "config": config.model_dump(mode="json"),
            "seed": seed,
            "device": device,
            "quick": quick,
            "versions": package_versions(),
            "torch_threads": torch.get_num_threads(),
            "command": shlex.join(["spikebridge", *sys.argv[1:]]) if sys.argv[1:] else "",
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_json(run_dir / "config.json", record)

    seed_everything(seed)
    ctx = RunContext(run_dir=run_dir, seed=seed, device=device, quick=quick, progress=progress)
    start = time.perf_counter()
    output = experiment.run(config, ctx)
    metrics = {**output.metrics, "run_wall_time_s": time.perf_counter() - start}
    atomic_write_text(run_dir / "report.md", _report_header(experiment, record) + output.report)
    write_json(run_dir / "metrics.json", metrics)
    return run_dir


def _lookup(name: str) -> Experiment:
    try:
        return get_experiment(name)
    except KeyError as error:
        raise UsageError(error.args[0]) from None
