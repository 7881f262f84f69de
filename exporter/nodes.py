"""The nodes of a plan, and what each kind of node does at each pass: one strategy per kind.

A ``Node`` says what a top-level piece of the pipeline is; its ``strategy`` (``SKLEARN_NODE`` or
``TORCH_NODE``) is the only place that knows how that kind is probed natively, converted to ONNX
parts, cut for diagnosis and described. The passes (``plan.probe``, ``build.build``,
``diagnose.diagnose``) walk the nodes and ask their strategies; none of them branches on the kind.

* A **sklearn node** is a run of consecutive sklearn steps, converted together by skl2onnx. Its
  children are the torch leaves nested in its containers (``convert/nested.py``): the probe records
  the rows each receives, the conversion registers them with skl2onnx's topology, and diagnosis
  judges each on its own before the node as a whole.
* A **torch node** is one step backed by a fitted ``nn.Module``: the module through torch.onnx and,
  at the end of the pipeline, a head (labels, probabilities) matched to the step's own answers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from exporter.compose import cast_input, elem_type
from exporter.convert.boosters import is_classifier as is_booster_classifier
from exporter.convert.heads import LABEL_INDEX, Head, PipelineTask, ResolvedHead, build_head, resolve_head
from exporter.convert.nested import Leaf, LeafSeams, active, find_leaves, seams_of
from exporter.convert.reproduce import reproduce
from exporter.convert.sklearn import convert_sklearn_stage
from exporter.convert.torch import attribute_of, export_module, find_module, module_input, run_module
from exporter.errors import ExportError, SampleError, UnsupportedStepError
from exporter.registry import SKLEARN, TorchAdapter, registry
from exporter.steps import as_dense, n_rows, walk
from runtime.contract import ELEM_NAMES, ELEM_TYPES, TASK_OUTPUTS
from runtime.schema import Schema

Inputs = list[tuple[str, str, int | None]]  # (name, dtype, width) per graph input of a part


@dataclass(frozen=True)
class Node:
    """One top-level node: its steps (one for a torch node), their positions in the pipeline."""

    strategy: NodeStrategy
    steps: tuple[tuple[str, Any], ...]
    positions: tuple[int, ...]
    adapter: TorchAdapter | None = None
    is_last: bool = False

    @property
    def kind(self) -> str:
        return self.strategy.kind

    @property
    def label(self) -> str:
        names = ", ".join(name for name, _ in self.steps)
        return f"{self.kind} stage [{names}]"

    @property
    def step(self) -> Any:
        return self.steps[-1][1]

    @property
    def step_label(self) -> str:
        name, step = self.steps[-1]
        return f"step {self.positions[-1]} {name!r} ({type(step).__name__})"

    @property
    def estimator(self) -> Any:
        """The node as one native estimator: its step, or a Pipeline over its fitted steps."""
        if len(self.steps) == 1:
            return self.step
        from sklearn.pipeline import Pipeline

        return Pipeline(list(self.steps))

    def extended(self, other: Node) -> Node:
        return dataclasses.replace(
            self, steps=self.steps + other.steps, positions=self.positions + other.positions
        )

    def as_last(self) -> Node:
        return dataclasses.replace(self, is_last=True)


@dataclass(frozen=True)
class Probed:
    """What the native probe measured for one node on the sample rows."""

    node: Node
    native_in: Any
    native_out: Any  # transform output; at the end, the predict (or transform) output
    leaves: tuple[Leaf, ...] = ()  # torch leaves nested in the node, with the rows each receives
    module: Any = None  # torch nodes: the fitted module, its raw output, and the head matched to it
    module_out: np.ndarray | None = None
    head: ResolvedHead | None = None
    exported: str | None = None  # torch nodes: what the probe chose to export ("model_.encoder", ...)
    tried: tuple[str, ...] = ()  # and the candidates it measured before, with why each was not taken


@dataclass(frozen=True)
class Converted:
    """A node as ONNX parts (chained in order); where its output and its leaves are, part-locally."""

    parts: tuple[onnx.ModelProto, ...]
    seam: tuple[int, str] | None  # (part, tensor) carrying the node's output; None: the public outputs
    leaf_cuts: tuple[LeafSeams | None, ...] = ()  # per leaf, names in part 0


@dataclass(frozen=True)
class Plan:
    """The probed tree of one export: its nodes in pipeline order, measured on ``sample``."""

    estimator: Any
    nodes: tuple[Probed, ...]
    schema: Schema
    task: PipelineTask
    sample: Any = None
    expected: dict[str, np.ndarray] = field(default_factory=dict)  # native public outputs on the sample

    @property
    def dtype(self) -> str:
        """Element type of the numeric inputs, used between nodes too."""
        numeric = [s.dtype for s in self.schema.inputs if not s.is_string]
        return numeric[0] if numeric else "float32"

    @property
    def last(self) -> Probed:
        return self.nodes[-1]

    @property
    def outputs(self) -> list[str]:
        """The public outputs: the task's, less probabilities where nothing native gives them."""
        if self.task == "classifier" and not hasattr(self.estimator, "predict_proba"):
            return ["label"]  # nothing native to check probabilities against: do not claim them
        return list(TASK_OUTPUTS[self.task])


