"""Review of the trust change, exporter side: per-column NaN rules of pipelines that start with an
imputer or reach one through scalers. Each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import exporter
import runtime


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120), "c": rng.normal(size=120)})
    frame.loc[::7, "a"] = np.nan
    return frame, (frame["b"] > 0).to_numpy().astype(int)


def test_a_dataframe_pipeline_that_starts_with_an_imputer_exports() -> None:
    """Before: the NaN rule was numpy's bool, and writing the metadata failed with
    'TypeError: Object of type bool is not JSON serializable' (it exported before the change)."""
    frame, y = _frame()
    pipe = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression()).fit(frame, y)
    model = runtime.load(exporter.export(pipe, sample=frame).model.SerializeToString())
    assert all(spec.allow_nan is True for spec in model.schema.inputs)
    rows = frame.iloc[:8]
    assert rows["a"].isna().any()
    np.testing.assert_allclose(model.predict_proba(rows), pipe.predict_proba(rows), atol=1e-5)


def test_nan_reaching_an_imputer_through_a_scaler_is_accepted() -> None:
    """StandardScaler passes NaN on (natively and in its graph) to the imputer after it: sklearn
    answers such rows. Before: the rule looked at the first step only, and the export refused its
    own sample ('feature 0 holds NaN ... no imputer')."""
    frame, y = _frame()
    X = frame.to_numpy()
    pipe = make_pipeline(StandardScaler(), SimpleImputer(), LogisticRegression()).fit(X, y)
    model = runtime.load(exporter.export(pipe, sample=X).model.SerializeToString())
    rows = X[:8]
    assert np.isnan(rows).any()
    np.testing.assert_allclose(model.predict_proba(rows), pipe.predict_proba(rows), atol=1e-5)
    one = rows[:1].astype(np.float32).copy()
    one[0, 0] = np.inf  # inf is still refused, as sklearn refuses it
    try:
        model.predict(one)
    except runtime.InvalidInputError as exc:
        assert "infinite" in str(exc)
    else:
        raise AssertionError("inf was answered")
