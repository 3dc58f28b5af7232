"""The `syq` command line: one subcommand per pipeline step, and `flow` for all of them."""

import argparse
import logging
import sys

from syq import __version__
from syq.errors import SyqError

logger = logging.getLogger("syq")

# Third-party loggers that report routine work at INFO level.
NOISY_LOGGERS = ("torch", "torch.onnx", "onnx_ir", "onnxscript", "brevitas", "matplotlib", "PIL")


class _Formatter(logging.Formatter):
    def format(self, record):
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message


def configure_logging(verbosity):
    """Send log records to stderr: INFO by default, DEBUG with -v, warnings only with -q."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def print_table(rows, headers):
    """Print `rows` (sequences of values) as an aligned plain-text table on stdout."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [max(len(header), *(len(row[column]) for row in cells)) if cells else len(header)
              for column, header in enumerate(headers)]
    print("  ".join(header.ljust(width) for header, width in zip(headers, widths)).rstrip())
    print("  ".join("-" * width for width in widths))
    for row in cells:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())


def _percent(fraction):
    return "-" if fraction is None else f"{100.0 * fraction:.2f} %"


# ---------------------------------------------------------------------------------------------
# train / export


def positive_int(text):
    """Parse an integer of at least 1 (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: expected a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {value}: it must be at least 1")
    return value


def add_training_options(parser, require_out=True,
                         out_help="run folder for checkpoint.pt and metrics.json"):
    """Add the options of `syq train` (shared with `syq flow`)."""
    from syq.training.datasets import DATASETS
    from syq.training.models import MODELS
    from syq.training.quantizers import GRANULARITIES

    parser.add_argument("--model", choices=MODELS, default="tfc", help="network (default: tfc)")
    parser.add_argument("--dataset", choices=DATASETS, default="fashion-mnist",
                        help="training data (default: fashion-mnist)")
    parser.add_argument("--data-dir", help="folder with the dataset files (IDX files for "
                        "fashion-mnist/mnist, python batches for cifar10)")
    parser.add_argument("--weight-bits", type=int, choices=(1, 2), default=2,
                        help="1 = binary, 2 = ternary SYQ weights (default: 2)")
    parser.add_argument("--act-bits", type=int, choices=range(1, 9), default=2, metavar="K",
                        help="activation bits, 1 to 8 (default: 2)")
    parser.add_argument("--granularity", choices=GRANULARITIES, default="channel",
                        help="one learned scale per layer, output channel, kernel row or kernel "
                        "position (default: channel)")
    parser.add_argument("--threshold", type=float, metavar="T",
                        help="SYQ threshold factor t in [0, 1): delta = t * max|w| "
                        "(default: 0.05 ternary, 0 binary)")
    parser.add_argument("--scale-bits", type=int, default=8,
                        help="width of the fixed-point scales of kernel-row/pixel granularity "
                        "(default: 8)")
    parser.add_argument("--act-quant", choices=("dorefa", "learned", "bnn-pynq"), default="dorefa",
                        help="activation quantizer: DoReFa clip(x, 0, 1), a learned-scale "
                        "QuantReLU, or bnn_pynq's signed levels in [-1, 1] (bipolar for 1 bit) "
                        "(default: dorefa)")
    parser.add_argument("--input-quant", choices=("pixels", "bnn-pynq"), default="pixels",
                        help="network input: 8-bit pixel codes, or bnn_pynq's 2x - 1 quantized to "
                        "signed codes (default: pixels)")
    parser.add_argument("--first-layer", choices=("syq", "int8"), default="syq",
                        help="weight precision of the first layer (default: syq)")
    parser.add_argument("--last-layer", choices=("syq", "int8"), default="syq",
                        help="weight precision of the last layer (default: syq)")
    parser.add_argument("--weight-quant", choices=("syq", "const", "learned"), default="syq",
                        help="weight quantizer: SYQ, or a baseline for comparison: the bnn_pynq "
                        "constant scale 1 ('const') or a learned per-channel Brevitas scale "
                        "('learned') (default: syq)")
    parser.add_argument("--float", dest="float_model", action="store_true",
                        help="train a full-precision baseline (for --init-from or comparison)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default: 10)")
    parser.add_argument("--train-limit", type=positive_int, metavar="N",
                        help="train on the first N training images only (default: all)")
    parser.add_argument("--batch-size", type=int, default=256, help="batch size (default: 256)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--out", required=require_out, help=out_help)
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in --out")
    parser.add_argument("--init-from", metavar="CKPT",
                        help="start from the weights of another checkpoint (e.g. a --float run)")


def training_config(args):
    """Return the TrainConfig described by parsed training options."""
    from syq.training.trainer import TrainConfig

    return TrainConfig(model=args.model, dataset=args.dataset, data_dir=args.data_dir,
                       weight_bits=args.weight_bits, act_bits=args.act_bits,
                       granularity=args.granularity, threshold=args.threshold,
                       scale_bits=args.scale_bits, act_quant=args.act_quant,
                       first_layer=args.first_layer, last_layer=args.last_layer,
                       float_model=args.float_model, weight_quant=args.weight_quant,
                       input_quant=args.input_quant,
                       epochs=args.epochs, train_limit=args.train_limit,
                       batch_size=args.batch_size, lr=args.lr, seed=args.seed)


def command_train(args):
    from syq.training.trainer import train

    metrics = train(training_config(args), args.out, resume=args.resume, init_from=args.init_from,
                    progress=sys.stderr.isatty())
    rows = [(record["epoch"], f"{record['train_loss']:.4f}", _percent(record["train_accuracy"]),
             _percent(record["test_accuracy"]), f"{record['seconds']:.1f}")
            for record in metrics["epochs"]]
    print_table(rows, ("epoch", "train loss", "train acc", "test acc", "seconds"))
    print(f"test accuracy {_percent(metrics.get('test_accuracy'))}; checkpoint in {args.out}")


def command_export(args):
    from syq.training.export import export_checkpoint

    report = export_checkpoint(args.checkpoint, args.out, verify_images=args.verify_images,
                               data_dir=args.data_dir)
    if report:
        print_table([("images checked", report["images"]),
                     ("weight layers with identical codes",
                      f"{report['weight_layers_checked']} of {report['weight_layers_checked']}"),
                     ("label mismatches PyTorch vs QONNX", report["label_mismatches"]),
                     ("max |output difference|", f"{report['max_abs_output_difference']:.3g}"),
                     ("accuracy PyTorch", _percent(report.get("accuracy_pytorch"))),
                     ("accuracy QONNX", _percent(report.get("accuracy_qonnx")))],
                    ("check", "result"))
    print(f"wrote {args.out}")


# ---------------------------------------------------------------------------------------------
# generate / estimate / verify / csim


def add_folding_options(parser, board_default="or the project's board"):
    """Add --board, --clock-mhz and the folding choice (--fps or --folding)."""
    from syq.bitstreams.boards import BOARDS, DEFAULT_BOARD

    parser.add_argument("--board", choices=tuple(BOARDS),
                        help=f"target board: part, clock and resource budget (default: {DEFAULT_BOARD}"
                        f"{', ' + board_default if board_default else ''})")
    parser.add_argument("--clock-mhz", type=float, help="clock in MHz (default: the board's)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--fps", type=float, help="fold for this many frames per second "
                        "(default: the fastest design within the board budget)")
    choice.add_argument("--folding", metavar="FOLDING.json",
                        help='explicit folding: {"layer0": {"pe": 16, "simd": 49}, ...}')


def fold_graph(graph, args):
    """Fold `graph` as the options ask; return the board."""
    from syq.bitstreams.boards import get_board
    from syq.generator import folding

    board = get_board(args.board, args.clock_mhz)  # None: the default board
    if args.folding:
        folding.apply_folding(graph, folding.load_folding(args.folding), args.folding)
    elif args.fps is not None:
        folding.fold_for_fps(graph, board, args.fps)
    else:
        folding.fold_fastest(graph, board)
    return board


def print_estimate(report):
    """Print the per-unit estimate table and the totals."""
    rows = [(unit["name"], unit["kind"], unit["pe"], unit["simd"], unit["cycles"], unit["lut"],
             unit["bram18"], unit["dsp"]) for unit in report["units"]]
    total = report["total"]
    budget = report["budget"]
    rows.append(("total", "", "", "", report["latency_cycles"], total["lut"], total["bram18"],
                 total["dsp"]))
    rows.append((f"budget ({report['board']})", "", "", "", "", budget["lut"], budget["bram18"],
                 budget["dsp"]))
    print_table(rows, ("unit", "type", "PE", "SIMD", "cycles", "LUT", "BRAM18", "DSP"))
    print(f"bottleneck {report['bottleneck']}: {report['max_cycles']} cycles/frame, "
          f"{report['fps']:,.0f} frames/s at {report['clock_mhz']:g} MHz, latency "
          f"{report['latency_us']:.2f} us; {'fits' if report['fits'] else 'does NOT fit'} the budget "
          f"(estimates)")


def command_generate(args):
    from syq.generator import emitter, lowering

    graph, _ = lowering.lower_file(args.model)
    board = fold_graph(graph, args)
    manifest = emitter.generate_project(graph, board, args.out)
    print_estimate(manifest["estimate"])
    print(f"wrote {args.out}")


def command_estimate(args):
    from pathlib import Path

    from syq.bitstreams.boards import get_board
    from syq.generator import estimate, lowering
    from syq.generator.csim import load_project

    target = Path(args.target)
    if target.is_dir():
        if args.fps or args.folding:
            raise SyqError(f"{target} is a generated project with a fixed folding; --fps and "
                           f"--folding apply to a QONNX file")
        manifest, graph, _ = load_project(target)
        clock = args.clock_mhz or (None if args.board else manifest["board"]["clock_mhz"])
        board = get_board(args.board or manifest["board"]["name"], clock)
    else:
        graph, _ = lowering.lower_file(target)
        board = fold_graph(graph, args)
    print_estimate(estimate.estimate_graph(graph, board))


def add_input_options(parser):
    """Add --dataset/--inputs, --split, --data-dir and --limit."""
    from syq.training.datasets import DATASETS, SPLITS

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=DATASETS, help="run on the images of this dataset")
    source.add_argument("--inputs", metavar="X.npy", help="run on a float array in the model's "
                        "input shape (images as pixel / 255)")
    parser.add_argument("--split", choices=SPLITS, default="test", help="dataset split (default: test)")
    parser.add_argument("--data-dir", help="dataset folder (see syq train --help)")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="use only the first N inputs")


def command_verify(args):
    from syq.generator import inputs, lowering, verify

    graph, model = lowering.lower_file(args.model)
    data = inputs.load_inputs(graph, args.dataset, args.split, args.data_dir, args.inputs, args.limit)
    report = verify.verify(graph, model, data.floats, data.labels, streams=data.stream)
    rows = [(layer["name"], layer["qonnx_tensor"], layer["elements"], layer["mismatches"],
             layer["near_ties"], layer["unexplained"]) for layer in report["layers"]]
    print_table(rows, ("unit", "QONNX tensor", "codes compared", "differing", "float32 near-ties",
                       "unexplained"))
    print(f"{report['images']} inputs ({data.description}); labels differing: "
          f"{report['label_mismatches']}; max |score difference| {report['max_abs_score_difference']:.3g}")
    if "accuracy_golden" in report:
        print(f"accuracy golden {_percent(report['accuracy_golden'])}, QONNX "
              f"{_percent(report['accuracy_qonnx'])}")
    if report["equal"]:
        print("golden model equals QONNX execution")
        return 0
    print(f"{report['images_diverged']} inputs differ from the first differing unit "
          f"{report['first_differing_layer']}: {report['near_ties']} float32 near-ties, "
          f"{report['unexplained_differences']} unexplained")
    if report["consistent"]:
        print("every difference is a float32 rounding near-tie of QONNX execution")
        return 0
    return 1


def command_csim(args):
    from syq.generator import csim, inputs

    _, graph, _ = csim.load_project(args.project)
    data = inputs.load_inputs(graph, args.dataset, args.split, args.data_dir, args.inputs, args.limit)
    results = csim.simulate(args.project, data)
    rows = [("images", results["images"]), ("mismatches with the golden model", results["mismatches"]),
            ("compile seconds", f"{results['compile_seconds']:.1f}"),
            ("simulation seconds", f"{results['run_seconds']:.1f}"),
            ("images/s", f"{results['images_per_second']:.0f}")]
    if "accuracy" in results:
        rows += [("accuracy C-sim", _percent(results["accuracy"])),
                 ("accuracy golden", _percent(results["accuracy_golden"]))]
    print_table(rows, ("C-simulation", "result"))
    print(f"results in {args.project}/csim/results.json")
    return 1 if results["mismatches"] else 0


def command_flow(args):
    from syq.flow import FlowOptions, run_flow
    from syq.report import summary_rows

    options = FlowOptions(board=args.board, clock_mhz=args.clock_mhz, fps=args.fps,
                          folding=args.folding, csim_limit=args.csim_limit, resume=args.resume,
                          init_from=args.init_from, progress=sys.stderr.isatty())
    report = run_flow(training_config(args), args.out, options)
    print_table(summary_rows(report), ("flow", "result"))
    print(f"report in {args.out}/report.md and {args.out}/report.json")
    return 0 if report["csim"]["mismatches"] == 0 and report["verify"]["consistent"] else 1


# ---------------------------------------------------------------------------------------------
# hls / bitstream


def command_hls(args):
    from syq.generator import vendor
    from syq.generator.csim import load_project

    steps = [step for step in vendor.STEPS if getattr(args, step)] or list(vendor.DEFAULT_STEPS)
    data = None
    if vendor.needs_test_data(steps):
        manifest, graph, _ = load_project(args.project)
        data = vendor.default_inputs(args.project, graph, manifest, args.dataset, args.split,
                                     args.data_dir, args.inputs, args.limit)
    report = vendor.run_hls(args.project, steps, data)
    if "synthesis" in report:
        def cell(unit, key):
            return "-" if unit.get(key) is None else unit[key]

        rows = [(unit["unit"], cell(unit, "module"), cell(unit, "ii"), cell(unit, "lut"),
                 cell(unit, "ff"), cell(unit, "bram18"), cell(unit, "dsp"), unit["estimate"]["lut"])
                for unit in report["synthesis"]["units"]]
        top = report["synthesis"]["top"]
        resources = top["resources"]
        rows.append((top["module"], "", "", resources.get("lut"), resources.get("ff"),
                     resources.get("bram18"), resources.get("dsp"), ""))
        print_table(rows, ("unit", "HLS module", "II", "LUT", "FF", "BRAM18", "DSP", "LUT estimate"))
        print(f"estimated clock {top['estimated_clock_ns']} ns (target {top['target_clock_ns']} ns)")
    rows = [("tool", report["tool"]), ("steps", " ".join(report["steps"]))]
    if "csim" in report:
        rows.append(("C-simulation", f"{report['csim']['status']}, {report['frames']} frames"))
    if "cosim" in report:
        cosim = report["cosim"]
        rows.append(("co-simulation mismatches", f"{cosim['mismatches']} of {cosim['frames']} frames"))
        if cosim.get("latency_max") is not None:
            rows.append(("co-simulation latency", f"{cosim['latency_max']} cycles"))
    if "export" in report:
        rows.append(("exported IP", report["export"]["ip_dir"]))
    print_table(rows, ("HLS", "result"))
    print(f"report in {args.project}/hls/report.json, log in {report['log']}")


def command_bitstream(args):
    from syq.bitstreams import deploy

    result = deploy.write_deploy(args.project, args.out, args.board)
    vivado = None if args.scripts_only else deploy.find_vivado()
    if vivado is not None:
        deploy.run_vivado(result, vivado, args.jobs)
    rows = [("folder", result["folder"]), ("board", result["board"].name),
            ("HLS IP", result["ip_dir"] if result["ip_exported"] else
             f"{result['ip_dir']} (not exported yet: syq hls PROJECT --export)"),
            ("register offsets", result["registers_from"])]
    if vivado is not None:
        rows += [("bitstream", result["bitfile"]), ("hardware handoff", result["hwh"])]
    print_table(rows, ("deploy", "result"))
    if vivado is None:
        reason = "--scripts-only" if args.scripts_only else "vivado is not on PATH"
        print(f"{reason}: build the bitstream with `{result['command']}`")
    print(f"copy {result['folder']} to the board and run `python3 driver.py --input images.npy`")


# ---------------------------------------------------------------------------------------------


def build_parser():
    """Return the argument parser of the `syq` command."""
    parser = argparse.ArgumentParser(
        prog="syq", description="Train SYQ-quantized networks and turn them into bit-exact HLS "
        "dataflow accelerators.")
    parser.add_argument("--version", action="version", version=f"syq {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", help="train a network with SYQ quantizers",
                                description="Train a network with SYQ weights and quantized "
                                "activations; writes OUT/checkpoint.pt every epoch and "
                                "OUT/metrics.json.")
    add_training_options(train)
    train.set_defaults(handler=command_train)

    export = commands.add_parser("export", help="export a checkpoint to QONNX and check it",
                                 description="Export a checkpoint to QONNX (cleaned, with "
                                 "metadata) and compare QONNX execution with PyTorch on the test "
                                 "images of its dataset.")
    export.add_argument("checkpoint", help="checkpoint.pt of a `syq train` run")
    export.add_argument("--out", required=True, help="QONNX file to write")
    export.add_argument("--verify-images", type=positive_int, metavar="N",
                        help="check on the first N test images (default: all; 0 skips the check)")
    export.add_argument("--data-dir", help="dataset folder, if not the one used in training")
    export.set_defaults(handler=command_export)

    generate = commands.add_parser("generate", help="generate the HLS project of a QONNX model",
                                   description="Lower a QONNX model to the hardware graph, fold it "
                                   "and write a Vivado/Vitis HLS project.")
    generate.add_argument("model", help="QONNX file")
    generate.add_argument("--out", required=True, help="project folder to write")
    add_folding_options(generate)
    generate.set_defaults(handler=command_generate)

    estimate = commands.add_parser("estimate", help="print cycles, throughput and resources",
                                   description="Print per-unit cycles, throughput, latency and "
                                   "LUT/BRAM/DSP estimates of a QONNX model or a generated project.")
    estimate.add_argument("target", help="QONNX file or generated project folder")
    add_folding_options(estimate)
    estimate.set_defaults(handler=command_estimate)

    verify = commands.add_parser("verify", help="compare the golden model with QONNX execution",
                                 description="Run the integer golden model and qonnx execution on the "
                                 "same inputs and compare every quantized layer; names the first "
                                 "layer that differs and traces each difference to a float32 "
                                 "near-tie of QONNX execution or reports it as unexplained "
                                 "(exit code 1).")
    verify.add_argument("model", help="QONNX file")
    add_input_options(verify)
    verify.set_defaults(handler=command_verify)

    simulate = commands.add_parser("csim", help="C-simulate a generated project with g++",
                                   description="Compile the project with g++ against the ap_types "
                                   "headers, stream the inputs through the testbench and compare "
                                   "with the golden model. Exit code 1 on any mismatch.")
    simulate.add_argument("project", help="project folder written by syq generate")
    add_input_options(simulate)
    simulate.set_defaults(handler=command_csim)

    from syq.bitstreams.boards import BOARDS
    from syq.training.datasets import DATASETS, SPLITS

    hls = commands.add_parser("hls", help="run Vitis HLS / Vivado HLS on a generated project",
                              description="Run run_hls.tcl with vitis_hls (or vivado_hls): "
                              "C-simulation and co-simulation of the project's testbench against "
                              "the golden model, C-synthesis, IP export. Writes PROJECT/hls/hls.log "
                              "and PROJECT/hls/report.json. Steps default to --csim --synth.")
    hls.add_argument("project", help="project folder written by syq generate")
    for step, text in (("csim", "C-simulation with the vendor compiler"),
                       ("synth", "C-synthesis (per-unit latency, II and resources)"),
                       ("cosim", "RTL co-simulation, compared with the golden model"),
                       ("export", "IP export for syq bitstream")):
        hls.add_argument(f"--{step}", action="store_true", help=text)
    source = hls.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=DATASETS, help="test images of this dataset "
                        "(default: the dataset in the project's metadata)")
    source.add_argument("--inputs", metavar="X.npy", help="test inputs: a float array in the "
                        "model's input shape")
    hls.add_argument("--split", choices=SPLITS, default="test", help="dataset split (default: test)")
    hls.add_argument("--data-dir", help="dataset folder (see syq train --help)")
    hls.add_argument("--limit", type=positive_int, metavar="N", help="test frames (default: 8 of a dataset, "
                     "all of --inputs)")
    hls.set_defaults(handler=command_hls)

    bitstream = commands.add_parser("bitstream", help="write the Vivado build and PYNQ driver",
                                    description="Write the deploy folder of a project: Vivado "
                                    "block-design script, PYNQ driver and README. Runs Vivado to "
                                    "build the .bit and .hwh when vivado is on PATH.")
    bitstream.add_argument("project", help="project folder written by syq generate")
    bitstream.add_argument("--board", choices=tuple(BOARDS), help="target board (default: the "
                           "project's; it must have the project's FPGA part)")
    bitstream.add_argument("--out", help="deploy folder to write (default: PROJECT/deploy)")
    bitstream.add_argument("--jobs", type=int, metavar="N", help="parallel Vivado jobs (default: "
                           "the number of CPUs)")
    bitstream.add_argument("--scripts-only", action="store_true",
                           help="write the folder without running Vivado")
    bitstream.set_defaults(handler=command_bitstream)

    flow = commands.add_parser("flow", help="train, export, generate, C-simulate and report",
                               description="The main job: train a network, export it to QONNX, "
                               "verify the golden model against QONNX, generate the HLS project, "
                               "C-simulate it on the test set and write OUT/report.json and "
                               "OUT/report.md. Exit code 1 if any check fails.")
    add_training_options(flow, out_help="run folder: train/ (checkpoint.pt, metrics.json), "
                         "model.onnx, project/, report.json, report.md and plots/")
    add_folding_options(flow, board_default="")
    flow.add_argument("--csim-limit", type=positive_int, metavar="N",
                      help="verify and C-simulate only the first N test images (default: all)")
    flow.set_defaults(handler=command_flow)
    return parser


def main(argv=None):
    """Run the `syq` command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(-1 if args.quiet else args.verbose)
    try:
        code = args.handler(args)
    except SyqError as error:
        print(f"syq {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as error:
        # An output path that collides with an existing file, or a folder we may not write.
        print(f"syq {args.command}: error: cannot write {error.filename}: {error.strerror}; "
              f"choose another --out", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"syq {args.command}: interrupted", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
