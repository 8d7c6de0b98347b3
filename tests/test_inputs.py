"""Bad Python input to ob.unlearn and ob.audit: typed errors naming the problem and the fix."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import obliviate as ob
from conftest import tiny_problem
from obliviate.batches import logits_of, split_batch
from obliviate.inputs import check_unlearn_inputs, first_batch
from obliviate.train import resolve_device, tensor_loader


@pytest.fixture(scope="module")
def problem():
    return tiny_problem(hidden_layers=1)


def loader_of(x, y, batch_size=16, **kw):
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, **kw)


def test_not_a_model(problem):
    model, forget, retain = problem
    with pytest.raises(ob.ConfigError, match=r"got a state_dict .* model.load_state_dict"):
        ob.unlearn(model.state_dict(), forget, retain)
    with pytest.raises(ob.ConfigError, match="needs a torch.nn.Module .* got str"):
        ob.unlearn("model.pt", forget, retain)
    with pytest.raises(ob.ConfigError, match="got the class Sequential, not a model"):
        ob.unlearn(nn.Sequential, forget, retain)
    with pytest.raises(ob.ConfigError, match="without parameters"):
        ob.unlearn(nn.ReLU(), forget, retain)
    with pytest.raises(ob.ConfigError, match=r"mix floating dtypes .* model.float\(\)"):
        mixed = nn.Sequential(nn.Linear(10, 4), nn.Linear(4, 4).double())
        ob.unlearn(mixed, forget, retain)
    with pytest.raises(ob.ConfigError, match="got a state_dict"):
        ob.audit(model.state_dict(), forget=forget, retain=retain, test=retain)


def test_not_a_loader(problem):
    model, forget, retain = problem
    x, y = forget.dataset.tensors
    with pytest.raises(ob.DataError, match=r"forget set is a tensor; pass a DataLoader .*"
                                           r"DataLoader\(TensorDataset\(x, y\), batch_size=64\)"):
        ob.unlearn(model, x, retain)
    with pytest.raises(ob.DataError, match=r"retain set is an \(x, y\) pair of tensors"):
        ob.unlearn(model, forget, (x, y))
    with pytest.raises(ob.DataError, match=r"is a Dataset \(TensorDataset\); wrap it as "
                                           r"DataLoader\(dataset"):
        ob.unlearn(model, TensorDataset(x, y), retain)
    with pytest.raises(ob.DataError, match="cannot be iterated"):
        ob.unlearn(model, forget, 42)
    with pytest.raises(ob.DataError, match="needs the retain set"):
        ob.unlearn(model, forget, method="finetune")


def test_bad_labels(problem):
    model, forget, retain = problem
    x, y = forget.dataset.tensors
    with pytest.raises(ob.DataError, match=r"labels of the forget set are torch.float32; class "
                                           r"labels must be integer indices: pass y.long\(\)"):
        ob.unlearn(model, loader_of(x, y.float()), retain)
    with pytest.raises(ob.DataError, match=r"one-hot\? pass y.argmax\(1\)"):
        ob.unlearn(model, loader_of(x, nn.functional.one_hot(y, 4)), retain)
    with pytest.raises(ob.DataError, match="has label 7 but the model outputs 4 logits"):
        ob.unlearn(model, loader_of(x, y + 4), retain)
    with pytest.raises(ob.DataError, match="label -1; class labels must be indices >= 0"):
        ob.unlearn(model, loader_of(x, y - 1), retain)
    with pytest.raises(ob.DataError, match="num_classes=6 does not fit: the model outputs 4"):
        ob.unlearn(model, forget, retain, num_classes=6)


@pytest.mark.parametrize("method", ["finetune", "neggrad", "scrub"])
def test_empty_forget_loader_is_refused_not_silently_returned(problem, method):
    model, _, retain = problem
    x, y = retain.dataset.tensors
    with pytest.raises(ob.DataError, match="forget loader yields no batch .* select at least "
                                           "one example to forget"):
        ob.unlearn(model, loader_of(x[:0], y[:0]), retain, method=method)
    with pytest.raises(ob.DataError, match="drop_last"):
        ob.unlearn(model, loader_of(x[:3], y[:3], drop_last=True), retain, method=method)


def test_batches_the_model_cannot_take(problem):
    model, forget, retain = problem
    x, y = forget.dataset.tensors
    with pytest.raises(ob.DataError, match=r"inputs of the forget set are torch.float64 but the "
                                           r"model's weights are torch.float32; cast one"):
        ob.unlearn(model, loader_of(x.double(), y), retain)
    with pytest.raises(ob.DataError, match=r"model failed on the first batch of the forget set "
                                           r"\(RuntimeError: mat1 and mat2"):
        ob.unlearn(model, loader_of(x[:, :5], y), retain)
    broken = nn.Sequential(nn.Linear(10, 4))
    with torch.no_grad():
        broken[0].bias[0] = float("nan")
    with pytest.raises(ob.DataError, match="hold NaN or infinite values"):
        ob.unlearn(broken, forget, retain)
    with pytest.raises(ob.DataError, match=r"logits on 16 examples .* have shape \(16,\); a "
                                           r"classifier must return \(batch, classes\)"):
        ob.unlearn(nn.Sequential(nn.Linear(10, 1), nn.Flatten(0)), forget, retain)
    with pytest.raises(ob.DataError, match="A mapping batch needs a 'labels' entry"):
        ob.unlearn(model, [{"input": x}], retain)
    with pytest.raises(ob.DataError, match="A batch must be \\(inputs, labels\\)"):
        ob.unlearn(model, [x], retain)


def test_outputs_and_batches_of_every_documented_form():
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    assert split_batch((x, y, torch.arange(4)))[1] is y  # extra fields ignored
    inputs, labels = split_batch({"input_ids": x, "labels": y})
    assert labels is y and set(inputs) == {"input_ids"}
    assert logits_of((x, "cache")) is x and logits_of({"logits": x, "loss": 0}) is x
    with pytest.raises(ob.DataError, match="no 'logits'"):
        logits_of({"scores": x})
    with pytest.raises(ob.DataError, match="returned str"):
        logits_of("nope")


def test_the_check_leaves_the_data_order_and_the_rng_alone(problem):
    model, _, _ = problem
    x, y = torch.randn(40, 10), torch.randint(0, 4, (40,))
    loader = tensor_loader(x, y, 8, shuffle=True, seed=5)
    state, rng = loader.generator.get_state(), torch.random.get_rng_state()
    batch = first_batch(loader)
    assert torch.equal(batch[0], x[:8])
    assert check_unlearn_inputs(model, loader, loader) == 4
    assert torch.equal(loader.generator.get_state(), state)
    assert torch.equal(torch.random.get_rng_state(), rng)
    a = ob.unlearn(model, loader, loader, method="finetune", epochs=1)
    b = ob.unlearn(model, tensor_loader(x, y, 8, shuffle=True, seed=5),
                   tensor_loader(x, y, 8, shuffle=True, seed=5), method="finetune", epochs=1)
    for va, vb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb)


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ob.ConfigError, match="Unknown device 'tpu9'; use auto, cpu or cuda"):
        resolve_device("tpu9")


def test_audit_needs_its_sets(problem):
    model, forget, retain = problem
    with pytest.raises(ob.DataError, match="audit needs the test set"):
        ob.audit(model, forget=forget, retain=retain)
    with pytest.raises(ob.ConfigError, match="second argument is a Scenario; got DataLoader"):
        ob.audit(model, forget)
    x, y = retain.dataset.tensors
    with pytest.raises(ob.DataError, match="test set has 80 inputs but 79 labels"):
        ob.audit(model, forget=forget, retain=retain, test=(x, y[:-1]))
