"""Brian2 engine: the same :class:`~neuro.network.Network` as an explicit ``brian2.Network``.

Construction, per population, from the model's :class:`~neuro.models.base.Brian2Equations`:

* one ``NeuronGroup``; to its equations the engine appends, for every synapse type received,
  the kernel's variables (``g_<name>`` in siemens or ``I_<name>`` in amp, plus ``x_<name>``
  for alpha kernels, see :mod:`neuro.synapses`), advanced by their exact one-step propagators
  in a ``run_regularly`` operation in the ``after_groups`` slot (so the kernels are exact
  whatever integration ``method`` the neuron model uses, as in the torch engine), and the
  input current

  .. code-block:: text

      I_in = I_ext + I_<cur> + (g_a*(E_a - v) + ...)*exprel(-dt*(g_a + ...)/C)
             : amp (constant over dt)

  (the ``exprel`` factor is Network's ``conductance_update="exponential"``; it is left out for
  ``"explicit"``). ``(constant over dt)`` makes Brian2 evaluate ``I_in`` once at the start of
  each step and hold it during the integration -- the same discretisation as the torch engine,
  so both engines integrate the identical scheme (and ``method="exact"`` stays valid with
  conductances);
* a population with ``threshold_adaptation`` gets the pieces of
  :func:`~neuro.plasticity.adaptive_threshold_brian2`: ``dtheta/dt = -theta/tau_theta`` in its
  equations, its threshold parameter replaced by ``(V_th + theta)`` in the threshold and the
  reset, and ``theta += theta_plus`` after the reset (``learning=False``: ``theta`` constant,
  no jump); the final ``theta`` comes back in ``SimulationResult.theta``;
* ``Synapses`` per projection, ``on_pre: g_<name>_post += w`` (``x_<name>_post += e*w`` for
  alpha), connected with the connectome's explicit ``(i, j)`` arrays, weights and delays
  (per-synapse delays, plastic or not, set the ``pre`` pathway's delay variable);
* a plastic projection (``Projection(plasticity=...)``) gets the rule's
  :class:`~neuro.plasticity.Brian2Plasticity` strings: its model, ``on_post``, and an
  ``on_pre`` that starts with the transmission (so a spike is transmitted with the weight from
  before its own update); R-STDP's reward code runs with ``run_regularly`` in the
  ``after_synapses`` slot after the engine has set ``reward_signal`` (a ``TimedArray`` for an
  array reward, a ``NetworkOperation`` for a callable). ``learning=False`` sets the rules'
  shared ``lr`` to 0; final weights and :class:`~neuro.network.WeightMonitor` records come
  back as in the torch engine;
* ``PoissonGroup`` (``TimedArray`` rates when time-varying), ``SpikeGeneratorGroup``
  (trial-0 spikes) and ``TimedArray`` external currents;
* ``SpikeMonitor`` / ``StateMonitor`` / ``PopulationRateMonitor`` converted into the same
  :mod:`neuro.records`.

Nothing uses Brian2's magic network: every object is added to one explicit
``brian2.Network``. Targets: ``"cython"`` / ``"numpy"`` runtime code generation (the previous
``prefs.codegen.target`` is restored afterwards), or ``"cpp_standalone"`` (built with
``build_on_run=False`` then ``device.build(...)``; the device is reset to runtime afterwards so
later calls work). Brian2 simulates one trial per run, in float64.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from neuro.network import (
    Connectome,
    CurrentInput,
    Network,
    PoissonInput,
    PopulationRateMonitor,
    SpikeGeneratorInput,
    SpikeMonitor,
    StateMonitor,
    WeightMonitor,
)
from neuro.records import SimulationResult, SpikeRecord, StateRecord
from neuro.synapses import propagators

__all__ = ["run_brian2", "brian2_target", "TARGETS"]

TARGETS = ("cython", "numpy", "cpp_standalone")


def _units():
    import brian2 as b2

    # (Brian2 dimension, our unit as a Brian2 quantity, our unit name)
    return [
        (b2.volt.dim, b2.mV, "mV"),
        (b2.amp.dim, b2.pA, "pA"),
        (b2.siemens.dim, b2.nS, "nS"),
        (b2.second.dim, b2.ms, "ms"),
        (b2.farad.dim, b2.pF, "pF"),
        (b2.hertz.dim, b2.Hz, "Hz"),
        ((b2.volt / b2.second).dim, b2.mV / b2.ms, "mV/ms"),
    ]


def _our_unit(dim) -> tuple[Any, str]:
    from brian2.units.fundamentalunits import DIMENSIONLESS

    if dim is DIMENSIONLESS:
        return 1.0, ""
    for d, unit, name in _units():
        if d == dim:
            return unit, name
    raise ValueError(f"Brian2 engine: no unit of ours for Brian2 dimension {dim}.")



@contextlib.contextmanager
def brian2_target(target: str, directory: str | None = None, *, clean: bool = True,
                  prefix: str = "spikebridge_brian2_") -> Iterator[str | None]:
    """Build the Brian2 objects created inside for ``target``; put Brian2 back afterwards.

    Runtime targets (``"numpy"``, ``"cython"``) set ``prefs.codegen.target`` and restore the
    previous value; ``"cpp_standalone"`` selects the standalone device (``build_on_run=False``)
    in ``directory`` (a temporary one unless given, removed afterwards when ``clean``), yields
    that directory, and afterwards reinitialises the device and returns to runtime mode.
    Runtime targets yield ``None``.
    """
    import brian2 as b2
    from brian2.devices.device import get_device, set_device

    if target not in TARGETS:
        raise ValueError(f"Unknown Brian2 target {target!r}; choose one of {TARGETS}.")
    if target != "cpp_standalone":
        old = b2.prefs.codegen.target
        b2.prefs.codegen.target = target
        try:
            yield None
        finally:
            b2.prefs.codegen.target = old
        return
    tmpdir = None
    if directory is None:
        tmpdir = directory = tempfile.mkdtemp(prefix=prefix)
    set_device("cpp_standalone", directory=directory, build_on_run=False)
    try:
        yield directory
    finally:
        get_device().reinit()
        set_device("runtime")
        if tmpdir is not None and clean:
            shutil.rmtree(tmpdir, ignore_errors=True)

def run_brian2(
    network: Network,
    duration_ms: float,
    *,
    seed: int = 0,
    target: str = "cython",
    connectome: Connectome | None = None,
    progress: bool = False,
    timings: dict | None = None,
    brian2_directory: str | None = None,
    clean: bool = True,
    learning: bool = True,
    reward: Any = None,
) -> SimulationResult:
    """Simulate ``network`` for ``duration_ms`` with Brian2 (one trial).

    Parameters
    ----------
    network : the :class:`~neuro.network.Network`.
    duration_ms : simulated time (ms), rounded to whole steps.
    seed : seeds Brian2's random numbers (``brian2.seed``) and the initial state exactly as
        torch trial 0 with the same seed.
    target : ``"cython"``, ``"numpy"`` or ``"cpp_standalone"``.
    connectome : a prebuilt ``network.build()`` (built here otherwise).
    progress : print Brian2's text progress report.
    timings : optional dict filled with ``build_s``, ``setup_s``, ``run_s`` (the main loop;
        for standalone Brian2's own timer), ``compile_s`` (standalone: code generation and
        compilation), ``total_s``.
    brian2_directory : project directory for C++ standalone (a temporary one otherwise).
    clean : remove the temporary standalone directory afterwards.
    learning : ``False`` freezes plastic weights (the rules' shared ``lr`` is set to 0).
    reward : reward of R-STDP projections, as in the torch engine (an array, or a callable on
        the runtime targets only; see :mod:`neuro.engines.torch_plasticity`).

    Returns
    -------
    SimulationResult with ``engine="brian2:<target>"``.
    """
    import brian2 as b2

    if target not in TARGETS:
        raise ValueError(f"Unknown Brian2 target {target!r}; choose one of {TARGETS}.")
    t_start = time.perf_counter()
    if connectome is None:
        connectome = network.build()
    t_built = time.perf_counter()
    dt = float(network.dt_ms)
    n_steps = network.n_steps(duration_ms)
    standalone = target == "cpp_standalone"
    with brian2_target(target, brian2_directory, clean=clean) as directory:
        result, run_s, compile_s, t_setup = _build_and_run(
            b2, network, connectome, dt, n_steps, seed, progress, standalone,
            directory, learning, reward)
    t_end = time.perf_counter()
    if timings is not None:
        timings.update(build_s=t_built - t_start, setup_s=t_setup - t_built, run_s=run_s,
                       total_s=t_end - t_start)
        if compile_s is not None:
            timings["compile_s"] = compile_s
    engine = f"brian2:{target}"
    return SimulationResult(engine=engine, device="cpu", dt_ms=dt, duration_ms=n_steps * dt,
                            spikes=result[0], states=result[1],
                            population_rates_hz=result[2], wall_time_s=run_s,
                            weights=result[3], theta=result[4])


def _build_and_run(b2, network: Network, connectome: Connectome, dt: float, n_steps: int,
                   seed: int, progress: bool, standalone: bool, directory: str | None,
                   learning: bool = True, reward: Any = None):
    from brian2 import Hz, TimedArray, ms, mV, nS, pA, pF
    from brian2.devices.device import get_device

    b2.seed(seed)
    clock_dt = dt * ms
    objects: list[Any] = []
    groups: dict[str, Any] = {}

    # ---- neuron groups ---------------------------------------------------------------
    for pop in network.populations:
        eqs = pop.model.brian2(pop.params)
        namespace = dict(eqs.namespace)
        lines = [eqs.model.rstrip()]
        terms = []
        cond_terms: list[str] = []
        conductances: list[str] = []
        decay_code = []
        for syn in network.synapses_of(pop.name):
            var, unit = syn.variable, ("siemens" if syn.kind == "conductance" else "amp")
            d, h = propagators(syn.tau_ms, dt)
            namespace[f"d_{var}"] = d
            lines.append(f"{var} : {unit}")
            if syn.kernel == "exponential":
                decay_code.append(f"{var} = d_{var} * {var}")
            else:
                aux = syn.aux_variable
                namespace[f"h_{var}"] = h
                lines.append(f"{aux} : {unit}")
                decay_code.append(f"{var} = d_{var} * ({var} + h_{var} * {aux})")
                decay_code.append(f"{aux} = d_{var} * {aux}")
            if syn.kind == "conductance":
                namespace[f"E_{var}"] = syn.E_rev_mV * mV
                cond_terms.append(f"{var}*(E_{var} - v)")
                conductances.append(var)
            else:
                terms.append(var)
        if cond_terms:
            drive = " + ".join(cond_terms)
            if network.conductance_update == "exponential":
                # step-averaged relaxation current: phi(x) = (1 - exp(-x))/x = exprel(-x)
                namespace["C_syn_membrane"] = network.capacitance_of(pop.name) * pF
                total = " + ".join(conductances)
                terms.append(f"({drive})*exprel(-dt*({total})/C_syn_membrane)")
            else:
                terms.append(f"({drive})")
        const = np.zeros(pop.n)
        varying = None
        for inp in network.inputs:
            if not isinstance(inp, CurrentInput) or inp.target != pop.name:
                continue
            amp_arr = np.asarray(inp.amplitude_pA, dtype=np.float64)
            if inp.per_trial:
                if amp_arr.shape[0] != 1:
                    raise ValueError(
                        f"CurrentInput to {pop.name!r}: the Brian2 engine runs one trial; "
                        f"per-trial amplitudes need a trial axis of length 1, got "
                        f"{amp_arr.shape[0]}."
                    )
                amp_arr = amp_arr[0]
            if amp_arr.ndim == 2:
                rows = np.minimum(np.arange(n_steps), amp_arr.shape[0] - 1)
                block = amp_arr[rows]
                varying = block if varying is None else varying + block
            else:
                const = const + amp_arr
        if np.any(const != 0):
            lines.append("I_ext : amp (constant)")
            terms.append("I_ext")
        if varying is not None:
            name = f"I_ext_ta_{pop.name}"
            # a fixed name keeps the generated code, and so Cython's cache, the same between runs
            namespace[name] = TimedArray(varying * pA, dt=clock_dt, name=name)
            terms.append(f"{name}(t, i)")
        lines.append(f"I_in = {' + '.join(terms) if terms else '0*amp'} : amp (constant over dt)")
        threshold, reset = eqs.threshold, eqs.reset
        if pop.threshold_adaptation is not None:
            threshold, reset = _adaptive_threshold(pop, eqs, lines, namespace, learning)
        model = b2.Equations("\n".join(lines))
        for mon in network.monitors:
            if (isinstance(mon, StateMonitor) and mon.population == pop.name
                    and mon.variable not in model.names):
                raise ValueError(
                    f"StateMonitor on {pop.name!r}: variable {mon.variable!r} is part of the "
                    "torch state but not of the model's Brian2 equations; record it with the "
                    "torch engine only."
                )
        group = b2.NeuronGroup(
            pop.n, model=model, threshold=threshold, reset=reset,
            refractory=eqs.refractory if eqs.refractory is not None else False,
            method=eqs.method, namespace=namespace, dt=clock_dt, name=f"pop_{pop.name}")
        if decay_code:
            # exact propagators after the state update, before spikes are delivered
            group.run_regularly("\n".join(decay_code), dt=clock_dt, when="after_groups",
                                name=f"pop_{pop.name}_synapses")
        for key, value in eqs.initial_values.items():
            setattr(group, key, value)
        if np.any(const != 0):
            group.I_ext = const * pA
        for key, value in network.initial_values(pop.name, seed).items():
            unit, _ = _our_unit(group.variables[key].dim)
            setattr(group, key, value * unit)
        groups[pop.name] = group
        objects.append(group)

    # ---- inputs ----------------------------------------------------------------------
    for inp in network.inputs:
        if isinstance(inp, PoissonInput):
            rates = inp.rates_array(n_steps, dt)
            if rates.ndim == 1:
                group = b2.PoissonGroup(inp.n, rates=rates * Hz, dt=clock_dt,
                                        name=f"in_{inp.name}")
            else:
                ta = TimedArray(rates * Hz, dt=clock_dt, name=f"rates_ta_{inp.name}")
                group = b2.PoissonGroup(inp.n, rates=f"rates_ta_{inp.name}(t, i)",
                                        dt=clock_dt, name=f"in_{inp.name}",
                                        namespace={f"rates_ta_{inp.name}": ta})
        elif isinstance(inp, SpikeGeneratorInput):
            steps = inp.steps(dt)
            idx = np.asarray(inp.indices, dtype=np.int64)
            keep = steps < n_steps
            if inp.trials is not None:
                keep &= np.asarray(inp.trials) == 0
            group = b2.SpikeGeneratorGroup(inp.n, idx[keep], steps[keep] * dt * ms,
                                           dt=clock_dt, name=f"in_{inp.name}")
        else:
            continue
        groups[inp.name] = group
        objects.append(group)

    # ---- synapses --------------------------------------------------------------------
    rules = {p.name: p.plasticity for p in network.projections}
    plastic_syn: dict[str, tuple[Any, Any, Any]] = {}  # name -> (Synapses, unit, rule)
    for k, bp in enumerate(connectome.projections):
        if bp.n_synapses == 0:
            continue
        syn = bp.synapse
        unit, unit_name = (nS, "siemens") if syn.kind == "conductance" else (pA, "amp")
        rule = rules.get(bp.name)
        sign = "-" if rule is not None and syn.kind == "current" and syn.sign == -1 else ""
        if syn.kernel == "exponential":
            on_pre = f"{syn.variable}_post += {sign}w"
        else:
            on_pre = f"{syn.aux_variable}_post += {sign}{math.e!r}*w"
        delays = np.unique(bp.delay_steps)
        kwargs = {"delay": float(delays[0]) * clock_dt} if delays.size == 1 else {}
        model = f"w : {unit_name}"
        if rule is not None:
            plast = _brian2_rule(rule, "nS" if syn.kind == "conductance" else "pA")
            model += "\n" + plast.model
            # transmission with the weight from before this spike's own update
            on_pre = {"pre": on_pre + "\n" + plast.on_pre}
            kwargs.update(on_post=plast.on_post, namespace=dict(plast.namespace))
            if plast.method is not None:
                kwargs["method"] = plast.method
            if "delay" in kwargs:
                kwargs["delay"] = {"pre": kwargs["delay"]}
        s = b2.Synapses(groups[bp.source], groups[bp.target], model=model,
                        on_pre=on_pre, dt=clock_dt, name=f"syn_{k}", **kwargs)
        s.connect(i=bp.pre.astype(np.int32), j=bp.post.astype(np.int32))
        s.w = (np.abs(bp.weight) if sign else bp.weight) * unit
        if delays.size > 1:
            s.delay = bp.delay_steps * clock_dt
        if rule is not None:
            for key, value in plast.initial_values.items():
                setattr(s, key, value)
            s.lr = 1.0 if learning else 0.0
            if "reward" in plast.extra_code:
                s.run_regularly(plast.extra_code["reward"], dt=clock_dt, when="after_synapses",
                                order=0, name=f"syn_{k}_reward")
            plastic_syn[bp.name] = (s, unit, rule)
        objects.append(s)
    objects.extend(_brian2_reward(b2, network, groups, plastic_syn, reward, n_steps, clock_dt,
                                  standalone))

    # ---- monitors --------------------------------------------------------------------
    monitors = []
    for k, mon in enumerate(network.monitors):
        if isinstance(mon, WeightMonitor):
            s = plastic_syn[mon.projection][0]
            record = (np.arange(len(s)) if mon.synapses is None
                      else np.asarray(mon.synapses, dtype=np.int64))
            m = b2.StateMonitor(s, "w", record=record, dt=mon.every * clock_dt,
                                name=f"weightmon_{k}")
            monitors.append((mon, m))
            objects.append(m)
            continue
        group = groups[mon.population]
        if isinstance(mon, SpikeMonitor):
            m = b2.SpikeMonitor(group, record=True, name=f"spikemon_{k}")
        elif isinstance(mon, PopulationRateMonitor):
            m = b2.PopulationRateMonitor(group, name=f"ratemon_{k}")
        else:
            record = (np.arange(network.population_map[mon.population].n)
                      if mon.neurons is None else np.asarray(mon.neurons, dtype=np.int64))
            m = b2.StateMonitor(group, mon.variable, record=record, dt=mon.every * clock_dt,
                                name=f"statemon_{k}")
        monitors.append((mon, m))
        objects.append(m)

    net = b2.Network(*objects)
    t_setup = time.perf_counter()
    compile_s = None
    if standalone:
        net.run(n_steps * clock_dt, report="text" if progress else None,
                namespace={})
        t0 = time.perf_counter()
        get_device().build(directory=directory, compile=True, run=True, debug=False)
        wall = time.perf_counter() - t0
        run_s = getattr(get_device(), "_last_run_time", None)
        run_s = float(run_s) if run_s is not None else wall
        compile_s = wall - run_s
    else:
        t0 = time.perf_counter()
        net.run(n_steps * clock_dt, report="text" if progress else None,
                namespace={})
        run_s = time.perf_counter() - t0

    # ---- records ---------------------------------------------------------------------
    spikes: dict[str, SpikeRecord] = {}
    states: dict[str, StateRecord] = {}
    rates: dict[str, np.ndarray] = {}
    sources = network.spike_sources
    duration = n_steps * dt
    for mon, m in monitors:
        if isinstance(mon, SpikeMonitor):
            i = np.asarray(m.i[:], dtype=np.int64)
            t = np.asarray(m.t[:] / ms, dtype=np.float64)
            t = np.rint(t / dt) * dt  # exact multiples of dt, as the torch engine stamps them
            order = np.lexsort((i, t))
            spikes[mon.population] = SpikeRecord(
                population=mon.population, n_neurons=sources[mon.population].n, batch_size=1,
                duration_ms=duration, dt_ms=dt, trial=np.zeros(i.size, dtype=np.int64),
                neuron=i[order], time_ms=t[order])
        elif isinstance(mon, PopulationRateMonitor):
            r = np.asarray(m.rate[:] / Hz, dtype=np.float64)
            out = np.zeros((1, n_steps))
            out[0, :min(n_steps, r.size)] = r[:n_steps]
            rates[mon.population] = out
        elif isinstance(mon, WeightMonitor):
            unit = plastic_syn[mon.projection][1]
            values = np.asarray(m.w / unit, dtype=np.float64)  # (n_rec, n_samples)
            states[f"{mon.projection}.w"] = StateRecord(
                population=mon.projection, variable="w", unit="nS" if unit is nS else "pA",
                neurons=np.asarray(m.record, dtype=np.int64),
                times_ms=np.asarray(m.t[:] / ms, dtype=np.float64), values=values.T[None])
        else:
            raw = getattr(m, mon.variable)
            dim = b2.get_dimensions(raw)
            unit, unit_name = _our_unit(dim)
            values = np.asarray(raw / unit, dtype=np.float64)  # (n_rec, n_samples)
            key = f"{mon.population}.{mon.variable}"
            j = 1
            while key in states:
                j += 1
                key = f"{mon.population}.{mon.variable}#{j}"
            states[key] = StateRecord(
                population=mon.population, variable=mon.variable, unit=unit_name,
                neurons=np.asarray(m.record, dtype=np.int64),
                times_ms=np.asarray(m.t[:] / ms, dtype=np.float64), values=values.T[None])
    theta = {pop.name: np.asarray(groups[pop.name].theta[:] / mV, dtype=np.float64)[None]
             for pop in network.populations if pop.threshold_adaptation is not None}
    weights = {}
    for name, (s, unit, _) in plastic_syn.items():
        bp = next(p for p in connectome.projections if p.name == name)
        w = np.asarray(s.w[:] / unit, dtype=np.float64)
        i, j = np.asarray(s.i[:]), np.asarray(s.j[:])
        if not (np.array_equal(i, bp.pre) and np.array_equal(j, bp.post)):
            # Brian2 kept another order: sort both lists by (pre, post) and map back
            theirs = np.lexsort((j, i))
            ours = np.lexsort((bp.post, bp.pre))
            mapped = np.empty_like(w)
            mapped[ours] = w[theirs]
            w = mapped
        weights[name] = w[None]
    return (spikes, states, rates, weights, theta), run_s, compile_s, t_setup


def _adaptive_threshold(pop: Any, eqs: Any, lines: list[str], namespace: dict,
                        learning: bool) -> tuple[str, str]:
    """Add the population's adaptive threshold to its Brian2 pieces (in place: ``lines`` and
    ``namespace``) and return the new threshold condition and reset.

    The threshold parameter (``V_th``) becomes ``(V_th + theta)`` in the threshold *and* in
    the reset, as the torch engine hands the whole model step :math:`V_{th} + \theta`;
    ``theta`` decays in the state update (an exact exponential with the model's
    ``exponential_euler`` or ``exact`` method) and jumps by ``theta_plus`` after the model's
    reset (:func:`~neuro.plasticity.adaptive_threshold_brian2`). ``learning=False`` declares
    ``theta`` constant and leaves out the jump.
    """
    from neuro.network import ADAPTIVE_THRESHOLD_PARAMETER, THETA
    from neuro.plasticity import adaptive_threshold_brian2

    if eqs.method not in ("exact", "exponential_euler", "linear"):
        raise ValueError(
            f"Population {pop.name!r}: the adaptive threshold needs the model's Brian2 method "
            f"to integrate theta exactly ('exact' or 'exponential_euler'), got {eqs.method!r}."
        )
    pieces = adaptive_threshold_brian2(pop.threshold_adaptation)
    param = ADAPTIVE_THRESHOLD_PARAMETER[pop.model.name]
    pattern = re.compile(rf"\b{param}\b")
    raised = f"({param} {pieces.threshold_offset})"
    threshold = pattern.sub(raised, eqs.threshold)
    reset = pattern.sub(raised, eqs.reset)
    if learning:
        lines.append(pieces.model.rstrip())
        reset = f"{reset.rstrip()}\n{pieces.reset}"
        namespace.update(pieces.namespace)
    else:
        lines.append(f"{THETA} : volt (constant)")
    return threshold, reset


def _brian2_rule(rule: Any, w_unit: str):
    """The rule's :class:`~neuro.plasticity.Brian2Plasticity` (``w`` declared by the engine)."""
    from neuro.plasticity import (
        PairSTDPParams,
        RSTDPParams,
        TripletSTDPParams,
        rstdp_brian2,
        stdp_pair_brian2,
        stdp_triplet_brian2,
    )

    make = {PairSTDPParams: stdp_pair_brian2, TripletSTDPParams: stdp_triplet_brian2,
            RSTDPParams: rstdp_brian2}[type(rule)]
    return make(rule, w_unit=w_unit, declare_weight=False)


