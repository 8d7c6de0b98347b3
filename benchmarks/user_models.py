"""Users' models through every protocol, and the cost of the population's loop fallback.

Two models the package does not define, as a user brings them: a CNN with BatchNorm and Dropout
(digits, 8x8) and a tiny ``BertForSequenceClassification`` built from a config (token ids; its
attention cannot be traced by ``vmap``, so its populations take the reference loop). With the
built-in ``cnn`` for comparison, each runs the quick, challenge and U-LiRA protocols through the
bench at a small N; the table records what ran, the headline numbers, the population mode and
the wall time. Then, side by side in one process, the BN+Dropout CNN's population is trained in
``vmap`` mode and in the ``loop`` fallback (alternating, fastest of ``--repeats``), with the
largest weight difference between the two.

    python benchmarks/user_models.py --threads 1 --models 8 --repeats 3

Writes ``benchmarks/results/user_models.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn

import obliviate as ob
from obliviate.bench.config import BenchConfig
from obliviate.bench.runner import BenchRun
from obliviate.bench.spec import PROTOCOLS
from obliviate.config import param
from obliviate.data.catalog import SCENARIOS, ScenarioSpec
from obliviate.data.scenario import Splits
from obliviate.population import train_population
from obliviate.train import Recipe


# ---------------------------------------------------------------------------- the models
class BNDropCNN(nn.Module):
    def __init__(self, channels, height, width, num_classes):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout2d(0.1), nn.Flatten(),
            nn.Linear(8 * (height // 2) * (width // 2), 32, bias=False), nn.BatchNorm1d(32),
            nn.ReLU(), nn.Dropout(0.3))
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


def bn_cnn(num_classes, input_shape):
    return BNDropCNN(*input_shape, num_classes)


VOCAB, LENGTH, CLASSES = 40, 8, 3


def tiny_bert(num_classes, input_shape, vocab_size=VOCAB):
    from transformers import BertConfig, BertForSequenceClassification

    return BertForSequenceClassification(BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=num_classes, max_position_embeddings=input_shape[0]))


def tokens(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (n, LENGTH), generator=g)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    ids[torch.arange(n), torch.randint(0, LENGTH // 2, (n,), generator=g)] = y + 1
    return ids, y


def register() -> None:
    ob.register_model("bench-bn-cnn")(bn_cnn)
    ob.register_model("bench-tiny-bert")(tiny_bert)

    @dataclasses.dataclass(frozen=True)
    class Options:
        model: str = param("bench-tiny-bert", help="the model")

    def build(opts) -> Splits:
        (x, y), (xv, yv), (xt, yt) = tokens(160, 0), tokens(40, 1), tokens(80, 2)
        return Splits(x, y, xv, yv, xt, yt, CLASSES, ("a", "b", "c"))

    SCENARIOS.add("bench-tokens", ScenarioSpec(
        name="bench-tokens", description="token ids, class planted in the first half",
        source="generated", options=Options, build=build,
        recipes={"bench-tiny-bert": Recipe(optimizer="adam", lr=3e-3, epochs=6, batch_size=16,
                                           weight_decay=0.0)},
        model_options=lambda splits: {"vocab_size": VOCAB}))


KINDS = {  # kind -> (scenario, bench --set lines)
    "cnn (built-in)": ("digits", ["scenario.model=cnn", "recipe.epochs=5"]),
    "BN+Dropout CNN": ("digits", ["scenario.model=bench-bn-cnn", "recipe.epochs=5",
                                  "recipe.lr=0.003"]),
    "tiny BERT": ("bench-tokens", []),
}
HEADLINE = {"quick": ("avg_gap", "TA"), "challenge": ("F", "score", "TA"),
            "ulira": ("attack_acc", "auc", "TA")}


def protocol_row(kind: str, protocol: str, n_models: int, root: Path) -> dict:
    scenario, sets = KINDS[kind]
    n = {"quick": None, "challenge": n_models, "ulira": n_models + 4}[protocol]
    extra = ["protocol.targets=4"] if protocol == "ulira" else []
    cfg = BenchConfig(scenario=scenario, methods=["finetune", "neggrad+"], protocol=protocol,
                      models=n, out=root / kind.replace(" ", "_") / protocol,
                      set=[*sets, "finetune.epochs=1", "neggrad+.epochs=1", *extra],
                      cache=root / kind.replace(" ", "_") / "cache")
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        board = BenchRun(cfg).run().set_index("method")
    wall = time.perf_counter() - start
    infos = []
    for path in (root / kind.replace(" ", "_") / "cache").glob("*.safetensors"):
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            infos.append(json.loads(dict(fh.metadata() or {}).get("info", "{}")))
    modes = sorted({i["mode"] for i in infos if "mode" in i})
    row = {"kind": kind, "protocol": PROTOCOLS.get(protocol).version, "models": n,
           "population_mode": modes, "wall_s": round(wall, 1),
           "fallback_warnings": sum("reference loop" in str(w.message) for w in caught),
           "rows": {m: {c: round(float(board.loc[m, c]), 4) for c in HEADLINE[protocol]
                        if c in board.columns} for m in board.index}}
    print(json.dumps(row), flush=True)
    return row


def fallback_cost(n_models: int, epochs: int, repeats: int) -> dict:
    """The BN+Dropout CNN's population in vmap mode and in the loop fallback, side by side."""
    sc = ob.load_scenario("digits", forget="random:0.1", seed=0, model="bench-bn-cnn",
                          recipe={"epochs": epochs, "lr": 3e-3})
    s = sc.splits
    masks = torch.zeros(n_models, len(s.y_train), dtype=torch.bool)
    masks[:, torch.from_numpy(sc.retain_idx)] = True
    seeds = list(range(n_models))
    train = lambda mode, m=masks, sd=seeds, r=sc.recipe: train_population(  # noqa: E731
        "bench-bn-cnn", sc.input_shape, 10, s.x_train, s.y_train, m, sd, r, mode=mode)
    warm = dataclasses.replace(sc.recipe, epochs=1)
    for mode in ("vmap", "loop"):  # imports and kernel selection, untimed
        train(mode, masks[:2], seeds[:2], warm)
    best = {"vmap": float("inf"), "loop": float("inf")}
    pops = {}
    for _ in range(repeats):
        for mode in ("vmap", "loop"):
            start = time.perf_counter()
            pops[mode] = train(mode)
            best[mode] = min(best[mode], time.perf_counter() - start)
    diff = max(float((a[k] - b[k]).abs().max()) for a, b in zip(
        pops["vmap"].state_dicts(), pops["loop"].state_dicts(), strict=True) for k in a
        if a[k].is_floating_point())
    out = {"model": "BN+Dropout CNN (digits 8x8)", "models": n_models, "epochs": epochs,
           "repeats": repeats, "vmap_wall_s": round(best["vmap"], 2),
           "loop_wall_s": round(best["loop"], 2),
           "loop_over_vmap": round(best["loop"] / best["vmap"], 2),
           "max_abs_weight_diff_vmap_vs_loop": diff}
    print(json.dumps(out), flush=True)
    return out


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--models", type=int, default=8, help="N of the challenge; U-LiRA N+4")
    parser.add_argument("--fallback-models", type=int, default=16)
    parser.add_argument("--fallback-epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-protocols", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).parent))
    import transformers

    transformers.logging.set_verbosity_error()
    register()
    results = {
        "obliviate": ob.__version__, "commit": commit(), "torch": torch.__version__,
        "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "protocols": [], "fallback": None,
    }
    if not args.skip_protocols:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in KINDS:
                for protocol in ("quick", "challenge", "ulira"):
                    results["protocols"].append(protocol_row(kind, protocol, args.models,
                                                             Path(tmp)))
    results["fallback"] = fallback_cost(args.fallback_models, args.fallback_epochs,
                                        args.repeats)
    results["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "user_models.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
