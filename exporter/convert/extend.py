"""Extension hooks: converters for the user's own sklearn-style steps, and FunctionTransformer
functions written as ONNX.

Both go through skl2onnx's registration (so the step converts inside any sklearn stage, nested in
ColumnTransformers and FeatureUnions too) and through our registry (so the step is recognised).
A converter is written with skl2onnx's algebra: a function ``(X, opset) -> OnnxOperator``.

    from skl2onnx.algebra.onnx_ops import OnnxMul
    exporter.register_sklearn_converter(
        Doubler, lambda X, opset, step: OnnxMul(X, np.array([2], dtype=np.float32), op_version=opset)
    )
    exporter.register_function(
        np.cbrt, lambda X, opset: OnnxPow(X, np.array([1 / 3], dtype=np.float32), op_version=opset)
    )
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from exporter.errors import RegistrationError, UnsupportedStepError

# (X, opset) → an skl2onnx OnnxOperator computing func(X) elementwise or row-wise.
FunctionBuilder = Callable[[Any, int], Any]
# (X, opset, fitted step) → an OnnxOperator computing step.transform(X).
StepBuilder = Callable[[Any, int, Any], Any]

_FUNCTIONS: dict[Any, FunctionBuilder] = {}
_installed = False


def _builtin_functions() -> dict[Any, FunctionBuilder]:
    from skl2onnx.algebra.onnx_ops import OnnxAbs, OnnxAdd, OnnxExp, OnnxLog, OnnxSqrt, OnnxSub

    def one(X: Any) -> Any:
        return np.array([1], dtype=_dtype_of(X))

    return {
        np.log1p: lambda X, v: OnnxLog(OnnxAdd(X, one(X), op_version=v), op_version=v),
        np.expm1: lambda X, v: OnnxSub(OnnxExp(X, op_version=v), one(X), op_version=v),
        np.log: lambda X, v: OnnxLog(X, op_version=v),
        np.exp: lambda X, v: OnnxExp(X, op_version=v),
        np.sqrt: lambda X, v: OnnxSqrt(X, op_version=v),
        np.abs: lambda X, v: OnnxAbs(X, op_version=v),
    }


def add_function(func: Any, builder: FunctionBuilder, *, replace: bool = False) -> None:
    """``FunctionTransformer(func=func)`` converts as ``builder(X, opset)`` (exporter.register_function)."""
    install()
    if func in _FUNCTIONS and not replace:
        raise RegistrationError(
            f"{_name(func)} already has an ONNX expression; pass replace=True to override it"
        )
    _FUNCTIONS[func] = builder


def function_expression(func: Any) -> FunctionBuilder | None:
    """The ONNX expression registered for ``func`` (target.py inverts a TransformedTargetRegressor's
    ``inverse_func`` with it)."""
    return _FUNCTIONS.get(func)


def install_step_converter(cls: type, builder: StepBuilder) -> None:
    """skl2onnx converts ``cls`` with ``builder(X, opset, step)`` (exporter.register_sklearn_converter);
    the output width is measured on one row of zeros."""
    from skl2onnx import update_registered_converter

    def convert(scope: Any, operator: Any, container: Any) -> Any:
        _emit(
            builder(operator.inputs[0], container.target_opset, operator.raw_operator),
            operator,
            scope,
            container,
        )

    update_registered_converter(cls, f"hybridonnx_{cls.__qualname__}", _measured_shape, convert)


def remove_step_converter(cls: type) -> None:
    from skl2onnx._supported_operators import sklearn_operator_name_map

    sklearn_operator_name_map.pop(cls, None)


def install() -> None:
    """Replace skl2onnx's FunctionTransformer converter (func=None only) with one that also knows
    the registered functions. Idempotent; called by ``registration.load_builtin``."""
    global _installed
    if _installed:
        return
    from skl2onnx import update_registered_converter
    from sklearn.preprocessing import FunctionTransformer

    for func, builder in _builtin_functions().items():
        _FUNCTIONS.setdefault(func, builder)
    update_registered_converter(
        FunctionTransformer, "SklearnFunctionTransformer", _measured_shape, _convert_function_transformer
    )
    _installed = True


def _convert_function_transformer(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxIdentity

    step = operator.raw_operator
    X = operator.inputs[0]
    if step.func is None:
        expression = OnnxIdentity(X, op_version=container.target_opset)
    else:
        builder = _FUNCTIONS.get(step.func)
        if builder is None or step.kw_args:
            extra = ", kw_args=..." if step.kw_args else ""
            raise UnsupportedStepError(
                f"FunctionTransformer(func={_name(step.func)}{extra}) has no ONNX expression; declare one: "
                "exporter.register_function(func, lambda X, opset: OnnxOp(...)) (README 'Extending')"
            )
        expression = builder(X, container.target_opset)
    _emit(expression, operator, scope, container)


def _emit(expression: Any, operator: Any, scope: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxIdentity

    out = OnnxIdentity(expression, op_version=container.target_opset, output_names=operator.outputs[:1])
    out.add_to(scope, container)


def _measured_shape(operator: Any) -> None:
    """Output = input type with the width the fitted step gives on one row of zeros."""
    X = operator.inputs[0]
    width = X.type.shape[1] if len(X.type.shape) > 1 else None
    if isinstance(width, int):
        try:
            width = np.asarray(operator.raw_operator.transform(np.zeros((1, width)))).shape[1]
        except Exception:  # the conversion and parity will report a real problem
            width = None
    operator.outputs[0].type = X.type.__class__([None, width])


def _dtype_of(X: Any) -> Any:
    from skl2onnx.common.data_types import DoubleTensorType

    # An algebra expression (TransformedTargetRegressor's prediction) carries no type: float32,
    # the dtype every numeric input has unless --dtype float64.
    return np.float64 if isinstance(getattr(X, "type", None), DoubleTensorType) else np.float32


def _name(func: Any) -> str:
    module = getattr(func, "__module__", None) or ""
    name = getattr(func, "__name__", repr(func))
    return f"{'np' if module == 'numpy' else module}.{name}" if module else name
