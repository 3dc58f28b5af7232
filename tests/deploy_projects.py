"""TFC_2W2A projects for the vendor-flow, bitstream and driver tests, generated once per test run.

Pristine projects live in pytest's cache folder at fixed paths, so that the content-hashed g++
build of the C-simulation testbench is reused across runs. Tests copy a project before changing
it. The tools in tests/tcl/bin run generated scripts under tclsh with tests/tcl/vendor_stubs.tcl.
"""

import copy
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from paths import ZOO_DIR

from syq.bitstreams.boards import get_board
from syq.generator import cpp_build, emitter, folding, lowering

TESTS_DIR = Path(__file__).resolve().parent
TCL_DIR = TESTS_DIR / "tcl"
STUB_BIN = TCL_DIR / "bin"
STUB_RUNNER = TCL_DIR / "run_with_stubs.tcl"
REPORT_FIXTURES = TESTS_DIR / "fixtures" / "hls_reports"
FAKE_PYNQ = TESTS_DIR / "fake_pynq"
MODEL_NAME = "TFC_2W2A.onnx"
#: Marks tests that run the stand-in tools of tests/tcl/bin, which are tclsh scripts.
needs_tclsh = pytest.mark.skipif(shutil.which("tclsh") is None,
                                 reason="tclsh not found: install the Debian package tcl")

_graph = None
_projects = {}
_testbenches = {}


def model_path():
    """Return the TFC_2W2A QONNX file shipped with the tests."""
    return ZOO_DIR / MODEL_NAME


def cache_root(request, tmp_path_factory):
    """Return the folder for projects and builds kept between test runs."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("syq-deploy-projects"))
    return tmp_path_factory.mktemp("syq-deploy-projects")


def tfc_project(request, tmp_path_factory, board_name="pynq-z2"):
    """Return the pristine TFC_2W2A project folder for `board_name` (generated once per run)."""
    global _graph
    if board_name not in _projects:
        if _graph is None:
            _graph, _ = lowering.lower_file(model_path())
        graph = copy.deepcopy(_graph)
        board = get_board(board_name)
        folding.fold_fastest(graph, board)
        folder = cache_root(request, tmp_path_factory) / f"tfc-{board_name}"
        emitter.generate_project(graph, board, folder)
        _projects[board_name] = folder
    return _projects[board_name]


def compiled_testbench(request, tmp_path_factory, board_name="pynq-z2"):
    """Return the compiled C-simulation testbench of the project for `board_name` (cached)."""
    if board_name not in _testbenches:
        project = tfc_project(request, tmp_path_factory, board_name)
        _testbenches[board_name] = cpp_build.compile_program(
            [project / "src" / "top.cpp", project / "src" / "testbench.cpp"],
            [project / "include", project / "src"], cache_root(request, tmp_path_factory) / "builds")
    return _testbenches[board_name]


def copy_project(project, target):
    """Copy a pristine project to `target` for a test that changes it; return the copy."""
    shutil.copytree(project, target)
    return target


def stub_environment(log=None, **variables):
    """Return os.environ with the stand-in tools first on PATH and SYQ_STUB_* variables set."""
    environment = dict(os.environ)
    environment["PATH"] = f"{STUB_BIN}{os.pathsep}{environment.get('PATH', '')}"
    if log is not None:
        environment["SYQ_STUB_LOG"] = str(log)
    for name, value in variables.items():
        environment[f"SYQ_STUB_{name.upper()}"] = str(value)
    return environment


def run_stubbed(tool, arguments, cwd, log, **variables):
    """Run `tool` (vitis_hls, vivado_hls or vivado) with the stand-ins; return the process result."""
    return subprocess.run([str(STUB_BIN / tool), *arguments], cwd=cwd, capture_output=True,
                          text=True, env=stub_environment(log, **variables), timeout=120)


def logged_calls(log):
    """Return the lines of a stubbed run's log: one command with its arguments per line."""
    if not Path(log).is_file():
        return []
    return [line for line in Path(log).read_text().splitlines() if line]


@pytest.fixture(autouse=True)
def restore_root_logging():
    """Undo the log handler that syq.cli.main installs on the stream of pytest's capsys."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
