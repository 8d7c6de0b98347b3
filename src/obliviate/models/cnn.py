"""A small two-block convolutional network for 8x8 to 32x32 images (no torchvision needed)."""

from __future__ import annotations

from torch import nn

from obliviate.models import MODELS


class SmallCNN(nn.Module):
    """Two conv-ReLU-maxpool blocks (32 and 64 channels), a 128-unit hidden layer, a classifier."""

    def __init__(self, in_channels: int, height: int, width: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * (height // 4) * (width // 4), 128),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(128, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


@MODELS.register("cnn")
def cnn(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    if len(input_shape) == 2:
        input_shape = (1, *input_shape)
    if len(input_shape) != 3 or min(input_shape[1:]) < 4:
        from obliviate.errors import ConfigError

        raise ConfigError(
            f"The cnn model needs image inputs shaped (channels, height, width) of at least 4x4. "
            f"Got {input_shape}; use model 'mlp' for flat features."
        )
    c, h, w = input_shape
    return SmallCNN(c, h, w, num_classes)
