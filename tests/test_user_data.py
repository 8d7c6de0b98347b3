"""Users' own data: each loader on small files written here, its errors, and bench custom."""

import gzip
import pickle
import re

import numpy as np
import pandas as pd
import pytest

import obliviate as ob
from obliviate.cli import main
from obliviate.data.user_data import load_user_data

RNG = np.random.default_rng(0)


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(folder, n=60, test=20, gz=True):
    folder.mkdir()
    for part, count in (("train", n), ("t10k", test)):
        images = RNG.integers(0, 256, size=(count, 10, 10))
        labels = np.arange(count) % 3
        for name, arr in ((f"{part}-images-idx3-ubyte", images),
                          (f"{part}-labels-idx1-ubyte", labels)):
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(_idx_bytes(arr)))
            else:
                (folder / name).write_bytes(_idx_bytes(arr))
    return folder


def write_cifar(folder, hundred=False):
    folder.mkdir()

    def batch(n, key):
        return {b"data": RNG.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                key: [int(i) % 4 for i in range(n)]}

    if hundred:
        files = {"train": batch(40, b"fine_labels"), "test": batch(20, b"fine_labels")}
        files["meta"] = {b"fine_label_names": [b"apple", b"bee", b"cup", b"dog"]}
    else:
        files = {"data_batch_1": batch(20, b"labels"), "data_batch_2": batch(20, b"labels"),
                 "test_batch": batch(20, b"labels"),
                 "batches.meta": {b"label_names": [b"plane", b"car", b"bird", b"cat"]}}
    for name, content in files.items():
        with open(folder / name, "wb") as fh:
            pickle.dump(content, fh)
    return folder


def write_npz(path, n=100, groups=True):
    x = RNG.normal(size=(n, 8)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    extra = {"groups": np.arange(n) % 10} if groups else {}
    np.savez(path, X=x, y=y, **extra)
    return path


def write_csv(path, n=80):
    frame = pd.DataFrame({"age": RNG.integers(18, 80, n), "city": RNG.choice(["a", "b", "c"], n),
                          "user": np.arange(n) % 8, "label": RNG.choice(["no", "yes"], n)})
    frame.to_csv(path, index=False)
    return path


def write_images(folder, per_class=6, size=(12, 12), mode="L"):
    from PIL import Image

    for k, name in enumerate(("cats", "dogs", "owls")):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
            arr = np.full(shape, 40 * k + i, dtype=np.uint8)
            Image.fromarray(arr, mode=mode).save(folder / name / f"{i}.png")
    return folder


def test_idx_folder(tmp_path):
    for gz in (True, False):
        root = write_idx(tmp_path / f"idx{gz}", gz=gz)
        sc = ob.load_scenario("custom", data=f"idx:{root}", model="cnn")
        assert sc.input_shape == (1, 10, 10) and sc.num_classes == 3
        assert len(sc.splits.y_train) == 60 and len(sc.splits.y_test) == 10  # test halved
        assert abs(float(sc.splits.x_train.mean())) < 1e-4  # standardised


def test_cifar10_and_cifar100_batches(tmp_path):
    sc = ob.load_scenario("custom", data=f"cifar:{write_cifar(tmp_path / 'c10')}", model="cnn")
    assert sc.input_shape == (3, 32, 32) and len(sc.splits.y_train) == 40
    assert sc.splits.class_names == ("plane", "car", "bird", "cat")
    arrays = load_user_data(f"cifar:{write_cifar(tmp_path / 'c100', hundred=True)}")
    assert arrays.x_train.shape == (40, 3, 32, 32) and arrays.class_names[0] == "apple"
    raw = pickle.load(open(tmp_path / "c10" / "data_batch_1", "rb"))
    first = raw[b"data"][0].reshape(3, 32, 32) / 255.0  # channel-major, as CIFAR stores it
    assert np.allclose(load_user_data(f"cifar:{tmp_path / 'c10'}").x_train[0], first)


def test_cifar_pickle_cannot_run_code(tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Boom()}))
    with pytest.raises(ob.DataError, match="refusing to load builtins.print"):
        load_user_data(f"cifar:{folder}")


def test_npz_with_groups_and_csv_with_target(tmp_path):
    sc = ob.load_scenario("custom", data=f"npz:{write_npz(tmp_path / 'd.npz')}")
    assert sc.input_shape == (8,) and len(sc.splits.groups) == len(sc.splits.y_train) == 70
    x = sc.splits.x_train.numpy()
    assert np.allclose(x.mean(axis=0), 0, atol=1e-5)  # each feature standardised on its own
    csv = write_csv(tmp_path / "d.csv")
    sc = ob.load_scenario("custom", data=f"csv:{csv}", target="label", group_column="user",
                          forget="groups:0.25")
    assert sc.input_shape == (4,)  # age + city one-hot (3 columns)
    assert sc.splits.class_names == ("no", "yes")
    # 8 users of 10 rows: 2 held out for test, 1 for validation, whole; 0.25 of the 5 left is 1
    assert len(set(sc.splits.groups[sc.forget_idx].tolist())) == 1


