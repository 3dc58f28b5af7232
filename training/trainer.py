"""The training loop: Adam, cosine learning-rate decay, a checkpoint and metrics after every epoch.

Results are deterministic for a given seed on the same CPU. The data order of epoch e comes from a
generator seeded with (seed, e), and checkpoints carry the optimizer and scheduler state. So
``--resume`` after an interruption reaches the same final weights as an uninterrupted run.
"""

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from syq.errors import SyqError
from syq.outputs import atomic_file
from syq.training import baselines
from syq.training import checkpoint as ckpt
from syq.training.datasets import load_dataset, to_float
from syq.training.models import QuantSpec, build_model
from syq.training.quantizers import SyqWeightTensorQuant

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"
EVAL_BATCH = 1000
# Options that may differ between an interrupted run and its --resume.
RESUMABLE_CHANGES = ("data_dir",)


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint)."""

    model: str = "tfc"
    dataset: str = "fashion-mnist"
    data_dir: str = None
    weight_bits: int = 2
    act_bits: int = 2
    granularity: str = "channel"
    threshold: float = None
    scale_bits: int = 8
    act_quant: str = "dorefa"
    first_layer: str = "syq"
    last_layer: str = "syq"
    float_model: bool = False
    weight_quant: str = "syq"
    input_quant: str = "pixels"
    epochs: int = 10
    train_limit: int = None  # train on the first N training images only
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0

    def resolved(self):
        """Return a copy with defaults filled in (the threshold follows the weight bits)."""
        threshold = self.threshold
        if threshold is None:
            threshold = 0.05 if self.weight_bits == 2 else 0.0
        return dataclasses.replace(self, threshold=float(threshold),
                                   data_dir=str(self.data_dir) if self.data_dir else None)

    def spec(self):
        """Return the QuantSpec of this run."""
        names = {field.name for field in dataclasses.fields(QuantSpec)}
        return QuantSpec(**{key: value for key, value in dataclasses.asdict(self).items()
                            if key in names})

    def validate(self):
        """Raise SyqError naming the first invalid option."""
        self.spec().validate()
        amounts = [("--epochs", self.epochs), ("--batch-size", self.batch_size)]
        if self.train_limit is not None:
            amounts.append(("--train-limit", self.train_limit))
        for option, amount in amounts:
            if not isinstance(amount, int) or amount < 1:
                raise SyqError(f"invalid {option} {amount!r}: it must be a positive integer")
        if not self.lr > 0:
            raise SyqError(f"invalid --lr {self.lr!r}: it must be positive")


def evaluate(model, images, labels, batch_size=EVAL_BATCH):
    """Return (mean cross-entropy loss, accuracy, logits) of `model` on uint8 `images`."""
    model.eval()
    logits = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(to_float(images[start:start + batch_size]))
            logits.append(model(batch))
    logits = torch.cat(logits) if logits else torch.zeros((0, model.num_classes))
    targets = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    loss = float(nn.functional.cross_entropy(logits, targets)) if len(targets) else 0.0
    accuracy = float((logits.argmax(1) == targets).float().mean()) if len(targets) else 0.0
    return loss, accuracy, logits.numpy()


def _epoch_order(seed, epoch, count):
    generator = torch.Generator().manual_seed(seed * 100003 + epoch)
    return torch.randperm(count, generator=generator)


def _initialise_from(model, path):
    """Copy matching weights (layers and batch norm) from checkpoint `path`, then re-derive scales."""
    payload = ckpt.load_checkpoint(path)
    source = payload["model_state"]
    own = model.state_dict()
    copied = {}
    for key, tensor in source.items():
        if key in own and "_quant." not in key and tuple(own[key].shape) == tuple(tensor.shape):
            copied[key] = tensor
    layer_weights = [key for key in own if key.endswith(".weight") and "_quant" not in key]
    if not any(key in copied for key in layer_weights):
        raise SyqError(f"--init-from {path}: no layer of the checkpoint matches this model "
                       f"(model {payload['config'].get('model')!r}, input "
                       f"{tuple(payload['input_shape'])}); use a checkpoint of the same network")
    model.load_state_dict(copied, strict=False)
    for layer in model.weight_layers():
        proxy = getattr(layer, "weight_quant", None)
        if proxy is not None and isinstance(getattr(proxy, "tensor_quant", None), SyqWeightTensorQuant):
            proxy.init_tensor_quant()
    logger.info("initialised %d tensors from %s", len(copied), path)


def _check_resumable(stored, config, path):
    current = dataclasses.asdict(config)
    differences = [key for key, value in current.items()
                   if key not in RESUMABLE_CHANGES and stored.get(key) != value]
    if differences:
        listed = ", ".join(f"{key}={stored.get(key)!r} (now {current[key]!r})" for key in differences[:4])
        raise SyqError(f"checkpoint {path} was trained with other options: {listed}; rerun with "
                       f"the same options or without --resume")


def train(config, out_dir, resume=False, init_from=None, progress=True, on_epoch_end=None):
    """Train `config` into `out_dir` and return the metrics dict.

    `on_epoch_end(epoch, metrics)` is called after each epoch's checkpoint is written.
    """
    config = config.resolved()
    config.validate()
    out_dir = Path(out_dir)
    checkpoint_path = out_dir / CHECKPOINT_NAME
    if resume and init_from:
        raise SyqError("--resume and --init-from exclude each other: --resume continues the run in "
                       "--out, --init-from starts a new one")
    if not resume and checkpoint_path.exists():
        raise SyqError(f"{checkpoint_path} already exists: pass --resume to continue that run or "
                       f"choose another --out")
    dataset = load_dataset(config.dataset, config.data_dir)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    model = build_model(config.model, dataset.input_shape, dataset.num_classes, config.spec())
    if not resume and not init_from:
        baselines.prepare(model, config.spec())
    if init_from:
        _initialise_from(model, init_from)
    payload = None
    if resume:
        payload = ckpt.load_checkpoint(checkpoint_path)
        _check_resumable(payload["config"], config, checkpoint_path)
        ckpt.load_model_state(model, payload["model_state"], checkpoint_path)
    # Brevitas re-creates quantizer modules (and their parameters) when a state dict is loaded,
    # so the optimizer must be built afterwards.
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, eps=1e-5)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    metrics = {"config": dataclasses.asdict(config), "epochs": []}
    start_epoch = 0
    if payload is not None:
        optimizer.load_state_dict(payload["optimizer_state"])
        scheduler.load_state_dict(payload["scheduler_state"])
        torch.set_rng_state(payload["torch_rng_state"])
        metrics = payload["metrics"]
        start_epoch = int(payload["epoch"])
        logger.info("resuming %s after epoch %d of %d", checkpoint_path, start_epoch, config.epochs)
    out_dir.mkdir(parents=True, exist_ok=True)

    limit = config.train_limit or len(dataset.train_images)
    if limit > len(dataset.train_images):
        logger.warning("--train-limit %d exceeds the %d training images of %s: training on all of them",
                       limit, len(dataset.train_images), config.dataset)
    train_inputs = torch.from_numpy(to_float(dataset.train_images[:limit]))
    train_targets = torch.from_numpy(dataset.train_labels[:limit])
    batches = (len(train_inputs) + config.batch_size - 1) // config.batch_size
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        model.train()
        order = _epoch_order(config.seed, epoch, len(train_inputs))
        total_loss, correct = 0.0, 0
        bar = tqdm(range(batches), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                   disable=not progress, leave=False)
        for index in bar:
            picked = order[index * config.batch_size:(index + 1) * config.batch_size]
            inputs, targets = train_inputs[picked], train_targets[picked]
            logits = model(inputs)
            loss = nn.functional.cross_entropy(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            baselines.after_step(model, config.spec())
            total_loss += loss.item() * len(picked)
            correct += int((logits.argmax(1) == targets).sum())
            bar.set_postfix(loss=f"{loss.item():.3f}")
        scheduler.step()
        test_loss, test_accuracy, _ = evaluate(model, dataset.test_images, dataset.test_labels)
        record = {"epoch": epoch + 1,
                  "train_loss": total_loss / len(train_inputs),
                  "train_accuracy": correct / len(train_inputs),
                  "test_loss": test_loss,
                  "test_accuracy": test_accuracy,
                  "seconds": time.perf_counter() - started}
        metrics["epochs"].append(record)
        metrics["test_accuracy"] = test_accuracy
        logger.info("epoch %d/%d: train loss %.4f, train accuracy %.4f, test accuracy %.4f (%.1f s)",
                    epoch + 1, config.epochs, record["train_loss"], record["train_accuracy"],
                    test_accuracy, record["seconds"])
        ckpt.save_checkpoint(checkpoint_path, {
            "config": dataclasses.asdict(config),
            "input_shape": list(dataset.input_shape),
            "num_classes": dataset.num_classes,
            "epoch": epoch + 1,
            "model_state": model.state_dict(),
            "optimizer_state": optimizer.state_dict(),
            "scheduler_state": scheduler.state_dict(),
            "torch_rng_state": torch.get_rng_state(),
            "metrics": metrics,
        })
        with atomic_file(out_dir / METRICS_NAME, "w") as stream:
            json.dump(metrics, stream, indent=2)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, metrics)
    return metrics
