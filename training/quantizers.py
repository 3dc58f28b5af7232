"""SYQ weight quantizers and the activation quantizers, as Brevitas quantizers.

The SYQ weight quantizer (Faraone et al., "SYQ: Learning Symmetric Quantization", CVPR 2018,
behaviour taken from the authors' released TensorFlow code):

* threshold ``delta = t * max|w|`` over the whole layer, recomputed every step, no gradient;
* ternary code ``c = sign(w) * [|w| > delta]``; binary code ``c = +1 if w >= 0 else -1``
  (zero maps to +1 as in QONNX ``BipolarQuant``; the original code maps it to 0);
* quantized weight ``alpha[g] * c`` with one learned scale per subgroup ``g``;
* backward: ``dL/dalpha[g] = sum over g of c * dL/dwq`` (only weights above the threshold count
  for ternary codes) and ``dL/dw = alpha * dL/dwq`` where ``|w| > delta``, ``1 * dL/dwq``
  elsewhere (the zero mask is not applied backward, nothing is clipped).

Alpha is kept positive by storing an unconstrained parameter ``scale_parameter`` and using its
magnitude, ``alpha = |scale_parameter|``; the gradient reaching the parameter is
``sign(scale_parameter) * dL/dalpha``. Scales that vary along the summed axis of a convolution
(granularities ``kernel-row`` and ``pixel``) are further snapped to a fixed-point grid
``alpha = m * 2**-f`` with an unsigned ``scale_bits``-bit integer ``m >= 1`` (straight-through
rounding), so the hardware can multiply partial sums by ``m`` exactly.
"""

import math
import os

os.environ.setdefault("BREVITAS_JIT", "0")

import torch  # noqa: E402
from brevitas.core.bit_width import BitWidthImplType  # noqa: E402
from brevitas.core.function_wrapper import TensorClamp  # noqa: E402
from brevitas.core.quant import QuantType  # noqa: E402
from brevitas.core.restrict_val import FloatToIntImplType, RestrictValueType  # noqa: E402
from brevitas.core.scaling import ScalingImplType  # noqa: E402
from brevitas.core.zero_point import ZeroZeroPoint  # noqa: E402
from brevitas.inject import ExtendedInjector, value  # noqa: E402
from brevitas.proxy import WeightQuantProxyFromInjector  # noqa: E402
from brevitas.quant.solver import ActQuantSolver  # noqa: E402
from brevitas.quant import Int8WeightPerChannelFloat, Uint8ActPerTensorFloat  # noqa: E402
from torch import nn  # noqa: E402

from syq.errors import SyqError  # noqa: E402

GRANULARITIES = ("layer", "channel", "kernel-row", "pixel")
DEFAULT_SCALE_BITS = 8


def default_threshold(weight_bits):
    """Return SYQ's default threshold factor t: 0.05 for ternary weights, 0 for binary."""
    return 0.05 if weight_bits == 2 else 0.0


def check_threshold(threshold):
    """Raise SyqError unless the threshold factor t lies in [0, 1)."""
    if not (isinstance(threshold, (int, float)) and 0.0 <= threshold < 1.0):
        raise SyqError(f"invalid SYQ threshold factor t = {threshold!r}: it must lie in [0, 1) "
                       f"(0.05 is the usual value for ternary weights, 0 for binary)")


def scale_shape(weight_shape, granularity):
    """Return the shape of the learned scale tensor for a weight of `weight_shape`.

    Convolution weights are (O, I, Kh, Kw), linear weights (O, I). ``kernel-row`` and ``pixel``
    scales exist only for convolutions; a linear layer gets one scale for the layer.
    """
    if granularity not in GRANULARITIES:
        raise SyqError(f"unknown SYQ granularity {granularity!r}: choose one of "
                       f"{', '.join(GRANULARITIES)}")
    rank = len(weight_shape)
    if granularity == "channel":
        return (weight_shape[0],) + (1,) * (rank - 1)
    if rank == 4 and granularity == "kernel-row":
        return (1, 1, weight_shape[2], 1)
    if rank == 4 and granularity == "pixel":
        return (1, 1, weight_shape[2], weight_shape[3])
    return (1,) * rank


