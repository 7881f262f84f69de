"""``exporter check``: the native pipeline vs an exported model on the user's rows (or the golden
rows embedded in the model) — the parity check users run in their own CI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from exporter.diagnose import diagnose
from exporter.errors import OptionError
from exporter.load import unwrap
from exporter.nodes import native_errors
from exporter.parity import METHODS, ParityReport, compare, native_outputs
from exporter.plan import feeds_torch_float32, make_nodes, make_plan
from exporter.schema import coerce_sample, read_sample
from runtime.errors import InvalidOptionError
from runtime.parity import check_tolerances
from runtime.verify import recorded_rules


def check(
    estimator: Any,
    model: Any,
    X: Any = None,
    *,
    tolerances: dict[str, tuple[float, float]] | None = None,
) -> ParityReport:
    """Compare ``estimator`` (fitted) with ``model`` (a runtime.Model, a path or bytes) on ``X``
    (rows, or a .npy/.csv path; None: the golden rows embedded at export)."""
    import runtime
    from runtime.verify import golden_inputs

    try:  # first: a NaN tolerance would pass every comparison
        tolerances = check_tolerances(tolerances) if tolerances is not None else None
    except InvalidOptionError as exc:
        raise OptionError(str(exc)) from None
    estimator = unwrap(estimator)
    rt = (
        model if isinstance(model, runtime.Model) else runtime.load(model, providers=["CPUExecutionProvider"])
    )
    schema = rt.schema
    if X is None:
        X, origin = golden_inputs(rt), "golden"
        if schema.layout == "columns":
            import pandas as pd

            X = pd.DataFrame(X)[list(schema.feature_names or X)]
    elif isinstance(X, (str, Path)):
        X, origin = read_sample(X, schema), "user"
    else:
        X, origin = coerce_sample(X, schema), "user"
    native_X = X
    nodes = make_nodes(estimator)
    kinds = "f" if schema.layout == "tensor" else "biuf"  # integer token ids stay integers
    if isinstance(X, np.ndarray) and X.dtype.kind in kinds and feeds_torch_float32(nodes):
        native_X = X.astype(np.float32)  # as at export: torch wrappers are fit on float32
    outputs = rt.metadata.get("outputs", {})
    names = [n for n, spec in outputs.items() if not spec.get("auxiliary")] or rt.output_names
    with native_errors("the native pipeline"):
        expected = native_outputs(estimator, native_X, names)
    actual = {name: getattr(rt, METHODS[name])(X) for name in names}
    recorded, min_agreement, tie_atol = recorded_rules(rt.metadata.get("parity", {}))
    report = compare(
        expected,
        actual,
        {**recorded, **(tolerances or {})},
        sample=origin,
        min_label_agreement=min_agreement,
        tie_atol=tie_atol,
    )
    if not report.passed:  # say where: cut the model at its stage seams, judge each stage alone
        report.stages = [r.to_dict() for r in _diagnose(estimator, nodes, rt, native_X, expected)]
    return report


def _diagnose(
    estimator: Any, nodes: Any, rt: Any, native_X: Any, expected: dict[str, np.ndarray]
) -> list[Any]:
    """Cut the model where its metadata says each node (and nested leaf) sits, and judge each
    piece on what the native pipeline gives there on these rows."""
    import onnx

    records = rt.metadata.get("stages") or []
    if rt.header.format == "ort":  # no protobuf graph to cut
        return []
    if not all("output" in s for s in records):
        return []  # exported before seams were recorded: end-to-end report only
    proto = onnx.load(str(rt.path)) if rt.path else onnx.load_from_string(rt.serialized)
    plan = make_plan(estimator, nodes, rt.schema, native_X)
    return diagnose(proto, plan, expected, records)
