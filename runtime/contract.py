"""The contract between the exporter and the runtime, written once: both sides import it.

What a model written by ``exporter`` promises and ``runtime`` relies on: where the metadata
document lives and which formats exist, the tasks, the public outputs of each task and the
estimator method each output reproduces, and the names of element types. Standard library and
numpy only (no onnx: element types are onnx.TensorProto's stable numbers).
"""

from __future__ import annotations

from typing import Literal

# metadata_props key of the JSON document.
METADATA_KEY = "hybridonnx"
# The format the exporter writes, and every format this runtime reads: "hybridonnx/1" (unsealed,
# round 1) and "hybridonnx/2" (sealed: runtime/integrity.py). Value: whether that format is sealed.
FORMAT = "hybridonnx/2"
FORMATS = {"hybridonnx/1": False, "hybridonnx/2": True}

Task = Literal["classifier", "regressor", "transformer"]
TASKS: tuple[Task, ...] = ("classifier", "regressor", "transformer")
# The public outputs of each task, in graph order.
TASK_OUTPUTS: dict[str, tuple[str, ...]] = {
    "classifier": ("label", "probabilities"),
    "regressor": ("prediction",),
    "transformer": ("features",),
}
# The estimator method (native) and runtime.Model method that produce each public output.
METHODS: dict[str, str] = {
    "label": "predict",
    "probabilities": "predict_proba",
    "prediction": "predict",
    "features": "transform",
}
# Auxiliary output of classifiers with string classes: the class index (runtime.Model maps it to
# the classes in NumPy: a string output costs one Python str per row).
LABEL_INDEX = "label_index"

# onnx.TensorProto element types → the dtype names the schema and metadata use.
ELEM_NAMES: dict[int, str] = {
    1: "float32",
    11: "float64",
    10: "float16",
    7: "int64",
    6: "int32",
    9: "bool",
    8: "string",
}
ELEM_TYPES: dict[str, int] = {name: number for number, name in ELEM_NAMES.items()}
# onnxruntime's type strings (NodeArg.type) → the same names.
ORT_TYPES: dict[str, str] = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(string)": "string",
}
