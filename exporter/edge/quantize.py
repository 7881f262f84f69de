"""int8 quantisation of the network part, with onnxruntime.quantization.

Only MatMul/Gemm nodes of torch stages are quantised (their names carry the stage's prefix, and a
fold keeps the Linear's name): ``ai.onnx.ml`` ops and sklearn-only arithmetic stay float, where
int8 would buy nothing and cost accuracy. Every quantiser choice is passed explicitly: defaults
of onnxruntime.quantization have changed between releases.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from exporter.compose import copy_model
from exporter.convert.nested import LEAF_NODE_MARK
from exporter.errors import ExportError
from exporter.passes.graph import remove_unused
from runtime.metadata import Metadata

QUANTIZABLE = ("MatMul", "Gemm")
MODES = ("dynamic", "static")


class QuantizationError(ExportError):
    exit_code = 2


def network_nodes(model: onnx.ModelProto, meta: Metadata) -> list[str]:
    """Names of the MatMul/Gemm nodes that belong to a torch node, or to a torch leaf nested in a
    sklearn node's containers (their names carry ``LEAF_NODE_MARK`` after the node's prefix)."""
    prefixes = tuple(s.nodes for s in meta.stages if s.kind == "torch" and s.nodes)
    nested = tuple(s.nodes + LEAF_NODE_MARK for s in meta.stages if s.leaves and s.nodes)
    return [
        n.name
        for n in model.graph.node
        if n.op_type in QUANTIZABLE and n.name.startswith((*prefixes, *nested)) and (prefixes or nested)
    ]


def quantize_int8(
    model: onnx.ModelProto, meta: Metadata, mode: str, calibration: list[dict[str, np.ndarray]]
) -> onnx.ModelProto:
    """``mode``: "dynamic" (weights int8; activations quantised per batch at run time) or
    "static" (QDQ, int8 weights and activations, ranges calibrated on ``calibration`` feeds)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    if mode not in MODES:
        raise QuantizationError(f"--quantize {mode!r}: use one of {', '.join(MODES)}")
    nodes = network_nodes(model, meta)
    if not nodes:
        raise QuantizationError(
            "nothing to quantize: int8 applies to the MatMul/Gemm nodes of torch stages and this model "
            "has none (a pure-sklearn pipeline stays float)"
        )
    if mode == "dynamic":  # the dynamic quantiser handles MatMul only: split Gemm, keeping names
        model = _gemm_to_matmul(model, set(nodes))
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        onnx.save(model, source)
        common: dict[str, Any] = {
            "op_types_to_quantize": list(QUANTIZABLE),
            "nodes_to_quantize": nodes,
            # One scale per output column: a layer whose columns differ in range (e.g. after
            # standardised inputs) loses them to the widest under one per-tensor scale.
            "per_channel": True,
            "reduce_range": False,
            "weight_type": QuantType.QInt8,
            "use_external_data_format": False,
        }
        if mode == "dynamic":
            quantize_dynamic(source, target, extra_options={"MatMulConstBOnly": True}, **common)
        else:

            class Rows(CalibrationDataReader):  # the export sample, one batch
                def __init__(self) -> None:
                    self._feeds = iter(calibration)

                def get_next(self) -> dict[str, np.ndarray] | None:
                    return next(self._feeds, None)

            quantize_static(
                source,
                target,
                Rows(),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
                **common,
            )
        return onnx.load(str(target))


def _gemm_to_matmul(model: onnx.ModelProto, names: set[str]) -> onnx.ModelProto:
    """Gemm(x, W, b) with constant W → MatMul(x, W') + Add(b), the MatMul keeping the Gemm's name."""
    from onnx import helper, numpy_helper

    model = copy_model(model)
    inits = {i.name: i for i in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (
            node.name not in names
            or node.op_type != "Gemm"
            or node.input[1] not in inits
            or attrs.get("transA", 0)
            or attrs.get("alpha", 1.0) != 1.0
            or attrs.get("beta", 1.0) != 1.0
        ):
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])
        weight = weight.T if attrs.get("transB", 0) else weight
        w_name = f"{node.input[1]}__matmul"
        model.graph.initializer.append(numpy_helper.from_array(weight.copy(), w_name))
        if len(node.input) > 2 and node.input[2]:
            product = f"{node.output[0]}__product"
            nodes.append(helper.make_node("MatMul", [node.input[0], w_name], [product], name=node.name))
            nodes.append(
                helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_bias")
            )
        else:
            nodes.append(
                helper.make_node("MatMul", [node.input[0], w_name], [node.output[0]], name=node.name)
            )
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    remove_unused(model)  # the Gemm's transposed weight
    return model
