"""C-simulation of syq::sliding_window and syq::maxpool against numpy references, bit for bit.

One C++ program (tests/cpp/window_test.cpp.j2) instantiates every case; it runs once on word files
written here, and each test compares one case.
"""

import dataclasses
import subprocess

import numpy as np
import pytest

from cpp_programs import build_root, build_test_program
from syq.generator import packing
from syq.generator.packing import ElementKind

SEED = 31337

KIND_CPP = {
    ElementKind.UNSIGNED: "syq::kUnsigned",
    ElementKind.SIGNED: "syq::kSigned",
    ElementKind.BIPOLAR: "syq::kBipolar",
}


@dataclasses.dataclass
class WindowCase:
    name: str
    ifm_height: int
    ifm_width: int
    channels: int
    kernel_height: int
    kernel_width: int
    stride: int
    padding: int
    simd: int
    element_bits: int
    pad_value: int
    frames: int

    @property
    def ofm_height(self):
        return (self.ifm_height + 2 * self.padding - self.kernel_height) // self.stride + 1

    @property
    def ofm_width(self):
        return (self.ifm_width + 2 * self.padding - self.kernel_width) // self.stride + 1


@dataclasses.dataclass
class PoolCase:
    name: str
    ifm_height: int
    ifm_width: int
    channels: int
    kernel: int
    stride: int
    pe: int
    element_bits: int
    kind: ElementKind
    frames: int

    def template_fields(self):
        fields = dataclasses.asdict(self)
        fields["kind_cpp"] = KIND_CPP[self.kind]
        return fields


# (height, width, channels, kernel height, kernel width, stride, padding, simd, element bits, pad value, frames)
WINDOW_SPECS = [
    (5, 4, 2, 3, 3, 1, 1, 1, 2, 0, 2),
    (6, 7, 4, 3, 3, 2, 1, 2, 3, 5, 2),  # non-square, stride 2, non-zero padding value
    (8, 8, 3, 5, 5, 1, 0, 3, 1, 1, 2),
    (7, 5, 2, 1, 1, 1, 0, 2, 4, 0, 2),
    (9, 6, 4, 1, 1, 2, 0, 1, 2, 0, 1),  # stride larger than the kernel
    (5, 5, 6, 5, 5, 2, 1, 3, 8, 128, 1),
    (4, 6, 1, 3, 1, 1, 1, 1, 4, 9, 2),  # 3x1 kernel
    (6, 5, 2, 3, 3, 2, 0, 2, 2, 0, 2),  # last image row belongs to no window
    (3, 3, 2, 3, 3, 1, 2, 1, 3, 7, 2),  # padding of 2
    (2, 2, 1, 3, 3, 1, 3, 1, 2, 1, 2),  # padding >= kernel: no prefill, fully padded windows
    (4, 4, 8, 3, 3, 1, 1, 8, 1, 0, 1),  # simd == channels
    (10, 3, 2, 5, 3, 2, 2, 1, 3, 2, 2),
    (1, 9, 2, 1, 3, 2, 0, 1, 5, 0, 3),  # a single image row
]

# (height, width, channels, kernel, stride, pe, element bits, kind, frames)
POOL_SPECS = [
    (4, 4, 2, 2, 2, 1, 4, ElementKind.UNSIGNED, 2),
    (7, 5, 4, 2, 2, 2, 3, ElementKind.SIGNED, 2),  # output size rounds down
    (7, 7, 3, 3, 2, 3, 1, ElementKind.BIPOLAR, 2),  # overlapping 3x3 windows, stride 2
    (9, 8, 4, 3, 2, 1, 5, ElementKind.SIGNED, 2),
    (6, 6, 2, 3, 3, 2, 2, ElementKind.UNSIGNED, 1),
    (5, 6, 1, 3, 1, 1, 4, ElementKind.SIGNED, 1),  # stride 1: three open windows per direction
    (8, 8, 64, 2, 2, 16, 1, ElementKind.BIPOLAR, 2),
    (5, 5, 2, 2, 3, 1, 2, ElementKind.UNSIGNED, 1),  # stride larger than the kernel
    (3, 3, 2, 3, 2, 2, 8, ElementKind.SIGNED, 3),  # one window per frame
]

WINDOW_CASES = [WindowCase(f"window{index}", *spec) for index, spec in enumerate(WINDOW_SPECS)]
POOL_CASES = [PoolCase(f"pool{index}", *spec) for index, spec in enumerate(POOL_SPECS)]


def _case_rng(name):
    return np.random.default_rng([SEED, *name.encode()])


