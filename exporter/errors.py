"""The exporter's exceptions. Each message is one line that names the problem and the fix.

The CLI prints ``str(error)`` and exits with ``error.exit_code``: 2 for bad input (file, options,
unsupported step), 1 for a model that was built but failed its parity check.
"""

from __future__ import annotations


class ExportError(Exception):
    """Base class of every error the exporter raises on purpose."""

    exit_code = 2


class LoadError(ExportError):
    """The pipeline file is missing, unreadable, untrusted, or does not hold a fitted estimator."""


class NotFittedError(ExportError):
    """The estimator (or one of its steps) has not been fitted."""


class UnsupportedStepError(ExportError):
    """A step has no converter: neither skl2onnx, nor a torch adapter, nor a registered one."""


class ConversionError(ExportError):
    """A converter (skl2onnx, torch.onnx) or the merge failed on a supported step."""


class SampleError(ExportError):
    """The ``--sample`` rows cannot be read or do not match the pipeline's input schema."""


class RegistrationError(ExportError):
    """A converter or wrapper registration is invalid (e.g. registered twice)."""


class OptionError(ExportError):
    """An argument of export / check (or a CLI option) is out of range, e.g. a NaN tolerance."""


class WriteError(ExportError, OSError):
    """An artifact could not be written (disk full, no permission); the files already there are
    unchanged. Also an OSError, as the plain write it replaces raised."""


class ParityError(ExportError):
    """The exported model does not reproduce the native pipeline within tolerance."""

    exit_code = 1

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report
