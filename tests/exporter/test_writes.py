"""Atomic writes: a failed write (disk full) keeps the old artifacts and leaves no temp file."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import exporter
from exporter.__main__ import main
from exporter.api import ExportResult
from exporter.errors import WriteError
from exporter.package import write_all_atomic, write_atomic

ROOT = Path(__file__).resolve().parents[2]
FULL = "No space left on device"


@pytest.fixture(scope="module")
def pipeline() -> Any:
    X, y = load_iris(return_X_y=True)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


@pytest.fixture(scope="module")
def result(pipeline: Any) -> ExportResult:
    """An export with every kind of extra file (contents made up: only their writing is tested)."""
    X, _ = load_iris(return_X_y=True)
    plain = exporter.export(pipeline, sample=X[::5])
    return dataclasses.replace(plain, ort={"": b"ort", "int8": b"ort int8"}, ort_config=b"ops")


def _disk_full_after(monkeypatch: pytest.MonkeyPatch, n_bytes: int) -> None:
    """os.write writes ``n_bytes`` in all, then fails as on a full disk (a partial file first)."""
    real_write = os.write
    left = [n_bytes]

    def write(fd: int, data: Any) -> int:
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done = real_write(fd, bytes(data)[: left[0]])
        left[0] -= done
        return done

    monkeypatch.setattr(os, "write", write)


def _fail_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(fd: int) -> None:  # some filesystems (NFS, thin volumes) report ENOSPC only here
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_write_atomic_replaces_the_file_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    target.chmod(0o640)
    assert write_atomic(target, b"new contents") == target
    assert target.read_bytes() == b"new contents"
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temp file left
    write_atomic(tmp_path / "sub" / "dir" / "m.onnx", b"x")  # folders made as before
    assert (tmp_path / "sub" / "dir" / "m.onnx").read_bytes() == b"x"


def test_write_atomic_through_a_symlink_replaces_its_target(tmp_path: Path) -> None:
    real = tmp_path / "v1.onnx"
    real.write_bytes(b"old")
    (tmp_path / "model.onnx").symlink_to(real)
    write_atomic(tmp_path / "model.onnx", b"new")
    assert (tmp_path / "model.onnx").is_symlink() and real.read_bytes() == b"new"


@pytest.mark.parametrize("fail", ["write", "fsync"])
def test_disk_full_keeps_the_old_model(
    tmp_path: Path, result: ExportResult, monkeypatch: pytest.MonkeyPatch, fail: str
) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"the good model")
    if fail == "write":
        _disk_full_after(monkeypatch, 100)
    else:
        _fail_fsync(monkeypatch)
    with pytest.raises(WriteError) as info:
        write_atomic(target, result.model.SerializeToString())
    assert str(info.value) == (f"cannot write {str(target)!r}: {FULL}; the files already there are unchanged")
    assert isinstance(info.value, OSError)  # what a plain write raised: callers catching it still do
    assert _snapshot(tmp_path) == {"model.onnx": b"the good model"}


def test_save_is_all_or_nothing(
    tmp_path: Path, result: ExportResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up on the last file: no file is replaced, no temp file stays."""
    out = tmp_path / "model.onnx"
    names = sorted(["model.onnx", "model.ort", "model.int8.ort", "required_operators.config"])
    assert sorted(p.name for p in [out, *result.files(out)]) == names
    for name in names:
        (tmp_path / name).write_bytes(f"old {name}".encode())
    before = _snapshot(tmp_path)
    sizes = [len(d) for d in result.files(out).values()]
    _disk_full_after(monkeypatch, sum(sizes) + 10)  # the extras fit; the model does not
    with pytest.raises(WriteError, match=rf"cannot write '.*model\.onnx': {FULL}; the files already"):
        result.save(out)
    assert _snapshot(tmp_path) == before
    monkeypatch.undo()

    assert result.save(out) == out
    after = _snapshot(tmp_path)
    assert after["model.onnx"] == result.model.SerializeToString()
    assert after["model.int8.ort"] == b"ort int8" and after["required_operators.config"] == b"ops"
    assert sorted(after) == names


def test_a_failed_rename_removes_every_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").write_bytes(b"old a")
    (tmp_path / "b").write_bytes(b"old b")
    real_replace: Callable[..., None] = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(dst).name == "b":
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(WriteError, match=r"cannot write '.*b': Permission denied; 1 of 2 files were"):
        write_all_atomic({tmp_path / "a": b"new a", tmp_path / "b": b"new b"})
    assert _snapshot(tmp_path) == {"a": b"new a", "b": b"old b"}


def _pickled(pipeline: Any, folder: Path) -> Path:
    path = folder / "pipeline.pkl"
    path.write_bytes(pickle.dumps(pipeline))
    return path


@pytest.mark.parametrize("as_json", [False, True])
def test_cli_disk_full_is_one_line_and_keeps_the_model(
    tmp_path: Path,
    pipeline: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    as_json: bool,
) -> None:
    pkl, out = _pickled(pipeline, tmp_path), tmp_path / "model.onnx"
    out.write_bytes(b"the good model")
    _fail_fsync(monkeypatch)
    assert main([str(pkl), "-o", str(out), *(["--json"] if as_json else [])]) == 2
    captured = capsys.readouterr()
    message = f"cannot write {str(out)!r}: {FULL}; the files already there are unchanged"
    if as_json:
        assert json.loads(captured.out) == {"ok": False, "exit_code": 2, "error": message}
        assert captured.err == ""
    else:
        assert captured.err.splitlines() == [f"error: {message}"]
    assert _snapshot(tmp_path) == {"model.onnx": b"the good model", "pipeline.pkl": pkl.read_bytes()}


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE + SIGXFSZ: Linux")
def test_cli_real_short_write_keeps_the_model(tmp_path: Path, pipeline: Any) -> None:
    """A real failing write (the file-size limit, as a full disk would): the model stays whole."""
    pkl, out = _pickled(pipeline, tmp_path), tmp_path / "model.onnx"
    good = b"the good model" * 100
    out.write_bytes(good)
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
        "from exporter.__main__ import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(pkl), "-o", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: cannot write {str(out)!r}: File too large; the files already there are unchanged"
    ]
    assert _snapshot(tmp_path) == {"model.onnx": good, "pipeline.pkl": pkl.read_bytes()}
