"""Convolutional layers end to end: QONNX -> lowering -> golden model -> HLS project -> g++ C-sim.

Two sources of networks:

* hand-made QONNX (tests/graphs.py) for a grid of conv layers. The grid covers kernel 1/3/5,
  stride 1/2, padding 0/1, and 3 or 16 input channels with several PE/SIMD choices. It has
  binary and ternary weights with every SYQ scale granularity, and layers with and without batch
  norm, max-pool and thresholds (a 1x1 last convolution streams raw accumulators).
* small networks built from our Brevitas SYQ quantizers and exported with training/export.py,
  one granularity per convolution. The ternary network passes. The binary one is an expected
  failure until SYQ's zero point exports for per-channel and per-position scales.

For each network the golden model must equal qonnx execution (codes of every quantized tensor and
labels) and C-simulation must equal the golden model. Each network is one HLS project, compiled
once, and two projects compile at a time.
"""

import dataclasses
import itertools
import math

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
from torch import nn

from graphs import GraphBuilder
from hardware_checks import (assert_csim_equals_golden, assert_golden_equals_qonnx,
                             degenerate_units, run_parallel, simulate)
from syq.generator import folding, golden, qonnx_exec, verify
from syq.generator.hwgraph import MVAU, MaxPool, SlidingWindow
from syq.generator.lowering import lower
from syq.training.export import check_export, export_to_qonnx
from syq.training.models import Block
from syq.training.quantizers import (DorefaActQuant, PixelInputQuant, SyqBinaryWeightQuant,
                                     SyqWeightQuant)

