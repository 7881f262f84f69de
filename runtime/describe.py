"""What ``python -m runtime info`` prints: the model's contract, where it runs, and its parity."""

from __future__ import annotations

from typing import Any

from runtime.integrity import Integrity
from runtime.model import Model


def describe(model: Model) -> dict[str, Any]:
    meta = model.metadata
    info: dict[str, Any] = {
        "source": model.source,
        "bytes": len(model._data),
        "task": model.task,
        "schema": model.schema.to_dict(),
        "outputs": meta.get("outputs") or {name: {} for name in model.output_names},
        "providers": model.providers,
        "precision": model.precision,
        "ir_version": model.header.ir_version,
        "opsets": model.header.opsets,
        "graph_sha256": model.graph_sha256,
        "graph_unchanged": model.graph_unchanged,
        "integrity": model.integrity.to_dict() if model.integrity else None,
    }
    if model.task == "classifier":
        info["classes"] = meta.get("classes")
    for key in ("stages", "cpu_only_nodes", "runtime_target", "variant", "versions", "created"):
        if key in meta:
            info[key] = meta[key]
    if "parity" in meta:
        info["parity"] = meta["parity"]
    return info


def format_info(info: dict[str, Any]) -> str:
    schema = info["schema"]
    if schema["layout"] == "columns":
        inputs = ", ".join(f"{i['name']}:{i['dtype']}" for i in schema["inputs"])
    else:
        spec = schema["inputs"][0]
        inputs = f"{spec['name']}[N, {spec['width']}] {spec['dtype']}"
    outputs = ", ".join(
        f"{name}{'' if not spec else ' ' + spec['dtype'] + str(spec['shape']).replace('None', 'N')}"
        for name, spec in info["outputs"].items()
    )
    lines = [
        f"model:      {info['source']} ({info['bytes'] / 1024:.1f} KiB, IR {info['ir_version']}, "
        + ", ".join(f"{d} {v}" for d, v in sorted(info["opsets"].items()))
        + ")",
        f"task:       {info['task'] or 'unknown (not written by exporter)'}",
        f"inputs:     {inputs}",
        f"outputs:    {outputs}",
    ]
    if "classes" in info:
        lines.append(f"classes:    {info['classes']}")
    if "stages" in info:
        stages = " → ".join(f"{s['kind']}({', '.join(s['steps'])})" for s in info["stages"])
        lines.append(f"stages:     {stages}")
    lines.append(f"providers:  {', '.join(info['providers'])} (precision {info['precision']})")
    target = info.get("runtime_target")
    if target:
        lines.append(
            f"target:     onnxruntime >= {target['onnxruntime']} (opset {target['opset']}, "
            f"ai.onnx.ml {target['ml_opset']}, IR {target['ir_version']})"
        )
    variant = info.get("variant")
    if variant:
        acc = variant["accuracy"]
        labels = (
            f", labels {acc['label_agreement']:.2%} as native"
            if acc.get("label_agreement") is not None
            else ""
        )
        share = variant["bytes"] / variant["base_bytes"]
        lines.append(
            f"variant:    {variant['name']}: {share:.0%} of the float32 size"
            f"{labels}, max abs error {acc['max_abs_error']:.1e} (export sample)"
        )
    if "cpu_only_nodes" in info:  # nodes a GPU provider hands back to the CPU (a copy per batch)
        cpu_only = ", ".join(f"{n} {op}" for op, n in info["cpu_only_nodes"].items())
        lines.append(f"CPU-only:   {cpu_only or 'none: the whole graph can run on a GPU provider'}")
    graph_state = {
        True: "the graph checked at export",
        False: "CHANGED since export",
        None: "no hash recorded",
    }
    if info["graph_sha256"] is None:
        lines.append("graph:      ORT format: no graph hash (verify checks the golden rows)")
    else:
        state = graph_state[info["graph_unchanged"]]
        lines.append(f"graph:      sha256 {info['graph_sha256'][:16]}… — {state}")
    if info.get("integrity"):
        lines.append(f"content:    {Integrity(**info['integrity']).line()}")
    parity = info.get("parity")
    if parity:
        verdict = "passed" if parity["passed"] else "FAILED"
        lines.append(f"parity:     {verdict} at export on {parity['n_rows']} {parity['sample']} rows")
        for o in parity["outputs"]:
            if o.get("label_agreement") is not None:
                lines.append(f"            {o['name']}: {o['label_agreement']:.2%} agreement")
            elif o.get("max_abs_error") is not None:
                lines.append(f"            {o['name']}: max abs error {o['max_abs_error']:.2e}")
    if "versions" in info:
        versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        lines.append(f"exported with: {versions}")
    return "\n".join(lines)
