r"""Export a :class:`~bridge.graph.SpikingGraph` to NIR and import it back (nir 1.0).

NIR describes continuous-time dynamics and carries neither the time step nor the reset mode
(NIR resets to ``v_reset``). What NIR lacks travels in ``metadata``:

* graph: ``{"format": "spikebridge-snn-graph", "version": 1, "dt_ms": ...}``;
* Input: ``{"encoding": "current" | "poisson"}``;
* IF / LIF: ``{"reset": "subtract" | "zero", "v_init_fraction": f0}`` (LIF also ``tau_ms``).

Mapping of the nodes (NIR shapes exclude the batch dimension):

* :class:`~bridge.graph.Affine` <-> ``nir.Affine``; :class:`~bridge.graph.Conv2d` <->
  ``nir.Conv2d`` (dilation 1, groups 1); :class:`~bridge.graph.AvgPool2d` <-> ``nir.AvgPool2d``;
  :class:`~bridge.graph.Flatten` <-> ``nir.Flatten(start_dim=0)`` (all of a sample's axes);
  Input / Output <-> ``nir.Input`` / ``nir.Output``.
* :class:`~bridge.graph.IF` <-> ``nir.IF(r=1, v_threshold=theta, v_reset=0)``, parameters
  expanded to the layer's shape as NIR requires; on import they are compressed back to a
  scalar or per-channel threshold when they are constant. A foreign ``IF`` with :math:`r \ne 1`
  is imported exactly as threshold :math:`\theta/r` (dividing :math:`v` by :math:`r` leaves
  the spike train unchanged).
* :class:`~bridge.graph.LIF` <-> ``nir.LIF(tau=tau_ms/1000 s, r=1/(1-beta), v_leak=0,
  v_threshold, v_reset=0)``: NIR's :math:`\tau\dot v = -v + R I`, integrated exactly over a step
  with :math:`I` held constant, gives :math:`v[t] = \beta v[t-1] + (1-\beta) R I[t]`, which is
  the graph's :math:`v[t] = \beta v[t-1] + I[t]` for :math:`R = 1/(1-\beta)`. A foreign ``LIF``
  with another :math:`R` is imported with its threshold divided by :math:`(1-\beta)R`.
  Time constants are written in seconds.
* :class:`~bridge.graph.MaxPool2d`: NIR 1.0 has no max-pool node, and writing it as a sum or
  average pool would silently change the network for every other NIR tool, so :func:`to_nir`
  raises :class:`NIRExportError` for graphs with a spiking max-pool.

Importing a file that another tool wrote needs ``dt_ms`` (and, for the input, an encoding); a
foreign IF/LIF resets to zero (NIR's semantics) and starts at :math:`v = 0` unless the metadata
says otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch

from bridge.graph import (
    ENCODINGS,
    GRAPH_FORMAT,
    GRAPH_FORMAT_VERSION,
    IF,
    LIF,
    Affine,
    AvgPool2d,
    Conv2d,
    Flatten,
    GraphError,
    Input,
    MaxPool2d,
    Output,
    SpikingGraph,
    decay_factor,
)

__all__ = ["NIRExportError", "NIRImportError", "to_nir", "from_nir", "write_nir", "read_nir"]


class NIRExportError(ValueError):
    """The graph holds something NIR cannot express."""


class NIRImportError(ValueError):
    """The NIR graph holds something the spikebridge graph cannot express, or lacks dt."""


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def _full(threshold: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Expand a scalar / per-channel / per-neuron threshold to the layer's shape."""
    if threshold.ndim == 0 or tuple(threshold.shape) == shape:
        return threshold.expand(shape)
    return threshold.reshape((shape[0],) + (1,) * (len(shape) - 1)).expand(shape)


def _neuron_metadata(node: IF | LIF) -> dict[str, Any]:
    return {"reset": node.reset, "v_init_fraction": float(node.v_init_fraction)}


