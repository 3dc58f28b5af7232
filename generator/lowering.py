"""Lowering of a cleaned QONNX graph to the hardware graph.

The pass walks the chain of nodes from the graph input to the output and recognises:

* input: ``Quant``/``BipolarQuant`` on the graph input (the host quantizes), or elementwise
  pre-processing (``Mul``/``Div``/``Add``/``Sub`` by constants, ``Reshape``/``Flatten``) before the
  input quantizer, which becomes a Thresholding unit on 8-bit pixel codes;
* layers: ``MatMul``/``Gemm``/``Conv`` whose weights come from ``Quant``/``BipolarQuant`` on an
  initializer (or integer initializers), followed by per-channel affine nodes (``Add``, ``Sub``,
  ``Mul``, ``Div``, ``BatchNormalization``), an optional ``Relu`` and the activation quantizer,
  which all fold into integer thresholds; the last layer may end without a quantizer, its affine
  nodes then become the host post-processing;
* ``MaxPool`` on quantized activations, ``Reshape``/``Flatten`` between convolutions and fully
  connected layers (the weight columns are reordered for the channels-last stream).

Limits: a single chain (no forks or joins), per-tensor activation scales with zero point 0,
weight scales per tensor, per output channel or (convolutions) per kernel position/row on a
fixed-point grid, square-free but symmetric convolution padding, no groups or dilation. Anything
else raises SyqError naming the node and its op.
"""

import dataclasses
import logging
import math
import warnings
from fractions import Fraction

import numpy as np
import onnx
from qonnx.custom_op.general.quant import quant as qonnx_quant

from syq.errors import SyqError
from syq.generator import qonnx_exec
from syq.generator.datatypes import BIPOLAR, UINT8, DataType, signed_bits_for, smallest_type
from syq.generator.hwgraph import (MVAU, HardwareGraph, InputQuant, MaxPool, PostProcess,
                                   SlidingWindow, Thresholding)
from syq.generator.thresholds import ActivationQuantizer, fraction, layer_thresholds

logger = logging.getLogger(__name__)

STRUCTURAL_OPS = ("Reshape", "Flatten")
ARITHMETIC_OPS = ("Mul", "Div", "Add", "Sub")
AFFINE_OPS = ARITHMETIC_OPS + ("BatchNormalization",)
LAYER_OPS = ("MatMul", "Gemm", "Conv")
QUANT_OPS = ("Quant", "BipolarQuant")
MAX_POSITION_SCALE_BITS = 16
PIXEL_LEVELS = 256


def _describe(node):
    return f"node {node.name or '(unnamed)'} ({node.op_type})"


def _attributes(node):
    return {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}


@dataclasses.dataclass
class _Stream:
    """What flows between units during lowering."""

    tensor: str
    dtype: DataType
    scale: Fraction
    shape: tuple  # per image: (C, H, W) for feature maps, (features,) for vectors
    flattened_from: tuple = None  # (C, H, W) when a feature map was flattened (NCHW order)


