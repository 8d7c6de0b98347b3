"""The result guard of ob.unlearn / unlearn_lm, and the bench's no-op and near-chance statuses."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

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
