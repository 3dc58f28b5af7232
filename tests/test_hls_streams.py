"""C-simulation of syq::thresholding, syq::convert_width and the AXI-stream adapters, bit for bit.

One C++ program (tests/cpp/streams_test.cpp.j2) instantiates every case; it runs once on word files
written here, and each test compares one case with a numpy reference.
"""

import dataclasses
import subprocess

import numpy as np
import pytest

from cpp_programs import build_root, build_test_program
from syq.generator import packing
from syq.generator.packing import ElementKind

SEED = 1207

KIND_CPP = {
    ElementKind.UNSIGNED: "syq::kUnsigned",
    ElementKind.SIGNED: "syq::kSigned",
    ElementKind.BIPOLAR: "syq::kBipolar",
}


# ---------------------------------------------------------------------------------------------
# Cases


@dataclasses.dataclass
class ThresholdingCase:
    name: str
    channels: int
    pe: int
    input_kind: ElementKind
    input_bits: int
    num_thresholds: int
    threshold_bits: int
    output_offset: int
    output_bits: int
    output_kind: ElementKind
    inputs: np.ndarray  # (vectors, channels)
    thresholds: np.ndarray  # (channels, num_thresholds)

    def template_fields(self):
        fields = dataclasses.asdict(self)
        fields["vectors"] = self.inputs.shape[0]
        fields["input_kind_cpp"] = KIND_CPP[self.input_kind]
        fields["output_kind_cpp"] = KIND_CPP[self.output_kind]
        return fields


@dataclasses.dataclass
class ConvertCase:
    name: str
    in_elements: int
    out_elements: int
    element_bits: int
    group_elements: int
    groups: int


@dataclasses.dataclass
class AxisInCase:
    name: str
    axi_bits: int
    element_bits: int
    kind: ElementKind
    out_elements: int
    frame_elements: int
    frames: int


@dataclasses.dataclass
class AxisOutCase:
    name: str
    in_elements: int
    element_bits: int
    kind: ElementKind
    container_bits: int
    axi_bits: int
    frame_elements: int
    frames: int

    def template_fields(self):
        fields = dataclasses.asdict(self)
        fields["kind_cpp"] = KIND_CPP[self.kind]
        return fields


# (channels, pe, input kind, input bits, output kind, output bits, narrow signed output, threshold bits)
THRESHOLDING_SPECS = [
    (12, 4, ElementKind.UNSIGNED, 8, ElementKind.UNSIGNED, 2, False, 10),
    (6, 1, ElementKind.SIGNED, 4, ElementKind.SIGNED, 3, False, 5),
    (8, 8, ElementKind.BIPOLAR, 1, ElementKind.BIPOLAR, 1, False, 3),
    (5, 5, ElementKind.UNSIGNED, 1, ElementKind.UNSIGNED, 1, False, 2),
    (9, 3, ElementKind.SIGNED, 8, ElementKind.SIGNED, 2, True, 9),
    (4, 2, ElementKind.UNSIGNED, 8, ElementKind.UNSIGNED, 4, False, 6),  # thresholds narrower than inputs
    (3, 1, ElementKind.UNSIGNED, 3, ElementKind.UNSIGNED, 3, False, 12),
]

# (in elements, out elements, element bits, group elements, groups)
CONVERT_SPECS = [
    (3, 2, 4, 6, 3),
    (2, 7, 3, 14, 2),
    (4, 3, 5, 9, 3),  # partial last input word: 9 = 4 + 4 + 1
    (1, 8, 1, 16, 2),
    (8, 1, 2, 8, 2),
    (5, 5, 8, 10, 3),  # pass-through
    (16, 3, 2, 15, 2),  # one partial input word per group
    (3, 16, 1, 48, 2),
    (7, 2, 9, 14, 3),
    (2, 3, 64, 6, 2),  # 64-bit elements, 192-bit output words
    (6, 4, 7, 12, 1),
]

