"""Image classification data sets as tensors, loaded from local files only.

Nothing here downloads anything. Every loader returns a :class:`DatasetSplits`
with three :class:`Split` s (train, val, test) whose images are ``float32``
tensors in :math:`[0, 1]` shaped ``(N, C, H, W)`` and whose labels are
``int64`` tensors shaped ``(N,)``.

Data sets
---------
``digits``
    scikit-learn's bundled 8x8 handwritten digits (1797 images), split with a
    stratified, seeded split.
``fashion-mnist``
    Fashion-MNIST [1]_ read from the IDX files of the Debian package
    ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``), from the
    directory named by ``SPIKEBRIDGE_FASHION_MNIST_DIR``, or from ``root=``.
``mnist`` / ``idx``
    Any data set stored in the MNIST IDX format [2]_ under the four standard
    file names, read from a directory the caller names.

For the IDX data sets the validation split is carved from the training files
and the test split is the official test file. The same seed always gives the
same splits.

Every problem with a data file raises :class:`DatasetError`, whose message
names the file and says how to fix it.

References
----------
.. [1] H. Xiao, K. Rasul and R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset
   for Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017.
.. [2] Y. LeCun, C. Cortes and C. J. C. Burges, "The MNIST database of
   handwritten digits", http://yann.lecun.com/exdb/mnist/ (IDX format).
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "DATASET_NAMES",
    "FASHION_MNIST_CLASS_NAMES",
    "FASHION_MNIST_DEFAULT_DIR",
    "FASHION_MNIST_ENV_VAR",
    "IDX_FILE_NAMES",
    "DatasetError",
    "DatasetSplits",
    "Split",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_idx_dataset",
    "load_idx_directory",
    "read_idx",
]

DATASET_NAMES: tuple[str, ...] = ("digits", "fashion-mnist", "mnist", "idx")
"""Names accepted by :func:`load_dataset`."""

FASHION_MNIST_ENV_VAR = "SPIKEBRIDGE_FASHION_MNIST_DIR"
"""Environment variable naming the directory that holds the Fashion-MNIST files."""

FASHION_MNIST_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian package ``dataset-fashion-mnist`` installs the files."""

FASHION_MNIST_CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""The ten Fashion-MNIST classes, in label order 0..9."""

IDX_FILE_NAMES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""The standard MNIST file names (each may also carry a ``.gz`` suffix)."""

_DIGIT_CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))

_FASHION_MNIST_FIX = (
    "To fix: install the files with `apt-get install dataset-fashion-mnist` "
    f"(they go to {FASHION_MNIST_DEFAULT_DIR}), or pass root=<directory> "
    f"or set {FASHION_MNIST_ENV_VAR}=<directory> to a directory that holds "
    + ", ".join(f"{name}.gz" for name in IDX_FILE_NAMES.values())
    + "."
)

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_UNSIGNED_BYTE = 0x08
_IDX_TYPE_NAMES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "short (int16)",
    0x0C: "int (int32)",
    0x0D: "float (float32)",
    0x0E: "double (float64)",
}
_CORRUPT_FIX = "The file is corrupt or incomplete: download or write it again."


class DatasetError(ValueError):
    """A data file is missing, unreadable or malformed.

    The message names the file and says how to fix the problem.
    """


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a data set: images and their labels.

    ``eq=False`` because tensors have no single truth value; compare the
    fields with :func:`torch.equal` instead.

    Parameters
    ----------
    images : torch.Tensor
        ``float32`` tensor in :math:`[0, 1]`, shape ``(N, C, H, W)``.
    labels : torch.Tensor
        ``int64`` tensor, shape ``(N,)``.
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != torch.float32:
            raise ValueError(
                "Split.images must be a float32 tensor shaped (N, C, H, W), got "
                f"{self.images.dtype} with shape {tuple(self.images.shape)}"
            )
        if self.labels.ndim != 1 or self.labels.dtype != torch.int64:
            raise ValueError(
                "Split.labels must be an int64 tensor shaped (N,), got "
                f"{self.labels.dtype} with shape {tuple(self.labels.shape)}"
            )
        if len(self.images) != len(self.labels):
            raise ValueError(
                f"Split has {len(self.images)} images but {len(self.labels)} labels"
            )

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """A data set split into train, validation and test parts.

    Parameters
    ----------
    name : str
        Name of the data set, e.g. ``"digits"``.
    train, val, test : Split
        The three splits; all share the same image shape ``(C, H, W)``.
    num_classes : int
        Number of classes; labels lie in ``0 .. num_classes - 1``.
    class_names : tuple of str
        One name per class, in label order.
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{self.name}: {len(self.class_names)} class names for "
                f"{self.num_classes} classes"
            )
        shapes = {tuple(s.images.shape[1:]) for s in (self.train, self.val, self.test)}
        if len(shapes) != 1:
            raise ValueError(f"{self.name}: splits have different image shapes {sorted(shapes)}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one image, ``(C, H, W)``."""
        channels, height, width = self.train.images.shape[1:]
        return (int(channels), int(height), int(width))


