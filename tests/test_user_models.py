"""Models the package does not define, through every method, the audit and every protocol.

Two users' models: a CNN with BatchNorm and Dropout (registered with ``ob.register_model`` and
reachable as ``test_user_models:bn_cnn``), and a tiny ``BertForSequenceClassification`` built
offline from a config, fed mapping batches (input_ids, attention_mask, labels) by a collate_fn.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import obliviate as ob
from obliviate.bench.config import BenchConfig
from obliviate.bench.runner import BenchRun
from obliviate.config import field_info
from obliviate.data.catalog import SCENARIOS, ScenarioSpec
from obliviate.data.scenario import Splits
from obliviate.evaluate.challenge import forgetting_quality, logit_scaled_confidence
from obliviate.evaluate.utility import accuracy, predict
from obliviate.population import predict_population, train_population
from obliviate.train import Recipe, fit, train_model

transformers = pytest.importorskip("transformers")
CLASSIFIER_METHODS = [n for n in ob.METHODS.names() if ob.METHODS.get(n).works_on("classification")]
transformers.logging.set_verbosity_error()


# ---------------------------------------------------------------------------- the CNN
class BNDropCNN(nn.Module):
    """Conv-BN-ReLU-pool, channel dropout, a BN hidden layer with dropout, a classifier.

    No bias before a BatchNorm (it would cancel it), as ResNets do: such a bias has a gradient
    of rounding noise only, which Adam scales up to full steps.
    """

    def __init__(self, channels: int, height: int, width: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout2d(0.1), nn.Flatten(),
            nn.Linear(8 * (height // 2) * (width // 2), 32, bias=False),
            nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3))
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


def bn_cnn(num_classes, input_shape):
    return BNDropCNN(*input_shape, num_classes)


CNN_RECIPE = {"epochs": 3, "lr": 3e-3}


@pytest.fixture(scope="module")
def cnn_name():
    ob.register_model("test-bn-cnn")(bn_cnn)
    yield "test-bn-cnn"
    ob.models.MODELS.remove("test-bn-cnn")


@pytest.fixture(scope="module")
def cnn_digits(cnn_name):
    sc = ob.load_scenario("digits", forget="random:0.1", seed=0, model=cnn_name,
                          recipe=CNN_RECIPE)
    return sc, sc.train_original(seed=0), sc.train_retrained(seed=0)


# ---------------------------------------------------------------------------- the tiny BERT
VOCAB, LENGTH, CLASSES = 40, 8, 3


def tokens(n: int, seed: int):
    """Token ids whose class is the id (1 + label) planted in the first half; padded tails."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (n, LENGTH), generator=g)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    ids[torch.arange(n), torch.randint(0, LENGTH // 2, (n,), generator=g)] = y + 1
    lengths = torch.randint(LENGTH // 2 + 1, LENGTH + 1, (n,), generator=g)
    mask = (torch.arange(LENGTH)[None] < lengths[:, None]).long()
    return ids * mask, mask, y


class TokenSet(Dataset):
    def __init__(self, ids, mask, y):
        self.ids, self.mask, self.y = ids, mask, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i], "labels": self.y[i]}


def collate(items):
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def token_loader(data, shuffle=False, seed=0):
    return DataLoader(TokenSet(*data), batch_size=16, shuffle=shuffle, collate_fn=collate,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None)


def tiny_bert(num_classes, input_shape, vocab_size=VOCAB):
    from transformers import BertConfig, BertForSequenceClassification

    return BertForSequenceClassification(BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=num_classes, max_position_embeddings=input_shape[0]))


BERT_RECIPE = Recipe(optimizer="adam", lr=3e-3, epochs=8, batch_size=16, weight_decay=0.0)


@pytest.fixture(scope="module")
def bert():
    train, test = tokens(96, 0), tokens(48, 1)
    forget, retain = (tuple(t[:16] for t in train), tuple(t[16:] for t in train))
    torch.manual_seed(0)
    model = tiny_bert(CLASSES, (LENGTH,))
    fit(model, lambda epoch: token_loader(train, shuffle=True, seed=epoch), BERT_RECIPE)
    return model, forget, retain, test


