"""syq: SYQ-quantized networks from Brevitas training to bit-exact HLS dataflow accelerators."""

__version__ = "0.1.0"
