"""ResNet50 and MobileNetV2 in PyTorch, laid out exactly as trainer.models builds them in Keras.

ResNet50 v1 as keras.applications has it (the stride in each stage's first 1x1 convolution,
biased convolutions, BatchNorm epsilon 1.001e-5, caffe preprocessing) and the torchvision
flavour of MobileNetV2 (torchvision's own ImageNet file loads as it is), with the same head and
the same preprocessing (bilinear resize of 48x48 grey to the net size, grey to RGB,
normalisation). trainer.pytorch.to_keras copies the weights into trainer.models' model, so the
.keras file that ships carries its preprocessing like any other.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainer.classes import NUM_CLASSES
from trainer.pixels import CAFFE_MEAN_BGR, TORCH_MEAN, TORCH_STD
from trainer.pytorch.convert_mobilenet import STAGES as MOBILENET_STAGES

SIZE = 48  # FER2013's pixels: the saved models' input
RESNET_STAGES = [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]  # (filters, blocks, stride)
RESNET_EPS = 1.001e-5  # keras.applications' ResNet50 BatchNorm epsilon


class Bottleneck(nn.Module):
    """keras.applications' ResNet50 block: the stride sits in the first 1x1 convolution."""

    def __init__(self, cin: int, filters: int, stride: int, shortcut: bool):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, filters, 1, stride), nn.BatchNorm2d(filters, eps=RESNET_EPS)
        self.conv2, self.bn2 = nn.Conv2d(filters, filters, 3, 1, 1), nn.BatchNorm2d(filters, eps=RESNET_EPS)
        self.conv3, self.bn3 = nn.Conv2d(filters, 4 * filters, 1), nn.BatchNorm2d(4 * filters, eps=RESNET_EPS)
        nn.init.zeros_(self.bn3.weight)  # each block starts as the identity: steadier training from scratch
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, 4 * filters, 1, stride), nn.BatchNorm2d(4 * filters, eps=RESNET_EPS))
            if shortcut else None
        )

    def forward(self, x):
        s = x if self.shortcut is None else self.shortcut(x)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.relu(self.bn3(self.conv3(x)) + s)


class ResNet50(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3), nn.BatchNorm2d(64, eps=RESNET_EPS)
        blocks, cin = [], 64
        for filters, count, stride in RESNET_STAGES:
            for b in range(count):
                blocks.append(Bottleneck(cin, filters, stride if b == 0 else 1, shortcut=b == 0))
                cin = 4 * filters
        self.blocks = nn.Sequential(*blocks)
        self.channels = cin

    def forward(self, x):
        # Keras zero-pads before its max pooling; after a ReLU that equals torch's -inf padding.
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return self.blocks(x)


def conv_bn_relu6(cin: int, cout: int, k: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [conv_bn_relu6(cin, hidden, 1, 1)]
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 module for module: its state dict keys load as they are."""

    def __init__(self):
        super().__init__()
        features, cin = [conv_bn_relu6(3, 32, 3, 2)], 32
        for expand, cout, repeats, stride in MOBILENET_STAGES:
            for i in range(repeats):
                features.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        features.append(conv_bn_relu6(cin, 1280, 1, 1))
        self.features = nn.Sequential(*features)
        self.channels = 1280

    def forward(self, x):
        return self.features(x)


class EmotionNet(nn.Module):
    """48x48 grey 0-255 pixels -> logits: trainer.models' preprocessing, backbone, GAP and head."""

    def __init__(self, name: str, img_size: int):
        super().__init__()
        self.name, self.img_size = name, img_size
        self.backbone = ResNet50() if name == "resnet50" else MobileNetV2()
        if name == "resnet50":  # RGB -> BGR is a no-op on grey; then minus the caffe mean
            shift, scale = -CAFFE_MEAN_BGR, np.ones(3)
        else:
            shift, scale = -TORCH_MEAN / TORCH_STD, 1 / TORCH_STD
        # Not persistent: constants of the layout, not weights, so state dicts leave them out.
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.dense = nn.Linear(self.backbone.channels, 128)
        self.emotion = nn.Linear(128, NUM_CLASSES)

    def forward(self, x):
        x = F.interpolate(x, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
        x = x.expand(-1, 3, -1, -1) * self.scale + self.shift
        x = self.backbone(x.contiguous(memory_format=torch.channels_last))
        x = F.dropout(x.float().mean((2, 3)), 0.3, self.training)
        x = F.dropout(F.relu(self.dense(x)), 0.3, self.training)
        return self.emotion(x)
