"""Saving and loading a hardware graph: JSON for the structure, one .npz for the arrays.

A generated project stores its graph, so `syq csim` and the PYNQ driver can rebuild the golden
model and the packing formats without the QONNX file.
"""

import dataclasses
import json

import numpy as np

from syq.errors import SyqError
from syq.generator.datatypes import DataType
from syq.generator.hwgraph import (MVAU, HardwareGraph, InputQuant, MaxPool, PostProcess,
                                   SlidingWindow, Thresholding)

FORMAT_VERSION = 1
UNIT_TYPES = {cls.__name__: cls for cls in (MVAU, Thresholding, SlidingWindow, MaxPool)}


def _encode(value, arrays, key):
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {"array": key}
    if isinstance(value, DataType):
        return {"dtype": [value.kind, value.bits]}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def _decode(value, arrays):
    if isinstance(value, dict) and "array" in value:
        return arrays[value["array"]]
    if isinstance(value, dict) and "dtype" in value:
        return DataType(*value["dtype"])
    return value


def _fields(obj, arrays, prefix):
    return {field.name: _encode(getattr(obj, field.name), arrays, f"{prefix}.{field.name}")
            for field in dataclasses.fields(obj)}


def graph_to_dict(graph):
    """Return (JSON-ready dict, dict of numpy arrays) describing `graph`."""
    arrays = {}
    units = []
    for index, unit in enumerate(graph.nodes):
        units.append({"type": type(unit).__name__, **_fields(unit, arrays, f"unit{index}")})
    document = {
        "format_version": FORMAT_VERSION,
        "name": graph.name,
        "source": graph.source,
        "metadata": graph.metadata,
        "input_quant": _fields(graph.input_quant, arrays, "input"),
        "units": units,
        "post": _fields(graph.post, arrays, "post"),
    }
    return document, arrays


def graph_from_dict(document, arrays):
    """Rebuild a HardwareGraph from graph_to_dict's output."""
    if document.get("format_version") != FORMAT_VERSION:
        raise SyqError(f"hardware graph format {document.get('format_version')} is not supported "
                       f"(expected {FORMAT_VERSION}); generate the project again")
    units = []
    for entry in document["units"]:
        entry = dict(entry)
        cls = UNIT_TYPES[entry.pop("type")]
        units.append(cls(**{key: _decode(value, arrays) for key, value in entry.items()}))
    input_fields = {key: _decode(value, arrays) for key, value in document["input_quant"].items()}
    input_fields["input_shape"] = tuple(input_fields["input_shape"])
    post = PostProcess(**{key: _decode(value, arrays) for key, value in document["post"].items()})
    return HardwareGraph(document["name"], InputQuant(**input_fields), units, post,
                         document.get("source", ""), document.get("metadata", {}))


def save_graph(graph, json_path, arrays_path):
    """Write `graph` to a JSON file and an .npz file."""
    document, arrays = graph_to_dict(graph)
    with open(json_path, "w") as stream:
        json.dump(document, stream, indent=1)
    with open(arrays_path, "wb") as stream:
        np.savez_compressed(stream, **arrays)


def load_graph(json_path, arrays_path):
    """Read a graph written by save_graph; raise SyqError if the files are missing or damaged."""
    try:
        with open(json_path) as stream:
            document = json.load(stream)
        with np.load(arrays_path) as stored:
            arrays = {key: stored[key] for key in stored.files}
        return graph_from_dict(document, arrays)
    except FileNotFoundError as error:
        raise SyqError(f"{error.filename} not found: is this a project written by `syq generate`?") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SyqError(f"damaged hardware graph in {json_path}: {error}; generate the project again") from None
