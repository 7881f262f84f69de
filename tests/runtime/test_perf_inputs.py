"""The DataFrame fast path (inputs._fast_column_feeds) against the full path: for every kind of
column it reads — NumPy blocks, pandas 3 ``str``, StringDtype on python and pyarrow storage,
categories, nullable and Arrow-backed numbers, polars, Arrow tables and record batches, dicts of
arrays or Series — it either builds exactly the feeds the full path builds, or steps aside
(returns None) so that the full path answers or refuses with its own message. No timings here:
speed is measured in benchmarks/."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import runtime
from runtime import InvalidInputError
from runtime.inputs import (
    InputSpec,
    KnownValues,
    Schema,
    _fast_column_feeds,
    _full_feeds,
    prepare_feeds,
)

pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")

_SPECS = (
    InputSpec("age", "float32", 1, allow_nan=True, allow_inf=False),  # imputed: NaN, never inf
    InputSpec("score", "float32", 1),  # scaled only: neither
    InputSpec("visits", "float32", 1, categories=(KnownValues(0, (0, 1, 2, 3), "OneHotEncoder raises"),)),
    InputSpec("city", "string", 1, categories=(KnownValues(0, ("paris", "lyon"), "OrdinalEncoder raises"),)),
    InputSpec("plan", "string", 1),
    InputSpec("note", "string", 1, normalize="lower"),
    InputSpec("junk", "float32", 1, allow_nan=True, allow_inf=True),  # dropped: anything
    InputSpec("count", "int64", 1),
)
SCHEMA = Schema("columns", _SPECS, tuple(s.name for s in _SPECS))


def _base(n: int = 3) -> pd.DataFrame:
    rows = {
        "age": [30, 40, 50],
        "score": [0.5, 1.5, -2.0],
        "visits": [0, 3, 1],
        "city": ["paris", "lyon", "paris"],
        "plan": pd.Categorical(["a", "b", "a"]),
        "note": ["Good ΟΔΟΣ", "bad", "İi ẞ"],  # str.lower(), not per code point
        "junk": [1.0, np.nan, np.inf],
        "count": [1, 2, 3],
        "extra": [7, 8, 9],  # not an input: ignored
    }
    return pd.DataFrame(rows).iloc[:n]


def _same(fast: dict[str, np.ndarray], full: dict[str, np.ndarray]) -> None:
    assert list(fast) == list(full)
    for name in full:
        a, b = fast[name], full[name]
        assert (a.dtype, a.shape) == (b.dtype, b.shape), name
        assert a.flags.c_contiguous, name
        if b.dtype == object:
            assert a.tolist() == b.tolist() and {type(v) for v in a.ravel()} == {str}, name
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)


def _judge(X: Any) -> tuple[Any, Any]:
    """(fast feeds or None, full feeds or the full path's message)."""
    fast = _fast_column_feeds(X, SCHEMA)
    try:
        full: Any = _full_feeds(X, SCHEMA, False)
    except InvalidInputError as exc:
        full = str(exc)
    if fast is not None:  # the fast path never accepts what the full path refuses
        assert not isinstance(full, str), full
        _same(fast[0], full[0])
        assert fast[1] == full[1]
    return fast, full


ACCEPTED = {
    "pandas defaults (str, category)": lambda: _base(),
    "object strings (pandas 2's default)": lambda: _base().astype({"city": object, "note": object}),
    "StringDtype python": lambda: _base().astype({"city": "string[python]", "note": "string[python]"}),
    "StringDtype pyarrow": lambda: _base().astype({"city": "string[pyarrow]", "note": "string[pyarrow]"}),
    "str categories": lambda: _base().astype({"city": "category", "note": "category"}),
    "nullable numbers": lambda: _base().astype({"age": "Int64", "score": "Float64", "count": "Int64"}),
    "pd.NA where imputed": lambda: _base().assign(age=pd.array([1, None, 2], dtype="Int64")),
    "Arrow-backed numbers": lambda: _base().astype({"age": "int64[pyarrow]", "score": "double[pyarrow]"}),
    "float32 and bool": lambda: _base().astype({"score": "float32"}).assign(age=[True, False, True]),
    "NaN where imputed": lambda: _base().assign(age=[np.nan, 1.0, 2.0]),
    "floats into int64": lambda: _base().assign(count=[1.5, 2.0, 3.0]),
    "one row": lambda: _base(1),
    "rows and columns reversed": lambda: _base().iloc[::-1, ::-1],
    "a 2-D NumPy block in F order": lambda: pd.concat(
        [
            pd.DataFrame(np.asfortranarray([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), columns=["age", "score"]),
            _base().drop(columns=["age", "score"]),
        ],
        axis=1,
    ),
    "polars": lambda: pl.from_pandas(_base()),
    "polars null where imputed": lambda: pl.from_pandas(_base().assign(age=[None, 1.0, 2.0])),
    "Arrow table": lambda: pa.Table.from_pandas(_base(), preserve_index=False),
    "Arrow record batch": lambda: pa.Table.from_pandas(_base(), preserve_index=False).to_batches()[0],
    "Arrow dictionary (categories)": lambda: pa.Table.from_pandas(
        _base().astype({"city": "category"}), preserve_index=False
    ),
    "dict of arrays": lambda: {c: _base()[c].to_numpy() for c in _base().columns},
    "dict of Series": lambda: {c: _base()[c] for c in _base().columns},
}


@pytest.mark.parametrize("make", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_fast_path_builds_the_full_paths_feeds(make: Any) -> None:
    fast, full = _judge(make())
    assert fast is not None, "this input should take the fast path"
    assert not isinstance(full, str)
    _same(prepare_feeds(make(), SCHEMA)[0], full[0])


STEPS_ASIDE = {
    "NaN not imputed": (lambda: _base().assign(score=[np.nan, 1.0, 2.0]), "column 'score' holds NaN"),
    "inf": (lambda: _base().assign(score=[np.inf, 1.0, 2.0]), "column 'score' holds NaN or infinite"),
    "inf where imputed": (lambda: _base().assign(age=[np.inf, 1.0, 2.0]), "column 'age' holds infinite"),
    "float32 overflow": (lambda: _base().assign(age=[1e39, 1.0, 2.0]), "beyond the float32 range"),
    "overflow where inf is taken": (lambda: _base().assign(junk=[1e39, 1.0, 2.0]), None),
    "unseen number": (lambda: _base().assign(visits=[7, 1, 2]), r"holds value\(s\) \[7.0\]"),
    "fraction": (lambda: _base().assign(visits=[2.5, 1, 2]), r"holds value\(s\) \[2.5\]"),
    "unseen text": (lambda: _base().assign(city=["oslo", "lyon", "paris"]), "never saw at fit"),
    "missing text": (lambda: _base().assign(city=["paris", None, "lyon"]), "missing or non-text"),
    "missing category": (lambda: _base().assign(plan=pd.Categorical(["a", None, "a"])), "missing or non"),
    "pd.NA not imputed": (
        lambda: _base().assign(score=pd.array([1.0, None, 2.0], dtype="Float64")),
        "column 'score' holds NaN",
    ),
    "numbers as text": (lambda: _base().assign(age=["1", "2", "3"]), r"non-numeric values \(text\)"),
    "periods": (lambda: _base().assign(age=pd.period_range("2020", periods=3)), "non-numeric"),
    "dates": (lambda: _base().assign(age=pd.date_range("2020", periods=3)), "non-numeric"),
    "object numbers": (lambda: _base().assign(age=np.array([1, 2, 10**400], dtype=object)), "too large"),
    "missing column": (lambda: _base().drop(columns="age"), r"missing column\(s\) \['age'\]"),
    "duplicate labels": (lambda: pd.concat([_base(), _base()[["age"]]], axis=1), "must be 1-D"),
    "empty": (lambda: _base(0), None),
    "Arrow null text": (
        lambda: pa.Table.from_pandas(_base().assign(city=["paris", None, "lyon"]), preserve_index=False),
        "missing or non-text",
    ),
    "Arrow dictionary with a null": (
        lambda: pa.Table.from_pandas(
            _base().assign(city=pd.Categorical(["paris", None, "lyon"])), preserve_index=False
        ),
        "missing or non-text",
    ),
    "polars null text": (lambda: pl.from_pandas(_base().assign(city=["paris", None, "x"])), "missing or"),
    "dict of lists": (lambda: {c: _base()[c].tolist() for c in _base().columns}, None),
    "dict of unequal columns": (
        lambda: {**{c: _base()[c].to_numpy() for c in _base()}, "age": [1.0]},
        "different lengths",
    ),
}


@pytest.mark.parametrize("make, message", STEPS_ASIDE.values(), ids=STEPS_ASIDE.keys())
def test_fast_path_steps_aside_for_the_full_paths_answer(make: Any, message: str | None) -> None:
    fast, full = _judge(make())
    if message is None:  # accepted by the full path (or empty): the fast path may take it or not
        assert not isinstance(full, str) or fast is None
        return
    assert fast is None and isinstance(full, str)
    with pytest.raises(InvalidInputError, match=message):
        prepare_feeds(make(), SCHEMA)


def test_random_frames_agree_with_the_full_path() -> None:
    """Random values, specials included, in random column dtypes: same feeds or same refusal."""
    rng = np.random.default_rng(0)
    specials = [np.nan, np.inf, -np.inf, 1e39, -0.0, 7.0, 2.5]
    kinds = ["float64", "Float64", "double[pyarrow]", "float32"]
    texts = ["paris", "lyon", "oslo", "PARIS", "ΣΟΦΙΑ", ""]
    for _ in range(60):
        frame = _base()
        for name in ("age", "score", "visits", "junk"):
            values = rng.choice([0.0, 1.0, 3.0, *specials], 3)
            frame[name] = pd.array(values, dtype=rng.choice(kinds))
        frame["city"] = pd.Series(rng.choice(texts, 3), dtype=rng.choice(["object", "str", "category"]))
        _, full = _judge(frame)
        try:
            got = prepare_feeds(frame, SCHEMA)[0]
        except InvalidInputError as exc:
            assert isinstance(full, str) and str(exc) == full
        else:
            assert not isinstance(full, str)
            _same(got, full[0])


def test_arrow_tables_and_polars_answer_like_pandas(frame_model: Any) -> None:
    """A model trained on a DataFrame takes the same rows as pandas, polars or Arrow (Arrow tables
    used to be refused: their column list holds arrays, not names)."""
    path, _, frame = frame_model
    model = runtime.load(path)
    rows = frame.iloc[:5]
    expected = model.predict(rows)
    for X in (pl.from_pandas(rows), pa.Table.from_pandas(rows), {c: rows[c].to_numpy() for c in rows}):
        np.testing.assert_allclose(model.predict(X), expected, rtol=1e-6)
    table = pa.Table.from_pandas(rows, preserve_index=False)
    np.testing.assert_allclose(model.predict(table, batch_size=2), expected, rtol=1e-6)
    bad = pa.Table.from_pandas(rows.assign(bmi=[np.nan, 1, 2, 3, 4]), preserve_index=False)
    with pytest.raises(InvalidInputError, match="column 'bmi' holds NaN"):
        model.predict(bad)
    assert "prediction" in model._fast  # the DataFrame hot path was built and kept
