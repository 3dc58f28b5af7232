"""Integer golden model: vectorised numpy execution of a hardware graph.

Streams are int64 arrays of shape (images, frame elements) in channels-last order; bipolar
elements hold -1/+1. Dot products run as float64 matrix products, which are exact because every
partial sum stays far below 2**53 (the lowering sizes accumulators from the actual weights).
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from qonnx.custom_op.general.quant import quant as qonnx_quant

from syq.errors import SyqError
from syq.generator.hwgraph import MVAU, MaxPool, SlidingWindow, Thresholding

CHUNK = 256  # images per step; bounds the memory of threshold comparisons in convolutions


def pixels_from_float(inputs):
    """Return uint8 pixel codes p of float inputs that must equal ``p / 255`` in float32."""
    inputs = np.asarray(inputs, dtype=np.float32)
    pixels = np.rint(inputs * np.float32(255.0))
    if pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255 or \
            not np.array_equal(pixels.astype(np.float32) / np.float32(255.0), inputs):
        raise SyqError("inputs are not 8-bit pixel values divided by 255: this model's accelerator "
                       "takes pixel codes (pass images as pixel / 255 in float32)")
    return pixels.astype(np.int64)


def _channels_last(array, input_shape):
    """Reorder (images, C, H, W) to channels-last and flatten each image."""
    if len(input_shape) == 3:
        array = array.reshape((len(array),) + tuple(input_shape)).transpose(0, 2, 3, 1)
    return array.reshape(len(array), -1)


def quantize_values(spec, values):
    """Return the integer codes of the host input quantizer for float32 `values` (any shape)."""
    values = np.asarray(values, dtype=np.float32)
    if spec.bipolar:
        return np.where(values / np.float32(spec.scale) >= 0, 1, -1).astype(np.int64)
    scale = np.float32(spec.scale)
    quantized = qonnx_quant(values, scale, np.float32(0), np.float32(spec.bits), int(spec.signed),
                            int(spec.narrow), spec.rounding_mode)
    return np.rint(np.asarray(quantized, dtype=np.float64) / np.float64(scale)).astype(np.int64)


def input_codes(graph, inputs):
    """Return the integer stream (images, elements) the accelerator receives for float `inputs`.

    ``inputs`` has the QONNX input shape per image (e.g. (N, 1, 28, 28)) and holds ``pixel/255``
    for pixel-mode graphs; quant-mode graphs quantize any float input exactly as qonnx does.
    """
    spec = graph.input_quant
    inputs = np.asarray(inputs, dtype=np.float32)
    if tuple(inputs.shape[1:]) != tuple(spec.input_shape):
        raise SyqError(f"inputs have shape {tuple(inputs.shape[1:])} per image, the model expects "
                       f"{tuple(spec.input_shape)}")
    if spec.mode == "pixels":
        codes = pixels_from_float(inputs)
    else:
        codes = quantize_values(spec, inputs)
    return _channels_last(codes, spec.input_shape)


def pixel_input_codes(graph, images):
    """Return the accelerator's input stream for uint8 `images` (N, C, H, W) of a dataset."""
    spec = graph.input_quant
    flat = np.asarray(images).reshape(len(images), -1).astype(np.int64)
    if spec.mode == "quant":
        # The input quantizer is elementwise with one scale, so a table over the 256 pixel
        # values gives exactly what it computes for every pixel / 255.
        table = quantize_values(spec, np.arange(256, dtype=np.float32) / np.float32(255.0))
        flat = table[flat]
    return _channels_last(flat.reshape((len(flat),) + tuple(spec.input_shape)), spec.input_shape)


def run_thresholding(unit, stream):
    """Apply a Thresholding unit to (images, elements)."""
    rows = unit.thresholds.shape[0]
    channel = np.arange(stream.shape[1]) % rows
    counts = (stream[:, :, None] >= unit.thresholds[channel][None, :, :]).sum(axis=2)
    if unit.output_type.kind == "bipolar":
        return 2 * counts - 1
    return counts + unit.output_offset


