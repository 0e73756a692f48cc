"""Evaluation and training loops: base training (``amc train``), fine-tuning and distillation
(``amc apply``). One loop serves all three.

Accuracies are fractions in [0, 1]. Learning-rate schedules: one-cycle (training a base) or
cosine (fine-tuning a pruned network), stepped per batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from amc.data import Split, batches
from amc.progress import Progress
from amc.runtime import Runtime

__all__ = ["evaluate", "TrainConfig", "train", "finetune", "eval_batch_size"]


def eval_batch_size(runtime: Runtime) -> int:
    return 500 if runtime.device.type == "cpu" else 1000


@torch.no_grad()
def evaluate(
    model: nn.Module, split: Split, runtime: Runtime, batch_size: int | None = None, progress: bool = False
) -> float:
    """Top-1 accuracy of ``model`` (in eval mode) on ``split``, as a fraction."""
    runtime.prepare(model).eval()
    correct = 0
    it = batches(
        split, batch_size or eval_batch_size(runtime), device=runtime.device, channels_last=runtime.channels_last
    )
    for x, y in tqdm(
        it,
        total=math.ceil(len(split) / (batch_size or eval_batch_size(runtime))),
        desc="evaluating",
        leave=False,
        disable=not progress,
    ):
        with runtime.autocast():
            logits = model(x)
        correct += int((logits.argmax(1) == y).sum())
    return correct / max(1, len(split))


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe. ``lr`` is the peak learning rate; ``schedule`` is ``onecycle`` or
    ``cosine``; ``distill_weight`` in [0, 1] mixes the KL term from a teacher (temperature
    ``distill_temperature``) with the label loss."""

    epochs: float = 4
    lr: float = 0.02
    weight_decay: float = 5e-4
    momentum: float = 0.9
    batch_size: int = 128
    label_smoothing: float = 0.0
    schedule: str = "onecycle"
    seed: int = 0
    distill_weight: float = 0.0
    distill_temperature: float = 4.0


def _scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.25, div_factor=10, final_div_factor=100
        )
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)


def _loss(
    logits: torch.Tensor, y: torch.Tensor, x: torch.Tensor, teacher: nn.Module | None, cfg: TrainConfig
) -> torch.Tensor:
    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
    if teacher is None or cfg.distill_weight <= 0:
        return loss
    with torch.no_grad():
        t_logits = teacher(x).float()
    t = cfg.distill_temperature
    kd = F.kl_div(F.log_softmax(logits.float() / t, 1), F.softmax(t_logits / t, 1), reduction="batchmean") * t * t
    return (1 - cfg.distill_weight) * loss + cfg.distill_weight * kd


def _optimizer(
    model: nn.Module, cfg: TrainConfig, steps: int, resume: dict[str, Any] | None
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True
    )
    sched = _scheduler(opt, cfg, steps)
    if resume is not None:
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
    return opt, sched


def train(
    model: nn.Module,
    split: Split,
    runtime: Runtime,
    cfg: TrainConfig,
    *,
    teacher: nn.Module | None = None,
    desc: str = "training",
    on_epoch_end: Callable[[int, dict[str, Any]], dict[str, Any] | None] | None = None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_seconds: float = 300.0,
    resume: dict[str, Any] | None = None,
) -> nn.Module:
    """Train ``model`` in place on ``split`` with augmentation; returns it in eval mode.

    ``cfg.epochs`` may be fractional. ``on_epoch_end`` gets the finished epoch's index and the
    loop's state (``epoch``, ``step``, ``optimizer``, ``scheduler``: what ``resume`` takes, the
    caller restoring the weights, to continue as if never stopped) and may return figures for the progress
    line (accuracies); ``on_checkpoint`` gets the state inside an epoch every ``checkpoint_seconds`` (a
    resumed run replays that epoch's data order and augmentation up to ``step`` without training on it)."""
    per_epoch = math.ceil(len(split) / cfg.batch_size)
    steps = max(1, int(round(cfg.epochs * per_epoch)))
    runtime.prepare(model)
    opt, sched = _optimizer(model, cfg, steps, resume)
    step, epoch = (int(resume["step"]), int(resume["epoch"])) if resume is not None else (0, 0)
    if teacher is not None:
        runtime.prepare(teacher).eval()

    def state() -> dict[str, Any]:
        return {"epoch": epoch, "step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}

    bar = Progress(steps, desc, "batch", initial=step)  # a bar on a terminal, steady lines in a log
    saved = time.monotonic()
    while step < steps:
        model.train()  # each epoch: an evaluation in between leaves it in eval mode
        done_in_epoch = step - epoch * per_epoch  # > 0 when resuming inside an epoch
        data = batches(split, cfg.batch_size, shuffle=True, train_augment=True, seed=cfg.seed + epoch,
                       device=runtime.device, channels_last=runtime.channels_last)  # fmt: skip
        for i, (x, y) in enumerate(data):
            if i < done_in_epoch:  # replayed, not trained: keeps the augmentation's random stream
                continue
            with runtime.autocast():
                loss = _loss(model(x), y, x, teacher, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            sched.step()
            step += 1
            bar.update(1, epoch=epoch + 1, loss=f"{loss.item():.3f}")
            if step >= steps:
                break
            if on_checkpoint is not None and time.monotonic() - saved >= checkpoint_seconds:
                on_checkpoint(state())
                saved = time.monotonic()
        epoch += 1
        if on_epoch_end is not None:
            bar.update(0, **(on_epoch_end(epoch - 1, state()) or {}))  # what it measured, shown from now on
            saved = time.monotonic()
    bar.close()
    return model.eval()


def finetune(
    model: nn.Module,
    split: Split,
    runtime: Runtime,
    epochs: float,
    *,
    lr: float = 0.01,
    seed: int = 0,
    desc: str = "fine-tuning",
) -> nn.Module:
    """The short fine-tuning every comparison uses: ``epochs`` of SGD, cosine from ``lr``."""
    return train(model, split, runtime, TrainConfig(epochs=epochs, lr=lr, schedule="cosine", seed=seed), desc=desc)
