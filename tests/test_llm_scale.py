"""The language-model track on the models the field uses (issue 21): Hugging Face folders of
four architectures, precision and memory options, the key-value cache in generation, and
training under accelerate. Every model here is tiny and random (built from a config)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
    want = "chat" if chat else "question-answer"
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


@pytest.fixture(scope="module")
def toy():
    """A small scenario's token sets and a random tiny GPT-2 as the 'original'."""
    from obliviate.llm.model import build_lm

    sc = load_tofu("authors:2", **SMALL)
    model = build_lm("tiny-gpt2", seed=1, width=16, layers=2, heads=2)
    return sc, model


def _run(sc, model, method, **kw):
    args = {"epochs": 1, "lr": 1e-2, "batch_size": 8} if method != "rmu" else {
        "layer": 1, "update_layers": (0, 1), "steps": 3, "lr": 1e-2}
    return unlearn_lm(model, sc.forget_set(), sc.retain_set(), forget_idk=sc.forget_idk_set(),
                      forget_alt=sc.forget_alt_set(), method=method, seed=0, **args, **kw)


def _gap(a, b, s=None) -> float:
    """The largest difference of the two models' log-probabilities on the rows of ``s``."""
    out = []
    for m in (a, b):
        with torch.no_grad():
            logits = m(input_ids=s.ids, attention_mask=s.mask).logits.float()
        out.append(torch.log_softmax(logits, -1))
    return float((out[0] - out[1]).abs().max())


# Tolerance: equal paths agree within 1e-3 nats on every token of the forget rows, where one
# epoch moved them by more than 0.1 (measured: 0 for npo, idk-dpo, altpo; 1e-6 for kl; 2e-4
# for undial, whose teacher is softmax(log p - beta) instead of softmax(logits - beta)).
TOL = 1e-3


@pytest.mark.parametrize("method", ["npo", "kl", "undial", "idk-dpo", "altpo"])
def test_reference_log_probs_computed_once_equal_the_frozen_model(method, toy):
    import copy

    sc, model = toy
    two = _run(sc, model, method)
    mine = copy.deepcopy(model)
    one = _run(sc, mine, method, reference="logprobs", inplace=True)
    assert one is mine  # trained in place: the only model this run held
    s = sc.forget_set()
    assert _gap(one, two, s) < TOL and _gap(two, model, s) > 0.1


def test_micro_batches_accumulate_to_the_whole_batch(toy):
    sc, model = toy
    whole = _run(sc, model, "npo")
    micro = _run(sc, model, "npo", micro_batch=3)  # 8 = 3 + 3 + 2 rows
    s = sc.forget_set()
    assert _gap(micro, whole, s) < TOL and _gap(whole, model, s) > 0.1


def test_checkpointing_bf16_and_lora_for_rmu(toy, monkeypatch):
    sc, model = toy
    calls = []
    real = type(model).gradient_checkpointing_enable
    monkeypatch.setattr(type(model), "gradient_checkpointing_enable",
                        lambda self, **kw: calls.append(kw) or real(self, **kw))
    plain = _run(sc, model, "npo")
    ckpt = _run(sc, model, "npo", gradient_checkpointing=True)
    s = sc.forget_set()
    assert len(calls) == 1 and not ckpt.is_gradient_checkpointing
    assert _gap(ckpt, plain, s) < TOL
    half = _run(sc, model, "npo", dtype="bfloat16")
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}
    assert 0 < _gap(half, plain, s) < 0.1 * _gap(plain, model, s)  # rounding, same result
    rmu = _run(sc, model, "rmu", lora_rank=2)  # LoRA on the MLP outputs it updates
    moved = [n for (n, p), q in zip(rmu.named_parameters(), model.parameters(), strict=True)
             if not torch.equal(p, q)]
    assert moved and all("mlp.c_proj" in n for n in moved)


def test_scale_options_are_checked(toy):
    from obliviate.errors import ConfigError

    sc, model = toy
    with pytest.raises(ConfigError, match="hidden states.*reference=model"):
        _run(sc, model, "rmu", reference="logprobs")
    with pytest.raises(ConfigError, match="dtype='float8'"):
        _run(sc, model, "npo", dtype="float8")
    with pytest.raises(ConfigError, match="reference='frozen'"):
        _run(sc, model, "npo", reference="frozen")
    with pytest.raises(ConfigError, match="cannot train float16 weights"):
        _run(sc, model, "npo", dtype="float16")


def test_two_accelerate_processes_equal_one_with_the_same_effective_batch(tmp_path):
    """DDP over 2 CPU processes (gloo) under ``accelerate launch``, against one process in
    this one: each process takes 4 of the 8 rows of every batch of npo (a loss averaged over
    rows), so the weights agree within float rounding (TOL on the log-probabilities)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from safetensors.torch import load_file

    root = Path(__file__).resolve().parents[1]
    sets = {"scenario": {"size": "toy", "profiles": 6}, "recipe": {"finetune_epochs": 1,
                                                                   "pretrain_steps": 0}}
    sc = load_tofu("authors:0.1", 0, recipe=sets["recipe"], **sets["scenario"])
    original = sc.train_original(0, tmp_path / "models")  # cached: the launch reads it
    one = unlearn_lm(original, sc.forget_set(), sc.retain_set(), method="npo", seed=0,
                     **{**sc.method_defaults["npo"], "epochs": 1, "batch_size": 8})
    args = [f"--set={o}.{k}={v}" for o, kv in sets.items() for k, v in kv.items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
         str(root / "configs/accelerate/cpu-ddp.yaml"), "-m", "obliviate.llm.launch",
         "--method", "npo", "--set", "npo.epochs=1", "--set", "npo.batch_size=8", *args,
         "--cache", str(tmp_path / "models"), "--out", str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert doc["processes"] == 2 and doc["distributed_type"] == "MULTI_CPU"
    assert 0 <= doc["metrics"]["forget_quality"] <= 1  # evaluated once, by the main process
    two = sc.new_model(0)
    two.load_state_dict(load_file(str(tmp_path / "two" / "model.safetensors")))
    s = sc.forget_set()
    assert _gap(one, two, s) < TOL and _gap(one, original, s) > 0.01


def test_launch_refuses_bad_options_in_one_line(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    done = subprocess.run([sys.executable, "-m", "obliviate.llm.launch", "--set",
                           "scenario.dtype=float8", "--out", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "dtype" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
