"""Detached Ed25519 signatures: who produced a file (a model, a table) and that nobody changed it.

A signature file (``<file>.sig`` by default) is JSON::

    {"format": "synthgen-signature", "version": 2, "alg": "Ed25519", "purpose": PURPOSE,
     "name": the file's name (no folder), "signed_at": "2025-06-01T12:00:00Z" (UTC), "signer": fingerprint,
     "sha256": hex digest of the file, "size": bytes, "signature": base64}

The signature is over ``b"synthgen-signature-v2\\0"`` followed by the canonical JSON (sorted keys, no
spaces) of every other field, so the purpose, the file's name, hash and size, the time and the
signer's fingerprint are all covered. ``verify`` refuses a file whose name is not the signed one
(a signed non-DP model renamed ``adult-dp.sgm`` beside its ``.sig``) unless ``allow_rename``.
Version 1 signatures (no purpose, name or time; domain ``b"synthgen-signature-v1\\0"``) cannot show
that, so they are refused unless ``allow_rename`` accepts them by content and signer alone, with a
``SignatureWarning``, as is a renamed file. Files are hashed in 1 MiB reads, so a large file never
has to fit in memory. Key pairs are PEM files like the encryption ones (``synthgen.crypto.streams``):
the private key PKCS8 (0600, optionally passphrase-protected), the public key ``<private>.pub`` (0644).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from synthgen.crypto.keypairs import load_private_pem, load_public_pem, write_pem_keypair
from synthgen.crypto.keys import fingerprint, is_fingerprint, require_key_kind
from synthgen.errors import IntegrityError, SignatureWarning, SynthgenError
from synthgen.files import check_writable, write_bytes

__all__ = ["fingerprint", "read_signing_key", "read_verify_key", "sign_file", "verify_file", "write_signing_keypair"]

FORMAT, VERSION, ALG = "synthgen-signature", 2, "Ed25519"
#: what a signature says, signed with it: not a signature over some other message made with the same key
PURPOSE = "synthgen signature of a named file"
#: signed prefix per format version (version 1: read only)
DOMAINS = {1: b"synthgen-signature-v1\0", 2: b"synthgen-signature-v2\0"}
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
    signed_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record: dict[str, Any] = {"format": FORMAT, "version": VERSION, "alg": ALG, "purpose": PURPOSE,
                              "name": Path(path).name, "signed_at": signed_at,
                              "signer": fingerprint(private_key.public_key()), "sha256": digest, "size": size}
    record["signature"] = base64.b64encode(private_key.sign(_message(record))).decode()
    return write_bytes(out, (json.dumps(record, indent=1) + "\n").encode(), force=force)


def verify_file(path: str | os.PathLike, public_key: Ed25519PublicKey, *,
                signature: str | os.PathLike | None = None, allow_rename: bool = False) -> dict[str, Any]:
    """Check that ``path``, under its current name, is unchanged since ``public_key``'s owner signed it.

    Args:
        path: the signed file.
        public_key: the signer's Ed25519 public key.
        signature: the signature file (default ``<path>.sig``).
        allow_rename: accept a file signed under another name, or a version 1 signature (which names
            none), with a ``SignatureWarning``; content and signer are still checked.

    Returns:
        The signature record.

    Raises:
        IntegrityError: the signature file is missing or malformed, made by another key, or does not
            verify; the file was modified; or it was renamed (or the signature is version 1) and
            ``allow_rename`` is not set.
        ConfigError: ``public_key`` is not an Ed25519 public key.
    """
    record, note = _checked_record(path, public_key, signature, allow_rename)
    if _file_size(path) != record["size"] or _hash_file(path) != (record["sha256"], record["size"]):
        raise _modified(path)
    if note:
        warnings.warn(SignatureWarning(note), stacklevel=2)
    return record


def verify_data(path: str | os.PathLike, data: bytes, public_key: Ed25519PublicKey, *,
                signature: str | os.PathLike | None = None, allow_rename: bool = False) -> dict[str, Any]:
    """Like ``verify_file`` for the bytes already read from ``path``: check them, then use them (no second read)."""
    record, note = _checked_record(path, public_key, signature, allow_rename)
    if len(data) != record["size"] or hashlib.sha256(data).hexdigest() != record["sha256"]:
        raise _modified(path)
    if note:
        warnings.warn(SignatureWarning(note), stacklevel=2)
    return record


def _checked_record(path: str | os.PathLike, public_key: Ed25519PublicKey, signature: str | os.PathLike | None,
                    allow_rename: bool) -> tuple[dict[str, Any], str | None]:
    """The signature record for ``path``, made by ``public_key``, verified and naming ``path`` (the file's
    content not yet checked); with it, the warning to give once the content has been checked, if any."""
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
    return record, _name_check(record, path, sig_path, allow_rename)


def _name_check(record: dict[str, Any], path: str | os.PathLike, sig_path: Path, allow_rename: bool) -> str | None:
    """Refuse a file signed under another name, or a version 1 signature (no name), unless ``allow_rename``;
    then the warning to give."""
    if record["version"] == 1:
        if not allow_rename:
            raise IntegrityError(f"{sig_path} is a version 1 signature: it covers the content and signer of {path} "
                                 f"but not its name, so a renamed file would pass (fix: ask the signer to sign it "
                                 f"again with this synthgen, or accept it by content and signer alone with "
                                 f"--allow-rename / allow_rename=True)")
        return f"{path}: a version 1 signature, accepted by content and signer only (it does not name the file)"
    if record["name"] != Path(path).name:
        if not allow_rename:
            raise IntegrityError(f"{path} was signed under the name {record['name']!r}: a renamed file can pass for "
                                 f"another (a non-DP model as adult-dp.sgm) (fix: rename it back to "
                                 f"{record['name']}, or accept it under this name with --allow-rename / "
                                 f"allow_rename=True if you know why it was renamed)")
        return f"{path} was signed under the name {record['name']!r}; accepted under its new name (allow_rename)"
    return None


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
            and record["version"] not in DOMAINS:
        raise IntegrityError(f"{sig_path} has signature format version {record.get('version')}; this synthgen "
                             f"reads versions 1 and {VERSION} (fix: upgrade synthgen)")
    if not _well_formed(record):
        raise IntegrityError(f"{sig_path} is not a valid synthgen signature file (fix: get an intact copy from "
                             f"the signer)")
    return record


def _well_formed(record: Any) -> bool:
    try:
        return (record["format"] == FORMAT and type(record["version"]) is int and record["version"] in DOMAINS
                and record["alg"] == ALG and (record["version"] == 1 or _well_formed_v2(record))
                and is_fingerprint(record["signer"])
                and re.fullmatch("[0-9a-f]{64}", record["sha256"]) is not None
                and type(record["size"]) is int and record["size"] >= 0
                and len(base64.b64decode(record["signature"], validate=True)) == SIGNATURE_BYTES)
    except (KeyError, TypeError, ValueError):  # a missing field, a field of the wrong type, bad base64
        return False


def _well_formed_v2(record: dict[str, Any]) -> bool:
    """The version 2 fields: this purpose, a file name (no folder), a UTC time to the second."""
    name = record["name"]
    return (record["purpose"] == PURPOSE and isinstance(name, str) and name not in ("", ".", "..")
            and "/" not in name and "\0" not in name
            and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["signed_at"]) is not None)


def _message(record: dict[str, Any]) -> bytes:
    """What is signed: the version's domain prefix and the canonical JSON of every field but the signature."""
    fields = {k: v for k, v in record.items() if k != "signature"}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return DOMAINS[record["version"]] + canonical.encode()


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
