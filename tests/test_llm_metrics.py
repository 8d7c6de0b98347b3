"""The language-model track's measures on cases with known answers, and its data generators."""

import numpy as np
import pytest
from scipy import stats

from obliviate.errors import ConfigError, ForgetSpecError, UnknownNameError
from obliviate.llm import LM_METHODS
from obliviate.llm import metrics as M
from obliviate.llm.data import IGNORE, encode_pairs, select_authors
from obliviate.llm.model import resolve_device
from obliviate.llm.profiles import make_profiles, profile_qa, world_facts
from obliviate.llm.tokenizer import ByteTokenizer


def test_rouge_l_recall_known_strings():
    assert M.rouge_l_recall("the cat sat on the mat", "the cat on the mat") == 1.0
    assert M.rouge_l_recall("a x c", "a b c") == pytest.approx(2 / 3)
    assert M.rouge_l_recall("She was born in Lisbon.", "she was born in oslo") == 0.8
    assert M.rouge_l_recall("", "anything here") == 0.0
    # order matters: the longest common subsequence of "c b a" and "a b c" is one word
    assert M.rouge_l_recall("c b a", "a b c") == pytest.approx(1 / 3)


def test_truth_ratio_and_scores():
    r = M.truth_ratio(np.array([1.0, 2.0]), np.array([[2.0, 2.0], [1.0, 3.0]]))
    np.testing.assert_allclose(r, [np.exp(-1.0), 1.0])
    assert M.truth_ratio_score(np.array([0.25, 4.0]), forget=True) == pytest.approx(0.25)
    assert M.truth_ratio_score(np.array([0.25, 4.0])) == pytest.approx(0.375)
    np.testing.assert_allclose(M.normalised_prob(np.array([0.0]), np.array([[0.0, 0.0, 0.0]])),
                               [0.25])


def test_forget_quality_is_the_ks_p_value():
    rng = np.random.default_rng(0)
    a, b, far = rng.normal(size=300), rng.normal(size=300), rng.normal(2.0, 1.0, size=300)
    assert M.forget_quality(a, a) == 1.0
    assert M.forget_quality(a, b) == pytest.approx(stats.ks_2samp(a, b).pvalue)
    assert M.forget_quality(a, b) > 0.05
    assert M.forget_quality(a, far) < 1e-20
    # exact small case: fully separated samples of 5 and 5 give p = 2 / C(10, 5)
    assert M.forget_quality(np.arange(5.0), np.arange(5.0) + 10) == pytest.approx(2 / 252)


def test_model_utility_is_a_harmonic_mean():
    assert M.model_utility([1.0, 0.5]) == pytest.approx(2 / 3)
    assert M.model_utility([0.9, 0.0, 0.8]) == 0.0


def test_min_k_and_min_k_plus_plus_known_case():
    logp = np.array([-1.0, -5.0, -2.0, -10.0, -3.0])
    assert M.min_k(logp, 0.4) == pytest.approx(-7.5)  # the two least likely tokens
    assert M.min_k(logp, 0.01) == pytest.approx(-10.0)  # at least one token
    mu, sigma = np.full(5, -1.0), np.full(5, 2.0)
    assert M.min_k_plus_plus(logp, mu, sigma, 0.4) == pytest.approx((-9 / 2 + -4 / 2) / 2)


def test_mia_auc_and_zlib():
    assert M.mia_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert M.mia_auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    # repetitive text compresses better, so the same loss gives a larger ratio
    assert M.zlib_ratio(2.0, "ab" * 50) > M.zlib_ratio(2.0, "the quick brown fox jumps over")


def test_profiles_are_deterministic_and_well_formed():
    a, b = make_profiles(30, seed=3), make_profiles(30, seed=3)
    assert a == b and make_profiles(30, seed=4) != a
    assert len({p.name for p in a}) == 30
    qa = profile_qa(a, seed=3, n_perturbed=3)
    assert len(qa) == 30 * 7
    for q in qa:
        assert q.answer != q.paraphrase and len(set(q.perturbed)) == 3
        assert q.paraphrase not in q.perturbed
    world = world_facts()
    assert any("Paris" in q.answer for q in world)


def test_author_forget_specs():
    idx = select_authors("authors:0.1", 200, seed=0)
    assert len(idx) == 20 and np.array_equal(idx, select_authors("authors:0.1", 200, seed=0))
    assert len(select_authors("authors:5", 200, seed=0)) == 5
    assert len(select_authors("groups:0.05", 200, seed=0)) == 10
    for bad in ("random:0.1", "authors:0", "authors:1.0", "authors:abc", "authors:200"):
        with pytest.raises(ForgetSpecError, match="authors"):
            select_authors(bad, 200, seed=0)


def test_byte_tokenizer_and_answer_only_labels():
    tok = ByteTokenizer()
    assert tok.decode(tok.encode("Lisbon, 1952.")) == "Lisbon, 1952."
    s = encode_pairs(tok, ["Where?", "Who is it?"], ["Here.", "Me."])
    assert s.ids.shape == s.labels.shape == s.mask.shape
    first = s.labels[0][s.labels[0] != IGNORE].tolist()
    assert tok.decode(first) == " Here.\n"  # the answer and the end token, nothing else
    assert s.mask[0].sum() == len("Q: Where?\nA: Here.\n") + 1


def test_lm_registry_and_device_errors():
    assert {"ga", "grad-diff", "kl", "npo", "npo+gd", "simnpo", "idk", "idk-dpo",
            "rmu"} <= set(LM_METHODS.names())
    with pytest.raises(UnknownNameError, match="Did you mean 'npo'"):
        LM_METHODS.get("npoo")
    with pytest.raises(ConfigError, match="'beta' parameter of npo must be a float > 0"):
        LM_METHODS.get("npo").build_config({"beta": -1})
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="Unknown device"):
        resolve_device("tpu")
