"""The parity case table: one row per supported pipeline shape, with its tolerances as data.

Adding support for a new step = one converter + one row here. ``tolerances`` maps an output to
``(atol, rtol)``; the test compares the runtime against the fitted native objects on the whole
dataset (not only the rows used at export).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn import datasets
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, PolynomialFeatures, StandardScaler
from skorch import NeuralNetBinaryClassifier, NeuralNetClassifier, NeuralNetRegressor

from tests.models import (
    MLP,
    PlainTorchClassifier,
    SingleLogitClassifier,
    TorchClassifier,
    TorchRegressor,
)

# float32 graph vs native: measured errors are ~1e-7 (torch) to ~5e-6 (sklearn float64).
TIGHT = {"probabilities": (1e-5, 1e-4), "prediction": (1e-4, 1e-4)}


@dataclass(frozen=True)
class Case:
    id: str
    dataset: str  # a loader bundled with scikit-learn: iris, wine, digits, diabetes, linnerud, breast_cancer
    build: Callable[[int, int], Any]  # (n_features, n_outputs) → unfitted estimator
    tolerances: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(TIGHT))
    string_labels: bool = False
    frame: bool = False  # fit on a pandas DataFrame (one ONNX input per column)
    dtype: Any = np.float32
    target: Callable[[np.ndarray], np.ndarray] | None = None  # e.g. skorch wants int64 / float32 targets


def load(case: Case) -> tuple[Any, Any]:
    if case.frame:
        bunch = getattr(datasets, f"load_{case.dataset}")(as_frame=True)
        return bunch.data, bunch.target.to_numpy()
    X, y = getattr(datasets, f"load_{case.dataset}")(return_X_y=True)
    if case.string_labels:
        y = np.array(["alpha", "beta", "gamma", "delta"])[y]
    return X.astype(case.dtype), y


def _int64(y: np.ndarray) -> np.ndarray:
    return y.astype(np.int64)


def _float32(y: np.ndarray) -> np.ndarray:
    return y.astype(np.float32)


def _skorch(net_class: type, **params: Any) -> Callable[[int, int], Any]:
    """StandardScaler → a skorch net around MLP, trained briefly with Adam and no validation split."""

    def build(n_in: int, n_out: int) -> Any:
        settings = {"module__n_out": n_out, "max_epochs": 15, **params}
        net = net_class(
            MLP,
            module__n_in=n_in,
            lr=0.05,
            optimizer=torch.optim.Adam,
            train_split=None,
            verbose=0,
            **settings,
        )
        return make_pipeline(StandardScaler(), net)

    return build


CASES = [
    Case(
        "scaler-skorch-classifier",
        "iris",
        _skorch(NeuralNetClassifier, criterion=torch.nn.CrossEntropyLoss),
        target=_int64,
    ),
    # skorch's default criterion (NLLLoss) expects a module that outputs probabilities.
    Case(
        "scaler-skorch-nll-classifier",
        "iris",
        _skorch(NeuralNetClassifier, module__softmax=True),
        target=_int64,
    ),
    Case(
        "scaler-skorch-binary-threshold",
        "breast_cancer",
        _skorch(NeuralNetBinaryClassifier, module__n_out=1, threshold=0.4),
        target=_float32,
    ),
    Case(
        "scaler-skorch-regressor",
        "diabetes",
        _skorch(NeuralNetRegressor, max_epochs=30),
        {"prediction": (1e-4, 1e-4)},
        target=lambda y: y.astype(np.float32).reshape(-1, 1),
    ),
    Case(
        "scaler-poly-wrapper-classifier",
        "wine",
        lambda n, k: make_pipeline(StandardScaler(), PolynomialFeatures(2), TorchClassifier()),
    ),
    Case(
        "scaler-pca-wrapper-classifier",
        "digits",
        lambda n, k: make_pipeline(StandardScaler(), PCA(16, random_state=0), TorchClassifier()),
    ),
    Case(
        "minmax-wrapper-regressor", "diabetes", lambda n, k: make_pipeline(MinMaxScaler(), TorchRegressor())
    ),
    Case(
        "multioutput-regressor",
        "linnerud",
        lambda n, k: make_pipeline(StandardScaler(), TorchRegressor()),
        {"prediction": (1e-3, 1e-4)},
    ),
    Case(
        "string-labels",
        "iris",
        lambda n, k: make_pipeline(StandardScaler(), TorchClassifier()),
        string_labels=True,
    ),
    Case(
        "binary-softmax-wrapper",
        "breast_cancer",
        lambda n, k: make_pipeline(StandardScaler(), TorchClassifier()),
    ),
    Case(
        "binary-single-logit-wrapper",
        "breast_cancer",
        lambda n, k: make_pipeline(StandardScaler(), SingleLogitClassifier()),
        string_labels=True,
    ),
    Case(
        "gridsearch-over-wrapper",
        "iris",
        lambda n, k: GridSearchCV(
            make_pipeline(StandardScaler(), TorchClassifier(epochs=20)),
            {"torchclassifier__hidden": [8, 16]},
            cv=2,
        ),
    ),
    Case("bare-plain-wrapper", "iris", lambda n, k: PlainTorchClassifier()),
    Case(
        "dataframe-wrapper-classifier",
        "wine",
        lambda n, k: make_pipeline(StandardScaler(), TorchClassifier()),
        frame=True,
    ),
    Case(
        "pure-sklearn-logistic",
        "iris",
        lambda n, k: make_pipeline(StandardScaler(), LogisticRegression()),
        dtype=np.float64,
    ),
    Case(
        "pure-sklearn-ridge",
        "diabetes",
        lambda n, k: make_pipeline(StandardScaler(), Ridge()),
        {"prediction": (1e-3, 1e-5)},
        dtype=np.float64,
    ),
]


def fit_case(case: Case) -> tuple[Any, Any, Any]:
    """(fitted estimator, X, y) for a case; seeds are fixed so fits are reproducible."""
    torch.manual_seed(0)
    np.random.seed(0)
    X, y = load(case)
    if case.target is not None:
        y = case.target(y)
    n_out = y.shape[1] if np.ndim(y) == 2 else len(np.unique(y))
    estimator = case.build(X.shape[1], n_out).fit(X, y)
    return estimator, X, y
