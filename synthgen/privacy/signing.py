"""Detached Ed25519 signatures: who produced a file (a model, a table) and that nobody changed it.

A signature file (``<file>.sig`` by default) is JSON::

    {"format": "synthgen-signature", "version": 1, "alg": "Ed25519", "signer": fingerprint,
     "sha256": hex digest of the file, "size": bytes, "signature": base64}

The signature is over ``b"synthgen-signature-v1\\0"`` followed by the canonical JSON (sorted keys, no
spaces) of every other field, so the file's hash and size and the signer's fingerprint are all
covered. Files are hashed in 1 MiB reads, so a large file never has to fit in memory. Key pairs are
PEM files like the encryption ones (``synthgen.privacy.crypto``): the private key PKCS8 (0600,
optionally passphrase-protected), the public key ``<private>.pub`` (0644).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from synthgen.errors import IntegrityError, SynthgenError
from synthgen.io import check_writable, write_bytes_atomic
from synthgen.privacy.keys import (
    fingerprint,
    is_fingerprint,
    load_private_pem,
    load_public_pem,
    require_key_kind,
    write_pem_keypair,
)

__all__ = ["fingerprint", "read_signing_key", "read_verify_key", "sign_file", "verify_file", "write_signing_keypair"]

FORMAT, VERSION, ALG = "synthgen-signature", 1, "Ed25519"
DOMAIN = b"synthgen-signature-v1\0"
READ_BYTES = 1 << 20
SIGNATURE_BYTES = 64
#: how the user makes an Ed25519 key pair (named in error messages)
SIGNING_KEYPAIR_HINT = "synthgen keygen --signing"


def write_signing_keypair(private_path: str | os.PathLike, *, force: bool = False,
                          passphrase: str | None = None) -> tuple[Path, Path]:
    """Make an Ed25519 key pair: ``private_path`` (PKCS8 PEM, 0600) and ``<private_path>.pub`` (0644).

    Returns:
        The private and public key paths.
    """
    return write_pem_keypair(Ed25519PrivateKey.generate(), private_path, force=force, passphrase=passphrase)


def read_signing_key(path: str | os.PathLike, passphrase: str | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (``passphrase``: if it is protected by one)."""
    return load_private_pem(path, passphrase, Ed25519PrivateKey, SIGNING_KEYPAIR_HINT)


def read_verify_key(path: str | os.PathLike) -> Ed25519PublicKey:
    """A signer's Ed25519 public key from a PEM file (``<private>.pub``)."""
    return load_public_pem(path, Ed25519PublicKey, SIGNING_KEYPAIR_HINT)


def sign_file(path: str | os.PathLike, private_key: Ed25519PrivateKey, *, out: str | os.PathLike | None = None,
              force: bool = False) -> Path:
    """Write a detached signature of ``path`` to ``out`` (default ``<path>.sig``), atomically.

    Raises:
        ConfigError: ``private_key`` is not an Ed25519 private key.
        OutputExistsError: ``out`` exists and ``force`` is not set.
    """
    require_key_kind(private_key, Ed25519PrivateKey, "the signing key is", SIGNING_KEYPAIR_HINT)
    out = check_writable(out if out is not None else _default_sig(path), force=force)  # fail before hashing
    digest, size = _hash_file(path)
    record: dict[str, Any] = {"format": FORMAT, "version": VERSION, "alg": ALG,
                              "signer": fingerprint(private_key.public_key()), "sha256": digest, "size": size}
    record["signature"] = base64.b64encode(private_key.sign(_message(record))).decode()
    return write_bytes_atomic(out, (json.dumps(record, indent=1) + "\n").encode(), force=force)


def verify_file(path: str | os.PathLike, public_key: Ed25519PublicKey, *,
                signature: str | os.PathLike | None = None) -> dict[str, Any]:
    """Check that ``path`` is unchanged since ``public_key``'s owner signed it.

    Args:
        path: the signed file.
        public_key: the signer's Ed25519 public key.
        signature: the signature file (default ``<path>.sig``).

    Returns:
        The signature record.

    Raises:
        IntegrityError: the signature file is missing or malformed, made by another key, or does not
            verify, or the file was modified.
        ConfigError: ``public_key`` is not an Ed25519 public key.
    """
    record, sig_path = _checked_record(path, public_key, signature)
    if _file_size(path) != record["size"] or _hash_file(path) != (record["sha256"], record["size"]):
        raise _modified(path)
    return record


