"""``python -m exporter PIPELINE [-o OUT.onnx] [--sample FILE] ...``: parse arguments, call the API.

Exit codes: 0 written, 1 parity failure (nothing written unless --force), 2 bad input (file,
options, unsupported or unfitted step).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from exporter.errors import ExportError, ParityError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exporter",
        description="Compile a fitted scikit-learn + PyTorch pipeline into one verified ONNX model.",
    )
    parser.add_argument(
        "pipeline", type=Path, help="fitted Pipeline / search CV / estimator (.pkl, .joblib, .skops)"
    )
    parser.add_argument("-o", "--output", type=Path, help="model path (default: PIPELINE with suffix .onnx)")
    parser.add_argument("--sample", help="rows to check parity on (.npy or .csv); synthesised when absent")
    parser.add_argument("--atol", type=float, help="absolute tolerance for every numeric output")
    parser.add_argument("--rtol", type=float, help="relative tolerance for every numeric output")
    parser.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default="float32",
        help="numeric inputs and sklearn stages in float64: exact tree thresholds, slower (default float32)",
    )
    parser.add_argument("--force", action="store_true", help="write the model even when parity fails")
    parser.add_argument(
        "--no-optimize",
        dest="optimize",
        action="store_false",
        help="skip the optimizing passes (lowering, affine folding, cleanup): the graph as merged",
    )
    edge = parser.add_argument_group(
        "edge targets (README 'Edge deployment'); every variant is parity-checked"
    )
    edge.add_argument(
        "--min-runtime",
        metavar="X.Y",
        help="rewrite the model (and variants) so onnxruntime X.Y can load it (opset, ai.onnx.ml, IR)",
    )
    edge.add_argument(
        "--quantize",
        choices=["dynamic", "static"],
        help="also write OUT.int8.onnx: int8 network weights (static: activations too, sample-calibrated)",
    )
    edge.add_argument("--fp16", action="store_true", help="also write OUT.fp16.onnx (float16; GPU targets)")
    edge.add_argument(
        "--format",
        choices=["onnx", "ort"],
        default="onnx",
        help="ort: also write ORT-format copies (.ort) and required_operators.config for reduced builds",
    )
    parser.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="TYPE",
        help=".skops only: trust this type (repeatable); unknown types are listed otherwise",
    )
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="add DIR to the import path to unpickle your own classes (repeatable)",
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first, e.g. one that calls exporter.register_wrapper (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the summary")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return parser


def build_check_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exporter check",
        description="Check an exported model against the native pipeline "
        "(exit 0 pass, 1 parity failure, 2 usage or file error).",
    )
    parser.add_argument("pipeline", type=Path, help="the fitted pipeline (.pkl, .joblib, .skops)")
    parser.add_argument("model", type=Path, help="the exported .onnx model")
    parser.add_argument("--data", help="rows to compare on (.npy / .csv); default: the model's golden rows")
    parser.add_argument("--atol", type=float, help="absolute tolerance for every numeric output")
    parser.add_argument("--rtol", type=float, help="relative tolerance for every numeric output")
    parser.add_argument(
        "--trust", action="append", default=[], metavar="TYPE", help=".skops: trust this type"
    )
    parser.add_argument(
        "--path", action="append", default=[], metavar="DIR", help="add DIR to the import path"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout, nothing else")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:
        return _guarded(build_check_parser().parse_args(argv[1:]), _check)
    return _guarded(build_parser().parse_args(argv), _run)


def _guarded(args: argparse.Namespace, command: Any) -> int:
    try:
        return int(command(args))
    except ExportError as exc:
        if args.debug:
            raise
        report = exc.report if isinstance(exc, ParityError) else None
        _fail(args, str(exc), exc.exit_code, report)
        return exc.exit_code
    except Exception as exc:  # a bug or a library failure we did not anticipate: still one line
        if args.debug:
            raise
        _fail(args, f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", 2, None)
        return 2


def _run(args: argparse.Namespace) -> int:
    from exporter.api import export
    from exporter.load import import_plugins, load_estimator

    import_plugins(args.plugin, import_paths=args.path)
    estimator = load_estimator(args.pipeline, trust=args.trust, import_paths=args.path)
    result = export(
        estimator,
        sample=args.sample,
        tolerances=_tolerances(args),
        force=args.force,
        dtype=args.dtype,
        optimize=args.optimize,
        min_runtime=args.min_runtime,
        quantize=args.quantize,
        fp16=args.fp16,
        ort_format=args.format == "ort",
    )
    out = args.output or args.pipeline.with_suffix(".onnx")
    result.save(out)
    extra = sorted(str(p) for p in result.files(out))
    if args.json:
        print(json.dumps({"ok": True, "output": str(out), "files": extra, **result.to_dict()}))
    else:
        print(result.summary())
        if not result.report.passed:
            print("warning: parity FAILED; written anyway because of --force")
        print(f"wrote {', '.join([str(out), *extra])}")
    return 0


def _check(args: argparse.Namespace) -> int:
    import runtime
    from exporter.check import check
    from exporter.load import load_estimator

    estimator = load_estimator(args.pipeline, trust=args.trust, import_paths=args.path)
    try:
        report = check(estimator, args.model, args.data, tolerances=_tolerances(args))
    except runtime.ModelRuntimeError as exc:  # bad model file or rows that do not fit it: usage error
        raise ExportError(str(exc)) from None
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(report.format().replace("parity on", "check on", 1))
    return 0 if report.passed else 1


def _tolerances(args: argparse.Namespace) -> dict[str, tuple[float, float]] | None:
    from exporter.parity import DEFAULT_TOLERANCES

    if args.atol is None and args.rtol is None:
        return None
    return {
        name: (args.atol if args.atol is not None else atol, args.rtol if args.rtol is not None else rtol)
        for name, (atol, rtol) in DEFAULT_TOLERANCES.items()
    }


def _fail(args: argparse.Namespace, message: str, code: int, report: Any) -> None:
    if args.json:
        doc = {"ok": False, "exit_code": code, "error": message}
        if report is not None:
            doc["parity"] = report.to_dict()
        print(json.dumps(doc))
    else:
        print(f"error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
