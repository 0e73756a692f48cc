"""Markdown tables of bench/results/*.json, one function per benchmark (printed to stdout);
bench/make_results_md.py puts them in docs/RESULTS.md's order."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "src"))
from amc.report import MEASURE_COLUMNS, markdown_table  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def cmd(r: dict) -> str:
    return f"`{r['command'].replace('python3 ', 'python ')}` (commit {r['commit']}, {r['when']})"


def per_episode_stages(row: dict) -> dict[str, float]:
    """Seconds per episode in each stage (a stage's whole time over the episodes; "other" is the
    agent, environment, study and re-scoring). Results written before the split into
    ``seconds_per_evaluation`` averaged the stages per evaluation: converted here."""
    b = dict(row["breakdown_seconds_per_episode"])
    if "seconds_per_evaluation" in row:
        return b
    scale = row["unique_policies_evaluated"] / row["episodes"]
    stages = {k: v * scale for k, v in b.items() if not k.startswith("other")}
    return stages | {"other": row["seconds_per_episode"] - sum(stages.values())}


SPEED_COLUMNS = [
    ("model", "model", ""),
    ("method", "method", ""),
    ("precision", "precision", ""),
    ("episodes", "episodes", ""),
    ("seed", "seed", ""),
    ("minutes_cell", "minutes", ""),
    ("scan_seconds", "scan s", ".0f"),
    ("episodes_per_minute", "ep/min", ".1f"),
    ("seconds_per_episode", "s/episode", ".3f"),
    ("t_prune", "prune s", ".3f"),
    ("t_reconstruct", "reconstruct s", ".4f"),
    ("t_recalibrate", "BN recal s", ".3f"),
    ("t_forward", "forward s", ".3f"),
    ("t_other", "other s", ".3f"),
    ("episode_over_forward_ratio", "episode / forward", ".2f"),
    ("share_outside_forward", "outside forward", ".0%"),
    ("peak_rss_gib", "peak RSS GiB", ".2f"),
    ("best_heldout_proxy_acc", "best held-out proxy", ".2%"),
]


# search_speed-NAME.json results, in the order RESULTS.md lists them
SEARCH_SPEED_RUNS = """
    resnet56 mobilenetv2 resnet56-baselines mobilenetv2-optuna precision r56-f05-default-seeds mnv2-f05-localwarm
    r56-f05-lw-p500 mnv2-f05-lw-p500 r56-f03-lw-p500 r56-f05-default2-seeds mnv2-f05-default2-seeds
    r56-f05-optuna-seeds r56-f05-random-seeds mnv2-f05-optuna-seeds mnv2-f05-random-seeds vgg19-f05-default2
    r18-f05-default2 mnv2-f05-loss-s0 r56-f05-loss-s0 mnv2-f05-loss-seeds r56-f05-loss-seeds r18-f05-tpref
    vgg19-f05-loss r56-f05-rloss-s0 r56-f05-trainscan mnv2-f05-trainscan-s0 mnv2-f05-trainscan-seeds
    mnv2-f05-rloss-s0 vgg19-f05-trainscan r18-f05-trainscan r18-f05-tpdefault r18-f05-race1000 vgg19-f05-race1000
    r18-f05-gl1 r56-f05-gl1 r56-f05-gl1-tpe-s0 mnv2-f05-gl1-s0 mnv2-f05-gl1-s12 mnv2-f03-gl1-s0
    mnv2-f03-gl1-tpe-s0 vgg19-f05-gl1 r56-f03-gl1-s0 mnv2-f03-gl1-polish40-s0 mnv2-f03-gl1-bounded-s0
    r56-f03-gl1-bounded-s0 mnv2-f03-gl1-uwarm-s0 mnv2-f03-gl1-bounded-uwarm-s0 mnv2-f03-gl1-tpewarm-s0
    mnv2-f03-gl1-noref-tpewarm-s0 r56-f03-gl1-tpewarm-s0 r56-f03-gl1-tpewarm-s12 r56-f05-gl1-samplers
    r56-f05-gl1-tpewarm-s0 mnv2-f05-gl1-tpewarm-s0 mnv2-f05-gl1-samplers mnv2-f05-gl1-tpewarm-s12
    mnv2-f03-gl1-tpewarm-s12 r56-f05-gl1-tpewarm-s12 r18-vgg19-f05-gl1-tpewarm-s0 f03-gl1-tpe-s12 f03-gl1-random
    mnv2-f05-gl1-tpe mnv2-f05-gl1-random f07-gl1-s0 f03-gl1-tpeevery2-s0 f07-gl1-s12 f07-gl1-random
    r56-f05-trainscan-xeon r56-f03-trainscan-s0
    r56-f07-trainscan-s0 mnv2-f03-trainscan-s0 mnv2-f07-trainscan-s0
