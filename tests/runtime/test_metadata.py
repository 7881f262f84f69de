"""The metadata document as one typed value: what the exporter writes, the runtime reads back whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx
import pytest

from runtime.contract import FORMAT, METADATA_KEY
from runtime.metadata import Metadata, MetadataError, StageRecord


def _document(path: Path) -> str:
    model = onnx.load(str(path))
    return next(p.value for p in model.metadata_props if p.key == METADATA_KEY)


@pytest.mark.parametrize("fixture", ["iris_model", "frame_model"])
def test_an_exported_document_round_trips_unchanged(fixture: str, request: pytest.FixtureRequest) -> None:
    path, _, _ = request.getfixturevalue(fixture)
    text = _document(path)
    meta = Metadata.from_json(text)
    assert meta.format == FORMAT
    assert json.loads(meta.to_json()) == json.loads(text)  # every field, nothing added or lost
    assert meta.stages and all(isinstance(s, StageRecord) for s in meta.stages)
    outputs = json.loads(text)["outputs"]
    assert meta.public_outputs == [name for name, spec in outputs.items() if not spec.get("auxiliary")]


def test_fields_of_a_later_minor_version_are_kept(iris_model: tuple[Path, Any, Any]) -> None:
    doc = json.loads(_document(iris_model[0]))
    meta = Metadata.from_dict({**doc, "future_field": {"x": 1}})
    assert meta.extra == {"future_field": {"x": 1}}
    assert meta.to_dict()["future_field"] == {"x": 1}
    assert meta.replace(parity=None).to_dict()["future_field"] == {"x": 1}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: {**d, "format": "hybridonnx/3"}, r"format 'hybridonnx/3' is not one this runtime reads"),
        (lambda d: {k: v for k, v in d.items() if k != "format"}, r"format None"),
        (lambda d: {**d, "task": "ranker"}, r"malformed .*task 'ranker'"),
        (lambda d: {**d, "outputs": {"label": {"dtype": "int64"}}}, r"malformed \(KeyError"),
        (lambda d: {**d, "classes_dtype": "no-such-dtype"}, r"malformed \(TypeError"),
        (lambda d: [d], r"not a JSON object"),
    ],
)
def test_a_document_the_runtime_cannot_trust_is_refused_by_name(
    iris_model: tuple[Path, Any, Any], change: Any, message: str
) -> None:
    doc = json.loads(_document(iris_model[0]))
    with pytest.raises(MetadataError, match=message):
        Metadata.from_dict(change(doc))


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(MetadataError, match="not valid JSON"):
        Metadata.from_json("{nope")
