"""Parity at export: the native pipeline vs the exported model on the same rows.

The model is run through ``runtime`` (the code users run), not a bare onnxruntime session, so the
check covers the input adapters and output dtypes too. The comparison itself lives in
``runtime.parity`` so that ``runtime verify`` applies the same rules on the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.contract import METHODS
from runtime.parity import DEFAULT_TOLERANCES, OutputReport, ParityReport, compare


def native_outputs(estimator: Any, X: Any, output_names: list[str]) -> dict[str, np.ndarray]:
    """What the native methods return, keyed by the model's public output names."""
    outputs = {}
    for name in output_names:
        value = getattr(estimator, METHODS[name])(X)
        if hasattr(value, "toarray"):
            value = value.toarray()
        outputs[name] = np.asarray(value)
    return outputs


def model_outputs(model: bytes, X: Any, output_names: list[str]) -> dict[str, np.ndarray]:
    """What ``runtime`` answers for the serialized model (ONNX or ORT format), keyed like
    ``native_outputs``: through its public methods, so adapters and dtype restoration count too."""
    import runtime

    # Candidates are checked before they are sealed (the seal is the last change to a model).
    with runtime.load(model, providers=["CPUExecutionProvider"], check_hash=False) as rt:
        return {name: getattr(rt, METHODS[name])(X) for name in output_names}


__all__ = [
    "DEFAULT_TOLERANCES",
    "METHODS",
    "OutputReport",
    "ParityReport",
    "compare",
    "model_outputs",
    "native_outputs",
]
