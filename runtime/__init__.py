"""Run models compiled by ``exporter``: numpy + onnxruntime only.

    import runtime
    model = runtime.load("model.onnx")
    model.predict(X)

Importing this package must never import torch, scikit-learn, skl2onnx or onnx: it is what apps
embed and edge devices install.
"""

from __future__ import annotations

from runtime.contract import METADATA_KEY
from runtime.errors import (
    InvalidInputError,
    InvalidOptionError,
    ModelClosedError,
    ModelLoadError,
    ModelRuntimeError,
    ProviderError,
    UnsupportedMethodError,
    VerificationError,
)
from runtime.model import Model, load
from runtime.providers import ProviderFallbackWarning
from runtime.schema import InputSpec, Schema

__all__ = [
    "METADATA_KEY",
    "InputSpec",
    "InvalidInputError",
    "InvalidOptionError",
    "Model",
    "ModelClosedError",
    "ModelLoadError",
    "ModelRuntimeError",
    "ProviderError",
    "ProviderFallbackWarning",
    "Schema",
    "UnsupportedMethodError",
    "VerificationError",
    "load",
]