IMAGES = 20
GRANULARITIES = ("layer", "channel", "kernel-row", "pixel")
# Fraction bits of the fixed-point kernel-row/pixel scales and of the other dyadic weight scales.
SCALE_FRACTION_BITS = 7


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One convolution of a hand-made network and the units that follow it."""

    channels: int  # output channels
    kernel: int
    stride: int
    padding: int
    weights: str  # "binary" or "ternary"
    granularity: str
    activation: str  # "uint2", "uint3", "uint4", "int2" (narrow), "bipolar", or "" for raw output
    batch_norm: bool
    pe: int
    simd: int
    pool: int = 0  # max-pool kernel, 0 for none
    pool_stride: int = 2


@dataclasses.dataclass(frozen=True)
class ConvNet:
    """A hand-made network: input quantizer, convolutions and a ternary FC layer (unless raw)."""

    name: str
    input_shape: tuple  # (C, H, W)
    input_quant: tuple  # ("uint" | "int", bits, scale) or ("bipolar",)
    layers: tuple
    classes: int = 0  # outputs of the final FC layer; 0: the last convolution is the output


NETS = [
    ConvNet("pixels_pool_bipolar", (3, 12, 12), ("uint", 8, 1 / 255), (
        ConvLayer(16, 3, 1, 1, "ternary", "pixel", "uint2", True, pe=4, simd=3, pool=2),
        ConvLayer(8, 5, 1, 1, "binary", "channel", "bipolar", True, pe=8, simd=16),
        # Padding a bipolar stream: the producer emits INT2 codes so that the pad is a true 0.
        ConvLayer(6, 3, 2, 1, "binary", "kernel-row", "uint3", True, pe=3, simd=8),
    ), classes=4),
    ConvNet("signed_input_k1", (16, 9, 9), ("int", 3, 0.25), (
        ConvLayer(12, 1, 2, 0, "ternary", "layer", "int2", False, pe=6, simd=16),
        ConvLayer(8, 3, 1, 0, "ternary", "kernel-row", "uint2", False, pe=2, simd=4),
        ConvLayer(4, 1, 1, 1, "binary", "pixel", "bipolar", True, pe=4, simd=2, pool=2),
    ), classes=3),
    ConvNet("xnor_chain", (8, 10, 10), ("bipolar",), (
        ConvLayer(16, 3, 1, 0, "binary", "layer", "bipolar", True, pe=4, simd=8, pool=3),
        ConvLayer(16, 3, 1, 0, "binary", "pixel", "bipolar", True, pe=16, simd=16),
    ), classes=5),
    ConvNet("stride2_k5", (3, 11, 11), ("uint", 3, 0.5), (
        ConvLayer(8, 5, 2, 0, "ternary", "channel", "uint4", False, pe=2, simd=3),
        ConvLayer(4, 5, 2, 1, "binary", "pixel", "uint2", True, pe=1, simd=8),
    ), classes=3),
    ConvNet("raw_pixel_scales", (16, 5, 5), ("uint", 8, 1 / 255), (
        ConvLayer(8, 3, 1, 1, "ternary", "channel", "uint2", True, pe=8, simd=4),
        ConvLayer(6, 5, 1, 0, "ternary", "pixel", "", False, pe=3, simd=8),
    )),
    ConvNet("raw_kernel_rows", (3, 7, 7), ("int", 8, 1 / 64), (
        ConvLayer(16, 3, 2, 1, "binary", "kernel-row", "bipolar", False, pe=16, simd=1, pool=2),
        ConvLayer(5, 3, 2, 1, "binary", "layer", "", False, pe=5, simd=16),
    )),
    ConvNet("wide_k1_pad", (16, 10, 10), ("uint", 2, 0.25), (
        ConvLayer(16, 1, 1, 0, "binary", "channel", "uint2", False, pe=2, simd=16, pool=2),
        ConvLayer(8, 3, 2, 0, "ternary", "pixel", "int2", True, pe=4, simd=4),
        ConvLayer(4, 1, 2, 1, "ternary", "kernel-row", "uint2", False, pe=4, simd=8),
    ), classes=3),
]


# ---- hand-made QONNX ----------------------------------------------------------------------


def _input_floats(net, rng):
    """Return float inputs for the network's input quantizer.

    Inputs of the k-bit quantizers reach 0.7 steps past both ends of their range, so the host
    quantizer clips as well as rounds. Pixel inputs are ``pixel / 255``.
    """
    if net.input_quant[0] == "bipolar":
        return rng.uniform(-1, 1, (IMAGES,) + net.input_shape).astype(np.float32)
    kind, bits, scale = net.input_quant
    if bits == 8 and kind == "uint":
        pixels = rng.integers(0, 256, (IMAGES,) + net.input_shape)
        return pixels.astype(np.float32) / np.float32(255)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if kind == "int" else (0, (1 << bits) - 1)
    values = rng.uniform(low - 0.7, high + 0.7, (IMAGES,) + net.input_shape) * scale
    return values.astype(np.float32)


def _weight_codes(rng, layer, in_channels):
    shape = (layer.channels, in_channels, layer.kernel, layer.kernel)
    if layer.weights == "binary":
        return rng.choice([-1, 1], shape)
    return rng.integers(-1, 2, shape)


def _weight_scale(rng, layer):
    """Return a dyadic weight scale of the layer's granularity (exact in float32)."""
    shapes = {"layer": (), "channel": (layer.channels, 1, 1, 1),
              "kernel-row": (1, 1, layer.kernel, 1), "pixel": (1, 1, layer.kernel, layer.kernel)}
    integers = rng.integers(16, 256, shapes[layer.granularity])
    return (integers / (1 << SCALE_FRACTION_BITS)).astype(np.float32)


def _statistics(builder, floats):
    """Return per-channel mean and variance of the builder's current tensor on `floats`."""
    output, _ = qonnx_exec.execute(builder.build(), floats)
    return output.mean(axis=(0, 2, 3)), output.var(axis=(0, 2, 3))


def _power_of_two(value):
    return float(2.0 ** round(math.log2(max(value, 1e-6))))


def _dyadic(value, fraction_bits=4):
    return round(value * (1 << fraction_bits)) / (1 << fraction_bits)


