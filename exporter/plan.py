"""Walk a fitted estimator into a tree of nodes, and measure every node natively on the sample rows.

The tree: the pipeline's top level is a chain of nodes — a *sklearn node* is a maximal run of
consecutive sklearn steps (skl2onnx converts them together, containers included), a *torch node*
one step backed by a fitted ``torch.nn.Module`` — and a sklearn node's children are the torch
leaves nested in its containers (a net inside a VotingClassifier, a CalibratedClassifierCV, ...).

Each pass yields its own immutable result per node: ``make_nodes`` → ``Node`` (what it is),
``probe`` → ``Probed`` (what it does natively on the sample: its input and output, its leaves with
the rows each receives, a torch head matched to the step's own answers). What each kind of node
does at each pass lives in one strategy per kind (``exporter/nodes.py``); this module decides the
kinds and runs the passes in order.
"""

from __future__ import annotations

from typing import Any

from exporter.convert.heads import PipelineTask
from exporter.convert.nested import nested_leaves, registered_leaf_types
from exporter.convert.torch import PREFERRED_MODULE_ATTRS
from exporter.errors import NotFittedError, UnsupportedStepError
from exporter.nodes import SKLEARN_NODE, TORCH_NODE, Node, Plan, Probed, native_errors
from exporter.parity import native_outputs
from exporter.registration import load_builtin, user_converted_types
from exporter.registry import SKLEARN, TorchAdapter, registry, torch_adapter
from exporter.steps import class_path, flatten_steps, is_unfitted
from runtime.schema import Schema

Task = PipelineTask


def classify_step(step: Any, position: int, name: str, others_fitted: bool = False) -> Node:
    """The node kind of one top-level step, or raise UnsupportedStepError / NotFittedError.
    ``others_fitted``: the pipeline's other steps are fitted, so a step that looks unfitted here
    is stateless (it has no fitted attributes) and what it lacks is a converter."""
    load_builtin()
    steps = ((name, step),)
    entry = registry.lookup(type(step))
    if isinstance(entry, TorchAdapter):
        return Node(TORCH_NODE, steps, (position,), entry)
    if entry is SKLEARN or _registered_with_skl2onnx(type(step)):  # ours, or a user's skl2onnx converter
        return Node(SKLEARN_NODE, steps, (position,))
    adapter = torch_adapter(step)  # detected: predict/transform and a fitted module attribute
    if adapter is not None:
        return Node(TORCH_NODE, steps, (position,), adapter)
    kind = class_path(step)
    _refuse_unconvertible_container(step, position, name, kind)
    if type(step).__module__.split(".")[0] == "sklearn":  # sklearn's own type: no torch hint
        raise UnsupportedStepError(
            f"step {position} {name!r} ({kind}): skl2onnx has no converter for {type(step).__name__}; "
            f"register one with exporter.register_sklearn_converter({type(step).__name__}, builder) "
            "(README 'Extending') or replace the step"
        )
    hint = (
        "a torch-backed step must hold its fitted torch.nn.Module in an attribute (e.g. model_) and "
        "have predict/transform; a custom sklearn step needs a converter: "
        f"exporter.register_sklearn_converter({type(step).__name__}, builder) or "
        "skl2onnx.update_registered_converter — see README 'Extending'"
    )
    if any(getattr(step, k, False) is None for k in PREFERRED_MODULE_ATTRS):
        raise NotFittedError(
            f"step {position} {name!r} ({kind}) holds no fitted torch module: fit it before exporting"
        )
    if is_unfitted(step) and not others_fitted:
        raise NotFittedError(
            f"step {position} {name!r} ({kind}) is not fitted: fit it before exporting (a torch wrapper "
            "is recognised once it holds its fitted module)"
        )
    raise UnsupportedStepError(f"step {position} {name!r} ({kind}) is not supported: {hint}")


# The containers that carry torch leaves (skl2onnx converts them; nested.py registers the leaves).
CONTAINERS = (
    "Pipeline, ColumnTransformer, FeatureUnion, VotingClassifier/Regressor, StackingClassifier/Regressor, "
    "CalibratedClassifierCV, TransformedTargetRegressor, MultiOutputRegressor, OneVsRestClassifier, "
    "BaggingClassifier/Regressor"
)