@dataclass
class Piece:
    """A cut of the merged graph: from ``inputs`` to ``outputs``, with what native code gives."""

    label: str
    inputs: list[str]
    outputs: list[str]
    feed: Any  # native value for a seam input; None: the public inputs, from the plan's sample
    want: dict[str, np.ndarray]
    compared: str


@dataclass(frozen=True)
class Cut:
    """Where the next piece starts: graph names, and the native value fed there (None: the public
    inputs, from the plan's sample)."""

    inputs: list[str]
    feed: Any = None


class NodeStrategy:
    """What one kind of node does at each pass. Subclasses are stateless singletons."""

    kind = ""
    native_float32 = False  # feed the native path float32 (torch wrappers are fit on float32)

    def task(self, node: Node) -> PipelineTask:
        raise NotImplementedError

    def probe(self, node: Node, x: Any, task: PipelineTask) -> Probed:
        raise NotImplementedError

    def convert(self, probed: Probed, inputs: Inputs, plan: Plan) -> Converted:
        raise NotImplementedError

    def takes_columns(self, node: Node) -> bool:
        """Whether the node's first graph takes one input per DataFrame column."""
        return False

    def untested_types(self, node: Node) -> list[str]:
        return []

    def leaf_pieces(self, probed: Probed, cuts: list[Any], produced: set[str]) -> Iterator[Piece]:
        """Pieces for the node's children, judged before the node itself."""
        return iter(())

    def final_pieces(
        self, probed: Probed, label: str, start: Cut, seam: str | None, want: dict[str, np.ndarray], task: str
    ) -> Iterator[Piece]:
        """The last node's pieces: fed its native input, it must give ``want``, the pipeline's
        native outputs."""
        yield Piece(label, start.inputs, list(want), start.feed, want, task)

    # -- shared by both kinds -------------------------------------------------------------------

    def _native_out(self, node: Node, x: Any, task: PipelineTask) -> Any:
        if not node.is_last:
            return node.estimator.transform(x)
        if task == "transformer":
            return as_dense(node.estimator.transform(x))
        out = np.asarray(node.estimator.predict(x))
        _check_prediction_shape(node, out, x, task)
        return out


