"""Compile fitted scikit-learn + PyTorch pipelines into one verified ONNX model.

    import exporter
    result = exporter.export(pipeline, sample=X[:100])
    result.save("model.onnx")

The stages (load → plan → convert → compose → passes → package → parity) live in their own
modules; this package re-exports the public surface only.
"""

from __future__ import annotations

from typing import Any

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

# `pip install hybridonnx` (the runtime only) ships this package without its dependencies; the
# CLI (`python -m exporter`, which imports this first) then says in one line to install the
# export extra instead of a ModuleNotFoundError traceback. MISSING_DEPENDENCY names the module.
MISSING_DEPENDENCY: str | None = None
try:
    from exporter.api import ExportResult, export
    from exporter.convert.heads import Head
    from exporter.load import load_estimator
    from exporter.parity import DEFAULT_TOLERANCES, ParityReport
    from exporter.registration import (
        load_builtin,
        register_function,
        register_sklearn_converter,
        register_wrapper,
        supported_steps,
    )
except ModuleNotFoundError as _missing:
    if _missing.name is None or _missing.name.split(".")[0] in ("exporter", "runtime"):
        raise
    MISSING_DEPENDENCY = _missing.name

    def __getattr__(name: str) -> Any:
        raise ModuleNotFoundError(
            f"exporter.{name} needs the export extra ({MISSING_DEPENDENCY!r} is not installed): "
            'pip install "hybridonnx[export]"',
            name=MISSING_DEPENDENCY,
        )


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
