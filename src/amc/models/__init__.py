"""Model registry: built-in CIFAR models by name, or any factory by ``package.module:function``.

Each built-in model carries the pruning facts the rest of the package needs: which coupled
channel groups are safe to prune (``unit_rule``) and which layer is the classifier.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from amc.errors import AmcError
from amc.models.cifar_resnet import CifarResNet
from amc.models.torchvision_cifar import mobilenetv2, resnet18, vgg19

__all__ = ["ModelSpec", "BUILTIN", "build_model", "get_spec"]


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model and which of its channel groups are prunable units.

    ``unit_rule``:
      - ``"inner"``: groups whose channels are produced by exactly one (non-depthwise)
        convolution, i.e. the inside of residual blocks and plain chains (the AMC choice).
      - ``"expanded"``: groups that pass through a depthwise convolution (MobileNetV2's
        inverted-residual expansions).
    ``residual_ok``: whether groups coupled through residual additions may be offered as units
    (``--residual``). False for the option-A ResNets, whose zero-padding shortcut
    Torch-Pruning's dependency graph groups wrongly.
    """

    name: str
    factory: Callable[[int], nn.Module]
    unit_rule: str = "inner"
    residual_ok: bool = True
    description: str = ""


def _resnet(depth: int) -> Callable[[int], nn.Module]:
    def make(num_classes: int = 10) -> nn.Module:
        return CifarResNet(depth, num_classes)

    return make


BUILTIN: dict[str, ModelSpec] = {
    **{
        f"resnet{d}": ModelSpec(f"resnet{d}", _resnet(d), "inner", False, f"He et al. CIFAR ResNet-{d}, option-A")
        for d in (20, 32, 44, 56)
    },
    "mobilenetv2": ModelSpec("mobilenetv2", mobilenetv2, "expanded", True, "torchvision MobileNetV2, CIFAR strides"),
    "vgg19": ModelSpec("vgg19", vgg19, "inner", True, "torchvision VGG-19-BN, 1 linear head"),
    "resnet18": ModelSpec("resnet18", resnet18, "inner", True, "torchvision ResNet-18, CIFAR stem"),
}


def get_spec(name: str) -> ModelSpec:
    """The spec of a built-in model, or of an import-path factory ``package.module:function``.

    An import path runs that module's code: only name code you trust.
    """
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" not in name:
        known = ", ".join(BUILTIN)
        raise AmcError(f"unknown model '{name}': use one of {known}, or an import path 'package.module:factory'")
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure is the user's path or code
        raise AmcError(f"cannot import '{module_name}' for model '{name}': {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise AmcError(f"'{attr}' in module '{module_name}' is not a callable model factory")
    return ModelSpec(name, factory, "inner", True, f"user model {name}")


def build_model(name: str, num_classes: int = 10) -> nn.Module:
    """Build a model by name with ``num_classes`` outputs (user factories may ignore it)."""
    spec = get_spec(name)
    try:
        model = spec.factory(num_classes)
    except TypeError:
        model = spec.factory()  # type: ignore[call-arg]  # user factory without num_classes
    if not isinstance(model, nn.Module):
        raise AmcError(f"model factory '{name}' returned {type(model).__name__}, not a torch.nn.Module")
    return model
