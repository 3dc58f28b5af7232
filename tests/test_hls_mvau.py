"""C-simulation of syq::mvau_threshold and syq::mvau_raw against a numpy reference, bit for bit.

One C++ program (tests/cpp/mvau_test.cpp.j2) instantiates every case of a seeded random grid over
matrix shapes, foldings, input/weight/output types, xnor mode and kernel-position scales. It runs
once on word files written here; each test then compares one case.
"""

import dataclasses
import subprocess

import numpy as np
import pytest

from cpp_programs import build_root, build_test_program
from syq.generator import packing
from syq.generator.packing import ElementKind

SEED = 20240611

KIND_CPP = {
    ElementKind.UNSIGNED: "syq::kUnsigned",
    ElementKind.SIGNED: "syq::kSigned",
    ElementKind.BIPOLAR: "syq::kBipolar",
}

# (kind, bits) of the input vectors.
INPUT_TYPES = [
    (ElementKind.UNSIGNED, 1),
    (ElementKind.UNSIGNED, 2),
    (ElementKind.UNSIGNED, 5),
    (ElementKind.UNSIGNED, 8),
    (ElementKind.SIGNED, 2),
    (ElementKind.SIGNED, 4),
    (ElementKind.SIGNED, 8),
    (ElementKind.BIPOLAR, 1),
]
# name -> (kind, bits, minimum value, maximum value) of the weights.
WEIGHT_TYPES = {
    "binary": (ElementKind.BIPOLAR, 1, -1, 1),
    "ternary": (ElementKind.SIGNED, 2, -1, 1),
    "int4": (ElementKind.SIGNED, 4, -8, 7),
    "int8": (ElementKind.SIGNED, 8, -128, 127),
}
OUTPUT_MODES = ["unsigned", "signed", "raw", "bipolar"]
FOLD_STYLES = ["one", "mid", "full"]


@dataclasses.dataclass
class MvauCase:
    name: str
    matrix_width: int
    matrix_height: int
    simd: int
    pe: int
    input_kind: ElementKind
    input_bits: int
    weight_kind: ElementKind
    weight_bits: int
    xnor: bool
    kernel_positions: int
    position_elements: int
    scale_bits: int
    accumulator_bits: int
    num_thresholds: int
    output_offset: int
    output_bits: int
    output_kind: ElementKind
    raw: bool
    weights: np.ndarray  # (MH, MW) weight values
    inputs: np.ndarray  # (vectors, MW) input values
    scales: np.ndarray  # (kernel_positions,) unsigned scales
    thresholds: np.ndarray  # (MH, num_thresholds)

    @property
    def vectors(self):
        return self.inputs.shape[0]

    def template_fields(self):
        fields = dataclasses.asdict(self)
        fields["vectors"] = self.vectors
        fields["input_kind_cpp"] = KIND_CPP[self.input_kind]
        fields["weight_kind_cpp"] = KIND_CPP[self.weight_kind]
        fields["output_kind_cpp"] = KIND_CPP[self.output_kind]
        return fields


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _pick_fold(rng, total, style):
    divisors = _divisors(total)
    if style == "one":
        return 1
    if style == "full":
        return total
    middle = divisors[1:-1]
    return int(rng.choice(middle)) if middle else int(rng.choice(divisors))


