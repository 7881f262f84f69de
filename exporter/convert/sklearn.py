"""Sklearn stages: a run of consecutive sklearn steps → one skl2onnx graph (ZipMap off, pinned opsets)."""

from __future__ import annotations

import copy
import warnings
from typing import Any

from exporter.compose import OPSET
from exporter.convert import added, repairs, text
from exporter.errors import ConversionError, ExportError
from exporter.steps import has_infrequent_categories, walk

TARGET_OPSET = {"": OPSET, "ai.onnx.ml": 3}

# The sklearn types hybridonnx claims: each has a row in tests/cases.py (a meta-test keeps the two
# in step) and the README's support matrix is generated from this list. Other types that skl2onnx
# converts still export, gated by parity, and are reported as untested.
SUPPORTED_SKLEARN = (
    "sklearn.compose.ColumnTransformer",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
    "sklearn.impute.SimpleImputer",
    "sklearn.preprocessing.StandardScaler",
    "sklearn.preprocessing.MinMaxScaler",
    "sklearn.preprocessing.MaxAbsScaler",
    "sklearn.preprocessing.RobustScaler",
    "sklearn.preprocessing.Normalizer",
    "sklearn.preprocessing.Binarizer",
    "sklearn.preprocessing.PowerTransformer",
    "sklearn.preprocessing.FunctionTransformer",
    "sklearn.preprocessing.PolynomialFeatures",
    "sklearn.preprocessing.KBinsDiscretizer",
    "sklearn.preprocessing.OneHotEncoder",
    "sklearn.preprocessing.OrdinalEncoder",
    "sklearn.decomposition.PCA",
    "sklearn.decomposition.TruncatedSVD",
    "sklearn.feature_selection.SelectKBest",
    "sklearn.feature_selection.VarianceThreshold",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.CountVectorizer",
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.LinearRegression",
    "sklearn.linear_model.Ridge",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.RandomForestRegressor",
    "sklearn.ensemble.GradientBoostingClassifier",
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.svm.SVC",
    "sklearn.neighbors.KNeighborsClassifier",
    # Breadth (issue 16): rows in tests/cases_breadth.py.
    "sklearn.naive_bayes.GaussianNB",
    "sklearn.naive_bayes.MultinomialNB",
    "sklearn.naive_bayes.BernoulliNB",
    "sklearn.naive_bayes.ComplementNB",
    "sklearn.naive_bayes.CategoricalNB",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.tree.DecisionTreeRegressor",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.ExtraTreesRegressor",
    "sklearn.ensemble.GradientBoostingRegressor",
    "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.ensemble.AdaBoostClassifier",
    "sklearn.ensemble.IsolationForest",
    "sklearn.cluster.KMeans",
    "sklearn.neural_network.MLPClassifier",
    "sklearn.neural_network.MLPRegressor",
    "sklearn.linear_model.SGDClassifier",
    "sklearn.linear_model.SGDRegressor",
    "sklearn.linear_model.Lasso",
    "sklearn.linear_model.ElasticNet",
    "sklearn.svm.LinearSVC",
    "sklearn.svm.LinearSVR",
    "sklearn.svm.SVR",
    "sklearn.neighbors.KNeighborsRegressor",
    "sklearn.preprocessing.QuantileTransformer",
    "sklearn.preprocessing.SplineTransformer",
    "sklearn.preprocessing.TargetEncoder",
    "sklearn.impute.MissingIndicator",
    # Containers: converted by skl2onnx, with torch leaves anywhere inside (nested.py).
    "sklearn.ensemble.VotingClassifier",
    "sklearn.ensemble.VotingRegressor",
    "sklearn.ensemble.StackingClassifier",
    "sklearn.ensemble.StackingRegressor",
    "sklearn.ensemble.BaggingClassifier",
    "sklearn.ensemble.BaggingRegressor",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.multiclass.OneVsRestClassifier",
    "sklearn.multiclass.OneVsOneClassifier",
    "sklearn.multioutput.MultiOutputRegressor",
    "sklearn.compose.TransformedTargetRegressor",
)


