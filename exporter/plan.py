"""Walk a fitted estimator into stages, and measure each stage natively on the sample rows.

A *sklearn stage* is a maximal run of consecutive sklearn steps (converted together by skl2onnx);
a *torch stage* is one step backed by a fitted ``torch.nn.Module``. The native probe runs every
stage on the sample so later stages know their input widths and the head can be matched to what
the estimator's own ``predict`` returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from exporter.convert.heads import PipelineTask, ResolvedHead, resolve_head
from exporter.convert.nested import find_leaves
from exporter.convert.torch import PREFERRED_MODULE_ATTRS, find_module, module_attributes, run_module
from exporter.errors import ExportError, NotFittedError, SampleError, UnsupportedStepError
from exporter.registry import SKLEARN, TorchAdapter, load_builtin, registry
from runtime.inputs import Schema

Task = PipelineTask


@dataclass
class Stage:
    kind: Literal["sklearn", "torch"]
    steps: list[tuple[str, Any]]
    positions: list[int]
    adapter: TorchAdapter | None = None
    is_last: bool = False
    # Filled by probe():
    native_in: Any = None
    native_out: Any = None  # transform output, or the final step's predict output
    module: Any = None
    module_out: np.ndarray | None = None
    head: ResolvedHead | None = None
    # Set by convert_plan: the merged graph's tensor carrying this stage's output (the module's raw
    # output for a torch stage at the end; None for a final sklearn stage): where diagnosis cuts.
    seam: str | None = None
    part: str = ""  # the prefix of this stage's node names in the merged graph (compose.part_prefix)
    # sklearn stages: the torch leaves nested in their containers (convert/nested.py), found by
    # probe() with the rows each receives; and, set by convert_plan, where each lives in the graph.
    leaves: list[Any] = field(default_factory=list)
    leaf_seams: list[Any] = field(default_factory=list)

    @property
    def label(self) -> str:
        names = ", ".join(name for name, _ in self.steps)
        return f"{self.kind} stage [{names}]"

    @property
    def step(self) -> Any:
        return self.steps[-1][1]

    @property
    def estimator(self) -> Any:
        """The stage as one native estimator: its step, or a Pipeline over its fitted steps."""
        if len(self.steps) == 1:
            return self.step
        from sklearn.pipeline import Pipeline

        return Pipeline(self.steps)

    def transform(self, X: Any) -> Any:
        """Native output of a non-final stage: what the next stage receives."""
        return self.estimator.transform(X)


@dataclass
class Plan:
    estimator: Any
    stages: list[Stage]
    schema: Schema
    task: Task
    sample: Any = None
    expected: dict[str, np.ndarray] = field(default_factory=dict)  # native outputs on the sample

    @property
    def dtype(self) -> str:
        """Element type of the numeric inputs, used between stages too."""
        numeric = [s.dtype for s in self.schema.inputs if not s.is_string]
        return numeric[0] if numeric else "float32"

    @property
    def final_step(self) -> Any:
        return self.stages[-1].step


def flatten_steps(estimator: Any) -> list[tuple[str, Any]]:
    """A Pipeline (nested ones included) → its steps in order; a bare estimator → one step."""
    from sklearn.pipeline import Pipeline

    if not isinstance(estimator, Pipeline):
        return [(type(estimator).__name__, estimator)]
    steps: list[tuple[str, Any]] = []
    for name, step in estimator.steps:
        if step is None or step == "passthrough":
            continue
        if isinstance(step, Pipeline):
            steps += [(f"{name}__{inner}", s) for inner, s in flatten_steps(step)]
        else:
            steps.append((name, step))
    return steps


def classify_step(step: Any, position: int, name: str) -> tuple[str, TorchAdapter | None]:
    """("sklearn", None) or ("torch", adapter) for one step, or raise UnsupportedStepError."""
    load_builtin()
    entry = registry.lookup(type(step))
    if entry is SKLEARN:
        return "sklearn", None
    if isinstance(entry, TorchAdapter):
        return "torch", entry
    if _registered_with_skl2onnx(type(step)):  # a user's skl2onnx.update_registered_converter
        return "sklearn", None
    if (hasattr(step, "predict") or hasattr(step, "transform")) and module_attributes(step):
        return "torch", TorchAdapter(source="detected")
    kind = f"{type(step).__module__}.{type(step).__qualname__}"
    _refuse_unconvertible_container(step, position, name, kind)
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
    if _is_unfitted(step):
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
    from exporter.convert.nested import nested_leaves

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


def untested_steps(stages: list[Stage]) -> list[str]:
    """sklearn types (nested ones included) that skl2onnx converts but hybridonnx has no case for."""
    from exporter.schema import walk

    found = []
    for stage in stages:
        if stage.kind != "sklearn":
            continue
        for _, step in stage.steps:
            for est in [step, *walk(step)]:
                if registry.lookup(type(est)) is not SKLEARN and type(est).__name__ not in found:
                    found.append(type(est).__name__)
    return found


def _registered_with_skl2onnx(cls: type) -> bool:
    """A user's own skl2onnx converter — not the one nested.py registers for a torch leaf type
    (which stays a torch step at the top level of a pipeline)."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    from exporter.convert.nested import registered_leaf_types

    return cls in sklearn_operator_name_map and cls not in registered_leaf_types()


def _is_unfitted(step: Any) -> bool:
    from sklearn.exceptions import NotFittedError as SkNotFitted
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(step)
    except SkNotFitted:
        return True
    except TypeError:  # not a BaseEstimator: nothing to tell
        return False
    return False


