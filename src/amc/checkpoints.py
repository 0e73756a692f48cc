"""Checkpoint formats: read, check against a model, write atomically, find a base.

Formats read:
  - a plain state dict (the zoo ``.pt`` files);
  - akamaster ``.th``: ``{"state_dict": ..., "best_prec1": ...}`` with ``module.`` prefixes;
  - the project's own: ``{"format": "amc-checkpoint", "state_dict": ..., "meta": {...}}`` with
    the model, data set, normalisation, accuracy and recipe.

Everything loads with ``torch.load(weights_only=True)``; ``trust=True`` (``--trust-checkpoint``)
allows a legacy pickle that needs full unpickling, which can run arbitrary code.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amc.errors import AmcError

__all__ = [
    "FORMAT",
    "read_checkpoint",
    "load_weights",
    "save_checkpoint",
    "atomic_write_bytes",
    "find_base",
    "sha256_file",
    "checkpoint_dirs",
]

FORMAT = "amc-checkpoint"


def _new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0o666 less the process's umask, read without changing
    it (``os.umask`` would change it for every thread while it is read)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o644


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never half-written. The file
    gets the mode a plain ``open()`` would give it (``mkstemp``'s is owner-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _new_file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_checkpoint(path: str | Path, trust: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, meta)`` from any supported format; ``meta`` is ``{}`` when there is none."""
    path = Path(path)
    if not path.is_file():
        raise AmcError(f"checkpoint {path} does not exist: pass --checkpoint PATH to a .pt/.th file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc) or "GLOBAL" in str(exc):
            raise AmcError(
                f"checkpoint {path} holds Python objects beyond tensors; if you trust its source, "
                "pass --trust-checkpoint to load it with full unpickling"
            ) from None
        raise AmcError(f"{path} is not a readable checkpoint ({_short(exc)}): it may be truncated") from None
    except Exception as exc:  # torch raises many types for garbage and truncated files
        raise AmcError(f"{path} is not a readable checkpoint ({_short(exc)}): it may be truncated") from None
    return _unwrap(obj, path)


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__


def _unwrap(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    meta: dict[str, Any] = {}
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        meta, obj = dict(obj.get("meta", {})), obj["state_dict"]
    elif isinstance(obj, dict) and "state_dict" in obj:
        meta = {
            k: (v.item() if isinstance(v, torch.Tensor) and v.numel() == 1 else v)
            for k, v in obj.items()
            if k != "state_dict" and not isinstance(v, dict)
        }
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise AmcError(f"{path} does not contain a state dict of tensors: pass a model checkpoint")
    state = {re.sub(r"^module\.", "", k): v for k, v in obj.items()}
    return state, meta


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load ``state`` into ``model`` strictly, or say which key or shape first disagrees."""
    own = model.state_dict()
    state = dict(state)
    for key, value in own.items():
        if key not in state and key.endswith("num_batches_tracked"):
            state[key] = value  # bookkeeping buffer that older PyTorch versions did not save
        if key not in state:
            raise AmcError(f"{source} does not fit the model: it has no '{key}' (is it another model's checkpoint?)")
        if tuple(state[key].shape) != tuple(value.shape):
            raise AmcError(
                f"{source} does not fit the model: '{key}' is {tuple(state[key].shape)} in the "
                f"checkpoint but {tuple(value.shape)} in the model (is it another model's checkpoint?)"
            )
    extra = [k for k in state if k not in own]
    if extra:
        raise AmcError(
            f"{source} does not fit the model: unexpected key '{extra[0]}' (is it another model's checkpoint?)"
        )
    model.load_state_dict(state, strict=True)


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any], fmt: str = FORMAT) -> Path:
    """Save ``model``'s state dict with ``meta`` as ``{"format": fmt, ...}``, atomically."""
    import io

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"format": fmt, "state_dict": state, "meta": meta}, buf)
    atomic_write_bytes(path, buf.getvalue())
    return path


def checkpoint_dirs() -> list[Path]:
    """Folders searched for base checkpoints: ``$AMC_CHECKPOINTS`` (and its ``zoo/``), then the cache."""
    from amc.data import cache_dir

    dirs = []
    if os.environ.get("AMC_CHECKPOINTS"):
        root = Path(os.environ["AMC_CHECKPOINTS"]).expanduser()
        dirs += [root, root / "zoo"]
    dirs.append(cache_dir() / "bases")
    return dirs


def base_filename(model: str, dataset: str) -> str:
    """``resnet56`` + ``cifar10-jpeg`` -> ``resnet56-cifar10jpeg.pt`` (the zoo's naming)."""
    return f"{model}-{re.sub(r'[^a-z0-9]', '', dataset.lower())}.pt"


def find_base(model: str, dataset: str) -> Path | None:
    """The first base checkpoint for ``model`` trained on ``dataset`` in :func:`checkpoint_dirs`."""
    for d in checkpoint_dirs():
        candidate = d / base_filename(model, dataset)
        if candidate.is_file():
            return candidate
    return None
