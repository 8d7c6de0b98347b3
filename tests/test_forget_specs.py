import numpy as np
import pytest

import obliviate as ob
from obliviate.data import index_hash, parse_forget_spec, select_forget

LABELS = np.repeat(np.arange(5), 20)  # 100 examples, 5 classes


def test_random_fraction_and_count_are_deterministic():
    a = select_forget("random:0.1", LABELS, seed=3)
    b = select_forget("random:0.1", LABELS, seed=3)
    c = select_forget("random:0.1", LABELS, seed=4)
    assert len(a) == 10 and np.array_equal(a, b) and not np.array_equal(a, c)
    assert index_hash(a) == index_hash(b) != index_hash(c)
    assert len(select_forget("random:7", LABELS, seed=0)) == 7
    assert np.all(np.diff(a) > 0)


def test_class_and_classes_select_whole_classes():
    assert set(LABELS[select_forget("class:2", LABELS, 0)]) == {2}
    idx = select_forget("classes:1,3", LABELS, 0)
    assert len(idx) == 40 and set(LABELS[idx]) == {1, 3}


def test_ids_file(tmp_path):
    f = tmp_path / "ids.txt"
    f.write_text("# the ids\n5\n\n2\n9\n")
    assert select_forget(f"ids:{f}", LABELS, 0).tolist() == [2, 5, 9]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("random", "Malformed forget spec"),
        ("randm:0.1", "Did you mean 'random'"),
        ("random:abc", "is not a number"),
        ("random:1.5", "strictly between 0 and 1"),
        ("random:0", "at least 1"),
        ("random:0.001", "selects no example"),
        ("random:500", "has only 100"),
        ("random:100", "leaving nothing to retain"),
        ("class:9", "Class 9 in 'class:9' has no training example"),
        ("class:1,2", "write classes:1,2"),
        ("classes:a", "classes must be integers"),
    ],
)
def test_bad_specs_are_refused_with_a_reason(spec, message):
    with pytest.raises(ob.ForgetSpecError, match=message):
        select_forget(parse_forget_spec(spec) if ":" in spec and spec.split(":")[1] else spec,
                      LABELS, 0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1\nx\n", "line 2: 'x' is not an integer"),
        ("1\n100\n", "index 100 out of range; training indices run from 0 to 99"),
        ("1\n-1\n", "index -1 out of range"),
        ("4\n4\n", "lists index 4 more than once"),
        ("# nothing\n", "lists no index"),
        ("\n".join(str(i) for i in range(100)), "selects all 100 training examples"),
    ],
)
def test_bad_ids_files(tmp_path, content, message):
    f = tmp_path / "ids.txt"
    f.write_text(content)
    with pytest.raises(ob.ForgetSpecError, match=message):
        select_forget(f"ids:{f}", LABELS, 0)


def test_missing_ids_file(tmp_path):
    with pytest.raises(ob.ForgetSpecError, match="does not exist"):
        select_forget(f"ids:{tmp_path / 'nope.txt'}", LABELS, 0)