def _window_images(case):
    """Raw element codes of shape (frames, height, width, channels)."""
    shape = (case.frames, case.ifm_height, case.ifm_width, case.channels)
    return _case_rng(case.name).integers(0, 1 << case.element_bits, size=shape)


def _window_reference(case):
    """Expected output codes (frames, ofm_height * ofm_width * window elements), by direct indexing."""
    images = _window_images(case)
    padding = case.padding
    padded = np.full(
        (case.frames, case.ifm_height + 2 * padding, case.ifm_width + 2 * padding, case.channels),
        case.pad_value,
        dtype=np.int64,
    )
    padded[:, padding : padding + case.ifm_height, padding : padding + case.ifm_width] = images
    windows = []
    for oy in range(case.ofm_height):
        for ox in range(case.ofm_width):
            top, left = oy * case.stride, ox * case.stride
            window = padded[:, top : top + case.kernel_height, left : left + case.kernel_width, :]
            windows.append(window.reshape(case.frames, -1))  # (ky, kx, channel) order
    return np.concatenate(windows, axis=1)


def _pool_images(case):
    shape = (case.frames, case.ifm_height, case.ifm_width, case.channels)
    rng = _case_rng(case.name)
    if case.kind == ElementKind.BIPOLAR:
        return rng.choice([-1, 1], size=shape)
    low, high = packing.element_range(case.element_bits, case.kind)
    return rng.integers(low, high + 1, size=shape)


def _pool_reference(case):
    images = _pool_images(case)
    ofm_height = (case.ifm_height - case.kernel) // case.stride + 1
    ofm_width = (case.ifm_width - case.kernel) // case.stride + 1
    pooled = np.zeros((case.frames, ofm_height, ofm_width, case.channels), dtype=np.int64)
    for oy in range(ofm_height):
        for ox in range(ofm_width):
            top, left = oy * case.stride, ox * case.stride
            window = images[:, top : top + case.kernel, left : left + case.kernel, :]
            pooled[:, oy, ox, :] = window.max(axis=(1, 2))
    return pooled




@pytest.fixture(scope="module")
def window_folder(request, tmp_path_factory):
    """Build and run the program once and return the folder with every case's output files."""
    executable = build_test_program(
        "window_test.cpp.j2",
        {
            "window_cases": [dataclasses.asdict(case) for case in WINDOW_CASES],
            "pool_cases": [case.template_fields() for case in POOL_CASES],
        },
        build_root(request, tmp_path_factory),
    )
    folder = tmp_path_factory.mktemp("window-data")
    for case in WINDOW_CASES:
        codes = _window_images(case).reshape(case.frames, -1)
        words = packing.pack_words(codes, case.element_bits, ElementKind.UNSIGNED, case.simd)
        packing.write_words(folder / f"{case.name}.input", words)
    for case in POOL_CASES:
        values = _pool_images(case).reshape(case.frames, -1)
        words = packing.pack_words(values, case.element_bits, case.kind, case.pe)
        packing.write_words(folder / f"{case.name}.input", words)
    result = subprocess.run([str(executable), str(folder)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"window test program failed:\n{result.stderr}{result.stdout}"
    assert "WARNING" not in result.stdout, f"hls::stream warnings:\n{result.stdout}"
    return folder


def _assert_equal(actual, expected, description):
    assert actual.shape == expected.shape, f"{description}: shape {actual.shape}, expected {expected.shape}"
    mismatches = np.argwhere(actual != expected)
    assert mismatches.size == 0, (
        f"{description}: {len(mismatches)} mismatches, first at {tuple(mismatches[0])}: "
        f"expected {expected[tuple(mismatches[0])]}, got {actual[tuple(mismatches[0])]}"
    )


@pytest.mark.parametrize("case", WINDOW_CASES, ids=[case.name for case in WINDOW_CASES])
def test_sliding_window_matches_reference(case, window_folder):
    words = packing.read_words(window_folder / f"{case.name}.output", case.simd * case.element_bits)
    actual = packing.unpack_words(words, case.element_bits, ElementKind.UNSIGNED, case.simd)
    _assert_equal(actual.reshape(case.frames, -1), _window_reference(case), f"{case}")


@pytest.mark.parametrize("case", POOL_CASES, ids=[case.name for case in POOL_CASES])
def test_maxpool_matches_reference(case, window_folder):
    words = packing.read_words(window_folder / f"{case.name}.output", case.pe * case.element_bits)
    actual = packing.unpack_words(words, case.element_bits, case.kind, case.pe)
    expected = _pool_reference(case)
    _assert_equal(actual.reshape(expected.shape), expected, f"{case}")
