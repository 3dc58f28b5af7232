"""The vendor HLS flow of a generated project: Vitis HLS or Vivado HLS running ``run_hls.tcl``.

`run_hls` writes the test data of the C++ testbench: ``tb_data/input.bin`` and
``tb_data/expected.bin``, packed AXI words of the golden model. It runs the tool with the requested
steps and saves its log as ``hls/hls.log``. Then it parses the synthesis and co-simulation reports
into ``hls/report.json`` and compares the co-simulated output words with the golden model.

Report files and locations are those of Vitis HLS 2020.2 to 2024.2 and Vivado HLS 2018.3 to
2020.1 (identical for what is read here):

* ``hls_project/solution/syn/report/csynth.xml``: the top function; ``<module>_csynth.xml``: one
  per synthesized function, with ``PerformanceEstimates`` (``SummaryOfTimingAnalysis``,
  ``SummaryOfOverallLatency``, ``SummaryOfLoopLatency``) and ``AreaEstimates/Resources``
  (``BRAM_18K``, ``DSP`` or ``DSP48E``, ``FF``, ``LUT``, ``URAM``).
* ``hls_project/solution/sim/report/<top>_cosim.rpt``: the co-simulation status and latency.
* ``hls_project/solution/impl/ip``: the exported IP; its driver header ``x<top>_hw.h`` lists the
  AXI-lite register offsets.
"""

import json
import logging
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from syq.errors import SyqError
from syq.generator import golden, packing
from syq.generator.csim import load_project
from syq.outputs import atomic_file

logger = logging.getLogger(__name__)
tool_logger = logging.getLogger("syq.hls.tool")

#: Tools in order of preference.
HLS_TOOLS = ("vitis_hls", "vivado_hls")
STEPS = ("csim", "synth", "cosim", "export")
DEFAULT_STEPS = ("csim", "synth")
#: Frames of test data when neither --limit nor an .npy file sets the count: RTL co-simulation
#: of one frame takes seconds to minutes, so the default stays small.
DEFAULT_FRAMES = 8
HLS_PROJECT = "hls_project"
SOLUTION = "solution"
TB_DATA = "tb_data"
REPORT_FOLDER = "hls"
LOG_NAME = "hls.log"
REPORT_NAME = "report.json"
IP_DIR = Path(HLS_PROJECT) / SOLUTION / "impl" / "ip"
#: Offsets of the s_axilite register map that Vitis HLS and Vivado HLS generate when the return
#: value and the only scalar argument share one bundle. ap_ctrl is at 0x00 (bit 0 ap_start, 1
#: ap_done, 2 ap_idle, 3 ap_ready), the interrupt registers at 0x04 to 0x0c, and the first scalar
#: argument at 0x10. `register_offsets` reads the exported driver header when there is one.
DEFAULT_REGISTERS = {"ap_ctrl": 0x00, "frames": 0x10}


def find_hls_tool():
    """Return (name, path) of the first HLS tool of HLS_TOOLS on PATH, or None."""
    for name in HLS_TOOLS:
        path = shutil.which(name)
        if path:
            return name, Path(path)
    return None


def command_line(steps):
    """Return the shell command that runs `steps` in a project folder, for messages and docs."""
    return f"vitis_hls -f run_hls.tcl -tclargs {' '.join(steps)}"


def order_steps(steps):
    """Return `steps` in the order the script runs them, with the synthesis that cosim and export
    need; reject unknown steps."""
    unknown = [step for step in steps if step not in STEPS]
    if unknown:
        raise SyqError(f"unknown HLS step {unknown[0]!r}: choose from {', '.join(STEPS)}")
    chosen = set(steps) or set(DEFAULT_STEPS)
    if chosen & {"cosim", "export"}:
        chosen.add("synth")
    return [step for step in STEPS if step in chosen]


def needs_test_data(steps):
    """Return whether any of `steps` runs the testbench."""
    return "csim" in steps or "cosim" in steps


