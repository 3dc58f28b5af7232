"""Helpers shared by the benchmark scripts: command line, result files, timing and tables.

Every benchmark script has the same interface: ``--quick`` runs the reduced version that the test
suite uses, ``--json PATH`` writes the result dict, ``--workdir DIR`` keeps intermediate files
(a temporary folder otherwise), and the script prints its Markdown table when it finishes.
"""

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One BLAS thread per process, set before numpy loads OpenBLAS. On a busy 2-core machine
# OpenBLAS threads wait for each other: golden.predict on 10,000 TFC inputs took 2.2 s with the
# default threads and 0.24 s with one. The setting applies to qonnx and hls4ml alike.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
#: Brevitas bnn_pynq TFC models from the QONNX model zoo, shipped with the tests.
ZOO_DIR = ROOT / "tests" / "data" / "qonnx-zoo-tfc"

logger = logging.getLogger("bench")


def parser(description):
    """Return an ArgumentParser with the options every benchmark script takes."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--quick", action="store_true",
                        help="run the reduced version (seconds, not minutes) that the tests use")
    result.add_argument("--json", type=Path, help="write the result dict to this JSON file")
    result.add_argument("--workdir", type=Path,
                        help="folder for models, projects and builds (default: a temporary folder)")
    return result


def setup_logging():
    """Log benchmark progress to stderr; keep the libraries' own logs at warnings."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("bench").setLevel(logging.INFO)


@contextlib.contextmanager
def workdir(path):
    """Yield `path` (created) or, when it is None, a temporary folder removed afterwards."""
    if path is not None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="syq-bench-") as folder:
        yield Path(folder)


class Stopwatch:
    """Context manager that stores the wall time of its block in ``seconds``."""

    def __enter__(self):
        self.started = time.perf_counter()
        self.seconds = None
        return self

    def __exit__(self, exc_type, exc, tb):
        self.seconds = time.perf_counter() - self.started
        return False


def mean_and_sd(values):
    """Return (mean, sample standard deviation) of `values`; the deviation is 0 for one value."""
    values = list(values)
    if not values:
        return float("nan"), float("nan")
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), spread


def markdown_table(header, rows):
    """Return a Markdown table of `rows` (sequences of cells) under `header`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def seconds_text(seconds):
    """Format a duration for a table: milliseconds below one second."""
    if seconds is None:
        return "n/a"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def rate_text(value):
    """Format a rate for a table: two decimals below 10, whole numbers with separators above."""
    if value is None:
        return "n/a"
    return f"{value:.2f}" if value < 10 else f"{value:,.0f}"


def finish(result, args, to_markdown):
    """Write `result` to ``--json`` if given and print its Markdown rendering."""
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    print(to_markdown(result))


def main(description, run, to_markdown, argv=None, takes_model=False):
    """Parse the common options (and ``--model`` when `takes_model`), call `run` in the work
    folder and print its Markdown: the command-line entry of every benchmark script."""
    arguments = parser(description)
    if takes_model:
        arguments.add_argument("--model", type=Path,
                               help="SYQ TFC QONNX file to use (default: train and export one)")
    args = arguments.parse_args(argv)
    setup_logging()
    with workdir(args.workdir) as folder:
        extra = (args.model,) if takes_model else ()
        result = run(args.quick, folder, *extra)
    finish(result, args, to_markdown)


def limit_threads(threads=1):
    """Limit torch (and the BLAS libraries under numpy) to `threads` threads in this process.

    On a small shared machine, one process per core with one thread each beats several threads
    per process. On the 2-core machine of docs/benchmarks.md a TFC training epoch took 2.4 s
    with one torch thread and 28 s with two.
    """
    import torch

    torch.set_num_threads(threads)


def machine_description():
    """Return a dict describing this machine: CPU model, core count, memory, OS and versions."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)
    versions = {"python": platform.python_version()}
    for package in ("torch", "brevitas", "qonnx", "onnx", "numpy", "hls4ml"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[package] = version(package)
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        banner = subprocess.run(["g++", "--version"], capture_output=True, text=True,
                                check=True).stdout.splitlines()
        # The first line reads "g++ (Debian 12.2.0-14) 12.2.0": keep what follows the name.
        versions["g++"] = banner[0].removeprefix("g++ ").strip() if banner else "unknown"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory_gib,
            "os": platform.platform(), "versions": versions}


def python_command(script, *arguments):
    """Return the command that runs bench `script` with this interpreter."""
    return [sys.executable, str(BENCH_DIR / script), *map(str, arguments)]


INPUT_SHAPES = {"tfc": (1, 28, 28), "sfc": (1, 28, 28), "lfc": (1, 28, 28), "cnv28": (1, 28, 28),
                "cnv": (3, 32, 32)}


def export_untrained_model(name, path, granularity="channel", weight_bits=2, seed=0):
    """Export a randomly initialised SYQ network (2-bit activations) to QONNX file `path`.

    Untrained weights are enough for timing the generator and for hardware estimates: cycles
    and resources depend on the shapes and bit widths, not on the values.
    """
    import torch

    from syq.training.export import export_to_qonnx
    from syq.training.models import QuantSpec, build_model

    torch.manual_seed(seed)
    threshold = 0.05 if weight_bits == 2 else 0.0
    spec = QuantSpec(weight_bits=weight_bits, act_bits=2, granularity=granularity,
                     threshold=threshold)
    model = build_model(name, INPUT_SHAPES[name], 10, spec).eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    export_to_qonnx(model, path, {"model": name, "granularity": granularity, "trained": "no"})
    return path


def trained_tfc_model(folder, quick):
    """Return the QONNX file of a SYQ TFC-w2a2 (channel scales) trained on Fashion-MNIST.

    The model is trained for one epoch (on 2,000 images with `quick`) and exported once per
    `folder`; later calls reuse the file.
    """
    from syq.training.export import export_checkpoint
    from syq.training.trainer import TrainConfig, train

    folder = Path(folder)
    path = folder / ("tfc_w2a2_quick.onnx" if quick else "tfc_w2a2.onnx")
    if path.is_file():
        return path
    limit_threads(1)
    run_dir = folder / (path.stem + "_train")
    config = TrainConfig(model="tfc", dataset="fashion-mnist", weight_bits=2, act_bits=2,
                         granularity="channel", epochs=1, train_limit=2000 if quick else None)
    logger.info("training %s for the speed benchmarks", path.name)
    if not (run_dir / "checkpoint.pt").is_file():
        train(config, run_dir, progress=False)
    export_checkpoint(run_dir / "checkpoint.pt", path, verify_images=500)
    return path
