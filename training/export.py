"""QONNX export of trained SYQ networks, checked against PyTorch.

Brevitas 0.12.1 to 0.13.4 put the raw float weight into the weight ``Quant`` node and force its
rounding to ROUND, so any executor re-quantizes it as ``round(w / alpha)``. SYQ codes come from a
threshold instead (``|w| > t * max|w|``), and re-quantizing changes them: w = [0.30, -0.05, 0.90,
-0.60] with t = 0.05 and alpha = 0.5 has SYQ codes [1, -1, 1, -1] but exports as [1, 0, 1, -1].
Export therefore writes ``quant_weight().value`` (``alpha * c``) into a copy of every weight
before tracing; ``(alpha * c) / alpha`` is exactly ``c`` in IEEE arithmetic, so the exported codes
are the trained codes. The check after export compares them layer by layer.
"""

import contextlib
import copy
import io
import json
import logging
import tempfile
import warnings
from pathlib import Path

import brevitas.nn as qnn
import numpy as np
import onnx
from onnx import helper
import torch
from brevitas.export import export_qonnx
from qonnx.custom_op.general.bipolar_quant import binary_quant
from qonnx.custom_op.general.quant import quant as qonnx_quant

import syq
from syq.errors import SyqError
from syq.generator import qonnx_exec
from syq.outputs import atomic_path
from syq.training import checkpoint as ckpt
from syq.training.datasets import load_dataset, to_float

logger = logging.getLogger(__name__)

WEIGHT_CONSUMERS = ("MatMul", "Gemm", "Conv")
OUTPUT_TOLERANCE = 1e-4  # relative to the largest |output|; PyTorch and ONNX Runtime sum in other orders


# Loggers of the ONNX exporter stack that report every rewrite at INFO level.
EXPORTER_LOGGERS = ("torch.onnx", "onnx_ir", "onnxscript")


def _quiet_export(model, example, path):
    """Run Brevitas' QONNX export without its progress lines, notices and side files.

    The exporter may write tensors to an external data file beside its output, so it works in a
    private temporary folder and only the cleaned single-file model reaches `path`.
    """
    loggers = [logging.getLogger(name) for name in EXPORTER_LOGGERS]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="syq-export-") as folder, \
                warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            raw = Path(folder) / "raw.onnx"
            export_qonnx(model, args=example, export_path=str(raw))
            return qonnx_exec.load_qonnx(raw)
    finally:
        for each, level in zip(loggers, levels):
            each.setLevel(level)


def quantized_weight_layers(model):
    """Return the Brevitas layers with quantized weights, in registration (forward) order."""
    return [module for module in model.modules() if hasattr(module, "quant_weight")]


def freeze_quantized_weights(model):
    """Return a copy of `model` whose float weights are replaced by their quantized values."""
    frozen = copy.deepcopy(model).eval()
    with torch.no_grad():
        for original, layer in zip(quantized_weight_layers(model), quantized_weight_layers(frozen)):
            layer.weight.copy_(original.quant_weight().value)
    return frozen


def trained_weight_codes(model):
    """Return the integer weight codes of every quantized layer, in forward order, as numpy arrays."""
    with torch.no_grad():
        return [layer.quant_weight().int().numpy().astype(np.int64)
                for layer in quantized_weight_layers(model)]


