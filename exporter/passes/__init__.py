"""Model passes: an ordered list of ModelProto → ModelProto functions, configured as data.

Each pass has a name and reports what it changed; ``run_passes`` applies them in order. Later
issues add affine folding, onnxruntime offline optimisation, quantisation, fp16, opset
down-conversion and ORT format as further entries of this list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import onnx

from exporter.errors import ConversionError


@dataclass(frozen=True)
class PassResult:
    name: str
    nodes_before: int
    nodes_after: int

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "nodes_before": self.nodes_before, "nodes_after": self.nodes_after}


Pass = Callable[[onnx.ModelProto], onnx.ModelProto]


def check(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnx.checker with full_check (strict shape inference included)."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConversionError(f"the merged model is not valid ONNX: {first}") from exc
    return model


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Record inferred intermediate shapes (value_info): helps runtimes plan memory."""
    return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)


PASSES: dict[str, Pass] = {"check": check, "infer_shapes": infer_shapes}
DEFAULT_PASSES: tuple[str, ...] = ("check", "infer_shapes")


def run_passes(
    model: onnx.ModelProto, names: Sequence[str] = DEFAULT_PASSES
) -> tuple[onnx.ModelProto, list[PassResult]]:
    results = []
    for name in names:
        if name not in PASSES:
            raise ConversionError(f"unknown pass {name!r}; available: {sorted(PASSES)}")
        before = len(model.graph.node)
        model = PASSES[name](model)
        results.append(PassResult(name, before, len(model.graph.node)))
    return model, results