# --------------------------------------------------------------------------- IDX files


def _read_bytes(path: Path) -> bytes:
    """Read a file, gunzipping it when it starts with the gzip magic bytes."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(
            f"{path}: file not found. Check the path, or pass the path of an existing file."
        ) from None
    except OSError as err:
        raise DatasetError(
            f"{path}: cannot read the file ({err.strerror or err}). "
            "Check that it is a readable regular file."
        ) from err
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError(
            f"{path}: corrupt gzip stream ({err}). {_CORRUPT_FIX}"
        ) from err


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file of unsigned bytes.

    The IDX format is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then
    ``ndim`` big-endian ``uint32`` dimension sizes, then the values in C order.
    Gzipped files are recognised by their magic bytes ``1f 8b``, not by their
    extension.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array with the shape stored in the header (read-only view of
        the file contents).

    Raises
    ------
    DatasetError
        If the file is missing or unreadable, the gzip stream is corrupt, the
        magic number is wrong, the type is not unsigned byte (``0x08``),
        ``ndim`` is not in 1..4, or the payload size differs from the product of
        the dimensions (truncated file or trailing bytes).
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(
            f"{path}: {len(data)} bytes is too short for an IDX header (4 bytes). {_CORRUPT_FIX}"
        )
    zero_a, zero_b, type_code, ndim = data[0], data[1], data[2], data[3]
    if zero_a != 0 or zero_b != 0:
        raise DatasetError(
            f"{path}: not an IDX file (magic number starts with bytes "
            f"0x{zero_a:02x} 0x{zero_b:02x}, expected 0x00 0x00). "
            "Pass an MNIST-format IDX file (gzipped or not)."
        )
    if type_code != _IDX_UNSIGNED_BYTE:
        type_name = _IDX_TYPE_NAMES.get(type_code, "unknown type")
        raise DatasetError(
            f"{path}: IDX type code 0x{type_code:02x} ({type_name}) is not supported; "
            "only 0x08 (unsigned byte) is. Convert the file to unsigned bytes."
        )
    if not 1 <= ndim <= 4:
        raise DatasetError(
            f"{path}: IDX header gives {ndim} dimensions; expected 1 to 4. {_CORRUPT_FIX}"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DatasetError(
            f"{path}: truncated IDX header: expected {header_size} bytes, got {len(data)}. "
            f"{_CORRUPT_FIX}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(data) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "trailing bytes after the data"
        raise DatasetError(
            f"{path}: {problem}: header shape {shape} needs {expected} data bytes, "
            f"file has {actual}. {_CORRUPT_FIX}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def _check_images(images: np.ndarray, path: Path) -> None:
    """Raise :class:`DatasetError` unless ``images`` is ``(N, H, W)``."""
    if images.ndim != 3:
        raise DatasetError(
            f"{path}: an image file must be 3-D (N, H, W), got shape {images.shape}. "
            "Pass an images file (e.g. train-images-idx3-ubyte), not a labels file."
        )


def _check_labels(labels: np.ndarray, path: Path, num_classes: int) -> None:
    """Raise :class:`DatasetError` unless ``labels`` is 1-D with values in range."""
    if labels.ndim != 1:
        raise DatasetError(
            f"{path}: a label file must be 1-D (N,), got shape {labels.shape}. "
            "Pass a labels file (e.g. train-labels-idx1-ubyte), not an images file."
        )
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        index = int(bad[0])
        raise DatasetError(
            f"{path}: label {int(labels[index])} at index {index} is outside "
            f"0..{num_classes - 1} ({bad.size} bad labels). Pass the right labels file, "
            "or set num_classes / class_names to match the data."
        )


def _check_counts(images: np.ndarray, labels: np.ndarray, images_path: Path,
                  labels_path: Path) -> None:
    """Raise :class:`DatasetError` unless there is one label per image."""
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path} has {len(images)} images but {labels_path} has "
            f"{len(labels)} labels. Pass an images file and the labels file that belongs to it."
        )


def _read_pair(images_path: Path, labels_path: Path, num_classes: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate one images file and its labels file."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    _check_images(images, images_path)
    _check_labels(labels, labels_path, num_classes)
    _check_counts(images, labels, images_path, labels_path)
    return images, labels


# --------------------------------------------------------------------------- splitting


def _seeded_rng(seed: int, stream: int) -> np.random.Generator:
    """Independent generator per purpose, so one choice never shifts another."""
    return np.random.default_rng([seed, stream])


def _carve_validation(n_train: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``val_size`` seeded random indices of ``n_train`` for validation.

    Returns
    -------
    train_indices, val_indices : numpy.ndarray
        Disjoint, each sorted so that the file order is kept.
    """
    if not 0 <= val_size < n_train:
        raise ValueError(
            f"val_size must be in 0..{n_train - 1} (the training file has {n_train} "
            f"examples), got {val_size}"
        )
    order = _seeded_rng(seed, 0).permutation(n_train)
    return np.sort(order[val_size:]), np.sort(order[:val_size])


