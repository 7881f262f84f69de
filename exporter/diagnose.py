"""Per-stage diagnosis: when end-to-end parity fails, run each stage's own ONNX graph on the native
input of that stage and compare with the native output of that stage. The first stage that
diverges is where to look (a float32-fragile sklearn step, a wrong head, a converter bug)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from exporter.plan import Plan, Stage, as_dense

# Per-stage tolerance: stage outputs are features or logits, compared like export outputs.
STAGE_TOLERANCE = (1e-4, 1e-3)


@dataclass
class StageReport:
    stage: str
    passed: bool
    max_abs_error: float
    max_rel_error: float
    compared: str  # what was compared: "features", "module output", "probabilities", ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose(plan: Plan, tolerance: tuple[float, float] = STAGE_TOLERANCE) -> list[StageReport]:
    """One report per stage that has its own ONNX part, in pipeline order."""
    reports = []
    for stage in plan.stages:
        if stage.onnx_part is None:
            continue
        got, want, compared = _stage_outputs(stage, plan)
        if got is None or want is None:
            continue
        err = np.abs(got.astype(np.float64) - want.astype(np.float64))
        atol, rtol = tolerance
        passed = bool((err <= atol + rtol * np.abs(want)).all()) if err.size else True
        rel = float((err / np.maximum(np.abs(want), 1e-12)).max()) if err.size else 0.0
        reports.append(StageReport(stage.label, passed, float(err.max()) if err.size else 0.0, rel, compared))
    return reports


def first_divergence(reports: list[StageReport]) -> StageReport | None:
    return next((r for r in reports if not r.passed), None)


def _stage_outputs(stage: Stage, plan: Plan) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    import onnxruntime as ort

    sess = ort.InferenceSession(stage.onnx_part.SerializeToString(), providers=["CPUExecutionProvider"])
    values = dict(
        zip([o.name for o in sess.get_outputs()], sess.run(None, _feeds(sess, stage, plan)), strict=True)
    )
    first = next(iter(values.values()))
    if not stage.is_last:
        return first, as_dense(stage.native_out), "features"
    if stage.kind == "torch":
        return first, stage.module_out, "module output"
    if "probabilities" in values and hasattr(stage.estimator, "predict_proba"):
        return (
            values["probabilities"],
            np.asarray(stage.estimator.predict_proba(stage.native_in)),
            "probabilities",
        )
    if plan.task == "classifier":
        return None, None, "labels"  # compared end to end
    want = as_dense(stage.native_out)
    return first.reshape(want.shape), want, plan.task


def _feeds(sess: Any, stage: Stage, plan: Plan) -> dict[str, np.ndarray]:
    from runtime.inputs import prepare_feeds

    inputs = sess.get_inputs()
    if len(inputs) > 1:  # a ColumnTransformer reading one input per DataFrame column
        feeds, _ = prepare_feeds(stage.native_in, plan.schema)
        return {i.name: np.asarray(feeds[i.name]) for i in inputs}
    (spec,) = inputs
    if spec.type == "tensor(string)":
        return {spec.name: np.asarray(stage.native_in, dtype=object).reshape(-1, 1)}
    dtype = np.float64 if spec.type == "tensor(double)" else np.float32
    return {spec.name: np.ascontiguousarray(as_dense(stage.native_in), dtype=dtype)}
