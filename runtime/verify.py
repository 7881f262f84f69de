"""Replay the golden rows embedded at export on this machine, with the same rules as export parity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from runtime.contract import METHODS
from runtime.errors import VerificationError
from runtime.model import Model, restore_dtype
from runtime.parity import OutputReport, ParityReport, compare


def golden_inputs(model: Model) -> Any:
    """The embedded golden rows, as the model's inputs (an array or a dict of columns)."""
    golden = model.metadata.get("golden")
    if not golden:
        raise VerificationError(
            f"{model.source}: the model carries no golden rows to verify (export it with exporter)"
        )
    inputs = golden["inputs"]
    if model.schema.layout == "tensor":  # each input in its own dtype: token ids stay integers
        dtypes = {spec.name: spec.dtype for spec in model.schema.inputs}
        if isinstance(inputs, dict):
            return {name: np.asarray(values, dtype=dtypes.get(name)) for name, values in inputs.items()}
        return np.asarray(inputs, dtype=model.schema.inputs[0].dtype)
    if isinstance(inputs, dict):
        return {name: np.asarray(values) for name, values in inputs.items()}
    if model.schema.layout == "text":
        return np.asarray(inputs, dtype=object)
    return np.asarray(inputs, dtype=np.float64)


def verify(model: Model, tolerances: dict[str, tuple[float, float]] | None = None) -> ParityReport:
    """Run the golden rows and compare with the answers recorded at export.

    Tolerances default to those the export used (recorded in the parity report), so a model that
    passed at export and runs the same arithmetic here passes; changed weights do not.
    """
    X = golden_inputs(model)
    expected = {
        name: restore_dtype(np.asarray(values), model.metadata["outputs"][name]["native_dtype"])
        for name, values in model.metadata["golden"]["outputs"].items()
    }
    actual = {name: getattr(model, METHODS[name])(X) for name in expected}
    recorded, min_agreement, tie_atol = recorded_rules(model.metadata.get("parity", {}))
    report = compare(
        expected,
        actual,
        {**recorded, **(tolerances or {})},
        sample="golden",
        min_label_agreement=min_agreement,
        tie_atol=tie_atol,
    )
    if model.graph_unchanged is False:  # the golden rows may miss a change; the hash does not
        report.outputs.append(
            OutputReport(
                "graph",
                False,
                [],
                [],
                "",
                "",
                problem=f"sha256 {(model.graph_sha256 or '')[:16]}… differs from the graph checked at export",
            )
        )
    return report


def recorded_rules(parity: Mapping[str, Any]) -> tuple[dict[str, tuple[float, float]], float, float | None]:
    """The rules a parity report (``metadata["parity"]``, or ``ParityReport.to_dict()``) was judged
    with: numeric tolerances per output, the share of labels that must agree, and the tie rule of
    reduced-precision variants (None: ties within the probability atol, as for float32)."""
    outputs = parity.get("outputs", [])
    tolerances = {o["name"]: (o["atol"], o["rtol"]) for o in outputs if o.get("atol") is not None}
    label: dict[str, Any] = next((o for o in outputs if o.get("name") == "label"), {})
    min_agreement = label.get("min_agreement") or 1.0
    return tolerances, min_agreement, label.get("tie_atol") if min_agreement < 1.0 else None
