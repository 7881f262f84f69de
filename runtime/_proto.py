"""Read the few ONNX fields the runtime must check *before* onnxruntime sees a model.

The runtime cannot import ``onnx``, so this walks the protobuf wire format directly: the IR
version and opsets (to say which onnxruntime a model needs) and the external-data locations of
every tensor (to refuse paths outside the model's folder, the route of past path-traversal CVEs).
Only the fields below are decoded; everything else is skipped by length, so even large models
are scanned quickly without copying tensor data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Field numbers from onnx.proto (stable since IR 3).
_MODEL_IR_VERSION, _MODEL_GRAPH, _MODEL_OPSET, _MODEL_METADATA, _MODEL_FUNCTIONS = 1, 7, 8, 14, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_NODE_ATTRIBUTE = 5
_FUNCTION_NODE = 7
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA = 8, 13
_OPSET_DOMAIN, _OPSET_VERSION = 1, 2


# Graphs nest through node attributes (If/Loop/Scan bodies). protobuf's own parser (the one
# onnxruntime uses) stops at 100 nested messages; each graph level is three (graph, node,
# attribute), so a deeper model cannot load anyway — and would exhaust Python's stack here.
MAX_GRAPH_DEPTH = 32
# metadata_props entries that seal the model (runtime/integrity.py): kept out of the content hash.
SEAL_KEYS = ("hybridonnx.sha256", "hybridonnx.signature")


class ProtoError(ValueError):
    """The bytes are not a well-formed protobuf message."""


@dataclass
class ModelHeader:
    ir_version: int = 0
    opsets: dict[str, int] = field(default_factory=dict)
    external_data: list[tuple[str, str]] = field(default_factory=list)  # (tensor name, location)
    # Some external tensor is not a dense initializer of the main graph (a subgraph's, a node
    # attribute's, a sparse or a function's): onnxruntime takes only those from memory and reads
    # the others from disk, relative to the model's folder (the working directory for bytes).
    external_outside_main: bool = False
    format: str = "onnx"  # or "ort": onnxruntime's flatbuffer format, which this reader skips
    metadata: dict[str, str] = field(default_factory=dict)  # metadata_props, key → value


def is_ort_format(data: bytes) -> bool:
    """ORT-format files are flatbuffers with the file identifier "ORTM" at bytes 4..8."""
    return data[4:8] == b"ORTM"


def read_header(data: bytes) -> ModelHeader:
    """IR version, opsets and external-data locations of a serialized ModelProto.

    protobuf's C parser (onnxruntime depends on protobuf) reads it through a message schema that
    declares only those fields, skipping the rest natively: a tree ensemble's node attributes are
    tens of thousands of unpacked ints, which the pure-Python walk below reads one by one (~1 s for
    a 700 KB forest). The walk remains for bytes protobuf refuses, so its errors name the problem
    (truncation, nesting deeper than MAX_GRAPH_DEPTH)."""
    fast = _read_header_with_protobuf(data)
    return fast if fast is not None else _read_header_walking(data)


def _read_header_walking(data: bytes) -> ModelHeader:
    header = ModelHeader()
    view = memoryview(data)
    for number, value in _fields(view):
        if number == _MODEL_IR_VERSION and isinstance(value, int):
            header.ir_version = value
        elif number == _MODEL_OPSET and isinstance(value, memoryview):
            domain, version = "", 0
            for n, v in _fields(value):
                if n == _OPSET_DOMAIN and isinstance(v, memoryview):
                    domain = bytes(v).decode("utf-8", "replace")
                elif n == _OPSET_VERSION and isinstance(v, int):
                    version = v
            header.opsets[domain or "ai.onnx"] = version
        elif number == _MODEL_GRAPH and isinstance(value, memoryview):
            main: list[tuple[str, str]] = []
            count = len(header.external_data)
            _scan_graph(value, header.external_data, main=main)
            header.external_outside_main |= len(header.external_data) > count
            header.external_data.extend(main)
        elif number == _MODEL_METADATA and isinstance(value, memoryview):
            key, text = metadata_entry(value)
            if key is not None:
                header.metadata[key] = text
        elif number == _MODEL_FUNCTIONS and isinstance(value, memoryview):
            count = len(header.external_data)
            for n, v in _fields(value):
                if n == _FUNCTION_NODE and isinstance(v, memoryview):
                    _scan_node(v, header.external_data)
            header.external_outside_main |= len(header.external_data) > count
    return header


# The subset of onnx.proto the scan reads (field numbers as above); strings as bytes, decoded here.
_SCAN_SCHEMA = {
    "Model": [
        ("ir_version", 1, "int64", False),
        ("graph", 7, "Graph", False),
        ("opset_import", 8, "Opset", True),
        ("metadata_props", 14, "Entry", True),
        ("functions", 25, "Function", True),
    ],
    "Opset": [("domain", 1, "bytes", False), ("version", 2, "int64", False)],
    "Entry": [("key", 1, "bytes", False), ("value", 2, "bytes", False)],
    "Graph": [
        ("node", 1, "Node", True),
        ("initializer", 5, "Tensor", True),
        ("sparse_initializer", 15, "Sparse", True),
    ],
    "Node": [("attribute", 5, "Attribute", True)],
    "Function": [("node", 7, "Node", True)],
    "Attribute": [
        ("t", 5, "Tensor", False),
        ("g", 6, "Graph", False),
        ("tensors", 10, "Tensor", True),
        ("graphs", 11, "Graph", True),
        ("sparse_tensor", 22, "Sparse", False),
        ("sparse_tensors", 23, "Sparse", True),
    ],
    "Tensor": [("name", 8, "bytes", False), ("external_data", 13, "Entry", True)],
    "Sparse": [("values", 1, "Tensor", False), ("indices", 2, "Tensor", False)],
}
_SCAN_CLASSES: dict[str, Any] | None = None


def _scan_classes() -> dict[str, Any] | None:
    """Message classes for _SCAN_SCHEMA, built once; None where protobuf is unavailable."""
    global _SCAN_CLASSES
    if _SCAN_CLASSES is not None:
        return _SCAN_CLASSES
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:  # pragma: no cover - onnxruntime depends on protobuf
        return None
    proto = descriptor_pb2.FileDescriptorProto(name="hybridonnx_scan.proto", package="hybridonnx_scan")
    types = descriptor_pb2.FieldDescriptorProto
    for message, fields in _SCAN_SCHEMA.items():
        spec = proto.message_type.add(name=message)
        for name, number, kind, repeated in fields:
            entry = spec.field.add(name=name, number=number)
            entry.label = types.LABEL_REPEATED if repeated else types.LABEL_OPTIONAL
            if kind == "int64":
                entry.type = types.TYPE_INT64
            elif kind == "bytes":
                entry.type = types.TYPE_BYTES
            else:
                entry.type, entry.type_name = types.TYPE_MESSAGE, f".hybridonnx_scan.{kind}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    _SCAN_CLASSES = {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"hybridonnx_scan.{name}"))
        for name in _SCAN_SCHEMA
    }
    return _SCAN_CLASSES


def _read_header_with_protobuf(data: bytes) -> ModelHeader | None:
    """read_header through protobuf's parser; None when it refuses the bytes (the walk explains)."""
    classes = _scan_classes()
    if classes is None:
        return None
    model = classes["Model"]()
    try:
        model.ParseFromString(data)
    except Exception:  # DecodeError, or nesting past protobuf's own recursion limit
        return None
    header = ModelHeader(ir_version=int(model.ir_version))
    try:
        for opset in model.opset_import:
            header.opsets[opset.domain.decode("utf-8", "replace") or "ai.onnx"] = int(opset.version)
        if model.HasField("graph"):
            main: list[tuple[str, str]] = []
            _walk_graph(model.graph, header.external_data, 0, main)
            header.external_outside_main |= bool(header.external_data)
            header.external_data.extend(main)
        for entry in model.metadata_props:
            if entry.HasField("key"):
                header.metadata[entry.key.decode("utf-8", "replace")] = entry.value.decode("utf-8", "replace")
        count = len(header.external_data)
        for function in model.functions:
            for node in function.node:
                _walk_node(node, header.external_data, 0)
        header.external_outside_main |= len(header.external_data) > count
    except ProtoError as exc:
        if "nested deeper" in str(exc):
            raise
        return None
    return header