def _signed_bits(low, high):
    bits = 1
    while not (-(1 << (bits - 1)) <= low and high <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def _input_range(kind, bits):
    return packing.element_range(bits, kind)


def _random_inputs(rng, kind, bits, count, width):
    low, high = _input_range(kind, bits)
    if kind == ElementKind.BIPOLAR:
        return rng.choice([-1, 1], size=(count, width))
    return rng.integers(low, high + 1, size=(count, width))


def _product_bounds(weights, kind, bits, xnor):
    """Per-entry minimum and maximum of weight * input over the input range."""
    if xnor:
        return np.zeros_like(weights), np.ones_like(weights)
    low, high = _input_range(kind, bits)
    return np.minimum(weights * low, weights * high), np.maximum(weights * low, weights * high)


def _make_case(index, rng, input_type, weight_name, xnor, kernel_positions, output_mode, shape=None):
    """Build one case. `shape` = (position_elements, simd, matrix_height, pe) replaces the random shape."""
    input_kind, input_bits = input_type
    weight_kind, weight_bits, weight_low, weight_high = WEIGHT_TYPES[weight_name]
    simd_style = FOLD_STYLES[index % 3]
    pe_style = FOLD_STYLES[(index // 3) % 3]

    if shape is not None:
        position_elements, simd, matrix_height, pe = shape
    elif kernel_positions == 1:
        position_elements = int(rng.choice([3, 4, 6, 8, 9, 12, 16, 18, 24, 32, 36, 48, 64]))
        simd = _pick_fold(rng, position_elements, simd_style)
    else:
        position_elements = int(rng.choice([2, 3, 4, 6, 8, 16]))
        simd = _pick_fold(rng, position_elements, simd_style)
    matrix_width = kernel_positions * position_elements
    if kernel_positions == 1:
        scale_bits = 1
        scales = np.ones(1, dtype=np.int64)
    else:
        scale_bits = int(rng.integers(1, 9))
        scales = rng.integers(0, 1 << scale_bits, size=kernel_positions)
    if shape is None:
        matrix_height = int(rng.choice([1, 2, 3, 4, 6, 8, 10, 12, 16]))
        pe = _pick_fold(rng, matrix_height, pe_style)

    if weight_kind == ElementKind.BIPOLAR:
        weights = rng.choice([-1, 1], size=(matrix_height, matrix_width))
    else:
        weights = rng.integers(weight_low, weight_high + 1, size=(matrix_height, matrix_width))

    # Random vectors, plus two that drive a random row to its maximum and minimum accumulator.
    inputs = _random_inputs(rng, input_kind, input_bits, int(rng.integers(1, 4)), matrix_width)
    low, high = _input_range(input_kind, input_bits)
    row = weights[rng.integers(matrix_height)]
    if xnor:
        extremes = np.stack([row, -row])
    else:
        extremes = np.stack([np.where(row > 0, high, low), np.where(row > 0, low, high)])
    inputs = np.concatenate([inputs, extremes]).astype(np.int64)

    # Tightest accumulator for these weights over the whole input range, sometimes a few bits wider.
    product_low, product_high = _product_bounds(weights, input_kind, input_bits, xnor)
    position_low = product_low.reshape(matrix_height, kernel_positions, position_elements).sum(-1)
    position_high = product_high.reshape(matrix_height, kernel_positions, position_elements).sum(-1)
    accumulator_low = int((position_low * scales).sum(-1).min())
    accumulator_high = int((position_high * scales).sum(-1).max())
    accumulator_bits = max(2, _signed_bits(accumulator_low, accumulator_high)) + int(rng.choice([0, 0, 1, 3]))

    raw = output_mode == "raw"
    if raw:
        output_kind, output_bits, output_offset, num_thresholds = ElementKind.SIGNED, accumulator_bits, 0, 0
    elif output_mode == "bipolar":
        output_kind, output_bits, output_offset, num_thresholds = ElementKind.BIPOLAR, 1, 0, 1
    elif output_mode == "unsigned":
        output_kind, output_bits, output_offset = ElementKind.UNSIGNED, int(rng.integers(1, 5)), 0
        num_thresholds = int(rng.integers(1, 1 << output_bits))
    else:
        output_kind, output_bits = ElementKind.SIGNED, int(rng.integers(2, 5))
        narrow = bool(rng.integers(2))
        output_offset = -(1 << (output_bits - 1)) + int(narrow)
        num_thresholds = (1 << output_bits) - 1 - int(narrow)

    case = MvauCase(
        name=f"mvau{index:02d}",
        matrix_width=matrix_width,
        matrix_height=matrix_height,
        simd=simd,
        pe=pe,
        input_kind=input_kind,
        input_bits=input_bits,
        weight_kind=weight_kind,
        weight_bits=weight_bits,
        xnor=xnor,
        kernel_positions=kernel_positions,
        position_elements=position_elements,
        scale_bits=scale_bits,
        accumulator_bits=accumulator_bits,
        num_thresholds=num_thresholds,
        output_offset=output_offset,
        output_bits=output_bits,
        output_kind=output_kind,
        raw=raw,
        weights=weights.astype(np.int64),
        inputs=inputs,
        scales=scales.astype(np.int64),
        thresholds=np.zeros((matrix_height, 0), dtype=np.int64),
    )
    if not raw:
        case.thresholds = _make_thresholds(rng, case, accumulator_low, accumulator_high, sort=index % 4 != 3)
    return case


def _make_thresholds(rng, case, accumulator_low, accumulator_high, sort):
    """Thresholds mixing exact accumulator values (ties), random values and the type's extremes."""
    accumulators = reference_accumulators(case)
    type_low = -(1 << case.accumulator_bits)
    type_high = (1 << case.accumulator_bits) - 1
    thresholds = np.empty((case.matrix_height, case.num_thresholds), dtype=np.int64)
    for row in range(case.matrix_height):
        for k in range(case.num_thresholds):
            choice = rng.random()
            if choice < 0.5:
                thresholds[row, k] = accumulators[rng.integers(case.vectors), row]
            elif choice < 0.9:
                thresholds[row, k] = rng.integers(accumulator_low - 2, accumulator_high + 3)
            else:
                thresholds[row, k] = rng.choice([type_low, type_high])
    thresholds = np.clip(thresholds, type_low, type_high)
    return np.sort(thresholds, axis=1) if sort else thresholds


def _make_cases():
    rng = np.random.default_rng(SEED)
    cases = []
    # Every input type with every weight type, cycling through output modes, foldings and scales.
    for input_type in INPUT_TYPES:
        for weight_name in WEIGHT_TYPES:
            index = len(cases)
            kernel_positions = int(rng.choice([2, 3, 4, 9])) if index % 3 == 2 else 1
            output_mode = OUTPUT_MODES[index % len(OUTPUT_MODES)]
            cases.append(_make_case(index, rng, input_type, weight_name, False, kernel_positions, output_mode))
    # XNOR-popcount, with and without kernel-position scales.
    for kernel_positions, output_mode in [(1, "unsigned"), (1, "bipolar"), (1, "raw"), (3, "signed"), (4, "raw")]:
        index = len(cases)
        cases.append(
            _make_case(index, rng, (ElementKind.BIPOLAR, 1), "binary", True, kernel_positions, output_mode)
        )
    # Layer sizes of the reference networks: (input type, weights, xnor, kernel positions, output,
    # (position elements, simd, MH, pe)).
    layers = [
        ((ElementKind.UNSIGNED, 2), "ternary", False, 1, "unsigned", (784, 49, 64, 16)),  # TFC layer 0
        ((ElementKind.UNSIGNED, 2), "ternary", False, 1, "raw", (64, 8, 10, 10)),  # TFC last layer
        ((ElementKind.UNSIGNED, 2), "ternary", False, 9, "signed", (64, 16, 64, 8)),  # 3x3 conv, pixel scales
        ((ElementKind.UNSIGNED, 2), "ternary", False, 3, "unsigned", (96, 32, 16, 4)),  # kernel-row scales
        ((ElementKind.BIPOLAR, 1), "binary", True, 1, "bipolar", (256, 64, 64, 16)),  # binarized SFC layer
        ((ElementKind.UNSIGNED, 8), "int8", False, 1, "unsigned", (27, 3, 64, 4)),  # 8-bit first conv layer
        ((ElementKind.SIGNED, 3), "int4", False, 2, "unsigned", (96, 48, 8, 2)),  # 144-bit input words
    ]
    for input_type, weight_name, xnor, kernel_positions, output_mode, shape in layers:
        index = len(cases)
        cases.append(
            _make_case(index, rng, input_type, weight_name, xnor, kernel_positions, output_mode, shape)
        )
    return cases


def reference_accumulators(case):
    """Integer accumulators (vectors, MH) computed directly from the definition."""
    inputs = case.inputs[:, None, :]
    weights = case.weights[None, :, :]
    if case.xnor:
        products = (inputs == weights).astype(np.int64)
    else:
        products = inputs * weights
    vectors = case.inputs.shape[0]
    partials = products.reshape(vectors, case.matrix_height, case.kernel_positions, case.position_elements).sum(-1)
    if case.kernel_positions == 1:
        return partials[:, :, 0]
    return (partials * case.scales).sum(-1)


def reference_outputs(case):
    """Output element values (vectors, MH): thresholded levels or raw accumulators."""
    accumulators = reference_accumulators(case)
    if case.raw:
        return accumulators
    counts = (accumulators[:, :, None] >= case.thresholds[None, :, :]).sum(-1)
    if case.output_kind == ElementKind.BIPOLAR:
        return np.where(counts == 1, 1, -1)
    return case.output_offset + counts


def _fold_weights(case):
    """weights[p][nf * SF + sf] lane i = W[nf * pe + p, sf * simd + i], written out index by index."""
    synapse_folds = case.matrix_width // case.simd
    neuron_folds = case.matrix_height // case.pe
    folded = np.zeros((case.pe, neuron_folds * synapse_folds, case.simd), dtype=np.int64)
    for p in range(case.pe):
        for nf in range(neuron_folds):
            for sf in range(synapse_folds):
                for lane in range(case.simd):
                    folded[p, nf * synapse_folds + sf, lane] = case.weights[nf * case.pe + p, sf * case.simd + lane]
    return folded


def _fold_thresholds(case):
    neuron_folds = case.matrix_height // case.pe
    folded = np.zeros((case.pe, neuron_folds, case.num_thresholds), dtype=np.int64)
    for p in range(case.pe):
        for nf in range(neuron_folds):
            folded[p, nf] = case.thresholds[nf * case.pe + p]
    return folded


def _write_case_files(case, folder):
    prefix = folder / case.name
    words = packing.pack_words(case.inputs, case.input_bits, case.input_kind, case.simd)
    packing.write_words(f"{prefix}.input", words)
    words = packing.pack_words(_fold_weights(case), case.weight_bits, case.weight_kind, case.simd)
    packing.write_words(f"{prefix}.weights", words)
    words = packing.pack_words(case.scales[:, None], case.scale_bits, ElementKind.UNSIGNED, 1)
    packing.write_words(f"{prefix}.scales", words)
    if not case.raw:
        thresholds = _fold_thresholds(case).reshape(-1, 1)
        words = packing.pack_words(thresholds, case.accumulator_bits + 1, ElementKind.SIGNED, 1)
        packing.write_words(f"{prefix}.thresholds", words)


def _read_case_output(case, folder):
    words = packing.read_words(folder / f"{case.name}.output", case.pe * case.output_bits)
    values = packing.unpack_words(words, case.output_bits, case.output_kind, case.pe)
    return values.reshape(case.vectors, case.matrix_height)


CASES = _make_cases()




# C-simulation sums lanes on native integers; SYQ_CSIM_HLS_ARITHMETIC selects the ap_int code that
# synthesis uses. Both must give the reference outputs.
ARITHMETIC = {"native": (), "hls": ("SYQ_CSIM_HLS_ARITHMETIC",)}


@pytest.fixture(scope="module", params=sorted(ARITHMETIC))
def mvau_outputs(request, tmp_path_factory):
    """Build and run the MVAU program once per arithmetic and return {case name: output values}."""
    executable = build_test_program(
        "mvau_test.cpp.j2",
        {"cases": [case.template_fields() for case in CASES]},
        build_root(request, tmp_path_factory),
        defines=ARITHMETIC[request.param],
    )
    folder = tmp_path_factory.mktemp("mvau-data")
    for case in CASES:
        _write_case_files(case, folder)
    result = subprocess.run([str(executable), str(folder)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"MVAU program failed:\n{result.stderr}{result.stdout}"
    assert "WARNING" not in result.stdout, f"hls::stream warnings:\n{result.stdout}"
    return {case.name: _read_case_output(case, folder) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_mvau_case_matches_reference(case, mvau_outputs):
    expected = reference_outputs(case)
    actual = mvau_outputs[case.name]
    config = {key: value for key, value in case.template_fields().items() if np.isscalar(value)}
    mismatches = np.argwhere(actual != expected)
    assert mismatches.size == 0, (
        f"{len(mismatches)} mismatches, first at (vector, row) {tuple(mismatches[0])}: "
        f"expected {expected[tuple(mismatches[0])]}, got {actual[tuple(mismatches[0])]}; config {config}"
    )


def test_mvau_grid_covers_features():
    threshold_cases = [case for case in CASES if not case.raw]
    ties = sum(
        int(np.sum(reference_accumulators(case)[:, :, None] == case.thresholds[None, :, :])) for case in threshold_cases
    )
    assert ties > 0, "no threshold equals an accumulator, so ties are untested"
    assert any(case.xnor for case in CASES)
    assert any(case.kernel_positions > 1 and not case.xnor for case in CASES)
    assert any(case.kernel_positions > 1 and case.xnor for case in CASES)
    assert any(case.raw for case in CASES)
    assert any(case.output_kind == ElementKind.BIPOLAR for case in CASES)
    assert {case.simd == case.matrix_width for case in CASES} == {True, False}
    assert {case.pe == case.matrix_height for case in CASES} == {True, False}
    assert any(case.simd == 1 and case.pe == 1 for case in CASES)
    assert any(1 < case.simd < case.position_elements for case in CASES)
    assert any(1 < case.pe < case.matrix_height for case in CASES)
    assert any(case.vectors > 3 for case in CASES)
    # Words of several 64-bit slices, with lanes that do not divide 64 bits.
    assert any(case.simd * case.input_bits > 64 and 64 % case.input_bits for case in CASES)
    assert any(case.simd * case.weight_bits > 64 for case in CASES)