def run_sliding_window(unit, stream):
    """Return each output pixel's window in (ky, kx, channel) order."""
    images = len(stream)
    maps = stream.reshape(images, unit.ifm_height, unit.ifm_width, unit.channels)
    if unit.padding:
        pad = unit.padding
        maps = np.pad(maps, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=unit.pad_value)
    windows = sliding_window_view(maps, (unit.kernel_height, unit.kernel_width), axis=(1, 2))
    windows = windows[:, ::unit.stride, ::unit.stride][:, :unit.ofm_height, :unit.ofm_width]
    # windows: (images, OH, OW, C, Kh, Kw) -> (images, OH, OW, Kh, Kw, C)
    return np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3)).reshape(images, -1)


def run_max_pool(unit, stream):
    """Apply max pooling to (images, H*W*C) channels-last maps."""
    images = len(stream)
    maps = stream.reshape(images, unit.ifm_height, unit.ifm_width, unit.channels)
    windows = sliding_window_view(maps, (unit.kernel, unit.kernel), axis=(1, 2))
    windows = windows[:, ::unit.stride, ::unit.stride][:, :unit.ofm_height, :unit.ofm_width]
    return windows.max(axis=(4, 5)).reshape(images, -1)


def mvau_accumulators(unit, stream):
    """Return the accumulators (images, vectors, MH) of an MVAU as the hardware computes them."""
    images = len(stream)
    vectors = stream.reshape(images * unit.num_vectors, unit.matrix_width).astype(np.float64)
    weights = unit.weights.astype(np.float64)
    if unit.position_scales is None:
        dot = vectors @ weights.T
        accumulators = (dot + unit.matrix_width) / 2 if unit.xnor else dot
    else:
        width = unit.position_elements
        accumulators = np.zeros((len(vectors), unit.matrix_height))
        for position, scale in enumerate(unit.position_scales):
            columns = slice(position * width, (position + 1) * width)
            partial = vectors[:, columns] @ weights[:, columns].T
            if unit.xnor:
                partial = (partial + width) / 2
            accumulators += float(scale) * partial
    return np.rint(accumulators).astype(np.int64).reshape(images, unit.num_vectors, unit.matrix_height)


def run_mvau(unit, stream):
    """Apply an MVAU to (images, vectors * MW); return (images, vectors * MH)."""
    accumulators = mvau_accumulators(unit, stream)
    if unit.thresholds is None:
        return accumulators.reshape(len(stream), -1)
    counts = (accumulators[..., None] >= unit.thresholds[None, None]).sum(axis=3)
    if unit.output_type.kind == "bipolar":
        values = 2 * counts - 1
    else:
        values = counts + unit.output_offset
    return values.reshape(len(stream), -1)


RUNNERS = {Thresholding: run_thresholding, SlidingWindow: run_sliding_window,
           MaxPool: run_max_pool, MVAU: run_mvau}


def run(graph, stream, capture=False):
    """Run the accelerator part of `graph` on an input stream (images, elements).

    Returns the raw output stream (images, outputs) and, with `capture`, a dict of every unit's
    output stream keyed by unit name.
    """
    stream = np.asarray(stream, dtype=np.int64)
    outputs, captured = [], {unit.name: [] for unit in graph.nodes} if capture else {}
    for start in range(0, max(len(stream), 1), CHUNK):
        current = stream[start:start + CHUNK]
        for unit in graph.nodes:
            current = RUNNERS[type(unit)](unit, current)
            if capture:
                captured[unit.name].append(current)
        outputs.append(current)
    result = np.concatenate(outputs) if outputs else np.zeros((0, graph.output_elements), np.int64)
    return result, {name: np.concatenate(parts) for name, parts in captured.items()}


def post_process(graph, raw):
    """Return the float scores (images, classes) of raw accelerator outputs."""
    return raw.astype(np.float64) * graph.post.scale[None, :] + graph.post.bias[None, :]


def predict(graph, stream):
    """Return (scores, labels) for an input stream."""
    raw, _ = run(graph, stream)
    scores = post_process(graph, raw)
    return scores, scores.argmax(axis=1)