def _walk_graph(
    graph: Any, found: list[tuple[str, str]], depth: int, main: list[tuple[str, str]] | None
) -> None:
    if depth > MAX_GRAPH_DEPTH:
        raise ProtoError(f"subgraphs nested deeper than {MAX_GRAPH_DEPTH} levels")
    for tensor in graph.initializer:
        _walk_tensor(tensor, found if main is None else main)
    for sparse in graph.sparse_initializer:
        _walk_sparse(sparse, found)
    for node in graph.node:
        _walk_node(node, found, depth)


def _walk_node(node: Any, found: list[tuple[str, str]], depth: int) -> None:
    for attribute in node.attribute:
        if attribute.HasField("t"):
            _walk_tensor(attribute.t, found)
        for tensor in attribute.tensors:
            _walk_tensor(tensor, found)
        if attribute.HasField("g"):
            _walk_graph(attribute.g, found, depth + 1, None)
        for graph in attribute.graphs:
            _walk_graph(graph, found, depth + 1, None)
        if attribute.HasField("sparse_tensor"):
            _walk_sparse(attribute.sparse_tensor, found)
        for sparse in attribute.sparse_tensors:
            _walk_sparse(sparse, found)


def _walk_sparse(sparse: Any, found: list[tuple[str, str]]) -> None:
    for part in ("values", "indices"):
        if sparse.HasField(part):
            _walk_tensor(getattr(sparse, part), found)


