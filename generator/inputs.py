"""Test inputs for verification and C-simulation: a dataset split or a float .npy file."""

import dataclasses
from pathlib import Path

import numpy as np

from syq.errors import SyqError
from syq.generator import golden


@dataclasses.dataclass
class Inputs:
    """Float inputs in the QONNX layout, the accelerator's input stream and optional labels."""

    floats: np.ndarray
    stream: np.ndarray
    labels: np.ndarray = None
    description: str = ""


def from_dataset(graph, name, split="test", data_dir=None, limit=None):
    """Return the images of a dataset split as Inputs for `graph`."""
    from syq.training.datasets import load_dataset, to_float

    images, labels = load_dataset(name, data_dir).split(split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    shape = tuple(graph.input_quant.input_shape)
    if int(np.prod(images.shape[1:])) != int(np.prod(shape)):
        raise SyqError(f"dataset {name} has {tuple(images.shape[1:])} images, the model expects "
                       f"{shape}: pick the dataset the model was trained on")
    floats = to_float(images).reshape((len(images),) + shape)
    stream = golden.pixel_input_codes(graph, images.reshape((len(images),) + shape))
    return Inputs(floats, stream, labels, f"{name} {split} split, {len(images)} images")


def from_file(graph, path, limit=None):
    """Return the float array in `path` (.npy, the model's input shape) as Inputs for `graph`."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise SyqError(f"input file {path} not found") from None
    except (OSError, ValueError) as error:
        raise SyqError(f"invalid input file {path}: {error}; save a float array with numpy.save") from None
    if array.dtype.kind not in "f":
        raise SyqError(f"{path} contains {array.dtype} values: pass float inputs as the model sees them "
                       f"(for images, pixel / 255 as float32)")
    shape = tuple(graph.input_quant.input_shape)
    if tuple(array.shape) == shape:
        array = array[None]
    if tuple(array.shape[1:]) != shape:
        raise SyqError(f"{path} has shape {tuple(array.shape)}; the model expects (N,) + {shape}")
    if len(array) == 0:
        raise SyqError(f"{path} contains no inputs (shape {tuple(array.shape)}): save at least one")
    if limit is not None:
        array = array[:limit]
    floats = array.astype(np.float32)
    _check_values(graph, path, floats)
    try:
        codes = golden.input_codes(graph, floats)
    except SyqError as error:
        raise SyqError(f"{path}: {error}") from None
    return Inputs(floats, codes, None, f"{path}, {len(floats)} input{'s' if len(floats) != 1 else ''}")


def _check_values(graph, path, floats):
    """Reject NaN and infinite inputs, and values outside [0, 1] for models trained on pixel / 255."""
    bad = ~np.isfinite(floats)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise SyqError(f"{path} has the non-finite value {floats[index]} at index {index}: "
                       f"inputs must be finite floats")
    if graph.metadata.get("syq.input") == "pixel/255":
        outside = (floats < 0) | (floats > 1)
        if outside.any():
            index = tuple(int(i) for i in np.argwhere(outside)[0])
            raise SyqError(f"{path} has the value {floats[index]} at index {index}, outside [0, 1]: "
                           f"this model takes images as pixel / 255 (divide 8-bit images by 255)")


def load_inputs(graph, dataset=None, split="test", data_dir=None, inputs_path=None, limit=None):
    """Return Inputs from either a dataset or an .npy file (exactly one must be given)."""
    if (dataset is None) == (inputs_path is None):
        raise SyqError("pass either --dataset NAME or --inputs FILE.npy")
    if limit is not None and limit < 1:
        raise SyqError(f"invalid --limit {limit}: it must be a positive number of images")
    if dataset is not None:
        return from_dataset(graph, dataset, split, data_dir, limit)
    return from_file(graph, inputs_path, limit)
