"""Run every benchmark one after the other and write the results page (docs/benchmarks.md).

``make bench`` runs ``.venv/bin/python bench/run_all.py --out docs/benchmarks.md``. Each
benchmark runs as its own process (the same command a user reruns alone), writes its JSON next
to its log in the work folder, and contributes one section to the page. A failing benchmark
gets a section with its error, the others still run, and the exit code is 1.
"""

import datetime
import importlib
import json
import logging
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

logger = logging.getLogger("bench.run_all")

MODEL_LABELS = {"tfc": "TFC", "cnv28": "CNV-28"}

# (script module, title, whether it takes --model, notes that explain the section)
BENCHMARKS = (
    ("estimates", "Hardware estimates: FINN foldings, folding search, cost of SYQ scales", False,
     "Cycles, frames/s and resources come from the estimator (`syq estimate`, "
     "[cost model](cost-model.md)), not from synthesis. The PYNQ-Z2 budget is 70 % of the "
     "xc7z020's LUTs, BRAM18 and DSPs. The SYQ models take 8-bit pixels straight into their first "
     "layer, while bnn_pynq TFC_2W2A thresholds its input to 2 bits first, so at the same folding "
     "the first SYQ layer multiplies wider inputs and costs more LUTs. `channel` scales fold into "
     "the per-row thresholds like `layer` scales do; `pixel` scales add a scaled partial-sum "
     "multiplier per PE in every convolution. When no folding fits the budget, the search "
     "returns the slowest folding with a warning."),
    ("generate_speed", "`syq generate` time", False,
     "The command time is a new process, so it includes importing torch, Brevitas and qonnx."),
    ("golden_vs_qonnx", "Golden model against qonnx execution", True,
     "Same QONNX file, same inputs. Label mismatches count images whose arg-max differs; the "
     "score difference is the largest absolute difference of the final float scores, relative "
     "to the largest score."),
    ("csim_speed", "C-simulation: compile time and throughput", True,
     "Every C-simulated output is compared with the golden model's integer output; the cold "
     "build starts from a project folder without a build cache."),
    ("hls4ml_peer", "hls4ml as a peer on the same QONNX models", True,
     "hls4ml's `predict()` and syq's testbench are both g++ C-simulations of HLS C++ on the "
     "host. syq's run time includes writing the input words and reading the output words "
     "through files; its labels are also checked against the golden model bit by bit. hls4ml "
     "computes every layer in the fixed-point type of its configuration (here one default "
     "precision for all layers, not tuned per layer), so its labels may differ from qonnx's "
     "float execution wherever that rounding changes the arg-max."),
    ("accuracy", "Accuracy at an equal training budget (Fashion-MNIST)", False,
     "All quantizers of one network share the data, epochs, batch size, optimizer, learning "
     "rate, seeds and the 2-bit DoReFa activation quantizer; only the weight quantizer differs. "
     "`const` is the Brevitas bnn_pynq weight recipe (constant scale 1, latent weights uniform in "
     "[-1, 1] at the start and clipped to it after every step) with the same activations as the "
     "other runs. Its own training recipe (Brevitas `bnn_pynq` examples) uses Adam with "
     "learning rate 0.02 for 500 epochs or more, so at this shared budget const measures how "
     "fast a fixed-scale quantizer learns, not its converged accuracy. `learned per-channel` is "
     "Brevitas' per-channel quantizer with a learned scale "
     "(narrow INT2 for ternary, +-alpha for binary). CNV-28 gets a small budget on purpose, "
     "because one training image costs about 15 to 30 ms per epoch on one CPU core; its numbers "
     "compare quantizers early in training, not converged accuracy."),
)


def run_benchmark(module, takes_model, quick, folder, model_path):
    """Run one benchmark script as a process; return (result dict or None, seconds, error)."""
    json_path = folder / f"{module}.json"
    log_path = folder / f"{module}.log"
    json_path.unlink(missing_ok=True)
    command = common.python_command(f"{module}.py", "--json", json_path, "--workdir",
                                    folder / module)
    if quick:
        command.append("--quick")
    if takes_model and model_path is not None:
        command += ["--model", str(model_path)]
    logger.info("running %s", " ".join(command))
    started = time.perf_counter()
    with open(log_path, "w") as log:
        completed = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=log)
    seconds = time.perf_counter() - started
    if completed.returncode != 0 or not json_path.is_file():
        tail = log_path.read_text().strip().splitlines()[-3:]
        error = f"exit code {completed.returncode}: " + " / ".join(tail)
        logger.error("%s failed after %.0f s (%s); full log in %s", module, seconds, error, log_path)
        return None, seconds, error
    logger.info("%s finished in %.0f s", module, seconds)
    return json.loads(json_path.read_text()), seconds, None