def _walk_tensor(tensor: Any, found: list[tuple[str, str]]) -> None:
    name = tensor.name.decode("utf-8", "replace")
    for entry in tensor.external_data:
        if not entry.HasField("key"):
            continue
        try:
            key, value = entry.key.decode("utf-8"), entry.value.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtoError("an external-data entry is not UTF-8 text") from None
        if key == "location":
            found.append((name, value))


def metadata_entry(entry: memoryview) -> tuple[str | None, str]:
    """(key, value) of one StringStringEntryProto; key None when it has none."""
    key, value = None, ""
    for number, v in _fields(entry):
        if isinstance(v, memoryview):
            text = bytes(v).decode("utf-8", "replace")
            if number == 1:
                key = text
            elif number == 2:
                value = text
    return key, value


def _scan_graph(
    graph: memoryview, found: list[tuple[str, str]], depth: int = 0, main: list[tuple[str, str]] | None = None
) -> None:
    """External tensors of ``graph`` into ``found``; with ``main`` (the model's own graph), its
    dense initializers go there instead."""
    if depth > MAX_GRAPH_DEPTH:
        raise ProtoError(f"subgraphs nested deeper than {MAX_GRAPH_DEPTH} levels")
    for number, value in _fields(graph):
        if not isinstance(value, memoryview):
            continue
        if number == _GRAPH_INITIALIZER:
            _scan_tensor(value, found if main is None else main)
        elif number == _GRAPH_SPARSE_INITIALIZER:
            _scan_sparse(value, found)
        elif number == _GRAPH_NODE:
            _scan_node(value, found, depth)


def _scan_node(node: memoryview, found: list[tuple[str, str]], depth: int = 0) -> None:
    for number, value in _fields(node):
        if number != _NODE_ATTRIBUTE or not isinstance(value, memoryview):
            continue
        for n, v in _fields(value):
            if not isinstance(v, memoryview):
                continue
            if n in (_ATTR_T, _ATTR_TENSORS):
                _scan_tensor(v, found)
            elif n in (_ATTR_G, _ATTR_GRAPHS):
                _scan_graph(v, found, depth + 1)
            elif n in (_ATTR_SPARSE, _ATTR_SPARSES):
                _scan_sparse(v, found)