def uses_fixed_point_scales(weight_shape, granularity):
    """Tell whether the scales vary along the summed axis and therefore live on a fixed-point grid."""
    return len(weight_shape) == 4 and granularity in ("kernel-row", "pixel")


def subgroup_mean_abs(weight, shape):
    """Return mean |w| over each subgroup of a scale tensor of `shape` (SYQ's alpha initialisation)."""
    reduce_dims = [dim for dim, size in enumerate(shape) if size == 1 and weight.shape[dim] != 1]
    magnitude = weight.detach().abs()
    if reduce_dims:
        magnitude = magnitude.mean(dim=reduce_dims, keepdim=True)
    return magnitude.reshape(shape)


def fixed_point_fraction_bits(initial_scales, scale_bits):
    """Choose f for ``alpha = m * 2**-f`` so the largest initial scale uses about half of m's range.

    The factor-of-two headroom lets scales grow during training before m saturates.
    """
    largest = float(initial_scales.max())
    if not largest > 0.0:
        return scale_bits
    return int(math.floor(math.log2((2 ** scale_bits - 1) / (2.0 * largest))))


class _SyqCodes(torch.autograd.Function):
    """``alpha * c`` with SYQ's TTQ-style straight-through gradients (see module docstring)."""

    @staticmethod
    def forward(ctx, weight, alpha, delta, binary):
        above = weight.abs() > delta
        if binary:
            codes = torch.where(weight >= 0, 1.0, -1.0).to(weight.dtype)
        else:
            codes = torch.sign(weight) * above
        ctx.save_for_backward(above, codes, alpha)
        return alpha * codes

    @staticmethod
    def backward(ctx, grad_output):
        above, codes, alpha = ctx.saved_tensors
        grad_weight = torch.where(above, alpha * grad_output, grad_output)
        grad_alpha = grad_output * codes
        reduce_dims = [dim for dim, size in enumerate(alpha.shape)
                       if size == 1 and grad_alpha.shape[dim] != 1]
        if reduce_dims:
            grad_alpha = grad_alpha.sum(dim=reduce_dims, keepdim=True)
        return grad_weight, grad_alpha, None, None


def syq_quantize(weight, alpha, threshold, binary):
    """Apply the SYQ forward and backward rule to `weight` with positive scales `alpha`."""
    delta = threshold * weight.detach().abs().max()
    return _SyqCodes.apply(weight, alpha, delta, binary)


def syq_codes(weight, threshold, binary):
    """Return the integer SYQ codes of `weight` (no gradient)."""
    weight = weight.detach()
    if binary:
        return torch.where(weight >= 0, 1.0, -1.0)
    delta = threshold * weight.abs().max()
    return torch.sign(weight) * (weight.abs() > delta)


