"""Baseline weight quantizers that SYQ is compared with (same networks, activations and training).

* ``const``: the Brevitas ``bnn_pynq`` recipe. Ternary weights are 2-bit narrow integers with a
  constant scale of 1 (round to nearest, so the zero band is |w| < 0.5), binary weights are
  +-1; latent weights start uniform in [-1, 1] and are clipped to [-1, 1] after every step.
* ``learned``: Brevitas' per-channel quantizers with a learned scale initialised from the weight
  statistics: 2-bit narrow integers {-1, 0, 1} * alpha_row (INT2, initialised from max|w|), or
  binary +-alpha_row (initialised from mean|w|).
"""

import torch
from brevitas.core.scaling import ScalingImplType
from brevitas.core.stats import StatsOp
from brevitas.quant import (Int8WeightPerChannelFloat, SignedBinaryWeightPerTensorConst,
                            SignedTernaryWeightPerTensorConst)

WEIGHT_QUANTS = ("syq", "const", "learned")


class ConstTernaryWeightQuant(SignedTernaryWeightPerTensorConst):
    """bnn_pynq ternary weights: narrow INT2 with a constant scale of 1."""

    scaling_const = 1.0


class ConstBinaryWeightQuant(SignedBinaryWeightPerTensorConst):
    """bnn_pynq binary weights: +-1 with a constant scale of 1."""

    scaling_const = 1.0


class LearnedTernaryWeightQuant(Int8WeightPerChannelFloat):
    """Narrow INT2 weights with a learned per-channel scale (initialised from max|w| per row)."""

    bit_width = 2
    scaling_impl_type = ScalingImplType.PARAMETER_FROM_STATS


class LearnedBinaryWeightQuant(SignedBinaryWeightPerTensorConst):
    """Binary weights with a learned per-channel scale (initialised from mean|w| per row)."""

    scaling_impl_type = ScalingImplType.PARAMETER_FROM_STATS
    scaling_per_output_channel = True
    scaling_stats_op = StatsOp.AVE


def weight_quant_kwargs(kind, weight_bits):
    """Return the QuantLinear/QuantConv2d keywords of baseline `kind` ("const" or "learned")."""
    if kind == "const":
        quant = ConstBinaryWeightQuant if weight_bits == 1 else ConstTernaryWeightQuant
    else:
        quant = LearnedBinaryWeightQuant if weight_bits == 1 else LearnedTernaryWeightQuant
    return {"weight_quant": quant}


def _baseline_layers(model):
    return [layer for layer in model.weight_layers() if hasattr(layer, "quant_weight")]


def prepare(model, spec):
    """Initialise a fresh model as its recipe asks (``const``: weights uniform in [-1, 1])."""
    if spec.weight_quant != "const":
        return
    with torch.no_grad():
        for layer in _baseline_layers(model):
            layer.weight.uniform_(-1.0, 1.0)
            layer.weight_quant.init_tensor_quant()


def after_step(model, spec):
    """Apply the recipe's step constraint (``const``: clip latent weights to [-1, 1])."""
    if spec.weight_quant != "const":
        return
    with torch.no_grad():
        for layer in _baseline_layers(model):
            layer.weight.clamp_(-1.0, 1.0)
