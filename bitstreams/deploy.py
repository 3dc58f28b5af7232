"""The deploy folder of a generated project: Vivado block design, bitstream build, PYNQ driver.

`write_deploy` writes, atomically:

* ``build_bitstream.tcl``: a Vivado batch script that builds the block design (Zynq PS, AXI DMA
  between DDR and the accelerator's AXI streams, AXI-lite control of both), runs synthesis and
  implementation and copies ``<name>.bit`` and ``<name>.hwh`` beside itself;
* ``driver.py`` and the package ``syq_runtime/``: the PYNQ driver. Its packing code is
  generator/packing.py and the Interface class of generator/emitter.py, copied (see
  `runtime_sources`), so the board needs numpy and pynq but not syq;
* ``accelerator.json``: what the driver needs to know (stream formats, input quantization,
  post-processing, IP names and register offsets);
* ``README.md``.

`run_vivado` runs the script where ``vivado`` is on PATH.
"""

import ast
import inspect
import json
import logging
import os
import re
import shutil
from pathlib import Path

import jinja2

import syq
from syq.bitstreams.boards import get_board
from syq.errors import SyqError
from syq.generator import vendor
from syq.generator.csim import load_project
from syq.outputs import atomic_directory, check_replaceable

logger = logging.getLogger(__name__)
tool_logger = logging.getLogger("syq.vivado.tool")

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = PACKAGE_DIR / "templates"
RUNTIME_DIR = PACKAGE_DIR / "runtime"

DEFAULT_FOLDER = "deploy"
SCRIPT_NAME = "build_bitstream.tcl"
CONFIG_NAME = "accelerator.json"
DRIVER_NAME = "driver.py"
RUNTIME_PACKAGE = "syq_runtime"
BLOCK_DESIGN = "syq_bd"
VIVADO_FOLDER = "vivado"
ACCELERATOR_CELL = "syq_top_0"
DMA_CELL = "axi_dma_0"
#: The VLNV that run_hls.tcl exports the IP under (export_design -vendor -library -version).
IP_VENDOR, IP_LIBRARY, IP_VERSION = "syq.dev", "hls", "1.0"
#: Width of the AXI DMA buffer-length register (c_sg_length_width, at most 26 bits): one transfer
#: moves at most 2**26 - 1 bytes.
DMA_LENGTH_BITS = 26
#: TDATA widths that the AXI DMA stream ports support (PG021); the memory-map side needs >= 32.
DMA_STREAM_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)
DMA_BURST_BEATS = 16
CONTROL_APERTURE = 0x1_0000  # 64 KiB for each AXI-lite register block
DEFAULT_BATCH = 1000
#: Modules that the board runtime may import besides its own: standard library modules, numpy and
#: pynq (on the board).
RUNTIME_IMPORTS = {"argparse", "dataclasses", "enum", "json", "logging", "math", "pathlib", "sys",
                   "time", "numpy", "pynq"}
PACKING_IMPORT = "from syq.errors import SyqError\n"
PACKING_RUNTIME_IMPORT = "from .errors import SyqError\n"


def _environment():
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


def artifact_name(graph_name):
    """Return the base name of the .bit/.hwh pair: the model name in identifier characters."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", graph_name or "").strip("_")
    return name or "syq_accelerator"


def resolve_board(manifest, name=None):
    """Return the board to build for: `name` or the project's, at the project's clock.

    The HLS IP is synthesized for the project's part and clock, so a board with another part
    raises SyqError (PYNQ-Z1 and PYNQ-Z2 share the xc7z020clg400-1).
    """
    project_board = manifest["board"]
    board = get_board(name or project_board["name"], project_board["clock_mhz"])
    if board.part != project_board["part"]:
        raise SyqError(f"the project was generated for {project_board['name']} "
                       f"({project_board['part']}), not {board.name} ({board.part}): generate it "
                       f"again with --board {board.name}")
    return board


def check_stream_widths(interface):
    """Raise SyqError unless the AXI DMA supports the accelerator's stream widths."""
    for direction, bits in (("input", interface.axi_input_bits), ("output", interface.axi_output_bits)):
        if bits not in DMA_STREAM_WIDTHS:
            raise SyqError(f"the accelerator's {bits}-bit AXI-stream {direction} has no AXI DMA "
                           f"counterpart ({', '.join(map(str, DMA_STREAM_WIDTHS))} bits): generate "
                           f"the project for a board with another DMA width")


# ---- the board runtime -----------------------------------------------------------------------


