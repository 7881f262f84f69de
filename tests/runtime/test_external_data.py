"""External data: allowed next to the model, refused outside its folder or from bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import runtime
from runtime import ModelLoadError


def _model_with_external(folder: Path, location: str) -> Path:
    weights = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 3])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    path = folder / "m.onnx"
    onnx.save(model, path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    if location != "weights.bin":  # rewrite the location the way a malicious file would
        model = onnx.load(path, load_external_data=False)
        for entry in model.graph.initializer[0].external_data:
            if entry.key == "location":
                entry.value = location
        path.write_bytes(model.SerializeToString())
    return path


def test_external_data_next_to_the_model_loads(tmp_path: Path) -> None:
    model = runtime.load(_model_with_external(tmp_path, "weights.bin"))
    out = model.run(np.ones((2, 4), np.float32))["Y"]
    np.testing.assert_array_equal(out, np.ones((2, 4)) @ np.arange(12).reshape(4, 3))


@pytest.mark.parametrize("location", ["../weights.bin", "/etc/passwd", "sub/../../x.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path: Path, location: str) -> None:
    path = _model_with_external(tmp_path, location)
    with pytest.raises(ModelLoadError, match="outside the model's folder; refusing"):
        runtime.load(path)


def test_symlink_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    inside = tmp_path / "model"
    inside.mkdir()
    path = _model_with_external(inside, "weights.bin")
    (inside / "weights.bin").rename(outside / "weights.bin")
    (inside / "weights.bin").symlink_to(outside / "weights.bin")
    with pytest.raises(ModelLoadError, match="outside the model's folder"):
        runtime.load(path)


def test_external_data_from_bytes_is_refused(tmp_path: Path) -> None:
    path = _model_with_external(tmp_path, "weights.bin")
    with pytest.raises(ModelLoadError, match="load the model from its path, not from bytes"):
        runtime.load(path.read_bytes())


def test_file_swapped_after_load_is_refused(tmp_path: Path) -> None:
    """A lazy (or reopened) session reads the file later: it must be the file that was checked."""
    path = _model_with_external(tmp_path, "weights.bin")
    model = runtime.load(path, lazy=True)
    (tmp_path / "evil").mkdir()
    swapped = _model_with_external(tmp_path / "evil", "../weights.bin")
    path.write_bytes(swapped.read_bytes())
    with pytest.raises(ModelLoadError, match="changed since it was loaded"):
        model.predict(np.ones((1, 4), np.float32))
