"""Converters for sklearn steps skl2onnx 1.20 has none for, written from sklearn's own transform.

* ``MissingIndicator``: ``isnan(X)`` (or ``X == missing_values``) on ``features_``, as 0/1 floats
  (sklearn answers bools; the values are the same).
* ``SplineTransformer``: each feature's B-spline basis as piecewise polynomials (solved from the
  fitted ``bsplines_`` on each knot interval), evaluated in float64 inside the graph: the
  knot interval by counting breakpoints, then the powers of the offset. Extrapolation as
  sklearn: constant / linear (its boundary values and slopes on the first and last ``degree``
  splines), continue (the first and last base pieces, as BSpline(extrapolate=True)), periodic
  (the input wrapped into the base period), error (NaN where sklearn raises);
  ``handle_missing="zeros"`` (NaN → a zero block) and ``include_bias=False``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from onnx import TensorProto

from exporter.convert.emit import Emit

_installed = False


def install() -> None:
    """Register both converters with skl2onnx (idempotent)."""
    global _installed
    if _installed:
        return
    from skl2onnx import update_registered_converter
    from sklearn.impute import MissingIndicator
    from sklearn.preprocessing import SplineTransformer

    update_registered_converter(
        MissingIndicator,
        "HybridonnxMissingIndicator",
        _width_shape(lambda op: len(op.features_)),
        _missing_indicator,
    )
    update_registered_converter(
        SplineTransformer, "HybridonnxSplineTransformer", _width_shape(lambda op: op.n_features_out_), _spline
    )
    _installed = True


def _width_shape(width: Any) -> Any:
    def shape(operator: Any) -> None:
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

        kind = DoubleTensorType if _is_double(operator) else FloatTensorType
        operator.outputs[0].type = kind(
            [operator.inputs[0].get_first_dimension(), int(width(operator.raw_operator))]
        )

    return shape


def _is_double(operator: Any) -> bool:
    return "Double" in type(operator.inputs[0].type).__name__


def _out_proto(operator: Any) -> int:
    return TensorProto.DOUBLE if _is_double(operator) else TensorProto.FLOAT


def _missing_indicator(scope: Any, operator: Any, container: Any) -> None:
    from exporter.errors import UnsupportedStepError

    op = operator.raw_operator
    g = Emit(scope, container)
    X = operator.inputs[0].full_name
    missing = op.missing_values
    if isinstance(missing, float) and np.isnan(missing):
        mask = g.node("IsNaN", [X])
    elif isinstance(missing, (int, float, np.number)) and not isinstance(missing, bool):
        dtype = np.float64 if _is_double(operator) else np.float32
        mask = g.node("Equal", [X, g.const(np.array([missing], dtype=dtype))])
    else:
        raise UnsupportedStepError(
            f"MissingIndicator(missing_values={missing!r}): only numeric missing values (NaN or a "
            "number) convert; encode the column as numbers first"
        )
    picked = g.node("Gather", [mask, g.const(np.asarray(op.features_, np.int64))], axis=1)
    g.node("Cast", [picked], out=operator.outputs[0].full_name, to=_out_proto(operator))


def spline_pieces(op: Any, feature: int) -> dict[str, Any]:
    """One feature's basis as polynomial pieces over the base knot range [t_k, t_n]:
    ``breaks`` (m + 1 points), ``coef`` (m, k + 1, S) with value = sum_p coef[i, p] * u ** (k - p),
    u = x - breaks[i]; and the boundary values / slopes sklearn extrapolates with.

    Each piece is the polynomial scipy's BSpline evaluates on that knot interval, sampled at k + 1
    points and solved for exactly (float64). A repeated end knot makes a zero-length first or last
    interval, which scipy still uses below t_k / from t_n on: sampled there, beyond the ends."""
    from scipy.interpolate import BSpline

    spl = op.bsplines_[feature]
    t, k = spl.t, spl.k
    n = len(t) - k - 1
    S = spl.c.shape[1]
    extended = BSpline(t, spl.c, k, extrapolate=True)
    breaks = np.asarray(t[k : n + 1], dtype=np.float64)
    span = float(breaks[-1] - breaks[0]) or 1.0
    coef = np.zeros((len(breaks) - 1, k + 1, S))
    for i, (left, right) in enumerate(itertools.pairwise(breaks)):
        if right > left:
            x = left + (right - left) * (np.arange(k + 1) + 0.5) / (k + 1)
        elif i == len(breaks) - 2:
            x = left + span * np.arange(k + 1)
        elif i == 0:
            x = left - span * np.arange(1, k + 2)
        else:
            continue  # a zero-length interval inside: never where scipy evaluates
        powers = (x - left)[:, None] ** np.arange(k, -1, -1)[None, :]
        coef[i] = np.linalg.solve(powers, extended(x))
    xmin, xmax = t[k], t[n]
    low = np.zeros(S)
    high = np.zeros(S)
    low_slope = np.zeros(S)
    high_slope = np.zeros(S)
    f_min, f_max = spl(xmin), spl(xmax)
    if op.extrapolation == "constant":
        low[: op.degree] = f_min[: op.degree]
        if op.degree:
            high[-op.degree :] = f_max[-op.degree :]
    elif op.extrapolation == "linear":
        d = op.degree + 1 if op.degree <= 1 else op.degree
        fp_min, fp_max = spl(xmin, nu=1), spl(xmax, nu=1)
        for j in range(d):
            low[j], low_slope[j] = f_min[j], fp_min[j]
            high[S - 1 - j], high_slope[S - 1 - j] = f_max[S - 1 - j], fp_max[S - 1 - j]
    return {
        "breaks": breaks,
        "coef": coef,
        "k": k,
        "xmin": float(xmin),
        "xmax": float(xmax),
        "low": low,
        "high": high,
        "low_slope": low_slope,
        "high_slope": high_slope,
    }


def _spline(scope: Any, operator: Any, container: Any) -> None:
    from exporter.errors import UnsupportedStepError

    op = operator.raw_operator
    if getattr(op, "sparse_output", False) and op.extrapolation == "periodic":
        raise UnsupportedStepError(
            "SplineTransformer(extrapolation='periodic', sparse_output=True): use sparse_output=False"
        )
    if op.extrapolation == "linear" and op.degree <= 1 and op.n_features_in_ > 1:
        # sklearn 1.9's transform raises its local `degree` for the first feature and keeps it for
        # the next ones (other knots for their boundaries): not reproduced here.
        raise UnsupportedStepError(
            f"SplineTransformer(extrapolation='linear', degree={op.degree}) on {op.n_features_in_} "
            "features: sklearn's own transform shifts the boundaries of the features after the first; "
            "use degree >= 2, another extrapolation, or one SplineTransformer per feature"
        )
    g = Emit(scope, container)
    X = operator.inputs[0].full_name
    f64 = TensorProto.DOUBLE

    def c(value: Any) -> str:
        return g.const(np.asarray(value, dtype=np.float64))

    blocks = []
    for j in range(op.n_features_in_):
        p = spline_pieces(op, j)
        x = g.cast(g.column(X, j), f64)  # (N, 1)
        nan = None
        if op.handle_missing == "zeros":
            nan = g.node("IsNaN", [x])
            x = g.node("Where", [nan, c([p["xmin"]]), x])
        if op.extrapolation == "periodic":
            period = p["xmax"] - p["xmin"]
            if period > 0:
                shifted = g.node("Sub", [x, c([p["xmin"]])])
                turns = g.node("Floor", [g.node("Div", [shifted, c([period])])])
                x = g.node(
                    "Add", [c([p["xmin"]]), g.node("Sub", [shifted, g.node("Mul", [turns, c([period])])])]
                )
            else:
                x = g.node("Mul", [x, c([0.0])])
        at = x
        if op.extrapolation in ("constant", "linear", "error"):
            at = g.node("Clip", [x, c(p["xmin"]), c(p["xmax"])])
        # The piece: how many inner breakpoints lie at or below x (scipy's interval search; a
        # repeated knot skips its zero-length piece). One piece only: an infinite breakpoint.
        inner = p["breaks"][1:-1] if len(p["breaks"]) > 2 else np.array([np.inf])
        passed = g.cast(g.node("GreaterOrEqual", [at, c(inner.reshape(1, -1))]), TensorProto.INT64)
        index = g.node("ReduceSum", [passed, g.const(np.array([1], np.int64))], keepdims=0)
        last = g.const(np.array(len(p["breaks"]) - 2, np.int64))
        index = g.node("Clip", [index, g.const(np.array(0, np.int64)), last])
        left = g.node("Gather", [c(p["breaks"][:-1]), index], axis=0)  # (N,)
        u = g.node("Sub", [at, g.node("Unsqueeze", [left, g.const(np.array([1], np.int64))])])  # (N, 1)
        powers = g.node("Pow", [u, c(np.arange(p["k"], -1, -1, dtype=np.float64).reshape(1, -1))])  # (N, k+1)
        table = g.node("Gather", [c(p["coef"]), index], axis=0)  # (N, k+1, S)
        terms = g.node("Mul", [table, g.node("Unsqueeze", [powers, g.const(np.array([2], np.int64))])])
        value = g.node("ReduceSum", [terms, g.const(np.array([1], np.int64))], keepdims=0)  # (N, S)
        if op.extrapolation in ("constant", "linear", "error"):
            below = g.node("Less", [x, c([p["xmin"]])])
            above = g.node("Greater", [x, c([p["xmax"]])])
            if op.extrapolation == "error":  # sklearn raises there; BSpline itself answers NaN
                low = high = c(np.full((1, p["coef"].shape[2]), np.nan))
            else:
                low = g.node(
                    "Add",
                    [
                        c(p["low"].reshape(1, -1)),
                        g.node("Mul", [g.node("Sub", [x, c([p["xmin"]])]), c(p["low_slope"].reshape(1, -1))]),
                    ],
                )
                high = g.node(
                    "Add",
                    [
                        c(p["high"].reshape(1, -1)),
                        g.node(
                            "Mul", [g.node("Sub", [x, c([p["xmax"]])]), c(p["high_slope"].reshape(1, -1))]
                        ),
                    ],
                )
            value = g.node("Where", [above, high, g.node("Where", [below, low, value])])
        if nan is not None:
            value = g.node("Where", [nan, c([0.0]), value])
        if not op.include_bias:
            width = p["coef"].shape[2] - 1
            value = g.node("Gather", [value, g.const(np.arange(width, dtype=np.int64))], axis=1)
        blocks.append(value)
    merged = blocks[0] if len(blocks) == 1 else g.node("Concat", blocks, axis=1)
    g.node("Cast", [merged], out=operator.outputs[0].full_name, to=_out_proto(operator))
