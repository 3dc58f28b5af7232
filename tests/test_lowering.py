import numpy as np
import pytest

from graphs import GraphBuilder
from syq.errors import SyqError
from syq.generator import golden, verify
from syq.generator.lowering import lower


def _assert_exact(model, inputs):
    graph = lower(model)
    report = verify.verify(graph, model, inputs)
    for layer in report["layers"]:
        assert layer["mismatches"] == 0, layer
    assert report["label_mismatches"] == 0
    assert report["scores_within_tolerance"]
    return graph, report


def _all_codes(count, levels):
    grids = np.meshgrid(*[np.arange(levels)] * count, indexing="ij")
    return np.stack([grid.ravel() for grid in grids], axis=1).astype(np.float32)


def _last_layer(builder, inputs, outputs=2, seed=9):
    rng = np.random.default_rng(seed)
    return builder.matmul(rng.integers(-1, 2, (inputs, outputs)), np.float32(0.5))


def test_round_half_even_ties_match_qonnx():
    weights = np.array([[1, 1, -1], [1, 0, 1], [1, -1, 0]])  # (in, out)
    builder = GraphBuilder((3,)).quant(1.0, 2, signed=False)
    builder.matmul(weights, np.full((1, 3), 0.5, np.float32)).quant(1.0, 2, signed=False)
    model = _last_layer(builder, 3).build()
    inputs = _all_codes(3, 4)
    graph, _ = _assert_exact(model, inputs)
    accumulators = golden.mvau_accumulators(graph.mvaus[0], golden.input_codes(graph, inputs))
    assert np.any(accumulators % 2 == 1), "no input hit a tie y = k + 0.5"
    assert graph.mvaus[0].thresholds[0].tolist() == [2, 3, 6]


def test_negative_and_zero_batchnorm_gain():
    rng = np.random.default_rng(1)
    weights = rng.integers(-1, 2, (6, 4))
    builder = GraphBuilder((6,)).quant(1 / 255, 8, signed=False)
    builder.matmul(weights, np.float32(0.25))
    builder.batch_norm([1.5, -2.0, 0.0, 0.7], [0.1, 0.3, 0.6, -0.2], [10.0, -5.0, 3.0, 0.0],
                       [4.0, 9.0, 1.0, 2.0])
    builder.op("Relu").quant(0.5, 2, signed=False)
    model = _last_layer(builder, 4).build()
    inputs = rng.integers(0, 256, (400, 6)).astype(np.float32) / np.float32(255)
    graph, _ = _assert_exact(model, inputs)
    first = graph.mvaus[0]
    assert np.array_equal(first.weights[1], -weights[:, 1])
    assert np.array_equal(first.weights[0], weights[:, 0])
    column = weights[:, 2]
    low, high = int(column[column < 0].sum()) * 255, int(column[column > 0].sum()) * 255
    row = first.thresholds[2]
    counts = (np.arange(low, high + 1)[:, None] >= row[None]).sum(axis=1)
    assert len(set(counts.tolist())) == 1, "a zero gain must give a constant level"


def test_thresholds_outside_accumulator_range_clipped():
    weights = np.array([[1, -1], [1, 1], [0, 1]])
    builder = GraphBuilder((3,)).quant(1.0, 2, signed=False)
    builder.matmul(weights, np.float32(1.0)).op("Add", [40.0, -40.0]).quant(1.0, 2, signed=False)
    model = _last_layer(builder, 2).build()
    graph, _ = _assert_exact(model, _all_codes(3, 4))
    unit = graph.mvaus[0]
    assert unit.thresholds[0].tolist() == [0, 0, 0]  # always: row 0 reaches [0, 6]
    assert unit.thresholds[1].tolist() == [7, 7, 7]  # never: row 1 reaches [-3, 6]
    assert unit.threshold_type.bits == unit.accumulator_type.bits + 1
    assert unit.threshold_type.contains(int(unit.thresholds.min()), int(unit.thresholds.max()))


def test_accumulator_sized_from_actual_weights():
    weights = np.zeros((100, 2), dtype=np.int64)
    weights[:3, 0] = [1, 1, 1]
    weights[:2, 1] = [-1, 1]
    builder = GraphBuilder((100,)).quant(1 / 255, 8, signed=False)
    builder.matmul(weights, np.float32(1.0)).quant(1.0, 2, signed=False)
    model = _last_layer(builder, 2).build()
    graph = lower(model)
    # Rows reach [0, 765] and [-255, 255]: 11 signed bits, not the 17 that 100 full lanes need.
    assert graph.mvaus[0].accumulator_type.bits == 11
    extreme = np.zeros((2, 100), np.float32)
    extreme[0, :3] = 1.0
    extreme[1, 1] = 1.0
    _assert_exact(model, extreme)