class _Lowering:
    def __init__(self, model, name):
        self.model = model
        self.name = name
        self.nodes = []
        self.layer_index = 0

    # ---- graph navigation ------------------------------------------------------------------

    def consumer(self, tensor):
        consumers = self.model.find_consumers(tensor)
        if not consumers:
            return None
        if len(consumers) > 1:
            names = ", ".join(_describe(node) for node in consumers)
            raise SyqError(f"tensor {tensor} feeds several nodes ({names}): only a single chain of "
                           f"layers can be lowered")
        return consumers[0]

    def constant(self, node, index):
        if index >= len(node.input) or not node.input[index]:
            return None
        return self.model.get_initializer(node.input[index])

    def data_input(self, node, tensor):
        """Return (constant, constant_first) for a binary op whose other input is `tensor`."""
        if len(node.input) != 2:
            raise SyqError(f"{_describe(node)}: expected two inputs")
        first, second = node.input
        if first == tensor and self.model.get_initializer(second) is not None:
            return self.model.get_initializer(second), False
        if second == tensor and self.model.get_initializer(first) is not None:
            return self.model.get_initializer(first), True
        raise SyqError(f"{_describe(node)}: only operations with a constant operand can be lowered")

    def shape_of(self, tensor):
        shape = self.model.get_tensor_shape(tensor)
        if shape is None:
            raise SyqError(f"tensor {tensor} has no known shape: run qonnx cleanup/InferShapes")
        return tuple(int(size) for size in shape)

    # ---- quantizers ------------------------------------------------------------------------

    def activation_quantizer(self, node, relu=False):
        """Parse an activation Quant/BipolarQuant into (ActivationQuantizer, DataType, scale)."""
        scale = self.constant(node, 1)
        if scale is None:
            raise SyqError(f"{_describe(node)}: the scale must be a constant")
        if np.size(scale) != 1:
            raise SyqError(f"{_describe(node)}: per-channel activation scales (shape "
                           f"{np.shape(scale)}) are not supported; use one scale per tensor")
        scale = fraction(np.asarray(scale).reshape(()))
        if not scale > 0:
            raise SyqError(f"{_describe(node)}: activation scale {float(scale)} must be positive")
        if node.op_type == "BipolarQuant":
            return ActivationQuantizer("bipolar", scale, relu=relu), BIPOLAR, scale
        zero_point, bits = self.constant(node, 2), self.constant(node, 3)
        if zero_point is None or bits is None:
            raise SyqError(f"{_describe(node)}: zero point and bit width must be constants")
        if np.any(np.asarray(zero_point) != 0):
            raise SyqError(f"{_describe(node)}: zero point {np.asarray(zero_point).tolist()} is not "
                           f"supported; use symmetric quantization (zero point 0)")
        bits = float(np.asarray(bits).reshape(()))
        if bits != int(bits) or not 1 <= bits <= 16:
            raise SyqError(f"{_describe(node)}: bit width {bits} is not an integer from 1 to 16")
        bits = int(bits)
        attributes = _attributes(node)
        signed, narrow = int(attributes.get("signed", 1)), int(attributes.get("narrow", 0))
        rounding = attributes.get("rounding_mode", "ROUND")
        rounding = (rounding.decode() if isinstance(rounding, bytes) else rounding).upper()
        if signed and bits == 1:  # qonnx treats a signed 1-bit Quant as bipolar
            return ActivationQuantizer("bipolar", scale, relu=relu), BIPOLAR, scale
        low = (-(1 << (bits - 1)) + (1 if narrow else 0)) if signed else 0
        high = ((1 << (bits - 1)) - 1) if signed else ((1 << bits) - 1 - (1 if narrow else 0))
        quantizer = ActivationQuantizer("quant", scale, low, high, rounding, relu)
        levels = (quantizer.lowest_level, quantizer.highest_level)
        return quantizer, smallest_type(*levels), scale

    def weight_codes(self, layer):
        """Return (codes, weight DataType, scale array, producer) of a layer's weight input."""
        tensor = layer.input[1]
        producer = self.model.find_producer(tensor)
        if producer is None:
            weights = self.model.get_initializer(tensor)
            if weights is None:
                raise SyqError(f"{_describe(layer)}: weights must be constants")
            if not np.array_equal(weights, np.round(weights)):
                raise SyqError(f"{_describe(layer)}: float weights without a Quant node cannot be "
                               f"lowered; quantize them (Brevitas QuantLinear/QuantConv2d)")
            codes = np.asarray(weights, dtype=np.int64)
            dtype = smallest_type(int(codes.min(initial=0)), int(codes.max(initial=0)))
            if dtype.kind == "uint":
                dtype = DataType("int", dtype.bits + 1)
            return codes, dtype, np.ones(()), None
        if producer.op_type not in QUANT_OPS:
            raise SyqError(f"{_describe(layer)}: weights come from {_describe(producer)}; expected "
                           f"a Quant or BipolarQuant on a constant")
        weights = self.constant(producer, 0)
        scale = self.constant(producer, 1)
        if weights is None or scale is None:
            raise SyqError(f"{_describe(producer)}: weights and scale must be constants")
        if np.any(np.asarray(scale) <= 0):
            raise SyqError(f"{_describe(producer)}: weight scales must be positive")
        if producer.op_type == "BipolarQuant":
            codes = np.where(weights >= 0, 1, -1).astype(np.int64)
            return codes, BIPOLAR, np.asarray(scale, dtype=np.float32), producer
        zero_point, bits = self.constant(producer, 2), self.constant(producer, 3)
        if zero_point is None or bits is None or np.any(np.asarray(zero_point) != 0):
            raise SyqError(f"{_describe(producer)}: weight quantizers need a constant zero point of 0")
        attributes = _attributes(producer)
        rounding = attributes.get("rounding_mode", "ROUND")
        rounding = rounding.decode() if isinstance(rounding, bytes) else rounding
        signed, narrow = int(attributes.get("signed", 1)), int(attributes.get("narrow", 0))
        values = qonnx_quant(weights, scale, zero_point, np.asarray(bits), signed, narrow, rounding)
        bits = int(np.asarray(bits).reshape(()))
        codes = np.rint(np.asarray(values, dtype=np.float64) / np.asarray(scale, dtype=np.float64))
        codes = codes.astype(np.int64)
        if signed and bits == 1:
            dtype = BIPOLAR
        else:
            dtype = DataType("int" if signed else "uint", bits)
        return codes, dtype, np.asarray(scale, dtype=np.float32), producer

    # ---- input -----------------------------------------------------------------------------

    def lower_input(self):
        tensor = self.model.graph.input[0].name
        image_shape = self.shape_of(tensor)[1:]
        node = self.consumer(tensor)
        arithmetic = []
        while node is not None and node.op_type in STRUCTURAL_OPS + ARITHMETIC_OPS:
            if node.op_type in ARITHMETIC_OPS:
                self.data_input(node, tensor)
                arithmetic.append(node)
            tensor = node.output[0]
            node = self.consumer(tensor)
        if node is None or node.op_type not in QUANT_OPS:
            found = _describe(node) if node is not None else "the graph output"
            raise SyqError(f"the network input must be quantized before the first layer; found "
                           f"{found} first. Add an input Quant (Brevitas QuantIdentity)")
        quantizer, dtype, scale = self.activation_quantizer(node)
        channels = image_shape[0] if len(image_shape) == 3 else 1
        output = node.output[0]
        stream_shape = self.shape_of(output)[1:]
        if not arithmetic:
            attributes = _attributes(node)
            bits = 1 if node.op_type == "BipolarQuant" else int(np.asarray(self.constant(node, 3)))
            rounding = attributes.get("rounding_mode", "ROUND")
            input_quant = InputQuant(
                mode="quant", output_type=dtype, input_shape=tuple(image_shape), channels=channels,
                scale=float(scale), signed=bool(attributes.get("signed", 1)),
                narrow=bool(attributes.get("narrow", 0)), bits=bits,
                rounding_mode=rounding.decode() if isinstance(rounding, bytes) else rounding,
                bipolar=dtype.kind == "bipolar", qonnx_tensor=output)
        else:
            input_quant = InputQuant(mode="pixels", output_type=dtype,
                                     input_shape=tuple(image_shape), channels=channels,
                                     qonnx_tensor=output)
            self.nodes.append(self.pixel_thresholding(node, dtype, scale, image_shape))
        return input_quant, _Stream(output, dtype, scale, self._per_image_shape(stream_shape))

    @staticmethod
    def _per_image_shape(shape):
        return tuple(shape) if len(shape) == 3 else (int(np.prod(shape)),)

    def pixel_thresholding(self, quant_node, dtype, scale, image_shape):
        """Build the Thresholding unit that maps 8-bit pixel codes to the input quantizer's codes.

        The map is measured by running qonnx on images whose pixels take all 256 values, so it is
        exactly what QONNX execution computes for inputs ``pixel / 255``.
        """
        elements = int(np.prod(image_shape))
        images = PIXEL_LEVELS if elements < PIXEL_LEVELS else 1
        positions = np.arange(images * elements).reshape(images, elements)
        pixels = (positions % PIXEL_LEVELS).astype(np.float32)
        batch = (pixels / np.float32(255.0)).reshape((images,) + tuple(image_shape))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, captured = qonnx_exec.execute(self.model, batch, capture=(quant_node.output[0],))
        values = captured[quant_node.output[0]].reshape(images, -1).astype(np.float64)
        codes = np.sign(values) if dtype.kind == "bipolar" else np.rint(values / float(scale))
        codes = codes.astype(np.int64)
        if codes.shape[1] != elements:
            raise SyqError(f"{_describe(quant_node)}: input pre-processing changes the number of "
                           f"elements ({elements} -> {codes.shape[1]})")
        channels = image_shape[0] if len(image_shape) == 3 else 1
        per_channel = elements // channels
        table = np.zeros((channels, PIXEL_LEVELS), dtype=np.int64)
        flat_pixels = pixels.astype(np.int64).reshape(images, elements)
        for channel in range(channels):
            columns = slice(channel * per_channel, (channel + 1) * per_channel)
            channel_pixels = flat_pixels[:, columns].ravel()
            channel_codes = codes[:, columns].ravel()
            for level in range(PIXEL_LEVELS):
                found = np.unique(channel_codes[channel_pixels == level])
                if len(found) != 1:
                    raise SyqError(f"{_describe(quant_node)}: the input pre-processing is not the "
                                   f"same for every pixel of a channel; it cannot become a "
                                   f"thresholding unit")
                table[channel, level] = found[0]
        if np.any(np.diff(table, axis=1) < 0):
            raise SyqError(f"{_describe(quant_node)}: the input pre-processing decreases with the "
                           f"pixel value; only non-decreasing maps become thresholds")
        if np.all(table == table[:1]):
            table = table[:1]
        lowest, highest = int(table.min()), int(table.max())
        if dtype.kind == "bipolar":
            levels = [1]
        else:
            levels = list(range(lowest + 1, highest + 1))
        thresholds = np.array([[int(np.argmax(row >= level)) if row[-1] >= level else PIXEL_LEVELS
                                for level in levels] for row in table], dtype=np.int64)
        return Thresholding(
            name="input_thresholds", channels=len(table), num_vectors=elements // len(table)
            if len(table) > 1 else elements,
            input_type=UINT8, thresholds=thresholds.reshape(len(table), len(levels)),
            output_offset=lowest if dtype.kind != "bipolar" else 0, output_type=dtype,
            threshold_type=DataType("int", 10), qonnx_tensor=quant_node.output[0],
            qonnx_scale=float(scale))

    # ---- layers ----------------------------------------------------------------------------

    def lower(self):
        input_quant, stream = self.lower_input()
        self.input_quant = input_quant
        post = None
        node = self.consumer(stream.tensor)
        while node is not None:
            if node.op_type in STRUCTURAL_OPS:
                stream = self.flatten(node, stream)
                node = self.consumer(stream.tensor)
            elif node.op_type == "MaxPool":
                stream = self.max_pool(node, stream)
                node = self.consumer(stream.tensor)
            elif node.op_type in LAYER_OPS:
                stream, post = self.layer(node, stream)
                node = self.consumer(stream.tensor) if post is None else None
            else:
                raise SyqError(f"{_describe(node)}: op {node.op_type} is not supported here; "
                               f"syq lowers MatMul/Gemm/Conv layers with affine, BatchNormalization, "
                               f"Relu and Quant/BipolarQuant activations, MaxPool and Reshape")
        if post is None:
            raise SyqError("the graph ends without a MatMul/Gemm/Conv layer after its last "
                           "activation; nothing to post-process")
        return HardwareGraph(self.name, input_quant, self.nodes, post)

    def flatten(self, node, stream):
        output = node.output[0]
        shape = self._per_image_shape(self.shape_of(output)[1:])
        if len(shape) != 1:
            raise SyqError(f"{_describe(node)}: only flattening to (batch, features) is supported, "
                           f"not shape {shape}")
        flattened_from = stream.flattened_from
        if len(stream.shape) == 3:
            flattened_from = stream.shape
        return dataclasses.replace(stream, tensor=output, shape=shape, flattened_from=flattened_from)

    def max_pool(self, node, stream):
        if len(stream.shape) != 3:
            raise SyqError(f"{_describe(node)}: max-pooling needs a feature map (C, H, W)")
        attributes = _attributes(node)
        kernel = list(attributes.get("kernel_shape", []))
        strides = list(attributes.get("strides", kernel))
        pads = list(attributes.get("pads", [0, 0, 0, 0]))
        if len(set(kernel)) != 1 or len(set(strides)) != 1 or any(pads) or \
                attributes.get("ceil_mode", 0) or any(d != 1 for d in attributes.get("dilations", [1])):
            raise SyqError(f"{_describe(node)}: only square max-pooling without padding, dilation "
                           f"or ceil_mode is supported (kernel {kernel}, strides {strides}, pads {pads})")
        channels, height, width = stream.shape
        pools = sum(isinstance(unit, MaxPool) for unit in self.nodes)
        pool = MaxPool(name=f"maxpool{pools}",
                       ifm_height=height, ifm_width=width, channels=channels, kernel=kernel[0],
                       stride=strides[0], element_type=stream.dtype, qonnx_tensor=node.output[0],
                       qonnx_scale=float(stream.scale))
        self.nodes.append(pool)
        return dataclasses.replace(stream, tensor=node.output[0],
                                   shape=(channels, pool.ofm_height, pool.ofm_width))

    def layer(self, node, stream):
        """Lower one MatMul/Gemm/Conv with its affine nodes and activation; return (stream, post)."""
        codes, weight_type, scale, producer = self.weight_codes(node)
        attributes = _attributes(node)
        name = f"layer{self.layer_index}"
        self.layer_index += 1
        a_common = stream.scale
        kind = "fc"
        num_vectors = 1
        position_scales = None
        position_elements = 0
        scale_bits = 0
        if node.op_type == "Conv":
            if stream.dtype.kind == "bipolar" and any(attributes.get("pads", [0])):
                stream = self.widen_bipolar_stream(stream)
            matrix, per_row, position_scales, a_common, num_vectors, scale_bits = \
                self.conv(node, stream, codes, scale, attributes, a_common, name)
            kind = "conv"
            position_elements = stream.shape[0] if position_scales is not None else 0
        else:
            matrix, per_row = self.fully_connected(node, stream, codes, scale, attributes)
            a_common = a_common * fraction(attributes.get("alpha", 1.0)) if node.op_type == "Gemm" \
                else a_common
        rows = matrix.shape[0]
        a = [a_common * fraction(value) for value in per_row]
        b = [Fraction(0)] * rows
        if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
            bias = self.constant(node, 2)
            if bias is None:
                raise SyqError(f"{_describe(node)}: the bias must be a constant")
            beta = fraction(attributes.get("beta", 1.0))
            bias = np.broadcast_to(np.asarray(bias, dtype=np.float32).reshape(-1), (rows,))
            b = [value + beta * fraction(c) for value, c in zip(b, bias)]
        tensor = node.output[0]
        next_node = self.consumer(tensor)
        while next_node is not None and next_node.op_type in AFFINE_OPS:
            a, b = self.affine(next_node, tensor, a, b, rows)
            tensor = next_node.output[0]
            next_node = self.consumer(tensor)
        relu = False
        if next_node is not None and next_node.op_type == "Relu":
            relu = True
            tensor = next_node.output[0]
            next_node = self.consumer(tensor)
        if next_node is None:
            if relu:
                raise SyqError(f"the last layer ({_describe(node)}) ends with a Relu and no "
                               f"quantizer; only affine post-processing is supported")
            return self.last_layer(name, matrix, weight_type, stream, num_vectors, a, b,
                                   position_scales, position_elements, scale_bits, kind, tensor, scale)
        if next_node.op_type not in QUANT_OPS:
            raise SyqError(f"{_describe(next_node)}: after {_describe(node)} expected affine nodes, "
                           f"Relu and a Quant/BipolarQuant activation")
        quantizer, out_type, out_scale = self.activation_quantizer(next_node, relu)
        mvau = self.build_mvau(name, matrix, weight_type, stream, num_vectors, a, b, quantizer,
                               out_type, position_scales, position_elements, scale_bits, kind, scale)
        mvau.qonnx_tensor, mvau.qonnx_scale = next_node.output[0], float(out_scale)
        mvau.qonnx_preactivation = next_node.input[0]
        mvau.qonnx_boundary = _boundary_kind(quantizer)
        self.nodes.append(mvau)
        shape = self.shape_of(next_node.output[0])[1:]
        out_shape = self._per_image_shape(shape)
        return _Stream(next_node.output[0], out_type, out_scale, out_shape), None

    def fully_connected(self, node, stream, codes, scale, attributes):
        if len(stream.shape) != 1:
            raise SyqError(f"{_describe(node)}: a fully connected layer needs a flat input; add "
                           f"a Flatten/Reshape before it (input shape {stream.shape})")
        if node.op_type == "Gemm" and attributes.get("transA", 0):
            raise SyqError(f"{_describe(node)}: Gemm with transA=1 is not supported")
        transposed = node.op_type == "MatMul" or not attributes.get("transB", 0)
        matrix = codes.T if transposed else codes
        if matrix.ndim != 2 or matrix.shape[1] != stream.shape[0]:
            raise SyqError(f"{_describe(node)}: weight shape {codes.shape} does not fit the input "
                           f"of {stream.shape[0]} features")
        rows = matrix.shape[0]
        scale = np.asarray(scale, dtype=np.float32)
        if scale.size == 1:
            per_row = [scale.reshape(())] * rows
        else:
            squeezed = scale.reshape(-1) if scale.size == rows else None
            row_axis = 1 if transposed else 0
            if squeezed is None or scale.ndim > 2 or (scale.ndim == 2 and scale.shape[row_axis] != rows):
                raise SyqError(f"{_describe(node)}: weight scale of shape {scale.shape} is not per "
                               f"tensor or per output channel; it cannot be lowered")
            per_row = list(squeezed)
        if stream.flattened_from is not None:
            channels, height, width = stream.flattened_from
            # Columns are in NCHW flatten order; the stream delivers NHWC.
            order = np.arange(channels * height * width).reshape(channels, height, width)
            matrix = matrix[:, order.transpose(1, 2, 0).reshape(-1)]
        return np.ascontiguousarray(matrix), per_row

    def conv(self, node, stream, codes, scale, attributes, a_common, name):
        if len(stream.shape) != 3:
            raise SyqError(f"{_describe(node)}: a convolution needs a feature map input")
        channels, height, width = stream.shape
        if codes.ndim != 4 or codes.shape[1] != channels:
            raise SyqError(f"{_describe(node)}: weight shape {codes.shape} does not fit {channels} "
                           f"input channels (grouped convolutions are not supported)")
        out_channels, _, kernel_height, kernel_width = codes.shape
        strides = list(attributes.get("strides", [1, 1]))
        pads = list(attributes.get("pads", [0, 0, 0, 0]))
        if attributes.get("group", 1) != 1 or any(d != 1 for d in attributes.get("dilations", [1, 1])):
            raise SyqError(f"{_describe(node)}: grouped or dilated convolutions are not supported")
        if len(set(strides)) != 1 or len(set(pads)) != 1:
            raise SyqError(f"{_describe(node)}: strides {strides} and pads {pads} must be the same "
                           f"in every direction")
        auto_pad = attributes.get("auto_pad", b"NOTSET")
        if (auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad) not in ("NOTSET", ""):
            raise SyqError(f"{_describe(node)}: auto_pad is not supported; export explicit pads")
        padding, stride = pads[0], strides[0]
        pad_value = 0
        window = SlidingWindow(name=f"{name}_window", ifm_height=height,
                               ifm_width=width, channels=channels, kernel_height=kernel_height,
                               kernel_width=kernel_width, stride=stride, padding=padding,
                               element_type=stream.dtype, pad_value=pad_value)
        if window.ofm_height < 1 or window.ofm_width < 1:
            raise SyqError(f"{_describe(node)}: the kernel does not fit the {height}x{width} input")
        self.nodes.append(window)
        matrix = codes.transpose(0, 2, 3, 1).reshape(out_channels, -1)
        scale = np.asarray(scale, dtype=np.float32)
        position_scales = None
        scale_bits = 0
        if scale.size == 1:
            per_row = [scale.reshape(())] * out_channels
        elif scale.shape == (out_channels, 1, 1, 1):
            per_row = list(scale.reshape(-1))
        elif scale.ndim == 4 and scale.shape[0] == 1 and scale.shape[1] == 1 and \
                scale.shape[2] in (1, kernel_height) and scale.shape[3] in (1, kernel_width):
            positions = np.broadcast_to(scale, (1, 1, kernel_height, kernel_width)).reshape(-1)
            integers, fraction_bits = _fixed_point(positions, node)
            position_scales = integers
            scale_bits = max(1, int(integers.max()).bit_length())
            a_common = a_common / (1 << fraction_bits)
            per_row = [np.float32(1.0)] * out_channels
        else:
            raise SyqError(f"{_describe(node)}: weight scale of shape {scale.shape} is neither per "
                           f"tensor, per output channel nor per kernel position")
        return matrix, per_row, position_scales, a_common, window.ofm_height * window.ofm_width, scale_bits

    def widen_bipolar_stream(self, stream):
        """Carry a bipolar stream as 2-bit signed codes {-1, +1}, so zero padding is an exact 0.

        A bipolar element has no code for 0, and QONNX pads convolutions with 0. The unit that
        produces the stream gets its single threshold twice and offset -1, so it counts 0 or 2
        and emits -1 or +1 as INT2; max pools on the way keep their meaning. The padded layer
        then uses the signed datapath instead of XNOR-popcount.
        """
        widened = DataType("int", 2)
        for unit in reversed(self.nodes):
            if isinstance(unit, MaxPool):
                unit.element_type = widened
                continue
            if isinstance(unit, (MVAU, Thresholding)):
                unit.thresholds = np.repeat(unit.thresholds, 2, axis=1)
                unit.output_offset = -1
                unit.output_type = widened
                break
            raise SyqError(f"cannot widen the bipolar stream produced by {unit.name}")
        else:
            self.input_quant.output_type = widened
        logger.info("bipolar stream %s carried as INT2 for zero padding", stream.tensor)
        return dataclasses.replace(stream, dtype=widened)

    def affine(self, node, tensor, a, b, rows):
        """Compose one affine node into the per-row ``y = a * acc + b``."""
        if node.op_type == "BatchNormalization":
            gamma, beta, mean, variance = (self.constant(node, index) for index in range(1, 5))
            if any(value is None for value in (gamma, beta, mean, variance)):
                raise SyqError(f"{_describe(node)}: batch-norm parameters must be constants")
            epsilon = _attributes(node).get("epsilon", 1e-5)
            gain = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(variance, np.float64) +
                                                           np.float64(np.float32(epsilon)))
            shift = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * gain
            gain, shift = self.per_row(node, gain, rows), self.per_row(node, shift, rows)
            return ([x * fraction(g) for x, g in zip(a, gain)],
                    [y * fraction(g) + fraction(s) for y, g, s in zip(b, gain, shift)])
        constant, constant_first = self.data_input(node, tensor)
        values = [fraction(value) for value in self.per_row(node, constant, rows)]
        if node.op_type == "Add":
            return a, [y + c for y, c in zip(b, values)]
        if node.op_type == "Sub":
            if constant_first:
                return [-x for x in a], [c - y for y, c in zip(b, values)]
            return a, [y - c for y, c in zip(b, values)]
        if node.op_type == "Mul":
            return [x * c for x, c in zip(a, values)], [y * c for y, c in zip(b, values)]
        if constant_first or any(c == 0 for c in values):
            raise SyqError(f"{_describe(node)}: only division by a non-zero constant is supported")
        return [x / c for x, c in zip(a, values)], [y / c for y, c in zip(b, values)]

    def per_row(self, node, values, rows):
        values = np.asarray(values, dtype=np.float64)
        if values.size == 1:
            return [values.reshape(())] * rows
        squeezed = values.reshape(-1)
        non_unit = [size for size in values.shape if size != 1]
        if squeezed.size != rows or len(non_unit) != 1:
            raise SyqError(f"{_describe(node)}: constant of shape {values.shape} is not per tensor "
                           f"or per channel ({rows} channels)")
        return list(squeezed)

    # ---- building units --------------------------------------------------------------------

    def _signed_rows(self, matrix, weight_type, a, node_name):
        """Negate rows with a < 0 so every row has a >= 0; return (matrix, weight_type, a)."""
        negative = np.array([value < 0 for value in a])
        if not negative.any():
            return matrix, weight_type, a
        matrix = matrix.copy()
        matrix[negative] = -matrix[negative]
        if weight_type.kind == "uint" or not weight_type.contains(int(matrix.min()), int(matrix.max())):
            widened = smallest_type(int(matrix.min()), int(matrix.max()))
            logger.info("%s: negated rows need weight type %s instead of %s", node_name, widened,
                        weight_type)
            weight_type = DataType("int", max(widened.bits, weight_type.bits + 1)) \
                if widened.kind == "int" else widened
        return matrix, weight_type, [-value if value < 0 else value for value in a]

    def _accumulator_ranges(self, matrix, input_type, position_scales, position_elements, xnor):
        rows = matrix.shape[0]
        if position_scales is None:
            multiplier = np.ones(matrix.shape[1], dtype=np.int64)
        else:
            multiplier = np.repeat(position_scales, position_elements)
        if xnor:
            return np.zeros(rows, dtype=np.int64), np.full(rows, int(multiplier.sum()), dtype=np.int64)
        products_high = np.maximum(matrix * input_type.max, matrix * input_type.min)
        products_low = np.minimum(matrix * input_type.max, matrix * input_type.min)
        return (products_low * multiplier).sum(axis=1), (products_high * multiplier).sum(axis=1)

    def _common(self, name, matrix, weight_type, stream, a, b, position_scales, position_elements):
        matrix, weight_type, a = self._signed_rows(matrix, weight_type, a, name)
        xnor = weight_type.kind == "bipolar" and stream.dtype.kind == "bipolar"
        if xnor:
            # dot = 2 * P - K with P the (scaled) count of matching lanes and K its maximum.
            if position_scales is None:
                total = matrix.shape[1]
            else:
                total = int(position_scales.sum()) * position_elements
            b = [y - x * total for x, y in zip(a, b)]
            a = [2 * x for x in a]
        low, high = self._accumulator_ranges(matrix, stream.dtype, position_scales,
                                             position_elements, xnor)
        bits = signed_bits_for(int(low.min(initial=0)), int(high.max(initial=0)))
        return matrix, weight_type, a, b, xnor, low, high, DataType("int", bits)

    def build_mvau(self, name, matrix, weight_type, stream, num_vectors, a, b, quantizer, out_type,
                   position_scales, position_elements, scale_bits, kind, scale):
        matrix, weight_type, a, b, xnor, low, high, accumulator = self._common(
            name, matrix, weight_type, stream, a, b, position_scales, position_elements)
        if not quantizer.boundaries():
            raise SyqError(f"{name}: the activation after this layer can only output one level; "
                           f"nothing to compute")
        thresholds = layer_thresholds(a, b, quantizer, low, high)
        offset = 0 if out_type.kind == "bipolar" else quantizer.lowest_level
        return MVAU(name=name, weights=matrix, weight_type=weight_type, input_type=stream.dtype,
                    num_vectors=num_vectors, accumulator_type=accumulator, output_type=out_type,
                    thresholds=thresholds, threshold_type=DataType("int", accumulator.bits + 1),
                    output_offset=offset, position_scales=position_scales,
                    position_elements=position_elements, scale_bits=scale_bits, xnor=xnor,
                    kind=kind, row_scales=_row_scales(scale))

    def last_layer(self, name, matrix, weight_type, stream, num_vectors, a, b, position_scales,
                   position_elements, scale_bits, kind, tensor, scale):
        if num_vectors != 1:
            raise SyqError(f"the last layer {name} is a convolution with a {num_vectors}-pixel output; "
                           f"end the network with a fully connected layer")
        matrix, weight_type, a, b, xnor, low, high, accumulator = self._common(
            name, matrix, weight_type, stream, a, b, position_scales, position_elements)
        mvau = MVAU(name=name, weights=matrix, weight_type=weight_type, input_type=stream.dtype,
                    num_vectors=num_vectors, accumulator_type=accumulator, output_type=accumulator,
                    position_scales=position_scales, position_elements=position_elements,
                    scale_bits=scale_bits, xnor=xnor, kind=kind, row_scales=_row_scales(scale))
        self.nodes.append(mvau)
        post = PostProcess(scale=np.array([float(value) for value in a]),
                           bias=np.array([float(value) for value in b]), qonnx_tensor=tensor)
        return _Stream(tensor, accumulator, Fraction(1), (matrix.shape[0],)), post


