"""The MLflow flavor (runtime/mlflow.py) against a real local tracking store, started here.

MLflow 3.17 keeps its file store in maintenance mode behind ``MLFLOW_ALLOW_FILE_STORE``; the
sqlite store needs the full ``mlflow`` package (SQLAlchemy, alembic), which pins pyarrow below the
version this project pins, so the tests run the file store of ``mlflow-skinny``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import exporter
import runtime
import runtime.mlflow
from tests.cases import CASES, fit_case, mixed_frame

mlflow = pytest.importorskip("mlflow")
MLFLOW_SERVE = (sys.executable, "-m", "mlflow", "models", "serve")


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A file tracking store in tmp_path, used by this test only."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A DataFrame pipeline with numbers, strings and an imputer (NaN taken in two columns only),
    exported with its ORT-format variant beside it."""
    case = next(c for c in CASES if c.id == "mixed-columntransformer-logistic")
    estimator, X, _ = fit_case(case)
    path = tmp_path_factory.mktemp("mlflow_models") / "mixed.onnx"
    exporter.export(estimator, sample=X.iloc[:60], ort_format=True).save(path)
    return path, estimator


def test_logged_model_answers_like_model_predict(tracking: str, mixed_model: tuple[Path, Any]) -> None:
    path, estimator = mixed_model
    with mlflow.start_run():
        info = runtime.mlflow.log_model(path, "mixed")
    pyfunc = mlflow.pyfunc.load_model(info.model_uri)
    model = runtime.load(path)
    frame, _ = mixed_frame(n=120, seed=3)  # unseen rows, NaN in income (imputed)
    labels = pyfunc.predict(frame)
    assert labels.dtype == model.predict(frame).dtype
    np.testing.assert_array_equal(labels, model.predict(frame))
    np.testing.assert_array_equal(labels, estimator.predict(frame))
    proba = pyfunc.predict(frame, params={"method": "predict_proba"})
    np.testing.assert_array_equal(proba, model.predict_proba(frame))

    # the signature is the model's schema, as DataFrames hold it; the example is the golden rows
    signature = pyfunc.metadata.get_input_schema().to_dict()
    kinds = {"O": "Any", "U": "Any", "i": "long", "f": "double"}  # Any: category columns too
    assert [(c["name"], c["type"] if c["type"] != "any" else "Any") for c in signature] == [
        (name, kinds[np.asarray(frame[name]).dtype.kind]) for name in model.schema.feature_names or ()
    ]
    example = pyfunc.input_example
    assert list(example.columns) == list(model.schema.feature_names or ())
    np.testing.assert_array_equal(pyfunc.predict(example), model.predict(example))

    # the runtime's own checks run inside the pyfunc: NaN only where the pipeline imputes it
    bad = frame.copy()
    bad.loc[0, "score"] = np.nan
    with pytest.raises(runtime.InvalidInputError, match="score"):
        pyfunc.predict(bad)

    # the variants travel with the model; the flavor loader gives back a runtime.Model
    flavor = pyfunc.metadata.flavors[runtime.mlflow.FLAVOR_NAME]
    assert flavor["serve"] == "mixed.onnx" and set(flavor["variants"]) == {"ort"}
    assert isinstance(runtime.mlflow.load_model(info.model_uri), runtime.Model)


def test_bytes_and_a_served_variant(tracking: str, iris_model: tuple[Path, Any, Any]) -> None:
    path, estimator, X = iris_model
    with mlflow.start_run():
        info = runtime.mlflow.log_model(path.read_bytes(), name="iris")
    pyfunc = mlflow.pyfunc.load_model(info.model_uri)
    columns = pyfunc.metadata.get_input_schema().to_dict()  # an array model: columns by position
    assert columns == [{"type": "double", "required": True}] * X.shape[1]
    model = runtime.load(path)
    np.testing.assert_array_equal(pyfunc.predict(X.astype(np.float64)), model.predict(X))
    np.testing.assert_array_equal(pyfunc.predict(pd.DataFrame(X)), estimator.predict(X))
    with pytest.raises(runtime.InvalidOptionError, match="variant='int8'"):
        runtime.mlflow.save_model(path, path.parent / "no_variant", variant="int8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["predictions"]


@pytest.mark.slow
def test_served_model_answers_over_http(tmp_path: Path, iris_model: tuple[Path, Any, Any]) -> None:
    """``mlflow models serve --env-manager local`` on 127.0.0.1: a bounded number of requests,
    each answered like Model.predict; the median latency is printed (pytest -s)."""
    path, _, X = iris_model
    folder = tmp_path / "served"
    runtime.mlflow.save_model(path, folder)
    port = _free_port()
    server = subprocess.Popen(
        [*MLFLOW_SERVE, "-m", str(folder), "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: uvicorn is exec'd under it
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping in 90 s"
            time.sleep(0.25)
        model = runtime.load(path)
        rows = X[:8].astype(np.float64)
        latencies = []
        for _ in range(20):
            start = time.perf_counter()
            answer = _post(f"{base}/invocations", {"inputs": rows.tolist()})
            latencies.append(time.perf_counter() - start)
            assert answer == model.predict(rows).tolist()
        proba = _post(f"{base}/invocations", {"inputs": rows.tolist(), "params": {"method": "predict_proba"}})
        np.testing.assert_allclose(np.asarray(proba), model.predict_proba(rows), rtol=0, atol=1e-7)
        print(f"mlflow serve: median {statistics.median(latencies) * 1e3:.1f} ms per request of 8 rows")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=20)
