"""Folding: how many rows (PE) and columns (SIMD) each unit computes per cycle.

Constraints, which come from the streaming units: an MVAU's PE divides its rows (MH) and its SIMD
divides its columns (MW); a convolution's SIMD also divides its input channels (the sliding
window emits SIMD channels per word, and that word must not straddle two kernel positions);
a max-pool's PE divides its channels, and so does a per-channel Thresholding unit's PE.

`fold_for_cycles` gives each unit the cheapest folding that reaches a cycle target;
`fold_fastest` searches the smallest target whose estimate fits the board; `apply_folding`
validates a user-given folding and never changes it silently.
"""

import json
import logging
from pathlib import Path

from syq.errors import SyqError
from syq.generator import estimate
from syq.generator.hwgraph import MVAU, MaxPool, SlidingWindow, Thresholding

logger = logging.getLogger(__name__)


def divisors(number):
    """Return the positive divisors of `number` in ascending order."""
    return [value for value in range(1, number + 1) if number % value == 0]


def _window_of(graph, mvau):
    index = graph.nodes.index(mvau)
    if index > 0 and isinstance(graph.nodes[index - 1], SlidingWindow):
        return graph.nodes[index - 1]
    return None


def valid_simd(graph, unit):
    """Return the SIMD values allowed for an MVAU."""
    choices = divisors(unit.matrix_width)
    window = _window_of(graph, unit)
    if window is not None:
        choices = [value for value in choices if window.channels % value == 0]
    if unit.position_scales is not None:
        choices = [value for value in choices if unit.position_elements % value == 0]
    return choices


def valid_pe(graph, unit):
    """Return the PE values allowed for an MVAU, Thresholding or MaxPool unit."""
    if isinstance(unit, MVAU):
        return divisors(unit.matrix_height)
    if isinstance(unit, Thresholding) and unit.channels == 1:
        return divisors(unit.frame_elements)
    return divisors(unit.channels)


def set_mvau_folding(graph, unit, pe, simd):
    """Set an MVAU's folding and keep its sliding window's SIMD equal to it."""
    unit.pe, unit.simd = pe, simd
    window = _window_of(graph, unit)
    if window is not None:
        window.simd = simd


def _cheapest(graph, unit, target_cycles):
    """Give `unit` the cheapest folding with cycles <= target (the fastest if none reaches it)."""
    if isinstance(unit, SlidingWindow):
        return
    if isinstance(unit, MVAU):
        options = [(pe, simd) for pe in valid_pe(graph, unit) for simd in valid_simd(graph, unit)]
    else:
        options = [(pe, pe) for pe in valid_pe(graph, unit)]
    scored = []
    for pe, simd in options:
        _apply(graph, unit, pe, simd)
        cost = estimate.estimate_unit(unit)
        window = _window_of(graph, unit) if isinstance(unit, MVAU) else None
        cycles = max(cost.cycles, window.cycles if window is not None else 0)
        scored.append((cycles > target_cycles, cost.lut + 200 * cost.bram18 + 100 * cost.dsp
                       if cycles <= target_cycles else cycles, pe * simd, pe, simd))
    _, _, _, pe, simd = min(scored)
    _apply(graph, unit, pe, simd)


def _apply(graph, unit, pe, simd):
    if isinstance(unit, MVAU):
        set_mvau_folding(graph, unit, pe, simd)
    else:
        unit.pe = pe


def fold_for_cycles(graph, target_cycles):
    """Fold every unit to reach `target_cycles` per frame where possible; return the graph."""
    for unit in graph.nodes:
        _cheapest(graph, unit, target_cycles)
    return graph


