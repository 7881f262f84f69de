"""The metadata document every exported model carries, as one typed value.

The exporter builds a ``Metadata`` once its graph is final and writes ``to_json()`` into the
model's ``metadata_props`` (key ``contract.METADATA_KEY``); the runtime reads it back with
``from_json`` / ``from_dict``, which check the ``format`` and every field the runtime relies on, so a
malformed or unknown document is refused at load, not on a later call. numpy only.

Fields this version does not know are kept in ``extra`` (a round trip loses nothing); the fields a
variant or a pass adds later (parity, golden rows, the variant record) are set with ``replace``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime.contract import FORMAT, FORMATS, TASKS
from runtime.schema import Schema


class MetadataError(ValueError):
    """The document is not one this runtime reads (the message says which field, and why)."""


@dataclass(frozen=True)
class OutputSpec:
    """One graph output: its ONNX dtype, shape (None for dynamic axes), the native method's dtype."""

    dtype: str
    shape: list[int | None]
    native_dtype: str
    auxiliary: bool = False  # no native counterpart (label_index): for the runtime only

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "dtype": self.dtype,
            "shape": list(self.shape),
            "native_dtype": self.native_dtype,
        }
        if self.auxiliary:
            doc["auxiliary"] = True
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> OutputSpec:
        np.dtype(doc["native_dtype"])  # raises TypeError for a dtype numpy does not know
        if not isinstance(doc["shape"], list):
            raise TypeError(f"shape {doc['shape']!r} is not a list")
        return cls(
            str(doc["dtype"]), list(doc["shape"]), str(doc["native_dtype"]), bool(doc.get("auxiliary"))
        )


@dataclass(frozen=True)
class StageRecord:
    """One top-level node of the exported tree: what it was, and where diagnosis cuts the graph."""

    kind: str  # "sklearn" or "torch"
    steps: list[str]
    types: list[str]
    output: str | None  # the tensor carrying the node's output (None: folded away, or the end)
    nodes: str  # the prefix of the node's node names
    leaves: list[dict[str, Any]] = field(default_factory=list)  # nested torch leaves: path, type, cuts
    # torch nodes: what the probe exported ("model_", "model_.encoder", "model_ on inputs reshaped
    # to (1, 8, 8)") and what it measured before choosing it
    exported: str | None = None
    tried: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        if self.exported is None:  # sklearn nodes (and documents from before): not written
            del doc["exported"], doc["tried"]
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> StageRecord:
        return cls(
            str(doc["kind"]),
            list(doc["steps"]),
            list(doc.get("types", [])),
            doc.get("output"),
            str(doc.get("nodes", "")),
            list(doc.get("leaves", [])),
            doc.get("exported"),
            list(doc.get("tried", [])),
        )


# Document keys held by typed fields; the schema's are flattened into the top level (layout,
# inputs, feature_names), as the first format wrote them.
_SCHEMA_KEYS = ("layout", "inputs", "feature_names")
_OPTIONAL = (
    "opsets",
    "ir_version",
    "versions",
    "created",
    "runtime_target",
    "passes",
    "cpu_only_nodes",
    "graph_sha256",
    "parity",
    "golden",
    "variant",
    "container",
)


@dataclass(frozen=True)
class Metadata:
    task: str
    schema: Schema
    outputs: dict[str, OutputSpec]
    stages: tuple[StageRecord, ...] = ()
    classes: list[Any] | None = None
    classes_dtype: str | None = None
    opsets: dict[str, int] | None = None
    ir_version: int | None = None
    versions: dict[str, str] | None = None
    created: str | None = None
    runtime_target: dict[str, Any] | None = None  # --min-runtime: what the model was rewritten for
    passes: list[dict[str, Any]] | None = None  # what each optimizer pass did
    cpu_only_nodes: dict[str, int] | None = None
    graph_sha256: str | None = None  # the graph parity vouched for
    parity: dict[str, Any] | None = None
    golden: dict[str, Any] | None = None  # rows and native answers for `runtime verify`
    variant: dict[str, Any] | None = None  # int8 / fp16: what it is, its accuracy against native
    container: str | None = None  # "ort" for ORT-format copies
    extra: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT

    def replace(self, **changes: Any) -> Metadata:
        return dataclasses.replace(self, **changes)

    @property
    def public_outputs(self) -> list[str]:
        return [name for name, spec in self.outputs.items() if not spec.auxiliary]

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format": self.format, "task": self.task, **self.schema.to_dict()}
        doc["outputs"] = {name: spec.to_dict() for name, spec in self.outputs.items()}
        doc["stages"] = [s.to_dict() for s in self.stages]
        if self.classes is not None:
            doc["classes"], doc["classes_dtype"] = list(self.classes), self.classes_dtype
        for key in _OPTIONAL:
            value = getattr(self, key)
            if value is not None or key in ("runtime_target", "graph_sha256"):
                doc[key] = value
        return {**doc, **self.extra}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> Metadata:
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise MetadataError(f"not valid JSON ({type(exc).__name__})") from None
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Any) -> Metadata:
        """The document checked: its format first (a newer one is refused by name), then every
        field the runtime reads."""
        if not isinstance(doc, Mapping):
            raise MetadataError("not a JSON object")
        fmt = doc.get("format")
        if fmt not in FORMATS:
            raise MetadataError(
                f"format {fmt!r} is not one this runtime reads ({sorted(FORMATS)}); upgrade hybridonnx"
            )
        try:
            task = doc.get("task")
            if task not in TASKS:
                raise ValueError(f"task {task!r}")
            outputs = {}
            for name, spec in (doc.get("outputs") or {}).items():
                if not isinstance(name, str):
                    raise TypeError(name)
                outputs[name] = OutputSpec.from_dict(spec)
            classes, classes_dtype = doc.get("classes"), doc.get("classes_dtype")
            if task == "classifier":
                dtype = np.dtype(classes_dtype) if classes_dtype != "object" else object
                np.asarray(classes, dtype=object).astype(dtype)
            known = {
                "format",
                "task",
                "outputs",
                "stages",
                "classes",
                "classes_dtype",
                *_SCHEMA_KEYS,
                *_OPTIONAL,
            }
            return cls(
                task=task,
                schema=Schema.from_metadata(doc),
                outputs=outputs,
                stages=tuple(StageRecord.from_dict(s) for s in doc.get("stages") or ()),
                classes=classes,
                classes_dtype=classes_dtype,
                **{key: doc.get(key) for key in _OPTIONAL},
                extra={k: v for k, v in doc.items() if k not in known},
                format=fmt,
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise MetadataError(f"malformed ({type(exc).__name__}: {exc})") from None
