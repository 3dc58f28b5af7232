"""The typed hardware graph between QONNX and C++: a chain of streaming units.

Every unit consumes and produces a stream of integer elements. Feature maps travel channels-last
(NHWC): one "vector" is the channels of one pixel, and a frame is all pixels of one image.
Values in the golden model are the element values (bipolar elements are -1/+1); the C++ library
packs them as described in ``generator/packing.py``.
"""

import dataclasses
from typing import List, Optional

import numpy as np

from syq.generator.datatypes import DataType


@dataclasses.dataclass
class InputQuant:
    """How the host turns a float input image into the integer codes the accelerator receives.

    ``mode == "quant"``: the graph input feeds a QONNX ``Quant`` directly; the host applies it
    exactly as qonnx does (float32 division by `scale`, clamp, rounding) and sends its codes.
    ``mode == "pixels"``: the input is ``pixel / 255``; the host sends the 8-bit pixel codes and a
    Thresholding unit reproduces the model's pre-processing and input quantization.
    """

    mode: str
    output_type: DataType
    input_shape: tuple  # one image in the QONNX layout, e.g. (1, 28, 28) or (784,)
    channels: int
    scale: float = 1.0
    signed: bool = False
    narrow: bool = False
    bits: int = 8
    rounding_mode: str = "ROUND"
    bipolar: bool = False
    qonnx_tensor: str = ""  # QONNX tensor holding the quantized input


@dataclasses.dataclass
class Thresholding:
    """Per-channel multi-threshold unit: output = offset + #{k : x >= thresholds[c, k]}."""

    name: str
    channels: int
    num_vectors: int
    input_type: DataType
    thresholds: np.ndarray  # (channels, N) int64, ascending per row
    output_offset: int
    output_type: DataType
    threshold_type: DataType
    pe: int = 1
    qonnx_tensor: str = ""
    qonnx_scale: float = 1.0

    @property
    def input_elements(self):
        """Return the elements per input word."""
        return self.pe

    @property
    def output_elements(self):
        """Return the elements per output word."""
        return self.pe

    @property
    def frame_elements(self):
        """Return the elements of one input frame (equal to one output frame)."""
        return self.channels * self.num_vectors


