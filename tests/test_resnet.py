"""ResNet-18 with the CIFAR stem: shape, parameter count, one training step."""

import torch
from torch import nn

from obliviate.models import build_model
from obliviate.train import Recipe, fit


def test_resnet18_cifar_stem_shape_params_and_a_training_step():
    model = build_model("resnet18", (3, 32, 32), 10, seed=0)
    assert sum(p.numel() for p in model.parameters()) == 11_173_962  # torchvision's CIFAR variant
    stem = model.features[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3])
    assert model(x).shape == (4, 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss_before = nn.functional.cross_entropy(model.train()(x), y).item()
    fit(model, lambda epoch: [(x, y)], Recipe(lr=0.01, epochs=1, batch_size=4, momentum=0.0,
                                              weight_decay=0.0))
    assert not torch.equal(before["classifier.weight"], model.state_dict()["classifier.weight"])
    assert nn.functional.cross_entropy(model.train()(x), y).item() < loss_before
    gray = build_model("resnet18", (1, 8, 8), 3, seed=0)
    assert gray(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
