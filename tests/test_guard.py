"""The result guard of ob.unlearn / unlearn_lm, and the bench's no-op and near-chance statuses."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import obliviate as ob
from obliviate.bench.leaderboard import near_chance, row_noop
from obliviate.errors import (
    CollapseWarning,
    ConfigError,
    NoOpWarning,
    UnlearningCheckError,
    UnlearningWarning,
)


def quiet_unlearn(*args, **kwargs):
    """ob.unlearn, returning the unlearning warnings it emitted."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ob.unlearn(*args, **kwargs)
    return [w for w in seen if issubclass(w.category, UnlearningWarning)]


def test_a_step_too_small_to_move_anything_is_flagged_no_op(digits, digits_original):
    loaders = (digits.forget_loader(), digits.retain_loader())
    seen = quiet_unlearn(digits_original, *loaders, method="neggrad", lr=1e-9)
    assert [w.category for w in seen] == [NoOpWarning]
    text = str(seen[0].message)
    assert text.startswith("neggrad changed almost nothing: forget loss") and "lr" in text
    with pytest.raises(UnlearningCheckError, match="neggrad changed almost nothing") as err:
        ob.unlearn(digits_original, *loaders, method="neggrad", lr=1e-9, guard="raise")
    assert err.value.kind == "no-op"


def test_a_method_that_returns_the_weights_unchanged_is_flagged(digits, digits_original):
    def keep(model, data, cfg):
        return model

    seen = quiet_unlearn(digits_original, digits.forget_loader(), digits.retain_loader(),
                         method=keep)
    assert len(seen) == 1 and "returned the model's weights unchanged" in str(seen[0].message)


def test_a_collapse_is_flagged_and_a_good_run_is_not(digits, digits_original):
    loaders = (digits.forget_loader(), digits.retain_loader())
    seen = quiet_unlearn(digits_original, *loaders, method="neggrad", lr=0.5, epochs=5)
    assert [w.category for w in seen] == [CollapseWarning]
    assert "neggrad collapsed: retain accuracy fell from 1.000 to" in str(seen[0].message)
    with pytest.raises(UnlearningCheckError) as err:
        ob.unlearn(digits_original, *loaders, method="neggrad", lr=0.5, epochs=5, guard="raise")
    assert err.value.kind == "collapse"
    assert quiet_unlearn(digits_original, *loaders, method="finetune", epochs=1) == []
    assert quiet_unlearn(digits_original, *loaders, method="neggrad", lr=1e-9, guard="off") == []
    with pytest.raises(ConfigError, match="'guard' parameter must be one of warn, raise, off"):
        ob.unlearn(digits_original, *loaders, method="finetune", guard="loud")


def test_the_language_model_guard_flags_a_no_op(tmp_path_factory):
    from obliviate.llm import unlearn_lm
    from test_llm_track import FAST, toy_models

    sc, original, _, _ = toy_models(tmp_path_factory)
    with pytest.raises(UnlearningCheckError, match="ga changed almost nothing") as err:
        unlearn_lm(original, sc.forget_set(), method="ga", guard="raise",
                   **{**FAST, "lr": 1e-12, "epochs": 1})
    assert err.value.kind == "no-op"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlearningWarning)
        unlearn_lm(original, sc.forget_set(), method="ga", guard="off",
                   **{**FAST, "lr": 1e-12, "epochs": 1})


def test_leaderboard_says_no_op_and_near_chance_reference():
    orig = {0: {"RA": 0.9, "FA": 0.8, "TA": 0.7}, 1: {"RA": 0.91, "FA": 0.8, "TA": 0.7}}
    same = [dict(orig[0]), dict(orig[1])]
    assert row_noop([0, 1], same, orig).startswith("no-op: RA, FA, TA identical")
    moved = [dict(orig[0]), {**orig[1], "FA": 0.75}]  # one seed moved: not a no-op
    assert row_noop([0, 1], moved, orig) == ""
    chance = {"RA": 0.1, "TA": 0.1}
    assert near_chance(("RA", "TA"), {"RA": 0.12, "TA": 0.11}, chance).startswith(
        "near chance: RA 0.120 (chance 0.100)")
    assert near_chance(("RA", "TA"), {"RA": 0.9, "TA": np.nan}, chance) == ""


def test_lr_auto_calibrates_a_no_op_default_and_records_the_sweep(digits, digits_original):
    loaders = (digits.forget_loader(), digits.retain_loader())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        out = ob.unlearn(digits_original, *loaders, method="neggrad", lr="auto", epochs=5)
        again = ob.unlearn(digits_original, *loaders, method="neggrad", lr="auto", epochs=5)
    cal = out.obliviate_calibration
    assert cal["field"] == "lr" and cal["default"] == 1e-4 and cal["value"] > 1e-4
    assert again.obliviate_calibration == cal  # deterministic for a seed
    chosen = next(t for t in cal["trials"] if t.get("lr") == cal["value"])
    original = cal["trials"][0]
    assert chosen["forget_loss"] > 2 * original["forget_loss"]  # the forget loss moved
    assert chosen["held_out_retain_acc"] >= 0.9 * original["held_out_retain_acc"]
    with pytest.raises(ConfigError, match="has no parameter 'lr' to calibrate"):
        ob.unlearn(digits_original, *loaders, method="influence", lr="auto")


def class_split(sc, label: int):
    """Loaders forgetting every training row of ``label`` (the original saw them all)."""
    from torch.utils.data import DataLoader, TensorDataset

    x = torch.cat([torch.as_tensor(sc.x_retain), torch.as_tensor(sc.x_forget)])
    y = torch.cat([torch.as_tensor(sc.y_retain), torch.as_tensor(sc.y_forget)])
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    loader = lambda m: DataLoader(TensorDataset(x[m], y[m]), batch_size=64,  # noqa: E731
                                  shuffle=True, generator=gen())
    return loader(y == label), loader(y != label)


