"""Measured latency as a cost model: a per-layer latency table (NetAdapt / AMC style).

Every convolution and linear layer of the unpruned network is timed alone on the chosen runtime
at the batch size, on a grid of kept input and output channel fractions (``GRID`` x ``GRID``; a
depthwise convolution along its one channel count). A pruned network's latency is predicted as
``sum(layer latencies, interpolated bilinearly) + c0``; ``c0`` is fitted to the latency ratios
of a few random policies to the unpruned network, each pair timed back to back, so what the table
leaves out (activations, additions, pooling) and what it adds (the runtime's per-call overhead of
every layer timed alone) is carried as one offset. The table is measured once per model
architecture, runtime, batch size, thread count and machine, and cached as JSON under
``$AMC_CACHE/latency``. :class:`LatencyCost` answers ``cost(keep)`` in microseconds of
arithmetic, so the environment's action bound and every searcher use it unchanged.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from amc.checkpoints import atomic_write_bytes
from amc.deploy.layers import layer_runnable
from amc.deploy.runtimes import InferenceRuntime, Runnable, median_seconds
from amc.progress import Progress
from amc.pruning.budget import kept_channels
from amc.pruning.prune import prune_model
from amc.pruning.units import PRUNABLE_TYPES, UnitGraph
from amc.runtime import cpu_name

__all__ = [
    "GRID", "LatencyTable", "LatencyCost", "latency_table", "random_keeps", "measure_ratio", "pruned_copy", "cache_file"
]  # fmt: skip

GRID = np.array([0.15, 0.3, 0.45, 0.6, 0.8, 1.0])


@dataclass
class LatencyTable:
    """``seconds[j]``: layer ``layers[j]``'s seconds on the ``GRID`` x ``GRID`` of kept (input,
    output) fractions. A network's latency is predicted as ``alpha * layer_sum + c0``: ``c0`` is
    fitted to measured latency ratios (pruned / unpruned, timed back to back), ``alpha`` is 1;
    ``base``: the unpruned prediction; ``measured_base``: its measured seconds; ``fit``: the
    calibration points (layer sum, measured ratio)."""

    key: dict[str, Any]
    layers: list[str]
    seconds: list[list[list[float]]]
    alpha: float = 1.0
    c0: float = 0.0
    base: float = 0.0
    measured_base: float = 0.0
    fit: list[tuple[float, float]] | None = None
    fit_error: float = 0.0

    def layer_sum(self, f_in: np.ndarray, f_out: np.ndarray) -> float:
        """Sum over layers of the bilinearly interpolated table at kept fractions (per layer)."""
        if getattr(self, "_array", None) is None:
            self._array = np.asarray(self.seconds)  # (L, G, G), converted once
        t = self._array
        fi, fo = np.clip(f_in, GRID[0], 1.0), np.clip(f_out, GRID[0], 1.0)
        i = np.clip(np.searchsorted(GRID, fi) - 1, 0, len(GRID) - 2)
        o = np.clip(np.searchsorted(GRID, fo) - 1, 0, len(GRID) - 2)
        wi = (fi - GRID[i]) / (GRID[i + 1] - GRID[i])
        wo = (fo - GRID[o]) / (GRID[o + 1] - GRID[o])
        rows = np.arange(len(t))
        top = t[rows, i, o] * (1 - wo) + t[rows, i, o + 1] * wo
        bottom = t[rows, i + 1, o] * (1 - wo) + t[rows, i + 1, o + 1] * wo
        return float((top * (1 - wi) + bottom * wi).sum())

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LatencyTable:
        return cls(**json.loads(text))


def _layer_rows(graph: UnitGraph) -> list[tuple[int, str, nn.Module]]:
    """(row in the graph's cost tables, name, module) of every convolution and linear layer."""
    return [(r, n, m) for r, (n, m) in enumerate(graph._param_mods) if isinstance(m, PRUNABLE_TYPES)]


def _fractions(graph: UnitGraph, keep: np.ndarray, rows: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    f_out, f_in = graph.fractions(keep)
    rows = rows if rows is not None else [r for r, _, _ in _layer_rows(graph)]
    dw = graph._dw[rows]
    return np.where(dw, f_out[rows], f_in[rows]), f_out[rows]  # a depthwise layer's input is its output


class LatencyCost:
    """Predicted seconds of the pruned network (the ``latency`` cost model)."""

    name = "latency"

    def __init__(self, graph: UnitGraph, table: LatencyTable) -> None:
        self.graph, self.table, self.base = graph, table, table.base
        self._rows = [r for r, _, _ in _layer_rows(graph)]  # once: cost() runs inside the action bound

    def cost(self, keep: np.ndarray) -> float:
        return self.table.alpha * self.table.layer_sum(*_fractions(self.graph, keep, self._rows)) + self.table.c0


def machine_key(
    runtime: InferenceRuntime, batch: int, graph: UnitGraph, round_to: int = 1, calibration: int = 6
) -> dict[str, Any]:
    """What a table depends on: the layers' shapes, runtime, batch, threads, machine, the channel
    multiple its counts are rounded to and how many policies calibrate it."""
    shapes = [repr(layer) for layer in graph.layers]
    # tables of free counts keep their old keys; rounded ones are also calibrated on uniform policies
    rounding = {"round_to": round_to, "calibration": "random+uniform"} if round_to > 1 else {}
    # tables with the default calibration count keep their old keys
    rounding |= {"calibration_policies": calibration} if calibration != 6 else {}
    return (
        rounding
        | {
            "runtime": runtime.name,
            "batch": batch,
            "threads": runtime.threads,
            "cpu": cpu_name(),
            "torch": torch.__version__,
            "grid": GRID.tolist(),
            "calibration": "random+uniform",  # what c0 is fitted on (tables fitted otherwise are measured again)
            "layers_sha": hashlib.sha256("\n".join(shapes).encode()).hexdigest()[:16],
        }
    )


def cache_file(cache: Path | None, key: dict[str, Any], prefix: str = "") -> Path | None:
    """Where a measurement keyed by ``key`` is cached under ``cache`` (None: not cached)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return cache / f"{prefix}{digest}.json" if cache else None


def _measure_layers(
    graph: UnitGraph, runtime: InferenceRuntime, batch: int, round_to: int = 1
) -> tuple[list[str], list[Any]]:
    rows = _layer_rows(graph)
    info = {layer.name: layer for layer in graph.layers}
    bar = Progress(len(rows) * len(GRID) ** 2, f"latency table ({runtime.name}, batch {batch})", "point")
    names, seconds = [], []
    for _, name, module in rows:
        grid = np.zeros((len(GRID), len(GRID)))
        for a, fi in enumerate(GRID):
            for b, fo in enumerate(GRID):
                if info[name].kind == "dwconv" and a != b:
                    grid[a, b] = np.nan  # filled from the diagonal below
                else:
                    run = layer_runnable(runtime, module, info[name], float(fi), float(fo), batch, round_to)
                    grid[a, b] = _time_point(run)
                bar.update(1)
        if info[name].kind == "dwconv":  # one channel count: in = out
            grid = np.repeat(np.diag(grid)[None, :], len(GRID), 0)
        # more channels never run faster in this model: a running maximum along both axes takes
        # out the timing noise of tiny layers (a real slowdown at odd counts is --round-to's business)
        grid = np.maximum.accumulate(np.maximum.accumulate(grid, axis=0), axis=1)
        names.append(name)
        seconds.append(grid.tolist())
    bar.close()
    return names, seconds


def _time_point(run: Runnable) -> float:
    """Median seconds of one table point: 10 runs after 3 warm-ups, or 3 after 1 when a run takes
    over 5 ms (slow layers are steady, and a table of them, e.g. bf16 emulated at batch 64, would
    otherwise take half an hour)."""
    start = time.perf_counter()
    run()
    if time.perf_counter() - start > 0.005:
        return median_seconds(run, min_time=0.0, warmup=0, min_runs=3)
    return median_seconds(run, min_time=0.03, min_runs=10)


def random_keeps(graph: UnitGraph, n: int, max_sparsity: float, seed: int, round_to: int = 1) -> list[np.ndarray]:
    """``n`` random policies (each unit's sparsity uniform in [0, max_sparsity]) as kept counts,
    rounded as a search with ``--round-to round_to`` rounds them."""
    rng = np.random.default_rng(seed)
    return [
        kept_channels(rng.uniform(0, max_sparsity, len(graph.channels)), graph.channels, round_to) for _ in range(n)
    ]


def pruned_copy(model: nn.Module, graph: UnitGraph, keep: np.ndarray) -> nn.Module:
    """``model`` cut to ``keep`` channels per unit (which channels does not matter for latency)."""
    return prune_model(model, graph, [np.arange(int(k)) for k in keep])


def measure_ratio(base_run: Runnable, run: Runnable, rounds: int = 5, min_time: float = 0.05) -> float:
    """Median over ``rounds`` of (seconds of ``run`` / seconds of ``base_run``), the two timed
    back to back in each round: a slow drift of the machine (a busy neighbour, clock changes)
    cancels out of the ratio, where it would not out of two absolute times taken minutes apart."""
    ratios = []
    for _ in range(rounds):
        b = median_seconds(base_run, min_time=min_time, warmup=1)
        ratios.append(median_seconds(run, min_time=min_time, warmup=1) / b)
    return float(np.median(ratios))


def _fit(x_full: float, x: np.ndarray, ratios: np.ndarray) -> float:
    """``beta`` (the overhead the table leaves out, in its own seconds) such that
    ``(x + beta) / (x_full + beta)`` best matches the measured latency ratios (least squares of
    ``ratio * (x_full + beta) - (x + beta)``; a table that needs no offset gives 0)."""
    d = ratios - 1.0
    if not np.any(np.abs(d) > 1e-9):
        return 0.0
    beta = float(np.sum(d * (x - ratios * x_full)) / np.sum(d * d))
    return max(beta, -0.9 * float(np.min(x)))  # keeps every prediction positive


def latency_table(
    model: nn.Module,
    graph: UnitGraph,
    runtime: InferenceRuntime,
    batch: int,
    *,
    cache: Path | None = None,
    calibration: int = 6,
    max_sparsity: float = 0.8,
    round_to: int = 1,
) -> LatencyTable:
    """The cached table for this model, runtime, batch and machine, measured if missing; with
    ``round_to`` above 1, its grid and calibration policies have counts on that multiple (the
    networks a search with that rounding makes)."""
    key = machine_key(runtime, batch, graph, round_to, calibration)
    path = cache_file(cache, key)
    if path is not None and path.is_file():
        return LatencyTable.from_json(path.read_text())
    names, seconds = _measure_layers(graph, runtime, batch, round_to)
    table = LatencyTable(key, names, seconds)
    full = graph.channels.astype(int)
    base_run = runtime.runnable(model, graph.input_size, batch)
    keeps = random_keeps(graph, calibration, max_sparsity, seed=12345, round_to=round_to)
    if round_to > 1:  # and two uniform policies, so the fit also holds near the smallest reachable latency
        keeps += [kept_channels(np.full(len(full), u), full, round_to) for u in (0.5 * max_sparsity, max_sparsity)]
    ratios = np.array([measure_ratio(base_run, runtime.runnable(pruned_copy(model, graph, k), graph.input_size, batch))
                       for k in keeps])  # fmt: skip
    x = np.array([table.layer_sum(*_fractions(graph, k)) for k in keeps])
    x_full = table.layer_sum(*_fractions(graph, full))
    table.c0 = _fit(x_full, x, ratios)
    table.base = x_full + table.c0
    table.measured_base = median_seconds(base_run, min_time=0.5)
    table.fit = [(float(a), float(r)) for a, r in zip(x, ratios)]
    table.fit_error = float(np.median(np.abs((x + table.c0) / table.base - ratios) / ratios))
    if table.fit_error > 0.1:
        warnings.warn(
            f"the latency table predicts {runtime.name} at batch {batch} poorly on this network (median error "
            f"{table.fit_error:.0%} on its calibration policies; measured ratios "
            f"{ratios.min():.2f}-{ratios.max():.2f}):"
            " cut networks may run slower than their layers suggest (e.g. channel counts that are not multiples of"
            " 8 or 16); try --round-to 8 or 16, or budget MACs",
            stacklevel=2,
        )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, table.to_json().encode())
    return table
