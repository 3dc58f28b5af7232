"""Host-side input quantization and output post-processing of the accelerator (numpy only).

These functions compute what syq's golden model computes (generator/golden.py ``input_codes``,
``pixel_input_codes`` and ``post_process``) from the ``input`` and ``post`` entries of
accelerator.json, and the deploy tests compare them with the golden model on real data.
"""

from pathlib import Path

import numpy as np

from .errors import SyqError


def _round(values, mode):
    """Round float values as the QONNX Quant rounding mode `mode` does."""
    mode = mode.upper()
    if mode in ("ROUND", "HALF_EVEN"):
        return np.round(values)
    if mode == "CEIL":
        return np.ceil(values)
    if mode == "FLOOR":
        return np.floor(values)
    if mode == "UP":
        return np.sign(values) * np.ceil(np.abs(values))
    if mode == "DOWN":
        return np.fix(values)
    if mode == "HALF_UP":
        return np.sign(values) * np.floor(np.abs(values) + 0.5)
    if mode == "HALF_DOWN":
        return np.sign(values) * np.ceil(np.abs(values) - 0.5)
    raise SyqError(f"unknown rounding mode {mode!r} in accelerator.json: generate the deploy "
                   f"folder again with syq bitstream")


def _integer_range(spec):
    bits, signed, narrow = spec["bits"], spec["signed"], spec["narrow"]
    if signed:
        return -(1 << (bits - 1)) + (1 if narrow else 0), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - (2 if narrow else 1)


def quantize(spec, values):
    """Return the integer codes of the QONNX input quantizer for float `values` (any shape).

    The arithmetic is that of QONNX's IntQuant in float32: divide by the scale, clamp, round and
    multiply by the scale. The code is that result divided by the scale in float64, rounded.
    """
    values = np.asarray(values, dtype=np.float32)
    scale = np.float32(spec["scale"])
    scaled = values / scale
    if spec["bipolar"] or (spec["bits"] == 1 and spec["signed"]):
        return np.where(scaled >= 0, 1, -1).astype(np.int64)
    low, high = _integer_range(spec)
    scaled = np.where(scaled > np.float32(high), np.float32(high), scaled)
    scaled = np.where(scaled < np.float32(low), np.float32(low), scaled)
    quantized = _round(scaled, spec["rounding_mode"]) * scale
    return np.rint(quantized.astype(np.float64) / np.float64(scale)).astype(np.int64)


def pixels_from_float(values):
    """Return the uint8 pixel codes p of float inputs that must equal ``p / 255`` in float32."""
    values = np.asarray(values, dtype=np.float32)
    pixels = np.rint(values * np.float32(255.0))
    if pixels.size and (pixels.min() < 0 or pixels.max() > 255 or
                        not np.array_equal(pixels.astype(np.float32) / np.float32(255.0), values)):
        raise SyqError("inputs are not 8-bit pixel values divided by 255: pass uint8 images or "
                       "pixel / 255 as float32")
    return pixels.astype(np.int64)


def as_images(spec, array):
    """Return `array` as (images,) + input_shape; a single image gains the leading axis."""
    array = np.asarray(array)
    shape = tuple(spec["input_shape"])
    size = int(np.prod(shape))
    if array.size == size and array.ndim <= len(shape):
        return array.reshape((1,) + shape)
    if array.ndim < 2 or int(np.prod(array.shape[1:])) != size:
        raise SyqError(f"inputs of shape {array.shape} do not hold images of {size} elements: pass "
                       f"an array of shape (N,) + {shape}")
    return array.reshape((len(array),) + shape)


def _channels_last(codes, shape):
    if len(shape) == 3:
        codes = codes.transpose(0, 2, 3, 1)
    return codes.reshape(len(codes), -1)


def input_codes(spec, array):
    """Return the accelerator's input stream (images, elements) for images in `array`.

    uint8 (or other integer) arrays are pixel codes 0..255; float arrays are ``pixel / 255`` for
    a model whose accelerator takes pixels, and any float input for a model with an input
    quantizer. Images are in the QONNX input shape (channels first) and leave channels-last.
    """
    images = as_images(spec, array)
    shape = tuple(spec["input_shape"])
    integer = np.issubdtype(images.dtype, np.integer)
    if integer and (images.min(initial=0) < 0 or images.max(initial=0) > 255):
        raise SyqError(f"integer inputs must be pixel codes 0..255, found {images.min()} to "
                       f"{images.max()}")
    if spec["mode"] == "pixels":
        codes = images.astype(np.int64) if integer else pixels_from_float(images)
    elif integer:
        # Elementwise quantizer with one scale: a table over the 256 pixel values.
        table = quantize(spec, np.arange(256, dtype=np.float32) / np.float32(255.0))
        codes = table[images.astype(np.int64)]
    else:
        codes = quantize(spec, images)
    return _channels_last(codes, shape)


def post_process(post, raw):
    """Return the float64 scores (images, classes) of raw outputs: scale * raw + bias per row."""
    scale = np.asarray(post["scale"], dtype=np.float64)
    bias = np.asarray(post["bias"], dtype=np.float64)
    return raw.astype(np.float64) * scale[None, :] + bias[None, :]


def load_inputs(spec, path):
    """Load the images of an .npy file, or of every .npy file in a folder in name order.

    Each file contains one image or a batch of them (see `as_images`). Returns (images,) +
    input_shape.
    """
    path = Path(path)
    files = sorted(path.glob("*.npy")) if path.is_dir() else [path]
    if not files:
        raise SyqError(f"no .npy files found in {path}")
    batches = [as_images(spec, _load(file)) for file in files]
    kinds = {batch.dtype.kind in "iu" for batch in batches}
    if len(kinds) > 1:
        raise SyqError(f"{path} mixes integer pixel files and float files: convert them to one kind")
    return np.concatenate(batches)


def _load(path):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise SyqError(f"input file {path} not found") from None
    except (OSError, ValueError) as error:
        raise SyqError(f"invalid input file {path}: {error}; save arrays with numpy.save") from None
