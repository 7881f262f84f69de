"""What the content-hash check costs at load: ``runtime.load`` with and without ``check_hash``.

    python benchmarks/integrity.py          (writes benchmarks/integrity.md)

Models: the iris pipeline of the tests (a few KiB, what most tabular models weigh) and a dense
MLP whose weights total ~256 MiB and ~1 GiB (sealed with exporter.package.seal, as the exporter
does). Load = read the file, scan the protobuf, check the seal, create the session
(``lazy=True`` leaves the session out, which isolates the file-side work). Medians of
interleaved repetitions.
"""

from __future__ import annotations

import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def small_model(folder: Path) -> Path:
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import exporter
    from tests.models import TorchClassifier

    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), TorchClassifier(epochs=20)).fit(X.astype(np.float32), y)
    return exporter.export(pipe, sample=X[:40]).save(folder / "small.onnx")


def large_model(folder: Path, mib: int) -> Path:
    """X[N, 1024] → MatMul chain whose float32 weights total ``mib`` MiB, sealed."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from exporter import package

    width, layers = 1024, max(1, mib // 4)  # 1024 x 1024 float32 = 4 MiB per layer
    rng = np.random.default_rng(0)
    inits, nodes, current = [], [], "X"
    for i in range(layers):
        weight = (rng.standard_normal((width, width)) / width).astype(np.float32)
        inits.append(numpy_helper.from_array(weight, f"W{i}"))
        nodes.append(helper.make_node("MatMul", [current, f"W{i}"], [f"h{i}"]))
        current = f"h{i}"
    nodes.append(helper.make_node("Identity", [current], ["Y"]))
    graph = helper.make_graph(
        nodes,
        "big",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, width])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    path = folder / f"large-{mib}.onnx"
    path.write_bytes(package.seal(model).SerializeToString())
    onnx.checker.check_model(str(path))
    return path


def timed(path: Path, check_hash: bool, lazy: bool) -> float:
    import runtime

    start = time.perf_counter()
    model = runtime.load(path, lazy=lazy, check_hash=check_hash, providers=["CPUExecutionProvider"])
    elapsed = time.perf_counter() - start
    model.close()
    return elapsed


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def main() -> None:
    import onnxruntime as ort

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = [("iris pipeline", small_model(folder), 15), ("dense 256 MiB", large_model(folder, 256), 5)]
        models.append(("dense 1 GiB", large_model(folder, 1024), 3))
        for label, path, reps in models:
            for lazy in (True, False):
                times: dict[bool, list[float]] = {True: [], False: []}
                for _ in range(reps):  # interleaved: noise hits both alike
                    for check in (False, True):
                        times[check].append(timed(path, check, lazy))
                off, on = statistics.median(times[False]), statistics.median(times[True])
                what = "file only (lazy)" if lazy else "with session"
                rows.append((label, path.stat().st_size, what, off, on))
                print(rows[-1], flush=True)
    lines = [
        "# Content-hash check at load",
        "",
        f"{platform.processor() or platform.machine()}, {platform.python_version()}, "
        f"onnxruntime {ort.__version__}; medians of interleaved repetitions "
        "(`python benchmarks/integrity.py`).",
        "",
        "| model | size | load | check_hash=False | check_hash=True | cost |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for label, size, what, off, on in rows:
        lines.append(
            f"| {label} | {_size(size)} | {what} | {off * 1e3:.2f} ms | {on * 1e3:.2f} ms | "
            f"+{(on - off) * 1e3:.2f} ms ({on / off:.2f}x) |"
        )
    (ROOT / "benchmarks" / "integrity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
