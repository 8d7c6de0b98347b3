"""The language-model track on the models the field uses (issue 21): Hugging Face folders of
four architectures, precision and memory options, the key-value cache in generation, and
training under accelerate. Every model here is tiny and random (built from a config)."""

from __future__ import annotations

import numpy as np
import pytest

from obliviate.llm import evaluate_lm, load_tofu, unlearn_lm
from obliviate.llm.data import IGNORE
from obliviate.llm.hf_folder import CHAT_TEMPLATE, profile_texts, save_model_folder

SMALL = {"profiles": 6, "pretrain_profiles": 0, "snippets": 0, "retain_eval": 6, "world": 4,
         "perturbed": 2}
ONE_EPOCH = {"finetune_epochs": 1, "batch_size": 16}


@pytest.fixture(scope="module")
def texts():
    return profile_texts(8)


@pytest.fixture(scope="module")
def llama(tmp_path_factory, texts):
    return save_model_folder(tmp_path_factory.mktemp("llama"), "llama", texts, hidden=16,
                             layers=2, heads=2)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "phi3", "gpt-neox"])
def test_hf_folders_of_four_architectures_unlearn_and_evaluate(arch, tmp_path, texts):
    chat = CHAT_TEMPLATE if arch == "qwen2" else None
    folder = save_model_folder(tmp_path / arch, arch, texts, hidden=16, layers=2, heads=2,
                               chat_template=chat)
    sc = load_tofu("authors:2", model=str(folder), recipe=ONE_EPOCH, **SMALL)
    # the template is the tokenizer's chat template when it has one, TOFU's otherwise
    want = "chat" if chat else "tofu"
    assert sc.describe()["template"] == want
    q = sc.forget_qa[0].question
    prompt = sc.tokenizer.prompt(q)
    assert prompt == (f"<|user|>\n{q}\n<|assistant|>\n" if chat else f"Question: {q}\nAnswer:")
    s = sc.forget_set()
    first = s.ids[0][(s.labels[0] == IGNORE) & (s.mask[0] == 1)].tolist()  # row 0's prompt
    assert first == [sc.tokenizer.bos] + sc.tokenizer.encode(prompt)
    original = sc.train_original()
    assert type(original).__name__.lower().startswith(arch.replace("-", "")[:4])
    model = unlearn_lm(original, s, sc.retain_set(), method="npo", epochs=1, lr=1e-3)
    moved = sum(float((a - b).abs().sum()) for a, b in zip(model.parameters(),
                                                           original.parameters(), strict=True))
    assert moved > 0
    metrics, _ = evaluate_lm(model, sc, reference=original)
    assert all(np.isfinite(v) for v in metrics.values())
    assert 0 <= metrics["forget_quality"] <= 1
