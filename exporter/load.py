"""Load a fitted estimator from a pickle / joblib / skops file and unwrap search objects.

Unpickling runs code from the file: only export pipelines you trust. ``.skops`` files load
without running code, and refuse types that are not known-safe unless the user trusts them by name;
names that can run code (``builtins.eval``, ``os.system``...) are refused even when trusted.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from exporter.errors import LoadError, NotFittedError, OptionError

# What a .skops file must never make the pipeline call: these run code, spawn processes or write
# files (FunctionTransformer(func=eval) calls eval on every batch, the exporter's probe included).
# fmt: off
_DANGEROUS_MODULES = frozenset({
    "os", "posix", "nt", "subprocess", "sys", "shutil", "importlib", "pickle", "_pickle", "marshal",
    "runpy", "code", "codeop", "ctypes", "pty", "socket", "multiprocessing", "webbrowser", "dill",
    "cloudpickle", "joblib",
})
_DANGEROUS_BUILTINS = frozenset({
    "eval", "exec", "compile", "__import__", "getattr", "setattr", "delattr", "globals", "locals",
    "vars", "open", "input", "breakpoint", "exit", "quit", "help",
})
# fmt: on
_DANGEROUS_NAMES = frozenset(
    {"operator.attrgetter", "operator.methodcaller", "operator.call", "pandas.read_pickle"}
)
_RUNS_CODE = "eval, exec, os.system and the like can run arbitrary code"
_USE_A_PICKLE = (
    "if you really trust whoever made the file, export from a pickle or joblib of the pipeline "
    "instead (unpickling runs the file's code: only for files you trust)"
)


def is_dangerous(type_name: str) -> bool:
    """Whether a skops type name can run code, spawn processes or write files when called."""
    module, _, name = type_name.rpartition(".")
    return (
        type_name.split(".", 1)[0] in _DANGEROUS_MODULES
        or (module in ("builtins", "__builtin__") and name in _DANGEROUS_BUILTINS)
        or type_name in _DANGEROUS_NAMES
    )


def load_estimator(
    path: str | Path, *, trust: Sequence[str] = (), import_paths: Sequence[str | Path] = ()
) -> Any:
    """Read the file and return the fitted estimator to export (``best_estimator_`` of a search)."""
    for name in trust:
        if is_dangerous(name):
            raise OptionError(
                f"--trust {name}: refusing to trust it: {_RUNS_CODE}, and a .skops file that needs it "
                f"is not safe to load; {_USE_A_PICKLE}"
            )
    path = Path(path)
    if not path.is_file():
        raise LoadError(f"pipeline file not found: {str(path)!r}")
    with _importable(["", *import_paths]):
        obj = _read(path, list(trust))
    return unwrap(obj, source=str(path))


def import_plugins(modules: Sequence[str], *, import_paths: Sequence[str | Path] = ()) -> None:
    """Import the user's modules that register wrappers or converters (CLI ``--plugin``)."""
    import importlib

    with _importable(["", *import_paths]):
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                raise LoadError(
                    f"cannot import plugin module {name!r}: {exc}; add its folder with --path DIR"
                ) from None


def unwrap(obj: Any, source: str = "the object") -> Any:
    """GridSearchCV / RandomizedSearchCV & co. → their refitted best_estimator_."""
    if hasattr(obj, "best_estimator_"):
        return obj.best_estimator_
    if hasattr(obj, "cv_results_") or (hasattr(obj, "estimator") and hasattr(obj, "param_grid")):
        raise NotFittedError(
            f"{source} holds a {type(obj).__name__} without best_estimator_: fit it with refit=True"
        )
    if not (hasattr(obj, "predict") or hasattr(obj, "transform")):
        raise LoadError(
            f"{source} holds a {type(obj).__module__}.{type(obj).__name__}, not a fitted estimator "
            "(expected a Pipeline, a search CV or an estimator with predict/transform)"
        )
    return obj


def _read(path: Path, trust: list[str]) -> Any:
    if path.suffix == ".skops":
        return _read_skops(path, trust)
    try:
        if path.suffix == ".joblib":
            import joblib

            return joblib.load(path)
        with path.open("rb") as fh:
            return pickle.load(fh)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise LoadError(_explain_missing_class(path, exc)) from None
    except (pickle.UnpicklingError, EOFError, ValueError, IndexError, KeyError, TypeError) as exc:
        raise LoadError(
            f"{str(path)!r} is not a readable pickle/joblib file ({type(exc).__name__}: {exc}); "
            "is it truncated, or another format?"
        ) from None


def _read_skops(path: Path, trust: list[str]) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise LoadError(f"{str(path)!r} is not a readable .skops file: {exc}") from None
    message = untrusted_message(str(path), untrusted, trust)
    if message is not None:
        raise LoadError(message)
    try:
        return sio.load(path, trusted=untrusted)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise LoadError(_explain_missing_class(path, exc)) from None


def untrusted_message(source: str, untrusted: Sequence[str], trust: Sequence[str]) -> str | None:
    """Why a .skops file is refused (None: it may load): dangerous types are named apart and
    never offered to ``--trust``; the others are, flag by flag."""
    dangerous = [t for t in untrusted if is_dangerous(t)]
    if dangerous:
        return (
            f"{source!r} refers to {', '.join(dangerous)}: refusing to load it, since {_RUNS_CODE} "
            f"when the pipeline runs (no --trust allows them); {_USE_A_PICKLE}"
        )
    missing = [t for t in untrusted if t not in trust]
    if not missing:
        return None
    flags = " ".join(f"--trust {t}" for t in missing)
    return (
        f"{source!r} contains types that are not trusted by default: {', '.join(missing)}; "
        f"if you trust this file, pass {flags}"
    )


def _explain_missing_class(path: Path, exc: Exception) -> str:
    message = str(exc)
    if "__main__" in message:
        return (
            f"{str(path)!r} refers to a class defined in the training script's __main__ ({message}); "
            "move that class into a module (e.g. my_wrappers.py), re-pickle, and run the exporter "
            "where that module is importable (or add its folder with --path)"
        )
    return (
        f"cannot unpickle {str(path)!r}: {message}; the class must be importable: run the exporter "
        "from the folder holding its module, or add that folder with --path DIR"
    )


@contextmanager
def _importable(paths: Sequence[str | Path]) -> Iterator[None]:
    """Temporarily put the current directory and the user's --path folders on sys.path."""
    added = [str(Path(p).resolve()) if p else str(Path.cwd()) for p in paths]
    added = [p for p in added if p not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            if p in sys.path:
                sys.path.remove(p)