""".split()


def search_speed() -> None:
    rows = []
    for name in (f"search_speed-{n}" for n in SEARCH_SPEED_RUNS):
        r = load(name)
        if r is None:
            continue
        print(f"\n{cmd(r)}\n")
        for row in r["rows"]:
            rows.append(row)
            stages = per_episode_stages(row)
            row |= {f"t_{k.split()[0]}": v for k, v in stages.items()}
            model_seconds = stages.get("recalibrate", 0.0) + stages.get("forward", 0.0)
            row["episode_over_forward_ratio"] = row["seconds_per_episode"] / max(model_seconds, 1e-9)
            row["share_outside_forward"] = 1 - model_seconds / row["seconds_per_episode"]
            resumed = row.get("episodes_before_resume", 0)  # then the minutes cover this process only
            row["minutes_cell"] = f"{row['minutes']:.2f}" + (f" (resumed at {resumed})" if resumed else "")
        print(markdown_table(r["rows"], SPEED_COLUMNS))
        for row in r["rows"]:  # what the measurement cannot say itself (added by hand, with the reason)
            if row.get("note"):
                print(f"\n{row['model']} {row['method']} seed {row.get('seed', 0)}: {row['note']}")


def quality(model: str) -> None:
    r = load(f"policy_quality-{model}")
    if r is None:
        return
    print(
        f"\n**{model}** at {r['args']['flops']:g} of the MACs (base: held-out {r['base']['heldout_acc']:.2%}, "
        f"test {r['base']['test_acc']:.2%}, "
        f"latency b1 {r['base']['latency_b1_ms']:.2f} ms, b64 {r['base']['latency_b64_ms']:.1f} ms; "
        f"{r['precision']}; fine-tuning {r['args']['finetune_epochs']} epoch). {cmd(r)}\n"
        + (f"\nNote: {r['note']}.\n" if r.get("note") else "")
    )
    print(
        markdown_table(
            r["rows"],
            [
                ("method", "method", ""),
                *MEASURE_COLUMNS,
                ("speedup_b1", "speed-up b1", ".2f"),
                ("speedup_b64", "speed-up b64", ".2f"),
            ],
        )
    )
    seeded = [o for o in r.get("over_seeds", []) if o["seeds"] > 1]  # rows NAME@sK of 2+ seeds K, per NAME
    if seeded:
        print("\nOver seeds (mean ± standard deviation):\n")
        rows = [{"method": o["method"], "seeds": o["seeds"],
                 **{k: f"{o[k]:.2%} ± {o[k + '_std']:.2%}" for k in ("heldout_acc", "test_acc") if k in o}}
                for o in seeded]  # fmt: skip
        print(markdown_table(rows, [("method", "method", ""), ("seeds", "seeds", ""),
                                    ("heldout_acc", "held-out", ""), ("test_acc", "test", "")]))  # fmt: skip


def engine(model: str) -> None:
    r = load(f"engine_baselines-{model}")
    if r is None:
        return
    print(f"\n{cmd(r)}\n")
    print(
        markdown_table(
            r["rows"],
            [
                ("policy", "policy", ""),
                ("bn_recalibration", "BN recal images", ""),
                ("reconstruction", "reconstruction", ""),
                ("macs_ratio", "MACs", ".3f"),
                ("heldout_acc", "held-out", ".2%"),
                ("test_acc", "test", ".2%"),
            ],
        )
    )


def fidelity(model: str) -> None:
    r = load(f"proxy_fidelity-{model}")
    if r is None:
        return
    p = r["precision_ranking"]
    print(
        f"\n{cmd(r)}\n\nbf16 vs fp32 proxy ranking of {len(p['scores']['fp32'])} policies: "
        f"Spearman **{p['spearman_bf16_vs_fp32']:.3f}**.\n"
    )
    print(
        markdown_table(
            r["rows"],
            [
                ("proxy", "proxy setting", ""),
                ("seconds_per_policy", "s/policy", ".2f"),
                ("spearman_vs_finetuned_test", "Spearman vs fine-tuned test", ".3f"),
                ("spearman_vs_finetuned_heldout", "Spearman vs fine-tuned held-out", ".3f"),
            ],
        )
    )


def latency(model: str) -> None:
    r = load(f"latency-{model}")
    if r is None:
        return
    print(f"\n{cmd(r)} (idle machine)\n")
    print(
        markdown_table(
            r["rows"],
            [
                ("precision", "precision", ""),
                ("network", "network", ""),
                ("macs_ratio", "MACs", ".3f"),
                ("latency_b1_ms", "b1 ms", ".2f"),
                ("speedup_b1", "speed-up b1", ".2f"),
                ("latency_b64_ms", "b64 ms", ".1f"),
                ("speedup_b64", "speed-up b64", ".2f"),
            ],
        )
    )


def latency_budgets() -> None:
    """Issue 13's targets: one table per (model, runtime, batch, searcher) latency_budget run with
    DDPG or uniform (the latest run, ``-ddpg2`` over ``-ddpg``, where both exist)."""
    latest: dict[str, Path] = {}
    paths = sorted(RESULTS.glob("latency_budget-*-ddpg*.json")) + sorted(RESULTS.glob("latency_budget-*-uniform.json"))
    for path in paths:  # -ddpg sorts before -ddpg2
        latest[path.stem.rstrip("0123456789")] = path
    for key in sorted(latest):  # each model, runtime and batch: DDPG, then uniform
        r = json.loads(latest[key].read_text())
        v = r.get("verdict", {})
        print(f"\n{cmd(r)}; unpruned {r['base_ms']:.2f} ms")
        if r.get("flops_rows_from"):
            print(f"\nThe MACs-budget rows are those of the `-{r['flops_rows_from']}` run (not searched again).")
        for x in r.get("refused", []):
            print(f"\n`--latency {x['target']:g}` refused: {x['refused']}")
        print()
        rows = [x | {"kind": f"--{x['budget']} {x['target']:g}"} for x in r["rows"]]
        print(
            markdown_table(
                rows,
                [
                    ("kind", "budget", ""),
                    ("round_to", "round to", ""),
                    ("macs_ratio", "MACs", ".3f"),
                    ("predicted_ratio", "predicted latency", ".3f"),
                    ("latency_ratio", "measured latency", ".3f"),
                    ("heldout_acc", "held-out", ".2%"),
                    ("test_acc", "test", ".2%"),
                ],
            )
        )
        if v:
            splits = ("heldout_acc", "test_acc")
            acc = " and ".join(f"{s.split('_')[0]} {'yes' if v[f'{s}_at_least_best_flops'] else 'no'}" for s in splits)
            print(f"\nLatency kept (5% tolerance): {'yes' if v['latency_kept'] else 'no'}; accuracy at least the best"
                  f" MACs-budget policy as fast: {acc}.")  # fmt: skip


def memory_format() -> None:
    r = load("memory_format")
    if r is None:
        return
    m = r["machine"]
    print(f"\n{cmd(r)}, on a {m['cores']}-core {m['cpu']} (bf16 native: {r['bf16_native']})\n")
    cols = [("model", "model", ""), ("mode", "mode", ""), ("batch", "batch", ""), ("precision", "precision", ""),
            ("contiguous_s", "contiguous s", ".3f"), ("channels_last_s", "channels_last s", ".3f"),
            ("speedup", "speed-up", ".2f")]  # fmt: skip
    print(markdown_table(r["rows"], cols))


def recipes() -> None:
    """amc apply --recipe recover per model: base, pruned, after the recipe, gap and wall time."""
    rows = []
    for path in sorted(RESULTS.glob("recipe-*.json")):
        r = json.loads(path.read_text())
        if r["args"].get("quick"):
            continue
        s, last = r["summary"], r["rows"][-1]
        print(f"\n{cmd(r)}")
        near = next((p for p in r["rows"] if p["gap"] >= -0.005), None)  # the first epoch within 0.5 points
        rows.append({"model": r["args"]["model"], "macs": s["macs_ratio"], "params": s["params_ratio"],
                     "base": s["base_test_acc"], "pruned": s["pruned_test_acc"], "epochs": last["epoch"],
                     "after": last["test_acc"], "gap": last["gap"], "minutes": last["seconds"] / 60,
                     "near": f"{near['epoch']} ({near['seconds'] / 60:.0f} min)" if near else "-"})  # fmt: skip
    if rows:
        cols = [("model", "model", ""), ("macs", "MACs", ".3f"), ("params", "params", ".3f"),
                ("base", "base test", ".2%"), ("pruned", "pruned (BN recal.)", ".2%"), ("epochs", "epochs", ""),
                ("after", "after the recipe", ".2%"), ("gap", "gap to base", "+.2%"),
                ("minutes", "fine-tuning min", ".0f"), ("near", "first epoch within 0.5 points", "")]  # fmt: skip
        print("\n" + markdown_table(rows, cols))


def rescore_sizes() -> None:
    """bench/rescore_size.py: a finished search's candidates re-scored with each image count, beside
    their whole held-out and test accuracy, and which one each count chooses."""
    for path in sorted(RESULTS.glob("rescore_size-*.json")):
        r = json.loads(path.read_text())
        if r["args"].get("quick"):
            continue
        sizes = [d["size"] for d in r["decisions"]]
        print(f"\n{cmd(r)}\n")
        rows = [{**row, "chosen": ", ".join(f"{n:,}" for n in row["chosen_by"]) or "-"} for row in r["rows"]]
        cols = [("trial", "trial", ""), ("proxy_acc", "search proxy", ".2%"),
                *((f"rescore_{n}", f"re-scored on {n:,}", ".2%") for n in sizes),
                ("heldout_acc", "whole held-out", ".2%"), ("test_acc", "test", ".2%"),
                ("chosen", "chosen by", "")]  # fmt: skip
        print(markdown_table(rows, cols))


def proxy_settings() -> None:
    """bench/proxy_settings.py: cheaper proxies ranking a search's own policies against the whole held-out split."""
    for path in sorted(RESULTS.glob("proxy_settings-*.json")):
        r = json.loads(path.read_text())
        if r["args"].get("quick"):
            continue
        a = r["args"]
        print(f"\n{cmd(r)}: {len(r['trials'])} policies of `{r['study']}` ({a['top']} best by its proxy,"
              f" {a['others']} drawn from the rest) against the whole held-out split, BN recalibrated on"
              f" {a['truth_calib']:,} images\n")  # fmt: skip
        cols = [("setting", "images:calibration", ""), ("seconds_per_policy", "s/policy", ".3f"),
                ("spearman_all", "Spearman, all", ".3f"), ("spearman_top", f"Spearman, best {a['top']}", ".3f"),
                ("regret_top", "regret of its first", ".2%")]  # fmt: skip
        if "spearman_all_by_loss" in r["rows"][0]:  # ranked by the proxy's cross-entropy too
            cols += [("spearman_all_by_loss", "by cross-entropy: all", ".3f"),
                     ("spearman_top_by_loss", f"best {a['top']}", ".3f"),
                     ("regret_top_by_loss", "regret", ".2%")]  # fmt: skip
        print(markdown_table(r["rows"], cols))


