"""Robustness attacks: weight rounding on known values, relearning and quantization on
classifiers (digits) and on the toy language-model track, paraphrase probing."""

import numpy as np
import pytest
import torch
from torch import nn

from obliviate.errors import ConfigError, DataError
from obliviate.evaluate.utility import accuracy, predict
from obliviate.llm import evaluate_lm, unlearn_lm
from obliviate.robustness import (
    paraphrase_probe,
    quantize_classifier,
    quantize_lm,
    quantize_weights,
    relearn_classifier,
    relearn_lm,
    round_to_grid,
    split_share,
)
from test_llm_track import toy_models


def test_round_to_grid_known_values():
    w = torch.tensor([[1.0, -0.6, 0.25, 0.1]])
    # 4 bits: levels k / 7 of the row's absmax, k in -8..7 (-4.2 -> -4, 1.75 -> 2, 0.7 -> 1)
    torch.testing.assert_close(round_to_grid(w, 4), torch.tensor([[7.0, -4.0, 2.0, 1.0]]) / 7)
    # 2 bits: levels -2..1 times the absmax
    torch.testing.assert_close(round_to_grid(w, 2), torch.tensor([[1.0, -1.0, 0.0, 0.0]]))
    # groups: each group of 2 inputs has its own scale
    g = round_to_grid(torch.tensor([[1.0, 0.6, 0.01, 0.004]]), 2, group_size=2)
    torch.testing.assert_close(g, torch.tensor([[1.0, 1.0, 0.01, 0.0]]))
    x = torch.randn(8, 300, generator=torch.Generator().manual_seed(0))
    err = (round_to_grid(x, 8) - x).abs()
    # three groups per row (128, 128, 44 inputs), each scale at most the row's absmax / 127
    bound = x.abs().amax(1, keepdim=True) / 127 / 2
    assert bool((err <= bound + 1e-6).all())
    with pytest.raises(ConfigError, match="at least 2 bits"):
        round_to_grid(w, 1)


def test_quantize_weights_rounds_linear_layers_and_leaves_the_input():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quantize_weights(model, 4)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    torch.testing.assert_close(q[0].weight, round_to_grid(model[0].weight, 4))
    assert torch.equal(q[0].bias, model[0].bias)  # biases stay in full precision
    assert len(torch.unique(q[2].weight[0])) <= 16


def test_quantize_handles_gpt2_conv1d_as_inputs_by_outputs():
    from obliviate.llm.model import build_lm

    lm = build_lm("tiny-gpt2", 0, width=16, layers=1, heads=2)
    q = quantize_weights(lm, 4)
    conv = lm.transformer.h[0].attn.c_attn  # Conv1D: weight is (inputs, outputs)
    want = round_to_grid(conv.weight.t(), 4).t()
    torch.testing.assert_close(q.transformer.h[0].attn.c_attn.weight, want)
    assert torch.equal(q.transformer.wte.weight, lm.transformer.wte.weight)  # embeddings kept


def test_quantize_classifier_reports_each_precision(digits, digits_original, digits_retrained):
    out = quantize_classifier(digits_original, digits.forget_loader(), test=digits.test_loader(),
                              retrained=digits_retrained)
    m = out["metrics"]
    assert out["curves"]["bits"] == [32, 8, 4]
    want = accuracy(*predict(digits_original, digits.forget_loader()))
    assert m["forget_acc@32bit"] == pytest.approx(want)
    assert abs(m["forget_acc@8bit"] - m["forget_acc@32bit"]) < 0.02  # 8 bits barely move it
    assert m["forget_acc_gap@4bit"] == pytest.approx(m["forget_acc@4bit"]
                                                     - m["retrained_forget_acc@4bit"])


