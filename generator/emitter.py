"""Writing a hardware graph as a Vivado/Vitis HLS project (C++ from the jinja2 templates in hls/).

Project layout:

* ``src/top.cpp``, ``src/top.hpp``: one ``#pragma HLS DATAFLOW`` function ``syq_top`` with an
  AXI-stream input and output and the frame count on AXI-lite;
* ``src/params/<unit>.hpp``: each unit's Config struct and its weight/threshold memories;
* ``src/testbench.cpp``: reads packed input and expected output words, reports mismatches;
* ``include/syq/``: a copy of the library headers, so the folder builds on its own;
* ``run_hls.tcl``, ``README.md``, ``manifest.json``, ``graph.json`` + ``graph.npz``.
"""

import dataclasses
import json
import logging
import math
import shutil
from pathlib import Path

import jinja2
import numpy as np

import syq
from syq.errors import SyqError
from syq.generator import estimate, packing, serialize
from syq.generator.folding import folding_of
from syq.generator.hwgraph import MVAU, MaxPool, SlidingWindow, Thresholding
from syq.hls import INCLUDE_DIR, TEMPLATE_DIR
from syq.outputs import atomic_directory, check_replaceable

logger = logging.getLogger(__name__)

TOP_FUNCTION = "syq_top"
DEFAULT_AP_INT_MAX_W = 1024
LARGEST_AP_INT_MAX_W = 32768
STREAM_DEPTH = 2


def _environment():
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


def container_bits(bits):
    """Return the AXI slot width of an output element: the next power of two, at least 8."""
    return max(8, 1 << math.ceil(math.log2(bits)))


def _kind(dtype):
    return dtype.hls_kind


def input_container_bits(bits):
    """Return the transport width of an input element: the next power of two.

    A 3-bit element travels in 4 bits, so elements tile every AXI word exactly; the first unit
    decodes the container, which holds the same value.
    """
    return 1 << math.ceil(math.log2(bits)) if bits > 1 else 1


def _input_slot_bits(graph):
    return input_container_bits(graph.input_type.bits)


@dataclasses.dataclass
class Interface:
    """The accelerator's AXI-stream ports and frame formats (shared with C-sim and the driver)."""

    axi_input_bits: int
    axi_output_bits: int
    input_element_bits: int
    input_kind: str
    input_frame_elements: int
    output_element_bits: int
    output_kind: str
    output_container_bits: int
    output_frame_elements: int

    @property
    def input_words_per_frame(self):
        """Return the AXI words of one input frame."""
        return packing.axi_words_per_frame(self.input_frame_elements, self.input_element_bits,
                                           self.axi_input_bits)

    @property
    def output_words_per_frame(self):
        """Return the AXI words of one output frame."""
        return packing.axi_words_per_frame(self.output_frame_elements, self.output_container_bits,
                                           self.axi_output_bits)

    def pack_inputs(self, codes):
        """Pack an input stream (frames, elements) into AXI words (uint64 limbs)."""
        return packing.pack_axi_frames(codes, self.input_element_bits, self.input_kind,
                                       self.axi_input_bits)

    def pack_outputs(self, values):
        """Pack output frames into AXI words, as the accelerator writes them."""
        return packing.pack_axi_frames(values, self.output_element_bits, self.output_kind,
                                       self.axi_output_bits, self.output_container_bits)

    def unpack_outputs(self, words):
        """Unpack AXI output words into frames (frames, output elements)."""
        return packing.unpack_axi_frames(words, self.output_frame_elements, self.output_element_bits,
                                         self.output_kind, self.axi_output_bits,
                                         self.output_container_bits)


def _packing_kind(dtype):
    return {"uint": "unsigned", "int": "signed", "bipolar": "bipolar"}[dtype.kind]


def interface_of(graph, board):
    """Return the Interface of `graph` on `board` (AXI widths from the board's DMA port)."""
    output_type = graph.output_type
    container = container_bits(output_type.bits)
    axi_bits = max(board.dma_width, container)
    input_bits = _input_slot_bits(graph)
    if axi_bits % input_bits or axi_bits % container:
        raise SyqError(f"AXI width {axi_bits} is not a multiple of the {input_bits}-bit input or "
                       f"{container}-bit output elements")
    return Interface(axi_input_bits=axi_bits, axi_output_bits=axi_bits,
                     input_element_bits=input_bits, input_kind=_packing_kind(graph.input_type),
                     input_frame_elements=graph.input_elements,
                     output_element_bits=output_type.bits,
                     output_kind=_packing_kind(output_type), output_container_bits=container,
                     output_frame_elements=graph.output_elements)


def interface_from_manifest(manifest):
    """Rebuild the Interface stored in a project's manifest."""
    return Interface(**manifest["interface"])


