"""`syq hls`: test data, the vendor tool run, report parsing and the co-simulation check.

The flow tests run `syq hls` against tests/tcl/bin/vitis_hls, a stand-in that executes run_hls.tcl
under tclsh with checked stand-ins of the HLS commands. Its csim_design and cosim_design run the
real C-simulation testbench, so the test data and the co-simulation comparison are the real ones.
Only the synthesis reports are fixtures (hand-written, tests/fixtures/hls_reports).
"""

import json
import os
import shutil
import stat

import numpy as np
import pytest

import deploy_projects as projects
from deploy_projects import restore_root_logging  # noqa: F401 (autouse fixture)
from syq.cli import main
from syq.errors import SyqError
from syq.generator import golden, inputs, vendor
from syq.generator.csim import load_project

UNITS = ["input_thresholds", "layer0", "layer1", "layer2", "layer3"]


@pytest.fixture(scope="module")
def pristine(request, tmp_path_factory):
    return projects.tfc_project(request, tmp_path_factory)


@pytest.fixture(scope="module")
def executable(request, tmp_path_factory):
    return projects.compiled_testbench(request, tmp_path_factory)


@pytest.fixture
def project(pristine, tmp_path):
    return projects.copy_project(pristine, tmp_path / "tfc")


@pytest.fixture(scope="module")
def images(pristine, tmp_path_factory):
    """20 MNIST test images as float pixel / 255 in an .npy file (for --inputs)."""
    data = inputs.load_inputs(load_project(pristine)[1], "mnist-subset", limit=20)
    path = tmp_path_factory.mktemp("images") / "images.npy"
    np.save(path, data.floats)
    return path


def _no_tools_path(tmp_path):
    """A PATH without any HLS tool (the tests of this machine may have one)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    return str(empty)


def _tool_environment(monkeypatch, executable, reports=projects.REPORT_FIXTURES):
    monkeypatch.setenv("PATH", f"{projects.STUB_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SYQ_STUB_TESTBENCH", str(executable))
    monkeypatch.setenv("SYQ_STUB_REPORTS", str(reports))


# ---- report parsing ------------------------------------------------------------------------


def test_csynth_top_report_fields():
    summary = vendor.parse_csynth_xml(projects.REPORT_FIXTURES / "csynth.xml")
    assert summary["module"] == "syq_top"
    assert summary["target_clock_ns"] == 10.0
    assert summary["estimated_clock_ns"] == 6.912
    assert summary["pipeline"] == "dataflow"
    assert summary["latency_worst"] is None  # "undef": the trip counts depend on `frames`
    assert summary["interval_max"] is None
    assert summary["resources"] == {"bram18": 0, "dsp": 0, "ff": 14208, "lut": 29876, "uram": 0}
    assert summary["available"]["lut"] == 53200


def test_synthesis_units_map_to_modules():
    report = vendor.parse_synthesis_reports(projects.REPORT_FIXTURES, "syq_top", UNITS)
    rows = {row["unit"]: row for row in report["units"]}
    assert [row["unit"] for row in report["units"]] == UNITS
    assert rows["layer0"]["module"] == "mvau_threshold_layer0_config_s"
    assert rows["layer0"]["lut"] == 20544  # the function, not its pipelined-loop sub-module
    assert rows["layer0"]["ii"] == 1  # from the sub-module's loop
    assert rows["layer3"]["ii"] == 2
    assert rows["input_thresholds"]["module"] == "thresholding_input_thresholds_config_s"
    assert rows["input_thresholds"]["ff"] == 2107
    assert all(module["module"] != "syq_top" for module in report["modules"])


def test_unit_name_does_not_match_longer_name():
    modules = [{"module": "mvau_threshold_layer10_config_s"}, {"module": "mvau_threshold_layer1_config_s"}]
    mapping = vendor.unit_modules(modules, ["layer1", "layer2"])
    assert [module["module"] for module in mapping["layer1"]] == ["mvau_threshold_layer1_config_s"]
    assert mapping["layer2"] == []


def test_vivado_hls_report_dialect(tmp_path):
    # Vivado HLS names the DSP count DSP48E and may give a plain trip count.
    path = tmp_path / "csynth.xml"
    path.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <UserAssignments><TopModelName>syq_top</TopModelName><TargetClockPeriod>5.00</TargetClockPeriod></UserAssignments>
  <PerformanceEstimates>
    <SummaryOfTimingAnalysis><unit>ns</unit><EstimatedClockPeriod>4.375</EstimatedClockPeriod></SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency><Best-caseLatency>30</Best-caseLatency><Worst-caseLatency>?</Worst-caseLatency>
      <Interval-min>31</Interval-min><Interval-max>31</Interval-max></SummaryOfOverallLatency>
    <SummaryOfLoopLatency><Loop1><TripCount>28</TripCount><Latency>29</Latency>
      <PipelineII>1</PipelineII><PipelineDepth>3</PipelineDepth></Loop1></SummaryOfLoopLatency>
  </PerformanceEstimates>
  <AreaEstimates><Resources><BRAM_18K>2</BRAM_18K><DSP48E>5</DSP48E><FF>100</FF><LUT>200</LUT></Resources></AreaEstimates>
</profile>
""")
    summary = vendor.parse_csynth_xml(path)
    assert summary["resources"] == {"bram18": 2, "dsp": 5, "ff": 100, "lut": 200}
    assert summary["latency_best"] == 30
    assert summary["latency_worst"] is None
    assert summary["interval_max"] == 31
    assert summary["loops"] == [{"name": "Loop1", "trip_count": 28, "ii": 1, "depth": 3, "latency": 29}]


