"""Planning: stages, the native probe, and native failures reported as the user's problem."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import exporter
from exporter.errors import NotFittedError, SampleError
from exporter.plan import make_nodes
from tests.models import TorchClassifier


class FailingClassifier(TorchClassifier):
    def predict(self, X: Any) -> np.ndarray:
        raise ValueError("boom: this wrapper refuses the rows")


def test_stages_group_consecutive_sklearn_steps(iris_pipeline: Any) -> None:
    _, X, y = iris_pipeline
    inner = make_pipeline(StandardScaler(), PCA(2))
    pipe = Pipeline([("prep", inner), ("skip", "passthrough"), ("clf", TorchClassifier(epochs=2))])
    with pytest.raises(NotFittedError, match=r"step 2 'clf' \(tests.models.TorchClassifier\) is not fitted"):
        make_nodes(pipe)
    stages = make_nodes(pipe.fit(X, y))
    assert [(s.kind, [n for n, _ in s.steps]) for s in stages] == [
        ("sklearn", ["prep__standardscaler", "prep__pca"]),
        ("torch", ["clf"]),
    ]
    assert stages[-1].is_last and not stages[0].is_last


def test_native_failure_on_the_sample_is_a_sample_error(iris_pipeline: Any) -> None:
    _, X, y = iris_pipeline
    wrapper = FailingClassifier(epochs=2).fit(X, y)
    with pytest.raises(SampleError, match=r"failed natively on the sample rows .*boom"):
        exporter.export(wrapper, sample=X[:10])


def test_nan_allowed_only_where_the_first_step_handles_it() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression

    from exporter.schema import infer_schema

    X = np.random.default_rng(0).normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    imputing = make_pipeline(SimpleImputer(), LogisticRegression()).fit(X, y)
    assert infer_schema(imputing).inputs[0].allow_nan
    # Column 1 is only scaled: a NaN there would flow into ArgMax and pick a class silently.
    partial = ColumnTransformer([("imp", SimpleImputer(), [0]), ("sc", StandardScaler(), [1])])
    assert not infer_schema(make_pipeline(partial, LogisticRegression()).fit(X, y)).inputs[0].allow_nan


def test_float64_inputs_with_a_torch_first_stage(iris_pipeline: Any) -> None:
    from tests.models import TorchClassifier

    _, X, y = iris_pipeline
    wrapper = TorchClassifier(epochs=5).fit(X, y)
    result = exporter.export(wrapper, sample=X, dtype="float64")
    assert result.report.passed, result.report.format()
    assert result.metadata["inputs"][0]["dtype"] == "float64"


def test_single_logit_gets_sigmoid_whatever_else_is_declared() -> None:
    from exporter.convert.heads import Head, resolve_head
    from tests.models import SingleLogitClassifier

    step = SingleLogitClassifier()
    step.classes_ = np.array(["a", "b"])
    resolved = resolve_head(Head(threshold=0.5), step, np.zeros((3, 1)), None, "classifier")
    assert resolved.proba == "sigmoid"


def test_parity_failure_names_the_first_diverging_stage() -> None:
    """PolynomialFeatures → Normalizer → PowerTransformer on tiny values: float32 rounding in the
    sklearn stage (found by the property test) — the diagnosis must point there, not at the net."""
    from sklearn.preprocessing import Normalizer, PolynomialFeatures, PowerTransformer

    from tests.models import TorchRegressor

    rng = np.random.default_rng(1)
    X = (rng.normal(size=(160, 2)) * 0.01).astype(np.float32)
    y = (X @ rng.normal(size=2)).astype(np.float32)
    steps = [PolynomialFeatures(2), Normalizer(), PowerTransformer(), TorchRegressor(hidden=4, epochs=5)]
    pipe = make_pipeline(*steps).fit(X[:80], y[:80])
    with pytest.raises(exporter.ParityError) as info:
        exporter.export(pipe, sample=X[:80])
    message = str(info.value)
    assert "first diverging stage: sklearn stage [polynomialfeatures, normalizer, powertransformer]" in (
        message
    )
    stages = info.value.report.to_dict()["stages"]
    # the torch module and its head match on their own inputs
    assert [s["passed"] for s in stages] == [False, True, True]
    assert stages[2]["stage"] == "head of 'torchregressor'"


def test_an_untraceable_module_is_refused_with_torch_exports_real_reason(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """torch.onnx wraps the cause in 'Failed to export ... This is step 1/3 ... Next steps:' (with
    terminal colour codes); the error gives the innermost reason instead, in one line — and torch's
    own warnings and graph dumps (tens of lines) stay off stderr."""
    import torch

    from exporter.convert.torch import export_module
    from exporter.errors import ConversionError

    class Branching(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x) if x.sum() > 0 else -self.linear(x)

    with pytest.raises(ConversionError) as info:
        export_module(Branching(), np.ones((4, 4), np.float32), "step 0 'net'")
    message = str(info.value)
    assert "\n" not in message and "\x1b[" not in message and "step 1/3" not in message
    assert "data-dependent" in message and "must be traceable by torch.export" in message
    assert capfd.readouterr().err == ""


def test_float64_with_an_imputer_is_refused_up_front() -> None:
    """onnxruntime has no double Imputer: the model would fail to load ("Could not find an
    implementation for Imputer(1)"); say so before converting anything."""
    from sklearn.datasets import load_diabetes
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    pipe = make_pipeline(SimpleImputer(), StandardScaler(), Ridge()).fit(X, y)
    with pytest.raises(SampleError, match="dtype='float64' with SimpleImputer: onnxruntime has no float64"):
        exporter.export(pipe, sample=X[:20], dtype="float64")
    assert exporter.export(pipe, sample=X[:20]).report.passed  # the default float32 exports
    # Nested inside a container (here a TransformedTargetRegressor's regressor): refused the same.
    from sklearn.compose import TransformedTargetRegressor

    nested = TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler()).fit(X, y)
    with pytest.raises(SampleError, match="dtype='float64' with SimpleImputer"):
        exporter.export(nested, sample=X[:20], dtype="float64")


