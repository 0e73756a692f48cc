"""Which cheaper proxy still ranks a search's own policies as the whole held-out split does.

bench/proxy_fidelity.py ranks random policies of very different quality; a search has to tell
apart the near-ties at its top. This takes a finished search's policies (its --top best by the
proxy it ran with, and --others drawn from the rest), scores each on the whole held-out split with
BatchNorm recalibrated on 2,000 training images (the truth, as bench/policy_quality.py measures),
and then with each proxy setting in --settings (SIZE:CALIB = SIZE held-out images after
recalibrating on CALIB training images; SIZE:batch = each scored batch normalised by its own
statistics, no recalibration pass). Per setting: seconds per policy, Spearman with the truth over
all policies and over the top ones, and the regret (how far below the best of the top the policy
the setting ranks first is); the same for the proxy's mean cross-entropy (``--reward loss``), from
the same pass.

    python bench/proxy_settings.py --model resnet56 --flops 0.5 \
        --study bench-resnet56-ddpg-fp32-400-f0.5-s1-f05-default-s1
    python bench/proxy_settings.py --quick     # CI: a 6-episode random search on resnet20
Writes bench/results/proxy_settings-MODEL[-TAG].json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).parent))
from _common import base_checkpoint, data_spec, write_result  # noqa: E402
from rescore_size import quick_study  # noqa: E402

from amc.proxy import ProxyConfig, ProxyEvaluator  # noqa: E402
from amc.pruning.build import BuildConfig, NetworkBuilder  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search import study as studies  # noqa: E402
from amc.search.context import SearchContext, SearchSettings, build_context  # noqa: E402
from amc.search.rescore import reference_keep  # noqa: E402
from amc.training import evaluate  # noqa: E402


def parse_setting(text: str, seed: int) -> ProxyConfig:
    """``SIZE:CALIB`` or ``SIZE:batch`` -> the proxy it names."""
    try:
        size, calib = text.split(":")
        if calib == "batch":
            return ProxyConfig(size=int(size), bn="batch", seed=seed)
        return ProxyConfig(size=int(size), calib_images=int(calib), seed=seed)
    except ValueError:
        raise SystemExit(f"error: --settings {text!r}: write SIZE:CALIB or SIZE:batch, e.g. 500:batch") from None


def pick(trials: list, top: int, others: int, seed: int) -> list:
    """The ``top`` best distinct policies by their proxy accuracy and ``others`` drawn from the rest."""
    distinct: dict[tuple[int, ...], optuna.trial.FrozenTrial] = {}
    for t in sorted(trials, key=lambda t: -t.user_attrs["accuracy"]):
        distinct.setdefault(tuple(t.user_attrs["keep"]), t)
    ranked = list(distinct.values())
    rest = ranked[top:]
    drawn = np.random.default_rng(seed).choice(len(rest), size=min(others, len(rest)), replace=False)
    return ranked[:top] + [rest[i] for i in sorted(drawn)]


def reference_trials(trials: list, folder: Path, chosen: list) -> list:
    """The first trial of each heuristic the search chose its reference from, not already ``chosen``."""
    have = {tuple(t.user_attrs["keep"]) for t in chosen}
    wanted = [tuple(k) for k in reference_keep(folder) if tuple(k) not in have]
    first = {}
    for t in sorted(trials, key=lambda t: t.number):
        first.setdefault(tuple(t.user_attrs["keep"]), t)
    return [first[k] for k in wanted if k in first]


def truth(ctx: SearchContext, keeps: list[np.ndarray], calib: int) -> list[float]:
    """Whole held-out accuracy of each policy, BatchNorm recalibrated on ``calib`` training images."""
    rt = ctx.base.runtime
    builder = NetworkBuilder(ctx.base.model, ctx.graph, ctx.base.data, rt, BuildConfig(calib_images=calib))
    out = []
    for i, keep in enumerate(keeps):
        out.append(evaluate(builder.build(keep), ctx.base.data.heldout, rt))
        print(f"policy {i + 1}/{len(keeps)}: whole held-out {out[-1]:.2%}", flush=True)
    return out


def score(ctx: SearchContext, cfg: ProxyConfig, keeps: list[np.ndarray], real: list[float], top: int) -> dict:
    """One setting's scores of the policies and how they rank against ``real``."""
    ev = ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime, cfg)
    ev.evaluate(keeps[-1])  # warm-up (first-call allocations): the last policy is not timed
    start = time.perf_counter()
    results = [ev.evaluate(k) for k in keeps[:-1]]
    seconds = (time.perf_counter() - start) / max(len(keeps) - 1, 1)
    results.append(ev.evaluate(keeps[-1]))
    acc = [r.accuracy for r in results]
    loss = [r.loss for r in results]
    return {
        "setting": f"{cfg.size}:{'batch' if cfg.bn == 'batch' else cfg.calib_images}",
        "seconds_per_policy": round(seconds, 3),
        **ranking(acc, real, top),
        **{f"{k}_by_loss": v for k, v in ranking([-x for x in loss], real, top).items()},
        "accuracy": acc,
        "loss": loss,
    }


