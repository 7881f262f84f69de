"""Parity for users' own test suites.

from exporter.testing import assert_parity
def test_model_matches_pipeline():
    assert_parity(pipeline, "model.onnx", X_test, atol=1e-4)
"""

from __future__ import annotations

from typing import Any

from exporter.check import check
from exporter.parity import DEFAULT_TOLERANCES


def assert_parity(
    estimator: Any,
    model: Any,
    X: Any = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    **per_output: tuple[float, float],
) -> None:
    """Raise AssertionError (the parity report as its message) unless ``model`` reproduces
    ``estimator`` on ``X`` (None: the model's golden rows). ``atol``/``rtol`` apply to every
    numeric output; ``probabilities=(atol, rtol)`` and the like set one output."""
    tolerances = dict(per_output)
    if atol is not None or rtol is not None:
        for name, (a, r) in DEFAULT_TOLERANCES.items():
            tolerances.setdefault(name, (a if atol is None else atol, r if rtol is None else rtol))
    report = check(estimator, model, X, tolerances=tolerances or None)
    if not report.passed:
        raise AssertionError(report.format())