def _boundary_kind(quantizer):
    """Return where a quantizer's rounding boundaries lie, in units of its scale."""
    if quantizer.kind == "bipolar":
        return "zero"
    return "integer" if quantizer.rounding in ("FLOOR", "CEIL") else "half"


def _row_scales(scale):
    return np.abs(np.asarray(scale, dtype=np.float64)).reshape(-1)


def _fixed_point(values, node):
    """Write float32 `values` as integers m * 2**-f with one f; raise SyqError if too wide."""
    fractions = [Fraction(float(value)) for value in values]
    if any(value <= 0 for value in fractions):
        raise SyqError(f"{_describe(node)}: per-position weight scales must be positive")
    fraction_bits = max(int(math.log2(value.denominator)) for value in fractions)
    integers = np.array([int(value * (1 << fraction_bits)) for value in fractions], dtype=np.int64)
    while fraction_bits > 0 and np.all(integers % 2 == 0):
        integers //= 2
        fraction_bits -= 1
    if int(integers.max()).bit_length() > MAX_POSITION_SCALE_BITS:
        raise SyqError(f"{_describe(node)}: per-position weight scales need "
                       f"{int(integers.max()).bit_length()}-bit integers on a common fixed-point "
                       f"grid (at most {MAX_POSITION_SCALE_BITS}); train with --granularity pixel "
                       f"or kernel-row, which keeps scales on a narrow grid")
    return integers, fraction_bits


def lower(model, name="model"):
    """Lower a cleaned QONNX ModelWrapper to a HardwareGraph (PE = SIMD = 1 everywhere)."""
    graph = _Lowering(model, name).lower()
    graph.metadata = {entry.key: entry.value for entry in model.model.metadata_props}
    return graph


def lower_file(path):
    """Load, clean and lower a QONNX file."""
    from pathlib import Path

    model = qonnx_exec.load_qonnx(path)
    graph = lower(model, Path(path).stem)
    graph.source = str(path)
    return graph, model
