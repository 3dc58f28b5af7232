"""Speed of the integer golden model against qonnx ``execute_onnx`` on the same QONNX files.

Both run on the Fashion-MNIST test images (10,000; 500 with ``--quick``). qonnx runs batched
(500 images per ``execute_onnx`` call, as ``syq verify`` does) and one image per call. One image
per call is measured on a subset and extrapolated to the whole set, as the table states. The
golden model's time covers the quantized input stream, the accelerator graph and the host
post-processing. Lowering the QONNX file to the hardware graph is timed separately.

Models: a SYQ TFC-w2a2 trained for one epoch, the Brevitas bnn_pynq TFC_2W2A of the QONNX model
zoo, and (not with ``--quick``) an untrained SYQ CNV-28 on fewer images.

Usage::

    .venv/bin/python bench/golden_vs_qonnx.py [--quick] [--model M.onnx] [--json results.json]
"""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (sets the BLAS threads before numpy loads)
import numpy as np  # noqa: E402

logger = logging.getLogger("bench.golden")

TARGET_RATIO = 20.0
BATCH = 500


def measure(name, path, images, labels, single_images):
    """Time the golden model and qonnx on one model; return a result row."""
    from syq.generator import golden, lowering, qonnx_exec

    with common.Stopwatch() as lowering_watch:
        graph, model = lowering.lower_file(path)
    shape = tuple(graph.input_quant.input_shape)
    floats = (images.astype(np.float32) / np.float32(255.0)).reshape((len(images),) + shape)

    with common.Stopwatch() as golden_watch:
        stream = golden.pixel_input_codes(graph, images.reshape((len(images),) + shape))
        golden_scores, golden_labels = golden.predict(graph, stream)
    logger.info("%s: golden model %.2f s for %d images", name, golden_watch.seconds, len(images))

    with common.Stopwatch() as batched_watch:
        qonnx_scores, _ = qonnx_exec.execute(model, floats, chunk=BATCH)
    qonnx_scores = np.asarray(qonnx_scores, dtype=np.float64).reshape(len(images), -1)
    logger.info("%s: qonnx batched %.2f s", name, batched_watch.seconds)

    subset = min(single_images, len(images))
    with common.Stopwatch() as single_watch:
        single_scores, _ = qonnx_exec.execute(model, floats[:subset], chunk=1)
    single_extrapolated = single_watch.seconds * len(images) / subset
    logger.info("%s: qonnx one image per call %.2f s for %d images", name, single_watch.seconds,
                subset)

    qonnx_labels = qonnx_scores.argmax(axis=1)
    single_labels = np.asarray(single_scores).reshape(subset, -1).argmax(axis=1)
    scale = max(float(np.abs(qonnx_scores).max()), 1e-12)
    return {
        "model": name,
        "path": str(path),
        "images": int(len(images)),
        "lowering_seconds": lowering_watch.seconds,
        "golden_seconds": golden_watch.seconds,
        "qonnx_batched_seconds": batched_watch.seconds,
        "qonnx_single_images": int(subset),
        "qonnx_single_seconds_measured": single_watch.seconds,
        "qonnx_single_seconds_extrapolated": single_extrapolated,
        "speedup_batched": batched_watch.seconds / golden_watch.seconds,
        "speedup_single": single_extrapolated / golden_watch.seconds,
        "label_mismatches": int((golden_labels != qonnx_labels).sum()),
        "single_label_mismatches": int((golden_labels[:subset] != single_labels).sum()),
        "max_score_difference": float(np.abs(golden_scores - qonnx_scores).max()),
        "relative_score_difference": float(np.abs(golden_scores - qonnx_scores).max()) / scale,
        "accuracy_golden": float((golden_labels == labels).mean()),
        "accuracy_qonnx": float((qonnx_labels == labels).mean()),
    }


def run(quick, folder, model_path=None):
    """Run the benchmark and return its result dict."""
    from syq.training.datasets import load_dataset

    common.limit_threads(1)
    dataset = load_dataset("fashion-mnist")
    count = 500 if quick else 10_000
    images, labels = dataset.test_images[:count], dataset.test_labels[:count]
    single = 50 if quick else 500
    models = [("SYQ TFC-w2a2 (channel)", model_path or common.trained_tfc_model(folder, quick)),
              ("bnn_pynq TFC_2W2A (QONNX zoo)", common.ZOO_DIR / "TFC_2W2A.onnx")]
    rows = [measure(name, path, images, labels, single) for name, path in models]
    if not quick:
        cnv = common.export_untrained_model("cnv28", Path(folder) / "cnv28_untrained.onnx")
        rows.append(measure("SYQ CNV-28-w2a2 (untrained)", cnv, images[:500], labels[:500], 20))
    return {"benchmark": "golden_vs_qonnx", "quick": quick, "target_ratio": TARGET_RATIO,
            "batch": BATCH, "rows": rows}


def to_markdown(result):
    """Return the Markdown section of a golden-model speed result."""
    rows = []
    for row in result["rows"]:
        single = (f"{common.seconds_text(row['qonnx_single_seconds_extrapolated'])} "
                  f"(measured {row['qonnx_single_images']}, extrapolated)")
        rows.append((row["model"], f"{row['images']:,}", common.seconds_text(row["golden_seconds"]),
                     common.seconds_text(row["qonnx_batched_seconds"]), single,
                     f"{row['speedup_batched']:.1f}x", f"{row['speedup_single']:.0f}x",
                     f"{row['label_mismatches']} / {row['single_label_mismatches']}",
                     f"{row['relative_score_difference']:.1e}",
                     common.seconds_text(row["lowering_seconds"])))
    table = common.markdown_table(
        ("model", "images", "golden", f"qonnx, {result['batch']} per call", "qonnx, 1 per call",
         "speed-up (batched)", "speed-up (1 per call)", "label mismatches (batched / 1 per call)",
         "max score difference (relative)", "lowering (once)"), rows)
    met = [row for row in result["rows"] if row["speedup_batched"] >= result["target_ratio"]]
    verdict = (f"Target (golden at least {result['target_ratio']:.0f}x faster than qonnx, identical "
               f"labels): met against batched qonnx for {len(met)} of {len(result['rows'])} models, "
               f"and against one image per call for "
               f"{sum(row['speedup_single'] >= result['target_ratio'] for row in result['rows'])}.")
    return table + "\n\n" + verdict


def main(argv=None):
    """Run the golden-model speed benchmark from the command line."""
    common.main(__doc__.splitlines()[0], run, to_markdown, argv, takes_model=True)


if __name__ == "__main__":
    main()