@dataclasses.dataclass
class MVAU:
    """Matrix-vector-activation unit: one fully connected layer or the matrix of a convolution.

    Row r of `weights` is output channel r; column c is input element c of a vector (for a
    convolution, column (ky * Kw + kx) * C + channel). With `position_scales`, the partial sum of
    every `position_elements` consecutive columns is multiplied by its integer scale before it is
    added to the accumulator. In `xnor` mode (bipolar inputs and weights) the accumulator counts
    matching lanes instead of summing products.
    """

    name: str
    weights: np.ndarray  # (MH, MW) int64 codes
    weight_type: DataType
    input_type: DataType
    num_vectors: int
    accumulator_type: DataType
    output_type: DataType
    thresholds: Optional[np.ndarray] = None  # (MH, N) int64, None: raw accumulator output
    threshold_type: Optional[DataType] = None
    output_offset: int = 0
    position_scales: Optional[np.ndarray] = None  # (positions,) int64 >= 1
    position_elements: int = 0
    scale_bits: int = 0
    xnor: bool = False
    pe: int = 1
    simd: int = 1
    kind: str = "fc"  # "fc" or "conv", for reports
    qonnx_tensor: str = ""
    qonnx_scale: float = 1.0
    # QONNX tensor entering the activation quantizer, and where its rounding boundaries lie in
    # units of qonnx_scale: "half" (k + 1/2), "integer" (k) or "zero" (bipolar sign).
    qonnx_preactivation: str = ""
    qonnx_boundary: str = "half"
    row_scales: Optional[np.ndarray] = None  # learned weight scale per row, for reports

    @property
    def matrix_height(self):
        """Return MH, the rows (output elements per vector)."""
        return int(self.weights.shape[0])

    @property
    def matrix_width(self):
        """Return MW, the columns (input elements per vector)."""
        return int(self.weights.shape[1])

    @property
    def num_thresholds(self):
        """Return thresholds per row (0 for raw output)."""
        return 0 if self.thresholds is None else int(self.thresholds.shape[1])

    @property
    def kernel_positions(self):
        """Return the number of scaled column groups (1 without position scales)."""
        return 1 if self.position_scales is None else len(self.position_scales)

    @property
    def input_elements(self):
        """Return the elements per input word."""
        return self.simd

    @property
    def output_elements(self):
        """Return the elements per output word."""
        return self.pe

    @property
    def frame_elements(self):
        """Return the elements of one input frame."""
        return self.matrix_width * self.num_vectors

    @property
    def cycles(self):
        """Return the cycles per frame at II=1: (MH/PE) * (MW/SIMD) * vectors."""
        return (self.matrix_height // self.pe) * (self.matrix_width // self.simd) * self.num_vectors


@dataclasses.dataclass
class SlidingWindow:
    """Im2col as a stream: emits each output pixel's window in (ky, kx, channel) order."""

    name: str
    ifm_height: int
    ifm_width: int
    channels: int
    kernel_height: int
    kernel_width: int
    stride: int
    padding: int
    element_type: DataType
    pad_value: int = 0
    simd: int = 1

    @property
    def ofm_height(self):
        """Return the output rows."""
        return (self.ifm_height + 2 * self.padding - self.kernel_height) // self.stride + 1

    @property
    def ofm_width(self):
        """Return the output columns."""
        return (self.ifm_width + 2 * self.padding - self.kernel_width) // self.stride + 1

    @property
    def input_elements(self):
        return self.simd

    @property
    def output_elements(self):
        return self.simd

    @property
    def frame_elements(self):
        """Return the elements of one input frame."""
        return self.ifm_height * self.ifm_width * self.channels

    @property
    def cycles(self):
        """Return the cycles per frame: one output word per cycle, after a line of preload."""
        words_out = self.ofm_height * self.ofm_width * self.kernel_height * self.kernel_width * \
            (self.channels // self.simd)
        words_in = self.ifm_height * self.ifm_width * (self.channels // self.simd)
        return max(words_out, words_in)


@dataclasses.dataclass
class MaxPool:
    """Max pooling over a kernel x kernel window with a stride, no padding (floor of the size)."""

    name: str
    ifm_height: int
    ifm_width: int
    channels: int
    kernel: int
    stride: int
    element_type: DataType
    pe: int = 1
    qonnx_tensor: str = ""
    qonnx_scale: float = 1.0

    @property
    def ofm_height(self):
        return (self.ifm_height - self.kernel) // self.stride + 1

    @property
    def ofm_width(self):
        return (self.ifm_width - self.kernel) // self.stride + 1

    @property
    def input_elements(self):
        return self.pe

    @property
    def output_elements(self):
        return self.pe

    @property
    def frame_elements(self):
        return self.ifm_height * self.ifm_width * self.channels

    @property
    def cycles(self):
        """Return the cycles per frame: one input word per cycle."""
        return self.ifm_height * self.ifm_width * (self.channels // self.pe)


@dataclasses.dataclass
class PostProcess:
    """Host-side affine map of the raw last-layer outputs, then arg-max: y = scale * acc + bias."""

    scale: np.ndarray  # (MH,) float64
    bias: np.ndarray  # (MH,) float64
    qonnx_tensor: str = ""


@dataclasses.dataclass
class HardwareGraph:
    """The lowered network: host input quantization, a chain of units, host post-processing."""

    name: str
    input_quant: InputQuant
    nodes: List[object]
    post: PostProcess
    source: str = ""
    metadata: dict = dataclasses.field(default_factory=dict)

    @property
    def mvaus(self):
        """Return the MVAU nodes in order."""
        return [node for node in self.nodes if isinstance(node, MVAU)]

    @property
    def output_type(self):
        """Return the element type of the accelerator's output stream."""
        last = self.nodes[-1]
        return last.accumulator_type if last.thresholds is None else last.output_type

    @property
    def output_elements(self):
        """Return the output elements per frame."""
        return self.nodes[-1].matrix_height * self.nodes[-1].num_vectors

    @property
    def input_type(self):
        """Return the element type of the accelerator's input stream."""
        return self.input_quant.output_type if self.input_quant.mode == "quant" else \
            DataType("uint", 8)

    @property
    def input_elements(self):
        """Return the input elements per frame."""
        return int(np.prod(self.input_quant.input_shape))