def make_stages(estimator: Any) -> list[Stage]:
    steps = flatten_steps(estimator)
    if not steps:
        raise UnsupportedStepError("the pipeline has no steps to export (all are 'passthrough')")
    stages: list[Stage] = []
    for position, (name, step) in enumerate(steps):
        kind, adapter = classify_step(step, position, name)
        if kind == "sklearn" and stages and stages[-1].kind == "sklearn":
            stages[-1].steps.append((name, step))
            stages[-1].positions.append(position)
        else:
            stages.append(Stage(kind, [(name, step)], [position], adapter))  # type: ignore[arg-type]
    stages[-1].is_last = True
    _check_fitted(stages)
    return stages


def _check_fitted(stages: list[Stage]) -> None:
    from sklearn.exceptions import NotFittedError as SkNotFitted
    from sklearn.utils.validation import check_is_fitted

    for stage in stages:
        if stage.kind != "sklearn":
            continue
        for (name, step), position in zip(stage.steps, stage.positions, strict=True):
            try:
                check_is_fitted(step)
            except SkNotFitted:
                raise NotFittedError(
                    f"step {position} {name!r} ({type(step).__name__}) is not fitted: "
                    "fit the pipeline before exporting"
                ) from None
            except TypeError:
                pass  # not a BaseEstimator: nothing to check


def task_of(estimator: Any, stages: list[Stage]) -> Task:
    last = stages[-1]
    if last.kind == "torch":
        assert last.adapter is not None
        declared = last.adapter.head_for(last.step).task
        if declared != "auto":
            return declared
        return (
            "classifier"
            if hasattr(last.step, "classes_")
            else "regressor"
            if hasattr(last.step, "predict")
            else "transformer"
        )
    step = last.step
    if hasattr(step, "classes_") and hasattr(step, "predict"):
        return "classifier"
    if hasattr(step, "predict"):
        return "regressor"
    return "transformer"


def probe(stages: list[Stage], sample: Any, task: Task) -> None:
    """Run every stage natively on the sample; resolve torch heads against the native answers."""
    x = sample
    for stage in stages:
        stage.native_in = x
        if stage.kind == "torch":
            assert stage.adapter is not None
            stage.module = find_module(stage.step, stage.adapter.module, _step_label(stage))
            with native_errors(f"the module of {_step_label(stage)}"):
                stage.module_out = run_module(stage.module, as_dense(x))
        with native_errors(stage.label):
            if stage.kind == "sklearn":
                stage.leaves = find_leaves(stage.estimator, x, _native_methods(stage, task), stage.label)
            if stage.is_last:
                stage.native_out = _final_native(stage.estimator, x, task)
                _check_prediction_shape(stage, x, task)
            else:
                x = stage.native_out = stage.transform(x)
        if stage.is_last and stage.kind == "torch":
            assert stage.adapter is not None and stage.module_out is not None
            head = stage.adapter.head_for(stage.step)
            stage.head = resolve_head(head, stage.step, stage.module_out, stage.native_out, task)


def _check_prediction_shape(stage: Stage, rows: Any, task: Task) -> None:
    """What ``predict`` returns must be one answer per row: refuse, by name, the shapes the
    runtime's outputs cannot be (a MultiOutputRegressor over nets that answer (N, 1) predicts
    (1, N, k); a multi-output classifier answers (N, k) labels and a list of probabilities)."""
    if task == "transformer":
        return
    out = np.asarray(stage.native_out)
    n = rows.shape[0] if hasattr(rows, "shape") else len(rows)
    what = f"{stage.label}: predict returns shape {out.shape} for {n} rows"
    if out.ndim == 0 or out.shape[0] != n or out.ndim > 2:
        raise UnsupportedStepError(
            f"{what}, not one prediction per row: make each estimator's predict return (N,) or "
            "(N, k) (e.g. a skorch NeuralNetRegressor inside MultiOutputRegressor answers (N, 1): "
            "fit it on all targets at once instead)"
        )
    if task == "classifier" and out.ndim == 2:
        raise UnsupportedStepError(
            f"{what}: multi-output classification is not supported (one label per row only); "
            "export each output's estimator (e.g. MultiOutputClassifier.estimators_[i]) on its own"
        )


def _native_methods(stage: Stage, task: Task) -> list[str]:
    """What a stage's estimator is asked natively: transform for what the next stage needs; for
    the last stage, the methods of the pipeline's public outputs."""
    if not stage.is_last or task == "transformer":
        return ["transform"]
    proba = task == "classifier" and hasattr(stage.estimator, "predict_proba")
    return ["predict", "predict_proba"] if proba else ["predict"]


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


def _final_native(step: Any, x: Any, task: Task) -> np.ndarray:
    if task == "transformer":
        return as_dense(step.transform(x))
    return np.asarray(step.predict(x))


def as_dense(x: Any) -> np.ndarray:
    """Sparse matrices and DataFrames → a dense ndarray (what a torch module receives)."""
    if hasattr(x, "toarray"):
        x = x.toarray()
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    return np.asarray(x)


def _step_label(stage: Stage) -> str:
    name, step = stage.steps[-1]
    return f"step {stage.positions[-1]} {name!r} ({type(step).__name__})"


def make_plan(estimator: Any, stages: list[Stage], schema: Schema, sample: Any) -> Plan:
    """Measure the stages (from make_stages) on the sample and decide the task."""
    task = task_of(estimator, stages)
    probe(stages, sample, task)
    return Plan(estimator, stages, schema, task, sample)
