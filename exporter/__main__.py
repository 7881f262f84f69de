"""``python -m exporter PIPELINE [-o OUT.onnx] [--sample FILE] ...``: parse arguments, call the API.

Exit codes: 0 written, 1 parity failure (nothing written unless --force), 2 bad input (file,
options, unsupported or unfitted step) or a failed write. Every error is one line on stderr, or,
with ``--json``, one JSON document on stdout (argparse's own errors included).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

from exporter.errors import ExportError, ParityError


class UsageError(Exception):
    """argparse's complaint about the command line, raised instead of its exit (main reports it)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see {self.prog} --help")


def _tolerance(text: str) -> float:
    """--atol / --rtol: a finite number >= 0 (NaN would make every parity check pass)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a tolerance: give a finite number >= 0, e.g. 1e-4 "
            "(NaN or inf would let every parity check pass)"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m exporter",
        description="Compile a fitted scikit-learn + PyTorch pipeline into one verified ONNX model.",
        epilog="commands:\n"
        "  python -m exporter check PIPELINE MODEL [--data ROWS] [--plugin MODULE] ...\n"
        "                        check an exported model against the native pipeline\n"
        "                        (python -m exporter check --help)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "pipeline", type=Path, help="fitted Pipeline / search CV / estimator (.pkl, .joblib, .skops)"
    )
    parser.add_argument("-o", "--output", type=Path, help="model path (default: PIPELINE with suffix .onnx)")
    parser.add_argument("--sample", help="rows to check parity on (.npy or .csv); synthesised when absent")
    parser.add_argument("--atol", type=_tolerance, help="absolute tolerance for every numeric output")
    parser.add_argument("--rtol", type=_tolerance, help="relative tolerance for every numeric output")
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
    _add_import_options(parser)
    parser.add_argument(
        "--sign-key",
        type=Path,
        metavar="FILE",
        help="sign the model (and variants) with the key in FILE (HMAC-SHA256); "
        "runtime.load(..., key=) then refuses models not signed with it",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the summary")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return parser


def _add_import_options(parser: argparse.ArgumentParser) -> None:
    """--path / --plugin: every command that rebuilds the native side (unpickles the pipeline, plans
    it) needs the user's classes importable and their registrations (wrappers, converters) made."""
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


def build_check_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m exporter check",
        description="Check an exported model against the native pipeline "
        "(exit 0 pass, 1 parity failure, 2 usage or file error).",
    )
    parser.add_argument("pipeline", type=Path, help="the fitted pipeline (.pkl, .joblib, .skops)")
    parser.add_argument("model", type=Path, help="the exported .onnx model")
    parser.add_argument("--data", help="rows to compare on (.npy / .csv); default: the model's golden rows")
    parser.add_argument("--atol", type=_tolerance, help="absolute tolerance for every numeric output")
    parser.add_argument("--rtol", type=_tolerance, help="relative tolerance for every numeric output")
    parser.add_argument(
        "--trust", action="append", default=[], metavar="TYPE", help=".skops: trust this type"
    )
    _add_import_options(parser)
    parser.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help="refuse the model unless it was signed with the key in FILE (exporter --sign-key)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout, nothing else")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    missing = _missing_dependency()
    if missing is not None:  # `pip install hybridonnx` is the runtime only, this package included
        as_json = any(a.startswith("--j") and "--json".startswith(a) for a in argv)
        _fail(argparse.Namespace(json=as_json), _needs_export_extra(missing), 2, None)
        return 2
    check = argv[:1] == ["check"]
    try:
        args = build_check_parser().parse_args(argv[1:]) if check else build_parser().parse_args(argv)
    except UsageError as exc:  # argparse would print usage and exit: keep the one-line contract
        as_json = any(a.startswith("--j") and "--json".startswith(a) for a in argv)
        _fail(argparse.Namespace(json=as_json), str(exc), 2, None)
        return 2
    return _guarded(args, _check if check else _run)


# What the exporter imports that the runtime-only install lacks (pyproject's [export] extra).
EXPORT_DEPENDENCIES = ("onnx", "sklearn", "skl2onnx", "torch", "onnxscript", "skops", "pandas")


