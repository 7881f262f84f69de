"""Torch-backed steps nested inside sklearn containers, converted by skl2onnx's own converters.

skl2onnx already converts the containers (Pipeline, ColumnTransformer, FeatureUnion, Voting,
Stacking, CalibratedClassifierCV, MultiOutput, OneVsRest, Bagging) and calls each child's converter
through its topology. A torch leaf joins that topology as a custom operator, the route skl2onnx
documents for custom estimators: a parser that declares ``label`` + ``probabilities`` for
classifiers (one output otherwise), a shape calculator from the measured output width, and a
converter that inlines the leaf's own graph — its module through torch.onnx plus its head — with
``skl2onnx.helpers.add_onnx_graph``.

A leaf's graph needs the rows the leaf really receives in the tree (to trace its module and match
its head to its own predict/predict_proba): ``recorded_inputs`` runs the container natively with
the leaves' methods wrapped and keeps the first batch each one sees.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from exporter.errors import ConversionError, UnsupportedStepError
from exporter.registry import torch_adapter
from exporter.steps import as_dense, fitted_children

# Starts the name of every node of a nested leaf's network (not its head) in the merged graph,
# after the stage's prefix: edge/quantize.py finds the MatMul/Gemm nodes to quantise by it.
LEAF_NODE_MARK = "torchleaf__"

# The methods a container may call on a child: wrapped while recording.
_RECORDED = ("predict", "predict_proba", "transform", "decision_function")


@dataclass(frozen=True)
class Leaf:
    """A torch-backed estimator somewhere inside a container, with the rows it received."""

    path: str  # e.g. "votingclassifier/estimators_[1]"
    step: Any
    adapter: Any  # registry.TorchAdapter
    rows: Any  # what the leaf received natively on the sample


def nested_leaves(estimator: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, step, adapter) of every torch-backed estimator below ``estimator`` (not itself)."""
    out: list[tuple[str, Any, Any]] = []
    for name, child in fitted_children(estimator):
        where = f"{path}/{name}" if path else name
        adapter = torch_adapter(child)
        if adapter is not None:
            out.append((where, child, adapter))
        else:
            out += nested_leaves(child, where)
    return out


@contextmanager
def recorded_inputs(steps: list[Any]) -> Iterator[dict[int, Any]]:
    """Wrap each step's methods (instance attributes shadow the class's; the user's objects are
    restored on exit) and collect the first rows each one receives, keyed by ``id(step)``."""
    seen: dict[int, Any] = {}
    patched: list[tuple[Any, str]] = []

    def wrap(step: Any, original: Any) -> Any:
        def recording(X: Any, *args: Any, **kwargs: Any) -> Any:
            seen.setdefault(id(step), X)
            return original(X, *args, **kwargs)

        return recording

    try:
        for step in steps:
            for method in _RECORDED:
                original = getattr(step, method, None)
                if callable(original) and method not in vars(step):
                    vars(step)[method] = wrap(step, original)  # bypasses skorch's __setattr__
                    patched.append((step, method))
        yield seen
    finally:
        for step, method in patched:
            vars(step).pop(method, None)


def find_leaves(estimator: Any, rows: Any, methods: list[str], label: str) -> list[Leaf]:
    """The torch leaves below ``estimator`` with the rows each receives when the container's
    ``methods`` run on ``rows``."""
    found = nested_leaves(estimator)
    if not found:
        return []
    with recorded_inputs([step for _, step, _ in found]) as seen:
        for method in methods:
            getattr(estimator, method)(rows)
    leaves = []
    for path, step, adapter in found:
        if id(step) not in seen:
            raise UnsupportedStepError(
                f"{label}: the torch-backed {type(step).__name__} at {path} is never called by the "
                "container's predict/transform on the sample, so it cannot be traced; "
                "check that it is the fitted estimator the container uses"
            )
        leaves.append(Leaf(path, step, adapter, seen[id(step)]))
    return leaves


# -- skl2onnx registration ----------------------------------------------------------------------

_ACTIVE: dict[int, Leaf] = {}  # id(step) → leaf, for the conversion in progress
_REGISTERED: set[type] = set()


@contextmanager
def active(leaves: list[Leaf]) -> Iterator[None]:
    """Make the leaves' graphs available to skl2onnx's topology for one conversion."""
    for leaf in leaves:
        _register(type(leaf.step), _leaf_task(leaf.step, leaf.adapter))
        _ACTIVE[id(leaf.step)] = leaf
    try:
        yield
    finally:
        for leaf in leaves:
            _ACTIVE.pop(id(leaf.step), None)
        # The traced graphs hold the user's estimators and sample rows: not past this conversion.
        done = {id(leaf) for leaf in leaves}
        for key in [key for key, (leaf, _) in _GRAPHS.items() if id(leaf) in done]:
            del _GRAPHS[key]


