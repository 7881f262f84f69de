"""``python -m runtime info|predict|bench|verify``: pass and fail paths, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from runtime.__main__ import main
from tests.runtime.conftest import plain_model

ROOT = Path(__file__).resolve().parents[2]


def _error(args: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    assert main(args) == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_info_text_and_json(iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(iris_model[0])]) == 0
    text = capsys.readouterr().out
    assert "task:       classifier" in text and "X[N, 4] float32" in text and "parity:     passed" in text
    assert "the graph checked at export" in text
    assert "CPU-only:   1 Gather" in text  # the string labels: the only node a GPU hands back
    assert main(["info", str(iris_model[0]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["classes"] == ["alpha", "beta", "gamma"] and info["providers"] == ["CPUExecutionProvider"]
    assert info["precision"] == "fp32" and info["ir_version"] <= 10
    assert info["cpu_only_nodes"] == {"Gather": 1}


def test_predict_csv_and_npy(
    tmp_path: Path, iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path, estimator, X = iris_model
    np.save(tmp_path / "rows.npy", X[:6])
    assert main(["predict", str(path), str(tmp_path / "rows.npy")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "label,proba_alpha,proba_beta,proba_gamma"
    assert [line.split(",")[0] for line in lines[1:]] == list(estimator.predict(X[:6]))

    np.savetxt(tmp_path / "rows.csv", X[:6], delimiter=",")  # no header line
    assert main(["predict", str(path), str(tmp_path / "rows.csv"), "-o", str(tmp_path / "out.json")]) == 0
    rows = json.loads((tmp_path / "out.json").read_text())
    assert [r["label"] for r in rows] == list(estimator.predict(X[:6]))
    np.testing.assert_allclose(
        [r["proba_beta"] for r in rows], estimator.predict_proba(X[:6])[:, 1], atol=1e-5
    )


def test_predict_dataframe_model_from_csv_and_parquet(
    tmp_path: Path, frame_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path, pipe, frame = frame_model
    rows = frame.iloc[:5][list(reversed(frame.columns))]  # column order does not matter
    rows.to_csv(tmp_path / "rows.csv", index=False)
    assert main(["predict", str(path), str(tmp_path / "rows.csv")]) == 0
    values = [float(v) for v in capsys.readouterr().out.strip().splitlines()[1:]]
    np.testing.assert_allclose(values, pipe.predict(frame.iloc[:5]), rtol=1e-5)
    pytest.importorskip("pyarrow")
    rows.to_parquet(tmp_path / "rows.parquet")
    assert main(["predict", str(path), str(tmp_path / "rows.parquet")]) == 0
    assert capsys.readouterr().out.startswith("prediction\n")


def test_predict_errors(
    tmp_path: Path, iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(iris_model[0])
    assert "data file not found" in _error(["predict", path, str(tmp_path / "none.csv")], capsys)
    (tmp_path / "bad.csv").write_text("a,b,c,d\n1,2,x,4\n")
    assert "column 'c' holds a non-number" in _error(["predict", path, str(tmp_path / "bad.csv")], capsys)
    np.save(tmp_path / "wide.npy", np.zeros((2, 9)))
    assert "expected 4 features, got 9" in _error(["predict", path, str(tmp_path / "wide.npy")], capsys)
    (tmp_path / "rows.txt").write_text("1,2,3,4\n")
    assert "use .csv, .npy or .parquet" in _error(["predict", path, str(tmp_path / "rows.txt")], capsys)


def test_bench(iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", str(iris_model[0]), "--batch", "1,32", "--min-time", "0.05", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["batch"] for r in rows] == [1, 32]
    assert all(r["p50_ms"] > 0 and r["p99_ms"] >= r["p50_ms"] and r["repeats"] >= 5 for r in rows)
    assert "--batch 'x'" in _error(["bench", str(iris_model[0]), "--batch", "x"], capsys)


def test_verify_passes_on_the_exported_model(
    iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(iris_model[0])]) == 0
    out = capsys.readouterr().out
    assert "verify on 5 golden rows: passed" in out and "precision fp32" in out


def test_verify_catches_changed_weights(
    tmp_path: Path, iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    model = onnx.load(iris_model[0])
    largest = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    largest.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(largest) * 1.5, largest.name))
    tampered = tmp_path / "tampered.onnx"
    onnx.save(model, tampered)
    assert main(["verify", str(tampered), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["passed"]
    assert any(o["name"] == "probabilities" and not o["passed"] for o in report["outputs"])
    assert any(o["name"] == "graph" and not o["passed"] for o in report["outputs"])
    assert main(["info", str(tampered)]) == 0
    assert "CHANGED since export" in capsys.readouterr().out


def test_verify_without_golden_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = plain_model(tmp_path / "plain.onnx")
    assert "carries no golden rows" in _error(["verify", str(path)], capsys)
    assert main(["info", str(path)]) == 0
    assert "not written by exporter" in capsys.readouterr().out


def test_missing_model_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "model file not found" in _error(["info", str(tmp_path / "x.onnx")], capsys)


@pytest.mark.slow
def test_runtime_cli_subprocess(iris_model: tuple[Path, Any, Any]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runtime", "verify", str(iris_model[0])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "passed" in done.stdout


def test_predict_csv_with_pandas_positional_header(
    tmp_path: Path, iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    path, _, X = iris_model
    pd.DataFrame(X[:4]).to_csv(tmp_path / "rows.csv", index=False)  # header line "0,1,2,3"
    assert main(["predict", str(path), str(tmp_path / "rows.csv")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 4