def test_image_folder(tmp_path):
    sc = ob.load_scenario("custom", data=f"images:{write_images(tmp_path / 'gray')}",
                          model="cnn", forget="class:1")
    assert sc.input_shape == (1, 12, 12) and sc.splits.class_names == ("cats", "dogs", "owls")
    arrays = load_user_data(f"images:{write_images(tmp_path / 'rgb', mode='RGB')}")
    assert arrays.x_train.shape == (18, 3, 12, 12)
    assert np.allclose(arrays.x_train[7], 41 / 255.0)  # dogs/1.png, every pixel 41
    resized = load_user_data(f"images:{tmp_path / 'rgb'}",
                             ob.data.user_data.ReadOptions(image_size=8))
    assert resized.x_train.shape == (18, 3, 8, 8)


def test_custom_scenario_trains_and_bench_runs_from_the_cli(tmp_path, capsys):
    path = write_npz(tmp_path / "d.npz", n=200, groups=False)
    sc = ob.load_scenario("custom", data=f"npz:{path}", recipe={"epochs": 10})
    assert ob.audit(sc.train_original(seed=0), sc).metrics["TA"] > 0.8
    main(["bench", "custom", "--data", f"npz:{path}", "--model", "mlp", "-m", "finetune",
          "--set", "recipe.epochs=20", "--out", str(tmp_path / "run"), "--quiet"])
    assert "custom · forget random:0.1" in capsys.readouterr().out
    board = pd.read_csv(tmp_path / "run" / "leaderboard.csv")
    assert board["method"].tolist() == ["original", "retrain (reference)", "finetune"]


def _malformed(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    np.savez(tmp_path / "noy.npz", X=np.zeros((4, 2)))
    (tmp_path / "d.csv").write_text("a,b\n1,0\n2,1\n")
    trunc = tmp_path / "trunc"
    trunc.mkdir()
    (trunc / "train-images-idx3-ubyte").write_bytes(_idx_bytes(np.zeros((4, 3, 3)))[:-5])
    (trunc / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(4)))
    (tmp_path / "cifar").mkdir()
    with open(tmp_path / "cifar" / "data_batch_1", "wb") as fh:
        pickle.dump({b"pixels": np.zeros(3)}, fh)
    (tmp_path / "one" / "cats").mkdir(parents=True)
    (tmp_path / "img" / "a").mkdir(parents=True)
    (tmp_path / "img" / "b").mkdir(parents=True)
    (tmp_path / "img" / "a" / "x.png").write_text("not an image")
    (tmp_path / "img" / "b" / "y.png").write_text("not an image")


@pytest.mark.parametrize(("data", "message"), [
    ("npz:{t}/missing.npz", "missing.npz does not exist; expected an .npz file with arrays X and y"),
    ("npz:{t}/bad.npz", r"bad.npz is not an .npz archive; expected an .npz archive with arrays X and y \(np.savez"),
    ("npz:{t}/noy.npz", r"noy.npz holds arrays \['X'\]; expected X \(inputs\) and y"),
    ("csv:{t}/d.csv", "d.csv has no target column 'label'; its columns are a, b"),
    ("idx:{t}/nowhere", "nowhere does not exist; expected a folder of MNIST-style idx files"),
    ("idx:{t}/trunc", "train-images-idx3-ubyte is truncated"),
    ("idx:{t}/cifar", "train-images-idx3-ubyte does not exist"),
    ("cifar:{t}/cifar", r"data_batch_1 has keys \['pixels'\]; expected 'data' and 'labels'"),
    ("images:{t}/one", "one has 1 class subfolder"),
    ("images:{t}/img", "x.png is not a readable image"),
    ("parquet:{t}/x", "Unknown data kind 'parquet'"),
    ("{t}/d.npz", "Malformed data"),
])
def test_missing_or_malformed_data_exits_2_with_one_line(tmp_path, capsys, data, message):
    _malformed(tmp_path)
    spec = data.format(t=tmp_path)
    target = ["--set", "scenario.target=label"] if spec.startswith("csv") else []
    with pytest.raises(SystemExit) as done:
        main(["bench", "custom", "--data", spec, "-m", "finetune", "--out",
              str(tmp_path / "run"), *target])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err), err


def test_custom_without_data_says_how():
    with pytest.raises(ob.ConfigError, match="needs data=KIND:PATH"):
        ob.load_scenario("custom")


