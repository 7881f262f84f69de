"""Load a fitted estimator from a pickle / joblib / skops file and unwrap search objects.

Unpickling runs code from the file: only export pipelines you trust. ``.skops`` files load
without running code, and refuse types that are not known-safe unless the user trusts them by name.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from exporter.errors import LoadError, NotFittedError


def load_estimator(
    path: str | Path, *, trust: Sequence[str] = (), import_paths: Sequence[str | Path] = ()
) -> Any:
    """Read the file and return the fitted estimator to export (``best_estimator_`` of a search)."""
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
    missing = [t for t in untrusted if t not in trust]
    if missing:
        flags = " ".join(f"--trust {t}" for t in missing)
        raise LoadError(
            f"{str(path)!r} contains types that are not trusted by default: {', '.join(missing)}; "
            f"if you trust this file, pass {flags}"
        )
    try:
        return sio.load(path, trusted=untrusted)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise LoadError(_explain_missing_class(path, exc)) from None


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
