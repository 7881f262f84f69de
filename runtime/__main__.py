"""``python -m runtime info|predict|bench|verify MODEL ...``: parse arguments, call the runtime.

Exit codes: 0 success; 1 ``verify`` found a mismatch; 2 anything else: a bad option or usage, model,
data or output file, or an unexpected error. Every failure is one line on stderr (``--debug``
shows the traceback); with ``--json`` stdout also gets ``{"ok": false, "exit_code": 2, "error": ...}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
from typing import Any, NoReturn

import onnxruntime as ort

from runtime.errors import InvalidOptionError, ModelRuntimeError

_HEADER_HELP = (
    "CSV only. Default: the first line is a header and must name the model's columns (a model "
    "trained on an unnamed array: must not be all numbers; a text model: single-word names); a "
    "first line that could be data is refused, never guessed. --no-header: every line is a row, "
    "cells in the model's column order. --header: the first line is a header whatever it holds "
    "(e.g. pandas' 0,1,2,...)"
)


class UsageError(Exception):
    """A command line argparse refuses: reported as one line (exit 2), not usage + message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m runtime", description="Run models written by exporter.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("model", help="the .onnx file")
        sub.add_argument("--providers", default="auto", help="auto, or a comma-separated provider list")
        sub.add_argument(
            "--precision", default="default", choices=["default", "fp32"], help="fp32: no TF32 on CUDA"
        )
        sub.add_argument(
            "--strict", action="store_true", help="fail when a requested GPU provider is not active"
        )
        sub.add_argument(
            "--key-file",
            metavar="FILE",
            help="refuse the model unless it was signed with the key in FILE (exporter --sign-key)",
        )
        sub.add_argument(
            "--no-check-hash",
            dest="check_hash",
            action="store_false",
            help="load even if the content hash sealed at export does not match (inspection only)",
        )
        sub.add_argument("--debug", action="store_true", help="show the full traceback on errors")
        return sub

    info = command("info", "schema, classes, outputs, providers, size and export parity of a model")
    info.add_argument("--json", action="store_true", help="print one JSON document")

    predict = command("predict", "predict on the rows of a CSV / NPY / Parquet file")
    predict.add_argument("data", help="input rows (.csv, .npy, .parquet)")
    predict.add_argument("-o", "--output", help="write to this .csv or .json file (default: CSV on stdout)")
    predict.add_argument(
        "--method",
        default="auto",
        choices=["auto", "predict", "predict_proba", "transform", "run"],
        help="auto: label + probabilities (classifiers), predictions (regressors), features (transformers)",
    )
    predict.add_argument(
        "--batch-size",
        type=int,
        help="read, predict and write this many rows at a time (default 65536): memory stays bounded",
    )
    header = predict.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_const", const=True, help=_HEADER_HELP)
    header.add_argument(
        "--no-header", dest="header", action="store_const", const=False, help="CSV only: see --header"
    )
    predict.add_argument(
        "--json",
        action="store_true",
        help='on failure print {"ok": false, ...} as the last line of stdout; with -o, a summary on success',
    )

    bench = command("bench", "p50/p99 latency and rows/s per batch size and provider")
    bench.add_argument("--batch", default="1,64,4096", help="comma-separated batch sizes (default 1,64,4096)")
    bench.add_argument("--min-time", type=float, default=0.5, help="seconds to measure each batch size")
    bench.add_argument("--json", action="store_true", help="print one JSON document")

    verify = command("verify", "replay the golden rows embedded at export; exit 1 on mismatch")
    verify.add_argument("--atol", type=float, help="absolute tolerance for numeric outputs")
    verify.add_argument("--rtol", type=float, help="relative tolerance for numeric outputs")
    verify.add_argument("--json", action="store_true", help="print one JSON document")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json, debug = _given(argv, "--json"), _given(argv, "--debug")
    # onnxruntime logs a failed run on stderr besides raising; the raised error is the one line.
    ort.set_default_logger_severity(4)
    try:
        args = build_parser().parse_args(argv)
        return int(COMMANDS[args.command](args))
    except UsageError as exc:
        message = str(exc)
    except BrokenPipeError:  # e.g. `... | head`: the reader left; nothing more can be written
        _silence_stdout()
        return _fail("the output pipe closed before everything was written", False)
    except Exception as exc:
        if debug:  # the traceback, and still the documented exit code
            traceback.print_exc()
            return 2
        if isinstance(exc, (ModelRuntimeError, OSError)):
            message = str(exc)
        else:
            message = f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"
    return _fail(message, as_json)


