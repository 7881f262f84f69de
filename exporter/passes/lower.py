"""Lowering: rewrite ``ai.onnx.ml`` ops that have an exact standard-ONNX equivalent.

onnxruntime implements the ``ai.onnx.ml`` domain on the CPU provider only, so one ``Scaler`` in
front of a network makes a GPU session copy every batch to the host and back. Each rewrite below
reproduces onnxruntime's own kernel (same float32 arithmetic, same zero-norm and tie rules); the
pass is followed by a parity check like every pass. Ops without an equivalent (trees, SVMs,
string encoders) stay, and ``cpu_only_nodes`` reports them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper

from exporter.compose import copy_model
from exporter.passes.graph import GraphView, attribute, is_ml

F32 = TensorProto.FLOAT
Rewrite = Callable[[onnx.NodeProto, GraphView], list[onnx.NodeProto] | None]

# Standard ops onnxruntime has no CUDA kernel for (string processing).
CPU_ONLY_STANDARD = {"StringNormalizer", "TfIdfVectorizer", "RegexFullMatch", "StringSplit", "StringConcat"}


def lower(model: onnx.ModelProto) -> onnx.ModelProto:
    """All or nothing: the lowered graph when it leaves nothing that makes a GPU session hand
    work back to the CPU, else the model unchanged. A partial lowering buys no GPU speed (the
    copies stay) and costs CPU time: the fused ml kernels beat their standard-op spelling on the
    CPU (mixed DataFrame pipeline, 65,536 rows: 17.8 ms with Scaler/Imputer, 21.1 ms lowered)."""
    original = copy_model(model)
    # onnx has no shape inference for most ml ops: what follows a Scaler has no known shape until
    # the Scaler is lowered. Sweep again, with shapes inferred, while sweeps still lower something.
    for _ in range(MAX_SWEEPS):
        if not _sweep(model):
            break
        del model.graph.value_info[:]
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    return model if not bouncing_nodes(model) else original


def bouncing_nodes(model: onnx.ModelProto) -> dict[str, int]:
    """CPU-only nodes, less a string-label Gather that writes a graph output: it sits at the very
    end, so on a GPU it costs one copy of N int64 indices to the host, not a round trip of the
    features (onnxruntime still runs it when only ``label_index`` is asked for: it executes the
    whole graph whatever the requested outputs, checked with a failing unrequested branch)."""
    outputs = {o.name for o in model.graph.output}
    found = cpu_only_nodes(model)
    label_gathers = sum(1 for n in model.graph.node if n.op_type == "Gather" and n.output[0] in outputs)
    if found.get("Gather", 0) and label_gathers:
        found["Gather"] -= min(found["Gather"], label_gathers)
    return {op: n for op, n in found.items() if n}


MAX_SWEEPS = 4


def _sweep(model: onnx.ModelProto) -> int:
    view = GraphView(model)
    nodes: list[onnx.NodeProto] = []
    lowered = 0
    for node in model.graph.node:
        rewrite = REWRITES.get(node.op_type) if is_ml(node) else None
        replacement = rewrite(node, view) if rewrite is not None else None
        if replacement is None:
            nodes.append(node)
            continue
        for new in replacement:  # named after the original: names tell the stage
            new.name = view.fresh_node_name(node.name or node.op_type)
        nodes.extend(replacement)
        lowered += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return lowered


def cpu_only_nodes(model: onnx.ModelProto) -> dict[str, int]:
    """Nodes a GPU provider cannot run, by op type: ``ai.onnx.ml`` and other non-standard domains
    onnxruntime implements on CPU only, string ops, and any node reading or writing strings."""
    view = GraphView(model)
    found: Counter[str] = Counter()
    for node in model.graph.node:
        strings = any(view.elem_type(n) == TensorProto.STRING for n in [*node.input, *node.output] if n)
        if node.domain not in ("", "ai.onnx") or node.op_type in CPU_ONLY_STANDARD or strings:
            found[f"{node.domain + '.' if node.domain else ''}{node.op_type}"] += 1
    return dict(sorted(found.items()))


# -- rewrites: each returns the replacement nodes (same output names), or None to keep the node ----


def _as_float(node: onnx.NodeProto, view: GraphView, nodes: list[onnx.NodeProto]) -> str | None:
    """The node's first input when it is a float32 matrix, or None: for other input types these
    kernels compute in ways (double arithmetic, integer promotion) not worth copying here, and a
    Gemm needs rank 2."""
    name = node.input[0]
    shape = view.shape(name)
    return name if view.elem_type(name) == F32 and shape is not None and len(shape) == 2 else None


def _scaler(node: onnx.NodeProto, view: GraphView) -> list[onnx.NodeProto] | None:
    """``(x - offset) * scale`` in the input's float type (integers: float32), output float32."""
    x, (out,) = node.input[0], node.output
    elem, shape = view.elem_type(x), view.shape(x)
    if elem not in (F32, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.INT32):
        return None
    if shape is None or len(shape) != 2:  # per-column constants are defined on matrices
        return None
    nodes: list[onnx.NodeProto] = []
    if elem in (TensorProto.INT64, TensorProto.INT32):
        nodes.append(helper.make_node("Cast", [x], [cast := view.fresh(f"{x}_f32")], to=F32))
        x, elem = cast, F32
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    # float32 attributes widen exactly to double; the kernel subtracts and scales in double then.
    offset = np.asarray(attribute(node, "offset", [0.0]), dtype=np.float32).astype(dtype)
    scale = np.asarray(attribute(node, "scale", [1.0]), dtype=np.float32).astype(dtype)
    result = out if elem == F32 else view.fresh(f"{out}_f64")
    if np.any(offset != 0):
        centred = view.fresh(f"{out}_centred") if np.any(scale != 1) else result
        nodes.append(helper.make_node("Sub", [x, view.add_initializer("offset", offset)], [centred]))
        x = centred
    if np.any(scale != 1):
        nodes.append(helper.make_node("Mul", [x, view.add_initializer("scale", scale)], [result]))
    if not nodes or nodes[-1].output[0] != result:
        nodes.append(helper.make_node("Identity", [x], [result]))
    if result != out:
        nodes.append(helper.make_node("Cast", [result], [out], to=F32))
    return nodes


