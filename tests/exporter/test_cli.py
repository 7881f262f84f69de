"""The CLI: end to end through a subprocess, and every error path with its one-line message."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runtime
from exporter.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def _dump(obj: Any, path: Path) -> Path:
    path.write_bytes(pickle.dumps(obj))
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_cli_subprocess_end_to_end(tmp_path: Path, iris_pipeline: Any) -> None:
    estimator, X, _ = iris_pipeline
    pkl = _dump(estimator, tmp_path / "pipeline.pkl")
    np.save(tmp_path / "rows.npy", X[:30])

    done = _cli(
        str(pkl),
        "-o",
        str(tmp_path / "model.onnx"),
        "--sample",
        str(tmp_path / "rows.npy"),
        "--path",
        str(ROOT),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "parity on 30 user rows: passed" in done.stdout
    assert "[torch.onnx]" not in done.stdout  # the exporter's own output stays readable

    model = runtime.load(tmp_path / "model.onnx")
    np.testing.assert_array_equal(model.predict(X), estimator.predict(X))

    # Default output: next to the pipeline, with suffix .onnx; --json prints one document.
    done = _cli("pipeline.pkl", "--json", "--path", str(ROOT), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] and doc["parity"]["passed"] and doc["parity"]["sample"] == "synthetic"
    assert (tmp_path / "pipeline.onnx").is_file()


@pytest.mark.slow
def test_cli_subprocess_failure_is_one_line(tmp_path: Path) -> None:
    done = _cli(str(tmp_path / "missing.pkl"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: pipeline file not found: '{tmp_path / 'missing.pkl'}'"
    ]
    assert "Traceback" not in done.stderr


def test_csv_sample(tmp_path: Path, iris_pipeline: Any, capsys: pytest.CaptureFixture[str]) -> None:
    estimator, X, _ = iris_pipeline
    pkl = _dump(estimator, tmp_path / "p.pkl")
    np.savetxt(tmp_path / "rows.csv", X[:25], delimiter=",", header="a,b,c,d", comments="")
    assert main([str(pkl), "--sample", str(tmp_path / "rows.csv")]) == 0
    assert "parity on 25 user rows: passed" in capsys.readouterr().out


def _error(args: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    assert main(args) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_error_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "pipeline file not found" in _error([str(tmp_path / "nope.pkl")], capsys)


def test_error_garbage_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"this is not a pickle")
    assert "is not a readable pickle/joblib file" in _error([str(bad)], capsys)


def test_error_truncated_pickle(
    tmp_path: Path, iris_pipeline: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    data = pickle.dumps(iris_pipeline[0])
    bad = tmp_path / "cut.pkl"
    bad.write_bytes(data[: len(data) // 2])
    assert "truncated" in _error([str(bad)], capsys)


def test_error_not_an_estimator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = _error([str(_dump({"weights": [1, 2]}, tmp_path / "d.pkl"))], capsys)
    assert "holds a builtins.dict, not a fitted estimator" in message


def test_error_unfitted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    message = _error(
        [str(_dump(make_pipeline(StandardScaler(), LogisticRegression()), tmp_path / "u.pkl"))], capsys
    )
    assert "step 0 'standardscaler' (StandardScaler) is not fitted" in message


def test_error_unfitted_wrapper(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.models import PlainTorchClassifier

    wrapper = PlainTorchClassifier()
    wrapper.net_ = None  # declared in __init__-style, never trained
    message = _error([str(_dump(wrapper, tmp_path / "w.pkl"))], capsys)
    assert "holds no fitted torch module: fit it before exporting" in message


def test_error_unsupported_step(
    tmp_path: Path, iris_pipeline: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.pipeline import Pipeline

    from tests.models import Doubler

    estimator = iris_pipeline[0]
    pipe = Pipeline([("double", Doubler().fit(np.zeros((2, 4)))), *estimator.steps])
    message = _error([str(_dump(pipe, tmp_path / "x.pkl"))], capsys)
    assert "step 0 'double' (tests.models.Doubler) is not supported" in message
    assert "register_sklearn_converter(Doubler, builder)" in message and "README 'Extending'" in message


def test_error_class_in_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A pickle that refers to __main__.Wrapper, as when the class was defined in the training script.
    data = pickle.dumps(0).replace(b"K\x00", b"c__main__\nWrapper\n)\x81")
    path = tmp_path / "main.pkl"
    path.write_bytes(b"\x80\x04" + data[2:] if data[:1] == b"\x80" else data)
    message = _error([str(path)], capsys)
    assert "__main__" in message and "move that class into a module" in message


def test_error_class_not_importable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mod.pkl"
    path.write_bytes(b"cno_such_module_xyz\nWrapper\n)\x81.")
    message = _error([str(path)], capsys)
    assert "no_such_module_xyz" in message and "--path" in message


def test_error_bad_sample(tmp_path: Path, iris_pipeline: Any, capsys: pytest.CaptureFixture[str]) -> None:
    pkl = _dump(iris_pipeline[0], tmp_path / "p.pkl")
    np.save(tmp_path / "wide.npy", np.zeros((5, 7)))
    message = _error([str(pkl), "--sample", str(tmp_path / "wide.npy")], capsys)
    assert "sample has shape (5, 7); the pipeline takes rows of 4 features" in message


def test_parity_failure_writes_nothing_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.datasets import load_iris

    from tests.models import ProbabilityModuleClassifier

    X, y = load_iris(return_X_y=True)
    wrapper = ProbabilityModuleClassifier(epochs=30).fit(X.astype(np.float32), y)
    pkl = _dump(wrapper, tmp_path / "probs.pkl")
    message = _error([str(pkl)], capsys, code=1)
    assert "does not match the native pipeline" in message
    assert (
        "register_wrapper(ProbabilityModuleClassifier, "
        "head=exporter.Head(task='classifier', proba='identity'))" in message
    )
    assert not (tmp_path / "probs.onnx").exists()

    assert main([str(pkl), "--force"]) == 0
    assert "parity FAILED; written anyway" in capsys.readouterr().out
    model = runtime.load(tmp_path / "probs.onnx")
    assert model.metadata["parity"]["passed"] is False


def test_plugin_module_registers_the_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.datasets import load_iris

    from exporter.registry import registry
    from tests.models import ProbabilityModuleClassifier

    X, y = load_iris(return_X_y=True)
    pkl = _dump(ProbabilityModuleClassifier(epochs=30).fit(X.astype(np.float32), y), tmp_path / "p.pkl")
    (tmp_path / "my_heads_xyz.py").write_text(
        "import exporter\n"
        "from tests.models import ProbabilityModuleClassifier\n"
        "exporter.register_wrapper(ProbabilityModuleClassifier, head=exporter.Head(proba='identity'))\n"
    )
    try:
        assert main([str(pkl), "--plugin", "my_heads_xyz", "--path", str(tmp_path)]) == 0
        assert "parity on 64 synthetic rows: passed" in capsys.readouterr().out
    finally:
        registry.unregister(ProbabilityModuleClassifier)
        sys.modules.pop("my_heads_xyz", None)
    assert "cannot import plugin module 'nope_xyz'" in _error([str(pkl), "--plugin", "nope_xyz"], capsys)
