"""C-simulation: compile a generated project with g++ and compare it with the golden model.

The testbench receives the AXI input words that the host would send, writes the accelerator's
output words and compares them with the golden model's, packed by the same code. Results go to
``PROJECT/csim/results.json``; builds are cached by content hash under ``PROJECT/csim``.
"""

import json
import logging
import subprocess
import time
from pathlib import Path

import numpy as np

from syq.errors import SyqError
from syq.generator import cpp_build, golden, packing, serialize
from syq.generator.emitter import interface_from_manifest, load_manifest
from syq.outputs import atomic_file

logger = logging.getLogger(__name__)

RESULTS_NAME = "results.json"
TIMEOUT_SECONDS_PER_FRAME = 5.0


def load_project(project):
    """Return (manifest, hardware graph, interface) of a generated project."""
    project = Path(project)
    manifest = load_manifest(project)
    graph = serialize.load_graph(project / "graph.json", project / "graph.npz")
    return manifest, graph, interface_from_manifest(manifest)


def build(project):
    """Compile the project's testbench (cached); return (executable path, seconds spent)."""
    project = Path(project)
    started = time.perf_counter()
    executable = cpp_build.compile_program(
        [project / "src" / "top.cpp", project / "src" / "testbench.cpp"],
        [project / "include", project / "src"], project / "csim")
    return executable, time.perf_counter() - started


def run_testbench(executable, interface, stream, expected_raw, folder):
    """Run the compiled testbench on an input stream; return (raw outputs, testbench summary)."""
    folder.mkdir(parents=True, exist_ok=True)
    input_path, output_path, expected_path = (folder / "input.bin", folder / "output.bin",
                                              folder / "expected.bin")
    packing.write_words(input_path, interface.pack_inputs(stream))
    packing.write_words(expected_path, interface.pack_outputs(expected_raw))
    if output_path.exists():
        output_path.unlink()
    timeout = 60 + TIMEOUT_SECONDS_PER_FRAME * len(stream)
    try:
        result = subprocess.run([str(executable), str(input_path), str(output_path), str(expected_path)],
                                capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SyqError(f"C-simulation of {len(stream)} frames timed out after {timeout:.0f} s; "
                       f"try --limit") from None
    if result.returncode not in (0, 1):
        message = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise SyqError(f"C-simulation testbench failed (exit code {result.returncode}): "
                       f"{message[-1] if message else 'no output'}")
    words = packing.read_words(output_path, interface.axi_output_bits)
    return interface.unpack_outputs(words), result.stdout


def simulate(project, inputs, progress_label="csim"):
    """Compile and run the project on `inputs` (generator.inputs.Inputs); write and return results."""
    project = Path(project)
    manifest, graph, interface = load_project(project)
    if inputs.stream.shape[1] != interface.input_frame_elements:
        raise SyqError(f"inputs have {inputs.stream.shape[1]} elements per frame, the project "
                       f"expects {interface.input_frame_elements}")
    logger.info("%s: compiling %s with g++", progress_label, project)
    executable, compile_seconds = build(project)
    expected_raw, _ = golden.run(graph, inputs.stream)
    logger.info("%s: simulating %d frames", progress_label, len(inputs.stream))
    started = time.perf_counter()
    raw, _ = run_testbench(executable, interface, inputs.stream, expected_raw, project / "csim")
    run_seconds = time.perf_counter() - started
    differing = np.any(raw != expected_raw, axis=1)
    scores = golden.post_process(graph, raw)
    labels = scores.argmax(axis=1)
    golden_labels = golden.post_process(graph, expected_raw).argmax(axis=1)
    results = {
        "project": str(project),
        "inputs": inputs.description,
        "images": int(len(raw)),
        "mismatches": int(differing.sum()),
        "first_mismatch": int(np.argmax(differing)) if differing.any() else None,
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "images_per_second": len(raw) / run_seconds if run_seconds > 0 else None,
        "executable": str(executable),
        "labels": labels.tolist(),
        "outputs": raw.tolist(),
    }
    if inputs.labels is not None:
        results["accuracy"] = float((labels == inputs.labels).mean()) if len(labels) else 0.0
        results["accuracy_golden"] = float((golden_labels == inputs.labels).mean()) if len(labels) else 0.0
    with atomic_file(project / "csim" / RESULTS_NAME, "w") as stream:
        json.dump(results, stream)
    return results
