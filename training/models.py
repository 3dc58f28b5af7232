"""Reference networks (FINN/Brevitas naming) built from the SYQ quantizers.

* TFC, SFC, LFC: three hidden fully connected layers of 64, 256 or 1024 units.
* CNV: the VGG-like CIFAR-10 network (2 x 64 conv, pool, 2 x 128 conv, pool, 2 x 256 conv,
  2 x 512 FC); CNV-28 takes 28 x 28 x 1 images by padding its first two convolutions so that the
  feature maps from the first pool on have CNV's sizes (14, 12, 10, 5, 3, 1).

Every quantized layer is followed by batch norm and the activation quantizer, except the last
one, which returns logits (its bias stays in floating point and is applied by the host). The
network input is ``pixel / 255`` and is quantized to 8-bit pixel codes first. With
``float_model`` the same topology is built from plain PyTorch layers, as a full-precision
baseline and as a starting point for ``--init-from``; the module names are the same, so its
weights load into a quantized model.
"""

import dataclasses

import brevitas.nn as qnn
import torch
from torch import nn

from syq.errors import SyqError
from syq.training import baselines, quantizers

MLP_HIDDEN = {"tfc": (64, 64, 64), "sfc": (256, 256, 256), "lfc": (1024, 1024, 1024)}

# (output channels, padding, max-pool after the convolution) per convolution.
CNV_CONVS = {
    "cnv": ((64, 0, False), (64, 0, True), (128, 0, False), (128, 0, True), (256, 0, False),
            (256, 0, False)),
    "cnv28": ((64, 1, False), (64, 1, True), (128, 0, False), (128, 0, True), (256, 0, False),
              (256, 0, False)),
}
CNV_FC = (512, 512)
CNV_INPUTS = {"cnv": (3, 32, 32), "cnv28": (1, 28, 28)}

MODELS = tuple(MLP_HIDDEN) + tuple(CNV_CONVS)
ACT_QUANTS = ("dorefa", "learned", "bnn-pynq")
INPUT_QUANTS = ("pixels", "bnn-pynq")


@dataclasses.dataclass(frozen=True)
class QuantSpec:
    """How a network is quantized; stored in checkpoints and QONNX metadata."""

    weight_bits: int = 2
    act_bits: int = 2
    granularity: str = "channel"
    threshold: float = 0.05
    scale_bits: int = quantizers.DEFAULT_SCALE_BITS
    act_quant: str = "dorefa"
    first_layer: str = "syq"
    last_layer: str = "syq"
    float_model: bool = False
    weight_quant: str = "syq"  # or a baseline of training/baselines.py: "const", "learned"
    input_quant: str = "pixels"  # or "bnn-pynq": 2x - 1 quantized to signed codes

    def validate(self):
        """Raise SyqError naming the first invalid field."""
        if self.float_model:
            return
        if self.weight_bits not in (1, 2):
            raise SyqError(f"invalid --weight-bits {self.weight_bits}: SYQ weights are 1 (binary) "
                           f"or 2 (ternary) bits")
        if not 1 <= self.act_bits <= 8:
            raise SyqError(f"invalid --act-bits {self.act_bits}: choose 1 to 8")
        if self.granularity not in quantizers.GRANULARITIES:
            raise SyqError(f"invalid --granularity {self.granularity!r}: choose one of "
                           f"{', '.join(quantizers.GRANULARITIES)}")
        quantizers.check_threshold(self.threshold)
        if not 2 <= self.scale_bits <= 16:
            raise SyqError(f"invalid --scale-bits {self.scale_bits}: choose 2 to 16")
        if self.weight_quant not in baselines.WEIGHT_QUANTS:
            raise SyqError(f"invalid --weight-quant {self.weight_quant!r}: choose one of "
                           f"{', '.join(baselines.WEIGHT_QUANTS)}")
        if self.act_quant not in ACT_QUANTS:
            raise SyqError(f"invalid --act-quant {self.act_quant!r}: choose one of "
                           f"{', '.join(ACT_QUANTS)}")
        if self.input_quant not in INPUT_QUANTS:
            raise SyqError(f"invalid --input-quant {self.input_quant!r}: choose one of "
                           f"{', '.join(INPUT_QUANTS)}")
        for option, choice in (("--first-layer", self.first_layer),
                               ("--last-layer", self.last_layer)):
            if choice not in ("syq", "int8"):
                raise SyqError(f"invalid {option} {choice!r}: choose syq or int8")


def _weight_quant_kwargs(spec, precision):
    if precision == "int8":
        return {"weight_quant": quantizers.Int8WeightQuant}
    if spec.weight_quant != "syq":
        return baselines.weight_quant_kwargs(spec.weight_quant, spec.weight_bits)
    quant = quantizers.SyqBinaryWeightQuant if spec.weight_bits == 1 else quantizers.SyqWeightQuant
    return {"weight_quant": quant, "weight_granularity": spec.granularity,
            "weight_threshold": spec.threshold, "weight_scale_bits": spec.scale_bits}


def _activation(spec):
    if spec.float_model:
        return nn.ReLU()
    if spec.act_quant == "bnn-pynq":
        return qnn.QuantIdentity(act_quant=quantizers.BnnPynqActQuant, bit_width=spec.act_bits,
                                 return_quant_tensor=True)
    act_quant = quantizers.DorefaActQuant if spec.act_quant == "dorefa" else quantizers.LearnedActQuant
    return qnn.QuantReLU(act_quant=act_quant, bit_width=spec.act_bits, return_quant_tensor=True)