def to_nir(graph: SpikingGraph) -> nir.NIRGraph:
    """The graph as a ``nir.NIRGraph`` (see the module docstring for the mapping).

    Raises
    ------
    NIRExportError
        If the graph has a spiking :class:`~bridge.graph.MaxPool2d` (NIR 1.0 has no max-pool).
    """
    nodes: dict[str, nir.NIRNode] = {}
    for name, node in graph.items():
        in_shape = graph.input_shape_of(name)
        shape = graph.shapes[name]
        if isinstance(node, Input):
            nodes[name] = nir.Input(
                input_type={"input": np.array(shape)}, metadata={"encoding": node.encoding}
            )
        elif isinstance(node, Affine):
            nodes[name] = nir.Affine(weight=_array(node.weight), bias=_array(node.bias))
        elif isinstance(node, Conv2d):
            nodes[name] = nir.Conv2d(
                input_shape=tuple(in_shape[1:]),
                weight=_array(node.weight),
                stride=node.stride,
                padding=node.padding,
                dilation=(1, 1),
                groups=1,
                bias=_array(node.bias),
            )
        elif isinstance(node, AvgPool2d):
            nodes[name] = nir.AvgPool2d(
                kernel_size=np.array(node.kernel_size),
                stride=np.array(node.stride),
                padding=np.array(node.padding),
            )
        elif isinstance(node, MaxPool2d):
            raise NIRExportError(
                f"node {name!r} is a spiking MaxPool2d, which NIR 1.0 cannot express (it has no "
                "max-pool node, and a sum or average pool would change the network). Convert "
                "a model with average pooling to exchange it through NIR."
            )
        elif isinstance(node, Flatten):
            nodes[name] = nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0,
                                      end_dim=-1)
        elif isinstance(node, IF):
            threshold = _array(_full(node.threshold, shape))
            nodes[name] = nir.IF(
                r=np.ones(shape, dtype=np.float32),
                v_threshold=threshold,
                v_reset=np.zeros(shape, dtype=np.float32),
                metadata=_neuron_metadata(node),
            )
        elif isinstance(node, LIF):
            beta = decay_factor(node.tau_ms, graph.dt_ms)
            metadata = _neuron_metadata(node) | {"tau_ms": node.tau_ms}
            nodes[name] = nir.LIF(
                tau=np.full(shape, node.tau_ms / 1000.0),
                r=np.full(shape, 1.0 / (1.0 - beta)),
                v_leak=np.zeros(shape),
                v_threshold=_array(_full(node.threshold, shape)),
                v_reset=np.zeros(shape, dtype=np.float32),
                metadata=metadata,
            )
        elif isinstance(node, Output):
            nodes[name] = nir.Output(output_type={"output": np.array(shape)})
        else:  # pragma: no cover
            raise NIRExportError(f"node {name!r}: unsupported type {type(node).__name__}")
    metadata = {"format": GRAPH_FORMAT, "version": GRAPH_FORMAT_VERSION, "dt_ms": graph.dt_ms}
    return nir.NIRGraph(nodes=nodes, edges=[tuple(e) for e in graph.edges], metadata=metadata)


def write_nir(graph: SpikingGraph, path: str | Path) -> None:
    """Write ``graph`` to a NIR (HDF5) file with ``nir.write``."""
    nir.write(Path(path), to_nir(graph))


# -------------------------------------------------------------------------------- import


def _scalar(value: Any) -> Any:
    """A Python value from what h5py returns (numpy scalars, bytes)."""
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _compress(values: np.ndarray, name: str) -> torch.Tensor:
    """A scalar if all equal, one per channel if constant over the other axes, else as is."""
    tensor = torch.as_tensor(np.asarray(values, dtype=np.float32))
    flat = tensor.reshape(-1)
    if bool((flat == flat[0]).all()):
        return flat[0].clone()
    if tensor.ndim > 1:
        first = tensor.reshape(tensor.shape[0], -1)
        if bool((first == first[:, :1]).all()):
            return first[:, 0].clone()
    return tensor


def _neuron_settings(name: str, node: nir.NIRNode) -> tuple[str, float]:
    metadata = {k: _scalar(v) for k, v in (node.metadata or {}).items()}
    if np.any(np.asarray(node.v_reset) != 0):
        raise NIRImportError(f"node {name!r}: only v_reset = 0 is supported")
    reset = metadata.get("reset", "zero")
    fraction = float(metadata.get("v_init_fraction", 0.0))
    return reset, fraction


def _close_to_one(factor: np.ndarray) -> np.ndarray:
    """``factor``, with entries within 1e-9 of 1 set to exactly 1 (own files round-trip)."""
    factor = np.asarray(factor, dtype=np.float64)
    return np.where(np.abs(factor - 1.0) <= 1e-9, 1.0, factor)


def from_nir(
    graph: nir.NIRGraph, *, dt_ms: float | None = None, input_encoding: str | None = None
) -> SpikingGraph:
    """A :class:`~bridge.graph.SpikingGraph` from a ``nir.NIRGraph``.

    Parameters
    ----------
    graph : a chain Input -> ... -> Output of Affine, Conv2d, AvgPool2d, Flatten, IF, LIF.
    dt_ms : the time step in ms; required unless the graph's metadata has ``dt_ms`` (files
        written by :func:`write_nir`); when both are given they must agree.
    input_encoding : ``"current"`` or ``"poisson"``; required unless the Input node's metadata
        has it.

    Raises
    ------
    NIRImportError
        On a missing ``dt_ms`` or encoding, or a node without a spikebridge equivalent.
    """
    metadata = {k: _scalar(v) for k, v in (graph.metadata or {}).items()}
    stored_dt = metadata.get("dt_ms")
    if dt_ms is None and stored_dt is None:
        raise NIRImportError(
            "the NIR graph carries no dt_ms (NIR has no time step): pass dt_ms explicitly"
        )
    if dt_ms is not None and stored_dt is not None and not math.isclose(dt_ms, stored_dt):
        raise NIRImportError(f"dt_ms={dt_ms} contradicts the file's dt_ms={stored_dt}")
    dt = float(dt_ms if dt_ms is not None else stored_dt)
    nodes: dict[str, Any] = {}
    for name, node in graph.nodes.items():
        try:
            nodes[name] = _import_node(name, node, dt, input_encoding)
        except GraphError as error:
            raise NIRImportError(f"node {name!r}: {error}") from error
    edges = tuple((str(a), str(b)) for a, b in graph.edges)
    try:
        return SpikingGraph(nodes=nodes, edges=edges, dt_ms=dt)
    except GraphError as error:
        raise NIRImportError(f"the NIR graph is not a supported chain: {error}") from error


