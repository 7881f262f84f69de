"""Is this file the model the exporter checked? Its content hash and, optionally, a keyed signature.

The exporter seals every model it writes: ``hybridonnx.sha256`` (SHA-256 over everything in the
file — graph, weights, metadata, external data — except the seal itself) and, with a signing key,
``hybridonnx.signature`` (HMAC-SHA256 of that hash). ``runtime.load`` recomputes the hash by
default, so a flipped byte or an edited metadata document (class order, golden rows, tolerances)
is refused before it can answer. The hash alone is unkeyed — anyone who edits a model can
recompute it — so a fleet that must reject models nobody it trusts produced loads with ``key=``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from runtime._proto import SEAL_KEYS, ModelHeader, content_sha256, graph_sha256
from runtime.errors import InvalidOptionError, ModelLoadError

SHA_KEY, SIGNATURE_KEY = SEAL_KEYS
SCHEME = "hmac-sha256"


@dataclass(frozen=True)
class Integrity:
    """What load established about a file. ``sha256``: the recorded content hash (None: unsealed);
    ``checked``: recomputed at load and equal; ``signed``: carries a signature;
    ``signature_checked``: verified with the key given to load."""

    sha256: str | None
    checked: bool
    signed: bool
    signature_checked: bool

    def line(self) -> str:
        """One line for `runtime info` and `exporter check`."""
        if self.sha256 is None:
            return "content hash: none (an ORT-format file, a foreign model, or exported before sealing)"
        state = (
            "checked at load: unchanged since export" if self.checked else "NOT checked (check_hash=False)"
        )
        if self.signature_checked:
            state += "; signature checked with the key"
        elif self.signed:
            state += "; signed (give the key to check the signature)"
        return f"content sha256 {self.sha256[:16]}… {state}"

    def to_dict(self) -> dict[str, object]:
        return {
            "sha256": self.sha256,
            "checked": self.checked,
            "signed": self.signed,
            "signature_checked": self.signature_checked,
        }


def as_key(key: bytes | str | None) -> bytes | None:
    """A signing key as bytes; refuses empty keys and other types."""
    if key is None:
        return None
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, (bytes, bytearray)):
        raise InvalidOptionError(f"key must be bytes or str, got {type(key).__name__}")
    if not key:
        raise InvalidOptionError("key is empty: pass the bytes the model was signed with")
    return bytes(key)


def read_key_file(path: str | Path | None) -> bytes | None:
    """A signing key from a file (not the command line, where other users can read it); one
    trailing newline, as editors and `echo` write, is not part of the key."""
    if path is None:
        return None
    try:
        key = Path(path).read_bytes().removesuffix(b"\n").removesuffix(b"\r")
    except OSError as exc:
        raise InvalidOptionError(f"cannot read the key file {str(path)!r}: {exc.strerror}") from None
    return as_key(key)


def signature(key: bytes, sha256: str) -> str:
    return f"{SCHEME}:" + hmac.new(key, sha256.encode("ascii"), hashlib.sha256).hexdigest()


def seal_entries(data: bytes, key: bytes | None = None) -> dict[str, str]:
    """The metadata entries that seal a serialized model (which must not hold a seal yet)."""
    digest = content_sha256(data)
    entries = {SHA_KEY: digest}
    if key is not None:
        entries[SIGNATURE_KEY] = signature(key, digest)
    return entries


def check(
    data: bytes,
    header: ModelHeader,
    external: dict[str, bytes],
    source: str,
    *,
    key: bytes | None,
    check_hash: bool,
    sealed_format: bool,
    legacy_graph_sha256: str | None,
) -> Integrity:
    """Refuse a file whose content is not what was sealed (or not signed with ``key``).

    ``sealed_format``: the metadata says the exporter sealed it (a missing seal is then damage or
    tampering, not an older model). ``legacy_graph_sha256``: the graph hash of models exported
    before sealing, still checked so that changed weights are caught there too.
    """
    if header.format == "ort":
        if key is not None:
            raise ModelLoadError(
                f"{source}: ORT-format files carry no seal this runtime can read, so the signature "
                "cannot be checked; deploy the signed .onnx file, or load without key="
            )
        return Integrity(None, False, False, False)
    recorded = header.metadata.get(SHA_KEY)
    signed = SIGNATURE_KEY in header.metadata
    if recorded is None:
        if key is not None:
            raise ModelLoadError(
                f"{source}: the model is not signed, and load() was given a key; "
                "export it with --sign-key (exporter.export(..., sign_key=...))"
            )
        if check_hash and sealed_format:
            raise ModelLoadError(
                f"{source}: the model's content hash ({SHA_KEY}) is missing: the file was altered "
                "after export; export it again"
            )
        if check_hash and legacy_graph_sha256 is not None and legacy_graph_sha256 != graph_sha256(data):
            raise ModelLoadError(
                f"{source}: the graph differs from the one checked at export (graph_sha256): the file "
                "was altered after export; export it again"
            )
        return Integrity(None, False, signed, False)
    if not (check_hash or key is not None):
        return Integrity(recorded, False, signed, False)
    actual = content_sha256(data, external)
    if not hmac.compare_digest(actual.encode(), recorded.encode()):  # str: ASCII only, or TypeError
        raise ModelLoadError(
            f"{source}: content sha256 {actual[:16]}… differs from the {recorded[:16]}… sealed at export: "
            "the file (graph, weights or metadata) was altered or damaged; export it again "
            "(check_hash=False loads it anyway, for inspection only)"
        )
    if key is None:
        return Integrity(recorded, True, signed, False)
    if not signed:
        raise ModelLoadError(
            f"{source}: the model is not signed, and load() was given a key; "
            "export it with --sign-key (exporter.export(..., sign_key=...))"
        )
    if not hmac.compare_digest(header.metadata[SIGNATURE_KEY].encode(), signature(key, recorded).encode()):
        raise ModelLoadError(
            f"{source}: the signature does not match this key: the model was not signed by a key "
            "you trust (or was re-sealed after an edit); refusing it"
        )
    return Integrity(recorded, True, True, True)
