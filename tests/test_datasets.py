import gzip
import pickle

import numpy as np
import pytest

from syq.errors import SyqError
from syq.training import datasets
from syq.training.datasets import load_dataset, read_idx


def _write_idx(path, array, compress=True):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as stream:
            stream.write(data)
    else:
        path.write_bytes(data)


def _write_mnist_folder(folder, compress=True, train=12, test=5):
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, (train,)),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, (test,)),
    }
    for stem, array in arrays.items():
        _write_idx(folder / (stem + suffix), array, compress)
    return arrays


def test_fashion_mnist_from_system_package():
    if not (datasets.FASHION_MNIST_SYSTEM_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian package dataset-fashion-mnist is not installed (make test installs it)")
    data = load_dataset("fashion-mnist")
    assert data.train_images.shape == (60000, 1, 28, 28)
    assert data.test_images.shape == (10000, 1, 28, 28)
    assert data.train_images.dtype == np.uint8
    assert np.bincount(data.test_labels).tolist() == [1000] * 10


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_idx_from_data_dir(tmp_path, compress):
    arrays = _write_mnist_folder(tmp_path, compress)
    data = load_dataset("mnist", tmp_path)
    assert data.train_images.shape == (12, 1, 28, 28)
    assert np.array_equal(data.train_images[:, 0], arrays["train-images-idx3-ubyte"])
    assert np.array_equal(data.test_labels, arrays["t10k-labels-idx1-ubyte"])


def test_mnist_without_data_dir_rejected():
    with pytest.raises(SyqError, match="--data-dir"):
        load_dataset("mnist")


def test_missing_idx_file_named(tmp_path):
    _write_mnist_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(SyqError, match="t10k-labels-idx1-ubyte"):
        load_dataset("mnist", tmp_path)


def test_idx_with_bad_magic_rejected(tmp_path):
    path = tmp_path / "bad-idx"
    path.write_bytes(b"\x12\x34\x56\x78" + bytes(20))
    with pytest.raises(SyqError, match="bad-idx.*magic"):
        read_idx(path)


def test_truncated_idx_rejected(tmp_path):
    path = tmp_path / "short-idx"
    _write_idx(path, np.zeros((4, 3, 3)), compress=False)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(SyqError, match="short-idx"):
        read_idx(path)


def test_damaged_gzip_rejected(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(SyqError, match="corrupt data file .*train-images"):
        read_idx(path)


def test_mismatched_label_count_rejected(tmp_path):
    _write_mnist_folder(tmp_path)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(7))
    with pytest.raises(SyqError, match="12 train images but 7 labels"):
        load_dataset("mnist", tmp_path)


def test_missing_data_dir_rejected(tmp_path):
    with pytest.raises(SyqError, match="not found"):
        load_dataset("mnist", tmp_path / "nowhere")


def test_mnist_subset_split():
    data = load_dataset("mnist-subset")
    assert data.train_images.shape == (4000, 1, 28, 28)
    assert data.test_images.shape == (1000, 1, 28, 28)
    images, labels = data.split("all")
    assert len(images) == 5000
    assert np.bincount(labels).tolist() == [500] * 10


def test_digits_scaled_to_pixels():
    data = load_dataset("digits")
    assert data.input_shape == (1, 8, 8)
    assert data.train_images.max() == 255
    assert len(data.train_images) + len(data.test_images) == 1797


def test_cifar10_python_batches(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for stem in datasets.CIFAR10_TRAIN_BATCHES + ("test_batch",):
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, 4))}
        with open(folder / stem, "wb") as stream:
            pickle.dump(batch, stream)
    data = load_dataset("cifar10", tmp_path)
    assert data.train_images.shape == (20, 3, 32, 32)
    assert data.test_images.shape == (4, 3, 32, 32)


def test_cifar10_missing_batch_named(tmp_path):
    with pytest.raises(SyqError, match="data_batch_1"):
        load_dataset("cifar10", tmp_path)


def test_unknown_dataset_rejected():
    with pytest.raises(SyqError, match="unknown dataset"):
        load_dataset("imagenet")