def default_inputs(project, graph, manifest, dataset=None, split="test", data_dir=None,
                   inputs_path=None, limit=None):
    """Return the Inputs of the testbench: --dataset/--inputs, else the dataset in the metadata."""
    from syq.generator import inputs

    if dataset is None and inputs_path is None:
        # Our export writes its metadata with the "syq." prefix (training/export.py).
        dataset = manifest.get("metadata", {}).get("syq.dataset")
        if not dataset:
            raise SyqError(f"{project}/manifest.json names no training dataset (the model was not "
                           f"trained by syq): pass --dataset NAME or --inputs X.npy")
    if limit is None and inputs_path is None:
        limit = DEFAULT_FRAMES
    return inputs.load_inputs(graph, dataset, split, data_dir, inputs_path, limit)


def write_test_data(project, data):
    """Write tb_data/input.bin and tb_data/expected.bin for `data`; return the golden raw outputs.

    The words are packed by the project's Interface, the same code that `syq csim` uses.
    """
    project = Path(project)
    _, graph, interface = load_project(project)
    if data.stream.shape[1] != interface.input_frame_elements:
        raise SyqError(f"inputs have {data.stream.shape[1]} elements per frame, {project} "
                       f"expects {interface.input_frame_elements}")
    expected_raw, _ = golden.run(graph, data.stream)
    folder = project / TB_DATA
    with atomic_file(folder / "input.bin") as stream:
        stream.write(_word_bytes(interface.pack_inputs(data.stream)))
    with atomic_file(folder / "expected.bin") as stream:
        stream.write(_word_bytes(interface.pack_outputs(expected_raw)))
    with atomic_file(folder / "inputs.json", "w") as stream:
        json.dump({"description": data.description, "frames": int(len(data.stream))}, stream)
    logger.info("wrote %d test frames (%s) to %s", len(data.stream), data.description, folder)
    return expected_raw


def _word_bytes(words):
    """Return the word-file bytes of packed words (the format of packing.write_words)."""
    return np.asarray(words, dtype=np.uint64).astype("<u8").tobytes()


def missing_tool_message(project, steps):
    """Return the one-line error for a machine without HLS tools."""
    return (f"neither {' nor '.join(HLS_TOOLS)} is on PATH: source the settings64.sh of Vitis HLS "
            f"(or Vivado HLS), or run `cd {project} && {command_line(steps)}` on a machine that "
            f"has it")


def run_tool(project, steps, tool):
    """Run `tool` (name, path) on PROJECT/run_hls.tcl, streaming its output to the log.

    Every output line goes to the logger ``syq.hls.tool`` (the terminal of the command line) and
    to PROJECT/hls/hls.log. Raises SyqError naming the first error line when the tool fails.
    """
    project = Path(project)
    name, path = tool
    command = [str(path), "-f", "run_hls.tcl", "-tclargs", *steps]
    log_path = project / REPORT_FOLDER / LOG_NAME
    logger.info("running %s in %s", " ".join([name, *command[1:]]), project)
    with atomic_file(log_path, "w") as log:
        log.write("$ " + " ".join([name, *command[1:]]) + "\n")
        code, first_error = stream_tool(command, project, path, name, tool_logger, log)
    if code != 0:
        detail = first_error or f"exit code {code}"
        raise SyqError(f"{name} failed on {project}/run_hls.tcl ({detail}); the full log is "
                       f"{log_path}")
    return log_path


def stream_tool(command, folder, program, installation, output_logger, log=None):
    """Run a vendor tool in `folder`, sending each output line to `output_logger` (and to `log`).

    Returns (exit code, first line starting with "ERROR:" or None). `program` and `installation`
    name the executable and the product in the error raised when the tool cannot start.
    """
    first_error = None
    try:
        process = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace")
    except OSError as error:
        raise SyqError(f"cannot start {program}: {error}; check the {installation} installation") from None
    with process:
        for line in process.stdout:
            line = line.rstrip("\n")
            if log is not None:
                log.write(line + "\n")
            output_logger.info("%s", line)
            if first_error is None and line.startswith("ERROR:"):
                first_error = line
    return process.returncode, first_error


# ---- reports ---------------------------------------------------------------------------------


def _number(text):
    """Return the int or float in a report field, or None for "undef", "?" and similar."""
    if text is None:
        return None
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def _child_text(element, path):
    found = element.find(path) if element is not None else None
    return found.text if found is not None else None


