"""LightGBM, XGBoost and CatBoost models as sklearn steps (optional extra ``hybridonnx[boosting]``).

Why they are sklearn steps: all three follow the sklearn estimator API, so once skl2onnx knows how
to convert them they join its topology like a RandomForest does — bare, at the end of a pipeline,
after a torch encoder, inside Voting/Stacking — with no code of ours for the containers.
``register`` (called by ``load_builtin``, never on import) registers each installed library's
classes as ``SKLEARN`` steps in our registry and gives skl2onnx their converters:

* LightGBM and XGBoost: onnxmltools' converters, registered the way its documentation does
  (``update_registered_converter(LGBMClassifier, ..., convert_lightgbm, options={zipmap, nocl})``).
* CatBoost: its own exporter (``catboost.utils.convert_to_onnx_object``) writes one TreeEnsemble
  node (plus a ZipMap we drop); that node is copied into skl2onnx's graph on the step's input.

What the graphs get wrong, measured against the native libraries (tests/exporter/test_boosters.py),
and what is done about it:

* Categorical splits on numeric codes: the libraries cast a value to int before looking it up
  (2.7 is category 2, -0.5 is category 0 for LightGBM, a negative value is missing for XGBoost);
  the converters compare floats for equality (2.7 is no category). The graph reads those columns
  the libraries' way before the trees: exact (measured on fractions, negatives, unseen codes).
* Refused by name at export, since the graph would answer differently from native:
  LightGBM ``zero_as_missing=True`` (natively 0 takes the missing branch; the graph compares it
  with the threshold), ``linear_tree=True`` (the converter drops the leaves' linear models),
  ``boosting_type="rf"`` (its trees are averaged wrongly), custom objectives; XGBoost
  ``missing`` other than NaN, boosters other than ``gbtree`` (``gblinear``; ``dart`` fails in
  onnxmltools); CatBoost categorical, text or embedding features (CatBoost cannot write them to
  ONNX); any of them fitted on pandas ``category`` columns (the value → code mapping is not in
  the graph; the input schema refuses such string columns first).
* NaN: LightGBM's and XGBoost's learned missing-value branches become the nodes'
  ``missing_value_tracks_true``, and CatBoost writes its ``nan_mode`` ("Min", "Max") the same
  way: NaN and ±inf answer as natively (measured). ``takes_missing`` / ``takes_inf`` say what the
  native model accepts, for the input schema.
* Thresholds are float32 in ``ai.onnx.ml`` TreeEnsemble nodes. XGBoost and CatBoost compare in
  float32 natively: exact. LightGBM compares in double; its thresholds are written as the float32
  that splits every float32 value as the double does (``float32_thresholds``), so float32 inputs
  (and a torch encoder's outputs) are exact; a float64 input within float32 rounding of a split
  may still go the other way, as for sklearn's trees: parity reports label agreement and ties.

A booster class whose converter library is missing (LightGBM installed, onnxmltools not) is still
registered, with a converter that fails in one line naming the extra.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from exporter.errors import ConversionError, UnsupportedStepError

if TYPE_CHECKING:
    from exporter.registry import Registry

EXTRA = "hybridonnx[boosting]"
INSTALL = f'pip install "{EXTRA}"'


@dataclass(frozen=True)
class Booster:
    """One supported booster class: where it lives, what it predicts, what converts it."""

    module: str
    name: str
    task: Literal["classifier", "regressor"]
    needs: str  # the module its converter comes from

    @property
    def library(self) -> str:
        return self.module.split(".")[0]


BOOSTERS = (
    Booster("lightgbm", "LGBMClassifier", "classifier", "onnxmltools"),
    Booster("lightgbm", "LGBMRegressor", "regressor", "onnxmltools"),
    Booster("xgboost", "XGBClassifier", "classifier", "onnxmltools"),
    Booster("xgboost", "XGBRegressor", "regressor", "onnxmltools"),
    Booster("catboost", "CatBoostClassifier", "classifier", "catboost"),
    Booster("catboost", "CatBoostRegressor", "regressor", "catboost"),
)

_REGISTERED: set[type] = set()


def register(registry: Registry, only: str | None = None) -> None:
    """Register the booster classes of the libraries installed here (idempotent); ``only``: of
    that library alone."""
    from exporter.registry import SKLEARN  # late: schema.py asks the predicates below, no registry

    for booster in BOOSTERS:
        if only is not None and booster.library != only:
            continue
        if importlib.util.find_spec(booster.library) is None:
            continue  # a pipeline holding it could not have been unpickled here anyway
        cls = getattr(importlib.import_module(booster.module), booster.name)
        if cls not in _REGISTERED:
            _install_converter(cls, booster)
            _REGISTERED.add(cls)
        if cls not in registry:
            registry.register(cls, SKLEARN)


def booster_of(estimator: Any) -> Booster | None:
    """The Booster entry of a fitted estimator's exact type, or None."""
    cls = type(estimator)
    for booster in BOOSTERS:
        if cls.__name__ == booster.name and cls.__module__.split(".")[0] == booster.library:
            return booster
    return None


