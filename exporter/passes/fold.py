"""Affine folding: collapse chains of affine ops into one Gemm (or one Mul + Add).

``StandardScaler → PCA → Linear`` is three affine maps in a row: ``(x - m) * s``, ``(· - μ) @ C``,
``· @ W + b``. Their product is one matrix and one bias, computed here in float64 and stored in the
graph's float type, so the merged model does one matmul where it did a Sub, a Mul, a Sub and two
matmuls. Chains cross the sklearn/torch seam; they stop at anything that is not affine (Relu,
Softmax, a Cast that changes precision), and at a value another node or a graph output also reads.

Two rules keep the folded model within float32 rounding of the original:
- A chain's leading offset (``x - mean``) stays a Sub of its own: folding it into the bias would
  subtract two large numbers after the matmul instead of before it (a feature at 2000 ± 10
  would lose three digits).
- Two dense maps fold only when the product costs at most ``MAX_DENSE_GROWTH`` times the
  multiply-adds of the pair: one fused matmul beats two smaller ones up to about that point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from exporter.passes.graph import GraphView, attribute

MAX_DENSE_GROWTH = 2.0
_FLOATS = (TensorProto.FLOAT, TensorProto.DOUBLE)


@dataclass
class Affine:
    """``y = x @ weight + bias`` (dense) or ``y = x * weight + bias`` (diagonal); float64."""

    dense: bool
    weight: np.ndarray  # (d_in, d_out) when dense; scalar or (d,) when diagonal
    bias: np.ndarray  # scalar or (d_out,)
    centring: bool = False  # x + c, x - c, c - x: kept in front of a chain (module docstring)

    def then(self, nxt: Affine) -> Affine:
        """This map followed by ``nxt``."""
        if not self.dense and not nxt.dense:
            return Affine(False, self.weight * nxt.weight, self.bias * nxt.weight + nxt.bias)
        if not self.dense:  # diag then dense: scale the rows of the matrix
            rows = np.broadcast_to(self.weight, (nxt.weight.shape[0],))
            bias = np.broadcast_to(self.bias, (nxt.weight.shape[0],)) @ nxt.weight + nxt.bias
            return Affine(True, rows[:, None] * nxt.weight, bias)
        if not nxt.dense:  # dense then diag: scale the columns
            return Affine(True, self.weight * nxt.weight, self.bias * nxt.weight + nxt.bias)
        return Affine(True, self.weight @ nxt.weight, self.bias @ nxt.weight + nxt.bias)

    def cost(self) -> int:
        return int(self.weight.size) if self.dense else 0


def fold_affine(model: onnx.ModelProto) -> onnx.ModelProto:
    view = GraphView(model)
    maps = {id(n): m for n in model.graph.node if (m := _affine(n, view)) is not None}
    replaced: dict[int, list[onnx.NodeProto]] = {}  # id(last node of a run) → its replacement
    dropped: set[int] = set()
    for chain in _chains(model, view, maps):
        for run in _runs(chain, maps):
            if len(run) < 2:
                continue
            acc = maps[id(run[0])]
            for node in run[1:]:
                acc = acc.then(maps[id(node)])
            new = _emit(acc, _data_input(run[0], view), run[-1].output[0], view)
            if len(new) >= len(run):
                continue
            # The fused node stands for the last one (e.g. a Linear): its name keeps that stage's prefix.
            view.release_node_name(run[-1].name)
            for node in new:
                node.name = view.fresh_node_name(run[-1].name or node.op_type)
            dropped.update(id(n) for n in run[:-1])
            replaced[id(run[-1])] = new
    nodes = []
    for node in model.graph.node:
        if id(node) in dropped:
            continue
        nodes.extend(replaced.get(id(node), [node]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def _chains(model: onnx.ModelProto, view: GraphView, maps: dict[int, Affine]) -> list[list[onnx.NodeProto]]:
    """Maximal sequences of affine nodes, each reading the previous one's single-use output."""

    def successor(node: onnx.NodeProto) -> onnx.NodeProto | None:
        out = node.output[0]
        if not view.single_use(out):
            return None
        (nxt,) = view.consumers[out]
        return nxt if id(nxt) in maps and _data_input(nxt, view) == out else None

    continued = {id(s) for n in model.graph.node if id(n) in maps and (s := successor(n)) is not None}
    chains = []
    for node in model.graph.node:
        if id(node) not in maps or id(node) in continued:
            continue
        chain = [node]
        while (nxt := successor(chain[-1])) is not None:
            chain.append(nxt)
        chains.append(chain)
    return chains