# (AXI bits, element bits, kind, out elements, frame elements, frames)
AXIS_IN_SPECS = [
    (32, 8, ElementKind.UNSIGNED, 4, 12, 2),  # no padding
    (64, 8, ElementKind.UNSIGNED, 5, 15, 3),  # one padding lane per frame
    (32, 1, ElementKind.BIPOLAR, 7, 49, 2),
    (64, 4, ElementKind.SIGNED, 3, 9, 2),
    (128, 16, ElementKind.SIGNED, 6, 18, 2),  # two limbs per AXI word
    (8, 2, ElementKind.UNSIGNED, 1, 5, 3),
]

# (in elements, element bits, kind, container bits, AXI bits, frame elements, frames)
AXIS_OUT_SPECS = [
    (2, 3, ElementKind.SIGNED, 8, 32, 10, 2),
    (4, 20, ElementKind.SIGNED, 32, 64, 12, 2),
    (5, 8, ElementKind.UNSIGNED, 8, 64, 15, 3),
    (1, 1, ElementKind.BIPOLAR, 8, 32, 3, 2),
    (3, 16, ElementKind.SIGNED, 16, 128, 9, 2),
    (10, 24, ElementKind.SIGNED, 32, 32, 10, 1),
    (2, 5, ElementKind.UNSIGNED, 16, 64, 6, 2),
]


def _random_values(rng, kind, bits, shape):
    if kind == ElementKind.BIPOLAR:
        return rng.choice([-1, 1], size=shape)
    low, high = packing.element_range(bits, kind)
    return rng.integers(low, high + 1, size=shape, dtype=np.int64)


def _make_thresholding_cases(rng):
    cases = []
    for index, spec in enumerate(THRESHOLDING_SPECS):
        channels, pe, input_kind, input_bits, output_kind, output_bits, narrow, threshold_bits = spec
        if output_kind == ElementKind.BIPOLAR:
            num_thresholds, offset = 1, 0
        elif output_kind == ElementKind.SIGNED:
            num_thresholds = (1 << output_bits) - 1 - int(narrow)
            offset = -(1 << (output_bits - 1)) + int(narrow)
        else:
            num_thresholds, offset = (1 << output_bits) - 1, 0
        inputs = _random_values(rng, input_kind, input_bits, (int(rng.integers(2, 5)), channels))
        input_low, input_high = packing.element_range(input_bits, input_kind)
        threshold_low, threshold_high = packing.element_range(threshold_bits, ElementKind.SIGNED)
        # Thresholds around and inside the input range, with repeats (a level can jump by 2) and
        # values equal to actual inputs (ties count).
        candidates = np.concatenate([
            np.arange(max(threshold_low, input_low - 2), min(threshold_high, input_high + 2) + 1),
            inputs.ravel(),
            [threshold_low, threshold_high],
        ])
        thresholds = np.sort(rng.choice(candidates, size=(channels, num_thresholds)), axis=1)
        if num_thresholds > 1:
            thresholds[0, 1] = thresholds[0, 0]  # a guaranteed repeat
        cases.append(
            ThresholdingCase(
                name=f"thresholding{index}",
                channels=channels,
                pe=pe,
                input_kind=input_kind,
                input_bits=input_bits,
                num_thresholds=num_thresholds,
                threshold_bits=threshold_bits,
                output_offset=offset,
                output_bits=output_bits,
                output_kind=output_kind,
                inputs=inputs.astype(np.int64),
                thresholds=np.clip(thresholds, threshold_low, threshold_high).astype(np.int64),
            )
        )
    return cases


THRESHOLDING_CASES = _make_thresholding_cases(np.random.default_rng(SEED))
CONVERT_CASES = [ConvertCase(f"convert{index}", *spec) for index, spec in enumerate(CONVERT_SPECS)]
AXIS_IN_CASES = [AxisInCase(f"axis_in{index}", *spec) for index, spec in enumerate(AXIS_IN_SPECS)]
AXIS_OUT_CASES = [AxisOutCase(f"axis_out{index}", *spec) for index, spec in enumerate(AXIS_OUT_SPECS)]


# ---------------------------------------------------------------------------------------------
# Data files and references. Each case gets its own generator so that cases stay independent.


def _case_rng(name):
    return np.random.default_rng([SEED, *name.encode()])


