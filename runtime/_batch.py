"""What the Dask and Spark adapters share: a model per worker process, and frames in and out.

A worker process builds one ``Model`` per model (keyed by the model's bytes' digest, or its path
and mtime) and reuses it for every partition or Arrow batch it scores; intra-op threads are capped
(default 1) so that N workers on N cores do not each start N threads. Sessions never travel:
only paths or bytes do, and ``runtime.Model`` already rebuilds its session after a fork.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

import numpy as np

from runtime.errors import InvalidInputError
from runtime.model import Model, load

METHODS = ("predict", "predict_proba", "transform", "run")
_MODELS: dict[tuple[str, int | None], Model] = {}
_LOCK = threading.Lock()


def _new_lock_after_fork() -> None:  # a lock held by another thread at fork time never frees
    global _LOCK
    _LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


def model_key(model: str | os.PathLike[str] | bytes) -> str:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return "sha256:" + hashlib.sha256(model).hexdigest()
    path = os.fspath(model)
    return f"path:{os.path.abspath(path)}:{os.stat(path).st_mtime_ns}"


def worker_model(model: str | os.PathLike[str] | bytes, key: str, threads: int | None) -> Model:
    """The model for this process, loaded on first use (CPU provider, ``threads`` intra-op)."""
    cached = _MODELS.get((key, threads))
    if cached is not None:
        return cached
    with _LOCK:
        if (key, threads) not in _MODELS:
            _MODELS[(key, threads)] = load(model, providers=["CPUExecutionProvider"], threads=threads)
        return _MODELS[(key, threads)]


def check_method(method: str) -> None:
    if method not in METHODS:
        raise InvalidInputError(f"method={method!r}: use one of {', '.join(METHODS)}")


def model_input(frame: Any, model: Model, features_col: str | None) -> Any:
    """A pandas partition/batch → what ``Model`` takes: the frame itself for models trained on a
    DataFrame (columns by name); for array-trained models, a vector column (``features_col``, one
    array per row) or the numeric columns in order; a text model, its single text column."""
    schema = model.schema
    if schema.layout == "columns":
        return frame
    if features_col is not None:
        if features_col not in frame.columns:
            raise InvalidInputError(f"features_col={features_col!r} is not a column: {list(frame.columns)}")
        values = frame[features_col].to_numpy()
        if len(values) and isinstance(values[0], str):
            raise InvalidInputError(
                f"features_col={features_col!r} holds strings, not vectors: Dask turns object columns "
                "into strings unless dask.config.set({'dataframe.convert-string': False}) is set "
                "before the frame is built"
            )
        return np.stack(values) if len(values) else np.empty((0, schema.n_features or 0))
    if schema.layout == "text":
        if frame.shape[1] != 1:
            raise InvalidInputError(
                f"a text model reads one column of documents; this frame has {list(frame.columns)}"
            )
        return frame.iloc[:, 0].to_numpy(dtype=object)
    return frame


def output_columns(model: Model, method: str, prefix: str) -> list[tuple[str, np.dtype]]:
    """(column name, dtype) of what ``method`` returns, from the model's metadata alone."""
    outputs = model.metadata.get("outputs", {})
    if method == "run":  # run returns the graph's own dtypes, not the native ones
        names = [n for n, spec in outputs.items() if not spec.get("auxiliary")] or model.output_names
        return [col for name in names for col in _columns(model, name, f"{prefix}{name}", raw=True)]
    name = {"predict": "label" if model.task == "classifier" else "prediction"}.get(
        method, {"predict_proba": "probabilities", "transform": "features"}.get(method, "")
    )
    if name not in outputs:
        raise InvalidInputError(f"{method} is not available for this model (a {model.task})")
    if method == "predict_proba":
        dtype = np.dtype(outputs[name]["native_dtype"])
        return [(f"{prefix}{c}", dtype) for c in model.classes_]
    return _columns(model, name, prefix.rstrip("_") or name)


def _columns(model: Model, name: str, column: str, raw: bool = False) -> list[tuple[str, np.dtype]]:
    spec = model.metadata["outputs"][name]
    graph_dtype = np.dtype(object) if spec["dtype"] == "string" else np.dtype(spec["dtype"])
    dtype = graph_dtype if raw else np.dtype(spec["native_dtype"])
    shape = spec.get("shape") or [None]
    if len(shape) < 2:
        return [(column, dtype)]
    width = shape[1]
    if width is None:
        raise InvalidInputError(f"output {name!r} has no fixed width: cannot name its columns up front")
    return [(f"{column}_{i}", dtype) for i in range(width)]


def score(frame: Any, model: Model, method: str, features_col: str | None) -> list[np.ndarray]:
    """The model's answer for the frame, as one 1-D array per output column."""
    X = model_input(frame, model, features_col)
    if method == "run":
        values = model.run(X)
        arrays = list(values.values())
    else:
        arrays = [getattr(model, method)(X)]
    columns = []
    for value in arrays:
        value = np.asarray(value)
        columns += [value] if value.ndim == 1 else [value[:, i] for i in range(value.shape[1])]
    return columns
