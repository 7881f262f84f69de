"""Reliability: concurrent callers get identical answers; random inputs never crash or mislead."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import runtime
from runtime import InvalidInputError, ModelRuntimeError


def test_eight_threads_give_the_single_threaded_answers(iris_model: tuple[Path, Any, Any]) -> None:
    path, _, X = iris_model
    model = runtime.load(path, lazy=True)  # the session is created under contention too
    rng = np.random.default_rng(0)
    batches = [X[rng.integers(0, len(X), size=rng.integers(1, 60))] for _ in range(64)]
    single = [runtime.load(path).predict_proba(b) for b in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(model.predict_proba, batches))
    for a, b in zip(single, concurrent, strict=True):
        np.testing.assert_array_equal(a, b)


_dtypes = st.sampled_from(
    [np.float32, np.float64, np.int64, np.int8, np.bool_, np.uint16, np.str_, object, "bigint"]
)
# Finite in float64, infinite once cast to float32 (or beyond any float: Python ints).
_OVERFLOW = [1e39, -1e39, 3.5e38, 1e308]
_BIG_INTS = [10**39, -(10**39), 10**400, -(10**400), 2**63, 7]


@st.composite
def _inputs(draw: st.DrawFn) -> Any:
    dtype = draw(_dtypes)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
    size = int(np.prod(shape))
    if dtype in (np.str_, object):
        return np.array(
            draw(st.lists(st.text(max_size=3), min_size=size, max_size=size)), dtype=dtype
        ).reshape(shape)
    if dtype == "bigint":  # Python ints in lists of rows of the model's width, as users pass them
        shape = (draw(st.integers(1, 3)), 4)
        values = draw(st.lists(st.sampled_from(_BIG_INTS) | st.integers(-5, 5), min_size=4, max_size=4))
        return [values[::-1] if i % 2 else values for i in range(shape[0])]
    elements = None
    if dtype == np.float32:
        elements = st.floats(allow_nan=True, allow_infinity=True, width=32)
    elif dtype == np.float64:
        elements = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(_OVERFLOW)
    return draw(hnp.arrays(dtype, shape, elements=elements))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(X=_inputs())
def test_fuzz_predict_answers_correctly_or_raises_a_runtime_error(
    iris_model: tuple[Path, Any, Any], X: Any
) -> None:
    path, estimator, _ = iris_model
    model = _cached(path)
    try:
        proba = model.predict_proba(X)
    except InvalidInputError:
        return
    # Accepted: the input must have been a (n, 4) table of numbers finite in float32, and the answer right.
    numeric = np.asarray(X, dtype=np.float64)
    assert numeric.ndim == 2 and numeric.shape[1] == 4
    assert np.isfinite(numeric.astype(np.float32)).all()
    assert proba.shape == (len(numeric), 3)
    if len(numeric):
        np.testing.assert_allclose(proba, estimator.predict_proba(numeric.astype(np.float32)), atol=1e-5)


# A DataFrame model with every rule the runtime enforces: an imputed float column (NaN yes, inf and
# float32 overflow no), a dropped one (anything), OrdinalEncoder(handle_unknown="error") on strings,
# OneHotEncoder(handle_unknown="ignore") on ints (fractions refused), TF-IDF on text (lower-cased
# as Python does it).
_CITIES = ["paris", "lyon", "σοφια"]
_WORDS = ["ΟΔΟΣ", "οδος", "İstanbul", "istanbul", "i̇stanbul", "STRASSE", "Straße", "ẞ", "GOOD", "good", "Bad"]
_SPECIALS = [np.nan, np.inf, -np.inf, *_OVERFLOW, *_BIG_INTS]


@pytest.fixture(scope="module")
def rules_model() -> tuple[Any, runtime.Model]:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    import exporter

    rng = np.random.default_rng(0)
    n = 300
    words = np.array([w.lower() for w in _WORDS], dtype=object)
    frame = pd.DataFrame(
        {
            "income": np.where(rng.random(n) < 0.1, np.nan, rng.normal(50, 12, n)),
            "junk": rng.normal(size=n),
            "city": rng.choice(_CITIES, n).astype(object),
            "visits": rng.integers(0, 4, n),
            "note": [" ".join(rng.choice(words, 3)) for _ in range(n)],
        }
    )
    y = np.where(frame["note"].str.contains("οδος|good") ^ (frame["income"] > 50), "yes", "no")
    ct = ColumnTransformer(
        [
            ("income", make_pipeline(SimpleImputer(), StandardScaler()), ["income"]),
            ("junk", "drop", ["junk"]),
            ("city", OrdinalEncoder(), ["city"]),
            ("visits", OneHotEncoder(handle_unknown="ignore"), ["visits"]),
            ("note", TfidfVectorizer(), "note"),
        ],
        sparse_threshold=0,
    )
    pipe = make_pipeline(ct, LogisticRegression(max_iter=500)).fit(frame, y)
    return pipe, runtime.load(exporter.export(pipe, sample=frame.iloc[:80]).model.SerializeToString())


_number = st.floats(-100, 100) | st.floats(-1e3, 1e3) | st.integers(-5, 5) | st.sampled_from(_SPECIALS)


@st.composite
def _rows(draw: st.DrawFn) -> Any:
    import pandas as pd

    n = draw(st.integers(1, 3))
    column = lambda values: st.lists(values, min_size=n, max_size=n)  # noqa: E731
    data = {
        "income": draw(column(_number)),
        "junk": draw(column(_number)),
        "city": draw(column(st.sampled_from([*_CITIES, "Oslo", "PARIS", "ΣΟΦΙΑ", ""]))),
        "visits": draw(column(st.sampled_from([0, 1, 3, 7, -1, 2.5, -0.5, 1e39, np.inf]))),
        "note": draw(column(st.lists(st.sampled_from(_WORDS), max_size=4).map(" ".join))),
    }
    return pd.DataFrame(data)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_rows())
def test_fuzz_values_answer_like_native_or_are_refused(
    rules_model: tuple[Any, runtime.Model], rows: Any
) -> None:
    """±inf, float32 overflow, Python ints beyond any float, Unicode case pairs (Greek final sigma,
    Turkish dotted I, German sharp s), unseen categories and fractions of int categories: the
    runtime answers exactly as the native pipeline does, or raises InvalidInputError — never a
    different answer, never another exception."""
    pipe, model = rules_model
    try:
        got = model.predict_proba(rows)
    except InvalidInputError:
        return
    native = pipe.predict_proba(rows)  # must not raise: the runtime answered
    np.testing.assert_allclose(got, native, atol=1e-5)
    np.testing.assert_array_equal(model.predict(rows), pipe.predict(rows))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    columns=st.lists(
        st.sampled_from(["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "extra"]), unique=True
    ),
    n_rows=st.integers(0, 5),
    poison=st.sampled_from([None, "nan", "text"]),
)
def test_fuzz_dataframe_columns(
    frame_model: tuple[Path, Any, Any], columns: list[str], n_rows: int, poison: str | None
) -> None:
    import pandas as pd

    path, pipe, frame = frame_model
    model = _cached(path)
    data = pd.DataFrame(
        {c: frame[c].iloc[:n_rows].to_numpy() if c in frame else np.ones(n_rows) for c in columns}
    )
    if poison and n_rows and columns:
        data[columns[0]] = data[columns[0]].astype(object)
        data.loc[0, columns[0]] = np.nan if poison == "nan" else "text"
    try:
        got = model.predict(data)
    except ModelRuntimeError:
        return
    assert set(frame.columns) <= set(columns)
    assert got.shape == (n_rows,)
    if n_rows:
        np.testing.assert_allclose(
            got, pipe.predict(data[list(frame.columns)].astype(float)), rtol=1e-5, atol=1e-3
        )


_MODELS: dict[Path, runtime.Model] = {}


def _cached(path: Path) -> runtime.Model:
    if path not in _MODELS:
        _MODELS[path] = runtime.load(path)
    return _MODELS[path]


@pytest.fixture(autouse=True, scope="module")
def _forget_models() -> Any:
    yield
    _MODELS.clear()
