"""TOFU's and MUSE's published file layouts, written here in small, read back by the loaders;
models from folders without a usable tokenizer are refused before any training (issue 13)."""

import json

import numpy as np
import pandas as pd
import pytest

import obliviate as ob
from obliviate.cli import main
from obliviate.errors import ConfigError, DataError, ForgetSpecError
from obliviate.llm import evaluate_lm, load_muse, load_tofu, unlearn_lm
from obliviate.llm.files import _with_owners, read_records
from obliviate.llm.profiles import QA, make_profiles, profile_qa, world_facts

TINY_MODEL = {"width": 16, "layers": 1, "heads": 1}
FAST_RECIPE = {"pretrain_steps": 0, "finetune_epochs": 2, "context": 64}


def _lines(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))  # TOFU: JSON lines


def cli(capsys, *args):
    """Run the CLI in this process: (exit status, its stderr)."""
    capsys.readouterr()  # drop what came before
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def write_tofu(folder, n_authors=10):
    """TOFU's layout (locuslab/TOFU): full, forget10, retain90, the perturbed splits, holdout10,
    real authors and world facts, from generated authors (7 questions each here, not 20)."""
    people = make_profiles(n_authors + 1, seed=5)
    qa = profile_qa(people[:n_authors], seed=5, n_perturbed=3)
    held = profile_qa(people[n_authors:], seed=6)
    forget = [q for q in qa if q.owner == n_authors - 1]  # TOFU's forget10: the last authors
    retain = [q for q in qa if q.owner != n_authors - 1]
    paras = {q.question: p for q, p in zip(qa, [x for p in people[:n_authors]
                                                for x in p.paraphrased_questions()],
                                           strict=True)}

    def plain(qs):
        return [{"question": q.question, "answer": q.answer} for q in qs]

    def perturbed(qs):
        return [{"question": q.question, "answer": q.answer, "paraphrased_answer": q.paraphrase,
                 "perturbed_answer": list(q.perturbed),
                 "paraphrased_question": paras[q.question]} for q in qs]

    _lines(folder / "full.json", plain(qa))
    _lines(folder / "forget10.json", plain(forget))
    _lines(folder / "retain90.json", plain(retain))
    _lines(folder / "forget10_perturbed.json", perturbed(forget))
    _lines(folder / "retain_perturbed.json", perturbed(retain[:14]))
    _lines(folder / "holdout10.json", plain(held))
    world = world_facts(0)
    _lines(folder / "world_facts_perturbed.json",
           [{"question": q.question, "answer": q.answer, "perturbed_answer": list(q.perturbed)}
            for q in world[:8]])
    _lines(folder / "real_authors_perturbed.json",
           [{"question": q.question, "answer": q.answer, "perturbed_answer": list(q.perturbed)}
            for q in world[30:36]])
    return qa, forget


def test_tofu_files_load_as_the_scenario(tmp_path):
    qa, forget = write_tofu(tmp_path)
    sc = load_tofu("authors:0.1", data=str(tmp_path), size="toy", recipe=FAST_RECIPE)
    assert [q.question for q in sc.forget_qa] == [q.question for q in forget]
    assert len(sc.retain_qa) == len(qa) - len(forget) and not sc.corpus
    assert sc.forget_qa[0].paraphrase == forget[0].paraphrase
    assert sc.forget_qa[0].perturbed == forget[0].perturbed
    assert len(sc.retain_eval_qa) == 14 and len(sc.world_qa) == 8 and len(sc.real_qa) == 6
    assert all(p and p != q.question for p, q in
               zip(sc.forget_question_paraphrases, sc.forget_qa, strict=True))
    assert not sc.options.train_paraphrases  # TOFU fine-tunes on the answers only
    assert len(sc.forget_set()) == len(forget)
    assert sc.describe()["sizes"]["real_qa"] == 6
    # the whole pipeline runs on it: fine-tune (no pretraining corpus), unlearn, evaluate
    original = sc.train_original(0, cache=tmp_path / "cache")
    retain = sc.train_retrained(0, cache=tmp_path / "cache")
    forgot = unlearn_lm(original, sc.forget_set(), sc.retain_set(), method="grad-diff",
                        lr=1e-3, epochs=1)
    m, _ = evaluate_lm(forgot, sc, retain)
    assert {"real_prob", "real_rouge", "real_truth_ratio", "forget_quality", "privleak",
            "mia_reference", "forget_es", "forget_em"} <= set(m)
    # without an alternates file, altpo's alternatives are sampled from the original
    alt = sc.forget_alt_set(original)
    assert len(alt) == sc.options.alternates * len(sc.forget_set())


