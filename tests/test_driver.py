"""The generated PYNQ driver, run from its deploy folder against a stand-in pynq package.

tests/fake_pynq/pynq provides Overlay and allocate. Its DMA transfers feed the compiled
C-simulation testbench of the project, so the driver's packing, register writes, DMA sequence,
unpacking and post-processing run for real and are compared with the golden model. The driver runs
in a subprocess in which importing syq fails, as on a board without syq.
"""

import difflib
import inspect
import json
import subprocess
import sys

import numpy as np
import pytest

import deploy_projects as projects
from syq.bitstreams import deploy
from syq.generator import emitter, golden, packing
from syq.generator.csim import load_project
from syq.generator.hwgraph import InputQuant
from syq.generator.datatypes import DataType

IMAGES = 200
#: Runs driver.py like `python3 driver.py ...` on a board: the stand-in pynq first on sys.path and
#: every import of syq failing.
BOOTSTRAP = """
import runpy, sys
sys.modules["syq"] = None
sys.path.insert(0, sys.argv[1])
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def pristine(request, tmp_path_factory):
    return projects.tfc_project(request, tmp_path_factory)


@pytest.fixture(scope="module")
def executable(request, tmp_path_factory):
    return projects.compiled_testbench(request, tmp_path_factory)


@pytest.fixture(scope="module")
def deployed(pristine, tmp_path_factory):
    """A deploy folder with placeholder .bit and .hwh files (the stand-in overlay checks both)."""
    project = projects.copy_project(pristine, tmp_path_factory.mktemp("driver") / "tfc")
    result = deploy.write_deploy(project)
    result["bitfile"].write_text("placeholder bitstream")
    result["hwh"].write_text("placeholder hardware handoff")
    return result["folder"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The first IMAGES MNIST test images (uint8, N x 1 x 28 x 28) and labels, saved as .npy."""
    from syq.training.datasets import load_dataset

    images, labels = load_dataset("mnist-subset").split("test")
    folder = tmp_path_factory.mktemp("mnist")
    np.save(folder / "images.npy", images[:IMAGES])
    np.save(folder / "labels.npy", labels[:IMAGES])
    return images[:IMAGES], labels[:IMAGES], folder


