"""Cycles, throughput, latency and FPGA resources of a folded hardware graph (estimates).

The cost model (documented in ``docs/cost-model.md``) follows the FINN-R analytical model for
matrix-vector units (Blott et al., ACM TRETS 2018) with our own terms for the per-position
scale multipliers, and simple line-buffer models for the other units. It is an estimate for
folding decisions, not a synthesis result.
"""

import dataclasses
import math

from syq.generator.hwgraph import MVAU, MaxPool, SlidingWindow, Thresholding

LUTRAM_MAX_DEPTH = 128  # memories up to this depth go to LUTRAM, deeper ones to BRAM
DSP_MULTIPLIER_BITS = (18, 25)  # one DSP48 multiplies an 18-bit by a 25-bit operand


def bram18_for(depth, width):
    """Return the 18 Kbit block RAMs of a memory of `depth` words of `width` bits."""
    if depth <= 0 or width <= 0:
        return 0
    if width == 1:
        return math.ceil(depth / 16384)
    if width == 2:
        return math.ceil(depth / 8192)
    if width <= 4:
        return math.ceil(depth / 4096) * math.ceil(width / 4)
    if width <= 9:
        return math.ceil(depth / 2048) * math.ceil(width / 9)
    if width <= 18 or depth > 512:
        return math.ceil(depth / 1024) * math.ceil(width / 18)
    return math.ceil(depth / 512) * math.ceil(width / 36)


def _memory(depth, width, copies):
    """Return (LUT, BRAM18) of `copies` memories of `depth` x `width` bits."""
    if depth <= LUTRAM_MAX_DEPTH:
        return copies * width * math.ceil(depth / 64), 0
    return 0, copies * bram18_for(depth, width)


@dataclasses.dataclass
class UnitEstimate:
    """Estimated cost of one unit."""

    name: str
    kind: str
    pe: int
    simd: int
    cycles: int
    lut: int
    bram18: int
    dsp: int


def estimate_mvau(unit):
    """Return the UnitEstimate of an MVAU."""
    pe, simd = unit.pe, unit.simd
    weight_bits = unit.weight_type.bits
    input_bits = unit.input_type.bits
    accumulator_bits = unit.accumulator_type.bits
    if unit.xnor:
        lanes, product_bits = simd, 1
    elif unit.weight_type.kind == "bipolar":
        lanes, product_bits = simd * input_bits, input_bits + 1
    elif weight_bits == 2:
        lanes, product_bits = simd * (input_bits + 1), input_bits + 1
    else:
        product_bits = weight_bits + input_bits
        lanes = simd * (2 * math.ceil(product_bits / 6) - 1) * product_bits
    adder_tree = product_bits * (2 * simd - 1)
    comparators = unit.num_thresholds * (accumulator_bits + 1)
    scaling = 0
    dsp = 0
    if unit.kernel_positions > 1:
        # A partial-sum register and one scale multiply per PE.
        scaling = accumulator_bits
        fits_one = unit.scale_bits <= DSP_MULTIPLIER_BITS[0] and accumulator_bits <= DSP_MULTIPLIER_BITS[1]
        dsp = pe * (1 if fits_one else 2)
    lut = 300 + 1.1 * pe * (lanes + adder_tree + accumulator_bits + comparators + scaling)
    tiles = unit.matrix_height * unit.matrix_width // (pe * simd)
    weight_lut, weight_bram = _memory(tiles, simd * weight_bits, pe)
    threshold_lut, threshold_bram = _memory(unit.matrix_height // pe,
                                            unit.num_thresholds * (accumulator_bits + 1), pe)
    return UnitEstimate(unit.name, "MVAU", pe, simd, unit.cycles,
                        int(round(lut + weight_lut + threshold_lut)), weight_bram + threshold_bram, dsp)


def estimate_thresholding(unit):
    """Return the UnitEstimate of a Thresholding unit."""
    lanes = unit.pe
    levels = unit.thresholds.shape[1]
    bits = unit.threshold_type.bits
    rows = max(1, unit.channels // unit.pe) if unit.channels > 1 else 1
    memory_lut, memory_bram = _memory(rows, levels * bits, lanes)
    lut = 100 + 1.1 * lanes * levels * bits + memory_lut
    cycles = unit.frame_elements // unit.pe
    return UnitEstimate(unit.name, "Thresholding", unit.pe, unit.pe, cycles, int(round(lut)),
                        memory_bram, 0)


def estimate_sliding_window(unit):
    """Return the UnitEstimate of a sliding-window unit (a line buffer of kernel_height + 1 rows)."""
    bits = unit.element_type.bits
    depth = (unit.kernel_height + 1) * unit.ifm_width * unit.channels // unit.simd
    memory_lut, memory_bram = _memory(depth, unit.simd * bits, 1)
    lut = 250 + 2 * unit.simd * bits + memory_lut
    return UnitEstimate(unit.name, "SlidingWindow", unit.simd, unit.simd, unit.cycles,
                        int(round(lut)), memory_bram, 0)


def estimate_max_pool(unit):
    """Return the UnitEstimate of a max-pool unit (a buffer of one output row)."""
    bits = unit.element_type.bits
    depth = unit.ofm_width * unit.channels // unit.pe
    memory_lut, memory_bram = _memory(depth, unit.pe * bits, 1)
    lut = 120 + 2 * unit.pe * bits + memory_lut
    return UnitEstimate(unit.name, "MaxPool", unit.pe, unit.pe, unit.cycles, int(round(lut)),
                        memory_bram, 0)


ESTIMATORS = {MVAU: estimate_mvau, Thresholding: estimate_thresholding,
              SlidingWindow: estimate_sliding_window, MaxPool: estimate_max_pool}


def estimate_unit(unit):
    """Return the UnitEstimate of any unit."""
    return ESTIMATORS[type(unit)](unit)


def estimate_graph(graph, board):
    """Return a dict with per-unit estimates and totals at the board clock."""
    units = [estimate_unit(unit) for unit in graph.nodes]
    bottleneck = max(units, key=lambda entry: entry.cycles)
    clock_hz = board.clock_mhz * 1e6
    total = {key: sum(getattr(entry, key) for entry in units) for key in ("lut", "bram18", "dsp")}
    latency_cycles = sum(entry.cycles for entry in units)
    return {
        "board": board.name,
        "clock_mhz": board.clock_mhz,
        "units": [dataclasses.asdict(entry) for entry in units],
        "bottleneck": bottleneck.name,
        "max_cycles": bottleneck.cycles,
        "fps": clock_hz / bottleneck.cycles,
        "latency_cycles": latency_cycles,
        "latency_us": latency_cycles / board.clock_mhz,
        "total": total,
        "budget": board.budget(),
        "fits": all(total[key] <= board.budget()[key] for key in total),
    }


def fits(graph, board):
    """Tell whether the estimated resources of `graph` fit the board's budget."""
    return estimate_graph(graph, board)["fits"]
