"""Bad input to ``obliviate sisa``: exit status 2, one line on stderr naming the problem and the
fix, no traceback, and nothing in the model folder changed."""

import hashlib
import shutil

import pytest

import obliviate as ob
from obliviate.sisa import SisaModel

RECIPE = ob.Recipe(optimizer="sgd", lr=0.05, epochs=2, batch_size=64)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model of 400 examples (groups of 10) from which request 1 deleted ids 3 and 4."""
    import numpy as np

    sc = ob.load_scenario("digits", model="mlp")
    root = tmp_path_factory.mktemp("sisa") / "model"
    model = SisaModel.train(root, sc.splits.x_train[:400], sc.splits.y_train[:400],
                            model_name="mlp", shards=2, slices=2, recipe=RECIPE, seed=0,
                            num_classes=10, groups=np.arange(400) // 10)
    model.forget([3, 4])
    model.close()
    return root


@pytest.fixture
def folder(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "m")
    return tmp_path / "m"


def fingerprint(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "writer.lock"}


def refused(capsys, *args):
    """Run ``obliviate sisa ARGS`` in this process; assert a one-line refusal; return it."""
    from obliviate.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["sisa", *map(str, args)])
    out = capsys.readouterr()
    assert exc.value.code == 2, (out.out, out.err)
    assert out.err.count("\n") == 1 and "Traceback" not in out.err, out.err
    assert out.err.startswith("obliviate: error: ")
    return out.err


IDS_FILES = [
    ("3\n12345678901234567890123\n", "line 2: training index 12345678901234567890123 is out of "
                                     "range: the training set has 400 examples (valid ids "
                                     "0..399)"),
    ("3\nabc\n", "line 2: 'abc' is not an integer; write one training index per line"),
    ("1.5\n", "line 1: '1.5' is not an integer"),
    ("400\n", "line 1: training index 400 is out of range"),
    ("-1\n", "line 1: training index -1 is out of range"),
    ("7\n8\n7\n", "line 3: training index 7 is listed twice (also on line 1); list each id once"),
    ("# nothing\n\n", "holds no training indices; give at least one id"),
    ("5\n3\n", "Training index 3 was already deleted by request 1 (complete); deleting it twice "
               "is refused"),
]


@pytest.mark.parametrize(("text", "message"), IDS_FILES)
def test_forget_refuses_a_bad_ids_file(folder, tmp_path, capsys, text, message):
    before = fingerprint(folder)
    (tmp_path / "ids.txt").write_text(text)
    assert message in refused(capsys, "forget", folder, "--ids", tmp_path / "ids.txt", "--quiet")
    assert fingerprint(folder) == before


def test_forget_refuses_unreadable_ids_and_group_files(folder, tmp_path, capsys):
    before = fingerprint(folder)
    assert "The --ids file" in refused(capsys, "forget", folder, "--ids", tmp_path / "no.txt")
    assert "does not exist; give a text file" in refused(capsys, "forget", folder, "--ids",
                                                         tmp_path / "no.txt")
    assert "Cannot read the --ids file" in refused(capsys, "forget", folder, "--ids", tmp_path)
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    assert "it is not UTF-8 text" in refused(capsys, "forget", folder, "--ids",
                                             tmp_path / "bin.txt")
    (tmp_path / "g.txt").write_text("999\n")
    assert "Group 999 does not occur" in refused(capsys, "forget", folder, "--groups",
                                                 tmp_path / "g.txt")
    (tmp_path / "g.txt").write_text("12345678901234567890123\n")
    assert "too large for a group id" in refused(capsys, "forget", folder, "--groups",
                                                 tmp_path / "g.txt")
    (tmp_path / "g.txt").write_text("2\n")
    (tmp_path / "ids.txt").write_text("25\n")  # also in group 2
    assert "Training index 25 appears twice in one request" in refused(
        capsys, "forget", folder, "--ids", tmp_path / "ids.txt", "--groups", tmp_path / "g.txt")
    assert fingerprint(folder) == before


DAMAGE = [
    ("sisa.json", b"{not json", "sisa.json is unreadable (Expecting property name"),
    ("sisa.json", b"[]", "sisa.json has format 'list'; this version of obliviate reads"),
    ("sisa.json", None, "is not a SISA model directory (no sisa.json); create one with"),
    ("data.safetensors", None, "data.safetensors is missing; it holds the training set that the "
                               "ids point into: restore it from a backup"),
    ("data.safetensors", b"garbage", "data.safetensors is unreadable"),
    ("ledger.sqlite", None, "ledger.sqlite is missing; restore it from a backup (it is the only "
                            "record of which checkpoints are served"),
    ("ledger.sqlite", b"garbage" * 200, "ledger.sqlite is unreadable (file is not a database); "
                                        "restore it from a backup"),
    ("ledger.sqlite", b"", "ledger.sqlite is unreadable (it holds no SISA tables)"),
]


@pytest.mark.parametrize(("name", "content", "message"), DAMAGE)
def test_a_damaged_model_folder_is_refused_with_what_to_do(folder, tmp_path, capsys, name,
                                                           content, message):
    if content is None:
        (folder / name).unlink()
    else:
        (folder / name).write_bytes(content)
    before = fingerprint(folder)
    (tmp_path / "ids.txt").write_text("5\n")
    for args in (("status", folder), ("forget", folder, "--ids", tmp_path / "ids.txt"),
                 ("retry", folder, "1"), ("cancel", folder, "1")):
        assert message in refused(capsys, *args)
    assert fingerprint(folder) == before


def test_sisa_json_with_a_missing_field_is_refused(folder, capsys):
    import json

    config = json.loads((folder / "sisa.json").read_text())
    del config["plan"]
    (folder / "sisa.json").write_text(json.dumps(config))
    assert "sisa.json is malformed (KeyError: 'plan')" in refused(capsys, "status", folder)


def test_retry_and_cancel_refuse_requests_that_do_not_exist_or_cannot_change(folder, capsys):
    before = fingerprint(folder)
    for verb in ("retry", "cancel"):
        assert "There is no deletion request 99 in" in refused(capsys, verb, folder, "99")
        assert "There is no deletion request 12345678901234567890123" in refused(
            capsys, verb, folder, "12345678901234567890123")
        assert "REQUEST must be a request id (an integer such as 3)" in refused(
            capsys, verb, folder, "abc")
    assert "Request 1 is complete; only a failed request can be retried" in refused(
        capsys, "retry", folder, "1")
    assert "a completed deletion cannot be undone" in refused(capsys, "cancel", folder, "1")
    assert fingerprint(folder) == before


def test_a_failed_retrain_on_the_command_line_is_one_line_and_keeps_the_served_version(folder,
                                                                                    tmp_path,
                                                                                    capsys):
    model = SisaModel.open(folder, recover=False)
    idx = int(model.plan.members[0][1][0])  # shard 0 from slice 1: needs its slice 0
    base = folder / "shard000" / f"slice00.v{model.ledger.checkpoint_versions()[(0, 0)]}" \
                                 ".safetensors"
    model.close()
    base.unlink()
    (tmp_path / "ids.txt").write_text(f"{idx}\n")
    err = refused(capsys, "forget", folder, "--ids", tmp_path / "ids.txt", "--quiet")
    assert "Deletion request 2 failed: Checkpoint" in err and "is missing" in err
    assert f"run 'obliviate sisa retry {folder} 2'" in err
    model = SisaModel.open(folder, recover=False)
    assert model.ledger.request(2).status == "failed" and model.ledger.version() == 1
    model.close()


TRAIN = [
    (["--shards", "0"], "SISA needs at least one shard and one slice (--shards and --slices "
                        "must be >= 1). Got shards=0"),
    (["--slices", "-1"], "Got shards=4, slices=-1 instead"),
    (["--epochs", "0"], "The 'epochs' parameter of recipe must be an int >= 1. Got 0"),
    (["--shards", "5000"], "cannot cut"),
    (["--aggregation", "median"], "SISA aggregation must be one of mean, vote"),
]


@pytest.mark.parametrize(("args", "message"), TRAIN)
def test_train_refuses_impossible_settings_before_writing_anything(tmp_path, capsys, args,
                                                                   message):
    out = tmp_path / "new"
    assert message in refused(capsys, "train", "digits", "--option", "model=mlp", "--out", out,
                              *args)
    assert not out.exists()


def test_train_refuses_an_out_folder_that_holds_a_model_or_other_files(folder, tmp_path,
                                                                       capsys):
    before = fingerprint(folder)
    assert f"{folder} already holds a SISA model; choose another --out" in refused(
        capsys, "train", "digits", "--option", "model=mlp", "--out", folder)
    assert fingerprint(folder) == before
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    assert "is not empty and holds no SISA model (it has 'todo.txt')" in refused(
        capsys, "train", "digits", "--option", "model=mlp", "--out", tmp_path / "notes")
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["todo.txt"]
    assert "is a file, not a folder" in refused(
        capsys, "train", "digits", "--option", "model=mlp", "--out", tmp_path / "notes" /
        "todo.txt")