def _linear(spec, in_features, out_features, bias, precision):
    if spec.float_model:
        return nn.Linear(in_features, out_features, bias=bias)
    return qnn.QuantLinear(in_features, out_features, bias=bias,
                           **_weight_quant_kwargs(spec, precision))


def _conv(spec, in_channels, out_channels, padding, precision):
    if spec.float_model:
        return nn.Conv2d(in_channels, out_channels, 3, padding=padding, bias=False)
    return qnn.QuantConv2d(in_channels, out_channels, 3, padding=padding, bias=False,
                           **_weight_quant_kwargs(spec, precision))


class BipolarPixels(nn.Module):
    """Map ``pixel / 255`` in [0, 1] to [-1, 1] (``2x - 1``), as bnn_pynq networks do."""

    def forward(self, x):
        return 2.0 * x - 1.0


def _input_quant(spec, convolutional):
    if spec.float_model:
        return nn.Identity()
    if spec.input_quant == "bnn-pynq":
        # bnn_pynq: 8-bit Q1.7 codes for convolutional networks, the activation width for MLPs.
        bits = 8 if convolutional else spec.act_bits
        quant = qnn.QuantIdentity(act_quant=quantizers.BnnPynqActQuant, bit_width=bits,
                                  narrow_range=bits <= 2, return_quant_tensor=True)
        return nn.Sequential(BipolarPixels(), quant)
    return qnn.QuantIdentity(act_quant=quantizers.PixelInputQuant, return_quant_tensor=True)


class Block(nn.Module):
    """Quantized layer, batch norm and activation quantizer."""

    def __init__(self, layer, norm, activation, pool=None):
        super().__init__()
        self.layer = layer
        self.norm = norm
        self.activation = activation
        self.pool = pool

    def forward(self, x):
        x = self.activation(self.norm(self.layer(x)))
        if self.pool is not None:
            x = self.pool(x)
        return x


class SyqNetwork(nn.Module):
    """A feed-forward network: input quantizer, blocks, flatten where needed, last layer."""

    def __init__(self, name, input_shape, num_classes, spec):
        super().__init__()
        spec.validate()
        self.name = name
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.spec = spec
        self.input_quant = _input_quant(spec, name in CNV_CONVS)
        self.features = nn.ModuleList()
        self.classifier = nn.ModuleList()
        if name in MLP_HIDDEN:
            self._build_mlp(MLP_HIDDEN[name])
        elif name in CNV_CONVS:
            self._build_cnv(CNV_CONVS[name])
        else:
            raise SyqError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")

    def _precision(self, index, count):
        if index == 0:
            return self.spec.first_layer
        if index == count - 1:
            return self.spec.last_layer
        return "syq"

    def _build_mlp(self, hidden):
        spec = self.spec
        widths = (self.input_shape[0] * self.input_shape[1] * self.input_shape[2],) + hidden
        count = len(hidden) + 1
        for index in range(len(hidden)):
            layer = _linear(spec, widths[index], widths[index + 1], False, self._precision(index, count))
            self.classifier.append(Block(layer, nn.BatchNorm1d(widths[index + 1]), _activation(spec)))
        self.last = _linear(spec, widths[-1], self.num_classes, True, self._precision(count - 1, count))

    def _build_cnv(self, convs):
        spec = self.spec
        channels, height, width = self.input_shape
        count = len(convs) + len(CNV_FC) + 1
        for index, (out_channels, padding, pool) in enumerate(convs):
            layer = _conv(spec, channels, out_channels, padding, self._precision(index, count))
            pooling = nn.MaxPool2d(2) if pool else None
            self.features.append(Block(layer, nn.BatchNorm2d(out_channels), _activation(spec), pooling))
            channels = out_channels
            height, width = height + 2 * padding - 2, width + 2 * padding - 2
            if pool:
                height, width = height // 2, width // 2
        if height < 1 or width < 1:
            raise SyqError(f"model {self.name!r} does not fit input {self.input_shape}: "
                           f"the feature map shrinks to {height} x {width}")
        features = channels * height * width
        for index, out_features in enumerate(CNV_FC):
            layer = _linear(spec, features, out_features, False, self._precision(len(convs) + index, count))
            self.classifier.append(Block(layer, nn.BatchNorm1d(out_features), _activation(spec)))
            features = out_features
        self.last = _linear(spec, features, self.num_classes, True, self._precision(count - 1, count))

    def forward(self, x):
        x = self.input_quant(x)
        for block in self.features:
            x = block(x)
        x = torch.flatten(x, 1)
        for block in self.classifier:
            x = block(x)
        x = self.last(x)
        return x.value if hasattr(x, "value") else x

    def weight_layers(self):
        """Return the weight layers (convolutions and linears) in forward order."""
        layers = [block.layer for block in self.features]
        layers += [block.layer for block in self.classifier]
        return layers + [self.last]


def build_model(name, input_shape, num_classes, spec):
    """Build reference network `name` for images of `input_shape` (C, H, W)."""
    if name in CNV_INPUTS and tuple(input_shape) != CNV_INPUTS[name]:
        expected = "x".join(str(size) for size in CNV_INPUTS[name])
        given = "x".join(str(size) for size in input_shape)
        raise SyqError(f"model {name!r} takes {expected} images (C x H x W), the dataset has {given}: "
                       f"use {'cnv28' if name == 'cnv' else 'cnv'} or another dataset")
    return SyqNetwork(name, input_shape, num_classes, spec)
