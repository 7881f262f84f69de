"""The header scan: protobuf's parser (fast path) and the wire-format walk read the same fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from runtime._proto import _read_header_walking, _read_header_with_protobuf, read_header


def _external_and_nested(tmp_path: Path) -> bytes:
    """Initializers in an external file, a subgraph with its own constant, metadata entries."""
    weight = numpy_helper.from_array(np.arange(1024, dtype=np.float32), "w")
    inner = helper.make_graph(
        [helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.ones(4, np.float32), "k"))],
        "inner",
        [],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [4])],
    )
    nodes = [
        helper.make_node("If", ["cond"], ["y"], then_branch=inner, else_branch=inner),
        helper.make_node("Add", ["w", "w"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [4]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [1024]),
        ],
        [weight],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    model.metadata_props.add(key="hybridonnx", value="{}")
    model.metadata_props.add(key="é", value="ü")
    onnx.external_data_helper.convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location="w.bin", size_threshold=0
    )
    onnx.save(model, tmp_path / "m.onnx")
    return (tmp_path / "m.onnx").read_bytes()


def test_both_scans_agree(tmp_path: Path, iris_model: tuple[Path, Any, Any]) -> None:
    for data in (_external_and_nested(tmp_path), iris_model[0].read_bytes()):
        fast, walked = _read_header_with_protobuf(data), _read_header_walking(data)
        assert fast is not None
        assert fast == walked
    header = read_header(_external_and_nested(tmp_path))
    assert header.external_data == [("w", "w.bin")] and not header.external_outside_main
    assert header.opsets == {"ai.onnx": 18, "ai.onnx.ml": 3} and header.metadata["é"] == "ü"


def test_a_tree_ensemble_is_scanned_without_walking_its_attributes() -> None:
    """A forest's node attributes are tens of thousands of unpacked ints; the walk read them one by
    one (~1 s for a 700 KB model), protobuf's parser skips them natively."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import ExtraTreesRegressor

    X, y = load_diabetes(return_X_y=True)
    data = to_onnx(
        ExtraTreesRegressor(10, random_state=0).fit(X, y), X[:1].astype(np.float32)
    ).SerializeToString()
    assert _read_header_with_protobuf(data) == _read_header_walking(data)  # timings: benchmarks/
