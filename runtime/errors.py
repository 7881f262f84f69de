"""The runtime's exceptions: every message names the bad value and the fix."""

from __future__ import annotations


class ModelRuntimeError(Exception):
    """Base class of every error the runtime raises on purpose."""


class ModelLoadError(ModelRuntimeError):
    """The model file is missing, unreadable, not ONNX, or not runnable by this onnxruntime."""


class InvalidInputError(ModelRuntimeError, ValueError):
    """The data passed to predict / predict_proba / transform / run does not fit the model's schema."""


class InvalidOptionError(ModelRuntimeError, ValueError):
    """An argument of load / predict / verify (or a CLI option) is out of range or of the wrong type."""


class ModelClosedError(ModelRuntimeError):
    """The model was closed: load it again to use it."""


class UnsupportedMethodError(ModelRuntimeError, AttributeError):
    """The method does not exist for this model (e.g. predict_proba on a regressor)."""


class ProviderError(ModelLoadError):
    """The requested execution providers or precision cannot be used."""


class VerificationError(ModelRuntimeError):
    """The model's answers on its embedded golden rows differ from those recorded at export."""
