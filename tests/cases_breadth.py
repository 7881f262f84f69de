"""Breadth rows of the parity case table: the sklearn types skl2onnx converts that real pipelines use
(issue 16), the converters hybridonnx repairs or adds (exporter/convert/repairs.py, added.py,
text.py), each with its tolerance measured on the whole dataset (the export sees 60 rows).

Same ``Case`` as tests/cases.py; tests/exporter/test_cases.py runs ``CASES + BREADTH_CASES``.
Kept cheap: small datasets and models (the whole table runs on 2 cores in CI).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingClassifier,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    IsolationForest,
)
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge, SGDClassifier, SGDRegressor
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
from sklearn.naive_bayes import BernoulliNB, CategoricalNB, ComplementNB, GaussianNB, MultinomialNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import (
    KBinsDiscretizer,
    MinMaxScaler,
    OneHotEncoder,
    QuantileTransformer,
    SplineTransformer,
    StandardScaler,
    TargetEncoder,
)
from sklearn.svm import SVC, SVR, LinearSVC, LinearSVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from tests.cases import Case

REGRESSION = {"prediction": (1e-3, 1e-5)}  # targets in the hundreds (diabetes): float32 rounding


def _scaled(estimator: object) -> object:
    return make_pipeline(StandardScaler(), estimator)


BREADTH_CASES = [
    # -- naive Bayes -------------------------------------------------------------------------------
    Case("gaussian-nb", "iris", lambda n, k: GaussianNB()),
    Case(  # non-negative features: scaled pixels and the zero-pixel indicator (MissingIndicator)
        "missing-indicator-multinomial-nb",
        "digits",
        lambda n, k: make_pipeline(
            FeatureUnion([("px", MinMaxScaler()), ("blank", MissingIndicator(missing_values=0.0))]),
            MultinomialNB(),
        ),
        {"probabilities": (1e-4, 1e-3)},  # exp of float32 log-likelihoods summed over 128 features
    ),
    Case("bernoulli-nb", "breast_cancer", lambda n, k: _scaled(BernoulliNB())),
    Case("complement-nb", "wine", lambda n, k: ComplementNB(), {"probabilities": (1e-4, 1e-3)}),
    Case(
        "bins-categorical-nb",
        "wine",
        lambda n, k: make_pipeline(
            KBinsDiscretizer(n_bins=4, encode="ordinal", quantile_method="averaged_inverted_cdf"),
            CategoricalNB(),
        ),
    ),
    # -- trees and forests (float32 thresholds: labels may flip near a split) ----------------------
    Case("extra-trees-classifier", "wine", lambda n, k: ExtraTreesClassifier(20, random_state=0)),
    Case(  # shallow: the runtime reads the model's metadata by scanning it, slow on large forests
        "extra-trees-regressor",
        "diabetes",
        lambda n, k: ExtraTreesRegressor(10, max_depth=6, random_state=0),
        REGRESSION,
    ),
    Case(
        "decision-tree-classifier", "wine", lambda n, k: DecisionTreeClassifier(max_depth=5, random_state=0)
    ),
    Case(
        "decision-tree-regressor",
        "diabetes",
        lambda n, k: DecisionTreeRegressor(max_depth=6, random_state=0),
        REGRESSION,
    ),
    Case(
        "gradient-boosting-regressor",
        "diabetes",
        lambda n, k: GradientBoostingRegressor(n_estimators=30, random_state=0),
        REGRESSION,
    ),
    Case(
        "hist-gradient-boosting-regressor",
        "diabetes",
        lambda n, k: HistGradientBoostingRegressor(max_iter=10, random_state=0),
        REGRESSION,
    ),
    Case("adaboost-classifier", "wine", lambda n, k: AdaBoostClassifier(n_estimators=10, random_state=0)),
    # -- unsupervised: predict gives labels (-1/1 outliers, cluster ids) --------------------------
    Case(
        "isolation-forest",
        "wine",
        lambda n, k: IsolationForest(n_estimators=10, max_samples=64, random_state=0),
    ),
    Case("scaler-kmeans", "iris", lambda n, k: _scaled(KMeans(3, n_init=3, random_state=0))),
    # -- neural nets, linear models, SVMs ----------------------------------------------------------
    Case("mlp-classifier", "iris", lambda n, k: _scaled(MLPClassifier((16,), max_iter=300, random_state=0))),
    Case(
        "mlp-regressor",
        "diabetes",
        lambda n, k: _scaled(
            MLPRegressor(hidden_layer_sizes=(16,), max_iter=300, learning_rate_init=0.05, random_state=0)
        ),
        REGRESSION,
    ),
    Case("sgd-classifier", "iris", lambda n, k: _scaled(SGDClassifier(random_state=0))),
    Case(
        "sgd-log-classifier",
        "breast_cancer",
        lambda n, k: _scaled(SGDClassifier(loss="log_loss", random_state=0)),
    ),
    Case("sgd-regressor", "diabetes", lambda n, k: _scaled(SGDRegressor(random_state=0)), REGRESSION),
    Case("linear-svc-in-pipeline", "iris", lambda n, k: _scaled(LinearSVC())),  # zipmap option fixed
    Case(
        "linear-svr", "diabetes", lambda n, k: _scaled(LinearSVR(max_iter=5000, random_state=0)), REGRESSION
    ),
    Case("svr", "diabetes", lambda n, k: _scaled(SVR(C=10.0)), REGRESSION),
    Case("lasso", "diabetes", lambda n, k: Lasso(alpha=0.1), REGRESSION, dtype=np.float64),
    Case("elastic-net", "diabetes", lambda n, k: ElasticNet(alpha=0.01), REGRESSION, dtype=np.float64),
    # -- preprocessing -----------------------------------------------------------------------------
    Case(  # skl2onnx's converter is slow to build (quadratic in its graph): two features only
        "quantile-transformer-logistic",
        "iris",
        lambda n, k: make_pipeline(
            ColumnTransformer([("q", QuantileTransformer(n_quantiles=30), [2, 3])]),
            LogisticRegression(max_iter=500),
        ),
    ),
    Case(  # converter added (exporter/convert/added.py): B-spline pieces evaluated in float64
        "spline-transformer-ridge",
        "diabetes",
        lambda n, k: make_pipeline(SplineTransformer(n_knots=4, knots="quantile"), Ridge()),
        REGRESSION,
    ),
    Case(
        "spline-periodic-transformer",
        "iris",
        lambda n, k: SplineTransformer(degree=2, n_knots=4, extrapolation="periodic"),
        {"features": (1e-6, 1e-5)},
    ),
    Case(
        "target-encoder-mixed",
        "mixed",
        lambda n, k: make_pipeline(
            ColumnTransformer(
                [
                    ("te", TargetEncoder(), ["city", "plan"]),
                    ("num", SimpleImputer(), ["age", "income", "score"]),
                ]
            ),
            LogisticRegression(),
        ),
    ),
    Case(  # skl2onnx drops add_indicator's columns; converted as imputer + MissingIndicator
        "imputer-add-indicator-mixed",
        "mixed",
        lambda n, k: make_pipeline(
            ColumnTransformer([("num", SimpleImputer(add_indicator=True), ["age", "income"])]),
            LogisticRegression(),
        ),
    ),
    Case(  # infrequent categories: skl2onnx refuses them (one column) or mis-shapes them (several);
        # unseen values ('berlin' in the test's second frame) → zeros, as handle_unknown="ignore"
        "onehot-infrequent-mixed",
        "mixed",
        lambda n, k: make_pipeline(
            ColumnTransformer(
                [
                    (
                        "cats",
                        OneHotEncoder(max_categories=2, handle_unknown="ignore", sparse_output=False),
                        ["city", "plan"],
                    ),
                    ("num", SimpleImputer(), ["age", "income", "score"]),
                ]
            ),
            LogisticRegression(),
        ),
    ),
    # -- neighbours --------------------------------------------------------------------------------
    Case("knn-regressor", "diabetes", lambda n, k: _scaled(KNeighborsRegressor()), REGRESSION),
    Case(  # weights="distance": skl2onnx's weights were uniform (off by 122); repaired
        "knn-distance-regressor",
        "diabetes",
        lambda n, k: KNeighborsRegressor(weights="distance"),
        REGRESSION,
        dtype=np.float64,
    ),
    Case(
        "knn-distance-classifier",
        "iris",
        lambda n, k: _scaled(KNeighborsClassifier(weights="distance")),
        dtype=np.float64,
    ),
    # -- one-vs-rest / one-vs-one, bagging without predict_proba -----------------------------------
    Case("onevsrest-logistic", "wine", lambda n, k: _scaled(OneVsRestClassifier(LogisticRegression()))),
    Case(  # label was an (N, 1) index read from a fixed tensor name; repaired
        "onevsone-logistic-string-labels",
        "iris",
        lambda n, k: _scaled(OneVsOneClassifier(LogisticRegression())),
        string_labels=True,
    ),
    Case(  # votes were summed over the wrong axis; repaired
        "bagging-svc-votes",
        "iris",
        lambda n, k: _scaled(BaggingClassifier(SVC(), n_estimators=4, random_state=0)),
    ),
    # -- text: every analyzer, stop words with n-grams, custom patterns with min_df ---------------
    Case(
        "tfidf-stopwords-bigrams",
        "text",
        lambda n, k: make_pipeline(
            TfidfVectorizer(stop_words="english", ngram_range=(1, 2)), LogisticRegression(max_iter=500)
        ),
    ),
    Case(
        "tfidf-char",
        "text",
        lambda n, k: make_pipeline(
            TfidfVectorizer(analyzer="char", ngram_range=(1, 3)), LogisticRegression(max_iter=500)
        ),
    ),
    Case(
        "tfidf-char-wb",
        "text",
        lambda n, k: make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
            LogisticRegression(max_iter=500),
        ),
    ),
    Case(
        "count-custom-pattern-min-df",
        "text",
        lambda n, k: make_pipeline(
            CountVectorizer(token_pattern=r"(?u)\b\w+\b", min_df=3, ngram_range=(1, 2), binary=True),
            LogisticRegression(max_iter=500),
        ),
    ),
]
