"""Render docs/RESULTS.md from bench/results/*.json (no number typed by hand): the tables come from
bench/results_tables.py, in the order and with the prose below.

python bench/make_results_md.py > docs/RESULTS.md
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_tables import (  # noqa: E402
    RESULTS,
    allocator,
    engine,
    experiments,
    fidelity,
    heldout_agreement,
    latency,
    latency_budgets,
    memory_format,
    proxy_settings,
    quality,
    recipes,
    rescore_sizes,
    search_speed,
    sensitivity_metrics,
)

DOCS = Path(__file__).parent.parent / "docs"


def speed_sections() -> None:
    print("### Search speed\n")
    print(
        "Stage columns are seconds per episode: each stage's whole time (the episodes, the sensitivity scan and"
        " the reference policies are all proxy evaluations) over the episodes; *other* is the agent, environment,"
        " study and the final re-scoring. Results older than the `seconds_per_evaluation` field averaged the"
        " stages per evaluation; they are converted (times evaluations / episodes). *scan s*: the sensitivity scan"
        " (the reference's), run and timed before the search since session 18 and outside its minutes; rows without"
        " it count a proxy-image scan in the stages and a training-image scan (its own evaluator) in *other*.\n"
    )
    search_speed()
    print("\n### Memory format (inference batch and training step, median seconds)")
    memory_format()
    print("\n### Pruning engine baselines (no fine-tuning)\n")
    engine("resnet56")


def earlier_defaults() -> None:
    print("\n### Policy quality and real speed-up\n")
    quality("resnet56")
    print(
        "\nThe ResNet-56 sensitivity row above predates two fixes of that policy (2ed501b: its greedy stalled on"
        " small units; 422d149: every heuristic is topped up to its budget). The current code's sensitivity policy,"
        " re-measured without fine-tuning beside DDPG's variants (docs/experiments/resnet56-reference-0.5, -0.3):"
    )
    quality("resnet56-f05-rescore")
    quality("resnet56-f05-reference-400")
    print("\nThe default search on ResNet-56 at 0.5 over three seeds (seed 0 is the run above):")
    for name in ("resnet56-f05-default-seeds", "resnet56-f03-rescore", "resnet56-f03-reference-400", "mobilenetv2"):
        quality(name)
    print(
        "\nMobileNetV2's DDPG with the reference preset (spread projection around the best heuristic, 8 best"
        " re-scored) and with TD3's twin critics, beside the same baselines, no fine-tuning, fp32"
        " (docs/experiments/mobilenetv2-reference-0.5):"
    )
    quality("mobilenetv2-f05-reference")
    print(
        "\nThe current default (issue 12, docs/experiments/default-local-warmup): the warm-up explores around the"
        " reference (noise 0.5, decaying to 0.1 at the last episode) and the proxy scores 500 held-out images"
        " recalibrated on 250. Seed 0, then seeds 0-2 (no fine-tuning, fp32); MobileNetV2's pilot with the"
        " 1,000-image proxy first:"
    )
    for name in (
        "mobilenetv2-f05-localwarm",
        "resnet56-f05-lw-p500",
        "mobilenetv2-f05-lw-p500",
        "resnet56-f03-lw-p500",
        "resnet56-f05-default2-seeds",
        "mobilenetv2-f05-default2-seeds",
    ):
        quality(name)


# Issue 12's tables, then each later default's, in the order docs/RESULTS.md gives them: (prose, the
# policy_quality result names under it). A session's runs are registered here.
DEFAULT_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "\nThe baselines under the same 500-image proxy, and every method side by side (issue 12's table: "
        "three seeds of each learned method on ResNet-56 and MobileNetV2, one on VGG-19 and ResNet-18; the "
        "`f05-final` tables fine-tune every policy for the same 0.3 epoch):",
        (
            "resnet56-f05-optuna-seeds",
            "resnet56-f05-random-seeds",
            "resnet56-f05-final",
            "mobilenetv2-f05-final",
            "vgg19-f05-default2",
            "resnet18-f05-default2",
        ),
    ),
    (
        "\nThe default since: the sensitivity reference spends its budget by the proxy's cross-entropy; DDPG"
        " measured again (no fine-tuning, fp32), seed 0 beside its reference, then the seeds; ResNet-18 starting"
        " from Torch-Pruning's L1 pruners as well; then ResNet-56 and MobileNetV2 with the"
        " reference scanned on 2,000 training images:",
        (
            "mobilenetv2-f05-loss-s0",
            "resnet56-f05-loss-s0",
            "mobilenetv2-f05-loss-seeds",
            "resnet56-f05-loss-seeds",
            "resnet56-f05-loss-s01",
            "resnet18-f05-tpref",
            "vgg19-f05-loss",
            "resnet56-f05-rloss-s0",
            "mobilenetv2-f05-rloss-s0",
            "resnet56-f05-trainscan",
            "mobilenetv2-f05-trainscan-s0",
            "mobilenetv2-f05-trainscan-seeds",
        ),
    ),
    (
        "\nThe default since session 18 (the reference scanned on 2,000 training images), on the AMX Xeon in bf16:"
        " VGG-19 and ResNet-18 at 0.5 beside the baselines; ResNet-56 and MobileNetV2 at 0.3 and 0.7 (seed 0, with"
        " Optuna TPE's seed 0); ResNet-18 again with Torch-Pruning's L1 pruners among the references (tpdefault, the"
        " default since), and with racing (`--confirm-images 1000`); then the policies at 0.5 fine-tuned for the"
        " same 0.3 epoch:",
        (
            "vgg19-f05-trainscan",
            "resnet18-f05-trainscan",
            "resnet18-f05-tpdefault",
            "resnet18-f05-race1000",
            "vgg19-f05-race1000",
            "resnet56-f03-trainscan-s0",
            "resnet56-f07-trainscan-s0",
            "mobilenetv2-f03-trainscan-s0",
            "mobilenetv2-f07-trainscan-s0",
            "mobilenetv2-f05-trainscan-ft03",
            "resnet56-f05-trainscan-ft03",
        ),
    ),
    (
        "\nThe default since session 19: the group-L1 channel criterion (every method keeps a unit's channels by the L1"
        " norm of every coupled weight; docs/experiments/group-l1-criterion), DDPG beside the baselines cut the same"
        " way, and Optuna TPE's seed 0 where it had won or come close; then ResNet-56's and MobileNetV2's policies"
        " at 0.5 fine-tuned for 0.3 epoch, and MobileNetV2 at 0.3 with the last 40 episodes polished"
        " (`--polish 40`; off by default):",
        (
            "resnet18-f05-gl1",
            "resnet56-f05-gl1",
            "resnet56-f05-gl1-tpe-s0",
            "mobilenetv2-f05-gl1-s0",
            "mobilenetv2-f05-gl1-seeds",
            "mobilenetv2-f03-gl1-s0",
            "mobilenetv2-f03-gl1-tpe-s0",
            "resnet56-f03-gl1-s0",
            "vgg19-f05-gl1",
            "resnet56-f05-gl1-ft03",
            "mobilenetv2-f05-gl1-ft03",
            "mobilenetv2-f03-gl1-polish40-s0",
        ),
    ),
    (
        "\nSession 21: two DDPG options measured at 0.3 of the MACs (seed 0): the bounded projection"
        " (`--projection bounded`: action -1 at the budget's bound instead of no pruning) and warm-ups that explore"
        " otherwise (`--warmup-noise uniform`, AMC's, and `--warmup-noise tpe`: Optuna's TPE proposes the warm-up"
        " episodes from the episodes scored so far; `noref`: without the reference heuristics, TPE's own action"
        " space); then the TPE warm-up at 0.5:",
        (
            "mobilenetv2-f03-gl1-bounded-s0",
            "resnet56-f03-gl1-bounded-s0",
            "resnet56-f05-gl1-tpewarm-samplers",
            "mobilenetv2-f05-gl1-tpewarm-s0",
            "resnet56-f03-gl1-tpewarm-seeds",
            "mobilenetv2-f05-gl1-tpewarm-seeds",
            "mobilenetv2-f03-gl1-tpewarm-seeds",
            "resnet56-f05-gl1-tpewarm-seeds",
            "resnet18-f05-gl1-tpewarm",
            "vgg19-f05-gl1-tpewarm",
        ),
    ),
    (
        "\nSession 22: the TPE warm-up is the default; DDPG against Optuna's TPE sampler over 3 seeds at 0.3"
        " (ResNet-56, MobileNetV2) and 0.5 (MobileNetV2), every method at 0.7 (seed 0), `--tpe-every 2` at 0.3"
        " (seed 0), and the default's policies at 0.5 after 0.3 epoch of fine-tuning:",
        (
            "resnet56-f03-gl1-samplers",
            "mobilenetv2-f03-gl1-samplers",
            "mobilenetv2-f05-gl1-samplers",
            "resnet56-f07-gl1-s0",
            "mobilenetv2-f07-gl1-s0",
            "mobilenetv2-f03-gl1-tpeevery2-s0",
            "resnet56-f03-gl1-tpeevery2-s0",
            "resnet56-f05-gl1-tpewarm-ft03",
            "mobilenetv2-f05-gl1-tpewarm-ft03",
        ),
    ),
    (
        "\nSession 23: the learned methods' three seeds at 0.7 (ResNet-56, MobileNetV2: the default DDPG and"
        " Optuna TPE) and random search's three seeds at 0.3 and at 0.5 (MobileNetV2), beside the sensitivity policy"
        " and Torch-Pruning's global and local Taylor pruners; the Taylor pruners on ResNet-56 at 0.5; random search"
        " at 0.7:",
        (
            "resnet56-f07-gl1-seeds",
            "mobilenetv2-f07-gl1-seeds",
            "resnet56-f03-gl1-random",
            "mobilenetv2-f03-gl1-random",
            "mobilenetv2-f05-gl1-random",
            "resnet56-f05-gl1-taylor",
            "resnet56-f07-gl1-random",
            "mobilenetv2-f07-gl1-random",
        ),
    ),
)


def policy_tables(entries: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    """Each entry's prose and policy_quality tables; an entry none of whose results exist yet is left out."""
    for prose, names in entries:
        if not any((RESULTS / f"policy_quality-{name}.json").is_file() for name in names):
            continue
        print(prose)
        for name in names:
            quality(name)


