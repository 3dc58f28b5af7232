"""Brevitas bnn_pynq-style TFC and CNV networks, built here with random weights, end to end.

The networks follow the bnn_pynq recipe through our training options. Weights have a constant
scale (binary +-1 or narrow ternary). Pixels are mapped to 2x - 1 and quantized to signed codes
(8 bits for CNV). Batch norm precedes signed activations in [-1, 1], which are a sign for 1 bit.
Batch-norm statistics come from forward passes in train mode on random images, so the
activations use their levels. Each network is exported to QONNX and checked against PyTorch,
lowered, and C-simulated on a few images. C-sim must equal the golden model, and the golden labels
must equal qonnx's.
"""

import concurrent.futures

import numpy as np
import pytest
import torch
from torch import nn

from hardware_checks import (assert_csim_equals_golden, assert_golden_equals_qonnx,
                             degenerate_units, fold_for_fast_build, simulate)
from syq.generator import golden, verify
from syq.generator.lowering import lower
from syq.training import baselines
from syq.training.export import check_export, export_to_qonnx
from syq.training.models import QuantSpec, build_model

INPUT_SHAPES = {"tfc": (1, 28, 28), "cnv": (3, 32, 32)}
# (model, weight bits, activation bits) -> images to simulate. CNV gets few images because its
# C-simulation runs at a few images per second at most.
CASES = {("tfc", 1, 1): 16, ("tfc", 2, 2): 16, ("cnv", 1, 1): 2, ("cnv", 2, 2): 2}
CASE_IDS = [f"{model}_w{weights}a{activations}" for model, weights, activations in CASES]
CALIBRATION_BATCHES = 3
CALIBRATION_BATCH_SIZE = 16


def build_bnn_pynq(model_name, weight_bits, act_bits, seed):
    """Return a bnn_pynq-style network in eval mode with calibrated batch-norm statistics."""
    torch.manual_seed(seed)
    spec = QuantSpec(weight_bits=weight_bits, act_bits=act_bits, weight_quant="const",
                     act_quant="bnn-pynq", input_quant="bnn-pynq")
    shape = INPUT_SHAPES[model_name]
    model = build_model(model_name, shape, 10, spec)
    baselines.prepare(model, spec)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.momentum = None  # cumulative average over the calibration passes
    rng = np.random.default_rng(seed)
    model.train()
    with torch.no_grad():
        for _ in range(CALIBRATION_BATCHES):
            pixels = rng.integers(0, 256, (CALIBRATION_BATCH_SIZE,) + shape)
            model(torch.from_numpy(pixels.astype(np.float32) / np.float32(255)))
    return model.eval()


def _prepare(case, seed, folder):
    model_name, weight_bits, act_bits = case
    name = f"{model_name}_w{weight_bits}a{act_bits}"
    images = np.random.default_rng(100 + seed).integers(
        0, 256, (CASES[case],) + INPUT_SHAPES[model_name]).astype(np.uint8)
    floats = images.astype(np.float32) / np.float32(255)
    model = build_bnn_pynq(model_name, weight_bits, act_bits, seed)
    exported = export_to_qonnx(model, folder / f"{name}.onnx")
    graph = lower(exported, name)
    fold_for_fast_build(graph, max_pe=4 if model_name == "cnv" else 8)
    return {"graph": graph, "images": len(images), "check": check_export(model, exported, images),
            "report": verify.verify(graph, exported, floats),
            "degenerate": degenerate_units(graph, golden.pixel_input_codes(graph, images)),
            "job": lambda: simulate(graph, folder / name, floats)}


def _build_networks(cases, folder):
    """Build, export and verify each network, C-simulating each one while the next is built."""
    prepared, futures = {}, {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for case in cases:
            # g++ runs in the pool while Python prepares the next network.
            prepared[case] = _prepare(case, list(CASES).index(case), folder)
            futures[case] = pool.submit(prepared[case]["job"])
        for case, future in futures.items():
            prepared[case]["csim"], prepared[case]["expected"] = future.result()
    return prepared


@pytest.fixture(scope="module")
def tfc_networks(tmp_path_factory):
    cases = [case for case in CASES if case[0] == "tfc"]
    return _build_networks(cases, tmp_path_factory.mktemp("bnn-pynq-tfc"))


@pytest.fixture(scope="module")
def cnv_networks(tmp_path_factory):
    cases = [case for case in CASES if case[0] == "cnv"]
    return _build_networks(cases, tmp_path_factory.mktemp("bnn-pynq-cnv"))


def _network(request, case):
    """Return the prepared network of `case`, building only its model family (TFC or CNV)."""
    return request.getfixturevalue(f"{case[0]}_networks")[case]


def _marks(case):
    return [pytest.mark.slow] if case[0] == "cnv" else []


PARAMS = [pytest.param(case, id=name, marks=_marks(case)) for case, name in zip(CASES, CASE_IDS)]


@pytest.mark.parametrize("case", PARAMS)
def test_export_keeps_weight_codes(request, case):
    entry = _network(request, case)
    check = entry["check"]
    assert check["weight_codes_equal"]
    assert check["weight_layers_checked"] == len(entry["graph"].mvaus)
    assert check["unexplained_differences"] == 0


@pytest.mark.parametrize("case", PARAMS)
def test_lowered_units(request, case):
    model_name, weight_bits, act_bits = case
    entry = _network(request, case)
    graph = entry["graph"]
    assert graph.input_quant.mode == "pixels"
    assert graph.nodes[0].output_type.name == ("INT8" if model_name == "cnv" else
                                               ("BIPOLAR" if act_bits == 1 else "INT2"))
    hidden = graph.mvaus[1:-1]
    assert all(unit.xnor == (weight_bits == act_bits == 1) for unit in hidden)
    assert all(unit.weight_type.name == ("BIPOLAR" if weight_bits == 1 else "INT2")
               for unit in graph.mvaus)
    assert entry["degenerate"] == []


@pytest.mark.parametrize("case", PARAMS)
def test_golden_equals_qonnx(request, case):
    report = _network(request, case)["report"]
    assert_golden_equals_qonnx(report)
    assert np.array_equal(report["golden_labels"], report["qonnx_labels"])


@pytest.mark.parametrize("case", PARAMS)
def test_csim_equals_golden(request, case):
    entry = _network(request, case)
    assert_csim_equals_golden(entry["csim"], entry["expected"], entry["images"])
    assert entry["csim"]["labels"] == entry["report"]["qonnx_labels"].tolist()
