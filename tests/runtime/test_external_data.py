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


def _weights(folder: Path, location: str = "weights.bin", scale: float = 1.0) -> None:
    data = (np.arange(12, dtype=np.float32) * scale).tobytes()
    (folder / location).write_bytes(data)


EXPECTED = np.ones((1, 4)) @ np.arange(12).reshape(4, 3)


@pytest.mark.parametrize("when", ["lazy", "fork"])
def test_files_swapped_after_load_are_never_read(tmp_path: Path, when: str) -> None:
    """A lazy or forked session is created after load: it must compute with the bytes that were
    checked at load, not with whatever the folder holds by then (model or weights)."""
    path = _model_with_external(tmp_path, "weights.bin")
    model = runtime.load(path, lazy=when == "lazy")
    _weights(tmp_path, scale=-5.0)  # new weights, same size
    (tmp_path / "evil").mkdir()
    swapped = _model_with_external(tmp_path / "evil", "../weights.bin")
    path.write_bytes(swapped.read_bytes())
    if when == "lazy":
        np.testing.assert_array_equal(model.run(np.ones((1, 4), np.float32))["Y"], EXPECTED)
        return
    import os

    model.run(np.ones((1, 4), np.float32))
    pid = os.fork()
    if pid == 0:  # the child re-creates its session (sessions do not cross a fork)
        got = model.run(np.ones((1, 4), np.float32))["Y"]
        os._exit(0 if np.array_equal(got, EXPECTED) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_symlinked_model_reads_external_data_from_the_folder_it_was_given(tmp_path: Path) -> None:
    """onnxruntime resolves locations against the folder of the path it is given, not of the
    symlink's target: a symlinked model beside a weights.bin pointing elsewhere is refused."""
    real, links, secret = tmp_path / "real", tmp_path / "links", tmp_path / "secret.bin"
    real.mkdir()
    links.mkdir()
    path = _model_with_external(real, "weights.bin")
    secret.write_bytes(np.full(12, 7, np.float32).tobytes())
    (links / "m.onnx").symlink_to(path)
    (links / "weights.bin").symlink_to(secret)
    with pytest.raises(ModelLoadError, match="outside the model's folder"):
        runtime.load(links / "m.onnx")
    (links / "weights.bin").unlink()  # and without one there, it is missing (not read from real/)
    with pytest.raises(ModelLoadError, match=r"'weights\.bin' of tensor 'W' is missing next to the model"):
        runtime.load(links / "m.onnx")


def test_hard_linked_external_data_is_refused(tmp_path: Path) -> None:
    outside, inside = tmp_path / "outside", tmp_path / "model"
    outside.mkdir()
    inside.mkdir()
    path = _model_with_external(inside, "weights.bin")
    (inside / "weights.bin").rename(outside / "weights.bin")
    (inside / "weights.bin").hardlink_to(outside / "weights.bin")
    with pytest.raises(ModelLoadError, match="outside the model's folder"):
        runtime.load(path)


def test_external_data_size_is_capped(tmp_path: Path) -> None:
    path = _model_with_external(tmp_path, "weights.bin")
    with pytest.raises(ModelLoadError, match="past max_bytes; raise max_bytes"):
        runtime.load(path, max_bytes=path.stat().st_size + 10)