def _limit(indices: np.ndarray, limit: int | None, rng: np.random.Generator,
           what: str) -> np.ndarray:
    """Keep a seeded random subset of ``limit`` of ``indices`` (all if ``None``)."""
    if limit is None:
        return indices
    if not 1 <= limit <= len(indices):
        raise ValueError(f"{what} must be in 1..{len(indices)}, got {limit}")
    return np.sort(rng.choice(indices, size=limit, replace=False))


def _to_split(images: np.ndarray, labels: np.ndarray) -> Split:
    """Convert ``uint8`` images ``(N, H, W)`` and labels to a :class:`Split`.

    Images are scaled by ``1/255`` and get a channel axis: ``(N, 1, H, W)``.
    """
    pixels = torch.from_numpy(np.ascontiguousarray(images)[:, None, :, :])
    return Split(
        images=pixels.to(torch.float32).div_(255.0),
        labels=torch.from_numpy(labels.astype(np.int64)),
    )


def _resolve_classes(num_classes: int | None, class_names: tuple[str, ...] | None
                     ) -> tuple[int, tuple[str, ...]]:
    """Fill in whichever of ``num_classes`` / ``class_names`` is missing."""
    if class_names is not None:
        class_names = tuple(class_names)
        if num_classes is not None and num_classes != len(class_names):
            raise ValueError(
                f"num_classes={num_classes} but {len(class_names)} class names were given"
            )
        return len(class_names), class_names
    if num_classes is None:
        num_classes = 10
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    return num_classes, tuple(str(c) for c in range(num_classes))


# --------------------------------------------------------------------------- loaders


