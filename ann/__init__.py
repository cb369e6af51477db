"""Rate-based artificial neural networks: data sets, MLP/CNN models, backprop training,
evaluation and save/load. ``ann`` never imports ``neuro``, ``bridge`` or ``experiments``.
"""

from ann.activations import QCFS, qcfs_modules
from ann.datasets import (
    DATASET_NAMES,
    DatasetError,
    DatasetSplits,
    Split,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_idx_dataset,
    load_idx_directory,
    read_idx,
)
from ann.evaluation import Evaluation, evaluate, predict
from ann.hebbian import (
    HebbianClassifier,
    HebbianFeatures,
    HebbianStats,
    KrotovHopfieldParams,
    krotov_hopfield_update,
    plot_receptive_fields,
    train_hebbian_layer,
)
from ann.models import CNNConfig, MLPConfig, ModelConfig, build_model, macs, model_config_from_dict
from ann.plots import plot_confusion_matrix, plot_learning_curves
from ann.serialization import ModelFileError, load_model, save_model
from ann.training import TrainConfig, TrainResult, train

__all__: list[str] = [
    "MLPConfig",
    "CNNConfig",
    "ModelConfig",
    "build_model",
    "model_config_from_dict",
    "macs",
    "QCFS",
    "qcfs_modules",
    "TrainConfig",
    "TrainResult",
    "train",
    "Evaluation",
    "predict",
    "evaluate",
    "save_model",
    "load_model",
    "ModelFileError",
    "plot_learning_curves",
    "plot_confusion_matrix",
    "DATASET_NAMES",
    "Split",
    "DatasetSplits",
    "DatasetError",
    "read_idx",
    "load_idx_dataset",
    "load_idx_directory",
    "load_fashion_mnist",
    "load_digits",
    "load_dataset",
    "KrotovHopfieldParams",
    "krotov_hopfield_update",
    "train_hebbian_layer",
    "HebbianFeatures",
    "HebbianStats",
    "HebbianClassifier",
    "plot_receptive_fields",
]
