"""Extension hooks: a user's own sklearn-style step, and FunctionTransformer functions as ONNX."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import exporter
import runtime
from exporter import registration
from tests.models import Doubler


@pytest.fixture
def wine() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_wine(return_X_y=True)
    return X, y


@pytest.fixture
def doubler_registered() -> Iterator[None]:
    from skl2onnx.algebra.onnx_ops import OnnxMul

    exporter.register_sklearn_converter(
        Doubler, lambda X, opset, step: OnnxMul(X, np.array([2], dtype=np.float32), op_version=opset)
    )
    yield
    registration.unregister_sklearn_converter(Doubler)


def test_unregistered_custom_step_points_to_the_hook(wine: Any) -> None:
    X, y = wine
    pipe = make_pipeline(Doubler(), LogisticRegression(max_iter=500)).fit(X, y)
    with pytest.raises(
        exporter.UnsupportedStepError,
        match=r"step 0 'doubler' .*register_sklearn_converter\(Doubler, builder\)",
    ):
        exporter.export(pipe, sample=X)


def test_registered_custom_step_exports(wine: Any, doubler_registered: None) -> None:
    X, y = wine
    pipe = make_pipeline(StandardScaler(), Doubler(), LogisticRegression(max_iter=500)).fit(X, y)
    result = exporter.export(pipe, sample=X)
    assert result.report.passed, result.report.format()
    model = runtime.load(result.model.SerializeToString())
    np.testing.assert_allclose(model.predict_proba(X), pipe.predict_proba(X), atol=1e-5)


def test_function_transformer_without_expression_names_the_fix(wine: Any) -> None:
    X, y = wine
    pipe = make_pipeline(FunctionTransformer(np.cbrt), LogisticRegression(max_iter=500)).fit(X, y)
    with pytest.raises(
        exporter.UnsupportedStepError, match=r"FunctionTransformer\(func=np.cbrt\).*register_function"
    ):
        exporter.export(pipe, sample=X)


def test_registered_function_exports(wine: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxPow

    X, y = wine
    pipe = make_pipeline(
        FunctionTransformer(np.cbrt), StandardScaler(), LogisticRegression(max_iter=500)
    ).fit(X, y)
    exporter.register_function(
        np.cbrt, lambda X, v: OnnxPow(X, np.array([1 / 3], dtype=np.float32), op_version=v)
    )
    try:
        with pytest.raises(exporter.RegistrationError, match="already has an ONNX expression"):
            exporter.register_function(np.cbrt, lambda X, v: X)
        result = exporter.export(pipe, sample=X)
        assert result.report.passed, result.report.format()
    finally:
        registration.extend._FUNCTIONS.pop(np.cbrt, None)
