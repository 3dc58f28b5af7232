import brevitas.nn as qnn
import pytest
import torch

from syq.errors import SyqError
from syq.training import quantizers
from syq.training.quantizers import (BnnPynqActQuant, DorefaActQuant, LearnedActQuant,
                                     SyqBinaryWeightQuant, SyqWeightQuant)


def _linear_with_weight(values, **kwargs):
    weight = torch.tensor(values, dtype=torch.float32)
    layer = qnn.QuantLinear(weight.shape[1], weight.shape[0], bias=False, weight_quant=SyqWeightQuant,
                            **kwargs)
    with torch.no_grad():
        layer.weight.copy_(weight)
    layer.weight_quant.init_tensor_quant()
    return layer


def test_ternary_forward_worked_example():
    layer = _linear_with_weight([[0.30, -0.02, -0.50, 0.01]], weight_granularity="layer")
    quantized = layer.quant_weight()
    assert quantized.scale.item() == pytest.approx(0.2075, abs=1e-7)
    assert torch.allclose(quantized.value, torch.tensor([[0.2075, 0.0, -0.2075, 0.0]]), atol=1e-7)
    assert quantized.int().tolist() == [[1, 0, -1, 0]]
    assert quantized.bit_width.item() == 2


def test_ternary_threshold_is_t_times_max():
    # delta = 0.05 * 0.50 = 0.025: 0.0249 falls to zero, 0.0251 survives.
    layer = _linear_with_weight([[0.50, 0.0249, -0.0251, -0.2]], weight_granularity="layer")
    assert layer.quant_weight().int().tolist() == [[1, 0, -1, -1]]


