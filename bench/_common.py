"""Shared helpers of the benchmark scripts: where the data and bases are, machine facts,
and writing results to bench/results/*.json (or $AMC_BENCH_RESULTS)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

# AMC_BENCH_RESULTS redirects the JSON (the test suite's --quick runs write to a temporary folder)
RESULTS = Path(os.environ.get("AMC_BENCH_RESULTS") or Path(__file__).parent / "results")


def data_spec() -> str:
    return os.environ.get("AMC_DATA", "cifar10")


def base_checkpoint(model: str) -> Path:
    """The zoo base for ``model`` on the data set (from $AMC_CHECKPOINTS)."""
    from amc.checkpoints import find_base
    from amc.data import load_data

    found = find_base(model, load_data(data_spec()).name)
    if found is None:
        sys.exit(f"no base for {model}: set AMC_CHECKPOINTS to the zoo, or train one with 'amc train --model {model}'")
    return found


def machine() -> dict:
    from amc.runtime import cpu_name

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "cuda": torch.cuda.is_available(),
    }


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    ).stdout.strip()
    payload = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": commit,
        "machine": machine(),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path}")
    return path


def experiment_paths(kind: str, model: str, quick: bool, out: Path | None) -> tuple[str, Path]:
    """The result name (``KIND-MODEL[-quick]``) and the folder for an experiment's figures:
    ``out``, else docs/experiments/MODEL-KIND (quick runs: next to the JSON results)."""
    name = f"{kind}-{model}" + ("-quick" if quick else "")
    return name, out or (RESULTS / name if quick else Path("docs/experiments") / f"{model}-{kind.replace('_', '-')}")


def write_experiment(
    folder: Path, title: str, rows: list[dict], columns: list[tuple[str, str, str]], notes: str = ""
) -> Path:
    """An experiment's folder under docs/: results.csv/json and a README.md with the exact command,
    the machine, and the table (figures are written there by the caller)."""
    from amc.checkpoints import atomic_write_bytes
    from amc.report import markdown_table, write_rows

    folder.mkdir(parents=True, exist_ok=True)
    write_rows(rows, folder)
    pngs = sorted(p.name for p in folder.glob("*.png"))
    m = machine()
    text = "\n".join(
        [
            f"# {title}",
            "",
            f"Made by `{' '.join([Path(sys.executable).name, *sys.argv])}` on {time.strftime('%Y-%m-%d')}"
            f" ({m['cpu']}, {m['cores']} cores, torch {m['torch']}).",
            "",
            markdown_table(rows, columns),
            "",
            *(f"![{p}]({p})" for p in pngs),
            "",
            notes,
        ]
    )
    atomic_write_bytes(folder / "README.md", (text.rstrip() + "\n").encode())
    return folder
