"""Every input layout sklearn accepts at the first step: string DataFrames whose first step is an
encoder (not a ColumnTransformer), numpy string / object matrices, a ColumnTransformer over the
columns of one string matrix, dict-of-columns samples. Each answers like the fitted pipeline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

import exporter
import runtime
from exporter.errors import SampleError
from runtime.errors import InvalidInputError

RNG = np.random.default_rng(0)
N = 160
CITIES = RNG.choice(["paris", "rome", "oslo"], N)
COLORS = RNG.choice(["red", "blue"], N)
Y = ((CITIES == "rome") | (COLORS == "red")).astype(int)
WORDS = np.array(["good movie", "bad film", "great plot", "awful acting", "nice"])


def _string_frame() -> Any:
    return pd.DataFrame({"city": CITIES, "color": COLORS})


def _mixed_frame() -> Any:
    return pd.DataFrame({"city": CITIES, "n": RNG.integers(0, 3, N)})


LAYOUTS = {
    "encoder-on-string-frame": (lambda: make_pipeline(OneHotEncoder(), LogisticRegression()), _string_frame),
    "encoder-on-mixed-frame": (
        lambda: make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression()),
        _mixed_frame,
    ),
    "encoder-on-string-matrix": (
        lambda: make_pipeline(OneHotEncoder(), LogisticRegression()),
        lambda: np.stack([CITIES, COLORS], 1),
    ),
    "ordinal-on-object-matrix": (
        lambda: make_pipeline(OrdinalEncoder(), LogisticRegression()),
        lambda: np.stack([CITIES, COLORS], 1).astype(object),
    ),
    "two-tfidf-columns-of-one-matrix": (
        lambda: make_pipeline(
            ColumnTransformer([("a", TfidfVectorizer(), 0), ("b", TfidfVectorizer(), 1)]),
            LogisticRegression(),
        ),
        lambda: np.stack([RNG.choice(WORDS, N), RNG.choice(WORDS, N)], 1).astype(object),
    ),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layout_exports_and_answers_like_native(layout: str) -> None:
    build, data = LAYOUTS[layout]
    X = data()
    pipe = build().fit(X, Y)
    head, held = (X.iloc[:100], X.iloc[100:]) if hasattr(X, "iloc") else (X[:100], X[100:])
    model = runtime.load(exporter.export(pipe, sample=head).model.SerializeToString())
    np.testing.assert_allclose(model.predict_proba(held), pipe.predict_proba(held), atol=1e-5, rtol=1e-4)
    assert np.array_equal(model.predict(held), pipe.predict(held))


def test_a_string_matrix_refuses_numbers_and_unseen_categories() -> None:
    X = np.stack([CITIES, COLORS], 1)
    pipe = make_pipeline(OneHotEncoder(), LogisticRegression()).fit(X, Y)
    model = runtime.load(exporter.export(pipe, sample=X[:50]).model.SerializeToString())
    with pytest.raises(InvalidInputError, match="berlin"):  # OneHotEncoder(handle_unknown='error') raises
        model.predict(np.array([["berlin", "red"]]))
    with pytest.raises(SampleError, match="takes a matrix of strings"):
        exporter.export(pipe, sample=np.zeros((3, 2)))


def test_a_dict_of_columns_is_a_sample_like_a_dataframe() -> None:
    frame = pd.DataFrame({"a": RNG.normal(size=N), "b": RNG.normal(size=N)})
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, (frame["a"] > 0).astype(int))
    sample = {c: frame[c].to_numpy()[:50] for c in frame.columns}
    model = runtime.load(exporter.export(pipe, sample=sample).model.SerializeToString())
    np.testing.assert_allclose(model.predict_proba(frame), pipe.predict_proba(frame), atol=1e-5)
