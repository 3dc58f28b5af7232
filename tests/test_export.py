import json

import brevitas.nn as qnn
import numpy as np
import onnx
import pytest
import torch
from torch import nn

from syq.errors import SyqError
from syq.generator import qonnx_exec
from syq.training import checkpoint as ckpt
from syq.training.datasets import load_dataset
from syq.training.export import (check_export, export_checkpoint, export_to_qonnx,
                                 exported_weight_codes, trained_weight_codes)
from syq.training.quantizers import SyqWeightQuant


class _OneRow(nn.Module):
    """A single ternary row w = [0.30, -0.05, 0.90, -0.60], t = 0.05, alpha = 0.5."""

    input_shape = (4,)

    def __init__(self):
        super().__init__()
        self.input_quant = qnn.QuantIdentity(return_quant_tensor=True)
        self.layer = qnn.QuantLinear(4, 1, bias=False, weight_quant=SyqWeightQuant,
                                     weight_granularity="layer", weight_threshold=0.05)
        with torch.no_grad():
            self.layer.weight.copy_(torch.tensor([[0.30, -0.05, 0.90, -0.60]]))
        self.layer.weight_quant.init_tensor_quant()
        with torch.no_grad():
            self.layer.weight_quant.tensor_quant.scale_parameter.fill_(0.5)

    def forward(self, x):
        return self.layer(self.input_quant(x))


def test_one_row_exports_trained_codes(tmp_path):
    model = _OneRow().eval()
    assert trained_weight_codes(model)[0].tolist() == [[1, -1, 1, -1]]
    exported = export_to_qonnx(model, tmp_path / "row.onnx")
    assert exported_weight_codes(exported)[0].tolist() == [[1, -1, 1, -1]]


def test_one_row_raw_brevitas_export_requantizes(tmp_path):
    # What Brevitas 0.13.4 does on its own: raw weights under ROUND change -0.05 into a 0 code.
    exported = export_to_qonnx(_OneRow().eval(), tmp_path / "raw.onnx", freeze=False)
    assert exported_weight_codes(exported)[0].tolist() == [[1, 0, 1, -1]]


def test_trained_model_codes_equal_in_every_layer(digits_run, tmp_path):
    payload = ckpt.load_checkpoint(digits_run[0] / "checkpoint.pt")
    model = ckpt.model_from_checkpoint(payload)
    exported = export_to_qonnx(model, tmp_path / "model.onnx")
    trained = trained_weight_codes(model)
    codes = exported_weight_codes(exported)
    assert len(codes) == len(trained) == 4
    for ours, theirs in zip(trained, codes):
        assert np.array_equal(ours, theirs)
    # The trained model really has codes that plain rounding would change.
    raw = exported_weight_codes(export_to_qonnx(model, tmp_path / "raw.onnx", freeze=False))
    assert any(not np.array_equal(ours, theirs) for ours, theirs in zip(trained, raw))


def test_qonnx_execution_matches_pytorch_on_test_images(digits_run, tmp_path):
    payload = ckpt.load_checkpoint(digits_run[0] / "checkpoint.pt")
    model = ckpt.model_from_checkpoint(payload)
    exported = export_to_qonnx(model, tmp_path / "model.onnx")
    images, labels = load_dataset("digits").split("test")
    report = check_export(model, exported, images, labels)
    assert report["images"] == len(images)
    assert report["label_mismatches"] == 0
    assert report["relative_output_difference"] < 1e-5
    assert report["accuracy_pytorch"] == report["accuracy_qonnx"]


def test_export_checkpoint_writes_metadata_and_report(digits_run, tmp_path):
    out = tmp_path / "model.onnx"
    report = export_checkpoint(digits_run[0] / "checkpoint.pt", out)
    assert report["label_mismatches"] == 0
    metadata = {entry.key: entry.value for entry in onnx.load(str(out)).metadata_props}
    assert metadata["syq.model"] == "tfc"
    assert metadata["syq.granularity"] == "channel"
    assert metadata["syq.weight_bits"] == "2"
    assert metadata["syq.act_bits"] == "2"
    assert metadata["syq.threshold"] == "0.05"
    assert metadata["syq.dataset"] == "digits"
    assert float(metadata["syq.test_accuracy"]) == digits_run[1]["test_accuracy"]
    assert json.loads(metadata["syq.export_check"])["images"] == report["images"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.onnx"]


def test_export_of_pixel_granularity_conv_keeps_codes(tmp_path):
    from syq.training.models import QuantSpec, build_model

    torch.manual_seed(0)
    model = build_model("cnv28", (1, 28, 28), 10, QuantSpec(granularity="pixel")).eval()
    exported = export_to_qonnx(model, tmp_path / "cnv.onnx")
    for ours, theirs in zip(trained_weight_codes(model), exported_weight_codes(exported)):
        assert np.array_equal(ours, theirs)
    inputs = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        expected = model(inputs).numpy()
    outputs, _ = qonnx_exec.execute(exported, inputs.numpy())
    assert np.allclose(outputs, expected, rtol=1e-4, atol=1e-4)


def test_export_of_missing_checkpoint_rejected(tmp_path):
    with pytest.raises(SyqError, match="not found"):
        export_checkpoint(tmp_path / "none.pt", tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_export_of_float_checkpoint_rejected(tmp_path):
    from syq.training.trainer import TrainConfig, train

    train(TrainConfig(model="tfc", dataset="digits", epochs=1, float_model=True), tmp_path,
          progress=False)
    with pytest.raises(SyqError, match="full-precision"):
        export_checkpoint(tmp_path / "checkpoint.pt", tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_check_export_catches_changed_graph(digits_run, tmp_path):
    payload = ckpt.load_checkpoint(digits_run[0] / "checkpoint.pt")
    model = ckpt.model_from_checkpoint(payload)
    exported = export_to_qonnx(model, tmp_path / "model.onnx")
    norm = next(node for node in exported.graph.node if node.op_type == "BatchNormalization")
    mean = exported.get_initializer(norm.input[3])
    exported.set_initializer(norm.input[3], mean + 3.0)
    images, labels = load_dataset("digits").split("test")
    report = check_export(model, exported, images, labels)
    assert report["images_diverged"] > 0
    assert report["unexplained_differences"] > 0