def test_relearn_classifier_curves(digits, digits_original, digits_retrained):
    args = dict(retrained=digits_retrained, share=0.2, steps=(0, 3, 6), lr=1e-3)
    out = relearn_classifier(digits_original, digits.forget_loader(), **args)
    again = relearn_classifier(digits_original, digits.forget_loader(), **args)
    assert out == again  # deterministic
    c, m = out["curves"], out["metrics"]
    assert c["steps"] == [0, 3, 6] and len(c["forget_acc"]) == len(c["retrained_forget_acc"]) == 3
    _, held = split_share(len(digits.forget_loader().dataset), 0.2, 0)
    x, y = digits.forget_loader().dataset.tensors
    logits, labels = predict(digits_original, [(x[held], y[held])])
    assert c["forget_acc"][0] == pytest.approx(accuracy(logits, labels))  # step 0: no attack
    assert m["forget_acc_gap@6"] == pytest.approx(c["forget_acc"][-1]
                                                  - c["retrained_forget_acc"][-1])
    assert m["attack_examples"] + m["held_examples"] == len(x)
    assert all(0.0 <= a <= 1.0 for a in c["forget_acc"] + c["retrained_forget_acc"])
    benign = relearn_classifier(digits_original, digits.forget_loader(), data="retain",
                                retain=digits.retain_loader(), steps=(0, 2))
    assert benign["curves"]["forget_acc"][0] == c["forget_acc"][0]
    # a model attacked beside itself recovers exactly as much: both see the same batches
    same = relearn_classifier(digits_retrained, digits.forget_loader(), share=0.2,
                              retrained=digits_retrained, steps=(0, 4, 8), lr=1e-2)
    assert same["curves"]["forget_loss"] == same["curves"]["retrained_forget_loss"]
    assert same["metrics"]["forget_acc_gap@8"] == 0.0
    with pytest.raises(ConfigError, match="share"):
        relearn_classifier(digits_original, digits.forget_loader(), share=1.5)
    with pytest.raises(DataError, match="retain"):
        relearn_classifier(digits_original, digits.forget_loader(), data="retain")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return toy_models(tmp_path_factory)


def test_relearning_brings_back_what_a_refusal_only_hid_and_not_what_was_never_learned(toy):
    sc, original, retain, _ = toy
    # trained to answer the forget questions with refusals: the answers are hidden, not erased
    refuser = unlearn_lm(original, sc.forget_set(), sc.retain_set(),
                         forget_idk=sc.forget_idk_set(), method="idk", lr=1e-3, epochs=5,
                         batch_size=8)
    args = dict(steps=(0, 10), lr=3e-4, share=0.3)
    hid = relearn_lm(refuser, sc, retrained=retain, **args)
    c = hid["curves"]
    gain = c["forget_prob"][-1] - c["forget_prob"][0]
    never = c["retrained_forget_prob"][-1] - c["retrained_forget_prob"][0]
    # ten steps on 30% of the forget questions bring back answers to the other 70%
    assert gain > 0.05 and gain > never + 0.05
    assert abs(never) < 0.03  # the retain-only model cannot relearn what it never saw
    m = hid["metrics"]
    assert m["forget_prob_gap@10"] == pytest.approx(c["forget_prob"][-1]
                                                    - c["retrained_forget_prob"][-1])
    assert len(c["forget_quality"]) == 2 and m["held_questions"] == len(sc.forget_qa) - 6


def test_quantize_lm_and_paraphrase_probe_agree_with_evaluate_lm(toy):
    sc, original, retain, _ = toy
    full, _ = evaluate_lm(original, sc, retain)
    q = quantize_lm(original, sc, retrained=retain, bits=(4,))
    assert q["curves"]["bits"] == [32, 4]
    assert q["metrics"]["forget_prob@32bit"] == pytest.approx(full["forget_prob"])
    assert q["metrics"]["forget_quality@32bit"] == pytest.approx(full["forget_quality"])
    assert q["metrics"]["forget_prob@4bit"] != q["metrics"]["forget_prob@32bit"]
    p = paraphrase_probe(original, sc, retrained=retain)["metrics"]
    assert p["asked_forget_prob"] == pytest.approx(full["forget_prob"])
    assert p["asked_forget_quality"] == pytest.approx(full["forget_quality"])
    for probe in ("paraphrased", "in_context"):
        assert 0.0 <= p[f"{probe}_forget_prob"] <= 1.0
        assert p[f"{probe}_forget_prob_gap"] == pytest.approx(
            p[f"{probe}_forget_prob"] - p[f"retrained_{probe}_forget_prob"])
    assert np.isfinite(p["paraphrased_forget_quality"])
