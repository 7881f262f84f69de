"""Convert each stage of a plan to an ONNX part; ``compose.chain`` then merges the parts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exporter.compose import cast_input, concat_columns, elem_type, part_prefix
from exporter.convert.heads import LABEL_INDEX, Head, ResolvedHead, build_head
from exporter.convert.nested import active, seams_of
from exporter.convert.sklearn import convert_sklearn_stage
from exporter.convert.torch import export_module
from runtime.contract import ELEM_NAMES, ELEM_TYPES, TASK_OUTPUTS

if TYPE_CHECKING:
    from exporter.plan import Plan, Stage


def public_outputs(plan: Plan) -> list[str]:
    names = list(TASK_OUTPUTS[plan.task])
    if plan.task == "classifier" and not hasattr(plan.estimator, "predict_proba"):
        return ["label"]  # nothing native to check probabilities against: do not claim them
    return names


def graph_outputs(plan: Plan, parts: list[Any]) -> list[str]:
    """The merged graph's output names: the public outputs, then auxiliary ones the last part has
    (``label_index`` for string classes), in the last part's order."""
    names = public_outputs(plan)
    return [*names, *(o.name for o in parts[-1].graph.output if o.name == LABEL_INDEX)]


def convert_plan(plan: Plan) -> list[Any]:
    """The ONNX parts, in order, whose chain computes the whole pipeline."""
    from exporter.plan import as_dense

    parts: list[Any] = []
    for index, stage in enumerate(plan.stages):
        if index == 0:
            inputs, adapter = _first_inputs(plan, stage)
            if adapter is not None:
                parts.append(adapter)
        else:
            width = as_dense(plan.stages[index - 1].native_out).shape[1]
            inputs = [("X", plan.dtype, width)]
        if stage.kind == "sklearn":
            # Torch leaves nested in this stage's containers join skl2onnx's topology (nested.py).
            with active(stage.leaves):
                part = convert_sklearn_stage(stage.steps, inputs, stage.label)
            prefix = part_prefix(len(parts))
            # The first part's inputs become the public inputs: chain renames them.
            public = {prefix + name: name for name, _, _ in inputs} if not parts else {}
            stage.leaf_seams = [_prefixed(seams_of(leaf), prefix, public) for leaf in stage.leaves]
            parts.append(_order_sklearn_outputs(part, plan, stage))
            stage.part = part_prefix(len(parts) - 1)
            if not stage.is_last:
                stage.seam = part_prefix(len(parts) - 1) + part.graph.output[0].name
            if stage.is_last and plan.task != "classifier":
                parts.append(_reshape_head(plan, stage, part))
        else:
            part = export_module(stage.module, as_dense(stage.native_in), stage.label)
            if index == 0 and inputs[0][1] != ELEM_NAMES[elem_type(part.graph.input[0])]:
                # --dtype float64 with a float32 module first: the public input is double.
                cast_input(part, part.graph.input[0].name, ELEM_TYPES[inputs[0][1]])
            parts.append(part)
            stage.part = part_prefix(len(parts) - 1)
            stage.seam = stage.part + part.graph.output[0].name
            if stage.is_last:
                assert stage.head is not None
                head = build_head(stage.head, "output", elem_type(part.graph.output[0]))
                parts.append(_drop_unclaimed(head, [*public_outputs(plan), LABEL_INDEX]))
    return parts


def _prefixed(seams: Any, prefix: str, public: dict[str, str]) -> dict[str, Any] | None:
    """A leaf's seam aliases as named in the merged graph (chain prefixes every part's names,
    and gives the first part's inputs their public names)."""
    if seams is None:
        return None

    def named(names: list[str]) -> list[str]:
        return [public.get(prefix + n, prefix + n) for n in names]

    return {"input": named(seams.input), "outputs": [named(names) for names in seams.outputs]}


def _first_inputs(plan: Plan, stage: Stage) -> tuple[list[tuple[str, str, int | None]], Any]:
    """Graph inputs of the first stage, plus a Concat part when columns must become a matrix."""
    schema = plan.schema
    if schema.layout in ("matrix", "text"):
        spec = schema.inputs[0]
        return [(spec.name, spec.dtype, spec.width)], None
    first_step = stage.steps[0][1]
    if stage.kind == "sklearn" and type(first_step).__name__ == "ColumnTransformer":
        return [(s.name, s.dtype, 1) for s in schema.inputs], None
    adapter = concat_columns([s.name for s in schema.inputs], [s.dtype for s in schema.inputs], plan.dtype)
    return [("X", plan.dtype, len(schema.inputs))], adapter


def _order_sklearn_outputs(model: Any, plan: Plan, stage: Stage) -> Any:
    """skl2onnx names classifier outputs label/probabilities: put them in the public order."""
    if not (stage.is_last and plan.task == "classifier"):
        del model.graph.output[1:]
        return model
    by_name = {o.name: o for o in model.graph.output}
    wanted = [n for n in public_outputs(plan) if n in by_name]
    if len(wanted) != len(public_outputs(plan)):
        # Classifiers without probabilities (e.g. SVC(probability=False)): keep the label only.
        wanted = ["label"] if "label" in by_name else [model.graph.output[0].name]
    ordered = [by_name[n] for n in wanted]
    del model.graph.output[:]
    model.graph.output.extend(ordered)
    return model


def _reshape_head(plan: Plan, stage: Stage, part: Any) -> Any:
    """Regressor/transformer outputs of skl2onnx are (N, k): reshape to what native predict gives."""
    native = stage.native_out
    dims = part.graph.output[0].type.tensor_type.shape.dim
    width = dims[1].dim_value if len(dims) == 2 and dims[1].dim_value else 0
    squeeze = plan.task == "regressor" and native.ndim == 1
    resolved = ResolvedHead(plan.task, "identity", None, None, 2, width, squeeze, Head(task=plan.task))
    return build_head(resolved, "output", elem_type(part.graph.output[0]))


def _drop_unclaimed(head: Any, names: list[str]) -> Any:
    keep = [o for o in head.graph.output if o.name in names]
    del head.graph.output[:]
    head.graph.output.extend(keep)
    return head


__all__ = ["LABEL_INDEX", "convert_plan", "graph_outputs", "public_outputs"]
