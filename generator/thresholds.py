"""Integer thresholds for quantized activations, in exact rational arithmetic.

A layer's real pre-activation is ``y = a * acc + b`` for its integer accumulator ``acc``. Its
output quantizer maps y to an integer level. For every level L above the lowest one, the unit
counts ``acc >= T_L``; this module finds the integer ``T_L`` that makes the count equal to what
the QONNX quantizer computes, including its rounding at exact ties:

* QONNX ``Quant`` clamps ``u = y / s`` to [min, max] and rounds (``ROUND`` = half to even), so
  level L is reached when ``u >= L - 1/2`` (L even) or ``u > L - 1/2`` (L odd) under ``ROUND``;
* ``BipolarQuant`` gives +1 when ``y >= 0``;
* a ``Relu`` before the quantizer makes every level that ``y = 0`` reaches always reached.

``a`` and ``b`` are ``fractions.Fraction`` values built from the float32/float64 parameters of
the QONNX graph, so ties are detected exactly. ``a <= 0`` is not allowed here: the lowering
negates the weight row for ``a < 0`` and handles ``a == 0`` as a constant level.

NOTE: qonnx executes the graph in float32. Where float32 rounding moves a pre-activation onto
or across a rounding boundary that the exact value does not touch, QONNX and these thresholds
differ by one level. That needs a value within about 1e-7 (relative) of a boundary, for example
parameters that tie in decimal but not in binary (0.3 * (1/3) + 0.4 against 1.5 / 3).
"""

import dataclasses
import math
from fractions import Fraction

import numpy as np

from syq.errors import SyqError

ROUNDING_MODES = ("ROUND", "HALF_EVEN", "HALF_UP", "HALF_DOWN", "FLOOR", "CEIL")


def fraction(value):
    """Return the exact rational value of a float (or int)."""
    return Fraction(float(value)) if not isinstance(value, (int, Fraction)) else Fraction(value)


@dataclasses.dataclass(frozen=True)
class Boundary:
    """Level `level` is reached when ``y >= value`` (or ``y > value`` when `strict`)."""

    level: int
    value: Fraction
    strict: bool

    def reached(self, y):
        """Tell whether pre-activation `y` (a Fraction) reaches this level."""
        return y > self.value if self.strict else y >= self.value


@dataclasses.dataclass(frozen=True)
class ActivationQuantizer:
    """An output quantizer: QONNX ``Quant`` (kind "quant") or ``BipolarQuant`` (kind "bipolar")."""

    kind: str
    scale: Fraction = Fraction(1)
    low: int = -1
    high: int = 1
    rounding: str = "ROUND"
    relu: bool = False

    def __post_init__(self):
        if self.kind == "quant" and self.rounding not in ROUNDING_MODES:
            raise SyqError(f"unsupported rounding_mode {self.rounding!r}: use one of "
                           f"{', '.join(ROUNDING_MODES)}")
        if not self.scale > 0:
            raise SyqError(f"activation scale {float(self.scale)} is not positive")

    def quantize(self, y):
        """Return the output level of pre-activation `y` (a Fraction), exactly as QONNX does."""
        if self.relu and y < 0:
            y = Fraction(0)
        if self.kind == "bipolar":
            return 1 if y >= 0 else -1
        u = min(max(y / self.scale, Fraction(self.low)), Fraction(self.high))
        return _round(u, self.rounding)

    @property
    def lowest_level(self):
        """Return the lowest level the quantizer can output (after a Relu, the level of 0)."""
        if self.relu:
            return self.quantize(Fraction(0))
        return -1 if self.kind == "bipolar" else self.low

    @property
    def highest_level(self):
        """Return the highest level the quantizer can output."""
        return 1 if self.kind == "bipolar" else self.high

    def boundaries(self):
        """Return the boundary of every level above the lowest one, in ascending order."""
        if self.kind == "bipolar":
            return [] if self.lowest_level == 1 else [Boundary(1, Fraction(0), False)]
        result = []
        for level in range(self.lowest_level + 1, self.high + 1):
            edge, strict = _level_edge(level, self.rounding)
            result.append(Boundary(level, edge * self.scale, strict))
        return result


def _round(u, mode):
    floor = math.floor(u)
    fraction_part = u - floor
    if mode in ("ROUND", "HALF_EVEN"):
        if fraction_part > Fraction(1, 2):
            return floor + 1
        if fraction_part < Fraction(1, 2):
            return floor
        return floor if floor % 2 == 0 else floor + 1
    if mode == "HALF_UP":
        magnitude = math.floor(abs(u) + Fraction(1, 2))
        return magnitude if u >= 0 else -magnitude
    if mode == "HALF_DOWN":
        magnitude = math.ceil(abs(u) - Fraction(1, 2))
        return magnitude if u >= 0 else -magnitude
    if mode == "FLOOR":
        return floor
    return math.ceil(u)


def _level_edge(level, mode):
    """Return (edge, strict): u reaches `level` when u >= edge, or u > edge when strict."""
    half = Fraction(level) - Fraction(1, 2)
    if mode in ("ROUND", "HALF_EVEN"):
        return half, level % 2 != 0
    if mode == "HALF_UP":  # ties away from zero
        return half, half < 0
    if mode == "HALF_DOWN":  # ties toward zero
        return half, half > 0
    if mode == "FLOOR":
        return Fraction(level), False
    return Fraction(level - 1), True  # CEIL


def row_thresholds(a, b, quantizer, accumulator_low, accumulator_high):
    """Return the integer thresholds of one row with ``y = a * acc + b`` and ``a > 0``.

    Thresholds are clipped to [accumulator_low, accumulator_high + 1]: a threshold at or below
    the lowest accumulator value always counts, one above the highest never does.
    """
    if not a > 0:
        raise ValueError("row_thresholds needs a > 0")
    thresholds = []
    for boundary in quantizer.boundaries():
        exact = (boundary.value - b) / a
        threshold = math.floor(exact) + 1 if boundary.strict else math.ceil(exact)
        thresholds.append(min(max(threshold, accumulator_low), accumulator_high + 1))
    return thresholds


def constant_row_thresholds(b, quantizer, accumulator_low, accumulator_high):
    """Return thresholds of a row whose pre-activation is the constant `b` (a == 0)."""
    level = quantizer.quantize(b)
    return [accumulator_low if boundary.level <= level else accumulator_high + 1
            for boundary in quantizer.boundaries()]


def layer_thresholds(a, b, quantizer, accumulator_low, accumulator_high):
    """Return an (rows, levels) int64 array of thresholds for per-row Fractions `a` >= 0 and `b`.

    `accumulator_low`/`accumulator_high` are per-row integer sequences.
    """
    rows = []
    for a_row, b_row, low, high in zip(a, b, accumulator_low, accumulator_high):
        if a_row == 0:
            rows.append(constant_row_thresholds(b_row, quantizer, int(low), int(high)))
        else:
            rows.append(row_thresholds(a_row, b_row, quantizer, int(low), int(high)))
    count = len(quantizer.boundaries())
    return np.array(rows, dtype=np.int64).reshape(len(rows), count)
