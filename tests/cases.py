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
from catboost import CatBoostClassifier, CatBoostRegressor
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn import datasets
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.ensemble import (
    BaggingClassifier,
    BaggingRegressor,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.feature_selection import SelectKBest, VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    PowerTransformer,
    RobustScaler,
    StandardScaler,
)
from sklearn.svm import SVC
from skorch import NeuralNet, NeuralNetBinaryClassifier, NeuralNetClassifier, NeuralNetRegressor
from xgboost import XGBClassifier, XGBRegressor

from tests.models import (
    MLP,
    AutoEncoderTransformer,
    ColumnTargetClassifier,
    PlainTorchClassifier,
    ReshapingCNNClassifier,
    SingleLogitClassifier,
    SmallCNN,
    TokenRNN,
    TokenTransformer,
    TorchClassifier,
    TorchEncoder,
    TorchRegressor,
    TwoInputNet,
    token_data,
)

# float32 graph vs native: measured errors are ~1e-7 (torch) to ~5e-6 (sklearn float64).
TIGHT = {"probabilities": (1e-5, 1e-4), "prediction": (1e-4, 1e-4)}


@dataclass(frozen=True)
class Case:
    id: str
    # a loader bundled with scikit-learn (iris, wine, digits, diabetes, linnerud, breast_cancer),
    # or generated here: "mixed" (DataFrame of int/float/str/category columns with NaN), "text".
    dataset: str
    build: Callable[[int, int], Any]  # (n_features, n_outputs) → unfitted estimator
    tolerances: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(TIGHT))
    string_labels: bool = False
    frame: bool = False  # fit on a pandas DataFrame (one ONNX input per column)
    label_agreement: float = 1.0  # trees in float32 may flip labels near thresholds: measured rate
    dtype: Any = np.float32
    target: Callable[[np.ndarray], np.ndarray] | None = None  # e.g. skorch wants int64 / float32 targets


def mixed_frame(n: int = 400, seed: int = 0) -> tuple[Any, np.ndarray]:
    """A tabular DataFrame as users have them: int64, float64 with NaN, object strings, category."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50, 12, n),
            "score": rng.normal(size=n),
            "visits": rng.poisson(3, n).astype(np.int64),
            "city": rng.choice(["paris", "lyon", "nice", "lille"], n).astype(object),
            "plan": pd.Categorical(rng.choice(["basic", "plus", "pro"], n)),
            "junk": rng.normal(size=n),
            "member": rng.integers(0, 2, n),  # not named by any branch: the remainder passes it through
        }
    )
    frame.loc[rng.choice(n, n // 10, replace=False), "income"] = np.nan
    signal = (
        (frame["age"] > 45).to_numpy()
        ^ (frame["city"] == "paris").to_numpy()
        ^ (frame["score"] > 1).to_numpy()
    )
    return frame, np.where(signal, "yes", "no")


def documents(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Short reviews with accents, capitals, one-letter words and punctuation (tokenizer traps)."""
    rng = np.random.default_rng(seed)
    words = [
        "good",
        "bad",
        "movie",
        "great",
        "awful",
        "plot",
        "Actor",
        "fun",
        "boring",
        "the",
        "a",
        "café",
        "Éclair",
    ]
    docs = np.array(
        [" ".join(rng.choice(words, 8)) + rng.choice([".", "!", ", ok"]) for _ in range(n)], dtype=object
    )
    labels = np.array(["pos" if ("good" in d or "great" in d) else "neg" for d in docs])
    return docs, labels


def load(case: Case) -> tuple[Any, Any]:
    if case.dataset == "mixed":
        return mixed_frame()
    if case.dataset == "digits-images":  # (N, 1, 8, 8) images, as skorch's MNIST example feeds its CNN
        X, y = datasets.load_digits(return_X_y=True)
        return (X / 16).astype(np.float32).reshape(-1, 1, 8, 8), y
    if case.dataset == "tokens":  # int64 token ids (N, T) for an nn.Embedding
        return token_data()
    if case.dataset == "two-inputs":  # two named inputs, as a skorch SliceDict
        from skorch.helper import SliceDict

        rng = np.random.default_rng(0)
        num = rng.normal(size=(300, 4)).astype(np.float32)
        cat = rng.integers(0, 3, size=(300, 1)).astype(np.int64)
        return SliceDict(num=num, cat=cat), ((num[:, 0] + cat[:, 0]) > 1).astype(np.int64)
    if case.dataset == "text":
        return documents()
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


def skorch_net(net_class: type, n_in: int, n_out: int, epochs: int = 20) -> Any:
    """A skorch net around MLP, on its own (inside a container)."""
    return net_class(
        MLP,
        module__n_in=n_in,
        module__n_out=n_out,
        max_epochs=epochs,
        lr=0.05,
        optimizer=torch.optim.Adam,
        criterion=torch.nn.CrossEntropyLoss,
        train_split=None,
        verbose=0,
    )