# ---- parameters of each unit ----------------------------------------------------------------


def _c_integer(value):
    value = int(value)
    return f"{value}LL" if not -(1 << 31) <= value < (1 << 31) else str(value)


def _native_word_type(bits):
    """Return the narrowest C++ unsigned integer type of at least `bits` bits, or None above 64."""
    for width in (8, 16, 32, 64):
        if bits <= width:
            return f"uint{width}_t"
    return None


def _mvau_context(unit, input_bits=None):
    weights = packing.fold_matrix_weights(unit.weights, unit.pe, unit.simd)
    weight_bits = unit.weight_type.bits
    words = packing.pack_words(weights, weight_bits, _packing_kind(unit.weight_type), unit.simd)
    hex_words = packing.words_to_hex(words, unit.simd * weight_bits)
    tiles = weights.shape[1]
    weight_rows = [hex_words[pe * tiles:(pe + 1) * tiles] for pe in range(unit.pe)]
    thresholds = None
    if unit.thresholds is not None:
        folded = packing.fold_thresholds(unit.thresholds, unit.pe)
        thresholds = [[[_c_integer(value) for value in row] for row in bank] for bank in folded]
    scales = unit.position_scales if unit.position_scales is not None else np.ones(1, np.int64)
    raw = unit.thresholds is None
    output_type = unit.accumulator_type if raw else unit.output_type
    return {
        "unit": unit,
        "matrix_width": unit.matrix_width, "matrix_height": unit.matrix_height,
        "input_bits": input_bits or unit.input_type.bits, "input_kind": _kind(unit.input_type),
        "weight_bits": weight_bits, "weight_kind": _kind(unit.weight_type),
        "xnor": "true" if unit.xnor else "false",
        "kernel_positions": len(scales),
        "position_elements": unit.position_elements or unit.matrix_width,
        "scale_bits": max(1, int(scales.max()).bit_length()),
        "accumulator_bits": unit.accumulator_type.bits,
        "num_thresholds": unit.num_thresholds if not raw else 0,
        "output_offset": unit.output_offset,
        "output_bits": output_type.bits, "output_kind": _kind(output_type),
        "weight_word_bits": unit.simd * weight_bits,
        "weight_native_type": _native_word_type(unit.simd * weight_bits),
        "weight_rows": weight_rows, "position_scales": [int(value) for value in scales],
        "thresholds": thresholds, "raw": raw,
    }


def _thresholding_context(unit):
    shared = unit.channels == 1
    channels = unit.pe if shared else unit.channels
    rows = np.repeat(unit.thresholds, unit.pe, axis=0) if shared else unit.thresholds
    folded = packing.fold_thresholds(rows, unit.pe)
    vectors = unit.frame_elements // channels
    return {
        "unit": unit, "channels": channels, "vectors_per_frame": vectors,
        "input_bits": unit.input_type.bits, "input_kind": _kind(unit.input_type),
        "num_thresholds": unit.thresholds.shape[1], "threshold_bits": unit.threshold_type.bits,
        "output_offset": unit.output_offset, "output_bits": unit.output_type.bits,
        "output_kind": _kind(unit.output_type),
        "thresholds": [[[_c_integer(value) for value in row] for row in bank] for bank in folded],
    }


def _window_context(unit, element_bits=None):
    element_bits = element_bits or unit.element_type.bits
    # Without padding the pad value is never emitted, and a bipolar stream has no code for the
    # default pad value 0 (lowering widens bipolar streams only where a convolution pads).
    pad_code = 0
    if unit.padding:
        pad_code = packing.encode_elements(np.array([unit.pad_value]), element_bits,
                                           _packing_kind(unit.element_type))[0]
    return {"unit": unit, "element_bits": element_bits, "pad_value": int(pad_code)}


def _pool_context(unit, element_bits=None):
    return {"unit": unit, "element_bits": element_bits or unit.element_type.bits,
            "element_kind": _kind(unit.element_type)}


# ---- the dataflow chain -------------------------------------------------------------------


def _unit_output_type(unit):
    if isinstance(unit, MVAU):
        return unit.accumulator_type if unit.thresholds is None else unit.output_type
    if isinstance(unit, Thresholding):
        return unit.output_type
    return unit.element_type


def _unit_input_type(unit):
    if isinstance(unit, (MVAU, Thresholding)):
        return unit.input_type
    return unit.element_type


def _output_frame_elements(unit):
    if isinstance(unit, MVAU):
        return unit.matrix_height * unit.num_vectors
    if isinstance(unit, SlidingWindow):
        return unit.ofm_height * unit.ofm_width * unit.kernel_height * unit.kernel_width * unit.channels
    if isinstance(unit, MaxPool):
        return unit.ofm_height * unit.ofm_width * unit.channels
    return unit.frame_elements


