"""Edge variants of an exported model: int8, fp16, ORT format — each parity-gated before it exists.

A variant is built from the final float32 model (optimised, and rewritten for ``--min-runtime``
when asked), then run through ``runtime`` on the export sample and compared with the native
pipeline with the variant's own tolerances (``VARIANT_RULES``). One that fails is not written
(``force`` keeps it, with the failure in its metadata). Each variant carries the full metadata of
the base model plus a ``variant`` record (what it is, sizes, accuracy against native) and golden
rows, so ``runtime verify`` works on every file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from exporter import package, parity
from exporter.compose import copy_model
from exporter.edge.fp16 import to_fp16
from exporter.edge.ort_format import to_ort
from exporter.edge.quantize import MODES, QuantizationError, quantize_int8
from exporter.edge.target import CompatibilityError, downgrade
from exporter.errors import ConversionError
from exporter.passes import cpu_only_nodes
from runtime._proto import graph_sha256
from runtime.compat import Target
from runtime.metadata import Metadata

if TYPE_CHECKING:
    from exporter.plan import Plan


@dataclass(frozen=True)
class Rules:
    """How close a variant must stay to the native pipeline. Numeric outputs: ``atol`` is a share
    of the native output's spread (its standard deviation; probabilities: 1), ``rtol`` as usual."""

    atol_share: float
    rtol: float
    min_label_agreement: float


# int8 is gated on what it is for — the decisions: ≥ 99% of sample labels, and no probability
# (or output, in standard deviations) off by more than 0.3; the measured errors are recorded.
VARIANT_RULES: dict[str, Rules] = {
    "int8": Rules(atol_share=0.3, rtol=0.0, min_label_agreement=0.99),
    "fp16": Rules(atol_share=5e-3, rtol=1e-2, min_label_agreement=0.99),
}


TIE_ATOL = 1e-4


@dataclass
class Variant:
    name: str  # "int8-dynamic", "int8-static", "fp16"; ORT format adds ".ort" files to each model
    suffix: str  # file name part: model.<suffix>.onnx
    model: onnx.ModelProto
    report: parity.ParityReport
    ort: bytes | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        acc = self.info["accuracy"]
        agreement = f"labels {acc['label_agreement']:.2%}, " if acc.get("label_agreement") is not None else ""
        size, base = self.info["bytes"], self.info["base_bytes"]
        return (
            f"{self.name}: {size / 1024:.1f} KiB ({size / base:.0%} of float32); "
            f"{agreement}max abs error {acc['max_abs_error']:.1e}; parity "
            f"{'passed' if self.report.passed else 'FAILED'}"
        )


def build_variants(
    model: onnx.ModelProto,
    plan: Plan,
    target: Target | None,
    *,
    quantize_mode: str | None = None,
    fp16: bool = False,
    quantization_base: onnx.ModelProto | None = None,
    sign_key: bytes | None = None,
) -> list[Variant]:
    """int8 / fp16 variants of the final model (with its metadata), each with its parity report.

    ``quantization_base``: the model to quantise, when not ``model`` itself — the exporter passes
    one optimised without affine folding: folding a scaler into a Linear spreads the weights'
    columns over a wide range (1/std of each input), which int8 per-channel scales (one per output)
    cannot follow; measured on digits, 92% label agreement folded vs 99.7% unfolded."""
    if quantize_mode is not None and quantize_mode not in MODES:
        raise QuantizationError(f"--quantize {quantize_mode!r}: use one of {', '.join(MODES)}")
    meta = package.read_metadata(model)
    variants = []
    if quantize_mode is not None:
        calibration = [_feeds(plan)]
        int8 = quantize_int8(quantization_base or model, meta, quantize_mode, calibration)
        variants.append(
            _finish(
                f"int8-{quantize_mode}", "int8", int8, model, plan, target, VARIANT_RULES["int8"], sign_key
            )
        )
    if fp16:
        fp16_model = to_fp16(model)
        variants.append(
            _finish("fp16", "fp16", fp16_model, model, plan, target, VARIANT_RULES["fp16"], sign_key)
        )
    return variants


def add_ort_format(models: dict[str, onnx.ModelProto]) -> tuple[dict[str, bytes], bytes]:
    """ORT-format copies of the given models (keyed by file suffix) and one operator config.
    The ONNX graph hash does not apply to an ``.ort`` file: its metadata records none."""
    prepared = {}
    for name, model in models.items():
        meta = package.read_metadata(model).replace(graph_sha256=None, container="ort")
        prepared[name] = package.attach(copy_model(model), meta)
    return to_ort(prepared)


