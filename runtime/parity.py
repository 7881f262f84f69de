"""Compare two sets of model outputs, output by output: the core of every parity check.

The exporter compares the native pipeline with the exported model at export time; ``runtime
verify`` compares the model on this machine with the golden answers embedded at export. Both use
this module, which needs numpy only.

Numbers pass when ``|onnx - native| <= atol + rtol * |native|`` everywhere. Labels must agree on
every row, except rows where the native top-two probabilities are closer than ``atol``: there a
float32 graph may legitimately break the tie the other way. Such rows are counted as "ties".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from runtime.errors import InvalidOptionError

# Default tolerances per output. float32 graphs vs float64 (sklearn) or float32 (torch) natives;
# the measured errors on the test cases are 1e-7 .. 5e-6, so these leave room without hiding a
# wrong head (a wrong softmax/sigmoid moves probabilities by > 1e-2).
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "probabilities": (1e-4, 1e-3),
    "prediction": (1e-4, 1e-3),
    "features": (1e-4, 1e-3),
}


@dataclass
class OutputReport:
    name: str
    passed: bool
    native_shape: list[int]
    onnx_shape: list[int]
    native_dtype: str
    onnx_dtype: str
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    atol: float | None = None
    rtol: float | None = None
    label_agreement: float | None = None
    label_mismatches: int | None = None
    label_ties: int | None = None
    min_agreement: float | None = None  # labels: the share that must agree (1.0 but for int8/fp16)
    tie_atol: float | None = None  # labels: native top-two closer than this count as ties
    worst_rows: list[int] = field(default_factory=list)
    problem: str | None = None

    def line(self) -> str:
        status = "ok  " if self.passed else "FAIL"
        worst = f"; worst rows {self.worst_rows}" if self.worst_rows else ""
        if self.problem:
            return f"{status} {self.name}: {self.problem}"
        if self.label_agreement is not None:
            ties = f", {self.label_ties} tie(s)" if self.label_ties else ""
            floor = f", >= {self.min_agreement:.0%} required" if (self.min_agreement or 1.0) < 1.0 else ""
            return (
                f"{status} {self.name}: {self.label_agreement:.2%} agreement "
                f"({self.label_mismatches} mismatch(es){ties}{floor}){worst}"
            )
        return (
            f"{status} {self.name}: max abs {self.max_abs_error:.2e}, max rel {self.max_rel_error:.2e} "
            f"(atol {self.atol:g}, rtol {self.rtol:g}){worst}"
        )


@dataclass
class ParityReport:
    n_rows: int
    sample: str  # "user" or "synthetic"
    outputs: list[OutputReport]
    # Per-stage comparison, filled by the exporter (export and check) when end-to-end parity fails:
    # each stage of the model judged alone on its native input (exporter/diagnose.py).
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "n_rows": self.n_rows,
            "sample": self.sample,
            "outputs": [asdict(o) for o in self.outputs],
            "stages": self.stages,
        }

    def format(self) -> str:
        head = f"parity on {self.n_rows} {self.sample} rows: {'passed' if self.passed else 'FAILED'}"
        stages = [
            f"  {'ok  ' if s['passed'] else 'FAIL'} {s['stage']}: "
            f"{s['compared']} max abs {s['max_abs_error']:.2e}"
            + (f", labels {s['label_agreement']:.1%} equal" if s.get("label_agreement") is not None else "")
            for s in self.stages
        ]
        return "\n".join([head, *("  " + o.line() for o in self.outputs), *stages])

    def failures(self) -> str:
        return "; ".join(o.line().removeprefix("FAIL ") for o in self.outputs if not o.passed)


def check_tolerances(tolerances: Mapping[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]]:
    """Tolerances as ``{output: (atol, rtol)}``, each finite and >= 0 — or InvalidOptionError.

    A NaN tolerance would make every comparison False, so every gate (export, variants, check,
    verify) would pass whatever the model computes; an infinite or negative one is no gate either.
    """
    checked: dict[str, tuple[float, float]] = {}
    for name, pair in (tolerances or {}).items():
        try:
            atol, rtol = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise InvalidOptionError(
                f"tolerance for {name!r} is {pair!r}: give (atol, rtol), two numbers >= 0"
            ) from None
        for label, value in (("atol", atol), ("rtol", rtol)):
            if not math.isfinite(value) or value < 0:
                raise InvalidOptionError(
                    f"{label}={value!r} for {name!r}: tolerances must be finite numbers >= 0 "
                    "(NaN or inf would let every comparison pass)"
                )
        checked[name] = (atol, rtol)
    return checked


def compare(
    expected: dict[str, np.ndarray],
    actual: dict[str, np.ndarray],
    tolerances: dict[str, tuple[float, float]] | None = None,
    sample: str = "user",
    min_label_agreement: float = 1.0,
    tie_atol: float | None = None,
) -> ParityReport:
    """``min_label_agreement``: the share of rows whose label must match (ties aside); 1.0 for
    float32 models, lower for reduced-precision variants, which are gated on accuracy.
    ``tie_atol``: how close the native top-two probabilities must be for a flip to count as a tie
    (default: the probability atol)."""
    tol = {**DEFAULT_TOLERANCES, **check_tolerances(tolerances)}
    proba = expected.get("probabilities")
    reports = [
        _compare_labels(
            actual[name],
            value,
            proba,
            tol["probabilities"][0] if tie_atol is None else tie_atol,
            min_label_agreement,
        )
        if name == "label"
        else _compare_numbers(name, actual[name], value, *tol[name])
        for name, value in expected.items()
    ]
    n_rows = len(next(iter(expected.values()))) if expected else 0
    return ParityReport(n_rows, sample, reports)


def _base(name: str, got: np.ndarray, want: np.ndarray) -> OutputReport:
    return OutputReport(name, True, list(want.shape), list(got.shape), str(want.dtype), str(got.dtype))


def _compare_numbers(name: str, got: np.ndarray, want: np.ndarray, atol: float, rtol: float) -> OutputReport:
    report = _base(name, got, want)
    report.atol, report.rtol = atol, rtol
    if got.shape != want.shape:
        report.passed, report.problem = False, f"shape {got.shape} != native {want.shape}"
        return report
    if want.size == 0:
        report.max_abs_error = report.max_rel_error = 0.0
        return report
    w, g = want.astype(np.float64), got.astype(np.float64)
    err = np.abs(g - w)
    nan_mismatch = np.isnan(w) != np.isnan(g)
    err = np.where(np.isnan(w) & np.isnan(g), 0.0, err)
    report.max_abs_error = float(np.nanmax(err)) if not nan_mismatch.any() else float("inf")
    report.max_rel_error = float(np.nanmax(err / np.maximum(np.abs(w), 1e-12)))
    bad = (err > atol + rtol * np.abs(w)) | nan_mismatch
    per_row = bad.reshape(len(bad), -1).any(axis=1)
    report.passed = not per_row.any()
    report.worst_rows = (
        np.argsort(-err.reshape(len(err), -1).max(axis=1))[:5].tolist() if not report.passed else []
    )
    return report


def _compare_labels(
    got: np.ndarray, want: np.ndarray, proba: np.ndarray | None, atol: float, min_agreement: float = 1.0
) -> OutputReport:
    report = _base("label", got, want)
    report.min_agreement, report.tie_atol = min_agreement, atol
    if got.shape != want.shape:
        report.passed, report.problem = False, f"shape {got.shape} != native {want.shape}"
        return report
    if want.size == 0:
        report.label_agreement, report.label_mismatches, report.label_ties = 1.0, 0, 0
        return report
    mismatch = got.astype(object) != want.astype(object)
    ties = np.zeros_like(mismatch)
    if proba is not None and proba.ndim == 2 and proba.shape[1] >= 2:
        top2 = np.sort(proba, axis=1)[:, -2:]
        ties = mismatch & (top2[:, 1] - top2[:, 0] < atol)
    report.label_agreement = float(1.0 - mismatch.mean())
    report.label_mismatches = int(mismatch.sum())
    report.label_ties = int(ties.sum())
    report.passed = float((mismatch & ~ties).mean()) <= 1.0 - min_agreement + 1e-12
    report.worst_rows = np.nonzero(mismatch & ~ties)[0][:5].tolist()
    return report
