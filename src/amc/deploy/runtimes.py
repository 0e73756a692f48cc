"""Inference runtimes a network can be measured on: one base class and a registry, as for
searchers and cost models.

A runtime turns a network (or one layer, for the latency table) into a runnable for a fixed
batch size; :func:`median_seconds` times runnables the same way everywhere (warm-up excluded,
median of repeated runs). Built in: ``torch-fp32`` (eager), ``torch-bf16`` (bf16 autocast with
channels_last) and ``onnxruntime`` (CPU execution provider, CUDA's where present).
"""

from __future__ import annotations

import copy
import statistics
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from amc.errors import AmcError

__all__ = ["InferenceRuntime", "median_seconds", "register_runtime", "get_runtime", "runtime_names"]

Runnable = Callable[[], Any]


def median_seconds(run: Runnable, min_time: float = 0.2, warmup: int = 3, min_runs: int = 5) -> float:
    """Median wall seconds of ``run()``, after ``warmup`` calls, over at least ``min_runs`` calls
    and ``min_time`` seconds."""
    for _ in range(warmup):
        run()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class InferenceRuntime(ABC):
    """A runtime: ``runnable(model, input_size, batch)`` returns a no-argument callable that runs
    one forward pass of a ``batch``-image batch; ``threads`` CPU threads."""

    name: ClassVar[str]

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or torch.get_num_threads()

    @abstractmethod
    def runnable(self, model: nn.Module, input_size: tuple[int, ...], batch: int) -> Runnable: ...

    def runnables(self, model: nn.Module, input_size: tuple[int, ...], batches: Sequence[int]) -> dict[int, Runnable]:
        """One runnable per batch size (a runtime that converts the network does it once)."""
        return {b: self.runnable(model, input_size, b) for b in batches}

    def measure(self, model: nn.Module, input_size: tuple[int, ...], batch: int, min_time: float = 0.5) -> float:
        """Median seconds per forward pass of ``model`` on this runtime."""
        return median_seconds(self.runnable(model, input_size, batch), min_time=min_time)


class TorchFp32(InferenceRuntime):
    name = "torch-fp32"
    channels_last = False

    def runnable(self, model: nn.Module, input_size: tuple[int, ...], batch: int) -> Runnable:
        torch.set_num_threads(self.threads)
        x = torch.randn(batch, *input_size)
        fmt = torch.channels_last if self.channels_last and x.dim() == 4 else torch.contiguous_format
        net = copy.deepcopy(model).eval().to(memory_format=fmt)  # a copy in this runtime's format, not the caller's
        x = x.contiguous(memory_format=fmt)

        @torch.no_grad()
        def run() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.channels_last):
                net(x)

        return run


class TorchBf16(TorchFp32):
    """bf16 autocast with channels_last (fast on CPUs with AMX / AVX-512-bf16; emulated, and slow,
    elsewhere)."""

    name = "torch-bf16"
    channels_last = True


class OnnxRuntime(InferenceRuntime):
    """ONNX Runtime: the network is exported to ONNX (dynamo exporter) and run by an
    ``InferenceSession`` with ``threads`` intra-op threads."""

    name = "onnxruntime"

    def session(self, onnx_model: Any) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # no busy-waiting between runs: a spinning pool of one session would steal the cores of the
        # next one timed (networks are timed in alternation)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        blob = onnx_model if isinstance(onnx_model, (bytes, str)) else onnx_model.SerializeToString()
        return ort.InferenceSession(blob, opts, providers=providers)

    def runnable_onnx(self, onnx_model: Any, input_shape: tuple[int, ...]) -> Runnable:
        sess = self.session(onnx_model)
        name = sess.get_inputs()[0].name
        x = np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)
        return lambda: sess.run(None, {name: x})

    def runnable(self, model: nn.Module, input_size: tuple[int, ...], batch: int) -> Runnable:
        return self.runnable_onnx(self.to_onnx(model, input_size), (batch, *input_size))

    def runnables(self, model: nn.Module, input_size: tuple[int, ...], batches: Sequence[int]) -> dict[int, Runnable]:
        blob = self.to_onnx(model, input_size)  # dynamic batch: exported once
        return {b: self.runnable_onnx(blob, (b, *input_size)) for b in batches}

    @staticmethod
    def to_onnx(model: nn.Module, input_size: tuple[int, ...]) -> bytes:
        """The network as ONNX bytes, for timing only: the TorchScript exporter takes 0.6 s on
        ResNet-56 where the dynamo exporter behind ``amc export`` (checked against torch) takes 12;
        onnxruntime optimises both graphs the same way."""
        import contextlib
        import io
        import warnings

        buf = io.BytesIO()
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model.eval(),
                (torch.randn(1, *input_size),),
                buf,  # type: ignore[arg-type]  # a file object is accepted by the TorchScript exporter
                dynamo=False,
                input_names=["x"],
                dynamic_axes={"x": {0: "batch"}},
            )
        return buf.getvalue()


_RUNTIMES: dict[str, type[InferenceRuntime]] = {}


def register_runtime(cls: type[InferenceRuntime]) -> type[InferenceRuntime]:
    """Class decorator: make ``cls`` available as ``--runtime cls.name``."""
    _RUNTIMES[cls.name] = cls
    return cls


for _cls in (TorchFp32, TorchBf16, OnnxRuntime):
    register_runtime(_cls)


def runtime_names() -> tuple[str, ...]:
    return tuple(_RUNTIMES)


def get_runtime(name: str, threads: int | None = None) -> InferenceRuntime:
    if name not in _RUNTIMES:
        raise AmcError(f"--runtime: unknown runtime '{name}': use one of {', '.join(_RUNTIMES)}")
    return _RUNTIMES[name](threads)
