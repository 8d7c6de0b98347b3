"""The language-model track at the field's scale, for a GPU: a 1B-parameter Llama-architecture
model built from a config (random weights: no weights can be downloaded; cost does not depend
on them) on TOFU-layout files, and what each method costs.

Model (``--size 1b``): Llama-3.2-1B's shape (hidden 2048, 16 blocks, 32 heads, 8 KV heads, MLP
8192) with its vocabulary of 128256 (``--vocab``), untied output layer: 1.5B parameters with the
embeddings, 1.0B without. The tokenizer is a byte-level BPE trained here on the files' text.
Data: generated authors written in TOFU's layout (``--authors``, forget10 = the last tenth).

Per method, one epoch over forget10 (RMU: ``--rmu-steps`` batches) at the method's own
effective batch, ``--micro-batch`` rows per forward pass:

* ``full``: full fine-tuning, weights in bfloat16, gradient checkpointing, the frozen original
  kept beside the model (the field's default);
* ``full-logprobs``: the same with the original's log-probabilities computed once (methods
  that read only those; one model in memory);
* ``lora``: a rank-8 LoRA adapter on the bf16 model, gradient checkpointing.

Each row: seconds and peak GPU memory (``torch.cuda.max_memory_allocated``; on the CPU peak
memory is not measured and the seconds say nothing about a GPU). Evaluation: teacher-forced
answer tokens per second and greedy generation (key-value cache, up to 200 new tokens) new
tokens per second on the forget questions.

    python benchmarks/gpu_lm.py --device cuda --out benchmarks/results

Not yet run on a GPU (none was lent when it was written). At toy size on the CPU it runs the
same code in a few minutes (``make bench-smoke``):

    python benchmarks/gpu_lm.py --device cpu --size toy --methods npo grad-diff --out /tmp/gpu-lm
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch

from obliviate.bench.provenance import write_results

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = "gpu_lm/1"
SIZES = {"1b": {"hidden": 2048, "layers": 16, "heads": 32, "kv_heads": 8, "intermediate": 8192},
         "toy": {"hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 128}}
MODES = ("full", "full-logprobs", "lora")


def _peak(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_method(sc, base, method: str, mode: str, args, device: torch.device) -> dict:
    from obliviate.llm.unlearn import LM_METHODS, NEEDS_ALTERNATES, REFERENCE_USE, unlearn_lm

    info = LM_METHODS.get(method)
    if mode == "full-logprobs" and REFERENCE_USE.get(method, ("model",))[0] not in (
            "sequence", "distribution"):
        return {"method": method, "mode": mode, "status": "n/a (reads no log-probabilities)"}
    lora = 8 if mode == "lora" else 0
    blocks = sc.n_blocks()  # RMU: the authors' layers 7 (5-7) where the model has them
    over = {"epochs": 1} if method != "rmu" else {
        "steps": args.rmu_steps, **({} if blocks > 7 else {"layer": blocks - 1,
                                                           "update_layers": (blocks - 1,)})}
    model = copy.deepcopy(base).to(device)
    alt = sc.forget_alt_set(model) if method in NEEDS_ALTERNATES else None
    _reset(device)
    start = time.perf_counter()
    try:
        unlearn_lm(model, sc.forget_set(), sc.retain_set(), forget_idk=sc.forget_idk_set(),
                   forget_alt=alt, method=info, seed=0, lora_rank=lora,
                   gradient_checkpointing=True, micro_batch=args.micro_batch,
                   reference="logprobs" if mode == "full-logprobs" else "model",
                   inplace=True, **over)
        _sync(device)
        status = "ok"
    except torch.cuda.OutOfMemoryError:
        status = "out of memory"
    seconds = time.perf_counter() - start
    row = {"method": method, "mode": mode, "status": status, "seconds": seconds,
           "peak_gib": _peak(device), "lora_rank": lora}
    del model
    return row


def evaluation_speed(sc, model, device: torch.device, new_tokens: int) -> dict:
    from obliviate.llm.data import prompt_text
    from obliviate.llm.evaluate import answer_pass, complete

    qs = [q.question for q in sc.forget_qa]
    answers = [q.answer for q in sc.forget_qa]
    s = sc.tokens(sc.forget_qa)
    _sync(device)
    start = time.perf_counter()
    answer_pass(model, sc.tokenizer, qs, answers, batch_size=16)
    _sync(device)
    forced = time.perf_counter() - start
    prompts = [prompt_text(q, sc.tokenizer) for q in qs]
    start = time.perf_counter()
    out = complete(model, sc.tokenizer, prompts, new_tokens, batch_size=16)
    _sync(device)
    generated = time.perf_counter() - start
    new = sum(min(len(sc.tokenizer.encode(a)) + 1, new_tokens) for a in out)
    return {"questions": len(qs), "answer_tokens": int((s.labels != -100).sum()),
            "teacher_forced_tokens_per_s": int((s.labels != -100).sum()) / forced,
            "max_new_tokens": new_tokens, "new_tokens_approx": new,
            "generated_tokens_per_s": new / generated}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", default="1b", choices=tuple(SIZES))
    ap.add_argument("--vocab", type=int, default=128256, help="model vocabulary (Llama-3.2)")
    ap.add_argument("--authors", type=int, default=40)
    ap.add_argument("--methods", nargs="+", default=None, help="default: every LM method")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--rmu-steps", type=int, default=20)
    ap.add_argument("--new-tokens", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from obliviate.llm import load_tofu
    from obliviate.llm.hf_folder import save_model_folder, write_tofu_layout
    from obliviate.unlearning import default_methods

    device = torch.device(args.device)
    toy = args.size == "toy"
    vocab = 0 if toy else args.vocab
    methods = args.methods or default_methods("lm")
    with tempfile.TemporaryDirectory() as tmp:
        data = write_tofu_layout(Path(tmp) / "tofu", n_authors=args.authors)
        texts = [v for f in sorted(data.glob("*.json")) for line in f.read_text().splitlines()
                 for v in json.loads(line).values() if isinstance(v, str)]
        start = time.perf_counter()
        folder = save_model_folder(Path(tmp) / "llama", "llama", texts, vocab_size=4000,
                                   model_vocab=vocab, dtype=torch.bfloat16, context=1024,
                                   **SIZES[args.size])
        build_s = time.perf_counter() - start
        sc = load_tofu("authors:0.1", data=str(data), model=str(folder), dtype="bfloat16",
                       device=args.device)
        base = sc.new_model(0).cpu()
        n_params = sum(p.numel() for p in base.parameters())
        rows = []
        for method in methods:
            for mode in args.modes:
                rows.append(run_method(sc, base, method, mode, args, device))
                print(json.dumps(rows[-1]), flush=True)
        evaluation = evaluation_speed(sc, base.to(device), device, args.new_tokens)
    result = {"device": str(device), "gpu": torch.cuda.get_device_name(device)
              if device.type == "cuda" else None,
              "measured_on_gpu": device.type == "cuda", "size": args.size,
              "parameters": n_params, "model_build_seconds": build_s,
              "scenario": sc.describe()["sizes"], "micro_batch": args.micro_batch,
              "rows": rows, "evaluation": evaluation}
    write_results(args.out / "gpu_lm.json", result, benchmark=BENCHMARK)
    print(json.dumps(evaluation, indent=1))
    return result


if __name__ == "__main__":
    main()
