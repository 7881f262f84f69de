"""Cost of runtime.Model.predict over a raw onnxruntime InferenceSession.run on the same model.

    python benchmarks/runtime_overhead.py          (writes benchmarks/runtime_overhead.md)

Pipeline: StandardScaler → PCA(10) → MLP(64) classifier on 50 features (synthetic, 3 classes).
Both paths use one session configuration (no spinning, default threads) and float32 input; the
raw path asks for the label output only, like predict. Each figure is the median of several
repetitions of a timed loop, interleaved so machine noise hits both paths alike.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_model() -> bytes:
    from sklearn.datasets import make_classification
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import exporter
    from tests.models import TorchClassifier

    X, y = make_classification(n_samples=2000, n_features=50, n_informative=20, n_classes=3, random_state=0)
    X = X.astype(np.float32)
    pipe = make_pipeline(
        StandardScaler(), PCA(10, random_state=0), TorchClassifier(hidden=64, epochs=30)
    ).fit(X, y)
    return exporter.export(pipe, sample=X[:200]).model.SerializeToString()


def per_call(fn, loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops


def main() -> None:
    import runtime

    data = build_model()
    model = runtime.load(data, providers=["CPUExecutionProvider"])
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    sess = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    rows = []
    for batch, loops in ((1, 2000), (64, 1000), (4096, 40)):
        X = rng.normal(size=(batch, 50)).astype(np.float32)
        np.testing.assert_array_equal(model.predict(X), sess.run(["label"], {"X": X})[0])
        raw_times, ours_times = [], []
        for rep in range(11):  # alternate which path goes first, so drifts in machine load cancel
            pair = [
                (raw_times, lambda X=X: sess.run(["label"], {"X": X})),
                (ours_times, lambda X=X: model.predict(X)),
            ]
            for times, fn in pair if rep % 2 == 0 else reversed(pair):
                times.append(per_call(fn, loops))
        raw, ours = statistics.median(raw_times), statistics.median(ours_times)
        rows.append((batch, raw * 1e6, ours * 1e6, ours / raw))
    lines = [
        "# runtime.Model.predict vs raw InferenceSession.run",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, onnxruntime {ort.__version__}; "
        "median of 11 timed loops; CPU provider.",
        "",
        "| rows | raw run (µs) | Model.predict (µs) | ratio |",
        "|---:|---:|---:|---:|",
        *(f"| {b} | {r:.1f} | {o:.1f} | {q:.2f}x |" for b, r, o, q in rows),
        "",
    ]
    out = Path(__file__).with_suffix(".md")
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
