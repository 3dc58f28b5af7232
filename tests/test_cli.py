import json
import subprocess
import sys

import pytest

from syq.cli import build_parser, main

COMMANDS = ("train", "export")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: syq " + command in capsys.readouterr().out


def test_train_and_export_from_command_line(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--model", "tfc", "--dataset", "digits", "--epochs", "2",
                 "--batch-size", "64", "--lr", "0.003", "--out", str(run)])
    assert code == 0
    assert "test accuracy" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 2
    code = main(["export", str(run / "checkpoint.pt"), "--out", str(tmp_path / "model.onnx")])
    out = capsys.readouterr().out
    assert code == 0
    assert "label mismatches PyTorch vs QONNX   0" in out
    assert (tmp_path / "model.onnx").is_file()


def test_bad_threshold_is_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "syq", "train", "--dataset", "digits",
                             "--threshold", "1.2", "--out", str(tmp_path / "run")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("syq train: error")]
    assert len(lines) == 1
    assert "[0, 1)" in lines[0]
    assert not (tmp_path / "run").exists()


def test_corrupt_checkpoint_export_fails_cleanly(tmp_path, capsys):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"\x00" * 64)
    code = main(["export", str(bad), "--out", str(tmp_path / "model.onnx")])
    assert code == 2
    assert "corrupt checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "model.onnx").exists()


def test_output_path_that_is_a_file_rejected(tmp_path, capsys):
    target = tmp_path / "f"
    target.write_text("y")
    code = main(["train", "--model", "tfc", "--dataset", "digits", "--epochs", "1", "--out", str(target)])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"syq train: error: cannot write {target}: File exists; choose another --out"]
    assert target.read_text() == "y"
