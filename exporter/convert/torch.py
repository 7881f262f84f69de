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
from exporter.steps import as_dense

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


def attribute_of(step: Any, module: Any) -> str:
    """The attribute of ``step`` holding ``module`` (for messages), or "its module"."""
    return next((k for k, v in module_attributes(step).items() if v is module), "its module")


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


ModuleInput = Any  # one array (rows, images, token ids), or a mapping name → array (several inputs)


def module_input(x: Any) -> ModuleInput:
    """What a module receives: a dict of arrays for several named inputs (a dict or skorch
    SliceDict, passed to ``forward`` as keyword arguments, as skorch does), else one dense array."""
    from collections.abc import Mapping

    if isinstance(x, Mapping):
        return {str(k): as_dense(v) for k, v in x.items()}
    return as_dense(x)


def takes_token_ids(module: Any) -> bool:
    """Whether the module's first layer with weights is an embedding: its input is integer ids."""
    import torch

    for layer in module.modules():
        if isinstance(layer, (torch.nn.Embedding, torch.nn.EmbeddingBag)):
            return True
        if any(True for _ in layer.parameters(recurse=False)):
            return False
    return False


def _tensor(module: Any, array: np.ndarray, keep_int: bool) -> Any:
    """Integer arrays stay int64 where the module takes ids (an nn.Embedding first, or a named
    input: skorch passes those as they are); anything else becomes the module's float dtype."""
    import torch

    array = np.asarray(array)
    if keep_int and array.dtype.kind in "biu":
        return torch.as_tensor(array.astype(np.int64, copy=False))
    return torch.as_tensor(array, dtype=module_dtype(module))


def _tensors(module: Any, x: ModuleInput) -> dict[str, Any]:
    if isinstance(x, dict):
        return {name: _tensor(module, v, keep_int=True) for name, v in x.items()}
    return {"X": _tensor(module, x, keep_int=takes_token_ids(module))}


def _call(module: Any, x: ModuleInput) -> Any:
    tensors = _tensors(module, x)
    return module(**tensors) if isinstance(x, dict) else module(tensors["X"])


def run_module(module: Any, x: ModuleInput) -> np.ndarray:
    """The module's raw output on x, computed natively (for heads and per-node parity)."""
    import torch

    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = _call(module, x)
    finally:
        module.train(was_training)
    if isinstance(out, (tuple, list)):
        out = out[0]  # skorch's convention: the first output is the prediction
    return out.detach().cpu().numpy()


def input_names(module: Any, x: ModuleInput) -> list[str]:
    """The graph's input names, in the order torch.onnx writes them: ``X`` for one array; for a
    mapping, its keys in the order of ``forward``'s parameters."""
    import inspect

    if not isinstance(x, dict):
        return ["X"]
    order = list(inspect.signature(module.forward).parameters)
    return sorted(x, key=lambda name: order.index(name) if name in order else len(order))


def export_module(module: Any, example: ModuleInput, step_label: str) -> Any:
    """torch.onnx.export(dynamo=True) with a dynamic batch; returns the ModelProto.

    Integer inputs of rank 2 (token ids) also get a dynamic sequence length when the module
    exports with one (an RNN or attention over T steps); otherwise their length is fixed. The module
    is put in eval mode for the export and restored after, so the user's object is not changed.
    torch.onnx prints progress on stdout; it is captured so the CLI output stays readable.
    """
    names = input_names(module, example)
    if isinstance(example, dict):
        tensors = _tensors(module, {n: _batch_of_two(example[n])[:8] for n in names})
    else:
        tensors = _tensors(module, _batch_of_two(example)[:8])
    sequences = {
        n
        for n in names
        if tensors[n].ndim == 2 and not tensors[n].is_floating_point() and tensors[n].shape[1] > 2
    }
    attempts = [sequences, set()] if sequences else [set()]
    for attempt, dynamic_length in enumerate(attempts):
        try:
            model = _export(module, tensors, names, dynamic_length, isinstance(example, dict))
            if dynamic_length and not _takes_other_lengths(model, module, tensors, dynamic_length):
                continue  # exported, but the module fixes its sequence length: export it fixed
            break
        except Exception as exc:
            if attempt + 1 < len(attempts):
                continue  # the module fixes its sequence length (e.g. a Linear over T): export it fixed
            raise ConversionError(
                f"torch.onnx could not export the module of {step_label} ({type(module).__name__}): "
                f"{_root_cause(exc)}; the module's forward must be traceable by torch.export (no Python "
                "branches on tensor values, no NumPy calls)"
            ) from exc
    if len(model.graph.output) < 1:
        raise UnsupportedStepError(f"{step_label}: the module's forward returns no tensor")
    # Keep the first output only (skorch's convention for modules returning tuples).
    del model.graph.output[1:]
    return model


