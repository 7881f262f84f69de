"""Model passes: an ordered list of ModelProto → ModelProto functions, configured as data.

Structural passes (``check``, ``infer_shapes``) always run. Optimizing passes (``lower``,
``fold_affine``, ``cleanup``) rewrite the graph; each one runs on a copy, shapes are inferred
again, and the copy is kept only if parity still holds (the caller's ``verify``): a pass that
would change the answers is reverted and the report says so. Later issues add quantisation, fp16,
opset down-conversion and ORT format as further entries of this table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import onnx

from exporter.compose import copy_model
from exporter.errors import ConversionError
from exporter.passes.cleanup import cleanup
from exporter.passes.fold import fold_affine
from exporter.passes.lower import cpu_only_nodes, lower


@dataclass(frozen=True)
class PassResult:
    name: str
    nodes_before: int
    nodes_after: int
    reverted: bool = False  # the rewrite broke parity and was dropped
    max_abs_error: float | None = None  # parity after the pass: worst numeric output vs native
    max_abs_change: float | None = None  # what the pass itself moved the numeric outputs by
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        if self.reverted:
            return f"{self.name}: reverted ({self.detail})"
        parity = ", parity ok" + (
            f" (max abs {self.max_abs_error:.1e})" if self.max_abs_error is not None else ""
        )
        change = f", moved outputs {self.max_abs_change:.1e}" if self.max_abs_change is not None else ""
        detail = f"; {self.detail}" if self.detail else ""
        return f"{self.name}: {self.nodes_before} → {self.nodes_after} nodes{parity}{change}{detail}"


Pass = Callable[[onnx.ModelProto], onnx.ModelProto]
# verify(model) → (parity passed, worst numeric error vs native, the model's outputs on the sample)
Verify = Callable[[onnx.ModelProto], tuple[bool, float | None, dict[str, Any]]]


def check(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnx.checker with full_check (strict shape inference included)."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConversionError(f"the merged model is not valid ONNX: {first}") from exc
    return model


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Record inferred intermediate shapes (value_info): helps runtimes plan memory, and tells the
    rewriting passes each value's type and width."""
    del model.graph.value_info[:]  # rewrites leave stale entries behind
    return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)


PASSES: dict[str, Pass] = {
    "check": check,
    "infer_shapes": infer_shapes,
    "lower": lower,
    "fold_affine": fold_affine,
    "cleanup": cleanup,
}
STRUCTURAL: tuple[str, ...] = ("check", "infer_shapes")
OPTIMIZING: tuple[str, ...] = ("lower", "fold_affine", "cleanup")
DEFAULT_PASSES: tuple[str, ...] = STRUCTURAL + OPTIMIZING


def run_passes(
    model: onnx.ModelProto, names: Sequence[str] = DEFAULT_PASSES, verify: Verify | None = None
) -> tuple[onnx.ModelProto, list[PassResult]]:
    """Apply the passes in order. Without ``verify`` the optimizing passes are skipped: a rewrite
    is only kept when parity vouches for it."""
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        raise ConversionError(f"unknown pass(es) {unknown}; available: {sorted(PASSES)}")
    results = []
    outputs: dict[str, Any] | None = None
    for name in names:
        before = len(model.graph.node)
        if name not in OPTIMIZING:
            model = PASSES[name](model)
            results.append(PassResult(name, before, len(model.graph.node)))
            continue
        if verify is None:
            continue
        if outputs is None:  # the unoptimized model's answers: what each pass may not move
            passed, _, outputs = verify(model)
            if not passed:  # keep the plain graph: it is the one diagnosis can explain
                verify = None
                results.append(
                    PassResult("optimize", before, before, True, None, None, "parity fails unoptimized")
                )
                continue
        candidate = copy_model(model)
        try:
            candidate = check(infer_shapes(PASSES[name](candidate)))
        except Exception as exc:  # a rewrite must never cost the user the export
            results.append(PassResult(name, before, before, reverted=True, detail=f"invalid graph: {exc}"))
            continue
        try:
            passed, error, new_outputs = verify(candidate)
        except Exception as exc:  # checker-valid but onnxruntime refuses it: revert, never fail the export
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            results.append(PassResult(name, before, before, reverted=True, detail=f"does not run: {first}"))
            continue
        change = _max_change(outputs, new_outputs)
        if not passed:
            detail = f"parity failed after it (worst error {error:.1e})" if error is not None else "parity"
            results.append(PassResult(name, before, before, True, error, change, detail))
            continue
        detail = _describe(name, model, candidate)
        model, outputs = candidate, new_outputs
        results.append(PassResult(name, before, len(model.graph.node), False, error, change, detail))
    return model, results


def _describe(name: str, before: onnx.ModelProto, after: onnx.ModelProto) -> str:
    if name == "lower":
        was, left = cpu_only_nodes(before), cpu_only_nodes(after)
        lowered = {op: n - left.get(op, 0) for op, n in was.items() if n - left.get(op, 0) > 0}
        rest = ", ".join(f"{n} {op}" for op, n in left.items()) or "none"
        if not lowered and any(op.startswith("ai.onnx.ml.") for op in left):
            return f"kept as is: a GPU would still hand back {rest}, and the ml kernels are faster on CPU"
        done = ", ".join(f"{n} {op.split('.')[-1]}" for op, n in lowered.items()) or "nothing"
        return f"lowered {done}; CPU-only left: {rest}"
    return ""


def _max_change(old: dict[str, Any], new: dict[str, Any]) -> float | None:
    import numpy as np

    worst = None
    for key, value in old.items():
        a, b = np.asarray(value), np.asarray(new.get(key))
        if a.dtype.kind != "f" or a.shape != b.shape or not a.size:
            continue
        diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
        worst = diff if worst is None else max(worst, diff)
    return worst


__all__ = ["DEFAULT_PASSES", "PASSES", "PassResult", "cpu_only_nodes", "run_passes"]
