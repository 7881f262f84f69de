"""Per-stage diagnosis: when end-to-end parity fails, say which stage of the model diverges.

The exporter records in the model's metadata, for every stage, the tensor that carries the stage's
output in the merged graph (its *seam*). Diagnosis cuts the model at those seams
(``onnx.utils.Extractor``), feeds each piece the *native* input of its stage and compares it with
the native output of that stage. Each stage is thus judged on its own, not on the drift of the
stages before it, and it is the model at hand that is judged: the same code serves the export
(on the sample rows) and ``exporter check`` (on the user's rows, against a model from any export).

A torch stage at the end is two pieces: the module (compared on its raw outputs) and the head
(labels and probabilities built from those outputs). Stages whose seam a pass folded away are
judged together with the next one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import onnx

from exporter.plan import Plan, Stage, as_dense

# Per-stage tolerance: stage outputs are features or logits, compared like export outputs.
STAGE_TOLERANCE = (1e-4, 1e-3)


@dataclass
class StageReport:
    stage: str
    passed: bool
    max_abs_error: float
    max_rel_error: float
    compared: str  # what was compared: "features", "module output", "probabilities", "labels", ...
    label_agreement: float | None = None  # where labels were compared

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Piece:
    """A cut of the merged graph: from ``inputs`` to ``outputs``, with what native code gives."""

    label: str
    inputs: list[str]
    outputs: list[str]
    feed: Any  # native value for a seam input; None: the public inputs, from the plan's sample
    want: dict[str, np.ndarray]
    compared: str


def stage_seams(model: onnx.ModelProto, stages: list[Stage]) -> list[str | None]:
    """The seam of each stage that still exists in ``model`` (a pass may have folded it away)."""
    produced = {name for node in model.graph.node for name in node.output}
    return [s.seam if s.seam in produced else None for s in stages]


def diagnose(
    model: onnx.ModelProto,
    plan: Plan,
    expected: dict[str, np.ndarray],
    seams: list[str | None],
    tolerance: tuple[float, float] = STAGE_TOLERANCE,
) -> list[StageReport]:
    """One report per piece, in pipeline order. ``plan``: probed on the rows being checked;
    ``expected``: the native pipeline's outputs on those rows; ``seams``: one per plan stage."""
    import onnxruntime as ort

    from runtime.inputs import prepare_feeds

    if len(seams) != len(plan.stages):
        return [
            StageReport(
                f"the model has {len(seams)} stages, the pipeline {len(plan.stages)}",
                False,
                float("nan"),
                float("nan"),
                "stage layout",
            )
        ]
    extractor = onnx.utils.Extractor(model)
    reports = []
    for piece in _pieces(model, plan, expected, seams):
        try:
            part = extractor.extract_model(piece.inputs, piece.outputs)
        except Exception as exc:  # a seam without a recorded type: cannot cut here
            reports.append(_unjudged(piece, f"cannot cut the graph here ({type(exc).__name__})"))
            continue
        sess = ort.InferenceSession(part.SerializeToString(), providers=["CPUExecutionProvider"])
        if piece.feed is None:
            feeds, _ = prepare_feeds(plan.sample, plan.schema)
            feeds = {i.name: np.asarray(feeds[i.name]) for i in sess.get_inputs()}
        else:
            (spec,) = part.graph.input
            dtype = onnx.helper.tensor_dtype_to_np_dtype(spec.type.tensor_type.elem_type)
            feeds = {spec.name: np.ascontiguousarray(as_dense(piece.feed), dtype=dtype)}
        got = dict(zip(piece.outputs, sess.run(piece.outputs, feeds), strict=True))
        reports.append(_judge(piece, got, tolerance))
    return reports


def first_divergence(reports: list[StageReport]) -> StageReport | None:
    return next((r for r in reports if not r.passed), None)


