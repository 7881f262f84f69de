"""Per-node diagnosis: when end-to-end parity fails, say which node of the model's tree diverges.

The model's metadata records, for every top-level node, the tensor that carries its output in the
merged graph (its *seam*), and for every torch leaf nested in a node, its input and outputs. Diagnosis
cuts the model there (``onnx.utils.Extractor``), feeds each piece the *native* input of its node (or
leaf) and compares it with the native output. Each piece is judged on its own, not on the drift of
the ones before it, and it is the model at hand that is judged: the same code serves the export (on
the sample rows) and ``exporter check`` (on the user's rows, against a model from any export).

What the pieces of a node are is its strategy's business (``nodes.py``): a torch node at the end is
two pieces (the module on its raw outputs, then the head); a sklearn node's leaves are judged before
the node. Nodes whose seam a pass folded away are judged together with the next one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import onnx

from exporter.nodes import Cut, Piece, Plan
from exporter.steps import as_dense

# Per-node tolerance: node outputs are features or logits, compared like export outputs.
STAGE_TOLERANCE = (1e-4, 1e-3)


@dataclass
class StageReport:
    stage: str
    passed: bool
    max_abs_error: float
    max_rel_error: float
    compared: str  # what was compared: "features", "module output", "probabilities", "labels", ...
    label_agreement: float | None = None  # where labels were compared
    differs: str | None = None  # how, when it fails: "shape ...", "scale x2.5", "rounding", "values"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def surviving(model: onnx.ModelProto, seams: Sequence[str | None]) -> list[str | None]:
    """The seams that still exist in ``model`` (a pass may have folded one away)."""
    produced = {name for node in model.graph.node for name in node.output}
    return [s if s in produced else None for s in seams]


def diagnose(
    model: onnx.ModelProto,
    plan: Plan,
    expected: dict[str, np.ndarray],
    records: Sequence[dict[str, Any]],
    tolerance: tuple[float, float] = STAGE_TOLERANCE,
) -> list[StageReport]:
    """One report per piece, in pipeline order. ``plan``: probed on the rows being checked;
    ``expected``: the native pipeline's outputs on those rows; ``records``: the model's metadata
    ``stages`` (one per plan node: ``output`` seam and ``leaves`` cuts)."""
    import onnxruntime as ort

    from runtime.inputs import prepare_feeds

    if len(records) != len(plan.nodes):
        return [
            StageReport(
                f"the model has {len(records)} stages, the pipeline {len(plan.nodes)}",
                False,
                float("nan"),
                float("nan"),
                "stage layout",
            )
        ]
    extractor = onnx.utils.Extractor(model)
    reports = []
    for piece in _pieces(model, plan, expected, records):
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
    model: onnx.ModelProto, plan: Plan, expected: dict[str, np.ndarray], records: Sequence[dict[str, Any]]
) -> Iterator[Piece]:
    public_in = [i.name for i in model.graph.input]
    final = {o.name: expected[o.name] for o in model.graph.output if o.name in expected}
    produced = {name for node in model.graph.node for name in node.output} | set(public_in)
    start: Cut = Cut(public_in)
    pending: list[str] = []
    for probed, record in zip(plan.nodes, records, strict=True):
        strategy, seam = probed.node.strategy, record.get("output")
        seam = seam if seam in produced else None
        # The node's children (torch leaves inside its containers) are judged first.
        yield from strategy.leaf_pieces(probed, _leaf_cuts(record), produced)
        pending.append(probed.node.label)
        label = " + ".join(pending)
        if probed.node.is_last:
            yield from strategy.final_pieces(probed, label, start, seam, final, plan.task)
        elif seam is not None:  # else folded into the next node: judged with it
            want = {seam: as_dense(probed.native_out)}
            yield Piece(label, start.inputs, [seam], start.feed, want, "features")
            start, pending = Cut([seam], probed.native_out), []


def _leaf_cuts(record: dict[str, Any]) -> list[dict[str, Any] | None]:
    return [leaf if "input" in leaf else None for leaf in record.get("leaves", [])]


def _judge(piece: Piece, got: dict[str, np.ndarray], tolerance: tuple[float, float]) -> StageReport:
    atol, rtol = tolerance
    passed, max_abs, max_rel, agreement = True, 0.0, 0.0, None
    compared, differs = [], None
    for name, want in piece.want.items():
        value = np.asarray(got[name])
        want = np.asarray(want)
        if name == "label":
            if value.size != want.size:  # a graph answering the wrong number of labels
                shape = f"shape {value.shape}, native {want.shape}"
                return StageReport(
                    piece.label,
                    False,
                    float("inf"),
                    float("inf"),
                    f"labels shape {value.shape}",
                    differs=shape,
                )
            same = _labels_equal(value.reshape(want.shape), want)
            agreement = float(same.mean()) if same.size else 1.0
            passed &= bool(same.all())
            compared.append("labels")
            continue
        compared.append(name if name in ("probabilities", "prediction", "features") else piece.compared)
        if value.size != want.size:
            shape = f"shape {value.shape}, native {want.shape}"
            return StageReport(
                piece.label, False, float("inf"), float("inf"), f"{name} shape {value.shape}", differs=shape
            )
        err = np.abs(value.reshape(want.shape).astype(np.float64) - want.astype(np.float64))
        if not err.size:
            continue
        ok = bool((err <= atol + rtol * np.abs(want)).all())
        if not ok and differs is None:
            differs = how_it_differs(value.reshape(want.shape), want)
        passed &= ok
        max_abs = max(max_abs, float(err.max()))
        max_rel = max(max_rel, float((err / np.maximum(np.abs(want), 1e-12)).max()))
    return StageReport(piece.label, passed, max_abs, max_rel, " + ".join(compared), agreement, differs)


# "A few float32 ulps": an error this small against the values involved is rounding; beyond it,
# something else differs (a shape, a scale, the logic) and the advice must say that instead.
ROUNDING_ULPS = 16


def within_rounding(got: np.ndarray, want: np.ndarray) -> bool:
    """Whether every difference is within a few float32 ulps of the values compared."""
    want = np.asarray(want, dtype=np.float64)
    scale = np.maximum(np.abs(want), np.abs(np.asarray(got, dtype=np.float64)))
    ulps = np.spacing(scale.astype(np.float32)).astype(np.float64)
    return bool(np.all(np.abs(np.asarray(got, dtype=np.float64) - want) <= ROUNDING_ULPS * ulps))


def how_it_differs(got: np.ndarray, want: np.ndarray) -> str:
    """In a few words: "rounding", "scale x2.00" (got is want times a constant), "offset +1.5",
    or "values" (something else: the logic differs)."""
    got64, want64 = np.asarray(got, dtype=np.float64).ravel(), np.asarray(want, dtype=np.float64).ravel()
    if within_rounding(got64, want64):
        return "rounding"
    norm = float(want64 @ want64)
    if norm > 0:
        scale = float(got64 @ want64) / norm
        if abs(scale - 1) > 1e-3 and np.allclose(got64, scale * want64, rtol=1e-3, atol=1e-6):
            return f"scale x{scale:.3g}"
    offset = float(np.mean(got64 - want64))
    if abs(offset) > 1e-6 and np.allclose(got64, want64 + offset, rtol=1e-3, atol=1e-6):
        return f"offset {offset:+.3g}"
    return "values"


def _unjudged(piece: Piece, why: str) -> StageReport:
    return StageReport(piece.label, True, float("nan"), float("nan"), f"not compared: {why}")


def _labels_equal(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    if got.dtype.kind in "biuf" and want.dtype.kind in "biuf":
        return np.asarray(got.astype(np.float64) == want.astype(np.float64))
    return np.asarray(got.astype(str) == want.astype(str))
