"""ResNet-18 with the CIFAR stem (a 3x3 convolution, no max-pool), written without torchvision.

The stem keeps 32x32 inputs at full resolution into the first stage, as in the CIFAR variants
used by the unlearning literature (SalUn, SCRUB, l1-sparse); about 11.2M parameters for 10
classes. Meant for users with GPUs: on a CPU one epoch of CIFAR-10 takes many minutes.

References:
    He et al., "Deep residual learning for image recognition", CVPR 2016.
"""

from __future__ import annotations

from torch import nn

from obliviate.models import MODELS


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a shortcut (a 1x1 conv-BN when the shape changes)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """Stem, four stages of two basic blocks (64, 128, 256, 512 channels), global average
    pooling and a linear classifier."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
        ]
        planes = 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(planes, width, stride), BasicBlock(width, width, 1)]
            planes = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


@MODELS.register("resnet18")
def resnet18(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    if len(input_shape) == 2:
        input_shape = (1, *input_shape)
    if len(input_shape) != 3 or min(input_shape[1:]) < 8:
        from obliviate.errors import ConfigError

        raise ConfigError(
            f"The resnet18 model needs image inputs shaped (channels, height, width) of at least "
            f"8x8. Got {input_shape}; use model 'mlp' for flat features."
        )
    return ResNet18(input_shape[0], num_classes)
