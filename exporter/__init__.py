"""Compile fitted scikit-learn + PyTorch pipelines into one verified ONNX model.

    import exporter
    result = exporter.export(pipeline, sample=X[:100])
    result.save("model.onnx")

The stages (load → plan → convert → compose → passes → package → parity) live in their own
modules; this package re-exports the public surface only.
"""

from __future__ import annotations

from exporter.api import ExportResult, export
from exporter.convert.extend import register_function, register_sklearn_converter
from exporter.convert.heads import Head
from exporter.errors import (
    ConversionError,
    ExportError,
    LoadError,
    NotFittedError,
    ParityError,
    RegistrationError,
    SampleError,
    UnsupportedStepError,
)
from exporter.load import load_estimator
from exporter.parity import DEFAULT_TOLERANCES, ParityReport
from exporter.registry import load_builtin, register_wrapper, supported_steps

__all__ = [
    "DEFAULT_TOLERANCES",
    "ConversionError",
    "ExportError",
    "ExportResult",
    "Head",
    "LoadError",
    "NotFittedError",
    "ParityError",
    "ParityReport",
    "RegistrationError",
    "SampleError",
    "UnsupportedStepError",
    "export",
    "load_builtin",
    "load_estimator",
    "register_function",
    "register_sklearn_converter",
    "register_wrapper",
    "supported_steps",
]