def exported_weight_codes(model):
    """Return the integer codes that qonnx computes for each weight quantizer, in graph order.

    Codes come out in the PyTorch layout (O, I[, Kh, Kw]): ``MatMul`` weights (I, O) are
    transposed back.
    """
    codes = []
    for node in model.graph.node:
        if node.op_type not in WEIGHT_CONSUMERS or len(node.input) < 2:
            continue
        producer = model.find_producer(node.input[1])
        if producer is None or producer.op_type not in ("Quant", "BipolarQuant"):
            continue
        weight = model.get_initializer(producer.input[0])
        scale = model.get_initializer(producer.input[1])
        if producer.op_type == "BipolarQuant":
            values = binary_quant(weight, scale)
        else:
            attributes = {attribute.name: onnx.helper.get_attribute_value(attribute)
                          for attribute in producer.attribute}
            rounding = attributes.get("rounding_mode", b"ROUND")
            rounding = rounding.decode() if isinstance(rounding, bytes) else rounding
            values = qonnx_quant(weight, scale, model.get_initializer(producer.input[2]),
                                 model.get_initializer(producer.input[3]),
                                 attributes["signed"], attributes["narrow"], rounding)
        integer = np.rint(np.asarray(values, dtype=np.float64) / scale).astype(np.int64)
        if node.op_type == "MatMul":
            integer = integer.T
        if node.op_type == "Gemm":
            attributes = {attribute.name: attribute.i for attribute in node.attribute}
            if not attributes.get("transB", 0):
                integer = integer.T
        codes.append(integer)
    return codes


def _restore_unsigned_binary_activations(qonnx_model):
    """Turn the BipolarQuant nodes that follow a Relu back into unsigned 1-bit Quant nodes.

    Brevitas 0.13.4 exports every 1-bit quantizer as BipolarQuant (codes -1, +1) even when it is
    unsigned, as a 1-bit DoReFa QuantReLU is (codes 0, 1). After a Relu the input is never
    negative, and ``Quant(x, scale, 0, 1, signed=0, narrow=0, ROUND)`` is that quantizer exactly.
    Returns the number of nodes changed.
    """
    producers = {output: node for node in qonnx_model.graph.node for output in node.output}
    changed = 0
    for node in qonnx_model.graph.node:
        producer = producers.get(node.input[0])
        if node.op_type != "BipolarQuant" or producer is None or producer.op_type != "Relu":
            continue
        zero_point, bit_width = f"{node.name}_zero_point", f"{node.name}_bit_width"
        qonnx_model.set_initializer(zero_point, np.zeros((), np.float32))
        qonnx_model.set_initializer(bit_width, np.ones((), np.float32))
        node.op_type = "Quant"
        node.input.extend([zero_point, bit_width])
        del node.attribute[:]
        node.attribute.extend([helper.make_attribute("signed", 0), helper.make_attribute("narrow", 0),
                               helper.make_attribute("rounding_mode", "ROUND")])
        changed += 1
    return changed


def export_to_qonnx(model, path, metadata=None, input_shape=None, freeze=True):
    """Export `model` to the QONNX file `path`, cleaned; return the ModelWrapper.

    `input_shape` is the shape of one input without the batch axis (default: ``model.input_shape``).
    `freeze=False` exports the raw float weights, as Brevitas alone would (only for tests that
    show why freezing is needed).
    """
    example = torch.zeros((1,) + tuple(input_shape or model.input_shape))
    frozen = freeze_quantized_weights(model) if freeze else copy.deepcopy(model).eval()
    cleaned = _quiet_export(frozen, example, path)
    _restore_unsigned_binary_activations(cleaned)
    with atomic_path(path) as staging:
        for key, value in (metadata or {}).items():
            entry = cleaned.model.metadata_props.add()
            entry.key, entry.value = f"syq.{key}", str(value)
        cleaned.save(str(staging))
    return cleaned


def _activation_quant_nodes(qonnx_model):
    """Return the activation Quant/BipolarQuant nodes after the input quantizer, in graph order."""
    graph_input = qonnx_model.graph.input[0].name
    nodes = [node for node in qonnx_model.graph.node
             if node.op_type in ("Quant", "BipolarQuant") and
             qonnx_model.get_initializer(node.input[0]) is None]
    return [node for node in nodes if node.input[0] != graph_input]


