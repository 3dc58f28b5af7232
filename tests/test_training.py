import json

import pytest
import torch

from syq.errors import SyqError
from syq.training import checkpoint as ckpt
from syq.training.models import QuantSpec, build_model
from syq.training.trainer import TrainConfig, train


def _config(**overrides):
    values = dict(model="tfc", dataset="digits", epochs=3, batch_size=64, lr=3e-3, seed=5)
    values.update(overrides)
    return TrainConfig(**values)


def _states_equal(first, second):
    assert first.keys() == second.keys()
    return all(torch.equal(first[key], second[key]) for key in first)


def test_training_is_deterministic(tmp_path):
    train(_config(epochs=2), tmp_path / "a", progress=False)
    train(_config(epochs=2), tmp_path / "b", progress=False)
    first = ckpt.load_checkpoint(tmp_path / "a" / "checkpoint.pt")["model_state"]
    second = ckpt.load_checkpoint(tmp_path / "b" / "checkpoint.pt")["model_state"]
    assert _states_equal(first, second)


def test_resume_after_interruption_matches_uninterrupted(tmp_path):
    train(_config(), tmp_path / "full", progress=False)

    def interrupt_after_second(epoch, _metrics):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_config(), tmp_path / "cut", progress=False, on_epoch_end=interrupt_after_second)
    assert ckpt.load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 2
    metrics = train(_config(), tmp_path / "cut", resume=True, progress=False)
    full = ckpt.load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    resumed = ckpt.load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert _states_equal(full["model_state"], resumed["model_state"])
    assert [record["epoch"] for record in metrics["epochs"]] == [1, 2, 3]


def test_resume_with_other_options_rejected(tmp_path):
    train(_config(epochs=1), tmp_path, progress=False)
    with pytest.raises(SyqError, match="granularity"):
        train(_config(epochs=1, granularity="layer"), tmp_path, resume=True, progress=False)


def test_existing_run_needs_resume(tmp_path):
    train(_config(epochs=1), tmp_path, progress=False)
    with pytest.raises(SyqError, match="--resume"):
        train(_config(epochs=1), tmp_path, progress=False)


def test_metrics_file_records_every_epoch(digits_run):
    out, metrics = digits_run
    stored = json.loads((out / "metrics.json").read_text())
    assert [record["epoch"] for record in stored["epochs"]] == [1, 2, 3]
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"):
        assert key in stored["epochs"][0]
    assert stored["test_accuracy"] == metrics["epochs"][-1]["test_accuracy"]
    assert stored["test_accuracy"] > 0.5


def test_corrupt_checkpoint_rejected(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SyqError, match="corrupt checkpoint"):
        ckpt.load_checkpoint(path)


