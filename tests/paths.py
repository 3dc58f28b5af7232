"""Paths of the test data shipped with the repository."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
#: Two Brevitas bnn_pynq TFC models from the public QONNX model zoo (BSD-3, licence beside them).
ZOO_DIR = DATA_DIR / "qonnx-zoo-tfc"
