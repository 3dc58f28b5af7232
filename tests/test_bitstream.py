"""`syq bitstream`: board PS definitions, the deploy folder and the Vivado run (stand-in tool)."""

import json
import os
import shutil

import pytest

import deploy_projects as projects
from deploy_projects import restore_root_logging  # noqa: F401 (autouse fixture)
from syq.bitstreams import deploy
from syq.bitstreams.boards import BOARDS, PROCESSING_SYSTEMS, get_board
from syq.cli import main
from syq.errors import SyqError
from syq.generator import vendor
from syq.generator.csim import load_project
from syq.generator.emitter import Interface


@pytest.fixture(scope="module")
def pristine(request, tmp_path_factory):
    return projects.tfc_project(request, tmp_path_factory)


@pytest.fixture
def project(pristine, tmp_path):
    return projects.copy_project(pristine, tmp_path / "tfc")


def _without_vivado(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))


def test_board_api_unchanged():
    board = get_board("pynq-z2")
    assert (board.part, board.family, board.dma_width) == ("xc7z020clg400-1", "zynq7", 64)
    assert get_board("zcu104", 150).clock_mhz == 150.0
    with pytest.raises(SyqError, match="unknown board"):
        get_board("arty")


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_processing_system_of_every_board(name):
    board = get_board(name)
    ps = board.processing_system
    assert ps is PROCESSING_SYSTEMS[board.family]
    config = ps.configuration(board.clock_mhz, board.dma_width)
    if board.family == "zynq7":
        assert config["CONFIG.PCW_USE_S_AXI_HP0"] == "1"
        assert config["CONFIG.PCW_S_AXI_HP0_DATA_WIDTH"] == "64"
        assert config["CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"] == "100"
        assert ps.external_interfaces == ("DDR", "FIXED_IO")
    else:
        assert config["CONFIG.PSU__USE__S_AXI_GP2"] == "1"  # S_AXI_HP0_FPD
        assert config["CONFIG.PSU__SAXIGP2__DATA_WIDTH"] == "128"
        assert config["CONFIG.PSU__USE__M_AXI_GP1"] == "0"
        assert config["CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"] == "100"


def test_deploy_folder_contents(project):
    result = deploy.write_deploy(project)
    folder = project / "deploy"
    assert result["folder"] == folder
    for name in ("build_bitstream.tcl", "driver.py", "README.md", "accelerator.json",
                 "syq_runtime/packing.py", "syq_runtime/interface.py", "syq_runtime/errors.py",
                 "syq_runtime/accelerator.py", "syq_runtime/preprocess.py", "syq_runtime/cli.py"):
        assert (folder / name).is_file(), name
    manifest, graph, interface = load_project(project)
    config = json.loads((folder / "accelerator.json").read_text())
    assert config["interface"] == manifest["interface"]
    assert Interface(**config["interface"]) == interface
    assert config["bitfile"] == "TFC_2W2A.bit"
    assert config["registers"] == vendor.DEFAULT_REGISTERS
    assert config["registers_from"] == "Vitis HLS default register map"
    assert config["post"]["scale"] == graph.post.scale.tolist()
    assert config["input"]["mode"] == graph.input_quant.mode
    script = (folder / "build_bitstream.tcl").read_text()
    assert "CONFIG.c_m_axis_mm2s_tdata_width {64}" in script
    assert "CONFIG.c_s_axis_s2mm_tdata_width {64}" in script
    assert f"create_bd_cell -type ip -vlnv $hls_ip {config['accelerator']}" in script
    assert f"latest_ip axi_dma] {config['dma']}" in script
    assert "../hls_project/solution/impl/ip" in script
    readme = (folder / "README.md").read_text()
    assert "TFC_2W2A.bit" in readme
    assert "TFC_2W2A.hwh" in readme
    assert "vivado -mode batch -source build_bitstream.tcl" in readme


def test_registers_from_exported_header(project):
    header = project / vendor.IP_DIR / "drivers" / "syq_top_v1_0" / "src" / "xsyq_top_hw.h"
    header.parent.mkdir(parents=True)
    header.write_text("#define XSYQ_TOP_CONTROL_ADDR_AP_CTRL 0x00\n"
                      "#define XSYQ_TOP_CONTROL_ADDR_FRAMES_DATA 0x18\n")
    deploy.write_deploy(project)
    config = json.loads((project / "deploy" / "accelerator.json").read_text())
    assert config["registers"] == {"ap_ctrl": 0x00, "frames": 0x18}
    assert config["registers_from"] == "driver header of the exported IP"


