"""Named bundles of settings: ``amc search --preset`` and ``amc apply --recipe``.

A preset or recipe only fills the request fields the user did not give (:mod:`amc.requests`
applies them before validation), so ``--preset reference --episodes 50`` is the reference
preset with 50 episodes.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DEFAULT_CRITERION",
    "PRESETS",
    "RECIPES",
    "DEFAULT_REFERENCE",
    "HEURISTIC_REFERENCE",
    "PROXY_FIELDS",
    "preset_run_settings",
]

# default: what measured best over ResNet-56 at 0.3 and 0.5 and MobileNetV2 at 0.5 of the MACs (docs/experiments/
# *-reference-*, *-local-warmup): the uniform, global and sensitivity policies and Torch-Pruning's global and local
# L1 pruners (since session 18: about a second each, and on ResNet-18 the best baseline) are scored first as
# episodes of the search; the best centres the spread projection (action 0 replays it, shifted over the units
# left to meet the budget), so the agent searches around it; since session 22 Optuna's TPE proposes the 100 warm-up
# episodes from every episode the study holds (amc.search.warmup: ResNet-56 at 0.3 +2.9 test points over the
# previous warm-up, MobileNetV2 and VGG-19 at 0.5 +0.4 and +0.8, bench/results/policy_quality-*-tpewarm*); the
# agent's noise is 0.5 on the [-1, 1] action scale, decaying to 0.1 at the last episode; the proxy scores 500 held-out
# images after recalibrating BatchNorm on 250 (bench/proxy_settings.py); the 8 best policies and the reference's
# candidates are scored again on 4,000 unseen held-out images and the best there is returned
# (amc.search.rescore); the top-up.
# local-warmup: the default of sessions 17-21, its warm-up exploring around the reference with the agent's noise.
# The reference and amc-reference presets keep amc's three heuristics, as their results were measured.
# reference: the previous default (uniform random warm-up, AMC's noise 1.0 x0.95 per episode, a 1,000-image proxy
# recalibrated on 500), by the name its results were measured under. amc: AMC's action range, bound and noise plus
# the top-up. amc-paper: exactly the paper (He et al. 2018), no top-up. spread: the spread projection, heuristic
# demonstrations and noise tied to the episode budget. amc-reference: AMC's projection with the reference preset's
# heuristics (which centre nothing) and re-scoring.
# The channel criterion: group-l1 (every coupled weight a channel's removal takes away, as Torch-Pruning's
# GroupMagnitudeImportance) since session 19 (bench/results/*-gl1*); the presets below were measured with the
# filter's own L1 norm and keep it.
DEFAULT_CRITERION = "group-l1"
_FILTER_L1: dict[str, Any] = {"criterion": "l1"}
HEURISTIC_REFERENCE = ["uniform", "global", "sensitivity"]  # amc's own heuristics: the default until session 18
DEFAULT_REFERENCE = [*HEURISTIC_REFERENCE, "tp-global-l1", "tp-local-l1"]
_NO_REFERENCE: dict[str, Any] = {"reference": [], "rescore": 0}
_AMC_NOISE: dict[str, Any] = {"sigma": 1.0, "warmup_noise": "uniform", "sigma_decay": 0.95}
_PREVIOUS_PROXY: dict[str, Any] = {"proxy_size": 1000, "calib_images": 500}
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "local-warmup": {"warmup_noise": "sigma"},
    "amc": {"projection": "amc", **_AMC_NOISE, **_NO_REFERENCE, **_FILTER_L1},
    "amc-paper": {"projection": "amc", "fill": False, "demos": [], **_AMC_NOISE, **_NO_REFERENCE, **_FILTER_L1},
    "spread": {
        "projection": "spread",
        "demos": ["uniform", "global"],
        "sigma": 1.0,
        "warmup_noise": "uniform",
        "sigma_decay": None,
        **_NO_REFERENCE,
        **_FILTER_L1,
    },  # fmt: skip
    "reference": {
        "projection": "spread",
        "reference": [*HEURISTIC_REFERENCE],
        "rescore": 8,
        **_AMC_NOISE,
        **_PREVIOUS_PROXY,
        **_FILTER_L1,
    },  # fmt: skip
    "amc-reference": {
        "projection": "amc",
        "reference": [*HEURISTIC_REFERENCE],
        "rescore": 8,
        **_AMC_NOISE,
        **_PREVIOUS_PROXY,
        **_FILTER_L1,
    },  # fmt: skip
}
PROXY_FIELDS = ("proxy_size", "calib_images", "criterion")  # what a preset sets besides the search run's settings


def preset_run_settings(preset: str) -> dict[str, Any]:
    """A preset's :class:`~amc.search.runner.SearchRun` settings (its proxy fields left out)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in PRESETS[preset].items() if k not in PROXY_FIELDS}


# Fine-tuning recipes for amc apply. short: the quick fine-tuning every comparison uses. recover: the recipe that
# brings a pruned network back to its base (ResNet-56 at 0.5 of the MACs: 89.97% vs the base's 89.72%,
# bench/results/recipe-resnet56.json): a longer cosine schedule from a higher learning rate with knowledge
# distillation from the unpruned base; crop-and-flip augmentation as always.
RECIPES: dict[str, dict[str, Any]] = {
    "short": {},
    "recover": {"finetune_epochs": 20, "lr": 0.02, "distill": True},
}
