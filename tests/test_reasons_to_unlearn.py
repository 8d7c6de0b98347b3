"""Forget specs for the practical reasons to unlearn: groups, mislabeled, poisoned, subclass."""

import numpy as np
import pytest
import torch
from torch import nn

import obliviate as ob
from obliviate.bench.config import BenchConfig
from obliviate.bench.runner import BenchRun
from obliviate.data import select_forget
from obliviate.data.reasons import Backdoor
from obliviate.evaluate.backdoor import attack_success_rate


def _digits(spec, seed=0):
    return ob.load_scenario("digits", forget=spec, seed=seed, model="mlp")


# ---------------------------------------------------------------------------- mislabeled
def test_mislabeled_flips_exactly_the_forget_set_deterministically():
    clean = _digits("random:0.1")
    sc, again, other = _digits("mislabeled:0.2"), _digits("mislabeled:0.2"), _digits(
        "mislabeled:0.2", seed=1)
    y_clean, y = clean.splits.y_train.numpy(), sc.splits.y_train.numpy()
    assert len(sc.forget_idx) == round(0.2 * len(y))
    assert np.array_equal(np.flatnonzero(y != y_clean), sc.forget_idx)  # every flip is forgotten
    assert np.array_equal(y, again.splits.y_train.numpy())
    assert sc.split_hashes() == again.split_hashes()
    assert sc.split_hashes()["train"] != other.split_hashes()["train"] != \
        clean.split_hashes()["train"]
    # cached reference models are keyed by the changed data, not only by the forget set
    assert sc.fingerprint("original", 0) != clean.fingerprint("original", 0)
    assert sc.fingerprint("original", 0) != other.fingerprint("original", 0)
    assert torch.equal(sc.splits.y_test, clean.splits.y_test)
    assert np.array_equal(clean.splits.y_train.numpy(), y_clean)  # clean splits left untouched


def test_mislabeled_retrain_beats_original_on_test_accuracy():
    sc = _digits("mislabeled:0.3")
    original = ob.audit(sc.train_original(seed=0), sc).metrics
    retrained = ob.audit(sc.train_retrained(seed=0), sc).metrics
    assert original["FA"] > 0.3  # the original learned many of the wrong labels
    assert retrained["FA"] < 0.05  # the retrained model predicts the true ones instead
    assert retrained["TA"] > original["TA"] + 0.04


# ---------------------------------------------------------------------------- poisoned
def test_poisoned_plants_a_trigger_and_relabels_only_the_forget_set():
    clean, sc = _digits("random:0.1"), _digits("poisoned:0.05")
    bd = sc.backdoor
    assert isinstance(bd, Backdoor) and bd.target == 0
    assert len(sc.forget_idx) == round(0.05 * len(sc.splits.y_train))
    assert (clean.splits.y_train[sc.forget_idx] != 0).all()
    assert (sc.y_forget == 0).all()
    assert torch.equal(sc.x_forget, bd.stamp(clean.splits.x_train[sc.forget_idx]))
    assert torch.equal(sc.x_retain, clean.splits.x_train[sc.retain_idx])
    assert torch.equal(sc.y_retain, clean.splits.y_train[sc.retain_idx])
    assert 0 < int(bd.mask.sum()) <= 8  # a small 2x2 corner patch on 8x8 digits
    assert sc.fingerprint("original", 0) != clean.fingerprint("original", 0)


def test_attack_success_rate_matches_its_definition():
    bd = Backdoor(2, torch.tensor([False, False, True]), torch.tensor([0.0, 0.0, 9.0]))

    class Obeys(nn.Module):  # predicts the target exactly when the trigger is there
        def forward(self, x):
            out = torch.zeros(len(x), 3)
            out[:, 2] = (x[:, 2] == 9.0).float()
            out[:, 0] = 0.5
            return out

    x = torch.zeros(5, 3)
    y = torch.tensor([0, 1, 2, 2, 1])
    assert attack_success_rate(Obeys(), x, y, bd) == 1.0
    ignores = nn.Linear(3, 3)
    with torch.no_grad():
        ignores.weight.zero_()
        ignores.bias.copy_(torch.tensor([0.0, 1.0, 0.0]))  # always class 1
    assert attack_success_rate(ignores, x, y, bd) == 0.0
    assert np.isnan(attack_success_rate(Obeys(), x[2:4], y[2:4], bd))  # only target examples