def _net(module: Any, net_class: type = NeuralNetClassifier, **params: Any) -> Any:
    """A skorch net around ``module`` taking the case's own inputs (images, token ids, a SliceDict)."""
    settings = {"max_epochs": 10, **params}
    return net_class(module, lr=0.01, optimizer=torch.optim.Adam, train_split=None, verbose=0, **settings)


def _scaled(estimator: Any) -> Any:
    return make_pipeline(StandardScaler(), estimator)


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
    # -- Coverage: mixed-dtype DataFrames -------------------------------------------------------
    Case(
        "mixed-columntransformer-torch",
        "mixed",
        lambda n, k: make_pipeline(_mixed_columns(), TorchClassifier()),
    ),
    Case(
        "mixed-columntransformer-logistic",
        "mixed",
        lambda n, k: make_pipeline(_mixed_columns(), LogisticRegression()),
    ),
    # -- Coverage: unions, nested pipelines, selectors and the scaler zoo -----------------------
    Case(
        "featureunion-nested-selectors",
        "wine",
        lambda n, k: make_pipeline(
            StandardScaler(),
            FeatureUnion(
                [
                    ("pca", PCA(3, random_state=0)),
                    ("sel", make_pipeline(VarianceThreshold(0.5), SelectKBest(k=5))),
                ]
            ),
            TorchClassifier(),
        ),
    ),
    Case(
        "log1p-function-scaler-torch",
        "breast_cancer",
        lambda n, k: make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), TorchClassifier()),
    ),
    Case(
        "maxabs-power-torch",
        "breast_cancer",
        lambda n, k: make_pipeline(MaxAbsScaler(), PowerTransformer(), TorchClassifier()),
    ),
    Case(
        "robust-normalizer-logistic",
        "wine",
        lambda n, k: make_pipeline(RobustScaler(), Normalizer(), LogisticRegression(max_iter=500)),
        dtype=np.float64,
    ),
    Case(
        "binarizer-svd-logistic",
        "digits",
        lambda n, k: make_pipeline(
            Binarizer(threshold=7.5), TruncatedSVD(12, random_state=0), LogisticRegression(max_iter=500)
        ),
        dtype=np.float64,
    ),
    # -- Coverage: text --------------------------------------------------------------------------
    Case(
        "tfidf-svd-torch",
        "text",
        lambda n, k: make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2)), TruncatedSVD(8, random_state=0), TorchClassifier()
        ),
    ),
    Case(
        "count-logistic",
        "text",
        lambda n, k: make_pipeline(CountVectorizer(), LogisticRegression(max_iter=500)),
    ),
    # -- Coverage: torch anywhere ----------------------------------------------------------------
    Case(
        "encoder-middle-logistic",
        "wine",
        lambda n, k: make_pipeline(StandardScaler(), TorchEncoder(), LogisticRegression()),
    ),
    Case(
        "encoder-middle-forest",
        "wine",
        lambda n, k: make_pipeline(
            StandardScaler(), TorchEncoder(), RandomForestClassifier(30, random_state=0)
        ),
    ),
    Case(
        "encoder-then-torch",
        "wine",
        lambda n, k: make_pipeline(StandardScaler(), TorchEncoder(), TorchClassifier()),
    ),
    Case("encoder-transform-only", "wine", lambda n, k: make_pipeline(StandardScaler(), TorchEncoder())),
    Case(
        "skorch-neuralnet-base",
        "diabetes",
        _skorch(NeuralNet, criterion=torch.nn.MSELoss, module__n_out=1),
        {"prediction": (1e-4, 1e-4)},
        target=lambda y: y.astype(np.float32).reshape(-1, 1),
    ),
    # -- Coverage: pure sklearn ------------------------------------------------------------------
    Case(
        "pure-random-forest",
        "wine",
        lambda n, k: RandomForestClassifier(50, random_state=0),
        dtype=np.float64,
    ),
    Case(
        "pure-gradient-boosting",
        "wine",
        lambda n, k: GradientBoostingClassifier(random_state=0),
        dtype=np.float64,
    ),
    Case(
        "pure-hist-gradient-boosting",
        "wine",
        lambda n, k: HistGradientBoostingClassifier(max_iter=30, random_state=0),
        dtype=np.float64,
    ),
    Case(
        "pure-svc",
        "iris",
        lambda n, k: make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)),
        dtype=np.float64,
    ),
    Case(
        "pure-knn",
        "iris",
        lambda n, k: make_pipeline(StandardScaler(), KNeighborsClassifier()),
        dtype=np.float64,
    ),
    Case(
        "pure-linear-regression",
        "diabetes",
        lambda n, k: LinearRegression(),
        {"prediction": (1e-3, 1e-5)},
        dtype=np.float64,
    ),
    Case(
        "pure-forest-regressor",
        "diabetes",
        lambda n, k: RandomForestRegressor(30, random_state=0),
        {"prediction": (1e-3, 1e-5)},
        dtype=np.float64,
    ),
    # -- torch leaves nested in sklearn containers (exporter/convert/nested.py) ------------------
    Case(
        "voting-soft-skorch-forest",
        "iris",
        lambda n, k: VotingClassifier(
            [
                ("net", skorch_net(NeuralNetClassifier, n, k)),
                ("rf", RandomForestClassifier(15, random_state=0)),
            ],
            voting="soft",
        ),
        target=_int64,
    ),
    Case(
        "voting-hard-wrapper-logistic",
        "iris",
        lambda n, k: make_pipeline(
            StandardScaler(),
            VotingClassifier(
                [("net", TorchClassifier(epochs=30)), ("lr", LogisticRegression(max_iter=500))], voting="hard"
            ),
        ),
        string_labels=True,
    ),
    Case(
        "stacking-wrapper-forest",
        "wine",
        lambda n, k: StackingClassifier(
            [
                ("net", _scaled(TorchClassifier(epochs=40))),
                ("rf", RandomForestClassifier(15, random_state=0)),
            ],
            final_estimator=LogisticRegression(max_iter=500),
            cv=3,
        ),
    ),
    Case(
        "stacking-passthrough-skorch",
        "iris",
        lambda n, k: StackingClassifier(
            [("net", skorch_net(NeuralNetClassifier, n, k)), ("lr", LogisticRegression(max_iter=500))],
            passthrough=True,
            cv=3,
        ),
        target=_int64,
    ),
    Case(  # skl2onnx stacks probabilities whatever stack_method says (convert/sklearn.py)
        "stacking-predict-wrapper-logistic",
        "iris",
        lambda n, k: StackingClassifier(
            [("net", _scaled(TorchClassifier(epochs=20))), ("lr", LogisticRegression(max_iter=500))],
            stack_method="predict",
            cv=3,
        ),
        string_labels=True,
    ),
    Case(
        "calibrated-sigmoid-wrapper",
        "breast_cancer",
        lambda n, k: make_pipeline(
            StandardScaler(), CalibratedClassifierCV(TorchClassifier(epochs=30), method="sigmoid", cv=3)
        ),
    ),
    Case(
        "calibrated-isotonic-wrapper",
        "iris",
        lambda n, k: make_pipeline(
            StandardScaler(), CalibratedClassifierCV(TorchClassifier(epochs=30), method="isotonic", cv=3)
        ),
        string_labels=True,
    ),
    Case(
        "onevsrest-wrapper",
        "iris",
        lambda n, k: make_pipeline(StandardScaler(), OneVsRestClassifier(TorchClassifier(epochs=20))),
    ),
    Case(
        "bagging-wrapper-classifier",
        "iris",
        lambda n, k: make_pipeline(
            StandardScaler(), BaggingClassifier(TorchClassifier(epochs=20), n_estimators=3, random_state=0)
        ),
    ),
    Case(
        "target-scaled-wrapper-regressor",
        "diabetes",
        lambda n, k: TransformedTargetRegressor(
            regressor=make_pipeline(StandardScaler(), TorchRegressor()), transformer=StandardScaler()
        ),
    ),
    Case(
        "target-log1p-wrapper-regressor",
        "diabetes",
        lambda n, k: TransformedTargetRegressor(
            regressor=make_pipeline(StandardScaler(), TorchRegressor()), func=np.log1p, inverse_func=np.expm1
        ),
        {"prediction": (1e-3, 1e-4)},  # expm1 of float32 logs: targets up to 346 move by ~3e-4
    ),
    Case(
        "voting-regressor-wrapper-ridge",
        "diabetes",
        lambda n, k: VotingRegressor([("net", _scaled(TorchRegressor())), ("ridge", Ridge())]),
    ),
    Case(
        "stacking-regressor-wrapper",
        "diabetes",
        lambda n, k: StackingRegressor(
            [("net", _scaled(TorchRegressor())), ("ridge", Ridge())], final_estimator=Ridge(), cv=3
        ),
    ),
    Case(
        "multioutput-wrapper-regressor",
        "linnerud",
        lambda n, k: MultiOutputRegressor(_scaled(TorchRegressor())),
        {"prediction": (1e-3, 1e-4)},
    ),
    Case(
        "bagging-wrapper-regressor",
        "diabetes",
        lambda n, k: BaggingRegressor(_scaled(TorchRegressor()), n_estimators=3, random_state=0),
    ),
    Case(
        "columntransformer-torch-branch",
        "iris",
        lambda n, k: make_pipeline(
            ColumnTransformer([("enc", TorchEncoder(), [0, 1, 2, 3]), ("raw", "passthrough", [0, 1])]),
            LogisticRegression(max_iter=500),
        ),
    ),
    Case(
        "featureunion-pca-torch-encoder",
        "iris",
        lambda n, k: make_pipeline(
            FeatureUnion([("pca", PCA(2, random_state=0)), ("enc", TorchEncoder())]),
            LogisticRegression(max_iter=500),
        ),
    ),
    # -- inputs beyond 2-D float rows, and what the wrapper really does (issue: tensor inputs) -------
    Case("cnn-images-skorch", "digits-images", lambda n, k: _net(SmallCNN, module__n_out=k), target=_int64),
    Case("gru-token-ids-skorch", "tokens", lambda n, k: _net(TokenRNN, module__n_out=k), target=_int64),
    Case(
        "lstm-token-ids-skorch",
        "tokens",
        lambda n, k: _net(TokenRNN, module__n_out=k, module__cell="lstm"),
        target=_int64,
    ),
    Case(
        "transformer-encoder-token-ids-skorch", "tokens", lambda n, k: _net(TokenTransformer), target=_int64
    ),
    Case("two-input-slicedict-skorch", "two-inputs", lambda n, k: _net(TwoInputNet), target=_int64),
    Case("reshaping-cnn-wrapper", "digits", lambda n, k: ReshapingCNNClassifier(epochs=15)),
    Case("autoencoder-transform-wrapper", "digits", lambda n, k: AutoEncoderTransformer(epochs=30)),
    Case(
        "column-target-skorch-regressor",
        "diabetes",
        lambda n, k: make_pipeline(
            StandardScaler(), _net(MLP, NeuralNetRegressor, module__n_in=n, module__n_out=1, max_epochs=20)
        ),
        target=lambda y: (y.reshape(-1, 1) / 100).astype(np.float32),
    ),
    Case(
        "column-target-binary-wrapper",
        "breast_cancer",
        lambda n, k: make_pipeline(StandardScaler(), ColumnTargetClassifier(epochs=40)),
        target=lambda y: y.reshape(-1, 1),
    ),
    # -- gradient boosting libraries (exporter/convert/boosters.py, extra hybridonnx[boosting]) -----
    Case("lightgbm-multiclass", "iris", lambda n, k: _lightgbm()),
    Case(
        "lightgbm-regressor", "diabetes", lambda n, k: _lightgbm(LGBMRegressor), {"prediction": (1e-3, 1e-5)}
    ),
    Case("xgboost-binary", "breast_cancer", lambda n, k: _xgboost()),
    Case("xgboost-regressor", "diabetes", lambda n, k: _xgboost(XGBRegressor), {"prediction": (1e-3, 1e-5)}),
    Case("catboost-binary", "breast_cancer", lambda n, k: _catboost()),
    Case(
        "catboost-regressor",
        "diabetes",
        lambda n, k: _catboost(CatBoostRegressor),
        {"prediction": (1e-3, 1e-5)},
    ),
    Case(
        "voting-soft-boosters",
        "iris",
        lambda n, k: VotingClassifier(
            [("lgbm", _lightgbm()), ("xgb", _xgboost()), ("cat", _catboost())], voting="soft"
        ),
    ),
]


