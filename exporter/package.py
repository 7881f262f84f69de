"""Make the model self-describing: one JSON document in ``metadata_props``, then check and save.

The runtime reads this document (schema, outputs, classes) to adapt inputs and restore native
output dtypes; ``runtime verify`` replays the golden rows on the target machine.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from exporter.compose import ELEM_NAMES, elem_type
from exporter.diagnose import stage_seams
from runtime.model import METADATA_KEY

if TYPE_CHECKING:
    from exporter.plan import Plan

FORMAT = "hybridonnx/1"
N_GOLDEN_ROWS = 5
_VERSIONED = (
    "hybridonnx",
    "numpy",
    "scikit-learn",
    "torch",
    "skl2onnx",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "skorch",
)


def build_metadata(plan: Plan, model: onnx.ModelProto, expected: dict[str, np.ndarray]) -> dict[str, Any]:
    outputs: dict[str, dict[str, Any]] = {}
    for value in model.graph.output:
        dims = value.type.tensor_type.shape.dim
        dtype = ELEM_NAMES.get(elem_type(value)) or str(elem_type(value))
        outputs[value.name] = {
            "dtype": dtype,
            "shape": [None]
            + [
                int(d.dim_value) if d.dim_value else _native_dim(expected, value.name, i)
                for i, d in enumerate(dims)
                if i > 0
            ],
            "native_dtype": str(expected[value.name].dtype) if value.name in expected else dtype,
        }
        if value.name not in expected:  # label_index: for the runtime, no native counterpart
            outputs[value.name]["auxiliary"] = True
    meta: dict[str, Any] = {
        "format": FORMAT,
        "task": plan.task,
        **plan.schema.to_dict(),
        "outputs": outputs,
        "stages": [
            {
                "kind": s.kind,
                "steps": [name for name, _ in s.steps],
                "types": [f"{type(step).__module__}.{type(step).__qualname__}" for _, step in s.steps],
                "output": seam,  # where `exporter check` cuts the graph to judge each stage alone
                "nodes": s.part,  # its nodes' name prefix (folded nodes keep the later stage's)
            }
            for s, seam in zip(plan.stages, stage_seams(model, plan.stages), strict=True)
        ],
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "ir_version": model.ir_version,
        "versions": library_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if plan.task == "classifier":
        classes = _classes(plan)
        meta["classes"] = classes.tolist()
        meta["classes_dtype"] = str(classes.dtype)
    return meta


def _native_dim(expected: dict[str, np.ndarray], name: str, axis: int) -> int | None:
    value = expected.get(name)
    return int(value.shape[axis]) if value is not None and value.ndim > axis else None


def _classes(plan: Plan) -> np.ndarray:
    """The labels predict can return: classes_, or indices when the head emits indices (skorch)."""
    stage = plan.stages[-1]
    if stage.head is not None and stage.head.labels is None:
        n = stage.head.width if stage.head.width > 1 else 2
        return np.arange(n).astype(plan.expected["label"].dtype)
    return np.asarray(plan.final_step.classes_)


def golden_rows(
    plan: Plan, expected: dict[str, np.ndarray], n: int = N_GOLDEN_ROWS, rows: list[int] | None = None
) -> dict[str, Any]:
    """A few sample rows (the first ``n``, or the first ``n`` of ``rows``) with the native answers,
    for on-device verification."""
    sample: Any = plan.sample
    index = np.asarray(rows[:n] if rows is not None else range(min(n, len(sample))), dtype=np.int64)
    if hasattr(sample, "iloc"):  # DataFrame: one list per column
        picked = sample.iloc[index]
        inputs: Any = {str(c): _jsonable(picked[c].to_numpy()) for c in picked.columns}
    else:
        inputs = _jsonable(np.asarray(sample)[index])
    return {"inputs": inputs, "outputs": {k: _jsonable(np.asarray(v)[index]) for k, v in expected.items()}}


def _jsonable(array: np.ndarray) -> Any:
    array = np.asarray(array)
    if array.dtype.kind in "OUS":
        return array.astype(str).tolist()
    return array.tolist()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def attach(model: onnx.ModelProto, meta: dict[str, Any]) -> onnx.ModelProto:
    """Write (or replace) the metadata document, and name the producer."""
    props = {p.key: p.value for p in model.metadata_props}
    props[METADATA_KEY] = json.dumps(meta, separators=(",", ":"), allow_nan=True)
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "hybridonnx"
    model.producer_version = library_versions().get("hybridonnx", "0")
    return model


def read_metadata(model: onnx.ModelProto) -> dict[str, Any]:
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return {}


def save(model: onnx.ModelProto, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.checker.check_model(model, full_check=True)
    path.write_bytes(model.SerializeToString())
    return path