class SklearnNode(NodeStrategy):
    kind = "sklearn"

    def task(self, node: Node) -> PipelineTask:
        step = node.step
        booster = is_booster_classifier(step)  # CatBoostRegressor has classes_ too
        if booster is not None:
            return "classifier" if booster else "regressor"
        if hasattr(step, "classes_") and hasattr(step, "predict"):
            return "classifier"
        return "regressor" if hasattr(step, "predict") else "transformer"

    def probe(self, node: Node, x: Any, task: PipelineTask) -> Probed:
        with native_errors(node.label):
            leaves = find_leaves(node.estimator, x, _native_methods(node, task), node.label)
            out = self._native_out(node, x, task)
        return Probed(node, x, out, tuple(leaves))

    def convert(self, probed: Probed, inputs: Inputs, plan: Plan) -> Converted:
        node = probed.node
        # Torch leaves nested in this node's containers join skl2onnx's topology (nested.py).
        with active(list(probed.leaves)):
            part = convert_sklearn_stage(list(node.steps), inputs, node.label)
        cuts = tuple(seams_of(leaf) for leaf in probed.leaves)
        part = _order_sklearn_outputs(part, plan, node)
        parts = [part]
        if node.is_last and plan.task != "classifier":
            parts.append(_reshape_head(plan, probed, part))
        elif node.is_last and np.ndim(plan.expected.get("label", 0)) == 2:  # predict answers (N, 1)
            parts.append(_label_column(part))
        seam = None if node.is_last else (0, part.graph.output[0].name)
        return Converted(tuple(parts), seam, cuts)

    def takes_columns(self, node: Node) -> bool:
        """A ColumnTransformer, or an encoder reading a DataFrame's columns (which may mix strings
        and numbers: skl2onnx's encoders take one input per column, as sklearn's read each)."""
        return type(node.steps[0][1]).__name__ in ("ColumnTransformer", "OneHotEncoder", "OrdinalEncoder")

    def untested_types(self, node: Node) -> list[str]:
        found: list[str] = []
        for _, step in node.steps:
            for est in [step, *walk(step)]:
                if registry.lookup(type(est)) is not SKLEARN and type(est).__name__ not in found:
                    found.append(type(est).__name__)
        return found

    def leaf_pieces(self, probed: Probed, cuts: list[Any], produced: set[str]) -> Iterator[Piece]:
        """Each torch leaf, cut at its own input and output (the aliases that survived the
        optimizer) and fed the rows it receives natively."""
        for leaf, seams in zip(probed.leaves, cuts, strict=False):
            if not seams:
                continue
            entry = next((n for n in seams["input"] if n in produced), None)
            exits = [next((n for n in names if n in produced), None) for names in seams["outputs"]]
            exit_ = exits[-1]  # probabilities for classifiers, the only output otherwise
            if entry is None or exit_ is None:
                continue  # folded into its neighbours by the optimizer: the node is judged as a whole
            step = leaf.step
            if len(exits) > 1 and hasattr(step, "predict_proba"):
                want, what = np.asarray(step.predict_proba(leaf.rows)), "probabilities"
            elif hasattr(step, "transform") and not hasattr(step, "predict"):
                want, what = as_dense(step.transform(leaf.rows)), "features"
            else:
                want, what = np.asarray(step.predict(leaf.rows)), "prediction"
            label = f"torch leaf {type(step).__name__} at {leaf.path} in {probed.node.label}"
            yield Piece(label, [entry], [exit_], leaf.rows, {exit_: want}, f"leaf {what}")


