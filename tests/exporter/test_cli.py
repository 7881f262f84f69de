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


# Options and file errors of both commands: exit 2, one line (or one JSON document with --json).


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """(pipeline.pkl, model.onnx, estimator): a fast sklearn-only iris pipeline, exported once."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import exporter

    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    folder = tmp_path_factory.mktemp("small")
    exporter.export(pipe, sample=X[::5]).save(folder / "model.onnx")
    return _dump(pipe, folder / "pipeline.pkl"), folder / "model.onnx", pipe


def _json_error(args: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    assert main([*args, "--json"]) == code
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # exactly one document: json.loads refuses anything after it
    assert doc.keys() == {"ok", "exit_code", "error"} and doc["ok"] is False and doc["exit_code"] == code
    assert captured.err == "" and "\n" not in doc["error"]
    return str(doc["error"])


@pytest.mark.parametrize("command", ["export", "check"])
@pytest.mark.parametrize(
    ("option", "value"), [("--atol", "nan"), ("--rtol", "NaN"), ("--atol", "inf"), ("--rtol", "-1")]
)
def test_tolerance_options_must_be_finite(
    tmp_path: Path,
    small: tuple[Path, Path, Any],
    capsys: pytest.CaptureFixture[str],
    command: str,
    option: str,
    value: str,
) -> None:
    """A NaN tolerance made every parity gate pass: refused before anything runs or is written."""
    pkl, model, _ = small
    out = tmp_path / "out.onnx"
    args = ["check", str(pkl), str(model)] if command == "check" else [str(pkl), "-o", str(out)]
    prog = "python -m exporter check" if command == "check" else "python -m exporter"
    expected = (
        f"argument {option}: {value!r} is not a tolerance: give a finite number >= 0, e.g. 1e-4 "
        f"(NaN or inf would let every parity check pass); see {prog} --help"
    )
    assert _error([*args, option, value], capsys) == f"error: {expected}"
    assert _json_error([*args, option, value], capsys) == expected
    assert not out.exists()


@pytest.mark.parametrize("pair", [(float("nan"), 0.0), (0.0, float("nan")), (float("inf"), 0.0), (-1.0, 0.0)])
def test_api_refuses_tolerances_that_pass_everything(
    small: tuple[Path, Path, Any], pair: tuple[float, float]
) -> None:
    """export() and check() refuse them first, with an exporter error (exit 2 on the CLI)."""
    import exporter
    from exporter.check import check
    from exporter.errors import OptionError

    _, model, pipe = small
    label, value = ("atol", pair[0]) if pair[0] != 0.0 else ("rtol", pair[1])
    message = (
        f"{label}={value!r} for 'probabilities': tolerances must be finite numbers >= 0 "
        "(NaN or inf would let every comparison pass)"
    )
    with pytest.raises(OptionError) as info:
        exporter.export(pipe, tolerances={"probabilities": pair})
    assert str(info.value) == message and info.value.exit_code == 2
    with pytest.raises(OptionError) as info:
        check(pipe, model, tolerances={"probabilities": pair})
    assert str(info.value) == message


def test_usage_errors_with_json_print_one_document(
    small: tuple[Path, Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse's own errors too: no usage text, no SystemExit, one document on stdout."""
    pkl, model, _ = small
    assert _json_error([], capsys) == (
        "the following arguments are required: pipeline; see python -m exporter --help"
    )
    assert _json_error(["check"], capsys) == (
        "the following arguments are required: pipeline, model; see python -m exporter check --help"
    )
    assert _json_error([str(pkl), "--bogus"], capsys) == (
        "unrecognized arguments: --bogus; see python -m exporter --help"
    )
    assert _json_error(["check", str(pkl), str(model), "--quantize", "dynamic"], capsys).startswith(
        "unrecognized arguments: --quantize dynamic"
    )
    assert _error([str(pkl), "--dtype", "float16"], capsys) == (
        "error: argument --dtype: invalid choice: 'float16' (choose from 'float32', 'float64'); "
        "see python -m exporter --help"
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing model", "model file not found: '{folder}/none.onnx'"),
        ("corrupt model", "{folder}/bad.onnx: not an ONNX model"),  # the runtime's words
        ("missing pipeline", "pipeline file not found: '{folder}/none.pkl'"),
        (
            "corrupt csv",
            "cannot read sample file '{folder}/bad.csv': Error tokenizing data. C error: "
            "Expected 4 fields in line 3, saw 6",
        ),
        ("missing csv", "sample file not found: '{folder}/none.csv'"),
    ],
)
def test_check_file_errors_exit_2_in_one_line(
    tmp_path: Path,
    small: tuple[Path, Path, Any],
    capsys: pytest.CaptureFixture[str],
    case: str,
    expected: str,
) -> None:
    pkl, model, _ = small
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07 not a model")
    (tmp_path / "bad.csv").write_text("a,b,c,d\n1,2,3,4\n1,2,3,4,5,6\n")
    args = {
        "missing model": [str(pkl), str(tmp_path / "none.onnx")],
        "corrupt model": [str(pkl), str(tmp_path / "bad.onnx")],
        "missing pipeline": [str(tmp_path / "none.pkl"), str(model)],
        "corrupt csv": [str(pkl), str(model), "--data", str(tmp_path / "bad.csv")],
        "missing csv": [str(pkl), str(model), "--data", str(tmp_path / "none.csv")],
    }[case]
    message = expected.format(folder=tmp_path)
    line = _error(["check", *args], capsys)
    assert line.startswith(f"error: {message}"), line
    assert _json_error(["check", *args], capsys).startswith(message)


def test_debug_shows_the_traceback_and_keeps_the_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--debug used to re-raise, so every failure exited 1 (the README says 2 for a bad file)."""
    assert main([str(tmp_path / "missing.pkl"), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "missing.pkl" in err
