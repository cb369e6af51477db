"""ANN-to-SNN conversion through a small typed spiking graph, exchanged via NIR.

* :mod:`bridge.graph` -- the graph: nodes, shape checks, save/load.
* :mod:`bridge.conversion` -- :func:`convert`, a fixed pipeline of named steps.
* :mod:`bridge.calibration` -- activation percentiles for data-based normalisation.
* :mod:`bridge.runners` -- simulate a graph with snnTorch (:func:`run`).
* :mod:`bridge.nir_io` -- export to and import from NIR files.
* :mod:`bridge.surrogate` -- SNNs trained directly with surrogate gradients (snnTorch, BPTT).

``bridge`` imports ``ann`` (and may import ``neuro``), never ``experiments``.
"""

from bridge.calibration import CalibrationError, activation_percentiles
from bridge.conversion import (
    CONVERSION_STEPS,
    SUPPORTED_LAYERS,
    Conversion,
    ConversionError,
    ConversionReport,
    LayerReport,
    UnsupportedLayerError,
    convert,
    expected_rates,
    fold_batchnorm,
)
from bridge.graph import (
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
    graph_macs,
    load_graph,
    save_graph,
)
from bridge.nir_io import NIRExportError, NIRImportError, from_nir, read_nir, to_nir, write_nir
from bridge.runners import SNNRunResult, SNNState, SNNTorchNetwork, run
from bridge.surrogate import (
    SurrogateEvaluation,
    SurrogateSNN,
    SurrogateSNNConfig,
    SurrogateTrainResult,
    build_surrogate_snn,
    evaluate_surrogate_snn,
    train_surrogate_snn,
)

__all__ = [
    # graph
    "SpikingGraph",
    "Input",
    "Affine",
    "Conv2d",
    "AvgPool2d",
    "MaxPool2d",
    "Flatten",
    "IF",
    "LIF",
    "Output",
    "GraphError",
    "decay_factor",
    "graph_macs",
    "save_graph",
    "load_graph",
    # conversion
    "convert",
    "Conversion",
    "ConversionReport",
    "LayerReport",
    "ConversionError",
    "UnsupportedLayerError",
    "CalibrationError",
    "CONVERSION_STEPS",
    "SUPPORTED_LAYERS",
    "fold_batchnorm",
    "expected_rates",
    "activation_percentiles",
    # running
    "run",
    "SNNRunResult",
    "SNNState",
    "SNNTorchNetwork",
    # NIR
    "to_nir",
    "from_nir",
    "write_nir",
    "read_nir",
    "NIRExportError",
    "NIRImportError",
    # surrogate-gradient training
    "SurrogateSNNConfig",
    "SurrogateSNN",
    "SurrogateTrainResult",
    "SurrogateEvaluation",
    "build_surrogate_snn",
    "train_surrogate_snn",
    "evaluate_surrogate_snn",
]
