"""generator/packing.py: bit layouts, round trips, error handling, and agreement with the C++ headers."""

import dataclasses
import subprocess

import numpy as np
import pytest

from syq.errors import SyqError
from cpp_programs import build_root, build_test_program
from syq.generator import packing
from syq.generator.packing import ElementKind

SEED = 4242

KIND_CPP = {
    ElementKind.UNSIGNED: "syq::kUnsigned",
    ElementKind.SIGNED: "syq::kSigned",
    ElementKind.BIPOLAR: "syq::kBipolar",
}


def _random_values(rng, bits, kind, shape):
    if kind == ElementKind.BIPOLAR:
        return rng.choice([-1, 1], size=shape)
    low, high = packing.element_range(bits, kind)
    if kind == ElementKind.UNSIGNED and bits == 64:
        high = np.iinfo(np.int64).max  # the largest value that int64 can represent
    return rng.integers(low, high, size=shape, dtype=np.int64, endpoint=True)


def _reference_words(values, bits, kind, lanes):
    """Pack with Python integers: word = sum(code_i << (i * bits)), split into 64-bit limbs."""
    values = np.asarray(values).reshape(-1, lanes)
    limbs = -(-(lanes * bits) // 64)
    words = []
    for row in values.tolist():
        word = 0
        for lane, value in enumerate(row):
            if kind == ElementKind.BIPOLAR:
                code = 1 if value == 1 else 0
            else:
                code = value % (1 << bits)  # two's complement of negative values
            word |= code << (lane * bits)
        words.append([(word >> (64 * limb)) & ((1 << 64) - 1) for limb in range(limbs)])
    return np.array(words, dtype=np.uint64)


# ---------------------------------------------------------------------------------------------
# Bit layout


def test_pack_words_puts_lane_zero_at_lsb():
    words = packing.pack_words([1, 2, 3], 4, ElementKind.UNSIGNED, 3)
    assert words.shape == (1, 1)
    assert int(words[0, 0]) == 0x321


def test_pack_words_signed_twos_complement():
    words = packing.pack_words([-1, 3, -8], 4, ElementKind.SIGNED, 3)
    assert int(words[0, 0]) == 0x83F


def test_pack_words_bipolar_bits():
    words = packing.pack_words([1, -1, 1, 1], 1, ElementKind.BIPOLAR, 4)
    assert int(words[0, 0]) == 0b1101


def test_pack_words_element_straddles_limbs():
    # Three 48-bit elements: lane 1 spans limbs 0 and 1, lane 2 spans limbs 1 and 2.
    values = [0x0000_1111_2222, 0xABCD_EF01_2345, 0x8000_0000_0001]
    words = packing.pack_words(values, 48, ElementKind.UNSIGNED, 3)
    word = values[0] | (values[1] << 48) | (values[2] << 96)
    assert words.shape == (1, 3)
    assert [int(limb) for limb in words[0]] == [(word >> (64 * i)) & (2**64 - 1) for i in range(3)]


def test_pack_words_matches_python_integers():
    rng = np.random.default_rng(SEED)
    for bits in [1, 2, 3, 7, 8, 13, 31, 32, 33, 63, 64]:
        for kind in [ElementKind.UNSIGNED, ElementKind.SIGNED]:
            lanes = int(rng.integers(1, 12))
            values = _random_values(rng, bits, kind, (5, lanes))
            words = packing.pack_words(values, bits, kind, lanes)
            np.testing.assert_array_equal(words.reshape(5, -1), _reference_words(values, bits, kind, lanes))
    values = _random_values(rng, 1, ElementKind.BIPOLAR, (4, 70))
    words = packing.pack_words(values, 1, ElementKind.BIPOLAR, 70)
    np.testing.assert_array_equal(words.reshape(4, -1), _reference_words(values, 1, ElementKind.BIPOLAR, 70))


def test_pack_words_keeps_leading_axes():
    values = np.arange(2 * 3 * 12).reshape(2, 3, 12) % 16
    words = packing.pack_words(values, 4, ElementKind.UNSIGNED, 4)
    assert words.shape == (2, 3, 3, 1)
    np.testing.assert_array_equal(packing.unpack_words(words, 4, ElementKind.UNSIGNED, 4), values)


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("kind", list(ElementKind), ids=[kind.name.lower() for kind in ElementKind])
def test_pack_unpack_round_trip(kind):
    rng = np.random.default_rng([SEED, int(kind)])
    widths = [1] if kind == ElementKind.BIPOLAR else [1, 2, 5, 8, 16, 24, 40, 63, 64]
    if kind == ElementKind.SIGNED:
        widths = widths[1:] + [1]  # a 1-bit signed element is -1 or 0
    for bits in widths:
        for lanes in [1, 3, 8, 17, 64]:
            values = _random_values(rng, bits, kind, (3, 2 * lanes))
            words = packing.pack_words(values, bits, kind, lanes)
            assert words.shape == (3, 2, packing.limbs_per_word(lanes * bits))
            np.testing.assert_array_equal(packing.unpack_words(words, bits, kind, lanes), values)


def test_encode_decode_extremes():
    for bits in [1, 2, 8, 63, 64]:
        low, high = packing.element_range(bits, ElementKind.SIGNED)
        codes = packing.encode_elements([low, -1 if bits > 1 else low, 0, high], bits, ElementKind.SIGNED)
        decoded = packing.decode_elements(codes, bits, ElementKind.SIGNED)
        np.testing.assert_array_equal(decoded, [low, -1 if bits > 1 else low, 0, high])
    assert int(packing.encode_elements([-1], 64, ElementKind.SIGNED)[0]) == 2**64 - 1


def test_float_inputs_that_are_integers_pack():
    words = packing.pack_words(np.array([1.0, 255.0]), 8, ElementKind.UNSIGNED, 2)
    assert int(words[0, 0]) == 0xFF01


def test_word_file_round_trip(tmp_path):
    rng = np.random.default_rng(SEED)
    values = _random_values(rng, 13, ElementKind.SIGNED, (6, 10))
    words = packing.pack_words(values, 13, ElementKind.SIGNED, 10)  # 130-bit words, 3 limbs
    path = tmp_path / "words.bin"
    packing.write_words(path, words)
    assert path.stat().st_size == 6 * 3 * 8
    read = packing.read_words(path, 130)
    np.testing.assert_array_equal(read, words.reshape(6, 3))


def test_words_to_hex():
    words = packing.pack_words([[1, 2, 3]], 48, ElementKind.UNSIGNED, 3)
    assert packing.words_to_hex(words, 144) == [f"0x{(1 | (2 << 48) | (3 << 96)):036x}"]


# ---------------------------------------------------------------------------------------------
# AXI frames


def test_axi_input_frame_layout():
    # Three 8-bit elements in 16-bit AXI words: the second word of each frame has one padding lane.
    words = packing.pack_axi_frames([[1, 2, 3], [4, 5, 6]], 8, ElementKind.UNSIGNED, 16)
    assert [int(word) for word in words[:, 0]] == [0x0201, 0x0003, 0x0504, 0x0006]


def test_axi_output_frame_sign_extends_into_containers():
    words = packing.pack_axi_frames([[1, -2, 3]], 4, ElementKind.SIGNED, 32, container_bits=8)
    assert [int(word) for word in words[:, 0]] == [0x0003FE01]


def test_axi_output_frame_bipolar_keeps_raw_bit():
    words = packing.pack_axi_frames([[1, -1]], 1, ElementKind.BIPOLAR, 16, container_bits=8)
    assert [int(word) for word in words[:, 0]] == [0x0001]


@pytest.mark.parametrize("container_bits", [None, 8, 16, 64])
def test_axi_frames_round_trip(container_bits):
    rng = np.random.default_rng([SEED, container_bits or 0])
    for bits, kind in [(1, ElementKind.BIPOLAR), (3, ElementKind.SIGNED), (8, ElementKind.UNSIGNED),
                       (8, ElementKind.SIGNED)]:
        if container_bits is None and bits == 3:
            axi_bits = 24
        else:
            axi_bits = 128
        for frame_elements in [1, 7, 16, 33]:
            values = _random_values(rng, bits, kind, (3, frame_elements))
            words = packing.pack_axi_frames(values, bits, kind, axi_bits, container_bits)
            slot = container_bits or bits
            assert words.shape[0] == 3 * packing.axi_words_per_frame(frame_elements, slot, axi_bits)
            unpacked = packing.unpack_axi_frames(words, frame_elements, bits, kind, axi_bits, container_bits)
            np.testing.assert_array_equal(unpacked, values)


def test_axi_output_rejects_invalid_container():
    words = packing.pack_axi_frames([[100]], 8, ElementKind.UNSIGNED, 32, container_bits=16)
    with pytest.raises(SyqError, match="not a 4-bit unsigned element"):
        packing.unpack_axi_frames(words, 1, 4, ElementKind.UNSIGNED, 32, container_bits=16)


# ---------------------------------------------------------------------------------------------
# MVAU parameter layout


def test_fold_matrix_weights_layout():
    rows, columns, pe, simd = 6, 8, 3, 2
    matrix = np.arange(rows * columns).reshape(rows, columns)
    folded = packing.fold_matrix_weights(matrix, pe, simd)
    synapse_folds = columns // simd
    assert folded.shape == (pe, (rows // pe) * synapse_folds, simd)
    for row in range(rows):
        for column in range(columns):
            tile = (row // pe) * synapse_folds + column // simd
            assert folded[row % pe, tile, column % simd] == matrix[row, column]


def test_fold_thresholds_layout():
    thresholds = np.arange(8 * 3).reshape(8, 3)
    folded = packing.fold_thresholds(thresholds, 4)
    assert folded.shape == (4, 2, 3)
    for row in range(8):
        np.testing.assert_array_equal(folded[row % 4, row // 4], thresholds[row])


# ---------------------------------------------------------------------------------------------
# Errors


def test_encode_rejects_out_of_range():
    with pytest.raises(SyqError, match="value 16 at index"):
        packing.pack_words([1, 16], 4, ElementKind.UNSIGNED, 2)
    with pytest.raises(SyqError, match="does not fit 4-bit signed"):
        packing.pack_words([-9, 0], 4, ElementKind.SIGNED, 2)
    with pytest.raises(SyqError, match="bipolar"):
        packing.pack_words([0, 1], 1, ElementKind.BIPOLAR, 2)


def test_encode_rejects_fractions_and_booleans():
    with pytest.raises(SyqError, match="non-integer value 0.5"):
        packing.pack_words([0.5, 1.0], 4, ElementKind.UNSIGNED, 2)
    with pytest.raises(SyqError, match="boolean"):
        packing.pack_words(np.array([True, False]), 1, ElementKind.UNSIGNED, 2)


def test_pack_rejects_partial_words():
    with pytest.raises(SyqError, match="multiple of elements_per_word"):
        packing.pack_words([1, 2, 3], 4, ElementKind.UNSIGNED, 2)


def test_invalid_kind_and_width():
    with pytest.raises(SyqError, match="invalid element kind 'ternary'"):
        packing.pack_words([1], 2, "ternary", 1)
    with pytest.raises(SyqError, match="bipolar elements are 1 bit wide"):
        packing.element_range(2, ElementKind.BIPOLAR)
    with pytest.raises(SyqError, match="invalid element width 65"):
        packing.element_range(65, ElementKind.SIGNED)


def test_read_words_rejects_truncated_file(tmp_path):
    path = tmp_path / "short.bin"
    path.write_bytes(bytes(12))
    with pytest.raises(SyqError, match="not a multiple of 8"):
        packing.read_words(path, 32)


def test_unpack_rejects_wrong_limb_count():
    with pytest.raises(SyqError, match="uint64 limbs per word"):
        packing.unpack_words(np.zeros((2, 1), dtype=np.uint64), 40, ElementKind.UNSIGNED, 2)


# ---------------------------------------------------------------------------------------------
# Agreement with the C++ headers


@dataclasses.dataclass
class CppCase:
    name: str
    lanes: int
    bits: int
    kind: ElementKind

    def template_fields(self):
        fields = dataclasses.asdict(self)
        fields["kind_cpp"] = KIND_CPP[self.kind]
        return fields


# (lanes, bits, kind): word widths from 1 to 192 bits, elements straddling limbs.
CPP_SPECS = [
    (1, 1, ElementKind.UNSIGNED),
    (64, 1, ElementKind.UNSIGNED),
    (130, 1, ElementKind.BIPOLAR),
    (5, 3, ElementKind.SIGNED),
    (9, 7, ElementKind.UNSIGNED),
    (8, 8, ElementKind.SIGNED),
    (16, 8, ElementKind.UNSIGNED),
    (7, 13, ElementKind.SIGNED),
    (13, 5, ElementKind.SIGNED),
    (3, 32, ElementKind.SIGNED),
    (2, 63, ElementKind.UNSIGNED),
    (3, 64, ElementKind.SIGNED),
    (1, 64, ElementKind.UNSIGNED),
    (11, 12, ElementKind.UNSIGNED),
]
CPP_CASES = [CppCase(f"packing{index}", *spec) for index, spec in enumerate(CPP_SPECS)]


def _cpp_values(case, file_kind):
    rng = np.random.default_rng([SEED, *case.name.encode(), *file_kind.encode()])
    return _random_values(rng, case.bits, case.kind, (4, case.lanes))




@pytest.fixture(scope="module")
def packing_folder(request, tmp_path_factory):
    """Build and run the C++ packing program once and return the folder with its output files."""
    executable = build_test_program(
        "packing_test.cpp.j2",
        {"cases": [case.template_fields() for case in CPP_CASES]},
        build_root(request, tmp_path_factory),
    )
    folder = tmp_path_factory.mktemp("packing-data")
    for case in CPP_CASES:
        words = packing.pack_words(_cpp_values(case, "words"), case.bits, case.kind, case.lanes)
        packing.write_words(folder / f"{case.name}.words", words)
        values = _cpp_values(case, "values").astype(np.int64).view(np.uint64)
        packing.write_words(folder / f"{case.name}.values", values.reshape(-1, 1))
    result = subprocess.run([str(executable), str(folder)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"packing test program failed:\n{result.stderr}{result.stdout}"
    return folder


@pytest.mark.parametrize("case", CPP_CASES, ids=[case.name for case in CPP_CASES])
def test_cpp_decodes_python_words(case, packing_folder):
    decoded = packing.read_words(packing_folder / f"{case.name}.decoded", 64)[:, 0].view(np.int64)
    np.testing.assert_array_equal(decoded.reshape(4, case.lanes), _cpp_values(case, "words"))


@pytest.mark.parametrize("case", CPP_CASES, ids=[case.name for case in CPP_CASES])
def test_python_unpacks_cpp_words(case, packing_folder):
    words = packing.read_words(packing_folder / f"{case.name}.encoded", case.lanes * case.bits)
    expected = _cpp_values(case, "values")
    np.testing.assert_array_equal(words, packing.pack_words(expected, case.bits, case.kind, case.lanes).reshape(4, -1))
    np.testing.assert_array_equal(packing.unpack_words(words, case.bits, case.kind, case.lanes), expected.reshape(-1))
