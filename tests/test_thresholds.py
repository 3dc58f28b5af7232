from fractions import Fraction

import numpy as np
import pytest

from syq.errors import SyqError
from syq.generator.thresholds import (ActivationQuantizer, constant_row_thresholds,
                                      layer_thresholds, row_thresholds)


def _unsigned(bits, scale=1, relu=False, rounding="ROUND"):
    return ActivationQuantizer("quant", Fraction(scale), 0, 2 ** bits - 1, rounding, relu)


def test_round_half_even_ties_on_accumulator():
    # y = acc / 2: acc = 1, 3, 5 land on 0.5, 1.5, 2.5, which round to 0, 2, 2.
    thresholds = row_thresholds(Fraction(1, 2), Fraction(0), _unsigned(2), -100, 100)
    assert thresholds == [2, 3, 6]


def test_thresholds_reproduce_quantizer_on_every_accumulator():
    rng = np.random.default_rng(0)
    for _ in range(200):
        quantizer = ActivationQuantizer(
            "quant", Fraction(int(rng.integers(1, 8)), int(rng.choice([1, 2, 4, 8]))),
            int(rng.integers(-4, 1)), int(rng.integers(1, 5)),
            str(rng.choice(["ROUND", "HALF_UP", "HALF_DOWN", "FLOOR", "CEIL"])), bool(rng.integers(2)))
        a = Fraction(int(rng.integers(1, 9)), int(rng.choice([1, 2, 4])))
        b = Fraction(int(rng.integers(-20, 21)), int(rng.choice([1, 2, 4])))
        thresholds = row_thresholds(a, b, quantizer, -40, 40)
        for accumulator in range(-40, 41):
            count = sum(accumulator >= threshold for threshold in thresholds)
            assert quantizer.lowest_level + count == quantizer.quantize(a * accumulator + b)


def test_half_up_rounds_negative_ties_away_from_zero():
    quantizer = ActivationQuantizer("quant", Fraction(1), -2, 1, "HALF_UP")
    assert quantizer.quantize(Fraction(-3, 2)) == -2
    assert quantizer.quantize(Fraction(1, 2)) == 1
    assert quantizer.quantize(Fraction(-1, 2)) == -1


def test_relu_raises_lowest_level_to_zero():
    quantizer = ActivationQuantizer("quant", Fraction(1), -2, 1, "ROUND", relu=True)
    assert quantizer.lowest_level == 0
    assert [boundary.level for boundary in quantizer.boundaries()] == [1]


def test_bipolar_threshold_counts_zero_as_plus_one():
    quantizer = ActivationQuantizer("bipolar")
    assert row_thresholds(Fraction(1), Fraction(-3), quantizer, -10, 10) == [3]
    assert quantizer.quantize(Fraction(0)) == 1


def test_thresholds_clipped_to_accumulator_range():
    quantizer = _unsigned(2)
    assert row_thresholds(Fraction(1), Fraction(100), quantizer, -5, 5) == [-5, -5, -5]
    assert row_thresholds(Fraction(1), Fraction(-100), quantizer, -5, 5) == [6, 6, 6]


def test_constant_row_outputs_level_of_bias():
    quantizer = _unsigned(2)
    assert constant_row_thresholds(Fraction(3, 2), quantizer, -7, 7) == [-7, -7, 8]
    rows = layer_thresholds([Fraction(0)], [Fraction(3, 2)], quantizer, [-7], [7])
    assert rows.tolist() == [[-7, -7, 8]]


def test_non_positive_factor_rejected_by_row_thresholds():
    with pytest.raises(ValueError):
        row_thresholds(Fraction(-1), Fraction(0), _unsigned(2), -5, 5)


def test_unknown_rounding_mode_rejected():
    with pytest.raises(SyqError, match="rounding_mode"):
        ActivationQuantizer("quant", Fraction(1), 0, 3, "STOCHASTIC")
