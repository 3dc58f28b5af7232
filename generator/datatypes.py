"""Integer element types of the hardware graph: unsigned, signed (two's complement) and bipolar."""

import dataclasses

KINDS = ("uint", "int", "bipolar")


@dataclasses.dataclass(frozen=True)
class DataType:
    """An integer element type. Bipolar elements are 1 bit wide: bit 1 is +1, bit 0 is -1."""

    kind: str
    bits: int

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown element kind {self.kind!r}")
        if self.bits < 1 or (self.kind == "bipolar" and self.bits != 1):
            raise ValueError(f"invalid width {self.bits} for a {self.kind} element")

    @property
    def min(self):
        """Return the smallest value of the type."""
        if self.kind == "uint":
            return 0
        if self.kind == "bipolar":
            return -1
        return -(1 << (self.bits - 1))

    @property
    def max(self):
        """Return the largest value of the type."""
        if self.kind == "uint":
            return (1 << self.bits) - 1
        if self.kind == "bipolar":
            return 1
        return (1 << (self.bits - 1)) - 1

    @property
    def signed(self):
        """Tell whether the type has negative values."""
        return self.kind != "uint"

    @property
    def name(self):
        """Return a QONNX-style name such as UINT8, INT2 or BIPOLAR."""
        return "BIPOLAR" if self.kind == "bipolar" else f"{self.kind.upper()}{self.bits}"

    @property
    def hls_kind(self):
        """Return the element kind constant of the C++ library."""
        return {"uint": "syq::kUnsigned", "int": "syq::kSigned", "bipolar": "syq::kBipolar"}[self.kind]

    def contains(self, low, high):
        """Tell whether every value in [low, high] is representable."""
        return self.min <= low and high <= self.max

    def __str__(self):
        return self.name


def signed_bits_for(low, high):
    """Return the width of the smallest signed type holding every value in [low, high]."""
    bits = 1
    while -(1 << (bits - 1)) > low or (1 << (bits - 1)) - 1 < high:
        bits += 1
    return bits


def smallest_type(low, high):
    """Return the narrowest unsigned or signed type holding every value in [low, high]."""
    if low >= 0:
        bits = max(1, int(high).bit_length())
        return DataType("uint", bits)
    return DataType("int", signed_bits_for(low, high))


BIPOLAR = DataType("bipolar", 1)
UINT8 = DataType("uint", 8)