def sensitivity_metrics() -> None:
    """bench/sensitivity_metric.py: the layer-wise policy from each scan (proxy size x accuracy / loss)."""
    for path in sorted(RESULTS.glob("sensitivity_metric-*.json")):
        r = json.loads(path.read_text())
        if r["args"].get("quick"):
            continue
        print(f"\n{cmd(r)}: BN recalibrated on {r['args']['calib_images']:,} images, no fine-tuning\n")
        cols = [("model", "model", ""), ("target", "MACs target", ".1f"), ("proxy_size", "scan images", ""),
                ("metric", "cost of a cut", ""), ("macs_ratio", "MACs", ".3f"), ("heldout_acc", "held-out", ".2%"),
                ("test_acc", "test", ".2%")]  # fmt: skip
        if "seed" in r["rows"][0]:  # scans of several image draws, on held-out or training images
            cols[3:3] = [("scan_images", "scanned on", ""), ("seed", "draw (search seed)", "")]
        rows = sorted(r["rows"], key=lambda x: (x["target"], x.get("scan_images", ""), x["proxy_size"], x["metric"],
                                                x.get("seed", 0)))  # fmt: skip
        print(markdown_table(rows, cols))


def heldout_agreement() -> None:
    """bench/heldout_agreement.py: do held-out and test order the measured policies alike?"""
    r = load("heldout_agreement")
    if r is None:
        return
    print(f"\n{cmd(r)}: every policy scored without fine-tuning in the policy-quality rows above, each once;"
          f" near pairs: held-out accuracies less than {r['args']['near']:.0%} apart\n")  # fmt: skip
    cols = [("model", "model", ""), ("flops", "MACs", ".1f"), ("policies", "policies", ""),
            ("spearman_all", "Spearman, all", ".2f"), ("spearman_top", "Spearman, best 10", ".2f"),
            ("heldout_spread_top", "best 10: held-out spread", ".1%"), ("gap_min_top", "held-out - test, min", ".1%"),
            ("gap_max_top", "max", ".1%"), ("best_heldout_test_rank", "best held-out's rank on test", ""),
            ("near_pairs", "near pairs", ""), ("near_pairs_same_order", "test orders them alike", ".0%")]  # fmt: skip
    print(markdown_table(r["rows"], cols))


def allocator() -> None:
    r = load("allocator")
    if r is None:
        return
    print(f"\n{cmd(r)}: the same {r['args']['policies']} random policies scored by the default proxy in fresh"
          " processes; system: glibc's defaults (`AMC_MALLOC=system`); amc: freed memory kept\n")  # fmt: skip
    cols = [("model", "model", ""), ("allocator", "allocator", ""), ("seconds_per_policy", "s/policy", ".3f"),
            ("user_seconds", "user CPU s", ".1f"), ("system_seconds", "system CPU s", ".1f"),
            ("peak_rss_gib", "peak RSS GiB", ".2f")]  # fmt: skip
    print(markdown_table(r["rows"], cols))


def experiments() -> None:
    """Link every experiment folder under docs/experiments/ (each README holds its command and table)."""
    root = Path(__file__).parent.parent / "docs" / "experiments"
    for readme in sorted(root.glob("*/README.md")):
        title = readme.read_text().splitlines()[0].lstrip("# ")
        print(f"- [{title}](experiments/{readme.parent.name}/README.md)")
