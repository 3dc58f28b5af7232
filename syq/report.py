"""The flow report: report.json, report.md and its plots (training curve, scales, cycles)."""

import json
import logging
from pathlib import Path

import numpy as np

from syq.outputs import atomic_file

logger = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def plot_training_curve(metrics, path):
    """Plot training loss and train/test accuracy per epoch."""
    pyplot = _pyplot()
    epochs = [record["epoch"] for record in metrics["epochs"]]
    figure, (loss_axes, accuracy_axes) = pyplot.subplots(1, 2, figsize=(9, 3.2))
    loss_axes.plot(epochs, [record["train_loss"] for record in metrics["epochs"]], marker="o")
    loss_axes.set(xlabel="epoch", ylabel="training loss", title="Loss")
    accuracy_axes.plot(epochs, [100 * record["train_accuracy"] for record in metrics["epochs"]],
                       marker="o", label="train")
    accuracy_axes.plot(epochs, [100 * record["test_accuracy"] for record in metrics["epochs"]],
                       marker="o", label="test")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    accuracy_axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def plot_scales(graph, path):
    """Plot the learned weight scales of every layer (per row, or per kernel position)."""
    pyplot = _pyplot()
    layers = graph.mvaus
    figure, axes = pyplot.subplots(figsize=(9, 3.2))
    for index, unit in enumerate(layers):
        if unit.position_scales is not None:
            values = unit.position_scales.astype(np.float64)
            label = "kernel positions (integer m)"
        else:
            values = unit.row_scales if unit.row_scales is not None else np.ones(1)
            label = "rows"
        jitter = np.linspace(-0.2, 0.2, len(values)) if len(values) > 1 else np.zeros(1)
        axes.scatter(index + jitter, values, s=8, alpha=0.6, label=label if index == 0 else None)
    axes.set_xticks(range(len(layers)), [unit.name for unit in layers])
    axes.set(ylabel="learned scale alpha", title="SYQ scales per layer")
    axes.set_yscale("log")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def plot_cycles(units, path):
    """Plot the estimated cycles per frame of every unit."""
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(9, 3.2))
    names = [unit["name"] for unit in units]
    cycles = [unit["cycles"] for unit in units]
    slowest = max(cycles)
    axes.bar(names, cycles, color=["tab:red" if value == slowest else "tab:blue" for value in cycles])
    axes.set(ylabel="cycles per frame", title="Estimated cycles per unit (red: bottleneck)")
    axes.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def _percent(value):
    return "-" if value is None else f"{100 * value:.2f} %"


def _verify_summary(verify):
    if verify["equal"]:
        return "equal"
    if verify["consistent"]:
        return (f"{verify['images_diverged']} images differ, all at float32 near-ties "
                f"({verify['near_ties']})")
    return (f"{verify['unexplained_differences']} UNEXPLAINED differences from "
            f"{verify['first_differing_layer']}")


def _images(step):
    """Return "N images" for a step's report entry, or "?" when it does not record the count."""
    count = step.get("images") if isinstance(step, dict) else None
    return "? images" if count is None else f"{count:,} images"


def summary_rows(report):
    """Return (step, result) rows of the one table the flow prints."""
    accuracy = report["accuracy"]
    csim = report["csim"]
    estimate = report["estimate"]
    seconds = report["seconds"]
    return [
        # PyTorch and QONNX are checked at export on the whole test set, golden and C-sim on the
        # --csim-limit images, so each row names its image count.
        (f"accuracy PyTorch ({_images(report['export'])})", _percent(accuracy["pytorch"])),
        (f"accuracy QONNX ({_images(report['export'])})", _percent(accuracy["qonnx"])),
        (f"accuracy golden model ({_images(report['verify'])})", _percent(accuracy["golden"])),
        (f"accuracy C-sim ({_images(csim)})", _percent(accuracy["csim"])),
        ("golden vs QONNX (layers, labels)", _verify_summary(report["verify"])),
        ("C-sim images", csim["images"]),
        ("C-sim mismatches with golden", csim["mismatches"]),
        ("C-sim labels differing from QONNX", csim["label_mismatches_qonnx"]),
        ("estimated frames/s", f"{estimate['fps']:,.0f} at {estimate['clock_mhz']:g} MHz"),
        ("estimated LUT / BRAM18 / DSP", f"{estimate['total']['lut']} / {estimate['total']['bram18']} / "
                                         f"{estimate['total']['dsp']} ({'fits' if estimate['fits'] else 'over'} {report['board']})"),
    ] + [(f"time {name} (s)", f"{value:.1f}") for name, value in seconds.items()]


def _markdown(report):
    lines = [f"# syq flow: {report['model']} on {report['dataset']}", ""]
    config = report["config"]
    weight_quant = config.get("weight_quant", "syq")
    scales = (f"SYQ {config['granularity']} scales, t = {config['threshold']}" if weight_quant == "syq"
              else f"baseline quantizer {weight_quant}")
    epochs = f"{config['epochs']} epoch{'s' if config['epochs'] != 1 else ''}"
    lines += [f"Weights {config['weight_bits']} bit ({scales}), activations {config['act_bits']} bit, "
              f"{epochs}; board {report['board']}.", ""]
    lines += ["| step | result |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in summary_rows(report)]
    lines += ["", "## Training", "", "![training curve](plots/training.png)", "",
              "## Learned scales", "", "![scales](plots/scales.png)", "",
              "## Hardware estimate", "", "| unit | type | PE | SIMD | cycles | LUT | BRAM18 | DSP |",
              "|---|---|---|---|---|---|---|---|"]
    for unit in report["estimate"]["units"]:
        lines.append(f"| {unit['name']} | {unit['kind']} | {unit['pe']} | {unit['simd']} | "
                     f"{unit['cycles']} | {unit['lut']} | {unit['bram18']} | {unit['dsp']} |")
    lines += ["", "![cycles per unit](plots/cycles.png)", "",
              "Cycles and resources are estimates of syq's cost model (docs/cost-model.md), not "
              "synthesis results.", "", "## Golden model against QONNX, per layer", "",
              "| unit | QONNX tensor | codes compared | differing | float32 near-ties | unexplained |",
              "|---|---|---|---|---|---|"]
    for layer in report["verify"]["layers"]:
        lines.append(f"| {layer['name']} | {layer['qonnx_tensor']} | {layer['elements']} | "
                     f"{layer['mismatches']} | {layer['near_ties']} | {layer['unexplained']} |")
    lines += ["", "A difference is a float32 near-tie when QONNX's float32 pre-activation lies within "
              "1e-3 quantization steps of a rounding boundary where this image first diverges; the "
              "golden model and C-simulation compute exactly."]
    return "\n".join(lines) + "\n"


def write_report(report, metrics, graph, out_dir):
    """Write report.json, report.md and plots/ into `out_dir`."""
    out_dir = Path(out_dir)
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    plot_training_curve(metrics, plots / "training.png")
    plot_scales(graph, plots / "scales.png")
    plot_cycles(report["estimate"]["units"], plots / "cycles.png")
    with atomic_file(out_dir / "report.json", "w") as stream:
        json.dump(report, stream, indent=2, default=_json_default)
    with atomic_file(out_dir / "report.md", "w") as stream:
        stream.write(_markdown(report))


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")

