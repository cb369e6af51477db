"""The `spikebridge` command: list, run, show, errors, determinism, kill-and-resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from experiments.cli import app
from experiments.registry import all_experiments

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _without_times(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if "time" not in k}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "backprop-quick"
    result = _run("run", "backprop", "--quick", "--seed", "3", "--out", str(out), "--no-progress")
    assert result.exit_code == 0, result.output
    return out


def test_list_names_every_experiment_with_a_description():
    result = _run("list")
    assert result.exit_code == 0
    for name, experiment in all_experiments().items():
        assert name in result.output
        assert experiment.description in result.output


def test_quick_backprop_writes_a_complete_run_folder(quick_run: Path):
    for name in ("config.json", "metrics.json", "report.md", "learning_curves.png",
                 "confusion_matrix.png", "model.pt", "checkpoint.pt"):
        assert (quick_run / name).is_file(), name
    assert not list(quick_run.glob("*.tmp")), "temporary files left behind"
    config = json.loads((quick_run / "config.json").read_text())
    assert config["seed"] == 3 and config["device"] == "cpu" and config["quick"] is True
    assert config["config"]["epochs"] == 15
    assert config["versions"]["torch"] == torch.__version__
    metrics = _metrics(quick_run)
    assert metrics["test_accuracy"] >= 0.95, metrics["test_accuracy"]
    assert len(metrics["history"]["val_accuracy"]) == metrics["epochs_run"]
    report = (quick_run / "report.md").read_text()
    assert "![learning curves](learning_curves.png)" in report
    assert f"{100 * metrics['test_accuracy']:.2f}%" in report
    png = (quick_run / "learning_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_show_prints_report_and_metrics(quick_run: Path):
    result = _run("show", str(quick_run))
    assert result.exit_code == 0
    assert "# backprop" in result.output and '"test_accuracy"' in result.output


def test_same_seed_gives_the_same_metrics(quick_run: Path, tmp_path: Path):
    out = tmp_path / "again"
    result = _run("run", "backprop", "--quick", "--seed", "3", "--out", str(out), "--no-progress")
    assert result.exit_code == 0, result.output
    assert _without_times(_metrics(out)) == _without_times(_metrics(quick_run))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "nosuch"], ["unknown experiment 'nosuch'", "backprop"]),
        (["run", "backprop", "--set", "nosuch=1"], ["unknown setting 'nosuch'", "epochs", "lr"]),
        (["run", "backprop", "--set", "epochs=many"], ["'epochs'", "int"]),
        (["run", "backprop", "--set", "dataset=cifar"], ["'dataset'", "digits, fashion-mnist"]),
        (["run", "backprop", "--set", "novalue"], ["key=value"]),
        (["run", "backprop", "--device", "tpu"], ["valid devices: cpu, cuda"]),
        (["show", "/nonexistent/run"], ["not a run folder"]),
    ],
)
def test_bad_input_gives_a_one_line_error(args, expected, tmp_path):
    result = _run(*args, *(["--out", str(tmp_path / "r")] if args[0] == "run" else []))
    assert result.exit_code == 2
    message = result.output.strip()
    assert message.startswith("error: ") and "\n" not in message, message
    assert "Traceback" not in message
    for part in expected:
        assert part in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_says_so(tmp_path):
    result = _run("run", "backprop", "--quick", "--device", "cuda", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert "no CUDA GPU" in result.output and "--device cpu" in result.output


def test_resume_refuses_a_finished_run(quick_run: Path):
    result = _run("run", "backprop", "--resume", str(quick_run))
    assert result.exit_code == 2 and "already finished" in result.output


def test_killed_run_resumes_to_the_same_metrics(tmp_path: Path):
    """SIGKILL a run after its first checkpoint; resuming gives the uninterrupted result."""
    settings = ["--set", "epochs=40", "--set", "patience=null", "--set", "hidden=32"]
    reference = tmp_path / "reference"
    result = _run("run", "backprop", "--quick", "--out", str(reference), "--no-progress", *settings)
    assert result.exit_code == 0, result.output

    killed = tmp_path / "killed"
    command = [sys.executable, "-c", "from experiments.cli import main; main()", "run", "backprop",
               "--quick", "--out", str(killed), "--no-progress", *settings]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").exists():
        assert process.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "metrics.json").exists(), "the run finished before it could be killed"

    result = _run("run", "backprop", "--resume", str(killed), "--no-progress")
    assert result.exit_code == 0, result.output
    assert _without_times(_metrics(killed)) == _without_times(_metrics(reference))
