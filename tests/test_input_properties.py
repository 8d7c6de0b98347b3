"""Property-based tests over every reader of user input (issue #19 part 4).

For any generated input, a reader either succeeds or raises an :class:`ObliviateError` whose
message is one line; any other exception (``ValueError``, ``TypeError``, a numpy or pyarrow
error, ...) is a bug. Readers: ids files, forget specs, ``--set`` values, YAML bench configs,
npz, CSV, idx and CIFAR folders, image folders, TOFU and MUSE files, ``sisa.json``, a run's
``config.json`` and the model cache's safetensors metadata.

Run time is bounded by a hypothesis profile: ``obliviate-ci`` (the default, a few examples per
reader, seconds in all) or ``fuzz`` (``make fuzz``: many more), chosen by the environment
variable ``HYPOTHESIS_PROFILE``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from obliviate.errors import ObliviateError  # noqa: E402

COMMON = dict(deadline=None, derandomize=False, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
settings.register_profile("obliviate-ci", max_examples=12, **COMMON)
settings.register_profile("fuzz", max_examples=1500, **COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "obliviate-ci")


def _profile(scale: float = 1.0):
    """This module's profile, with ``scale`` times its examples (slow readers take fewer)."""
    base = settings.get_profile(PROFILE)
    return settings(base, max_examples=max(3, int(base.max_examples * scale)))


def succeeds_or_one_line(read: Callable[[], Any]) -> Any:
    """Call ``read``; an ObliviateError must be one line, anything else fails the test."""
    try:
        return read()
    except ObliviateError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message, repr(message)
        return exc


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="obliviate-prop-"))


TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FFF), max_size=60)
LINES = st.lists(st.one_of(
    st.integers(-5, 60).map(str), st.from_regex(r"[+-]?[0-9_]{1,25}", fullmatch=True),
    TEXT.filter(lambda s: "\n" not in s and "\r" not in s),
    st.sampled_from(["\u0661\u0662", "\uff13", "0x1f", "1e3", "# comment", "", " 7 ", "nan",
                     "\x00", "3 # note"])), max_size=12)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                         st.floats(allow_nan=False), TEXT)
JSON = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)


# ----------------------------------------------------------------------------- ids files
@_profile()
@given(lines=LINES, raw=st.one_of(st.none(), st.binary(max_size=40)))
def test_ids_files(lines, raw):
    from obliviate.data.forget import select_forget

    path = _scratch() / "ids.txt"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    labels = np.arange(50) % 5
    succeeds_or_one_line(lambda: select_forget(f"ids:{path}", labels, seed=0))


# ----------------------------------------------------------------------------- forget specs
KINDS = ["random", "class", "classes", "ids", "groups", "mislabeled", "poisoned", "subclass"]
SPECS = st.one_of(
    TEXT,
    st.tuples(st.sampled_from(KINDS + ["", "Random", "bogus"]), st.one_of(
        TEXT, st.floats().map(repr), st.integers(-10**30, 10**30).map(str),
        st.lists(st.integers(-3, 12), max_size=5).map(lambda v: ",".join(map(str, v))),
        st.sampled_from(["\u0661\u0662", "1_0", "0.5", "1e-400", "inf", "-0", "3,,4", ".5",
                         "5.", "1e308", "0x10"]))).map(lambda kv: f"{kv[0]}:{kv[1]}"))


@_profile(2)
@given(spec=SPECS, seed=st.integers(0, 2**32 - 1), with_groups=st.booleans())
def test_forget_specs(spec, seed, with_groups):
    from obliviate.data.forget import parse_forget_spec, select_forget

    labels = np.arange(60) % 6
    groups = np.arange(60) // 4 if with_groups else None
    parsed = succeeds_or_one_line(lambda: parse_forget_spec(spec))
    if isinstance(parsed, ObliviateError) or parsed.kind in ("mislabeled", "poisoned",
                                                              "subclass", "ids"):
        return
    idx = succeeds_or_one_line(lambda: select_forget(spec, labels, seed, groups=groups))
    if not isinstance(idx, ObliviateError):
        assert 0 < len(idx) < len(labels) and len(set(idx.tolist())) == len(idx)