def test_other_part_is_rejected(project):
    with pytest.raises(SyqError, match="generated for pynq-z2 .* not zcu104"):
        deploy.write_deploy(project, board_name="zcu104")
    assert not (project / "deploy").exists()
    assert deploy.write_deploy(project, board_name="pynq-z1")["board"].name == "pynq-z1"


def test_foreign_output_folder_untouched(project, tmp_path):
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(SyqError, match="not a syq deploy folder"):
        deploy.write_deploy(project, out_dir=foreign)
    assert [path.name for path in foreign.iterdir()] == ["notes.txt"]


def test_unsupported_stream_width():
    interface = Interface(96, 64, 8, "unsigned", 784, 8, "signed", 8, 10)
    with pytest.raises(SyqError, match="96-bit AXI-stream input has no AXI DMA"):
        deploy.check_stream_widths(interface)


def test_runtime_imports_are_checked():
    with pytest.raises(SyqError, match="imports torch"):
        deploy._check_self_contained("import numpy\nimport torch\n", "syq_runtime/x.py")
    with pytest.raises(SyqError, match="imports syq.errors"):
        deploy._check_self_contained("from syq.errors import SyqError\n", "syq_runtime/x.py")
    deploy._check_self_contained("from .errors import SyqError\nimport numpy as np\n", "x.py")


def test_bitstream_command_without_vivado(project, tmp_path, monkeypatch, capsys):
    _without_vivado(monkeypatch, tmp_path)
    assert main(["bitstream", str(project)]) == 0
    out = capsys.readouterr().out
    assert "vivado is not on PATH" in out
    assert f"cd {project / 'deploy'} && vivado -mode batch -source build_bitstream.tcl" in out
    assert "not exported yet" in out
    assert (project / "deploy" / "driver.py").is_file()


@projects.needs_tclsh
def test_bitstream_command_with_stub_vivado(project, tmp_path, monkeypatch, capsys):
    # Export the IP with the stand-in HLS tool, then build with the stand-in Vivado.
    monkeypatch.setenv("PATH", f"{projects.STUB_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SYQ_STUB_REPORTS", str(projects.REPORT_FIXTURES))
    assert main(["hls", str(project), "--export"]) == 0
    out_dir = tmp_path / "board-files"
    assert main(["bitstream", str(project), "--out", str(out_dir), "--jobs", "3"]) == 0
    out = capsys.readouterr().out
    assert (out_dir / "TFC_2W2A.bit").is_file()
    assert (out_dir / "TFC_2W2A.hwh").is_file()
    assert "driver header of the exported IP" in out
    assert f"bitstream         {out_dir / 'TFC_2W2A.bit'}" in out
    # A second run replaces the folder, and --scripts-only skips Vivado.
    assert main(["bitstream", str(project), "--out", str(out_dir), "--scripts-only"]) == 0
    assert not (out_dir / "TFC_2W2A.bit").exists()
    assert "--scripts-only: build the bitstream with" in capsys.readouterr().out


@projects.needs_tclsh
def test_vivado_failure_is_reported(project, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", f"{projects.STUB_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SYQ_STUB_REPORTS", str(projects.REPORT_FIXTURES))
    assert main(["hls", str(project), "--export"]) == 0
    result = deploy.write_deploy(project)
    script = result["script"]
    script.write_text(script.read_text().replace("validate_bd_design", "validate_bd_design -strict"))
    with pytest.raises(SyqError, match="vivado failed .*unknown option -strict"):
        deploy.run_vivado(result, shutil.which("vivado"))
    assert not result["bitfile"].exists()


def test_vivado_needs_exported_ip(project, tmp_path):
    result = deploy.write_deploy(project)
    with pytest.raises(SyqError, match="no exported HLS IP .*: run `syq hls PROJECT --export` first"):
        deploy.run_vivado(result, tmp_path / "vivado")


@pytest.mark.vendor
@pytest.mark.skipif(not (shutil.which("vivado") and (shutil.which("vitis_hls") or shutil.which("vivado_hls"))),
                    reason="needs Vivado and Vitis HLS on PATH (synthesizes and builds a real bitstream)")
def test_real_bitstream(project):
    vendor.run_hls(project, ["synth", "export"])
    result = deploy.run_vivado(deploy.write_deploy(project))
    assert result["bitfile"].stat().st_size > 0
    assert result["hwh"].stat().st_size > 0