def run_driver(folder, arguments, executable, cwd, **environment):
    """Run driver.py of `folder` with the stand-in pynq; return the completed process."""
    env = {"PATH": "/usr/bin:/bin", "FAKE_PYNQ_TESTBENCH": str(executable), "FAKE_PYNQ_AXI_BITS": "64,64"}
    env.update({f"FAKE_PYNQ_{name.upper()}": str(value) for name, value in environment.items()})
    return subprocess.run([sys.executable, "-c", BOOTSTRAP, str(projects.FAKE_PYNQ),
                           str(folder / "driver.py"), *arguments],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


# ---- the deployed code is syq's code --------------------------------------------------------


def test_runtime_copies_are_generator_code(deployed):
    runtime = deployed / deploy.RUNTIME_PACKAGE
    original = inspect.getsource(packing).splitlines(keepends=True)
    copied = (runtime / "packing.py").read_text().splitlines(keepends=True)
    changes = [line for line in difflib.unified_diff(original, copied, n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changes == ["-from syq.errors import SyqError\n", "+from .errors import SyqError\n"]

    from syq import errors
    assert (runtime / "errors.py").read_text() == inspect.getsource(errors)

    interface_source = (runtime / "interface.py").read_text()
    assert interface_source.endswith(inspect.getsource(emitter.Interface))
    assert "from . import packing" in interface_source


def test_runtime_code_matches_package_data(deployed):
    for path in sorted(deploy.RUNTIME_DIR.glob("*.py")):
        assert (deployed / deploy.RUNTIME_PACKAGE / path.name).read_text() == path.read_text()


# ---- the driver against C-simulation ---------------------------------------------------------


def test_driver_bit_exact_on_200_images(deployed, dataset, executable, pristine, tmp_path):
    images, labels, folder = dataset
    results = tmp_path / "results.npz"
    run = run_driver(deployed, ["--input", str(folder / "images.npy"), "--batch", "64",
                                "--labels", str(folder / "labels.npy"), "--output", str(results)],
                     executable, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "frames              200" in run.stdout
    assert "frames/s" in run.stdout

    _, graph, _ = load_project(pristine)
    expected_raw, _ = golden.run(graph, golden.pixel_input_codes(graph, images))
    output = np.load(results)
    mismatches = int(np.any(output["raw"] != expected_raw, axis=1).sum())
    assert output["raw"].shape == expected_raw.shape
    assert mismatches == 0
    expected_scores = golden.post_process(graph, expected_raw)
    assert np.array_equal(output["scores"], expected_scores)
    assert np.array_equal(output["labels"], expected_scores.argmax(axis=1))
    accuracy = float(np.mean(output["labels"] == labels))
    assert f"accuracy            {100.0 * accuracy:.2f} %" in run.stdout
    assert accuracy > 0.9


def test_driver_reads_folder_of_float_files(deployed, dataset, executable, pristine, tmp_path):
    images, _, _ = dataset
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    floats = images[:5].astype(np.float32) / np.float32(255.0)
    np.save(inputs / "a.npy", floats[0])  # one image without the batch axis
    np.save(inputs / "b.npy", floats[1:5])
    results = tmp_path / "results.npz"
    run = run_driver(deployed, ["--input", str(inputs), "--batch", "3", "--output", str(results)],
                     executable, tmp_path)
    assert run.returncode == 0, run.stderr
    _, graph, _ = load_project(pristine)
    expected_raw, _ = golden.run(graph, golden.input_codes(graph, floats))
    assert np.array_equal(np.load(results)["raw"], expected_raw)

    np.save(inputs / "c.npy", images[5:7])  # uint8 next to float files
    run = run_driver(deployed, ["--input", str(inputs)], executable, tmp_path)
    assert run.returncode == 2
    assert "mixes integer pixel files and float files" in run.stderr


def test_driver_prefers_overlay_register_map(deployed, dataset, executable, tmp_path):
    _, _, folder = dataset
    config = json.loads((deployed / "accelerator.json").read_text())
    assert config["registers"]["frames"] == 0x10
    # The overlay's register map puts `frames` at 0x18: the driver must follow it.
    run = run_driver(deployed, ["--input", str(folder / "images.npy"), "--batch", "200"],
                     executable, tmp_path, frames_offset="0x18")
    assert run.returncode == 0, run.stderr
    # Without a register map, the driver uses accelerator.json, which the hardware rejects here.
    run = run_driver(deployed, ["--input", str(folder / "images.npy"), "--batch", "200"],
                     executable, tmp_path, frames_offset="0x18", register_map="0")
    assert run.returncode != 0
    assert "write to 0x10, which is no register of the accelerator" in run.stderr


def test_driver_errors_are_one_line(deployed, dataset, executable, tmp_path):
    _, _, folder = dataset
    run = run_driver(deployed, ["--input", str(folder / "images.npy"), "--batch", "1000000"],
                     executable, tmp_path)
    assert run.returncode == 2
    assert "exceeds one DMA transfer" in run.stderr
    run = run_driver(deployed, ["--input", str(folder / "images.npy"), "--bitfile",
                                str(tmp_path / "missing.bit")], executable, tmp_path)
    assert run.returncode == 2
    assert "missing.bit not found" in run.stderr
    run = run_driver(deployed, ["--input", str(tmp_path / "none.npy")], executable, tmp_path)
    assert run.returncode == 2
    assert "none.npy not found" in run.stderr


# ---- host-side quantization equals the golden model ------------------------------------------


@pytest.fixture
def preprocess(deployed, monkeypatch):
    """The deployed syq_runtime.preprocess module, imported from the deploy folder."""
    monkeypatch.syspath_prepend(str(deployed))
    for name in [name for name in sys.modules if name.startswith(deploy.RUNTIME_PACKAGE)]:
        monkeypatch.delitem(sys.modules, name)
    import syq_runtime.preprocess as module
    yield module
    for name in [name for name in sys.modules if name.startswith(deploy.RUNTIME_PACKAGE)]:
        del sys.modules[name]


QUANTIZERS = [
    dict(bits=2, signed=False, narrow=False, rounding_mode="ROUND", scale=0.3333),
    dict(bits=4, signed=True, narrow=True, rounding_mode="ROUND", scale=0.125),
    dict(bits=8, signed=True, narrow=False, rounding_mode="FLOOR", scale=1 / 127),
    dict(bits=3, signed=True, narrow=False, rounding_mode="CEIL", scale=0.25),
    dict(bits=5, signed=False, narrow=True, rounding_mode="HALF_UP", scale=0.0625),
    dict(bits=6, signed=True, narrow=False, rounding_mode="HALF_DOWN", scale=0.5),
    dict(bits=4, signed=True, narrow=False, rounding_mode="UP", scale=0.2),
    dict(bits=4, signed=True, narrow=False, rounding_mode="DOWN", scale=0.2),
    dict(bits=1, signed=True, narrow=False, rounding_mode="ROUND", scale=1.0),
]


@pytest.mark.parametrize("quantizer", QUANTIZERS, ids=lambda q: f"{q['bits']}bit-{q['rounding_mode']}")
def test_quantizer_matches_golden(preprocess, quantizer):
    spec = InputQuant(mode="quant", output_type=DataType("int", quantizer["bits"]),
                      input_shape=(3, 4, 5), channels=3, scale=quantizer["scale"],
                      signed=quantizer["signed"], narrow=quantizer["narrow"], bits=quantizer["bits"],
                      rounding_mode=quantizer["rounding_mode"])
    rng = np.random.default_rng(quantizer["bits"])
    values = rng.uniform(-3, 3, (40, 3, 4, 5)).astype(np.float32)
    # Half-way points between codes, where the rounding modes differ.
    values[0, 0] = (np.arange(-10, 10).reshape(4, 5) * 0.5 * quantizer["scale"]).astype(np.float32)
    config = {"mode": "quant", "input_shape": [3, 4, 5], "channels": 3, "scale": spec.scale,
              "signed": spec.signed, "narrow": spec.narrow, "bits": spec.bits,
              "rounding_mode": spec.rounding_mode, "bipolar": False}
    assert np.array_equal(preprocess.quantize(config, values), golden.quantize_values(spec, values))

    class Graph:
        input_quant = spec

    assert np.array_equal(preprocess.input_codes(config, values), golden.input_codes(Graph, values))
    pixels = rng.integers(0, 256, (6, 3, 4, 5)).astype(np.uint8)
    assert np.array_equal(preprocess.input_codes(config, pixels), golden.pixel_input_codes(Graph, pixels))


def test_pixel_inputs_match_golden(preprocess, deployed, pristine, dataset):
    images = dataset[0][:50]
    graph = load_project(pristine)[1]
    spec = json.loads((deployed / "accelerator.json").read_text())["input"]
    assert spec["mode"] == "pixels"
    assert np.array_equal(preprocess.input_codes(spec, images), golden.pixel_input_codes(graph, images))
    floats = images.astype(np.float32) / np.float32(255.0)
    assert np.array_equal(preprocess.input_codes(spec, floats), golden.input_codes(graph, floats))
    with pytest.raises(preprocess.SyqError, match="not 8-bit pixel values"):
        preprocess.input_codes(spec, floats * 0.5 + 0.001)
    with pytest.raises(preprocess.SyqError, match="do not hold images of 784 elements"):
        preprocess.input_codes(spec, images.reshape(50, -1)[:, :700])