def summary_lines(results):
    """Return the headline findings of the results as Markdown list items."""
    lines = []
    accuracy = results.get("accuracy")
    if accuracy:
        for target in accuracy["targets"]:
            lines.append(f"- Accuracy, {MODEL_LABELS.get(target['model'], target['model'])} w{target['weight_bits']}a2: the "
                         f"best SYQ scales ({target['best']}) are {target['points_over_const']:+.2f} "
                         f"points over the bnn_pynq const baseline (target +1: "
                         f"{'met' if target['met'] else 'not met'}).")
    golden = results.get("golden_vs_qonnx")
    if golden:
        for row in golden["rows"]:
            lines.append(f"- Golden model, {row['model']}: {row['speedup_batched']:.1f}x the speed "
                         f"of batched qonnx and {row['speedup_single']:.0f}x that of one qonnx "
                         f"call per image, {row['label_mismatches']} label mismatches in "
                         f"{row['images']:,} images (target 20x: "
                         f"{'met' if row['speedup_batched'] >= 20 else 'not met'} against "
                         f"batched qonnx).")
    estimates = results.get("estimates")
    if estimates:
        for name, entry in estimates["finn"].items():
            expected = estimates["finn_cnv_bottleneck"] if "CNV" in name else \
                estimates["finn_tfc_bottleneck"]
            lines.append(f"- FINN folding, {name}: {entry['max_cycles']:,}-cycle bottleneck "
                         f"({'reproduces' if entry['max_cycles'] == expected else 'differs from'} "
                         f"FINN's {expected:,}).")
        search = estimates["search"]["SYQ TFC-w2a2"]
        lines.append(f"- TFC-w2a2 on PYNQ-Z2: our search reaches {search['fps'] / 1e6:.2f} M "
                     f"frames/s at 100 MHz within the budget (target 10 M: "
                     f"{'met' if estimates['tfc_target_met'] else 'not met'}).")
    return lines


def render_page(machine, sections, started, finished, total_seconds, quick, command,
                results=None):
    """Return the Markdown page of all benchmark results."""
    versions = ", ".join(f"{name} {version}" for name, version in machine["versions"].items())
    lines = [
        "# Benchmarks",
        "",
        "Where syq stands against the tools people use today, measured side by side in one run "
        "on one machine. This page is generated by `make bench`; rerun it to refresh every "
        "number. Each section is a script in `bench/` that runs alone "
        "(`.venv/bin/python bench/NAME.py`, `--quick` for the reduced version that "
        "`tests/test_bench.py` runs in `make test`).",
        "",
        common.markdown_table(("", ""), [
            ("command", command + (" (quick versions)" if quick else "")),
            ("date (UTC)", f"{started:%Y-%m-%d %H:%M} to {finished:%H:%M}"),
            ("total wall time", f"{total_seconds / 60:.1f} min"),
            ("CPU", f"{machine['cpu']}, {machine['cores']} cores"),
            ("memory", f"{machine['memory_gib']} GiB"),
            ("OS", machine["os"]),
            ("software", versions),
        ]),
        "",
        "No GPU is used. Training runs one torch thread per process, two processes at a time. "
        "The machine may have been shared with other work during the run, which makes wall "
        "times noisier than on an idle machine.",
    ]
    findings = summary_lines(results or {})
    if findings:
        lines += ["", "## Summary", "", *findings]
    for title, notes, seconds, markdown in sections:
        lines += ["", f"## {title}", "", f"Script time: {seconds / 60:.1f} min. {notes}", "",
                  markdown]
    return "\n".join(lines) + "\n"


def _relative(path):
    """Return `path` relative to the repository root where it lies inside it."""
    try:
        return str(Path(path).relative_to(common.ROOT))
    except ValueError:
        return str(path)


def main(argv=None):
    """Run the benchmarks and write the page."""
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=common.ROOT / "docs" / "benchmarks.md",
                        help="Markdown page to write (default: docs/benchmarks.md)")
    parser.add_argument("--only", nargs="+", choices=[entry[0] for entry in BENCHMARKS],
                        help="run only these benchmarks")
    args = parser.parse_args(argv)
    common.setup_logging()

    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.perf_counter()
    machine = common.machine_description()
    sections = []
    results = {}
    failed = False
    with common.workdir(args.workdir) as folder:
        selected = [entry for entry in BENCHMARKS if not args.only or entry[0] in args.only]
        model_path = None
        if any(entry[2] for entry in selected):
            # One trained TFC serves every speed benchmark, so they measure the same file.
            model_path = common.trained_tfc_model(folder, args.quick)
        for module, title, takes_model, notes in selected:
            result, seconds, error = run_benchmark(module, takes_model, args.quick, folder,
                                                   model_path)
            if result is None:
                failed = True
                markdown = f"The benchmark failed: {error}"
            else:
                markdown = importlib.import_module(module).to_markdown(result)
                results[module] = result
            sections.append((title, notes, seconds, markdown))

    finished = datetime.datetime.now(datetime.timezone.utc)
    command = "`" + " ".join([_relative(sys.executable), *map(str, sys.argv)]) + "`"
    if args.out.resolve() == (common.ROOT / "docs" / "benchmarks.md").resolve() and not args.only:
        command = f"make bench, which runs {command}"
    page = render_page(machine, sections, started, finished, time.perf_counter() - clock,
                       args.quick, command, results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    logger.info("wrote %s (%s, %.1f min, Python %s)", args.out, "failed" if failed else "ok",
                (time.perf_counter() - clock) / 60, platform.python_version())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