def fold_for_fps(graph, board, fps):
    """Fold for a target throughput at the board clock; warn when it cannot be reached."""
    if not fps > 0:
        raise SyqError(f"invalid --fps {fps}: it must be positive")
    target = max(1, int(board.clock_mhz * 1e6 // fps))
    fold_for_cycles(graph, target)
    reached = estimate.estimate_graph(graph, board)
    if reached["max_cycles"] > target:
        logger.warning("--fps %g needs %d cycles per frame; the fastest folding reaches %d (%s)",
                       fps, target, reached["max_cycles"], reached["bottleneck"])
    if not reached["fits"]:
        logger.warning("the folding for %g frames/s exceeds the %s budget: %s > %s", fps,
                       board.name, reached["total"], reached["budget"])
    return graph


def _candidate_targets(graph):
    """Return every cycle count that some unit reaches with some valid folding, ascending."""
    targets = set()
    for unit in graph.nodes:
        if isinstance(unit, MVAU):
            vectors = unit.num_vectors
            for pe in valid_pe(graph, unit):
                for simd in valid_simd(graph, unit):
                    targets.add((unit.matrix_height // pe) * (unit.matrix_width // simd) * vectors)
        elif not isinstance(unit, SlidingWindow):
            for pe in valid_pe(graph, unit):
                targets.add(unit.frame_elements // pe)
    return sorted(targets)


def fold_fastest(graph, board):
    """Fold for the highest throughput whose estimated resources fit the board's budget."""
    targets = _candidate_targets(graph)
    low, high = 0, len(targets) - 1
    fold_for_cycles(graph, targets[high])
    best = targets[high]
    while low <= high:
        middle = (low + high) // 2
        fold_for_cycles(graph, targets[middle])
        if estimate.fits(graph, board):
            best, high = targets[middle], middle - 1
        else:
            low = middle + 1
    fold_for_cycles(graph, best)
    if not estimate.fits(graph, board):
        logger.warning("even the slowest folding exceeds the %s budget", board.name)
    return graph


def folding_of(graph):
    """Return the folding of `graph` as a dict: unit name -> {"pe": .., "simd": ..}."""
    result = {}
    for unit in graph.nodes:
        if isinstance(unit, MVAU):
            result[unit.name] = {"pe": unit.pe, "simd": unit.simd}
        elif isinstance(unit, (Thresholding, MaxPool)):
            result[unit.name] = {"pe": unit.pe}
    return result


def load_folding(path):
    """Read a folding JSON file: {"layer0": {"pe": 16, "simd": 49}, ...}."""
    path = Path(path)
    try:
        folding = json.loads(path.read_text())
    except FileNotFoundError:
        raise SyqError(f"folding file {path} not found") from None
    except (OSError, json.JSONDecodeError) as error:
        raise SyqError(f"invalid folding file {path}: {error}") from None
    if not isinstance(folding, dict):
        raise SyqError(f"invalid folding file {path}: expected an object mapping unit names to "
                       f"{{\"pe\": P, \"simd\": S}}")
    return folding


def apply_folding(graph, folding, source="folding"):
    """Apply a user folding dict; raise SyqError naming the unit and the valid values."""
    units = {unit.name: unit for unit in graph.nodes if not isinstance(unit, SlidingWindow)}
    for name, values in folding.items():
        if name not in units:
            raise SyqError(f"{source}: unknown unit {name!r}; the units are {', '.join(units)}")
        if not isinstance(values, dict) or not set(values) <= {"pe", "simd"}:
            raise SyqError(f"{source}: {name} must map to {{\"pe\": P, \"simd\": S}}, got {values!r}")
        unit = units[name]
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise SyqError(f"{source}: {key} of {name} must be a whole number, got {value!r} "
                               f"(write {key}: 4, not {key}: \"4\")")
        pe = values.get("pe", unit.pe)
        if pe not in valid_pe(graph, unit):
            raise SyqError(f"{source}: pe {pe} of {name} is invalid; valid values: "
                           f"{', '.join(map(str, valid_pe(graph, unit)))}")
        if isinstance(unit, MVAU):
            simd = values.get("simd", unit.simd)
            if simd not in valid_simd(graph, unit):
                raise SyqError(f"{source}: simd {simd} of {name} is invalid; valid values: "
                               f"{', '.join(map(str, valid_simd(graph, unit)))}")
            set_mvau_folding(graph, unit, pe, simd)
        elif "simd" in values:
            raise SyqError(f"{source}: {name} is a {type(unit).__name__} and takes only pe")
        else:
            unit.pe = pe
    return graph
