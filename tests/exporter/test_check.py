"""``exporter check`` and ``exporter.testing.assert_parity``: pass and fail paths."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import exporter
from exporter.__main__ import main
from exporter.check import check
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
    out = capsys.readouterr().out
    assert "check on 40 golden rows: passed" in out  # the whole 40-row export sample
    assert "content sha256" in out and "checked at load" in out
    assert "note: only 40 golden rows" in out  # too few to catch a near-identical refit: say so
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
    # Diagnosis on the model at hand: the optimizer folded the scaler into the net's first layer,
    # so they are one piece; it diverges, the head (fed the native logits) does not.
    stages = {s["stage"]: s for s in doc["stages"]}
    merged = stages["sklearn stage [standardscaler] + torch stage [torchclassifier]"]
    assert not merged["passed"] and merged["compared"] == "module output"
    assert stages["head of 'torchclassifier'"]["passed"]
    assert main(["check", str(tmp_path / "refit.pkl"), str(model)]) == 1
    out = capsys.readouterr().out
    assert "FAIL probabilities" in out and "torch stage [torchclassifier]: module output" in out


def test_golden_rows_catch_a_model_from_another_fit(tmp_path: Path) -> None:
    """Before: 5 golden rows passed a model from another fit that agrees on ~97% of labels (a
    labels-only classifier: no probabilities to give it away). Measured here: 5 rows catch such a
    refit 14% of the time, 64 rows 86%, 256 rows 99.96%; the export now keeps 256."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))
    fit_a, fit_b = order[:300], order[269:]

    def pipe(rows: np.ndarray) -> Any:
        return make_pipeline(StandardScaler(), RidgeClassifier()).fit(X[rows], y[rows])

    a, b = pipe(fit_a), pipe(fit_b)
    agreement = (a.predict(X) == b.predict(X)).mean()
    assert 0.95 < agreement < 1.0
    result = exporter.export(a, sample=X)
    assert len(result.metadata["golden"]["outputs"]["label"]) == 256
    result.save(tmp_path / "a.onnx")
    (tmp_path / "b.pkl").write_bytes(pickle.dumps(b))
    report = check(b, tmp_path / "a.onnx")
    assert not report.passed and report.n_rows == 256
    first5 = X[:5]  # what the old 5 golden rows saw: the refit agrees there
    np.testing.assert_array_equal(a.predict(first5), b.predict(first5))
    assert main(["check", str(tmp_path / "b.pkl"), str(tmp_path / "a.onnx")]) == 1


def test_check_refuses_a_tampered_model(
    tmp_path: Path, exported: tuple[Path, Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """check loads through runtime.load: a file altered after export is refused (exit 2)."""
    pkl, model, _, _ = exported
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / "bad.onnx").write_bytes(bytes(data))
    assert main(["check", str(pkl), str(tmp_path / "bad.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("altered or damaged" in err or "not an ONNX model" in err)


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


def test_check_names_a_diverging_sklearn_stage(tmp_path: Path, exported: tuple[Path, Path, Any, Any]) -> None:
    """The same net behind a scaler fitted on other data: the sklearn stage is the one to blame,
    and the net, fed the native scaler output, still matches."""
    _, _, estimator, X = exported
    plain = exporter.export(estimator, sample=X[:40], optimize=False)  # every seam kept
    plain.save(tmp_path / "plain.onnx")
    other = copy.deepcopy(estimator)
    other.steps[0][1].fit(X * 2.0 + 1.0)
    report = check(other, tmp_path / "plain.onnx", X)
    assert not report.passed
    assert [(s["stage"], s["passed"]) for s in report.stages] == [
        ("sklearn stage [standardscaler]", False),
        ("torch stage [torchclassifier]", True),
        ("head of 'torchclassifier'", True),
    ]
    assert report.stages[0]["max_abs_error"] > 0.1


def test_check_diagnoses_a_final_sklearn_stage(tmp_path: Path) -> None:
    """No torch stage: the last sklearn stage is judged on probabilities and labels together."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=10.0)).fit(X, y)
    exporter.export(pipe, sample=X[::3]).save(tmp_path / "model.onnx")
    assert check(pipe, tmp_path / "model.onnx", X).passed  # the right pipeline
    weaker = make_pipeline(StandardScaler(), LogisticRegression(C=0.01)).fit(X, y)
    report = check(weaker, tmp_path / "model.onnx", X)
    (stage,) = report.stages
    assert stage["stage"] == "sklearn stage [standardscaler, logisticregression]"
    assert not stage["passed"] and stage["compared"] == "labels + probabilities"
    assert stage["label_agreement"] < 1.0
