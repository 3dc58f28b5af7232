"""The main job: train -> export -> verify -> generate -> C-simulate -> report.

Everything goes into one run folder:

* ``train/``: checkpoint.pt and metrics.json of the training run;
* ``model.onnx``: the exported QONNX model;
* ``project/``: the generated HLS project (with ``csim/results.json``);
* ``report.json``, ``report.md`` and ``plots/``.
"""

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from syq.errors import SyqError

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class FlowOptions:
    """Options of the steps after training."""

    board: str = None
    clock_mhz: float = None
    fps: float = None
    folding: str = None
    csim_limit: int = None
    resume: bool = False
    init_from: str = None
    progress: bool = False


class _Timer:
    def __init__(self):
        self.seconds = {}

    def step(self, name):
        timer = self

        class _Step:
            def __enter__(self):
                logger.info("flow: %s", name)
                self.started = time.perf_counter()

            def __exit__(self, exc_type, exc, tb):
                timer.seconds[name] = time.perf_counter() - self.started
                return False

        return _Step()


def run_flow(config, out_dir, options):
    """Run every step for TrainConfig `config` into `out_dir`; return the report dict."""
    from syq.bitstreams.boards import get_board
    from syq.generator import csim, emitter, folding, inputs, lowering, verify
    from syq.report import write_report
    from syq.training.export import export_checkpoint
    from syq.training.trainer import train

    out_dir = Path(out_dir)
    config = config.resolved()
    config.validate()
    if config.float_model:
        raise SyqError("--float trains a full-precision model, which has no hardware flow; use "
                       "`syq train --float` for it")
    board = get_board(options.board, options.clock_mhz)
    train_dir = out_dir / "train"
    model_path = out_dir / "model.onnx"
    project = out_dir / "project"
    timer = _Timer()

    checkpoint = train_dir / "checkpoint.pt"
    if checkpoint.exists() and not options.resume:
        raise SyqError(f"{checkpoint} already exists: pass --resume to continue that run, or choose "
                       f"another --out")
    if options.resume and not checkpoint.exists():
        logger.warning("no run to resume in %s: starting a new one", train_dir)
    with timer.step("train"):
        metrics = train(config, train_dir, resume=checkpoint.exists() and options.resume,
                        init_from=options.init_from, progress=options.progress)
    with timer.step("export"):
        export_report = export_checkpoint(checkpoint, model_path)
    with timer.step("verify"):
        graph, model = lowering.lower_file(model_path)
        data = inputs.from_dataset(graph, config.dataset, "test", config.data_dir, options.csim_limit)
        verify_report = verify.verify(graph, model, data.floats, data.labels, streams=data.stream)
    with timer.step("generate"):
        if options.folding:
            folding.apply_folding(graph, folding.load_folding(options.folding), options.folding)
        elif options.fps is not None:
            folding.fold_for_fps(graph, board, options.fps)
        else:
            folding.fold_fastest(graph, board)
        manifest = emitter.generate_project(graph, board, project)
    with timer.step("csim"):
        csim_results = csim.simulate(project, data)
    csim_labels = np.asarray(csim_results["labels"])
    estimates = manifest["estimate"]
    report = {
        "model": config.model,
        "dataset": config.dataset,
        "config": dataclasses.asdict(config),
        "board": board.name,
        "accuracy": {
            "pytorch": export_report["accuracy_pytorch"],
            "qonnx": export_report["accuracy_qonnx"],
            "golden": verify_report["accuracy_golden"],
            "csim": csim_results["accuracy"],
            "pytorch_final_epoch": metrics.get("test_accuracy"),
        },
        "verify": {
            "images": verify_report["images"],
            "equal": verify_report["equal"],
            "consistent": verify_report["consistent"],
            "images_diverged": verify_report["images_diverged"],
            "near_ties": verify_report["near_ties"],
            "unexplained_differences": verify_report["unexplained_differences"],
            "first_differing_layer": verify_report["first_differing_layer"],
            "label_mismatches": verify_report["label_mismatches"],
            "layers": verify_report["layers"],
        },
        "export": export_report,
        "csim": {
            "images": csim_results["images"],
            "mismatches": csim_results["mismatches"],
            "label_mismatches_qonnx": int((csim_labels != verify_report["qonnx_labels"]).sum()),
            "images_per_second": csim_results["images_per_second"],
            "compile_seconds": csim_results["compile_seconds"],
        },
        "estimate": {
            "fps": estimates["fps"],
            "max_cycles": estimates["max_cycles"],
            "bottleneck": estimates["bottleneck"],
            "latency_us": estimates["latency_us"],
            "clock_mhz": estimates["clock_mhz"],
            "total": estimates["total"],
            "budget": estimates["budget"],
            "fits": estimates["fits"],
            "units": estimates["units"],
        },
        "folding": folding.folding_of(graph),
        "seconds": timer.seconds,
        "paths": {"checkpoint": str(checkpoint), "model": str(model_path), "project": str(project)},
    }
    write_report(report, metrics, graph, out_dir)
    report["seconds"]["total"] = sum(timer.seconds.values())
    return report
