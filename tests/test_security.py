"""Nothing a file holds runs code or reaches outside its folder (issue 19, part 1).

Each attack is real: a foreign module beside the folder that writes a marker file when imported
(the marker must stay absent), real symbolic and hard links to a file whose content must stay
intact. Commands run in this process from the attacker's folder with that folder on
``sys.path``: the worst case, as under ``python -m obliviate`` (Python itself puts the current
folder there), so the foreign module *could* be imported and only obliviate's rule stops it.
"""

import json
import os
import shutil
import sys

import pytest
import torch

import obliviate as ob
from conftest import main_in_process
from obliviate.bench.ownership import DirectoryLock
from obliviate.errors import ConfigError, StoreError, UntrustedCodeError
from obliviate.files import write_atomic
from obliviate.sisa import SisaModel
from obliviate.sisa.lock import WriterLock

RECIPE = ob.Recipe(optimizer="sgd", lr=0.05, epochs=1, batch_size=64)
EVIL = """
import pathlib
pathlib.Path(__file__).with_name("MARKER").write_text("ran")
def f(num_classes, input_shape):
    raise SystemExit("evil factory called")
"""
GOOD = """
from obliviate.models import build_model
def f(num_classes, input_shape):
    return build_model("mlp", input_shape, num_classes)
"""


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(*args, cwd=DIR)``: run ``obliviate ARGS`` here from DIR, with DIR on sys.path;
    returns (exit status, stdout, stderr)."""
    def run(*args, cwd):
        monkeypatch.chdir(cwd)
        monkeypatch.syspath_prepend(str(cwd))
        return main_in_process(capsys, *args)

    return run


def one_line(result, *words):
    code, out, err = result
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    sc = ob.load_scenario("digits", model="mlp")
    root = tmp_path_factory.mktemp("sisa") / "model"
    SisaModel.train(root, sc.splits.x_train[:120], sc.splits.y_train[:120], model_name="mlp",
                    shards=2, slices=1, recipe=RECIPE, seed=0, num_classes=10).close()
    return root


@pytest.fixture
def shipped(trained, tmp_path):
    """An archive as an attacker packs it: a SISA folder whose sisa.json names evilmod:f, with
    evilmod.py beside it."""
    ship = tmp_path / "ship"
    shutil.copytree(trained, ship / "model")
    config = json.loads((ship / "model" / "sisa.json").read_text())
    (ship / "model" / "sisa.json").write_text(json.dumps({**config, "model": "evilmod:f"}))
    (ship / "evilmod.py").write_text(EVIL)
    (ship / "ids.txt").write_text("3\n")
    return ship


def test_a_sisa_folder_naming_a_module_runs_nothing_on_forget_retry_or_ensemble(shipped, cli):
    for args in (["forget", "model", "--ids", "ids.txt"], ["retry", "model", "1"]):
        err = one_line(cli("sisa", *args, cwd=shipped), "evilmod:f", "--model evilmod:f")
        assert "never imports" in err
    model = SisaModel.open(shipped / "model")
    with pytest.raises(UntrustedCodeError, match="model_factory='evilmod:f'"):
        model.ensemble()
    with pytest.raises(UntrustedCodeError):
        model.forget([3])
    with pytest.raises(UntrustedCodeError, match="not 'goodmod:f'"):
        SisaModel.open(shipped / "model", model_factory="goodmod:f")
    status = model.status()  # reading the folder needs no code
    assert status["model"] == "evilmod:f" and status["requests"] == []  # nothing recorded
    model.close()
    assert not (shipped / "MARKER").exists()


def test_a_factory_named_explicitly_opens_the_folder(shipped, cli):
    (shipped / "goodmod.py").write_text(GOOD)
    data = json.loads((shipped / "model" / "sisa.json").read_text())
    (shipped / "model" / "sisa.json").write_text(json.dumps({**data, "model": "goodmod:f"}))
    code, out, err = cli("sisa", "forget", "model", "--ids", "ids.txt", "--model", "goodmod:f",
                         "--quiet", cwd=shipped)
    assert code == 0, err
    assert "deleted 1 id(s)" in out
    import goodmod

    model = SisaModel.open(shipped / "model", model_factory=goodmod.f)  # the function itself
    assert model.ensemble()(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    model.close()


def test_the_working_directory_is_never_put_on_sys_path(tmp_path, monkeypatch):
    (tmp_path / "evilmod.py").write_text(EVIL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    with pytest.raises(ConfigError, match="does not search the current folder"):
        ob.models.resolve_factory("evilmod:f")
    with pytest.raises(ConfigError, match="PYTHONPATH"):
        ob.unlearn(torch.nn.Linear(2, 2), [(torch.zeros(1, 2), torch.zeros(1).long())],
                   method="evilmod:forget")
    assert str(tmp_path) not in sys.path and "" not in sys.path
    assert not (tmp_path / "MARKER").exists()


def test_a_yaml_config_naming_code_is_refused_unless_the_command_line_names_it(tmp_path, cli):
    (tmp_path / "evilmod.py").write_text(EVIL)
    (tmp_path / "exp.yaml").write_text("scenario: digits\nmethods: [finetune, evilmod:f]\n")
    (tmp_path / "model.yaml").write_text("scenario: digits\nmodel: evilmod:f\n")
    one_line(cli("validate", "exp.yaml", cwd=tmp_path), "--trust-code evilmod:f")
    one_line(cli("bench", "--config", "model.yaml", "--out", "run", cwd=tmp_path),
             "--trust-code evilmod:f")
    assert not (tmp_path / "MARKER").exists() and not (tmp_path / "run").exists()


def test_report_reads_a_run_directory_naming_code_without_importing_it(tmp_path, cli):
    from obliviate.bench.store import ResultStore

    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "evilmod.py").write_text(EVIL)
    (run / "config.json").write_text(json.dumps(
        {"scenario": {"name": "digits", "model": "evilmod:f"}, "protocol": "quick",
         "methods": {"evilmod:f": {"config": {}}}, "bench": {"model": "evilmod:f"}}))
    with ResultStore(run / "results.sqlite") as store:
        store.save("k", kind="method", method="evilmod:f", seed=0, scenario="digits",
                   protocol="quick", config={"model": "evilmod:f"}, metrics={"RA": 1.0},
                   wall_s=1.0)
    (run / "leaderboard.csv").write_text("method,seeds,status\nevilmod:f,1,ok\n")
    cli("report", "run", cwd=tmp_path)  # it may refuse the crafted folder, in one line
    assert not (tmp_path / "MARKER").exists()


def test_a_hugging_face_folder_auto_map_never_runs_its_code(tmp_path):
    from obliviate.llm.model import build_lm

    folder = tmp_path / "lm"
    build_lm("tiny-gpt2", 0, width=16, layers=1, heads=2, context=16).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil_hf.Config",
                          "AutoModelForCausalLM": "evil_hf.Model"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil_hf.py").write_text(EVIL)
    model = build_lm(str(folder), 0)
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert not (folder / "MARKER").exists()


# --------------------------------------------------------------------------- links

@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "bashrc"
    path.write_text("export KEEP=1\n")
    return path


@pytest.mark.parametrize("make", ["symlink", "hardlink"])
def test_lock_files_that_are_links_are_refused_and_their_target_kept(tmp_path, victim, make):
    for name, lock in ((".obliviate.lock", lambda d: DirectoryLock(d)),
                       ("writer.lock", lambda d: WriterLock(d).acquire("test", wait=False))):
        folder = tmp_path / f"{make}{name}"
        folder.mkdir()
        getattr(folder / name, "symlink_to" if make == "symlink" else "hardlink_to")(victim)
        with pytest.raises(StoreError, match="symbolic link|hard links"):
            lock(folder)
        assert victim.read_text() == "export KEEP=1\n"


def test_a_symlinked_writer_lock_is_one_line_on_the_command_line(shipped, victim, cli):
    (shipped / "model" / "writer.lock").unlink(missing_ok=True)
    (shipped / "model" / "writer.lock").symlink_to(victim)
    one_line(cli("sisa", "cancel", "model", "1", cwd=shipped), "symbolic link")
    assert victim.read_text() == "export KEEP=1\n"


def test_garbage_collection_deletes_only_regular_files_inside_the_folder(trained, tmp_path):
    root = tmp_path / "m"
    shutil.copytree(trained, root)
    outside = tmp_path / "elsewhere"
    shutil.move(root / "shard001", outside)
    (root / "shard001").symlink_to(outside, target_is_directory=True)
    bait = [outside / "slice00.v7.safetensors", outside / ".slice00.v7.safetensors.tmp-999999"]
    for path in bait:
        path.write_text("keep me")
    (root / "shard000" / "slice00.v8.safetensors").symlink_to(bait[0])
    garbage = root / "shard000" / "slice00.v9.safetensors"
    shutil.copy(root / "shard000" / "slice00.v0.safetensors", garbage)
    model = SisaModel.open(root, recover=False)
    assert model.collect_garbage() == [garbage] and not garbage.exists()
    assert all(p.read_text() == "keep me" for p in bait)
    assert (outside / "slice00.v0.safetensors").exists()
    with pytest.raises(StoreError, match="symbolic link"):  # nor written through
        model.save_checkpoint(1, 0, 5, {"w": torch.zeros(1)})
    assert not (outside / "slice00.v5.safetensors").exists()
    model.close()


def test_a_planted_temporary_link_is_replaced_not_written_through(tmp_path, victim):
    from obliviate.bench.store import atomic_write_text, ensure_writable_dir

    for name in (f".data.bin.tmp-{os.getpid()}", f".config.json.tmp-{os.getpid()}",
                 f".write-test-{os.getpid()}"):
        (tmp_path / name).symlink_to(victim)
    write_atomic(tmp_path / "data.bin", b"new", doing="testing")
    atomic_write_text(tmp_path / "config.json", "{}")
    ensure_writable_dir(tmp_path)
    assert (tmp_path / "data.bin").read_bytes() == b"new"
    assert (tmp_path / "config.json").read_text() == "{}"
    assert victim.read_text() == "export KEEP=1\n"
