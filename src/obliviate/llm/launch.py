"""One language-model unlearning run under ``accelerate launch``: DDP or FSDP over one or
several processes (GPUs, or CPU processes over gloo), the metrics computed once.

Every process builds the scenario and reads the original from the model cache (the main
process trains it first when it is missing; the others wait), then all of them run the same
unlearning loop (:func:`obliviate.llm.loop.lm_loop`: each process takes its share of every
batch; the method's ``batch_size`` stays the effective batch). The main process alone then
evaluates the result against the retain-only model and writes ``metrics.json`` and
``model.safetensors`` under ``--out``.

    accelerate launch --config_file configs/accelerate/multi-gpu.yaml -m obliviate.llm.launch \\
        --method npo --set scenario.model=PATH --set scenario.dtype=bfloat16 --out runs/npo

Without ``accelerate launch`` (``python -m obliviate.llm.launch ...``) it runs as one process.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m obliviate.llm.launch",
                                 description="One LM unlearning run under accelerate.")
    ap.add_argument("--scenario", default="tofu-mini", help="tofu-mini or muse")
    ap.add_argument("--forget", default=None, help="forget spec (default: the scenario's)")
    ap.add_argument("--method", default="npo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[],
                    help="scenario.NAME=V, recipe.NAME=V or METHOD.NAME=V")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=None, help="model cache (default OUT/models)")
    ap.add_argument("--no-eval", action="store_true", help="skip the evaluation")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict | None:
    from accelerate import Accelerator
    from safetensors.torch import save_file

    from obliviate.config import parse_assignments
    from obliviate.data.catalog import SCENARIOS
    from obliviate.llm.evaluate import evaluate_lm
    from obliviate.llm.scenario import lm_unlearn_options
    from obliviate.llm.unlearn import LM_METHODS, NEEDS_ALTERNATES, unlearn_lm

    args = parse_args(argv)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    sets = parse_assignments(args.set)
    spec = SCENARIOS.get(args.scenario)
    options = dict(sets.pop("scenario", {}))
    if accelerator.device.type != "cpu":
        options["device"] = str(accelerator.device)  # this process's GPU
    sc = spec.load(args.forget or spec.default_forget, args.seed,
                   recipe=sets.pop("recipe", {}), **options)
    info = LM_METHODS.get(args.method)
    cfg = info.build_config({**sc.method_defaults.get(info.name, {}),
                             **sets.pop(info.name, {})})
    cache = args.cache or args.out / "models"
    with accelerator.main_process_first():  # the main process trains what is not cached
        original = sc.train_original(args.seed, cache)
    alt = sc.forget_alt_set(original) if info.name in NEEDS_ALTERNATES else None
    start = time.perf_counter()
    model = unlearn_lm(original, sc.forget_set(), sc.retain_set(),
                       forget_idk=sc.forget_idk_set(), forget_alt=alt, method=info,
                       seed=args.seed, config=cfg, accelerator=accelerator,
                       **lm_unlearn_options(sc.options))
    seconds = time.perf_counter() - start
    state = accelerator.get_state_dict(model)  # every process takes part (FSDP gathers shards)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return None
    kind = str(accelerator.distributed_type).split(".")[-1]
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" and kind != "FSDP":
        print(f"note: FSDP was configured but accelerate ran {kind} (FSDP needs GPUs).")
    state = {k: v.detach().contiguous().cpu().clone() for k, v in state.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out / "model.safetensors"))
    model = sc.new_model(args.seed)  # the full weights, on the main process alone
    model.load_state_dict(state)
    doc = {"method": info.name, "processes": accelerator.num_processes,
           "distributed_type": kind, "unlearn_seconds": seconds, "scenario": sc.describe()}
    if not args.no_eval:
        retrained = sc.train_retrained(args.seed, cache)
        doc["metrics"] = evaluate_lm(model, sc, reference=evaluate_lm(retrained, sc)[1])[0]
    (args.out / "metrics.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return doc


if __name__ == "__main__":
    import sys

    from obliviate.errors import ObliviateError

    try:
        main()
    except ObliviateError as exc:  # bad input: one line, exit status 2
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
