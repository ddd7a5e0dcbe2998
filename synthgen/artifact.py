"""The model file (``.sgm``): a zip of ``manifest.json`` and ``weights.safetensors``. No pickle.

The manifest carries everything but tensors (format version, versions, model and
hyperparameters, transformer parameters, training summary, privacy ledger) plus a sha256 of the
weights and of its own canonical JSON. Loading checks the format version and every hash before
anything is built, executes no code from the file, and never needs the training data.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from synthgen.errors import IntegrityError, SynthgenError
from synthgen.io import write_bytes_atomic

FORMAT = "synthgen-model"
FORMAT_VERSION = 1
MANIFEST, WEIGHTS = "manifest.json", "weights.safetensors"
MAX_MEMBER_BYTES = 4 << 30


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_model_file(path: str | os.PathLike, manifest: dict[str, Any], tensors: dict[str, torch.Tensor],
                     *, force: bool = False, key: bytes | None = None, recipient: Any = None) -> Path:
    """Write a model file atomically; refuses to overwrite unless ``force``.

    With ``key`` (or an X25519 public ``recipient``) the whole file is encrypted
    (``synthgen.privacy.crypto``): nothing of it, manifest included, is readable without the
    key, and any modified byte is refused.
    """
    weights = save_tensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()})  # GPU-trained: loads on CPU
    body = {**manifest, "format": FORMAT, "format_version": FORMAT_VERSION}
    body.pop("integrity", None)
    body["integrity"] = {"algorithm": "sha256", "members": {WEIGHTS: _sha256(weights)},
                         "manifest": _sha256(_canonical(body))}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, json.dumps(body, indent=1, ensure_ascii=False, allow_nan=False))
        zf.writestr(WEIGHTS, weights)
    seal = {k: v for k, v in (("key", key), ("recipient", recipient)) if v is not None}
    return write_bytes_atomic(path, buffer.getvalue(), force=force, seal=seal)


def read_manifest(path: str | os.PathLike, key: bytes | None = None, *, private_key: Any = None) -> dict[str, Any]:
    """Read and verify only the manifest (for ``inspect``)."""
    return read_model_file(path, key, private_key=private_key)[0]


def read_model_file(path: str | os.PathLike, key: bytes | None = None, *, private_key: Any = None,
                    data: bytes | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Open, verify and decode a model file (``key`` or ``private_key``: for an encrypted one).

    ``data``: the file's bytes when the caller already read them (e.g. to check a signature).

    Raises:
        SynthgenError: the file does not exist; an encrypted file without a key.
        IntegrityError: not a model file, corrupted or tampered with, a wrong key, or from a newer synthgen.
    """
    from synthgen.privacy.crypto import MAGIC, decrypt_bytes

    path = Path(path)
    if data is None:
        if not path.is_file():
            raise SynthgenError(f"{path}: no such model file (fix: check the path)")
        data = path.read_bytes()
    source = io.BytesIO(data)
    if data.startswith(MAGIC):
        if key is None and private_key is None:
            raise SynthgenError(f"{path} is an encrypted model file (fix: give its key: --key-file PATH, "
                                "$SYNTHGEN_KEY or --identity PATH; in Python Sampler.load(path, key=...))")
        secret = {"key": key} if private_key is None else {"private_key": private_key}
        source = io.BytesIO(decrypt_bytes(data, **secret))
    members = _read_members(path, source)
    manifest = _parse_manifest(path, members[MANIFEST])
    integrity = manifest.get("integrity", {})
    body = {k: v for k, v in manifest.items() if k != "integrity"}
    if integrity.get("manifest") != _sha256(_canonical(body)):
        raise IntegrityError(f"{path}: the manifest does not match its checksum (the file was modified)")
    if integrity.get("members", {}).get(WEIGHTS) != _sha256(members[WEIGHTS]):
        raise IntegrityError(f"{path}: {WEIGHTS} does not match its checksum (the file was modified)")
    try:
        tensors = load_tensors(members[WEIGHTS])
    except SafetensorError as exc:
        raise IntegrityError(f"{path}: cannot decode the weights ({exc})") from None
    return manifest, tensors


def _read_members(path: Path, source: Path | io.BytesIO) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(source) as zf:
            names = set(zf.namelist())
            if names != {MANIFEST, WEIGHTS}:
                raise IntegrityError(f"{path}: not a synthgen model file (members {sorted(names)}; "
                                     f"expected {MANIFEST} and {WEIGHTS})")
            for info in zf.infolist():
                if info.file_size > MAX_MEMBER_BYTES:
                    raise IntegrityError(f"{path}: member {info.filename} is implausibly large")
            return {name: zf.read(name) for name in (MANIFEST, WEIGHTS)}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError, EOFError,
            OSError, ValueError) as exc:
        raise IntegrityError(f"{path}: not a readable synthgen model file, or corrupted ({exc})") from None


def _parse_manifest(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{path}: the manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IntegrityError(f"{path}: not a synthgen model file (no '{FORMAT}' manifest)")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise IntegrityError(f"{path}: model file format {version} is newer than this synthgen reads "
                             f"({FORMAT_VERSION}) (fix: upgrade synthgen: pip install -U synthgen)")
    return manifest


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The manifest as pretty JSON (what ``inspect --json`` prints)."""
    return json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")


__all__ = ["FORMAT_VERSION", "read_manifest", "read_model_file", "write_model_file", "manifest_bytes"]
