"""runtime.Model: inputs it accepts, and a clear runtime error for everything it must refuse."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runtime
from runtime import InvalidInputError, ModelLoadError, UnsupportedMethodError
from tests.runtime.conftest import plain_model


def test_accepts_arrays_of_any_numeric_dtype_and_lists(iris_model: tuple[Path, Any, Any]) -> None:
    path, estimator, X = iris_model
    model = runtime.load(path)
    expected = estimator.predict(X)
    for variant in (X.astype(np.float64), X.astype(np.float32), X.tolist()):
        np.testing.assert_array_equal(model.predict(variant), expected)
    assert model.predict(np.round(X).astype(np.int64)).shape == expected.shape
    assert model.classes_.tolist() == estimator.classes_.tolist()


def test_outputs_of_run(iris_model: tuple[Path, Any, Any]) -> None:
    model = runtime.load(iris_model[0])
    out = model.run(iris_model[2][:7])
    assert set(out) == {"label", "probabilities"}
    assert out["probabilities"].shape == (7, 3) and out["probabilities"].dtype == np.float32


def test_string_labels_come_from_the_index_output(iris_model: tuple[Path, Any, Any]) -> None:
    """String classes: the graph also outputs the class index; predict maps it in NumPy (the
    string output costs a Python str per row), with the native dtype; run() leaves it out."""
    import onnx

    path, estimator, X = iris_model
    model = runtime.load(path)
    assert model.metadata["outputs"]["label_index"] == {
        "dtype": "int64", "shape": [None], "native_dtype": "int64", "auxiliary": True
    }  # fmt: skip
    for rows in (X, X[:1], X.astype(np.float64), X.tolist()):  # fast path and general path
        got = model.predict(rows)
        assert got.dtype == estimator.predict(X).dtype
        np.testing.assert_array_equal(got, estimator.predict(np.asarray(rows, dtype=np.float32)))
    np.testing.assert_array_equal(model.predict(X, batch_size=7), estimator.predict(X))
    # A model without the index output (exported before it existed) still predicts via "label".
    proto = onnx.load(str(path))
    old = [o for o in proto.graph.output if o.name != "label_index"]
    del proto.graph.output[:]
    proto.graph.output.extend(old)
    meta = json.loads(proto.metadata_props[0].value)
    del meta["outputs"]["label_index"]
    proto.metadata_props[0].value = json.dumps(meta)
    edited = runtime.load(proto.SerializeToString(), check_hash=False)  # an edited file: unsealed
    np.testing.assert_array_equal(edited.predict(X), estimator.predict(X))


def test_load_from_bytes_and_context_manager(iris_model: tuple[Path, Any, Any]) -> None:
    with runtime.load(iris_model[0].read_bytes()) as model:
        assert model.predict(iris_model[2][:2]).shape == (2,)
        assert model.providers == ["CPUExecutionProvider"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((3, 5)), "expected 4 features, got 5"),
        (np.zeros(4), "got a 1-D array of 4 values; use X.reshape(1, -1) for a single row"),
        (
            np.array([["a", "b", "c", "d"]]),
            "feature 0, feature 1, feature 2, feature 3 holds non-numeric values",
        ),
        (np.array([["1", "2", "3", "4"]]), "feature 0, feature 1, feature 2, feature 3 holds non-numeric"),
        (np.ones((1, 4), dtype=complex), "holds non-numeric values (complex128)"),
        (np.array([[1.0, np.nan, 2.0, 3.0]]), "feature 1 holds NaN or infinite values"),
        (np.array([[1.0, 2.0, np.inf, 3.0]]), "feature 2 holds NaN or infinite values"),
        ([[1.0, 2.0], [1.0]], "could not read the input as a table"),
        (np.zeros((2, 2, 2)), "expected a 2-D input (rows x features), got shape (2, 2, 2)"),
    ],
)
def test_bad_arrays(iris_model: tuple[Path, Any, Any], bad: Any, message: str) -> None:
    model = runtime.load(iris_model[0])
    with pytest.raises(InvalidInputError) as info:
        model.predict(bad)
    assert message in str(info.value)


def test_empty_batch_gives_empty_outputs(iris_model: tuple[Path, Any, Any]) -> None:
    model = runtime.load(iris_model[0])
    assert model.predict(np.zeros((0, 4))).shape == (0,)
    assert model.predict_proba(np.zeros((0, 4))).shape == (0, 3)


def test_dataframe_columns_by_name_in_any_order(frame_model: tuple[Path, Any, Any]) -> None:
    path, pipe, frame = frame_model
    model = runtime.load(path)
    assert model.schema.layout == "columns" and len(model.schema.inputs) == frame.shape[1]
    shuffled = frame[list(reversed(frame.columns))]
    np.testing.assert_allclose(model.predict(shuffled), pipe.predict(frame), rtol=1e-5, atol=1e-3)
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    np.testing.assert_allclose(model.predict(columns), pipe.predict(frame), rtol=1e-5, atol=1e-3)
    assert model.predict(frame).dtype == pipe.predict(frame).dtype


def test_dataframe_errors_name_the_column(frame_model: tuple[Path, Any, Any]) -> None:
    path, _, frame = frame_model
    model = runtime.load(path)
    with pytest.raises(InvalidInputError, match=r"missing column\(s\) \['bmi'\]"):
        model.predict(frame.drop(columns=["bmi"]))
    bad = frame.copy()
    bad["age"] = bad["age"].astype(object)
    bad.loc[3, "age"] = "old"
    with pytest.raises(InvalidInputError, match=r"column 'age' holds non-numeric values"):
        model.predict(bad)
    nan = frame.copy()
    nan.loc[0, "bp"] = np.nan
    with pytest.raises(InvalidInputError, match=r"column 'bp' holds NaN"):
        model.predict(nan)


def test_methods_that_do_not_apply(frame_model: tuple[Path, Any, Any]) -> None:
    model = runtime.load(frame_model[0])
    with pytest.raises(
        UnsupportedMethodError, match=r"predict_proba is not available: this model is a regressor"
    ):
        model.predict_proba(frame_model[2])
    with pytest.raises(UnsupportedMethodError, match=r"transform is for pipelines that end in a transformer"):
        model.transform(frame_model[2])


def test_model_cannot_be_pickled(iris_model: tuple[Path, Any, Any]) -> None:
    with pytest.raises(TypeError, match=r"send the model path or bytes to the worker"):
        pickle.dumps(runtime.load(iris_model[0]))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "model file not found"),
        (b"", "is empty"),
        (b"\x00garbage\xff" * 10, "not an ONNX model"),
    ],
)
def test_bad_model_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "m.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message):
        runtime.load(path)


def test_truncated_model(tmp_path: Path, iris_model: tuple[Path, Any, Any]) -> None:
    data = iris_model[0].read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelLoadError, match=r"cut.onnx"):
        runtime.load(path)


def test_model_too_new_for_this_onnxruntime(tmp_path: Path, iris_model: tuple[Path, Any, Any]) -> None:
    import onnx

    model = onnx.load(iris_model[0])
    model.ir_version = 99
    path = tmp_path / "future.onnx"
    onnx.save(model, path)
    with pytest.raises(ModelLoadError, match=r"model IR version 99 is newer than this onnxruntime"):
        runtime.load(path, check_hash=False)  # edited on purpose: the seal would refuse it first


def test_unknown_provider_is_refused(iris_model: tuple[Path, Any, Any]) -> None:
    with pytest.raises(ModelLoadError, match=r"execution provider\(s\) \['NoSuchExecutionProvider'\]"):
        runtime.load(iris_model[0], providers=["NoSuchExecutionProvider"])


def test_hot_path_still_refuses_bad_values(iris_model: tuple[Path, Any, Any]) -> None:
    """float32 rows of the right width take the specialised path; NaN/inf must still be refused."""
    path, estimator, X = iris_model
    model = runtime.load(path)
    good = X[:3].astype(np.float32)
    np.testing.assert_array_equal(model.predict(good), estimator.predict(good))
    assert "predict" in model._fast  # the specialised path is in use
    for bad in (np.nan, np.inf, -np.inf):
        rows = good.copy()
        rows[1, 2] = bad
        with pytest.raises(InvalidInputError, match="feature 2 holds NaN or infinite values"):
            model.predict(rows)
    huge = np.full((1, 4), 3e38, dtype=np.float32)  # finite, but its dot product overflows
    assert model.predict(huge).shape == (1,)
    assert model.predict(np.asfortranarray(X[:5].astype(np.float32))).shape == (5,)


def test_model_opset_too_new(tmp_path: Path) -> None:
    path = plain_model(tmp_path / "op99.onnx", opset=99, ir_version=10)
    with pytest.raises(
        ModelLoadError, match=r"needs ai.onnx opset 99 but onnxruntime .* supports ai.onnx up to opset \d+"
    ):
        runtime.load(path)


def test_missing_strings_are_refused_not_turned_into_text(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    import exporter
    from tests.cases import _mixed_columns, mixed_frame

    frame, y = mixed_frame(n=120)
    pipe = make_pipeline(_mixed_columns(), LogisticRegression()).fit(frame, y)
    model = runtime.load(exporter.export(pipe, sample=frame).model.SerializeToString())
    bad = frame.iloc[:4].copy()
    bad.loc[2, "city"] = None
    with pytest.raises(
        InvalidInputError, match=r"column 'city' has missing or non-text values at row\(s\) \[2\]"
    ):
        model.predict(bad)
    # Rows as lists mixing numbers and text reach the right columns.
    rows = frame.iloc[:3].astype(object).to_numpy().tolist()
    np.testing.assert_array_equal(model.predict(rows), pipe.predict(frame.iloc[:3]))


def test_graph_hash_ignores_metadata_but_not_weights(iris_model: tuple[Path, Any, Any]) -> None:
    import onnx
    from onnx import numpy_helper

    from runtime._proto import graph_sha256

    model = onnx.load(iris_model[0])
    original = graph_sha256(model.SerializeToString())
    assert runtime.load(iris_model[0]).graph_unchanged is True
    model.metadata_props.add(key="note", value="metadata does not change what the model computes")
    model.producer_name = "someone else"
    assert graph_sha256(model.SerializeToString()) == original
    weights = model.graph.initializer[0]
    weights.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weights) + 1e-3, weights.name))
    assert graph_sha256(model.SerializeToString()) != original
