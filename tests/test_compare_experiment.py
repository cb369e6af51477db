"""The ``compare`` experiment: every learner gets a complete table row and its plots, the numbers
follow from the configuration (MACs, samples, labels), a resumed run skips finished learners,
and bad settings are refused with a message that says what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import experiments.compare as compare
from experiments.registry import get_experiment
from experiments.runner import UsageError, make_config, run_experiment

TINY = {
    "learners": ["backprop", "converted", "surrogate", "stdp", "hebbian"],
    "hidden": [32], "epochs": 8, "lr": 3e-3, "batch_size": 32,
    "n_calib": 500, "snn_T": 16, "T_max": 32,
    "surrogate_hidden": [32], "surrogate_T": 6, "surrogate_T_max": 12, "surrogate_epochs": 3,
    "surrogate_lr": 5e-3,
    "stdp_n_exc": 20, "stdp_epochs": 1, "stdp_samples": 64, "stdp_n_assign": 64,
    "stdp_curve_points": 2, "stdp_curve_images": 32, "stdp_ops_images": 8,
    "hebbian_units": 30, "hebbian_epochs": 20, "hebbian_readout_epochs": 20,
}
FIELDS = ("learner", "label", "setup", "device", "test_accuracy", "labels_used", "labels_note",
          "train_wall_time_s", "samples_seen", "inference_steps", "ops_per_inference",
          "ops_note", "samples_curve", "steps_curve")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("compare") / "tiny"
    return run_experiment("compare", out=out, settings=dict(TINY), progress=False)


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_compare_is_registered():
    experiment = get_experiment("compare")
    assert experiment.config_type is compare.CompareConfig
    config = make_config(experiment, {})
    assert config.dataset == "digits" and config.learners == tuple(compare.LEARNERS)


def test_tiny_run_writes_files_and_a_complete_table(tiny_run: Path):
    for name in ("config.json", "metrics.json", "report.md", "ann_model.pt",
                 "accuracy_vs_samples.png", "accuracy_vs_steps.png",
                 "receptive_fields_backprop.png", "receptive_fields_surrogate.png",
                 "receptive_fields_hebbian.png", "receptive_fields_stdp.png", "stdp_raster.png",
                 "checkpoint_backprop.pt", "checkpoint_surrogate.pt", "checkpoint_stdp.pt",
                 "stdp_progress.json", "checkpoint_hebbian/hebbian.pt"):
        assert (tiny_run / name).is_file(), name
    for png in tiny_run.glob("*.png"):
        assert png.read_bytes().startswith(b"\x89PNG"), png
    assert not list(tiny_run.glob("*.tmp"))
    metrics = _metrics(tiny_run)
    assert metrics["learner_order"] == TINY["learners"]
    learners = {name: metrics["learners"][name] for name in metrics["learner_order"]}
    for name, result in learners.items():
        assert (tiny_run / f"learner_{name}.json").is_file()
        for field in FIELDS:
            assert field in result, (name, field)
        assert 0 <= result["test_accuracy"] <= 1
        assert result["train_wall_time_s"] > 0 and result["ops_per_inference"] > 0
        curve = result["samples_curve"]
        assert len(curve["samples"]) == len(curve["val_accuracy"]) >= 1
        assert curve["samples"] == sorted(curve["samples"])

    report = (tiny_run / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| ")]
    assert table[0] == "| " + " | ".join(compare._COLUMNS) + " |"
    assert set(table[1].replace("|", "").split()) == {"---"}
    rows = table[2:2 + len(learners)]
    for row, (name, result) in zip(rows, learners.items(), strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == len(compare._COLUMNS) and all(cells), row
        assert cells[0] == compare.LEARNERS[name]
        assert cells[1] == f"{100 * result['test_accuracy']:.2f}%"
    for png in ("accuracy_vs_samples.png", "accuracy_vs_steps.png",
                "receptive_fields_hebbian.png", "receptive_fields_stdp.png", "stdp_raster.png"):
        assert f"]({png})" in report


def test_tiny_run_numbers_follow_from_the_configuration(tiny_run: Path):
    metrics = _metrics(tiny_run)
    learners = metrics["learners"]
    n_train, n_val = metrics["train_images"], metrics["val_images"]
    backprop, converted = learners["backprop"], learners["converted"]
    surrogate, hebbian = learners["surrogate"], learners["hebbian"]

    # Backprop on digits: a 32-unit MLP after 8 epochs is well above chance.
    assert backprop["test_accuracy"] >= 0.90, backprop["test_accuracy"]
    assert backprop["ops_per_inference"] == 64 * 32 + 32 * 10
    assert backprop["samples_seen"] == TINY["epochs"] * n_train
    assert backprop["labels_used"] == n_train and backprop["inference_steps"] == 1
    assert len(backprop["samples_curve"]["samples"]) == TINY["epochs"]

    # The converted SNN reaches the ANN at T = 16 within a few points, and its curve covers T_max.
    assert converted["test_accuracy"] >= backprop["test_accuracy"] - 0.05
    assert converted["inference_steps"] == TINY["snn_T"]
    assert len(converted["steps_curve"]["test_accuracy"]) == TINY["T_max"]
    assert converted["steps_curve"]["test_accuracy"][TINY["snn_T"] - 1] == \
        converted["test_accuracy"]
    assert converted["samples_seen"] == backprop["samples_seen"] + TINY["n_calib"]
    extra = converted["extra"]
    assert converted["ops_per_inference"] == pytest.approx(
        extra["synops_per_inference"] + extra["analog_macs_per_inference"])
    # Every pixel > 0 drives all 32 hidden units at each of the 16 steps (analog input).
    assert 0 < extra["analog_macs_per_inference"] <= 64 * 32 * TINY["snn_T"]

    assert surrogate["samples_seen"] == TINY["surrogate_epochs"] * n_train
    assert surrogate["inference_steps"] == TINY["surrogate_T"]
    assert len(surrogate["steps_curve"]["test_accuracy"]) == TINY["surrogate_T_max"]
    assert surrogate["extra"]["synops_per_inference"] > 0
    assert surrogate["test_accuracy"] >= 0.5

    # STDP: labels only for the assignment; synops = fan-out x spikes of each population.
    stdp = learners["stdp"]
    assert stdp["labels_used"] == TINY["stdp_n_assign"]
    assert stdp["labels_note"].startswith("0 for STDP learning")
    assert stdp["samples_seen"] == TINY["stdp_samples"] + TINY["stdp_n_assign"]
    assert stdp["inference_steps"] == 700  # 350 ms at dt = 0.5 ms
    spikes = stdp["extra"]
    n_exc = TINY["stdp_n_exc"]
    assert spikes["input_spikes_per_inference"] > 0
    assert stdp["ops_per_inference"] == pytest.approx(
        n_exc * spikes["input_spikes_per_inference"] + spikes["exc_spikes_per_inference"]
        + (n_exc - 1) * spikes["inh_spikes_per_inference"])
    assert spikes["presentations_per_inference"] >= 1
    # Two curve points: after 32 and 64 samples, each plus the 32 labelled assignment images.
    assert stdp["samples_curve"]["samples"] == [32 + 32, 64 + 32]
    # The input rate matches the paper's summed rate on MNIST: about 335 Hz on the digits.
    assert 300 < spikes["params"]["max_rate_hz"] < 370

    assert hebbian["ops_per_inference"] == 30 * 64 + 30 * 10
    assert hebbian["labels_used"] == n_train
    assert hebbian["labels_note"].startswith("0 for the Hebbian layer")
    batches = n_train // 20  # full minibatches of 20 (hebbian_batch_size)
    assert hebbian["extra"]["hebbian_samples_seen"] == TINY["hebbian_epochs"] * batches * 20
    assert hebbian["samples_seen"] == (hebbian["extra"]["hebbian_samples_seen"]
                                       + TINY["hebbian_readout_epochs"] * n_train)
    assert hebbian["test_accuracy"] >= 0.5
    assert f"+ {n_val:,} val" in hebbian["labels_note"]


def test_resume_skips_finished_learners(tmp_path, monkeypatch):
    settings = {"learners": ["backprop", "hebbian"], "hidden": [16], "epochs": 2,
                "hebbian_units": 10, "hebbian_epochs": 2, "hebbian_readout_epochs": 2}

    def interrupted(self):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(compare._Learners, "hebbian", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_experiment("compare", out=tmp_path / "run", settings=settings, progress=False)
    run_dir = tmp_path / "run"
    assert (run_dir / "learner_backprop.json").is_file()
    assert not (run_dir / "learner_hebbian.json").exists()
    assert not (run_dir / "metrics.json").exists()
    finished = (run_dir / "learner_backprop.json").read_text()

    def retrained(*args, **kwargs):
        raise AssertionError("the finished backprop learner was trained again")

    monkeypatch.setattr(compare, "train", retrained)
    run_experiment("compare", resume=run_dir, progress=False)
    assert (run_dir / "learner_backprop.json").read_text() == finished
    metrics = _metrics(run_dir)
    assert metrics["learner_order"] == ["backprop", "hebbian"]
    assert metrics["learners"]["backprop"] == json.loads(finished)


def test_interrupted_stdp_training_resumes_to_the_same_result(tmp_path, monkeypatch):
    settings = {key: TINY[key] for key in TINY if key.startswith("stdp_")}
    settings["learners"] = ["stdp"]
    whole = run_experiment("compare", out=tmp_path / "whole", settings=settings,
                           progress=False)
    evaluate = compare.evaluate_diehl_cook
    calls = []

    def stop_at_the_second_curve_point(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(compare, "evaluate_diehl_cook", stop_at_the_second_curve_point)
        with pytest.raises(KeyboardInterrupt):
            run_experiment("compare", out=tmp_path / "cut", settings=settings, progress=False)
    cut = tmp_path / "cut"
    assert len(json.loads((cut / "stdp_progress.json").read_text())["curve"]) == 1
    assert (cut / "checkpoint_stdp.pt").is_file() and not (cut / "learner_stdp.json").exists()
    run_experiment("compare", resume=cut, progress=False)
    a, b = _metrics(whole)["learners"]["stdp"], _metrics(cut)["learners"]["stdp"]
    for key in ("test_accuracy", "samples_seen", "samples_curve", "ops_per_inference"):
        assert a[key] == b[key], key


@pytest.mark.slow
def test_quick_configuration_end_to_end(tmp_path):
    run_dir = run_experiment("compare", quick=True, out=tmp_path / "quick", progress=False)
    metrics = _metrics(run_dir)
    assert metrics["learner_order"] == list(compare.LEARNERS)
    learners = metrics["learners"]
    report = (run_dir / "report.md").read_text()
    for name, result in learners.items():
        assert f"| {compare.LEARNERS[name]} | {100 * result['test_accuracy']:.2f}% |" in report
    for png in ("accuracy_vs_samples.png", "accuracy_vs_steps.png", "stdp_raster.png",
                "receptive_fields_backprop.png", "receptive_fields_hebbian.png",
                "receptive_fields_stdp.png"):
        assert (run_dir / png).read_bytes().startswith(b"\x89PNG"), png
    # Measured with seed 0: backprop 95.8 %, converted 95.8 %, surrogate 94.7 %, Hebbian
    # 96.1 %, STDP (100 neurons, 600 unlabelled samples) about 70 %; chance is 10 %.
    assert learners["backprop"]["test_accuracy"] >= 0.93
    assert learners["converted"]["test_accuracy"] >= learners["backprop"]["test_accuracy"] - 0.03
    assert learners["surrogate"]["test_accuracy"] >= 0.88
    assert learners["hebbian"]["test_accuracy"] >= 0.90
    assert learners["stdp"]["test_accuracy"] >= 0.45


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dataset": "cifar"}, "one of digits, fashion-mnist, mnist, idx"),
        ({"dataset": "mnist"}, "data_root"),
        ({"dataset": "idx", "data_root": "/nonexistent/folder"}, "is not a folder"),
        ({"learners": "converted"}, "add 'backprop'"),
        ({"learners": ["backprop", "perceptron"]}, "perceptron"),
        ({"learners": []}, "at least one learner"),
        ({"snn_T": 512}, "must not exceed T_max"),
        ({"epochs": 0}, "epochs must be > 0"),
        ({"train_limit": 100}, "IDX data sets only"),
        ({"hebbian_k": 1}, "hebbian_k"),
        ({"stdp_n_exc": -4}, "stdp_n_exc"),
    ],
)
def test_bad_settings_give_clear_errors(settings, message):
    with pytest.raises(UsageError, match="compare") as error:
        make_config(get_experiment("compare"), settings)
    assert message in str(error.value)


def test_malformed_idx_folder_is_a_usage_error(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(UsageError, match="missing"):
        run_experiment("compare", out=tmp_path / "run", progress=False,
                       settings={"dataset": "idx", "data_root": str(tmp_path),
                                 "learners": ["backprop"]})
