"""The ``spikebridge`` command: list, run and show experiments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from experiments.registry import all_experiments
from experiments.runner import UsageError, run_experiment

__all__ = ["app", "main"]

app = typer.Typer(
    help="spikebridge: spiking neurons and artificial neural networks, side by side.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command("list")
def list_experiments() -> None:
    """List every experiment with a one-line description."""
    experiments = all_experiments()
    width = max(len(name) for name in experiments)
    for name, experiment in sorted(experiments.items()):
        typer.echo(f"{name:<{width}}  {experiment.description}")


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="Experiment name (see `spikebridge list`).")],
    quick: Annotated[bool, typer.Option("--quick", help="Reduced configuration.")] = False,
    seed: Annotated[int, typer.Option(help="Seed for everything random.")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/NAME-...).")] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a setting: --set key=value (repeatable)."),
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue an interrupted run from its last checkpoint.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Run an experiment; it writes config.json, metrics.json, plots and report.md."""
    try:
        run_dir = run_experiment(
            name, quick=quick, seed=seed, device=device, out=out, settings=settings or [],
            resume=resume, progress=progress,
        )
    except UsageError as error:
        _fail(str(error))
    typer.echo(f"finished: {run_dir}")
    typer.echo(f"report: {run_dir / 'report.md'}")


@app.command("show")
def show(run_dir: Annotated[Path, typer.Argument(help="A run folder.")]) -> None:
    """Print a run's report and metrics."""
    report, metrics = run_dir / "report.md", run_dir / "metrics.json"
    if not (run_dir / "config.json").is_file():
        _fail(f"{run_dir} is not a run folder (no config.json)")
    if not metrics.is_file():
        _fail(f"{run_dir} has not finished (no metrics.json); continue it with "
              f"`spikebridge run NAME --resume {run_dir}`")
    typer.echo(report.read_text(encoding="utf-8"))
    typer.echo("## metrics.json")
    typer.echo(json.dumps(json.loads(metrics.read_text(encoding="utf-8")), indent=2))


def main() -> None:
    """Entry point of the ``spikebridge`` console script."""
    app()
