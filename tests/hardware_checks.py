"""Shared steps of the end-to-end hardware tests: fold, generate, C-simulate, compare with qonnx."""

import concurrent.futures

import numpy as np

from syq.bitstreams.boards import get_board
from syq.generator import csim, emitter, folding, golden
from syq.generator.hwgraph import MVAU, MaxPool, Thresholding
from syq.generator.inputs import Inputs

BOARD = get_board("pynq-z2")
# Two g++ builds at a time: the test machines have two cores.
WORKERS = 2


def fold_for_fast_build(graph, max_pe=4, word_bits=64):
    """Give every unit the widest folding whose weight words fit in `word_bits`, with PE <= max_pe.

    g++ builds large weight tables slowly when their words are wider than 64 bits, because those
    are ap_uint constants parsed from strings. Words of at most 64 bits with as many lanes as fit
    keep both the word count and the build time of a CNV-sized project low.
    """
    for unit in graph.nodes:
        if isinstance(unit, MVAU):
            pe = max(value for value in folding.valid_pe(graph, unit) if value <= max_pe)
            simd = max(value for value in folding.valid_simd(graph, unit)
                       if value * unit.weight_type.bits <= word_bits)
            folding.set_mvau_folding(graph, unit, pe, simd)
        elif isinstance(unit, (MaxPool, Thresholding)):
            unit.pe = max(value for value in folding.valid_pe(graph, unit) if value <= max_pe)
    return graph


def simulate(graph, folder, floats):
    """Generate the project of a folded `graph` and C-simulate it on float inputs.

    Returns (C-sim results, golden raw outputs) for the same input codes.
    """
    emitter.generate_project(graph, BOARD, folder)
    stream = golden.input_codes(graph, floats)
    results = csim.simulate(folder, Inputs(floats, stream))
    expected, _ = golden.run(graph, stream)
    return results, expected


def run_parallel(jobs):
    """Run a dict of name -> zero-argument callables on WORKERS threads; return name -> result."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def assert_golden_equals_qonnx(report):
    """Assert that every compared tensor and every label of a verify report agree exactly."""
    for layer in report["layers"]:
        assert layer["mismatches"] == 0, layer
    assert report["label_mismatches"] == 0
    assert report["scores_within_tolerance"], report["relative_score_difference"]
    assert report["unexplained_differences"] == 0


def assert_csim_equals_golden(results, expected, images):
    """Assert that C-simulation ran every image and reproduced the golden outputs exactly."""
    assert results["images"] == images
    assert results["mismatches"] == 0, results["first_mismatch"]
    assert np.array_equal(np.array(results["outputs"]), expected)


def degenerate_units(graph, stream):
    """Return the names of thresholded units whose output takes a single value on `stream`."""
    _, captured = golden.run(graph, stream, capture=True)
    return [unit.name for unit in graph.nodes
            if isinstance(unit, (MVAU, Thresholding)) and unit.thresholds is not None and
            len(np.unique(captured[unit.name])) < 2]
