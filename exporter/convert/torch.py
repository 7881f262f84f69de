"""Torch stages: find the fitted nn.Module inside a step and export it with torch.onnx (dynamo)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any

import numpy as np

from exporter.compose import OPSET
from exporter.errors import ConversionError, NotFittedError, UnsupportedStepError

# Attribute names wrappers use for their fitted module, most common first.
PREFERRED_MODULE_ATTRS = ("model_", "module_", "net_", "network_")


def is_module(value: Any) -> bool:
    import torch

    return isinstance(value, torch.nn.Module) and not isinstance(value, torch.nn.modules.loss._Loss)


def find_module(step: Any, locator: Any, step_label: str) -> Any:
    """The fitted nn.Module of a torch-backed step.

    With no locator, duck-type: the one nn.Module held in a trailing-underscore attribute (the
    sklearn convention for fitted state), preferring ``model_``/``module_``/``net_``/``network_``;
    loss modules (``criterion_``) do not count.
    """
    if callable(locator):
        module = locator(step)
    elif isinstance(locator, str):
        module = getattr(step, locator, None)
        if module is None:
            raise NotFittedError(
                f"{step_label} has no fitted module in attribute {locator!r}: fit it before exporting"
            )
    else:
        candidates = module_attributes(step)
        if not candidates:
            raise NotFittedError(f"{step_label} holds no fitted torch.nn.Module: fit it before exporting")
        preferred = [name for name in PREFERRED_MODULE_ATTRS if name in candidates]
        if len(candidates) > 1 and not preferred:
            raise UnsupportedStepError(
                f"{step_label} holds several torch modules ({', '.join(sorted(candidates))}); say which "
                "one to export: exporter.register_wrapper("
                f"{type(step).__name__}, module='{sorted(candidates)[0]}')"
            )
        module = candidates[preferred[0] if preferred else next(iter(candidates))]
    if not is_module(module):
        raise UnsupportedStepError(
            f"{step_label}: the module locator returned {type(module).__name__}, not a torch.nn.Module"
        )
    return module


def module_attributes(step: Any) -> dict[str, Any]:
    """Fitted (trailing-underscore) attributes holding a module; any attribute if none is fitted-style."""
    try:
        attrs = vars(step)
    except TypeError:
        return {}
    modules = {k: v for k, v in attrs.items() if is_module(v)}
    fitted = {k: v for k, v in modules.items() if k.endswith("_") and not k.startswith("_")}
    return fitted or modules


def module_dtype(module: Any) -> Any:
    import torch

    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def run_module(module: Any, x: np.ndarray) -> np.ndarray:
    """The module's raw output on x, computed natively (for heads and per-stage parity)."""
    import torch

    dtype = module_dtype(module)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.as_tensor(np.asarray(x), dtype=dtype))
    finally:
        module.train(was_training)
    if isinstance(out, (tuple, list)):
        out = out[0]  # skorch's convention: the first output is the prediction
    return out.detach().cpu().numpy()


def export_module(module: Any, example: np.ndarray, step_label: str) -> Any:
    """torch.onnx.export(dynamo=True) with a dynamic batch; returns the ModelProto.

    The module is put in eval mode for the export and restored after, so the user's object is not
    changed. torch.onnx prints progress on stdout; it is captured so the CLI output stays readable.
    """
    import torch

    dtype = module_dtype(module)
    x = np.asarray(example)
    if len(x) < 2:  # a batch of 1 specialises the batch dimension to 1
        x = np.concatenate([x, x]) if len(x) else np.zeros((2, *x.shape[1:]))
    tensor = torch.as_tensor(x[:8], dtype=dtype)
    was_training = module.training
    module.eval()
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), warnings.catch_warnings(), _quiet_torch_logs():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                (tensor,),
                dynamo=True,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                input_names=["input"],
                output_names=["output"],
                opset_version=OPSET,
                verbose=False,
            )
    except Exception as exc:
        raise ConversionError(
            f"torch.onnx could not export the module of {step_label} ({type(module).__name__}): "
            f"{_root_cause(exc)}; the module's forward must be traceable by torch.export (no Python "
            "branches on tensor values, no NumPy calls)"
        ) from exc
    finally:
        module.train(was_training)
    if program is None:  # pragma: no cover - dynamo=True always returns a program
        raise ConversionError(f"torch.onnx returned no program for {step_label}")
    model = program.model_proto
    if len(model.graph.input) != 1 or len(model.graph.output) < 1:
        raise UnsupportedStepError(
            f"{step_label}: the module's forward takes {len(model.graph.input)} tensors; "
            "only modules with one input tensor (rows x features) are exported"
        )
    # Keep the first output only (skorch's convention for modules returning tuples).
    del model.graph.output[1:]
    return model


def _root_cause(exc: BaseException) -> str:
    """The first line of the innermost cause, without terminal colour codes: torch.onnx wraps the
    real reason ("Could not guard on data-dependent expression ...") in a generic
    "Failed to export ... This is step 1/3 ... Next steps:" whose first line says nothing."""
    import re

    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    first = text.splitlines()[0].strip() if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@contextlib.contextmanager
def _quiet_torch_logs() -> Any:
    loggers = [
        logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")
    ]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
