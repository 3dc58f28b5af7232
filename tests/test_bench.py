"""Benchmark scripts in bench/: their --quick versions run and produce sane, well-formed results.

The scripts run as separate processes, two at a time, on one shared quickly trained TFC model.
The checks are on correctness (labels equal, cycle counts reproduced, outputs bit-exact), not on
the speed or accuracy targets, which are goals recorded in docs/benchmarks.md.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH_DIR))

# Importing bench/common.py pins the BLAS threads of processes started later: keep this
# process's environment as it was, since the scripts set it for themselves.
_environment = dict(os.environ)
import common  # noqa: E402
import run_all  # noqa: E402

os.environ.clear()
os.environ.update(_environment)

SCRIPTS = ("accuracy", "golden_vs_qonnx", "csim_speed", "hls4ml_peer", "generate_speed",
           "estimates")
TAKES_MODEL = ("golden_vs_qonnx", "csim_speed", "hls4ml_peer")
PARALLEL = 2
TIMEOUT_SECONDS = 600


def _run_scripts(folder, model):
    """Run every script with --quick, PARALLEL at a time; return {script: (exit code, log)}."""
    pending = list(SCRIPTS)
    running = {}
    finished = {}
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while pending or running:
        while pending and len(running) < PARALLEL:
            script = pending.pop(0)
            command = common.python_command(f"{script}.py", "--quick", "--json",
                                            folder / f"{script}.json", "--workdir", folder / script)
            if script in TAKES_MODEL:
                command += ["--model", str(model)]
            if script == "accuracy":
                command += ["--workers", "1"]
            log = open(folder / f"{script}.log", "w")
            running[script] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log)
        for script, (process, log) in list(running.items()):
            if process.poll() is None and time.monotonic() > deadline:
                process.kill()
                process.wait()
            if process.poll() is not None:
                log.close()
                finished[script] = (process.returncode, (folder / f"{script}.log").read_text())
                del running[script]
        time.sleep(0.2)
    return finished


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Return {script: result dict} of every quick benchmark."""
    folder = tmp_path_factory.mktemp("bench")
    # Trained in its own process, because training limits torch to one thread per process.
    code = (f"import sys; sys.path.insert(0, {str(BENCH_DIR)!r}); import common; "
            f"print(common.trained_tfc_model({str(folder)!r}, quick=True))")
    model = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip().splitlines()[-1]
    finished = _run_scripts(folder, model)
    results = {}
    for script, (code, log) in finished.items():
        assert code == 0, f"bench/{script}.py --quick failed with exit code {code}:\n{log[-3000:]}"
        results[script] = json.loads((folder / f"{script}.json").read_text())
    return results


def test_accuracy_quick_runs_every_quantizer(quick):
    result = quick["accuracy"]
    planned = {(row["model"], row["weight_bits"], row["quantizer"]) for row in result["summary"]}
    assert planned == {
        ("tfc", 2, "SYQ layer"), ("tfc", 2, "SYQ channel"), ("tfc", 2, "const (bnn_pynq)"),
        ("tfc", 2, "learned per-channel"), ("tfc", 2, "float"),
        ("tfc", 1, "SYQ layer"), ("tfc", 1, "SYQ channel"), ("tfc", 1, "const (bnn_pynq)"),
        ("tfc", 1, "learned per-channel"), ("cnv28", 2, "SYQ pixel")}
    assert len(result["runs"]) == len(planned)


def test_accuracy_quick_values_sane(quick):
    summary = {(row["model"], row["weight_bits"], row["quantizer"]): row
               for row in quick["accuracy"]["summary"]}
    for row in summary.values():
        assert 0.0 <= row["mean"] <= 1.0, row
        assert row["sd"] == 0.0, row  # one seed
        assert row["mean"] == row["accuracies"][0], row
    # Ten classes: chance is 0.1. Twelve TFC training steps already get well above it.
    assert summary[("tfc", 2, "SYQ channel")]["mean"] > 0.3
    assert summary[("tfc", 2, "float")]["mean"] > 0.3
    assert summary[("tfc", 2, "const (bnn_pynq)")]["points_over_const"] == 0.0


def test_accuracy_markdown_has_tables(quick):
    import accuracy

    text = accuracy.to_markdown(quick["accuracy"])
    assert "| weights | quantizer | mean %" in text
    assert "SYQ channel" in text
    assert "Target (SYQ at least 1 point above the const baseline)" in text


