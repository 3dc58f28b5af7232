"""The main job and the hardware commands end to end, on real data."""

import json
import re

import numpy as np
import pytest

from syq.cli import main
from syq.generator import verify
from syq.generator.lowering import lower_file
from syq.training.datasets import load_dataset, to_float


@pytest.fixture(scope="module")
def exported_digits(digits_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("exported")
    assert main(["export", str(digits_run[0] / "checkpoint.pt"), "--out", str(out / "model.onnx")]) == 0
    return out / "model.onnx"


def test_flow_command_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["flow", "--model", "tfc", "--dataset", "digits", "--epochs", "3", "--batch-size", "64",
                 "--lr", "0.003", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((out / "report.json").read_text())
    accuracy = report["accuracy"]
    assert accuracy["csim"] == accuracy["golden"] == accuracy["qonnx"] == accuracy["pytorch"]
    assert accuracy["csim"] > 0.5
    assert report["csim"]["images"] == 359
    assert report["csim"]["mismatches"] == 0
    assert report["csim"]["label_mismatches_qonnx"] == 0
    assert report["estimate"]["fps"] > 0
    for step in ("train", "export", "verify", "generate", "csim"):
        assert report["seconds"][step] > 0
    for plot in ("training.png", "scales.png", "cycles.png"):
        assert (out / "plots" / plot).stat().st_size > 1000
    assert "C-sim mismatches with golden" in (out / "report.md").read_text()
    assert re.search(r"C-sim mismatches with golden +0\n", printed)
    assert re.search(r"accuracy C-sim \(359 images\) +\d", printed)


def test_generate_csim_verify_commands(exported_digits, tmp_path, capsys):
    project = tmp_path / "project"
    assert main(["generate", str(exported_digits), "--out", str(project), "--fps", "100000"]) == 0
    assert "bottleneck" in capsys.readouterr().out
    assert main(["estimate", str(project)]) == 0
    assert main(["verify", str(exported_digits), "--dataset", "digits"]) == 0
    assert "golden model equals QONNX execution" in capsys.readouterr().out
    assert main(["csim", str(project), "--dataset", "digits", "--limit", "50"]) == 0
    results = json.loads((project / "csim" / "results.json").read_text())
    assert results["images"] == 50
    assert results["mismatches"] == 0
    assert len(results["outputs"]) == 50


def test_csim_from_float_npy(exported_digits, tmp_path):
    project = tmp_path / "project"
    assert main(["generate", str(exported_digits), "--out", str(project)]) == 0
    images, _ = load_dataset("digits").split("test")
    inputs = to_float(images[:20])
    np.save(tmp_path / "x.npy", inputs)
    assert main(["csim", str(project), "--inputs", str(tmp_path / "x.npy")]) == 0
    assert json.loads((project / "csim" / "results.json").read_text())["images"] == 20


def test_csim_rejects_wrong_input_shape(exported_digits, tmp_path, capsys):
    project = tmp_path / "project"
    assert main(["generate", str(exported_digits), "--out", str(project)]) == 0
    np.save(tmp_path / "x.npy", np.zeros((3, 1, 28, 28), np.float32))
    assert main(["csim", str(project), "--inputs", str(tmp_path / "x.npy")]) == 2
    assert "shape" in capsys.readouterr().err


@pytest.mark.parametrize("values, message", [
    ("nan", "has the non-finite value nan at index (0, 0, 2, 3)"),
    ("pixels", "outside [0, 1]: this model takes images as pixel / 255"),
    ("empty", "contains no inputs"),
])
def test_verify_rejects_bad_input_values(exported_digits, tmp_path, capsys, values, message):
    images, _ = load_dataset("digits").split("test")
    inputs = to_float(images[:4])
    if values == "nan":
        inputs[0, 0, 2, 3] = np.nan
    elif values == "pixels":
        inputs = inputs * 255
    else:
        inputs = inputs[:0]
    np.save(tmp_path / "x.npy", inputs)
    assert main(["verify", str(exported_digits), "--inputs", str(tmp_path / "x.npy")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert str(tmp_path / "x.npy") in error[0]
    assert message in error[0]


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_flow_rejects_non_positive_csim_limit(tmp_path, capsys, limit):
    with pytest.raises(SystemExit) as exit_info:
        main(["flow", "--model", "tfc", "--dataset", "digits", "--csim-limit", limit,
              "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert "it must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_verify_names_first_differing_layer(exported_digits):
    graph, model = lower_file(exported_digits)
    images, labels = load_dataset("digits").split("test")
    graph.mvaus[1].thresholds = graph.mvaus[1].thresholds + 1
    report = verify.verify(graph, model, to_float(images), labels)
    assert report["first_differing_layer"] == "layer1"
    assert not report["equal"]
    assert report["layers"][1]["mismatches"] == 0


def test_generate_with_invalid_folding_writes_nothing(exported_digits, tmp_path, capsys):
    folding_file = tmp_path / "folding.json"
    folding_file.write_text(json.dumps({"layer0": {"pe": 5, "simd": 1}}))
    code = main(["generate", str(exported_digits), "--out", str(tmp_path / "project"),
                 "--folding", str(folding_file)])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert "pe 5 of layer0 is invalid; valid values: 1, 2, 4, 8, 16, 32, 64" in error[0]
    assert not (tmp_path / "project").exists()


def test_generate_rejects_damaged_onnx(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    assert main(["generate", str(bad), "--out", str(tmp_path / "project")]) == 2
    assert "bad.onnx" in capsys.readouterr().err
    assert not (tmp_path / "project").exists()


def test_generate_keeps_unrelated_folder(exported_digits, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious")
    assert main(["generate", str(exported_digits), "--out", str(folder)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert "is not a syq project (no manifest.json): choose another --out" in error[0]
    assert (folder / "notes.txt").read_text() == "precious"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mine"]


def test_generate_rejects_existing_file(exported_digits, tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("x")
    assert main(["generate", str(exported_digits), "--out", str(target)]) == 2
    assert "exists and is a file" in capsys.readouterr().err
    assert target.read_text() == "x"


def test_generate_replaces_earlier_project(exported_digits, tmp_path, capsys):
    project = tmp_path / "project"
    assert main(["generate", str(exported_digits), "--out", str(project)]) == 0
    (project / "csim").mkdir(exist_ok=True)
    assert main(["generate", str(exported_digits), "--out", str(project)]) == 0
    assert (project / "manifest.json").is_file()
    assert not (project / "csim").exists()
    assert "belong to the old design" in capsys.readouterr().err


def test_generate_rejects_folding_given_as_text(exported_digits, tmp_path, capsys):
    folding_file = tmp_path / "folding.json"
    folding_file.write_text(json.dumps({"layer0": {"pe": "4", "simd": 1}}))
    code = main(["generate", str(exported_digits), "--out", str(tmp_path / "project"),
                 "--folding", str(folding_file)])
    assert code == 2
    assert "pe of layer0 must be a whole number, got '4'" in capsys.readouterr().err
    assert not (tmp_path / "project").exists()


def test_generate_rejects_zero_fps(exported_digits, tmp_path, capsys):
    assert main(["generate", str(exported_digits), "--out", str(tmp_path / "p"), "--fps", "0"]) == 2
    assert "invalid --fps 0.0: it must be positive" in capsys.readouterr().err


def test_generate_rejects_empty_onnx(tmp_path, capsys):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    assert main(["generate", str(empty), "--out", str(tmp_path / "p")]) == 2
    assert "the graph has no nodes" in capsys.readouterr().err
