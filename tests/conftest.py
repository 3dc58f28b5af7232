"""Shared fixtures: small real training runs reused by several test modules."""

import logging

import pytest

from syq.training.trainer import TrainConfig, train


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A ternary TFC trained for 3 epochs on scikit-learn digits (real data, a few seconds)."""
    out = tmp_path_factory.mktemp("digits-run")
    config = TrainConfig(model="tfc", dataset="digits", epochs=3, batch_size=64, lr=3e-3, seed=1)
    metrics = train(config, out, progress=False)
    return out, metrics


@pytest.fixture(autouse=True)
def _quiet_third_party_logs():
    for name in ("torch.onnx", "onnx_ir", "onnxscript"):
        logging.getLogger(name).setLevel(logging.WARNING)
