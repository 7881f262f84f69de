"""Repairs to skl2onnx 1.20 converters that answer differently from sklearn, each measured on a
dataset bundled with sklearn (the case rows in tests/cases_breadth.py hold the figures).

* KNeighbors*(weights="distance"): skl2onnx weighs by ``1 / max(top_distances, 1e-6)``, but its
  ``top_distances`` are the *negated* distances (its NearestNeighbors converter negates them back),
  so every weight is 1e6: uniform weights (diabetes: predictions off by 122). Here: ``1 / d``, and
  where a neighbour is at distance 0, weight 1 on those neighbours only — sklearn's rule.
* BaggingClassifier over estimators without predict_proba (SVC, say): the vote count sums over the
  wrong axis (probabilities of shape (estimators, classes), labels of length 3 for 60 rows); and
  an estimator whose bootstrap sample missed a class gets columns shifted. Here: sklearn's votes
  (or probabilities) per estimator, each placed in the columns of the classes it knows.
* OneVsOneClassifier: the label is ArgMax's (N, 1) *index* read from a tensor found by a fixed name
  (a merged model fails shape inference: rank 2 vs 1; string or non-0..k-1 labels come out wrong).
  Here: ``classes_[argmax]``, (N,).
* KNNImputer: refused (its graph is off by 0.1 on iris, and does not load once merged).
* OneHotEncoder with infrequent categories (min_frequency / max_categories): refused by skl2onnx
  for one input column, mis-shaped for several (the declared width ignores the grouping). Here:
  each column's one-hot over all its categories, mapped to sklearn's output columns by a 0/1 matrix
  measured with the fitted encoder itself (infrequent group, dropped column, unknown values).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from exporter.convert.emit import Emit

_installed = False


def install() -> None:
    """Patch the converters once (idempotent)."""
    global _installed
    if _installed:
        return
    from skl2onnx.common._registration import register_converter, register_shape_calculator
    from skl2onnx.operator_converters import (
        bagging,
        nearest_neighbours,
        one_hot_encoder,
    )
    from skl2onnx.shape_calculators import one_hot_encoder as ohe_shapes

    nearest_neighbours._convert_nearest_neighbors = _distance_weights(
        nearest_neighbours._convert_nearest_neighbors
    )
    bagging._calculate_proba = _bagging_proba
    register_converter(
        "SklearnOneVsOneClassifier",
        _one_vs_one,
        overwrite=True,
        options={
            "zipmap": [True, False, "columns"],
            "nocl": [True, False],
            "output_class_labels": [False, True],
        },
    )
    original_ohe = one_hot_encoder.convert_sklearn_one_hot_encoder
    original_shape = ohe_shapes.calculate_sklearn_one_hot_encoder_output_shapes

    def convert_ohe(scope: Any, operator: Any, container: Any) -> None:
        if _grouped(operator.raw_operator):
            _one_hot_grouped(scope, operator, container)
        else:
            original_ohe(scope, operator, container)

    def shape_ohe(operator: Any) -> None:
        original_shape(operator)
        op = operator.raw_operator
        if _grouped(op):
            out = operator.outputs[0].type
            operator.outputs[0].type = type(out)([out.shape[0], int(sum(op._n_features_outs))])

    register_converter("SklearnKNNImputer", _refuse_knn_imputer, overwrite=True)
    register_converter("SklearnOneHotEncoder", convert_ohe, overwrite=True)
    register_shape_calculator("SklearnOneHotEncoder", shape_ohe, overwrite=True)
    _installed = True


def _refuse_knn_imputer(scope: Any, operator: Any, container: Any) -> None:
    from exporter.errors import UnsupportedStepError

    raise UnsupportedStepError(
        "KNNImputer: skl2onnx 1.20's graph imputes differently from sklearn (0.1 off on iris) and "
        "fails onnxruntime's type inference once merged: impute with SimpleImputer (or outside the "
        "pipeline) before exporting"
    )


# -- KNN distance weights ----------------------------------------------------------------------


def _distance_weights(original: Any) -> Any:
    def convert(operator: Any, container: Any, k: Any = None, radius: Any = None) -> Any:
        many = original(operator, container, k=k, radius=radius)
        op = operator.raw_operator
        if getattr(op, "weights", None) != "distance" or getattr(op, "radius", None) is not None:
            return many
        from skl2onnx.algebra.onnx_ops import (
            OnnxCast,
            OnnxEqual,
            OnnxNeg,
            OnnxReciprocal,
            OnnxReduceMaxApi18,
            OnnxReduceSumApi11,
            OnnxWhere,
        )

        top_indices, negated, reshaped, _, _, axis = many
        opv = container.target_opset
        dtype = np.float64 if "Double" in type(operator.inputs[0].type).__name__ else np.float32
        proto = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
        distance = OnnxNeg(negated, op_version=opv)
        at_zero = OnnxEqual(distance, np.array([0], dtype=dtype), op_version=opv)
        exact = OnnxCast(at_zero, to=proto, op_version=opv)
        any_zero = OnnxReduceMaxApi18(exact, axes=[1], keepdims=1, op_version=opv)
        weights = OnnxWhere(
            OnnxCast(any_zero, to=TensorProto.BOOL, op_version=opv),
            exact,
            OnnxReciprocal(distance, op_version=opv),
            op_version=opv,
        )
        norm = OnnxReduceSumApi11(weights, axes=[1], keepdims=0, op_version=opv)
        return top_indices, negated, reshaped, weights, norm, axis

    return convert


# -- BaggingClassifier ---------------------------------------------------------------------------


def _bagging_proba(scope: Any, operator: Any, container: Any, model: Any) -> str:
    """sklearn's BaggingClassifier.predict_proba: the mean of the estimators' probabilities, or
    of their one-hot votes when they have no predict_proba; each estimator's columns are the
    classes it saw (``estimator.classes_``, indices into ``model.classes_``)."""
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common.data_types import Int64TensorType

    g = Emit(scope, container)
    X = operator.inputs[0]
    n_classes = len(model.classes_)
    dtype = np.float64 if "Double" in type(X.type).__name__ else np.float32
    proto = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    has_proba = hasattr(model.estimators_[0], "predict_proba")
    n_features = model.n_features_in_
    total = None
    for index, (estimator, features) in enumerate(
        zip(model.estimators_, model.estimators_features_, strict=True)
    ):
        this = scope.declare_local_operator(sklearn_operator_name_map[type(estimator)], estimator)
        if list(features) == list(range(n_features)):
            this.inputs = operator.inputs
        else:
            subset = scope.declare_local_variable(f"fsel_{index}", X.type.__class__())
            g.node(
                "Gather", [X.full_name, g.const(np.asarray(features, np.int64))], out=subset.full_name, axis=1
            )
            this.inputs.append(subset)
        label = scope.declare_local_variable(f"label_{index}", Int64TensorType())
        proba = scope.declare_local_variable(f"proba_{index}", X.type.__class__())
        this.outputs.append(label)
        this.outputs.append(proba)
        known = np.asarray(estimator.classes_).astype(np.int64)
        if has_proba:
            # (N, len(known)) → (N, n_classes): a 0/1 matrix places each column at its class.
            place = np.zeros((len(known), n_classes), dtype=dtype)
            place[np.arange(len(known)), known] = 1
            votes = g.node("MatMul", [proba.full_name, g.const(place)])
        else:
            column = g.node("Reshape", [label.full_name, g.const(np.array([-1, 1], np.int64))])
            hits = g.node("Equal", [column, g.const(np.arange(n_classes, dtype=np.int64).reshape(1, -1))])
            votes = g.cast(hits, proto)
        total = votes if total is None else g.node("Add", [total, votes])
    assert total is not None
    final = operator.outputs[1].full_name
    g.node("Div", [total, g.const(np.array([len(model.estimators_)], dtype=dtype))], out=final)
    return final


# -- OneVsOneClassifier --------------------------------------------------------------------------


def _one_vs_one(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's OneVsOne graph up to the decision function, then ``classes_[argmax]``."""
    from skl2onnx.common.data_types import guess_proto_type
    from skl2onnx.operator_converters.one_vs_one_classifier import _iteration_one_versus

    g = Emit(scope, container)
    op = operator.raw_operator
    proto = guess_proto_type(operator.inputs[0].type)
    proto = TensorProto.DOUBLE if proto == TensorProto.DOUBLE else TensorProto.FLOAT
    cl_type = operator.inputs[0].type.__class__
    labels, scores, shape = [], [], None
    for i, estimator in enumerate(op.estimators_):
        shape, label, score = _iteration_one_versus(
            scope, container, operator.inputs, i, estimator, cl_type, proto, True, prob_shape=shape
        )
        labels.append(label)
        scores.append(score)
    decision = scope.declare_local_operator("SklearnOVRDecisionFunction", op)
    votes = scope.declare_local_variable("label", cl_type())
    g.node("Concat", labels, out=votes.onnx_name, axis=1)
    confidences = scope.declare_local_variable("prob_score", cl_type())
    g.node("Concat", scores, out=confidences.onnx_name, axis=1)
    decision.inputs.extend([votes, confidences])
    ovr = scope.declare_local_variable("ovr_output", cl_type())
    decision.outputs.append(ovr)
    g.node("Identity", [ovr.onnx_name], out=operator.outputs[1].full_name)
    index = g.node("ArgMax", [ovr.onnx_name], axis=1, keepdims=0)
    classes = np.asarray(op.classes_)
    if classes.dtype.kind in "iub":
        table = g.const(classes.astype(np.int64))
    else:
        table = g.const(classes.astype(str).astype(object))
    g.node("Gather", [table, index], out=operator.outputs[0].full_name, axis=0)