def registered_leaf_types() -> frozenset[type]:
    """Torch-backed types registered with skl2onnx by this module (so far in this process)."""
    return frozenset(_REGISTERED)


def _leaf_task(step: Any, adapter: Any) -> str:
    declared = adapter.head_for(step).task
    if declared != "auto":
        return str(declared)
    if hasattr(step, "classes_"):
        return "classifier"
    return "regressor" if hasattr(step, "predict") else "transformer"


def _register(cls: type, task: str) -> None:
    if cls in _REGISTERED:
        return
    from skl2onnx import update_registered_converter

    alias = f"Hybridonnx{cls.__module__.replace('.', '_')}_{cls.__qualname__}"
    if task == "classifier":
        update_registered_converter(
            cls,
            alias,
            _shape,
            _convert,
            parser=_parse_classifier,
            options={"zipmap": [False, True], "nocl": [False, True]},
        )
    else:
        update_registered_converter(cls, alias, _shape, _convert)
    _REGISTERED.add(cls)


def _leaf(operator: Any) -> Leaf:
    leaf = _ACTIVE.get(id(operator.raw_operator))
    if leaf is None:  # a torch step met outside an export (e.g. a user's own to_onnx call)
        raise ConversionError(
            f"{type(operator.raw_operator).__name__} is a torch-backed step: export the pipeline "
            "with exporter.export / python -m exporter, which traces it"
        )
    return leaf