def _import_node(name: str, node: nir.NIRNode, dt_ms: float, encoding: str | None) -> Any:
    if isinstance(node, nir.Input):
        stored = _scalar((node.metadata or {}).get("encoding"))
        if encoding is not None and stored is not None and encoding != stored:
            raise NIRImportError(f"input_encoding={encoding!r} contradicts the file's {stored!r}")
        chosen = encoding if encoding is not None else stored
        if chosen not in ENCODINGS:
            raise NIRImportError(
                f"the Input node {name!r} names no encoding: pass input_encoding, one of "
                f"{ENCODINGS}"
            )
        shape = tuple(int(s) for s in np.asarray(node.input_type["input"]).reshape(-1))
        return Input(shape=shape, encoding=chosen)
    if isinstance(node, nir.Output):
        return Output()
    if isinstance(node, nir.Affine):
        return Affine(weight=torch.as_tensor(node.weight), bias=torch.as_tensor(node.bias))
    if isinstance(node, nir.Linear):
        weight = torch.as_tensor(node.weight)
        return Affine(weight=weight, bias=torch.zeros(weight.shape[0]))
    if isinstance(node, nir.Conv2d):
        dilation = np.broadcast_to(np.asarray(node.dilation), (2,))
        if int(node.groups) != 1 or np.any(dilation != 1):
            raise NIRImportError(f"node {name!r}: only Conv2d with groups=1, dilation=1")
        if isinstance(node.padding, str):
            raise NIRImportError(f"node {name!r}: padding {node.padding!r}; give integers")
        return Conv2d(
            weight=torch.as_tensor(node.weight),
            bias=torch.as_tensor(node.bias),
            stride=tuple(int(s) for s in np.broadcast_to(np.asarray(node.stride), (2,))),
            padding=tuple(int(p) for p in np.broadcast_to(np.asarray(node.padding), (2,))),
        )
    if isinstance(node, nir.AvgPool2d):
        def pair(value: Any) -> tuple[int, int]:
            return tuple(int(v) for v in np.broadcast_to(np.asarray(value), (2,)))

        return AvgPool2d(kernel_size=pair(node.kernel_size), stride=pair(node.stride),
                         padding=pair(node.padding))
    if isinstance(node, nir.Flatten):
        in_type = node.input_type.get("input") if node.input_type else None
        if in_type is not None:
            out = np.asarray(node.output_type["output"]).reshape(-1)
            if out.size != 1:
                raise NIRImportError(
                    f"node {name!r}: only a Flatten of all of a sample's axes is supported, "
                    f"got output shape {tuple(out)}"
                )
        return Flatten()
    if isinstance(node, nir.IF):
        reset, fraction = _neuron_settings(name, node)
        r = _close_to_one(node.r)
        if np.any(r <= 0):
            raise NIRImportError(f"node {name!r}: IF resistance r must be > 0")
        threshold = _compress(np.asarray(node.v_threshold, dtype=np.float64) / r, name)
        return IF(threshold=threshold, reset=reset, v_init_fraction=fraction)
    if isinstance(node, nir.LIF):
        reset, fraction = _neuron_settings(name, node)
        if np.any(np.asarray(node.v_leak) != 0):
            raise NIRImportError(f"node {name!r}: only v_leak = 0 is supported")
        tau_s = np.asarray(node.tau, dtype=np.float64).reshape(-1)
        if np.any(tau_s != tau_s[0]) or not tau_s[0] > 0:
            raise NIRImportError(f"node {name!r}: LIF needs one positive tau for the layer")
        stored = _scalar((node.metadata or {}).get("tau_ms"))
        tau_ms = float(tau_s[0] * 1000.0)
        if stored is not None and math.isclose(float(stored), tau_ms, rel_tol=1e-9):
            tau_ms = float(stored)
        beta = decay_factor(tau_ms, dt_ms)
        factor = _close_to_one((1.0 - beta) * np.asarray(node.r, dtype=np.float64))
        threshold = _compress(np.asarray(node.v_threshold, dtype=np.float64) / factor, name)
        return LIF(tau_ms=tau_ms, threshold=threshold, reset=reset, v_init_fraction=fraction)
    raise NIRImportError(
        f"node {name!r}: NIR {type(node).__name__} has no spikebridge equivalent (supported: "
        "Input, Affine, Linear, Conv2d, AvgPool2d, Flatten, IF, LIF, Output)"
    )


def read_nir(
    path: str | Path, *, dt_ms: float | None = None, input_encoding: str | None = None
) -> SpikingGraph:
    """Read a NIR file (``nir.read``) into a :class:`~bridge.graph.SpikingGraph`; see
    :func:`from_nir` for ``dt_ms`` and ``input_encoding``."""
    return from_nir(nir.read(Path(path)), dt_ms=dt_ms, input_encoding=input_encoding)
