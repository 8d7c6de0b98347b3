import gzip
import struct

import numpy as np
import pytest
import torch

import obliviate as ob
from obliviate.data import sources
from obliviate.evaluate.utility import accuracy, predict, tensor_batches


def test_digits_splits_are_fixed_and_disjoint(digits):
    again = ob.load_scenario("digits", forget="random:0.1", seed=0)
    assert digits.split_hashes() == again.split_hashes()
    sizes = digits.describe()["sizes"]
    assert sizes == {"train": 1258, "val": 180, "test": 359, "forget": 126, "retain": 1132}
    assert set(digits.forget_idx).isdisjoint(digits.retain_idx)
    other = ob.load_scenario("digits", forget="random:0.1", seed=1)
    assert other.split_hashes()["forget"] != digits.split_hashes()["forget"]
    assert other.split_hashes()["test"] == digits.split_hashes()["test"]


def test_training_is_deterministic_and_reaches_the_target(digits, digits_original):
    again = digits.train_original(seed=0)
    for (name, a), b in zip(digits_original.state_dict().items(), again.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    s = digits.splits
    test_acc = accuracy(*predict(digits_original, tensor_batches(s.x_test, s.y_test)))
    assert test_acc >= 0.95


def test_unknown_scenario_option_is_refused():
    with pytest.raises(ob.ConfigError, match="scenario digits has no parameter 'train_siz'"):
        ob.load_scenario("digits", train_siz=10)
    with pytest.raises(ob.ConfigError, match="'model' parameter of scenario digits"):
        ob.load_scenario("digits", model="resnet")


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_idx_reader_round_trip_and_errors(tmp_path):
    arr = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    _write_idx(tmp_path / "a.gz", arr)
    assert np.array_equal(sources.read_idx(tmp_path / "a.gz"), arr)
    bad = tmp_path / "b.gz"
    with gzip.open(bad, "wb") as fh:
        fh.write(b"\x01\x02\x03\x04")
    with pytest.raises(ob.DataError, match="not an unsigned-byte idx file"):
        sources.read_idx(bad)
    short = tmp_path / "c.gz"
    with gzip.open(short, "wb") as fh:
        fh.write(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x00" * 3)
    with pytest.raises(ob.DataError, match="truncated"):
        sources.read_idx(short)


def test_missing_fashion_says_how_to_install(tmp_path):
    with pytest.raises(ob.DataError, match="apt-get install dataset-fashion-mnist"):
        sources.load_fashion_arrays(tmp_path / "absent")


@pytest.mark.skipif(not sources.FASHION_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_cnn_reaches_85_percent_on_its_default_subset():
    sc = ob.load_scenario("fashion", forget="random:0.1", seed=0)
    assert len(sc.splits.y_train) == 10000 and len(sc.splits.y_test) == 5000
    model = sc.train_original(seed=0)
    s = sc.splits
    assert accuracy(*predict(model, tensor_batches(s.x_test, s.y_test))) >= 0.85
