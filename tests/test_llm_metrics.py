"""The language-model track's measures on cases with known answers, and its data generators."""

import numpy as np
import pytest
import torch
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
    # the example: TOFU stems (wrote/writes do not meet; book/books, dragon/dragons do)
    assert M.rouge_l_recall("She wrote a book about a dragon.",
                            "She writes books about dragons.") == pytest.approx(0.8)
    # punctuation splits words, as rouge_score's tokenizer does: "Vasquez's" is two tokens
    assert M.rouge_l_recall("Vasquez", "Vasquez's") == pytest.approx(0.5)


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
    mu, var = np.full(5, -1.0), np.full(5, 4.0)
    assert M.min_k_plus_plus(logp, mu, var, 0.4) == pytest.approx((-9 / 2 + -4 / 2) / 2)
    # OpenUnlearning clamps the variance (not the spread) at 1e-6: sd 1e-3 where it is ~0
    tiny = M.min_k_plus_plus(np.array([-1.0]), np.array([-1.5]), np.array([1e-12]), 0.4)
    assert tiny == pytest.approx(0.5 / 1e-3)


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


def test_memorisation_and_extraction_strength_known_cases():
    t = np.array([5, 6, 7, 8])
    assert M.exact_memorisation(t, t) == 1.0
    assert M.exact_memorisation(np.array([5, 0, 7, 0]), t) == 0.5
    assert M.extraction_strength(t, t) == 1.0  # the whole answer comes out from the question
    # wrong at position 1 only: a 2-token prefix makes the rest come out -> 1 - 2/4
    assert M.extraction_strength(np.array([5, 0, 7, 8]), t) == 0.5
    # last token wrong: OpenUnlearning's loop stops at k = n - 1, so 1/n
    assert M.extraction_strength(np.array([5, 6, 7, 0]), t) == 0.25
    assert M.extraction_strength(np.array([0, 6, 7, 8]), t) == 0.75
    assert M.extraction_strength(np.array([]), np.array([])) == 0.0


def test_privleak_and_reference_scores():
    # MUSE's orientation: AUC_muse = 1 - member-higher AUC; relative to the retain-only model
    assert M.privleak(0.5, 0.5) == 0.0
    assert M.privleak(0.9, 0.5) == pytest.approx((0.1 - 0.5) / 0.5 * 100)  # leaks: -80%
    assert M.privleak(0.2, 0.5) == pytest.approx((0.8 - 0.5) / 0.5 * 100)  # over-unlearned
    np.testing.assert_allclose(M.reference_scores(np.array([1.0, 3.0]), np.array([2.0, 2.0])),
                               [1.0, -1.0])  # lower NLL than the reference -> member-like


def test_rouge_l_f1():
    assert M.rouge_l_f1("the cat sat", "the cat sat") == 1.0
    # LCS 2 of 4 predicted and 2 reference words: recall 1, precision 0.5 -> F1 2/3
    assert M.rouge_l_f1("a b c d", "a b") == pytest.approx(2 / 3)
    assert M.rouge_l_f1("", "a b") == 0.0
    # MUSE does not stem: "books" and "book" differ
    assert M.rouge_l_f1("She writes books about dragons.", "She wrote a book about a dragon.") \
        == pytest.approx(2 * (2 / 5) * (2 / 7) / (2 / 5 + 2 / 7))


def test_reference_metrics_of_the_retain_only_model_against_itself():
    from obliviate.llm.evaluate import reference_metrics

    rng = np.random.default_rng(0)
    arrays = {"forget_truth_ratio": rng.uniform(size=20),
              **{f"{s}_mia_{k}": rng.normal(size=20) for s in ("forget", "holdout")
                 for k in ("loss", "mink")}}
    assert reference_metrics(arrays, arrays) == {"forget_quality": 1.0, "privleak": 0.0,
                                                 "mia_reference": 0.5}
    # a model that fits the forget texts better than the reference: the reference MIA sees it
    shifted = {**arrays, "forget_mia_loss": arrays["forget_mia_loss"] + 5.0}
    assert reference_metrics(shifted, arrays)["mia_reference"] == 1.0