def small(info):
    fields = {n for n, *_ in field_info(info.config)} if info.config else set()
    out = {"epochs": 1} if "epochs" in fields else {}
    if "fine_epochs" in fields:  # may not exceed epochs (the 7th prize's last, noise-free epochs)
        out["fine_epochs"] = 0
    return out


# Methods that legitimately refuse a model, and the reason their ConfigError gives.
CNN_REFUSES = {"dp-original": "BatchNorm"}
TENSOR_ROWS = r"keeps the training rows as one tensor, so it needs batches of \(tensor inputs"
BERT_REFUSES = {"dp-original": TENSOR_ROWS, "sisa": TENSOR_ROWS, "certified-removal": TENSOR_ROWS}
# SSD's alpha 10 selects no weight when the forget set is a sixth of the data (as on digits)
BERT_TUNED = {"ssd": {"selection_weighting": 2.0}}


# ---------------------------------------------------------------------------- every method
@pytest.mark.parametrize("name", CLASSIFIER_METHODS)
def test_every_method_on_the_bn_dropout_cnn(cnn_digits, name):
    sc, original, _ = cnn_digits
    info = ob.METHODS.get(name)
    before = copy.deepcopy(original.state_dict())
    args = dict(method=name, seed=3, recipe=dataclasses.replace(sc.recipe, epochs=1),
                **{**sc.method_defaults.get(name, {}), **small(info)})  # digits' tuned values
    if name in CNN_REFUSES:
        with pytest.raises(ob.ConfigError, match=CNN_REFUSES[name]):
            ob.unlearn(original, sc.forget_loader(), sc.retain_loader(), **args)
        return
    a = ob.unlearn(original, sc.forget_loader(), sc.retain_loader(), **args)
    b = ob.unlearn(original, sc.forget_loader(), sc.retain_loader(), **args)
    for key, value in original.state_dict().items():  # input untouched (BN buffers included)
        assert torch.equal(value, before[key]), key
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), f"{name}: same seed gave different {key} (dropout RNG)"
    logits, _ = predict(a, sc.forget_loader(shuffle=False))
    assert np.isfinite(logits).all() and not a.training
    own, _ = predict(original, sc.forget_loader(shuffle=False))
    assert not np.allclose(logits, own), f"{name} left the model as it was"


@pytest.mark.parametrize("name", CLASSIFIER_METHODS)
def test_every_method_on_the_tiny_bert_with_dict_batches(bert, name):
    model, forget, retain, test = bert
    info = ob.METHODS.get(name)
    loaders = (token_loader(forget, shuffle=True), token_loader(retain, shuffle=True, seed=1))
    args = dict(method=name, seed=0, recipe=Recipe(optimizer="adam", lr=1e-3, epochs=1,
                                                    batch_size=16, weight_decay=0.0),
                **{**BERT_TUNED.get(name, {}), **small(info)})
    if name in BERT_REFUSES:
        with pytest.raises(ob.ConfigError, match=BERT_REFUSES[name]):
            ob.unlearn(model, *loaders, **args)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft and transformers' own notices
        out = ob.unlearn(model, *loaders, **args)
    logits, labels = predict(out, token_loader(forget))
    assert logits.shape == (16, CLASSES) and np.isfinite(logits).all()
    assert not np.allclose(logits, predict(model, token_loader(forget))[0]), name


def test_forgetting_and_audit_on_users_loaders(bert, cnn_digits):
    """NegGrad on either model lowers forget accuracy; ob.audit reads the users' own data."""
    model, forget, retain, test = bert
    parts = dict(forget=token_loader(forget), retain=token_loader(retain), test=token_loader(test))
    before = ob.audit(model, **parts)
    after = ob.unlearn(model, token_loader(forget, shuffle=True), method="neggrad", lr=0.05,
                       epochs=3)
    report = ob.audit(after, **parts, reference=before)
    assert report.metrics["FA"] < before.metrics["FA"] - 0.2
    assert set(report.gaps) == {"RA", "FA", "TA", "MIA"}
    sc, original, retrained = cnn_digits
    as_tensors = ob.audit(original, forget=(sc.x_forget, sc.y_forget),
                          retain=(sc.x_retain, sc.y_retain), test=(sc.splits.x_test,
                                                                   sc.splits.y_test),
                          reference=retrained)
    on_scenario = ob.audit(original, sc, reference=retrained)
    assert as_tensors.metrics == on_scenario.metrics and as_tensors.gaps == on_scenario.gaps
    assert on_scenario.metrics["TA"] > 0.85