def _add_activation(builder, layer, rng, floats):
    """Add batch norm (optional) and the activation quantizer, sized so levels get used."""
    bits = int(layer.activation[-1]) if layer.activation != "bipolar" else 1
    mean, variance = _statistics(builder, floats)
    if layer.batch_norm:
        channels = layer.channels
        gamma = rng.uniform(0.6, 1.4, channels) * rng.choice([1, 1, 1, -1], channels)
        shift = (0.3, 1.0) if layer.activation.startswith("uint") else (-0.3, 0.3)
        beta = rng.uniform(*shift, channels)
        spread = np.sqrt(np.maximum(variance, 1e-2))
        builder.batch_norm(gamma, beta, mean + rng.normal(0, 0.2, channels) * spread,
                           np.maximum(variance, 1e-2))
        # The normalised pre-activation is beta plus gamma times a value of unit variance.
        scale = _dyadic(2.5 / ((1 << bits) - 1)) if layer.activation.startswith("uint") else 0.75
    else:
        # Without batch norm, and with dyadic scales everywhere before, the pre-activations are
        # exact in qonnx's float32 arithmetic. Ties between two levels then stay exact ties and
        # test the rounding (half to even) instead of turning into float32 near-ties.
        spread = float(np.sqrt(variance.mean() + mean.var()))
        if layer.activation.startswith("uint"):
            scale = _power_of_two(2 * spread / ((1 << bits) - 1))
        else:
            scale = _power_of_two(spread)
    if layer.activation == "bipolar":
        builder.bipolar()
    elif layer.activation.startswith("uint"):
        builder.op("Relu").quant(scale, bits, signed=False)
    else:
        builder.quant(scale, bits, signed=True, narrow=True)


def build_net(net, seed):
    """Return (cleaned QONNX model, float inputs) of a hand-made network."""
    rng = np.random.default_rng(seed)
    floats = _input_floats(net, rng)
    builder = GraphBuilder(net.input_shape)
    if net.input_quant[0] == "bipolar":
        builder.bipolar()
    else:
        kind, bits, scale = net.input_quant
        builder.quant(scale, bits, signed=kind == "int")
    channels, height, width = net.input_shape
    for index, layer in enumerate(net.layers):
        builder.conv(_weight_codes(rng, layer, channels), _weight_scale(rng, layer),
                     pads=layer.padding, stride=layer.stride, bipolar=layer.weights == "binary")
        channels = layer.channels
        height = (height + 2 * layer.padding - layer.kernel) // layer.stride + 1
        width = (width + 2 * layer.padding - layer.kernel) // layer.stride + 1
        if not layer.activation:
            assert index == len(net.layers) - 1, net.name
            assert (height, width) == (1, 1), net.name
            # Raw last layer: a per-channel affine map, applied by the host post-processing.
            builder.op("Mul", rng.uniform(-1.5, 1.5, (1, channels, 1, 1)))
            builder.op("Add", rng.uniform(-2, 2, (1, channels, 1, 1)))
            break
        _add_activation(builder, layer, rng, floats)
        if layer.pool:
            builder.op("MaxPool", kernel_shape=[layer.pool] * 2, strides=[layer.pool_stride] * 2)
            height = (height - layer.pool) // layer.pool_stride + 1
            width = (width - layer.pool) // layer.pool_stride + 1
    if net.classes:
        builder.op("Reshape", np.array([1, -1], np.int64))
        builder.matmul(rng.integers(-1, 2, (channels * height * width, net.classes)), np.float32(0.5))
    return builder.build(), floats


def fold_net(graph, net, seed):
    """Apply the table's conv folding; max-pools and the FC layer get random valid values."""
    rng = np.random.default_rng(seed)
    plan = {}
    convs = [unit for unit in graph.mvaus if unit.kind == "conv"]
    assert len(convs) == len(net.layers)
    for unit, layer in zip(convs, net.layers):
        plan[unit.name] = {"pe": layer.pe, "simd": layer.simd}
    for unit in graph.nodes:
        if isinstance(unit, MaxPool):
            plan[unit.name] = {"pe": int(rng.choice(folding.valid_pe(graph, unit)))}
        elif isinstance(unit, MVAU) and unit.kind == "fc":
            plan[unit.name] = {"pe": int(rng.choice(folding.valid_pe(graph, unit))),
                               "simd": int(rng.choice(folding.valid_simd(graph, unit)))}
    return folding.apply_folding(graph, plan, source=net.name)


