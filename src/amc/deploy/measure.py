"""Measured inference latency with ``torch.utils.benchmark`` (warm-up, thread-aware, median)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils import benchmark

from amc.runtime import Runtime

__all__ = ["measure_latency", "runtime_latencies", "latency_key"]


@torch.no_grad()
def measure_latency(
    model: nn.Module,
    runtime: Runtime,
    batch_size: int,
    input_size: tuple[int, ...] = (3, 32, 32),
    min_run_time: float = 1.0,
    rounds: int = 3,
) -> float:
    """Seconds per forward pass of a ``batch_size`` batch on ``runtime``: the least of ``rounds``
    medians, each over ``min_run_time / rounds`` seconds: interference on a shared CPU only adds
    time, and can slow a whole round."""
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
    rounds = max(rounds, 1)
    return min(float(timer.blocked_autorange(min_run_time=min_run_time / rounds).median) for _ in range(rounds))


def latency_key(runtime: str, batch: int) -> str:
    """The result column of a latency on a named runtime: ``latency_onnxruntime_b1_ms``."""
    return f"latency_{runtime}_b{batch}_ms"


def runtime_latencies(
    model: nn.Module,
    input_size: tuple[int, ...],
    runtimes: Sequence[str],
    batches: Sequence[int] = (1, 64),
    min_time: float = 0.5,
) -> dict[str, float]:
    """Median milliseconds per forward pass on each named runtime (``amc.deploy.runtimes``) at
    each batch size, keyed by :func:`latency_key`. The runtimes run on the CPU: a network on
    another device is measured on a CPU copy."""
    from amc.deploy.runtimes import get_runtime, median_seconds

    if any(p.device.type != "cpu" for p in model.parameters()):
        model = copy.deepcopy(model).cpu()
    out: dict[str, float] = {}
    for name in runtimes:
        for batch, run in get_runtime(name).runnables(model, input_size, batches).items():
            out[latency_key(name, batch)] = 1e3 * median_seconds(run, min_time=min_time)
    return out
