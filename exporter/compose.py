"""Merge the per-stage graphs into ONE model with stable public input and output names.

Parts are chained in order: part k's outputs feed part k+1's inputs, by position. Before merging,
IR versions and opsets are aligned (skl2onnx writes IR 8, the dynamo exporter IR 10), every part's
names get a unique prefix, and a Cast is inserted where a seam's element types differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import onnx
from onnx import compose, helper

from exporter.errors import ConversionError
from runtime.contract import ELEM_TYPES

# Parts we build ourselves (heads, column concat) use opset 18 like the converters, stamped with the
# lowest IR version that allows it: helper.make_model would stamp the newest IR onnx knows, which
# older onnxruntimes refuse ("Unsupported model IR version").
OPSET = 18
IR_FOR_OPSET_18 = 8


def copy_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A deep copy: passes and variants rewrite copies, never the model they were given."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def make_part(graph: onnx.GraphProto) -> onnx.ModelProto:
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_FOR_OPSET_18
    )


def elem_type(value_info: Any) -> int:
    return int(value_info.type.tensor_type.elem_type)


def concat_columns(
    names: Sequence[str], dtypes: Sequence[str], dtype: str = "float32", output: str = "X"
) -> onnx.ModelProto:
    """Per-column inputs (N x 1 each) → one matrix of ``dtype``, for stages that take a matrix."""
    inputs = [
        helper.make_tensor_value_info(n, ELEM_TYPES[d], ["N", 1]) for n, d in zip(names, dtypes, strict=True)
    ]
    nodes, cast_names = [], []
    for n, d in zip(names, dtypes, strict=True):
        if d == "string":
            raise ConversionError(
                f"column {n!r} holds strings but the first step takes numbers only; "
                "encode it inside the pipeline (ColumnTransformer + OneHotEncoder)"
            )
        if d != dtype:
            nodes.append(helper.make_node("Cast", [n], [f"{n}__cast"], to=ELEM_TYPES[dtype]))
            cast_names.append(f"{n}__cast")
        else:
            cast_names.append(n)
    nodes.append(helper.make_node("Concat", cast_names, [output], axis=1))
    graph = helper.make_graph(
        nodes,
        "columns",
        inputs,
        [helper.make_tensor_value_info(output, ELEM_TYPES[dtype], ["N", len(names)])],
    )
    return make_part(graph)


@dataclass(frozen=True)
class Composed:
    """The merged model, and where each part's names went in it: the seams compose reports (a
    part's tensor is renamed by the merge; nothing outside this module predicts how)."""

    model: onnx.ModelProto
    renamed: dict[str, str] = field(default_factory=dict)  # prefixed name → public name

    def name(self, part: int, tensor: str) -> str:
        """The merged graph's name of part ``part``'s tensor ``tensor``."""
        prefixed = part_prefix(part) + tensor
        return self.renamed.get(prefixed, prefixed)

    def nodes(self, part: int) -> str:
        """The prefix of part ``part``'s node names in the merged graph."""
        return part_prefix(part)


def chain(
    parts: Sequence[onnx.ModelProto], input_names: Sequence[str], output_names: Sequence[str]
) -> Composed:
    """Merge parts into one model; name its inputs and outputs with the public names given."""
    parts = _align_versions(list(parts))
    if len(parts[0].graph.input) != len(input_names):
        raise ConversionError(
            f"internal: the first part takes {len(parts[0].graph.input)} inputs, expected {list(input_names)}"
        )
    prefixed = [compose.add_prefix(p, part_prefix(k)) for k, p in enumerate(parts)]
    merged = prefixed[0]
    for k, nxt in enumerate(prefixed[1:], start=1):
        outs, ins = list(merged.graph.output), list(nxt.graph.input)
        if len(outs) != len(ins):
            raise ConversionError(
                f"internal: part {k - 1} has {len(outs)} outputs but part {k} takes {len(ins)} inputs"
            )
        for out, inp in zip(outs, ins, strict=True):
            if elem_type(out) != elem_type(inp):
                cast_input(nxt, inp.name, elem_type(out))
        try:
            merged = compose.merge_models(
                merged, nxt, io_map=[(o.name, i.name) for o, i in zip(outs, ins, strict=True)]
            )
        except Exception as exc:
            raise ConversionError(f"merging part {k} into the graph failed: {exc}") from exc
    renamed: dict[str, str] = {}
    for value, public in zip(list(merged.graph.input), input_names, strict=True):
        renamed[value.name] = public
        rename(merged.graph, value.name, public)
    if len(merged.graph.output) != len(output_names):
        raise ConversionError(
            f"internal: the merged graph has {len(merged.graph.output)} outputs, "
            f"expected {list(output_names)}"
        )
    for value, public in zip(list(merged.graph.output), output_names, strict=True):
        renamed[value.name] = public
        rename(merged.graph, value.name, public)
    merged.graph.name = "hybridonnx"
    # onnx.compose.merge_models writes both models' opset imports, duplicates included (each merge
    # adds another copy): keep one entry per domain.
    opsets = {o.domain: o.version for o in merged.opset_import}
    del merged.opset_import[:]
    merged.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(opsets.items()))
    return Composed(merged, renamed)


def part_prefix(index: int) -> str:
    """What ``chain`` puts before every name of part ``index`` (ask ``Composed.name`` for where a
    tensor went: the public inputs and outputs are renamed after)."""
    return f"p{index}_"


def _align_versions(parts: list[onnx.ModelProto]) -> list[onnx.ModelProto]:
    """One IR version and one opset per domain for all parts (the highest of each).

    Raising IR and opset numbers is safe here because every converter is pinned to opset 18 and
    ai.onnx.ml 3 at most, and the ops they emit keep their semantics up to those versions.
    """
    ir = max(p.ir_version for p in parts)
    opsets: dict[str, int] = {}
    for p in parts:
        for o in p.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    aligned = []
    for p in parts:
        q = copy_model(p)
        q.ir_version = ir
        del q.opset_import[:]
        q.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(opsets.items()))
        aligned.append(q)
    return aligned


def cast_input(model: onnx.ModelProto, name: str, new_type: int) -> None:
    """Retype a graph input and Cast it back to what its consumers expect (a seam cast)."""
    graph = model.graph
    value = next(i for i in graph.input if i.name == name)
    target = elem_type(value)
    raw = f"{name}__seam"
    value.name = raw
    value.type.tensor_type.elem_type = new_type
    graph.node.insert(0, helper.make_node("Cast", [raw], [name], to=target, name=f"{name}__seam_cast"))


def rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename a value everywhere in the graph (and in subgraphs of If/Loop/Scan nodes)."""
    if old == new:
        return
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.name == old:
            value.name = new
    for init in graph.initializer:
        if init.name == old:
            init.name = new
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                rename(attr.g, old, new)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    rename(sub, old, new)
