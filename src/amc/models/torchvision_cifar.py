"""CIFAR (32x32) variants of torchvision models, exactly as the zoo checkpoints define them."""

from __future__ import annotations

from typing import cast

from torch import nn
from torchvision import models as tvm


def mobilenetv2(num_classes: int = 10) -> nn.Module:
    """MobileNetV2 with the first two strides set to 1 (88.0 M MACs at 32x32)."""
    model = tvm.mobilenet_v2(num_classes=num_classes)
    model.features[0][0].stride = (1, 1)
    model.features[2].conv[1][0].stride = (1, 1)
    return cast(nn.Module, model)


def vgg19(num_classes: int = 10) -> nn.Module:
    """VGG-19 with BatchNorm, no adaptive pool, and one linear classifier (398 M MACs)."""
    model = tvm.vgg19_bn(num_classes=num_classes)
    model.avgpool = nn.Identity()
    model.classifier = nn.Linear(512, num_classes)
    return cast(nn.Module, model)


def resnet18(num_classes: int = 10) -> nn.Module:
    """ResNet-18 with a 3x3 stride-1 stem and no max pool (555 M MACs)."""
    model = tvm.resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return cast(nn.Module, model)
