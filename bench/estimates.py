"""Hardware estimates: published FINN foldings reproduced, our folding search, cost of SYQ scales.

1. The FINN foldings of finn-examples (``build/bnn-pynq/folding_config/tfc-w2a2_folding_config.json``
   and ``cnv-w2a2_folding_config.json``) applied with ``syq.generator.folding.apply_folding``:
   TFC-w2a2 must give a 64-cycle bottleneck, CNV-w2a2 a 115,200-cycle one (the 128 -> 128
   convolution on a 10 x 10 output at PE 8, SIMD 16).
2. Our folding search (``fold_fastest``: the fastest design whose estimate fits the PYNQ-Z2
   budget) on the same models, and the folding for 10 M frames/s at 100 MHz.
3. The resources of SYQ ``layer``, ``channel`` and ``pixel`` scales on CNV at the FINN folding.

All numbers are estimates of the cost model in docs/cost-model.md, not synthesis results. The
TFC models are the bnn_pynq TFC_2W2A of the QONNX model zoo and an untrained SYQ TFC-w2a2; the
CNV models are untrained SYQ CNV-w2a2 networks (CIFAR-10 shape), since cycles and resources do
not depend on the weight values.

Usage::

    .venv/bin/python bench/estimates.py [--quick] [--json results.json]
"""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

logger = logging.getLogger("bench.estimates")

TFC_TARGET_FPS = 10e6
CLOCK_HZ = 100e6  # the PYNQ-Z2 default clock of syq.bitstreams.boards
#: finn-examples tfc-w2a2_folding_config.json: Thresholding_Batch_0 and StreamingFCLayer_Batch_0..3.
FINN_TFC_W2A2 = {"input_thresholds": {"pe": 49}, "layer0": {"pe": 16, "simd": 49},
                 "layer1": {"pe": 8, "simd": 8}, "layer2": {"pe": 8, "simd": 8},
                 "layer3": {"pe": 10, "simd": 8}}
FINN_TFC_BOTTLENECK = 64
#: finn-examples cnv-w2a2_folding_config.json: StreamingFCLayer_Batch_0..8 (the sliding windows
#: take the SIMD of their MVAU, as FINN's ConvolutionInputGenerator_N entries do).
FINN_CNV_W2A2 = {"layer0": {"pe": 8, "simd": 3}, "layer1": {"pe": 16, "simd": 16},
                 "layer2": {"pe": 8, "simd": 16}, "layer3": {"pe": 8, "simd": 16},
                 "layer4": {"pe": 4, "simd": 8}, "layer5": {"pe": 1, "simd": 8},
                 "layer6": {"pe": 1, "simd": 2}, "layer7": {"pe": 2, "simd": 2},
                 "layer8": {"pe": 5, "simd": 1}}
FINN_CNV_BOTTLENECK = 115_200


def _summary(report):
    return {"max_cycles": report["max_cycles"], "bottleneck": report["bottleneck"],
            "fps": report["fps"], "clock_mhz": report["clock_mhz"], "total": report["total"],
            "budget": report["budget"], "fits": report["fits"],
            "units": [{key: unit[key] for key in ("name", "kind", "pe", "simd", "cycles", "lut",
                                                  "bram18", "dsp")} for unit in report["units"]]}


def finn_folding(path, folding_config, target_cycles):
    """Apply a FINN folding to the MVAUs of `path`; fold the other units to `target_cycles`.

    FINN's configs fold MVAUs, thresholds and sliding windows. Our max-pool units have no entry
    there, so they get the cheapest folding that stays within the FINN bottleneck.
    """
    from syq.bitstreams.boards import get_board
    from syq.generator import estimate, folding, lowering

    graph, _ = lowering.lower_file(path)
    names = {unit.name for unit in graph.nodes}
    applicable = {name: values for name, values in folding_config.items() if name in names}
    folding.fold_for_cycles(graph, target_cycles)
    folding.apply_folding(graph, applicable, "FINN folding")
    report = estimate.estimate_graph(graph, get_board("pynq-z2"))
    return {**_summary(report), "applied": sorted(applicable)}


def searched_folding(path, fps=None):
    """Fold `path` with our search (fastest that fits PYNQ-Z2, or for `fps`); return the estimate."""
    from syq.bitstreams.boards import get_board
    from syq.generator import estimate, folding, lowering

    board = get_board("pynq-z2")
    graph, _ = lowering.lower_file(path)
    with common.Stopwatch() as watch:
        if fps is None:
            folding.fold_fastest(graph, board)
        else:
            folding.fold_for_fps(graph, board, fps)
    return {**_summary(estimate.estimate_graph(graph, board)), "search_seconds": watch.seconds}