class TorchNode(NodeStrategy):
    kind = "torch"
    native_float32 = True

    def task(self, node: Node) -> PipelineTask:
        assert node.adapter is not None
        declared = node.adapter.head_for(node.step).task
        if declared != "auto":
            return declared
        step = node.step
        if hasattr(step, "classes_"):
            return "classifier"
        return "regressor" if hasattr(step, "predict") else "transformer"

    def probe(self, node: Node, x: Any, task: PipelineTask) -> Probed:
        """The step's own answer on ``x``, and the module (or the composition of its modules:
        a reshape, an encoder) that reproduces it (convert/reproduce.py)."""
        assert node.adapter is not None
        module = find_module(node.step, node.adapter.module, node.step_label)
        with native_errors(node.label):
            out = self._native_out(node, x, task)
        declared = node.adapter.head_for(node.step)
        inputs = module_input(x)
        with native_errors(f"the module of {node.step_label}"):
            exported, tried = "the declared module", tuple[str, ...]()
            if node.adapter.module is not None:  # the user said which module: taken as it is
                module_out = run_module(module, inputs)
            else:
                found = reproduce(
                    node.step,
                    module,
                    attribute_of(node.step, module),
                    inputs,
                    as_dense(out) if not node.is_last or task == "transformer" else out,
                    declared,
                    task if node.is_last else "transformer",
                    node.step_label,
                )
                module, module_out = found.module, found.output
                exported, tried = found.what, tuple(found.tried)
        head = resolve_head(declared, node.step, module_out, out, task) if node.is_last else None
        return Probed(node, x, out, (), module, module_out, head, exported, tried)

    def convert(self, probed: Probed, inputs: Inputs, plan: Plan) -> Converted:
        node = probed.node
        part = export_module(probed.module, module_input(probed.native_in), node.label)
        if len(inputs) == 1 and inputs[0][1] != ELEM_NAMES[elem_type(part.graph.input[0])]:
            # --dtype float64 with a float32 module: the node's input is double, cast inside.
            cast_input(part, part.graph.input[0].name, ELEM_TYPES[inputs[0][1]])
        parts = [part]
        if node.is_last:
            assert probed.head is not None and probed.module_out is not None
            head = build_head(probed.head, "output", elem_type(part.graph.output[0]))
            head = _keep_outputs(head, [*plan.outputs, LABEL_INDEX])
            parts.append(native_shapes(head, plan.expected, probed.module_out))
        return Converted(tuple(parts), (0, part.graph.output[0].name))

    def final_pieces(
        self, probed: Probed, label: str, start: Cut, seam: str | None, want: dict[str, np.ndarray], task: str
    ) -> Iterator[Piece]:
        """The module (on its raw output), then the head (labels, probabilities from it)."""
        if seam is None or probed.module_out is None:
            yield from super().final_pieces(probed, label, start, seam, want, task)
            return
        name = repr(probed.node.steps[-1][0])
        yield Piece(label, start.inputs, [seam], start.feed, {seam: probed.module_out}, "module output")
        yield Piece(f"head of {name}", [seam], list(want), probed.module_out, want, "head")


SKLEARN_NODE = SklearnNode()
TORCH_NODE = TorchNode()


@contextmanager
def native_errors(what: str) -> Iterator[None]:
    """A native step failing on the sample is the user's data or model, not our bug: say so."""
    try:
        yield
    except ExportError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SampleError(
            f"{what} failed natively on the sample rows ({type(exc).__name__}: {first}); "
            "check the rows passed with --sample (or pass real rows if they were synthesised)"
        ) from exc


def _native_methods(node: Node, task: PipelineTask) -> list[str]:
    """What a node's estimator is asked natively: transform for what the next node needs; for the
    last node, the methods of the pipeline's public outputs."""
    if not node.is_last or task == "transformer":
        return ["transform"]
    proba = task == "classifier" and hasattr(node.estimator, "predict_proba")
    return ["predict", "predict_proba"] if proba else ["predict"]


def _check_prediction_shape(node: Node, out: np.ndarray, rows: Any, task: PipelineTask) -> None:
    """What ``predict`` returns must be one answer per row: refuse, by name, the shapes the
    runtime's outputs cannot be (a MultiOutputRegressor over nets that answer (N, 1) predicts
    (1, N, k); a multi-output classifier answers (N, k) labels and a list of probabilities)."""
    n = n_rows(rows)
    what = f"{node.label}: predict returns shape {out.shape} for {n} rows"
    if out.ndim == 0 or out.shape[0] != n or out.ndim > 2:
        raise UnsupportedStepError(
            f"{what}, not one prediction per row: make each estimator's predict return (N,) or "
            "(N, k) (e.g. a skorch NeuralNetRegressor inside MultiOutputRegressor answers (N, 1): "
            "fit it on all targets at once instead)"
        )
    if task == "classifier" and out.ndim == 2 and out.shape[1] != 1:  # (N, 1): one label per row
        raise UnsupportedStepError(
            f"{what}: multi-output classification is not supported (one label per row only); "
            "export each output's estimator (e.g. MultiOutputClassifier.estimators_[i]) on its own"
        )


def _order_sklearn_outputs(model: onnx.ModelProto, plan: Plan, node: Node) -> onnx.ModelProto:
    """skl2onnx names classifier outputs label/probabilities: put them in the public order."""
    if not (node.is_last and plan.task == "classifier"):
        del model.graph.output[1:]
        return model
    by_name = {o.name: o for o in model.graph.output}
    wanted = [n for n in plan.outputs if n in by_name]
    if len(wanted) != len(plan.outputs):
        # Classifiers without probabilities (e.g. SVC(probability=False)): keep the label only.
        wanted = ["label"] if "label" in by_name else [model.graph.output[0].name]
    ordered = [by_name[n] for n in wanted]
    del model.graph.output[:]
    model.graph.output.extend(ordered)
    return model


