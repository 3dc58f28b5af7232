"""Generated projects: a random grid of MVAUs through emitter, g++ C-simulation and golden model."""

import concurrent.futures
import dataclasses
import json

import numpy as np
import pytest

from syq.bitstreams.boards import get_board
from syq.errors import SyqError
from syq.generator import csim, emitter, estimate, folding, golden, serialize
from syq.generator.datatypes import BIPOLAR, DataType, signed_bits_for
from syq.generator.hwgraph import MVAU, HardwareGraph, InputQuant, PostProcess
from syq.generator.inputs import Inputs
from paths import ZOO_DIR
from syq.generator.lowering import lower_file

ZOO = ZOO_DIR


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    rows: int
    columns: int
    pe: int
    simd: int
    input_type: DataType
    weight_type: DataType
    thresholds: int  # 0: raw accumulator output
    vectors: int = 1
    positions: int = 0  # > 0: per-position scales over `columns // positions` columns each


CASES = [
    Case("ternary_uint2_fold", 12, 18, 3, 6, DataType("uint", 2), DataType("int", 2), 3),
    Case("ternary_uint8_raw", 10, 64, 5, 16, DataType("uint", 8), DataType("int", 2), 0),
    Case("binary_signed4", 8, 20, 8, 4, DataType("int", 4), BIPOLAR, 7, vectors=3),
    Case("xnor_bipolar", 16, 32, 4, 32, BIPOLAR, BIPOLAR, 1),
    Case("xnor_raw_serial", 6, 24, 1, 1, BIPOLAR, BIPOLAR, 0),
    Case("int4_uint1", 9, 15, 9, 5, DataType("uint", 1), DataType("int", 4), 2),
    Case("int8_int8_raw", 4, 12, 2, 3, DataType("int", 8), DataType("int", 8), 0),
    Case("ternary_signed3_full", 6, 10, 6, 10, DataType("int", 3), DataType("int", 2), 3, vectors=2),
    Case("ternary_positions", 8, 36, 4, 2, DataType("uint", 2), DataType("int", 2), 3, positions=9),
    Case("xnor_positions", 4, 18, 2, 3, BIPOLAR, BIPOLAR, 1, vectors=2, positions=6),
    Case("ternary_bipolar_input", 10, 30, 2, 15, BIPOLAR, DataType("int", 2), 2),
    Case("int8_uint5_thresholds", 5, 7, 1, 7, DataType("uint", 5), DataType("int", 8), 15),
]


def _random_values(rng, dtype, shape):
    if dtype.kind == "bipolar":
        return rng.choice([-1, 1], shape)
    if dtype.bits == 2 and dtype.kind == "int":  # ternary weights
        return rng.integers(-1, 2, shape)
    return rng.integers(dtype.min, dtype.max + 1, shape)


def _case_graph(case, seed):
    rng = np.random.default_rng(seed)
    weights = _random_values(rng, case.weight_type, (case.rows, case.columns))
    xnor = case.input_type.kind == "bipolar" and case.weight_type.kind == "bipolar"
    scales = rng.integers(1, 40, case.positions) if case.positions else None
    position_elements = case.columns // case.positions if case.positions else 0
    multiplier = np.repeat(scales, position_elements) if case.positions else np.ones(case.columns, np.int64)
    if xnor:
        low, high = np.zeros(case.rows), np.full(case.rows, multiplier.sum())
    else:
        products = np.stack([weights * case.input_type.min, weights * case.input_type.max])
        low = (products.min(axis=0) * multiplier).sum(axis=1)
        high = (products.max(axis=0) * multiplier).sum(axis=1)
    accumulator = DataType("int", signed_bits_for(int(low.min()), int(high.max())))
    thresholds = None
    output_type = accumulator
    offset = 0
    if case.thresholds:
        thresholds = np.sort(rng.integers(low[:, None] - 2, high[:, None] + 3,
                                          (case.rows, case.thresholds)), axis=1)
        thresholds = np.clip(thresholds, low[:, None], high[:, None] + 1).astype(np.int64)
        if case.thresholds == 1 and rng.integers(2):
            output_type = BIPOLAR
        else:
            offset = int(rng.integers(-2, 2))
            output_type = DataType("int", signed_bits_for(offset, offset + case.thresholds))
    unit = MVAU(name="layer0", weights=weights.astype(np.int64), weight_type=case.weight_type,
                input_type=case.input_type, num_vectors=case.vectors, accumulator_type=accumulator,
                output_type=output_type, thresholds=thresholds,
                threshold_type=DataType("int", accumulator.bits + 1) if case.thresholds else None,
                output_offset=offset, position_scales=scales, position_elements=position_elements,
                scale_bits=int(scales.max()).bit_length() if case.positions else 0, xnor=xnor,
                pe=case.pe, simd=case.simd)
    spec = InputQuant(mode="quant", output_type=case.input_type,
                      input_shape=(case.columns * case.vectors,), channels=1)
    outputs = case.rows * case.vectors
    post = PostProcess(scale=np.ones(outputs), bias=np.zeros(outputs))
    return HardwareGraph(case.name, spec, [unit], post)


def _simulate_case(case, folder):
    graph = _case_graph(case, seed=abs(hash(case.name)) % 1000)
    emitter.generate_project(graph, get_board("pynq-z2"), folder / case.name)
    rng = np.random.default_rng(1)
    stream = _random_values(rng, case.input_type, (40, case.columns * case.vectors)).astype(np.int64)
    results = csim.simulate(folder / case.name, Inputs(stream.astype(np.float32), stream))
    expected, _ = golden.run(graph, stream)
    return results, expected