class FixedLM(torch.nn.Module):
    """A causal "LM" whose logits at each position are parameters (the input is ignored)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = torch.nn.Parameter(logits.clone())

    def forward(self, input_ids, attention_mask=None, **_):
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.logits.expand(len(input_ids), -1, -1))


def _batch():
    ids = torch.tensor([[1, 2, 3]])
    labels = torch.tensor([[IGNORE, 2, 3]])  # two labelled tokens, predicted at positions 0, 1
    return ids, labels, torch.ones_like(ids)


def test_token_weighted_losses_known_values():
    from obliviate.llm import losses as L

    def value(x):
        return float(x.detach())

    logits = torch.log(torch.tensor([[[0.1, 0.1, 0.6, 0.2], [0.1, 0.1, 0.3, 0.5], [1, 1, 1, 1.]]]))
    lm = FixedLM(logits)
    p = torch.tensor([0.6, 0.5])  # probabilities of the labels 2 and 3
    nll = -torch.log(p)
    assert value(L.wga(lm, _batch(), beta=0.0)) == pytest.approx(-float(nll.mean()))  # = GA
    assert value(L.gradient_ascent(lm, _batch())) == pytest.approx(-float(nll.mean()), rel=1e-5)
    assert value(L.wga(lm, _batch(), beta=2.0)) == pytest.approx(-float((p ** 2 * nll).mean()))
    want = -float((p ** 5 * (1 - p) * nll).mean())
    assert value(L.satimp(lm, _batch(), beta1=5.0, beta2=1.0)) == pytest.approx(want)
    # the weight carries no gradient: d/dlogit of -w * nll / 2 is w * (onehot - softmax) / 2
    L.wga(lm, _batch(), beta=1.0).backward()
    g = lm.logits.grad[0, 0]
    probs = torch.tensor([0.1, 0.1, 0.6, 0.2])
    onehot = torch.tensor([0.0, 0.0, 1.0, 0.0])
    torch.testing.assert_close(g, 0.6 * (onehot - probs) / 2, rtol=1e-4, atol=1e-6)


def test_undial_targets_the_reference_with_the_answer_token_lowered():
    from obliviate.llm import losses as L

    logits = torch.log(torch.tensor([[[0.1, 0.1, 0.6, 0.2], [0.1, 0.1, 0.3, 0.5], [1, 1, 1, 1.]]]))
    lm, ref = FixedLM(logits), FixedLM(logits)
    # beta 0: cross-entropy of a distribution with itself = its entropy, averaged over tokens
    h = [-(q * q.log()).sum() for q in torch.softmax(logits[0, :2], -1)]
    assert float(L.undial(lm, ref, _batch(), beta=0.0).detach()) == pytest.approx(
        float(sum(h) / 2))
    # a huge beta removes the answer token from the target: the target at position 0 is
    # (0.1, 0.1, 0, 0.2) / 0.4
    target = torch.tensor([0.25, 0.25, 0.0, 0.5])
    ce0 = -(target * torch.log_softmax(logits[0, 0], -1)).sum()
    target1 = torch.tensor([0.1, 0.1, 0.3, 0.0]) / 0.5
    ce1 = -(target1 * torch.log_softmax(logits[0, 1], -1)).sum()
    assert float(L.undial(lm, ref, _batch(), beta=1e4).detach()) == pytest.approx(
        float(ce0 + ce1) / 2, rel=1e-5)


def test_alternates_and_question_paraphrases_are_well_formed():
    from obliviate.llm.profiles import profile_alternates

    people = make_profiles(6, seed=1)
    qa = profile_qa(people, seed=1, n_perturbed=3)
    alts = profile_alternates(people, qa, k=5, seed=1)
    assert len(alts) == len(qa)
    for q, (answers, paras) in zip(qa, alts, strict=True):
        assert len(answers) == len(paras) == 5
        assert q.answer not in answers and q.paraphrase not in paras
        assert not set(paras) & set(q.perturbed)  # never an evaluated wrong answer
    questions = [(p.name, q) for p in people for q in p.paraphrased_questions()]
    assert len(questions) == len(qa)
    for (name, para), q in zip(questions, qa, strict=True):
        assert para != q.question and name in para and name in q.question