# ----------------------------------------------------------------------------- --set values
SET_ITEMS = st.lists(st.one_of(
    TEXT, st.tuples(st.sampled_from(["finetune", "scrub", "recipe", "scenario", "protocol",
                                     "x.y", ""]),
                    st.sampled_from(["lr", "epochs", "batch_size", "alpha", "nosuch", "",
                                     "train_size", "split_seed"]),
                    st.one_of(TEXT, st.integers().map(str), st.floats().map(repr),
                              st.sampled_from(["[1", "{a: 1}", "!!python/name:os.system",
                                               "yes", "~", "1e400", "-0", "0x10"])))
    .map(lambda t: f"{t[0]}.{t[1]}={t[2]}")), max_size=4)


@_profile()
@given(items=SET_ITEMS)
def test_set_values(items):
    from obliviate.bench.config import parse_assignments
    from obliviate.config import build_config
    from obliviate.train import Recipe
    from obliviate.unlearning import resolve_method

    sets = succeeds_or_one_line(lambda: parse_assignments(items))
    if isinstance(sets, ObliviateError):
        return
    for owner, values in sets.items():
        if owner == "recipe":
            succeeds_or_one_line(lambda v=values: build_config(Recipe, v, "recipe"))
        elif owner in ("finetune", "scrub"):
            info = resolve_method(owner)
            succeeds_or_one_line(lambda v=values, i=info: i.build_config(v))


@_profile(0.5)
@given(grid=st.lists(TEXT, max_size=3), seeds=TEXT, sets=st.lists(TEXT, max_size=2))
def test_tune_command_line_values(grid, seeds, sets):
    from obliviate.cli.tune import parse_grid, parse_seeds, parse_sets

    succeeds_or_one_line(lambda: parse_grid(grid))
    succeeds_or_one_line(lambda: parse_seeds(seeds))
    succeeds_or_one_line(lambda: parse_sets(sets))


# ----------------------------------------------------------------------------- YAML configs
YAML_TEXT = st.one_of(
    TEXT,
    st.lists(st.tuples(st.sampled_from(["scenario", "methods", "forget", "seeds", "models",
                                        "out", "set", "cache", "quiet", "metods", "device"]),
                       st.sampled_from(["digits", "[finetune]", "5", "-1", "''", "[1, 2]",
                                        "{a: 1}", "true", "~", "!!binary aGk=", "&a x", "*a",
                                        "[", "2001-13-40", "1e999", ".nan", "'\u0661'"])),
             max_size=6).map(lambda kv: "".join(f"{k}: {v}\n" for k, v in kv)))


@_profile(2)
@given(text=YAML_TEXT)
def test_yaml_bench_configs(text):
    from obliviate.bench.config import BenchConfig
    from obliviate.yamlfile import read_yaml_mapping

    path = _scratch() / "bench.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    data = succeeds_or_one_line(lambda: read_yaml_mapping(path))
    if isinstance(data, dict):
        succeeds_or_one_line(lambda: BenchConfig.from_mapping(data))


# ----------------------------------------------------------------------------- npz
DTYPES = st.sampled_from(["float32", "float64", "int64", "int8", "uint8", "bool", "complex64",
                          "float16", "U3", "S2", "datetime64[s]", "int32"])
ARRAYS = DTYPES.flatmap(lambda d: hnp.arrays(np.dtype(d), hnp.array_shapes(
    min_dims=0, max_dims=3, min_side=0, max_side=5)))


@_profile(2)
@given(arrays=st.dictionaries(st.sampled_from(["X", "y", "groups", "X_test", "y_test", "z"]),
                              ARRAYS, max_size=5),
       raw=st.one_of(st.none(), st.binary(max_size=64)))
def test_npz_files(arrays, raw):
    from obliviate.data.user_data import load_user_data

    path = _scratch() / "data.npz"
    if raw is not None:
        path.write_bytes(raw)
    else:
        np.savez(path, **arrays)
    succeeds_or_one_line(lambda: load_user_data(f"npz:{path}"))


# ----------------------------------------------------------------------------- CSV
CELLS = st.one_of(st.integers(-3, 3).map(str), st.floats().map(repr), TEXT.filter(
    lambda s: not any(c in s for c in ",\n\r\"")), st.sampled_from(["", "0.5", "nan", "a"]))


