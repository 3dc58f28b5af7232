"""Accuracy of SYQ against baseline weight quantizers at an equal training budget.

Every run of one network uses the same data, epochs, batch size, optimizer (Adam with cosine
decay), learning rate, seeds and activation quantizer (2-bit DoReFa), so only the weight
quantizer differs:

* SYQ with one learned scale per layer, per output channel or (CNV-28) per kernel position;
* ``const``: the Brevitas bnn_pynq recipe (constant scale 1, latent weights clipped to [-1, 1]);
* ``learned``: Brevitas per-channel quantizers with a learned scale (narrow INT2 or binary);
* ``float``: the same topology in full precision.

Runs go to a pool of worker processes with one torch thread each. Usage::

    .venv/bin/python bench/accuracy.py [--quick] [--json results.json] [--workers 2]
"""

import concurrent.futures
import dataclasses
import logging
import multiprocessing
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

logger = logging.getLogger("bench.accuracy")

# (label, TrainConfig keywords) of each weight quantizer; "pixel" only applies to convolutions.
QUANTIZERS = {
    "SYQ layer": {"weight_quant": "syq", "granularity": "layer"},
    "SYQ channel": {"weight_quant": "syq", "granularity": "channel"},
    "SYQ pixel": {"weight_quant": "syq", "granularity": "pixel"},
    "const (bnn_pynq)": {"weight_quant": "const"},
    "learned per-channel": {"weight_quant": "learned"},
    "float": {"float_model": True},
}
CONVOLUTIONAL_ONLY = ("SYQ pixel",)


@dataclasses.dataclass(frozen=True)
class Budget:
    """Training budget of one network: identical for every quantizer compared on it."""

    epochs: int
    train_limit: int  # None: all 60,000 training images
    test_limit: int  # None: all 10,000 test images
    batch_size: int
    seeds: tuple
    weight_bits: tuple = (2, 1)

    def describe(self):
        """Return the budget as one line of text."""
        train = "all 60,000" if self.train_limit is None else f"the first {self.train_limit:,}"
        test = "all 10,000" if self.test_limit is None else f"the first {self.test_limit:,}"
        return (f"{self.epochs} epoch(s) on {train} training images, batch {self.batch_size}, "
                f"Adam lr 1e-3 with cosine decay, seeds {', '.join(map(str, self.seeds))}; "
                f"test accuracy on {test} test images")


FULL = {
    "tfc": Budget(epochs=5, train_limit=None, test_limit=None, batch_size=256, seeds=(0, 1, 2)),
    "cnv28": Budget(epochs=1, train_limit=2000, test_limit=1000, batch_size=32, seeds=(0, 1, 2)),
}
QUICK = {
    "tfc": Budget(epochs=1, train_limit=3000, test_limit=2000, batch_size=128, seeds=(0,)),
    "cnv28": Budget(epochs=1, train_limit=128, test_limit=100, batch_size=32, seeds=(0,),
                    weight_bits=(2,)),
}
# The quick version trains fewer quantizers on CNV-28: one run proves the convolution path works.
QUICK_CNV_QUANTIZERS = ("SYQ pixel",)


def plan_runs(budgets, quick):
    """Return the list of runs (dicts) of every network, weight width, quantizer and seed."""
    runs = []
    for model, budget in budgets.items():
        for weight_bits in budget.weight_bits:
            for label, options in QUANTIZERS.items():
                if label in CONVOLUTIONAL_ONLY and not model.startswith("cnv"):
                    continue
                if quick and model.startswith("cnv") and label not in QUICK_CNV_QUANTIZERS:
                    continue
                # A float model has no weight width: train it once per network.
                if options.get("float_model") and weight_bits != budget.weight_bits[0]:
                    continue
                for seed in budget.seeds:
                    runs.append({"model": model, "weight_bits": weight_bits, "act_bits": 2,
                                 "quantizer": label, "options": options, "seed": seed,
                                 "budget": dataclasses.asdict(budget)})
    return runs


