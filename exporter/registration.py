"""Filling the registry: the built-in entries, and the calls users make to declare their own steps.

``load_builtin()`` (idempotent) registers the sklearn types hybridonnx has a parity case for, the
converters it adds to skl2onnx (FunctionTransformer functions, TransformedTargetRegressor) and
skorch's nets. ``register_wrapper`` / ``register_sklearn_converter`` / ``register_function`` are the
public extension points (README "Extending"); each loads the built-ins first, so a user's entry is
never overwritten by them later.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from exporter.convert import boosters, extend, skorch_heads, target
from exporter.convert.sklearn import SUPPORTED_SKLEARN
from exporter.errors import RegistrationError
from exporter.registry import (
    SKLEARN,
    HeadResolver,
    ModuleLocator,
    Registry,
    TorchAdapter,
    public_name,
    registry,
)

_builtin_loaded = False
# Third-party estimator libraries and how their classes are registered. Importing one costs up to
# seconds (skorch imports torch); a pipeline holding one of its estimators has imported it already
# (to unpickle it, or to build it), so each is registered once it is in sys.modules.
_LIBRARIES: dict[str, Callable[[Registry], None]] = {
    "skorch": skorch_heads.register,
    "lightgbm": lambda r: boosters.register(r, only="lightgbm"),
    "xgboost": lambda r: boosters.register(r, only="xgboost"),
    "catboost": lambda r: boosters.register(r, only="catboost"),
}
_libraries_loaded: set[str] = set()


def load_builtin(everything: bool = False) -> Registry:
    """Register the built-in converters: the sklearn types we test (once), and skorch's nets and
    the boosters of each library already imported (``everything``: of each installed one, as the
    support matrix needs).

    Other types skl2onnx converts still export (``plan`` falls back to skl2onnx's own table) but
    are reported as untested: only the types here have a parity case.
    """
    global _builtin_loaded
    if not _builtin_loaded:
        extend.install()
        target.install()
        for path in SUPPORTED_SKLEARN:
            module, name = path.rsplit(".", 1)
            cls = getattr(importlib.import_module(module), name)
            if cls not in registry:
                registry.register(cls, SKLEARN)
        _builtin_loaded = True
    for library, register in _LIBRARIES.items():
        if library not in _libraries_loaded and (everything or library in sys.modules):
            register(registry)
            _libraries_loaded.add(library)
    return registry


def register_wrapper(
    cls: type, *, module: ModuleLocator = None, head: HeadResolver = None, replace: bool = False
) -> None:
    """Declare how to export a torch-backed estimator class the default detection gets wrong.

    >>> register_wrapper(MyNet, module="net_", head=Head(proba="identity"))  # module returns probs

    ``module``: the attribute (or a function of the fitted object) holding the fitted nn.Module.
    ``head``: a ``Head``, or a function of the fitted object returning one.
    """
    load_builtin()
    if isinstance(module, str) and not module.isidentifier():
        raise RegistrationError(f"module={module!r} is not an attribute name")
    registry.register(cls, TorchAdapter(module=module, head=head), replace=replace)


_USER_CONVERTED: set[type] = set()


def register_sklearn_converter(cls: type, builder: extend.StepBuilder, *, replace: bool = False) -> None:
    """Let a custom sklearn-style transformer export: ``builder(X, opset, step)`` returns the ONNX
    expression of ``step.transform(X)``. Its output width is measured on one row of zeros. A
    stateless step (no fitted attribute) is taken as fitted: the user vouches for it."""
    load_builtin()
    registry.register(cls, SKLEARN, replace=replace)
    extend.install_step_converter(cls, builder)
    _USER_CONVERTED.add(cls)


def user_converted_types() -> frozenset[type]:
    """Types the user registered with register_sklearn_converter."""
    return frozenset(_USER_CONVERTED)


def unregister_sklearn_converter(cls: type) -> None:
    """Undo register_sklearn_converter (in our registry and in skl2onnx's type table)."""
    registry.unregister(cls)
    extend.remove_step_converter(cls)
    _USER_CONVERTED.discard(cls)


def register_function(func: Any, builder: extend.FunctionBuilder, *, replace: bool = False) -> None:
    """Let ``FunctionTransformer(func=func)`` export: ``builder(X, opset)`` returns its ONNX form."""
    load_builtin()
    extend.add_function(func, builder, replace=replace)


def supported_steps() -> list[tuple[str, str]]:
    """(class path, converter) pairs, for the README's support list and error messages."""
    load_builtin(everything=True)
    return [
        (public_name(cls), "skl2onnx" if entry is SKLEARN else "torch") for cls, entry in registry.items()
    ]
