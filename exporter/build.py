"""Convert every node of a plan to ONNX parts and merge them into one model (``compose.chain``).

Each node's strategy converts it (``nodes.py``); this module adds what belongs to the pipeline as
a whole — the first node's inputs (one per DataFrame column, or a Concat into one matrix), the
public output names — and reads back from the merge where each node's output and each nested
leaf's input and outputs ended up (``Composed.name``): the seams diagnosis cuts at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import onnx

from exporter.compose import Composed, chain, concat_columns
from exporter.nodes import Converted, Inputs
from exporter.plan import Plan
from exporter.steps import as_dense
from runtime.contract import LABEL_INDEX


@dataclass(frozen=True)
class NodeSeams:
    """Where one node lives in the merged graph."""

    output: str | None  # the tensor carrying its output (a torch node at the end: the module's)
    nodes: str  # the prefix of its node names (folded nodes keep the later node's)
    leaves: tuple[dict[str, Any] | None, ...]  # per nested leaf: {"input": [...], "outputs": [[...]]}


@dataclass(frozen=True)
class Built:
    model: onnx.ModelProto
    seams: tuple[NodeSeams, ...]  # one per plan node


def build(plan: Plan) -> Built:
    """The one model computing the whole pipeline, and the seams of its nodes."""
    parts: list[onnx.ModelProto] = []
    placed: list[tuple[int, Converted]] = []  # (index of the node's first part, its conversion)
    for index, probed in enumerate(plan.nodes):
        if index == 0:
            inputs, adapter = _first_inputs(plan)
            if adapter is not None:
                parts.append(adapter)
        else:
            inputs = [("X", plan.dtype, as_dense(plan.nodes[index - 1].native_out).shape[1])]
        converted = probed.node.strategy.convert(probed, inputs, plan)
        placed.append((len(parts), converted))
        parts.extend(converted.parts)
    composed = chain(parts, [s.name for s in plan.schema.inputs], graph_outputs(plan, parts[-1]))
    return Built(composed.model, tuple(_seams(composed, first, done) for first, done in placed))


def graph_outputs(plan: Plan, last: onnx.ModelProto) -> list[str]:
    """The merged graph's output names: the public outputs, then auxiliary ones the last part has
    (``label_index`` for string classes), in the last part's order."""
    return [*plan.outputs, *(o.name for o in last.graph.output if o.name == LABEL_INDEX)]


def _first_inputs(plan: Plan) -> tuple[Inputs, onnx.ModelProto | None]:
    """Graph inputs of the first node, plus a Concat part when columns must become a matrix."""
    schema = plan.schema
    if schema.layout == "tensor":  # the module's own inputs, by name
        return [(s.name, s.dtype, s.width) for s in schema.inputs], None
    if schema.layout in ("matrix", "text"):
        spec = schema.inputs[0]
        return [(spec.name, spec.dtype, spec.width)], None
    if plan.nodes[0].node.strategy.takes_columns(plan.nodes[0].node):
        return [(s.name, s.dtype, 1) for s in schema.inputs], None
    adapter = concat_columns([s.name for s in schema.inputs], [s.dtype for s in schema.inputs], plan.dtype)
    return [("X", plan.dtype, len(schema.inputs))], adapter


def _seams(composed: Composed, first: int, converted: Converted) -> NodeSeams:
    output = None
    if converted.seam is not None:
        part, tensor = converted.seam
        output = composed.name(first + part, tensor)

    def named(names: list[str]) -> list[str]:  # leaf cuts are names in the node's first part
        return [composed.name(first, n) for n in names]

    leaves = tuple(
        None if cut is None else {"input": named(cut.input), "outputs": [named(o) for o in cut.outputs]}
        for cut in converted.leaf_cuts
    )
    return NodeSeams(output, composed.nodes(first), leaves)
