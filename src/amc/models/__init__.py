"""Model registry: built-in CIFAR models by name, models registered by other code, and any
``package.module:NAME`` import path naming a :class:`ModelSpec` or a factory.

A spec carries the pruning facts the rest of the package needs: which coupled channel groups
are prunable units (``unit_rule``), whether residual groups may be offered, the classifier
(never pruned) and the input size.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from torch import nn

from amc.errors import AmcError
from amc.models.cifar_resnet import CifarResNet
from amc.models.torchvision_cifar import mobilenetv2, resnet18, vgg19

__all__ = ["ModelSpec", "UnitRule", "BUILTIN", "register", "build_model", "get_spec", "refuse_transformers"]

UnitRule = Literal["inner", "expanded"]
UNIT_RULES: tuple[str, ...] = ("inner", "expanded")


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model and which of its channel groups are prunable units.

    ``factory``: ``num_classes -> nn.Module`` (a factory with neither a ``num_classes`` parameter
    nor ``**kwargs`` is called with no arguments).
    ``unit_rule``:
      - ``"inner"``: groups whose channels are produced by exactly one (non-depthwise)
        convolution, i.e. the inside of residual blocks and plain chains (the AMC choice).
      - ``"expanded"``: groups that pass through a depthwise convolution (MobileNetV2's
        inverted-residual expansions).
    ``residual_ok``: whether groups coupled through residual additions may be offered as units
    (``--residual``). False for the option-A ResNets, whose zero-padding shortcut
    Torch-Pruning's dependency graph groups wrongly.
    ``classifier``: the module name of the output layer (never pruned; default: the last
    conv or linear layer). ``input_size``: ``(channels, height, width)`` of one input.
    """

    name: str
    factory: Callable[..., nn.Module]
    unit_rule: UnitRule = "inner"
    residual_ok: bool = True
    description: str = ""
    classifier: str | None = None
    input_size: tuple[int, int, int] = (3, 32, 32)

    def __post_init__(self) -> None:
        if self.unit_rule not in UNIT_RULES:
            raise AmcError(
                f"model '{self.name}': unit_rule must be one of {', '.join(UNIT_RULES)}, got {self.unit_rule!r}"
            )

    def build(self, num_classes: int = 10) -> nn.Module:
        try:
            params = inspect.signature(self.factory).parameters
            # torchvision's builders take num_classes through **kwargs
            takes_classes = "num_classes" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
        except (TypeError, ValueError):  # builtins without a signature
            takes_classes = True
        model = self.factory(num_classes=num_classes) if takes_classes else self.factory()
        if not isinstance(model, nn.Module):
            raise AmcError(f"model factory '{self.name}' returned {type(model).__name__}, not a torch.nn.Module")
        refuse_transformers(model)  # before anything is trained or traced
        return model


def refuse_transformers(model: nn.Module) -> None:
    """Vision transformers are out of scope: refuse them at once (tracing Swin's channel graph grew
    past 11 GiB). An attention layer is a ``MultiheadAttention`` or a module with a fused ``qkv`` /
    ``to_qkv`` projection (torchvision's Swin and MaxViT, timm's ViTs); channel attention
    (squeeze-and-excitation, CBAM) has neither and is pruned as usual."""
    for name, m in model.named_modules():
        fused = any(isinstance(getattr(m, a, None), nn.Linear) for a in ("qkv", "to_qkv"))
        if isinstance(m, nn.MultiheadAttention) or fused:
            raise AmcError(
                f"'{name}' is an attention layer ({type(m).__name__}): amc prunes convolutional networks, "
                "and vision transformers are out of its scope"
            )


def _resnet(depth: int) -> Callable[..., nn.Module]:
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
_REGISTERED: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Make ``spec`` available by its name (``--model NAME``) in this process."""
    _REGISTERED[spec.name] = spec
    return spec


def _from_import_path(name: str) -> ModelSpec:
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure is the user's path or code
        raise AmcError(f"cannot import '{module_name}' for model '{name}': {exc}") from None
    target = getattr(module, attr, None)
    if isinstance(target, ModelSpec):
        return ModelSpec(
            name,
            target.factory,
            target.unit_rule,
            target.residual_ok,
            target.description,
            target.classifier,
            target.input_size,
        )
    if not callable(target):
        raise AmcError(f"'{attr}' in module '{module_name}' is neither a ModelSpec nor a callable model factory")
    return ModelSpec(name, target, "inner", True, f"user model {name}")


def get_spec(name: str) -> ModelSpec:
    """The spec of a built-in or registered model, or of an import path ``package.module:NAME``
    (a ModelSpec or a factory). An import path runs that module's code: only name code you trust."""
    if name in BUILTIN:
        return BUILTIN[name]
    if name in _REGISTERED:
        return _REGISTERED[name]
    if ":" not in name:
        known = ", ".join([*BUILTIN, *_REGISTERED])
        raise AmcError(f"unknown model '{name}': use one of {known}, or an import path 'package.module:NAME'")
    return _from_import_path(name)


def build_model(name: str, num_classes: int = 10) -> nn.Module:
    """Build a model by name with ``num_classes`` outputs."""
    return get_spec(name).build(num_classes)
