"""The Diehl & Cook (2015) unsupervised STDP network: parameters, the batched torch simulation
and its Brian2 counterpart."""

from neuro.diehl_cook.labels import assign_labels, class_scores, classify
from neuro.diehl_cook.params import DIEHL_COOK_2015_PARAMS, DiehlCookParams, diehl_cook_params_for
from neuro.diehl_cook.torch_network import (
    DiehlCookState,
    InputEvents,
    Presentation,
    ResponsivePresentation,
    SpikeTotals,
    diehl_cook_step,
    initial_state,
    input_rates,
    poisson_input,
    present,
    present_until_responsive,
    rest,
)
from neuro.diehl_cook.training import (
    DIGITS_MEAN_INTENSITY,
    MNIST_MEAN_INTENSITY,
    DiehlCookNetwork,
    EvalResult,
    TrainResult,
    evaluate_diehl_cook,
    matched_input_params,
    spike_counts,
    spike_totals,
    train_diehl_cook,
)

__all__ = [
    "DiehlCookParams",
    "DIEHL_COOK_2015_PARAMS",
    "diehl_cook_params_for",
    "DiehlCookState",
    "InputEvents",
    "Presentation",
    "ResponsivePresentation",
    "SpikeTotals",
    "diehl_cook_step",
    "initial_state",
    "input_rates",
    "poisson_input",
    "present",
    "present_until_responsive",
    "rest",
    "matched_input_params",
    "MNIST_MEAN_INTENSITY",
    "DIGITS_MEAN_INTENSITY",
    "DiehlCookNetwork",
    "TrainResult",
    "EvalResult",
    "train_diehl_cook",
    "spike_counts",
    "spike_totals",
    "evaluate_diehl_cook",
    "assign_labels",
    "classify",
    "class_scores",
]