def _parse_classifier(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> Any:
    from skl2onnx._supported_operators import get_model_alias
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    op = scope.declare_local_operator(get_model_alias(type(model)), model)
    op.inputs = inputs
    strings = np.asarray(getattr(model, "classes_", [0])).dtype.kind in "OUS"
    op.outputs.append(
        scope.declare_local_variable("label", (StringTensorType if strings else Int64TensorType)())
    )
    op.outputs.append(scope.declare_local_variable("probabilities", FloatTensorType()))
    return op.outputs


def _shape(operator: Any) -> None:
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    leaf = _leaf(operator)
    graph = _graph(leaf, _label_kind(operator), _input_type(operator))
    known = operator.inputs[0].type.shape  # Bagging's column subsets declare no shape
    n = known[0] if known else None
    for variable, value in zip(operator.outputs, graph.graph.output, strict=False):
        dims = value.type.tensor_type.shape.dim
        shape = [n, *(d.dim_value or None for d in dims[1:])]
        if value.type.tensor_type.elem_type == 8:
            variable.type = StringTensorType(shape)
        elif value.type.tensor_type.elem_type == 7:
            variable.type = Int64TensorType(shape)
        elif value.type.tensor_type.elem_type == 11:
            variable.type = DoubleTensorType(shape)
        else:
            variable.type = FloatTensorType(shape)


def _label_kind(operator: Any) -> str:
    """What the container declared for the label: an int64 index where it wants one (Voting,
    Stacking, Calibrated fit their children on encoded or raw y and read probabilities)."""
    if len(operator.outputs) < 2:
        return "none"
    declared = type(operator.outputs[0].type).__name__
    return "string" if declared == "StringTensorType" else "index"


_GRAPHS: dict[tuple[int, str, str], Any] = {}


def _graph(leaf: Leaf, label_kind: str, input_type: str = "FloatTensorType") -> Any:
    """The leaf as one ONNX model: input X → its outputs (traced once per leaf and label kind).
    A double input (``--dtype float64``) is cast to the module's float type inside the graph, and
    its float outputs back to double: the container's own nodes (Voting's weights, calibration,
    OneVsRest's normalisation) are double then."""
    key = (id(leaf.step), label_kind, input_type)
    if key not in _GRAPHS or _GRAPHS[key][0] is not leaf:
        model = build_leaf_graph(leaf, label_kind)
        if input_type == "DoubleTensorType":
            from onnx import TensorProto

            from exporter.compose import cast_input

            cast_input(model, "X", TensorProto.DOUBLE)
            _cast_outputs(model, TensorProto.FLOAT, TensorProto.DOUBLE)
        _GRAPHS[key] = (leaf, model)
    return _GRAPHS[key][1]


def _cast_outputs(model: Any, old: int, new: int) -> None:
    """Retype the graph's ``old``-typed outputs to ``new`` with a Cast at the end."""
    from onnx import helper

    from exporter.compose import rename

    for value in model.graph.output:
        if value.type.tensor_type.elem_type != old:
            continue
        name, raw = value.name, f"{value.name}__before_cast"
        rename(model.graph, name, raw)  # the graph's own consumers keep the original type
        value.name = name
        value.type.tensor_type.elem_type = new
        model.graph.node.append(helper.make_node("Cast", [raw], [name], to=new, name=f"{name}__cast"))


def _input_type(operator: Any) -> str:
    return type(operator.inputs[0].type).__name__


def build_leaf_graph(leaf: Leaf, label_kind: str) -> Any:
    from exporter.compose import chain, elem_type
    from exporter.convert.heads import LABEL_INDEX, build_head, resolve_head
    from exporter.convert.reproduce import reproduce
    from exporter.convert.torch import attribute_of, export_module, find_module, run_module

    label = f"torch step {type(leaf.step).__name__} at {leaf.path}"
    module = find_module(leaf.step, leaf.adapter.module, label)
    rows = as_dense(leaf.rows)
    task = _leaf_task(leaf.step, leaf.adapter)
    native = np.asarray(
        as_dense(leaf.step.transform(leaf.rows)) if task == "transformer" else leaf.step.predict(leaf.rows)
    )
    declared = leaf.adapter.head_for(leaf.step)
    if leaf.adapter.module is None:  # what reproduces the leaf's own answer (a reshape, an encoder)
        found = reproduce(
            leaf.step, module, attribute_of(leaf.step, module), rows, native, declared, task, label
        )
        module, module_out = found.module, found.output
    else:
        module_out = run_module(module, rows)
    resolved = resolve_head(declared, leaf.step, module_out, native, task)  # type: ignore[arg-type]
    # Inside a container a regressor answers (N, k), as skl2onnx's own regressors do: Stacking
    # concatenates its children's predictions along axis 1.
    resolved = dataclasses.replace(resolved, squeeze=False)
    part = export_module(module, rows, label)
    head = build_head(resolved, "output", elem_type(part.graph.output[0]))
    if task == "classifier":  # string classes where the container declared an index: the index
        strings = any(o.name == LABEL_INDEX for o in head.graph.output)
        names = [LABEL_INDEX if label_kind == "index" and strings else "label", "probabilities"]
    else:
        names = [o.name for o in head.graph.output]
    keep = [o for o in head.graph.output if o.name in names]
    keep.sort(key=lambda o: names.index(o.name))
    del head.graph.output[:]
    head.graph.output.extend(keep)
    composed = chain([part, head], ["X"], names)
    model, module_nodes = composed.model, composed.nodes(0)
    for i, node in enumerate(model.graph.node):  # add_onnx_graph needs a name to make unique
        node.name = node.name or f"{node.op_type}_{i}"
        if node.name.startswith(module_nodes):  # the network's nodes: what int8 quantises
            node.name = LEAF_NODE_MARK + node.name
    return model


@dataclass(frozen=True)
class LeafSeams:
    """Where a leaf's input and outputs live in its stage's graph, for per-leaf diagnosis. Each is
    a list of aliases (names joined by Identity nodes): the optimizer's cleanup keeps only one of
    them, so diagnosis cuts at whichever survives."""

    input: list[str]
    outputs: list[list[str]]  # per leaf output: label (or index) and probabilities, or one


_SEAMS: dict[int, LeafSeams] = {}


def seams_of(leaf: Leaf) -> LeafSeams | None:
    return _SEAMS.get(id(leaf.step))


def _convert(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.helpers import add_onnx_graph

    leaf = _leaf(operator)
    graph = _graph(leaf, _label_kind(operator), _input_type(operator))
    add_onnx_graph(scope, operator, container, graph)
    producers = {out: node for node in container.nodes for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in container.nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def upstream(name: str) -> list[str]:
        chain = [name]
        while name in producers and producers[name].op_type == "Identity":
            name = producers[name].input[0]
            chain.append(name)
        return chain

    def downstream(name: str) -> list[str]:
        chain = [name]
        while True:
            nxt = [n for n in consumers.get(name, []) if n.op_type == "Identity"]
            if len(nxt) != 1:
                return chain
            name = nxt[0].output[0]
            chain.append(name)

    entry = operator.inputs[0].onnx_name
    _SEAMS[id(leaf.step)] = LeafSeams(
        list(dict.fromkeys([*downstream(entry), *upstream(entry)])),
        [list(dict.fromkeys([*upstream(o.onnx_name), *downstream(o.onnx_name)])) for o in operator.outputs],
    )
