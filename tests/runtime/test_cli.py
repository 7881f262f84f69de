"""``python -m runtime info|predict|bench|verify``: pass and fail paths, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from runtime.__main__ import main
from tests.runtime.conftest import plain_model

ROOT = Path(__file__).resolve().parents[2]


def peak_growth(work: Any) -> tuple[Any, int]:
    """``work()``'s answer and how far it raised peak memory: the resident set's high-water mark
    where Linux lets a process reset it (no overhead), else tracemalloc (Python allocations only,
    several times slower)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
        before = vm_hwm()
    except OSError:
        tracemalloc.start()
        try:
            answer = work()
            return answer, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    answer = work()
    return answer, vm_hwm() - before


def vm_hwm() -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


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
    out = str(tmp_path / "out.json")
    assert main(["predict", str(path), str(tmp_path / "rows.csv"), "--no-header", "-o", out]) == 0
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
    assert "verify on 40 golden rows: passed" in out and "precision fp32" in out


def test_verify_catches_changed_weights(
    tmp_path: Path, iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    model = onnx.load(iris_model[0])
    largest = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    largest.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(largest) * 1.5, largest.name))
    tampered = tmp_path / "tampered.onnx"
    onnx.save(model, tampered)
    # The seal refuses it at load (exit 2, one line); --no-check-hash replays the golden rows anyway.
    assert main(["verify", str(tampered), "--json"]) == 2
    assert "altered or damaged" in json.loads(capsys.readouterr().out)["error"]
    assert main(["verify", str(tampered), "--json", "--no-check-hash"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["passed"]
    assert any(o["name"] == "probabilities" and not o["passed"] for o in report["outputs"])
    assert any(o["name"] == "graph" and not o["passed"] for o in report["outputs"])
    assert main(["info", str(tampered), "--no-check-hash"]) == 0
    out = capsys.readouterr().out
    assert "CHANGED since export" in out and "NOT checked (check_hash=False)" in out


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
    # All numbers: a header or a row? Refused by default, never guessed; --header says which.
    message = _error(["predict", str(path), str(tmp_path / "rows.csv")], capsys)
    assert "the first line ('0,1,2,3') is all numbers" in message and "--header" in message
    assert main(["predict", str(path), str(tmp_path / "rows.csv"), "--header"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 4


def _json_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Exit 2, one line on stderr, and one JSON document on stdout that says the same."""
    assert main(args) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    doc = json.loads(captured.out.strip().splitlines()[-1])
    assert doc == {"ok": False, "exit_code": 2, "error": line.removeprefix("error: ")}
    return doc


def test_unreadable_data_files_are_one_line(
    tmp_path: Path, iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(iris_model[0])
    (tmp_path / "latin1.csv").write_bytes(b"a,b,c,d\n1,2,3,4\n" + "caf\xe9,1,2,3\n".encode("latin-1"))
    message = _error(["predict", path, str(tmp_path / "latin1.csv")], capsys)
    assert message.endswith(
        "latin1.csv' is not UTF-8 text: byte b'\\xe9' at offset 19 (line 3); "
        "re-save the file as UTF-8 (e.g. Excel: 'CSV UTF-8')"
    )
    (tmp_path / "long.csv").write_text('a,b,c,d\n1,"2,3,4\n' + "x" * 200_000 + "\n")
    assert "a cell is longer than 131,072 characters" in _error(
        ["predict", path, str(tmp_path / "long.csv")], capsys
    )
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    assert "as Parquet: " in _error(["predict", path, str(tmp_path / "bad.parquet")], capsys)
    np.save(tmp_path / "objects.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    assert "holds Python objects" in _error(["predict", path, str(tmp_path / "objects.npy")], capsys)
    (tmp_path / "empty.npy").write_bytes(b"")
    assert "as .npy: No data left in file" in _error(["predict", path, str(tmp_path / "empty.npy")], capsys)


def test_predict_json_failure_documents(
    tmp_path: Path, iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(iris_model[0])
    np.save(tmp_path / "wide.npy", np.zeros((2, 9)))  # does not fit the model: InvalidInputError
    doc = _json_error(["predict", path, str(tmp_path / "wide.npy"), "--json"], capsys)
    assert "expected 4 features, got 9" in doc["error"]
    (tmp_path / "twins.csv").write_text("a,b,a,d\n1,2,3,4\n")
    doc = _json_error(["predict", path, str(tmp_path / "twins.csv"), "--json"], capsys)
    assert "the header names column(s) ['a'] more than once" in doc["error"]
    doc = _json_error(["predict", path, str(tmp_path / "twins.csv"), "-o", "out.txt", "--json"], capsys)
    assert "output format 'txt' (from 'out.txt'): use .csv or .json" in doc["error"]
    np.save(tmp_path / "rows.npy", iris_model[2][:3])
    out = tmp_path / "out.csv"
    assert main(["predict", path, str(tmp_path / "rows.npy"), "-o", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "exit_code": 0, "rows": 3, "output": str(out)}


def test_usage_errors_are_one_line_and_json(
    iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(iris_model[0])
    message = _error(["predict", path], capsys)
    assert message == (
        "error: the following arguments are required: data (see python -m runtime predict --help)"
    )
    doc = _json_error(["info", path, "--json", "--no-such-option"], capsys)
    assert doc["error"].startswith("unrecognized arguments: --no-such-option")
    doc = _json_error(["verify", path, "--json", "--atol", "x"], capsys)
    assert doc["error"].startswith("argument --atol: invalid float value: 'x'")
    _json_error(["predict", path, "rows.csv", "--header", "--no-header", "--json"], capsys)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["verify", "--atol", "nan"], "atol=nan for '--atol/--rtol': tolerances must be finite numbers >= 0"),
        (["verify", "--rtol", "nan"], "rtol=nan for '--atol/--rtol': tolerances must be finite numbers >= 0"),
        (["verify", "--atol", "-1"], "atol=-1.0 for '--atol/--rtol'"),
        (["verify", "--rtol", "inf"], "rtol=inf for '--atol/--rtol'"),
        (["predict", "rows.csv", "--batch-size", "0"], "--batch-size 0: use a positive number of rows"),
        (["predict", "rows.csv", "--batch-size", "-3"], "--batch-size -3: use a positive number of rows"),
        (["bench", "--batch", "1,0"], "--batch 0: use a positive number of rows"),
        (["bench", "--batch", "-5"], "--batch -5: use a positive number of rows"),
        (["bench", "--min-time", "nan"], "--min-time nan: use a finite number of seconds >= 0"),
    ],
)
def test_bad_options_are_refused_before_the_model_loads(
    tmp_path: Path, args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.onnx")  # not "model file not found": the option is checked first
    command, *rest = args
    assert expected in _error([command, missing, *rest], capsys)
    if command != "predict":
        assert expected in _json_error([command, missing, *rest, "--json"], capsys)["error"]


def test_unexpected_errors_are_one_line(
    iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(args: Any) -> int:
        raise KeyError("surprise\nsecond line")

    monkeypatch.setitem(__import__("runtime.__main__").__main__.COMMANDS, "info", broken)
    message = _error(["info", str(iris_model[0])], capsys)
    assert (
        message
        == "error: unexpected KeyError: 'surprise\\nsecond line' (rerun with --debug for the traceback)"
    )
    assert "unexpected KeyError" in _json_error(["info", str(iris_model[0]), "--json"], capsys)["error"]
    # --debug shows the traceback and keeps the documented exit code (a bare raise exits 1).
    assert main(["info", str(iris_model[0]), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_predict_streams_every_row(
    tmp_path: Path, iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path, estimator, X = iris_model
    (tmp_path / "rows.csv").write_text(
        "\ufeffa,b,c,d\n" + "".join(",".join(map(repr, map(float, r))) + "\n" for r in X[:7])
    )
    assert main(["predict", str(path), str(tmp_path / "rows.csv"), "--batch-size", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == list(estimator.predict(X[:7]))  # BOM: no row lost
    out = tmp_path / "out.json"
    assert main(["predict", str(path), str(tmp_path / "rows.csv"), "--batch-size", "3", "-o", str(out)]) == 0
    assert [r["label"] for r in json.loads(out.read_text())] == list(estimator.predict(X[:7]))


def test_predict_keeps_memory_bounded(
    tmp_path: Path, iris_model: tuple[Path, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    block = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in iris_model[2][:150])
    data = tmp_path / "big.csv"
    with data.open("w") as fh:
        fh.write("a,b,c,d\n")
        for _ in range(900):  # 135,000 rows, ~10 MB
            fh.write(block)
    size = data.stat().st_size
    out = tmp_path / "out.csv"
    args = ["predict", str(iris_model[0]), str(data), "-o", str(out), "--batch-size", "8192"]
    code, peak = peak_growth(lambda: main(args))
    assert code == 0 and sum(1 for _ in out.open()) == 1 + 135_000
    # The old reader held every row as lists of text: 141 MiB for a 20 MB file.
    assert peak < size / 2, f"peak grew {peak / 2**20:.1f} MiB for a {size / 2**20:.1f} MiB file"