def _capture_activations(model):
    """Register hooks recording each QuantReLU's input and output codes; return (store, handles)."""
    store, handles = [], []
    for module in model.modules():
        if isinstance(module, qnn.QuantReLU):
            entry = {}
            store.append(entry)

            def hook(_module, args, output, entry=entry):
                entry["pre"] = torch.relu(args[0]).detach().numpy()
                entry["codes"] = torch.round(output.value / output.scale).detach().numpy()
                entry["scale"] = float(output.scale)

            handles.append(module.register_forward_hook(hook))
    return store, handles


def check_export(model, qonnx_model, images, labels=None, chunk=500):
    """Compare an exported QONNX model with the PyTorch model on uint8 `images`.

    Both evaluate in float32 with different summation orders, so an activation within float
    noise of a rounding boundary may take neighbouring levels in the two. Every image whose
    activations differ is traced to its first differing activation; the difference is a
    near-tie when PyTorch's pre-activation lies within NEAR_TIE steps of the boundary.
    Raises SyqError when the weight codes differ (a bug in the export, not a numerical effect).
    Returns a report dict; ``unexplained_differences`` must be 0 for a correct export.
    """
    from syq.generator.verify import NEAR_TIE, boundary_distance, channels_last

    trained = trained_weight_codes(model)
    exported = exported_weight_codes(qonnx_model)
    if len(trained) != len(exported):
        raise SyqError(f"exported model has {len(exported)} quantized weight tensors, the PyTorch "
                       f"model {len(trained)}")
    for index, (ours, theirs) in enumerate(zip(trained, exported)):
        if ours.shape != theirs.shape or not np.array_equal(ours, theirs):
            differing = int((ours != theirs).sum()) if ours.shape == theirs.shape else "all"
            raise SyqError(f"export changed the weight codes of layer {index} ({differing} codes "
                           f"differ): this is a bug in syq's export, please report it")
    activation_nodes = _activation_quant_nodes(qonnx_model)
    store, handles = _capture_activations(model)
    model.eval()
    counts = {"images_diverged": 0, "near_ties": 0, "unexplained": 0, "label_mismatches": 0}
    largest_difference, largest_output = 0.0, 0.0
    reference_labels, qonnx_labels = [], []
    try:
        for start in range(0, len(images), chunk):
            inputs = to_float(images[start:start + chunk])
            with torch.no_grad():
                reference = model(torch.from_numpy(inputs)).numpy()
            capture = tuple(node.output[0] for node in activation_nodes)
            outputs, captured = qonnx_exec.execute(qonnx_model, inputs, capture=capture)
            outputs = outputs.reshape(len(inputs), -1)
            diverged = np.zeros(len(inputs), dtype=bool)
            if len(store) == len(activation_nodes):
                for entry, node in zip(store, activation_nodes):
                    ours = channels_last(entry["codes"])
                    theirs = channels_last(np.rint(captured[node.output[0]] / entry["scale"]))
                    first = (ours != theirs) & ~diverged[:, None]
                    if first.any():
                        distance = boundary_distance(channels_last(entry["pre"])[first],
                                                     entry["scale"], "half")
                        counts["near_ties"] += int((distance <= NEAR_TIE).sum())
                        counts["unexplained"] += int((distance > NEAR_TIE).sum())
                    diverged |= (ours != theirs).any(axis=1)
            counts["images_diverged"] += int(diverged.sum())
            flipped = reference.argmax(1) != outputs.argmax(1)
            counts["label_mismatches"] += int(flipped.sum())
            agreeing = ~diverged
            if agreeing.any():
                difference = np.abs(reference[agreeing] - outputs[agreeing])
                largest_difference = max(largest_difference, float(difference.max()))
                largest_output = max(largest_output, float(np.abs(reference[agreeing]).max()))
                label_only = flipped & agreeing
                if label_only.any():
                    counts["unexplained"] += _unexplained_flips(reference, outputs, label_only)
            reference_labels.append(reference.argmax(1))
            qonnx_labels.append(outputs.argmax(1))
    finally:
        for handle in handles:
            handle.remove()
    reference_labels = np.concatenate(reference_labels) if reference_labels else np.zeros(0, int)
    qonnx_labels = np.concatenate(qonnx_labels) if qonnx_labels else np.zeros(0, int)
    report = {
        "images": int(len(images)),
        "weight_layers_checked": len(trained),
        "weight_codes_equal": True,
        "label_mismatches": counts["label_mismatches"],
        "images_diverged": counts["images_diverged"],
        "near_ties": counts["near_ties"],
        "unexplained_differences": counts["unexplained"],
        "max_abs_output_difference": largest_difference,
        "relative_output_difference": largest_difference / max(largest_output, 1e-12),
    }
    if labels is not None and len(labels):
        report["accuracy_pytorch"] = float((reference_labels == labels).mean())
        report["accuracy_qonnx"] = float((qonnx_labels == labels).mean())
    return report


