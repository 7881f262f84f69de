from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import exporter


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory: pytest.TempPathFactory, iris_pipeline: Any) -> tuple[Path, Any, Any]:
    """(model path, fitted pipeline, X): string-label iris classifier exported once."""
    estimator, X, _ = iris_pipeline
    path = tmp_path_factory.mktemp("models") / "iris.onnx"
    exporter.export(estimator, sample=X[:40]).save(path)
    return path, estimator, X


@pytest.fixture(scope="session")
def frame_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    """A DataFrame-trained regressor: one input per column."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_diabetes(as_frame=True)
    pipe = make_pipeline(StandardScaler(), Ridge()).fit(frame.data, frame.target)
    path = tmp_path_factory.mktemp("models") / "diabetes.onnx"
    exporter.export(pipe, sample=frame.data.iloc[:50]).save(path)
    return path, pipe, frame.data


def plain_model(path: Path, opset: int = 18, ir_version: int = 8) -> Path:
    """A foreign ONNX model (no exporter metadata): Relu over X[N, 2]."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["X"], ["Y"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 2])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version), path
    )
    return path