def _check_self_contained(source, name):
    """Raise SyqError when runtime module `name` imports anything but RUNTIME_IMPORTS or itself."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module]
        else:
            continue
        for module in modules:
            if module.split(".")[0] not in RUNTIME_IMPORTS:
                raise SyqError(f"{name} imports {module}, which a PYNQ board may not "
                               f"have: import only {', '.join(sorted(RUNTIME_IMPORTS))} in {name}")


def runtime_sources():
    """Return {file name: source} of the syq_runtime package that runs on the board.

    * packing.py: generator/packing.py with its one import of syq.errors made relative;
    * errors.py: syq/errors.py unchanged;
    * interface.py: the Interface class of generator/emitter.py, its source text unchanged;
    * the modules of bitstreams/runtime/.
    """
    from syq import errors
    from syq.generator import emitter, packing

    packing_source = Path(packing.__file__).read_text()
    if packing_source.count(PACKING_IMPORT) != 1:
        raise SyqError(f"{packing.__file__} no longer has the line {PACKING_IMPORT.strip()!r} "
                       f"exactly once: update PACKING_IMPORT in {__file__}")
    sources = {
        "packing.py": packing_source.replace(PACKING_IMPORT, PACKING_RUNTIME_IMPORT),
        "errors.py": Path(errors.__file__).read_text(),
        "interface.py": ('"""The accelerator\'s AXI-stream formats: the Interface class of '
                         'generator/emitter.py, copied unchanged by `syq bitstream`."""\n\n'
                         "import dataclasses\n\nfrom . import packing\n\n\n"
                         + inspect.getsource(emitter.Interface)),
    }
    for path in sorted(RUNTIME_DIR.glob("*.py")):
        sources[path.name] = path.read_text()
    for name, source in sources.items():
        _check_self_contained(source, f"{RUNTIME_PACKAGE}/{name}")
    return sources


def write_runtime(folder):
    """Write the syq_runtime package into `folder`; return its path."""
    package = Path(folder) / RUNTIME_PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    for name, source in runtime_sources().items():
        (package / name).write_text(source)
    return package


# ---- configuration and scripts ---------------------------------------------------------------


def _project_registers(project):
    """Return (register offsets, their source) from `syq hls` or the exported driver header."""
    report_path = Path(project) / vendor.REPORT_FOLDER / vendor.REPORT_NAME
    if report_path.is_file():
        try:
            export = json.loads(report_path.read_text()).get("export")
        except json.JSONDecodeError:
            export = None
        if export and export.get("registers_from") == "driver header":
            return export["registers"], "driver header of the exported IP"
    offsets = vendor.register_offsets(Path(project) / vendor.IP_DIR)
    if offsets:
        return offsets, "driver header of the exported IP"
    return dict(vendor.DEFAULT_REGISTERS), "Vitis HLS default register map"


def driver_config(manifest, graph, board, registers, registers_from):
    """Return the content of accelerator.json."""
    spec = graph.input_quant
    name = artifact_name(manifest["name"])
    missing = {"ap_ctrl", "frames"} - set(registers)
    if missing:
        raise SyqError(f"the exported IP's driver header has no {', '.join(sorted(missing))} "
                       f"register: export the IP of this project again")
    return {
        "format_version": 1,
        "syq_version": syq.__version__,
        "name": manifest["name"],
        "board": board.name,
        "clock_mhz": board.clock_mhz,
        "bitfile": f"{name}.bit",
        "accelerator": ACCELERATOR_CELL,
        "dma": DMA_CELL,
        "registers": {key: int(value) for key, value in registers.items()},
        "registers_from": registers_from,
        "max_transfer_bytes": (1 << DMA_LENGTH_BITS) - 1,
        "interface": manifest["interface"],
        "input": {"mode": spec.mode, "input_shape": list(spec.input_shape),
                  "channels": spec.channels, "scale": float(spec.scale), "signed": bool(spec.signed),
                  "narrow": bool(spec.narrow), "bits": int(spec.bits),
                  "rounding_mode": spec.rounding_mode, "bipolar": bool(spec.bipolar)},
        "post": {"scale": [float(value) for value in graph.post.scale],
                 "bias": [float(value) for value in graph.post.bias]},
    }


def block_design_context(manifest, board, ip_repo, config):
    """Return the template context of build_bitstream.tcl."""
    interface = manifest["interface"]
    ps = board.processing_system
    name = artifact_name(manifest["name"])
    return {
        "version": syq.__version__, "name": manifest["name"], "board": board, "ps": ps,
        "ps_config": ps.configuration(board.clock_mhz, board.dma_width),
        "ps_cell": f"{ps.ip_name}_0", "accelerator": ACCELERATOR_CELL, "dma": DMA_CELL,
        "ip_vlnv": f"{IP_VENDOR}:{IP_LIBRARY}:{manifest['top']}:{IP_VERSION}",
        "ip_repo": ip_repo, "block_design": BLOCK_DESIGN, "vivado_folder": VIVADO_FOLDER,
        "input_bits": interface["axi_input_bits"], "output_bits": interface["axi_output_bits"],
        "mm2s_data_bits": max(32, interface["axi_input_bits"]),
        "s2mm_data_bits": max(32, interface["axi_output_bits"]),
        "burst_beats": DMA_BURST_BEATS, "length_bits": DMA_LENGTH_BITS,
        "address_bits": ps.address_bits,
        "accelerator_base": f"0x{ps.control_base:08X}",
        "dma_base": f"0x{ps.control_base + CONTROL_APERTURE:08X}",
        "aperture": f"0x{CONTROL_APERTURE:X}",
        "bitfile": config["bitfile"], "hwh": f"{name}.hwh",
    }


