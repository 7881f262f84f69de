"""Heads: the graph that turns a torch module's raw output into the step's public outputs.

A skorch net or a hand-written wrapper applies its "head" outside the module: softmax or sigmoid
for ``predict_proba``, ``classes_[argmax]`` or a threshold for ``predict``, a reshape for
regressors. ``Head`` declares that head as data; ``build_head`` writes it as ONNX nodes so the
exported model answers exactly like the estimator's own methods. The parity check proves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from runtime.contract import LABEL_INDEX  # the index output of heads with string classes

PipelineTask = Literal["classifier", "regressor", "transformer"]
Task = Literal["auto", "classifier", "regressor", "transformer"]
Proba = Literal["softmax", "sigmoid", "identity"]


@dataclass(frozen=True)
class Head:
    """How a torch-backed step's module output becomes its ``predict`` / ``predict_proba``.

    task:      ``"auto"``: classifier when the step has ``classes_``, regressor when it is the last
               step, transformer (module output = features) otherwise.
    proba:     what turns the module output into probabilities: ``"softmax"`` (default),
               ``"sigmoid"`` or ``"identity"`` (the module already returns probabilities). A single
               output column becomes the two columns ``[1 - p, p]``, like skorch does.
    threshold: binary only: ``predict`` is ``proba[:, 1] > threshold`` instead of argmax.
    labels:    ``"classes"``: ``predict`` returns ``classes_[index]``; ``"index"``: the index itself
               (skorch's ``NeuralNetClassifier.predict`` does this).
    """

    task: Task = "auto"
    proba: Proba = "softmax"
    threshold: float | None = None
    labels: Literal["classes", "index"] = "classes"

    def __post_init__(self) -> None:
        # Checked here because users build Heads by hand (register_wrapper).
        if self.task not in ("auto", "classifier", "regressor", "transformer"):
            raise ValueError(f"Head(task={self.task!r}): use auto, classifier, regressor or transformer")
        if self.proba not in ("softmax", "sigmoid", "identity"):
            raise ValueError(f"Head(proba={self.proba!r}): use softmax, sigmoid or identity")
        if self.labels not in ("classes", "index"):
            raise ValueError(f"Head(labels={self.labels!r}): use classes or index")

    def __repr__(self) -> str:
        fields = [f"{k}={v!r}" for k, v in vars(self).items() if v != Head.__dataclass_fields__[k].default]
        return f"Head({', '.join(fields)})"


@dataclass(frozen=True)
class ResolvedHead:
    """A Head made concrete for one fitted step and its measured module output."""

    task: PipelineTask
    proba: Proba
    threshold: float | None
    labels: np.ndarray | None  # index → label; None: the index is the label
    module_ndim: int  # 1: module returns (N,), 2: (N, k)
    width: int  # columns of the module output (1 for a (N,) output)
    squeeze: bool  # regressor: native predict is (N,) while the module gives (N, 1)
    declared: Head


def resolve_head(
    head: Head, step: Any, module_output: np.ndarray, native_predict: np.ndarray | None, task: PipelineTask
) -> ResolvedHead:
    """Make ``head`` concrete for the final step; ``task`` is the pipeline's (see plan.task_of)."""
    proba = head.proba
    width = 1 if module_output.ndim == 1 else module_output.shape[1]
    labels = None
    if task == "classifier":
        classes = np.asarray(step.classes_) if hasattr(step, "classes_") else np.arange(max(width, 2))
        if proba == "softmax" and width == 1 and len(classes) == 2:
            # Softmax of one logit is constant 1: the only sane default for a single logit is sigmoid.
            proba = "sigmoid"
        labels = classes if head.labels == "classes" else None
    squeeze = (
        task == "regressor"
        and native_predict is not None
        and native_predict.ndim == 1
        and module_output.ndim == 2
        and module_output.shape[1] == 1
    )
    return ResolvedHead(task, proba, head.threshold, labels, module_output.ndim, width, squeeze, head)


def apply_head_numpy(resolved: ResolvedHead, output: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The head in NumPy: (predict, predict_proba). Used to diagnose a head that does not match."""
    if resolved.task != "classifier":
        out = output.reshape(-1) if resolved.squeeze else output
        return out, None
    z = output.astype(np.float64).reshape(len(output), -1)
    if resolved.proba == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
    elif resolved.proba == "sigmoid":
        p = 1.0 / (1.0 + np.exp(-z))
    else:
        p = z
    if p.shape[1] == 1:
        p = np.hstack([1.0 - p, p])
    index = (
        (p[:, 1] > resolved.threshold).astype(np.int64)
        if resolved.threshold is not None
        else p.argmax(axis=1)
    )
    label = resolved.labels[index] if resolved.labels is not None else index
    return label, p


def suggest_head(
    resolved: ResolvedHead, output: np.ndarray, native_proba: np.ndarray | None, native_predict: np.ndarray
) -> Head | None:
    """Find a declared Head whose NumPy result matches the native outputs, for the error message."""
    candidates = [
        Head(task="classifier", proba=p, threshold=t, labels=lab)
        for p in ("softmax", "sigmoid", "identity")
        for t in (None, 0.5)
        for lab in ("classes", "index")
    ]
    for candidate in candidates:
        trial = ResolvedHead(
            "classifier",
            candidate.proba,
            candidate.threshold,
            resolved.labels if candidate.labels == "classes" else None,
            resolved.module_ndim,
            resolved.width,
            False,
            candidate,
        )
        if trial.labels is None and resolved.labels is None and candidate.labels == "classes":
            continue
        label, proba = apply_head_numpy(trial, output)
        if native_proba is not None and (
            proba is None
            or proba.shape != native_proba.shape
            or not np.allclose(proba, native_proba, atol=1e-4, rtol=1e-3)
        ):
            continue
        if label.shape == native_predict.shape and np.array_equal(
            label.astype(object), native_predict.astype(object)
        ):
            return candidate
    return None


def build_head(resolved: ResolvedHead, input_name: str, elem_type: int) -> Any:
    """The head as an ONNX model: one input (the module output) → the public outputs."""
    from onnx import TensorProto, helper, numpy_helper

    from exporter.compose import make_part

    nodes: list[Any] = []
    inits: list[Any] = []
    x = input_name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    in_shape: list[Any] = ["N"] if resolved.module_ndim == 1 else ["N", None]
    inputs = [helper.make_tensor_value_info(x, elem_type, in_shape)]
    if resolved.task == "classifier":
        if resolved.module_ndim == 1:
            x = node("Unsqueeze", [x, const("axes_1", np.array([1], np.int64))], "logits_2d")
        if elem_type != TensorProto.FLOAT:
            x = node("Cast", [x], "logits_f32", to=TensorProto.FLOAT)
        if resolved.proba == "softmax":
            p = node("Softmax", [x], "p_raw", axis=-1)
        elif resolved.proba == "sigmoid":
            p = node("Sigmoid", [x], "p_raw")
        else:
            p = node("Identity", [x], "p_raw")
        # A single column p becomes [1 - p, p]: the two-class convention of sklearn and skorch.
        # Done with a runtime-shaped Concat so the same head serves k > 1 columns unchanged.
        proba_out = "probabilities"
        if resolved.width == 1:
            q = node("Sub", [const("one", np.array(1.0, np.float32)), p], "p_neg")
            node("Concat", [q, p], proba_out, axis=1)
        else:
            node("Identity", [p], proba_out)
        if resolved.threshold is not None:
            pos = node("Gather", [proba_out, const("col_1", np.array(1, np.int64))], "p_pos", axis=1)
            gt = node(
                "Greater", [pos, const("threshold", np.array(resolved.threshold, np.float32))], "is_pos"
            )
            index = node("Cast", [gt], LABEL_INDEX, to=TensorProto.INT64)
        else:
            index = node("ArgMax", [proba_out], LABEL_INDEX, axis=1, keepdims=0)
        if resolved.labels is not None:
            labels = np.asarray(resolved.labels)
            table = labels.astype(object) if labels.dtype.kind in "OUS" else labels.astype(np.int64)
            if labels.dtype.kind == "f":
                table = labels.astype(np.float32)
            node("Gather", [const("classes", table), index], "label", axis=0)
        else:
            node("Identity", [index], "label")
        label_type = _label_elem_type(resolved.labels)
        outputs = [
            helper.make_tensor_value_info("label", label_type, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", None]),
        ]
        if label_type == TensorProto.STRING:
            # Also the class index: handing a string output to Python builds one str object per row
            # (7 ms at 65,536 rows, measured); the runtime asks for the index and maps it in NumPy.
            outputs.append(helper.make_tensor_value_info(LABEL_INDEX, TensorProto.INT64, ["N"]))
    else:
        name = "prediction" if resolved.task == "regressor" else "features"
        if resolved.squeeze:
            node("Reshape", [x, const("flat", np.array([-1], np.int64))], name)
            shape: list[Any] = ["N"]
        else:
            node("Identity", [x], name)
            shape = in_shape
        outputs = [helper.make_tensor_value_info(name, elem_type, shape)]
    graph = helper.make_graph(nodes, "head", inputs, outputs, inits)
    return make_part(graph)


def _label_elem_type(labels: np.ndarray | None) -> int:
    from onnx import TensorProto

    if labels is None:
        return TensorProto.INT64
    kind = np.asarray(labels).dtype.kind
    return TensorProto.STRING if kind in "OUS" else TensorProto.FLOAT if kind == "f" else TensorProto.INT64
