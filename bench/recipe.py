"""Does ``amc apply --recipe recover`` bring a pruned network back to its base, and at what cost?

For each model: the policy is cut out of its base for real, fine-tuned with the recipe (20 epochs
of SGD, cosine from lr 0.02, distilled from the unpruned base, crop-and-flip augmentation), and
scored on the held-out and the test split after every epoch.

    python bench/recipe.py --model resnet56 --policy policies/resnet56-ddpg-0.5.json   # ~2.3 h here
    python bench/recipe.py --model vgg19                # no --policy: uniform at --flops (0.5)
    python bench/recipe.py --quick                      # CI: resnet20, uniform, 1 epoch
Each run keeps its state under --runs (runs/recipe-MODEL: amc apply's folder, saved after every
epoch and every 5 minutes): run the same command again after a stop and it continues; a run that
finished is read back, not trained again. Writes bench/results/recipe-MODEL[-quick].json (base,
pruned and per-epoch accuracies, gap to the base, wall time) and the curve to
docs/experiments/MODEL-recipe/ (--out).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import base_checkpoint, data_spec, experiment_paths, write_experiment, write_result  # noqa: E402

from amc.jobs import run_apply, run_search_request  # noqa: E402
from amc.report import recipe_plot  # noqa: E402
from amc.requests import ApplyRequest, SearchRequest, parse  # noqa: E402

COLUMNS = [
    ("epoch", "epoch", ""),
    ("heldout_acc", "held-out acc", ".2%"),
    ("test_acc", "test acc", ".2%"),
    ("gap", "test - base test", "+.2%"),
    ("seconds", "wall s (fine-tuning so far)", ".0f"),
]


def uniform_policy(model: str, flops: float, runs: Path) -> Path:
    """A uniform policy at ``flops`` of the MACs (a few seconds), for a model with no searched one."""
    out = runs / f"uniform-{flops:g}.json"
    if not out.is_file():
        values = {"model": model, "flops": flops, "method": "uniform", "data": data_spec(),
                  "checkpoint": str(base_checkpoint(model)), "out": str(out), "train": False}  # fmt: skip
        req = parse(SearchRequest, values)
        run_search_request(req, progress=False, runs_dir=runs)
    return out


def apply_recipe(policy: Path, runs: Path, extra: dict[str, Any]) -> dict[str, Any]:
    """amc apply's metrics: read back when this run already finished with the same request."""
    values = {"policy": str(policy), "recipe": "recover", "data": data_spec(), "out": str(runs / "apply"), **extra}
    req = parse(ApplyRequest, values)
    done, asked = runs / "apply" / "metrics.json", runs / "request.json"
    if done.is_file() and asked.is_file() and json.loads(asked.read_text()) == values:
        print(f"{done} is a finished run of this request: reading it back", flush=True)
        return dict(json.loads(done.read_text()))
    runs.mkdir(parents=True, exist_ok=True)
    asked.write_text(json.dumps(values, indent=2) + "\n")
    return run_apply(req)[0]


def curve_rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    """Epoch 0 (just pruned, BN recalibrated) and every fine-tuning epoch, with the gap to the base."""
    start = {"epoch": 0, "heldout_acc": m["pruned_heldout_acc"], "test_acc": m["pruned_test_acc"], "seconds": 0.0}
    return [{**p, "gap": p["test_acc"] - m["base_test_acc"]} for p in [start, *m.get("curve", [])]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--policy", type=Path, default=None, help="default: a uniform policy at --flops")
    ap.add_argument("--flops", type=float, default=0.5)
    ap.add_argument("--runs", type=Path, default=None, help="where the run's state is kept (runs/recipe-MODEL)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    extra: dict[str, Any] = {"latency": False}
    if a.quick:
        a.model, a.policy = "resnet20", None
        extra |= {"finetune_epochs": 1, "calib_images": 100}
    name, out = experiment_paths("recipe", a.model, a.quick, a.out)
    runs = a.runs or Path("runs") / (f"recipe-{a.model}" + ("-quick" if a.quick else ""))
    t0 = time.time()
    policy = a.policy or uniform_policy(a.model, a.flops, runs)
    m = apply_recipe(policy, runs, extra)
    rows = curve_rows(m)
    last = rows[-1]
    minutes = last["seconds"] / 60
    print(f"{a.model}: base test {m['base_test_acc']:.2%}, pruned {m['pruned_test_acc']:.2%}, after "
          f"{last['epoch']} epochs {last['test_acc']:.2%} ({last['gap']:+.2%}) in {minutes:.0f} min")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    title = f"{a.model} on {m['dataset']} at {m['macs_ratio']:.2f} of the MACs: amc apply --recipe recover"
    recipe_plot({a.model: rows}, {a.model: m["base_test_acc"]}, title, out / "test-per-epoch.png")
    summary = {k: m.get(k) for k in ("macs_ratio", "params_ratio", "base_heldout_acc", "base_test_acc",
                                     "pruned_heldout_acc", "pruned_test_acc", "finetuned_heldout_acc",
                                     "finetuned_test_acc", "finetune_seconds", "config")}  # fmt: skip
    summary["gap_to_base_test"] = last["gap"]
    notes = (
        f"Policy: `{policy}` ({m['macs_ratio']:.3f} of the MACs, {m['params_ratio']:.3f} of the parameters). "
        f"Base {m['base_test_acc']:.2%} test; after the recipe {last['test_acc']:.2%} ({last['gap']:+.2%}), "
        f"{last['seconds'] / 60:.0f} min of fine-tuning on this machine (evaluation after each epoch included). "
        "Epoch 0 is the pruned network with BatchNorm recalibrated, before fine-tuning."
    )
    write_experiment(out, f"{a.model}: fine-tuning that recovers the accuracy", rows, COLUMNS, notes)
    write_result(name, {"args": {**vars(a), "runs": str(runs), "out": str(out), "policy": str(policy)},
                        "summary": summary, "rows": rows, "seconds": round(time.time() - t0, 1)})  # fmt: skip


if __name__ == "__main__":
    main()