def default_folder(project):
    """Return the default deploy folder of `project`."""
    return Path(project) / DEFAULT_FOLDER


def write_deploy(project, out_dir=None, board_name=None):
    """Write the deploy folder of `project` (default PROJECT/deploy); return a summary dict."""
    project = Path(project)
    manifest, graph, interface = load_project(project)
    board = resolve_board(manifest, board_name)
    check_stream_widths(interface)
    folder = Path(out_dir) if out_dir else default_folder(project)
    check_replaceable(folder, CONFIG_NAME, "syq deploy folder")

    ip_dir = (project / vendor.IP_DIR).resolve()
    ip_repo = os.path.relpath(ip_dir, folder.resolve())
    registers, registers_from = _project_registers(project)
    config = driver_config(manifest, graph, board, registers, registers_from)
    context = block_design_context(manifest, board, ip_repo, config)
    context.update(config=config, project=str(project), classes=len(config["post"]["scale"]),
                   default_batch=DEFAULT_BATCH, interface=interface, script=SCRIPT_NAME,
                   runtime=RUNTIME_PACKAGE, config_name=CONFIG_NAME, driver=DRIVER_NAME,
                   input_shape=tuple(graph.input_quant.input_shape))

    environment = _environment()
    with atomic_directory(folder) as staging:
        (staging / SCRIPT_NAME).write_text(
            environment.get_template("build_bitstream.tcl.j2").render(**context))
        (staging / DRIVER_NAME).write_text(environment.get_template("driver.py.j2").render(**context))
        (staging / "README.md").write_text(environment.get_template("README.md.j2").render(**context))
        (staging / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        write_runtime(staging)
    logger.info("wrote deploy folder %s for %s (registers: %s)", folder, board.name, registers_from)
    return {"folder": folder, "board": board, "script": folder / SCRIPT_NAME,
            "bitfile": folder / config["bitfile"], "hwh": folder / context["hwh"],
            "ip_dir": ip_dir, "ip_exported": (ip_dir / "component.xml").is_file(),
            "registers_from": registers_from,
            "command": f"cd {folder} && {vivado_command_line()}"}


# ---- Vivado ----------------------------------------------------------------------------------


def find_vivado():
    """Return the path of vivado on PATH, or None."""
    path = shutil.which("vivado")
    return Path(path) if path else None


def vivado_command_line(jobs=None):
    """Return the command that builds the bitstream in a deploy folder."""
    command = f"vivado -mode batch -source {SCRIPT_NAME}"
    return command + (f" -tclargs --jobs {jobs}" if jobs else "")


def run_vivado(deploy, vivado=None, jobs=None):
    """Run build_bitstream.tcl in the deploy folder summary `deploy` and check the .bit/.hwh."""
    folder = Path(deploy["folder"])
    vivado = vivado or find_vivado()
    if vivado is None:
        raise SyqError(f"vivado is not on PATH: run `{deploy['command']}` on a machine with Vivado")
    if not deploy["ip_exported"]:
        raise SyqError(f"no exported HLS IP in {deploy['ip_dir']}: run `syq hls PROJECT --export` "
                       f"first")
    jobs = jobs or os.cpu_count() or 1
    command = [str(vivado), "-mode", "batch", "-notrace", "-log", "vivado.log", "-journal",
               "vivado.jou", "-source", SCRIPT_NAME, "-tclargs", "--jobs", str(jobs)]
    for stale in (deploy["bitfile"], deploy["hwh"]):
        Path(stale).unlink(missing_ok=True)

    logger.info("running %s in %s", " ".join(command), folder)
    code, first_error = vendor.stream_tool(command, folder, vivado, "Vivado", tool_logger)
    if code != 0:
        raise SyqError(f"vivado failed on {folder / SCRIPT_NAME} "
                       f"({first_error or f'exit code {code}'}); the full log is "
                       f"{folder / 'vivado.log'}")
    for product in (deploy["bitfile"], deploy["hwh"]):
        if not Path(product).is_file():
            raise SyqError(f"vivado finished but wrote no {product}: see {folder / 'vivado.log'}")
    return deploy

