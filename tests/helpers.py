"""A small, real search problem on tiny data: resnet20 with a random base on 3 classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from amc.checkpoints import save_checkpoint
from amc.models import build_model
from amc.proxy import ProxyConfig
from amc.runtime import Runtime
from amc.search.context import SearchContext, SearchSettings, build_context


def tiny_checkpoint(folder: Path, classes: int = 3) -> Path:
    torch.manual_seed(0)
    path = folder / "resnet20-tiny.pt"
    if not path.exists():
        save_checkpoint(path, build_model("resnet20", classes), {"model": "resnet20"})
    return path


def tiny_context(data: Path, folder: Path, target: float = 0.5, precision: str = "fp32", **proxy) -> SearchContext:
    settings = SearchSettings(
        model="resnet20",
        data=str(data),
        checkpoint=str(tiny_checkpoint(folder)),
        target=target,
        proxy=ProxyConfig(size=30, calib_images=20, batch_size=16, **proxy),
        allow_train=False,
    )
    return build_context(settings, Runtime.create("cpu", precision))


def make_imagefolder(
    root: Path, classes: int = 3, train: int = 20, test: int = 5, size: int = 32, seed: int = 0
) -> Path:
    """A learnable ImageFolder tree: each class has its own mean colour plus noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("test", test)):
        for c in range(classes):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            colour = np.array([(c * 97) % 256, (c * 53 + 80) % 256, (c * 31 + 160) % 256])
            for i in range(n):
                img = np.clip(colour + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i:04d}.png")
    return root


def make_real_subset(src: Path, root: Path, train_per_class: int = 300, test_per_class: int = 60) -> Path:
    """A smaller copy (symbolic links) of the real ImageFolder tree ``src`` at ``root/<src name>``:
    per class the first ``0.9 * train_per_class`` training files plus the last tenth, so its
    held-out split (the last tenth of each class) is made of real held-out images the zoo bases
    never trained on, and the first ``test_per_class`` test files. The folder keeps the data
    set's name, so the zoo's bases are found for it."""
    dest = root / src.resolve().name
    if (dest / "done").exists():
        return dest
    n_held = round(train_per_class * 0.1)
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for folder in sorted(p for p in (src / split).iterdir() if p.is_dir()):
            names = sorted(folder.iterdir())
            chosen = names[: n - n_held] + names[-n_held:] if split == "train" else names[:n]
            out = dest / split / folder.name
            out.mkdir(parents=True, exist_ok=True)
            for f in chosen:
                (out / f.name).symlink_to(f.resolve())
    (dest / "done").write_text("ok")
    return dest


def study_trials(runs_dir: Path, name: str) -> list:  # type: ignore[type-arg]
    """The complete trials of the study ``name`` in ``runs_dir``'s default storage."""
    import optuna

    from amc.search import study as studies

    return studies.completed(optuna.load_study(study_name=name, storage=studies.open_storage(None, runs_dir)))
