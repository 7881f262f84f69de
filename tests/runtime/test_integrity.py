"""Integrity: the content hash sealed at export (graph, weights, metadata) is checked at load, a
keyed signature is demanded with ``key=``, and malformed files fail with the runtime's own errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

import exporter
import runtime
from exporter import package
from runtime import InvalidOptionError, ModelClosedError, ModelLoadError
from runtime.integrity import SHA_KEY, SIGNATURE_KEY


def _edit_metadata(proto: onnx.ModelProto, change: Any) -> onnx.ModelProto:
    """Edit the JSON document in place, keeping the seal entries as they were (what an attacker
    editing the file with a protobuf tool does)."""
    for prop in proto.metadata_props:
        if prop.key == runtime.METADATA_KEY:
            meta = json.loads(prop.value)
            change(meta)
            prop.value = json.dumps(meta)
    return proto


def _first_float_weight(proto: onnx.ModelProto) -> onnx.TensorProto:
    return next(t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and t.dims)


def test_every_export_is_sealed_and_checked_at_load(iris_model: tuple[Path, Any, Any]) -> None:
    path, _, _ = iris_model
    props = {p.key for p in onnx.load(str(path)).metadata_props}
    assert SHA_KEY in props and SIGNATURE_KEY not in props
    model = runtime.load(path)
    assert model.integrity is not None and model.integrity.checked and not model.integrity.signed
    assert model.metadata["format"] == "hybridonnx/2"


def test_one_flipped_weight_byte_is_refused(tmp_path: Path, iris_model: tuple[Path, Any, Any]) -> None:
    """Before: a one-byte flip in a weight changed labels silently (122/569 in the red-team run)."""
    path, estimator, X = iris_model
    data = bytearray(path.read_bytes())
    weight = _first_float_weight(onnx.load(str(path)))
    at = bytes(data).index(weight.raw_data if weight.raw_data else np.float32(weight.float_data[0]).tobytes())
    data[at + 3] ^= 0x40  # the exponent byte of the first weight
    flipped = tmp_path / "flipped.onnx"
    flipped.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"content sha256 .* differs from the .* sealed at export"):
        runtime.load(flipped)
    # check_hash=False still loads it, for inspection: and it answers differently
    inspected = runtime.load(flipped, check_hash=False)
    assert inspected.integrity is not None and not inspected.integrity.checked
    assert not np.allclose(inspected.predict_proba(X), estimator.predict_proba(X), atol=1e-4)


def test_swapped_classes_and_golden_rows_are_refused(
    tmp_path: Path, iris_model: tuple[Path, Any, Any]
) -> None:
    """Before: swapping classes (and the golden answers to match) flipped every label while info
    said 'the graph checked at export' and verify exited 0."""
    path, _, _ = iris_model

    def swap(meta: dict[str, Any]) -> None:
        meta["classes"] = meta["classes"][::-1]
        meta["golden"]["outputs"]["label"] = [meta["classes"][0]] * len(meta["golden"]["outputs"]["label"])

    target = tmp_path / "swapped.onnx"
    target.write_bytes(_edit_metadata(onnx.load(str(path)), swap).SerializeToString())
    with pytest.raises(ModelLoadError, match="altered or damaged; export it again"):
        runtime.load(target)
    from runtime.__main__ import main

    assert main(["verify", str(target)]) == 2


def test_a_stripped_seal_is_refused(tmp_path: Path, iris_model: tuple[Path, Any, Any]) -> None:
    proto = onnx.load(str(iris_model[0]))
    kept = [p for p in proto.metadata_props if p.key != SHA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    with pytest.raises(ModelLoadError, match=r"content hash \(hybridonnx.sha256\) is missing"):
        runtime.load(proto.SerializeToString())


def test_signed_export_and_keyed_load(tmp_path: Path, iris_pipeline: tuple[Any, Any, Any]) -> None:
    estimator, X, _ = iris_pipeline
    path = exporter.export(estimator, sample=X[:40], sign_key=b"fleet-key").save(tmp_path / "signed.onnx")
    model = runtime.load(path, key=b"fleet-key")
    assert model.integrity is not None and model.integrity.signature_checked
    np.testing.assert_array_equal(model.predict(X), estimator.predict(X))
    assert runtime.load(path).integrity.signed  # type: ignore[union-attr]  # readable without the key
    with pytest.raises(ModelLoadError, match="signature does not match this key"):
        runtime.load(path, key="another-key")

    # The hash is unkeyed: changed weights plus a recomputed hash pass a plain load, not a keyed one.
    proto = onnx.load(str(path))
    weight = _first_float_weight(proto)
    values = onnx.numpy_helper.to_array(weight) * -1
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    resealed = package.seal(proto).SerializeToString()  # an attacker's re-seal, without the key
    assert runtime.load(resealed).integrity.checked  # type: ignore[union-attr]
    with pytest.raises(ModelLoadError, match="not signed, and load\\(\\) was given a key"):
        runtime.load(resealed, key=b"fleet-key")
    forged = onnx.load(str(path))
    forged.graph.initializer[0].CopyFrom(weight)
    for prop in forged.metadata_props:  # keep the old signature, re-seal the hash
        if prop.key == SHA_KEY:
            prop.value = runtime.integrity.seal_entries(
                package.seal(onnx.load(str(path))).SerializeToString()
            )[SHA_KEY]
    with pytest.raises(ModelLoadError):
        runtime.load(forged.SerializeToString(), key=b"fleet-key")


def test_unsigned_model_with_a_key_is_refused(iris_model: tuple[Path, Any, Any]) -> None:
    with pytest.raises(ModelLoadError, match="not signed, and load\\(\\) was given a key"):
        runtime.load(iris_model[0], key=b"k")


@pytest.mark.parametrize(
    ("key", "message"), [(b"", "key is empty"), (12, "key must be bytes or str, got int")]
)
def test_bad_keys_are_refused(iris_model: tuple[Path, Any, Any], key: Any, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        runtime.load(iris_model[0], key=key)


def test_sign_key_on_the_cli(tmp_path: Path, iris_model: tuple[Path, Any, Any]) -> None:
    import pickle

    from exporter.__main__ import main

    _, estimator, X = iris_model
    pkl, key, sample = tmp_path / "p.pkl", tmp_path / "key", tmp_path / "s.npy"
    pkl.write_bytes(pickle.dumps(estimator))
    key.write_bytes(b"secret\n")
    np.save(sample, X[:40])
    assert main([str(pkl), "--sample", str(sample), "--sign-key", str(key)]) == 0
    assert runtime.load(pkl.with_suffix(".onnx"), key=b"secret").integrity.signature_checked  # type: ignore[union-attr]
    from runtime.__main__ import main as runtime_main

    assert runtime_main(["verify", str(pkl.with_suffix(".onnx")), "--key-file", str(key)]) == 0
    other = tmp_path / "other"
    other.write_bytes(b"nope")
    assert runtime_main(["verify", str(pkl.with_suffix(".onnx")), "--key-file", str(other)]) == 2


# -- malformed files: the runtime's own errors, one line ---------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: "{not json", "metadata is not valid JSON"),
        (lambda m: json.dumps([1, 2]), "metadata is not a JSON object"),
        (lambda m: json.dumps({**m, "format": "hybridonnx/9"}), "metadata format 'hybridonnx/9' is not one"),
        (lambda m: json.dumps({k: v for k, v in m.items() if k != "inputs"}), "metadata is malformed"),
        (lambda m: json.dumps({**m, "classes_dtype": "no-such-dtype"}), "metadata is malformed"),
        (lambda m: json.dumps({**m, "task": "oracle"}), "metadata is malformed"),
    ],
)
def test_malformed_metadata_fails_at_load(
    iris_model: tuple[Path, Any, Any], change: Any, message: str
) -> None:
    proto = onnx.load(str(iris_model[0]))
    for prop in proto.metadata_props:
        if prop.key == runtime.METADATA_KEY:
            prop.value = change(json.loads(prop.value))
    with pytest.raises(ModelLoadError, match=message):
        runtime.load(package.seal(proto).SerializeToString())  # sealed: only the document is wrong


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (small payload lengths only need this varint)."""
    length, out = len(payload), bytearray()
    while True:
        out.append((length & 0x7F) | (0x80 if length > 0x7F else 0))
        length >>= 7
        if not length:
            break
    return bytes([number << 3 | 2]) + bytes(out) + payload


