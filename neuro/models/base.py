"""The contract every neuron model in :mod:`neuro` follows.

Units (used throughout ``neuro``'s torch engine, as plain floats)
-----------------------------------------------------------------
time ms, voltage mV, capacitance pF, conductance nS, current pA, rate Hz.
They are chosen so that the membrane equation needs no conversion factors:
``pA / pF = mV / ms`` and ``nS * mV = pA``.

A model is four pure pieces bound together by :class:`NeuronModel`:

* a frozen parameter dataclass (validated in ``__post_init__``), with a ``check_dt(dt_ms)``
  method that raises ``ValueError`` when ``dt`` is too large for the model's fastest time constant;
* a state ``NamedTuple`` of tensors shaped ``(batch, n)``; it always has a field ``v`` (mV);
* ``step(state, i_in, params, dt) -> (spikes, new_state)``: one clock-driven update.
  ``i_in`` (pA, shape ``(batch, n)``) is the *total* input current this step; the engine computes
  it from external currents, current-based synapses and conductances
  (``sum_k g_k (E_k - v)``), so the neuron does not need to know about synapses.
  The update order is named and fixed: integrate, threshold, reset (then refractory bookkeeping).
* ``brian2(params) -> Brian2Equations``: the same model as Brian2 equations. The equations use a
  current ``I_in`` (amp) that the Brian2 engine defines from the synapses attached.

The time loop lives in the engines, never here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

__all__ = ["Brian2Equations", "NeuronModel"]


@dataclass(frozen=True)
class Brian2Equations:
    """A neuron model written for :class:`brian2.NeuronGroup`.

    Attributes
    ----------
    model
        Equation string. It must use the input current ``I_in`` (unit ``amp``) and must *not*
        define it: the Brian2 engine appends ``I_in = ... : amp``.
    threshold, reset
        Brian2 threshold condition and reset code.
    refractory
        A Brian2 refractory expression (e.g. ``"2*ms"`` or ``"v > -20*mV"``) or ``None``.
    method
        Integration method (``"exact"``, ``"exponential_euler"``, ``"euler"``, ...).
    namespace
        Parameter values as Brian2 quantities, referenced by name in the strings above.
    initial_values
        Initial value of each state variable (Brian2 quantities or expressions).
    """

    model: str
    threshold: str
    reset: str
    refractory: str | None
    method: str
    namespace: dict[str, Any] = field(default_factory=dict)
    initial_values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NeuronModel:
    """A neuron model: its name, parameter type, state type, torch step and Brian2 equations.

    Example
    -------
    >>> LIF = NeuronModel(name="lif", params_type=LIFParams, state_type=LIFState,
    ...                   initial_state=lif_initial_state, step=lif_step, brian2=lif_brian2)
    """

    name: str
    params_type: type
    state_type: type[NamedTuple]
    #: ``initial_state(params, shape, device, dtype) -> state``
    initial_state: Callable[..., Any]
    #: ``step(state, i_in_pA, params, dt_ms) -> (spikes: bool tensor, new_state)``
    step: Callable[[Any, torch.Tensor, Any, float], tuple[torch.Tensor, Any]]
    #: ``brian2(params) -> Brian2Equations``
    brian2: Callable[[Any], Brian2Equations]