def test_tofu_files_read_jsonl_arrays_alternates_and_parquet(tmp_path):
    write_tofu(tmp_path)
    (tmp_path / "world_facts_perturbed.json").write_text(json.dumps(
        [{"question": "What is the capital of Peru?", "answer": "Lima",
          "perturbed_answer": ["Quito", "Oslo"]}]))  # a JSON array also reads
    assert read_records(tmp_path, "world_facts_perturbed")[0]["answer"] == "Lima"
    forget = [json.loads(line) for line in (tmp_path / "forget10.json").read_text().splitlines()]
    _lines(tmp_path / "forget10_alternates.json",  # AltPO's generate.py output, 2 per question
           [{"question": r["question"], "answer": r["answer"], "alternate": f"Nobody {i}."}
            for r in forget for i in range(2)])
    sc = load_tofu("authors:0.1", data=str(tmp_path), size="toy", alternates=2)
    alt = sc.forget_alt_set()
    assert len(alt) == 2 * len(sc.forget_qa)
    pytest.importorskip("pyarrow")
    (tmp_path / "holdout10").mkdir()  # the Hub's parquet conversion: NAME/train-*.parquet
    pd.DataFrame(read_records(tmp_path, "holdout10")).to_parquet(
        tmp_path / "holdout10" / "train-00000-of-00001.parquet")
    (tmp_path / "holdout10.json").unlink()
    assert len(read_records(tmp_path, "holdout10")) == 7


def test_tofu_files_refuse_what_they_cannot_serve(tmp_path):
    write_tofu(tmp_path)
    with pytest.raises(DataError, match="forget01, forget05 and forget10"):
        load_tofu("authors:0.2", data=str(tmp_path))
    (tmp_path / "forget10_perturbed.json").unlink()
    with pytest.raises(DataError, match="forget10_perturbed"):
        load_tofu("authors:0.1", data=str(tmp_path))
    with pytest.raises(DataError, match="does not exist"):
        load_tofu("authors:0.1", data=str(tmp_path / "nowhere"))
    (tmp_path / "bad.json").write_text("{not json\n")
    with pytest.raises(DataError, match="neither JSON nor JSON lines"):
        read_records(tmp_path, "bad")


def test_tofu_owners_are_twenty_question_blocks_when_the_forget_set_fills_them():
    full = [QA(f"q{i}", f"a{i}", f"a{i}", (), i) for i in range(60)]
    is_forget = [i >= 40 for i in range(60)]
    qa, owners = _with_owners(full, is_forget, {q.question: q for q in full[40:]})
    assert owners == {2} and [q.owner for q in qa[::20]] == [0, 1, 2]
    ragged = [i >= 45 for i in range(60)]  # not whole blocks: one owner per question
    qa, owners = _with_owners(full, ragged, {q.question: q for q in full[45:]})
    assert owners == set(range(45, 60))


def write_muse(folder):
    """muse_bench's data/news layout (load_data.py): raw, verbmem, knowmem, privleak."""
    people = make_profiles(24, seed=9)
    bios = [p.bio() for p in people]
    forget, retain1, retain2, holdout = bios[:6], bios[6:12], bios[12:18], bios[18:]
    files = {"raw/forget.json": forget, "raw/retain1.json": retain1,
             "raw/retain2.json": retain2, "raw/holdout.json": holdout,
             "privleak/forget.json": forget, "privleak/retain.json": retain1,
             "privleak/holdout.json": holdout,
             "verbmem/forget.json": [{"prompt": b[:30], "gt": b[30:]} for b in forget]}
    qa = profile_qa(people, seed=9)
    files["knowmem/forget_qa.json"] = [{"question": q.question, "answer": q.answer}
                                       for q in qa[:12]]
    files["knowmem/retain_qa.json"] = [{"question": q.question, "answer": q.answer}
                                       for q in qa[42:54]]
    files["knowmem/forget_qa_icl.json"] = files["knowmem/forget_qa.json"][:1]
    files["knowmem/retain_qa_icl.json"] = files["knowmem/retain_qa.json"][:1]
    for name, rows in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(rows))


