"""Every case of the table: export → runtime → the same answers as the fitted native objects."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import exporter
import runtime
from exporter.diagnose import diagnose
from exporter.registration import load_builtin
from exporter.steps import walk
from tests.cases import CASES, Case, mixed_frame
from tests.cases_breadth import BREADTH_CASES
from tests.conftest import fitted


def _rows(X: Any, n: int) -> Any:
    return X.iloc[:n] if hasattr(X, "iloc") else X[:n]


ALL_CASES = CASES + BREADTH_CASES


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_case_matches_native(case: Case) -> None:
    estimator, X, _ = fitted(case)
    result = exporter.export(estimator, sample=_rows(X, 60))
    assert result.report.passed, result.report.format()
    # Older runtimes gate on these: opset 18 at most, IR 10 at most (what the dynamo exporter writes).
    assert result.model.ir_version <= 10
    domains = [o.domain for o in result.model.opset_import]
    assert len(domains) == len(set(domains)), domains  # one import per domain
    assert {o.domain: o.version for o in result.model.opset_import}.get("", 18) <= 18

    # The optimizer keeps every pass on every case, and no pass moves the outputs beyond rounding.
    for done in result.passes:
        assert not done.reverted, done
        limit = max(atol for atol, _ in case.tolerances.values())
        assert done.max_abs_change is None or done.max_abs_change <= limit, done

    # Diagnosis cuts at every seam the optimizer left (a fold across a seam merges two stages into
    # one piece) and judges each piece alone: a matching export passes every piece.
    reports = diagnose(result.model, result.plan, result.plan.expected, result.metadata["stages"])
    assert reports and all(r.passed for r in reports), [r.to_dict() for r in reports]

    model = runtime.load(result.model.SerializeToString())
    native = estimator.best_estimator_ if hasattr(estimator, "best_estimator_") else estimator
    _assert_same_answers(case, model, native, X)
    if case.dataset == "mixed":  # unseen categories, NaN where an imputer waits for it
        unseen, _ = mixed_frame(n=50, seed=1)
        unseen["city"] = unseen["city"].replace({"paris": "berlin"})
        _assert_same_answers(case, model, native, unseen)


def _assert_same_answers(case: Case, model: runtime.Model, native: Any, X: Any) -> None:
    if model.task == "transformer":
        atol, rtol = case.tolerances.get("features", (1e-5, 1e-4))
        np.testing.assert_allclose(model.transform(X), native.transform(X), atol=atol, rtol=rtol)
        return
    predicted, expected = model.predict(X), native.predict(X)
    assert predicted.shape == expected.shape
    assert predicted.dtype == expected.dtype
    if model.task == "classifier" and not hasattr(native, "predict_proba"):  # e.g. hard voting
        assert np.mean(predicted == expected) >= case.label_agreement
    elif model.task == "classifier":
        proba, native_proba = model.predict_proba(X), native.predict_proba(X)
        atol, rtol = case.tolerances["probabilities"]
        np.testing.assert_allclose(proba, native_proba, atol=atol, rtol=rtol)
        # Labels agree everywhere except genuine ties (top-two probabilities closer than atol).
        top2 = np.sort(native_proba, axis=1)[:, -2:]
        decided = top2[:, 1] - top2[:, 0] >= atol
        assert np.mean(predicted[decided] == expected[decided]) >= case.label_agreement
    else:
        atol, rtol = case.tolerances["prediction"]
        np.testing.assert_allclose(predicted, expected, atol=atol, rtol=rtol)


def test_every_supported_type_has_a_case() -> None:
    """The registry's support list (README's matrix) and the case table cannot drift apart."""
    used: set[type] = set()
    for case in ALL_CASES:
        estimator = fitted(case)[0]
        estimator = getattr(estimator, "best_estimator_", estimator)
        used.update(type(e) for e in [estimator, *walk(estimator)])
    registry = load_builtin()
    missing = [cls.__name__ for cls, _ in registry.items() if not any(issubclass(u, cls) for u in used)]
    assert not missing, (
        f"supported types without a case in tests/cases.py or tests/cases_breadth.py: {missing}"
    )