@pytest.fixture(scope="module")
def grid_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grid")
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {case.name: pool.submit(_simulate_case, case, folder) for case in CASES}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_csim_equals_golden(grid_results, case):
    results, expected = grid_results[case.name]
    assert results["images"] == 40
    assert results["mismatches"] == 0
    assert np.array_equal(np.array(results["outputs"]), expected)


def test_project_has_every_file(tmp_path):
    graph = _case_graph(CASES[0], seed=3)
    manifest = emitter.generate_project(graph, get_board("pynq-z2"), tmp_path / "project")
    project = tmp_path / "project"
    for name in ("src/top.cpp", "src/top.hpp", "src/testbench.cpp", "src/params/layer0.hpp",
                 "include/syq/mvau.hpp", "run_hls.tcl", "README.md", "manifest.json", "graph.json",
                 "graph.npz"):
        assert (project / name).is_file(), name
    top = (project / "src" / "top.cpp").read_text()
    assert "#pragma HLS DATAFLOW" in top
    assert json.loads((project / "manifest.json").read_text())["folding"] == manifest["folding"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["project"]


def test_graph_round_trips_through_files(tmp_path):
    graph = _case_graph(CASES[8], seed=5)
    serialize.save_graph(graph, tmp_path / "g.json", tmp_path / "g.npz")
    loaded = serialize.load_graph(tmp_path / "g.json", tmp_path / "g.npz")
    stream = np.random.default_rng(0).integers(0, 4, (10, 36))
    assert np.array_equal(golden.run(graph, stream)[0], golden.run(loaded, stream)[0])
    assert loaded.nodes[0].position_scales.tolist() == graph.nodes[0].position_scales.tolist()


def test_zoo_models_csim_sample(tmp_path):
    from syq.generator.inputs import from_dataset

    for name in ("TFC_2W2A", "TFC_1W1A"):
        graph, _ = lower_file(f"{ZOO}/{name}.onnx")
        folding.fold_fastest(graph, get_board("pynq-z2"))
        emitter.generate_project(graph, get_board("pynq-z2"), tmp_path / name)
        results = csim.simulate(tmp_path / name, from_dataset(graph, "mnist-subset", "all", limit=300))
        assert results["mismatches"] == 0, name
        assert results["accuracy"] == results["accuracy_golden"], name


def test_published_tfc_folding_gives_64_cycles():
    graph, _ = lower_file(f"{ZOO}/TFC_2W2A.onnx")
    folding.apply_folding(graph, {"input_thresholds": {"pe": 49}, "layer0": {"pe": 16, "simd": 49},
                                  "layer1": {"pe": 8, "simd": 8}, "layer2": {"pe": 8, "simd": 8},
                                  "layer3": {"pe": 10, "simd": 8}})
    report = estimate.estimate_graph(graph, get_board("pynq-z2"))
    assert [unit["cycles"] for unit in report["units"]] == [16, 64, 64, 64, 8]
    assert report["max_cycles"] == 64
    assert report["fps"] == pytest.approx(100e6 / 64)


def test_invalid_folding_lists_divisors():
    graph, _ = lower_file(f"{ZOO}/TFC_2W2A.onnx")
    with pytest.raises(SyqError, match=r"simd 5 of layer1 is invalid; valid values: 1, 2, 4, 8, 16, 32, 64"):
        folding.apply_folding(graph, {"layer1": {"pe": 4, "simd": 5}})
    with pytest.raises(SyqError, match="unknown unit 'layer9'"):
        folding.apply_folding(graph, {"layer9": {"pe": 1}})


def test_fold_for_fps_meets_target():
    graph, _ = lower_file(f"{ZOO}/TFC_2W2A.onnx")
    board = get_board("pynq-z2")
    folding.fold_for_fps(graph, board, 500_000)
    report = estimate.estimate_graph(graph, board)
    assert report["fps"] >= 500_000
    slower = estimate.estimate_graph(folding.fold_for_fps(lower_file(f"{ZOO}/TFC_2W2A.onnx")[0],
                                                          board, 50_000), board)
    assert slower["total"]["lut"] < report["total"]["lut"]


def test_fastest_folding_fits_budget():
    graph, _ = lower_file(f"{ZOO}/TFC_2W2A.onnx")
    board = get_board("pynq-z2")
    folding.fold_fastest(graph, board)
    assert estimate.fits(graph, board)


def test_csim_reports_failing_build(tmp_path):
    graph = _case_graph(CASES[0], seed=3)
    emitter.generate_project(graph, get_board("pynq-z2"), tmp_path / "project")
    (tmp_path / "project" / "src" / "params" / "layer0.hpp").write_text("this is not C++\n")
    stream = np.zeros((2, CASES[0].columns), np.int64)
    with pytest.raises(SyqError, match="layer0.hpp|top.cpp"):
        csim.simulate(tmp_path / "project", Inputs(stream.astype(np.float32), stream))


def test_csim_without_compiler(tmp_path, monkeypatch):
    graph = _case_graph(CASES[0], seed=3)
    emitter.generate_project(graph, get_board("pynq-z2"), tmp_path / "project")
    monkeypatch.setenv("PATH", str(tmp_path))
    stream = np.zeros((2, CASES[0].columns), np.int64)
    with pytest.raises(SyqError, match="g\\+\\+"):
        csim.simulate(tmp_path / "project", Inputs(stream.astype(np.float32), stream))


def test_csim_of_non_project_rejected(tmp_path):
    with pytest.raises(SyqError, match="not a syq project"):
        csim.load_project(tmp_path)
