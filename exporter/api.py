"""``exporter.export``: load → plan → convert → compose → passes → package → parity."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from exporter import compose, package, parity
from exporter.build import build
from exporter.convert.heads import Head, suggest_head
from exporter.diagnose import ROUNDING_ULPS, diagnose
from exporter.edge import Variant, add_ort_format, build_variants
from exporter.edge.target import CompatibilityError, downgrade
from exporter.errors import OptionError, ParityError
from exporter.load import unwrap
from exporter.nodes import Node
from exporter.passes import (
    DEFAULT_PASSES,
    OPTIMIZING,
    STRUCTURAL,
    PassResult,
    Verify,
    cpu_only_nodes,
    run_passes,
)
from exporter.plan import Plan, feeds_torch_float32, make_nodes, make_plan, untested_steps
from exporter.registration import load_builtin
from exporter.schema import (
    coerce_sample,
    infer_schema,
    peek_sample,
    read_sample,
    synthesize_sample,
    with_graph_shapes,
)
from runtime import integrity
from runtime._proto import graph_sha256
from runtime.compat import Target, target_for
from runtime.errors import InvalidOptionError
from runtime.metadata import Metadata
from runtime.parity import check_tolerances
from runtime.schema import Schema
from runtime.tensors import describe as describe_tensor
from runtime.verify import recorded_rules


@dataclass
class ExportResult:
    """The exported model, the plan it came from, and its parity report."""

    model: onnx.ModelProto
    report: parity.ParityReport
    plan: Plan
    passes: list[PassResult] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)  # int8 / fp16, each parity-checked
    ort: dict[str, bytes] = field(default_factory=dict)  # ORT format: "" (this model) or a variant suffix
    ort_config: bytes | None = None  # required_operators.config for a reduced onnxruntime build

    @property
    def metadata(self) -> dict[str, Any]:
        """The model's metadata document as JSON data (``package.read_metadata`` for the typed one)."""
        return package.read_metadata(self.model).to_dict()

    def save(self, path: str | Path) -> Path:
        """Write the model to ``path``, its variants next to it (``model.int8.onnx``, ``model.ort``,
        ``model.int8.ort``, ``required_operators.config``); return ``path``. All or nothing: every
        file goes to a temp file first, and a failure (disk full) leaves the old files as they were."""
        return package.save(self.model, path, self.files(path))

    def files(self, path: str | Path) -> dict[Path, bytes]:
        """What ``save(path)`` writes besides ``path`` itself."""
        path = Path(path)
        out = {variant_path(path, v.suffix, ".onnx"): v.model.SerializeToString() for v in self.variants}
        out.update({variant_path(path, suffix, ".ort"): data for suffix, data in self.ort.items()})
        if self.ort_config is not None:
            out[path.with_name("required_operators.config")] = self.ort_config
        return out

    def summary(self) -> str:
        stages = " → ".join(
            f"{p.node.kind}({', '.join(n for n, _ in p.node.steps)})" for p in self.plan.nodes
        )
        inputs = self.plan.schema
        shape = {
            "columns": f"{len(inputs.inputs)} column inputs",
            "text": "X: documents (strings)",
            "tensor": ", ".join(f"{s.name}: {describe_tensor(s)}" for s in inputs.inputs),
        }.get(inputs.layout, f"X[N, {inputs.inputs[0].width}]")
        outputs = ", ".join(o.name for o in self.model.graph.output)
        chosen = [
            f"{p.node.step_label}: exported {p.exported}"
            for p in self.plan.nodes
            if p.exported and p.exported != "the declared module" and p.tried
        ]  # the probe exported a composition, not the module as found
        untested = untested_steps(self.plan)
        note = []
        if untested:  # converted by skl2onnx's own table, outside the tested list
            names = ", ".join(untested)
            note = [
                f"note: hybridonnx has no test case for {names}: only this export's parity vouches for it"
            ]
        optimized = [f"  {p.line()}" for p in self.passes if p.name not in STRUCTURAL]
        cpu_only = ", ".join(f"{n} {op}" for op, n in cpu_only_nodes(self.model).items()) or "none"
        return "\n".join(
            [
                f"{self.plan.task}: {stages}",
                f"inputs: {shape}; outputs: {outputs}; {len(self.model.graph.node)} nodes, "
                f"{self.model.ByteSize() / 1024:.1f} KiB; CPU-only nodes: {cpu_only}",
                *(["passes:", *optimized] if optimized else []),
                self.report.format(),
                *(f"variant {v.line()}" for v in self.variants),
                *chosen,
                *note,
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.plan.task,
            "stages": self.metadata.get("stages"),
            "inputs": self.plan.schema.to_dict(),
            "outputs": [o.name for o in self.model.graph.output],
            "nodes": len(self.model.graph.node),
            "bytes": self.model.ByteSize(),
            "passes": [p.to_dict() for p in self.passes],
            "parity": self.report.to_dict(),
            "runtime_target": self.metadata.get("runtime_target"),
            "variants": [{**v.info, "parity": v.report.to_dict()} for v in self.variants],
            "ort_format": sorted(self.ort),
        }


def export(
    estimator: Any,
    sample: Any = None,
    *,
    tolerances: dict[str, tuple[float, float]] | None = None,
    force: bool = False,
    passes: Sequence[str] = DEFAULT_PASSES,
    optimize: bool = True,
    dtype: str = "float32",
    min_runtime: str | None = None,
    quantize: str | None = None,
    fp16: bool = False,
    ort_format: bool = False,
    sign_key: bytes | str | None = None,
) -> ExportResult:
    """Compile a fitted Pipeline / search CV / estimator into one ONNX model and check its parity.

    ``sample``: rows to probe and check with (array, DataFrame, or a .npy/.csv path); synthesised
    from the input schema when None. ``tolerances``: ``{output: (atol, rtol)}`` overriding
    ``parity.DEFAULT_TOLERANCES``. ``force``: return the model even when parity fails (its
    metadata records the failure); otherwise ParityError is raised. ``dtype``: numeric inputs and
    sklearn stages in float32 (default) or float64 (exact tree thresholds; slower). ``optimize``:
    run the optimizing passes (lowering, affine folding, cleanup), each kept only if parity holds.

    Edge options (README "Edge deployment"): ``min_runtime="1.16"`` rewrites the model (and its
    variants) for that onnxruntime release; ``quantize="dynamic"|"static"`` adds an int8 variant,
    ``fp16=True`` a float16 one (GPU targets), ``ort_format=True`` ORT-format copies of every model
    and a ``required_operators.config``. Every variant passes its own parity check or raises.

    Every model is sealed last (content hash over graph, weights and metadata, checked by
    ``runtime.load``); ``sign_key`` adds an HMAC-SHA256 signature that ``runtime.load(key=)``
    demands (README "Integrity").
    """
    tolerances = _checked_tolerances(tolerances)  # a NaN tolerance would pass every gate
    key = _signing_key(sign_key)
    target = _runtime_target(min_runtime)
    plan, origin = plan_export(estimator, sample, dtype)
    built = build(plan)
    # Tensor inputs: the dims the graph left dynamic (a sequence length) take any size at run time.
    plan = dataclasses.replace(plan, schema=with_graph_shapes(plan.schema, built.model))
    if not optimize:
        passes = [p for p in passes if p not in OPTIMIZING]
    draft = package.describe(plan, built.seams, built.model)  # the one metadata document
    verify = _verifier(plan, draft, tolerances, origin)
    model, pass_results = run_passes(compose.copy_model(built.model), passes, verify=verify)
    if target is not None:
        model = downgrade(model, target)
    report = _certify(model, plan, draft, pass_results, target, tolerances, origin, key)
    result = ExportResult(model, report, plan, pass_results)
    if not report.passed and not force:
        raise ParityError(_parity_message(plan, report), report)
    if quantize is not None or fp16:
        base = None
        if quantize is not None and "fold_affine" in passes:  # int8 wants the unfolded weights
            base, _ = run_passes(built.model, [p for p in passes if p != "fold_affine"], verify=verify)
            base = downgrade(base, target) if target is not None else base
        result.variants = build_variants(
            model, plan, target, quantize_mode=quantize, fp16=fp16, quantization_base=base, sign_key=key
        )
        _check_variants(result.variants, force)
    if ort_format:
        models = {"": model, **{v.suffix: v.model for v in result.variants}}
        result.ort, result.ort_config = add_ort_format(models)
        _check_ort(result, plan, tolerances, origin, force)
    return result


def plan_export(estimator: Any, sample: Any, dtype: str) -> tuple[Plan, str]:
    """The probed plan of ``estimator`` on the sample rows (the user's, or synthesised), and where
    the rows came from ("user" / "synthetic"): the first step of every export."""
    load_builtin()
    estimator = unwrap(estimator)
    nodes = make_nodes(estimator)  # first: unsupported or unfitted steps fail before anything else
    peek = peek_sample(sample) if isinstance(sample, (str, Path)) else sample  # widths and dtypes
    schema = infer_schema(estimator, peek, dtype)
    if isinstance(sample, (str, Path)):
        rows, origin = read_sample(sample, schema), "user"
    elif sample is not None:
        rows, origin = coerce_sample(sample, schema), "user"
    else:
        rows, origin = synthesize_sample(estimator, schema), "synthetic"
    return make_plan(estimator, nodes, schema, _native_dtype(rows, nodes, schema, dtype)), origin


def _certify(
    model: onnx.ModelProto,
    plan: Plan,
    draft: Metadata,
    pass_results: list[PassResult],
    target: Target | None,
    tolerances: dict[str, tuple[float, float]] | None,
    origin: str,
    key: bytes | None,
) -> parity.ParityReport:
    """Record what the passes did, check parity on the final graph (diagnosing each node when it
    fails), embed the report and the golden rows, and seal: the model's last changes."""
    meta = draft.replace(
        **package.graph_facts(model),
        stages=package.surviving_stages(draft, model),
        runtime_target=target.to_dict() if target is not None else None,
        passes=[p.to_dict() for p in pass_results],
        cpu_only_nodes=cpu_only_nodes(model),  # what keeps a GPU session copying to the host
        graph_sha256=graph_sha256(model.SerializeToString()),  # what parity is about to vouch for
    )
    package.attach(model, meta)
    report = check_parity(model, plan, tolerances, origin)
    if not report.passed:  # say where: the first node whose own graph diverges from its native step
        records = [s.to_dict() for s in meta.stages]
        report.stages = [r.to_dict() for r in diagnose(model, plan, plan.expected, records)]
    meta = meta.replace(parity=report.to_dict(), golden=package.golden_rows(plan, plan.expected))
    package.seal(package.attach(model, meta), key)
    return report


def _check_variants(variants: list[Variant], force: bool) -> None:
    for variant in variants:
        if not variant.report.passed and not force:
            raise ParityError(
                f"the {variant.name} variant does not match the native pipeline closely enough: "
                f"{variant.report.failures()}; drop the option, or pass --force to write it anyway",
                variant.report,
            )


def _checked_tolerances(
    tolerances: dict[str, tuple[float, float]] | None,
) -> dict[str, tuple[float, float]] | None:
    try:
        return check_tolerances(tolerances) if tolerances is not None else None
    except InvalidOptionError as exc:
        raise OptionError(str(exc)) from None


def _signing_key(sign_key: bytes | str | None) -> bytes | None:
    try:
        return integrity.as_key(sign_key)
    except InvalidOptionError as exc:
        raise OptionError(f"sign_key: {exc}") from None


def _runtime_target(min_runtime: str | None) -> Target | None:
    if min_runtime is None:
        return None
    try:
        return target_for(min_runtime)
    except ValueError as exc:
        raise CompatibilityError(f"--min-runtime: {exc}") from None


def _check_ort(
    result: ExportResult,
    plan: Plan,
    tolerances: dict[str, tuple[float, float]] | None,
    origin: str,
    force: bool,
) -> None:
    """Each .ort file against the native pipeline, with the rules of the model it was made from."""
    rules = {
        "": (tolerances or {}, 1.0, None),
        **{v.suffix: recorded_rules(v.report.to_dict()) for v in result.variants},
    }
    for suffix, data in result.ort.items():
        actual = parity.model_outputs(data, plan.sample, list(plan.expected))
        tol, agreement, tie_atol = rules[suffix]
        report = parity.compare(
            plan.expected, actual, tol, origin, min_label_agreement=agreement, tie_atol=tie_atol
        )
        if not report.passed and not force:
            name = f"model{'.' + suffix if suffix else ''}.ort"
            raise ParityError(f"the ORT-format {name} does not match: {report.failures()}", report)


def check_parity(
    model: onnx.ModelProto, plan: Plan, tolerances: dict[str, tuple[float, float]] | None, origin: str
) -> parity.ParityReport:
    return _run_parity(model, plan, tolerances, origin)[0]


def _run_parity(
    model: onnx.ModelProto, plan: Plan, tolerances: dict[str, tuple[float, float]] | None, origin: str
) -> tuple[parity.ParityReport, dict[str, np.ndarray]]:
    actual = parity.model_outputs(model.SerializeToString(), plan.sample, list(plan.expected))
    return parity.compare(plan.expected, actual, tolerances, origin), actual


def _verifier(
    plan: Plan, draft: Metadata, tolerances: dict[str, tuple[float, float]] | None, origin: str
) -> Verify:
    """Parity of a candidate graph, for the optimizing passes: (passed, worst error, outputs).
    Passes keep the public inputs and outputs, so the draft document describes every candidate."""

    def verify(model: onnx.ModelProto) -> tuple[bool, float | None, dict[str, Any]]:
        package.attach(model, draft)
        report, actual = _run_parity(model, plan, tolerances, origin)
        errors = [o.max_abs_error for o in report.outputs if o.max_abs_error is not None]
        return report.passed, max(errors) if errors else None, actual

    return verify


def variant_path(path: Path, suffix: str, extension: str) -> Path:
    """model.onnx + ("int8", ".onnx") → model.int8.onnx; ("", ".ort") → model.ort."""
    return path.with_name(path.stem + (f".{suffix}" if suffix else "") + extension)


def _native_dtype(rows: Any, nodes: tuple[Node, ...], schema: Schema, dtype: str) -> Any:
    """Feed the native path float32 when a torch module is in it: torch wrappers are fit on float32
    (integer token ids stay integers)."""
    torch = feeds_torch_float32(nodes)
    kinds = "f" if schema.layout == "tensor" else "biuf"
    if isinstance(rows, np.ndarray) and rows.dtype.kind in kinds and torch and dtype == "float32":
        return rows.astype(np.float32)
    return rows


_CLI_HINT = " (CLI: put that call in a module and pass --plugin MODULE)"


def _parity_message(plan: Plan, report: parity.ParityReport) -> str:
    """One line: what failed, where (the first diverging node, judged on its own native input),
    how it differs (shape, scale, values), and the remedy that fits. "Rounding" is said only when
    the errors are within a few float32 ulps of the values involved."""
    message = f"the exported model does not match the native pipeline: {report.failures()}"
    diverging = next((s for s in report.stages if not s["passed"]), None)
    rounding = _within_rounding(plan, report)
    if diverging is not None:
        where, what, how = diverging["stage"], diverging["compared"], diverging.get("differs")
        message += f"; first diverging stage: {where} ({what} max abs {diverging['max_abs_error']:.2e}"
        message += f": {how})" if how else ")"
    elif report.stages and rounding:
        message += (
            "; every stage matches on its own input, so the error accumulates across stages "
            "(float32 rounding amplified downstream)"
        )
    elif report.stages:
        message += "; every stage matches on its own input, yet the whole does not"
    last = plan.last
    head = last.head
    if head is not None and head.task == "classifier" and last.module_out is not None:
        native_proba = plan.expected.get("probabilities")
        suggestion = suggest_head(head, last.module_out, native_proba, np.asarray(last.native_out))
        cls = type(last.node.step).__name__
        if suggestion is not None and suggestion != head.declared:
            return (
                f"{message}. The estimator's own predict/predict_proba match {suggestion!r}: declare it with "
                f"exporter.register_wrapper({cls}, head=exporter.{suggestion!r})"
                f"{_CLI_HINT}"
            )
        return (
            f"{message}. The head used was {head.declared!r}; declare the right one with "
            f"exporter.register_wrapper({cls}, head=exporter.Head(...)) (see README 'Heads')"
            f"{_CLI_HINT}"
        )
    remedy = _remedy(plan, diverging, rounding)
    return f"{message}.{remedy} pass --force to write it anyway (the failure is recorded in its metadata)"


def _within_rounding(plan: Plan, report: parity.ParityReport) -> bool:
    """Whether every failing numeric output is off by a few float32 ulps of the native values."""
    failed = [o for o in report.outputs if not o.passed and o.max_abs_error is not None]
    if not failed:
        return False
    for out in failed:
        native = np.abs(np.asarray(plan.expected[out.name], dtype=np.float64))
        scale = float(native.max()) if native.size else 0.0
        if (out.max_abs_error or 0.0) > ROUNDING_ULPS * float(np.spacing(np.float32(scale))):
            return False
    return True


def _remedy(plan: Plan, diverging: dict[str, Any] | None, rounding: bool) -> str:
    sklearn = any(p.node.kind == "sklearn" for p in plan.nodes) and plan.dtype == "float32"
    how = (diverging or {}).get("differs") or ""
    if rounding or how == "rounding":
        return (
            " the errors are float32 rounding: pass a looser --atol/--rtol, or --dtype float64;"
            if sklearn
            else (" the errors are float32 rounding: pass a looser --atol/--rtol;")
        )
    if how.startswith(("shape", "scale", "offset")):
        return (
            " the step computes something its graph does not (a reshape, a rescaling outside the "
            "module): declare what to export with exporter.register_wrapper(Cls, module=...) "
            "(README 'Torch-backed steps');"
        )
    if sklearn and diverging is not None and diverging["stage"].startswith("sklearn"):
        # Ill-conditioned sklearn steps (e.g. PowerTransformer on near-constant features) lose more
        # than rounding in float32; the property tests found such compositions.
        return (
            " that node computes in float32 here: if it is ill-conditioned, --dtype float64 computes "
            "it in double;"
        )
    return ""


__all__ = ["ExportResult", "Head", "export"]
