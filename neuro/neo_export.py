"""Export a :class:`~neuro.records.SimulationResult` to `Neo <https://neo.readthedocs.io>`_.

Neo is the common data model of the electrophysiology tools (Elephant, NeoIO file formats,
PyNN, Viziphant). ``neo`` and ``quantities`` are optional dependencies, imported only when
:func:`to_neo` is called: ``pip install spikebridge[neo]``.

Layout of the returned :class:`neo.Block`
------------------------------------------
* one :class:`neo.Segment` per trial (batch index), named ``"trial <b>"``;
* in each segment, one :class:`neo.SpikeTrain` per neuron of every population (annotations
  ``population`` and ``neuron``; ``t_start = 0``, ``t_stop = duration``, ms);
* in each segment, one :class:`neo.AnalogSignal` per recorded state variable (channels = the
  recorded neurons, listed in the array annotation ``neuron``) and one per population rate
  (Hz, one channel, sampled every ``dt``);
* one :class:`neo.Group` per population collecting its spike trains across trials;
* block annotations: ``engine``, ``device``, ``dt_ms``, ``duration_ms``, ``wall_time_s``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from neuro.records import SimulationResult, StateRecord

if TYPE_CHECKING:  # pragma: no cover
    import neo

__all__ = ["to_neo"]


def _import_neo() -> tuple[Any, Any]:
    try:
        import neo
        import quantities as pq
    except ImportError as err:
        raise ImportError(
            "exporting to Neo needs the optional packages neo and quantities: "
            "pip install spikebridge[neo]  (or: pip install neo)"
        ) from err
    return neo, pq


def _units(pq: Any, unit: str) -> Any:
    """A ``quantities`` unit from a record's unit string (``""`` is dimensionless)."""
    if unit in ("", "1"):
        return pq.dimensionless
    try:
        return pq.Quantity(1.0, unit).units
    except (LookupError, ValueError) as err:
        raise ValueError(f"unit {unit!r} is not known to the quantities package") from err


def _state_signal(neo: Any, pq: Any, state: StateRecord, trial: int) -> Any:
    """One trial of a state record as a regularly (or irregularly) sampled Neo signal."""
    values = np.asarray(state.values[trial])
    times = np.asarray(state.times_ms, dtype=np.float64)
    common = dict(
        units=_units(pq, state.unit),
        name=f"{state.population}.{state.variable}",
        array_annotations={"neuron": np.asarray(state.neurons)},
        population=state.population,
        variable=state.variable,
    )
    steps = np.diff(times)
    if times.size >= 2 and np.allclose(steps, steps[0], rtol=1e-6, atol=0.0):
        return neo.AnalogSignal(
            values, t_start=times[0] * pq.ms, sampling_period=steps[0] * pq.ms, **common
        )
    return neo.IrregularlySampledSignal(times * pq.ms, values, **common)


def to_neo(result: SimulationResult, name: str | None = None) -> neo.Block:
    """Convert a simulation result to a :class:`neo.Block` (layout in the module docstring).

    Parameters
    ----------
    result
        What an engine returned.
    name
        Name of the block (default ``"spikebridge <engine>"``).

    Returns
    -------
    neo.Block

    Raises
    ------
    ImportError
        If ``neo`` or ``quantities`` is not installed (``pip install spikebridge[neo]``).
    """
    neo, pq = _import_neo()
    batch_sizes = {r.batch_size for r in result.spikes.values()}
    batch_sizes |= {s.values.shape[0] for s in result.states.values()}
    rates_2d = {
        pop: np.atleast_2d(np.asarray(r, dtype=np.float64))
        for pop, r in result.population_rates_hz.items()
    }
    batch_sizes |= {r.shape[0] for r in rates_2d.values()}
    if len(batch_sizes) > 1:
        raise ValueError(f"records disagree on the number of trials: {sorted(batch_sizes)}")
    n_trials = batch_sizes.pop() if batch_sizes else 1

    block = neo.Block(
        name=name or f"spikebridge {result.engine}",
        engine=result.engine,
        device=result.device,
        dt_ms=float(result.dt_ms),
        duration_ms=float(result.duration_ms),
        wall_time_s=float(result.wall_time_s),
    )
    groups = {pop: neo.Group(name=pop, population=pop) for pop in result.spikes}
    t_stop = float(result.duration_ms) * pq.ms
    for trial in range(n_trials):
        seg = neo.Segment(name=f"trial {trial}", index=trial, trial=trial)
        for pop, rec in result.spikes.items():
            trains = rec.trains(trial)
            for i, times in enumerate(trains):
                st = neo.SpikeTrain(
                    np.asarray(times, dtype=np.float64),
                    t_stop=t_stop,
                    units=pq.ms,
                    t_start=0.0 * pq.ms,
                    name=f"{pop}[{i}]",
                    population=pop,
                    neuron=i,
                )
                seg.spiketrains.append(st)
                groups[pop].add(st)
        for state in result.states.values():
            sig = _state_signal(neo, pq, state, trial)
            seg.analogsignals.append(sig)
        for pop, rates in rates_2d.items():
            seg.analogsignals.append(
                neo.AnalogSignal(
                    rates[trial][:, None],
                    units=pq.Hz,
                    sampling_period=float(result.dt_ms) * pq.ms,
                    t_start=0.0 * pq.ms,
                    name=f"{pop}.population_rate",
                    population=pop,
                )
            )
        block.segments.append(seg)
    block.groups.extend(groups.values())
    block.check_relationships()
    return block