def _run_net(net, seed, folder):
    model, floats = build_net(net, seed)
    graph = fold_net(lower(model, net.name), net, seed)
    report = verify.verify(graph, model, floats)
    stream = golden.input_codes(graph, floats)
    return {"graph": graph, "report": report, "degenerate": degenerate_units(graph, stream),
            "job": lambda: simulate(graph, folder / net.name, floats)}


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conv-grid")
    prepared = {net.name: _run_net(net, seed, folder) for seed, net in enumerate(NETS)}
    simulated = run_parallel({name: entry["job"] for name, entry in prepared.items()})
    for name, entry in prepared.items():
        entry["csim"], entry["expected"] = simulated[name]
    return prepared


NET_IDS = [net.name for net in NETS]


def test_grid_covers_every_combination():
    layers = [layer for net in NETS for layer in net.layers]
    assert {(layer.kernel, layer.stride, layer.padding) for layer in layers} == \
        set(itertools.product((1, 3, 5), (1, 2), (0, 1)))
    assert {(layer.weights, layer.granularity) for layer in layers} == \
        set(itertools.product(("binary", "ternary"), GRANULARITIES))
    assert {net.input_shape[0] for net in NETS} >= {3, 16}
    # 3-bit inputs travel in 4-bit containers through the first sliding window.
    assert {net.input_quant[1] for net in NETS if net.input_quant[0] != "bipolar"} >= {3, 8}
    assert any(layer.pool for layer in layers) and not all(layer.pool for layer in layers)
    assert {layer.activation for layer in layers} >= {"", "uint2", "int2", "bipolar"}
    assert {layer.batch_norm for layer in layers} == {True, False}


@pytest.mark.parametrize("net", NETS, ids=NET_IDS)
def test_grid_golden_equals_qonnx(grid, net):
    entry = grid[net.name]
    assert_golden_equals_qonnx(entry["report"])
    assert entry["report"]["images"] == IMAGES
    assert entry["degenerate"] == []


@pytest.mark.parametrize("net", NETS, ids=NET_IDS)
def test_grid_csim_equals_golden(grid, net):
    entry = grid[net.name]
    assert_csim_equals_golden(entry["csim"], entry["expected"], IMAGES)


def test_grid_lowers_to_expected_units(grid):
    units = [unit for entry in grid.values() for unit in entry["graph"].nodes]
    mvaus = [unit for unit in units if isinstance(unit, MVAU)]
    windows = [unit for unit in units if isinstance(unit, SlidingWindow)]
    assert any(unit.xnor and unit.kind == "conv" for unit in mvaus)
    assert any(unit.xnor and unit.position_scales is not None for unit in mvaus)
    # Padded bipolar streams travel as INT2 so that the pad value 0 exists.
    assert any(window.padding and window.element_type.name == "INT2" for window in windows)
    assert any(unit.kind == "conv" and unit.thresholds is None for unit in mvaus)
    assert any(unit.position_scales is not None and unit.thresholds is None for unit in mvaus)
    assert any(unit.simd == 16 and unit.kind == "conv" for unit in mvaus)
    kernel_rows = grid["pixels_pool_bipolar"]["graph"].mvaus[2]
    # A kernel-row scale repeats along each row: 3 distinct rows of 3 positions.
    assert kernel_rows.kernel_positions == 9
    assert all(len(set(row)) == 1 for row in kernel_rows.position_scales.reshape(3, 3).tolist())


# ---- networks from our Brevitas SYQ quantizers --------------------------------------------

