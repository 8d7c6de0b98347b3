"""The language-model track's scaling mechanisms on the CPU, with a tiny random Llama built from
a config (no download): what each one costs or saves, measured side by side.

* ``generation``: greedy answers to the scenario's forget and retain questions, up to
  ``--new-tokens`` new tokens, through the model's key-value cache (``generate``, left-padded
  batches) and through the cache-free loop (each step reruns the batch), alternated
  ``--repeats`` times: seconds, new tokens per second, and whether the answers are equal.
* ``memory``: peak resident memory of ``npo`` on a larger Llama (``--memory-hidden``), each
  variant in a fresh process: the frozen original kept beside the trained model (``model``), its
  log-probabilities computed once (``logprobs``, one model), both trained in place, and the
  default call (a copy trained, the caller's model serving as the frozen original).
* ``accelerate``: the same ``npo`` run as 1 process and as 2 CPU processes under
  ``accelerate launch`` (DDP over gloo, ``configs/accelerate/cpu-ddp.yaml``) at the same
  effective batch: the largest difference of the two results' log-probabilities on the forget
  answers, and the seconds of each. On a 2-core machine 2 processes are not expected to be
  faster; the point is that they give the same model.

    python benchmarks/lm_scale.py --out benchmarks/results

A smoke run (tiny sizes, a check that it runs):

    python benchmarks/lm_scale.py --smoke --out /tmp/lm-scale
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from obliviate.bench.provenance import write_results

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = "lm_scale/1"
SCENARIO = {"profiles": 10, "pretrain_profiles": 0, "snippets": 0, "retain_eval": 10,
            "world": 4, "perturbed": 2}


def _child_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


def generation(folder: Path, new_tokens: int, repeats: int) -> dict:
    from obliviate.llm import load_tofu
    from obliviate.llm.data import prompt_text
    from obliviate.llm.evaluate import complete
    from obliviate.llm.model import build_lm

    sc = load_tofu("authors:2", model=str(folder), **SCENARIO)
    model = build_lm(str(folder), seed=0)
    prompts = [prompt_text(q.question, sc.tokenizer) for q in sc.forget_qa + sc.retain_eval_qa]
    seconds = {"cache": [], "loop": []}
    answers = {}
    for _ in range(repeats):
        for name, cache in (("cache", True), ("loop", False)):
            start = time.perf_counter()
            answers[name] = complete(model, sc.tokenizer, prompts, new_tokens, cache=cache)
            seconds[name].append(time.perf_counter() - start)
    produced = sum(min(len(sc.tokenizer.encode(a)) + 1, new_tokens) for a in answers["cache"])
    best = {k: min(v) for k, v in seconds.items()}
    return {"questions": len(prompts), "max_new_tokens": new_tokens, "repeats": repeats,
            "seconds": seconds, "best_seconds": best, "new_tokens_approx": produced,
            "tokens_per_s": {k: produced / v for k, v in best.items()},
            "loop_over_cache": best["loop"] / best["cache"],
            "equal_answers": answers["cache"] == answers["loop"]}


MEMORY_CHILD = r"""
import json, resource, sys, torch
from obliviate.llm import load_tofu, unlearn_lm
from obliviate.llm.model import build_lm
folder, mode, inplace = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
sc = load_tofu("authors:2", model=folder, profiles=10, pretrain_profiles=0, snippets=0,
               retain_eval=10, world=4, perturbed=2)
model = build_lm(folder, seed=0)
forget = sc.forget_set()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = unlearn_lm(model, forget, method="npo", reference=mode, inplace=inplace, epochs=1,
                 batch_size=8, lr=1e-4)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
params = sum(p.numel() * p.element_size() for p in out.parameters())
print(json.dumps({"peak_mib": peak / 1024, "before_mib": before / 1024,
                  "model_mib": params / 2**20}))
"""


def memory(folder: Path) -> dict:
    rows = {}
    for name, mode, inplace in (("frozen_original", "model", "1"), ("logprobs", "logprobs", "1"),
                                ("default_copy", "model", "0")):
        done = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(folder), mode, inplace],
                              capture_output=True, text=True, env=_child_env(), check=True)
        rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
    saved = rows["frozen_original"]["peak_mib"] - rows["logprobs"]["peak_mib"]
    return {"runs": rows, "saved_mib": saved,
            "saved_in_models": saved / rows["logprobs"]["model_mib"]}


def accelerate_runs(folder: Path, work: Path) -> dict:
    from safetensors.torch import load_file

    from obliviate.llm import load_tofu
    from obliviate.llm.model import build_lm

    sets = [f"--set=scenario.{k}={v}" for k, v in {**SCENARIO, "model": folder}.items()]
    sets += ["--set=recipe.finetune_epochs=1", "--set=npo.epochs=2", "--set=npo.batch_size=8",
             "--set=npo.lr=1e-3", "--no-eval", "--cache", str(work / "models")]
    base = ["-m", "obliviate.llm.launch", "--forget", "authors:2", "--method", "npo", *sets]
    commands = {1: [sys.executable, *base, "--out", str(work / "one")],
                2: [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                    str(ROOT / "configs/accelerate/cpu-ddp.yaml"), *base,
                    "--out", str(work / "two")]}
    out = {}
    for n, cmd in commands.items():  # the 1-process run trains and caches the original first
        start = time.perf_counter()
        subprocess.run(cmd, env=_child_env(), check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
        doc = json.loads((work / ("one" if n == 1 else "two") / "metrics.json").read_text())
        out[n] = {"wall_s": wall, "unlearn_seconds": doc["unlearn_seconds"],
                  "distributed_type": doc["distributed_type"], "processes": doc["processes"]}
    sc = load_tofu("authors:2", model=str(folder), **SCENARIO)
    s = sc.forget_set()
    logps = []
    for name in ("one", "two"):
        model = build_lm(str(folder), seed=0)
        model.load_state_dict(load_file(str(work / name / "model.safetensors")))
        with torch.no_grad():
            logits = model(input_ids=s.ids, attention_mask=s.mask).logits.float()
        logps.append(torch.log_softmax(logits, -1))
    return {"runs": out, "max_abs_logprob_difference": float((logps[0] - logps[1]).abs().max()),
            "two_over_one_unlearn_seconds": out[2]["unlearn_seconds"] / out[1]["unlearn_seconds"]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--new-tokens", type=int, default=200, help="the references' 200")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory-hidden", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from obliviate.llm.hf_folder import profile_texts, save_model_folder

    if args.smoke:
        args.new_tokens, args.repeats, args.memory_hidden = 16, 1, 32
    texts = profile_texts(12)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small = save_model_folder(work / "llama", "llama", texts, hidden=64, layers=2, heads=4)
        big = save_model_folder(work / "llama-big", "llama", texts, hidden=args.memory_hidden,
                                layers=8, heads=8, intermediate=int(2.6875 * args.memory_hidden))
        result = {"device": "cpu", "gpu": None, "threads": args.threads,
                  "generation": generation(small, args.new_tokens, args.repeats),
                  "memory": memory(big),
                  "accelerate": accelerate_runs(small, work)}
    write_results(args.out / "lm_scale.json", result, benchmark=BENCHMARK)
    print(json.dumps({k: v for k, v in result.items() if k != "memory"}, indent=1, default=str))
    print(json.dumps(result["memory"], indent=1))
    return result


if __name__ == "__main__":
    main()