def verify_data(path: str | os.PathLike, data: bytes, public_key: Ed25519PublicKey, *,
                signature: str | os.PathLike | None = None) -> dict[str, Any]:
    """Like ``verify_file`` for the bytes already read from ``path``: check them, then use them (no second read)."""
    record, _ = _checked_record(path, public_key, signature)
    if len(data) != record["size"] or hashlib.sha256(data).hexdigest() != record["sha256"]:
        raise _modified(path)
    return record


def _checked_record(path: str | os.PathLike, public_key: Ed25519PublicKey,
                    signature: str | os.PathLike | None) -> tuple[dict[str, Any], Path]:
    """The signature record for ``path``, made by ``public_key`` and verified (the file itself not yet)."""
    require_key_kind(public_key, Ed25519PublicKey, "the verification key is", SIGNING_KEYPAIR_HINT)
    sig_path = Path(signature) if signature is not None else _default_sig(path)
    record = _read_record(sig_path, path)
    mine = fingerprint(public_key)
    if record["signer"] != mine:
        raise IntegrityError(f"{path} was signed by key {record['signer']}, not by the given key {mine} (fix: "
                             f"verify with the signer's public key; do not trust the file if you expected {mine})")
    try:
        public_key.verify(base64.b64decode(record["signature"]), _message(record))
    except InvalidSignature:
        raise IntegrityError(f"the signature in {sig_path} does not verify: it was modified or not made by key "
                             f"{mine} (fix: get an intact signature from the signer; do not trust {path})") from None
    return record, sig_path


def _modified(path: str | os.PathLike) -> IntegrityError:
    return IntegrityError(f"{path} was modified after it was signed: its size or SHA-256 differs from the "
                          f"signature (fix: get an intact copy from the signer; do not use this one)")


def _read_record(sig_path: Path, path: str | os.PathLike) -> dict[str, Any]:
    """The signature record in ``sig_path``, checked for shape; ``IntegrityError`` when missing or malformed."""
    try:
        record = json.loads(sig_path.read_bytes())
    except FileNotFoundError:
        raise IntegrityError(f"no signature file {sig_path} for {path} (fix: get the .sig file from the signer, "
                             f"or give its path)") from None
    except (ValueError, OSError):  # not JSON, not UTF-8, a folder
        record = None
    if isinstance(record, dict) and record.get("format") == FORMAT and type(record.get("version")) is int \
            and record["version"] != VERSION:
        raise IntegrityError(f"{sig_path} has signature format version {record.get('version')}; this synthgen "
                             f"reads version {VERSION} (fix: upgrade synthgen)")
    if not _well_formed(record):
        raise IntegrityError(f"{sig_path} is not a valid synthgen signature file (fix: get an intact copy from "
                             f"the signer)")
    return record


def _well_formed(record: Any) -> bool:
    try:
        return (record["format"] == FORMAT and record["version"] == VERSION and record["alg"] == ALG
                and is_fingerprint(record["signer"])
                and re.fullmatch("[0-9a-f]{64}", record["sha256"]) is not None
                and type(record["size"]) is int and record["size"] >= 0
                and len(base64.b64decode(record["signature"], validate=True)) == SIGNATURE_BYTES)
    except (KeyError, TypeError, ValueError):  # a missing field, a field of the wrong type, bad base64
        return False


def _message(record: dict[str, Any]) -> bytes:
    """What is signed: the domain prefix and the canonical JSON of every field but the signature."""
    fields = {k: v for k, v in record.items() if k != "signature"}
    return DOMAIN + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _hash_file(path: str | os.PathLike) -> tuple[str, int]:
    """(SHA-256 hex digest, size in bytes) of a file, read in 1 MiB blocks."""
    digest, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as fh:
            while block := fh.read(READ_BYTES):
                digest.update(block)
                size += len(block)
    except FileNotFoundError:
        raise SynthgenError(f"{path}: no such file (fix: check the path)") from None
    return digest.hexdigest(), size


def _file_size(path: str | os.PathLike) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        raise SynthgenError(f"{path}: no such file (fix: check the path)") from None


def _default_sig(path: str | os.PathLike) -> Path:
    return Path(f"{path}.sig")