def convert_sklearn_stage(
    steps: list[tuple[str, Any]], inputs: list[tuple[str, str, int | None]], stage_label: str
) -> Any:
    """Convert fitted steps (run in sequence) to a ModelProto.

    ``inputs``: (name, dtype, width) per graph input; one ``X`` matrix, or one per DataFrame column
    when the stage starts with a ColumnTransformer. Outputs: ``label`` + ``probabilities`` for a
    classifier, one tensor otherwise.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
    from sklearn.pipeline import Pipeline

    types = {
        "float32": FloatTensorType,
        "float64": DoubleTensorType,
        "int64": Int64TensorType,
        "string": StringTensorType,
    }
    initial_types = [(name, types[dtype]([None, width])) for name, dtype, width in inputs]
    steps = [(name, native_unknowns(step)) for name, step in steps]
    estimator = steps[0][1] if len(steps) == 1 else Pipeline(steps)
    options = converter_options(steps)
    apply_skl2onnx_compat()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = convert_sklearn(
                estimator, initial_types=initial_types, target_opset=TARGET_OPSET, options=options
            )
    except ExportError as exc:  # raised by our own converters (extend.py): already says the fix
        raise type(exc)(f"{stage_label}: {exc}") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"skl2onnx could not convert {stage_label}: {first}") from exc
    return model


def converter_options(steps: list[tuple[str, Any]]) -> dict[int, dict[str, Any]]:
    """skl2onnx options per fitted object: no ZipMap on the classifiers whose converter has it (a
    LinearSVC's, say, has none and refuses the option). Text vectorizers need none: our converter
    (text.py) reads the fitted vectorizer itself, wherever it sits."""

    options: dict[int, dict[str, Any]] = {}
    for _, step in steps:
        for est in [step, *walk(step)]:
            if hasattr(est, "classes_") and hasattr(est, "predict"):
                # An entry even when empty: skl2onnx gives a Pipeline's classifier without one the
                # Pipeline's own zipmap option, which LinearSVC's converter then refuses.
                options[id(est)] = {"zipmap": False} if _takes_option(est, "zipmap") else {}
    return options


def _takes_option(estimator: Any, option: str) -> bool:
    """Whether skl2onnx's converter for the estimator's type declares ``option`` (unknown types:
    assume it does, as skl2onnx's classifiers mostly do)."""
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import _converter_pool

    alias = sklearn_operator_name_map.get(type(estimator))
    converter = _converter_pool.get(alias) if alias is not None else None
    allowed = converter.get_allowed_options() if converter is not None else None
    return allowed is None or option in allowed


def native_unknowns(estimator: Any) -> Any:
    """The estimator as skl2onnx must see it to encode unseen categories as sklearn does.

    OneHotEncoder(handle_unknown="infrequent_if_exist" or "warn") without infrequent categories
    encodes an unseen value as all zeros, exactly like "ignore"; skl2onnx writes ``zeros=1`` for
    "ignore" only, and onnxruntime then fails on the value ("Unknown Category and zeros = 0").
    Such encoders are converted as shallow copies set to "ignore", and the containers above them
    as shallow copies holding those: the user's fitted objects are never changed. The same goes
    for the containers skl2onnx reads differently from sklearn (below): FrozenEstimator anywhere,
    VotingClassifier(flatten_transform=True).
    """

    kind = type(estimator).__name__
    if kind == "FrozenEstimator":
        # sklearn ≥ 1.6 writes a prefit estimator as FrozenEstimator(fitted) (cv="prefit",
        # Voting/Stacking of prefit models); skl2onnx knows the estimator, not the wrapper, whose
        # methods only delegate to it.
        return native_unknowns(estimator.estimator)
    if kind == "OneHotEncoder":
        if estimator.handle_unknown in ("infrequent_if_exist", "warn") and not (
            has_infrequent_categories(estimator)
        ):
            twin = copy.copy(estimator)
            twin.handle_unknown = "ignore"
            return twin
        return estimator
    if kind == "SimpleImputer" and getattr(estimator, "indicator_", None) is not None:
        # add_indicator=True: sklearn appends its fitted MissingIndicator's columns; skl2onnx
        # ignores them (a narrower output, silently: 0.43 off on a mixed frame). Converted as the
        # FeatureUnion sklearn computes: the imputed values, then the indicator.
        from sklearn.pipeline import FeatureUnion

        imputer = copy.copy(estimator)
        imputer.add_indicator = False
        imputer.indicator_ = None
        return FeatureUnion([("imputed", imputer), ("indicator", estimator.indicator_)])
    changes: dict[str, Any] = {}
    if kind == "VotingClassifier" and estimator.flatten_transform:
        # flatten_transform (sklearn's default) shapes transform() only, never predict/predict_proba,
        # yet skl2onnx refuses any VotingClassifier that has it set.
        changes["flatten_transform"] = False
    if kind == "CalibratedClassifierCV":
        calibrated = []
        for cc in estimator.calibrated_classifiers_:
            inner = native_unknowns(cc.estimator)
            if inner is not cc.estimator:
                cc = copy.copy(cc)
                cc.estimator = inner
            calibrated.append(cc)
        if any(
            new is not old for new, old in zip(calibrated, estimator.calibrated_classifiers_, strict=True)
        ):
            changes["calibrated_classifiers_"] = calibrated
            changes["estimator"] = calibrated[0].estimator
    for attr in ("steps", "transformers_", "transformer_list"):
        items = getattr(estimator, attr, None)
        if not isinstance(items, list):
            continue
        swapped = [(item[0], native_unknowns(item[1]), *item[2:]) for item in items]
        if any(new[1] is not old[1] for new, old in zip(swapped, items, strict=True)):
            changes[attr] = swapped
    fitted = vars(estimator) if hasattr(estimator, "__dict__") else {}
    children = fitted.get("estimators_")
    if isinstance(children, list):  # Voting, Stacking, Bagging, OneVsRest, MultiOutput
        swapped = [
            c if isinstance(c, str) or not hasattr(c, "__dict__") else native_unknowns(c) for c in children
        ]
        if any(new is not old for new, old in zip(swapped, children, strict=True)):
            changes["estimators_"] = swapped
    for attr in ("final_estimator_", "regressor_"):
        child = fitted.get(attr)
        twin_child = native_unknowns(child) if hasattr(child, "__dict__") else child
        if twin_child is not child:
            changes[attr] = twin_child
    if not changes:
        return estimator
    twin = copy.copy(estimator)
    for attr, value in changes.items():
        setattr(twin, attr, value)
    return twin


_COMPAT_PATCHED = False


def apply_skl2onnx_compat() -> None:
    """Work around a skl2onnx 1.20 bug, once: the HistGradientBoosting converter passes Python bools
    (leaf ``missing=False``) and numpy integers into ONNX integer attribute lists, which protobuf 7
    refuses ("Expected an int, got a boolean" → "Unable to create node 'TreeEnsembleClassifier'").
    Casting those arguments to int in ``tree_ensemble.add_node`` fixes it; other trees are unaffected."""
    global _COMPAT_PATCHED
    if _COMPAT_PATCHED:
        return
    import numpy as np
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node

    def plain(value: Any) -> Any:
        return int(value) if isinstance(value, (bool, np.bool_, np.integer)) else value

    def add_node(*args: Any, **kwargs: Any) -> Any:
        return original(*map(plain, args), **{k: plain(v) for k, v in kwargs.items()})

    tree_ensemble.add_node = add_node
    text.install()
    repairs.install()
    added.install()
    from skl2onnx.operator_converters import calibrated_classifier_cv

    calibrated_classifier_cv._transform_isotonic = _isotonic_interpolation
    from skl2onnx.operator_converters import stacking

    stacking._transform = _stacking_features
    _COMPAT_PATCHED = True


def _isotonic_interpolation(
    scope: Any, container: Any, model: Any, T: str, k: int, dtype: Any, proto_type: int
) -> str:
    """Isotonic calibration as sklearn computes it: ``np.interp`` between the fitted thresholds.

    skl2onnx 1.20 takes the y of the *nearest* threshold instead (measured: probabilities off by up
    to 0.28 on iris, 0.07 on breast cancer). Here: i = (thresholds <= t).sum() - 1 clipped to
    [0, n - 2], then y[i] + (t - x[i]) / (x[i+1] - x[i]) * (y[i+1] - y[i]); t is clipped to the
    fitted range first (out_of_bounds="clip", the only setting CalibratedClassifierCV uses)."""
    import numpy as np
    from onnx import TensorProto

    calibrator = model.calibrators[k] if hasattr(model, "calibrators") else model.calibrators_[k]
    x = np.asarray(calibrator.X_thresholds_, dtype=dtype)
    y = np.asarray(calibrator.y_thresholds_, dtype=dtype)
    out = scope.get_unique_variable_name("isotonic_y")
    proto = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT

    def const(name: str, value: np.ndarray, kind: int = proto) -> str:
        unique = scope.get_unique_variable_name(name)
        container.add_initializer(unique, kind, list(value.shape), value.ravel().tolist())
        return unique

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        result = scope.get_unique_variable_name(op.lower())
        container.add_node(op, inputs, result, name=scope.get_unique_operator_name(op), **attrs)
        return result

    column = node("Reshape", [T, const("shape", np.array([-1, 1], np.int64), TensorProto.INT64)])
    if len(x) == 1:  # a constant calibrator
        zeros = node("Mul", [column, const("zero", np.array([0], dtype))])
        container.add_node("Add", [zeros, const("y0", y)], out, name=scope.get_unique_operator_name("Add"))
        return out
    t = node("Clip", [column, const("lo", np.array(x[0], dtype)), const("hi", np.array(x[-1], dtype))])
    below = node("Cast", [node("LessOrEqual", [const("x", x.reshape(1, -1)), t])], to=TensorProto.INT64)
    count = node("ReduceSum", [below, const("axis", np.array([1], np.int64), TensorProto.INT64)], keepdims=1)
    index = node(
        "Clip",
        [
            node("Sub", [count, const("one", np.array(1, np.int64), TensorProto.INT64)]),
            const("first", np.array(0, np.int64), TensorProto.INT64),
            const("last", np.array(len(x) - 2, np.int64), TensorProto.INT64),
        ],
    )
    x0 = node("Gather", [const("xs", x), index], axis=0)
    x1 = node("Gather", [const("xs1", x[1:]), index], axis=0)
    y0 = node("Gather", [const("ys", y), index], axis=0)
    y1 = node("Gather", [const("ys1", y[1:]), index], axis=0)
    weight = node("Div", [node("Sub", [t, x0]), node("Sub", [x1, x0])])
    container.add_node(
        "Add",
        [y0, node("Mul", [weight, node("Sub", [y1, y0])])],
        out,
        name=scope.get_unique_operator_name("Add"),
    )
    return out


def _stacking_features(scope: Any, operator: Any, container: Any, model: Any) -> str:
    """StackingClassifier's meta-features as sklearn builds them (``_concatenate_predictions``):
    per base estimator, its ``predict`` (the encoded label, one column), its ``decision_function``,
    or its ``predict_proba`` — the last column only when there are two classes.

    skl2onnx 1.20 reads probabilities whatever the method (``stack_method="predict"``: a model
    onnxruntime refuses to run, "coefficients size (6) is less than class_count (3) * ...") and
    keeps the last column only when every estimator uses predict_proba."""
    from onnx import TensorProto
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._apply_operation import apply_cast, apply_concat, apply_reshape
    from skl2onnx.common.data_types import Int64TensorType, guess_proto_type
    from skl2onnx.operator_converters.stacking import _add_passthrough_connection, _fetch_scores

    X = operator.inputs[0]
    binary = len(model.classes_) == 2
    last = scope.get_unique_variable_name("stack_last_column")
    container.add_initializer(last, TensorProto.INT64, [], [1])
    columns: list[str] = []
    for est, method in zip(model.estimators_, model.stack_method_, strict=True):
        if isinstance(est, str):  # "drop"
            continue
        if method == "predict":
            op = scope.declare_local_operator(sklearn_operator_name_map[type(est)], est)
            op.inputs.append(X)
            label = scope.declare_local_variable("sv_label", Int64TensorType())
            op.outputs.append(label)
            op.outputs.append(scope.declare_local_variable("sv_prob_tensor", X.type.__class__()))
            cast = scope.get_unique_variable_name("stack_label_cast")
            apply_cast(scope, label.onnx_name, cast, container, to=guess_proto_type(X.type))
            column = scope.get_unique_variable_name("stack_label_column")
            apply_reshape(scope, cast, column, container, desired_shape=(-1, 1))
            columns.append(column)
            continue
        scores = _fetch_scores(scope, container, est, X, raw_scores=method == "decision_function")
        if binary:  # predict_proba's last column; decision_function's one score
            picked = scope.get_unique_variable_name("stack_tr_prob")
            container.add_node(
                "ArrayFeatureExtractor",
                [scores, last],
                picked,
                name=scope.get_unique_operator_name("SV_AFE"),
                op_domain="ai.onnx.ml",
            )
            scores = picked
        columns.append(scores)
    _add_passthrough_connection(operator, columns)
    merged = scope.get_unique_variable_name("stack_tra_merged_prob_tensor")
    apply_concat(scope, columns, merged, container, axis=1)
    return merged
