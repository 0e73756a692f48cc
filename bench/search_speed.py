"""Benchmark 1 (search speed) and the quality half of the search targets.

Runs one search per (model, method, precision) exactly as `amc search` does, and reports
wall time, episodes per minute, the per-episode breakdown (pruning, reconstruction, BN
recalibration, forward passes, everything else = agent + environment), peak RSS, and the best
held-out proxy accuracy. Writes bench/results/search_speed[-quick].json.

    python bench/search_speed.py --models resnet56 mobilenetv2 --episodes 400 --warmup 100
    python bench/search_speed.py --quick            # CI: resnet20, 6 episodes
Needs AMC_DATA (an ImageFolder tree or cifar10) and AMC_CHECKPOINTS (the zoo).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, base_checkpoint, data_spec, write_result  # noqa: E402

from amc.proxy import ProxyConfig  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search import baselines  # noqa: E402
from amc.search import study as studies  # noqa: E402
from amc.search.context import SearchSettings, build_context  # noqa: E402
from amc.search.runner import SearchRun, run_search  # noqa: E402

RESULTS_POLICIES = RESULTS / "policies"
# the SearchRun settings a flag sets when given (otherwise the runner's defaults)
SEARCH_KEYS = ("projection", "demos", "reference", "rescore", "sigma", "warmup_noise", "sigma_final", "sigma_decay",
               "critics", "reward", "polish", "tpe_every")  # fmt: skip


def _episodes_done(study: str, runs_dir: Path) -> int:
    """Complete episodes a study already holds (0 for a new one)."""
    try:
        found = optuna.load_study(study_name=study, storage=studies.open_storage(None, runs_dir))
    except KeyError:
        return 0
    return len(studies.completed(found))


def one(
    model: str,
    method: str,
    precision: str,
    episodes: int,
    warmup: int,
    proxy: ProxyConfig,
    seed: int,
    tag: str = "",
    target: float = 0.5,
    search: dict | None = None,
    resume: bool = False,
) -> dict:
    rt = Runtime.create("auto", precision)
    settings = SearchSettings(
        model=model,
        data=data_spec(),
        checkpoint=str(base_checkpoint(model)),
        target=target,
        proxy=replace(proxy, seed=seed),
        seed=seed,
        allow_train=False,
    )
    t0 = time.time()
    ctx = build_context(settings, rt)
    setup = time.time() - t0
    # studies stay under runs/bench (reusable, not committed); the best policy is kept as a result
    # a tagged run (e.g. a short precision comparison) never overwrites the full run's policy
    suffix = f"-{tag}" if tag else ""
    out = RESULTS_POLICIES / f"{model}-{method}-{rt.precision}{suffix}.json"
    extra = search or {}
    # --resume: one study name per (model, method, precision, episodes, target, seed, tag), so a stopped
    # run continues; otherwise every run is a new study
    key = f"f{target:g}-s{seed}{suffix}" if resume else str(int(time.time()))
    run = SearchRun(
        method=method,
        episodes=episodes,
        warmup=warmup,
        runs_dir=Path("runs/bench"),
        out=out,
        study=f"bench-{model}-{method}-{rt.precision}-{episodes}-{key}",
        resume=resume,
        progress=sys.stderr.isatty(),
        **extra,
    )
    before = _episodes_done(run.study, run.runs_dir)
    scan = _scan_first(ctx, run)
    t1 = time.time()
    policy = run_search(ctx, run)
    wall = time.time() - t1
    row = {"model": model, "method": method, "seed": seed, "target": target, "search": extra, "scan_seconds": scan}
    return row | _measures(ctx, policy, episodes, warmup, rt.precision, setup, wall, before)


def _scan_first(ctx, run: SearchRun) -> float:
    """Seconds of the sensitivity scan when the search uses that policy (0 when none, a few when cached):
    run before the search, so its time is not counted as the agent's (a training-image scan has its own
    evaluator, outside the proxy's stage totals) and is reported once, apart from the per-episode figures."""
    if not (run.method == "sensitivity" or (run.method == "ddpg" and "sensitivity" in run.reference)):
        return 0.0
    t0 = time.time()
    baselines.sensitivity_scan(ctx, progress=sys.stderr.isatty(), metric=baselines.SCAN_METRIC)
    ctx.proxy.totals.clear()  # a scan on the proxy's own images: its evaluations are not the search's
    ctx.proxy.evaluations = 0
    return round(time.time() - t0, 1)


