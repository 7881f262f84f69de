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
from runtime import ModelRuntimeError


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


_dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.bool_, np.uint16, np.str_, object])


@st.composite
def _inputs(draw: st.DrawFn) -> Any:
    dtype = draw(_dtypes)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
    if dtype in (np.str_, object):
        return np.array(
            draw(st.lists(st.text(max_size=3), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
            dtype=dtype,
        ).reshape(shape)
    elements = (
        st.floats(allow_nan=True, allow_infinity=True, width=32)
        if dtype in (np.float32, np.float64)
        else None
    )
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
    except ModelRuntimeError:
        return
    # Accepted: the input must have been a (n, 4) table of finite numbers, and the answer right.
    assert X.ndim == 2 and X.shape[1] == 4
    numeric = np.asarray(X, dtype=np.float64)
    assert np.isfinite(numeric).all()
    assert proba.shape == (len(X), 3)
    if len(X):
        np.testing.assert_allclose(proba, estimator.predict_proba(numeric.astype(np.float32)), atol=1e-5)


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
