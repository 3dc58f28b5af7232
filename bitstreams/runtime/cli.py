"""Command line of driver.py: classify images on the board and report the throughput."""

import argparse
import sys
from pathlib import Path

import numpy as np

from . import preprocess
from .accelerator import Accelerator, load_config
from .errors import SyqError


def build_parser(default_batch):
    """Return the argument parser of driver.py."""
    parser = argparse.ArgumentParser(
        prog="driver.py", description="Classify images with the syq accelerator of this deploy "
        "folder and report labels, accuracy and throughput.")
    parser.add_argument("--input", required=True, metavar="PATH",
                        help="an .npy file, or a folder of .npy files read in name order; each "
                        "holds one image or a batch in the model's input shape, as uint8 pixels "
                        "or as float pixel / 255")
    parser.add_argument("--batch", type=int, default=default_batch, metavar="N",
                        help=f"frames per DMA transfer (default: {default_batch})")
    parser.add_argument("--labels", metavar="LABELS.npy", help="true labels: report the accuracy")
    parser.add_argument("--output", metavar="RESULTS.npz",
                        help="save labels, scores and raw outputs to this .npz file")
    parser.add_argument("--bitfile", help="the overlay's .bit file (default: the one beside driver.py)")
    return parser


def main(config_path, bitfile, default_batch, argv=None):
    """Run the driver command line; return the exit code."""
    args = build_parser(default_batch).parse_args(argv)
    try:
        config = load_config(config_path)
        images = preprocess.load_inputs(config["input"], args.input)
        labels = np.load(args.labels, allow_pickle=False) if args.labels else None
        if labels is not None and len(labels) != len(images):
            raise SyqError(f"{args.labels} has {len(labels)} labels for {len(images)} images")
        accelerator = Accelerator(config, Path(args.bitfile or bitfile), args.batch)
        try:
            result = accelerator.classify(images)
        finally:
            accelerator.close()
    except SyqError as error:
        print(f"driver.py: error: {error}", file=sys.stderr)
        return 2

    if args.output:
        np.savez(args.output, labels=result.labels, scores=result.scores, raw=result.raw)
    frames = len(result.labels)
    print(f"frames              {frames}")
    print(f"batch               {args.batch}")
    print(f"seconds             {result.seconds:.4f}")
    if result.seconds > 0:
        print(f"frames/s            {frames / result.seconds:.1f}")
    if result.accelerator_seconds > 0:
        print(f"frames/s (DMA only) {frames / result.accelerator_seconds:.1f}")
    if labels is not None and frames:
        print(f"accuracy            {100.0 * float(np.mean(result.labels == labels)):.2f} %")
    if args.output:
        print(f"results in {args.output}")
    return 0