def is_classifier(estimator: Any) -> bool | None:
    """True / False for a booster (CatBoostRegressor has a ``classes_`` attribute too, so
    ``hasattr(step, "classes_")`` cannot tell); None for anything else."""
    booster = booster_of(estimator)
    return None if booster is None else booster.task == "classifier"


def takes_missing(estimator: Any) -> bool:
    """Whether the native booster accepts NaN (and the graph routes it as natively)."""
    booster = booster_of(estimator)
    if booster is None:
        return False
    if booster.library == "catboost":
        return _catboost_param(estimator, "nan_mode", "Min") != "Forbidden"
    return True  # LightGBM (use_missing or NaN as 0) and XGBoost (missing=NaN) both take NaN


def takes_inf(estimator: Any) -> bool:
    """Whether the native booster accepts ±inf: all three compare it with the thresholds."""
    return booster_of(estimator) is not None


# -- refusals -------------------------------------------------------------------------------------


def check_exact(estimator: Any) -> None:
    """Raise UnsupportedStepError naming the setting where the graph would not answer as natively."""
    booster = booster_of(estimator)
    if booster is None:
        return
    name = type(estimator).__name__
    if booster.library == "lightgbm":
        params = estimator.booster_.params
        if _truthy(params.get("zero_as_missing", estimator.get_params().get("zero_as_missing"))):
            raise UnsupportedStepError(
                f"{name}(zero_as_missing=True) cannot be exported exactly: LightGBM routes 0 as a "
                "missing value, the ONNX trees compare it with the threshold; refit without it"
            )
        if _truthy(params.get("linear_tree", estimator.get_params().get("linear_tree"))):
            raise UnsupportedStepError(
                f"{name}(linear_tree=True) cannot be exported: onnxmltools drops the linear models "
                "in the leaves; refit without linear_tree"
            )
        if estimator.get_params().get("boosting_type") == "rf":
            raise UnsupportedStepError(
                f"{name}(boosting_type='rf') cannot be exported exactly: onnxmltools 1.16 averages "
                "the random forest's trees wrongly (regression off by 200 on diabetes, 2 probability "
                "columns for 3 classes); use boosting_type='gbdt', 'dart' or 'goss'"
            )
        if callable(estimator.get_params().get("objective")):
            raise UnsupportedStepError(
                f"{name} has a custom objective function: its output transform is unknown to the "
                "converter; refit with a built-in objective"
            )
        if getattr(estimator.booster_, "pandas_categorical", None):
            raise UnsupportedStepError(_pandas_categorical(name))
    elif booster.library == "xgboost":
        missing = estimator.get_params().get("missing", np.nan)
        if missing is not None and not (isinstance(missing, float) and np.isnan(missing)):
            raise UnsupportedStepError(
                f"{name}(missing={missing!r}) cannot be exported: the ONNX trees route only NaN as "
                "missing; refit with missing=np.nan (replace the value by NaN first)"
            )
        kind = estimator.get_params().get("booster") or "gbtree"
        if kind != "gbtree":
            raise UnsupportedStepError(
                f"{name}(booster={kind!r}) cannot be exported: onnxmltools 1.16 converts the "
                "default tree booster (gbtree) only"
            )
        if _xgboost_categorical(estimator) and getattr(estimator, "feature_names_in_", None) is not None:
            raise UnsupportedStepError(_pandas_categorical(name))
    elif booster.library == "catboost":
        features = [
            ("categorical", "get_cat_feature_indices"),
            ("text", "get_text_feature_indices"),
            ("embedding", "get_embedding_feature_indices"),
        ]
        for kind, method in features:
            found = list(getattr(estimator, method, lambda: [])())
            if found:
                raise UnsupportedStepError(
                    f"{name} uses {kind} features {found}: CatBoost cannot export them to ONNX; "
                    "encode them numerically before the model (e.g. OrdinalEncoder in the pipeline)"
                )