def _normalizer(node: onnx.NodeProto, view: GraphView) -> list[onnx.NodeProto] | None:
    norm = attribute(node, "norm", "MAX")
    reduce = {"MAX": "ReduceMax", "L1": "ReduceL1", "L2": "ReduceL2"}.get(norm)
    nodes: list[onnx.NodeProto] = []
    x = _as_float(node, view, nodes)
    shape = view.shape(node.input[0])
    if reduce is None or x is None or shape is None or len(shape) != 2:
        return None
    (out,) = node.output
    n, zero, safe = view.fresh(f"{out}_norm"), view.fresh(f"{out}_zero"), view.fresh(f"{out}_safe")
    nodes += [
        _reduce_last_axis(reduce, x, n, view),
        helper.make_node("Equal", [n, view.add_initializer("zero", np.float32(0))], [zero]),
        # onnxruntime leaves a row whose norm is 0 as it is: divide it by 1.
        helper.make_node("Where", [zero, view.add_initializer("one", np.float32(1)), n], [safe]),
        helper.make_node("Div", [x, safe], [out]),
    ]
    return nodes


def _reduce_last_axis(op: str, x: str, out: str, view: GraphView) -> onnx.NodeProto:
    opset = next((o.version for o in view.model.opset_import if o.domain in ("", "ai.onnx")), 18)
    if opset >= 18:  # axes moved from an attribute to an input in opset 18
        axes = view.add_initializer("axes", np.array([1], dtype=np.int64))
        return helper.make_node(op, [x, axes], [out], keepdims=1)
    return helper.make_node(op, [x], [out], axes=[1], keepdims=1)


def _binarizer(node: onnx.NodeProto, view: GraphView) -> list[onnx.NodeProto] | None:
    """``x > threshold`` as 0/1. One difference: onnxruntime's kernel fails on NaN, this gives 0
    (NaN never reaches it: the runtime refuses NaN inputs unless an earlier step imputes)."""
    elem = view.elem_type(node.input[0])
    if elem not in (F32, TensorProto.DOUBLE):
        return None
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    threshold = view.add_initializer("threshold", np.asarray(attribute(node, "threshold", 0.0), dtype=dtype))
    above = view.fresh(f"{node.output[0]}_above")
    return [
        helper.make_node("Greater", [node.input[0], threshold], [above]),
        helper.make_node("Cast", [above], [node.output[0]], to=elem),
    ]