def test_golden_vs_qonnx_labels_identical(quick):
    rows = quick["golden_vs_qonnx"]["rows"]
    assert [row["model"] for row in rows] == ["SYQ TFC-w2a2 (channel)",
                                              "bnn_pynq TFC_2W2A (QONNX zoo)"]
    for row in rows:
        assert row["images"] == 500, row["model"]
        assert row["label_mismatches"] == 0, row["model"]
        assert row["single_label_mismatches"] == 0, row["model"]
        assert row["relative_score_difference"] < 1e-5, row["model"]
        assert row["accuracy_golden"] == row["accuracy_qonnx"], row["model"]


def test_golden_vs_qonnx_timings_sane(quick):
    for row in quick["golden_vs_qonnx"]["rows"]:
        assert row["golden_seconds"] > 0, row["model"]
        assert row["qonnx_single_images"] == 50, row["model"]
        extrapolated = row["qonnx_single_seconds_measured"] * row["images"] / 50
        assert row["qonnx_single_seconds_extrapolated"] == pytest.approx(extrapolated)
        assert row["speedup_batched"] == pytest.approx(row["qonnx_batched_seconds"] /
                                                       row["golden_seconds"])
        # One execute_onnx call per image costs far more than the vectorised golden model.
        assert row["speedup_single"] > 1, row["model"]


def test_csim_speed_bit_exact_and_cached(quick):
    (row,) = quick["csim_speed"]["rows"]
    assert row["images"] == 200
    assert row["mismatches"] == 0
    assert row["label_mismatches_golden"] == 0
    assert row["images_per_second"] > 0
    assert row["compile_cached_seconds"] < row["compile_cold_seconds"] / 2


def test_hls4ml_peer_converts_and_agrees(quick):
    (row,) = quick["hls4ml_peer"]["rows"]
    attempts = row["hls4ml_attempts"]
    assert attempts[-1]["error"] is None, attempts
    for attempt in attempts[:-1]:
        assert attempt["error"], attempt
    assert [entry["precision"] for entry in row["hls4ml"]] == ["fixed<32,16>"]
    assert row["hls4ml"][0]["label_agreement_qonnx"] >= 0.9
    assert row["syq"]["label_agreement_qonnx"] == 1.0
    assert row["syq"]["mismatches_golden"] == 0


def test_generate_speed_tfc_project(quick):
    (row,) = quick["generate_speed"]["rows"]
    assert row["model"] == "tfc"
    assert row["units"] == 4
    assert row["files"] > 10
    assert row["fits_budget"] is True
    assert row["command_seconds"] > row["lowering_seconds"]


def test_estimates_reproduce_finn_bottlenecks(quick):
    finn = quick["estimates"]["finn"]
    zoo = finn["bnn_pynq TFC_2W2A"]
    assert [unit["cycles"] for unit in zoo["units"]] == [16, 64, 64, 64, 8]
    assert zoo["max_cycles"] == 64
    assert finn["SYQ TFC-w2a2"]["max_cycles"] == 64
    cnv = finn["SYQ CNV-w2a2"]
    assert cnv["max_cycles"] == 115_200
    assert cnv["bottleneck"] == "layer3"
    layer3 = next(unit for unit in cnv["units"] if unit["name"] == "layer3")
    assert (layer3["pe"], layer3["simd"]) == (8, 16)


def test_estimates_search_fits_budget(quick):
    search = quick["estimates"]["search"]
    for name in ("bnn_pynq TFC_2W2A", "SYQ TFC-w2a2"):
        assert search[name]["fits"], name
        assert search[name]["fps"] == pytest.approx(100e6 / search[name]["max_cycles"])
    assert search["SYQ TFC-w2a2, folded for FINN's 64 cycles"]["max_cycles"] <= 64
    assert search["SYQ TFC-w2a2, folded for 10 M frames/s"]["max_cycles"] <= 10


def test_run_all_page_lists_machine_and_sections(quick):
    machine = common.machine_description()
    sections = []
    for module, title, _, notes in run_all.BENCHMARKS:
        markdown = __import__(module).to_markdown(quick[module])
        sections.append((title, notes, 1.0, markdown))
    page = run_all.render_page(machine, sections, run_all.datetime.datetime(2026, 1, 1, 12, 0),
                               run_all.datetime.datetime(2026, 1, 1, 12, 30), 1800.0, True,
                               "`make bench`", quick)
    assert page.startswith("# Benchmarks\n")
    assert "- FINN folding, SYQ CNV-w2a2: 115,200-cycle bottleneck (reproduces FINN's 115,200)." \
        in page
    assert f"| CPU | {machine['cpu']}, {machine['cores']} cores |" in page
    assert "| total wall time | 30.0 min |" in page
    for _, title, _, _ in run_all.BENCHMARKS:
        assert f"## {title}" in page