def test_invalid_reports_raise(tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_text("<profile><UserAssignments>")
    with pytest.raises(SyqError, match="invalid synthesis report"):
        vendor.parse_csynth_xml(broken)
    other = tmp_path / "other.xml"
    other.write_text("<project/>")
    with pytest.raises(SyqError, match="expected <profile>"):
        vendor.parse_csynth_xml(other)
    with pytest.raises(SyqError, match="reports the function syq_top"):
        vendor.parse_synthesis_reports(projects.REPORT_FIXTURES, "other_top", UNITS)
    with pytest.raises(SyqError, match="not found: run the synth step"):
        vendor.parse_synthesis_reports(tmp_path, "syq_top", UNITS)


def test_cosim_report_verilog_row(tmp_path):
    row = vendor.parse_cosim_report(projects.REPORT_FIXTURES / "syq_top_cosim.rpt")
    assert row["status"] == "Pass"
    assert row["latency_max"] == 826
    assert row["interval_min"] is None
    assert row["total_cycles"] == 839
    empty = tmp_path / "syq_top_cosim.rpt"
    empty.write_text("no table\n")
    with pytest.raises(SyqError, match="no Verilog result row"):
        vendor.parse_cosim_report(empty)


def test_register_offsets_from_driver_header(tmp_path):
    assert vendor.register_offsets(tmp_path) is None
    header = tmp_path / "drivers" / "syq_top_v1_0" / "src" / "xsyq_top_hw.h"
    header.parent.mkdir(parents=True)
    header.write_text("#define XSYQ_TOP_CONTROL_ADDR_AP_CTRL     0x00\n"
                      "#define XSYQ_TOP_CONTROL_ADDR_FRAMES_DATA 0x18\n"
                      "#define XSYQ_TOP_CONTROL_BITS_FRAMES_DATA 32\n")
    assert vendor.register_offsets(tmp_path) == {"ap_ctrl": 0x00, "frames": 0x18}


def test_testbench_summary_per_step():
    log = ("INFO: [syq] step csim\nframes 8\nmismatches 0\nINFO: [syq] step synth\n"
           "INFO: [syq] step cosim\nframes 8\nmismatches 3\n")
    assert vendor.testbench_summary(log, "csim") == {"frames": 8, "mismatches": 0}
    assert vendor.testbench_summary(log, "cosim") == {"frames": 8, "mismatches": 3}
    assert vendor.testbench_summary(log, "export") == {}


def test_steps_are_ordered_and_checked():
    assert vendor.order_steps(["export", "csim"]) == ["csim", "synth", "export"]
    assert vendor.order_steps(["cosim"]) == ["synth", "cosim"]
    assert vendor.order_steps([]) == ["csim", "synth"]
    with pytest.raises(SyqError, match="unknown HLS step 'place'"):
        vendor.order_steps(["place"])


# ---- tools and test data ---------------------------------------------------------------------


def test_tool_preference(tmp_path, monkeypatch):
    both, vivado_only = tmp_path / "both", tmp_path / "vivado-only"
    for folder, tools in ((both, ("vivado_hls", "vitis_hls")), (vivado_only, ("vivado_hls",))):
        folder.mkdir()
        for tool in tools:
            shutil.copy(projects.STUB_BIN / tool, folder / tool)
            (folder / tool).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", str(both))
    assert vendor.find_hls_tool()[0] == "vitis_hls"
    monkeypatch.setenv("PATH", str(vivado_only))
    assert vendor.find_hls_tool()[0] == "vivado_hls"
    monkeypatch.setenv("PATH", _no_tools_path(tmp_path))
    assert vendor.find_hls_tool() is None


def test_missing_tools_message_and_test_data(project, images, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", _no_tools_path(tmp_path))
    code = main(["hls", str(project), "--csim", "--synth", "--cosim", "--export",
                 "--dataset", "mnist-subset", "--limit", "5"])
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("syq hls: error")]
    assert code == 2
    assert len(error) == 1
    assert "vitis_hls" in error[0] and "vivado_hls" in error[0]
    assert f"cd {project} && vitis_hls -f run_hls.tcl -tclargs csim synth cosim export" in error[0]

    # The test data is written anyway, packed by the project's Interface from the golden model.
    _, graph, interface = load_project(project)
    data = inputs.load_inputs(graph, inputs_path=images, limit=5)  # the same 5 images
    expected, _ = golden.run(graph, data.stream)
    input_words = np.frombuffer((project / "tb_data" / "input.bin").read_bytes(), "<u8")
    expected_words = np.frombuffer((project / "tb_data" / "expected.bin").read_bytes(), "<u8")
    assert np.array_equal(input_words, interface.pack_inputs(data.stream).reshape(-1))
    assert np.array_equal(expected_words, interface.pack_outputs(expected).reshape(-1))


def test_syq_trained_project_uses_its_dataset(project, tmp_path, monkeypatch, capsys):
    manifest_path = project / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["metadata"]["syq.dataset"] = "mnist-subset"  # as our export records it
    manifest_path.write_text(json.dumps(manifest))
    monkeypatch.setenv("PATH", _no_tools_path(tmp_path))
    assert main(["hls", str(project), "--csim", "--limit", "3"]) == 2
    error = capsys.readouterr().err
    assert "pass --dataset" not in error
    assert "vitis_hls" in error
    assert (project / "tb_data" / "input.bin").stat().st_size > 0


def test_zoo_project_needs_dataset(project, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", _no_tools_path(tmp_path))
    assert main(["hls", str(project)]) == 2
    assert "pass --dataset NAME or --inputs X.npy" in capsys.readouterr().err
    assert not (project / "tb_data").exists()


@projects.needs_tclsh
def test_synth_only_needs_no_inputs(project, executable, monkeypatch, capsys):
    _tool_environment(monkeypatch, executable)
    assert main(["hls", str(project), "--synth"]) == 0
    report = json.loads((project / "hls" / "report.json").read_text())
    assert report["steps"] == ["synth"]
    assert "csim" not in report
    assert not (project / "tb_data").exists()
    assert "mvau_threshold_layer0_config_s" in capsys.readouterr().out


# ---- the whole flow with the stand-in tool ---------------------------------------------------


@projects.needs_tclsh
def test_full_flow_with_stub_tool(project, executable, images, monkeypatch, capsys):
    _tool_environment(monkeypatch, executable)
    code = main(["hls", str(project), "--csim", "--synth", "--cosim", "--export",
                 "--inputs", str(images)])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads((project / "hls" / "report.json").read_text())
    assert report["tool"] == "vitis_hls"
    assert report["steps"] == ["csim", "synth", "cosim", "export"]
    assert report["csim"] == {"status": "pass", "frames": 20, "mismatches": 0}
    assert report["cosim"]["frames"] == 20
    assert report["cosim"]["mismatches"] == 0
    assert report["cosim"]["testbench"] == {"frames": 20, "mismatches": 0}
    assert report["cosim"]["status"] == "Pass"
    rows = {row["unit"]: row for row in report["synthesis"]["units"]}
    assert rows["layer0"]["lut"] == 20544
    assert rows["layer0"]["estimate"]["lut"] > 0
    assert report["export"]["registers"] == {"ap_ctrl": 0x00, "frames": 0x10}
    assert report["export"]["registers_from"] == "driver header"
    log = (project / "hls" / "hls.log").read_text()
    assert log.startswith("$ vitis_hls -f run_hls.tcl -tclargs csim synth cosim export")
    assert "INFO: [syq] step cosim" in log
    assert "co-simulation mismatches  0 of 20 frames" in out
    assert (project / "tb_data" / "output.bin").is_file()
    assert (project / "tb_data" / "csim_output.bin").is_file()


@projects.needs_tclsh
def test_cosim_mismatch_is_reported(project, executable, images, tmp_path, monkeypatch, capsys):
    # A testbench that passes its own check but whose RTL output words differ afterwards: syq's
    # comparison with the golden model must catch it.
    corrupting = tmp_path / "corrupting-testbench"
    corrupting.write_text(f"""#!/bin/sh
"{executable}" "$@" || exit $?
case "$2" in
  */output.bin) printf '\\177' | dd of="$2" bs=1 seek=3 conv=notrunc 2>/dev/null ;;
esac
""")
    corrupting.chmod(stat.S_IRWXU)
    _tool_environment(monkeypatch, corrupting)
    code = main(["hls", str(project), "--cosim", "--inputs", str(images), "--limit", "4"])
    error = capsys.readouterr().err
    assert code == 2
    assert "co-simulation output differs from the golden model in 1 of 4 frames" in error
    report = json.loads((project / "hls" / "report.json").read_text())
    assert report["cosim"]["mismatches"] == 1


@projects.needs_tclsh
def test_tool_failure_names_first_error(project, images, monkeypatch, capsys):
    _tool_environment(monkeypatch, shutil.which("false"))
    (project / "hls").mkdir()
    (project / "hls" / "report.json").write_text("{}")  # from an earlier run
    code = main(["hls", str(project), "--csim", "--inputs", str(images), "--limit", "2"])
    error = capsys.readouterr().err
    assert code == 2
    assert "vitis_hls failed" in error
    assert "ERROR: [syq] step csim failed" in error
    assert (project / "hls" / "hls.log").is_file()
    assert not (project / "hls" / "report.json").exists()


@pytest.mark.vendor
@pytest.mark.skipif(not (shutil.which("vitis_hls") or shutil.which("vivado_hls")),
                    reason="needs Vitis HLS or Vivado HLS on PATH")
def test_real_hls_csim_and_synthesis(project, images):
    data = inputs.load_inputs(load_project(project)[1], inputs_path=images, limit=2)
    report = vendor.run_hls(project, ["csim", "synth"], data)
    assert report["csim"]["mismatches"] == 0
    assert report["synthesis"]["top"]["resources"]["lut"] > 0
