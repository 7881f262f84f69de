"""Cleanup: remove what the merge and the other passes leave behind.

- Identity nodes (heads and the merge add them to rename values), one-input Concats, and Casts
  that change nothing (to the type the value already has, or float32 → float64 → float32);
- nodes and initializers nothing reads (e.g. weights a fold replaced);
- the ``ai.onnx.ml`` opset import once no node uses it (older runtimes then need one domain less).
"""

from __future__ import annotations

import onnx
from onnx import TensorProto

from exporter.passes.graph import GraphView, attribute, remove_unused

_WIDENING = {(TensorProto.FLOAT, TensorProto.DOUBLE), (TensorProto.FLOAT16, TensorProto.FLOAT)}


def cleanup(model: onnx.ModelProto) -> onnx.ModelProto:
    view = GraphView(model)
    graph = model.graph
    kept = []
    for node in graph.node:
        source = _passthrough_source(node, view)
        if source is None or not _bypass(graph, view, source, node.output[0]):
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    remove_unused(model)
    used = {n.domain for n in graph.node}
    imports = [o for o in model.opset_import if o.domain in ("", "ai.onnx") or o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(imports)
    return model


def _passthrough_source(node: onnx.NodeProto, view: GraphView) -> str | None:
    """The value this node merely forwards, or None."""
    if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
        return None
    if node.op_type == "Identity" or (node.op_type == "Concat" and len(node.input) == 1):
        return node.input[0]  # (skl2onnx concatenates single columns: a copy)
    if node.op_type != "Cast":
        return None
    source, to = node.input[0], attribute(node, "to")
    if view.elem_type(source) == to:
        return source
    inner = view.producer.get(source)
    if inner is not None and inner.op_type == "Cast" and inner.domain in ("", "ai.onnx"):
        original = view.elem_type(inner.input[0])
        if original == to and (original, attribute(inner, "to")) in _WIDENING:
            return inner.input[0]
    return None


def _bypass(graph: onnx.GraphProto, view: GraphView, source: str, out: str) -> bool:
    """Make readers of ``out`` read ``source``; False when that would rename a public value."""
    if out in view.graph_outputs:
        producer = view.producer.get(source)
        # The public name must survive: give it to the producer instead, if nothing else is public.
        if producer is None or source in view.graph_outputs or source in view.graph_inputs:
            return False
        _rename_everywhere(graph, source, out)
        return True
    for node in view.consumers.get(out, []):
        node.input[:] = [source if n == out else n for n in node.input]
    return not any(out in n.input for n in _subgraph_nodes(graph))  # a body still reads it: keep


def _rename_everywhere(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for value in graph.value_info:
        if value.name == old:
            value.name = new


def _subgraph_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    nodes = []
    for node in graph.node:
        for attr in node.attribute:
            for g in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                nodes.extend(g.node)
    return nodes
