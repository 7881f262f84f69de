"""Loading: pickle, joblib, skops (trusted-type check), search CV unwrapping, user modules."""

from __future__ import annotations

import os
import pickle
import sys
import textwrap
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import exporter
from exporter.__main__ import main
from exporter.errors import LoadError, NotFittedError, OptionError


@pytest.fixture(scope="module")
def search() -> GridSearchCV:
    X, y = load_iris(return_X_y=True)
    grid = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression()), {"logisticregression__C": [0.1, 1.0]}, cv=2
    )
    return grid.fit(X, y)


def test_joblib_file(tmp_path: Path, search: GridSearchCV) -> None:
    joblib.dump(search, tmp_path / "grid.joblib")
    loaded = exporter.load_estimator(tmp_path / "grid.joblib")
    assert loaded.get_params()["logisticregression__C"] == search.best_params_["logisticregression__C"]


def test_search_unwraps_to_best_estimator(search: GridSearchCV) -> None:
    X, _ = load_iris(return_X_y=True)
    result = exporter.export(search, sample=X)
    assert result.report.passed
    assert [p.node.kind for p in result.plan.nodes] == ["sklearn"]


def test_randomized_search_without_refit_is_refused() -> None:
    X, y = load_iris(return_X_y=True)
    rs = RandomizedSearchCV(
        LogisticRegression(), {"C": [0.1, 1.0]}, n_iter=2, cv=2, refit=False, random_state=0
    )
    with pytest.raises(NotFittedError, match=r"without best_estimator_: fit it with refit=True"):
        exporter.export(rs.fit(X, y))


def test_skops_lists_untrusted_types_then_loads_with_trust(
    tmp_path: Path, search: GridSearchCV, capsys: pytest.CaptureFixture[str]
) -> None:
    import skops.io as sio

    path = tmp_path / "grid.skops"
    sio.dump(search, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted  # GridSearchCV carries a scorer and a CV splitter skops does not trust by default
    with pytest.raises(LoadError) as info:
        exporter.load_estimator(path)
    for name in untrusted:
        assert f"--trust {name}" in str(info.value)
    flags = [arg for name in untrusted for arg in ("--trust", name)]
    assert main([str(path), *flags]) == 0
    assert "parity" in capsys.readouterr().out


def test_skops_garbage(tmp_path: Path) -> None:
    path = tmp_path / "bad.skops"
    path.write_bytes(b"not a zip")
    with pytest.raises(LoadError, match=r"is not a readable .skops file"):
        exporter.load_estimator(path)


def test_user_module_importable_with_path_option(tmp_path: Path) -> None:
    """A wrapper class from the user's own module unpickles when its folder is given with --path."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "my_wrappers_xyz.py").write_text(
        textwrap.dedent("""
        from tests.models import TorchClassifier
        class MyClassifier(TorchClassifier):
            pass
    """)
    )
    sys.path.insert(0, str(src))
    try:
        import my_wrappers_xyz  # type: ignore[import-not-found]

        X, y = load_iris(return_X_y=True)
        est = my_wrappers_xyz.MyClassifier(epochs=5).fit(X.astype(np.float32), y)
        (tmp_path / "p.pkl").write_bytes(pickle.dumps(est))
    finally:
        sys.path.remove(str(src))
        sys.modules.pop("my_wrappers_xyz", None)
    with pytest.raises(LoadError, match=r"my_wrappers_xyz.*--path DIR"):
        exporter.load_estimator(tmp_path / "p.pkl")
    loaded: Any = exporter.load_estimator(tmp_path / "p.pkl", import_paths=[src])
    assert type(loaded).__name__ == "MyClassifier"
    sys.modules.pop("my_wrappers_xyz", None)


def test_current_directory_is_importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cwd_mod_xyz.py").write_text("from sklearn.preprocessing import StandardScaler as Scaler\n")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "x.pkl"
    path.write_bytes(b"ccwd_mod_xyz\nScaler\n)\x81.")
    assert type(exporter.load_estimator(path)).__name__ == "StandardScaler"
    sys.modules.pop("cwd_mod_xyz", None)


@pytest.mark.parametrize(
    ("func", "name"),
    [("eval", "builtins.eval"), ("os.system", f"{os.system.__module__}.system"), ("exec", "builtins.exec")],
)
def test_skops_with_a_code_running_type_is_refused_without_a_trust_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], func: str, name: str
) -> None:
    """FunctionTransformer(func=eval) would call eval on every batch: never offer --trust for it."""
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    step = FunctionTransformer(func={"eval": eval, "os.system": os.system, "exec": exec}[func])
    path = tmp_path / "evil.skops"
    sio.dump(step.fit(np.zeros((2, 4))), path)  # fit does not call func; transform would
    assert name in sio.get_untrusted_types(file=path)
    with pytest.raises(LoadError) as info:
        exporter.load_estimator(path)
    message = str(info.value)
    assert message.startswith(f"{str(path)!r} refers to {name}: refusing to load it, since eval, exec, ")
    assert "can run arbitrary code when the pipeline runs (no --trust allows them)" in message
    assert "export from a pickle or joblib of the pipeline instead" in message
    assert "--trust " + name not in message and "pass --trust" not in message
    with pytest.raises(OptionError, match=rf"^--trust {name}: refusing to trust it"):
        exporter.load_estimator(path, trust=[name])  # trusting it by name does not load it either
    assert main([str(path), "--trust", name]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"error: --trust {name}: refusing to trust it: eval, exec, os.system and the like can run "
        "arbitrary code, and a .skops file that needs it is not safe to load; if you really trust "
        "whoever made the file, export from a pickle or joblib of the pipeline instead (unpickling "
        "runs the file's code: only for files you trust)"
    ]


def test_untrusted_message_lists_dangerous_types_apart() -> None:
    from exporter.load import is_dangerous, untrusted_message

    for name in [
        "builtins.eval",
        "posix.system",
        "nt.system",
        "subprocess.Popen",
        "builtins.getattr",
        "builtins.__import__",
        "importlib.import_module",
        "operator.attrgetter",
        "pickle.loads",
    ]:
        assert is_dangerous(name), name
    for name in [
        "sklearn.model_selection._split.StratifiedKFold",
        "numpy.float64",
        "builtins.slice",
        "tests.models.TorchClassifier",
        "operator.add",
        "ossify.Thing",
    ]:
        assert not is_dangerous(name), name
    safe = "sklearn.metrics._scorer._PassthroughScorer"
    assert untrusted_message("f.skops", [safe], [safe]) is None
    assert untrusted_message("f.skops", [safe], []) == (
        f"'f.skops' contains types that are not trusted by default: {safe}; "
        f"if you trust this file, pass --trust {safe}"
    )
    message = untrusted_message("f.skops", [safe, "builtins.eval", "posix.system"], [safe])
    assert message is not None and message.startswith(
        "'f.skops' refers to builtins.eval, posix.system: refusing to load it"
    )
    assert "--trust builtins.eval" not in message and safe not in message