def current_default() -> None:
    policy_tables(DEFAULT_TABLES[:1])
    print("\n### Which sensitivity scan (`bench/sensitivity_metric.py`)")
    sensitivity_metrics()
    policy_tables(DEFAULT_TABLES[1:])
    print("\n### Does the held-out split rank policies as the test split does? (`bench/heldout_agreement.py`)")
    heldout_agreement()


def shipping_sections() -> None:
    print("\n### Measured latency (real speed-up)\n")
    latency("resnet56")
    print("\nThe policies of `docs/experiments/resnet56-compare`, re-measured on an idle machine:")
    latency("resnet56-compare")
    print("\n### Latency budgets (DDPG, `--round-to auto`, no fine-tuning)")
    latency_budgets()
    print("\n### Fine-tuning that recovers the accuracy (`amc apply --recipe recover`)")
    recipes()


def proxy_sections() -> None:
    print("\n### How many images re-scoring needs (`bench/rescore_size.py`)")
    rescore_sizes()
    print("\n### Cheaper proxies on a search's own policies (`bench/proxy_settings.py`)")
    proxy_settings()
    print("\n### glibc's allocator defaults vs amc's (`bench/allocator.py`)")
    allocator()
    print("\n### Proxy fidelity\n")
    fidelity("resnet56")
    print("\n### The comparison experiments (figures, tables and commands in each folder)\n")
    experiments()


def main() -> None:
    head, tail = DOCS / "RESULTS.head.md", DOCS / "RESULTS.tail.md"
    if head.exists():
        print(head.read_text())
    speed_sections()
    earlier_defaults()
    current_default()
    shipping_sections()
    proxy_sections()
    if tail.exists():
        print(tail.read_text())


if __name__ == "__main__":
    main()