class _RoundSte(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


class SyqWeightTensorQuant(nn.Module):
    """Brevitas ``tensor_quant`` module of the SYQ weight quantizer.

    Returns Brevitas' tuple ``(alpha * c, alpha, zero_point, bit_width)``. The learned state is
    ``scale_parameter`` (alpha is its magnitude) and, for fixed-point scales, the buffer
    ``fraction_bits`` (f in ``alpha = m * 2**-f``).
    """

    def __init__(self, scaling_shape, scaling_init, threshold, bit_width, fixed_point_scales,
                 scale_bits):
        super().__init__()
        check_threshold(threshold)
        if bit_width not in (1, 2):
            raise SyqError(f"invalid SYQ weight bit width {bit_width}: use 1 (binary) or 2 (ternary)")
        self.threshold = float(threshold)
        self.binary = bit_width == 1
        self.fixed_point_scales = bool(fixed_point_scales)
        self.scale_bits = int(scale_bits)
        initial = torch.as_tensor(scaling_init, dtype=torch.float32).expand(scaling_shape).clone()
        self.scale_parameter = nn.Parameter(initial)
        self.register_buffer("fraction_bits", torch.tensor(
            fixed_point_fraction_bits(initial, self.scale_bits) if self.fixed_point_scales else 0))
        self.register_buffer("bit_width", torch.tensor(float(bit_width)))

    def scales(self):
        """Return the positive scales alpha in use (on the fixed-point grid where it applies)."""
        alpha = self.scale_parameter.abs()
        if not self.fixed_point_scales:
            return alpha
        step = 2.0 ** (-int(self.fraction_bits))
        integer = torch.clamp(_RoundSte.apply(alpha / step), 1, 2 ** self.scale_bits - 1)
        return integer * step

    def forward(self, weight):
        alpha = self.scales()
        quantized = syq_quantize(weight, alpha, self.threshold, self.binary)
        # A scalar zero point: Brevitas exports binary weights only when `zero_point == 0` is a bool.
        return quantized, alpha, torch.zeros((), dtype=alpha.dtype, device=alpha.device), self.bit_width


class SyqWeightQuant(ExtendedInjector):
    """Ternary SYQ weights with one learned scale per output channel (override via attributes).

    Use as ``QuantLinear(..., weight_quant=SyqWeightQuant)``; layer keywords with the ``weight_``
    prefix override the attributes, e.g. ``weight_granularity="pixel"``, ``weight_bit_width=1``,
    ``weight_threshold=0.05``, ``weight_scale_bits=8``.
    """

    proxy_class = WeightQuantProxyFromInjector
    tensor_quant = SyqWeightTensorQuant
    signed = True
    narrow_range = True
    bit_width = 2
    threshold = 0.05
    granularity = "channel"
    scale_bits = DEFAULT_SCALE_BITS

    @value
    def scaling_shape(module, granularity):
        return scale_shape(tuple(module.weight.shape), granularity)

    @value
    def scaling_init(module, granularity):
        shape = scale_shape(tuple(module.weight.shape), granularity)
        return subgroup_mean_abs(module.weight, shape)

    @value
    def fixed_point_scales(module, granularity):
        return uses_fixed_point_scales(tuple(module.weight.shape), granularity)


class SyqBinaryWeightQuant(SyqWeightQuant):
    """Binary SYQ weights {-alpha, +alpha}; zero maps to +alpha."""

    bit_width = 1
    threshold = 0.0


class Int8WeightQuant(Int8WeightPerChannelFloat):
    """8-bit narrow signed weights with a per-channel scale, for an optional wide first/last layer."""


class DorefaActQuant(Uint8ActPerTensorFloat):
    """SYQ/DoReFa activation ``round((2**k - 1) * clip(x, 0, 1)) / (2**k - 1)``.

    A constant scale 1 / (2**k - 1) over unsigned k-bit codes; the clamp is not a
    straight-through one, so the gradient is 1 inside (0, 1) and 0 outside. Rounding is half to
    even (``torch.round``) where the original code rounds half up; the two differ only at exact
    half steps. Set ``bit_width`` per layer (``QuantReLU(act_quant=DorefaActQuant, bit_width=k)``).
    """

    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 1.0
    max_val = 1.0
    tensor_clamp_impl = TensorClamp


class LearnedActQuant(Uint8ActPerTensorFloat):
    """Unsigned k-bit activation with a learned per-tensor scale (Brevitas' standard QuantReLU)."""


class BnnPynqActQuant(ActQuantSolver):
    """Signed activations with a constant range [-1, 1], as in Brevitas' bnn_pynq networks.

    One bit gives bipolar +-1 (0 maps to +1), more bits give narrow signed levels, for example
    {-1, 0, 1} for two bits. Set ``bit_width`` per layer; ``narrow_range=False`` with 8 bits gives
    the Q1.7 input quantizer of bnn_pynq's CNV (scale 2**-7).
    """

    bit_width_impl_type = BitWidthImplType.CONST
    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.FP
    zero_point_impl = ZeroZeroPoint
    float_to_int_impl_type = FloatToIntImplType.ROUND
    scaling_per_output_channel = False
    narrow_range = True
    signed = True
    min_val = -1.0
    max_val = 1.0

    @value
    def quant_type(bit_width):
        return QuantType.BINARY if bit_width == 1 else QuantType.INT


class PixelInputQuant(Uint8ActPerTensorFloat):
    """Network input: unsigned 8-bit pixel codes with scale 1/255 (inputs are ``pixel / 255``)."""

    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 1.0
    max_val = 1.0
    bit_width = 8
    tensor_clamp_impl = TensorClamp
