"""``--min-runtime X.Y``: rewrite a model so that onnxruntime X.Y can load it.

The limits come from ``runtime.compat`` (the same table the runtime checks at load). The default
domain goes down with ``onnx.version_converter``; ``ai.onnx.ml`` nodes are checked against the
older schema (same op, no attribute the older version lacks) and re-stamped; the IR version is
lowered last. An op with no older equivalent stops the export with its name, never a model that
fails on the device.
"""

from __future__ import annotations

import re

import onnx
from onnx import defs, version_converter

from exporter.errors import ExportError
from runtime.compat import Target

ML = "ai.onnx.ml"


class CompatibilityError(ExportError):
    exit_code = 2


def downgrade(model: onnx.ModelProto, target: Target) -> onnx.ModelProto:
    where = (
        f"onnxruntime {target.onnxruntime} "
        f"(opset {target.opset}, ai.onnx.ml {target.ml_opset}, IR {target.ir_version})"
    )
    opsets = {o.domain or "": o.version for o in model.opset_import}
    # com.microsoft: onnxruntime's contrib ops (the Tokenizer of text pipelines), in every release
    unknown = sorted(set(opsets) - {"", "ai.onnx", ML, "com.microsoft"})
    if unknown:
        raise CompatibilityError(f"cannot build for {where}: the model uses custom domains {unknown}")
    if opsets.get("", 0) > target.opset:
        model = _convert_default_domain(model, target.opset, where)
    if opsets.get(ML, 0) > target.ml_opset:
        _restamp_ml(model, target.ml_opset, where)
    if model.functions and target.ir_version < 8:  # model-local functions arrived with IR 8
        from onnx import inliner

        model = inliner.inline_local_functions(model)
    model.ir_version = min(model.ir_version, target.ir_version)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0]
        raise CompatibilityError(f"the model rewritten for {where} is not valid: {first}") from exc
    return model


def _convert_default_domain(model: onnx.ModelProto, opset: int, where: str) -> onnx.ModelProto:
    try:
        converted = version_converter.convert_version(model, opset)
    except Exception as exc:
        found = re.search(r"No Adapter (?:From|To) Version \$?(\d+) for (\w+)", str(exc))
        what = (
            f"{found.group(2)} (opset {found.group(1)}) has no equivalent onnx can convert it to"
            if found
            else str(exc).strip().splitlines()[-1]
        )
        raise CompatibilityError(
            f"cannot build for {where}: {what}; target a newer onnxruntime (--min-runtime)"
        ) from None
    # The converter keeps the other domains' imports as they were (and may repeat them).
    versions = {o.domain: o.version for o in converted.opset_import}
    del converted.opset_import[:]
    converted.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in sorted(versions.items()))
    return converted


def _restamp_ml(model: onnx.ModelProto, version: int, where: str) -> None:
    for node in model.graph.node:
        if node.domain != ML:
            continue
        try:
            schema = defs.get_schema(node.op_type, version, ML)
        except defs.SchemaError:
            raise CompatibilityError(
                f"cannot build for {where}: ai.onnx.ml {node.op_type} does not exist in ai.onnx.ml {version}"
            ) from None
        extra = sorted({a.name for a in node.attribute} - set(schema.attributes))
        if extra:
            raise CompatibilityError(
                f"cannot build for {where}: ai.onnx.ml {node.op_type} uses {extra}, which ai.onnx.ml "
                f"{version} lacks; target a newer onnxruntime (--min-runtime)"
            )
    for entry in model.opset_import:
        if entry.domain == ML:
            entry.version = version
