"""``exporter check`` and ``exporter.testing.assert_parity``: pass and fail paths."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import exporter
from exporter.__main__ import main
from exporter.testing import assert_parity
from tests.models import TorchClassifier


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, iris_pipeline: Any) -> tuple[Path, Path, Any, Any]:
    """(pipeline.pkl, model.onnx, estimator, X) for the string-label iris pipeline."""
    estimator, X, _ = iris_pipeline
    folder = tmp_path_factory.mktemp("check")
    (folder / "pipeline.pkl").write_bytes(pickle.dumps(estimator))
    exporter.export(estimator, sample=X[:40]).save(folder / "model.onnx")
    return folder / "pipeline.pkl", folder / "model.onnx", estimator, X


def _refit(estimator: Any, X: Any) -> Any:
    """The same pipeline shape fitted again: same inputs and outputs, other weights."""
    steps = [*estimator.steps[:-1], ("torchclassifier", TorchClassifier(epochs=7))]
    return type(estimator)(steps).fit(X, estimator.predict(X))


def test_check_passes_on_golden_rows_and_user_rows(
    tmp_path: Path, exported: tuple[Path, Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    pkl, model, _, X = exported
    assert main(["check", str(pkl), str(model)]) == 0
    assert "check on 5 golden rows: passed" in capsys.readouterr().out
    np.save(tmp_path / "rows.npy", X)
    assert main(["check", str(pkl), str(model), "--data", str(tmp_path / "rows.npy"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # stdout holds one JSON document and nothing else
    assert doc["passed"] and doc["n_rows"] == len(X) and doc["sample"] == "user"


def test_check_rejects_a_model_from_another_fit(
    tmp_path: Path, exported: tuple[Path, Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Same pipeline shape, different weights: check must fail (exit 1) and show the worst rows."""
    _, model, estimator, X = exported
    refit = _refit(estimator, X)
    (tmp_path / "refit.pkl").write_bytes(pickle.dumps(refit))
    assert main(["check", str(tmp_path / "refit.pkl"), str(model), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    failed = [o for o in doc["outputs"] if not o["passed"]]
    assert failed and failed[0]["worst_rows"]
    assert main(["check", str(tmp_path / "refit.pkl"), str(model)]) == 1
    assert "FAIL probabilities" in capsys.readouterr().out


def test_check_usage_errors_exit_2(
    tmp_path: Path, exported: tuple[Path, Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    pkl, model, _, _ = exported
    assert main(["check", str(pkl), str(tmp_path / "none.onnx")]) == 2
    assert "model file not found" in capsys.readouterr().err
    np.save(tmp_path / "wide.npy", np.zeros((3, 9)))
    assert main(["check", str(pkl), str(model), "--data", str(tmp_path / "wide.npy")]) == 2
    assert "sample has shape (3, 9)" in capsys.readouterr().err


def test_assert_parity(exported: tuple[Path, Path, Any, Any]) -> None:
    _, model, estimator, X = exported
    assert_parity(estimator, model, X, atol=1e-4)
    refit = _refit(estimator, X)
    with pytest.raises(AssertionError, match="FAIL probabilities"):
        assert_parity(refit, model, X)