def ranking(score: list[float], real: list[float], top: int) -> dict:
    """How ``score`` (higher is better) ranks the policies against ``real``: Spearman over all and
    over the ``top`` first, and the regret of the one it ranks first among those."""
    head = min(top, len(score))
    chosen = int(np.argmax(score[:head]))
    return {
        "spearman_all": float(spearmanr(score, real).statistic),
        "spearman_top": float(spearmanr(score[:head], real[:head]).statistic) if head > 2 else None,
        "regret_top": round(max(real[:head]) - real[chosen], 5),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--flops", type=float, default=0.5, help="the search's MACs target")
    ap.add_argument("--study", help="the finished search's study name (see its policy's metrics.study)")
    ap.add_argument("--runs", type=Path, default=Path("runs/bench"))
    ap.add_argument("--top", type=int, default=20, help="the search's best policies (by its proxy) scored")
    ap.add_argument("--others", type=int, default=20, help="further policies drawn from the rest of the search")
    ap.add_argument("--settings", nargs="+", default=["1000:500", "1000:250", "500:250", "1000:batch", "500:batch"])
    ap.add_argument("--truth-calib", type=int, default=2000, help="BN recalibration images for the truth")
    ap.add_argument("--seed", type=int, default=0, help="the proxies' image draws")
    ap.add_argument(
        "--references",
        action="store_true",
        help="also the heuristics a DDPG search chose its reference from (its reference.json)",
    )
    ap.add_argument("--precision", default="fp32", help="the proxies' and the truth's (a search's: auto)")
    ap.add_argument("--tag", default="")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.model, a.top, a.others, a.truth_calib, a.tag = "resnet20", 3, 2, 100, "quick"
        a.settings = ["200:100", "200:batch"]
    elif not a.study:
        raise SystemExit("error: --study is required: name the search whose policies are ranked")
    configs = [parse_setting(s, a.seed) for s in a.settings]
    t0 = time.time()
    rt = Runtime.create("auto", a.precision)
    proxy = ProxyConfig(size=200, calib_images=100) if a.quick else ProxyConfig()  # the search's, for the quick study
    settings = SearchSettings(model=a.model, data=data_spec(), checkpoint=str(base_checkpoint(a.model)),
                              target=a.flops, proxy=proxy, seed=a.seed, allow_train=False)  # fmt: skip
    ctx = build_context(settings, rt)
    runs = Path(tempfile.mkdtemp()) if a.quick else a.runs
    study_name = quick_study(ctx, runs) if a.quick else a.study
    study = optuna.load_study(study_name=study_name, storage=studies.open_storage(None, runs))
    chosen = pick(studies.completed(study), a.top, a.others, a.seed)
    if a.references:
        chosen += reference_trials(studies.completed(study), runs / study_name, chosen)
    keeps = [np.asarray(t.user_attrs["keep"]) for t in chosen]
    real = truth(ctx, keeps, a.truth_calib)
    rows = []
    for cfg in configs:
        rows.append(score(ctx, cfg, keeps, real, a.top))
        r = rows[-1]
        print(f"{r['setting']:<12} {r['seconds_per_policy']:6.3f} s/policy  Spearman all {r['spearman_all']:.3f}"
              f"  top {r['spearman_top']}  regret {r['regret_top']:.2%}  | by cross-entropy: all "
              f"{r['spearman_all_by_loss']:.3f} top {r['spearman_top_by_loss']} regret {r['regret_top_by_loss']:.2%}",
              flush=True)  # fmt: skip
    name = f"proxy_settings-{a.model}" + (f"-{a.tag}" if a.tag else "")
    write_result(name, {"args": {**vars(a), "runs": str(runs)}, "study": study_name,
                        "trials": [t.number for t in chosen], "truth_heldout": real, "rows": rows,
                        "seconds": round(time.time() - t0, 1)})  # fmt: skip


if __name__ == "__main__":
    main()
