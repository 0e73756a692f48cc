"""Measured inference latency with ``torch.utils.benchmark`` (warm-up, thread-aware, median)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils import benchmark

from amc.runtime import Runtime

__all__ = ["measure_latency"]


@torch.no_grad()
def measure_latency(
    model: nn.Module,
    runtime: Runtime,
    batch_size: int,
    input_size: tuple[int, ...] = (3, 32, 32),
    min_run_time: float = 1.0,
) -> float:
    """Median seconds per forward pass of a ``batch_size`` batch on ``runtime``."""
    model.eval()
    x = torch.randn(batch_size, *input_size, device=runtime.device)
    if runtime.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def run() -> None:
        with runtime.autocast():
            model(x)

    for _ in range(3):
        run()
    timer = benchmark.Timer(stmt="run()", globals={"run": run}, num_threads=torch.get_num_threads())
    return float(timer.blocked_autorange(min_run_time=min_run_time).median)
