"""The base: a trained network, the checkpoint it came from and the data it was trained on.

``open_base`` is what every command that works on a trained model calls first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from amc.checkpoints import find_base, load_weights, read_checkpoint, sha256_file
from amc.data import DataBundle, load_data
from amc.errors import AmcError
from amc.models import build_model
from amc.runtime import Runtime

__all__ = ["Base", "open_base", "train_command"]


@dataclass
class Base:
    """A trained model on its runtime, with provenance."""

    model_name: str
    model: nn.Module
    checkpoint: Path | None
    checkpoint_sha256: str | None
    checkpoint_meta: dict[str, Any]
    data: DataBundle
    runtime: Runtime


def train_command(model: str, data: str) -> str:
    return f"amc train --model {model} --data {data}"


def resolve_checkpoint(
    model: str, data: DataBundle, data_spec: str, checkpoint: str | None, *, allow_train: bool
) -> Path | None:
    """The checkpoint to use: the one given, else a base found for this model and data set.

    With none found: train one with the default recipe when ``allow_train``, else say which
    ``amc train`` command to run.
    """
    if checkpoint:
        return Path(checkpoint)
    found = find_base(model, data.name)
    if found is not None:
        return found
    if not allow_train:
        raise AmcError(
            f"no trained {model} for {data.name} (looked in $AMC_CHECKPOINTS and the cache): "
            f"pass --checkpoint PATH or run '{train_command(model, data_spec)}'"
        )
    return None


def open_base(
    model: str,
    data_spec: str,
    checkpoint: str | None,
    runtime: Runtime,
    *,
    trust: bool = False,
    allow_train: bool = False,
    train_epochs: float = 5,
) -> Base:
    """Build ``model``, load its weights and the data; train a base first if allowed and needed."""
    from amc.models import get_spec

    get_spec(model)  # an unknown model is reported before any data is read
    data = load_data(data_spec)
    net = build_model(model, data.num_classes)
    path = resolve_checkpoint(model, data, data_spec, checkpoint, allow_train=allow_train)
    if path is None:
        path = _train_default_base(model, net, data, data_spec, runtime, train_epochs)
    state, meta = read_checkpoint(path, trust=trust)
    load_weights(net, state, source=f"checkpoint {path}")
    runtime.prepare(net)
    net.eval()
    return Base(model, net, path, sha256_file(path), meta, data, runtime)


def _train_default_base(
    model: str, net: nn.Module, data: DataBundle, data_spec: str, runtime: Runtime, epochs: float
) -> Path:
    from amc.checkpoints import base_filename, checkpoint_dirs
    from amc.training import TrainConfig, evaluate, train

    out = checkpoint_dirs()[-1] / base_filename(model, data.name)
    print(
        f"amc: no trained {model} for {data.name}; training one ({epochs:g} epochs, "
        f"'{train_command(model, data_spec)}' recipe; on 2 CPU cores this takes roughly "
        f"15-90 minutes depending on the model). Stop with Ctrl-C and pass --checkpoint to skip."
    )
    runtime.prepare(net)
    start = time.time()
    cfg = TrainConfig(epochs=epochs, lr=0.1, label_smoothing=0.1)
    train(net, data.train, runtime, cfg, desc=f"training {model}")
    meta = base_meta(
        model,
        data,
        cfg,
        None,
        time.time() - start,
        evaluate(net, data.heldout, runtime),
        evaluate(net, data.test, runtime),
    )
    from amc.checkpoints import save_checkpoint

    save_checkpoint(out, net, meta)
    print(f"amc: saved base {out} (held-out {meta['heldout_acc']:.2%}, test {meta['test_acc']:.2%})")
    return out


def base_meta(
    model: str, data: DataBundle, cfg: Any, init: str | None, seconds: float, heldout_acc: float, test_acc: float
) -> dict[str, Any]:
    from dataclasses import asdict

    from amc import __version__
    from amc.data import IMAGENET_MEAN, IMAGENET_STD

    return {
        "model": model,
        "dataset": data.name,
        "num_classes": data.num_classes,
        "normalize": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "heldout_acc": heldout_acc,
        "test_acc": test_acc,
        "recipe": asdict(cfg),
        "init": init,
        "train_seconds": round(seconds, 1),
        "amc_version": __version__,
    }
