"""A run's folder and how it is written.

Every run owns one folder::

    config.json     every parameter, the seed, the device, package versions, the command
    metrics.json    the results (written last: its presence means the run finished)
    *.png           plots
    report.md       the key numbers with the plots embedded
    checkpoint*.pt  state to resume from, if the experiment checkpoints

Every file is written atomically (a temporary file in the same folder, then ``os.replace``), so
a run killed at any moment leaves either the old or the new version of a file, never half of one.
"""

from __future__ import annotations

import io
import json
import os
import platform
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "write_json",
    "read_json",
    "package_versions",
    "RunContext",
]

_PACKAGES = ("spikebridge", "torch", "numpy", "scipy", "brian2", "snntorch", "nir", "matplotlib")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and paths so that ``json`` can write them."""
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_to_jsonable) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def package_versions() -> dict[str, str]:
    """Python and the versions of the packages a result depends on."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass(frozen=True)
class RunContext:
    """What an experiment's ``run`` function gets besides its configuration.

    Attributes
    ----------
    run_dir : the run's folder (exists).
    seed : the run's seed; the experiment seeds everything random from it.
    device : ``"cpu"`` or ``"cuda"`` (already checked to be available).
    quick : whether this is the reduced ``--quick`` configuration.
    progress : whether to show progress bars.
    """

    run_dir: Path
    seed: int
    device: str
    quick: bool = False
    progress: bool = True

    def path(self, name: str) -> Path:
        """Path of a file inside the run folder."""
        return self.run_dir / name

    def save_figure(self, fig: Any, name: str, dpi: int = 150) -> str:
        """Save a matplotlib figure as PNG in the run folder (atomically); return its file name."""
        if not name.endswith(".png"):
            name += ".png"
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        atomic_write_bytes(self.path(name), buffer.getvalue())
        return name
