"""Edge variants and the runtime-only install, measured against the native pipeline.

    python benchmarks/edge.py          (writes benchmarks/edge.md)

1. Variants of StandardScaler → MLP(64 → 512 → 10) on digits (an MLP-dominated pipeline): file
   size, label agreement and max probability error against the native pipeline on all 1,797 rows,
   and runtime.Model.predict latency (CPU, median of 7 timed loops) at 1 and 1,024 rows.
2. Environments: a fresh venv with only the base install (numpy + onnxruntime + runtime; built by
   tests/envs.py) vs this environment running the native pipeline (torch + scikit-learn): install
   size of what each needs, import time, cold start (new process → first prediction) and peak
   memory (max RSS) of that process; medians of 5 fresh processes.
"""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REPS = 7
PROCESSES = 5
RATIOS: dict[str, float] = {}  # native / runtime-only, filled by environment_rows

COLD = """
import sys, time
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
{load}
X = np.load(sys.argv[2], allow_pickle=True)[:1]
model.predict(X)
t2 = time.perf_counter()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) parent process
rss = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(t1 - t0, t2 - t0, rss)
"""
RUNTIME = COLD.format(imports="import numpy as np\nimport runtime", load="model = runtime.load(sys.argv[1])")
NATIVE = COLD.format(
    imports="import numpy as np\nimport pickle, torch, sklearn",
    load="model = pickle.load(open(sys.argv[1], 'rb'))",
)


def build(folder: Path) -> tuple[object, np.ndarray, np.ndarray, dict[str, str]]:

    from sklearn.datasets import load_digits
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import exporter
    from tests.models import TorchClassifier

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    pipe = make_pipeline(StandardScaler(), TorchClassifier(hidden=512, epochs=25)).fit(X[:1200], y[:1200])
    sample = X[1200:1500]
    exporter.export(pipe, sample=sample, quantize="dynamic", fp16=True, ort_format=True).save(
        folder / "m.onnx"
    )
    exporter.export(pipe, sample=sample, quantize="static").save(folder / "static.onnx")
    files = {
        "float32 (.onnx)": "m.onnx",
        "float32 (.ort)": "m.ort",
        "int8 dynamic": "m.int8.onnx",
        "int8 dynamic (.ort)": "m.int8.ort",
        "int8 static (QDQ)": "static.int8.onnx",
        "fp16 (GPU target)": "m.fp16.onnx",
    }
    return pipe, X, y, files


def per_call(fn: Callable[[np.ndarray], object], X: np.ndarray, loops: int) -> float:
    fn(X)
    start = time.perf_counter()
    for _ in range(loops):
        fn(X)
    return (time.perf_counter() - start) / loops


def variant_rows(folder: Path, pipe: object, X: np.ndarray, files: dict[str, str]) -> list[str]:
    import runtime

    native_labels = pipe.predict(X)  # type: ignore[attr-defined]
    native_proba = pipe.predict_proba(X)  # type: ignore[attr-defined]
    base = (folder / "m.onnx").stat().st_size
    lines = [
        "| variant | size (KiB) | of float32 | label agreement | max proba error | 1 row (µs) "
        "| 1,024 rows (µs) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, file in files.items():
        model = runtime.load(folder / file, providers=["CPUExecutionProvider"])
        agreement = float(np.mean(model.predict(X) == native_labels))
        error = float(np.abs(model.predict_proba(X) - native_proba).max())
        t1 = statistics.median(per_call(model.predict, X[:1], 500) for _ in range(REPS))
        tb = statistics.median(per_call(model.predict, X[:1024], 20) for _ in range(REPS))
        size = (folder / file).stat().st_size
        lines.append(
            f"| {name} | {size / 1024:.1f} | {size / base:.0%} | {agreement:.2%} | {error:.1e} | "
            f"{t1 * 1e6:.0f} | {tb * 1e6:.0f} |"
        )
    return lines


def environment_rows(folder: Path, pipe: object, rows: np.ndarray, model: Path) -> list[str]:
    """Table rows: a fresh process predicting ``rows`` with ``model`` in the runtime-only
    environment vs with the pickled ``pipe`` here (torch + sklearn)."""
    import pickle

    from tests.envs import base_install_entries, runtime_only_env, size_of

    (folder / "pipeline.pkl").write_bytes(pickle.dumps(pipe))
    np.save(folder / "rows.npy", rows)
    python = runtime_only_env(folder / "env")
    runs = {
        "runtime only (numpy + onnxruntime)": [str(python), "-c", RUNTIME, str(model)],
        "native (torch + scikit-learn)": [sys.executable, "-c", NATIVE, str(folder / "pipeline.pkl")],
    }
    sizes = {
        "runtime only (numpy + onnxruntime)": size_of(base_install_entries()),
        "native (torch + scikit-learn)": _native_install_size(),
    }
    measured = {}
    for name, cmd in runs.items():
        samples = []
        for _ in range(PROCESSES):
            done = subprocess.run(
                [*cmd, str(folder / "rows.npy")],
                capture_output=True,
                text=True,
                check=True,
                env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            )
            imports, first, rss = done.stdout.split()
            samples.append((float(imports), float(first), int(rss)))
        measured[name] = [statistics.median(col) for col in zip(*samples, strict=True)]
    rt, nat = measured.values()
    RATIOS.update(cold_start=nat[1] / rt[1], memory=nat[2] / rt[2])
    lines = [
        "| environment | install (MiB) | import (ms) | cold start to first prediction (ms) "
        "| peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (imports, first, rss) in measured.items():
        lines.append(
            f"| {name} | {sizes[name] / 2**20:.0f} | {imports * 1e3:.0f} | {first * 1e3:.0f} "
            f"| {rss / 1024:.0f} |"
        )
    size_ratio = sizes["native (torch + scikit-learn)"] / sizes["runtime only (numpy + onnxruntime)"]
    lines.append(
        f"| native / runtime only | {size_ratio:.1f}x | "
        f"{nat[0] / rt[0]:.1f}x | {nat[1] / rt[1]:.1f}x | {nat[2] / rt[2]:.1f}x |"
    )
    return lines


def _native_install_size() -> int:
    from tests.envs import _closure, _top_level_entries, size_of

    return size_of(sorted(_top_level_entries(_closure(("torch", "scikit-learn")))))


def main() -> None:
    import onnxruntime as ort

    folder = Path(tempfile.mkdtemp())
    pipe, X, _, files = build(folder)
    lines = [
        "# Edge variants and the runtime-only install",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, onnxruntime {ort.__version__}, "
        f"torch {metadata.version('torch')}, scikit-learn {metadata.version('scikit-learn')}; CPU provider.",
        "",
        "StandardScaler → MLP(64 → 512 → 10) on digits; accuracy against the native pipeline on all "
        "1,797 rows (the export sample was 300 of them); latency of runtime.Model.predict.",
        "",
        *variant_rows(folder, pipe, X, files),
        "",
        "Fresh processes, medians of 5: import = the imports an app needs; cold start = process start "
        "to first prediction (imports, load, one row).",
        "",
        *environment_rows(folder, pipe, X[:1], folder / "m.onnx"),
        "",
    ]
    out = ROOT / "benchmarks" / "edge.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