def _scan_sparse(sparse: memoryview, found: list[tuple[str, str]]) -> None:
    for number, value in _fields(sparse):
        if number in (_SPARSE_VALUES, _SPARSE_INDICES) and isinstance(value, memoryview):
            _scan_tensor(value, found)


def _scan_tensor(tensor: memoryview, found: list[tuple[str, str]]) -> None:
    name = ""
    for number, value in _fields(tensor):
        if number == _TENSOR_NAME and isinstance(value, memoryview):
            name = bytes(value).decode("utf-8", "replace")
        elif number == _TENSOR_EXTERNAL_DATA and isinstance(value, memoryview):
            entry = dict(_string_pair(value))
            if entry.get("location") is not None:
                found.append((name, entry["location"]))


def _string_pair(entry: memoryview) -> Iterator[tuple[str, str]]:
    """(key, value) of a StringStringEntryProto, read as protobuf does: field 1, field 2 (the
    last of each), other fields ignored; text that is not UTF-8 is refused, not replaced (a
    location read as 'w\ufffd.bin' would name another file than the bytes onnxruntime uses)."""
    key = val = None
    for number, value in _fields(entry):
        if isinstance(value, memoryview) and number in (1, 2):
            try:
                text = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise ProtoError("an external-data entry is not UTF-8 text") from None
            key, val = (text, val) if number == 1 else (key, text)
    if key is not None:
        yield key, val or ""


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) for each field: ints for varints, views for length-delimited."""
    for number, value, _, _ in _spans(buf):
        if value is not None:
            yield number, value


def _spans(buf: memoryview) -> Iterator[tuple[int, int | memoryview | None, int, int]]:
    """(field number, value, start, end) for each field, end exclusive; fixed-size values are
    skipped (None): no field the runtime reads uses them."""
    pos, end = 0, len(buf)
    while pos < end:
        start = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0")
        value: int | memoryview | None = None
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ProtoError("truncated length-delimited field")
            value = buf[pos : pos + length]
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ProtoError(f"unsupported wire type {wire}")
        if pos > end:
            raise ProtoError("truncated fixed-size field")
        yield number, value, start, pos


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ProtoError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


# The fields that define what a model computes: IR version, graph, opsets, functions. Metadata,
# producer and doc strings are left out.
_HASHED_FIELDS = (_MODEL_IR_VERSION, _MODEL_GRAPH, _MODEL_OPSET, _MODEL_FUNCTIONS)


def graph_sha256(data: bytes) -> str:
    """SHA-256 of the computing part of a serialized model, in file order, without parsing tensors.

    It names *the graph* (variants record the graph they were made from); whether a file is intact
    — graph, weights and metadata — is the content hash's job (``content_sha256``).
    """
    digest = hashlib.sha256()
    view = memoryview(data)
    for number, _, start, end in _spans(view):
        if number in _HASHED_FIELDS:
            digest.update(view[start:end])
    return digest.hexdigest()


def content_sha256(data: bytes, external: dict[str, bytes] | None = None) -> str:
    """SHA-256 of everything in a serialized model except its seal (the ``SEAL_KEYS`` metadata
    entries), in file order, then of each external-data file (by location, sorted).

    Field spans are hashed as they are in the file, so the digest does not depend on where the
    seal entries sit: the exporter computes it before adding them, the runtime after.
    """
    digest = hashlib.sha256()
    view = memoryview(data)
    for number, value, start, end in _spans(view):
        if (
            isinstance(value, memoryview)
            and number == _MODEL_METADATA
            and metadata_entry(value)[0] in SEAL_KEYS
        ):
            continue
        digest.update(view[start:end])
    for location in sorted(external or {}):
        blob = (external or {})[location]
        name = location.encode("utf-8")
        # Length-prefixed, so that no two different (location, bytes) lists hash alike.
        digest.update(len(name).to_bytes(8, "little") + name + len(blob).to_bytes(8, "little"))
        digest.update(blob)
    return digest.hexdigest()
