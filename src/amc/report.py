"""Tables and plots shared by ``amc compare``, the benchmarks and the notebooks.

Every plot says what it shows in its title (model, budget, data set) and labels its axes with
units. Files are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # a Figure renders without pyplot: no backend is switched

from amc.checkpoints import atomic_write_bytes

__all__ = [
    "write_rows",
    "pareto_plot",
    "frontiers_plot",
    "frontier_studies",
    "sparsity_plot",
    "search_curve_plot",
    "accuracy_vs_sparsity_plot",
    "schedule_plot",
    "recipe_plot",
    "markdown_table",
    "MEASURE_COLUMNS",
]

AXIS_LABELS = {
    "macs_ratio": "MACs kept (fraction of the unpruned network)",
    "params_ratio": "parameters kept (fraction of the unpruned network)",
    "latency_b64_ms": "measured latency, batch 64 (ms)",
    "latency_b1_ms": "measured latency, batch 1 (ms)",
    "test_acc": "test accuracy before fine-tuning",
    "ft_test_acc": "test accuracy after fine-tuning",
    "heldout_acc": "held-out accuracy before fine-tuning",
}


_LATENCY_KEY = re.compile(r"latency_(.+)_b(\d+)_ms")


def axis_label(key: str) -> str:
    """A column's axis label: ``latency_onnxruntime_b1_ms`` -> measured latency on onnxruntime, ..."""
    m = _LATENCY_KEY.fullmatch(key)
    if key not in AXIS_LABELS and m:
        return f"measured latency on {m.group(1)}, batch {m.group(2)} (ms)"
    return AXIS_LABELS.get(key, key)


# the measured columns of a pruned network's row (amc compare, the policy-quality benchmark)
MEASURE_COLUMNS = [
    ("macs_ratio", "MACs", ".3f"),
    ("params_ratio", "params", ".3f"),
    ("heldout_acc", "held-out", ".2%"),
    ("test_acc", "test", ".2%"),
    ("ft_heldout_acc", "held-out FT", ".2%"),
    ("ft_test_acc", "test FT", ".2%"),
    ("latency_b1_ms", "b1 ms", ".2f"),
    ("latency_b64_ms", "b64 ms", ".1f"),
]


def write_rows(rows: Sequence[dict[str, Any]], folder: Path, stem: str = "results") -> None:
    """``rows`` as ``stem.csv`` and ``stem.json`` (columns: the union of the rows' keys)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys and not isinstance(r[k], (dict, list))]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(folder / f"{stem}.csv", buf.getvalue().encode())
    atomic_write_bytes(folder / f"{stem}.json", (json.dumps(list(rows), indent=2, default=str) + "\n").encode())


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def pareto_plot(
    rows: Sequence[dict[str, Any]],
    x: str,
    y: str,
    title: str,
    path: Path,
    base: dict[str, Any] | None = None,
    series: Callable[[dict[str, Any]], str] | None = None,
) -> Path:
    """Accuracy ``y`` against cost ``x``, one line per ``series(row)`` (default: the method),
    points sorted by ``x``."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    name = series or (lambda r: str(r["method"]))
    for label in dict.fromkeys(name(r) for r in rows):
        pts = sorted((r[x], r[y]) for r in rows if name(r) == label and r.get(x) is not None and r.get(y) is not None)
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)
    if base is not None and base.get(y) is not None:
        bx = base.get(x, 1.0)
        ax.scatter([bx], [base[y]], marker="*", s=160, color="black", label="unpruned", zorder=5)
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    return _finish(fig, ax, title, path)


