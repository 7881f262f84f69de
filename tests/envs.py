"""Fresh virtual environments for the edge tests and benchmarks.

``runtime_only_env`` builds what a device gets from ``pip install hybridonnx`` (no extras): a new
venv holding numpy, onnxruntime and their own requirements, plus the ``runtime`` package — and
nothing else (no torch, sklearn, onnx, exporter). The packages are linked from this interpreter's
site-packages, so it needs no network and is exactly the installed versions.

``pip_env`` builds a venv with pip and installs given requirements (e.g. an old onnxruntime).
"""

from __future__ import annotations

import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
BASE = ("numpy", "onnxruntime")  # pyproject's [project] dependencies


def runtime_only_env(folder: Path) -> Path:
    """Create the environment in ``folder``; return its python."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(folder)
    python = folder / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for entry in sorted(_top_level_entries(_closure(BASE))):
        (site / entry.name).symlink_to(entry)
    (site / "runtime").symlink_to(ROOT / "runtime")
    return python


def pip_env(folder: Path, requirements: list[str], timeout: int = 600) -> Path:
    """A venv with pip, the given requirements installed (binary wheels only); its python."""
    venv.EnvBuilder(with_pip=True, symlinks=True).create(folder)
    python = folder / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--only-binary", ":all:", *requirements],
        check=True,
        timeout=timeout,
        capture_output=True,
    )
    return python


def size_of(entries: list[Path]) -> int:
    total = 0
    for entry in entries:
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        total += sum(p.stat().st_size for p in files if not p.is_symlink())
    return total


def base_install_entries() -> list[Path]:
    """The site-packages entries of the base install (plus the runtime package itself)."""
    return [*sorted(_top_level_entries(_closure(BASE))), ROOT / "runtime"]


def _closure(names: tuple[str, ...]) -> set[str]:
    """The distributions ``names`` need, transitively (markers evaluated, extras ignored)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        for spec in metadata.requires(name) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def _top_level_entries(dists: set[str]) -> set[Path]:
    """Files and folders directly in site-packages that belong to the distributions."""
    entries: set[Path] = set()
    for name in dists:
        dist = metadata.distribution(name)
        base = Path(str(dist.locate_file("")))
        for file in dist.files or []:
            first = Path(str(file)).parts[0]
            if first in ("..", "bin") or first.endswith(".pth"):
                continue
            entries.add(base / first)
    return {e for e in entries if e.exists()}


if __name__ == "__main__":  # python tests/envs.py DIR: build one to look at
    print(runtime_only_env(Path(sys.argv[1])))