def _reshape_head(plan: Plan, probed: Probed, part: onnx.ModelProto) -> onnx.ModelProto:
    """Regressor/transformer outputs of skl2onnx are (N, k): reshape to what native predict gives."""
    dims = part.graph.output[0].type.tensor_type.shape.dim
    width = dims[1].dim_value if len(dims) == 2 and dims[1].dim_value else 0
    squeeze = plan.task == "regressor" and np.asarray(probed.native_out).ndim == 1
    resolved = ResolvedHead(plan.task, "identity", None, None, 2, width, squeeze, Head(task=plan.task))
    return build_head(resolved, "output", elem_type(part.graph.output[0]))


def native_shapes(
    part: onnx.ModelProto, expected: dict[str, np.ndarray], example: np.ndarray
) -> onnx.ModelProto:
    """Reshape the outputs whose native answer has the same values per row in another shape: a
    net fit on ``y`` of shape (N, 1) predicts (N, 1) labels and (N, 2, 1) probabilities. The head's
    shapes are measured (run on ``example``, the module's output), not read from its declarations."""
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    graph = part.graph
    session = ort.InferenceSession(part.SerializeToString(), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    names = [o.name for o in graph.output]
    measured = dict(zip(names, session.run(names, {name: example[:2]}), strict=True))
    for value in graph.output:
        native = expected.get(value.name if value.name != LABEL_INDEX else "label")
        if native is None or native.ndim < 1:
            continue
        dims = value.type.tensor_type.shape.dim
        graph_trailing = list(measured[value.name].shape[1:])
        native_trailing = list(native.shape[1:])
        if graph_trailing == native_trailing:
            continue
        if int(np.prod(graph_trailing or [1])) != int(np.prod(native_trailing or [1])):
            continue  # not the same values: parity reports it
        raw, shape = f"{value.name}__before_native_shape", f"{value.name}__native_shape"
        for node in graph.node:  # the head's own consumers keep the shape it computed
            node.input[:] = [raw if i == value.name else i for i in node.input]
            node.output[:] = [raw if o == value.name else o for o in node.output]
        target = numpy_helper.from_array(np.array([-1, *native_trailing], np.int64), shape)
        graph.initializer.append(target)
        graph.node.append(
            helper.make_node("Reshape", [raw, shape], [value.name], name=f"{value.name}__native")
        )
        del dims[1:]
        for d in native_trailing:
            dims.add().dim_value = int(d)
    return part


def _label_column(part: onnx.ModelProto) -> onnx.ModelProto:
    """A part passing the classifier's outputs through, with the label as a (N, 1) column: what
    predict returns for some estimators (CatBoost's multi-class classifier)."""
    from onnx import helper, numpy_helper

    from exporter.compose import make_part

    inputs, outputs, nodes = [], [], []
    for value in part.graph.output:
        entering = onnx.ValueInfoProto()
        entering.CopyFrom(value)
        entering.name = f"{value.name}_in"
        inputs.append(entering)
        if value.name == "label":
            outputs.append(helper.make_tensor_value_info("label", elem_type(value), ["N", 1]))
            nodes.append(helper.make_node("Reshape", ["label_in", "label_shape"], ["label"]))
        else:
            leaving = onnx.ValueInfoProto()
            leaving.CopyFrom(value)
            outputs.append(leaving)
            nodes.append(helper.make_node("Identity", [f"{value.name}_in"], [value.name]))
    shape = numpy_helper.from_array(np.array([-1, 1], np.int64), "label_shape")
    return make_part(helper.make_graph(nodes, "label_column", inputs, outputs, [shape]))


def _keep_outputs(head: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    keep = [o for o in head.graph.output if o.name in names]
    del head.graph.output[:]
    head.graph.output.extend(keep)
    return head
