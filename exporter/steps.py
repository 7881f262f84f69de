"""Looking inside fitted estimators: their steps, their fitted children, their outputs as arrays.

A leaf of the exporter: every stage (schema, plan, converters, diagnosis) asks these questions of
the user's objects, and none of the answers needs the rest of the exporter. numpy at module level;
sklearn only inside the functions that need it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def flatten_steps(estimator: Any) -> list[tuple[str, Any]]:
    """A Pipeline (nested ones included) → its steps in order; a bare estimator → one step."""
    from sklearn.pipeline import Pipeline

    if not isinstance(estimator, Pipeline):
        return [(type(estimator).__name__, estimator)]
    steps: list[tuple[str, Any]] = []
    for name, step in estimator.steps:
        if step is None or step == "passthrough":
            continue
        if isinstance(step, Pipeline):
            steps += [(f"{name}__{inner}", s) for inner, s in flatten_steps(step)]
        else:
            steps.append((name, step))
    return steps


def walk(estimator: Any) -> list[Any]:
    """Every estimator nested in Pipelines, ColumnTransformers and FeatureUnions: the FITTED ones
    (a fitted ColumnTransformer's children are the clones in ``transformers_``; options keyed by
    ``id()`` of the unfitted originals in ``transformers`` never reach their converters)."""
    found = []
    fitted = "transformers_" if hasattr(estimator, "transformers_") else "transformers"
    for attr in ("steps", fitted, "transformer_list"):
        for item in getattr(estimator, attr, None) or []:
            child = item[1]
            if hasattr(child, "get_params"):
                found += [child, *walk(child)]
    return found


def fitted_children(estimator: Any) -> list[tuple[str, Any]]:
    """The fitted estimators a container holds (those its predict/transform actually call), each
    with the attribute path it sits at (``estimators_[1]``, ``transformers_[num]``)."""
    found: list[tuple[str, Any]] = []
    for attr in ("steps", "transformers_", "transformer_list"):
        for item in getattr(estimator, attr, None) or []:
            if isinstance(item, tuple) and len(item) >= 2 and hasattr(item[1], "__dict__"):
                found.append((f"{attr}[{item[0]}]", item[1]))
    for attr in ("estimators_", "final_estimator_", "regressor_", "estimator_", "calibrated_classifiers_"):
        if attr == "estimator_" and "estimators_" in vars(estimator):
            continue  # Bagging/AdaBoost: the unfitted template the fitted estimators_ were cloned from
        value = getattr(estimator, attr, None) if attr in vars(estimator) else None
        items = value if isinstance(value, list) else [value] if value is not None else []
        for i, child in enumerate(items):
            if attr == "calibrated_classifiers_":
                child = child.estimator
            if isinstance(child, (list, tuple)):  # OneVsOne / MultiOutput keep plain lists
                found += [(f"{attr}[{i}][{j}]", c) for j, c in enumerate(child) if hasattr(c, "__dict__")]
            elif hasattr(child, "__dict__") and not isinstance(child, (str, np.ndarray)):
                found.append((f"{attr}[{i}]" if len(items) > 1 or attr == "estimators_" else attr, child))
    if type(estimator).__name__ == "FrozenEstimator":
        found.append(("estimator", estimator.estimator))
    return found


def descendants(estimator: Any) -> list[Any]:
    """Every fitted estimator below ``estimator``, in any container (Voting, Stacking, Calibrated,
    TransformedTarget, ...), each once."""
    found: dict[int, Any] = {}
    stack = [estimator]
    while stack:
        current = stack.pop()
        for child in [*walk(current), *(c for _, c in fitted_children(current))]:
            if id(child) not in found and child is not estimator:
                found[id(child)] = child
                stack.append(child)
    return list(found.values())


def is_unfitted(step: Any) -> bool:
    """True only when sklearn says so; objects that are not BaseEstimators cannot tell."""
    from sklearn.exceptions import NotFittedError as SkNotFitted
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(step)
    except SkNotFitted:
        return True
    except Exception:  # not a BaseEstimator (TypeError, or AttributeError on __sklearn_tags__)
        return False
    return False


def has_infrequent_categories(encoder: Any) -> bool:
    """Whether a fitted encoder grouped some categories as infrequent (min_frequency, max_categories)."""
    if not getattr(encoder, "_infrequent_enabled", False):
        return False
    return any(c is not None for c in encoder.infrequent_categories_)


def class_path(obj: Any) -> str:
    """``module.QualName`` of an object's type, as error messages and metadata name it."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def n_rows(x: Any) -> int:
    """Rows of a sample: an array's or DataFrame's length; a dict of named inputs' first array's."""
    from collections.abc import Mapping

    if isinstance(x, Mapping):
        return len(next(iter(x.values()))) if x else 0
    return int(x.shape[0]) if hasattr(x, "shape") else len(x)


def as_dense(x: Any) -> np.ndarray:
    """Sparse matrices and DataFrames → a dense ndarray (what a torch module receives)."""
    if hasattr(x, "toarray"):
        x = x.toarray()
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    return np.asarray(x)
