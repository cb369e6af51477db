"""Synaptic plasticity rules as pure functions (see :mod:`.base` for the contract).

Every step returns ``(delta_w, new_state)`` (rate rules: ``delta_w``) without mutating its
inputs; :func:`apply_weight_change` applies a change with clipping. Spike-based rules also give
their Brian2 ``Synapses`` strings (``*_brian2``), tested against the torch steps.
"""

from __future__ import annotations

from neuro.plasticity.base import (
    BatchReduce,
    Brian2Plasticity,
    Interaction,
    WeightBounds,
    WeightDependence,
    apply_weight_change,
)
from neuro.plasticity.hebbian import (
    BCMParams,
    HebbianParams,
    OjaParams,
    SangerParams,
    SpikingBCMParams,
    SpikingBCMState,
    bcm_spiking_initial_state,
    bcm_spiking_step,
    bcm_step,
    hebbian_step,
    oja_step,
    sanger_step,
)
from neuro.plasticity.homeostasis import (
    DIEHL_COOK_2015,
    DIEHL_COOK_2015_COLUMN_SUM,
    AdaptiveThresholdParams,
    Brian2ThresholdAdaptation,
    SynapticScalingParams,
    adaptive_threshold_brian2,
    adaptive_threshold_step,
    effective_threshold,
    normalize_columns,
    synaptic_scaling_step,
)
from neuro.plasticity.reward import (
    RSTDPParams,
    RSTDPState,
    rstdp_brian2,
    rstdp_initial_state,
    rstdp_step,
)
from neuro.plasticity.schedules import lr_constant, lr_exponential, lr_step
from neuro.plasticity.stdp import (
    SONG_2000,
    PairSTDPParams,
    PairTraces,
    stdp_pair_brian2,
    stdp_pair_initial_traces,
    stdp_pair_step,
)
from neuro.plasticity.triplet import (
    TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_FULL,
    TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_MINIMAL,
    TRIPLET_HIPPOCAMPAL_NEAREST_FULL,
    TRIPLET_HIPPOCAMPAL_NEAREST_MINIMAL,
    TRIPLET_PRESETS,
    TRIPLET_VISUAL_ALL_TO_ALL_FULL,
    TRIPLET_VISUAL_ALL_TO_ALL_MINIMAL,
    TRIPLET_VISUAL_NEAREST_FULL,
    TRIPLET_VISUAL_NEAREST_MINIMAL,
    TripletSTDPParams,
    TripletTraces,
    stdp_triplet_brian2,
    stdp_triplet_initial_traces,
    stdp_triplet_step,
)

__all__ = [
    # contract
    "BatchReduce",
    "Interaction",
    "WeightDependence",
    "WeightBounds",
    "Brian2Plasticity",
    "apply_weight_change",
    # rate-based
    "HebbianParams",
    "hebbian_step",
    "OjaParams",
    "oja_step",
    "SangerParams",
    "sanger_step",
    "BCMParams",
    "bcm_step",
    "SpikingBCMParams",
    "SpikingBCMState",
    "bcm_spiking_initial_state",
    "bcm_spiking_step",
    # pair STDP
    "PairSTDPParams",
    "PairTraces",
    "SONG_2000",
    "stdp_pair_initial_traces",
    "stdp_pair_step",
    "stdp_pair_brian2",
    # triplet STDP
    "TripletSTDPParams",
    "TripletTraces",
    "TRIPLET_VISUAL_ALL_TO_ALL_MINIMAL",
    "TRIPLET_VISUAL_ALL_TO_ALL_FULL",
    "TRIPLET_VISUAL_NEAREST_MINIMAL",
    "TRIPLET_VISUAL_NEAREST_FULL",
    "TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_MINIMAL",
    "TRIPLET_HIPPOCAMPAL_ALL_TO_ALL_FULL",
    "TRIPLET_HIPPOCAMPAL_NEAREST_MINIMAL",
    "TRIPLET_HIPPOCAMPAL_NEAREST_FULL",
    "TRIPLET_PRESETS",
    "stdp_triplet_initial_traces",
    "stdp_triplet_step",
    "stdp_triplet_brian2",
    # reward-modulated STDP
    "RSTDPParams",
    "RSTDPState",
    "rstdp_initial_state",
    "rstdp_step",
    "rstdp_brian2",
    # homeostasis
    "AdaptiveThresholdParams",
    "DIEHL_COOK_2015",
    "DIEHL_COOK_2015_COLUMN_SUM",
    "adaptive_threshold_step",
    "effective_threshold",
    "Brian2ThresholdAdaptation",
    "adaptive_threshold_brian2",
    "normalize_columns",
    "SynapticScalingParams",
    "synaptic_scaling_step",
    # schedules
    "lr_constant",
    "lr_exponential",
    "lr_step",
]
