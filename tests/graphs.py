"""Builders of small QONNX graphs for lowering tests (hand-made, so every parameter is known)."""

import numpy as np
import onnx
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.cleanup import cleanup_model

QONNX_DOMAIN = "qonnx.custom_op.general"


class GraphBuilder:
    """Build a single-chain QONNX graph node by node; every constant becomes an initializer."""

    def __init__(self, input_shape):
        self.input_shape = tuple(input_shape)
        self.nodes = []
        self.initializers = []
        self.current = "global_in"
        self.counter = 0

    def _name(self, prefix):
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def constant(self, values):
        """Add an initializer: integer arrays keep their type (shapes), everything else is float32."""
        name = self._name("const")
        values = np.asarray(values)
        if values.dtype.kind not in "iu":
            values = values.astype(np.float32)
        self.initializers.append(onnx.numpy_helper.from_array(values, name))
        return name

    def op(self, op_type, *constants, constant_first=False, domain="", **attributes):
        inputs = [self.current] + [self.constant(value) for value in constants]
        if constant_first:
            inputs = inputs[1:] + inputs[:1]
        output = self._name(op_type)
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=self._name(op_type + "_n"),
                                           domain=domain, **attributes))
        self.current = output
        return self

    def quant(self, scale, bits, signed, narrow=False, rounding="ROUND"):
        inputs = [self.current, self.constant(scale), self.constant(0.0), self.constant(float(bits))]
        output = self._name("Quant")
        self.nodes.append(helper.make_node("Quant", inputs, [output], name=self._name("Quant_n"),
                                           domain=QONNX_DOMAIN, signed=int(signed),
                                           narrow=int(narrow), rounding_mode=rounding))
        self.current = output
        return self

    def bipolar(self, scale=1.0):
        inputs = [self.current, self.constant(scale)]
        output = self._name("BipolarQuant")
        self.nodes.append(helper.make_node("BipolarQuant", inputs, [output],
                                           name=self._name("BipolarQuant_n"), domain=QONNX_DOMAIN))
        self.current = output
        return self

    def quantized_weight(self, codes, scale, bits=2, narrow=True, bipolar=False):
        """Return the name of a weight tensor: Quant/BipolarQuant applied to `codes * scale`."""
        codes = np.asarray(codes, dtype=np.float32)
        scale = np.asarray(scale, dtype=np.float32)
        weights = self.constant(codes * scale)
        output = self._name("Wq")
        if bipolar:
            self.nodes.append(helper.make_node("BipolarQuant", [weights, self.constant(scale)], [output],
                                               name=self._name("Wq_n"), domain=QONNX_DOMAIN))
        else:
            inputs = [weights, self.constant(scale), self.constant(np.zeros_like(scale)),
                      self.constant(float(bits))]
            self.nodes.append(helper.make_node("Quant", inputs, [output], name=self._name("Wq_n"),
                                               domain=QONNX_DOMAIN, signed=1, narrow=int(narrow),
                                               rounding_mode="ROUND"))
        return output

    def matmul(self, codes_in_out, scale, **kwargs):
        """MatMul with weights (in, out) and a per-output scale of shape (1, out) or scalar."""
        weight = self.quantized_weight(codes_in_out, scale, **kwargs)
        output = self._name("MatMul")
        self.nodes.append(helper.make_node("MatMul", [self.current, weight], [output],
                                           name=self._name("MatMul_n")))
        self.current = output
        return self

    def gemm(self, codes_out_in, scale, bias=None, **kwargs):
        """Gemm with transB=1, weights (out, in), scale (out, 1) and an optional float bias."""
        weight = self.quantized_weight(codes_out_in, scale, **kwargs)
        inputs = [self.current, weight] + ([self.constant(bias)] if bias is not None else [])
        output = self._name("Gemm")
        self.nodes.append(helper.make_node("Gemm", inputs, [output], name=self._name("Gemm_n"),
                                           transB=1))
        self.current = output
        return self

    def conv(self, codes, scale, pads=0, stride=1, **kwargs):
        weight = self.quantized_weight(codes, scale, **kwargs)
        output = self._name("Conv")
        kernel = list(np.shape(codes)[2:])
        self.nodes.append(helper.make_node("Conv", [self.current, weight], [output],
                                           name=self._name("Conv_n"), kernel_shape=kernel,
                                           pads=[pads] * 4, strides=[stride, stride]))
        self.current = output
        return self

    def batch_norm(self, gamma, beta, mean, variance, epsilon=1e-5):
        return self.op("BatchNormalization", gamma, beta, mean, variance, epsilon=epsilon)

    def build(self):
        graph = helper.make_graph(
            self.nodes, "test",
            [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, (1,) + self.input_shape)],
            [helper.make_tensor_value_info(self.current, TensorProto.FLOAT, None)],
            initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                        helper.make_opsetid(QONNX_DOMAIN, 1)])
        return cleanup_model(ModelWrapper(model))