def _pandas_categorical(name: str) -> str:
    return (
        f"{name} was fitted on pandas 'category' columns: the mapping from category values to the "
        "codes the trees split on is not part of the ONNX graph; encode them in the pipeline "
        "(OrdinalEncoder → the booster with categorical_feature=/feature_types= on those columns)"
    )


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("true", "1") if isinstance(value, str) else bool(value)


def _catboost_param(estimator: Any, key: str, default: Any) -> Any:
    params = estimator.get_all_params() if hasattr(estimator, "get_all_params") else {}
    return params.get(key, estimator.get_params().get(key, default))


# -- categorical codes ----------------------------------------------------------------------------


def categorical_columns(estimator: Any) -> list[int]:
    """Input columns the fitted booster splits on as categories (numeric codes)."""
    booster = booster_of(estimator)
    if booster is None:
        return []
    if booster.library == "lightgbm":
        found: set[int] = set()
        stack = [tree["tree_structure"] for tree in estimator.booster_.dump_model()["tree_info"]]
        while stack:
            node = stack.pop()
            if node.get("decision_type") == "==":
                found.add(int(node["split_feature"]))
            stack += [node[k] for k in ("left_child", "right_child") if k in node]
        return sorted(found)
    if booster.library == "xgboost":
        return _xgboost_categorical(estimator)
    return []


def _xgboost_categorical(estimator: Any) -> list[int]:
    types = estimator.get_booster().feature_types or []
    return [j for j, kind in enumerate(types) if kind == "c"]


def _category_codes(scope: Any, container: Any, x: str, columns: list[int], width: int, library: str) -> str:
    """``x`` with the categorical columns read as the library reads a category: truncated toward
    zero (its cast to int: 2.7 → 2, -0.5 → 0), and for XGBoost any negative value as missing
    (NaN). The other columns, NaN and ±inf pass unchanged."""
    from onnx import TensorProto

    def name(base: str) -> str:
        return str(scope.get_unique_variable_name(base))

    def node(op: str, inputs: list[str], base: str) -> str:
        out = name(base)
        container.add_node(op, inputs, out, name=scope.get_unique_operator_name(op))
        return out

    def const(base: str, kind: int, shape: list[int], values: list[Any]) -> str:
        out = name(base)
        container.add_initializer(out, kind, shape, values)
        return out

    mask = np.zeros(width, dtype=bool)
    mask[columns] = True
    floored = node("Floor", [node("Abs", [x], "abs")], "floor")
    codes = node("Mul", [node("Sign", [x], "sign"), floored], "truncated")
    if library == "xgboost":
        zero = const("zero", TensorProto.FLOAT, [], [0.0])
        nan = const("nan", TensorProto.FLOAT, [], [float("nan")])
        codes = node("Where", [node("Less", [x, zero], "negative"), nan, codes], "negative_missing")
    in_columns = const("category_columns", TensorProto.BOOL, [1, width], mask.tolist())
    return node("Where", [in_columns, codes, x], "category_codes")


# -- skl2onnx registration -------------------------------------------------------------------------


def _install_converter(cls: type, booster: Booster) -> None:
    from skl2onnx import update_registered_converter

    alias = f"Hybridonnx_{cls.__module__}_{cls.__qualname__}".replace(".", "_")  # skl2onnx keys by alias
    # Regressors declare the options too, with a parser of their own (skl2onnx would otherwise
    # parse any type declaring zipmap as a classifier): converter_options sets zipmap=False on every
    # step with classes_ and predict, and CatBoostRegressor has a classes_ attribute.
    options = {"zipmap": [False, True], "nocl": [False, True]}
    parser = _parse_classifier if booster.task == "classifier" else _parse_regressor
    if importlib.util.find_spec(booster.needs) is None:
        update_registered_converter(
            cls, alias, _missing_extra(booster), _never, options=options, parser=parser
        )
        return
    if booster.library == "catboost":
        shape = _catboost_shape
        convert = _convert_catboost
    else:
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )

        shape = (
            calculate_linear_classifier_output_shapes
            if booster.task == "classifier"
            else calculate_linear_regressor_output_shapes
        )
        convert = _convert_onnxmltools
    update_registered_converter(cls, alias, _checked(shape), convert, options=options, parser=parser)