def _unexplained_flips(reference, outputs, rows):
    """Count label flips not explained by a near-tie of the two top PyTorch outputs."""
    indices = np.nonzero(rows)[0]
    ours, theirs = reference[indices].argmax(1), outputs[indices].argmax(1)
    gap = np.abs(reference[indices, ours] - reference[indices, theirs])
    tolerance = OUTPUT_TOLERANCE * np.maximum(np.abs(reference[indices]).max(axis=1), 1e-12)
    return int((gap > tolerance).sum())


def export_checkpoint(checkpoint_path, out_path, verify_images=None, data_dir=None):
    """Export a training checkpoint to QONNX and check it on the test split of its dataset.

    `verify_images` limits the check to the first N test images (None: all, 0: no check).
    Returns the check report (empty without a check). Nothing is written if the check fails.
    """
    payload = ckpt.load_checkpoint(checkpoint_path)
    model = ckpt.model_from_checkpoint(payload, checkpoint_path)
    config = payload["config"]
    metrics = payload.get("metrics", {})
    metadata = {
        "format_version": 1,
        "syq_version": syq.__version__,
        "model": config["model"],
        "dataset": config["dataset"],
        "granularity": config["granularity"],
        "threshold": config["threshold"],
        "weight_bits": config["weight_bits"],
        "act_bits": config["act_bits"],
        "scale_bits": config["scale_bits"],
        "act_quant": config["act_quant"],
        "first_layer": config["first_layer"],
        "last_layer": config["last_layer"],
        "weight_quant": config.get("weight_quant", "syq"),
        "input_quant": config.get("input_quant", "pixels"),
        "input": "pixel/255",
        "epochs": payload["epoch"],
        "test_accuracy": metrics.get("test_accuracy", ""),
    }
    if config.get("float_model"):
        raise SyqError(f"{checkpoint_path} is a full-precision model: only quantized networks "
                       f"export to QONNX for hardware; use it with --init-from")
    with atomic_path(out_path) as staging:
        exported = export_to_qonnx(model, staging, metadata)
        report = {}
        if verify_images != 0:
            dataset = load_dataset(config["dataset"], data_dir or config.get("data_dir"))
            images, labels = dataset.split("test")
            if verify_images is not None:
                images, labels = images[:verify_images], labels[:verify_images]
            report = check_export(model, exported, images, labels)
            if report["unexplained_differences"]:
                raise SyqError(f"QONNX execution disagrees with PyTorch on {report['images_diverged']} "
                               f"of {report['images']} test images, {report['unexplained_differences']} "
                               f"times away from any rounding boundary; nothing written. This is a "
                               f"bug in the export; --verify-images 0 skips the check")
            if report["images_diverged"]:
                logger.info("%d of %d images take a neighbouring level in QONNX at a float32 "
                            "near-tie (%d labels differ)", report["images_diverged"],
                            report["images"], report["label_mismatches"])
            entry = exported.model.metadata_props.add()
            entry.key, entry.value = "syq.export_check", json.dumps(report, sort_keys=True)
            exported.save(str(staging))
    logger.info("exported %s to %s", checkpoint_path, out_path)
    return report