def _given(argv: list[str], flag: str) -> bool:
    """Whether ``flag`` is on the command line, as argparse reads it: abbreviations (--js) too."""
    return any(len(a) > 2 and flag.startswith(a) for a in argv if a.startswith("--"))


def _fail(message: str, as_json: bool) -> int:
    line = " | ".join(part.strip() for part in message.splitlines() if part.strip()) or "failed"
    print(f"error: {line}", file=sys.stderr)
    if as_json:
        print(json.dumps({"ok": False, "exit_code": 2, "error": line}))
    return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. captured by a test)
        pass


def _positive(flag: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise InvalidOptionError(f"{flag} {value}: use a positive number of rows")


def _load(args: argparse.Namespace) -> Any:
    import runtime

    providers: Any = args.providers if args.providers == "auto" else args.providers.split(",")
    from runtime.integrity import read_key_file

    return runtime.load(
        args.model,
        providers=providers,
        precision=args.precision,
        strict=args.strict,
        key=read_key_file(args.key_file),
        check_hash=args.check_hash,
    )


def _info(args: argparse.Namespace) -> int:
    from runtime.describe import describe, format_info

    info = describe(_load(args))
    print(json.dumps(info) if args.json else format_info(info))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from runtime.datafiles import output_format, predict_chunks, write_chunks

    _positive("--batch-size", args.batch_size)
    fmt = output_format(args.output)  # before the model loads and the rows are read
    chunks = predict_chunks(_load(args), args.data, args.method, args.batch_size, args.header)
    n_rows = write_chunks(chunks, args.output, fmt, sys.stdout)
    if args.json and args.output:
        print(json.dumps({"ok": True, "exit_code": 0, "rows": n_rows, "output": args.output}))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from runtime.bench import bench, format_bench

    try:
        batches = [int(b) for b in args.batch.split(",")]
    except ValueError:
        raise InvalidOptionError(f"--batch {args.batch!r}: use comma-separated row counts") from None
    for batch in batches:
        _positive("--batch", batch)
    if not math.isfinite(args.min_time) or args.min_time < 0:
        raise InvalidOptionError(f"--min-time {args.min_time}: use a finite number of seconds >= 0")
    rows = bench(_load(args), batches, min_time=args.min_time)
    print(json.dumps(rows) if args.json else format_bench(rows))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from runtime.verify import verify

    tolerances = _tolerances(args)  # before the model loads
    model = _load(args)
    report = verify(model, tolerances)
    where = f"providers {', '.join(model.providers)}, precision {model.precision}"
    if args.json:
        print(json.dumps({**report.to_dict(), "providers": model.providers, "precision": model.precision}))
    else:
        print(report.format().replace("parity on", "verify on", 1) + f"\n  ({where})")
    return 0 if report.passed else 1


def _tolerances(args: argparse.Namespace) -> dict[str, tuple[float, float]] | None:
    """--atol / --rtol over every output's default; NaN, inf or negative refused."""
    if args.atol is None and args.rtol is None:
        return None
    from runtime.parity import DEFAULT_TOLERANCES, check_tolerances

    check_tolerances({"--atol/--rtol": (args.atol or 0.0, args.rtol or 0.0)})
    return check_tolerances(
        {
            name: (args.atol if args.atol is not None else a, args.rtol if args.rtol is not None else r)
            for name, (a, r) in DEFAULT_TOLERANCES.items()
        }
    )


COMMANDS = {"info": _info, "predict": _predict, "bench": _bench, "verify": _verify}

if __name__ == "__main__":
    sys.exit(main())