def _input_container_units(graph):
    """Return the names of the units that see input elements in their transport container.

    Input elements travel in power-of-two containers (a 3-bit element in 4 bits). Sliding windows
    and max-pools at the start of the chain pass the containers on unchanged, and the first MVAU
    or Thresholding unit decodes them.
    """
    names = []
    for unit in graph.nodes:
        names.append(unit.name)
        if isinstance(unit, (MVAU, Thresholding)):
            break
    return names


def plan_dataflow(graph, interface):
    """Return the stages and streams of ``syq_top`` in order (template context, no C++ text)."""
    stages, streams = [], []

    def new_stream(elements, bits):
        name = f"stream{len(streams)}"
        streams.append({"name": name, "bits": elements * bits})
        return name

    first = graph.nodes[0]
    lanes, bits = first.input_elements, interface.input_element_bits
    container_units = _input_container_units(graph)
    current = new_stream(lanes, bits)
    stages.append({"kind": "axis_in", "output": current, "axi_bits": interface.axi_input_bits,
                   "element_bits": bits, "lanes": lanes,
                   "frame_elements": interface.input_frame_elements})
    frame_elements = interface.input_frame_elements
    for unit in graph.nodes:
        if unit.input_elements != lanes:
            group = math.lcm(lanes, unit.input_elements)
            output = new_stream(unit.input_elements, bits)
            stages.append({"kind": "convert", "input": current, "output": output,
                           "in_lanes": lanes, "out_lanes": unit.input_elements,
                           "element_bits": bits, "group": group,
                           "groups_per_frame": frame_elements // group})
            current, lanes = output, unit.input_elements
        out_bits = _unit_output_type(unit).bits
        if isinstance(unit, (SlidingWindow, MaxPool)) and unit.name in container_units:
            out_bits = interface.input_element_bits
        output = new_stream(unit.output_elements, out_bits)
        stage = {"input": current, "output": output, "name": unit.name}
        if isinstance(unit, MVAU):
            stage.update(kind="mvau_raw" if unit.thresholds is None else "mvau_threshold",
                         vectors_per_frame=unit.num_vectors)
        elif isinstance(unit, Thresholding):
            channels = unit.pe if unit.channels == 1 else unit.channels
            stage.update(kind="thresholding", vectors_per_frame=unit.frame_elements // channels)
        elif isinstance(unit, SlidingWindow):
            stage.update(kind="sliding_window")
        else:
            stage.update(kind="maxpool")
        stages.append(stage)
        current, lanes, bits = output, unit.output_elements, out_bits
        frame_elements = _output_frame_elements(unit)
    stages.append({"kind": "axis_out", "input": current, "lanes": lanes, "element_bits": bits,
                   "element_kind": _kind(graph.output_type),
                   "container_bits": interface.output_container_bits,
                   "axi_bits": interface.axi_output_bits,
                   "frame_elements": interface.output_frame_elements})
    return stages, streams


def required_ap_int_width(graph, streams, stages):
    """Return the widest ap_uint the design uses (streams, weights, width-converter buffers)."""
    widths = [stream["bits"] for stream in streams]
    for stage in stages:
        if stage["kind"] == "convert":
            widths.append((stage["in_lanes"] + stage["out_lanes"]) * stage["element_bits"])
        if stage["kind"] in ("axis_in", "axis_out"):
            widths.append(stage["axi_bits"])
    for unit in graph.nodes:
        if isinstance(unit, MVAU):
            widths.append(unit.simd * unit.weight_type.bits)
            widths.append(unit.simd * input_container_bits(unit.input_type.bits) +
                          unit.accumulator_type.bits)
    return max(widths)


# ---- writing the project -------------------------------------------------------------------


def _manifest(graph, board, interface, estimates):
    units = []
    for unit in graph.nodes:
        entry = {"name": unit.name, "type": type(unit).__name__}
        if isinstance(unit, MVAU):
            entry.update(kind=unit.kind, matrix_height=unit.matrix_height,
                         matrix_width=unit.matrix_width, vectors=unit.num_vectors, pe=unit.pe,
                         simd=unit.simd, weights=str(unit.weight_type),
                         inputs=str(unit.input_type), outputs=str(_unit_output_type(unit)),
                         accumulator=str(unit.accumulator_type),
                         thresholds=unit.num_thresholds, xnor=unit.xnor,
                         kernel_positions=unit.kernel_positions)
        elif isinstance(unit, Thresholding):
            entry.update(channels=unit.channels, pe=unit.pe, thresholds=int(unit.thresholds.shape[1]),
                         outputs=str(unit.output_type))
        elif isinstance(unit, SlidingWindow):
            entry.update(ifm=[unit.ifm_height, unit.ifm_width], channels=unit.channels,
                         kernel=[unit.kernel_height, unit.kernel_width], stride=unit.stride,
                         padding=unit.padding, simd=unit.simd)
        else:
            entry.update(ifm=[unit.ifm_height, unit.ifm_width], channels=unit.channels,
                         kernel=unit.kernel, stride=unit.stride, pe=unit.pe)
        units.append(entry)
    return {
        "format_version": 1,
        "syq_version": syq.__version__,
        "name": graph.name,
        "source": graph.source,
        "top": TOP_FUNCTION,
        "board": {"name": board.name, "part": board.part, "clock_mhz": board.clock_mhz,
                  "family": board.family},
        "interface": dataclasses.asdict(interface),
        "units": units,
        "folding": folding_of(graph),
        "estimate": estimates,
        "metadata": graph.metadata,
    }


def render_project(graph, board, folder):
    """Write every file of the project for `graph` into the existing `folder`."""
    environment = _environment()
    interface = interface_of(graph, board)
    stages, streams = plan_dataflow(graph, interface)
    width = required_ap_int_width(graph, streams, stages)
    if width > LARGEST_AP_INT_MAX_W:
        raise SyqError(f"the folding needs {width}-bit words, more than the {LARGEST_AP_INT_MAX_W} "
                       f"that ap_int supports; lower SIMD/PE of the widest layer")
    ap_int_max_w = DEFAULT_AP_INT_MAX_W if width <= DEFAULT_AP_INT_MAX_W else \
        int(math.ceil(width / 1024.0) * 1024)
    estimates = estimate.estimate_graph(graph, board)
    source = folder / "src"
    (source / "params").mkdir(parents=True)
    headers = []
    container_units = _input_container_units(graph)
    for unit in graph.nodes:
        container_bits = interface.input_element_bits if unit.name in container_units else None
        if isinstance(unit, MVAU):
            template, context = "params/mvau.hpp.j2", _mvau_context(unit, container_bits)
        elif isinstance(unit, Thresholding):
            template, context = "params/thresholding.hpp.j2", _thresholding_context(unit)
        elif isinstance(unit, SlidingWindow):
            template, context = "params/sliding_window.hpp.j2", _window_context(unit, container_bits)
        else:
            template, context = "params/maxpool.hpp.j2", _pool_context(unit, container_bits)
        header = f"params/{unit.name}.hpp"
        (source / header).write_text(environment.get_template(template).render(**context))
        headers.append(header)
    common = {"graph": graph, "board": board, "interface": interface, "stages": stages,
              "streams": streams, "headers": headers, "top": TOP_FUNCTION,
              "ap_int_max_w": ap_int_max_w, "stream_depth": STREAM_DEPTH,
              "estimates": estimates, "version": syq.__version__}
    for template, target in (("top.hpp.j2", source / "top.hpp"), ("top.cpp.j2", source / "top.cpp"),
                             ("testbench.cpp.j2", source / "testbench.cpp"),
                             ("run_hls.tcl.j2", folder / "run_hls.tcl"),
                             ("README.md.j2", folder / "README.md")):
        target.write_text(environment.get_template(template).render(**common))
    shutil.copytree(INCLUDE_DIR / "syq", folder / "include" / "syq")
    serialize.save_graph(graph, folder / "graph.json", folder / "graph.npz")
    manifest = _manifest(graph, board, interface, estimates)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def generate_project(graph, board, out_dir):
    """Write the HLS project of a folded `graph` to `out_dir` atomically; return its manifest.

    An earlier project at `out_dir` is replaced, with the results inside it (C-simulation, vendor
    HLS, deploy folder), because they belong to the old design. Any other existing path is rejected.
    """
    out_dir = Path(out_dir)
    check_replaceable(out_dir, "manifest.json", "syq project")
    stale = [name for name in ("csim", "tb_data", "hls_project", "hls", "deploy") if (out_dir / name).exists()]
    if stale:
        logger.warning("replacing project %s: its %s belong to the old design and are removed", out_dir,
                       ", ".join(stale))
    with atomic_directory(out_dir) as staging:
        manifest = render_project(graph, board, staging)
    logger.info("wrote HLS project %s (%d units, estimated %.0f frames/s at %g MHz)", out_dir,
                len(graph.nodes), manifest["estimate"]["fps"], board.clock_mhz)
    return manifest


def load_manifest(project):
    """Read PROJECT/manifest.json; raise SyqError when `project` is not a generated project."""
    path = Path(project) / "manifest.json"
    if not path.is_file():
        raise SyqError(f"{project} is not a syq project (no manifest.json): create one with "
                       f"`syq generate MODEL.onnx --out {project}`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise SyqError(f"damaged {path}: {error}; generate the project again") from None
