"""Network description: validation messages, connectivity statistics, seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuro import connectivity as conn_mod
from neuro import network as net_mod
from neuro import synapses as syn_mod
from neuro.connectivity import (
    AllToAll,
    Constant,
    Explicit,
    FixedProbability,
    LogNormal,
    NormalClipped,
    OneToOne,
    Uniform,
)
from neuro.models.lif import LIF, LIFParams
from neuro.network import (
    CurrentInput,
    Network,
    PoissonInput,
    Population,
    PopulationRateMonitor,
    Projection,
    SpikeGeneratorInput,
    SpikeMonitor,
    StateMonitor,
)
from neuro.synapses import Synapse, conductance_exp, current_alpha, current_exp, propagators

EXC = current_exp("exc", 5.0)


def pop(name="a", n=10, **kw):
    return Population(name, n, LIF, LIFParams(), **kw)


def net(**kw):
    kw.setdefault("populations", [pop("a"), pop("b")])
    return Network(**kw)


def test_public_names():
    for mod in (net_mod, conn_mod, syn_mod):
        for name in mod.__all__:
            assert hasattr(mod, name), (mod.__name__, name)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"projections": [Projection("nope", "a", EXC, AllToAll(), 1.0)]}, "unknown source 'nope'"),
        ({"projections": [Projection("a", "zzz", EXC, AllToAll(), 1.0)]}, "unknown target"),
        ({"projections": [Projection("a", "b", EXC, AllToAll(), np.ones(7))]},
         r"weights has shape \(7,\) but the projection has 100 synapses"),
        ({"projections": [Projection("a", "b", EXC, AllToAll(), float("nan"))]}, "NaN"),
        ({"projections": [Projection("a", "b", EXC, AllToAll(), 1.0, delay_ms=-1.0)]},
         "negative delay"),
        ({"projections": [Projection("a", "b", conductance_exp("e", 5, 0.0), AllToAll(), -1.0)]},
         "conductance weights"),
        ({"projections": [Projection("a", "b", EXC, FixedProbability(0.1), np.ones(10))]},
         "per-synapse weights arrays need"),
        ({"populations": [pop("a"), pop("a")]}, "'a': the name is used twice"),
        ({"inputs": [CurrentInput("q", 1.0)]}, "unknown target population 'q'"),
        ({"inputs": [CurrentInput("a", np.ones(3))]}, "amplitude_pA must be"),
        ({"inputs": [PoissonInput("p", 5, np.ones(4))]}, "PoissonInput 'p'"),
        ({"inputs": [PoissonInput("p", 5, 20000.0)]}, "exceeds 1/dt"),
        ({"inputs": [SpikeGeneratorInput("s", 2, np.array([0, 0]), np.array([1.0, 1.01]))]},
         "spikes twice within one time step"),
        ({"inputs": [SpikeGeneratorInput("s", 2, np.array([5]), np.array([1.0]))]},
         r"indices must lie in \[0, 2\)"),
        ({"monitors": [SpikeMonitor("x")]}, "SpikeMonitor: unknown population 'x'"),
        ({"monitors": [StateMonitor("a", "g_exc")]}, "unknown variable 'g_exc'"),
        ({"monitors": [StateMonitor("a", "v", every=0)]}, "every must be"),
        ({"populations": [pop("a", initial={"w": 1.0})]}, "unknown variable 'w'"),
        ({"dt_ms": 5.0}, "Population 'a': dt_ms = 5.0 is too large"),
        ({"populations": [Population("a", 3, LIF, object())]}, "params must be a LIFParams"),
    ],
)
def test_validation_messages(kwargs, match):
    with pytest.raises(ValueError, match=match):
        net(**kwargs)


def test_one_to_one_size_mismatch():
    with pytest.raises(ValueError, match="OneToOne needs equal sizes"):
        Network([pop("a", 3), pop("b", 4)], projections=[Projection("a", "b", EXC, OneToOne(), 1)])


def test_conflicting_synapse_kinetics():
    with pytest.raises(ValueError, match="defined twice with different kinetics"):
        net(projections=[Projection("a", "b", EXC, AllToAll(), 1.0),
                         Projection("a", "b", current_exp("exc", 3.0), AllToAll(), 1.0,
                                    name="other")])


def test_synapse_validation():
    with pytest.raises(ValueError, match="tau_ms must be a positive"):
        Synapse("s", tau_ms=0.0)
    with pytest.raises(ValueError, match="needs a finite reversal"):
        Synapse("s", kind="conductance")
    with pytest.raises(ValueError, match="no reversal potential"):
        Synapse("s", E_rev_mV=0.0)


def test_delay_rounding_warns():
    with pytest.warns(UserWarning, match="not multiples of dt"):
        n = net(projections=[Projection("a", "b", EXC, AllToAll(), 1.0, delay_ms=0.26)])
    with pytest.warns(UserWarning):
        c = n.build()
    assert np.all(c.projections[0].delay_steps == 3)


def test_fixed_probability_statistics():
    rng = np.random.default_rng(1)
    n_pre, n_post, p = 400, 300, 0.05
    pre, post = FixedProbability(p).build(n_pre, n_post, rng)
    mean = n_pre * n_post * p
    sd = math.sqrt(n_pre * n_post * p * (1 - p))
    assert abs(pre.size - mean) < 5 * sd
    assert pre.min() >= 0 and pre.max() < n_pre and post.max() < n_post
    assert np.unique(pre * n_post + post).size == pre.size  # no duplicate pairs
    # out-degrees are binomial: mean and variance within a few standard errors
    deg = np.bincount(pre, minlength=n_pre)
    assert abs(deg.mean() - n_post * p) < 5 * math.sqrt(n_post * p * (1 - p) / n_pre)
    assert 0.7 < deg.var() / (n_post * p * (1 - p)) < 1.3
    pre2, post2 = FixedProbability(p, allow_autapses=False).build(50, 50, rng, True)
    assert not np.any(pre2 == post2)


def test_one_to_one_all_to_all_explicit():
    rng = np.random.default_rng(0)
    pre, post = OneToOne().build(5, 5, rng)
    assert np.array_equal(pre, np.arange(5)) and np.array_equal(post, np.arange(5))
    pre, post = AllToAll(allow_autapses=False).build(4, 4, rng, True)
    assert pre.size == 12 and not np.any(pre == post)
    pre, post = Explicit(np.array([0, 2]), np.array([1, 1])).build(3, 2, rng)
    assert pre.tolist() == [0, 2] and post.tolist() == [1, 1]
    with pytest.raises(ValueError, match="post indices must lie"):
        Explicit(np.array([0]), np.array([5])).build(3, 2, rng)


def test_weight_initialisers():
    rng = np.random.default_rng(0)
    assert np.all(Constant(2.0).sample(5, rng) == 2.0)
    u = Uniform(1.0, 2.0).sample(10000, rng)
    assert 1.0 <= u.min() and u.max() < 2.0 and abs(u.mean() - 1.5) < 0.02
    c = NormalClipped(0.0, 1.0).sample(10000, rng)
    assert c.min() == 0.0 and np.mean(c == 0.0) > 0.45
    ln = LogNormal(2.0, 0.5).sample(200000, rng)
    assert abs(ln.mean() - 2.0) < 0.02 and abs(ln.std() - 0.5) < 0.02


def test_build_is_deterministic_and_signed():
    inh = current_exp("inh", 5.0, inhibitory=True)
    kw = dict(populations=[pop("a", 50), pop("b", 40)],
              projections=[Projection("a", "b", inh, FixedProbability(0.2), Uniform(1, 2),
                                      delay_ms=Uniform(0.0, 2.0))])
    with pytest.warns(UserWarning):
        c1 = Network(**kw, seed=3).build()
        c2 = Network(**kw, seed=3).build()
        c3 = Network(**kw, seed=4).build()
    p1, p2, p3 = c1.projections[0], c2.projections[0], c3.projections[0]
    assert np.array_equal(p1.pre, p2.pre) and np.array_equal(p1.weight, p2.weight)
    assert np.array_equal(p1.delay_steps, p2.delay_steps)
    assert not (p1.pre.size == p3.pre.size and np.array_equal(p1.pre, p3.pre))
    assert np.all(p1.weight < 0)  # inhibitory current synapse flips the sign
    assert p1.delay_steps.max() <= 20


def test_all_to_all_weight_matrix_and_initial_values():
    w = np.arange(12.0).reshape(3, 4)
    n = Network([pop("a", 3, initial={"v": Uniform(-70, -60)}), pop("b", 4)],
                projections=[Projection("a", "b", current_alpha("s", 2.0), AllToAll(), w)],
                monitors=[StateMonitor("b", "I_s"), StateMonitor("b", "x_s"),
                          PopulationRateMonitor("a")])
    p = n.build().projections[0]
    assert np.array_equal(p.weight, w[p.pre, p.post])
    v0, v0b, v1 = (n.initial_values("a", s)["v"] for s in (0, 0, 1))
    assert np.array_equal(v0, v0b) and not np.array_equal(v0, v1)
    assert n.variables_of("b") == ("v", "refrac_ms", "I_s", "x_s")
    assert n.unit_of("b", "I_s") == "pA" and n.unit_of("b", "v") == "mV"


def test_propagators():
    d, h = propagators(5.0, 0.1)
    assert d == pytest.approx(math.exp(-0.02)) and h == pytest.approx(0.02)
