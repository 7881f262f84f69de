"""CLI options that rebuild the native side: ``--plugin`` / ``--path`` on ``exporter check`` as on
the export command, ``--help`` naming the ``check`` command, and the one-line message of the
runtime-only install (``pip install hybridonnx`` ships the exporter package without its
dependencies)."""

from __future__ import annotations

import importlib
import json
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from exporter import registration
from exporter.__main__ import main
from tests.envs import runtime_only_env

ROOT = Path(__file__).resolve().parents[2]
STEPS, PLUGIN = "hybridonnx_cli_plugin_steps", "hybridonnx_cli_plugin_register"

STEPS_SOURCE = '''
from sklearn.base import BaseEstimator, TransformerMixin


class Tripler(TransformerMixin, BaseEstimator):
    """A custom step skl2onnx has no converter for: the plugin registers one."""

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return X * 3
'''

PLUGIN_SOURCE = f"""
import numpy as np
from skl2onnx.algebra.onnx_ops import OnnxMul

import exporter
from {STEPS} import Tripler

exporter.register_sklearn_converter(
    Tripler, lambda X, opset, step: OnnxMul(X, np.array([3], dtype=np.float32), op_version=opset)
)
"""


@pytest.fixture
def plugin_pipeline(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(pickled pipeline whose custom step needs the plugin, the folder holding both modules)."""
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / f"{STEPS}.py").write_text(textwrap.dedent(STEPS_SOURCE))
    (folder / f"{PLUGIN}.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    sys.path.insert(0, str(folder))
    try:
        steps = importlib.import_module(STEPS)
        X, y = load_iris(return_X_y=True)
        pipeline = make_pipeline(steps.Tripler(), LogisticRegression(max_iter=500)).fit(X, y)
        pkl = tmp_path / "pipeline.pkl"
        pkl.write_bytes(pickle.dumps(pipeline))
    finally:
        sys.path.remove(str(folder))
    try:
        yield pkl, folder
    finally:
        registration.unregister_sklearn_converter(steps.Tripler)
        for name in (STEPS, PLUGIN):
            sys.modules.pop(name, None)


def _forget_plugin(folder: Path) -> None:
    """As in a new process: the plugin's registration undone and its module not imported."""
    registration.unregister_sklearn_converter(sys.modules[STEPS].Tripler)
    sys.modules.pop(PLUGIN, None)


def test_check_imports_plugins_like_the_export_command(
    plugin_pipeline: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pkl, folder = plugin_pipeline
    model = pkl.with_suffix(".onnx")
    plugin = ["--plugin", PLUGIN, "--path", str(folder)]
    assert main([str(pkl), "-o", str(model), *plugin]) == 0, capsys.readouterr().err
    capsys.readouterr()

    _forget_plugin(folder)
    assert main(["check", str(pkl), str(model), "--path", str(folder)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "Tripler" in error[0] and "register_sklearn_converter" in error[0], error

    assert main(["check", str(pkl), str(model), *plugin, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] and doc["sample"] == "golden", doc


def test_check_names_a_plugin_it_cannot_import(
    plugin_pipeline: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pkl, _ = plugin_pipeline
    assert main(["check", str(pkl), str(pkl.with_suffix(".onnx")), "--plugin", "no_such_plugin_xyz"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: cannot import plugin module 'no_such_plugin_xyz'") and "--path" in error


def test_booster_models_check_without_a_plugin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """LightGBM / XGBoost / CatBoost are built in (README "Gradient boosting"): no plugin to pass."""
    from lightgbm import LGBMClassifier

    X, y = load_iris(return_X_y=True)
    pkl = tmp_path / "lgbm.pkl"
    pkl.write_bytes(pickle.dumps(LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)))
    assert main([str(pkl)]) == 0, capsys.readouterr().err
    assert main(["check", str(pkl), str(pkl.with_suffix(".onnx"))]) == 0, capsys.readouterr().err
    assert "check on" in capsys.readouterr().out


def test_help_lists_the_check_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "python -m exporter check PIPELINE MODEL" in out and "--plugin MODULE" in out
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    assert "--plugin MODULE" in capsys.readouterr().out


@pytest.mark.slow
def test_runtime_only_install_says_to_install_the_export_extra(tmp_path: Path) -> None:
    """`pip install hybridonnx` ships the exporter package (the wheel holds both), not torch,
    sklearn or onnx: `python -m exporter` answers one line naming hybridonnx[export]."""
    python = runtime_only_env(tmp_path / "venv")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "exporter").symlink_to(ROOT / "exporter")
    for args, stream in ((["pipeline.pkl"], "stderr"), (["check", "p.pkl", "m.onnx", "--json"], "stdout")):
        done = subprocess.run(
            [str(python), "-m", "exporter", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, (done.stdout, done.stderr)
        lines = getattr(done, stream).strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, (done.stdout, done.stderr)
        message = json.loads(lines[0])["error"] if stream == "stdout" else lines[0]
        assert 'pip install "hybridonnx[export]"' in message, message
