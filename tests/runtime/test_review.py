"""Review of the trust change: external data outside the main graph, protobuf entries read as
protobuf does, malformed seals and locations, unsliceable inputs with batch_size, float32 category
collisions, output file modes and abbreviated --json. Each test failed before its fix."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder

import exporter
import runtime
from runtime import InvalidInputError, ModelLoadError
from runtime._proto import read_header
from runtime.integrity import SHA_KEY, SIGNATURE_KEY

W = np.arange(12, dtype=np.float32).reshape(4, 3)
EXPECTED = np.ones((1, 4), np.float32) @ W


def _if_model(folder: Path) -> Path:
    """MatMul by W inside both branches of an If (W an initializer of each branch), W kept in
    weights.bin next to the model: onnxruntime injects only main-graph initializers from memory."""
    out = helper.make_tensor_value_info("Yb", TensorProto.FLOAT, [None, 3])
    branches = {
        name: helper.make_graph(
            [helper.make_node("MatMul", ["X", w], ["Yb"])], name, [], [out], [numpy_helper.from_array(W, w)]
        )
        for name, w in (("then", "W1"), ("else", "W2"))
    }
    graph = helper.make_graph(
        [
            helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(True), "c")),
            helper.make_node("If", ["c"], ["Y"], then_branch=branches["then"], else_branch=branches["else"]),
        ],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    path = folder / "m.onnx"
    onnx.save(
        model,
        path,
        save_as_external_data=True,
        location="weights.bin",
        size_threshold=0,
        convert_attribute=True,
    )
    return path


def test_external_data_of_a_subgraph_is_the_checked_file_not_the_working_directorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the If branches' weights were read by onnxruntime from ./weights.bin (the working
    directory), not from the file next to the model that load() checked and hashed."""
    (tmp_path / "model").mkdir()
    path = _if_model(tmp_path / "model")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "weights.bin").write_bytes(np.full(4096, -7, np.float32).tobytes())  # a decoy
    monkeypatch.chdir(elsewhere)
    np.testing.assert_array_equal(runtime.load(path).run(np.ones((1, 4), np.float32))["Y"], EXPECTED)
    (elsewhere / "weights.bin").unlink()  # and with none there, it still loads
    np.testing.assert_array_equal(runtime.load(path).run(np.ones((1, 4), np.float32))["Y"], EXPECTED)


def test_older_onnxruntime_reads_subgraph_data_from_the_private_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """onnxruntime < 1.21 has no folder option: the model is given as a file in a private folder
    holding the checked bytes, and the decoy in the working directory is still never read."""
    import runtime.model

    monkeypatch.setattr(runtime.model, "_version_at_least", lambda version, wanted: False, raising=False)
    (tmp_path / "model").mkdir()
    path = _if_model(tmp_path / "model")
    (tmp_path / "weights.bin").write_bytes(np.full(4096, -7, np.float32).tobytes())
    monkeypatch.chdir(tmp_path)
    np.testing.assert_array_equal(runtime.load(path).run(np.ones((1, 4), np.float32))["Y"], EXPECTED)


def _with_extra_field(entry: onnx.StringStringEntryProto, field: bytes) -> None:
    entry.ParseFromString(entry.SerializeToString() + field)  # kept as an unknown field


def test_external_data_entries_are_read_as_protobuf_reads_them(tmp_path: Path) -> None:
    """Before: any field other than 1 was taken as the value, so an unknown field 3 naming a file
    next to the model hid the real location ('../secret.bin') from the containment check."""
    (tmp_path / "model").mkdir()
    path = _if_model(tmp_path / "model")
    (tmp_path / "secret.bin").write_bytes((tmp_path / "model" / "weights.bin").read_bytes())
    proto = onnx.load(str(path), load_external_data=False)
    branch = proto.graph.node[1].attribute[0].g
    for entry in branch.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../secret.bin"
            _with_extra_field(entry, b"\x1a\x0bweights.bin")
    path.write_bytes(proto.SerializeToString())
    assert "../secret.bin" in {loc for _, loc in read_header(path.read_bytes()).external_data}
    with pytest.raises(ModelLoadError, match=r"'\.\./secret\.bin' outside the model's folder; refusing"):
        runtime.load(path)