def _resources(element):
    """Return the resource counts under an AreaEstimates/Resources element (DSP48E as dsp)."""
    if element is None:
        return {}
    names = {"BRAM_18K": "bram18", "DSP": "dsp", "DSP48E": "dsp", "FF": "ff", "LUT": "lut",
             "URAM": "uram"}
    counts = {}
    for child in element:
        if child.tag in names:
            counts[names[child.tag]] = _number(child.text)
    return counts


def _trip_count(loop):
    """Return a loop's trip count: a number, "min..max", or None when unknown."""
    trip = loop.find("TripCount")
    if trip is None:
        return None
    if trip.find("range") is not None:
        low = _number(_child_text(trip, "range/min"))
        high = _number(_child_text(trip, "range/max"))
        return low if low == high else f"{low}..{high}"
    return _number(trip.text)


def _loops(summary):
    loops = []
    if summary is None:
        return loops
    for loop in summary:
        loops.append({
            "name": _child_text(loop, "Name") or loop.tag,
            "trip_count": _trip_count(loop),
            "ii": _number(_child_text(loop, "PipelineII")),
            "depth": _number(_child_text(loop, "PipelineDepth")),
            "latency": _number(_child_text(loop, "Latency")),
        })
    return loops


def parse_csynth_xml(path):
    """Return the summary of one csynth.xml: module, clock, latency, interval, loops, resources.

    Latencies are in clock cycles. A field that the tool reports as unknown ("undef", "?") is
    None, as the latency of a function whose trip counts depend on an argument is.
    """
    path = Path(path)
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as error:
        raise SyqError(f"invalid synthesis report {path}: {error}; run the synthesis again") from None
    if root.tag != "profile":
        raise SyqError(f"{path} is not a Vitis/Vivado HLS synthesis report (root element "
                       f"<{root.tag}>, expected <profile>)")
    user = root.find("UserAssignments")
    performance = root.find("PerformanceEstimates")
    latency = performance.find("SummaryOfOverallLatency") if performance is not None else None
    area = root.find("AreaEstimates")
    module = _child_text(user, "TopModelName") or path.name.replace("_csynth.xml", "")
    return {
        "module": module,
        "part": _child_text(user, "Part"),
        "target_clock_ns": _number(_child_text(user, "TargetClockPeriod")),
        "estimated_clock_ns": _number(_child_text(performance, "SummaryOfTimingAnalysis/"
                                                               "EstimatedClockPeriod")),
        "pipeline": _child_text(performance, "PipelineType"),
        "latency_best": _number(_child_text(latency, "Best-caseLatency")),
        "latency_average": _number(_child_text(latency, "Average-caseLatency")),
        "latency_worst": _number(_child_text(latency, "Worst-caseLatency")),
        "interval_min": _number(_child_text(latency, "Interval-min")),
        "interval_max": _number(_child_text(latency, "Interval-max")),
        "loops": _loops(performance.find("SummaryOfLoopLatency") if performance is not None else None),
        "resources": _resources(area.find("Resources") if area is not None else None),
        "available": _resources(area.find("AvailableResources") if area is not None else None),
    }


def _module_matches(module, unit_name):
    return re.search(rf"(^|_){re.escape(unit_name)}(_|$)", module) is not None


def unit_modules(modules, unit_names):
    """Map each unit name to the reports of its layer function and the modules inside it.

    HLS names a template instance such as ``mvau_threshold<layer0_config>`` after its arguments
    (``mvau_threshold_layer0_config_s``) and the pipelined loops it splits off after the function
    (``mvau_threshold_layer0_config_Pipeline_...``). The shortest matching name is the function;
    the list is empty when no module matches.
    """
    mapping = {}
    for name in unit_names:
        matches = [module for module in modules if _module_matches(module["module"], name)]
        mapping[name] = sorted(matches, key=lambda module: len(module["module"]))
    return mapping


