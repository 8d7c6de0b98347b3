"""Readers for the published TOFU and MUSE file layouts in a local folder (nothing downloads).

TOFU (Maini et al. 2024), as on the Hub at ``locuslab/TOFU``: one file per split at the top
of the folder, ``NAME.json`` in JSON lines (or a JSON array), or the Hub's parquet conversion
``NAME/*.parquet`` / ``NAME/train/*.parquet``:

- ``full`` (every author's ``question``/``answer``), ``forget01|05|10``, ``retain90|95|99``;
- ``forget01|05|10_perturbed`` and ``retain_perturbed`` (+ ``paraphrased_answer``,
  ``perturbed_answer`` (a list), ``paraphrased_question``);
- ``real_authors_perturbed``, ``world_facts_perturbed`` (``question``, ``answer``,
  ``perturbed_answer``); ``holdout01|05|10`` (authors never trained on: MIA non-members);
- optional: ``forget10_alternates.json`` (AltPO's generated alternates: ``question``,
  ``answer``, and ``alternate`` or ``sub_answer``, several rows per question).

MUSE (Shi et al. 2024), as ``muse_bench``'s ``load_data.py`` writes it (``data/news``) or as
on the Hub (``muse-bench/MUSE-News``: ``CONFIG/SPLIT-*.parquet``):

- ``raw/forget``, ``raw/retain1``, ``raw/retain2``, ``raw/holdout`` (lists of texts);
- ``verbmem/forget`` (``prompt``, ``gt``); ``knowmem/forget_qa``, ``knowmem/retain_qa`` and
  their ``_icl`` few-shot sets (``question``, ``answer``); ``privleak/forget|retain|holdout``.

References:
    Maini et al., "TOFU: A Task of Fictitious Unlearning for LLMs", 2024 (locuslab/tofu
    ``config/eval_everything.yaml`` names the splits and keys); Shi et al., "MUSE: Machine
    Unlearning Six-Way Evaluation for Language Models", 2024 (swj0419/muse_bench
    ``load_data.py``, ``constants.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from obliviate.errors import DataError
from obliviate.llm.profiles import QA

TOFU_SPLITS = {0.01: "01", 0.05: "05", 0.1: "10"}
TOFU_AUTHOR_QA = 20  # TOFU writes 20 questions per author, author by author


def _parquet(files: list[Path]) -> list[dict[str, Any]]:
    import pandas as pd

    rows = []
    for f in sorted(files):
        try:
            frame = pd.read_parquet(f)
        except ImportError as exc:
            raise DataError(f"Reading {f} needs a parquet engine ({exc}); pip install "
                            f"pyarrow, or save the split as JSON lines.") from None
        except Exception as exc:  # pyarrow's ArrowInvalid, OSError, ...: a damaged file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise DataError(f"{f} is not a readable parquet file ({type(exc).__name__}: "
                            f"{first}); replace it with the published file.") from None
        rows += frame.to_dict(orient="records")
    return rows


def _text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it "
                        f"as UTF-8, as the published files are.") from None
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror or exc}.") from None


def read_records(folder: Path, name: str, *, required: bool = True) -> list[dict[str, Any]] | None:
    """The rows of split ``name`` under ``folder``: ``name.json``/``.jsonl`` (JSON lines or an
    array) or parquet files ``name.parquet``, ``name/*.parquet``, ``name/train/*.parquet``,
    ``name-*.parquet``. A JSON array of strings gives ``{"text": ...}`` rows."""
    for suffix in (".json", ".jsonl"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return _json_rows(path)
    head, _, tail = name.rpartition("/")
    for pattern in (f"{name}.parquet", f"{name}/*.parquet", f"{name}/train/*.parquet",
                    f"{name}-*.parquet", f"{head}/{tail}-*.parquet" if head else ""):
        files = list(folder.glob(pattern)) if pattern else []
        if files:
            return _parquet(files)
    if (folder / f"{name}.txt").is_file():
        return [{"text": t} for t in _text(folder / f"{name}.txt").split("\n\n") if t]
    if required:
        raise DataError(f"Split '{name}' not found in {folder}: expected {name}.json (JSON "
                        f"lines) or {name}/*.parquet, as the published layout has them.")
    return None


def _json_rows(path: Path) -> list[dict[str, Any]]:
    text = _text(path)
    if not text.strip():
        raise DataError(f"{path} is empty; expected the split's rows as JSON lines (one "
                        f"object per line) or a JSON array.")
    try:
        data = json.loads(text)
        rows = data if isinstance(data, list) else [data]
    except (json.JSONDecodeError, RecursionError):
        try:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except (json.JSONDecodeError, RecursionError) as exc:
            raise DataError(f"{path} is neither JSON nor JSON lines "
                            f"({' '.join(str(exc).split())}).") from None
    return [r if isinstance(r, dict) else {"text": r} for r in rows]


def _field(row: dict[str, Any], key: str, path: str) -> str:
    """The text field ``key`` of a row; a missing field or one that is not text is refused."""
    if key not in row:
        raise DataError(f"A row of {path} has no '{key}' field (it has "
                        f"{sorted(map(str, row))[:8]}); TOFU's files name it '{key}'.")
    return _string(row[key], key, path)


def _string(value: Any, key: str, path: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"A row of {path} has {type(value).__name__} {str(value)[:40]!r} as "
                        f"'{key}'; the published files hold text there.")
    return value


def _as_tuple(value: Any, key: str, path: str) -> tuple[str, ...]:
    """``perturbed_answer``: a list of texts (or one text); None when the split has none."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if hasattr(value, "tolist"):  # parquet gives numpy arrays
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise DataError(f"A row of {path} has {type(value).__name__} {str(value)[:40]!r} as "
                        f"'{key}'; TOFU's files hold a list of texts there.")
    return tuple(_string(v, key, path) for v in value)


def tofu_qa(rows: list[dict[str, Any]], name: str, owner: int | None = None) -> list[QA]:
    """TOFU rows as :class:`QA` (paraphrase = answer where the split has none)."""
    if not rows:
        raise DataError(f"{name} holds no row; TOFU's splits hold question-answer rows.")
    out = []
    for i, r in enumerate(rows):
        answer = _field(r, "answer", name)
        paraphrase = r.get("paraphrased_answer")
        out.append(QA(_field(r, "question", name), answer,
                      answer if paraphrase is None or paraphrase == "" else
                      _string(paraphrase, "paraphrased_answer", name),
                      _as_tuple(r.get("perturbed_answer"), "perturbed_answer", name),
                      i if owner is None else owner))
    return out


def tofu_split(forget: str) -> str:
    """``authors:0.1`` -> ``"10"`` (TOFU publishes forget01, forget05 and forget10 only)."""
    kind, _, value = forget.partition(":")
    try:
        key = float(value)
    except ValueError:
        key = -1.0
    if kind not in ("authors", "groups") or key not in TOFU_SPLITS:
        raise DataError(f"Forget spec '{forget}' has no TOFU split: the files define forget01, "
                        f"forget05 and forget10; use authors:0.01, authors:0.05 or authors:0.1.")
    return TOFU_SPLITS[key]


def tofu_scenario_parts(folder: Path, forget: str, n_perturbed: int) -> dict[str, Any]:
    """Everything a :class:`~obliviate.llm.scenario.TofuScenario` holds, read from TOFU's files.

    Every perturbed answer of a file is kept (TOFU scores all five; ``n_perturbed`` applies to
    generated authors only and is accepted here for the same signature).
    """
    del n_perturbed
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"TOFU data folder '{folder}' does not exist; pass scenario.data=PATH "
                        f"of a folder holding TOFU's files (full.json, forget10.json, ...).")
    split = tofu_split(forget)
    full = tofu_qa(read_records(folder, "full"), "full.json")
    forget_rows = tofu_qa(read_records(folder, f"forget{split}"), f"forget{split}.json")
    perturbed = {q.question: q for q in tofu_qa(read_records(folder, f"forget{split}_perturbed"),
                                                f"forget{split}_perturbed.json")}
    para_q = {str(r.get("question")): str(r.get("paraphrased_question") or "")
              for r in read_records(folder, f"forget{split}_perturbed")}
    forget_keys = {(q.question, q.answer) for q in forget_rows}
    is_forget = [(q.question, q.answer) in forget_keys for q in full]
    if sum(is_forget) != len(forget_keys):
        raise DataError(f"forget{split}.json has {len(forget_keys)} pairs but {sum(is_forget)} "
                        f"of them are in full.json; the files come from different versions.")
    missing = [q.question for q, f in zip(full, is_forget, strict=True)
               if f and q.question not in perturbed]
    if missing:
        raise DataError(f"forget{split}_perturbed.json lacks {len(missing)} forget questions, "
                        f"e.g. {missing[0]!r}; the files come from different versions.")
    qa, forget_owners = _with_owners(full, is_forget, perturbed)
    retain_eval = tofu_qa(read_records(folder, "retain_perturbed"), "retain_perturbed.json")
    for name, rows in (("forget", [perturbed[q.question] for q in forget_rows]),
                       ("retain_perturbed", retain_eval)):
        if any(not q.perturbed for q in rows):
            raise DataError(f"Rows of TOFU's {name} split have no perturbed_answer; the truth "
                            f"ratio needs them.")
    holdout = tofu_qa(read_records(folder, f"holdout{split}"), f"holdout{split}.json",
                      owner=-2)
    world = tofu_qa(read_records(folder, "world_facts_perturbed"), "world_facts_perturbed.json",
                    owner=-1)
    real = tofu_qa(read_records(folder, "real_authors_perturbed"),
                   "real_authors_perturbed.json", owner=-1)
    alternates = _alternates(folder, split, qa, forget_owners)
    return {"forget_authors": np.array(sorted(forget_owners)), "qa": qa, "holdout_qa": holdout,
            "world_qa": world, "corpus": [], "real_qa": real,
            "retain_eval_qa": [q for q in retain_eval],
            "question_paraphrases": [para_q.get(q.question, "") if q.owner in forget_owners
                                     else "" for q in qa],
            "alternates": alternates}


def _with_owners(full: list[QA], is_forget: list[bool], perturbed: dict[str, QA]
                 ) -> tuple[list[QA], set[int]]:
    """Owners: TOFU's 20-question author blocks when the forget rows fill whole blocks, else
    one owner per row; forget rows carry their paraphrase and perturbed answers."""
    blocks = [i // TOFU_AUTHOR_QA for i in range(len(full))]
    forget_blocks = {b for b, f in zip(blocks, is_forget, strict=True) if f}
    whole = all(f == (b in forget_blocks) for b, f in zip(blocks, is_forget, strict=True))
    owners = blocks if whole else list(range(len(full)))
    qa = []
    for q, f, o in zip(full, is_forget, owners, strict=True):
        p = perturbed[q.question] if f else q
        qa.append(QA(q.question, q.answer, p.paraphrase, p.perturbed, o))
    return qa, {o for o, f in zip(owners, is_forget, strict=True) if f}


def _alternates(folder: Path, split: str, qa: list[QA], forget_owners: set[int]
                ) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    rows = read_records(folder, f"forget{split}_alternates", required=False)
    if not rows:
        return []
    by_q: dict[str, list[str]] = {}
    for r in rows:
        alt = r.get("alternate", r.get("sub_answer"))
        if alt:
            by_q.setdefault(str(r.get("question")), []).append(str(alt))
    forget_qs = [q.question for q in qa if q.owner in forget_owners]
    lacking = [q for q in forget_qs if q not in by_q]
    if lacking:
        raise DataError(f"forget{split}_alternates.json has no alternate for {len(lacking)} "
                        f"forget questions, e.g. {lacking[0]!r}.")
    k = min(len(v) for v in by_q.values())
    return [(tuple(by_q[q.question][:k]),) * 2 if q.owner in forget_owners else ((), ())
            for q in qa]


# ---------------------------------------------------------------------------------- MUSE
MUSE_SPLITS = {
    "raw": ("forget", "retain1", "retain2", "holdout"),
    "verbmem": ("forget",),
    "knowmem": ("forget_qa", "retain_qa", "forget_qa_icl", "retain_qa_icl"),
    "privleak": ("forget", "retain", "holdout"),
}


def read_muse(folder: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """MUSE's splits under ``folder`` as ``{config: {split: rows}}``; ``knowmem`` may be absent
    (MUSE-Books has none), everything else is required."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"MUSE data folder '{folder}' does not exist; pass scenario.data=PATH "
                        f"of a corpus folder (e.g. muse_bench's data/news).")
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for config, splits in MUSE_SPLITS.items():
        rows = {s: read_records(folder, f"{config}/{s}", required=config != "knowmem")
                for s in splits}
        out[config] = {s: r for s, r in rows.items() if r is not None}
    fields = {"raw": ("text",), "privleak": ("text",), "verbmem": ("prompt", "gt"),
              "knowmem": ("question", "answer")}
    for config, keys in fields.items():
        for split, rows in out[config].items():
            if not rows:
                raise DataError(f"MUSE's {config}/{split} holds no row; the published splits "
                                f"are never empty.")
            for row in rows:
                for key in keys:
                    if key not in row:
                        raise DataError(f"MUSE's {config}/{split} rows have no '{key}' field "
                                        f"(they have {sorted(map(str, row))[:8]}).")
                    _string(row[key], key, f"MUSE's {config}/{split}")
    return out