def test_lr_auto_finetune_holds_on_the_full_run_and_falls_back_when_it_does_not(
        digits, digits_original, caplog):
    """Trials as long as the real run, a margin, and a final check on the full run: on digits,
    finetune's calibrated lr keeps retain accuracy and moves the forget loss (the old sweep kept
    lr=1.0, which collapses the full run); where the chosen value loses utility on the full run,
    the calibration falls back one grid step and records it."""
    from obliviate.calibrate import KEEP
    from obliviate.guard import probe, sample_batches

    forget, retain = class_split(digits, 3)
    rows = sample_batches(forget, 400), sample_batches(retain, 400)
    before = probe(digits_original, *rows)
    with warnings.catch_warnings(record=True) as seen, caplog.at_level("INFO", "obliviate"):
        warnings.simplefilter("always")
        out = ob.unlearn(digits_original, forget, retain, method="finetune", lr="auto")
    assert not [w for w in seen if issubclass(w.category, UnlearningWarning)]
    cal = out.obliviate_calibration
    assert cal["default"] == 0.1 and 0.1 < cal["value"] < 1.0 and cal["note"] == ""
    assert f"calibrated lr = {cal['value']:g}" in caplog.text
    trials = [t for t in cal["trials"][1:] if not t.get("full_run")]
    assert [t["factor"] for t in trials] == sorted(t["factor"] for t in trials)
    assert any(t["factor"] > cal["value"] / 0.1 and t["held_out_retain_acc"] < 0.5
               for t in trials)  # the edge was found in trials of the real run's length
    after = probe(out, *rows)
    assert after.retain_acc >= before.retain_acc - 0.05  # retain accuracy kept
    assert after.forget_loss > 100 * before.forget_loss  # the forget loss moved (0.001 -> 1.5)

    # a random forget set: the trial at 3.2 x 0.1 kept utility, its full run did not
    loaders = (digits.forget_loader(), digits.retain_loader())
    out = ob.unlearn(digits_original, *loaders, method="finetune", lr="auto", guard="raise")
    cal = out.obliviate_calibration
    full = [t for t in cal["trials"] if t.get("full_run")]
    assert len(full) == 2 and full[1]["lr"] < full[0]["lr"] and "fell back" in cal["note"]
    original = cal["trials"][0]["held_out_retain_acc"]
    assert full[0]["held_out_retain_acc"] < KEEP * original <= full[1]["held_out_retain_acc"]
    assert cal["value"] == full[1]["lr"]


def test_lr_auto_works_on_language_model_methods(tmp_path_factory):
    from obliviate.llm import unlearn_lm
    from test_llm_track import FAST, toy_models

    sc, original, _, _ = toy_models(tmp_path_factory)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        out = unlearn_lm(original, sc.forget_set(), sc.retain_set(), method="ga",
                         **{**FAST, "lr": "auto", "epochs": 1})
    cal = out.obliviate_calibration
    assert cal["field"] == "lr" and cal["default"] == 1e-5  # ga's authors' lr
    assert len(cal["trials"]) >= 2 and cal["value"] in [t["lr"] for t in cal["trials"][1:]]


def test_a_zero_model_utility_names_its_zero_terms():
    from obliviate.bench.leaderboard import zero_utility

    row = {"model_utility": 0.0, "retain_prob": 0.4, "retain_rouge": 0.3, "real_rouge": 0.0,
           "world_prob": 0.5, "world_rouge": 0.2, "real_prob": 0.3}
    assert zero_utility(row).startswith("model utility 0 because real_rouge = 0")
    assert zero_utility({**row, "model_utility": 0.3}) == ""


def test_retain_eval_beyond_the_data_is_clipped_with_a_note(caplog):
    import logging

    from obliviate.llm import load_tofu

    with caplog.at_level(logging.WARNING, logger="obliviate"):
        sc = load_tofu("authors:0.25", size="toy", retain_eval=1000)
    assert len(sc.retain_eval_qa) == len(sc.retain_qa)
    assert f"retain_eval=1000 is more than the {len(sc.retain_qa)} retained" in caplog.text


def test_bench_set_lr_auto_calibrates_once_and_records_the_choice_in_config_json(tmp_path):
    """``--set finetune.lr=auto`` through the executable, on the user's own npz: calibrated
    once on seed 0's original, every seed run at the chosen lr, the sweep in config.json;
    refused (exit 2, one line) on a scenario whose models have no accuracy to judge by."""
    import json

    from conftest import run_cli

    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 6)).astype("float32")
    np.savez(tmp_path / "mine.npz", X=x, y=(x[:, 0] + x[:, 1] > 0).astype("int64"))
    out = tmp_path / "b"
    proc = run_cli("bench", "custom", "--data", f"npz:{tmp_path}/mine.npz", "-m", "finetune",
                   "--set", "finetune.lr=auto", "--set", "finetune.epochs=1", "--set",
                   "recipe.epochs=4", "--seeds", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-800:]
    doc = json.loads((out / "config.json").read_text())
    entry = doc["methods"]["finetune"]
    cal = entry["calibration"]
    assert entry["config"]["lr"] == "auto" and cal["field"] == "lr" and cal["default"] == 0.1
    assert cal["value"] in [t["lr"] for t in cal["trials"] if t.get("full_run")]
    assert any(n.startswith(f"finetune: lr='auto' chose {cal['value']:g}") for n in doc["notes"])
    proc = run_cli("bench", "shuttle", "-m", "finetune", "--set", "finetune.lr=auto",
                   "--out", str(tmp_path / "s"))
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "finetune.lr=auto judges trials by accuracy" in proc.stderr