def parse_synthesis_reports(report_dir, top, unit_names):
    """Return the synthesis summary of a report folder: the top function and one row per unit.

    A unit's resources are those of its layer function, which include its sub-modules. Its II is
    the largest pipeline II of the loops in the function and its sub-modules.
    """
    report_dir = Path(report_dir)
    top_path = report_dir / "csynth.xml"
    if not top_path.is_file():
        raise SyqError(f"synthesis report {top_path} not found: run the synth step first")
    summary = parse_csynth_xml(top_path)
    if summary["module"] != top:
        raise SyqError(f"{top_path} reports the function {summary['module']}, the project's top "
                       f"is {top}: run the synthesis of this project again")
    modules = [parse_csynth_xml(path) for path in sorted(report_dir.glob("*_csynth.xml"))]
    modules = [module for module in modules if module["module"] != top]
    units = []
    for name, matches in unit_modules(modules, unit_names).items():
        row = {"unit": name, "module": None}
        if matches:
            function = matches[0]
            intervals = [loop["ii"] for module in matches for loop in module["loops"]
                         if loop["ii"] is not None]
            row.update(module=function["module"], ii=max(intervals) if intervals else None,
                       latency_worst=function["latency_worst"],
                       interval_max=function["interval_max"], **function["resources"])
        units.append(row)
    return {"top": summary, "units": units, "modules": modules}


COSIM_ROW = re.compile(r"^\|\s*(Verilog|VHDL)\s*\|\s*(\w+)\s*\|(.*)\|\s*$")


