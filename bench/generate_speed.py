"""Time of ``syq generate`` for TFC, LFC and CNV.

The models are untrained SYQ w2a2 networks (channel scales) exported with random weights: the
generator's work depends on the shapes and bit widths, not on the values. Each model is timed
twice: the whole ``syq generate M.onnx --out P --board pynq-z2`` command (a new Python process,
so it includes importing torch, Brevitas and qonnx), and its steps in this process: lowering
the QONNX file, the fastest-fitting folding search and writing the project. ``--quick`` times
TFC only.

Usage::

    .venv/bin/python bench/generate_speed.py [--quick] [--json results.json]
"""

import logging
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

logger = logging.getLogger("bench.generate")

MODELS = {"tfc": "TFC (784-64-64-64-10)", "lfc": "LFC (784-1024-1024-1024-10)",
          "cnv": "CNV (CIFAR-10 shape, 3x32x32)"}


def syq_executable():
    """Return the path of the `syq` console script beside this interpreter."""
    candidate = Path(sys.executable).parent / "syq"
    return str(candidate) if candidate.is_file() else "syq"


def measure(name, folder):
    """Export model `name` untrained, then time `syq generate` and its steps on it."""
    from syq.bitstreams.boards import get_board
    from syq.generator import emitter, folding, lowering

    path = common.export_untrained_model(name, Path(folder) / f"{name}_untrained.onnx")
    project = Path(folder) / f"generate_{name}"
    if project.exists():
        shutil.rmtree(project)
    command = [syq_executable(), "generate", str(path), "--out", str(project), "--board", "pynq-z2"]
    with common.Stopwatch() as command_watch:
        completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {completed.returncode}: "
                           f"{completed.stderr.strip()[-500:]}")
    logger.info("%s: syq generate %.1f s", name, command_watch.seconds)

    board = get_board("pynq-z2")
    with common.Stopwatch() as lowering_watch:
        graph, _ = lowering.lower_file(path)
    with common.Stopwatch() as folding_watch:
        folding.fold_fastest(graph, board)
    steps_project = Path(folder) / f"generate_{name}_steps"
    if steps_project.exists():
        shutil.rmtree(steps_project)
    with common.Stopwatch() as emit_watch:
        manifest = emitter.generate_project(graph, board, steps_project)
    files = [item for item in project.rglob("*") if item.is_file()]
    return {
        "model": name,
        "description": MODELS[name],
        "command_seconds": command_watch.seconds,
        "lowering_seconds": lowering_watch.seconds,
        "folding_seconds": folding_watch.seconds,
        "emit_seconds": emit_watch.seconds,
        "units": len(graph.nodes),
        "files": len(files),
        "project_bytes": sum(item.stat().st_size for item in files),
        "estimated_fps": manifest["estimate"]["fps"],
        "fits_budget": manifest["estimate"]["fits"],
    }


def run(quick, folder):
    """Run the benchmark and return its result dict."""
    common.limit_threads(1)
    names = ("tfc",) if quick else tuple(MODELS)
    return {"benchmark": "generate_speed", "quick": quick,
            "rows": [measure(name, folder) for name in names]}


def to_markdown(result):
    """Return the Markdown section of a generator speed result."""
    rows = [(row["description"], common.seconds_text(row["command_seconds"]),
             common.seconds_text(row["lowering_seconds"]), common.seconds_text(row["folding_seconds"]),
             common.seconds_text(row["emit_seconds"]), row["units"],
             f"{row['files']} files, {row['project_bytes'] / 1e6:.1f} MB")
            for row in result["rows"]]
    return common.markdown_table(
        ("model (untrained, w2a2)", "`syq generate` command", "lowering", "folding search",
         "writing the project", "hardware units", "project size"), rows)


def main(argv=None):
    """Run the generator speed benchmark from the command line."""
    common.main(__doc__.splitlines()[0], run, to_markdown, argv, takes_model=False)


if __name__ == "__main__":
    main()
