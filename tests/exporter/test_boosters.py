"""LightGBM / XGBoost / CatBoost steps (exporter/convert/boosters.py): parity on held-out rows, the
native libraries' NaN and categorical handling, and the settings refused by name.

The case table (tests/cases.py) has a row per booster class; here the models are fitted on 60% of
a dataset and compared on the other 40%, with the native model, not the graph, as the reference.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from catboost import CatBoostClassifier, CatBoostRegressor
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn import datasets
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier, XGBRegressor

import exporter
import runtime
from exporter.convert import boosters
from exporter.errors import ExportError, UnsupportedStepError
from exporter.registration import load_builtin
from exporter.registry import SKLEARN
from tests.models import TorchEncoder

PROBA = (1e-5, 1e-4)  # measured: 1e-7 on probabilities (float32 leaves summed)


def _lgbm(**params: Any) -> LGBMClassifier:
    return LGBMClassifier(n_estimators=30, verbose=-1, random_state=0, **params)


def _xgb(**params: Any) -> XGBClassifier:
    return XGBClassifier(n_estimators=30, random_state=0, n_jobs=1, **params)


def _catboost(**params: Any) -> CatBoostClassifier:
    # allow_writing_files=False: CatBoost writes a catboost_info/ folder into the working directory
    return CatBoostClassifier(
        iterations=30, verbose=0, random_seed=0, thread_count=1, allow_writing_files=False, **params
    )


def _split(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X_fit, X_held, y_fit, y_held = train_test_split(
        X.astype(np.float32), y, test_size=0.4, random_state=0, stratify=y
    )
    return X_fit, X_held, y_fit, y_held


def _assert_same(model: runtime.Model, native: Any, X: Any) -> None:
    proba, expected = model.predict_proba(X), native.predict_proba(X)
    np.testing.assert_allclose(proba, expected, atol=PROBA[0], rtol=PROBA[1])
    top2 = np.sort(expected, axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] >= PROBA[0]  # genuine ties may break either way
    labels, native_labels = model.predict(X), np.asarray(native.predict(X))
    assert labels.shape == native_labels.shape and labels.dtype == native_labels.dtype
    assert np.array_equal(labels[decided], native_labels[decided])


HELD_OUT: list[tuple[str, str, Callable[[], Any]]] = [
    ("lightgbm-bare-multiclass", "wine", lambda: _lgbm()),
    ("xgboost-bare-multiclass", "wine", lambda: _xgb()),
    ("catboost-bare-binary", "breast_cancer", lambda: _catboost()),
    (
        "lightgbm-after-torch",
        "breast_cancer",
        lambda: make_pipeline(StandardScaler(), TorchEncoder(), _lgbm()),
    ),
    (  # after a torch encoder and inside a soft VotingClassifier: each of the three at once
        "soft-voting-of-all-three-after-torch",
        "breast_cancer",
        lambda: make_pipeline(
            StandardScaler(),
            TorchEncoder(),
            VotingClassifier([("lgbm", _lgbm()), ("xgb", _xgb()), ("cat", _catboost())], voting="soft"),
        ),
    ),
    (
        "stacking-of-two",
        "iris",
        lambda: StackingClassifier(
            [("lgbm", _lgbm()), ("xgb", _xgb())], final_estimator=LogisticRegression(max_iter=500), cv=3
        ),
    ),
]


@pytest.mark.parametrize(("data", "build"), [(d, b) for _, d, b in HELD_OUT], ids=[i for i, _, _ in HELD_OUT])
def test_parity_on_held_out_rows(data: str, build: Callable[[], Any]) -> None:
    X_fit, X_held, y_fit, _ = _split(data)
    native = build().fit(X_fit, y_fit)
    result = exporter.export(native, sample=X_held[:60])
    assert result.report.passed, result.report.format()
    _assert_same(runtime.load(result.model.SerializeToString()), native, X_held)


def test_string_labels_and_float64_inputs() -> None:
    X_fit, X_held, y_fit, _ = _split("iris")
    native = _lgbm().fit(X_fit, np.array(["setosa", "versicolor", "virginica"])[y_fit])
    model = runtime.load(
        exporter.export(native, sample=X_held[:30], dtype="float64").model.SerializeToString()
    )
    assert model.schema.inputs[0].dtype == "float64"
    _assert_same(model, native, X_held)


@pytest.mark.parametrize(
    "build",
    [
        lambda: LGBMRegressor(n_estimators=30, verbose=-1, objective="poisson"),
        lambda: XGBRegressor(n_estimators=30, n_jobs=1),
        lambda: CatBoostRegressor(iterations=30, verbose=0, thread_count=1, allow_writing_files=False),
    ],
    ids=["lightgbm-poisson", "xgboost", "catboost"],
)
def test_regressors_on_held_out_rows(build: Callable[[], Any]) -> None:
    X, y = datasets.load_diabetes(return_X_y=True)
    X_fit, X_held, y_fit, _ = train_test_split(X.astype(np.float32), y, test_size=0.4, random_state=0)
    native = build().fit(X_fit, y_fit)
    model = runtime.load(exporter.export(native, sample=X_held[:60]).model.SerializeToString())
    predicted, expected = model.predict(X_held), native.predict(X_held)
    assert predicted.shape == expected.shape and predicted.dtype == expected.dtype
    np.testing.assert_allclose(predicted, expected, atol=1e-3, rtol=1e-5)  # targets up to 346


# -- missing values --------------------------------------------------------------------------------


def _with_missing(X: np.ndarray, rate: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = X.copy()
    out[rng.random(X.shape) < rate] = np.nan
    return out


@pytest.mark.parametrize(
    "build",
    [lambda: _lgbm(), lambda: _xgb(), lambda: _catboost(), lambda: _catboost(nan_mode="Max")],
    ids=["lightgbm", "xgboost", "catboost-min", "catboost-max"],
)
def test_missing_values_take_the_native_branches(build: Callable[[], Any]) -> None:
    """Fitted with NaN in some columns, asked with NaN (and ±inf) in every column, including
    those that had none at fit time (LightGBM then reads NaN as 0)."""
    X_fit, X_held, y_fit, _ = _split("breast_cancer")
    fit_rows = X_fit.copy()
    fit_rows[:, :3] = _with_missing(X_fit[:, :3], 0.2, 0)
    native = build().fit(fit_rows, y_fit)
    held = _with_missing(X_held, 0.15, 1)
    held[np.random.default_rng(2).random(held.shape) < 0.03] = np.inf
    held[np.random.default_rng(3).random(held.shape) < 0.03] = -np.inf

    result = exporter.export(native, sample=fit_rows[:60])
    session = ort.InferenceSession(result.model.SerializeToString(), providers=["CPUExecutionProvider"])
    (graph,) = session.run(["probabilities"], {"X": held})  # the graph itself, no input checks
    np.testing.assert_allclose(graph, native.predict_proba(held), atol=PROBA[0], rtol=PROBA[1])
    # and the runtime takes NaN and ±inf where the native model does
    _assert_same(runtime.load(result.model.SerializeToString()), native, held)


# -- categorical splits ----------------------------------------------------------------------------


def _coded_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [rng.integers(0, 12, n), rng.normal(size=n), rng.integers(0, 5, n), rng.normal(size=n)]
    ).astype(np.float32)
    y = ((np.isin(X[:, 0], [1, 3, 5, 7, 9]) ^ (X[:, 1] > 0)) | (X[:, 2] == 2)).astype(int)
    return X, y


@pytest.mark.parametrize(
    ("build", "fit_params"),
    [
        (lambda: _lgbm(min_data_per_group=5, cat_smooth=1.0), {"categorical_feature": [0, 2]}),
        (
            lambda: _xgb(enable_categorical=True, feature_types=["c", "q", "c", "q"], max_cat_to_onehot=1),
            {},
        ),
    ],
    ids=["lightgbm", "xgboost"],
)
def test_categorical_codes_are_read_as_natively(build: Callable[[], Any], fit_params: dict[str, Any]) -> None:
    """The libraries cast a code to int (2.7 is category 2; a negative one is category 0 for
    LightGBM, missing for XGBoost); the converters alone compare floats (2.7 is no category)."""
    X, y = _coded_rows(600, 0)
    native = build().fit(X, y, **fit_params)
    model = runtime.load(exporter.export(native, sample=X[:60]).model.SerializeToString())
    rng = np.random.default_rng(1)
    odd = X.copy()
    odd[:, 0] += rng.choice([0.0, 0.3, 0.7, 0.999, -0.5], len(X)).astype(np.float32)
    odd[:, 2] = rng.choice([-3.0, -0.5, 0.0, 2.0, 2.7, 4.2, 17.0, 1e9], len(X)).astype(np.float32)
    _assert_same(model, native, odd)


# -- refusals ----------------------------------------------------------------------------------------


def _frame_with_categories() -> tuple[Any, np.ndarray]:
    import pandas as pd

    X, y = _coded_rows(200, 0)
    frame = pd.DataFrame({"a": pd.Categorical(X[:, 0].astype(int).astype(str)), "b": X[:, 1]})
    return frame, y


def _fitted(build: Callable[[], Any], frame: bool = False, **fit_params: Any) -> tuple[Any, Any]:
    """(fitted model, sample rows): the DataFrame it was fitted on, or None (rows synthesised)."""
    X, y = _frame_with_categories() if frame else _coded_rows(200, 0)
    return build().fit(X, y, **fit_params), X if frame else None


REFUSED: list[tuple[str, Callable[[], tuple[Any, Any]], str]] = [
    ("lightgbm-zero-as-missing", lambda: _fitted(lambda: _lgbm(zero_as_missing=True)), "zero_as_missing"),
    ("lightgbm-linear-tree", lambda: _fitted(lambda: _lgbm(linear_tree=True)), "linear_tree"),
    (
        "lightgbm-random-forest",
        lambda: _fitted(lambda: _lgbm(boosting_type="rf", bagging_freq=1, bagging_fraction=0.7)),
        "boosting_type='rf'",
    ),
    ("lightgbm-pandas-category", lambda: _fitted(_lgbm, frame=True), "pandas 'category' columns"),
    ("xgboost-missing-zero", lambda: _fitted(lambda: _xgb(missing=0.0)), "missing=0.0"),
    ("xgboost-gblinear", lambda: _fitted(lambda: _xgb(booster="gblinear")), "booster='gblinear'"),
    ("xgboost-dart", lambda: _fitted(lambda: _xgb(booster="dart")), "booster='dart'"),
    (
        "xgboost-pandas-category",
        lambda: _fitted(lambda: _xgb(enable_categorical=True), frame=True),
        "pandas 'category' columns",
    ),
    (
        "catboost-categorical-features",
        lambda: _fitted(_catboost, frame=True, cat_features=["a"]),
        "categorical features [0]",
    ),
]


@pytest.mark.parametrize(("build", "says"), [(b, s) for _, b, s in REFUSED], ids=[i for i, _, _ in REFUSED])
def test_inexact_settings_are_refused_by_name(build: Callable[[], tuple[Any, Any]], says: str) -> None:
    native, sample = build()
    with pytest.raises(UnsupportedStepError) as named:
        boosters.check_exact(native)
    assert says in str(named.value) and type(native).__name__ in str(named.value), named.value
    # export refuses it in one line; models fitted on DataFrames of category / string columns are
    # refused earlier, by the input schema (the column holds strings, the step takes numbers)
    with pytest.raises(ExportError) as caught:
        exporter.export(native, sample=sample)
    message = str(caught.value)
    assert "\n" not in message
    assert (says in message) if sample is None else ("'a'" in message or "object" in message), message


def test_missing_converter_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """LightGBM installed, onnxmltools not: one line naming hybridonnx[boosting]. (A subclass stands
    in for LGBMClassifier so skl2onnx's table for the real class is left alone.)"""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    from exporter.registry import registry

    stand_in = type("LGBMClassifier", (LGBMClassifier,), {"__module__": "lightgbm.sklearn_stand_in"})
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxmltools" else real_find_spec(name, *a),
    )
    booster = boosters.booster_of(stand_in())
    assert booster is not None
    load_builtin()
    boosters._install_converter(stand_in, booster)
    registry.register(stand_in, SKLEARN)
    try:
        native = stand_in(n_estimators=5, verbose=-1).fit(*_coded_rows(100, 0))
        with pytest.raises(UnsupportedStepError) as caught:
            exporter.export(native)
    finally:
        registry.unregister(stand_in)
        sklearn_operator_name_map.pop(stand_in, None)
    message = str(caught.value)
    assert 'pip install "hybridonnx[boosting]"' in message and "onnxmltools" in message, message
    assert "\n" not in message


def test_registered_by_load_builtin_only() -> None:
    """No import side effect: the classes are entries once load_builtin has run, each as a
    sklearn step that skl2onnx converts (and so nests in its containers)."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    registry = load_builtin()
    for cls in (
        LGBMClassifier,
        LGBMRegressor,
        XGBClassifier,
        XGBRegressor,
        CatBoostClassifier,
        CatBoostRegressor,
    ):
        assert registry.lookup(cls) is SKLEARN, cls
        assert cls in sklearn_operator_name_map, cls
    assert boosters.is_classifier(CatBoostRegressor()) is False  # it has a classes_ attribute too
    assert boosters.is_classifier(LogisticRegression()) is None


def test_catboost_multiclass_bare() -> None:
    """CatBoostClassifier.predict answers (N, 1) for more than two classes: the label is a column."""
    X_fit, X_held, y_fit, _ = _split("wine")
    native = _catboost().fit(X_fit, y_fit)
    model = runtime.load(exporter.export(native, sample=X_held[:60]).model.SerializeToString())
    _assert_same(model, native, X_held)