# (output channels, kernel, stride, padding, granularity, max-pool after it)
SYQ_CONVS = ((8, 3, 1, 1, "pixel", True), (8, 5, 1, 1, "kernel-row", False),
             (16, 1, 2, 0, "channel", False), (8, 3, 1, 1, "layer", False))
SYQ_INPUT = (3, 12, 12)


class SyqConvNet(nn.Module):
    """Pixel input, four SYQ convolutions (one per granularity), a SYQ FC layer with bias."""

    input_shape = SYQ_INPUT

    def __init__(self, weight_bits, act_bits, classes=4):
        super().__init__()
        quant = SyqBinaryWeightQuant if weight_bits == 1 else SyqWeightQuant
        self.input_quant = qnn.QuantIdentity(act_quant=PixelInputQuant, return_quant_tensor=True)
        self.features = nn.ModuleList()
        channels, side = SYQ_INPUT[0], SYQ_INPUT[1]
        for out_channels, kernel, stride, padding, granularity, pool in SYQ_CONVS:
            layer = qnn.QuantConv2d(channels, out_channels, kernel, stride=stride, padding=padding,
                                    bias=False, weight_quant=quant, weight_granularity=granularity)
            activation = qnn.QuantReLU(act_quant=DorefaActQuant, bit_width=act_bits,
                                       return_quant_tensor=True)
            self.features.append(Block(layer, nn.BatchNorm2d(out_channels), activation,
                                       nn.MaxPool2d(2) if pool else None))
            channels = out_channels
            side = (side + 2 * padding - kernel) // stride + 1
            side = side // 2 if pool else side
        self.last = qnn.QuantLinear(channels * side * side, classes, bias=True, weight_quant=quant,
                                    weight_granularity="channel")

    def forward(self, x):
        x = self.input_quant(x)
        for block in self.features:
            x = block(x)
        x = self.last(torch.flatten(x, 1))
        return x.value if hasattr(x, "value") else x


def build_syq_net(weight_bits, act_bits, seed, images):
    """Return a SyqConvNet with spread scales and batch norm calibrated on `images` (uint8)."""
    torch.manual_seed(seed)
    model = SyqConvNet(weight_bits, act_bits)
    with torch.no_grad():
        for block in model.features:
            tensor_quant = block.layer.weight_quant.tensor_quant
            tensor_quant.scale_parameter.mul_(torch.empty_like(tensor_quant.scale_parameter)
                                              .uniform_(0.5, 1.5))
            # Dorefa activations clip to [0, 1], so the normalised output is centred inside it.
            block.norm.weight.uniform_(0.2, 0.4)
            block.norm.bias.uniform_(0.3, 0.6)
            block.norm.momentum = None  # cumulative average over the calibration passes
    model.train()
    with torch.no_grad():
        for batch in np.array_split(images, 3):
            model(torch.from_numpy(batch.astype(np.float32) / np.float32(255)))
    return model.eval()


SYQ_CASES = {"syq_ternary_a2": (2, 2), "syq_binary_a2": (1, 2)}
SYQ_PARAMS = sorted(SYQ_CASES)


def _prepare_syq_net(name, seed, folder, calibration, images):
    weight_bits, act_bits = SYQ_CASES[name]
    floats = images.astype(np.float32) / np.float32(255)
    model = build_syq_net(weight_bits, act_bits, seed, calibration)
    exported = export_to_qonnx(model, folder / f"{name}.onnx")
    graph = lower(exported, name)
    fold_rng = np.random.default_rng(seed)
    for unit in graph.mvaus:
        folding.set_mvau_folding(graph, unit, int(fold_rng.choice(folding.valid_pe(graph, unit))),
                                 int(fold_rng.choice(folding.valid_simd(graph, unit))))
    for unit in graph.nodes:
        if isinstance(unit, MaxPool):
            unit.pe = int(fold_rng.choice(folding.valid_pe(graph, unit)))
    return {"model": model, "graph": graph, "check": check_export(model, exported, images),
            "report": verify.verify(graph, exported, floats),
            "degenerate": degenerate_units(graph, golden.input_codes(graph, floats)),
            "job": lambda: simulate(graph, folder / name, floats)}


