"""Every generated Tcl script runs under tclsh against checked stand-ins of the vendor commands.

tests/tcl/vendor_stubs.tcl defines each Vitis HLS / Vivado command the scripts use. A stand-in
fails on unknown options, missing required options, malformed values and objects that were not
created before. validate_bd_design checks the block design: clocks, resets, connections and the
address map. Unknown commands and Tcl syntax errors fail as in the real tools. The negative tests
at the end change one line of a generated script and expect the stand-ins to reject it.
"""

import re

import numpy as np
import pytest

import deploy_projects as projects
from syq.bitstreams import deploy
from syq.bitstreams.boards import BOARDS, get_board
from syq.generator import golden, vendor
from syq.generator.csim import load_project
from syq.generator.inputs import Inputs

pytestmark = projects.needs_tclsh

#: The project each board's scripts come from: PYNQ-Z1 uses the PYNQ-Z2 project (same part).
PROJECT_BOARD = {"pynq-z1": "pynq-z2", "pynq-z2": "pynq-z2", "ultra96-v2": "ultra96-v2",
                 "zcu104": "zcu104", "kv260": "kv260"}
HLS_STEPS = ["csim", "synth", "cosim", "export"]

_exported = {}


def write_random_test_data(project, frames):
    """Write tb_data for random images (the stand-ins only check that the files exist)."""
    graph = load_project(project)[1]
    images = np.random.default_rng(0).integers(0, 256, (frames,) + tuple(graph.input_quant.input_shape))
    stream = golden.pixel_input_codes(graph, images)
    vendor.write_test_data(project, Inputs(None, stream, None, f"{frames} random images"))


def exported_project(request, tmp_path_factory, board_name):
    """Return a copy of the board's project whose IP the stand-in HLS flow exported (cached)."""
    key = PROJECT_BOARD[board_name]
    if key not in _exported:
        pristine = projects.tfc_project(request, tmp_path_factory, key)
        project = projects.copy_project(pristine, tmp_path_factory.mktemp(f"exported-{key}") / "tfc")
        write_random_test_data(project, 3)
        log = project / "stub-hls.log"
        result = projects.run_stubbed("vitis_hls", ["-f", "run_hls.tcl", "-tclargs", *HLS_STEPS],
                                      project, log, reports=projects.REPORT_FIXTURES)
        assert result.returncode == 0, result.stdout + result.stderr
        _exported[key] = (project, log)
    return _exported[key]


@pytest.mark.parametrize("board_name", sorted(BOARDS))
def test_run_hls_script_under_stubs(request, tmp_path_factory, board_name):
    project, log = exported_project(request, tmp_path_factory, board_name)
    board = get_board(PROJECT_BOARD[board_name])
    calls = projects.logged_calls(log)
    assert f"set_part {board.part}" in calls
    assert f"create_clock -period {board.clock_period_ns:g} -name default" in calls
    steps = [call.split()[0] for call in calls if call.split()[0].endswith("_design")]
    assert steps == ["csim_design", "csynth_design", "cosim_design", "export_design"]
    assert (project / vendor.IP_DIR / "component.xml").is_file()


@pytest.mark.parametrize("board_files", [False, True], ids=["part-only", "board-files"])
@pytest.mark.parametrize("board_name", sorted(BOARDS))
def test_block_design_script_under_stubs(request, tmp_path_factory, tmp_path, board_name, board_files):
    project, _ = exported_project(request, tmp_path_factory, board_name)
    board = get_board(board_name)
    result = deploy.write_deploy(project, tmp_path / "deploy", board_name)
    log = tmp_path / "stub-vivado.log"
    installed = board.board_part if board_files else ""
    run = projects.run_stubbed("vivado", ["-mode", "batch", "-source", deploy.SCRIPT_NAME,
                                          "-tclargs", "--jobs", "2"],
                               result["folder"], log, board_parts=installed)
    assert run.returncode == 0, run.stdout + run.stderr
    assert result["bitfile"].is_file()
    assert result["hwh"].is_file()
    assert result["bitfile"].stem == result["hwh"].stem

    calls = projects.logged_calls(log)
    interface = load_project(project)[2]
    assert f"create_project -force syq_syq_bd {result['folder'] / 'vivado'} -part {board.part}" in calls
    assert (f"set_property board_part {board.board_part} syq_syq_bd" in calls) == board_files
    dma = next(call for call in calls if "CONFIG.c_m_axis_mm2s_tdata_width" in call)
    assert f"CONFIG.c_m_axis_mm2s_tdata_width {interface.axi_input_bits}" in dma
    assert f"CONFIG.c_s_axis_s2mm_tdata_width {interface.axi_output_bits}" in dma
    ps = board.processing_system
    assert any(f"create_bd_cell -type ip -vlnv xilinx.com:ip:{ps.ip_name}:" in call for call in calls)
    clock_key = ("CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ" if board.family == "zynq7"
                 else "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ")
    assert any(f"{clock_key} {board.clock_mhz:g}" in call for call in calls)
    assert "validate_bd_design" in calls
    assert calls[-1] == "get_property DIRECTORY impl_1"


def test_default_and_unknown_steps(request, tmp_path_factory, tmp_path):
    project, _ = exported_project(request, tmp_path_factory, "pynq-z2")
    log = tmp_path / "default.log"
    result = projects.run_stubbed("vivado_hls", ["-f", "run_hls.tcl"], project, log)
    assert result.returncode == 0, result.stdout + result.stderr
    steps = [call.split()[0] for call in projects.logged_calls(log) if call.split()[0].endswith("_design")]
    assert steps == ["csim_design", "csynth_design"]
    bad = projects.run_stubbed("vitis_hls", ["-f", "run_hls.tcl", "-tclargs", "place"], project,
                               tmp_path / "bad.log")
    assert bad.returncode == 2
    assert "unknown step 'place'" in bad.stdout


