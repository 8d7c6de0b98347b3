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


def test_long_third_party_messages_are_cut_to_their_first_sentence_and_whole_words():
    from obliviate.errors import first_sentence

    paragraph = ("BatchNorm cannot support training with differential privacy. The reason for "
                 "it is that BatchNorm makes each sample's normalized value depend on its peers.")
    assert first_sentence(paragraph) == \
        "BatchNorm cannot support training with differential privacy."
    cut = first_sentence("vmap " + "unsupported_operation_name " * 20, limit=60)
    assert cut.endswith(" ...") and len(cut) <= 64
    assert all(w in ("vmap", "unsupported_operation_name", "...") for w in cut.split())


def test_dp_refusal_is_one_short_sentence_plus_the_fix():
    pytest.importorskip("opacus")
    from torch import nn

    from obliviate.dp import DPRecipe, fit_private
    from obliviate.train import Recipe

    model = nn.Sequential(nn.Linear(10, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    x, y = torch.randn(32, 10), torch.randint(0, 2, (32,))
    with pytest.raises(ConfigError) as err:
        fit_private(model, x, y, Recipe(epochs=1, batch_size=8), DPRecipe(), seed=0)
    text = str(err.value)
    assert len(text) < 300 and text.endswith("(opacus ModuleValidator.fix).")
    assert "differential privacy. Replace BatchNorm by GroupNorm" in text