@_profile()
@given(header=st.lists(CELLS, min_size=0, max_size=4),
       rows=st.lists(st.lists(CELLS, min_size=0, max_size=4), max_size=8),
       raw=st.one_of(st.none(), st.binary(max_size=60)),
       target=st.sampled_from(["", "nosuch", "label"]), group=st.sampled_from(["", "g"]))
def test_csv_files(header, rows, raw, target, group):
    from obliviate.data.user_data import ReadOptions, load_user_data

    path = _scratch() / "data.csv"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n",
                        encoding="utf-8", errors="surrogatepass")
    opts = ReadOptions(target=target, group_column=group)
    succeeds_or_one_line(lambda: load_user_data(f"csv:{path}", opts))


# ----------------------------------------------------------------------------- idx, CIFAR
@_profile(0.5)
@given(images=st.binary(max_size=40), labels=st.binary(max_size=20),
       header=st.tuples(st.integers(0, 255), st.integers(0, 4),
                        st.lists(st.integers(0, 2**32 - 1), max_size=4)),
       pickled=JSON)
def test_idx_and_cifar_folders(images, labels, header, pickled):
    import pickle

    from obliviate.data.user_data import load_user_data

    root = _scratch()
    kind, ndim, dims = header
    (root / "train-images-idx3-ubyte").write_bytes(
        bytes([0, 0, kind, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + images)
    (root / "train-labels-idx1-ubyte").write_bytes(labels)
    succeeds_or_one_line(lambda: load_user_data(f"idx:{root}"))
    (root / "data_batch_1").write_bytes(pickle.dumps(pickled))
    succeeds_or_one_line(lambda: load_user_data(f"cifar:{root}"))


# ----------------------------------------------------------------------------- image folders
@_profile(0.5)
@given(images=st.lists(st.tuples(
    st.sampled_from(["a", "b", "c"]), st.sampled_from([".png", ".jpg", ".bmp", ".txt"]),
    st.one_of(st.binary(max_size=30), st.tuples(
        st.sampled_from(["L", "RGB", "RGBA", "1", "P", "I;16", "F"]),
        st.integers(1, 6), st.integers(1, 6)))), max_size=5),
    size=st.integers(0, 5))
def test_image_folders(images, size):
    from PIL import Image

    from obliviate.data.user_data import ReadOptions, load_user_data

    root = _scratch()
    for i, (label, suffix, content) in enumerate(images):
        (root / label).mkdir(exist_ok=True)
        path = root / label / f"{i}{suffix}"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            mode, w, h = content
            fmt = {".jpg": "JPEG", ".bmp": "BMP"}.get(suffix, "PNG")
            try:
                Image.new(mode, (w, h)).save(path, format=fmt)
            except (OSError, ValueError, KeyError):  # a mode this format cannot hold
                Image.new("L", (w, h)).save(path, format=fmt)
    succeeds_or_one_line(lambda: load_user_data(f"images:{root}", ReadOptions(image_size=size)))


# ----------------------------------------------------------------------------- TOFU, MUSE
ROW = st.fixed_dictionaries({}, optional={
    "question": st.one_of(TEXT, JSON_SCALARS, st.sampled_from(["q0", "q1", "q2"])),
    "answer": st.one_of(TEXT, JSON_SCALARS, st.sampled_from(["a0", "a1"])),
    "paraphrased_answer": JSON, "perturbed_answer": JSON, "paraphrased_question": JSON,
    "text": JSON, "prompt": JSON, "gt": JSON})
SPLIT = st.one_of(st.lists(st.one_of(ROW, JSON), max_size=5).map(
    lambda rows: "\n".join(json.dumps(r) for r in rows)), TEXT, st.binary(max_size=30))
TOFU_FILES = ["full", "forget10", "forget10_perturbed", "retain_perturbed", "holdout10",
              "world_facts_perturbed", "real_authors_perturbed", "forget10_alternates"]


def _write_split(path: Path, content) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")


@_profile()
@given(files=st.dictionaries(st.sampled_from(TOFU_FILES), SPLIT, max_size=len(TOFU_FILES)),
       parquet=st.one_of(st.none(), st.binary(max_size=40)))
def test_tofu_files(files, parquet):
    from obliviate.llm.files import tofu_scenario_parts

    root = _scratch()
    for name, content in files.items():
        _write_split(root / f"{name}.json", content)
    if parquet is not None and "full" not in files:
        (root / "full.parquet").write_bytes(parquet)
    succeeds_or_one_line(lambda: tofu_scenario_parts(root, "authors:0.1", 2))


MUSE_FILES = [f"{c}/{s}" for c, splits in {
    "raw": ("forget", "retain1", "retain2", "holdout"), "verbmem": ("forget",),
    "knowmem": ("forget_qa", "retain_qa"), "privleak": ("forget", "retain", "holdout")}.items()
    for s in splits]


@_profile()
@given(files=st.dictionaries(st.sampled_from(MUSE_FILES), SPLIT, max_size=len(MUSE_FILES)),
       complete=st.booleans())
def test_muse_files(files, complete):
    from obliviate.llm.files import read_muse

    root = _scratch()
    if complete:  # every required split present, so the generated ones are read
        files = {**{n: '{"text": "t", "prompt": "p", "gt": "g"}' for n in MUSE_FILES
                    if not n.startswith("knowmem")}, **files}
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        _write_split(root / f"{name}.json", content)
    succeeds_or_one_line(lambda: read_muse(root))


# ----------------------------------------------------------------------------- sisa.json
SISA = st.one_of(JSON, st.fixed_dictionaries({"format": st.sampled_from([1, "1", None, 2])},
                                             optional={"plan": JSON, "recipe": JSON,
                                                       "seed": JSON, "input_shape": JSON,
                                                       "model": JSON, "num_classes": JSON,
                                                       "aggregation": JSON}))


@_profile(0.5)
@given(config=SISA, raw=st.one_of(st.none(), st.binary(max_size=30)))
def test_sisa_json(config, raw):
    from obliviate.sisa import SisaModel
    from obliviate.sisa.model_dir import FORMAT

    root = _scratch()
    if isinstance(config, dict) and config.get("format") == 1:
        config["format"] = FORMAT
    if raw is not None:
        (root / "sisa.json").write_bytes(raw)
    else:
        (root / "sisa.json").write_text(json.dumps(config))
    succeeds_or_one_line(lambda: SisaModel.open(root, recover=False))


# ----------------------------------------------------------------------------- config.json
RUN_CONFIG = st.one_of(JSON, st.fixed_dictionaries(
    {"protocol": st.sampled_from(["quick", "challenge", "nosuch"])},
    optional={k: JSON for k in ("bench", "scenario", "protocol_options", "versions", "notes",
                                "seeds", "n_models", "methods", "experiment")}))


@_profile()
@given(config=RUN_CONFIG, raw=st.one_of(st.none(), st.binary(max_size=30)))
def test_run_config_json(config, raw):
    from obliviate.report.rundir import read_run_config
    from obliviate.report.tables import summary

    path = _scratch() / "config.json"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text(json.dumps(config))
    cfg = succeeds_or_one_line(lambda: read_run_config(path))
    if isinstance(cfg, dict):  # what the report then reads of it must not crash
        from obliviate.bench.spec import PROTOCOLS

        run = type("Run", (), {"config": cfg, "spec": PROTOCOLS.get(cfg["protocol"])})()
        summary(run)


# ----------------------------------------------------------------------------- cache metadata
@pytest.mark.xfail(strict=False, reason="cache.py parses metadata outside its try: fixed on "
                   "branch h19a (#19 part 2, foreign cache files); drop this mark after merging")
@settings(_profile(), phases=(Phase.explicit, Phase.generate))  # an xfail need not shrink
@given(metadata=st.one_of(st.dictionaries(st.sampled_from(["info", "other"]), st.one_of(
    TEXT, JSON.map(json.dumps)), max_size=2)), raw=st.one_of(st.none(), st.binary(max_size=40)))
def test_cache_metadata(metadata, raw):
    import torch
    from safetensors.torch import save_file

    from obliviate.cache import ModelCache

    cache = ModelCache(_scratch())
    path = cache.path("fp")
    if raw is not None:
        path.write_bytes(raw)
    else:
        save_file({"weight": torch.zeros(2, 3), "bias": torch.zeros(2)}, str(path),
                  metadata=metadata)
    for read in (lambda: cache.read("fp"), lambda: cache.load("fp", torch.nn.Linear(3, 2))):
        got = succeeds_or_one_line(read)
        assert got is None or isinstance(got, tuple | ObliviateError)
