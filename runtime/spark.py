"""Score a Spark DataFrame with an exported model: ``runtime.spark.predict(sdf, "model.onnx")``.

Built with ``mapInPandas``: Arrow batches reach each Python worker as pandas frames, the model is
shipped once per executor as a broadcast of its bytes (never a session), and each Python worker
process loads it once and reuses it (``runtime._batch``). The input's column names and types are
checked on the driver, before Spark runs anything. Needs the ``spark`` extra (pyspark + pyarrow)
and Java.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from runtime._batch import check_method, model_key, output_columns, score, worker_model
from runtime.errors import InvalidInputError
from runtime.model import Model, load


def predict(
    sdf: Any,
    model: str | os.PathLike[str] | bytes,
    method: str = "predict",
    output_col: str = "prediction",
    *,
    threads: int | None = 1,
    features_col: str | None = None,
) -> Any:
    """The input DataFrame with the output column(s) added: ``output_col`` for predict (labels in
    their native type: string, long or double); ``{output_col}_{class}`` per class for
    predict_proba; ``{output_col}_0..`` for transform and multi-output regressors; ``run`` adds
    every output. Same answers as ``runtime.load(model).<method>`` on the same rows.

    ``threads``: intra-op threads per Python worker (1: Spark already runs one task per core).
    ``features_col``: for a model trained on an array, an ``array<double>`` column holding one
    feature vector per row (``pyspark.ml.functions.vector_to_array`` converts ML vectors)."""
    from pyspark.sql.types import StructField, StructType

    check_method(method)
    data = bytes(model) if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    local = load(data, providers=["CPUExecutionProvider"], lazy=True)
    _check_columns(sdf, local, features_col)
    columns = output_columns(local, method, f"{output_col}_")
    if method == "predict" and len(columns) == 1:
        columns = [(output_col, columns[0][1])]
    clash = [name for name, _ in columns if name in sdf.columns]
    if clash:
        raise InvalidInputError(f"output column(s) {clash} already exist: pass another output_col")
    schema = StructType([*sdf.schema.fields, *(StructField(n, _spark_type(t), True) for n, t in columns)])
    shipped = sdf.sparkSession.sparkContext.broadcast(data)  # once per executor
    key = model_key(data)
    names = [name for name, _ in columns]

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        scorer = worker_model(shipped.value, key, threads)
        for frame in batches:
            arrays = score(frame, scorer, method, features_col)
            out = frame.copy()
            for name, values in zip(names, arrays, strict=True):
                out[name] = values.astype(object) if values.dtype.kind == "U" else values
            yield out

    return sdf.mapInPandas(run, schema=schema)


def _check_columns(sdf: Any, model: Model, features_col: str | None) -> None:
    """Names and kinds, on the driver: a missing column or text where numbers are due fails here
    with the runtime's message, not later inside a Python worker."""
    from pyspark.sql.types import ArrayType, BooleanType, NumericType, StringType

    fields = {f.name: f.dataType for f in sdf.schema.fields}
    schema = model.schema
    if features_col is not None:
        if not isinstance(fields.get(features_col), ArrayType):
            raise InvalidInputError(
                f"features_col={features_col!r} must be an array<double> column; the frame has "
                f"{ {k: v.simpleString() for k, v in fields.items()} }"
            )
        return
    if schema.layout == "columns":
        missing = [s.name for s in schema.inputs if s.name not in fields]
        if missing:
            raise InvalidInputError(
                f"missing column(s) {missing}; the model expects columns {[s.name for s in schema.inputs]}"
            )
        for spec in schema.inputs:
            kind = fields[spec.name]
            if not spec.is_string and not isinstance(kind, (NumericType, BooleanType)):
                raise InvalidInputError(
                    f"column {spec.name!r} is {kind.simpleString()} but the model expects numbers "
                    f"({spec.dtype})"
                )
            if spec.is_string and not isinstance(kind, StringType):
                raise InvalidInputError(
                    f"column {spec.name!r} is {kind.simpleString()}; the model expects strings"
                )


def _spark_type(dtype: np.dtype) -> Any:
    from pyspark.sql.types import BooleanType, DoubleType, FloatType, LongType, StringType

    if dtype.kind in "UO":
        return StringType()
    if dtype.kind == "b":
        return BooleanType()
    if dtype.kind in "iu":
        return LongType()
    return FloatType() if dtype == np.float32 else DoubleType()