# -- OneHotEncoder with infrequent categories ----------------------------------------------------


def _grouped(encoder: Any) -> bool:
    from exporter.steps import has_infrequent_categories

    return has_infrequent_categories(encoder)


def encoder_maps(encoder: Any) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per input column: (its categories, the 0/1 matrix from their one-hot to the column's output
    block, the block an unseen value gets), measured with the fitted encoder's own transform."""
    import warnings

    cats = encoder.categories_
    starts = np.cumsum([0, *encoder._n_features_outs])
    base = [c[0] for c in cats]
    frame = hasattr(encoder, "feature_names_in_")
    numeric = all(np.asarray(c).dtype.kind in "iuf" for c in cats)

    def rows(values: list[list[Any]]) -> Any:
        if frame:
            import pandas as pd

            return pd.DataFrame(values, columns=encoder.feature_names_in_)
        return np.array(values, dtype=float if numeric else object)

    def transform(values: list[list[Any]]) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = encoder.transform(rows(values))
        return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)

    maps = []
    for j, categories in enumerate(cats):
        probe = [list(base) for _ in categories]
        for row, value in zip(probe, categories, strict=True):
            row[j] = value
        block = transform(probe)[:, starts[j] : starts[j + 1]]
        unseen = np.zeros(starts[j + 1] - starts[j])
        if encoder.handle_unknown != "error":
            row = list(base)
            row[j] = _unseen(categories)
            unseen = transform([row])[0, starts[j] : starts[j + 1]]
        maps.append((np.asarray(categories), block, unseen))
    return maps


