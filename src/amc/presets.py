"""Named bundles of settings: ``amc search --preset`` and ``amc apply --recipe``.

A preset or recipe only fills the request fields the user did not give (:mod:`amc.requests`
applies them before validation), so ``--preset reference --episodes 50`` is the reference
preset with 50 episodes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "RECIPES", "DEFAULT_REFERENCE"]

# default: what measured best over ResNet-56 at 0.3 and 0.5 and MobileNetV2 at 0.5 of the MACs (one seed each,
# docs/experiments/*-reference-*): the uniform, global and sensitivity policies are scored first as episodes of the
# search; the best centres the spread projection (action 0 replays it, shifted over the units left to meet the
# budget), so the agent searches around it; the 8 best policies (and the reference) are scored again on unseen
# held-out images and the best there is returned (amc.search.rescore); AMC's noise (x0.95) and the top-up.
# amc: the previous default, AMC's action range and bound plus the top-up (best at ResNet-56 0.5, worst at 0.3 and
# on MobileNetV2). amc-paper: exactly the paper (He et al. 2018), no top-up. spread: the spread projection,
# heuristic demonstrations and noise tied to the episode budget. reference: the default's settings by the name they
# were measured under. amc-reference: AMC's projection with the default's heuristics (which centre nothing) and
# re-scoring.
DEFAULT_REFERENCE = ["uniform", "global", "sensitivity"]
_NO_REFERENCE: dict[str, Any] = {"reference": [], "rescore": 0}
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "amc": {"projection": "amc", **_NO_REFERENCE},
    "amc-paper": {"projection": "amc", "fill": False, "demos": [], "sigma_decay": 0.95, **_NO_REFERENCE},
    "spread": {"projection": "spread", "demos": ["uniform", "global"], "sigma_decay": None, **_NO_REFERENCE},
    "reference": {"projection": "spread", "reference": [*DEFAULT_REFERENCE], "rescore": 8},
    "amc-reference": {"projection": "amc", "reference": [*DEFAULT_REFERENCE], "rescore": 8},
}

# Fine-tuning recipes for amc apply. short: the quick fine-tuning every comparison uses. recover: the recipe that
# brings a pruned network back to its base (ResNet-56 at 0.5 of the MACs: 89.97% vs the base's 89.72%,
# bench/results/recipe-resnet56.json): a longer cosine schedule from a higher learning rate with knowledge
# distillation from the unpruned base; crop-and-flip augmentation as always.
RECIPES: dict[str, dict[str, Any]] = {
    "short": {},
    "recover": {"finetune_epochs": 20, "lr": 0.02, "distill": True},
}