def test_muse_files_train_evaluate_and_bench(tmp_path, capsys):
    data = tmp_path / "news"
    write_muse(data)
    sc = load_muse("raw:forget", data=str(data), recipe=FAST_RECIPE, **TINY_MODEL)
    assert len(sc.forget_texts) == 6 and len(sc.all_retain_texts) == 12
    cache = tmp_path / "cache"
    original = sc.train_original(0, cache=cache)
    retain = sc.train_retrained(0, cache=cache)
    m_ret, a_ret = evaluate_lm(retain, sc, retain)
    assert m_ret["privleak"] == 0.0 and m_ret["mia_reference"] == 0.5
    m, _ = evaluate_lm(original, sc, a_ret)
    for key in ("verbmem_f", "knowmem_f", "knowmem_r", "model_utility", "privleak", "mia_mink"):
        assert np.isfinite(m[key]), key
    assert "forget_quality" not in m  # TOFU's measure; MUSE has none
    with pytest.raises(ForgetSpecError, match="raw:forget"):
        load_muse("authors:0.1", data=str(data))
    with pytest.raises(ConfigError, match="scenario.data"):
        ob.load_scenario("muse")
    sets = [f"scenario.{k}={v}" for k, v in {**TINY_MODEL, "data": data}.items()]
    sets += [f"recipe.{k}={v}" for k, v in FAST_RECIPE.items()]
    args = ["bench", "muse", "--forget", "raw:forget", "-m", "ga", "--set", "ga.epochs=1",
            "--out", str(tmp_path / "run"), "--cache", str(cache), "--quiet"]
    code, err = cli(capsys, *args, *[a for s in sets for a in ("--set", s)])
    assert code == 0, err
    board = pd.read_csv(tmp_path / "run" / "leaderboard.csv").set_index("method")
    assert board.loc["retrain (reference)", "privleak"] == 0.0
    assert board.loc["ga", "verbmem_f"] <= 1.0
    # a method that needs refusals of forget questions fails on text, with the reason
    code, err = cli(capsys, "bench", "muse", "--forget", "raw:forget", "-m", "idk", "--out",
                    str(tmp_path / "run2"), "--cache", str(cache), "--quiet",
                    *[a for s in sets for a in ("--set", s)])
    assert code == 1 and "needs refusals" in err


def test_model_folders_without_a_fitting_tokenizer_are_refused(tmp_path, capsys):
    import transformers

    cfg = transformers.GPT2Config(vocab_size=200, n_positions=64, n_embd=16, n_layer=1,
                                  n_head=1)
    folder = tmp_path / "lm"
    transformers.GPT2LMHeadModel(cfg).save_pretrained(folder)  # weights, no tokenizer files
    with pytest.raises(ConfigError, match="no tokenizer files"):
        load_tofu("authors:0.1", model=str(folder))
    # the byte tokenizer's 256 ids do not fit a vocabulary of 200
    with pytest.raises(ConfigError, match="vocabulary of 200"):
        load_tofu("authors:0.1", model=str(folder), tokenizer="bytes")
    with pytest.raises(ConfigError, match="does not exist"):
        load_tofu("authors:0.1", model=str(folder), tokenizer=str(tmp_path / "none"))
    code, err = cli(capsys, "bench", "tofu-mini", "--set", f"scenario.model={folder}", "--out",
                    str(tmp_path / "run"))
    assert code == 2 and "no tokenizer files" in err and len(err.strip().splitlines()) == 1
    # RMU's layers are checked against the model before anything trains
    big = transformers.GPT2Config(vocab_size=300, n_positions=64, n_embd=16, n_layer=2,
                                  n_head=1)
    transformers.GPT2LMHeadModel(big).save_pretrained(tmp_path / "lm2")
    code, err = cli(capsys, "bench", "tofu-mini", "-m", "rmu", "--set",
                    f"scenario.model={tmp_path / 'lm2'}", "--set", "scenario.tokenizer=bytes",
                    "--out", str(tmp_path / "run2"))
    assert code == 2 and "below the model's 2 blocks" in err
    assert not (tmp_path / "run2" / "results.sqlite").exists()  # refused before any work