def _runs(chain: list[onnx.NodeProto], maps: dict[int, Affine]) -> list[list[onnx.NodeProto]]:
    """Split a chain into runs worth fusing: the leading offset apart, dense products bounded."""
    runs: list[list[onnx.NodeProto]] = []
    if maps[id(chain[0])].centring:
        runs.append([chain[0]])
        chain = chain[1:]
    current: list[onnx.NodeProto] = []
    acc: Affine | None = None
    for node in chain:
        step = maps[id(node)]
        if acc is not None and acc.dense and step.dense:
            fused = acc.weight.shape[0] * step.weight.shape[1]
            if fused > MAX_DENSE_GROWTH * (acc.cost() + step.cost()):
                runs.append(current)
                current, acc = [], None
        current.append(node)
        acc = step if acc is None else acc.then(step)
    if current:
        runs.append(current)
    return runs


def _affine(node: onnx.NodeProto, view: GraphView) -> Affine | None:
    """The node as an affine map of its one non-constant input, or None."""
    if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
        return None
    op = node.op_type
    if op in ("Add", "Sub", "Mul", "Div"):
        a, b = (view.constant(n) for n in node.input)
        if (a is None) == (b is None):
            return None
        x = node.input[1] if a is not None else node.input[0]
        c = a if a is not None else b
        assert c is not None
        shape = view.shape(x)  # rows x features: a constant then broadcasts along rows only
        if shape is None or len(shape) != 2 or not _same_float(view, x, c) or not _per_feature(c, shape[1]):
            return None
        c = c.astype(np.float64).reshape(-1 if c.size > 1 else ())
        if op == "Add":
            return Affine(False, np.ones(()), c, centring=True)
        if op == "Sub":
            if a is None:
                return Affine(False, np.ones(()), -c, centring=True)
            return Affine(False, -np.ones(()), c, centring=True)  # c - x: a centring too
        if op == "Mul":
            return Affine(False, c, np.zeros(()))
        if a is not None or np.any(c == 0):  # c / x is not affine; x / 0 stays inf as it was
            return None
        return Affine(False, 1.0 / c, np.zeros(()))
    if op in ("MatMul", "Gemm"):
        shape = view.shape(node.input[0])
        w = view.constant(node.input[1])
        if shape is None or len(shape) != 2 or w is None or w.ndim != 2:
            return None
        if not _same_float(view, node.input[0], w) or view.constant(node.input[0]) is not None:
            return None
        if op == "MatMul":
            return Affine(True, w.astype(np.float64), np.zeros(w.shape[1]))
        if attribute(node, "transA", 0):
            return None
        w = w.T if attribute(node, "transB", 0) else w
        weight = float(attribute(node, "alpha", 1.0)) * w.astype(np.float64)
        bias = np.zeros(weight.shape[1])
        if len(node.input) > 2 and node.input[2]:
            c = view.constant(node.input[2])
            # one bias per output column; a (k, 1) column would broadcast along rows instead
            if c is None or c.shape not in ((), (1,), (1, 1), (weight.shape[1],), (1, weight.shape[1])):
                return None
            bias = float(attribute(node, "beta", 1.0)) * np.broadcast_to(c.reshape(-1), bias.shape)
        return Affine(True, weight, bias.astype(np.float64))
    return None


def _same_float(view: GraphView, x: str, c: np.ndarray) -> bool:
    """The data input is float32/float64 and the constant has its type: no hidden promotion."""
    elem = view.elem_type(x)
    return elem in _FLOATS and c.dtype == helper.tensor_dtype_to_np_dtype(elem)


def _per_feature(c: np.ndarray, width: int | None) -> bool:
    """A scalar, or one value per column of a rank-2 input: broadcasts along the rows only."""
    if c.size == 1:
        return c.ndim <= 2
    return width is not None and c.shape in ((width,), (1, width))


def _data_input(node: onnx.NodeProto, view: GraphView) -> str:
    """The non-constant input of an affine node."""
    if node.op_type in ("Add", "Sub", "Mul", "Div") and view.constant(node.input[0]) is not None:
        return node.input[1]
    return node.input[0]


def _emit(acc: Affine, x: str, out: str, view: GraphView) -> list[onnx.NodeProto]:
    """Nodes computing ``acc`` of ``x`` into ``out``, weights in the data's float type."""
    elem = view.elem_type(x)
    assert elem is not None
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    bias = np.asarray(acc.bias, dtype=dtype)
    if acc.dense:
        weight = view.add_initializer("folded_weight", np.asarray(acc.weight, dtype=dtype))
        if not np.any(bias):
            return [helper.make_node("MatMul", [x, weight], [out])]
        b = view.add_initializer("folded_bias", bias.reshape(-1))
        return [helper.make_node("Gemm", [x, weight, b], [out])]
    nodes: list[onnx.NodeProto] = []
    scale = np.asarray(acc.weight, dtype=dtype)
    if np.any(scale != 1):
        scaled = view.fresh(f"{out}_scaled") if np.any(bias) else out
        nodes.append(helper.make_node("Mul", [x, view.add_initializer("folded_scale", scale)], [scaled]))
        x = scaled
    if np.any(bias):
        nodes.append(helper.make_node("Add", [x, view.add_initializer("folded_bias", bias)], [out]))
    return nodes or [helper.make_node("Identity", [x], [out])]