def test_poisoned_bench_reports_asr_for_original_retrain_and_methods(tmp_path):
    cfg = BenchConfig(scenario="digits", methods=["finetune"], forget="poisoned:0.05",
                      out=tmp_path / "run", set=["scenario.model=mlp", "finetune.epochs=3"],
                      quiet=True)
    board = BenchRun(cfg).run().set_index("method")
    assert board.loc["original", "ASR"] > 0.8  # the backdoor works
    assert board.loc["retrain (reference)", "ASR"] < 0.1  # retraining without it removes it
    assert board.loc["finetune", "ASR"] == board.loc["finetune", "ASR"]  # measured, not NaN
    assert board.loc["retrain (reference)", "TA"] > 0.9


# ---------------------------------------------------------------------------- groups
def test_groups_selects_whole_groups_deterministically():
    labels = np.zeros(60, dtype=np.int64)
    groups = np.repeat(np.arange(20), 3)[np.random.default_rng(0).permutation(60)]
    idx = select_forget("groups:0.25", labels, seed=3, groups=groups)
    chosen = np.unique(groups[idx])
    assert len(chosen) == 5
    assert np.array_equal(idx, np.flatnonzero(np.isin(groups, chosen)))  # whole groups only
    assert np.array_equal(idx, select_forget("groups:0.25", labels, seed=3, groups=groups))
    assert not np.array_equal(idx, select_forget("groups:0.25", labels, seed=4, groups=groups))


def test_groups_from_users_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    path = tmp_path / "users.npz"
    np.savez(path, X=x, y=y, groups=np.arange(120) % 12)
    sc = ob.load_scenario("custom", forget="groups:0.25", seed=0, data=f"npz:{path}")
    g = sc.splits.groups.numpy()
    forgotten = set(g[sc.forget_idx])
    # whole groups are held out for test (3) and validation (1); 0.25 of the 8 left is 2
    assert len(forgotten) == 2 and not forgotten & set(g[sc.retain_idx])


@pytest.mark.parametrize(("spec", "message"), [
    ("groups:0.1", "Scenario 'digits' has no groups"),
    ("subclass:3", "Scenario 'digits' has no super-classes"),
    ("mislabeled:1.5", "strictly between 0 and 1"),
    ("poisoned:abc", "'abc' is not a number"),
    ("groups:0", "strictly between 0 and 1"),
    ("mislabeled:0.0001", "selects no example"),
])
def test_bad_reason_specs_are_refused(spec, message):
    with pytest.raises(ob.ForgetSpecError, match=message):
        _digits(spec)


# ---------------------------------------------------------------------------- subclass
def test_subclass_trains_on_superclasses_and_forgets_one_member():
    fine = ob.load_scenario("fashion", forget="class:7", train_size=500)
    sc = ob.load_scenario("fashion", forget="subclass:sneaker", train_size=500)
    assert sc.num_classes == 4 and sc.splits.class_names == ("tops", "bottoms", "shoes", "bags")
    assert np.array_equal(sc.forget_idx, fine.forget_idx)  # every sneaker, nothing else
    assert set(sc.y_forget.tolist()) == {2}  # sneakers are labelled 'shoes'
    shoes = np.isin(fine.splits.y_test.numpy(), [5, 7, 9])
    assert np.array_equal(sc.splits.y_test.numpy() == 2, shoes)
    assert np.array_equal(ob.load_scenario("fashion", forget="subclass:7",
                                           train_size=500).forget_idx, sc.forget_idx)
    with pytest.raises(ob.ForgetSpecError, match="names no class of 'fashion'"):
        ob.load_scenario("fashion", forget="subclass:boots", train_size=500)