def test_deeply_nested_graph_is_refused_without_recursion_error() -> None:
    """Before: a 20 KB file of nested If bodies raised RecursionError. Built at the wire level:
    Python's protobuf refuses to serialise such depth itself."""
    graph = b""
    for _ in range(400):  # graph → node(If) → attribute(then_branch, g=graph)
        attribute = _field(1, b"then_branch") + bytes([0xA0, 0x01, 5]) + _field(6, graph)  # type=GRAPH
        graph = _field(1, _field(4, b"If") + _field(5, attribute))
    opset = _field(1, b"") + bytes([2 << 3, 18])
    data = bytes([1 << 3, 8]) + _field(8, opset) + _field(7, graph)
    assert len(data) < 40_000
    with pytest.raises(ModelLoadError, match="subgraphs nested deeper than 32 levels"):
        runtime.load(data)


def test_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.onnx"
    with big.open("wb") as fh:  # sparse: 3 GiB of nothing on disk
        fh.truncate(3 * 2**30)
    with pytest.raises(ModelLoadError, match="larger than an ONNX protobuf file can be"):
        runtime.load(big)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threads": 10**6}, r"threads=1000000: use an int from 1 to"),
        ({"threads": "2"}, r"threads='2': use an int"),
        ({"threads": 0}, r"threads=0: use an int"),
        ({"providers": None}, r"providers=None: use 'auto'"),
        ({"providers": [1]}, r"providers=\[1\]: use 'auto'"),
        ({"device_id": -1}, r"device_id=-1: use a GPU index"),
        ({"lazy": "yes"}, r"lazy='yes': use True or False"),
        ({"max_bytes": 0}, r"max_bytes=0: use a positive"),
    ],
)
def test_bad_load_arguments(iris_model: tuple[Path, Any, Any], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(runtime.ModelRuntimeError, match=message):
        runtime.load(iris_model[0], **kwargs)


def test_load_refuses_other_types() -> None:
    with pytest.raises(InvalidOptionError, match="takes a path or the model's bytes, got int"):
        runtime.load(12)  # type: ignore[arg-type]


@pytest.mark.parametrize("batch_size", [1.5, "2", True, 0, -3])
def test_bad_batch_size(iris_model: tuple[Path, Any, Any], batch_size: Any) -> None:
    model = runtime.load(iris_model[0])
    for method in (model.predict, model.predict_proba, model.run):
        with pytest.raises(InvalidOptionError, match=r"batch_size=.*: use a positive int"):
            method(iris_model[2], batch_size=batch_size)


def test_predict_after_close_raises(iris_model: tuple[Path, Any, Any]) -> None:
    """Before: predict after close() silently re-created the session."""
    path, _, X = iris_model
    model = runtime.load(path)
    model.predict(X[:1])  # builds the hot path too
    model.close()
    for call in (model.predict, model.predict_proba, model.run):
        with pytest.raises(ModelClosedError, match=r"the model was closed; call runtime\.load again"):
            call(X[:1])
    with runtime.load(path) as scoped:
        scoped.predict(X[:1])
    with pytest.raises(ModelClosedError):
        scoped.predict(X[:1])
