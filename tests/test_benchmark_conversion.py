"""The statistics benchmarks/conversion.py prints beside the accuracies: the paired McNemar test
and the rate model whose biases are lowered by theta/(2T), which the README uses to explain the
cells where SpikingJelly's floored spike counts come out ahead."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from scipy.stats import binomtest

from ann.models import MLPConfig
from bridge import convert, run
from bridge.conversion import expected_rates

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("conversion_benchmark",
                                                  ROOT / "benchmarks" / "conversion.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_paired_test_counts_the_discordant_images_and_gives_the_exact_binomial_p(bench):
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    ours = labels.clone()
    ours[:2] = 9  # wrong on images 0 and 1
    theirs = labels.clone()
    theirs[2:9] = 0  # wrong on images 2..8
    result = bench.paired_test(ours, theirs, labels)
    only_ours = int(((ours == labels) & (theirs != labels)).sum())
    only_theirs = int(((theirs == labels) & (ours != labels)).sum())
    assert (result["only_sb"], result["only_sj"]) == (only_ours, only_theirs) == (7, 2)
    assert result["p"] == pytest.approx(binomtest(7, 9, 0.5).pvalue, abs=1e-4)
    same = bench.paired_test(labels, labels, labels)
    assert same == {"only_sb": 0, "only_sj": 0, "p": 1.0}


def test_floor_shifted_rate_model_predicts_the_rates_of_an_empty_initial_membrane(
        bench, digits, train_on_digits):
    """An SNN started at v = 0 floors its spike counts; on average its rates are those of the
    rate model with every neuron layer's bias lowered by theta/(2T), not those of the graph as
    converted (which the SNN started at theta/2 approaches)."""
    config = MLPConfig(input_shape=(1, 8, 8), num_classes=10, hidden=(64,))
    model = train_on_digits(config, epochs=3, lr=3e-3)
    graph = convert(model, digits.train.images[:600], v_init_fraction=0.0).graph
    images, T = digits.test.images[:200], 16
    layer = next(name for name, node in graph.items() if node.type_name == "IF")
    counts = run(graph, images, T).spike_counts[layer]
    snn_rates = counts / T
    plain = expected_rates(graph, images)[layer]
    shifted = expected_rates(bench.floor_shifted(graph, T), images)[layer]
    active = plain > 2 / T
    error_plain = float((snn_rates - plain)[active].mean())
    error_shifted = float((snn_rates - shifted)[active].mean())
    assert error_plain == pytest.approx(-1 / (2 * T), abs=0.25 / T)
    assert abs(error_shifted) < 0.1 / T