def _main_graph_model(folder: Path, location: bytes) -> Path:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(W, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    path = folder / "m.onnx"
    onnx.save(model, path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    data = path.read_bytes()
    old = b"\x12\x0bweights.bin"  # the location entry's value field
    assert data.count(old) == 1 and len(location) == len(b"weights.bin")  # no length changes
    path.write_bytes(data.replace(old, b"\x12\x0b" + location))
    return path


@pytest.mark.parametrize(
    ("location", "message"),
    [(b"weight\x00.bin", "outside the model's folder"), (b"weight\xff.bin", "not UTF-8")],
    ids=["nul", "not-utf8"],
)
def test_odd_locations_are_load_errors(tmp_path: Path, location: bytes, message: str) -> None:
    """Before: a NUL byte raised a bare ValueError ('embedded null byte'); bytes that are not UTF-8
    were read as U+FFFD, so load() checked and hashed 'weight\ufffd.bin', another file than the
    one onnxruntime opens."""
    path = _main_graph_model(tmp_path, location)
    (tmp_path / "weight\ufffd.bin").write_bytes((tmp_path / "weights.bin").read_bytes())
    with pytest.raises(ModelLoadError, match=message):
        runtime.load(path)


@pytest.mark.parametrize("entry", [SHA_KEY, SIGNATURE_KEY])
def test_a_seal_that_is_not_ascii_is_a_load_error(
    tmp_path: Path, iris_model: tuple[Path, Any, Any], entry: str
) -> None:
    """Before: hmac.compare_digest raised TypeError ('comparing strings with non-ASCII characters')."""
    path, _, _ = iris_model
    key = b"k" * 32
    proto = onnx.load(str(path))
    exporter.package.seal(proto, key)
    for prop in proto.metadata_props:
        if prop.key == entry:
            prop.value = "é" * len(prop.value)
    target = tmp_path / "seal.onnx"
    target.write_bytes(proto.SerializeToString())
    with pytest.raises(ModelLoadError, match=r"differs from the|signature does not match"):
        runtime.load(target, key=key)


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.ones(3, 4).to_sparse(),
        lambda: torch.ones(3, 4).to_sparse_csr(),
        lambda: torch.nested.nested_tensor([torch.ones(4), torch.ones(4)]),
    ],
    ids=["sparse-coo", "sparse-csr", "nested"],
)
def test_batch_size_with_tensors_that_cannot_be_sliced(iris_model: tuple[Path, Any, Any], make: Any) -> None:
    """Before: with batch_size the raw input was sliced first, and torch raised NotImplementedError
    or RuntimeError; without it (and now with it) the runtime's one-line refusal."""
    model = runtime.load(iris_model[0])
    for batch_size in (None, 1):
        with pytest.raises(InvalidInputError, match="tensor cannot feed the model"):
            model.predict(make(), batch_size=batch_size)


@pytest.mark.parametrize("column", [{1.0, 2.0}, {0: 1.0, 1: 2.0}], ids=["set", "dict"])
def test_batch_size_with_a_dict_holding_an_unsliceable_column(
    frame_model: tuple[Path, Any, Any], column: Any
) -> None:
    path, _, frame = frame_model
    model = runtime.load(path)
    X: dict[str, Any] = {name: frame[name].to_numpy()[:2] for name in frame.columns}
    X[frame.columns[0]] = column
    for batch_size in (None, 1):
        with pytest.raises(InvalidInputError, match="must be 1-D"):
            model.predict(X, batch_size=batch_size)


def test_ordinal_encoded_numbers_that_float32_makes_known_are_refused() -> None:
    """OrdinalEncoder(handle_unknown='use_encoded_value') on a number column: natively 2.0000001 is
    unknown (-> unknown_value); the float32 graph reads 2.0 and answered category 2: a silently
    different prediction. Values float32 keeps apart (2.5, 1.9999999) still answer as natively."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.integers(0, 3, 200).astype(float), "x": rng.normal(size=200)})
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    ct = ColumnTransformer([("o", encoder, ["size"]), ("n", "passthrough", ["x"])])
    pipe = make_pipeline(ct, LinearRegression()).fit(frame, frame["size"] * 3 + frame["x"])
    model = runtime.load(exporter.export(pipe, sample=frame).model.SerializeToString())
    same = pd.DataFrame({"size": [2.5, 1.9999999, 7.0, 1.0], "x": [0.0] * 4})
    np.testing.assert_allclose(model.predict(same), pipe.predict(same), atol=1e-4)
    collides = pd.DataFrame({"size": [1.0, 2.0000001], "x": [0.0, 0.0]})
    for X in (collides, collides.to_dict("list"), collides.to_numpy().tolist()):
        with pytest.raises(
            InvalidInputError,
            match=r"column 'size' holds value\(s\) \[2\.0000001\] the model never saw at fit "
            r"\(OrdinalEncoder handle_unknown='use_encoded_value' would encode them as unknown_value; "
            r"the exported graph would read them as float32, a known one\)",
        ):
            model.predict(X)


def _predict_cli(args: list[str]) -> int:
    from runtime.__main__ import main

    return main(args)


def test_predict_output_keeps_the_usual_file_mode_and_follows_symlinks(
    tmp_path: Path, iris_model: tuple[Path, Any, Any]
) -> None:
    """Before: -o wrote through mkstemp, so the predictions came out 0600 (unreadable by the
    service meant to read them) and a symlinked output was replaced by a plain file."""
    path, _, X = iris_model
    data = tmp_path / "x.npy"
    np.save(data, X[:3].astype(np.float32))
    out = tmp_path / "out.csv"
    umask = os.umask(0o022)
    try:
        assert _predict_cli(["predict", str(path), str(data), "-o", str(out)]) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        out.chmod(0o640)  # an existing file keeps its mode
        assert _predict_cli(["predict", str(path), str(data), "-o", str(out)]) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o640
    finally:
        os.umask(umask)
    link = tmp_path / "link.csv"
    link.symlink_to(out)
    assert _predict_cli(["predict", str(path), str(data), "-o", str(link)]) == 0
    assert link.is_symlink() and out.read_text().startswith("label")


def test_an_abbreviated_json_flag_still_prints_the_failure_document(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """argparse accepts --js for --json: success printed JSON, a failure printed none."""
    assert _predict_cli(["info", "/no/such/model.onnx", "--js"]) == 2
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["ok"] is False and "model file not found" in doc["error"]
