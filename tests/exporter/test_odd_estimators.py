"""Deliberately odd estimators through export, check and the runtime: each either converts (and then
answers as sklearn does) or fails with one of the project's own errors — never an uncaught
exception (issue 16: "unexpected IndexError ...").

The case table's rows (tests/exporter/test_cases.py) must all export; these are the shapes around
them: text in containers, multi-output, stateless custom steps, refusals by name. A row's ``expect``
says what is known today: "converts", or the project error class expected (so a fix shows up as a
failure to update, and a regression to a raw exception fails either way).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from sklearn import datasets
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import BaggingClassifier, StackingClassifier, VotingClassifier
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.impute import KNNImputer, MissingIndicator, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.multioutput import MultiOutputClassifier
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, SplineTransformer, StandardScaler
from sklearn.svm import SVC, LinearSVC, OneClassSVM

import exporter
import runtime
from exporter.check import check
from exporter.errors import ExportError
from runtime.errors import ModelRuntimeError
from tests.cases import documents

PROJECT_ERRORS = (ExportError, ModelRuntimeError)


class Doubler(TransformerMixin, BaseEstimator):
    """A fitted stateless custom transformer (no attribute ending in "_"), no converter."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X) * 2


@dataclass(frozen=True)
class Odd:
    id: str
    data: str  # iris, diabetes, text, blobs (iris with NaN), codes (iris rounded), multi (two targets)
    build: Callable[[], Any]
    expect: str | type = "converts"  # or the project error class raised today


def _data(kind: str) -> tuple[Any, Any]:
    if kind == "text":
        docs, labels = documents(120)
        return docs, labels
    if kind == "diabetes":
        X, y = datasets.load_diabetes(return_X_y=True)
        return X[:200], y[:200]
    X, y = datasets.load_iris(return_X_y=True)
    if kind == "blobs":
        return np.where(X > 6.5, np.nan, X), y
    if kind == "codes":
        return np.round(X), y
    if kind == "multi":
        return X, np.c_[y, (X[:, 0] > 5.8).astype(int)]
    return X, y


ODD = [
    # converts now (each was a failure in issue 16's sweep)
    Odd("bagging-svc-votes", "iris", lambda: BaggingClassifier(SVC(), n_estimators=3, random_state=0)),
    Odd("linear-svc-pipeline", "iris", lambda: make_pipeline(StandardScaler(), LinearSVC())),
    Odd(  # converts, but the runtime refuses the NaN it exists for (schema: lead)
        "missing-indicator-alone", "blobs", lambda: MissingIndicator(features="all")
    ),
    Odd("knn-distance", "diabetes", lambda: KNeighborsRegressor(weights="distance")),
    Odd(
        "onehot-min-frequency-numeric",
        "codes",
        lambda: make_pipeline(OneHotEncoder(min_frequency=15, sparse_output=False), LogisticRegression()),
    ),
    Odd(
        "tfidf-char-wb-short-words",
        "text",
        lambda: make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)), LogisticRegression()),
    ),
    Odd(
        "voting-over-text-pipelines",
        "text",
        lambda: VotingClassifier(
            [
                ("tfidf", make_pipeline(TfidfVectorizer(), LogisticRegression())),
                ("count", make_pipeline(CountVectorizer(ngram_range=(1, 2)), LogisticRegression())),
            ],
            voting="soft",
        ),
    ),
    Odd(
        "imputer-indicator-nothing-missing",
        "iris",
        lambda: make_pipeline(SimpleImputer(add_indicator=True), LogisticRegression()),
    ),
    Odd(
        "stacking-svc-decision",
        "iris",
        lambda: StackingClassifier([("svc", SVC()), ("lr", LogisticRegression())], cv=3),
    ),
    Odd("one-class-svm", "iris", lambda: make_pipeline(StandardScaler(), OneClassSVM())),
    Odd("gaussian-mixture", "iris", lambda: GaussianMixture(3, random_state=0)),
    # refused by name, one line
    Odd(
        "tfidf-callable-analyzer",
        "text",
        lambda: make_pipeline(TfidfVectorizer(analyzer=str.split), LogisticRegression()),
        ExportError,
    ),
    Odd(
        "tfidf-strip-accents",
        "text",
        lambda: make_pipeline(TfidfVectorizer(strip_accents="unicode"), LogisticRegression()),
        ExportError,
    ),
    Odd(
        "tfidf-capturing-group",
        "text",
        lambda: make_pipeline(TfidfVectorizer(token_pattern=r"(\w+)"), LogisticRegression()),
        ExportError,
    ),
    Odd(
        "tfidf-narrow-boundary-bigrams",
        "text",
        lambda: make_pipeline(
            TfidfVectorizer(token_pattern=r"\b[a-z]{3,}\b", ngram_range=(1, 2)), LogisticRegression()
        ),
        ExportError,
    ),
    Odd(
        "spline-linear-degree-1",
        "diabetes",
        lambda: SplineTransformer(degree=1, extrapolation="linear"),
        ExportError,
    ),
    Odd("knn-imputer", "blobs", lambda: make_pipeline(KNNImputer(), LogisticRegression()), ExportError),
    Odd("multioutput-classifier", "multi", lambda: MultiOutputClassifier(LogisticRegression()), ExportError),
    Odd(
        "stateless-custom-transformer",
        "iris",
        lambda: make_pipeline(Doubler(), LogisticRegression()),
        ExportError,
    ),
    Odd("dummy-classifier", "iris", lambda: DummyClassifier(), ExportError),
    Odd(
        "function-transformer-sin",
        "iris",
        lambda: make_pipeline(FunctionTransformer(np.sin), LogisticRegression()),
        ExportError,
    ),
]


