"""Saving and loading trained ANNs as a configuration plus a state dict.

A model file is written with :func:`torch.save` and holds only plain containers and tensors, so
it is read back with ``torch.load(..., weights_only=True)`` (no arbitrary pickled code runs)::

    {"format": "spikebridge-ann", "version": 1,
     "config": config.to_dict(), "state_dict": {...}, "extra": {...}}

Files are written atomically (a temporary file in the same directory, then :func:`os.replace`),
so a crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ann.models import ModelConfig, build_model, model_config_from_dict

__all__ = [
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "ModelFileError",
    "atomic_torch_save",
    "read_checkpoint",
    "save_model",
    "load_model",
]

MODEL_FORMAT = "spikebridge-ann"
MODEL_FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file is missing, unreadable or inconsistent; ``path`` names the file."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def atomic_torch_save(obj: Any, path: Path | str) -> None:
    """``torch.save(obj, path)`` through a temporary file in the same directory and a rename.

    Readers see either the previous file or the complete new one, never a partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        # Remove the temporary file on any failure, including KeyboardInterrupt.
        Path(tmp_name).unlink(missing_ok=True)
        raise


def read_checkpoint(
    path: Path | str,
    file_format: str,
    version: int,
    what: str,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Read a checkpoint written with :func:`atomic_torch_save` (``torch.load(weights_only=True)``)
    and check that its ``"format"`` entry is ``file_format`` and its ``"version"`` is ``version``.

    Raises ``ValueError`` naming ``path`` and the kind of checkpoint (``what``, e.g.
    ``"training"``) when the file cannot be read (delete it to start afresh), is not such a
    checkpoint, or has another version.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or foreign files
        raise ValueError(
            f"cannot read {what} checkpoint {path} ({type(error).__name__}: {error}); "
            "delete it to start afresh"
        ) from error
    if not isinstance(state, dict) or state.get("format") != file_format:
        raise ValueError(f"{path} is not a spikebridge {what} checkpoint")
    if state.get("version") != version:
        raise ValueError(f"{path}: unsupported checkpoint version {state.get('version')!r}")
    return state


_PLAIN_TYPES = (str, int, float, bool, type(None), torch.Tensor)


def _check_weights_only(value: Any, where: str) -> None:
    """Raise ``TypeError`` if ``value`` could not be read back with ``weights_only=True``."""
    if isinstance(value, _PLAIN_TYPES):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_weights_only(key, f"{where} key")
            _check_weights_only(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_weights_only(item, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}; extra may hold only dicts, lists, tuples, str, "
        "int, float, bool, None and tensors"
    )


def save_model(
    path: Path | str,
    model: nn.Module,
    config: ModelConfig,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``model`` (built from ``config``) to ``path`` atomically.

    Parameters
    ----------
    path : destination file (parent directories are created).
    model : the network; its state dict is saved on the CPU.
    config : the configuration the network was built from.
    extra : optional metadata (training config, metrics, ...): dicts, lists, tuples, str, int,
        float, bool, None and tensors only, so that the file stays ``weights_only``-loadable.

    Raises
    ------
    TypeError
        If ``extra`` holds other types.
    """
    extra = {} if extra is None else dict(extra)
    _check_weights_only(extra, "extra")
    state_dict = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    payload = {
        "format": MODEL_FORMAT,
        "version": MODEL_FORMAT_VERSION,
        "config": config.to_dict(),
        "state_dict": state_dict,
        "extra": extra,
    }
    atomic_torch_save(payload, path)


def load_model(
    path: Path | str, map_location: str | torch.device = "cpu"
) -> tuple[nn.Sequential, ModelConfig, dict[str, Any]]:
    """Read a file written by :func:`save_model`.

    Parameters
    ----------
    path : the model file.
    map_location : device the tensors are loaded onto.

    Returns
    -------
    model : the rebuilt network with the saved weights, in eval mode.
    config : its configuration.
    extra : the saved metadata (``{}`` if none).

    Raises
    ------
    ModelFileError
        If the file is missing, is not a readable torch file, is not a spikebridge ANN file (or
        has an unsupported version), or its state dict does not match its architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "no such model file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or foreign files
        raise ModelFileError(
            path, f"not a readable torch file ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ModelFileError(
            path, f"not a spikebridge ANN file (expected format {MODEL_FORMAT!r}, found {found!r})"
        )
    version = payload.get("version")
    if version != MODEL_FORMAT_VERSION:
        raise ModelFileError(
            path, f"unsupported format version {version!r} (this code reads {MODEL_FORMAT_VERSION})"
        )
    try:
        config = model_config_from_dict(payload.get("config"))
    except ValueError as error:
        raise ModelFileError(path, f"invalid model config: {error}") from error
    model = build_model(config).to(map_location)
    state_dict = payload.get("state_dict")
    if not isinstance(state_dict, Mapping):
        raise ModelFileError(path, "missing state_dict")
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        raise ModelFileError(
            path,
            f"state_dict does not match the {config.kind!r} architecture in its config: {error}",
        ) from error
    model.eval()
    extra = payload.get("extra") or {}
    return model, config, dict(extra)
