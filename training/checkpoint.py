"""Training checkpoints: one self-describing file per run folder, written atomically."""

import dataclasses
import logging
import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from syq.errors import SyqError
from syq.outputs import atomic_path
from syq.training.models import QuantSpec, build_model

logger = logging.getLogger(__name__)

FORMAT = "syq-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "config", "input_shape", "num_classes", "epoch", "model_state")


def save_checkpoint(path, payload):
    """Write `payload` (a dict of plain values and tensors) to `path` atomically."""
    payload = dict(payload, format=FORMAT, version=VERSION)
    with atomic_path(path) as staging:
        torch.save(payload, staging)


def load_checkpoint(path):
    """Read a checkpoint; raise SyqError if it is missing, corrupt or not a syq checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise SyqError(f"checkpoint {path} not found: pass the checkpoint.pt of a `syq train` run")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about the pickle protocol of foreign files
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError,
            zipfile.BadZipFile) as error:
        # torch's messages for foreign pickles run over many lines about weights_only loading;
        # the first line names the problem.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "weights_only" in reason or "Weights only load failed" in reason:
            reason = "not a torch checkpoint of tensors and plain values"
        raise SyqError(f"corrupt checkpoint {path}: {reason}; retrain or use another "
                       f"checkpoint") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SyqError(f"invalid checkpoint {path}: not written by `syq train`")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise SyqError(f"invalid checkpoint {path}: missing {', '.join(missing)}; retrain")
    if payload["version"] != VERSION:
        raise SyqError(f"checkpoint {path} has format version {payload['version']}, this syq reads "
                       f"version {VERSION}: retrain with this version")
    return payload


def spec_from_config(config):
    """Return the QuantSpec stored in a checkpoint's config dict."""
    names = {field.name for field in dataclasses.fields(QuantSpec)}
    return QuantSpec(**{key: value for key, value in config.items() if key in names})


def model_from_checkpoint(payload, path="checkpoint"):
    """Rebuild the network of a checkpoint and load its weights (eval mode)."""
    config = payload["config"]
    model = build_model(config["model"], tuple(payload["input_shape"]), payload["num_classes"],
                        spec_from_config(config))
    load_model_state(model, payload["model_state"], path)
    model.eval()
    return model


def load_model_state(model, state, path):
    """Load `state` into `model`; raise SyqError naming the mismatching tensors."""
    _initialise_statistics(model)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(key for key in set(own) & set(state)
                        if tuple(own[key].shape) != tuple(state[key].shape))
    if missing or unexpected or mismatched:
        details = []
        if missing:
            details.append(f"missing {', '.join(missing[:3])}")
        if unexpected:
            details.append(f"unexpected {', '.join(unexpected[:3])}")
        if mismatched:
            key = mismatched[0]
            details.append(f"{key} has shape {tuple(state[key].shape)}, the model expects "
                           f"{tuple(own[key].shape)}")
        raise SyqError(f"checkpoint {path} does not match the model: {'; '.join(details)}")
    model.load_state_dict(state)


def _initialise_statistics(model):
    """Run one forward pass so Brevitas creates scales that it initialises from statistics.

    A PARAMETER_FROM_STATS scale enters the state dict only after its first forward pass; in eval
    mode the pass changes no batch-norm or activation statistics.
    """
    training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros((1,) + tuple(model.input_shape)))
    model.train(training)