def run(quick, folder):
    """Run the benchmark and return its result dict."""
    common.limit_threads(1)
    folder = Path(folder)

    zoo_tfc = common.ZOO_DIR / "TFC_2W2A.onnx"
    syq_tfc = common.export_untrained_model("tfc", folder / "tfc_untrained.onnx")
    result = {"benchmark": "estimates", "quick": quick, "tfc_target_fps": TFC_TARGET_FPS,
              "finn_tfc_bottleneck": FINN_TFC_BOTTLENECK,
              "finn_cnv_bottleneck": FINN_CNV_BOTTLENECK}
    result["finn"] = {"bnn_pynq TFC_2W2A": finn_folding(zoo_tfc, FINN_TFC_W2A2, FINN_TFC_BOTTLENECK),
                      "SYQ TFC-w2a2": finn_folding(syq_tfc, FINN_TFC_W2A2, FINN_TFC_BOTTLENECK)}
    finn_tfc_fps = CLOCK_HZ / FINN_TFC_BOTTLENECK
    result["search"] = {
        "bnn_pynq TFC_2W2A": searched_folding(zoo_tfc),
        "bnn_pynq TFC_2W2A, folded for FINN's 64 cycles": searched_folding(zoo_tfc, finn_tfc_fps),
        "bnn_pynq TFC_2W2A, folded for 10 M frames/s": searched_folding(zoo_tfc, TFC_TARGET_FPS),
        "SYQ TFC-w2a2": searched_folding(syq_tfc),
        "SYQ TFC-w2a2, folded for FINN's 64 cycles": searched_folding(syq_tfc, finn_tfc_fps),
        "SYQ TFC-w2a2, folded for 10 M frames/s": searched_folding(syq_tfc, TFC_TARGET_FPS),
    }

    granularities = ("channel",) if quick else ("layer", "channel", "pixel")
    result["granularity"] = {}
    for granularity in granularities:
        path = common.export_untrained_model("cnv", folder / f"cnv_{granularity}.onnx",
                                             granularity=granularity)
        at_finn = finn_folding(path, FINN_CNV_W2A2, FINN_CNV_BOTTLENECK)
        if granularity == "channel":
            result["finn"]["SYQ CNV-w2a2"] = at_finn
            result["search"]["SYQ CNV-w2a2"] = searched_folding(path)
            result["search"]["SYQ CNV-w2a2, folded for FINN's 115,200 cycles"] = \
                searched_folding(path, CLOCK_HZ / FINN_CNV_BOTTLENECK)
        result["granularity"][granularity] = {"finn_folding": at_finn,
                                              "search": searched_folding(path)}

    tfc_search = result["search"]["SYQ TFC-w2a2"]
    result["tfc_target_met"] = tfc_search["fits"] and tfc_search["fps"] >= TFC_TARGET_FPS
    return result


def _resources(entry):
    total, budget = entry["total"], entry["budget"]
    return (f"{total['lut']:,} / {total['bram18']} / {total['dsp']}",
            "yes" if entry["fits"] else f"no (budget {budget['lut']:,} / {budget['bram18']} / "
                                         f"{budget['dsp']})")


def to_markdown(result):
    """Return the Markdown section of a hardware estimate result."""
    parts = []
    rows = []
    for name, entry in result["finn"].items():
        expected = result["finn_cnv_bottleneck"] if "CNV" in name else result["finn_tfc_bottleneck"]
        mvau_cycles = ", ".join(f"{unit['name']} {unit['cycles']:,}" for unit in entry["units"]
                                if unit["kind"] == "MVAU")
        rows.append((name, mvau_cycles, f"{entry['max_cycles']:,} ({entry['bottleneck']})",
                     f"{expected:,}", "yes" if entry["max_cycles"] == expected else "no",
                     f"{entry['fps']:,.0f}", *_resources(entry)))
    parts.append("Published FINN foldings (finn-examples `tfc-w2a2` and `cnv-w2a2` folding "
                 "configs) applied to our hardware graphs, at the PYNQ-Z2 clock of 100 MHz:\n")
    parts.append(common.markdown_table(
        ("model", "MVAU cycles per frame", "bottleneck", "FINN bottleneck", "reproduced",
         "frames/s", "LUT / BRAM18 / DSP", "fits PYNQ-Z2"), rows))

    rows = []
    for name, entry in result["search"].items():
        folding = ", ".join(f"{unit['name']} {unit['pe']}x{unit['simd']}" for unit in entry["units"]
                            if unit["kind"] == "MVAU")
        rows.append((name, folding, f"{entry['max_cycles']:,}", f"{entry['fps']:,.0f}",
                     *_resources(entry), common.seconds_text(entry["search_seconds"])))
    parts.append("\nOur folding search on the PYNQ-Z2 budget (MVAU folding as PE x SIMD):\n")
    parts.append(common.markdown_table(
        ("model", "MVAU folding", "bottleneck cycles", "frames/s", "LUT / BRAM18 / DSP",
         "fits PYNQ-Z2", "search time"), rows))
    search = result["search"]["SYQ TFC-w2a2"]
    parts.append(f"\nTarget (TFC-w2a2 at least {result['tfc_target_fps'] / 1e6:.0f} M frames/s at "
                 f"100 MHz within the PYNQ-Z2 budget): "
                 f"{'met' if result['tfc_target_met'] else 'not met'}; the fastest fitting design "
                 f"reaches {search['fps'] / 1e6:.2f} M frames/s ({search['max_cycles']} cycles).")

    rows = []
    layer = result["granularity"].get("layer")
    for granularity, entry in result["granularity"].items():
        at_finn, searched = entry["finn_folding"], entry["search"]
        total = at_finn["total"]
        ratio = "" if layer is None else \
            f"{total['lut'] / layer['finn_folding']['total']['lut']:.3f}x LUT"
        rows.append((granularity, f"{total['lut']:,} / {total['bram18']} / {total['dsp']}", ratio,
                     f"{searched['fps']:,.0f}",
                     f"{searched['total']['lut']:,} / {searched['total']['bram18']} / "
                     f"{searched['total']['dsp']}", "yes" if searched["fits"] else "no"))
    parts.append("\nCost of the SYQ scale granularity on CNV-w2a2 (untrained, CIFAR-10 shape):\n")
    parts.append(common.markdown_table(
        ("scales", "LUT / BRAM18 / DSP at the FINN folding", "against layer", "frames/s (search)",
         "LUT / BRAM18 / DSP (search)", "fits PYNQ-Z2 (search)"), rows))
    return "\n".join(parts)


def main(argv=None):
    """Run the hardware estimate benchmark from the command line."""
    common.main(__doc__.splitlines()[0], run, to_markdown, argv, takes_model=False)


if __name__ == "__main__":
    main()
