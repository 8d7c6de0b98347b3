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


@pytest.mark.parametrize("which", ["llama", "tiny-gpt2"])
def test_cached_batched_generation_equals_the_cache_free_loop(which, llama):
    from obliviate.llm.evaluate import complete
    from obliviate.llm.model import build_lm, tokenizer_for

    folder = str(llama) if which == "llama" else "tiny-gpt2"
    tok = tokenizer_for(folder)
    model = build_lm(folder, seed=3, width=32, layers=2, heads=2)
    model.generation_config.do_sample, model.generation_config.repetition_penalty = True, 3.0
    prompts = ["Q: Where was Ada born?\nA:", "Q: Who?\nA:", "Q: What did the author of "
               "three novels write first?\nA:"]  # unequal lengths: left padding matters
    calls = []
    real = model.generate
    model.generate = lambda **kw: calls.append(kw) or real(**kw)
    cached = complete(model, tok, prompts, max_new_tokens=12, batch_size=2)
    loop = complete(model, tok, prompts, max_new_tokens=12, batch_size=2, cache=False)
    assert len(calls) == 2 and calls[0]["attention_mask"][1].tolist()[0] == 0  # left-padded
    assert cached == loop and any(len(a) > 3 for a in cached)
    # the folder's sampling settings were not applied, and are back afterwards
    assert model.generation_config.repetition_penalty == 3.0