def _sample(X: Any) -> Any:
    return X[:40]


@pytest.mark.parametrize("odd", ODD, ids=[o.id for o in ODD])
def test_odd_estimator_converts_or_fails_with_a_project_error(odd: Odd) -> None:
    X, y = _data(odd.data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = odd.build().fit(X, y)
        try:
            result = exporter.export(estimator, sample=_sample(X))
            model = runtime.load(result.model.SerializeToString())
            _same_answers(model, estimator, X)
            report = check(estimator, model, _sample(X))
        except PROJECT_ERRORS as exc:
            assert "\n" not in str(exc), str(exc)  # one line, naming the step and the fix
            assert odd.expect != "converts", f"{odd.id} no longer converts: {exc}"
            assert isinstance(exc, odd.expect), exc  # type: ignore[arg-type]
            return
        assert odd.expect == "converts", f"{odd.id} converts now: update its row ({odd.expect})"
        assert report.passed, report.format()
        _odd_inputs(model, X)


def _same_answers(model: runtime.Model, native: Any, X: Any) -> None:
    if model.task == "transformer":
        np.testing.assert_allclose(
            model.transform(X), np.asarray(native.transform(X), dtype=float), atol=1e-4
        )
        return
    predicted, expected = model.predict(X), native.predict(X)
    if model.task == "classifier":
        assert np.mean(predicted == expected) == 1.0
        if hasattr(native, "predict_proba") and "probabilities" in model.output_names:
            np.testing.assert_allclose(model.predict_proba(X), native.predict_proba(X), atol=1e-4)
    else:
        np.testing.assert_allclose(predicted, expected, rtol=1e-4, atol=1e-3)


def _odd_inputs(model: runtime.Model, X: Any) -> None:
    """What a caller gets wrong: only the runtime's own errors come back."""
    bad: list[Any] = [np.zeros((2, 3, 4)), np.array([["a", "b"]], dtype=object), [], None, {"nope": 1}]
    if isinstance(X, np.ndarray) and X.ndim == 2:
        bad += [X[:3, :-1], np.full((2, X.shape[1]), np.inf)]
    for value in bad:
        try:
            model.predict(value) if model.task != "transformer" else model.transform(value)
        except ModelRuntimeError:
            continue
        except Exception as exc:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"{type(exc).__name__} (not a runtime error) for input {value!r:.60}: {exc}")