def test_truncated_checkpoint_rejected(digits_run, tmp_path):
    source = (digits_run[0] / "checkpoint.pt").read_bytes()
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(source[: len(source) // 2])
    with pytest.raises(SyqError, match="corrupt checkpoint"):
        ckpt.load_checkpoint(path)


def test_foreign_checkpoint_rejected(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(SyqError, match="not written by `syq train`"):
        ckpt.load_checkpoint(path)


def test_mismatched_checkpoint_rejected(digits_run):
    payload = ckpt.load_checkpoint(digits_run[0] / "checkpoint.pt")
    other = build_model("sfc", (1, 8, 8), 10, QuantSpec())
    with pytest.raises(SyqError, match="does not match the model"):
        ckpt.load_model_state(other, payload["model_state"], "digits checkpoint")


def test_init_from_float_model_sets_scales_from_weights(tmp_path):
    train(_config(epochs=1, float_model=True), tmp_path / "float", progress=False)
    float_state = ckpt.load_checkpoint(tmp_path / "float" / "checkpoint.pt")["model_state"]
    train(_config(epochs=1, lr=1e-12), tmp_path / "syq", init_from=tmp_path / "float" / "checkpoint.pt",
          progress=False)
    payload = ckpt.load_checkpoint(tmp_path / "syq" / "checkpoint.pt")
    model = ckpt.model_from_checkpoint(payload)
    first = model.classifier[0].layer
    expected = float_state["classifier.0.layer.weight"].abs().mean(dim=1)
    assert torch.allclose(first.quant_weight().scale.flatten(), expected, rtol=1e-4)


def test_init_from_unrelated_checkpoint_rejected(tmp_path):
    train(_config(epochs=1, model="sfc", float_model=True), tmp_path / "float", progress=False)
    with pytest.raises(SyqError, match="no layer of the checkpoint matches"):
        train(_config(epochs=1), tmp_path / "syq", init_from=tmp_path / "float" / "checkpoint.pt",
              progress=False)


@pytest.mark.parametrize("overrides, message", [
    ({"epochs": 0}, "--epochs"),
    ({"act_bits": 9}, "--act-bits"),
    ({"threshold": 1.0}, "threshold"),
    ({"weight_bits": 3}, "--weight-bits"),
    ({"lr": -1.0}, "--lr"),
])
def test_invalid_options_rejected(tmp_path, overrides, message):
    with pytest.raises(SyqError, match=message):
        train(_config(**overrides), tmp_path, progress=False)


@pytest.mark.parametrize("model, spec", [
    ("sfc", QuantSpec(weight_bits=1, act_bits=1, threshold=0.0)),
    ("lfc", QuantSpec(first_layer="int8", last_layer="int8", act_quant="learned")),
    ("cnv28", QuantSpec(granularity="pixel", act_bits=3)),
    ("cnv28", QuantSpec(granularity="kernel-row")),
])
def test_models_build_and_run(model, spec):
    network = build_model(model, (1, 28, 28), 10, spec).eval()
    with torch.no_grad():
        logits = network(torch.rand(2, 1, 28, 28))
    assert logits.shape == (2, 10)


def test_cnv_rejects_wrong_input_shape():
    with pytest.raises(SyqError, match="32x32"):
        build_model("cnv", (1, 28, 28), 10, QuantSpec())


def test_fashion_mnist_one_epoch_learns(tmp_path):
    metrics = train(TrainConfig(model="tfc", dataset="fashion-mnist", epochs=1, seed=0), tmp_path,
                    progress=False)
    assert metrics["test_accuracy"] > 0.78


@pytest.mark.parametrize("weight_quant, weight_bits", [("const", 2), ("const", 1), ("learned", 2),
                                                       ("learned", 1)])
def test_baseline_quantizers_train_export_and_lower(tmp_path, weight_quant, weight_bits):
    from syq.generator import verify
    from syq.generator.lowering import lower_file
    from syq.training.datasets import load_dataset, to_float
    from syq.training.export import export_checkpoint

    config = _config(epochs=2, weight_quant=weight_quant, weight_bits=weight_bits)
    train(config, tmp_path, progress=False)
    payload = ckpt.load_checkpoint(tmp_path / "checkpoint.pt")
    model = ckpt.model_from_checkpoint(payload)
    layers = [layer for layer in model.weight_layers()]
    if weight_quant == "const":
        assert all(float(layer.weight.detach().abs().max()) <= 1.0 for layer in layers)
        assert all(float(layer.quant_weight().scale.max()) == 1.0 for layer in layers)
    else:
        assert layers[0].quant_weight().scale.numel() == layers[0].weight.shape[0]
    export_checkpoint(tmp_path / "checkpoint.pt", tmp_path / "model.onnx")
    graph, qonnx_model = lower_file(tmp_path / "model.onnx")
    images, labels = load_dataset("digits").split("test")
    report = verify.verify(graph, qonnx_model, to_float(images), labels)
    assert report["consistent"]


def test_const_baseline_starts_uniform():
    from syq.training import baselines

    spec = QuantSpec(weight_quant="const")
    model = build_model("tfc", (1, 8, 8), 10, spec)
    baselines.prepare(model, spec)
    weight = model.classifier[0].layer.weight
    assert float(weight.detach().abs().max()) > 0.9
    assert float(weight.detach().abs().max()) <= 1.0


def test_train_limit_uses_first_images(tmp_path):
    metrics = train(_config(epochs=1, train_limit=100, batch_size=50), tmp_path, progress=False)
    assert metrics["config"]["train_limit"] == 100
    with pytest.raises(SyqError, match="--train-limit"):
        train(_config(epochs=1, train_limit=0), tmp_path / "zero", progress=False)


@pytest.mark.parametrize("weight_bits, act_bits", [(1, 1), (2, 2)])
def test_bnn_pynq_recipe_end_to_end(tmp_path, weight_bits, act_bits):
    from syq.generator import verify
    from syq.generator.lowering import lower_file
    from syq.training.datasets import load_dataset, to_float
    from syq.training.export import export_checkpoint

    # Constant-scale weights live in [-1, 1]: they need a larger step than SYQ to move in 3 epochs.
    config = _config(epochs=3, lr=2e-2, weight_quant="const", act_quant="bnn-pynq", input_quant="bnn-pynq",
                     weight_bits=weight_bits, act_bits=act_bits)
    metrics = train(config, tmp_path, progress=False)
    assert metrics["test_accuracy"] > 0.5
    export_checkpoint(tmp_path / "checkpoint.pt", tmp_path / "model.onnx")
    graph, qonnx_model = lower_file(tmp_path / "model.onnx")
    hidden = graph.mvaus[1:]
    assert hidden
    assert all(node.xnor == (weight_bits == 1) for node in hidden)
    assert all(node.input_type.signed for node in hidden)
    images, labels = load_dataset("digits").split("test")
    report = verify.verify(graph, qonnx_model, to_float(images), labels)
    assert report["consistent"]
    assert report["unexplained_differences"] == 0


def test_unknown_input_quant_rejected(tmp_path):
    with pytest.raises(SyqError, match="--input-quant"):
        train(_config(input_quant="sign"), tmp_path, progress=False)


def test_train_limit_above_dataset_size_warns(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="syq.training.trainer"):
        train(_config(epochs=1, train_limit=10 ** 6), tmp_path, progress=False)
    assert "exceeds the 1438 training images of digits" in caplog.text