def _worker_setup():
    common.limit_threads(1)
    logging.getLogger().setLevel(logging.WARNING)


def _limited_loader(load_dataset, test_limit):
    """Wrap a dataset loader so that it returns only the first `test_limit` test images."""

    def load(name, data_dir=None):
        dataset = load_dataset(name, data_dir)
        return dataclasses.replace(dataset, test_images=dataset.test_images[:test_limit],
                                   test_labels=dataset.test_labels[:test_limit])

    return load


def train_one(run):
    """Train one run in this process and return it with its test accuracy and wall time."""
    from syq.training import trainer

    budget = run["budget"]
    # NOTE: the trainer evaluates on the whole test split of its dataset after every epoch. A
    # CNV-28 pass over 10,000 images costs about a minute on one core, so the CNV-28 budget
    # evaluates on a stated subset instead.
    loader = _original_loader()
    if budget["test_limit"] is not None:
        loader = _limited_loader(loader, budget["test_limit"])
    trainer.load_dataset = loader
    config = trainer.TrainConfig(model=run["model"], dataset="fashion-mnist",
                                 weight_bits=run["weight_bits"], act_bits=run["act_bits"],
                                 epochs=budget["epochs"], train_limit=budget["train_limit"],
                                 batch_size=budget["batch_size"], seed=run["seed"],
                                 **run["options"])
    with tempfile.TemporaryDirectory(prefix="syq-bench-train-") as folder, \
            common.Stopwatch() as watch:
        metrics = trainer.train(config, folder, progress=False)
    return {**run, "accuracy": metrics["test_accuracy"], "seconds": watch.seconds,
            "train_accuracy": metrics["epochs"][-1]["train_accuracy"]}


def _original_loader():
    from syq.training import datasets

    return datasets.load_dataset


def run_grid(runs, workers):
    """Train every run on a pool of `workers` processes; return the finished runs in order."""
    context = multiprocessing.get_context("spawn")
    results = [None] * len(runs)
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                initializer=_worker_setup) as pool:
        futures = {pool.submit(train_one, run): index for index, run in enumerate(runs)}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            index = futures[future]
            results[index] = future.result()
            finished = results[index]
            logger.info("%d/%d %s w%da%d %s seed %d: %.4f (%.1f s)", done, len(runs),
                        finished["model"], finished["weight_bits"], finished["act_bits"],
                        finished["quantizer"], finished["seed"], finished["accuracy"],
                        finished["seconds"])
    return results


def summarize(results):
    """Return one row per (network, weight width, quantizer): mean and spread over the seeds."""
    groups = {}
    for run in results:
        key = (run["model"], run["weight_bits"], run["quantizer"])
        groups.setdefault(key, []).append(run)
    rows = []
    for (model, weight_bits, quantizer), runs in groups.items():
        mean, spread = common.mean_and_sd(run["accuracy"] for run in runs)
        rows.append({"model": model, "weight_bits": weight_bits, "quantizer": quantizer,
                     "seeds": [run["seed"] for run in runs],
                     "accuracies": [run["accuracy"] for run in runs],
                     "mean": mean, "sd": spread,
                     "seconds_per_run": common.mean_and_sd(run["seconds"] for run in runs)[0]})
    for row in rows:
        const = next((other for other in rows if other["model"] == row["model"]
                      and other["weight_bits"] == row["weight_bits"]
                      and other["quantizer"] == "const (bnn_pynq)"), None)
        row["points_over_const"] = None if const is None else 100 * (row["mean"] - const["mean"])
        learned = next((other for other in rows if other["model"] == row["model"]
                        and other["weight_bits"] == row["weight_bits"]
                        and other["quantizer"] == "learned per-channel"), None)
        row["points_over_learned"] = None if learned is None else \
            100 * (row["mean"] - learned["mean"])
    return rows