def test_bias_added_after_per_row_scale():
    # Dyadic scales and biases keep qonnx's float32 arithmetic exact, so ties are real ties.
    rng = np.random.default_rng(4)
    codes = rng.integers(-1, 2, (5, 8))  # (out, in)
    codes[1] = 1  # row 1 reaches accumulators 0..24
    scales = np.array([[0.25], [0.5], [1.75], [0.125], [2.0]], np.float32)
    bias = np.array([0.375, -0.75, 2.25, 0.0, 0.125], np.float32)
    builder = GraphBuilder((8,)).quant(0.5, 2, signed=False)
    builder.gemm(codes, scales, bias).op("Relu").quant(0.5, 2, signed=False)
    model = _last_layer(builder, 5).build()
    inputs = _all_codes(8, 4)[::7] * np.float32(0.5)
    graph, _ = _assert_exact(model, inputs.astype(np.float32))
    unit = graph.mvaus[0]
    # Row 1: y = 0.25 * acc - 0.75 reaches level 1 (y/0.5 >= 0.5, odd level: strictly above) at acc > 4.
    assert unit.thresholds[1, 0] == 5
    # Scaling after the bias would give y = 0.5 * (0.5 * acc - 0.75): a different threshold.
    assert unit.thresholds[1, 0] != 3


@pytest.mark.parametrize("rounding", ["HALF_UP", "HALF_DOWN", "FLOOR", "CEIL"])
def test_signed_activation_rounding_modes(rounding):
    weights = np.array([[1, -1], [-1, 1], [1, 1]])
    builder = GraphBuilder((3,)).quant(1.0, 3, signed=True)
    builder.matmul(weights, np.float32(0.5)).quant(1.0, 3, signed=True, rounding=rounding)
    model = _last_layer(builder, 2).build()
    _assert_exact(model, _all_codes(3, 8) - 4)


def test_pixel_preprocessing_becomes_thresholds():
    builder = GraphBuilder((1, 4, 4)).op("Reshape", np.array([1, -1], np.int64))
    builder.op("Mul", 2.0).op("Sub", [1.0]).quant(1.0, 2, signed=True, narrow=True)
    builder.matmul(np.random.default_rng(2).integers(-1, 2, (16, 3)), np.float32(1.0))
    builder.quant(1.0, 2, signed=True, narrow=True)
    model = _last_layer(builder, 3).build()
    pixels = np.arange(256, dtype=np.float32).reshape(16, 1, 4, 4) / np.float32(255)
    graph, _ = _assert_exact(model, pixels)
    assert graph.input_quant.mode == "pixels"
    unit = graph.nodes[0]
    # 2x - 1 rounds to -1 below 0.25, to +1 from 0.75: pixel codes 64 and 192 (127.5/255 ties to 0).
    assert unit.thresholds.tolist() == [[64, 192]]
    assert unit.output_offset == -1


def test_xnor_layer_with_negative_gain():
    rng = np.random.default_rng(5)
    builder = GraphBuilder((16,)).bipolar()
    builder.matmul(rng.choice([-1, 1], (16, 6)), np.float32(1.0), bipolar=True)
    builder.batch_norm([1.0, -1.0, 0.5, -0.3, 2.0, 1.0], [0.5, 0.0, -1.0, 0.25, 0.0, 0.0],
                       [0.0, 1.0, 2.0, -3.0, 0.0, 4.0], [1.0, 1.0, 4.0, 1.0, 2.0, 1.0])
    builder.bipolar()
    builder.matmul(rng.choice([-1, 1], (6, 3)), np.float32(1.0), bipolar=True)
    model = builder.build()
    graph, _ = _assert_exact(model, rng.choice([-1.0, 1.0], (300, 16)).astype(np.float32))
    assert all(unit.xnor for unit in graph.mvaus)


def test_conv_with_pixel_scales_and_padding():
    rng = np.random.default_rng(6)
    codes = rng.integers(-1, 2, (4, 2, 3, 3))
    position_scales = (rng.integers(1, 64, (1, 1, 3, 3)) / 64.0).astype(np.float32)
    builder = GraphBuilder((2, 6, 6)).quant(0.25, 2, signed=False)
    builder.conv(codes, position_scales, pads=1).op("Relu").quant(0.125, 2, signed=False)
    builder.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    builder.op("Reshape", np.array([1, -1], np.int64))
    model = _last_layer(builder, 36, outputs=3).build()
    inputs = (rng.integers(0, 4, (200, 2, 6, 6)) / 4).astype(np.float32)
    graph, _ = _assert_exact(model, inputs)
    conv = graph.mvaus[0]
    assert conv.kernel_positions == 9
    assert conv.position_elements == 2


@pytest.mark.parametrize("stride, pads", [(2, 0), (1, 0), (2, 1)])
def test_conv_strides_and_padding(stride, pads):
    rng = np.random.default_rng(7)
    builder = GraphBuilder((3, 7, 7)).quant(1 / 255, 8, signed=False)
    builder.conv(rng.integers(-1, 2, (5, 3, 3, 3)), rng.uniform(0.1, 1, (5, 1, 1, 1)), pads=pads,
                 stride=stride)
    builder.op("Relu").quant(0.25, 2, signed=False).op("Reshape", np.array([1, -1], np.int64))
    side = (7 + 2 * pads - 3) // stride + 1
    builder.matmul(rng.integers(-1, 2, (5 * side * side, 4)), np.float32(0.5))
    model = builder.build()
    _assert_exact(model, rng.integers(0, 256, (100, 3, 7, 7)).astype(np.float32) / np.float32(255))


