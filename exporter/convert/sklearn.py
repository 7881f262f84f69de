"""Sklearn stages: a run of consecutive sklearn steps → one skl2onnx graph (ZipMap off, pinned opsets)."""

from __future__ import annotations

import warnings
from typing import Any

from exporter.compose import OPSET
from exporter.errors import ConversionError

TARGET_OPSET = {"": OPSET, "ai.onnx.ml": 3}


def convert_sklearn_stage(
    steps: list[tuple[str, Any]], inputs: list[tuple[str, str, int | None]], stage_label: str
) -> Any:
    """Convert fitted steps (run in sequence) to a ModelProto.

    ``inputs``: (name, dtype, width) per graph input; one ``X`` matrix, or one per DataFrame column
    when the stage starts with a ColumnTransformer. Outputs: ``label`` + ``probabilities`` for a
    classifier, one tensor otherwise.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
    from sklearn.pipeline import Pipeline

    types = {
        "float32": FloatTensorType,
        "float64": DoubleTensorType,
        "int64": Int64TensorType,
        "string": StringTensorType,
    }
    initial_types = [(name, types[dtype]([None, width])) for name, dtype, width in inputs]
    estimator = steps[0][1] if len(steps) == 1 else Pipeline(steps)
    last = steps[-1][1]
    options = (
        {id(last): {"zipmap": False}}
        if hasattr(last, "predict_proba") and hasattr(last, "classes_")
        else None
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = convert_sklearn(
                estimator, initial_types=initial_types, target_opset=TARGET_OPSET, options=options
            )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"skl2onnx could not convert {stage_label}: {first}") from exc
    return model