def _brian2_reward(b2, network: Network, groups: dict, plastic_syn: dict, reward: Any,
                   n_steps: int, clock_dt: Any, standalone: bool) -> list:
    """Objects that set the R-STDP synapses' shared ``reward_signal`` to :math:`R - \\bar{R}` in
    each step (0 without delivery) before their reward code runs (``after_synapses``,
    ``order=-1``); the baseline is kept here, as :func:`neuro.plasticity.rstdp_brian2` asks."""
    from neuro.plasticity import RSTDPParams

    targets = [(s, rule) for s, _, rule in plastic_syn.values() if isinstance(rule, RSTDPParams)]
    if reward is None:
        return []
    if not targets:
        raise ValueError("reward was given but the network has no R-STDP projection "
                         "(plasticity=RSTDPParams(...)).")
    if callable(reward):
        if standalone:
            raise ValueError("A reward callable runs Python every step, which C++ standalone "
                             "cannot do; give the reward as an array or use a runtime target.")
        baselines = [float(rule.baseline) for _, rule in targets]
        pops = [(pop.name, pop.n) for pop in network.populations]

        def deliver(t):
            step = int(round(float(t / clock_dt)))
            spikes = {}
            for name, n in pops:
                mask = np.zeros((1, n), dtype=bool)
                mask[0, np.asarray(groups[name].spikes, dtype=np.int64)] = True
                spikes[name] = mask
            out = reward(step, spikes)
            value = np.nan if out is None else float(np.asarray(out, dtype=np.float64).ravel()[0])
            for k, (s, rule) in enumerate(targets):
                if not math.isfinite(value):
                    s.reward_signal = 0.0
                    continue
                surprise = value - baselines[k]
                s.reward_signal = surprise
                if rule.baseline_mode == "running":
                    baselines[k] += rule.baseline_alpha * surprise

        return [b2.NetworkOperation(deliver, dt=clock_dt, when="after_synapses", order=-1,
                                    name="reward_callback")]
    values = np.asarray(reward, dtype=np.float64)
    if values.ndim == 2:
        if values.shape[0] != 1:
            raise ValueError("The Brian2 engine runs one trial: a (batch, n_steps) reward needs "
                             f"batch 1, got {values.shape[0]}.")
        values = values[0]
    if values.ndim != 1:
        raise ValueError(f"reward must be an (n_steps,) array, got shape {values.shape}.")
    full = np.full(n_steps, np.nan)
    full[:min(n_steps, values.size)] = values[:n_steps]
    objects = []
    for k, (s, rule) in enumerate(targets):
        signal = np.zeros(n_steps)
        baseline = float(rule.baseline)
        for step in np.flatnonzero(np.isfinite(full)):
            signal[step] = full[step] - baseline
            if rule.baseline_mode == "running":
                baseline += rule.baseline_alpha * signal[step]
        name = f"reward_ta_{k}"
        s.namespace[name] = b2.TimedArray(signal, dt=clock_dt, name=name)
        s.run_regularly(f"reward_signal = {name}(t)", dt=clock_dt, when="after_synapses",
                        order=-1, name=f"{s.name}_reward_signal")
    return objects