def frontiers_plot(
    results: dict[str, Sequence[dict[str, Any]]], cost: str, y: str, path: Path, title: str = ""
) -> Path:
    """Compression-ratio frontiers side by side, one panel per model (``results``: model -> rows
    of ``amc compare``): accuracy ``y`` against ``1 / cost`` (``cost``: ``params_ratio`` or
    ``macs_ratio``), one line per method. Rows without ``y`` or ``cost`` are left out."""
    fig = Figure(figsize=(4.2 * max(1, len(results)), 4.0))
    axes = fig.subplots(1, max(1, len(results)), squeeze=False)[0]
    what = "parameters" if cost == "params_ratio" else "MACs"
    for ax, (model, rows) in zip(axes, results.items()):
        for method in dict.fromkeys(r["method"] for r in rows):
            pts = sorted(
                (1 / r[cost], r[y]) for r in rows if r["method"] == method and r.get(cost) and r.get(y) is not None
            )
            if pts:
                ax.plot(*zip(*pts), marker="o", label=method)
        ax.set_title(model, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel(axis_label(y))
    fig.supxlabel(f"compression ratio ({what}: unpruned / pruned)", fontsize=10)  # one label: panels' would overlap
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def frontier_studies(experiments: Path, models: Sequence[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Budget kind (``macs``, ``params``) -> model -> the rows of its ``amc compare`` study in
    ``experiments/MODEL-frontier/results.json``; models without a study are left out."""
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for m in models:
        path = experiments / f"{m}-frontier" / "results.json"
        if path.is_file():
            for r in json.loads(path.read_text()):
                found.setdefault(r.get("kind", "macs"), {}).setdefault(m, []).append(r)
    return found


def sparsity_plot(policies: dict[str, dict[str, float]], title: str, path: Path) -> Path:
    """Per-unit sparsity of several policies, side by side (grouped bars over units)."""
    names = list(next(iter(policies.values())).keys())
    n = len(policies)
    width = 0.8 / max(n, 1)
    fig = Figure(figsize=(max(6.4, 0.28 * len(names) * max(n, 2)), 4.2))
    ax = fig.subplots()
    for i, (method, sp) in enumerate(policies.items()):
        ax.bar([j + i * width for j in range(len(names))], [sp.get(u, 0.0) for u in names], width, label=method)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))])
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_ylabel("sparsity (fraction of channels removed)")
    ax.set_xlabel("prunable unit (in network order)")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def search_curve_plot(curves: dict[str, list[float]], title: str, path: Path, ylabel: str = "reward (-error)") -> Path:
    """Reward per episode/trial and the best so far, one colour per searcher."""
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    for i, (method, values) in enumerate(curves.items()):
        colour = f"C{i}"
        best, run = [], float("-inf")
        for v in values:
            run = max(run, v)
            best.append(run)
        ax.plot(values, ".", color=colour, alpha=0.35, markersize=3)
        ax.plot(best, "-", color=colour, label=f"{method} (best so far)")
    ax.set_xlabel("episode / trial")
    ax.set_ylabel(ylabel)
    return _finish(fig, ax, title, path)


def accuracy_vs_sparsity_plot(rows: Sequence[dict[str, Any]], title: str, path: Path) -> Path:
    """Test accuracy against the fraction of parameters removed, one colour per ``kind``
    (structured, unstructured): solid before fine-tuning, dashed after."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    for i, kind in enumerate(dict.fromkeys(r["kind"] for r in rows)):
        pts = sorted((r["sparsity"], r["test_acc"], r.get("ft_test_acc")) for r in rows if r["kind"] == kind)
        xs = [p[0] for p in pts]
        ax.plot(xs, [p[1] for p in pts], "o-", color=f"C{i}", label=f"{kind}, no fine-tuning")
        if all(p[2] is not None for p in pts):
            ax.plot(xs, [float(p[2] or 0.0) for p in pts], "s--", color=f"C{i}", alpha=0.7, label=f"{kind}, fine-tuned")
    ax.set_xlabel("fraction of parameters removed")
    ax.set_ylabel("test accuracy")
    return _finish(fig, ax, title, path)


def _finish(fig: Figure, ax: Any, title: str, path: Path) -> Path:
    """A one-panel figure's title, grid and legend, written to ``path``."""
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def recovery_plot(rows: Sequence[dict[str, Any]], kind: str, title: str, path: Path, y: str = "test_acc") -> Path:
    """Accuracy per fine-tuning epoch of the ``kind`` rows of :func:`amc.experiments.recovery_curves`,
    one line per fraction of parameters removed."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    mine = [r for r in rows if r["kind"] == kind]
    for i, s in enumerate(sorted({r["sparsity"] for r in mine})):
        pts = sorted((r["epoch"], r[y]) for r in mine if r["sparsity"] == s)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=f"C{i}", label=f"{s:.0%} of parameters removed")
    ax.set_xlabel("fine-tuning epoch (0: just pruned)")
    ax.set_ylabel(AXIS_LABELS.get(y, y).replace(" before fine-tuning", ""))
    return _finish(fig, ax, title, path)


def recipe_plot(curves: dict[str, Sequence[dict[str, Any]]], bases: dict[str, float], title: str, path: Path) -> Path:
    """Test accuracy per fine-tuning epoch of each run (``curves``: label -> :func:`amc.apply`'s
    curve, epoch 0 being the pruned network before fine-tuning), each beside its unpruned base
    (``bases``: label -> test accuracy, a dashed line)."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    for i, (label, rows) in enumerate(curves.items()):
        pts = sorted((r["epoch"], r["test_acc"]) for r in rows)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=f"C{i}", markersize=3, label=label)
        if label in bases:
            ax.axhline(bases[label], color=f"C{i}", linestyle="--", linewidth=1, label=f"{label}: unpruned base")
    ax.set_xlabel("fine-tuning epoch (0: just pruned)")
    ax.set_ylabel("test accuracy")
    return _finish(fig, ax, title, path)


def schedule_plot(rows: Sequence[dict[str, Any]], title: str, path: Path, y: str = "test_acc") -> Path:
    """Accuracy of each (schedule, criterion) run as bars, grouped by criterion."""
    criteria = list(dict.fromkeys(r["criterion"] for r in rows))
    schedules = list(dict.fromkeys(r["schedule"] for r in rows))
    width = 0.8 / max(len(schedules), 1)
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    for i, sched in enumerate(schedules):
        vals = [next((r[y] for r in rows if r["criterion"] == c and r["schedule"] == sched), 0.0) for c in criteria]
        bars = ax.bar([j + i * width for j in range(len(criteria))], vals, width, label=sched)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(criteria))])
    ax.set_xticklabels([f"{c} channel scores" for c in criteria])
    ax.set_ylabel(AXIS_LABELS.get(y, y).replace(" before fine-tuning", " after the same total fine-tuning"))
    lo = min((r[y] for r in rows), default=0.0)
    ax.set_ylim(max(0.0, lo - 0.05), min(1.0, max((r[y] for r in rows), default=1.0) + 0.03))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _save(fig, path)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """A Markdown table; ``columns`` are ``(key, header, format)`` with format like ``.2%``."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, sep]
    for r in rows:
        cells = []
        for key, _, fmt in columns:
            v = r.get(key)
            cells.append("-" if v is None else (format(v, fmt) if fmt else str(v)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
