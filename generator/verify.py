"""Layer-by-layer comparison of the golden model with qonnx execution of the QONNX graph.

The golden model computes exactly; qonnx executes the graph in float32. Where float32 rounding
puts a pre-activation within noise of a quantizer's rounding boundary, the two can choose
neighbouring levels, and the difference then propagates to later layers of that image. So
every difference is traced to the first unit where an image diverges:

* a divergence at a layer whose QONNX pre-activation lies within NEAR_TIE quantization steps of a
  rounding boundary is a float32 near-tie (explained);
* any other divergence (a wrong code far from a boundary, or any difference in the exact input
  thresholds and max pools) is unexplained, which means a bug.

``equal`` means no difference at all; ``consistent`` means every difference is explained. Inputs
run in chunks so large feature maps never all sit in memory at once.
"""

import dataclasses
import logging

import numpy as np

from syq.generator import golden, qonnx_exec
from syq.generator.hwgraph import MVAU, MaxPool, Thresholding

logger = logging.getLogger(__name__)

CHUNK = 500
SCORE_TOLERANCE = 1e-4  # relative to the largest |score|: QONNX computes in float32
NEAR_TIE = 1e-3  # quantization steps between a float32 pre-activation and a rounding boundary


@dataclasses.dataclass
class LayerComparison:
    """Agreement of one unit's integer output with the matching QONNX tensor."""

    name: str
    qonnx_tensor: str
    elements: int = 0
    mismatches: int = 0
    images_with_mismatch: int = 0
    first_mismatch: tuple = None  # (image index, element index)
    divergences: int = 0  # differing codes in images that agreed in every earlier unit
    near_ties: int = 0  # divergences explained by float32 rounding at a boundary
    unexplained: int = 0


def qonnx_codes(values, scale, bipolar):
    """Return the integer codes of a QONNX activation tensor, channels-last and flattened."""
    values = np.asarray(values, dtype=np.float64)
    codes = np.where(values >= 0, 1, -1) if bipolar else np.rint(values / scale)
    return channels_last(codes).astype(np.int64)


def channels_last(values):
    """Return a QONNX tensor (N, C, H, W) or (N, features) as (N, elements) in stream order."""
    values = np.asarray(values)
    if values.ndim == 4:
        values = values.transpose(0, 2, 3, 1)
    return values.reshape(len(values), -1)


def boundary_distance(values, scale, boundary):
    """Return the distance, in quantization steps, of pre-activations to the nearest boundary."""
    steps = np.asarray(values, dtype=np.float64) / scale
    if boundary == "zero":
        return np.abs(steps)
    if boundary == "integer":
        return np.abs(steps - np.rint(steps))
    return np.abs(steps - (np.floor(steps) + 0.5))


def _compared_units(graph):
    return [unit for unit in graph.nodes
            if isinstance(unit, (Thresholding, MaxPool)) or
            (isinstance(unit, MVAU) and unit.thresholds is not None)]


def _is_bipolar(unit, spec):
    if unit is None:
        return spec.bipolar
    dtype = unit.element_type if isinstance(unit, MaxPool) else unit.output_type
    return dtype.kind == "bipolar"