def test_ternary_backward_worked_example():
    layer = _linear_with_weight([[0.30, -0.02, -0.50, 0.01]], weight_granularity="layer")
    tensor_quant = layer.weight_quant.tensor_quant
    quantized, _, _, _ = tensor_quant(layer.weight)
    quantized.backward(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    assert torch.allclose(layer.weight.grad, torch.tensor([[0.2075, 2.0, 0.6225, 4.0]]), atol=1e-6)
    assert tensor_quant.scale_parameter.grad.item() == pytest.approx(-2.0)


def test_scale_stays_positive_through_magnitude():
    layer = _linear_with_weight([[0.30, -0.02, -0.50, 0.01]], weight_granularity="layer")
    tensor_quant = layer.weight_quant.tensor_quant
    with torch.no_grad():
        tensor_quant.scale_parameter.fill_(-0.4)
    quantized, alpha, _, _ = tensor_quant(layer.weight)
    assert alpha.item() == pytest.approx(0.4)
    assert torch.allclose(quantized, torch.tensor([[0.4, 0.0, -0.4, 0.0]]))
    quantized.backward(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    # alpha = |p| so dL/dp = sign(p) * dL/dalpha = -1 * -2.
    assert tensor_quant.scale_parameter.grad.item() == pytest.approx(2.0)


def test_channel_scales_initialise_to_mean_abs_per_row():
    layer = _linear_with_weight([[0.2, -0.4, 0.0, 0.6], [0.1, 0.1, -0.1, 0.1]])
    scale = layer.quant_weight().scale
    assert scale.shape == (2, 1)
    assert torch.allclose(scale.flatten(), torch.tensor([0.3, 0.1]))


def test_channel_gradient_sums_within_each_row():
    layer = _linear_with_weight([[0.2, -0.4, 0.0, 0.6], [0.1, 0.1, -0.1, 0.1]])
    tensor_quant = layer.weight_quant.tensor_quant
    quantized, _, _, _ = tensor_quant(layer.weight)
    upstream = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    quantized.backward(upstream)
    # delta = 0.05 * 0.6 = 0.03: row 0 codes [1, -1, 0, 1], row 1 codes [1, 1, -1, 1].
    assert tensor_quant.scale_parameter.grad.flatten().tolist() == pytest.approx([3.0, 12.0])


def test_binary_maps_zero_to_plus_one():
    weight = torch.tensor([[0.3, 0.0, -0.2, -0.0]])
    layer = qnn.QuantLinear(4, 1, bias=False, weight_quant=SyqBinaryWeightQuant,
                            weight_granularity="layer")
    with torch.no_grad():
        layer.weight.copy_(weight)
    layer.weight_quant.init_tensor_quant()
    quantized = layer.quant_weight()
    assert quantized.int().tolist() == [[1, 1, -1, 1]]
    assert quantized.bit_width.item() == 1
    assert torch.allclose(quantized.value, torch.tensor([[0.125, 0.125, -0.125, 0.125]]))


def test_binary_scale_gradient_counts_every_weight():
    layer = qnn.QuantLinear(4, 1, bias=False, weight_quant=SyqBinaryWeightQuant,
                            weight_granularity="layer")
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.3, 0.001, -0.2, 0.0]]))
    layer.weight_quant.init_tensor_quant()
    tensor_quant = layer.weight_quant.tensor_quant
    quantized, _, _, _ = tensor_quant(layer.weight)
    quantized.backward(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    assert tensor_quant.scale_parameter.grad.item() == pytest.approx(1 + 2 - 3 + 4)


def test_conv_pixel_scales_shape_grid_and_gradients():
    torch.manual_seed(0)
    conv = qnn.QuantConv2d(3, 4, 3, bias=False, weight_quant=SyqWeightQuant,
                           weight_granularity="pixel", weight_scale_bits=6)
    tensor_quant = conv.weight_quant.tensor_quant
    quantized = conv.quant_weight()
    assert quantized.scale.shape == (1, 1, 3, 3)
    fraction_bits = int(tensor_quant.fraction_bits)
    integers = quantized.scale * 2 ** fraction_bits
    assert torch.equal(integers, torch.round(integers))
    assert integers.min() >= 1 and integers.max() <= 2 ** 6 - 1
    value, alpha, _, _ = tensor_quant(conv.weight)
    upstream = torch.randn_like(value)
    value.backward(upstream)
    codes = quantizers.syq_codes(conv.weight, 0.05, binary=False)
    expected = (upstream * codes).sum(dim=(0, 1), keepdim=True)
    # Rounding to the grid is straight-through and alpha = |p|, so dL/dp = dL/dalpha here.
    assert torch.allclose(tensor_quant.scale_parameter.grad, expected, atol=1e-5)
    above = conv.weight.detach().abs() > 0.05 * conv.weight.detach().abs().max()
    expected_weight_grad = torch.where(above, alpha.detach() * upstream, upstream)
    assert torch.allclose(conv.weight.grad, expected_weight_grad, atol=1e-6)


def test_conv_kernel_row_scale_shape():
    conv = qnn.QuantConv2d(2, 5, (3, 3), bias=False, weight_quant=SyqWeightQuant,
                           weight_granularity="kernel-row")
    assert conv.quant_weight().scale.shape == (1, 1, 3, 1)


def test_linear_kernel_row_scale_is_one_per_layer():
    layer = qnn.QuantLinear(6, 3, bias=False, weight_quant=SyqWeightQuant,
                            weight_granularity="kernel-row")
    scale = layer.quant_weight().scale
    assert scale.numel() == 1
    assert not layer.weight_quant.tensor_quant.fixed_point_scales


@pytest.mark.parametrize("threshold", [-0.1, 1.0, 1.5])
def test_threshold_outside_unit_interval_rejected(threshold):
    with pytest.raises(SyqError, match="threshold"):
        qnn.QuantLinear(4, 2, bias=False, weight_quant=SyqWeightQuant, weight_threshold=threshold)


def test_unknown_granularity_rejected():
    with pytest.raises(SyqError, match="granularity"):
        qnn.QuantLinear(4, 2, bias=False, weight_quant=SyqWeightQuant, weight_granularity="row")


def test_fixed_point_fraction_bits_leave_headroom():
    bits = quantizers.fixed_point_fraction_bits(torch.tensor([0.13, 0.02]), 8)
    assert bits == 9
    assert 0.13 * 2 ** bits * 2 <= 255


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_dorefa_activation_levels_and_gradient(bits):
    activation = qnn.QuantReLU(act_quant=DorefaActQuant, bit_width=bits, return_quant_tensor=True)
    x = torch.tensor([-0.5, 0.0, 0.1, 0.37, 0.5, 0.99, 1.0, 1.7], requires_grad=True)
    out = activation(x)
    levels = 2 ** bits - 1
    scale = torch.tensor(1.0 / levels, dtype=torch.float32)
    expected = torch.round(x.detach().clamp(0, 1) / scale) * scale
    assert torch.allclose(out.value, expected, atol=1e-6)
    assert out.scale.item() == pytest.approx(1.0 / levels)
    out.value.sum().backward()
    # Straight-through inside (0, 1), zero outside; the end points themselves are not pinned.
    assert x.grad.tolist()[2:6] == [1.0, 1.0, 1.0, 1.0]
    assert x.grad[0].item() == 0.0
    assert x.grad[7].item() == 0.0


def test_learned_activation_has_trainable_scale():
    activation = qnn.QuantReLU(act_quant=LearnedActQuant, bit_width=3, return_quant_tensor=True)
    parameters = [name for name, _ in activation.named_parameters()]
    activation.train()
    out = activation(torch.linspace(-1, 2, 50))
    assert out.bit_width.item() == 3
    assert any("scaling" in name or "value" in name for name in parameters)


@pytest.mark.parametrize("bits, narrow, expected", [
    (1, True, [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]),
    (2, True, [-1.0, -1.0, 0.0, 0.0, 1.0, 1.0]),
])
def test_bnn_pynq_activation_levels(bits, narrow, expected):
    activation = qnn.QuantIdentity(act_quant=BnnPynqActQuant, bit_width=bits, narrow_range=narrow,
                                   return_quant_tensor=True)
    out = activation(torch.tensor([-3.0, -0.7, -0.2, 0.2, 0.7, 3.0]))
    assert out.value.tolist() == expected
    assert out.signed


def test_bnn_pynq_binary_maps_zero_to_plus_one():
    activation = qnn.QuantIdentity(act_quant=BnnPynqActQuant, bit_width=1, return_quant_tensor=True)
    assert activation(torch.tensor([0.0])).value.tolist() == [1.0]


def test_bnn_pynq_eight_bit_input_is_q1_7():
    activation = qnn.QuantIdentity(act_quant=BnnPynqActQuant, bit_width=8, narrow_range=False,
                                   return_quant_tensor=True)
    out = activation(torch.tensor([-1.0, -0.5, 2.0 ** -7, 0.999, 1.0]))
    assert out.scale.item() == 2.0 ** -7
    assert (out.value * 128).tolist() == [-128.0, -64.0, 1.0, 127.0, 127.0]
