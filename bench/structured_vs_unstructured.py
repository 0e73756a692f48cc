"""Experiment 4: structured vs unstructured pruning, accuracy against the fraction of
parameters removed (0, 0.2, 0.4, 0.6, 0.8), before and after the same short fine-tuning.

    python bench/structured_vs_unstructured.py --model resnet56 --finetune-epochs 0.3
    python bench/structured_vs_unstructured.py --quick      # CI: resnet20, 3 sparsities, tiny fine-tuning
Writes bench/results/structured_vs_unstructured-MODEL[-quick].json and, with the figure and a
README, docs/experiments/MODEL-structured-vs-unstructured/ (--out).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import base_checkpoint, data_spec, experiment_paths, write_experiment, write_result  # noqa: E402

from amc.base import open_base  # noqa: E402
from amc.experiments import structured_vs_unstructured  # noqa: E402
from amc.report import accuracy_vs_sparsity_plot  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search.context import unit_graph_for  # noqa: E402

COLUMNS = [
    ("kind", "pruning", ""),
    ("sparsity", "params removed (asked)", ".1f"),
    ("params_kept", "params kept (measured)", ".3f"),
    ("macs_ratio", "MACs kept", ".3f"),
    ("test_acc", "test acc, no fine-tuning", ".2%"),
    ("ft_test_acc", "test acc, fine-tuned", ".2%"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6, 0.8])
    ap.add_argument("--finetune-epochs", type=float, default=0.3)
    ap.add_argument("--calib-images", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.model, a.sparsities, a.finetune_epochs, a.calib_images = "resnet20", [0.0, 0.4, 0.8], 0.01, 100
    name, out = experiment_paths("structured_vs_unstructured", a.model, a.quick, a.out)
    rt = Runtime.create()
    base = open_base(a.model, data_spec(), str(base_checkpoint(a.model)), rt)
    graph = unit_graph_for(a.model, base, False)
    rows = structured_vs_unstructured(base, graph, a.sparsities, a.finetune_epochs, a.calib_images)
    for r in rows:
        print(
            f"{r['kind']:<13} s={r['sparsity']:.1f} kept {r['params_kept']:.3f}  test {r['test_acc']:.2%} -> "
            f"{r['ft_test_acc']:.2%} fine-tuned",
            flush=True,
        )
    title = f"{a.model} on {base.data.name}: structured vs unstructured ({a.finetune_epochs:g} epoch fine-tuning)"
    out.mkdir(parents=True, exist_ok=True)
    accuracy_vs_sparsity_plot(rows, title, out / "accuracy-vs-sparsity.png")
    notes = (
        "Structured = the uniform channel policy keeping at most that fraction of parameters (a smaller dense "
        "network); unstructured = global weight-magnitude pruning over conv/linear weights except the classifier "
        "(zeros, same shapes and MACs). Both BatchNorm-recalibrated before measuring; fine-tuning is cosine from "
        "lr 0.01 with the masks kept."
    )
    write_experiment(out, title, rows, COLUMNS, notes)
    write_result(name, {"args": vars(a), "rows": rows})


if __name__ == "__main__":
    main()
