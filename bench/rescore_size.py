"""How many unseen held-out images the re-scoring step needs to pick the right policy.

A finished search's best candidates (amc.search.rescore: its 8 best distinct policies and the
heuristic reference it started from) are re-decided with each re-scoring size in --sizes, and
every candidate is also scored on the whole held-out and test splits (BN recalibrated on 2,000
training images, as bench/policy_quality.py does). A size is good when the policy it chooses is
the best one on the whole splits.

    python bench/rescore_size.py --model resnet56 --flops 0.3 --study bench-resnet56-ddpg-fp32-400-1763880000
    python bench/rescore_size.py --quick     # CI: a 6-episode random search on resnet20, sizes 50 and 100
The study is read from --runs (runs/bench, where bench/search_speed.py keeps its studies); its
folder is copied, so its saved re-scoring is not touched. Writes bench/results/rescore_size-MODEL[-TAG].json.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).parent))
from _common import base_checkpoint, data_spec, write_result  # noqa: E402

from amc.proxy import ProxyConfig  # noqa: E402
from amc.pruning.build import BuildConfig, NetworkBuilder  # noqa: E402
from amc.pruning.recalibrate import recalibrate_bn  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search import study as studies  # noqa: E402
from amc.search.context import SearchContext, SearchSettings, build_context  # noqa: E402
from amc.search.rescore import rescore_best  # noqa: E402
from amc.search.runner import SearchRun, run_search  # noqa: E402
from amc.training import evaluate  # noqa: E402


def quick_study(ctx: SearchContext, runs: Path) -> str:
    """A 6-episode random search (no re-scoring of its own) to re-decide; its study's name."""
    run = SearchRun(method="random", episodes=6, warmup=2, runs_dir=runs, out=runs / "best.json",
                    study="rescore-size-quick", progress=False, rescore=0)  # fmt: skip
    run_search(ctx, run)
    return "rescore-size-quick"


def redecide(ctx: SearchContext, trials: list, folder: Path, k: int, size: int) -> dict:
    """The candidate re-scoring on ``size`` unseen images chooses, in a scratch copy of ``folder``."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / folder.name
        if folder.is_dir():
            shutil.copytree(folder, scratch)
        (scratch / "rescore.json").unlink(missing_ok=True)
        found = rescore_best(ctx, trials, k, size, scratch, "acc")
    if found is None:
        raise SystemExit(f"error: nothing to re-decide in {folder.name}: fewer than 2 candidates or no image left")
    best, info = found
    scores = {r["trial"]: r["rescore_acc"] for r in info["rescored"]}
    return {"size": size, "images": info["rescore_images"], "chosen": best.number, "scores": scores}


def whole_splits(ctx: SearchContext, keeps: dict[int, list[int]], calib_images: int) -> dict[int, dict]:
    """Held-out and test accuracy of each trial's policy, BN recalibrated on ``calib_images``."""
    rt = ctx.base.runtime
    builder = NetworkBuilder(ctx.base.model, ctx.graph, ctx.base.data, rt, BuildConfig(calib_images=calib_images))
    out = {}
    for number, keep in keeps.items():
        net = builder.build(np.asarray(keep))
        recalibrate_bn(net, builder.calib, rt.autocast)
        out[number] = {"heldout_acc": evaluate(net, ctx.base.data.heldout, rt),
                       "test_acc": evaluate(net, ctx.base.data.test, rt)}  # fmt: skip
        print(f"trial {number:>4}  held-out {out[number]['heldout_acc']:.2%}  test {out[number]['test_acc']:.2%}",
              flush=True)  # fmt: skip
    return out


def table(ctx: SearchContext, trials: list, decisions: list[dict], calib_images: int) -> list[dict]:
    """One row per candidate: its proxy, re-scoring and whole-split accuracies, the sizes that chose it."""
    by_number = {t.number: t for t in trials}
    scored = sorted({n for d in decisions for n in d["scores"]})  # the candidates and the reference
    keeps = {n: by_number[n].user_attrs["keep"] for n in scored}
    full = whole_splits(ctx, keeps, calib_images)
    for d in decisions:
        f = full[d["chosen"]]
        print(f"{d['images']} images choose trial {d['chosen']}: held-out {f['heldout_acc']:.2%} "
              f"test {f['test_acc']:.2%}")  # fmt: skip
    return [
        {"trial": n, "proxy_acc": by_number[n].user_attrs["accuracy"],
         **{f"rescore_{d['size']}": d["scores"].get(n) for d in decisions}, **full[n],
         "chosen_by": [d["size"] for d in decisions if d["chosen"] == n]}
        for n in sorted(full)
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--flops", type=float, default=0.5, help="the search's MACs target")
    ap.add_argument("--study", help="the finished search's study name (see its policy's metrics.study)")
    ap.add_argument("--runs", type=Path, default=Path("runs/bench"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000])
    ap.add_argument("--candidates", type=int, default=8, help="the search's --rescore")
    ap.add_argument("--proxy-size", type=int, default=ProxyConfig.size, help="the search's proxy size")
    ap.add_argument("--calib-images", type=int, default=2000, help="BN recalibration for the whole-split scores")
    ap.add_argument("--seed", type=int, default=0, help="the search's seed (its proxy's calibration images)")
    ap.add_argument("--precision", default="fp32", help="the scores' (the search's: auto, bf16 on an AMX CPU)")
    ap.add_argument("--tag", default="")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.model, a.sizes, a.proxy_size, a.calib_images, a.tag = "resnet20", [50, 100], 200, 100, "quick"
    elif not a.study:
        raise SystemExit("error: --study is required: name the search to re-decide (its policy's metrics.study)")
    t0 = time.time()
    rt = Runtime.create("auto", a.precision)
    proxy = replace(ProxyConfig(), size=a.proxy_size, seed=a.seed, **({"calib_images": 100} if a.quick else {}))
    settings = SearchSettings(model=a.model, data=data_spec(), checkpoint=str(base_checkpoint(a.model)),
                              target=a.flops, proxy=proxy, seed=a.seed, allow_train=False)  # fmt: skip
    ctx = build_context(settings, rt)
    runs = Path(tempfile.mkdtemp()) if a.quick else a.runs
    study_name = quick_study(ctx, runs) if a.quick else a.study
    study = optuna.load_study(study_name=study_name, storage=studies.open_storage(None, runs))
    trials = studies.completed(study)
    decisions = [redecide(ctx, trials, runs / study_name, a.candidates, n) for n in a.sizes]
    rows = table(ctx, trials, decisions, a.calib_images)
    best = max(rows, key=lambda r: r["heldout_acc"])["trial"]
    name = f"rescore_size-{a.model}" + (f"-{a.tag}" if a.tag else "")
    write_result(name, {"args": {**vars(a), "runs": str(runs)}, "study": study_name, "rows": rows,
                        "decisions": [{k: v for k, v in d.items() if k != "scores"} for d in decisions],
                        "best_on_heldout": best, "seconds": round(time.time() - t0, 1)})  # fmt: skip


if __name__ == "__main__":
    main()