def _takes_other_lengths(model: Any, module: Any, tensors: dict[str, Any], sequences: set[str]) -> bool:
    """Whether the graph exported with a dynamic sequence length answers like the module on a
    shorter sequence (torch.export may trace a length it then relies on, e.g. a reshape)."""
    import onnxruntime as ort
    import torch

    shorter = {n: (t[:, :-1] if n in sequences else t) for n, t in tensors.items()}
    try:
        with torch.no_grad():
            want = module(**shorter) if list(shorter) != ["X"] else module(shorter["X"])
        want = (want[0] if isinstance(want, (tuple, list)) else want).numpy()
        quiet = ort.SessionOptions()
        quiet.log_severity_level = 4  # a refused length is an answer here, not an error to print
        session = ort.InferenceSession(model.SerializeToString(), quiet, providers=["CPUExecutionProvider"])
        got = session.run(None, {n: t.numpy() for n, t in shorter.items()})[0]
    except Exception:  # either side refuses the shorter input: the length is not free
        return False
    return got.shape == want.shape and bool(np.allclose(got, want, atol=1e-4, rtol=1e-3))


def _batch_of_two(x: np.ndarray) -> np.ndarray:
    """A batch of 1 would specialise the batch dimension to 1."""
    x = np.asarray(x)
    if len(x) < 2:
        return np.concatenate([x, x]) if len(x) else np.zeros((2, *x.shape[1:]), dtype=x.dtype)
    return x


def _export(
    module: Any, tensors: dict[str, Any], names: list[str], dynamic_length: set[str], by_name: bool
) -> Any:
    import torch

    batch = torch.export.Dim("batch")
    length = torch.export.Dim("length")
    shapes = {n: ({0: batch, 1: length} if n in dynamic_length else {0: batch}) for n in names}
    was_training = module.training
    module.eval()
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), warnings.catch_warnings(), _quiet_torch_logs():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                () if by_name else (tensors["X"],),
                kwargs={n: tensors[n] for n in names} if by_name else None,
                dynamo=True,
                dynamic_shapes=shapes if by_name else (shapes["X"],),
                input_names=names,
                output_names=["output"],
                opset_version=OPSET,
                verbose=False,
            )
    finally:
        module.train(was_training)
    if program is None:  # pragma: no cover - dynamo=True always returns a program
        raise ConversionError("torch.onnx returned no program")
    return program.model_proto


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
    """Silence torch's own reporting while exporting: a failed trace logs warnings and prints the
    graph it got (tens of lines on stderr); our error names the cause in one line instead.
    torch configures levels per logger (torch._logging), so every torch / onnxscript logger is
    raised, not only the parents; Python-level prints to stderr are captured too."""
    import sys

    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in ("torch", "onnxscript")]
    loggers = [logging.getLogger(n) for n in ["torch", "onnxscript", *names]]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with (
            contextlib.redirect_stderr(io.StringIO()) if sys.stderr is not None else contextlib.nullcontext()
        ):
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
