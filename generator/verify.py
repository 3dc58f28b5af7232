"""Layer-by-layer comparison of the golden model with qonnx execution of the QONNX graph.

For every unit whose output QONNX also computes (the input quantizer, each thresholded layer,
each max-pool) the integer codes must be identical; the final scores must agree within float
tolerance and give the same labels. Inputs run in chunks so large feature maps never all sit in
memory at once.
"""

import dataclasses
import logging

import numpy as np

from syq.generator import golden, qonnx_exec
from syq.generator.hwgraph import MVAU, MaxPool, Thresholding

logger = logging.getLogger(__name__)

CHUNK = 500
SCORE_TOLERANCE = 1e-4  # relative to the largest |score|: QONNX computes in float32


@dataclasses.dataclass
class LayerComparison:
    """Agreement of one unit's integer output with the matching QONNX tensor."""

    name: str
    qonnx_tensor: str
    elements: int = 0
    mismatches: int = 0
    images_with_mismatch: int = 0
    first_mismatch: tuple = None  # (image index, element index)


def qonnx_codes(values, scale, bipolar):
    """Return the integer codes of a QONNX activation tensor, channels-last and flattened."""
    values = np.asarray(values, dtype=np.float64)
    codes = np.where(values >= 0, 1, -1) if bipolar else np.rint(values / scale)
    if codes.ndim == 4:
        codes = codes.transpose(0, 2, 3, 1)
    return codes.reshape(len(codes), -1).astype(np.int64)


def _compared_units(graph):
    return [unit for unit in graph.nodes
            if isinstance(unit, (Thresholding, MaxPool)) or
            (isinstance(unit, MVAU) and unit.thresholds is not None)]


def verify(graph, model, inputs, labels=None, chunk=CHUNK, streams=None):
    """Compare golden model and QONNX execution on float `inputs` (QONNX input layout).

    `streams` may give the accelerator input codes directly (e.g. from uint8 images); otherwise
    they are computed from `inputs`. Returns a report dict.
    """
    units = _compared_units(graph)
    spec = graph.input_quant
    layers = []
    if spec.mode == "quant":
        layers.append(LayerComparison("input", spec.qonnx_tensor))
    layers += [LayerComparison(unit.name, unit.qonnx_tensor) for unit in units]
    capture = tuple(layer.qonnx_tensor for layer in layers)
    golden_labels, qonnx_labels = [], []
    largest_difference, largest_score = 0.0, 0.0
    inputs = np.asarray(inputs, dtype=np.float32)
    for start in range(0, len(inputs), chunk):
        part = inputs[start:start + chunk]
        stream = golden.input_codes(graph, part) if streams is None else streams[start:start + chunk]
        raw, captured = golden.run(graph, stream, capture=True)
        scores = golden.post_process(graph, raw)
        reference, reference_captured = qonnx_exec.execute(model, part, capture=capture)
        reference = reference.reshape(len(part), -1)
        ours = [stream] + [captured[unit.name] for unit in units] if spec.mode == "quant" else \
            [captured[unit.name] for unit in units]
        for layer, values, unit in zip(layers, ours, ([None] if spec.mode == "quant" else []) + units):
            scale = spec.scale if unit is None else unit.qonnx_scale
            bipolar = (spec.bipolar if unit is None else
                       (unit.output_type if not isinstance(unit, MaxPool) else unit.element_type).kind
                       == "bipolar")
            theirs = qonnx_codes(reference_captured[layer.qonnx_tensor], scale, bipolar)
            _accumulate(layer, values, theirs, start)
        golden_labels.append(scores.argmax(axis=1))
        qonnx_labels.append(reference.argmax(axis=1))
        largest_difference = max(largest_difference, float(np.abs(scores - reference).max(initial=0)))
        largest_score = max(largest_score, float(np.abs(reference).max(initial=0)))
    golden_labels = np.concatenate(golden_labels) if golden_labels else np.zeros(0, np.int64)
    qonnx_labels = np.concatenate(qonnx_labels) if qonnx_labels else np.zeros(0, np.int64)
    first = next((layer.name for layer in layers if layer.mismatches), None)
    report = {
        "images": int(len(inputs)),
        "layers": [dataclasses.asdict(layer) for layer in layers],
        "first_differing_layer": first,
        "label_mismatches": int((golden_labels != qonnx_labels).sum()),
        "max_abs_score_difference": largest_difference,
        "relative_score_difference": largest_difference / max(largest_score, 1e-12),
    }
    report["scores_within_tolerance"] = report["relative_score_difference"] <= SCORE_TOLERANCE
    report["equal"] = (first is None and report["label_mismatches"] == 0 and
                       report["scores_within_tolerance"])
    if labels is not None:
        labels = np.asarray(labels)
        report["accuracy_golden"] = float((golden_labels == labels).mean()) if len(labels) else 0.0
        report["accuracy_qonnx"] = float((qonnx_labels == labels).mean()) if len(labels) else 0.0
    report["golden_labels"] = golden_labels
    report["qonnx_labels"] = qonnx_labels
    return report


def _accumulate(layer, ours, theirs, offset):
    if ours.shape != theirs.shape:
        layer.mismatches += int(max(ours.size, theirs.size))
        layer.images_with_mismatch += len(ours)
        layer.first_mismatch = layer.first_mismatch or (offset, 0)
        return
    differ = ours != theirs
    layer.elements += int(differ.size)
    count = int(differ.sum())
    if count:
        layer.mismatches += count
        layer.images_with_mismatch += int(differ.any(axis=1).sum())
        if layer.first_mismatch is None:
            image, element = np.argwhere(differ)[0]
            layer.first_mismatch = (offset + int(image), int(element))