def test_missing_indicator_takes_nan_only_where_it_was_fitted_to() -> None:
    """MissingIndicator(error_on_new=True) raises on NaN in a column that had none at fit: the
    runtime takes NaN in the flagged columns and refuses it elsewhere, as sklearn does."""
    from sklearn.impute import MissingIndicator, SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion

    import runtime
    from runtime.errors import InvalidInputError

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    X[::7, 0] = np.nan  # only column 0 has missing values at fit
    y = (rng.normal(size=80) > 0).astype(int)
    pipe = make_pipeline(
        FeatureUnion([("imp", SimpleImputer()), ("ind", MissingIndicator())]), LogisticRegression()
    )
    pipe.fit(X, y)
    model = runtime.load(exporter.export(pipe, sample=X[:40]).model.SerializeToString())
    row = np.array([[np.nan, 0.5, 0.5]])
    np.testing.assert_allclose(model.predict_proba(row), pipe.predict_proba(row), atol=1e-5)
    bad = np.array([[0.5, np.nan, 0.5]])
    with pytest.raises(ValueError, match="have missing values in transform"):
        pipe.predict(bad)
    with pytest.raises(InvalidInputError, match="NaN"):
        model.predict(bad)


def test_a_stateless_step_with_a_registered_converter_exports() -> None:
    """No fitted attribute to tell it is fitted: the user who registered a converter vouches."""
    from skl2onnx.algebra.onnx_ops import OnnxMul
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.linear_model import LogisticRegression

    from exporter import registration

    class Halver(TransformerMixin, BaseEstimator):
        def fit(self, X: Any, y: Any = None) -> Any:
            return self

        def transform(self, X: Any) -> Any:
            return np.asarray(X) / 2

    X = np.random.default_rng(0).normal(size=(40, 3))
    pipe = make_pipeline(Halver(), LogisticRegression()).fit(X, X[:, 0] > 0)
    with pytest.raises(
        exporter.UnsupportedStepError, match=r"'halver' .*is not supported"
    ):  # not "not fitted"
        exporter.export(pipe, sample=X)
    exporter.register_sklearn_converter(
        Halver, lambda X, opset, step: OnnxMul(X, np.array([0.5], dtype=np.float32), op_version=opset)
    )
    try:
        assert exporter.export(pipe, sample=X).report.passed
    finally:
        registration.unregister_sklearn_converter(Halver)