def _finish(
    name: str,
    suffix: str,
    variant: onnx.ModelProto,
    base: onnx.ModelProto,
    plan: Plan,
    target: Target | None,
    rules: Rules,
    sign_key: bytes | None,
) -> Variant:
    if target is not None:  # quantisers and converters may raise opsets or the IR version
        variant = downgrade(variant, target)
    try:
        onnx.checker.check_model(variant, full_check=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConversionError(f"the {name} variant is not valid ONNX: {first}") from exc
    meta = package.read_metadata(base)
    tolerances = {
        out: (rules.atol_share * _spread(out, value), rules.rtol)
        for out, value in plan.expected.items()
        if out != "label"
    }
    report, actual = _parity(variant, meta, plan, tolerances, rules.min_label_agreement)
    rows = _settled_rows(variant, meta, plan, _agreeing_rows(plan, actual)[: package.VARIANT_GOLDEN_ROWS])
    meta = meta.replace(
        **package.graph_facts(variant),
        graph_sha256=graph_sha256(variant.SerializeToString()),
        parity=report.to_dict(),
        golden=package.golden_rows(plan, plan.expected, n=package.VARIANT_GOLDEN_ROWS, rows=rows),
        cpu_only_nodes=cpu_only_nodes(variant),
    )
    labels = next((o for o in report.outputs if o.name == "label"), None)
    numeric = [o.max_abs_error for o in report.outputs if o.max_abs_error is not None]
    info = {
        "name": name,
        "base_graph_sha256": package.read_metadata(base).graph_sha256,
        "base_bytes": base.ByteSize(),
        "bytes": variant.ByteSize(),
        "accuracy": {
            "label_agreement": labels.label_agreement if labels else None,
            "max_abs_error": max(numeric) if numeric else 0.0,
            "max_probability_error": next(
                (o.max_abs_error for o in report.outputs if o.name == "probabilities"), None
            ),
        },
    }
    for _ in range(3):  # the size, metadata and seal included, is part of the metadata: settle it
        package.seal(package.attach(variant, meta.replace(variant=dict(info))), sign_key)
        if info["bytes"] == variant.ByteSize():
            break
        info["bytes"] = variant.ByteSize()
    return Variant(name, suffix, variant, report, info=info)


def _parity(
    model: onnx.ModelProto,
    meta: Metadata,
    plan: Plan,
    tolerances: dict[str, tuple[float, float]],
    min_label_agreement: float,
) -> tuple[parity.ParityReport, dict[str, np.ndarray]]:
    candidate = package.attach(copy_model(model), meta.replace(graph_sha256=None))
    actual = parity.model_outputs(candidate.SerializeToString(), plan.sample, list(plan.expected))
    # Label ties: rows whose native top-two probabilities are within float32 noise, not within the
    # variant's loose probability tolerance (that would forgive real flips).
    report = parity.compare(
        plan.expected, actual, tolerances, "user", min_label_agreement=min_label_agreement, tie_atol=TIE_ATOL
    )
    return report, actual


def _spread(name: str, value: np.ndarray) -> float:
    if name == "probabilities":
        return 1.0
    std = float(np.std(np.asarray(value, dtype=np.float64)))
    return std if std > 0 else 1.0


def _settled_rows(variant: onnx.ModelProto, meta: Metadata, plan: Plan, rows: list[int]) -> list[int]:
    """Golden rows on which the variant agrees with native *when replayed as one batch*, as
    `runtime verify` does: dynamic int8 quantises activations with the batch's own range, so a row
    that agreed within the whole sample can flip within 32 rows (measured on digits)."""
    want = plan.expected.get("label")
    if want is None or not rows:
        return rows
    candidate = package.attach(copy_model(variant), meta.replace(graph_sha256=None)).SerializeToString()
    for _ in range(3):
        sample: Any = plan.sample
        subset = sample.iloc[rows] if hasattr(sample, "iloc") else np.asarray(sample)[rows]
        got = parity.model_outputs(candidate, subset, ["label"])["label"]
        keep = [r for r, g in zip(rows, got, strict=True) if g == want[r]]
        if keep == rows:
            break
        rows = keep
    return rows


def _agreeing_rows(plan: Plan, actual: dict[str, np.ndarray]) -> list[int]:
    """Golden rows for a variant: sample rows where it gave the native label (all rows when there
    are no labels); verify then checks the device reproduces what the export vouched for."""
    want, got = plan.expected.get("label"), actual.get("label")
    if want is None or got is None:
        return list(range(len(next(iter(plan.expected.values())))))
    return [int(i) for i in np.nonzero(np.asarray(got).astype(object) == np.asarray(want).astype(object))[0]]


def _feeds(plan: Plan) -> dict[str, np.ndarray]:
    from runtime.inputs import prepare_feeds

    feeds, _ = prepare_feeds(plan.sample, plan.schema)
    return {k: np.asarray(v) for k, v in feeds.items()}


__all__ = [
    "CompatibilityError",
    "QuantizationError",
    "Variant",
    "add_ort_format",
    "build_variants",
    "downgrade",
]
