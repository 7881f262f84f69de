"""Make the model self-describing: one JSON document in ``metadata_props``, then check and save.

The runtime reads this document (schema, outputs, classes) to adapt inputs and restore native
output dtypes; ``runtime verify`` replays the golden rows on the target machine.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import secrets
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from exporter.compose import elem_type
from exporter.diagnose import stage_seams
from exporter.errors import WriteError
from runtime import integrity
from runtime.contract import ELEM_NAMES, FORMAT, METADATA_KEY

if TYPE_CHECKING:
    from exporter.plan import Plan

# Golden rows replayed by `runtime verify` and `exporter check` without --data. 5 were too few: a
# refit agreeing on 97% of labels passed 86% of the time (tests/exporter/test_check.py); 256 rows
# catch it 99.96% of the time. Wide inputs are capped by size instead (GOLDEN_BUDGET of JSON), and
# edge variants, which only `runtime verify` replays on the device, keep VARIANT_GOLDEN_ROWS: there
# the rows would outweigh an int8 graph.
N_GOLDEN_ROWS = 256
VARIANT_GOLDEN_ROWS = 32
GOLDEN_BUDGET = 128 * 1024
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
                # torch leaves inside the stage's containers: where diagnosis cuts to judge each
                "leaves": [
                    {"path": leaf.path, "type": type(leaf.step).__name__, **(cut or {})}
                    for leaf, cut in zip(s.leaves, s.leaf_seams, strict=False)
                ],
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
    n = min(n, _rows_within_budget(sample, expected))
    index = np.asarray(rows[:n] if rows is not None else range(min(n, len(sample))), dtype=np.int64)
    if hasattr(sample, "iloc"):  # DataFrame: one list per column
        picked = sample.iloc[index]
        inputs: Any = {str(c): _jsonable(picked[c].to_numpy()) for c in picked.columns}
    else:
        inputs = _jsonable(np.asarray(sample)[index])
    return {"inputs": inputs, "outputs": {k: _jsonable(np.asarray(v)[index]) for k, v in expected.items()}}


def _rows_within_budget(sample: Any, expected: dict[str, np.ndarray]) -> int:
    """How many rows fit GOLDEN_BUDGET, measured on the first row's JSON (at least 5)."""
    first = golden_row_bytes(sample, expected)
    return max(5, GOLDEN_BUDGET // max(first, 1))


def golden_row_bytes(sample: Any, expected: dict[str, np.ndarray]) -> int:
    if hasattr(sample, "iloc"):
        row: Any = {str(c): _jsonable(sample[c].to_numpy()[:1]) for c in sample.columns}
    else:
        row = _jsonable(np.asarray(sample)[:1])
    answers = {k: _jsonable(np.asarray(v)[:1]) for k, v in expected.items()}
    return len(json.dumps([row, answers], allow_nan=True))


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
    """Write (or replace) the metadata document, and name the producer. Drops any seal: the
    content changed, so ``seal`` must run again once the model is final."""
    props = {p.key: p.value for p in model.metadata_props if p.key not in integrity.SEAL_KEYS}
    props[METADATA_KEY] = json.dumps(meta, separators=(",", ":"), allow_nan=True)
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "hybridonnx"
    model.producer_version = library_versions().get("hybridonnx", "0")
    return model


def seal(model: onnx.ModelProto, key: bytes | None = None) -> onnx.ModelProto:
    """Add the content hash (and, with ``key``, the HMAC signature) over everything in the model:
    the last change to a model before it is written. ``runtime.load`` refuses a file whose content
    no longer matches (README "Integrity")."""
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in integrity.SEAL_KEYS]
    del model.metadata_props[:]
    for k, v in kept:
        model.metadata_props.add(key=k, value=v)
    for k, v in integrity.seal_entries(model.SerializeToString(), key).items():
        model.metadata_props.add(key=k, value=v)
    return model


def read_metadata(model: onnx.ModelProto) -> dict[str, Any]:
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return {}


def save(model: onnx.ModelProto, path: str | Path, files: Mapping[Path, bytes] | None = None) -> Path:
    """Check the model, then write it to ``path`` and ``files`` (its variants) all or nothing."""
    path = Path(path)
    onnx.checker.check_model(model, full_check=True)
    write_all_atomic({**(files or {}), path: model.SerializeToString()})  # the model renamed last
    return path


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that a failure (disk full) leaves the old file intact."""
    write_all_atomic({Path(path): data})
    return Path(path)


def write_all_atomic(files: Mapping[Path, bytes]) -> None:
    """Write every file to a temp file beside it (flushed and fsynced), then rename them all over
    their targets: a write that fails removes every temp file and leaves every old file as it was.

    Only a rename failing midway (rare: a target turned into a folder) can leave some files new.
    Raises WriteError (an OSError) naming the file and the reason."""
    # a symlinked model: replace the file it points to, as an in-place write did
    targets = {Path(os.path.realpath(path)): Path(path) for path in files}
    temps: dict[Path, Path] = {}
    current, renamed = Path(), 0
    try:
        for target, (path, data) in zip(targets, files.items(), strict=True):
            current = path
            target.parent.mkdir(parents=True, exist_ok=True)
            temps[target] = _write_temp(target, data)
        for target, temp in list(temps.items()):
            current = targets[target]
            os.replace(temp, target)
            del temps[target]
            renamed += 1
    except OSError as exc:
        state = (
            "the files already there are unchanged"
            if renamed == 0
            else f"{renamed} of {len(files)} files were already replaced"
        )
        raise WriteError(f"cannot write {str(current)!r}: {exc.strerror or exc}; {state}") from exc
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
    for folder in {target.parent for target in targets}:
        _fsync_folder(folder)


def _write_temp(target: Path, data: bytes) -> Path:
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        if target.exists():  # keep the old file's permissions, as an in-place write did
            os.chmod(temp, target.stat().st_mode & 0o7777)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return temp


def _fsync_folder(folder: Path) -> None:
    """Make the renames durable; not possible on every OS (Windows cannot open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