def check_targets(rows):
    """Return, per network and weight width, whether the best SYQ mean is >= 1 point over const."""
    targets = []
    for model, weight_bits in sorted({(row["model"], row["weight_bits"]) for row in rows}):
        syq = [row for row in rows if row["model"] == model and row["weight_bits"] == weight_bits
               and row["quantizer"].startswith("SYQ") and row["points_over_const"] is not None]
        if not syq:
            continue
        best = max(syq, key=lambda row: row["mean"])
        targets.append({"model": model, "weight_bits": weight_bits, "best": best["quantizer"],
                        "points_over_const": best["points_over_const"],
                        "points_over_learned": best.get("points_over_learned"),
                        "met": best["points_over_const"] >= 1.0})
    return targets


def run(quick, workers):
    """Run the benchmark and return its result dict."""
    budgets = QUICK if quick else FULL
    runs = plan_runs(budgets, quick)
    logger.info("training %d runs on %d worker processes", len(runs), workers)
    with common.Stopwatch() as watch:
        results = run_grid(runs, workers)
    rows = summarize(results)
    return {"benchmark": "accuracy", "quick": quick, "workers": workers,
            "budgets": {model: {**dataclasses.asdict(budget), "text": budget.describe()}
                        for model, budget in budgets.items()},
            "runs": results, "summary": rows, "targets": check_targets(rows),
            "seconds": watch.seconds}


MODEL_NAMES = {"tfc": "TFC (784-64-64-64-10)", "cnv28": "CNV-28 (CNV for 28x28x1 inputs)"}


def to_markdown(result):
    """Return the Markdown section of an accuracy result."""
    parts = []
    for model, budget in result["budgets"].items():
        parts.append(f"**{MODEL_NAMES.get(model, model)}**, Fashion-MNIST, 2-bit activations: "
                     f"{budget['text']}.\n")
        rows = []
        for row in result["summary"]:
            if row["model"] != model:
                continue
            weights = "float" if row["quantizer"] == "float" else \
                ("ternary (w2a2)" if row["weight_bits"] == 2 else "binary (w1a2)")
            over = "" if row["points_over_const"] is None or row["quantizer"] == "const (bnn_pynq)" \
                else f"{row['points_over_const']:+.2f}"
            over_learned = "" if row.get("points_over_learned") is None or \
                row["quantizer"] == "learned per-channel" else f"{row['points_over_learned']:+.2f}"
            rows.append((weights, row["quantizer"], f"{100 * row['mean']:.2f}",
                         f"{100 * row['sd']:.2f}",
                         " / ".join(f"{100 * value:.2f}" for value in row["accuracies"]),
                         over, over_learned, common.seconds_text(row["seconds_per_run"])))
        parts.append(common.markdown_table(
            ("weights", "quantizer", "mean %", "sd (points)", "per seed %", "points over const",
             "points over learned", "time per run"), rows))
        parts.append("")
    targets = result["targets"]
    if targets:
        lines = [f"- {MODEL_NAMES.get(target['model'], target['model'])} "
                 f"w{target['weight_bits']}a2: best SYQ ({target['best']}) is "
                 f"{target['points_over_const']:+.2f} points over const: target "
                 f"{'met' if target['met'] else 'not met'}"
                 + ("" if target.get("points_over_learned") is None else
                    f" ({target['points_over_learned']:+.2f} points over learned per-channel)")
                 for target in targets]
        parts.append("Target (SYQ at least 1 point above the const baseline):\n\n" + "\n".join(lines))
    return "\n".join(parts)


def main(argv=None):
    """Run the accuracy benchmark from the command line."""
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2,
                        help="training processes run in parallel, one torch thread each "
                             "(default: 2)")
    args = parser.parse_args(argv)
    common.setup_logging()
    result = run(args.quick, args.workers)
    common.finish(result, args, to_markdown)


if __name__ == "__main__":
    main()