def _checked(shape: Any) -> Any:
    def calculate(operator: Any) -> None:
        check_exact(operator.raw_operator)  # first: skl2onnx calls the shape calculator first
        shape(operator)

    return calculate


def _missing_extra(booster: Booster) -> Any:
    def calculate(operator: Any) -> None:
        raise UnsupportedStepError(
            f"{booster.name} needs {booster.needs} to be exported, which is not installed: {INSTALL}"
        )

    return calculate


def _never(scope: Any, operator: Any, container: Any) -> None:
    raise ConversionError(f"{type(operator.raw_operator).__name__}: {INSTALL}")  # pragma: no cover


def _parse_classifier(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> Any:
    """label + probabilities, no ZipMap (CatBoost is no ClassifierMixin: skl2onnx's default parser
    would declare one output only)."""
    from skl2onnx._supported_operators import get_model_alias
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    op = scope.declare_local_operator(get_model_alias(type(model)), model)
    op.inputs = inputs
    strings = np.asarray(model.classes_).dtype.kind in "OUS"
    op.outputs.append(
        scope.declare_local_variable("label", (StringTensorType if strings else Int64TensorType)())
    )
    op.outputs.append(scope.declare_local_variable("probabilities", FloatTensorType()))
    return op.outputs


def _parse_regressor(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> Any:
    from skl2onnx._supported_operators import get_model_alias
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    op = scope.declare_local_operator(get_model_alias(type(model)), model)
    op.inputs = inputs
    double = isinstance(inputs[0].type, DoubleTensorType)
    op.outputs.append(
        scope.declare_local_variable("variable", (DoubleTensorType if double else FloatTensorType)())
    )
    return op.outputs


def _convert_onnxmltools(scope: Any, operator: Any, container: Any) -> None:
    raw = operator.raw_operator
    booster = booster_of(raw)
    assert booster is not None
    if booster.library == "lightgbm":
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm as convert
    else:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost as convert

    def build(x: str, outputs: list[str]) -> None:
        columns = categorical_columns(raw)
        if columns:
            x = _category_codes(scope, container, x, columns, _width(operator), booster.library)
        target = _Float32Thresholds(container) if booster.library == "lightgbm" else container
        try:
            convert(scope, _Rewired(operator, x, outputs), target)
        except (RuntimeError, ValueError, NotImplementedError, TypeError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConversionError(f"onnxmltools could not convert {type(raw).__name__}: {first}") from None

    _float_trees(scope, operator, container, build)


def _float_trees(scope: Any, operator: Any, container: Any, build: Any) -> None:
    """Call ``build(x, outputs)`` to write float32 trees: TreeEnsemble thresholds are float32
    (a double input would be compared as float32 anyway) and its outputs are float. With
    ``--dtype float64`` the input is cast to float first and the outputs declared double are
    written as float, then cast back."""
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType

    def unique(base: str) -> str:
        return str(scope.get_unique_variable_name(base))

    x = operator.inputs[0].full_name
    if isinstance(operator.inputs[0].type, DoubleTensorType):
        x, double = unique("booster_float_input"), x
        container.add_node(
            "Cast", [double], x, name=scope.get_unique_operator_name("Cast"), to=TensorProto.FLOAT
        )
    outputs, casts = [], []
    for variable in operator.outputs:
        if isinstance(variable.type, DoubleTensorType):
            outputs.append(unique(f"{variable.onnx_name}_float"))
            casts.append((outputs[-1], variable.full_name))
        else:
            outputs.append(variable.full_name)
    build(x, outputs)
    for name, declared in casts:
        container.add_node(
            "Cast", [name], declared, name=scope.get_unique_operator_name("Cast"), to=TensorProto.DOUBLE
        )


def _width(operator: Any) -> int:
    shape = operator.inputs[0].type.shape
    if shape and len(shape) > 1 and isinstance(shape[1], int):
        return int(shape[1])
    return int(operator.raw_operator.n_features_in_)


class _Float32Thresholds:
    """The container, with LightGBM's double thresholds written as the float32 that splits every
    float32 value the same way: ``v <= t`` ⟺ ``v <= f`` for f the largest float32 ≤ t (written
    as-is, a threshold rounded up onto a float32 value v sends v the other way: measured on
    diabetes, 4 of 177 held-out predictions off by up to 25). XGBoost and CatBoost store float32
    thresholds (and compare float32 inputs) already."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def add_node(self, op_type: str, *args: Any, **attrs: Any) -> Any:
        if op_type.startswith("TreeEnsemble") and "nodes_values" in attrs:
            attrs["nodes_values"] = float32_thresholds(attrs["nodes_modes"], attrs["nodes_values"])
        return self._container.add_node(op_type, *args, **attrs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._container, attr)


def float32_thresholds(modes: list[Any], values: list[float]) -> list[float]:
    """Per node, the float32 threshold equivalent to the double one for float32 inputs: rounded
    down for ``<=`` / ``>`` splits, up for ``<`` / ``>=`` (equality splits compare codes: kept)."""
    double = np.asarray(values, dtype=np.float64)
    single = double.astype(np.float32)
    down = np.where(single.astype(np.float64) > double, np.nextafter(single, np.float32(-np.inf)), single)
    up = np.where(single.astype(np.float64) < double, np.nextafter(single, np.float32(np.inf)), single)
    names = [m.decode() if isinstance(m, bytes) else str(m) for m in modes]
    out = [
        float(down[i])
        if m in ("BRANCH_LEQ", "BRANCH_GT")
        else float(up[i])
        if m in ("BRANCH_LT", "BRANCH_GTE")
        else v
        for i, (m, v) in enumerate(zip(names, values, strict=True))
    ]
    return out


class _Output:
    def __init__(self, variable: Any, name: str) -> None:
        self.full_name = self.onnx_name = name
        self.type = variable.type


class _Rewired:
    """The skl2onnx operator as onnxmltools' converter reads it, wired to other tensors: the
    converter reads ``input_full_names`` / ``outputs`` / ``output_full_names`` and the fitted model."""

    def __init__(self, operator: Any, x: str, outputs: list[str]) -> None:
        self._operator = operator
        self.input_full_names = [x]
        self.outputs = [_Output(v, name) for v, name in zip(operator.outputs, outputs, strict=True)]
        self.output_full_names = list(outputs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._operator, attr)


# -- CatBoost ---------------------------------------------------------------------------------------


def _catboost_shape(operator: Any) -> None:
    """label (N,) + probabilities (N, C), or predictions (N, k): what its TreeEnsemble writes, in
    the stage's float type (``_float_trees`` casts)."""
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    raw = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    real = DoubleTensorType if isinstance(operator.inputs[0].type, DoubleTensorType) else FloatTensorType
    if is_classifier(raw):
        strings = np.asarray(raw.classes_).dtype.kind in "OUS"
        operator.outputs[0].type = (StringTensorType if strings else Int64TensorType)([n])
        operator.outputs[1].type = real([n, len(raw.classes_)])
        return
    answer = np.asarray(raw.predict(np.zeros((1, _width(operator)), dtype=np.float32)))
    operator.outputs[0].type = real([n, int(answer.size)])


def _convert_catboost(scope: Any, operator: Any, container: Any) -> None:
    from catboost.utils import convert_to_onnx_object
    from onnx import helper

    raw = operator.raw_operator
    label = type(raw).__name__
    try:
        model = convert_to_onnx_object(raw)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"CatBoost could not export {label} to ONNX: {first}") from None
    nodes = list(model.graph.node)
    if (
        not nodes
        or not nodes[0].op_type.startswith("TreeEnsemble")
        or any(n.op_type != "ZipMap" for n in nodes[1:])
        or len(model.graph.initializer)
    ):
        raise ConversionError(
            f"CatBoost exported {label} as {[n.op_type for n in nodes]}: expected one TreeEnsemble "
            "node (this CatBoost version writes another graph)"
        )
    tree = nodes[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in tree.attribute}

    def build(x: str, outputs: list[str]) -> None:
        container.add_node(
            tree.op_type,
            [x],
            outputs,
            op_domain="ai.onnx.ml",
            op_version=1,
            name=scope.get_unique_operator_name(f"CatBoost{tree.op_type}"),
            **attrs,
        )

    _float_trees(scope, operator, container, build)
