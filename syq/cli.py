"""The `syq` command line: one subcommand per pipeline step, and `flow` for all of them."""

import argparse
import json
import logging
import sys

from syq import __version__
from syq.errors import SyqError

logger = logging.getLogger("syq")

# Third-party loggers that report routine work at INFO level.
NOISY_LOGGERS = ("torch.onnx", "onnx_ir", "onnxscript", "brevitas", "matplotlib", "PIL")


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


def add_training_options(parser, require_out=True):
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
    parser.add_argument("--act-quant", choices=("dorefa", "learned"), default="dorefa",
                        help="activation quantizer: DoReFa clip(x, 0, 1) or a learned-scale "
                        "QuantReLU (default: dorefa)")
    parser.add_argument("--first-layer", choices=("syq", "int8"), default="syq",
                        help="weight precision of the first layer (default: syq)")
    parser.add_argument("--last-layer", choices=("syq", "int8"), default="syq",
                        help="weight precision of the last layer (default: syq)")
    parser.add_argument("--float", dest="float_model", action="store_true",
                        help="train a full-precision baseline (for --init-from or comparison)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default: 10)")
    parser.add_argument("--batch-size", type=int, default=256, help="batch size (default: 256)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--out", required=require_out, help="run folder for checkpoint.pt and "
                        "metrics.json")
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
                       float_model=args.float_model, epochs=args.epochs,
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
    export.add_argument("--verify-images", type=int, metavar="N",
                        help="check on the first N test images (default: all; 0 skips the check)")
    export.add_argument("--data-dir", help="dataset folder, if not the one used in training")
    export.set_defaults(handler=command_export)
    return parser


def main(argv=None):
    """Run the `syq` command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(-1 if args.quiet else args.verbose)
    try:
        args.handler(args)
    except SyqError as error:
        print(f"syq {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"syq {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