def _imputer(node: onnx.NodeProto, view: GraphView) -> list[onnx.NodeProto] | None:
    elem = view.elem_type(node.input[0])
    fill = attribute(node, "imputed_value_floats")
    if elem not in (F32, TensorProto.DOUBLE) or not fill:
        return None
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    replaced = float(attribute(node, "replaced_value_float", 0.0))
    x, (out,) = node.input[0], node.output
    mask = view.fresh(f"{out}_missing")
    if np.isnan(replaced):
        test = helper.make_node("IsNaN", [x], [mask])
    else:
        test = helper.make_node("Equal", [x, view.add_initializer("missing", dtype.type(replaced))], [mask])
    width = view.width(x)
    if len(fill) != 1 and len(fill) != width:
        fill = fill[:1]  # onnxruntime uses the first value for every column unless there is one per column
    values = view.add_initializer("fill", np.asarray(fill, dtype=dtype))
    return [test, helper.make_node("Where", [mask, values, x], [out])]


def _linear_regressor(node: onnx.NodeProto, view: GraphView) -> list[onnx.NodeProto] | None:
    if attribute(node, "post_transform", "NONE") != "NONE":
        return None
    nodes: list[onnx.NodeProto] = []
    x = _as_float(node, view, nodes)
    if x is None:
        return None
    targets = int(attribute(node, "targets", 1))
    weights = np.asarray(attribute(node, "coefficients"), dtype=np.float32).reshape(targets, -1)
    given = attribute(node, "intercepts", []) or []
    # onnxruntime adds intercepts only when there is one per target
    intercepts = np.asarray(given if len(given) == targets else np.zeros(targets), dtype=np.float32)
    inputs = [x, view.add_initializer("coef", weights), view.add_initializer("intercept", intercepts)]
    nodes.append(helper.make_node("Gemm", inputs, [node.output[0]], transB=1))
    return nodes


def _linear_classifier(node: onnx.NodeProto, view: GraphView) -> list[onnx.NodeProto] | None:
    """Rows ≥ 2 only: with a single row onnxruntime builds the second column and picks labels by
    the sign of the score, rules this rewrite does not copy."""
    post = attribute(node, "post_transform", "NONE")
    ints, strings = attribute(node, "classlabels_ints"), attribute(node, "classlabels_strings")
    labels = np.asarray(ints, dtype=np.int64) if ints else np.asarray([s.decode() for s in strings or []])
    intercepts = attribute(node, "intercepts")
    rows = len(intercepts) if intercepts else len(labels)
    if post not in ("NONE", "SOFTMAX", "LOGISTIC") or rows < 2 or rows != len(labels):
        return None
    nodes: list[onnx.NodeProto] = []
    x = _as_float(node, view, nodes)
    if x is None:
        return None
    weights = np.asarray(attribute(node, "coefficients"), dtype=np.float32).reshape(rows, -1)
    bias = np.asarray(intercepts or np.zeros(rows), dtype=np.float32)
    label_out, score_out = node.output[0], node.output[1] if len(node.output) > 1 else ""
    scores = view.fresh("scores") if post != "NONE" or not score_out else score_out
    inputs = [x, view.add_initializer("coef", weights), view.add_initializer("intercept", bias)]
    nodes.append(helper.make_node("Gemm", inputs, [scores], transB=1))
    if score_out and post != "NONE":
        if post == "SOFTMAX":
            nodes.append(helper.make_node("Softmax", [scores], [score_out], axis=1))
        else:
            nodes.append(helper.make_node("Sigmoid", [scores], [score_out]))
    if label_out:  # onnxruntime picks the first of tied maxima of the raw scores, as ArgMax does
        index = view.fresh("index")
        nodes.append(helper.make_node("ArgMax", [scores], [index], axis=1, keepdims=0))
        label_values = view.add_initializer("classlabels", labels.astype(object) if strings else labels)
        nodes.append(helper.make_node("Gather", [label_values, index], [label_out], axis=0))
    return nodes


def _array_feature_extractor(node: onnx.NodeProto, view: GraphView) -> list[onnx.NodeProto] | None:
    indices = view.constant(node.input[1])
    shape = view.shape(node.input[0])
    if indices is None or shape is None or len(shape) != 2:
        return None
    flat = view.add_initializer("indices", indices.astype(np.int64).reshape(-1))
    return [helper.make_node("Gather", [node.input[0], flat], [node.output[0]], axis=1)]


REWRITES: dict[str, Rewrite] = {
    "Scaler": _scaler,
    "Normalizer": _normalizer,
    "Binarizer": _binarizer,
    "Imputer": _imputer,
    "LinearRegressor": _linear_regressor,
    "LinearClassifier": _linear_classifier,
    "ArrayFeatureExtractor": _array_feature_extractor,
}
