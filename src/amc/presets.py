"""Named bundles of settings: ``amc search --preset`` and ``amc apply --recipe``.

A preset or recipe only fills the request fields the user did not give (:mod:`amc.requests`
applies them before validation), so ``--preset reference --episodes 50`` is the reference
preset with 50 episodes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "RECIPES"]

# default: what measured best so far (ResNet-56 at 0.5, one seed: docs/experiments/resnet56-search-defaults):
# AMC's action range, bound and noise, plus the top-up that spends the budget. amc-paper: exactly the paper
# (He et al. 2018), no top-up. spread: the spread projection, heuristic demonstrations and noise tied to the
# episode budget (built for MobileNetV2's tail-at-the-cap failure; not yet shown to win). reference: the best of
# the uniform, global and sensitivity policies is scored first and centres the spread projection (issue 12), and
# the 8 best policies (and the reference) are scored again on unseen held-out images (amc.search.rescore).
# amc-reference: the default's agent and projection, with the same three heuristics scored as episodes of the search
# (they centre nothing) and the same re-scoring, so the search returns the best of its own and the heuristics'
# policies on unseen images (the candidate for the next default: not yet measured at 400 episodes).
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "amc-paper": {"projection": "amc", "fill": False, "demos": [], "sigma_decay": 0.95},
    "spread": {"projection": "spread", "fill": True, "demos": ["uniform", "global"], "sigma_decay": None},
    "reference": {
        "projection": "spread",
        "fill": True,
        "reference": ["uniform", "global", "sensitivity"],
        "rescore": 8,
    },
    "amc-reference": {"reference": ["uniform", "global", "sensitivity"], "rescore": 8},
}

# Fine-tuning recipes for amc apply. short: the quick fine-tuning every comparison uses. recover: the recipe that
# brings a pruned network back to its base (ResNet-56 at 0.5 of the MACs: 89.97% vs the base's 89.72%,
# bench/results/recipe-resnet56.json): a longer cosine schedule from a higher learning rate with knowledge
# distillation from the unpruned base; crop-and-flip augmentation as always.
RECIPES: dict[str, dict[str, Any]] = {
    "short": {},
    "recover": {"finetune_epochs": 20, "lr": 0.02, "distill": True},
}