def _missing_dependency() -> str | None:
    """The first export dependency that is not installed (by import name), or None."""
    import importlib.util

    import exporter

    known = getattr(exporter, "MISSING_DEPENDENCY", None)  # exporter/__init__ could not import it
    if known:
        return str(known)
    return next((name for name in EXPORT_DEPENDENCIES if importlib.util.find_spec(name) is None), None)


def _needs_export_extra(missing: str) -> str:
    return (
        f"the exporter needs the export extra, and {missing!r} is not installed (this looks like the "
        'runtime-only install): pip install "hybridonnx[export]"'
    )


def _guarded(args: argparse.Namespace, command: Any) -> int:
    _quiet_onnxruntime()
    try:
        return int(command(args))
    except ExportError as exc:
        if args.debug:  # the traceback, and still the documented exit code
            traceback.print_exc()
            return exc.exit_code
        report = exc.report if isinstance(exc, ParityError) else None
        _fail(args, str(exc), exc.exit_code, report)
        return exc.exit_code
    except Exception as exc:  # a bug or a library failure we did not anticipate: still one line
        if args.debug:
            traceback.print_exc()
            return 2
        _fail(args, f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", 2, None)
        return 2


def _quiet_onnxruntime() -> None:
    """onnxruntime logs a failed run on stderr ("[E:onnxruntime:...] Non-zero status code ...")
    besides raising; the raised error is what the CLI reports, in one line."""
    try:
        import onnxruntime
    except ImportError:  # pragma: no cover - a dependency of the base install
        return
    onnxruntime.set_default_logger_severity(4)


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
        sign_key=read_key(args.sign_key),
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
    from exporter.load import import_plugins, load_estimator

    import_plugins(args.plugin, import_paths=args.path)
    estimator = load_estimator(args.pipeline, trust=args.trust, import_paths=args.path)
    try:  # load() refuses a file whose content hash (or, with --key-file, signature) is wrong
        model = runtime.load(args.model, providers=["CPUExecutionProvider"], key=read_key(args.key_file))
        report = check(estimator, model, args.data, tolerances=_tolerances(args))
    except runtime.ModelRuntimeError as exc:  # bad model file or rows that do not fit it: usage error
        raise ExportError(str(exc)) from None
    seal = model.integrity.to_dict() if model.integrity else None
    few = report.sample == "golden" and report.n_rows < GOLDEN_ROWS_FOR_ANOTHER_FIT
    note = (
        f"only {report.n_rows} golden rows: a model that differs from this pipeline on a few percent of "
        "rows can pass; pass --data with real rows"
        if few
        else None
    )
    if args.json:
        print(json.dumps({**report.to_dict(), "integrity": seal, "note": note}))
    else:
        print(report.format().replace("parity on", "check on", 1))
        if model.integrity is not None:
            print(f"  {model.integrity.line()}")
        if note:
            print(f"note: {note}")
    return 0 if report.passed else 1


# Golden rows that catch a model from another fit disagreeing on 3% of rows 99.96% of the time
# (breast-cancer RidgeClassifier refits, tests/exporter/test_check.py); 5 caught it 14% of the time.
GOLDEN_ROWS_FOR_ANOTHER_FIT = 200


def read_key(path: Path | None) -> bytes | None:
    from runtime.errors import ModelRuntimeError
    from runtime.integrity import read_key_file

    try:
        return read_key_file(path)
    except ModelRuntimeError as exc:
        raise ExportError(str(exc)) from None


def _tolerances(args: argparse.Namespace) -> dict[str, tuple[float, float]] | None:
    from exporter.parity import DEFAULT_TOLERANCES

    if args.atol is None and args.rtol is None:
        return None
    return {
        name: (args.atol if args.atol is not None else atol, args.rtol if args.rtol is not None else rtol)
        for name, (atol, rtol) in DEFAULT_TOLERANCES.items()
    }


def _fail(args: argparse.Namespace, message: str, code: int, report: Any) -> None:
    message = " ".join(line.strip() for line in message.splitlines() if line.strip())  # one line
    if args.json:
        doc = {"ok": False, "exit_code": code, "error": message}
        if report is not None:
            doc["parity"] = report.to_dict()
        print(json.dumps(doc))
    else:
        print(f"error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
