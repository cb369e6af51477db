"""Neuron models: parameters, state, torch step and Brian2 equations (see :mod:`.base`).

:data:`MODELS` is the one registry of models, by :attr:`NeuronModel.name`.
"""

from __future__ import annotations

from neuro.models.adex import (
    ADEX,
    ADEX_ADAPTING,
    ADEX_DELAYED_ACCELERATING,
    ADEX_DELAYED_REGULAR_BURSTING,
    ADEX_INITIAL_BURST,
    ADEX_IRREGULAR,
    ADEX_PRESET_CURRENTS_PA,
    ADEX_PRESETS,
    ADEX_REGULAR_BURSTING,
    ADEX_TONIC,
    ADEX_TRANSIENT,
    AdExParams,
    AdExState,
    adex_brian2,
    adex_initial_state,
    adex_step,
)
from neuro.models.base import Brian2Equations, NeuronModel
from neuro.models.hodgkin_huxley import (
    HODGKIN_HUXLEY,
    TRAUB_MILES,
    HHParams,
    HHState,
    TraubMilesParams,
    hh_brian2,
    hh_initial_state,
    hh_step,
)
from neuro.models.integrate_and_fire import (
    IF,
    IFParams,
    IFState,
    if_brian2,
    if_initial_state,
    if_step,
)
from neuro.models.izhikevich import (
    CHATTERING,
    FAST_SPIKING,
    INTRINSICALLY_BURSTING,
    IZHIKEVICH,
    IZHIKEVICH_PRESETS,
    LOW_THRESHOLD_SPIKING,
    REGULAR_SPIKING,
    RESONATOR,
    THALAMO_CORTICAL,
    IzhikevichParams,
    IzhikevichState,
    izhikevich_brian2,
    izhikevich_initial_state,
    izhikevich_step,
)
from neuro.models.lif import LIF, LIFParams, LIFState, lif_brian2, lif_initial_state, lif_step

__all__ = [
    # contract
    "Brian2Equations",
    "NeuronModel",
    "MODELS",
    "model_for_params",
    # LIF
    "LIF",
    "LIFParams",
    "LIFState",
    "lif_initial_state",
    "lif_step",
    "lif_brian2",
    # IF (non-leaky)
    "IF",
    "IFParams",
    "IFState",
    "if_initial_state",
    "if_step",
    "if_brian2",
    # AdEx
    "ADEX",
    "AdExParams",
    "AdExState",
    "adex_initial_state",
    "adex_step",
    "adex_brian2",
    "ADEX_TONIC",
    "ADEX_ADAPTING",
    "ADEX_INITIAL_BURST",
    "ADEX_REGULAR_BURSTING",
    "ADEX_DELAYED_ACCELERATING",
    "ADEX_DELAYED_REGULAR_BURSTING",
    "ADEX_TRANSIENT",
    "ADEX_IRREGULAR",
    "ADEX_PRESETS",
    "ADEX_PRESET_CURRENTS_PA",
    # Izhikevich
    "IZHIKEVICH",
    "IzhikevichParams",
    "IzhikevichState",
    "izhikevich_initial_state",
    "izhikevich_step",
    "izhikevich_brian2",
    "REGULAR_SPIKING",
    "INTRINSICALLY_BURSTING",
    "CHATTERING",
    "FAST_SPIKING",
    "LOW_THRESHOLD_SPIKING",
    "THALAMO_CORTICAL",
    "RESONATOR",
    "IZHIKEVICH_PRESETS",
    # Hodgkin-Huxley
    "HODGKIN_HUXLEY",
    "TRAUB_MILES",
    "HHParams",
    "TraubMilesParams",
    "HHState",
    "hh_initial_state",
    "hh_step",
    "hh_brian2",
]

#: Every neuron model, by name. The only registry: engines and configs look models up here.
MODELS: dict[str, NeuronModel] = {
    model.name: model for model in (LIF, IF, ADEX, IZHIKEVICH, HODGKIN_HUXLEY, TRAUB_MILES)
}


def model_for_params(params: object) -> NeuronModel:
    """The registered model whose parameter type is ``type(params)``.

    Raises ``TypeError`` for an unknown parameter type.
    """
    for model in MODELS.values():
        if type(params) is model.params_type:
            return model
    raise TypeError(f"no registered neuron model takes parameters of type {type(params)!r}")
