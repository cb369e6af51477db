"""Tests for ann.datasets: IDX reading and validation, splits, loaders."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ann.datasets import (
    DATASET_NAMES,
    FASHION_MNIST_CLASS_NAMES,
    FASHION_MNIST_ENV_VAR,
    IDX_FILE_NAMES,
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

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------- helpers


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """Encode ``array`` as an IDX file: magic, big-endian uint32 dims, raw values."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False) -> Path:
    data = idx_bytes(array.astype(np.uint8))
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_arrays(n: int, seed: int, h: int = 4, w: int = 5, num_classes: int = 10):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
    images[0, 0, 0] = 255  # pin the range so the scaling check is exact
    images[0, 0, 1] = 0
    labels = (np.arange(n) % num_classes).astype(np.uint8)
    return images, labels


def write_idx_dir(root: Path, *, gz: bool = False, n_train: int = 40, n_test: int = 20) -> Path:
    """Write the four standard files; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    train_x, train_y = make_arrays(n_train, seed=1)
    test_x, test_y = make_arrays(n_test, seed=2)
    arrays = {
        "train_images": train_x,
        "train_labels": train_y,
        "test_images": test_x,
        "test_labels": test_y,
    }
    for key, array in arrays.items():
        write_idx(root / f"{IDX_FILE_NAMES[key]}{suffix}", array, gz=gz)
    return root


def four_paths(root: Path) -> list[Path]:
    return [root / IDX_FILE_NAMES[k] for k in
            ("train_images", "train_labels", "test_images", "test_labels")]


def assert_split_ok(split: Split, shape: tuple[int, ...], n: int) -> None:
    assert len(split) == n
    assert split.images.shape == (n, *shape)
    assert split.images.dtype == torch.float32
    assert split.labels.shape == (n,)
    assert split.labels.dtype == torch.int64
    assert float(split.images.min()) >= 0.0
    assert float(split.images.max()) <= 1.0


# --------------------------------------------------------------------------- read_idx


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    images, _ = make_arrays(7, seed=0)
    path = write_idx(tmp_path / "x", images, gz=gz)
    out = read_idx(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)


def test_read_idx_detects_gzip_by_magic_not_extension(tmp_path: Path) -> None:
    labels = np.arange(10, dtype=np.uint8)
    gz_no_ext = write_idx(tmp_path / "labels.idx", labels, gz=True)
    plain_with_gz_ext = write_idx(tmp_path / "labels.gz", labels, gz=False)
    np.testing.assert_array_equal(read_idx(gz_no_ext), labels)
    np.testing.assert_array_equal(read_idx(plain_with_gz_ext), labels)


@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
def test_read_idx_accepts_one_to_four_dims(tmp_path: Path, ndim: int) -> None:
    array = np.arange(np.prod((2, 3, 2, 2)[:ndim]), dtype=np.uint8).reshape((2, 3, 2, 2)[:ndim])
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a", array)), array)


def test_read_idx_wrong_magic(tmp_path: Path) -> None:
    data = bytearray(idx_bytes(np.zeros(3, dtype=np.uint8)))
    data[0] = 0x12
    path = tmp_path / "bad-magic"
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="not an IDX file") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_non_byte_type(tmp_path: Path) -> None:
    path = tmp_path / "floats"
    path.write_bytes(idx_bytes(np.zeros(3, dtype=np.float32), type_code=0x0D))
    with pytest.raises(DatasetError, match="0x0d") as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert "float" in message and "unsigned byte" in message


@pytest.mark.parametrize("ndim", [0, 5])
def test_read_idx_rejects_bad_ndim(tmp_path: Path, ndim: int) -> None:
    path = tmp_path / "ndim"
    path.write_bytes(struct.pack(">BBBB", 0, 0, 8, ndim) + b"\x01\x00\x00\x00" * 8)
    with pytest.raises(DatasetError, match=f"{ndim} dimensions") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated(tmp_path: Path, gz: bool) -> None:
    data = idx_bytes(np.zeros((4, 3, 3), dtype=np.uint8))[:-5]
    path = tmp_path / "short"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DatasetError, match="truncated") as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert "36" in message and "31" in message  # expected vs actual bytes
    assert "download or write it again" in message


def test_read_idx_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "header"
    path.write_bytes(struct.pack(">BBBB", 0, 0, 8, 3) + b"\x00\x00\x00\x02")
    with pytest.raises(DatasetError, match="truncated IDX header") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.zeros(6, dtype=np.uint8)) + b"\x00\x00")
    with pytest.raises(DatasetError, match="trailing bytes") as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert "6 data bytes" in message and "has 8" in message


@pytest.mark.parametrize("damage", ["garbage", "cut"])
def test_read_idx_corrupt_gzip(tmp_path: Path, damage: str) -> None:
    good = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    data = b"\x1f\x8b" + b"\xff" * 40 if damage == "garbage" else good[: len(good) // 2]
    path = tmp_path / "broken.gz"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match="corrupt gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    with pytest.raises(DatasetError, match="not found") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_dataset_error_is_value_error() -> None:
    assert issubclass(DatasetError, ValueError)


# --------------------------------------------------------------------------- IDX data sets


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_directory_good_files(tmp_path: Path, gz: bool) -> None:
    root = write_idx_dir(tmp_path / "data", gz=gz)
    data = load_idx_directory(root, name="toy", val_size=10)
    assert isinstance(data, DatasetSplits)
    assert data.name == "toy"
    assert data.num_classes == 10
    assert data.class_names == tuple(str(i) for i in range(10))
    assert data.input_shape == (1, 4, 5)
    assert_split_ok(data.train, (1, 4, 5), 30)
    assert_split_ok(data.val, (1, 4, 5), 10)
    assert_split_ok(data.test, (1, 4, 5), 20)
    # The test split is the whole test file, in order, scaled by 1/255.
    test_x, test_y = make_arrays(20, seed=2)
    torch.testing.assert_close(data.test.images[:, 0], torch.from_numpy(test_x / 255.0).float())
    torch.testing.assert_close(data.test.labels, torch.from_numpy(test_y.astype(np.int64)))
    assert float(data.test.images.max()) == 1.0 and float(data.test.images.min()) == 0.0


def test_idx_val_is_carved_from_train(tmp_path: Path) -> None:
    root = write_idx_dir(tmp_path, n_train=40)
    data = load_idx_directory(root, val_size=10)
    train_x, _ = make_arrays(40, seed=1)
    rows = {bytes(r) for r in train_x.reshape(40, -1)}
    for split in (data.train, data.val):
        got = {bytes(np.round(r.numpy() * 255).astype(np.uint8))
               for r in split.images.reshape(len(split), -1)}
        assert got <= rows
    train_rows = {bytes(r.numpy()) for r in data.train.images.reshape(30, -1)}
    val_rows = {bytes(r.numpy()) for r in data.val.images.reshape(10, -1)}
    assert not train_rows & val_rows
    assert len(train_rows | val_rows) == 40


def test_idx_split_is_deterministic(tmp_path: Path) -> None:
    root = write_idx_dir(tmp_path)
    a = load_idx_directory(root, val_size=10, seed=3)
    b = load_idx_directory(root, val_size=10, seed=3)
    c = load_idx_directory(root, val_size=10, seed=4)
    assert torch.equal(a.val.images, b.val.images)
    assert torch.equal(a.train.labels, b.train.labels)
    assert not torch.equal(a.val.images, c.val.images)


def test_idx_limits(tmp_path: Path) -> None:
    root = write_idx_dir(tmp_path)
    a = load_idx_directory(root, val_size=10, train_limit=7, test_limit=5)
    b = load_idx_directory(root, val_size=10, train_limit=7, test_limit=5)
    assert (len(a.train), len(a.val), len(a.test)) == (7, 10, 5)
    assert torch.equal(a.train.images, b.train.images)
    assert torch.equal(a.test.labels, b.test.labels)
    with pytest.raises(ValueError, match="train_limit"):
        load_idx_directory(root, val_size=10, train_limit=31)


def test_idx_val_size_out_of_range(tmp_path: Path) -> None:
    root = write_idx_dir(tmp_path, n_train=40)
    with pytest.raises(ValueError, match="val_size"):
        load_idx_directory(root, val_size=40)


def test_load_idx_dataset_explicit_paths(tmp_path: Path) -> None:
    write_idx_dir(tmp_path)
    names = ("a", "b", "c")
    labels_path = tmp_path / "three-classes"
    write_idx(labels_path, np.arange(40) % 3)
    test_labels = tmp_path / "three-classes-test"
    write_idx(test_labels, np.arange(20) % 3)
    paths = four_paths(tmp_path)
    data = load_idx_dataset(paths[0], labels_path, paths[2], test_labels,
                            name="abc", val_size=4, class_names=names)
    assert data.num_classes == 3 and data.class_names == names
    assert (len(data.train), len(data.val), len(data.test)) == (36, 4, 20)


def test_label_out_of_range(tmp_path: Path) -> None:
    root = write_idx_dir(tmp_path)
    bad = (np.arange(40) % 10).astype(np.uint8)
    bad[17] = 12
    labels_path = root / IDX_FILE_NAMES["train_labels"]
    write_idx(labels_path, bad)
    with pytest.raises(DatasetError) as info:
        load_idx_directory(root, val_size=5)
    message = str(info.value)
    assert str(labels_path) in message
    assert "label 12 at index 17" in message and "0..9" in message


def test_label_equal_to_num_classes_is_out_of_range(tmp_path: Path) -> None:
    root = write_idx_dir(tmp_path)
    bad = (np.arange(20) % 10).astype(np.uint8)
    bad[3] = 10
    labels_path = root / IDX_FILE_NAMES["test_labels"]
    write_idx(labels_path, bad)
    with pytest.raises(DatasetError, match="label 10 at index 3") as info:
        load_idx_directory(root, val_size=5)
    assert str(labels_path) in str(info.value)


def test_label_out_of_range_with_fewer_classes(tmp_path: Path) -> None:
    root = write_idx_dir(tmp_path)  # labels go up to 9
    with pytest.raises(DatasetError, match="outside 0..4"):
        load_idx_directory(root, val_size=5, num_classes=5)


def test_image_label_count_mismatch(tmp_path: Path) -> None:
    root = write_idx_dir(tmp_path)
    labels_path = root / IDX_FILE_NAMES["test_labels"]
    write_idx(labels_path, np.zeros(19, dtype=np.uint8))
    with pytest.raises(DatasetError) as info:
        load_idx_directory(root, val_size=5)
    message = str(info.value)
    assert str(labels_path) in message
    assert str(root / IDX_FILE_NAMES["test_images"]) in message
    assert "20 images" in message and "19 labels" in message


def test_images_must_be_3d_and_labels_1d(tmp_path: Path) -> None:
    root = write_idx_dir(tmp_path)
    paths = four_paths(root)
    with pytest.raises(DatasetError, match="3-D") as info:
        load_idx_dataset(paths[1], paths[1], paths[2], paths[3], val_size=5)
    assert str(paths[1]) in str(info.value)
    with pytest.raises(DatasetError, match="1-D") as info:
        load_idx_dataset(paths[0], paths[0], paths[2], paths[3], val_size=5)
    assert str(paths[0]) in str(info.value)


def test_train_test_image_size_mismatch(tmp_path: Path) -> None:
    root = write_idx_dir(tmp_path)
    test_x, _ = make_arrays(20, seed=2, h=6, w=6)
    write_idx(root / IDX_FILE_NAMES["test_images"], test_x)
    with pytest.raises(DatasetError, match="same data set"):
        load_idx_directory(root, val_size=5)


def test_missing_directory(tmp_path: Path) -> None:
    root = tmp_path / "absent"
    with pytest.raises(DatasetError, match="directory not found") as info:
        load_idx_directory(root)
    assert str(root) in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    root = write_idx_dir(tmp_path, gz=True)
    (root / f"{IDX_FILE_NAMES['test_labels']}.gz").unlink()
    with pytest.raises(DatasetError) as info:
        load_idx_directory(root, val_size=5)
    message = str(info.value)
    assert IDX_FILE_NAMES["test_labels"] in message
    assert IDX_FILE_NAMES["train_images"] not in message


def test_corrupt_file_inside_directory_is_named(tmp_path: Path) -> None:
    root = write_idx_dir(tmp_path, gz=True)
    broken = root / f"{IDX_FILE_NAMES['train_images']}.gz"
    broken.write_bytes(broken.read_bytes()[:30])
    with pytest.raises(DatasetError, match="corrupt gzip") as info:
        load_idx_directory(root, val_size=5)
    assert str(broken) in str(info.value)


# --------------------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_missing_root_says_how_to_fix(tmp_path: Path) -> None:
    root = tmp_path / "no-fashion"
    with pytest.raises(DatasetError) as info:
        load_fashion_mnist(root)
    message = str(info.value)
    assert str(root) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "root=" in message and FASHION_MNIST_ENV_VAR in message


def test_fashion_mnist_reads_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_idx_dir(tmp_path / "fake-fashion", gz=True)
    monkeypatch.setenv(FASHION_MNIST_ENV_VAR, str(root))
    data = load_fashion_mnist(val_size=8)
    assert data.name == "fashion-mnist"
    assert data.class_names == FASHION_MNIST_CLASS_NAMES
    assert (len(data.train), len(data.val), len(data.test)) == (32, 8, 20)


def test_fashion_mnist_corrupt_file_says_how_to_fix(tmp_path: Path) -> None:
    root = write_idx_dir(tmp_path, gz=True)
    broken = root / f"{IDX_FILE_NAMES['test_images']}.gz"
    broken.write_bytes(broken.read_bytes()[:-20])
    with pytest.raises(DatasetError) as info:
        load_fashion_mnist(root, val_size=5)
    message = str(info.value)
    assert str(broken) in message and "apt-get install dataset-fashion-mnist" in message


def _require_fashion() -> None:
    if not all((FASHION_DIR / f"{stem}.gz").is_file() for stem in IDX_FILE_NAMES.values()):
        pytest.skip(f"Fashion-MNIST files not installed in {FASHION_DIR}")


def test_fashion_mnist_real_files(monkeypatch: pytest.MonkeyPatch) -> None:
    _require_fashion()
    monkeypatch.delenv(FASHION_MNIST_ENV_VAR, raising=False)
    data = load_fashion_mnist(val_size=5000)
    assert data.input_shape == (1, 28, 28)
    assert data.num_classes == 10
    assert_split_ok(data.train, (1, 28, 28), 55000)
    assert_split_ok(data.val, (1, 28, 28), 5000)
    assert_split_ok(data.test, (1, 28, 28), 10000)
    assert float(data.train.images.max()) == 1.0
    assert torch.equal(torch.bincount(data.test.labels), torch.full((10,), 1000))


def test_fashion_mnist_real_files_limit() -> None:
    _require_fashion()
    a = load_fashion_mnist(FASHION_DIR, val_size=100, train_limit=500, test_limit=200, seed=1)
    b = load_fashion_mnist(FASHION_DIR, val_size=100, train_limit=500, test_limit=200, seed=1)
    assert (len(a.train), len(a.val), len(a.test)) == (500, 100, 200)
    assert torch.equal(a.train.images, b.train.images)
    assert torch.equal(a.test.labels, b.test.labels)


# --------------------------------------------------------------------------- digits


def test_digits_sizes_and_range() -> None:
    data = load_digits()
    assert data.name == "digits"
    assert data.class_names == tuple(str(i) for i in range(10))
    assert data.input_shape == (1, 8, 8)
    assert (len(data.train), len(data.val), len(data.test)) == (1258, 180, 359)
    for split in (data.train, data.val, data.test):
        assert_split_ok(split, (1, 8, 8), len(split))
    assert float(data.train.images.max()) == 1.0  # 16 / 16


def test_digits_splits_are_disjoint_and_cover_everything() -> None:
    data = load_digits()
    rows = [r.numpy().tobytes() for s in (data.train, data.val, data.test)
            for r in torch.cat([s.images.reshape(len(s), -1),
                                s.labels[:, None].float()], dim=1)]
    from sklearn.datasets import load_digits as sk_digits
    bunch = sk_digits()
    expected = np.concatenate([bunch.images.reshape(-1, 64) / 16.0, bunch.target[:, None]], 1)
    assert sorted(rows) == sorted(r.astype(np.float32).tobytes() for r in expected)


def test_digits_determinism() -> None:
    a, b, c = load_digits(seed=5), load_digits(seed=5), load_digits(seed=6)
    assert torch.equal(a.train.images, b.train.images)
    assert torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.test.images, c.test.images)


def test_digits_stratified() -> None:
    data = load_digits(val_fraction=0.2, test_fraction=0.2)
    full = torch.cat([data.train.labels, data.val.labels, data.test.labels])
    overall = torch.bincount(full, minlength=10).float() / len(full)
    for split in (data.train, data.val, data.test):
        share = torch.bincount(split.labels, minlength=10).float() / len(split)
        assert float((share - overall).abs().max()) < 0.01


def test_digits_bad_fractions() -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        load_digits(val_fraction=0.5, test_fraction=0.5)


# --------------------------------------------------------------------------- dispatch


def test_load_dataset_dispatch(tmp_path: Path) -> None:
    assert load_dataset("digits", seed=2).name == "digits"
    root = write_idx_dir(tmp_path)
    data = load_dataset("mnist", root=root, val_size=5)
    assert data.name == "mnist" and len(data.val) == 5
    assert load_dataset("fashion-mnist", root=root, val_size=5).name == "fashion-mnist"


def test_load_dataset_idx_needs_root() -> None:
    with pytest.raises(ValueError, match="root="):
        load_dataset("idx")


def test_load_dataset_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown data set 'cifar'") as info:
        load_dataset("cifar")
    for name in DATASET_NAMES:
        assert name in str(info.value)
    assert DATASET_NAMES == ("digits", "fashion-mnist", "mnist", "idx")


# --------------------------------------------------------------------------- containers


def test_split_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="float32"):
        Split(images=torch.zeros(2, 1, 3, 3, dtype=torch.float64),
              labels=torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="int64"):
        Split(images=torch.zeros(2, 1, 3, 3), labels=torch.zeros(2, dtype=torch.int32))
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        Split(images=torch.zeros(2, 1, 3, 3), labels=torch.zeros(3, dtype=torch.int64))


def test_dataset_splits_is_frozen_and_checks_names() -> None:
    split = Split(images=torch.zeros(2, 1, 3, 3), labels=torch.zeros(2, dtype=torch.int64))
    data = DatasetSplits("t", split, split, split, num_classes=1, class_names=("a",))
    with pytest.raises(AttributeError):
        data.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="class names"):
        DatasetSplits("t", split, split, split, num_classes=2, class_names=("a",))
