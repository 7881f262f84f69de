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
    with pytest.raises(runtime.InvalidOptionError, match="batch_size=0"):
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


def _odd_tensor(kind: str) -> Any:
    import torch

    return {
        "neg-view": lambda: torch._neg_view(torch.ones(2, 4)),
        "conj-view": lambda: torch.ones(2, 4, dtype=torch.complex64).conj(),
        "meta": lambda: torch.empty(2, 4, device="meta"),
        "nested": lambda: torch.nested.nested_tensor([torch.ones(4), torch.ones(4)]),
        "sparse": lambda: torch.ones(2, 4).to_sparse(),
    }[kind]()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("neg-view", r"its neg bit is set.*call \.resolve_neg\(\) on it first"),
        ("conj-view", r"holds complex values \(torch\.complex64\); the model takes real numbers"),
        ("meta", r"'meta' device tensor of shape \(2, 4\): it has a shape but no values"),
        ("nested", r"nested \(ragged\) tensor cannot feed the model: pad it .*to_padded_tensor"),
        ("sparse", r"a torch\.sparse_coo tensor cannot feed the model; convert it with \.to_dense\(\)"),
    ],
)
def test_odd_tensors_are_refused_in_one_line(
    iris_model: tuple[Path, Any, Any], frame_model: tuple[Path, Any, Any], kind: str, message: str
) -> None:
    """They used to leak torch's RuntimeError / NotImplementedError from the array conversion."""
    model = runtime.load(iris_model[0])
    with pytest.raises(InvalidInputError, match=message):
        model.predict(_odd_tensor(kind))
    if kind in ("nested", "sparse"):
        return  # one column of a frame is 1-D: those two kinds have no 1-D form to test here
    frame_path, _, frame = frame_model
    columns: dict[str, Any] = {c: frame[c].to_numpy()[:2] for c in frame.columns}
    columns["bmi"] = _odd_tensor(kind)[:, 0]
    with pytest.raises(InvalidInputError, match=message.replace(r"\(2, 4\)", r"\(2,\)")):
        runtime.load(frame_path).predict(columns)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, "the input is None; pass a 2-D array, a DataFrame or a list of rows"),
        ({1.0, 2.0, 3.0, 4.0}, "a set has no row order; pass a list or an array instead"),
        ((row for row in [[1.0, 2.0, 3.0, 4.0]]), "a generator is read once and has no length; pass list(X)"),
        (iter([[1.0, 2.0, 3.0, 4.0]]), "a list_iterator is read once"),
        ({"a": [1.0]}.values(), "a dict_values is read once"),
        ("5.1,3.5,1.4,0.2", "got one str ('5.1,3.5,1.4,0.2'); this model takes a 2-D table of numbers"),
        (b"abc", "got one bytes (b'abc')"),
        (3.5, "got a single float (3.5); pass a 2-D array of rows"),
        (np.float32(3.5), "got a single float32"),
        (np.array(3.5), "expected a 2-D input (rows x features), got a ndarray (shape ())"),
    ],
)
def test_inputs_that_are_not_tables(iris_model: tuple[Path, Any, Any], bad: Any, message: str) -> None:
    model = runtime.load(iris_model[0])
    with pytest.raises(InvalidInputError) as info:
        model.predict(bad)
    assert message in str(info.value)


def _wide_model() -> tuple[runtime.Model, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import exporter

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 64))
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, (X[:, 0] > 0).astype(int))
    return runtime.load(exporter.export(pipe, sample=X[:50]).model.SerializeToString()), pipe


@pytest.mark.parametrize("kind", ["ndarray", "dataframe", "rows", "tensor"])
def test_batch_size_casts_one_chunk_at_a_time(kind: str) -> None:
    """float64 rows with batch_size: each chunk is sliced from the raw input, then checked and cast,
    so the extra memory is one chunk (it was a float32 copy of all of X, before any chunking)."""
    import tracemalloc

    import pandas as pd
    import torch

    model, pipe = _wide_model()
    big = np.random.default_rng(1).normal(size=(40_000, 64))  # 20 MiB of float64
    expected = pipe.predict_proba(big)
    data: Any = {
        "ndarray": lambda: big,
        "dataframe": lambda: pd.DataFrame(big),
        "rows": big.tolist,
        "tensor": lambda: torch.from_numpy(big),
    }[kind]()
    model.predict_proba(big[:10], batch_size=4)  # warm: the session's first run allocates too
    tracemalloc.start()
    try:
        got = model.predict_proba(data, batch_size=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # One float32 copy of all rows is big.nbytes / 2 (10 MiB); a chunk is 256 KiB.
    assert peak < big.nbytes / 10, f"peak {peak / 2**20:.1f} MiB"


def test_batch_errors_say_which_rows(iris_model: tuple[Path, Any, Any]) -> None:
    model = runtime.load(iris_model[0])
    X = np.array(iris_model[2][:30], dtype=np.float64)
    X[25, 3] = np.nan
    with pytest.raises(
        InvalidInputError,
        match=r"feature 3 holds NaN or infinite values .* "
        r"\(in rows 20\.\.29; row numbers above count from 20\)",
    ):
        model.predict(X, batch_size=10)
    X[25, 3] = 1.0
    np.testing.assert_array_equal(model.predict(X.tolist(), batch_size=7), iris_model[1].predict(X))


def test_device_tensors_follow_the_same_value_rules() -> None:
    """CUDA tensors are checked on their device (only per-column flags travel to the host); the
    same code runs on CPU tensors here, which is what this checks without a GPU."""
    import torch

    from runtime.inputs import _device_feed
    from runtime.schema import InputSpec

    spec = InputSpec("X", "float32", 3, allow_nan=False, nan_columns=(0,), allow_inf=False)
    rows = torch.tensor([[float("nan"), 1.0, 2.0]], dtype=torch.float64)
    feed = _device_feed(rows, spec)["X"]
    assert feed.dtype == np.float32 and feed.shape == (1, 3)
    for column, value, message in [
        (1, float("nan"), r"feature 1 holds NaN or infinite values .* \(it imputes feature 0 only\)"),
        (2, -1e39, r"feature 2 holds value\(s\) beyond the float32 range, which the model would read"),
        (0, float("inf"), r"feature 0 holds infinite values \(inf\)"),
    ]:
        bad = rows.clone()
        bad[0, column] = value
        with pytest.raises(InvalidInputError, match=message):
            _device_feed(bad, spec)
