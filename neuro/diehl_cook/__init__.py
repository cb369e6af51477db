"""The Diehl & Cook (2015) unsupervised STDP network: parameters, the batched torch simulation
and its Brian2 counterpart."""

from neuro.diehl_cook.params import DIEHL_COOK_2015_PARAMS, DiehlCookParams, diehl_cook_params_for

__all__ = ["DiehlCookParams", "DIEHL_COOK_2015_PARAMS", "diehl_cook_params_for"]
