"""float16 weights and arithmetic for GPU targets; inputs and outputs stay float32.

onnxruntime's CPU provider has float16 kernels for few ops (it may run this model slowly, or not
at all for other graphs): the variant is for CUDA/TensorRT providers. ``ai.onnx.ml`` ops and the
ops onnxruntime's converter knows to be unsafe in float16 stay float32 (casts are inserted).
"""

from __future__ import annotations

import onnx

from exporter.compose import copy_model


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    blocked = set(DEFAULT_OP_BLOCK_LIST) | {n.op_type for n in model.graph.node if n.domain == "ai.onnx.ml"}
    # ArgMax picks the label: keep it on the float32 probabilities, so ties break as in float32.
    blocked |= {"ArgMax", "Softmax"}
    converted = convert_float_to_float16(
        copy_model(model), keep_io_types=True, op_block_list=sorted(blocked), disable_shape_infer=False
    )
    from onnxruntime.transformers.onnx_model import OnnxModel

    # The converter appends its input/output Casts at the end: the checker wants topological order.
    wrapped = OnnxModel(converted)
    wrapped.topological_sort()
    return wrapped.model
