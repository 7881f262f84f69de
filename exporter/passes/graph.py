"""What every rewriting pass needs to know about a graph: producers, consumers, constants, types.

A ``GraphView`` is built once per pass over a ``ModelProto`` (main graph only: the converters put
no foldable ops in subgraphs) and answers the questions a pass asks before it rewrites a node.
Passes edit ``model.graph.node`` by building a new node list; the view is then stale.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import count
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

ML_DOMAIN = "ai.onnx.ml"


class GraphView:
    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.model = model
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in graph.node:
            for name in node.output:
                self.producer[name] = node
            for name in _node_inputs(node):
                self.consumers[name].append(node)
        self.initializers = {init.name: init for init in graph.initializer}
        self.graph_inputs = {i.name for i in graph.input}
        self.graph_outputs = {o.name for o in graph.output}
        self.types: dict[str, Any] = {}
        for value in [*graph.input, *graph.value_info, *graph.output]:
            if value.type.HasField("tensor_type"):
                self.types[value.name] = value.type.tensor_type
        self._names = {n for node in graph.node for n in [*node.input, *node.output]}
        self._names |= set(self.initializers) | self.graph_inputs | self.graph_outputs
        self._counter = count()
        self._node_names = {n.name for n in graph.node if n.name}

    # -- values ---------------------------------------------------------------------------------
    def constant(self, name: str) -> np.ndarray | None:
        """The value of ``name`` when it is fixed at export: an initializer (not overridable by a
        graph input), a Constant node, or Identity/Cast/Transpose of one."""
        if name in self.initializers and name not in self.graph_inputs:
            return numpy_helper.to_array(self.initializers[name])
        node = self.producer.get(name)
        if node is None:
            return None
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            attr = node.attribute[0]
            if attr.name == "value":
                return numpy_helper.to_array(attr.t)
            return np.asarray(helper.get_attribute_value(attr))
        if node.op_type in ("Identity", "Cast", "Transpose") and node.domain in ("", "ai.onnx"):
            inner = self.constant(node.input[0])
            if inner is None:
                return None
            if node.op_type == "Cast":
                return inner.astype(helper.tensor_dtype_to_np_dtype(attribute(node, "to")))
            if node.op_type == "Transpose":
                return np.transpose(inner, attribute(node, "perm"))
            return inner
        return None

    def elem_type(self, name: str) -> int | None:
        t = self.types.get(name)
        return int(t.elem_type) if t is not None and t.elem_type else None

    def shape(self, name: str) -> list[int | None] | None:
        """Static dims (None where symbolic), or None when the rank is unknown."""
        t = self.types.get(name)
        if t is None or not t.HasField("shape"):
            return None
        return [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]

    def width(self, name: str) -> int | None:
        """The last dimension of a rank-2 value, when known."""
        shape = self.shape(name)
        return shape[1] if shape is not None and len(shape) == 2 else None

    def single_use(self, name: str) -> bool:
        """Consumed by exactly one node and not a graph output: safe to fold away."""
        return len(self.consumers.get(name, [])) == 1 and name not in self.graph_outputs

    # -- building -------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        """A value name no node, initializer or graph input uses yet."""
        while True:
            name = f"{hint}__opt{next(self._counter)}"
            if name not in self._names:
                self._names.add(name)
                return name

    def fresh_node_name(self, base: str) -> str:
        """``base`` if no node has it yet, else ``base_1``, ``base_2``...: onnxruntime refuses
        duplicate node names (the checker does not)."""
        name, k = base, 0
        while name in self._node_names:
            k += 1
            name = f"{base}_{k}"
        self._node_names.add(name)
        return name

    def release_node_name(self, name: str) -> None:
        """A node is being replaced: its name may be given to the replacement."""
        self._node_names.discard(name)

    def add_initializer(self, hint: str, value: Any) -> str:
        name = self.fresh(hint)
        self.model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name


def attribute(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            value = helper.get_attribute_value(attr)
            return value.decode() if isinstance(value, bytes) else value
    return default


def is_ml(node: onnx.NodeProto) -> bool:
    return node.domain == ML_DOMAIN


def _node_inputs(node: onnx.NodeProto) -> list[str]:
    """Inputs of the node and the outer-scope names its subgraphs read."""
    names = [n for n in node.input if n]
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for g in graphs:
            inner = {o for n in g.node for o in n.output} | {i.name for i in g.input}
            inner |= {i.name for i in g.initializer}
            names += [n for sub in g.node for n in sub.input if n and n not in inner]
    return names


def remove_unused(model: onnx.ModelProto) -> int:
    """Drop nodes whose outputs nobody reads and initializers no node reads; returns nodes removed."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(_node_inputs(node))
    removed = len(graph.node) - len(kept)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    used = needed | {i.name for i in graph.input}
    inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    live = {o for n in graph.node for o in n.output}
    infos = [v for v in graph.value_info if v.name in live]
    del graph.value_info[:]
    graph.value_info.extend(infos)
    return removed
