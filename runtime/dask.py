"""Score a Dask DataFrame with an exported model: ``runtime.dask.predict(ddf, "model.onnx")``.

Lazy: the result is a Dask Series/DataFrame built with ``map_partitions`` and an explicit
``meta`` (computed from the model's metadata, not by running it). The model travels as a path
(every worker must see the file: shared storage) or as bytes (shipped inside the task graph),
never as a session; each worker process loads it once (``runtime._batch``). Needs the ``dask``
extra: ``pip install hybridonnx[dask]``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from runtime._batch import check_method, model_key, output_columns, score, worker_model
from runtime.model import load


def predict(
    ddf: Any,
    model: str | os.PathLike[str] | bytes,
    method: str = "predict",
    *,
    threads: int | None = 1,
    features_col: str | None = None,
) -> Any:
    """``method``: "predict" → a Series named label/prediction (a DataFrame ``prediction_0..``
    for multi-output regressors); "predict_proba" → one column per class, named after the class;
    "transform" → ``features_0..``; "run" → every output. Same answers, row for row, as
    ``runtime.load(model).<method>(partition)``.

    ``threads``: intra-op threads per worker process (1: one core per worker; raise it when a
    worker owns several cores and runs one task at a time). ``features_col``: for a model trained
    on an array, a column holding one feature vector per row (otherwise the columns themselves, in
    order)."""
    import pandas as pd

    check_method(method)
    if not isinstance(model, (bytes, bytearray)):
        model = os.fspath(model)
    key = model_key(model)
    local = load(model, providers=["CPUExecutionProvider"], lazy=True)  # for the metadata only
    columns = output_columns(local, method, "")
    index = ddf._meta.index
    if len(columns) == 1 and method == "predict":
        name, dtype = columns[0]
        meta: Any = pd.Series(np.empty(0, dtype=dtype), name=name, index=index[:0])
    else:
        meta = pd.DataFrame({name: np.empty(0, dtype=dtype) for name, dtype in columns}, index=index[:0])
    return ddf.map_partitions(
        _score_partition,
        model,
        key,
        method,
        threads,
        features_col,
        [name for name, _ in columns],
        meta=meta,
        align_dataframes=False,
    )


def _score_partition(
    frame: Any,
    model: str | bytes,
    key: str,
    method: str,
    threads: int | None,
    features_col: str | None,
    names: list[str],
) -> Any:
    import pandas as pd

    scorer = worker_model(model, key, threads)
    arrays = score(frame, scorer, method, features_col)
    if len(names) == 1 and method == "predict":
        return pd.Series(arrays[0], name=names[0], index=frame.index)
    return pd.DataFrame(dict(zip(names, arrays, strict=True)), index=frame.index)