def _refuse_unconvertible_container(step: Any, position: int, name: str, kind: str) -> None:
    """A container skl2onnx cannot convert, holding a torch leaf: say which, and what to do."""
    try:
        leaves = nested_leaves(step)
    except Exception:  # an exotic object graph: the generic refusal below still applies
        return
    if leaves:
        path, leaf, _ = leaves[0]
        raise UnsupportedStepError(
            f"step {position} {name!r} ({kind}) holds the torch-backed {type(leaf).__name__} at "
            f"{path}, but skl2onnx has no converter for {type(step).__name__}: put the net in one of "
            f"the containers hybridonnx converts ({CONTAINERS}), or register a converter for "
            f"{type(step).__name__} with skl2onnx.update_registered_converter (README 'Extending')"
        )


def _registered_with_skl2onnx(cls: type) -> bool:
    """A user's own skl2onnx converter — not the one nested.py registers for a torch leaf type
    (which stays a torch node at the top level of a pipeline)."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    return cls in sklearn_operator_name_map and cls not in registered_leaf_types()


def make_nodes(estimator: Any) -> tuple[Node, ...]:
    """The top-level nodes of a fitted estimator; unsupported or unfitted steps fail here, first."""
    steps = flatten_steps(estimator)
    if not steps:
        raise UnsupportedStepError("the pipeline has no steps to export (all are 'passthrough')")
    fitted = [not is_unfitted(step) for _, step in steps]
    nodes: list[Node] = []
    for position, (name, step) in enumerate(steps):
        others = any(f for k, f in enumerate(fitted) if k != position)
        node = classify_step(step, position, name, others_fitted=others)
        if nodes and node.kind == nodes[-1].kind == "sklearn":
            nodes[-1] = nodes[-1].extended(node)  # consecutive sklearn steps convert together
        else:
            nodes.append(node)
    nodes[-1] = nodes[-1].as_last()
    _check_fitted(nodes)
    return tuple(nodes)


def _check_fitted(nodes: list[Node]) -> None:
    """sklearn's own types must be fitted; a user's converted step (register_sklearn_converter or
    skl2onnx's table) may be stateless, with no fitted attribute to tell: the user vouches."""
    for node in nodes:
        if node.kind != "sklearn":
            continue
        for (name, step), position in zip(node.steps, node.positions, strict=True):
            vouched = type(step) in user_converted_types() or registry.lookup(type(step)) is None
            if not vouched and is_unfitted(step):
                raise NotFittedError(
                    f"step {position} {name!r} ({type(step).__name__}) is not fitted: "
                    "fit the pipeline before exporting"
                )


def task_of(nodes: tuple[Node, ...]) -> Task:
    return nodes[-1].strategy.task(nodes[-1])


def untested_steps(plan: Plan) -> list[str]:
    """sklearn types (nested ones included) that skl2onnx converts but hybridonnx has no case for."""
    found: list[str] = []
    for probed in plan.nodes:
        found += [t for t in probed.node.strategy.untested_types(probed.node) if t not in found]
    return found


def probe(nodes: tuple[Node, ...], sample: Any, task: Task) -> tuple[Probed, ...]:
    """Run every node natively on the sample, each on what the one before it gave."""
    probed, x = [], sample
    for node in nodes:
        result = node.strategy.probe(node, x, task)
        probed.append(result)
        x = result.native_out
    return tuple(probed)


def make_plan(estimator: Any, nodes: tuple[Node, ...], schema: Schema, sample: Any) -> Plan:
    """Measure the nodes (from make_nodes) on the sample, decide the task, and record what the
    native pipeline answers there: the reference every later pass is judged against."""
    task = task_of(nodes)
    plan = Plan(estimator, probe(nodes, sample, task), schema, task, sample)
    with native_errors("the native pipeline"):
        expected = native_outputs(estimator, sample, plan.outputs)
    return Plan(estimator, plan.nodes, schema, task, sample, expected)


def feeds_torch_float32(nodes: tuple[Node, ...]) -> bool:
    """Whether the native path must be fed float32: torch wrappers are fit on float32."""
    return any(node.strategy.native_float32 for node in nodes)
