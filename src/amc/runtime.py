"""Where and how networks run: device, precision and memory format.

``precision="auto"`` picks bf16 autocast with channels_last on CPUs that have native bf16
(AMX / AVX-512-bf16) and on CUDA devices that support it, fp32 elsewhere. On this project's
reference CPU, bf16 + channels_last doubles ResNet-56 and MobileNetV2 inference speed.

Inference (the search's proxy, BN recalibration, evaluation) and training always run
channels_last. In fp32 on a 2-core AVX2 CPU (``bench/memory_format.py``) it is 1.19x (ResNet-56),
1.49x (MobileNetV2) and 1.14x (VGG-19) faster than the contiguous format for inference at batch
250, and 1.10x, 1.34x and 1.06x for a training step at batch 128.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from amc.errors import AmcError

__all__ = ["Runtime", "cpu_has_bf16", "cpu_name", "keep_freed_memory", "set_threads"]

PRECISIONS = ("auto", "bf16", "fp32")


def cpu_has_bf16() -> bool:
    """True when oneDNN reports native bf16 support on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@functools.cache
def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo``, else ``platform.processor()``; may be empty),
    read once per process: a sweep asks for it with every row it measures."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.is_file() else []
    names = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
    return names[0] if names else platform.processor()


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads (or ``$AMC_THREADS``); several amc processes on one machine
    should split the cores between them instead of each taking all of them."""
    import os

    n = threads or int(os.environ.get("AMC_THREADS", "0") or 0)
    if n > 0:
        torch.set_num_threads(n)


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks for reuse instead of handing each large activation
    back to the kernel and faulting it in again on the next batch: without this a third of a
    search's CPU time on Linux is system time. The process keeps its peak memory until it exits.
    ``$AMC_MALLOC=system`` leaves the allocator alone (``bench/allocator.py`` compares both). True
    when applied; a no-op off glibc."""
    import ctypes
    import os
    import sys

    if os.environ.get("AMC_MALLOC") == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold, m_mmap_max = -1, -3, -4  # glibc's mallopt parameter numbers
    # blocks up to 1 GiB come from the heap (a MobileNetV2 activation at batch 250 is ~150 MB); a glibc that
    # refuses so high a threshold stops using mmap for blocks at all
    heap = libc.mallopt(m_mmap_threshold, 1 << 30) or libc.mallopt(m_mmap_max, 0)
    return bool(heap) and bool(libc.mallopt(m_trim_threshold, 1 << 30))


@dataclass(frozen=True)
class Runtime:
    """A device and a resolved precision (``bf16`` or ``fp32``)."""

    device: torch.device
    precision: str

    @classmethod
    def create(cls, device: str = "auto", precision: str = "auto", threads: int | None = None) -> Runtime:
        """Resolve ``device`` and ``precision``; ``threads`` sets torch's CPU threads (default:
        ``$AMC_THREADS``, else torch's own choice: every core). Also :func:`keep_freed_memory`."""
        set_threads(threads)
        keep_freed_memory()
        if precision not in PRECISIONS:
            raise AmcError(f"unknown precision '{precision}': use one of {', '.join(PRECISIONS)}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise AmcError(f"unknown device '{device}': use cpu, cuda or cuda:N") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise AmcError(f"device '{device}' asked for but CUDA is not available: use --device cpu")
        if precision == "auto":
            ok = cpu_has_bf16() if dev.type == "cpu" else torch.cuda.is_bf16_supported()
            precision = "bf16" if ok else "fp32"
        return cls(dev, precision)

    def machine(self) -> str:
        """What a latency depends on besides the network: the processor (its name, and whether it
        has native bf16: one name covers CPUs with and without it), the threads and torch.
        Latencies taken under two of these are not comparable."""
        if self.device.type == "cuda":
            where = torch.cuda.get_device_name(self.device)
        else:
            where = (cpu_name() or "cpu") + (", native bf16" if cpu_has_bf16() else "")
        return f"{where}, {torch.get_num_threads()} threads, torch {torch.__version__}"

    @property
    def channels_last(self) -> bool:
        """Networks and batches in channels_last, for inference and training (faster on every
        device, precision and model measured: bench/memory_format.py)."""
        return True

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the device and to the faster memory format, in place."""
        model.to(self.device)
        model.to(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        return model

    def folded(self, model: nn.Module, inplace: bool = False) -> nn.Module:
        """``model`` (in eval mode) with each BatchNorm folded into the convolution before it, for
        inference only: the same outputs to float rounding, one pass over the activations fewer
        (the proxy's forward, ``bench/search_speed.py``). ``model`` unchanged when torch.fx cannot
        trace it. ``inplace`` reuses ``model``'s modules (it must not be used afterwards)."""
        from torch.fx.experimental.optimization import fuse

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.prepare(fuse(model.eval(), inplace=inplace))
        except Exception:  # noqa: BLE001 - any model torch.fx cannot trace runs unfolded
            return model

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Mixed precision for forward passes when the precision is bf16; a no-op for fp32."""
        if self.precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                yield
        else:
            yield
