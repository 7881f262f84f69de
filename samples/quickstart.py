"""Train a hybrid pipeline, export it with the CLI, predict with the runtime.

    python samples/quickstart.py            (from the repository root)

1. StandardScaler → PCA → a PyTorch MLP wrapped as an sklearn classifier, on the breast-cancer
   data bundled with scikit-learn, with string labels; pickled to out/pipeline.pkl.
2. ``python -m exporter out/pipeline.pkl --sample out/rows.csv --path samples`` → out/pipeline.onnx.
3. ``runtime.load`` (numpy + onnxruntime only) answers like the pipeline on held-out rows.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "out"
sys.path.insert(0, str(HERE))

from wrappers import TorchMLPClassifier  # noqa: E402  (the user's own module)


def main() -> int:
    OUT.mkdir(exist_ok=True)
    data = load_breast_cancer()
    X = data.data.astype(np.float32)
    y = data.target_names[data.target]  # string labels: 'malignant' / 'benign'
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)

    pipeline = make_pipeline(StandardScaler(), PCA(n_components=10, random_state=0), TorchMLPClassifier())
    pipeline.fit(X_train, y_train)
    (OUT / "pipeline.pkl").write_bytes(pickle.dumps(pipeline))
    np.savetxt(
        OUT / "rows.csv", X_train[:200], delimiter=",", header=",".join(data.feature_names), comments=""
    )
    print(f"trained and pickled: {OUT / 'pipeline.pkl'}")

    cli = [
        sys.executable,
        "-m",
        "exporter",
        str(OUT / "pipeline.pkl"),
        "--sample",
        str(OUT / "rows.csv"),
        "--path",
        str(HERE),
    ]
    print("$ python -m exporter out/pipeline.pkl --sample out/rows.csv --path samples")
    done = subprocess.run(cli, cwd=ROOT)
    if done.returncode != 0:
        return done.returncode

    import runtime  # what an app or an edge device runs: numpy + onnxruntime only

    model = runtime.load(OUT / "pipeline.onnx")
    labels = model.predict(X_test)
    proba = model.predict_proba(X_test)
    agreement = float(np.mean(labels == pipeline.predict(X_test)))
    max_error = float(np.abs(proba - pipeline.predict_proba(X_test)).max())
    print(
        f"runtime on {len(X_test)} held-out rows: label agreement {agreement:.2%}, "
        f"max probability error {max_error:.1e}"
    )
    print(f"first predictions: {labels[:3].tolist()}")
    if agreement < 1.0 or max_error > 1e-4:
        print("error: the runtime does not match the pipeline", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