def _measures(ctx, policy, episodes: int, warmup: int, precision: str, setup: float, wall: float, before: int) -> dict:
    """What one finished search measured: its times per stage, the best policy's proxy scores and memory."""
    n = max(ctx.proxy.evaluations, 1)
    per_evaluation = {k: v / n for k, v in ctx.proxy.totals.items()}
    # per episode: each stage's whole time (episodes, sensitivity scan, references) over the episodes;
    # the rest is the agent, environment, study and the final re-scoring
    stages = {k: v / episodes for k, v in ctx.proxy.totals.items()}
    per_episode = wall / episodes
    stages["other (agent, env, study, re-scoring)"] = per_episode - sum(stages.values())  # the scan ran before
    forward = stages.get("forward", 0) + stages.get("recalibrate", 0)
    return {
        "precision": precision,
        "episodes": episodes,
        "warmup": warmup,
        "setup_seconds": round(setup, 2),
        "search_seconds": round(wall, 1),
        # a resumed search's minutes cover only the episodes this process ran: not a speed figure
        "episodes_before_resume": before,
        "minutes": round(wall / 60, 2),
        "episodes_per_minute": round(episodes / wall * 60, 1),
        "seconds_per_episode": round(per_episode, 3),
        "breakdown_seconds_per_episode": {k: round(v, 4) for k, v in stages.items()},
        "seconds_per_evaluation": {k: round(v, 4) for k, v in per_evaluation.items()},
        "episode_over_forward_ratio": round(per_episode / max(forward, 1e-9), 3),
        "share_outside_forward": round(1 - forward / per_episode, 3),
        "unique_policies_evaluated": ctx.proxy.evaluations,
        "best_heldout_proxy_acc": policy.metrics["heldout_proxy_acc"],
        **{k: policy.metrics[k] for k in ("heldout_rescore_acc", "rescore_images", "rescored") if k in policy.metrics},
        "base_heldout_proxy_acc": policy.metrics["base_heldout_proxy_acc"],
        "achieved_macs_ratio": policy.achieved["macs_ratio"],
        "sparsity": policy.sparsity,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet56", "mobilenetv2"])
    ap.add_argument("--methods", nargs="+", default=["ddpg"])
    ap.add_argument("--precisions", nargs="+", default=["auto"])
    ap.add_argument("--episodes", type=int, default=400)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--proxy-size", type=int, default=ProxyConfig.size)
    ap.add_argument("--calib-images", type=int, default=ProxyConfig.calib_images)
    ap.add_argument("--batch-size", type=int, default=ProxyConfig.batch_size)
    ap.add_argument("--criterion", default=ProxyConfig.criterion, help="channel criterion (l1, group-l1, ..., auto)")
    ap.add_argument("--proxy-bn", choices=["recalibrate", "batch"], default=ProxyConfig.bn)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--flops", type=float, default=0.5)
    ap.add_argument("--projection", default=None, help="spread, bounded or amc (default: the runner's)")
    ap.add_argument("--no-fill", action="store_true")
    ap.add_argument("--demos", nargs="*", default=None, help="heuristic policies replayed in DDPG's warm-up")
    ap.add_argument(
        "--reference",
        nargs="*",
        default=None,
        help="heuristics scored first; the best centres DDPG's actions (default: the runner's three; none: no names)",
    )
    ap.add_argument("--rescore", type=int, default=None, help="re-score the N best policies on unseen held-out images")
    ap.add_argument("--sigma", type=float, default=None, help="DDPG noise at the first learning episode")
    ap.add_argument("--warmup-noise", choices=["uniform", "sigma", "tpe"], default=None)
    ap.add_argument("--sigma-final", type=float, default=None)
    ap.add_argument("--tpe-every", type=int, default=None, help="DDPG: every N-th learning episode is TPE's proposal")
    ap.add_argument("--sigma-decay", type=lambda v: "none" if v == "none" else float(v), default=None,
                    help="noise decay per episode; none: decay to --sigma-final at the last episode")  # fmt: skip
    ap.add_argument("--reward", choices=["acc", "acc-flops", "loss"], help="episode reward (default: the runner's)")
    ap.add_argument("--critics", type=int, default=None, help="DDPG critics: 2 = TD3's twin critics")
    ap.add_argument("--polish", type=int, default=None, help="DDPG: the last N episodes swap channels around the best")
    ap.add_argument(
        "--scan-train",
        type=int,
        default=None,
        metavar="N",
        help="scan the sensitivity reference on N training images (draw 0); 0: the proxy's images (default 2,000)",
    )
    ap.add_argument(
        "--confirm-images",
        type=int,
        default=0,
        metavar="N",
        help="racing: N more held-out images for a policy whose first score reaches the best so far",
    )
    ap.add_argument("--resume", action="store_true", help="continue a stopped run with the same arguments")
    ap.add_argument("--quick", action="store_true", help="CI size: resnet20, 6 episodes, small proxy")
    ap.add_argument("--tag", default="", help="suffix of the result JSON's name")
    ap.add_argument(
        "--policy-tag", default="", help="suffix of the saved best policies (keeps the full runs' policies intact)"
    )
    a = ap.parse_args()
    if a.quick:
        a.models, a.episodes, a.warmup, a.proxy_size, a.calib_images = ["resnet20"], 6, 2, 200, 100
    return a


def search_settings(a: argparse.Namespace) -> dict:
    """The SearchRun settings the flags give (the runner's defaults for the rest)."""
    search: dict = {k: getattr(a, k) for k in SEARCH_KEYS if getattr(a, k) is not None}
    if a.no_fill:
        search["fill"] = False
    if search.get("sigma_decay") == "none":
        search["sigma_decay"] = None
    for k in ("demos", "reference"):  # --reference with no name: none (the default scores three)
        if k in search:
            search[k] = tuple(search[k])
    return search


def main() -> None:
    a = parse_args()
    proxy = ProxyConfig(size=a.proxy_size, calib_images=a.calib_images, batch_size=a.batch_size, bn=a.proxy_bn,
                        confirm=a.confirm_images, criterion=a.criterion)  # fmt: skip
    if a.scan_train is not None:  # an option of the library, not of a request: set for this process (studies record it)
        train = baselines.ScanImages("train", size=a.scan_train)
        baselines.SCAN_IMAGES = train if a.scan_train else baselines.ScanImages("proxy")
    search = search_settings(a)
    name = "search_speed" + ("-quick" if a.quick else "") + (f"-{a.tag}" if a.tag else "")
    earlier = earlier_rows(name) if a.resume else {}
    rows = []
    for model, method, precision, seed in itertools.product(a.models, a.methods, a.precisions, a.seeds):
        tag = a.policy_tag + (f"-s{seed}" if len(a.seeds) > 1 else "")
        kept = earlier.get((model, method, precision, seed))
        if kept is not None and kept.get("episodes") == a.episodes:  # its row is written: that seed finished
            rows.append(kept)
            print(f"{model:<12} {method:<8} seed {seed}: finished by an earlier run, its row kept", flush=True)
            continue
        r = one(model, method, precision, a.episodes, a.warmup, proxy, seed, tag, a.flops, search, a.resume)
        if r["episodes_before_resume"] >= a.episodes:  # finished by an earlier run: keep what that run measured
            r = earlier.get((model, method, r["precision"], seed), r)
        rows.append(r)
        print(
            f"{model:<12} {method:<8} {r['precision']:<5} {r['minutes']:6.2f} min  "
            f"{r['episodes_per_minute']:6.1f} ep/min  {r['seconds_per_episode']:.3f} s/ep  "
            f"outside forward {r['share_outside_forward']:.0%}  best {r['best_heldout_proxy_acc']:.2%}  "
            f"rss {r['peak_rss_gib']} GiB",
            flush=True,
        )
        write_result(name, {"args": vars(a), "rows": rows})  # after every search: partial results survive


def earlier_rows(name: str) -> dict[tuple, dict]:
    """The rows an earlier run of the same command wrote, by (model, method, precision, seed)."""
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text()).get("rows", [])
    return {(r["model"], r["method"], r["precision"], r["seed"]): r for r in rows}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
