"""Heads for skorch's nets, read from their fitted attributes.

skorch applies ``predict_nonlinearity`` outside the module (softmax for CrossEntropyLoss, sigmoid
then two columns for BCEWithLogitsLoss, ...), ``NeuralNetClassifier.predict`` returns argmax
*indices*, and ``NeuralNetBinaryClassifier.predict`` thresholds the positive column.
"""

from __future__ import annotations

from typing import Any

from exporter.convert.heads import Head, Proba
from exporter.errors import UnsupportedStepError
from exporter.registry import Registry, TorchAdapter


def register(registry: Registry) -> None:
    try:
        import skorch
    except ImportError:  # skorch is optional: only needed when the pipeline holds a skorch net
        return
    entries = {
        skorch.NeuralNet: _generic_head,
        skorch.NeuralNetClassifier: _classifier_head,
        skorch.NeuralNetBinaryClassifier: _binary_head,
        skorch.NeuralNetRegressor: _regressor_head,
    }
    for cls, head in entries.items():
        if cls not in registry:
            registry.register(cls, TorchAdapter(module="module_", head=head, source="skorch"))


def _nonlinearity(net: Any) -> Proba:
    """Map the net's predict_nonlinearity to a Head.proba, or refuse with the fix."""
    from skorch.utils import _identity, _infer_predict_nonlinearity, _make_2d_probs, _sigmoid_then_2d

    fn = net.predict_nonlinearity
    if fn == "auto":
        fn = _infer_predict_nonlinearity(net)
    if fn is None or fn is _identity or fn is _make_2d_probs:
        return "identity"
    if fn is _sigmoid_then_2d:
        return "sigmoid"
    func = getattr(fn, "func", None)  # functools.partial(torch.softmax, dim=-1)
    if func is not None and getattr(func, "__name__", "") == "softmax" and fn.keywords.get("dim") in (-1, 1):
        return "softmax"
    raise UnsupportedStepError(
        f"{type(net).__name__} has a custom predict_nonlinearity {fn!r} that cannot be expressed "
        "as a head; declare it: exporter.register_wrapper(type(net), module='module_', "
        "head=exporter.Head(proba='softmax'|'sigmoid'|'identity'), replace=True)"
    )


def _generic_head(net: Any) -> Head:
    return Head(proba=_nonlinearity(net), labels="index")


def _classifier_head(net: Any) -> Head:
    return Head(task="classifier", proba=_nonlinearity(net), labels="index")


def _binary_head(net: Any) -> Head:
    proba = "sigmoid" if net.predict_nonlinearity == "auto" else _nonlinearity(net)
    return Head(task="classifier", proba=proba, threshold=float(net.threshold), labels="index")


def _regressor_head(net: Any) -> Head:
    proba = _nonlinearity(net)
    if proba != "identity":
        raise UnsupportedStepError(
            f"{type(net).__name__} applies a {proba} predict_nonlinearity to its regression output; "
            "only the identity is exported for regressors: set predict_nonlinearity=None"
        )
    return Head(task="regressor")
