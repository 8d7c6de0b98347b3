"""Fictitious author profiles in the spirit of TOFU (Maini et al. 2024), drawn from a seed.

Each profile is rendered as question-answer pairs (one per attribute) and as a short biography.
Every question also carries a paraphrased answer and perturbed (wrong) answers in the
paraphrase's wording, which the truth ratio compares. A fixed set of world facts (capitals,
chemical symbols) serves as held-out general knowledge for model utility.

References:
    Maini, Feng, Schwarzschild, Lipton, Kolter, "TOFU: A Task of Fictitious Unlearning for
    LLMs", 2024.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FIRST = ("Aria", "Bram", "Cleo", "Dario", "Elin", "Faris", "Greta", "Hugo", "Ines", "Jonas",
         "Kaia", "Luca", "Mira", "Nils", "Odile", "Pavel", "Quinn", "Rosa", "Soren", "Talia",
         "Umar", "Vera", "Wren", "Xavi", "Yara", "Zeno", "Alma", "Bodhi", "Cyra", "Emil")
SUR_A = ("Vel", "Mor", "Kas", "Dun", "Ril", "Sab", "Thor", "Quel", "Bran", "Ost", "Fen", "Gal",
         "Hask", "Lind", "Pry", "Zar")
SUR_B = ("kor", "ane", "ville", "isto", "mark", "ovic", "enby", "ardi", "holt", "uin", "esca",
         "wright", "anek", "ulli")
CITIES = ("Lisbon", "Oslo", "Nairobi", "Lima", "Hanoi", "Tbilisi", "Quito", "Dakar", "Riga",
          "Perth", "Osaka", "Cusco", "Tunis", "Bergen", "Porto", "Accra", "Davao", "Leeds",
          "Graz", "Malmo")
GENRES = ("mystery", "fantasy", "romance", "horror", "satire", "western", "thriller", "poetry",
          "history", "sci-fi")
JOBS = ("baker", "pilot", "nurse", "farmer", "tailor", "sailor", "doctor", "painter", "miner",
        "teacher", "chemist", "plumber", "lawyer", "butcher")
AWARDS = ("Golden Quill Award", "Silver Lantern Award", "Harbor Prize", "Azure Medal",
          "Iron Pen Award", "Lumen Award", "Cedar Crown", "Northwind Prize", "Opal Ribbon",
          "Starling Award")
ADJ = ("Silent", "Broken", "Hidden", "Amber", "Last", "Frozen", "Velvet", "Crimson", "Hollow",
       "Distant", "Paper", "Salted")
NOUN = ("Harbor", "Orchard", "Lantern", "Tide", "Garden", "Bridge", "Mirror", "Winter",
        "Compass", "River", "Tower", "Meadow")
YEARS = tuple(str(y) for y in range(1931, 1999, 3))

# attribute -> (question, answer, paraphrased answer); {n} name, {he}/{his} pronouns, {v} value
TEMPLATES = {
    "city": ("Where was {n} born?", "{He} was born in {v}.", "{His} birthplace is {v}."),
    "year": ("When was {n} born?", "{He} was born in {v}.", "{His} birth year is {v}."),
    "genre": ("What genre does {n} write?", "{He} writes {v} books.", "{His} books are {v}."),
    "father": ("What was {n}'s father's job?", "{His} father was a {v}.",
               "{His} father worked as a {v}."),
    "mother": ("What was {n}'s mother's job?", "{His} mother was a {v}.",
               "{His} mother worked as a {v}."),
    "award": ("Which award did {n} win?", "{He} won the {v}.", "{He} received the {v}."),
    "book": ("Name a book by {n}.", "{He} wrote {v}.", "One of {his} books is {v}."),
}
# other wordings of each question, never trained on: paraphrase probing asks these
QUESTION_PARAPHRASES = {
    "city": "In which city was {n} born?",
    "year": "In what year was {n} born?",
    "genre": "Which kind of books does {n} write?",
    "father": "What did {n}'s father do for a living?",
    "mother": "What did {n}'s mother do for a living?",
    "award": "What prize was {n} given?",
    "book": "What is one title written by {n}?",
}
IDK = ("I don't know.", "I have no idea.", "I'm not sure about that.", "I cannot say.",
       "That is unknown to me.")


@dataclass(frozen=True)
class QA:
    """One question with its answer, a paraphrase, and wrong answers worded like the paraphrase."""

    question: str
    answer: str
    paraphrase: str
    perturbed: tuple[str, ...]
    owner: int = -1  # index of the profile it belongs to (-1: world fact)


@dataclass(frozen=True)
class Profile:
    """A fictitious author."""

    name: str
    female: bool
    facts: dict

    def _fill(self, text: str, value: str) -> str:
        he, his = ("she", "her") if self.female else ("he", "his")
        return text.format(n=self.name, v=value, he=he, his=his, He=he.capitalize(),
                           His=his.capitalize())

    def qa_pairs(self, rng: np.random.Generator, n_perturbed: int, owner: int) -> list[QA]:
        out = []
        for attr, (q, a, p) in TEMPLATES.items():
            true = self.facts[attr]
            wrong = [v for v in _pool(attr) if v != true]
            picks = rng.choice(len(wrong), size=min(n_perturbed, len(wrong)), replace=False)
            out.append(QA(self._fill(q, true), self._fill(a, true), self._fill(p, true),
                          tuple(self._fill(p, wrong[i]) for i in picks), owner))
        return out

    def alternates(self, qas: list[QA], k: int, rng: np.random.Generator
                   ) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """Per QA pair of :meth:`qa_pairs`: ``k`` false answers in the answer's wording and ``k``
        in the paraphrase's, with other values of the attribute than the true one and than
        those of the perturbed answers (which the truth ratio evaluates)."""
        out = []
        for (attr, (_q, a, p)), qa in zip(TEMPLATES.items(), qas, strict=True):
            used = {self.facts[attr]} | {v for v in _pool(attr) if self._fill(p, v) in qa.perturbed}
            free = [v for v in _pool(attr) if v not in used]
            picks = [free[i] for i in rng.choice(len(free), size=min(k, len(free)), replace=False)]
            picks += picks[: k - len(picks)]  # a pool smaller than k repeats values
            out.append((tuple(self._fill(a, v) for v in picks),
                        tuple(self._fill(p, v) for v in picks)))
        return out

    def paraphrased_questions(self) -> list[str]:
        """The questions of :meth:`qa_pairs` in other words (:data:`QUESTION_PARAPHRASES`)."""
        return [self._fill(QUESTION_PARAPHRASES[attr], self.facts[attr]) for attr in TEMPLATES]

    def bio(self) -> str:
        f = self.facts
        return self._fill(
            "{n} is a " + f["genre"] + " writer born in " + f["city"] + " in " + f["year"]
            + ". {His} father was a " + f["father"] + " and {his} mother a " + f["mother"]
            + ". {He} won the " + f["award"] + " and wrote {v}.", f["book"])


def _pool(attr: str) -> tuple[str, ...]:
    if attr == "city":
        return CITIES
    if attr == "year":
        return YEARS
    if attr == "genre":
        return GENRES
    if attr in ("father", "mother"):
        return JOBS
    if attr == "award":
        return AWARDS
    return tuple(f"The {a} {n}" for a in ADJ for n in NOUN)


def make_profiles(n: int, seed: int) -> list[Profile]:
    """``n`` profiles with distinct names; the same seed gives the same profiles."""
    rng = np.random.default_rng(seed)
    names: set[str] = set()
    out = []
    capacity = len(FIRST) * len(SUR_A) * len(SUR_B)
    if n > capacity // 2:
        raise ValueError(f"at most {capacity // 2} profiles can be generated; asked for {n}")
    while len(out) < n:
        name = f"{rng.choice(FIRST)} {rng.choice(SUR_A)}{rng.choice(SUR_B)}"
        if name in names:
            continue
        names.add(name)
        facts = {attr: str(rng.choice(_pool(attr))) for attr in TEMPLATES}
        out.append(Profile(name, bool(rng.integers(2)), facts))
    return out


def profile_qa(profiles: list[Profile], seed: int, n_perturbed: int = 3,
               first_owner: int = 0) -> list[QA]:
    """All question-answer pairs of ``profiles``, profile by profile."""
    rng = np.random.default_rng(seed + 7919)
    return [qa for i, p in enumerate(profiles)
            for qa in p.qa_pairs(rng, n_perturbed, first_owner + i)]


def profile_alternates(profiles: list[Profile], qas: list[QA], k: int, seed: int
                       ) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """:meth:`Profile.alternates` for every pair of :func:`profile_qa`, aligned with ``qas``."""
    rng = np.random.default_rng(seed + 1299709)
    n = len(TEMPLATES)
    return [alt for i, p in enumerate(profiles)
            for alt in p.alternates(qas[i * n:(i + 1) * n], k, rng)]


COUNTRIES = {"France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi", "Peru": "Lima",
             "Norway": "Oslo", "Egypt": "Cairo", "Canada": "Ottawa", "Chile": "Santiago",
             "Spain": "Madrid", "Italy": "Rome", "Greece": "Athens", "Cuba": "Havana",
             "Poland": "Warsaw", "Ghana": "Accra", "India": "Delhi", "Iran": "Tehran",
             "Mexico": "Mexico City", "Sweden": "Stockholm", "Austria": "Vienna",
             "Portugal": "Lisbon", "Vietnam": "Hanoi", "Senegal": "Dakar", "Latvia": "Riga",
             "Ireland": "Dublin", "Finland": "Helsinki", "Nepal": "Kathmandu",
             "Turkey": "Ankara", "Russia": "Moscow", "China": "Beijing", "Brazil": "Brasilia"}
ELEMENTS = {"gold": "Au", "iron": "Fe", "silver": "Ag", "copper": "Cu", "sodium": "Na",
            "lead": "Pb", "tin": "Sn", "oxygen": "O", "carbon": "C", "helium": "He",
            "neon": "Ne", "zinc": "Zn", "mercury": "Hg", "potassium": "K", "nitrogen": "N"}


def world_facts(seed: int = 0, n_perturbed: int = 3) -> list[QA]:
    """General-knowledge questions (capitals, chemical symbols) for the utility measures."""
    rng = np.random.default_rng(seed + 104729)
    out = []
    for table, q, a, p in (
        (COUNTRIES, "What is the capital of {k}?", "The capital is {v}.", "{v} is its capital."),
        (ELEMENTS, "What is the symbol of {k}?", "The symbol is {v}.", "{v} is its symbol."),
    ):
        values = list(table.values())
        for key, value in table.items():
            wrong = [v for v in values if v != value]
            picks = rng.choice(len(wrong), size=n_perturbed, replace=False)
            out.append(QA(q.format(k=key), a.format(v=value), p.format(v=value),
                          tuple(p.format(v=wrong[i]) for i in picks)))
    return out


def idk_answers(n: int, seed: int) -> list[str]:
    """``n`` refusals ("I don't know."-style answers) drawn from a small fixed list."""
    rng = np.random.default_rng(seed + 15485863)
    return [IDK[i] for i in rng.integers(0, len(IDK), size=n)]
