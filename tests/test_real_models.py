"""Architectures nobody here wrote (transformers' vision models from configs) through ob.unlearn."""

from __future__ import annotations

import logging

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import obliviate as ob
from obliviate.errors import ConfigError


def tiny_mobilenet():
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("peft")
    torch.manual_seed(0)
    cfg = transformers.MobileNetV2Config(num_channels=1, image_size=16, depth_multiplier=0.25,
                                         min_depth=4, num_labels=4, classifier_dropout_prob=0.0)
    model = transformers.MobileNetV2ForImageClassification(cfg).eval()
    x, y = torch.randn(40, 1, 16, 16), torch.randint(0, 4, (40,))
    return model, DataLoader(TensorDataset(x[:8], y[:8]), batch_size=8), \
        DataLoader(TensorDataset(x[8:], y[8:]), batch_size=16)


def test_lora_skips_depthwise_convolutions_with_a_note_and_refuses_naming_one(caplog):
    model, forget, retain = tiny_mobilenet()
    depthwise = [n for n, m in model.named_modules()
                 if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert depthwise
    with caplog.at_level(logging.WARNING, logger="obliviate.methods"):
        out = ob.unlearn(model, forget, retain, method="lora-unlearn", epochs=1, guard="off")
    assert f"{len(depthwise)} grouped/depthwise convolution(s) left without an adapter" \
        in caplog.text
    before, after = dict(model.named_parameters()), dict(out.named_parameters())
    assert type(out) is type(model) and before.keys() == after.keys()
    assert all(torch.equal(before[f"{n}.weight"], after[f"{n}.weight"]) for n in depthwise)
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    with pytest.raises(ConfigError, match="cannot adapt grouped or depthwise convolutions"):
        ob.unlearn(model, forget, retain, method="lora-unlearn",
                   target_modules=(depthwise[0],))