def parse_cosim_report(path):
    """Return the Verilog row of a co-simulation report: status, latency and interval (cycles)."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        raise SyqError(f"co-simulation report {path} not readable ({error}): run cosim again") from None
    for line in text.splitlines():
        match = COSIM_ROW.match(line.strip())
        if match and match.group(1) == "Verilog":
            fields = [_number(value) for value in match.group(3).split("|")]
            fields += [None] * (7 - len(fields))
            return {"rtl": "verilog", "status": match.group(2),
                    "latency_min": fields[0], "latency_average": fields[1], "latency_max": fields[2],
                    "interval_min": fields[3], "interval_average": fields[4],
                    "interval_max": fields[5], "total_cycles": fields[6]}
    raise SyqError(f"{path} has no Verilog result row: check the co-simulation log")


HEADER_DEFINE = re.compile(r"#define\s+X\w*?_CONTROL_ADDR_(\w+?)_DATA\s+0x([0-9a-fA-F]+)")
HEADER_AP_CTRL = re.compile(r"#define\s+X\w*?_CONTROL_ADDR_AP_CTRL\s+0x([0-9a-fA-F]+)")


def register_offsets(ip_dir):
    """Return the AXI-lite register offsets of the exported IP's driver header, or None.

    The header is ``x<top>_hw.h`` under the IP folder; its defines
    ``X<TOP>_CONTROL_ADDR_AP_CTRL`` and ``X<TOP>_CONTROL_ADDR_<ARG>_DATA`` give the offsets.
    Keys are "ap_ctrl" and the lower-case argument names.
    """
    headers = sorted(Path(ip_dir).glob("**/x*_hw.h"))
    if not headers:
        return None
    text = headers[0].read_text(errors="replace")
    offsets = {name.lower(): int(value, 16) for name, value in HEADER_DEFINE.findall(text)}
    control = HEADER_AP_CTRL.search(text)
    if control:
        offsets["ap_ctrl"] = int(control.group(1), 16)
    return offsets or None


STEP_MARKER = re.compile(r"^INFO: \[syq\] step (\w+)")
TESTBENCH_COUNT = re.compile(r"^(frames|mismatches) (\d+)\s*$")


def testbench_summary(log_text, step):
    """Return {"frames": n, "mismatches": n} that the testbench printed during `step`, or {}.

    run_hls.tcl prints "INFO: [syq] step NAME" before each step, and the testbench prints
    "frames N" and "mismatches N"; the last values within the step count.
    """
    summary, current = {}, None
    for line in log_text.splitlines():
        marker = STEP_MARKER.match(line)
        if marker:
            current = marker.group(1)
            continue
        count = TESTBENCH_COUNT.match(line.strip())
        if count and current == step:
            summary[count.group(1)] = int(count.group(2))
    return summary


# ---- the flow --------------------------------------------------------------------------------


def compare_cosim_output(project, interface, expected_raw):
    """Return (mismatching frames, frames) of tb_data/output.bin against the golden model."""
    path = Path(project) / TB_DATA / "output.bin"
    if not path.is_file():
        raise SyqError(f"co-simulation wrote no {path}: check {project}/{REPORT_FOLDER}/{LOG_NAME}")
    words = packing.read_words(path, interface.axi_output_bits)
    expected_words = len(expected_raw) * interface.output_words_per_frame
    if len(words) != expected_words:
        raise SyqError(f"co-simulation wrote {len(words)} output words to {path}, the golden model "
                       f"expects {expected_words}: the RTL lost or added stream words")
    raw = interface.unpack_outputs(words)
    differing = np.any(raw != expected_raw, axis=1)
    return int(differing.sum()), int(len(raw))


def run_hls(project, steps=DEFAULT_STEPS, data=None, tool=None):
    """Run the vendor HLS flow of `project` and return the report (also PROJECT/hls/report.json).

    `data` (generator.inputs.Inputs) is required for csim and cosim. `tool` is (name, path);
    by default the first of HLS_TOOLS on PATH, and SyqError names the command to run elsewhere
    when there is none.
    """
    project = Path(project)
    manifest, _, interface = load_project(project)
    steps = order_steps(steps)
    expected_raw = None
    if needs_test_data(steps):
        if data is None:
            raise SyqError("the csim and cosim steps need inputs: pass --dataset NAME or --inputs X.npy")
        # Written even without a tool, so the project folder can run the flow on another machine.
        expected_raw = write_test_data(project, data)
    tool = tool or find_hls_tool()
    if tool is None:
        raise SyqError(missing_tool_message(project, steps))
    # A report of an earlier run must not outlive a failing one.
    (project / REPORT_FOLDER / REPORT_NAME).unlink(missing_ok=True)
    log_path = run_tool(project, steps, tool)

    report = {"project": str(project), "tool": tool[0], "steps": steps, "log": str(log_path),
              "board": manifest["board"], "top": manifest["top"]}
    if expected_raw is not None:
        report["frames"] = int(len(expected_raw))
        report["inputs"] = data.description
    log_text = log_path.read_text(errors="replace")
    if "csim" in steps:
        # The script exits non-zero on any mismatch, so reaching this point means a pass.
        report["csim"] = {"status": "pass", **testbench_summary(log_text, "csim")}
    solution = project / HLS_PROJECT / SOLUTION
    if any(step in steps for step in ("synth", "cosim", "export")):
        unit_names = [unit["name"] for unit in manifest["units"]]
        synthesis = parse_synthesis_reports(solution / "syn" / "report", manifest["top"], unit_names)
        estimates = {unit["name"]: unit for unit in manifest["estimate"]["units"]}
        for row in synthesis["units"]:
            estimate = estimates.get(row["unit"], {})
            row["estimate"] = {key: estimate.get(key) for key in ("cycles", "lut", "bram18", "dsp")}
        report["synthesis"] = synthesis
    if "cosim" in steps:
        mismatches, frames = compare_cosim_output(project, interface, expected_raw)
        cosim = {"frames": frames, "mismatches": mismatches,
                 "testbench": testbench_summary(log_text, "cosim")}
        cosim_report = solution / "sim" / "report" / f"{manifest['top']}_cosim.rpt"
        if cosim_report.is_file():
            cosim.update(parse_cosim_report(cosim_report))
        report["cosim"] = cosim
    if "export" in steps:
        ip_dir = project / IP_DIR
        if not (ip_dir / "component.xml").is_file():
            raise SyqError(f"the export step wrote no {ip_dir}/component.xml: see {log_path}")
        offsets = register_offsets(ip_dir)
        report["export"] = {"ip_dir": str(ip_dir), "registers": offsets or DEFAULT_REGISTERS,
                            "registers_from": "driver header" if offsets else "default map"}
    with atomic_file(project / REPORT_FOLDER / REPORT_NAME, "w") as stream:
        json.dump(report, stream, indent=2)
        stream.write("\n")
    if report.get("cosim", {}).get("mismatches"):
        cosim = report["cosim"]
        raise SyqError(f"co-simulation output differs from the golden model in "
                       f"{cosim['mismatches']} of {cosim['frames']} frames; details in "
                       f"{project}/{REPORT_FOLDER}/{REPORT_NAME}")
    return report