def load_idx_dataset(
    train_images: str | os.PathLike[str],
    train_labels: str | os.PathLike[str],
    test_images: str | os.PathLike[str],
    test_labels: str | os.PathLike[str],
    *,
    name: str = "idx",
    val_size: int = 5000,
    seed: int = 0,
    num_classes: int | None = None,
    class_names: tuple[str, ...] | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
) -> DatasetSplits:
    """Load a data set stored as four MNIST-format IDX files.

    The validation split is ``val_size`` seeded random examples of the training
    files; the train split is the rest; the test split is the test files.

    Parameters
    ----------
    train_images, train_labels, test_images, test_labels : str or os.PathLike
        Paths of the IDX files (gzipped or not). Image files hold ``uint8``
        arrays shaped ``(N, H, W)``, label files ``uint8`` arrays shaped ``(N,)``.
    name : str
        Name recorded in the result.
    val_size : int
        Number of training-file examples moved to the validation split,
        ``0 <= val_size < N_train``.
    seed : int
        Seed of the validation split and of the subsets; the same seed gives
        the same splits.
    num_classes : int, optional
        Number of classes; defaults to ``len(class_names)``, else 10.
    class_names : tuple of str, optional
        Class names in label order; defaults to ``"0", "1", ...``.
    train_limit, test_limit : int, optional
        Keep only a seeded random subset of this many examples of the train
        (after the validation split is carved) and test splits, for quick runs.

    Returns
    -------
    DatasetSplits
        Images ``float32`` in :math:`[0, 1]` shaped ``(N, 1, H, W)``.

    Raises
    ------
    DatasetError
        If a file is missing or malformed (see :func:`read_idx`), an image file
        is not 3-D, a label file is not 1-D, image and label counts differ, a
        label is outside ``0 .. num_classes - 1``, or the train and test images
        have different sizes.
    ValueError
        If ``val_size``, a limit, or the class arguments are out of range.
    """
    num_classes, class_names = _resolve_classes(num_classes, class_names)
    paths = [Path(p) for p in (train_images, train_labels, test_images, test_labels)]
    train_x, train_y = _read_pair(paths[0], paths[1], num_classes)
    test_x, test_y = _read_pair(paths[2], paths[3], num_classes)
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DatasetError(
            f"{paths[0]} holds {train_x.shape[1:]} images but {paths[2]} holds "
            f"{test_x.shape[1:]} images. Pass training and test files of the same data set."
        )

    train_idx, val_idx = _carve_validation(len(train_y), val_size, seed)
    train_idx = _limit(train_idx, train_limit, _seeded_rng(seed, 1), "train_limit")
    test_idx = _limit(np.arange(len(test_y)), test_limit, _seeded_rng(seed, 2), "test_limit")
    return DatasetSplits(
        name=name,
        train=_to_split(train_x[train_idx], train_y[train_idx]),
        val=_to_split(train_x[val_idx], train_y[val_idx]),
        test=_to_split(test_x[test_idx], test_y[test_idx]),
        num_classes=num_classes,
        class_names=class_names,
    )


