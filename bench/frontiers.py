"""The three-model frontiers page: ResNet-18, MobileNetV2 and VGG-19 side by side.

Reads each model's ``amc compare`` study in docs/experiments/MODEL-frontier (its command is in
that folder's README) and draws, per kind of budget (MACs, parameters), accuracy after the
study's fine-tuning against the compression ratio, one panel per model, with one table per
model. The notebook notebooks/three_model_frontiers.ipynb draws the same figures.

    python bench/frontiers.py          # writes docs/experiments/three-model-frontiers/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from amc.report import frontier_studies, frontiers_plot, markdown_table

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "docs" / "experiments"
MODELS = ("resnet18", "mobilenetv2", "vgg19")
KINDS = {"macs": ("macs_ratio", "MACs"), "params": ("params_ratio", "parameters")}


def study_notes(folder: Path) -> str:
    """The unpruned test accuracy and how the study cut channels (its config.json and sweep.json)."""
    notes = []
    if (folder / "config.json").is_file():
        notes.append(f"unpruned: {json.loads((folder / 'config.json').read_text())['base']['test_acc']:.2%} test")
    sweep = json.loads((folder / "sweep.json").read_text()) if (folder / "sweep.json").is_file() else {}
    if sweep.get("criterion"):
        notes.append(f"criterion {sweep['criterion']}")
    if sweep.get("residual"):
        notes.append("residual-coupled channels pruned too (`--residual`)")
    return "; ".join(notes)


def table(rows: list[dict[str, Any]], cost: str) -> str:
    """Methods as columns, budgets as rows: accuracy after fine-tuning (before it in brackets)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    by = {(r["method"], r["target"]): r for r in rows}
    lines = []
    for target in sorted({r["target"] for r in rows}):
        line: dict[str, Any] = {"target": target}
        for m in methods:
            r = by.get((m, target))
            line[m] = (
                f"{r['ft_test_acc']:.2%} ({r['test_acc']:.2%}), x{1 / r[cost]:.2f}"
                if r and r.get("ft_test_acc") is not None
                else "-"
            )
        lines.append(line)
    return markdown_table(lines, [("target", "budget", "g"), *((m, m, "") for m in methods)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=EXPERIMENTS / "three-model-frontiers")
    ap.add_argument("--experiments", type=Path, default=EXPERIMENTS, help="where the MODEL-frontier studies are")
    a = ap.parse_args()
    found = frontier_studies(a.experiments, MODELS)
    if not found:
        raise SystemExit(
            f"no MODEL-frontier study in {a.experiments}: run amc compare --out {a.experiments}/MODEL-frontier"
        )
    a.out.mkdir(parents=True, exist_ok=True)
    text = [
        "# Three-model compression frontiers (cifar10-jpeg)\n",
        "Test accuracy after the same short fine-tuning (each study's `config.json`), against the compression "
        "ratio (unpruned / pruned). Each model's study, its command, its latency plots and its policies are in "
        "`docs/experiments/MODEL-frontier/`. Made by `python bench/frontiers.py`.\n",
    ]
    for kind, (cost, what) in KINDS.items():
        if kind not in found:
            continue
        title = f"budgets on {what}: test accuracy after fine-tuning against compression"
        png = frontiers_plot(found[kind], cost, "ft_test_acc", a.out / f"frontiers-{kind}.png", title=title)
        text.append(f"## Budgets on {what}\n\n![{png.name}]({png.name})\n")
        for model, rows in found[kind].items():
            notes = study_notes(a.experiments / f"{model}-frontier")
            text.append(f"**{model}**{f' ({notes})' if notes else ''}: test accuracy after fine-tuning (before it),"
                        f" compression ratio of the {what}\n")  # fmt: skip
            text.append(table(rows, cost) + "\n")
    (a.out / "README.md").write_text("\n".join(text))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