def _lightgbm(cls: type = LGBMClassifier) -> Any:
    return cls(n_estimators=30, verbose=-1, random_state=0)


def _xgboost(cls: type = XGBClassifier) -> Any:
    return cls(n_estimators=30, random_state=0, n_jobs=1)


def _catboost(cls: type = CatBoostClassifier) -> Any:
    # CatBoost writes a catboost_info/ folder into the working directory unless told not to
    return cls(iterations=30, verbose=0, random_seed=0, thread_count=1, allow_writing_files=False)


def _mixed_columns() -> ColumnTransformer:
    """Numeric, categorical, passthrough, drop and remainder branches over ``mixed_frame``."""
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
            ("robust", RobustScaler(), ["score"]),
            (
                "bins",
                KBinsDiscretizer(n_bins=4, encode="ordinal", quantile_method="averaged_inverted_cdf"),
                ["visits"],
            ),
            ("city", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["city"]),
            ("plan", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["plan"]),
            ("drop", "drop", ["junk"]),
        ],
        remainder="passthrough",
        sparse_threshold=0,
    )


def fit_case(case: Case) -> tuple[Any, Any, Any]:
    """(fitted estimator, X, y) for a case; seeds are fixed so fits are reproducible."""
    torch.manual_seed(0)
    np.random.seed(0)
    X, y = load(case)
    if case.target is not None:
        y = case.target(y)
    n_out = y.shape[1] if np.ndim(y) == 2 else len(np.unique(y))
    n_in = X.shape[1] if np.ndim(X) == 2 else 1
    estimator = case.build(n_in, n_out).fit(X, y)
    return estimator, X, y
