"""C-simulation speed: g++ compile time (cold and cached) and testbench throughput.

The C-simulation build cache is ``PROJECT/csim/build-<hash>`` (generator/cpp_build.py), so a
freshly generated project folder always starts cold. The cached case calls the same build again:
it still runs the ``g++ -M`` dependency scan that computes the hash, then reuses the executable.
Throughput counts the testbench run on the Fashion-MNIST test images (10,000; 200 with
``--quick``), including writing its input and reading its output files, and checks every output
against the golden model.

Models: a SYQ TFC-w2a2 trained for one epoch and (not with ``--quick``) an untrained SYQ CNV-28
on 10 images, both folded by `fold_fastest` for PYNQ-Z2 (the slowest folding when none fits).

Usage::

    .venv/bin/python bench/csim_speed.py [--quick] [--model M.onnx] [--json results.json]
"""

import logging
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (sets the BLAS threads before numpy loads)
import numpy as np  # noqa: E402

logger = logging.getLogger("bench.csim")


def measure(name, path, folder, images):
    """Generate a project for `path`, compile it cold and cached, and simulate `images` images."""
    from syq.bitstreams.boards import get_board
    from syq.generator import csim, emitter, folding, golden, lowering
    from syq.generator.inputs import from_dataset

    board = get_board("pynq-z2")
    project = Path(folder) / f"project_{Path(path).stem}"
    if project.exists():
        shutil.rmtree(project)  # a cold build needs a project without its csim/ cache
    graph, _ = lowering.lower_file(path)
    folding.fold_fastest(graph, board)
    emitter.generate_project(graph, board, project)

    _, cold_seconds = csim.build(project)
    logger.info("%s: cold build %.1f s", name, cold_seconds)
    _, cached_seconds = csim.build(project)
    inputs = from_dataset(graph, "fashion-mnist", "test", limit=images)
    results = csim.simulate(project, inputs)
    golden_labels = golden.predict(graph, inputs.stream)[1]
    logger.info("%s: %d images at %.0f images/s", name, results["images"],
                results["images_per_second"])
    return {
        "model": name,
        "images": results["images"],
        "compile_cold_seconds": cold_seconds,
        "compile_cached_seconds": cached_seconds,
        "run_seconds": results["run_seconds"],
        "images_per_second": results["images_per_second"],
        "mismatches": results["mismatches"],
        "label_mismatches_golden": int((np.asarray(results["labels"]) != golden_labels).sum()),
        "accuracy": results["accuracy"],
        "max_cycles": emitter.load_manifest(project)["estimate"]["max_cycles"],
    }


def run(quick, folder, model_path=None):
    """Run the benchmark and return its result dict."""
    common.limit_threads(1)
    rows = [measure("SYQ TFC-w2a2 (channel)", model_path or common.trained_tfc_model(folder, quick),
                    folder, 200 if quick else 10_000)]
    if not quick:
        cnv = common.export_untrained_model("cnv28", Path(folder) / "cnv28_untrained.onnx")
        # A C-simulated CNV-28 image takes seconds (about 58 M multiply-accumulates in ap_int).
        rows.append(measure("SYQ CNV-28-w2a2 (untrained)", cnv, folder, 10))
    return {"benchmark": "csim_speed", "quick": quick, "rows": rows}


def to_markdown(result):
    """Return the Markdown section of a C-simulation speed result."""
    rows = [(row["model"], common.seconds_text(row["compile_cold_seconds"]),
             common.seconds_text(row["compile_cached_seconds"]), f"{row['images']:,}",
             common.seconds_text(row["run_seconds"]), common.rate_text(row["images_per_second"]),
             f"{row['mismatches']} / {row['label_mismatches_golden']}")
            for row in result["rows"]]
    return common.markdown_table(
        ("model", "g++ build, cold", "build, cached", "images", "testbench run", "images/s",
         "output / label mismatches against golden"), rows)


def main(argv=None):
    """Run the C-simulation speed benchmark from the command line."""
    common.main(__doc__.splitlines()[0], run, to_markdown, argv, takes_model=True)


if __name__ == "__main__":
    main()
