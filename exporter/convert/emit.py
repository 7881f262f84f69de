"""A small writer for the ONNX nodes our own skl2onnx converters add (text.py, repairs.py, added.py):
unique names from skl2onnx's scope, constants as initializers, one call per node."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

_PROTO = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float64): TensorProto.DOUBLE,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.bool_): TensorProto.BOOL,
}


class Emit:
    """Nodes and constants written into one skl2onnx container, named uniquely in its scope."""

    def __init__(self, scope: Any, container: Any) -> None:
        self.scope = scope
        self.container = container

    def const(self, value: Any, dtype: Any = None, name: str = "cst") -> str:
        """An initializer holding ``value`` (a numpy array, a number, or a list of strings)."""
        unique = self.scope.get_unique_variable_name(name)
        array = np.asarray(value, dtype=dtype)
        if array.dtype.kind in "OUS":
            data = [str(s).encode("utf-8") for s in array.ravel()]
            self.container.add_initializer(unique, TensorProto.STRING, list(array.shape), data)
        else:
            proto = _PROTO[array.dtype]
            self.container.add_initializer(unique, proto, list(array.shape), array.ravel().tolist())
        return unique

    def node(self, op: str, inputs: list[str], n_out: int = 1, out: str | None = None, **attrs: Any) -> Any:
        """Add one node; return its output name (or names when ``n_out`` > 1). ``out`` names the
        (single) output instead of a fresh name. Attributes ``domain``/``version`` set the op's domain."""
        domain = attrs.pop("domain", "")
        version = attrs.pop("version", None)
        outputs = (
            [out]
            if out is not None
            else [self.scope.get_unique_variable_name(op.lower()) for _ in range(n_out)]
        )
        extra = {"op_domain": domain} if domain else {}
        if version is not None:
            extra["op_version"] = version
        self.container.add_node(
            op, inputs, outputs, name=self.scope.get_unique_operator_name(op), **extra, **attrs
        )
        return outputs[0] if n_out == 1 else outputs

    def cast(self, x: str, to: int) -> str:
        return self.node("Cast", [x], to=to)

    def column(self, x: str, index: int) -> str:
        """Column ``index`` of a 2-D tensor, kept 2-D: (N, 1)."""
        return self.node("Gather", [x, self.const(np.array([index], dtype=np.int64))], axis=1)

    def shifted(self, flags: str, n_rows: str, step: int) -> str:
        """Boolean (N, T) ``flags`` moved one column right (step 1: each cell sees its left
        neighbour) or left (step -1), with False entering at the edge."""
        edge = self.node("ConstantOfShape", [n_rows], value=_bool_tensor(False))
        axis = self.const(np.array([1], np.int64))
        start, end = (0, -1) if step == 1 else (1, 2**62)
        body = self.node(
            "Slice",
            [flags, self.const(np.array([start], np.int64)), self.const(np.array([end], np.int64)), axis],
        )
        return self.node("Concat", [edge, body] if step == 1 else [body, edge], axis=1)


def _bool_tensor(value: bool) -> TensorProto:
    from onnx import helper

    return helper.make_tensor("value", TensorProto.BOOL, [1], [value])