def test_groups_must_match_training_examples(tmp_path):
    np.savez(tmp_path / "g.npz", X=np.zeros((10, 2)), y=np.arange(10) % 2, groups=np.arange(3))
    with pytest.raises(ob.DataError, match="expected one integer group id per training example"):
        load_user_data(f"npz:{tmp_path / 'g.npz'}")


def _bad_files(tmp_path):
    x, y = RNG.normal(size=(30, 4)), np.arange(30) % 3
    np.savez(tmp_path / "text.npz", X=np.array([["a", "b"]] * 30), y=y)
    np.savez(tmp_path / "flat.npz", X=x[:, 0], y=y)
    x_test = x.copy()
    x_test[3, 1] = np.nan
    np.savez(tmp_path / "nan_test.npz", X=x, y=y, X_test=x_test, y_test=y)
    np.savez(tmp_path / "unseen.npz", X=x, y=y, X_test=x[:5], y_test=np.array([0, 1, 2, 3, 5]))
    np.save(tmp_path / "single.npy", x)
    (tmp_path / "garbage.npz").write_bytes(b"\x80\x04garbage that looks like a pickle")
    np.savez(tmp_path / "objects.npz", X=np.array([{"a": 1}] * 3, dtype=object), y=y[:3])
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, 0.1, 0.2], "c": [0, 1, 0]}).to_csv(
        tmp_path / "noheader.csv", index=False, header=False)


@pytest.mark.parametrize(("data", "message"), [
    ("npz:{t}/text.npz", r"X holds <U1 values, not numbers; encode text as numbers first"),
    ("npz:{t}/flat.npz", r"X has shape \(30,\); expected one row per example.*X\[:, None\]"),
    ("npz:{t}/nan_test.npz", "the test inputs hold NaN or infinite values; clean them first"),
    ("npz:{t}/unseen.npz", r"test labels \[3, 5\] never occur in training"),
    ("npz:{t}/single.npy", "holds a single .npy array, not an archive; expected an .npz"),
    ("npz:{t}/garbage.npz", r"garbage.npz is not an .npz archive; expected an .npz archive"),
    ("npz:{t}/objects.npz", "holds object arrays, which are not read"),
    ("csv:{t}/noheader.csv", r"the first row \(1.0, 0.5, 0, \.\.\.\) looks like data, not a "
                             r"header; add a header row"),
])
def test_bad_data_files_are_typed_errors_with_the_fix(tmp_path, data, message):
    _bad_files(tmp_path)
    with pytest.raises(ob.DataError, match=message) as caught:
        load_user_data(data.format(t=tmp_path))
    text = str(caught.value)
    assert "pickled" not in text and "unsafely" not in text and "\n" not in text


def test_group_data_splits_whole_groups(tmp_path):
    """No group (a user) has rows both in training and in validation or test."""
    from obliviate.data.custom import group_split

    n = 300
    groups = RNG.integers(0, 60, n)
    x = RNG.normal(size=(n, 5)).astype(np.float32)
    x[:, 0] = groups  # the group id as a feature: standardising maps each id to one value
    np.savez(tmp_path / "g.npz", X=x, y=(x[:, 1] > 0).astype(np.int64), groups=groups)
    sc = ob.load_scenario("custom", data=f"npz:{tmp_path / 'g.npz'}", forget="groups:0.1")
    s = sc.splits
    train_ids = set(s.x_train[:, 0].tolist())
    assert len(train_ids) == len(set(s.groups.tolist()))  # one value per training group
    for held in (s.x_val, s.x_test):
        assert len(held) and not set(held[:, 0].tolist()) & train_ids
    assert len(s.y_train) + len(s.y_val) + len(s.y_test) == n
    assert abs(len(s.y_test) - 0.2 * n) < 20 and abs(len(s.y_val) - 0.1 * n) < 20
    forgotten = set(s.x_train[sc.forget_idx, 0].tolist())
    assert forgotten and not forgotten & set(s.x_test[:, 0].tolist())
    tr, va, te = group_split(groups, seed=1, test=0.2, val=0.1)
    assert sorted(np.r_[tr, va, te].tolist()) == list(range(n))
    assert not set(groups[tr]) & set(groups[te]) and not set(groups[va]) & set(groups[te])


def test_groups_too_few_to_hold_out(tmp_path):
    np.savez(tmp_path / "two.npz", X=RNG.normal(size=(20, 3)), y=np.arange(20) % 2,
             groups=np.zeros(20, dtype=np.int64))
    with pytest.raises(ob.DataError, match="1 groups, too few to hold whole groups out"):
        ob.load_scenario("custom", data=f"npz:{tmp_path / 'two.npz'}")
