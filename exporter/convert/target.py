"""TransformedTargetRegressor: the regressor's prediction mapped back through the target transform.

skl2onnx has no converter for it, and it is the usual way to scale ``y`` for a net
(``TransformedTargetRegressor(regressor=Pipeline([scaler, net]), transformer=StandardScaler())``).
``predict`` is ``transformer_.inverse_transform(regressor_.predict(X))``: the regressor converts
through skl2onnx's topology (a torch leaf inside it included, see nested.py), the inverse is
written here for the transforms whose inverse is exact in ONNX — the affine scalers, and
``func``/``inverse_func`` pairs whose inverse has a registered expression (``np.expm1``, ``np.exp``,
... see extend.py). Anything else is refused by name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exporter.convert.extend import function_expression
from exporter.errors import UnsupportedStepError

_installed = False


def install() -> None:
    """Register the converter with skl2onnx (idempotent; called by ``registration.load_builtin``)."""
    global _installed
    if _installed:
        return
    from skl2onnx import update_registered_converter
    from sklearn.compose import TransformedTargetRegressor

    update_registered_converter(
        TransformedTargetRegressor, "HybridonnxTransformedTargetRegressor", _shape, _convert
    )
    _installed = True


def _shape(operator: Any) -> None:
    X = operator.inputs[0]
    width = getattr(operator.raw_operator, "_training_dim", 1)
    operator.outputs[0].type = X.type.__class__([X.type.shape[0], 1 if width == 1 else None])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
    from skl2onnx.algebra.onnx_ops import OnnxIdentity

    model = operator.raw_operator
    opset = container.target_opset
    X = operator.inputs[0]
    dtype = np.float64 if type(X.type).__name__ == "DoubleTensorType" else np.float32
    y = OnnxSubEstimator(model.regressor_, X, op_version=opset)
    inverse = inverse_expression(model.transformer_, y, opset, dtype)
    OnnxIdentity(inverse, op_version=opset, output_names=operator.outputs[:1]).add_to(scope, container)


def inverse_expression(transformer: Any, y: Any, opset: int, dtype: Any) -> Any:
    """``transformer.inverse_transform(y)`` as an skl2onnx algebra expression, or refuse."""
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxDiv, OnnxIdentity, OnnxMul, OnnxSub

    kind = type(transformer).__name__

    def const(value: Any) -> np.ndarray:
        return np.asarray(value, dtype=dtype).reshape(1, -1)

    if kind == "StandardScaler":
        out = y if transformer.scale_ is None else OnnxMul(y, const(transformer.scale_), op_version=opset)
        return out if transformer.mean_ is None else OnnxAdd(out, const(transformer.mean_), op_version=opset)
    if kind == "MinMaxScaler":
        if transformer.clip:
            raise UnsupportedStepError(_refusal(transformer, "MinMaxScaler(clip=True)"))
        shifted = OnnxSub(y, const(transformer.min_), op_version=opset)
        return OnnxDiv(shifted, const(transformer.scale_), op_version=opset)
    if kind == "MaxAbsScaler":
        return OnnxMul(y, const(transformer.scale_), op_version=opset)
    if kind == "RobustScaler":
        out = y if transformer.scale_ is None else OnnxMul(y, const(transformer.scale_), op_version=opset)
        return (
            out if transformer.center_ is None else OnnxAdd(out, const(transformer.center_), op_version=opset)
        )
    if kind == "FunctionTransformer":
        if transformer.inverse_func is None:
            return OnnxIdentity(y, op_version=opset)
        builder = function_expression(transformer.inverse_func)
        if builder is None or transformer.inv_kw_args:
            name = getattr(transformer.inverse_func, "__name__", repr(transformer.inverse_func))
            raise UnsupportedStepError(
                _refusal(transformer, f"inverse_func={name}")
                + "; or declare its ONNX form: exporter.register_function(func, builder)"
            )
        return builder(y, opset)
    raise UnsupportedStepError(_refusal(transformer, kind))


def _refusal(transformer: Any, what: str) -> str:
    return (
        f"TransformedTargetRegressor with transformer {what}: its inverse has no exact ONNX form here; "
        "use StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler or func/inverse_func such as "
        "np.log1p/np.expm1"
    )