@pytest.fixture(scope="module")
def syq_nets(tmp_path_factory):
    """Return name -> prepared and simulated network, or name -> the exception that stopped it."""
    folder = tmp_path_factory.mktemp("syq-conv")
    rng = np.random.default_rng(11)
    calibration = rng.integers(0, 256, (48,) + SYQ_INPUT).astype(np.uint8)
    images = rng.integers(0, 256, (IMAGES,) + SYQ_INPUT).astype(np.uint8)
    prepared = {}
    for seed, name in enumerate(SYQ_CASES):
        try:
            prepared[name] = _prepare_syq_net(name, seed, folder, calibration, images)
        except RuntimeError as error:
            prepared[name] = error
    ready = {name: entry for name, entry in prepared.items() if isinstance(entry, dict)}
    simulated = run_parallel({name: entry["job"] for name, entry in ready.items()})
    for name, entry in ready.items():
        entry["csim"], entry["expected"] = simulated[name]
    return prepared


def _syq_net(syq_nets, name):
    entry = syq_nets[name]
    if isinstance(entry, Exception):
        raise entry
    return entry


@pytest.mark.parametrize("name", SYQ_PARAMS)
def test_syq_conv_export_matches_pytorch(syq_nets, name):
    check = _syq_net(syq_nets, name)["check"]
    assert check["weight_codes_equal"]
    assert check["weight_layers_checked"] == len(SYQ_CONVS) + 1
    assert check["unexplained_differences"] == 0
    assert check["label_mismatches"] == check["near_ties"] == 0


@pytest.mark.parametrize("name", SYQ_PARAMS)
def test_syq_conv_scales_lowered(syq_nets, name):
    convs = _syq_net(syq_nets, name)["graph"].mvaus[:len(SYQ_CONVS)]
    pixel, kernel_row, channel, layer = convs
    assert pixel.kernel_positions == 9
    assert len(set(pixel.position_scales.tolist())) > 3, "pixel scales should differ per position"
    assert kernel_row.kernel_positions == 25
    rows = kernel_row.position_scales.reshape(5, 5)
    assert all(len(set(row)) == 1 for row in rows.tolist())
    assert len(set(rows[:, 0].tolist())) > 1
    assert channel.position_scales is None
    assert layer.position_scales is None
    assert len(set(np.round(channel.row_scales, 9).tolist())) > 1
    assert len(set(layer.row_scales.tolist())) == 1


@pytest.mark.parametrize("name", SYQ_PARAMS)
def test_syq_conv_golden_equals_qonnx(syq_nets, name):
    entry = _syq_net(syq_nets, name)
    assert_golden_equals_qonnx(entry["report"])
    assert entry["degenerate"] == []


@pytest.mark.parametrize("name", SYQ_PARAMS)
def test_syq_conv_csim_equals_golden(syq_nets, name):
    entry = _syq_net(syq_nets, name)
    assert_csim_equals_golden(entry["csim"], entry["expected"], IMAGES)


# Brevitas 0.13.4 exports every 1-bit activation as BipolarQuant; the export turns those after a
# Relu back into unsigned 1-bit Quant nodes.
def test_one_bit_dorefa_activation_exports_unsigned(tmp_path):
    rng = np.random.default_rng(12)
    calibration = rng.integers(0, 256, (16,) + SYQ_INPUT).astype(np.uint8)
    model = build_syq_net(2, 1, 0, calibration)
    exported = export_to_qonnx(model, tmp_path / "dorefa1.onnx")
    activations = [node.op_type for node in exported.graph.node
                   if node.op_type in ("Quant", "BipolarQuant") and
                   exported.get_initializer(node.input[0]) is None][1:]
    assert activations == ["Quant"] * len(SYQ_CONVS)
    report = check_export(model, exported, calibration)
    assert report["unexplained_differences"] == 0
