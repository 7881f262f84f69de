"""Every case of the table: export → runtime → the same answers as the fitted native objects."""

from __future__ import annotations

import numpy as np
import pytest

import exporter
import runtime
from tests.cases import CASES, Case
from tests.conftest import fitted


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_matches_native(case: Case) -> None:
    estimator, X, _ = fitted(case)
    sample = X.iloc[:40] if case.frame else X[:40]
    result = exporter.export(estimator, sample=sample)
    assert result.report.passed, result.report.format()
    # Older runtimes gate on these: opset 18 everywhere, IR 10 at most (what the dynamo exporter writes).
    assert result.model.ir_version <= 10
    assert {o.domain: o.version for o in result.model.opset_import}.get("", 18) == 18

    model = runtime.load(result.model.SerializeToString())
    native = estimator.best_estimator_ if hasattr(estimator, "best_estimator_") else estimator
    predicted, expected = model.predict(X), native.predict(X)
    assert predicted.shape == expected.shape
    assert predicted.dtype == expected.dtype
    if model.task == "classifier":
        proba, native_proba = model.predict_proba(X), native.predict_proba(X)
        atol, rtol = case.tolerances["probabilities"]
        np.testing.assert_allclose(proba, native_proba, atol=atol, rtol=rtol)
        # Labels agree everywhere except genuine ties (top-two probabilities closer than atol).
        top2 = np.sort(native_proba, axis=1)[:, -2:]
        decided = top2[:, 1] - top2[:, 0] >= atol
        np.testing.assert_array_equal(predicted[decided], expected[decided])
        np.testing.assert_array_equal(model.classes_, result.metadata["classes"])
    else:
        atol, rtol = case.tolerances["prediction"]
        np.testing.assert_allclose(predicted, expected, atol=atol, rtol=rtol)


def test_case_table_covers_required_shapes() -> None:
    ids = {c.id for c in CASES}
    assert {"gridsearch-over-wrapper", "bare-plain-wrapper", "string-labels", "multioutput-regressor"} <= ids
