"""The runtime must run with numpy + onnxruntime only: heavy imports are blocked in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import sys
    BLOCKED = ("torch", "sklearn", "skl2onnx", "onnx", "onnxscript", "skorch", "pandas", "exporter")

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked import: {name}")
            return None

    sys.meta_path.insert(0, Block())
    import numpy as np
    import runtime
    model = runtime.load(sys.argv[1])
    X = np.array(eval(sys.argv[2]), dtype=np.float64)
    print(list(model.predict(X)))
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print("heavy:", heavy)
""")


@pytest.mark.slow
def test_runtime_imports_only_numpy_and_onnxruntime(iris_model: tuple[Path, Any, Any]) -> None:
    path, estimator, X = iris_model
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), repr(X[:3].tolist())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    labels, heavy = done.stdout.strip().splitlines()
    assert labels == str(list(estimator.predict(X[:3])))
    assert heavy == "heavy: []"
