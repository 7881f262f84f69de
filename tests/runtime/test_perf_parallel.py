"""Large batches: rows split across threads over one session (runtime/_parallel.py) answer exactly
what one call answers, whatever the measurement decides; the fused cast-and-check of large arrays
(runtime/_columns.cast_checked) gives the cast and the finiteness the two passes gave. No timings
are asserted: the machine is shared; speed is measured in benchmarks/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runtime
from runtime import _parallel
from runtime._columns import FUSED, cast_checked


def test_split_runs_answer_like_one_run() -> None:
    calls: list[int] = []

    def run(names: list[str], feeds: dict[str, Any]) -> list[Any]:
        x = feeds["x"]
        calls.append(len(x))
        return [x.sum(axis=1), np.asarray([str(v) for v in x[:, 0]], dtype=object)]

    x = np.arange(3 * 5001, dtype=np.float64).reshape(5001, 3)
    whole = run(["a", "b"], {"x": x})
    splitter = _parallel.RowSplitter(3)
    for _ in range(2 * _parallel.SAMPLES + 2):  # the measured calls (whole, split, ...) and after
        got = splitter.run(run, ["a", "b"], {"x": x})
        np.testing.assert_array_equal(got[0], whole[0])
        assert got[1].tolist() == whole[1].tolist()
    assert splitter.decided in (1, 3)
    assert {5001, 1667} <= set(calls)  # measured both ways: whole, and in three parts
    assert "measured" in splitter.describe()
    assert _parallel.RowSplitter(1).describe().startswith("off")


def test_model_split_batches_match(iris_model: tuple[Path, Any, Any]) -> None:
    path, pipe, X = iris_model
    big = np.resize(np.asarray(X, dtype=np.float32), (_parallel.MIN_ROWS + 7, X.shape[1]))
    model = runtime.load(path)
    expected = pipe.predict(big)
    proba = model.predict_proba(big[:100])
    for _ in range(2 * _parallel.SAMPLES + 1):  # through the measurement, whichever way it goes
        np.testing.assert_array_equal(model.predict(big), expected)
        np.testing.assert_array_equal(model.run(big.astype(np.float64))["label"], expected)
    np.testing.assert_allclose(model.predict_proba(big)[:100], proba, rtol=1e-6)
    assert "not decided" not in model.parallel_batches
    assert runtime.load(path, threads=1).parallel_batches.startswith("off")  # a cap is a cap


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_fused_cast_and_check(dtype: Any) -> None:
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(FUSED // 3 + 5, 7)) * 100).astype(dtype)
    out, finite = cast_checked(array, np.float32, True)
    np.testing.assert_array_equal(out, array.astype(np.float32))
    assert finite and out.flags.c_contiguous and out.dtype == np.float32
    if dtype != np.int64:
        for bad in (np.nan, np.inf, 1e39 if dtype == np.float64 else -np.inf):
            poisoned = array.copy()
            poisoned[-1, -1] = bad  # in the last chunk
            assert not cast_checked(poisoned, np.float32, True)[1]
    assert cast_checked(array[:, ::2], np.float32, True)[0].flags.c_contiguous  # strided: plain path
    assert cast_checked(array, np.float32, False)[1]
