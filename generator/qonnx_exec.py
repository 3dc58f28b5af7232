"""Loading and batched execution of QONNX models with qonnx itself (the reference semantics)."""

import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.cleanup import cleanup_model

from syq.errors import SyqError

logger = logging.getLogger(__name__)


def load_qonnx(path):
    """Load and clean a QONNX file with ``qonnx.util.cleanup``; raise SyqError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise SyqError(f"QONNX file {path} not found")
    try:
        proto = onnx.load(str(path))
    except Exception as error:  # onnx raises DecodeError, ValueError, ... for damaged files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SyqError(f"invalid ONNX file {path}: {reason}; export it again") from None
    if len(proto.graph.node) == 0:
        raise SyqError(f"invalid ONNX file {path}: the graph has no nodes; export the model again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = cleanup_model(ModelWrapper(proto))
    except Exception as error:  # qonnx transformations raise many exception types
        reason = str(error).splitlines()[0] if str(error) else ""
        raise SyqError(f"{path}: qonnx cleanup failed ({type(error).__name__}: {reason}); "
                       f"the graph is not valid QONNX") from None
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise SyqError(f"{path}: expected one graph input and one output, found "
                       f"{len(model.graph.input)} and {len(model.graph.output)}")
    return model


def input_name(model):
    """Return the name of the single graph input."""
    return model.graph.input[0].name


def output_name(model):
    """Return the name of the single graph output."""
    return model.graph.output[0].name


def batch_size(model):
    """Return the batch dimension of the graph input."""
    return int(model.get_tensor_shape(input_name(model))[0])


def with_batch_size(model, batch):
    """Return a copy of `model` that runs `batch` inputs at once, or None where that is unsafe.

    Exporters fix the batch dimension (often 1) in the input shape and in ``Reshape`` targets such
    as ``[1, 784]`` or ``[1, -1]``. Leading 1s of ``Reshape`` targets are replaced by the batch
    size; graphs with other shape-dependent constants are left alone (callers then run one input
    at a time).
    """
    if batch == batch_size(model):
        return model
    if batch_size(model) != 1:
        return None
    copy = ModelWrapper(model.model.__deepcopy__())
    for node in copy.graph.node:
        if node.op_type in ("Expand", "Tile", "ConstantOfShape", "Slice", "Split"):
            return None
        if node.op_type == "Reshape":
            target = copy.get_initializer(node.input[1])
            if target is None or len(target) == 0 or int(target[0]) not in (1, -1):
                return None
            if int(target[0]) == 1:
                target = np.array(target, dtype=np.int64)
                target[0] = batch
                copy.set_initializer(node.input[1], target)
    del copy.graph.value_info[:]
    for tensor in list(copy.graph.input) + list(copy.graph.output):
        dims = tensor.type.tensor_type.shape.dim
        if len(dims) and dims[0].HasField("dim_value"):
            dims[0].dim_value = batch
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return copy.transform(InferShapes())
    except Exception:  # shape inference failed: fall back to single inputs
        return None


def execute(model, inputs, chunk=500, capture=()):
    """Run float32 `inputs` (N, ...) through `model` with qonnx ``execute_onnx``.

    Returns the outputs (N, ...) and a dict of the tensors named in `capture`, each (N, ...).
    Inputs run `chunk` at a time where the graph allows a larger batch, otherwise one by one.
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    count = len(inputs)
    single_shape = tuple(model.get_tensor_shape(input_name(model))[1:])
    if tuple(inputs.shape[1:]) != single_shape:
        raise SyqError(f"inputs have shape {tuple(inputs.shape[1:])} per image, the model expects "
                       f"{single_shape}")
    step = max(1, min(chunk, count))
    batched = with_batch_size(model, step)
    if batched is None:
        batched, step = model, batch_size(model)
    outputs, captured = [], {name: [] for name in capture}
    for start in range(0, count, step):
        part = inputs[start:start + step]
        runner = batched if len(part) == step else with_batch_size(model, len(part))
        pieces = [part] if runner is not None else [part[index:index + 1] for index in range(len(part))]
        runner = runner if runner is not None else model
        for piece in pieces:
            result, result_captured = _run(runner, piece, capture)
            outputs.append(result)
            for name in capture:
                captured[name].append(result_captured[name])
    output = np.concatenate(outputs) if outputs else np.zeros((0,), dtype=np.float32)
    return output, {name: np.concatenate(parts) for name, parts in captured.items()}


def _run(model, inputs, capture):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        context = execute_onnx(model, {input_name(model): inputs},
                               return_full_exec_context=bool(capture))
    return np.asarray(context[output_name(model)]), {name: np.asarray(context[name]) for name in capture}
