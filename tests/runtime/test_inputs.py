"""Inputs the runtime accepts beyond numpy: tensors, polars, chunks; and lazy / fork-safe sessions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runtime
from runtime import InvalidInputError


def test_torch_tensor_requiring_grad(iris_model: tuple[Path, Any, Any]) -> None:
    import torch

    path, estimator, X = iris_model
    model = runtime.load(path)
    tensor = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    np.testing.assert_array_equal(model.predict(tensor), estimator.predict(X))
    np.testing.assert_array_equal(model.predict(tensor.double()), estimator.predict(X))


def test_torch_tensor_errors_are_runtime_errors(iris_model: tuple[Path, Any, Any]) -> None:
    import torch

    model = runtime.load(iris_model[0])
    with pytest.raises(InvalidInputError, match="expected 4 features, got 3"):
        model.predict(torch.zeros(2, 3))
    with pytest.raises(InvalidInputError, match=r"convert it with \.float\(\)"):
        model.predict(torch.zeros(2, 4, dtype=torch.bfloat16))


def test_polars_dataframe(frame_model: tuple[Path, Any, Any]) -> None:
    pl = pytest.importorskip("polars")
    path, pipe, frame = frame_model
    model = runtime.load(path)
    np.testing.assert_allclose(
        model.predict(pl.from_pandas(frame)), pipe.predict(frame), rtol=1e-5, atol=1e-3
    )


def test_batch_size_streams_chunks(iris_model: tuple[Path, Any, Any]) -> None:
    path, estimator, X = iris_model
    model = runtime.load(path)
    np.testing.assert_array_equal(model.predict(X, batch_size=7), estimator.predict(X))
    assert model.predict_proba(X, batch_size=1000).shape == (len(X), 3)
    with pytest.raises(InvalidInputError, match="batch_size=0"):
        model.predict(X, batch_size=0)


def test_lazy_load_defers_the_session(iris_model: tuple[Path, Any, Any]) -> None:
    model = runtime.load(iris_model[0], lazy=True)
    assert model._sess is None
    assert model.predict(iris_model[2][:2]).shape == (2,)
    assert model._sess is not None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_its_own_session(iris_model: tuple[Path, Any, Any]) -> None:
    path, estimator, X = iris_model
    model = runtime.load(path)
    parent_session = model._session()
    expected = estimator.predict(X)  # in the parent: torch itself is not fork-safe (OpenMP)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must build a new session, and answer correctly
        ok = model._session() is not parent_session and (model.predict(X) == expected).all()
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert model._session() is parent_session


def test_small_and_large_frames_take_the_same_checks(frame_model: tuple[Path, Any, Any]) -> None:
    """Up to SMALL_FRAME rows a DataFrame is converted in one go; the answers and the errors are
    the same on both sides of the threshold (columns reordered, NaN named by column)."""
    from runtime.inputs import SMALL_FRAME

    path, pipe, frame = frame_model
    model = runtime.load(path)
    shuffled = frame[list(reversed(frame.columns))]
    small, large = shuffled.iloc[:SMALL_FRAME], shuffled.iloc[: SMALL_FRAME + 1]
    np.testing.assert_allclose(model.predict(small), model.predict(large)[:SMALL_FRAME], rtol=1e-6)
    np.testing.assert_allclose(
        model.predict(small), pipe.predict(frame.iloc[:SMALL_FRAME]), rtol=1e-4, atol=1e-3
    )
    for rows in (small, large):
        bad = rows.copy()
        bad.iloc[3, bad.columns.get_loc("bmi")] = np.nan
        with pytest.raises(runtime.InvalidInputError, match="column 'bmi' holds NaN"):
            model.predict(bad)
        with pytest.raises(
            runtime.InvalidInputError, match=r"column 'age' holds non-numeric values \(text\)"
        ):
            model.predict(rows.astype({"age": str}))  # numbers as text: refused, not parsed


def test_small_frames_of_nullable_and_polars_columns(frame_model: tuple[Path, Any, Any]) -> None:
    """pd.NA in a nullable column, and polars frames, take the per-column path whatever the size."""
    import pandas as pd
    import polars as pl

    path, _, frame = frame_model
    model = runtime.load(path)
    for n in (3, 100):
        rows = frame.iloc[:n].astype({"bmi": "Float64"})
        rows.iloc[1, rows.columns.get_loc("bmi")] = pd.NA
        with pytest.raises(runtime.InvalidInputError, match="column 'bmi' holds NaN"):
            model.predict(rows)
        np.testing.assert_allclose(
            model.predict(pl.from_pandas(frame.iloc[:n])), model.predict(frame.iloc[:n])
        )
    text = np.array([[np.str_("2.5")] * frame.shape[1]], dtype=object)  # numpy strings are text too
    with pytest.raises(runtime.InvalidInputError, match="holds non-numeric values"):
        model.predict(text)