# ---------------------------------------------------------------------------- populations
def test_bn_dropout_population_follows_the_loop_model_by_model(cnn_name):
    """vmap with BatchNorm buffers and each model's own dropout stream: the loop's weights.

    On CPU the dropout masks are bit-identical to the loop's (drawn from each model's seed in
    the loop's order and shapes), so weights agree to float rounding; the masks differ in size
    (a short last batch per model), and models trained together or alone agree too.
    """
    sc = ob.load_scenario("digits", seed=0, model=cnn_name, recipe={"epochs": 2})
    s = sc.splits
    masks = torch.rand(3, len(s.y_train), generator=torch.Generator().manual_seed(0)) < 0.6
    pop = train_population(cnn_name, sc.input_shape, 10, s.x_train, s.y_train, masks,
                           [0, 1, 2], sc.recipe)
    assert pop.mode == "vmap" and pop.note == ""
    chunked = train_population(cnn_name, sc.input_shape, 10, s.x_train, s.y_train, masks,
                               [0, 1, 2], sc.recipe, chunk_size=1)
    for i, (mask, state) in enumerate(zip(masks, pop.state_dicts(), strict=True)):
        loop, _ = train_model(cnn_name, sc.input_shape, 10, s.x_train[mask], s.y_train[mask],
                              sc.recipe, seed=i)
        for key, value in loop.state_dict().items():
            torch.testing.assert_close(state[key], value, rtol=1e-4, atol=1e-5, msg=key)
            torch.testing.assert_close(chunked.state_dicts()[i][key], value, rtol=1e-4,
                                       atol=1e-5, msg=key)
    logits = predict_population(pop, s.x_test)  # eval mode: running statistics, no dropout
    for row, model in zip(logits, pop.models(), strict=True):
        np.testing.assert_allclose(row, predict(model, sc.test_loader())[0], rtol=1e-4,
                                   atol=1e-5)


def test_untraceable_model_falls_back_to_the_loop_once(bert):
    model, *_ = bert
    ids, mask, y = tokens(24, 3)
    masks = torch.ones(2, 24, dtype=torch.bool)
    masks[1, :6] = False
    recipe = Recipe(optimizer="adam", lr=1e-3, epochs=1, batch_size=8, weight_decay=0.0)
    ob.register_model("test-tiny-bert")(tiny_bert)
    try:
        with pytest.warns(UserWarning, match="trained by the reference loop") as caught:
            pop = train_population("test-tiny-bert", (LENGTH,), CLASSES, ids, y, masks, [4, 5],
                                   recipe)
            again = train_population("test-tiny-bert", (LENGTH,), CLASSES, ids, y, masks[:1],
                                     [4], recipe)
        assert len(caught) == 1 and pop.mode == again.mode == "loop"  # announced once
        assert "vmap cannot trace" in pop.note
        loop, _ = train_model("test-tiny-bert", (LENGTH,), CLASSES, ids[masks[1]], y[masks[1]],
                              recipe, seed=5)
        for key, value in loop.state_dict().items():
            assert torch.equal(pop.state_dicts()[1][key], value), key
        logits = predict_population(pop, ids)
        np.testing.assert_allclose(logits[1], predict(loop, [(ids, y)])[0], rtol=1e-5)
        with pytest.raises(ob.ConfigError, match="cannot be trained in vmap mode"):
            train_population("test-tiny-bert", (LENGTH,), CLASSES, ids, y, masks, [4, 5],
                             recipe, mode="vmap")
    finally:
        ob.models.MODELS.remove("test-tiny-bert")


def test_challenge_metric_on_hand_made_populations(cnn_digits):
    """Users' own N retrained and N 'unlearned' models: F from the package's metric alone."""
    sc, original, _ = cnn_digits
    retrained = [train_model("test_user_models:bn_cnn", sc.input_shape, 10, sc.x_retain,
                             sc.y_retain, sc.recipe, seed=s)[0] for s in range(8)]
    y = sc.y_forget.numpy()

    def conf(models):
        logits = predict_population(models, sc.x_forget)
        return logit_scaled_confidence(logits, np.broadcast_to(y, logits.shape[:-1]))

    a, b = conf(retrained[:4]), conf(retrained[4:])
    unchanged = conf([original] * 4)  # an "unlearner" that returns the original every time
    assert forgetting_quality(unchanged, a) == 0.0  # deterministic: the peaky rule
    assert forgetting_quality(b, a) > 0.15  # retrained against retrained: the ceiling (N=4)
    assert min(accuracy(lg, sc.y_retain.numpy())
               for lg in predict_population(retrained, sc.x_retain)) > 0.85