def _write_thresholding(case, folder):
    prefix = folder / case.name
    packing.write_words(f"{prefix}.input", packing.pack_words(case.inputs, case.input_bits, case.input_kind, case.pe))
    # thresholds[ch % pe][ch // pe][k], one signed threshold per word.
    folded = np.zeros((case.pe, case.channels // case.pe, case.num_thresholds), dtype=np.int64)
    for channel in range(case.channels):
        folded[channel % case.pe, channel // case.pe] = case.thresholds[channel]
    words = packing.pack_words(folded.reshape(-1, 1), case.threshold_bits, ElementKind.SIGNED, 1)
    packing.write_words(f"{prefix}.thresholds", words)


def _thresholding_reference(case):
    counts = (case.inputs[:, :, None] >= case.thresholds[None, :, :]).sum(-1)
    if case.output_kind == ElementKind.BIPOLAR:
        return np.where(counts == 1, 1, -1)
    return case.output_offset + counts


def _convert_data(case):
    """Return (group elements (groups, G), input codes padded with garbage lanes)."""
    rng = _case_rng(case.name)
    elements = rng.integers(0, 1 << min(case.element_bits, 63), size=(case.groups, case.group_elements))
    input_words = -(-case.group_elements // case.in_elements)
    padded = rng.integers(0, 1 << min(case.element_bits, 63), size=(case.groups, input_words * case.in_elements))
    padded[:, : case.group_elements] = elements
    return elements, padded


def _write_convert(case, folder):
    _, padded = _convert_data(case)
    words = packing.pack_words(padded, case.element_bits, ElementKind.UNSIGNED, case.in_elements)
    packing.write_words(folder / f"{case.name}.input", words)


def _axis_in_data(case):
    """Return (frame values, AXI words whose padding lanes contain garbage)."""
    rng = _case_rng(case.name)
    values = _random_values(rng, case.kind, case.element_bits, (case.frames, case.frame_elements))
    words = packing.pack_axi_frames(values, case.element_bits, case.kind, case.axi_bits)
    lanes = case.axi_bits // case.element_bits
    per_frame = packing.axi_words_per_frame(case.frame_elements, case.element_bits, case.axi_bits)
    garbage = rng.integers(0, 1 << case.element_bits, size=(case.frames, per_frame * lanes))
    garbage[:, : case.frame_elements] = 0
    garbage_words = packing.pack_words(garbage, case.element_bits, ElementKind.UNSIGNED, lanes)
    return values, words | garbage_words.reshape(words.shape)


def _write_axis_in(case, folder):
    _, words = _axis_in_data(case)
    packing.write_words(folder / f"{case.name}.input", words)


def _axis_out_values(case):
    rng = _case_rng(case.name)
    return _random_values(rng, case.kind, case.element_bits, (case.frames, case.frame_elements))


def _write_axis_out(case, folder):
    words = packing.pack_words(_axis_out_values(case), case.element_bits, case.kind, case.in_elements)
    packing.write_words(folder / f"{case.name}.input", words)


# ---------------------------------------------------------------------------------------------
# Build and run




@pytest.fixture(scope="module")
def stream_folder(request, tmp_path_factory):
    """Build and run the program once and return the folder with every case's output files."""
    executable = build_test_program(
        "streams_test.cpp.j2",
        {
            "thresholding_cases": [case.template_fields() for case in THRESHOLDING_CASES],
            "convert_cases": [dataclasses.asdict(case) for case in CONVERT_CASES],
            "axis_in_cases": [dataclasses.asdict(case) for case in AXIS_IN_CASES],
            "axis_out_cases": [case.template_fields() for case in AXIS_OUT_CASES],
        },
        build_root(request, tmp_path_factory),
    )
    folder = tmp_path_factory.mktemp("streams-data")
    for case in THRESHOLDING_CASES:
        _write_thresholding(case, folder)
    for case in CONVERT_CASES:
        _write_convert(case, folder)
    for case in AXIS_IN_CASES:
        _write_axis_in(case, folder)
    for case in AXIS_OUT_CASES:
        _write_axis_out(case, folder)
    result = subprocess.run([str(executable), str(folder)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"stream test program failed:\n{result.stderr}{result.stdout}"
    assert "WARNING" not in result.stdout, f"hls::stream warnings:\n{result.stdout}"
    return folder


def _assert_equal(actual, expected, description):
    assert actual.shape == expected.shape, f"{description}: shape {actual.shape}, expected {expected.shape}"
    mismatches = np.argwhere(actual != expected)
    assert mismatches.size == 0, (
        f"{description}: {len(mismatches)} mismatches, first at {tuple(mismatches[0])}: "
        f"expected {expected[tuple(mismatches[0])]}, got {actual[tuple(mismatches[0])]}"
    )


# ---------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("case", THRESHOLDING_CASES, ids=[case.name for case in THRESHOLDING_CASES])
def test_thresholding_matches_reference(case, stream_folder):
    words = packing.read_words(stream_folder / f"{case.name}.output", case.pe * case.output_bits)
    actual = packing.unpack_words(words, case.output_bits, case.output_kind, case.pe).reshape(case.inputs.shape)
    config = {key: value for key, value in case.template_fields().items() if np.isscalar(value)}
    _assert_equal(actual, _thresholding_reference(case), f"{case.name} {config}")


def test_thresholding_cases_have_repeats_and_ties():
    repeats = sum(int(np.any(np.diff(case.thresholds, axis=1) == 0)) for case in THRESHOLDING_CASES)
    ties = sum(int(np.sum(case.inputs[:, :, None] == case.thresholds[None])) for case in THRESHOLDING_CASES)
    assert repeats > 0
    assert ties > 0


@pytest.mark.parametrize("case", CONVERT_CASES, ids=[case.name for case in CONVERT_CASES])
def test_convert_width_matches_reference(case, stream_folder):
    elements, _ = _convert_data(case)
    expected = packing.pack_words(elements, case.element_bits, ElementKind.UNSIGNED, case.out_elements)
    actual = packing.read_words(stream_folder / f"{case.name}.output", case.out_elements * case.element_bits)
    _assert_equal(actual, expected.reshape(actual.shape), f"{case}")


@pytest.mark.parametrize("case", AXIS_IN_CASES, ids=[case.name for case in AXIS_IN_CASES])
def test_axis_to_stream_matches_reference(case, stream_folder):
    values, _ = _axis_in_data(case)
    words = packing.read_words(stream_folder / f"{case.name}.output", case.out_elements * case.element_bits)
    actual = packing.unpack_words(words, case.element_bits, case.kind, case.out_elements)
    _assert_equal(actual.reshape(values.shape), values, f"{case}")


@pytest.mark.parametrize("case", AXIS_OUT_CASES, ids=[case.name for case in AXIS_OUT_CASES])
def test_stream_to_axis_matches_packing(case, stream_folder):
    values = _axis_out_values(case)
    actual = packing.read_words(stream_folder / f"{case.name}.output", case.axi_bits)
    expected = packing.pack_axi_frames(values, case.element_bits, case.kind, case.axi_bits, case.container_bits)
    _assert_equal(actual, expected, f"{case} data")
    unpacked = packing.unpack_axi_frames(
        actual, case.frame_elements, case.element_bits, case.kind, case.axi_bits, case.container_bits
    )
    _assert_equal(unpacked, values, f"{case} unpacked")


@pytest.mark.parametrize("case", AXIS_OUT_CASES, ids=[case.name for case in AXIS_OUT_CASES])
def test_stream_to_axis_sideband(case, stream_folder):
    keep = packing.read_words(stream_folder / f"{case.name}.keep", case.axi_bits // 8)[:, 0]
    strb = packing.read_words(stream_folder / f"{case.name}.strb", case.axi_bits // 8)[:, 0]
    last = packing.read_words(stream_folder / f"{case.name}.last", 1)[:, 0]
    all_bytes = np.uint64((1 << (case.axi_bits // 8)) - 1)
    assert np.all(keep == all_bytes)
    assert np.all(strb == all_bytes)
    assert last.tolist() == [0] * (len(last) - 1) + [1]