def verify(graph, model, inputs, labels=None, chunk=CHUNK, streams=None):
    """Compare golden model and QONNX execution on float `inputs` (QONNX input layout).

    `streams` may give the accelerator input codes directly (e.g. from uint8 images); otherwise
    they are computed from `inputs`. Returns a report dict.
    """
    spec = graph.input_quant
    units = ([None] if spec.mode == "quant" else []) + _compared_units(graph)
    layers = [LayerComparison("input" if unit is None else unit.name,
                              spec.qonnx_tensor if unit is None else unit.qonnx_tensor)
              for unit in units]
    preactivations = {unit.name: unit.qonnx_preactivation for unit in units
                      if isinstance(unit, MVAU) and unit.qonnx_preactivation}
    capture = tuple(layer.qonnx_tensor for layer in layers) + tuple(preactivations.values())
    golden_labels, qonnx_labels = [], []
    diverged_images = []
    label_unexplained = 0
    largest_difference, largest_score = 0.0, 0.0
    inputs = np.asarray(inputs, dtype=np.float32)
    for start in range(0, len(inputs), chunk):
        part = inputs[start:start + chunk]
        stream = golden.input_codes(graph, part) if streams is None else streams[start:start + chunk]
        raw, captured = golden.run(graph, stream, capture=True)
        scores = golden.post_process(graph, raw)
        reference, reference_captured = qonnx_exec.execute(model, part, capture=capture)
        reference = reference.reshape(len(part), -1)
        diverged = np.zeros(len(part), dtype=bool)
        for layer, unit in zip(layers, units):
            ours = stream if unit is None else captured[unit.name]
            scale = spec.scale if unit is None else unit.qonnx_scale
            theirs = qonnx_codes(reference_captured[layer.qonnx_tensor], scale, _is_bipolar(unit, spec))
            differ = _accumulate(layer, ours, theirs, start)
            if differ is None:
                diverged[:] = True
                continue
            first = differ & ~diverged[:, None]
            layer.divergences += int(first.sum())
            if first.any():
                if unit is not None and unit.name in preactivations:
                    values = channels_last(reference_captured[preactivations[unit.name]])
                    distance = boundary_distance(values[first], scale, unit.qonnx_boundary)
                    layer.near_ties += int((distance <= NEAR_TIE).sum())
                    layer.unexplained += int((distance > NEAR_TIE).sum())
                else:
                    layer.unexplained += int(first.sum())
            diverged |= differ.any(axis=1)
        ours_labels, theirs_labels = scores.argmax(axis=1), reference.argmax(axis=1)
        agreeing = ~diverged
        if agreeing.any():
            difference = np.abs(scores[agreeing] - reference[agreeing]).max(axis=1)
            largest_difference = max(largest_difference, float(difference.max()))
            largest_score = max(largest_score, float(np.abs(reference[agreeing]).max()))
            label_unexplained += _unexplained_label_flips(scores[agreeing], ours_labels[agreeing],
                                                          theirs_labels[agreeing])
        golden_labels.append(ours_labels)
        qonnx_labels.append(theirs_labels)
        diverged_images.append(diverged)
    golden_labels = np.concatenate(golden_labels) if golden_labels else np.zeros(0, np.int64)
    qonnx_labels = np.concatenate(qonnx_labels) if qonnx_labels else np.zeros(0, np.int64)
    diverged_images = np.concatenate(diverged_images) if diverged_images else np.zeros(0, bool)
    first = next((layer.name for layer in layers if layer.mismatches), None)
    unexplained = sum(layer.unexplained for layer in layers) + label_unexplained
    relative = largest_difference / max(largest_score, 1e-12)
    report = {
        "images": int(len(inputs)),
        "layers": [dataclasses.asdict(layer) for layer in layers],
        "first_differing_layer": first,
        "label_mismatches": int((golden_labels != qonnx_labels).sum()),
        "images_diverged": int(diverged_images.sum()),
        "near_ties": sum(layer.near_ties for layer in layers),
        "unexplained_differences": int(unexplained),
        "max_abs_score_difference": largest_difference,
        "relative_score_difference": relative,
        "scores_within_tolerance": relative <= SCORE_TOLERANCE,
    }
    report["equal"] = (first is None and report["label_mismatches"] == 0 and
                       report["scores_within_tolerance"])
    report["consistent"] = unexplained == 0 and report["scores_within_tolerance"]
    if labels is not None:
        labels = np.asarray(labels)
        report["accuracy_golden"] = float((golden_labels == labels).mean()) if len(labels) else 0.0
        report["accuracy_qonnx"] = float((qonnx_labels == labels).mean()) if len(labels) else 0.0
    report["golden_labels"] = golden_labels
    report["qonnx_labels"] = qonnx_labels
    if not report["equal"]:
        logger.info("golden and QONNX differ in %d of %d images (%d float32 near-ties, %d unexplained)",
                    report["images_diverged"], report["images"], report["near_ties"], unexplained)
    return report


def _unexplained_label_flips(scores, ours, theirs):
    """Count label differences that a float32 near-tie between the top two scores cannot explain."""
    flipped = ours != theirs
    if not flipped.any():
        return 0
    rows = np.nonzero(flipped)[0]
    gap = np.abs(scores[rows, ours[rows]] - scores[rows, theirs[rows]])
    tolerance = SCORE_TOLERANCE * np.maximum(np.abs(scores[rows]).max(axis=1), 1e-12)
    return int((gap > tolerance).sum())


def _accumulate(layer, ours, theirs, offset):
    """Add one chunk's comparison to `layer`; return the (images, elements) mask of differences."""
    if ours.shape != theirs.shape:
        layer.mismatches += int(max(ours.size, theirs.size))
        layer.images_with_mismatch += len(ours)
        layer.unexplained += len(ours)
        layer.first_mismatch = layer.first_mismatch or (offset, 0)
        return None
    differ = ours != theirs
    layer.elements += int(differ.size)
    count = int(differ.sum())
    if count:
        layer.mismatches += count
        layer.images_with_mismatch += int(differ.any(axis=1).sum())
        if layer.first_mismatch is None:
            image, element = np.argwhere(differ)[0]
            layer.first_mismatch = (offset + int(image), int(element))
    return differ