# ---------------------------------------------------------------------------- the protocols
def _token_splits(opts) -> Splits:
    (ids, _, y), (ids_v, _, y_v), (ids_t, _, y_t) = tokens(80, 0), tokens(24, 1), tokens(40, 2)
    return Splits(ids, y, ids_v, y_v, ids_t, y_t, CLASSES, ("a", "b", "c"))


@pytest.fixture(scope="module")
def token_scenario():
    """A user's scenario of token ids (int64), registered as users register their own."""
    from dataclasses import dataclass

    from obliviate.config import param

    @dataclass(frozen=True)
    class Options:
        model: str = param("test_user_models:tiny_bert", help="the model")

    SCENARIOS.add("test-tokens", ScenarioSpec(
        name="test-tokens", description="token ids", source="generated", options=Options,
        build=_token_splits, recipes={"test_user_models:tiny_bert": BERT_RECIPE},
        model_options=lambda splits: {"vocab_size": VOCAB}))
    yield "test-tokens"
    SCENARIOS.remove("test-tokens")


def _bench(tmp_path, scenario, protocol, models=None, sets=(), methods=("finetune",)):
    cfg = BenchConfig(scenario=scenario, methods=list(methods), protocol=protocol,
                      models=models, out=tmp_path / protocol, set=list(sets),
                      cache=tmp_path / "cache")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the loop fallback's notice
        board = BenchRun(cfg).run()
    return board.set_index("method"), tmp_path / "cache"


@pytest.mark.parametrize("protocol", ["quick", "challenge", "ulira"])
def test_protocols_on_the_bn_dropout_cnn(tmp_path, cnn_name, protocol):
    models = {"quick": None, "challenge": 4, "ulira": 6}[protocol]
    sets = [f"scenario.model={cnn_name}", "recipe.epochs=2", "recipe.lr=0.003",
            "finetune.epochs=1", *(["protocol.targets=2"] if protocol == "ulira" else [])]
    board, cache = _bench(tmp_path, "digits", protocol, models, sets)
    assert set(board.index) == {"original", "retrain (reference)", "finetune"}
    column = {"quick": "TA", "challenge": "TA", "ulira": "TA"}[protocol]
    assert (board[column] > 0.6).all(), board
    if protocol == "challenge":
        assert board.loc["retrain (reference)", "F"] > 0 and board.loc["original", "F"] == 0
    if protocol != "quick":
        infos = [json.loads(_meta(p)["info"]) for p in cache.glob("*.safetensors")]
        assert {i["mode"] for i in infos if "mode" in i} == {"vmap"}


def test_protocols_on_the_tiny_bert(tmp_path, token_scenario):
    sets = ["recipe.epochs=2", "finetune.epochs=1", "finetune.lr=0.01"]
    quick, _ = _bench(tmp_path, token_scenario, "quick", None, sets)
    assert np.isfinite(quick.loc["finetune", "avg_gap"])
    board, cache = _bench(tmp_path, token_scenario, "challenge", 3, sets)
    assert np.isfinite(board.loc["finetune", "F"]) and board.loc["original", "F"] == 0
    infos = [json.loads(_meta(p)["info"]) for p in cache.glob("*.safetensors")]
    assert {i["mode"] for i in infos if "mode" in i} == {"loop"}  # vmap refuses HF attention
    ulira, _ = _bench(tmp_path, token_scenario, "ulira", 5, [*sets, "protocol.targets=1"])
    assert 0 <= ulira.loc["finetune", "attack_acc"] <= 1


def _meta(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata() or {})