def test_block_design_without_exported_ip(request, tmp_path_factory, tmp_path):
    pristine = projects.tfc_project(request, tmp_path_factory)
    result = deploy.write_deploy(pristine, tmp_path / "deploy")
    run = projects.run_stubbed("vivado", ["-mode", "batch", "-source", deploy.SCRIPT_NAME],
                               result["folder"], tmp_path / "log")
    assert run.returncode == 1
    assert "ERROR: [syq] no exported HLS IP" in run.stdout


# ---- the stand-ins reject wrong scripts ------------------------------------------------------


def _run_mutated_block_design(request, tmp_path_factory, tmp_path, board_name, old, new):
    project, _ = exported_project(request, tmp_path_factory, board_name)
    result = deploy.write_deploy(project, tmp_path / "deploy", board_name)
    script = result["folder"] / deploy.SCRIPT_NAME
    text = script.read_text()
    assert re.search(old, text), f"pattern {old!r} not in the generated script"
    script.write_text(re.sub(old, new, text, count=1))
    run = projects.run_stubbed("vivado", ["-mode", "batch", "-source", deploy.SCRIPT_NAME],
                               result["folder"], tmp_path / "log",
                               board_parts=get_board(board_name).board_part)
    return run


@pytest.mark.parametrize("board_name, old, new, message", [
    ("pynq-z2", r"CONFIG.c_m_axis_mm2s_tdata_width \{64\}", "CONFIG.c_m_axis_mm2s_tdata_width {32}",
     "has 4-byte TDATA"),
    ("kv260", r"CONFIG.PSU__USE__M_AXI_GP1 \{0\}", "CONFIG.PSU__USE__M_AXI_GP1 {1}",
     "maxihpm1_fpd_aclk is not connected"),
    ("pynq-z2", r"\n  assign_bd_address -target_address_space \[get_bd_addr_spaces \$dma/\$space\]",
     "\n  puts skipped; list", "has no assigned segment"),
    ("pynq-z2", r"\[get_bd_pins \$memory/aclk\] ", "", "memory_interconnect/aclk is not connected"),
    ("pynq-z2", r"CONFIG.PCW_USE_S_AXI_HP0 \{1\}", "CONFIG.PCW_USE_S_AXI_HP0 {0}",
     "connect_bd_intf_net: expected one interface pin, got ''"),
    ("zcu104", r"CONFIG.c_include_sg \{0\}", "CONFIG.c_include_sgx {0}",
     "axi_dma has no parameter CONFIG.c_include_sgx"),
    ("pynq-z2", r"connect_bd_intf_net \[get_bd_intf_pins \$control/M00_AXI\]",
     "connect_bd_intf_net [get_bd_intf_pins $control/M00_AXI] [get_bd_intf_pins $dma/M_AXI_SG]; list",
     "connect_bd_intf_net: expected one interface pin, got ''"),
    ("pynq-z2", r"validate_bd_design", "validate_bd_desing", 'invalid command name "validate_bd_desing"'),
    ("pynq-z2", r"launch_runs synth_1 -jobs \$jobs", "launch_runs synth_1 -jobs $jobs -strategy fast",
     "unknown option -strategy"),
])
def test_stubs_reject_wrong_block_design(request, tmp_path_factory, tmp_path, board_name, old, new, message):
    run = _run_mutated_block_design(request, tmp_path_factory, tmp_path, board_name, old, new)
    assert run.returncode != 0
    assert message in run.stdout + run.stderr


@pytest.mark.parametrize("old, new, message", [
    (r"set_top syq_top", "set_top", "set_top: expected 1 to 1 positional arguments"),
    (r"create_clock -period \S+", "create_clock -period ten", "is not a positive number of ns"),
    (r"set_part \{[^}]+\}", "set_part {zynq}", "is not an AMD/Xilinx part name"),
    (r"export_design -format ip_catalog", "export_design -format ipcatalog", "unknown -format ipcatalog"),
    (r"add_files -tb \[file join \$project_dir src testbench.cpp\]",
     "add_files -tb [file join $project_dir src tb.cpp]", "tb.cpp does not exist"),
    (r"csynth_design\n", "csynth_design -unroll\n", "unknown option -unroll"),
])
def test_stubs_reject_wrong_hls_script(request, tmp_path_factory, tmp_path, old, new, message):
    pristine = projects.tfc_project(request, tmp_path_factory)
    project = projects.copy_project(pristine, tmp_path / "tfc")
    write_random_test_data(project, 1)
    script = project / "run_hls.tcl"
    text = script.read_text()
    assert re.search(old, text), f"pattern {old!r} not in run_hls.tcl"
    script.write_text(re.sub(old, new, text, count=1))
    run = projects.run_stubbed("vitis_hls", ["-f", "run_hls.tcl", "-tclargs", *HLS_STEPS], project,
                               tmp_path / "log")
    assert run.returncode != 0
    assert message in run.stdout + run.stderr


def test_ip_name_matches_export(request, tmp_path_factory):
    project = projects.tfc_project(request, tmp_path_factory)
    text = (project / "run_hls.tcl").read_text()
    assert f"-vendor {deploy.IP_VENDOR} -library {deploy.IP_LIBRARY} -version {deploy.IP_VERSION}" in text
