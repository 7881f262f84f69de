"""Which onnxruntime can load which model: the release table, shared by exporter and runtime.

The exporter reads it to build a model for an older runtime (``--min-runtime``); the runtime reads
it to refuse, before onnxruntime does, a model the installed version cannot run — and to say which
version it needs. Figures: the onnxruntime compatibility page ("ONNX opset support"); the IR
version is a hard gate (older runtimes reject a newer IR outright), opsets are the highest each
release implements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# onnxruntime (major, minor) → (ai.onnx opset, ai.onnx.ml opset, max IR version)
RELEASES: dict[tuple[int, int], tuple[int, int, int]] = {
    (1, 10): (15, 2, 8),
    (1, 11): (16, 2, 8),
    (1, 12): (17, 3, 8),
    (1, 13): (17, 3, 8),
    (1, 14): (18, 3, 8),
    (1, 15): (19, 3, 9),
    (1, 16): (19, 3, 9),
    (1, 17): (20, 4, 9),
    (1, 18): (21, 4, 10),
    (1, 19): (21, 4, 10),
    (1, 20): (21, 5, 10),
}
OLDEST = min(RELEASES)
NEWEST = max(RELEASES)


@dataclass(frozen=True)
class Target:
    """What a model may use to load on ``onnxruntime`` (a "major.minor" string) and later."""

    onnxruntime: str
    opset: int
    ml_opset: int
    ir_version: int

    def to_dict(self) -> dict[str, object]:
        return {
            "onnxruntime": self.onnxruntime,
            "opset": self.opset,
            "ml_opset": self.ml_opset,
            "ir_version": self.ir_version,
        }


def parse_version(text: str) -> tuple[int, int]:
    """ "1.16", "1.16.3", "1.17rc1" → (1, 16) / (1, 17); ValueError on anything else."""
    found = re.match(r"\s*(\d+)\.(\d+)", text)
    if not found:
        raise ValueError(f"not an onnxruntime version: {text!r} (expected MAJOR.MINOR, e.g. 1.16)")
    return int(found.group(1)), int(found.group(2))


def target_for(version: str) -> Target:
    """The limits of onnxruntime ``version``; releases newer than the table get its newest row
    (they load everything that row allows)."""
    key = parse_version(version)
    if key < OLDEST:
        raise ValueError(
            f"onnxruntime {version} is older than the oldest supported target "
            f"{OLDEST[0]}.{OLDEST[1]} (opset {RELEASES[OLDEST][0]})"
        )
    row = RELEASES.get(key) or RELEASES[max(k for k in RELEASES if k <= key)]
    return Target(f"{key[0]}.{key[1]}", *row)


def needed_release(ir_version: int, opsets: dict[str, int]) -> tuple[int, int] | None:
    """The oldest release in the table that loads a model with this IR version and these opsets,
    or None when even the newest row is not enough (a model newer than the table)."""
    default = opsets.get("ai.onnx", opsets.get("", 0))
    ml = opsets.get("ai.onnx.ml", 0)
    for key in sorted(RELEASES):
        opset, ml_opset, ir = RELEASES[key]
        if ir_version <= ir and default <= opset and ml <= ml_opset:
            return key
    return None


def installed_too_old(installed: str, ir_version: int, opsets: dict[str, int]) -> str | None:
    """Why onnxruntime ``installed`` cannot load the model, or None when it can — or when the
    table cannot tell (a release newer or older than the table decides for itself)."""
    try:
        have = parse_version(installed)
    except ValueError:
        return None
    if not OLDEST <= have <= NEWEST:
        return None
    opset, ml_opset, ir = RELEASES[max(k for k in RELEASES if k <= have)]
    default = opsets.get("ai.onnx", opsets.get("", 0))
    ml = opsets.get("ai.onnx.ml", 0)
    if ir_version <= ir and default <= opset and ml <= ml_opset:
        return None
    need = needed_release(ir_version, opsets)
    what = f"IR {ir_version}, opset {default}" + (f", ai.onnx.ml {ml}" if ml else "")
    version = f">= {need[0]}.{need[1]}" if need else "newer than this table knows"
    return (
        f"the model ({what}) needs onnxruntime {version}; the installed {installed} loads up to IR {ir}, "
        f"opset {opset}, ai.onnx.ml {ml_opset}: upgrade onnxruntime, or re-export with "
        f"--min-runtime {have[0]}.{have[1]}"
    )
