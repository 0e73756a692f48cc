"""CIFAR (32x32) variants of torchvision models, exactly as the zoo checkpoints define them.

torchvision is imported when one is built, not before: importing it costs about two seconds
(its ``ops`` import ``torch._dynamo``), which every ``amc`` command on a CIFAR ResNet, and every
error message, would otherwise pay."""

from __future__ import annotations

from typing import cast

from torch import nn


def mobilenetv2(num_classes: int = 10) -> nn.Module:
    """MobileNetV2 with the first two strides set to 1 (88.0 M MACs at 32x32)."""
    from torchvision import models as tvm

    model = tvm.mobilenet_v2(num_classes=num_classes)
    model.features[0][0].stride = (1, 1)
    model.features[2].conv[1][0].stride = (1, 1)
    return cast(nn.Module, model)


def vgg19(num_classes: int = 10) -> nn.Module:
    """VGG-19 with BatchNorm, no adaptive pool, and one linear classifier (398 M MACs)."""
    from torchvision import models as tvm

    model = tvm.vgg19_bn(num_classes=num_classes)
    model.avgpool = nn.Identity()
    model.classifier = nn.Linear(512, num_classes)
    return cast(nn.Module, model)


def resnet18(num_classes: int = 10) -> nn.Module:
    """ResNet-18 with a 3x3 stride-1 stem and no max pool (555 M MACs)."""
    from torchvision import models as tvm

    model = tvm.resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return cast(nn.Module, model)
