"""fashion-mem: a small Fashion-MNIST subset that the original model memorises."""

import pytest
import torch
import torch.nn.functional as F

import obliviate as ob
from obliviate.data import sources

pytestmark = pytest.mark.skipif(not sources.FASHION_DIR.is_dir(),
                                reason="dataset-fashion-mnist not installed")


def test_fashion_mem_loads_its_splits_and_pools_to_14x14():
    sc = ob.load_scenario("fashion-mem", forget="random:0.1", train_size=300, resolution=14)
    s = sc.splits
    assert s.x_train.shape == (300, 1, 14, 14) and len(s.y_val) == 1000 and len(s.y_test) == 2000
    assert len(sc.forget_idx) == 30 and sc.model_name == "mlp"
    full = ob.load_scenario("fashion-mem", train_size=300)
    assert full.splits.x_train.shape == (300, 1, 28, 28)
    with pytest.raises(ob.ConfigError, match="'resolution' parameter of scenario fashion-mem"):
        ob.load_scenario("fashion-mem", resolution=7)


def test_fashion_mem_original_memorises_what_the_retrained_model_never_saw():
    sc = ob.load_scenario("fashion-mem", forget="random:0.1", train_size=300, resolution=14)
    original, retrained = sc.train_original(seed=0), sc.train_retrained(seed=0)
    with torch.no_grad():
        loss = {name: F.cross_entropy(m(sc.x_forget), sc.y_forget).item()
                for name, m in (("original", original), ("retrained", retrained))}
        train_acc = (original(sc.splits.x_train).argmax(1) == sc.splits.y_train).float().mean()
        test_acc = (original(sc.splits.x_test).argmax(1) == sc.splits.y_test).float().mean()
    assert train_acc > 0.98 and train_acc - test_acc > 0.15  # fits its data, not the task
    assert loss["retrained"] > 5 * loss["original"]  # forgetting has a visible target