def _find_idx_file(root: Path, stem: str) -> Path | None:
    """Return ``root/stem`` or ``root/stem.gz``, whichever exists (plain first)."""
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_idx_directory(
    root: str | os.PathLike[str],
    *,
    name: str = "idx",
    val_size: int = 5000,
    seed: int = 0,
    num_classes: int | None = None,
    class_names: tuple[str, ...] | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
) -> DatasetSplits:
    """Load the four standard MNIST-format files from a directory.

    Looks for ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each with or
    without a ``.gz`` suffix (the plain file wins when both exist).

    Parameters
    ----------
    root : str or os.PathLike
        Directory holding the files.
    name, val_size, seed, num_classes, class_names, train_limit, test_limit
        As in :func:`load_idx_dataset`.

    Returns
    -------
    DatasetSplits

    Raises
    ------
    DatasetError
        If the directory or any of the four files is missing, or a file is
        malformed (see :func:`load_idx_dataset`).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"{root}: directory not found. Pass the directory that holds "
            + ", ".join(IDX_FILE_NAMES.values())
            + " (each optionally gzipped)."
        )
    found = {key: _find_idx_file(root, stem) for key, stem in IDX_FILE_NAMES.items()}
    missing = [IDX_FILE_NAMES[key] for key, path in found.items() if path is None]
    if missing:
        raise DatasetError(
            f"{root}: missing "
            + ", ".join(f"{stem}[.gz]" for stem in missing)
            + ". Put the files there or pass the directory that holds them."
        )
    return load_idx_dataset(
        found["train_images"],
        found["train_labels"],
        found["test_images"],
        found["test_labels"],
        name=name,
        val_size=val_size,
        seed=seed,
        num_classes=num_classes,
        class_names=class_names,
        train_limit=train_limit,
        test_limit=test_limit,
    )


def _fashion_mnist_root(root: str | os.PathLike[str] | None) -> Path:
    """``root`` if given, else ``$SPIKEBRIDGE_FASHION_MNIST_DIR``, else the Debian path."""
    if root is not None:
        return Path(root)
    from_env = os.environ.get(FASHION_MNIST_ENV_VAR)
    if from_env:
        return Path(from_env)
    return FASHION_MNIST_DEFAULT_DIR


def load_fashion_mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    val_size: int = 5000,
    seed: int = 0,
    train_limit: int | None = None,
    test_limit: int | None = None,
) -> DatasetSplits:
    """Load Fashion-MNIST from local IDX files.

    28x28 grey-scale images of 10 clothing classes [1]_: 60000 training images
    (of which ``val_size`` become the validation split) and 10000 test images.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Directory with the four IDX files. Defaults to the environment variable
        ``SPIKEBRIDGE_FASHION_MNIST_DIR``, else ``/usr/share/datasets/fashion-mnist``
        (installed by ``apt-get install dataset-fashion-mnist``).
    val_size : int
        Number of training images moved to the validation split.
    seed : int
        Seed of the validation split and of the subsets.
    train_limit, test_limit : int, optional
        Keep only a seeded random subset of this many train / test examples.

    Returns
    -------
    DatasetSplits
        Named ``"fashion-mnist"``, input shape ``(1, 28, 28)``, 10 classes.

    Raises
    ------
    DatasetError
        If the files are missing or malformed; the message says how to install
        them or where to point the loader.
    """
    directory = _fashion_mnist_root(root)
    try:
        return load_idx_directory(
            directory,
            name="fashion-mnist",
            val_size=val_size,
            seed=seed,
            class_names=FASHION_MNIST_CLASS_NAMES,
            train_limit=train_limit,
            test_limit=test_limit,
        )
    except DatasetError as err:
        raise DatasetError(f"Fashion-MNIST: {err}\n{_FASHION_MNIST_FIX}") from err


def load_digits(
    *, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> DatasetSplits:
    """Load scikit-learn's bundled 8x8 handwritten digits.

    1797 images with values 0..16, scaled by ``1/16`` to :math:`[0, 1]`. The
    test split is ``round(test_fraction * 1797)`` images and the validation
    split ``round(val_fraction * 1797)`` images, both drawn stratified by class
    with the given seed; the train split is the rest.

    Parameters
    ----------
    val_fraction, test_fraction : float
        Fractions of the whole data set, each in ``(0, 1)``, summing to less
        than 1.
    seed : int
        Seed of the split; the same seed gives the same splits.

    Returns
    -------
    DatasetSplits
        Named ``"digits"``, input shape ``(1, 8, 8)``, classes ``"0"`` .. ``"9"``.

    Raises
    ------
    ValueError
        If the fractions are out of range.
    """
    from sklearn.datasets import load_digits as sklearn_load_digits
    from sklearn.model_selection import train_test_split

    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            "val_fraction and test_fraction must each be in (0, 1) and sum to less than 1, "
            f"got {val_fraction} and {test_fraction}"
        )
    bunch = sklearn_load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    n = len(labels)
    n_test = round(test_fraction * n)
    n_val = round(val_fraction * n)

    rest_x, test_x, rest_y, test_y = train_test_split(
        images, labels, test_size=n_test, stratify=labels, random_state=seed
    )
    train_x, val_x, train_y, val_y = train_test_split(
        rest_x, rest_y, test_size=n_val, stratify=rest_y, random_state=seed
    )

    def split(x: np.ndarray, y: np.ndarray) -> Split:
        return Split(images=torch.from_numpy(np.ascontiguousarray(x)), labels=torch.from_numpy(y))

    return DatasetSplits(
        name="digits",
        train=split(train_x, train_y),
        val=split(val_x, val_y),
        test=split(test_x, test_y),
        num_classes=10,
        class_names=_DIGIT_CLASS_NAMES,
    )


def load_dataset(name: str, **kwargs: object) -> DatasetSplits:
    """Load a data set by name.

    Parameters
    ----------
    name : str
        One of :data:`DATASET_NAMES`: ``"digits"`` (:func:`load_digits`),
        ``"fashion-mnist"`` (:func:`load_fashion_mnist`), ``"mnist"`` or
        ``"idx"`` (:func:`load_idx_directory`, which needs ``root=``).
    **kwargs
        Passed to the loader.

    Returns
    -------
    DatasetSplits

    Raises
    ------
    ValueError
        If ``name`` is unknown, or ``"mnist"`` / ``"idx"`` is asked for
        without ``root=``.
    """
    if name == "digits":
        return load_digits(**kwargs)  # type: ignore[arg-type]
    if name == "fashion-mnist":
        return load_fashion_mnist(**kwargs)  # type: ignore[arg-type]
    if name in ("mnist", "idx"):
        if "root" not in kwargs:
            raise ValueError(
                f"data set {name!r} is read from local files: pass root=<directory> holding "
                + ", ".join(IDX_FILE_NAMES.values())
            )
        root = kwargs.pop("root")
        return load_idx_directory(root, name=name, **kwargs)  # type: ignore[arg-type]
    raise ValueError(
        f"unknown data set {name!r}; valid names are: " + ", ".join(DATASET_NAMES)
    )
