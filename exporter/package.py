"""Make the model self-describing: one JSON document in ``metadata_props``, then check and save.

The runtime reads this document (schema, outputs, classes) to adapt inputs and restore native
output dtypes; ``runtime verify`` replays the golden rows on the target machine.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import secrets
from collections.abc import Mapping, Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from exporter.build import NodeSeams
from exporter.compose import elem_type
from exporter.diagnose import surviving
from exporter.errors import WriteError
from exporter.plan import Plan
from exporter.steps import class_path, n_rows
from runtime import integrity
from runtime.contract import ELEM_NAMES, METADATA_KEY
from runtime.metadata import Metadata, OutputSpec, StageRecord

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


def describe(plan: Plan, seams: Sequence[NodeSeams], model: onnx.ModelProto) -> Metadata:
    """The model's metadata document, built once from the plan and the merged graph: what the
    runtime needs (schema, outputs, classes) and where each node sits (``stages``). Later steps set
    only the fields they own (``Metadata.replace``): the passes their record and the seams that
    survived them, the parity check its report, the variants theirs."""
    outputs: dict[str, OutputSpec] = {}
    for value in model.graph.output:
        dims = value.type.tensor_type.shape.dim
        dtype = ELEM_NAMES.get(elem_type(value)) or str(elem_type(value))
        native = plan.expected.get(value.name)
        shape = [
            int(d.dim_value) if d.dim_value else _native_dim(native, i) for i, d in enumerate(dims) if i > 0
        ]
        outputs[value.name] = OutputSpec(
            dtype,
            [None, *shape],
            str(native.dtype) if native is not None else dtype,
            auxiliary=native is None,  # label_index: for the runtime, no native counterpart
        )
    stages = tuple(
        StageRecord(
            kind=probed.node.kind,
            steps=[name for name, _ in probed.node.steps],
            types=[class_path(step) for _, step in probed.node.steps],
            output=seam.output,  # where `exporter check` cuts the graph to judge each node alone
            nodes=seam.nodes,  # its nodes' name prefix (folded nodes keep the later node's)
            # torch leaves inside the node's containers: where diagnosis cuts to judge each
            leaves=[
                {"path": leaf.path, "type": type(leaf.step).__name__, **(cut or {})}
                for leaf, cut in zip(probed.leaves, seam.leaves, strict=False)
            ],
            exported=probed.exported,
            tried=list(probed.tried),
        )
        for probed, seam in zip(plan.nodes, seams, strict=True)
    )
    classes = _classes(plan) if plan.task == "classifier" else None
    return Metadata(
        task=plan.task,
        schema=plan.schema,
        outputs=outputs,
        stages=stages,
        classes=classes.tolist() if classes is not None else None,
        classes_dtype=str(classes.dtype) if classes is not None else None,
        versions=library_versions(),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    ).replace(**graph_facts(model))


def graph_facts(model: onnx.ModelProto) -> dict[str, Any]:
    """The metadata fields that describe the graph itself: set again whenever it is rewritten."""
    return {
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "ir_version": model.ir_version,
    }


def surviving_stages(meta: Metadata, model: onnx.ModelProto) -> tuple[StageRecord, ...]:
    """The stage records with the seams a pass folded away set to None."""
    seams = surviving(model, [s.output for s in meta.stages])
    return tuple(dataclasses.replace(s, output=seam) for s, seam in zip(meta.stages, seams, strict=True))


def _native_dim(native: np.ndarray | None, axis: int) -> int | None:
    return int(native.shape[axis]) if native is not None and native.ndim > axis else None


def _classes(plan: Plan) -> np.ndarray:
    """The labels predict can return: classes_, or indices when the head emits indices (skorch)."""
    head = plan.last.head
    if head is not None and head.labels is None:
        n = head.width if head.width > 1 else 2
        return np.arange(n).astype(plan.expected["label"].dtype)
    return np.asarray(plan.last.node.step.classes_)


def golden_rows(
    plan: Plan, expected: dict[str, np.ndarray], n: int = N_GOLDEN_ROWS, rows: list[int] | None = None
) -> dict[str, Any]:
    """A few sample rows (the first ``n``, or the first ``n`` of ``rows``) with the native answers,
    for on-device verification."""
    sample: Any = plan.sample
    n = min(n, _rows_within_budget(sample, expected))
    index = np.asarray(rows[:n] if rows is not None else range(min(n, n_rows(sample))), dtype=np.int64)
    if hasattr(sample, "iloc"):  # DataFrame: one list per column
        picked = sample.iloc[index]
        inputs: Any = {str(c): _jsonable(picked[c].to_numpy()) for c in picked.columns}
    elif isinstance(sample, Mapping):  # a torch module's named inputs: one array per name
        inputs = {str(k): _jsonable(np.asarray(v)[index]) for k, v in sample.items()}
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
    elif isinstance(sample, Mapping):
        row = {str(k): _jsonable(np.asarray(v)[:1]) for k, v in sample.items()}
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


def attach(model: onnx.ModelProto, meta: Metadata) -> onnx.ModelProto:
    """Write (or replace) the metadata document, and name the producer. Drops any seal: the
    content changed, so ``seal`` must run again once the model is final."""
    props = {p.key: p.value for p in model.metadata_props if p.key not in integrity.SEAL_KEYS}
    props[METADATA_KEY] = meta.to_json()
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


def read_metadata(model: onnx.ModelProto) -> Metadata:
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return Metadata.from_json(prop.value)
    raise WriteError("internal: the model carries no hybridonnx metadata")


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