def test_unsupported_op_named():
    builder = GraphBuilder((4,)).quant(1.0, 2, signed=False)
    builder.matmul(np.ones((4, 2)), np.float32(1.0)).op("Sigmoid").quant(1.0, 2, signed=False)
    with pytest.raises(SyqError, match=r"Sigmoid"):
        lower(_last_layer(builder, 2).build())


def test_zero_point_rejected():
    builder = GraphBuilder((4,)).quant(1.0, 2, signed=False)
    builder.nodes[-1].input[2] = builder.constant(1.0)
    builder.matmul(np.ones((4, 2)), np.float32(1.0))
    with pytest.raises(SyqError, match="zero point"):
        lower(builder.build())


def test_per_channel_activation_scale_rejected():
    builder = GraphBuilder((4,)).quant(1.0, 2, signed=False)
    builder.matmul(np.ones((4, 2)), np.float32(1.0)).quant(np.array([1.0, 2.0]), 2, signed=False)
    with pytest.raises(SyqError, match="per-channel activation scales"):
        lower(_last_layer(builder, 2).build())


def test_float_weights_rejected():
    builder = GraphBuilder((4,)).quant(1.0, 2, signed=False)
    builder.op("MatMul", np.full((4, 2), 0.37, np.float32))
    with pytest.raises(SyqError, match="float weights"):
        lower(builder.build())


def test_unquantized_input_rejected():
    builder = GraphBuilder((4,))
    builder.matmul(np.ones((4, 2)), np.float32(1.0))
    with pytest.raises(SyqError, match="input must be quantized"):
        lower(builder.build())


def test_padded_conv_on_bipolar_input_is_exact():
    rng = np.random.default_rng(8)
    builder = GraphBuilder((2, 5, 5)).quant(1 / 255, 8, signed=False)
    builder.conv(rng.integers(-1, 2, (4, 2, 3, 3)), np.float32(1.0), pads=0)
    builder.batch_norm([1.0, -0.5, 0.8, 1.2], [0.0, 0.1, -0.2, 0.3], [0.5, -1.0, 0.0, 2.0],
                       [1.0, 2.0, 1.0, 0.5])
    builder.bipolar()
    builder.conv(rng.choice([-1, 1], (3, 4, 3, 3)), np.float32(1.0), pads=1, bipolar=True)
    builder.batch_norm([1.0, 1.0, -1.0], [0.0, 0.5, 0.0], [0.0, 1.0, -2.0], [1.0, 1.0, 1.0])
    builder.bipolar().op("Reshape", np.array([1, -1], np.int64))
    builder.matmul(rng.choice([-1, 1], (27, 2)), np.float32(1.0), bipolar=True)
    model = builder.build()
    inputs = rng.integers(0, 256, (150, 2, 5, 5)).astype(np.float32) / np.float32(255)
    graph, _ = _assert_exact(model, inputs)
    first, padded, last = graph.mvaus
    assert first.output_type.name == "INT2"
    assert first.thresholds.shape[1] == 2
    assert not padded.xnor
    assert last.xnor


def test_float32_near_ties_are_explained():
    # 0.3 * (1/3) + 0.4 ties with 1.5 / 3 in decimal but not in binary: qonnx's float32 Gemm
    # lands on the tie, the exact thresholds do not. Verify must call these near-ties.
    codes = np.ones((2, 4), dtype=np.int64)
    builder = GraphBuilder((4,)).quant(1 / 3, 2, signed=False)
    builder.gemm(codes, np.array([[0.3], [0.3]], np.float32), np.array([0.4, 0.1], np.float32))
    builder.op("Relu").quant(1 / 3, 2, signed=False)
    model = _last_layer(builder, 2).build()
    inputs = _all_codes(4, 4) / np.float32(3)
    report = verify.verify(lower(model), model, inputs.astype(np.float32))
    assert report["layers"][1]["near_ties"] > 0
    assert report["unexplained_differences"] == 0
    assert not report["equal"]
    assert report["consistent"]


def test_wrong_threshold_is_unexplained():
    weights = np.array([[1, 1, -1], [1, 0, 1], [1, -1, 0]])
    builder = GraphBuilder((3,)).quant(1.0, 2, signed=False)
    builder.matmul(weights, np.full((1, 3), 0.5, np.float32)).quant(1.0, 2, signed=False)
    model = _last_layer(builder, 3).build()
    graph = lower(model)
    graph.mvaus[0].thresholds[0] += 2
    report = verify.verify(graph, model, _all_codes(3, 4))
    assert report["unexplained_differences"] > 0
    assert not report["consistent"]