def _unseen(categories: Any) -> Any:
    values = np.asarray(categories)
    if values.dtype.kind in "iuf":
        return float(np.nanmax(values.astype(float))) + 1.0
    candidate = "\x00unseen"
    while candidate in set(map(str, values)):
        candidate += "_"
    return candidate


def _one_hot_grouped(scope: Any, operator: Any, container: Any) -> None:
    from exporter.errors import UnsupportedStepError

    encoder = operator.raw_operator
    g = Emit(scope, container)
    widths = [
        inp.type.shape[1] if len(operator.inputs) > 1 else len(encoder.categories_) for inp in operator.inputs
    ]
    columns: list[tuple[Any, int]] = []  # (graph input variable, position in it)
    for inp, width in zip(operator.inputs, widths, strict=True):
        columns += [(inp, k) for k in range(int(width))]
    out_type = operator.outputs[0].type
    proto = TensorProto.INT64 if "Int64" in type(out_type).__name__ else TensorProto.FLOAT
    blocks = []
    for (inp, k), (categories, block, unseen) in zip(columns, encoder_maps(encoder), strict=True):
        if any(c is None or (isinstance(c, float) and np.isnan(c)) for c in categories.tolist()):
            raise UnsupportedStepError(
                "OneHotEncoder with infrequent categories and a missing value (NaN/None) among the "
                "categories: impute the column before the encoder"
            )
        value = g.column(inp.full_name, k)
        if "String" in type(inp.type).__name__:
            hot = g.node(
                "OneHotEncoder",
                [value],
                domain="ai.onnx.ml",
                cats_strings=[str(c) for c in categories],
                zeros=1,
            )
            hot = g.node("Reshape", [hot, g.const(np.array([-1, len(categories)], np.int64))])
            hot = g.cast(hot, TensorProto.FLOAT)
        else:
            number = g.cast(value, TensorProto.DOUBLE)
            # A float32 input holds a category as its float32 rounding (0.1 → 0.10000000149).
            single = "Double" not in type(inp.type).__name__
            levels = categories.astype(np.float32 if single else np.float64).astype(np.float64)
            hot = g.node("Equal", [number, g.const(levels.reshape(1, -1))])
            hot = g.cast(hot, TensorProto.FLOAT)
        out = g.node("MatMul", [hot, g.const(block.astype(np.float32))])
        if unseen.any():
            known = g.node("ReduceSum", [hot, g.const(np.array([1], np.int64))], keepdims=1)
            missing = g.node("Sub", [g.const(np.array([1], np.float32)), known])
            out = g.node(
                "Add", [out, g.node("Mul", [missing, g.const(unseen.astype(np.float32).reshape(1, -1))])]
            )
        blocks.append(out)
    merged = blocks[0] if len(blocks) == 1 else g.node("Concat", blocks, axis=1)
    g.node("Cast", [merged], out=operator.outputs[0].full_name, to=proto)
