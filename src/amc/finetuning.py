"""Fine-tuning a pruned network as ``amc apply`` does it: an accuracy curve per epoch and a state
file that lets an interrupted run continue where it stopped.

After every whole epoch the network is scored on the held-out split and the test split (a
report, never used to choose anything) and the loop's state (the network's weights, the
optimizer's and scheduler's state, the curve so far) is written atomically to
``finetune-state.pt`` in the output folder. Running the same ``amc apply`` again continues from
the last saved step with the same schedule, so the result equals an uninterrupted run's; the
state is also saved inside an epoch every five minutes (``CHECKPOINT_SECONDS``), so a long epoch
stopped near its end is not redone. The state file is removed when the run ends; it is a plain
``weights_only`` file.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amc.checkpoints import atomic_write_bytes
from amc.data import Split
from amc.errors import AmcError
from amc.runtime import Runtime
from amc.training import TrainConfig, evaluate, train

__all__ = ["FinetuneJob", "run_finetune", "STATE_FILE", "CURVE_FILE"]

STATE_FILE = "finetune-state.pt"
CHECKPOINT_SECONDS = 300.0
CURVE_FILE = "curve.json"


@dataclass
class FinetuneJob:
    """What to fine-tune: ``cfg`` on ``train_split``; ``splits`` scored after each epoch when
    ``curve`` is on; ``identity`` names the run (policy, base, recipe) so that a state file of
    another run is refused rather than resumed."""

    cfg: TrainConfig
    train_split: Split
    runtime: Runtime
    out_dir: Path
    identity: dict[str, Any]
    splits: dict[str, Split] = field(default_factory=dict)
    teacher: nn.Module | None = None
    curve: bool = True

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_state(job: FinetuneJob, net: nn.Module) -> dict[str, Any] | None:
    path = job.out_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable state is reported the same way
        raise AmcError(f"{path} is not a readable fine-tuning state ({e}): delete it to start over") from None
    if state.get("fingerprint") != job.fingerprint():
        raise AmcError(
            f"{path} holds the fine-tuning state of another run (other policy, base or recipe): "
            "pass another --out, or delete the file to start over"
        )
    net.load_state_dict(state["model"])
    return state


def _save_state(
    job: FinetuneJob, net: nn.Module, loop: dict[str, Any], curve: list[dict[str, Any]], seconds: float
) -> None:
    """``seconds``: the wall time of the run so far, summed over interruptions."""
    model = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"fingerprint": job.fingerprint(), "model": model, "curve": curve, "seconds": seconds, **loop}, buf)
    atomic_write_bytes(job.out_dir / STATE_FILE, buf.getvalue())


def _epoch_hook(
    job: FinetuneJob, net: nn.Module, curve: list[dict[str, Any]], started: float
) -> Callable[[int, dict[str, Any]], dict[str, str]]:
    def on_epoch_end(epoch: int, loop: dict[str, Any]) -> dict[str, str]:
        point: dict[str, Any] = {"epoch": epoch + 1, "seconds": round(time.time() - started, 1)}
        if job.curve:
            point |= {f"{name}_acc": evaluate(net, split, job.runtime) for name, split in job.splits.items()}
            net.train()
        curve.append(point)
        _save_state(job, net, loop, curve, time.time() - started)
        atomic_write_bytes(job.out_dir / CURVE_FILE, (json.dumps(curve, indent=2) + "\n").encode())
        return {k: f"{v:.2%}" for k, v in point.items() if k.endswith("_acc")}  # on the progress line

    return on_epoch_end


def run_finetune(net: nn.Module, job: FinetuneJob, *, desc: str = "fine-tuning") -> list[dict[str, Any]]:
    """Fine-tune ``net`` in place (continuing a stopped run of the same job); returns the curve:
    one point per finished epoch with its accuracies and the wall seconds since the run began
    (summed over interruptions)."""
    job.out_dir.mkdir(parents=True, exist_ok=True)
    resume = _load_state(job, net)
    curve: list[dict[str, Any]] = list(resume["curve"]) if resume else []
    offset = 0.0  # the time a stopped run spent, its unfinished epoch included (older states: to the last epoch)
    if resume:
        offset = float(resume.get("seconds", curve[-1]["seconds"] if curve else 0.0))
        print(f"resuming fine-tuning at step {resume['step']} (epoch {resume['epoch'] + 1}) from "
              f"{job.out_dir / STATE_FILE}", flush=True)  # fmt: skip
    started = time.time() - offset
    hook = _epoch_hook(job, net, curve, started)
    train(
        net, job.train_split, job.runtime, job.cfg, teacher=job.teacher, desc=desc, on_epoch_end=hook,
        on_checkpoint=lambda loop: _save_state(job, net, loop, curve, time.time() - started),
        checkpoint_seconds=CHECKPOINT_SECONDS, resume=resume,
    )  # fmt: skip
    (job.out_dir / STATE_FILE).unlink(missing_ok=True)
    return curve