# ---------------------------------------------------------------------------- float64, device
@pytest.mark.parametrize("name", CLASSIFIER_METHODS)
def test_every_method_on_a_float64_model(name):
    from conftest import tiny_problem

    model, forget, retain = tiny_problem(hidden_layers=1)
    model = model.double()
    as64 = lambda loader: DataLoader(  # noqa: E731
        [(x.double(), y) for x, y in loader.dataset], batch_size=loader.batch_size)
    info = ob.METHODS.get(name)
    out = ob.unlearn(model, as64(forget), as64(retain), method=name, seed=0,
                     recipe=Recipe(epochs=1), **small(info))
    logits, _ = predict(out, as64(forget))
    assert np.isfinite(logits).all()
    assert {p.dtype for p in out.parameters()} == {torch.float64}, name


def test_device_and_mixed_precision_options(cnn_digits):
    sc, original, _ = cnn_digits
    out = ob.unlearn(original, sc.forget_loader(), sc.retain_loader(), method="finetune",
                     epochs=1, device="auto")
    assert next(out.parameters()).device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    model, _ = train_model("test-bn-cnn", sc.input_shape, 10, sc.x_retain, sc.y_retain,
                           sc.recipe, seed=0, device="cpu", amp=True)  # bfloat16 autocast
    assert next(model.parameters()).dtype == torch.float32
    assert accuracy(predict(model, sc.test_loader())[0], sc.splits.y_test.numpy()) > 0.6
    if not torch.cuda.is_available():
        with pytest.raises(ob.ConfigError, match="CUDA is not available"):
            ob.unlearn(original, sc.forget_loader(), sc.retain_loader(), device="cuda")


# ---------------------------------------------------------------------------- vmap fallbacks
def test_fisher_and_influence_loops_equal_their_vmap_form(monkeypatch):
    """Where vmap cannot trace a model the per-example loop runs; on one it can, both agree."""
    import obliviate.methods.fisher as fisher
    import obliviate.methods.influence as influence
    from conftest import tiny_problem

    model, _, shuffled = tiny_problem(hidden_layers=1)
    model.eval()
    retain = DataLoader(shuffled.dataset, batch_size=32)  # the same first 50 examples each pass
    vectorised = fisher.diagonal_fisher(model, retain, max_samples=50)
    grads = torch.cat(list(influence.per_example_gradients(model, retain, limit=50)))

    def refuse(*args, **kwargs):
        raise RuntimeError("vmap: It looks like you're attempting to use a Tensor in some "
                           "data-dependent control flow.")

    monkeypatch.setattr(fisher, "vmap", refuse)
    monkeypatch.setattr(influence, "vmap", refuse)
    looped = fisher.diagonal_fisher(model, retain, max_samples=50)
    for name, value in vectorised.items():
        torch.testing.assert_close(looped[name], value, rtol=1e-4, atol=1e-8)
    looped_grads = torch.cat(list(influence.per_example_gradients(model, retain, limit=50)))
    assert looped_grads.shape == (50, sum(p.numel() for p in model.parameters()))
    torch.testing.assert_close(looped_grads, grads, rtol=1e-4, atol=1e-7)


def test_timed_warms_up_and_takes_the_median_of_short_runs():
    import time

    from obliviate.timer import timed

    calls = []

    def work():
        calls.append(1)
        time.sleep(0.05 if len(calls) == 1 else 0.001)  # a slow first call (imports, kernels)
        return len(calls)

    result, seconds = timed(work, min_total_s=0.1, max_runs=5)
    assert result == 1 and len(calls) == 6  # the first call's result; five warm runs after it
    assert seconds < 0.02  # the warm-up's 50 ms is left out of the median
    calls.clear()
    assert timed(work, min_total_s=0.01)[1] >= 0.05 and len(calls) == 1  # long enough as is
    with pytest.raises(ob.ConfigError, match="max_runs >= 1"):
        timed(work, max_runs=0)


def test_repeated_runs_are_warmed_up_once_per_process_and_key():
    import time

    from obliviate.timer import timed_warm_once

    calls = []

    def work():
        calls.append(1)
        time.sleep(0.05 if len(calls) == 1 else 0.002)
        return len(calls)

    key = ("test", object())  # a key no other test uses
    result, seconds = timed_warm_once(key, work)
    assert result == 1 and len(calls) == 4 and seconds < 0.02  # warm-up, then timed's repeats
    for n in range(5, 8):  # then each run is timed once, as itself
        result, seconds = timed_warm_once(key, work)
        assert result == n and len(calls) == n and 0.001 < seconds < 0.04