def _pieces(
    model: onnx.ModelProto, plan: Plan, expected: dict[str, np.ndarray], seams: list[str | None]
) -> Iterator[_Piece]:
    public_in = [i.name for i in model.graph.input]
    public_out = [o.name for o in model.graph.output if o.name in expected]
    final = {name: expected[name] for name in public_out}
    start, feed, pending = public_in, None, []
    produced = {name for node in model.graph.node for name in node.output} | set(public_in)
    for stage, seam in zip(plan.stages, seams, strict=True):
        yield from _leaf_pieces(stage, produced)  # a torch leaf inside the stage: judged first
        pending.append(stage)
        label = _label(pending)
        if not stage.is_last:
            if seam is None:
                continue  # folded into the next stage: judged with it
            yield _Piece(label, start, [seam], feed, {seam: as_dense(stage.native_out)}, "features")
            start, feed, pending = [seam], stage.native_out, []
        elif stage.kind == "torch" and seam is not None and stage.module_out is not None:
            yield _Piece(label, start, [seam], feed, {seam: stage.module_out}, "module output")
            yield _Piece(f"head of {_step_name(stage)}", [seam], public_out, stage.module_out, final, "head")
        else:
            # Fed the stage's native input, the last stage must give the pipeline's native outputs.
            yield _Piece(label, start, public_out, feed, final, plan.task)


def _leaf_pieces(stage: Stage, produced: set[str]) -> Iterator[_Piece]:
    """Each torch leaf nested in a container of the stage, cut at its own input and output (the
    aliases that survived the optimizer) and fed the rows it receives natively."""
    for leaf, seams in zip(stage.leaves, stage.leaf_seams, strict=False):
        if not seams:
            continue
        entry = next((n for n in seams["input"] if n in produced), None)
        exits = [next((n for n in names if n in produced), None) for names in seams["outputs"]]
        exit_ = exits[-1]  # probabilities for classifiers, the only output otherwise
        if entry is None or exit_ is None:
            continue  # folded into its neighbours by the optimizer: the stage is judged as a whole
        step = leaf.step
        if len(exits) > 1 and hasattr(step, "predict_proba"):
            want, what = np.asarray(step.predict_proba(leaf.rows)), "probabilities"
        elif hasattr(step, "transform") and not hasattr(step, "predict"):
            want, what = as_dense(step.transform(leaf.rows)), "features"
        else:
            want, what = np.asarray(step.predict(leaf.rows)), "prediction"
        label = f"torch leaf {type(step).__name__} at {leaf.path} in {stage.label}"
        yield _Piece(label, [entry], [exit_], leaf.rows, {exit_: want}, f"leaf {what}")


def _judge(piece: _Piece, got: dict[str, np.ndarray], tolerance: tuple[float, float]) -> StageReport:
    atol, rtol = tolerance
    passed, max_abs, max_rel, agreement = True, 0.0, 0.0, None
    compared = []
    for name, want in piece.want.items():
        value = np.asarray(got[name])
        want = np.asarray(want)
        if name == "label":
            same = _labels_equal(value.reshape(want.shape), want)
            agreement = float(same.mean()) if same.size else 1.0
            passed &= bool(same.all())
            compared.append("labels")
            continue
        compared.append(name if name in ("probabilities", "prediction", "features") else piece.compared)
        if value.size != want.size:
            return StageReport(piece.label, False, float("inf"), float("inf"), f"{name} shape {value.shape}")
        err = np.abs(value.reshape(want.shape).astype(np.float64) - want.astype(np.float64))
        if not err.size:
            continue
        passed &= bool((err <= atol + rtol * np.abs(want)).all())
        max_abs = max(max_abs, float(err.max()))
        max_rel = max(max_rel, float((err / np.maximum(np.abs(want), 1e-12)).max()))
    return StageReport(piece.label, passed, max_abs, max_rel, " + ".join(compared), agreement)


def _unjudged(piece: _Piece, why: str) -> StageReport:
    return StageReport(piece.label, True, float("nan"), float("nan"), f"not compared: {why}")


def _labels_equal(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    if got.dtype.kind in "biuf" and want.dtype.kind in "biuf":
        return np.asarray(got.astype(np.float64) == want.astype(np.float64))
    return np.asarray(got.astype(str) == want.astype(str))


def _label(stages: list[Stage]) -> str:
    return " + ".join(s.label for s in stages)


def _step_name(stage: Stage) -> str:
    return repr(stage.steps[-1][0])
