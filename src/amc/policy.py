"""Policies: per-unit sparsities plus everything needed to trust and reproduce them, as JSON.

A policy file is read with :mod:`json` only (never pickle) and validated field by field;
every problem is an :class:`~amc.errors.AmcError` naming the field and the fix. Files are
written atomically.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from amc import __version__
from amc.checkpoints import atomic_write_bytes
from amc.errors import AmcError

__all__ = ["SCHEMA", "Policy", "load_policy", "save_policy", "provenance"]

SCHEMA = "amc-policy/1"
REQUIRED = ("schema", "model", "checkpoint", "dataset", "budget", "achieved", "sparsity", "method", "criterion")


@dataclass
class Policy:
    """A pruning policy. ``sparsity`` maps unit names (the module producing the unit's
    channels) to the fraction of channels removed, in [0, 1). ``budget`` holds ``kind``
    (macs | params), ``target`` (kept fraction), ``max_sparsity`` and ``round_to``;
    ``achieved`` the resulting ``macs_ratio`` and ``params_ratio``."""

    model: str
    checkpoint: dict[str, Any]
    dataset: str
    budget: dict[str, Any]
    achieved: dict[str, float]
    sparsity: dict[str, float]
    method: str
    criterion: str
    reconstruct: bool = False
    residual: bool = False
    structure: str = "channels"  # "channels" (units cut out) or "weights" (unstructured zeros)
    data: dict[str, Any] = field(default_factory=dict)  # how to find the data set: spec, name, fingerprint
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, allow_nan=False) + "\n"


def provenance(seed: int | None = None, **extra: Any) -> dict[str, Any]:
    """Who made this, when, with which command, seed and package version."""
    return {
        "command": " ".join(["amc", *sys.argv[1:]]) if sys.argv else "",
        "seed": seed,
        "amc_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **extra,
    }


def save_policy(policy: Policy, path: str | Path) -> Path:
    """Write ``policy`` to ``path`` atomically."""
    path = Path(path)
    atomic_write_bytes(path, policy.to_json().encode())
    return path


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AmcError(f"policy field {where} must be a finite number, got {value!r}")
    return float(value)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file (structure and values; not yet against a model)."""
    path = Path(path)
    if not path.is_file():
        raise AmcError(f"policy {path} does not exist: pass the path of a policy JSON (e.g. policies/best.json)")
    try:
        raw = json.loads(path.read_text(), parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AmcError(
            f"policy {path} is not valid JSON ({exc}); it may be truncated: regenerate it with amc search"
        ) from None
    except ValueError as exc:
        raise AmcError(f"policy {path} has a non-finite value ({exc}): sparsities must be numbers in [0, 1)") from None
    if not isinstance(raw, dict):
        raise AmcError(f"policy {path} must be a JSON object, not {type(raw).__name__}")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise AmcError(f"policy {path} is missing field '{missing[0]}': regenerate it with amc search")
    if raw["schema"] != SCHEMA:
        raise AmcError(f"policy {path} has schema {raw['schema']!r}; this amc reads {SCHEMA!r}: regenerate it")
    sparsity = raw["sparsity"]
    if not isinstance(sparsity, dict) or not sparsity:
        raise AmcError(f"policy {path}: 'sparsity' must be a non-empty object of unit name -> fraction")
    for name, s in sparsity.items():
        s = _number(s, f"sparsity['{name}']")
        if not 0 <= s < 1:
            raise AmcError(f"policy {path}: sparsity of '{name}' is {s}, outside [0, 1)")
    budget = raw["budget"]
    if not isinstance(budget, dict) or "target" not in budget or "kind" not in budget:
        raise AmcError(f"policy {path}: 'budget' needs 'kind' and 'target'")
    _number(budget["target"], "budget.target")
    if not isinstance(raw["checkpoint"], dict):
        raise AmcError(f"policy {path}: 'checkpoint' must be an object with 'path' and 'sha256'")
    if raw.get("structure", "channels") not in ("channels", "weights"):
        raise AmcError(f"policy {path}: 'structure' must be 'channels' or 'weights'")
    known = {f for f in Policy.__dataclass_fields__}
    unknown = [k for k in raw if k not in known]
    if unknown:
        raise AmcError(f"policy {path} has an unknown field '{unknown[0]}': remove it or regenerate the policy")
    return Policy(**raw)
