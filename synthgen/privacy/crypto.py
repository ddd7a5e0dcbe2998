"""Authenticated encryption of files at rest: chunked AES-256-GCM in the STREAM construction.

File layout (version 1)::

    b"SGENC" | version (1 byte) | header length (4 bytes, big-endian) | header JSON | chunks...

The header names the algorithm, the chunk size, a random nonce prefix and how the key is
obtained (a key file / environment key, or a passphrase through scrypt with the salt and cost
stored here). Each chunk is AES-256-GCM over at most ``chunk`` plaintext bytes with nonce
``prefix (7 bytes) | chunk counter (4 bytes) | last-chunk flag (1 byte)`` and the whole
preamble (magic, version, length, header) as associated data. So any change to the header,
any flipped byte, reordered, dropped or appended chunk, or a truncation (no chunk flagged last)
fails authentication and raises ``IntegrityError``; decryption to a path writes a temporary file
and publishes it only after the last chunk verified, so no partial plaintext is ever left.
Keys are never taken from the command line: a key file (created 0600) or ``SYNTHGEN_KEY``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from synthgen.errors import ConfigError, IntegrityError
from synthgen.io import atomic_path, check_writable

MAGIC, VERSION = b"SGENC", 1
CHUNK = 1 << 20  # plaintext bytes per chunk: streams files larger than memory
KEY_BYTES, TAG_BYTES, PREFIX_BYTES = 32, 16, 7
KEY_ENV = "SYNTHGEN_KEY"
#: scrypt cost (n = 2^15, r = 8, p = 1: 32 MiB and about 0.06 s per derivation on the dev machine)
SCRYPT = {"n": 2**15, "r": 8, "p": 1}


def generate_key() -> bytes:
    """A fresh random 256-bit key."""
    return secrets.token_bytes(KEY_BYTES)


def write_key_file(path: str | os.PathLike, key: bytes | None = None, *, force: bool = False) -> Path:
    """Write a key (new if None) as base64 to ``path``, readable by its owner only (0600)."""
    final = check_writable(path, force=force)
    key = key or generate_key()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(final, flags, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(key) + b"\n")
    os.chmod(final, 0o600)
    return final


def read_key(path: str | os.PathLike | None = None) -> bytes:
    """The key from a key file, or else from the ``SYNTHGEN_KEY`` environment variable (base64)."""
    if path is not None:
        try:
            text = Path(path).read_bytes().strip()
        except FileNotFoundError:
            raise ConfigError(f"key file {path} not found (fix: check the path or run synthgen keygen)") from None
        return _decode_key(text, f"key file {path}")
    if os.environ.get(KEY_ENV):
        return _decode_key(os.environ[KEY_ENV].encode(), f"${KEY_ENV}")
    raise ConfigError(f"no key given (fix: --key-file PATH, or set {KEY_ENV} to a base64 key from synthgen keygen)")


def _decode_key(text: bytes, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        raise ConfigError(f"{where} is not a base64 key (fix: make one with synthgen keygen)") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where} holds {len(key)} bytes, a key has {KEY_BYTES} (fix: make one with synthgen keygen)")
    return key


# ----------------------------------------------------------------------------- encrypt
def encrypt_stream(src: BinaryIO, dst: BinaryIO, *, key: bytes | None = None, passphrase: str | None = None,
                   chunk: int = CHUNK) -> None:
    """Encrypt ``src`` into ``dst`` with a key, or with a passphrase (scrypt, random salt)."""
    header = {"alg": "AES-256-GCM-STREAM", "chunk": chunk,
              "nonce_prefix": _b64(secrets.token_bytes(PREFIX_BYTES))}
    if passphrase is not None:
        salt = secrets.token_bytes(16)
        header["kdf"] = {"name": "scrypt", "salt": _b64(salt), **SCRYPT}
        key = _scrypt(passphrase, salt, SCRYPT)
    elif key is None:
        raise ConfigError("encryption needs a key or a passphrase")
    else:
        header["kdf"] = {"name": "key"}
    preamble = _preamble(header)
    dst.write(preamble)
    aead, prefix = AESGCM(key), base64.b64decode(header["nonce_prefix"])
    for index, block, last in _blocks(src, chunk):
        dst.write(aead.encrypt(_nonce(prefix, index, last), block, preamble))


def encrypt_file(src: str | os.PathLike, dst: str | os.PathLike, *, key: bytes | None = None,
                 passphrase: str | None = None, force: bool = False) -> Path:
    """Encrypt file ``src`` to ``dst`` atomically."""
    with open(src, "rb") as fin, atomic_path(dst, force=force) as tmp, open(tmp, "wb") as fout:
        encrypt_stream(fin, fout, key=key, passphrase=passphrase)
    return Path(dst)


# ----------------------------------------------------------------------------- decrypt
def decrypt_chunks(src: BinaryIO, *, key: bytes | None = None, passphrase: str | None = None) -> Iterator[bytes]:
    """Verified plaintext chunks of an encrypted stream; raises ``IntegrityError`` on any tampering."""
    header, preamble = _read_header(src)
    kdf = header.get("kdf", {})
    if kdf.get("name") == "scrypt":
        if passphrase is None:
            raise ConfigError("this file is encrypted with a passphrase (fix: give the passphrase)")
        try:
            key = _scrypt(passphrase, base64.b64decode(kdf["salt"]), kdf)
        except ValueError:  # scrypt refuses a damaged cost (n not a power of two, ...)
            raise IntegrityError("the encrypted file's header is damaged (fix: get an intact copy)") from None
    elif key is None:
        raise ConfigError("this file is encrypted with a key (fix: --key-file PATH or $SYNTHGEN_KEY)")
    chunk = int(header["chunk"])
    aead, prefix = AESGCM(key), base64.b64decode(header["nonce_prefix"])
    for index, block, last in _blocks(src, chunk + TAG_BYTES):
        try:
            yield aead.decrypt(_nonce(prefix, index, last), block, preamble)
        except InvalidTag:
            raise IntegrityError("the encrypted file failed authentication: wrong key or passphrase, or the "
                                 "file was modified or truncated (fix: check the key; get an intact copy)") from None


def decrypt_file(src: str | os.PathLike, dst: str | os.PathLike, *, key: bytes | None = None,
                 passphrase: str | None = None, force: bool = False) -> Path:
    """Decrypt ``src`` to ``dst``; ``dst`` appears only once every chunk has verified."""
    with open(src, "rb") as fin, atomic_path(dst, force=force) as tmp, open(tmp, "wb") as fout:
        for block in decrypt_chunks(fin, key=key, passphrase=passphrase):
            fout.write(block)
    return Path(dst)


def decrypt_bytes(data: bytes, *, key: bytes | None = None, passphrase: str | None = None) -> bytes:
    """Decrypt an in-memory encrypted blob (e.g. a model file)."""
    import io

    return b"".join(decrypt_chunks(io.BytesIO(data), key=key, passphrase=passphrase))


def is_encrypted(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts with synthgen's encryption magic."""
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


# ----------------------------------------------------------------------------- helpers
def _preamble(header: dict) -> bytes:
    body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + bytes([VERSION]) + struct.pack(">I", len(body)) + body


def _read_header(src: BinaryIO) -> tuple[dict, bytes]:
    head = src.read(len(MAGIC) + 5)
    if len(head) < len(MAGIC) + 5 or head[:len(MAGIC)] != MAGIC:
        raise IntegrityError("not a synthgen encrypted file (fix: check the path)")
    if head[len(MAGIC)] != VERSION:
        raise IntegrityError(f"encrypted with format version {head[len(MAGIC)]}; this synthgen reads version "
                             f"{VERSION} (fix: upgrade synthgen)")
    (length,) = struct.unpack(">I", head[len(MAGIC) + 1:])
    body = src.read(length) if length <= 1 << 16 else b""
    try:
        header = json.loads(body)
        kdf = header["kdf"]
        valid = (header["alg"] == "AES-256-GCM-STREAM" and int(header["chunk"]) > 0
                 and len(base64.b64decode(header["nonce_prefix"], validate=True)) == PREFIX_BYTES
                 and (kdf["name"] == "key" or (kdf["name"] == "scrypt" and base64.b64decode(kdf["salt"], validate=True)
                                               and all(int(kdf[k]) > 0 for k in ("n", "r", "p")))))
        if not valid:
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise IntegrityError("the encrypted file's header is damaged (fix: get an intact copy)") from None
    return header, head + body


def _blocks(src: BinaryIO, size: int) -> Iterator[tuple[int, bytes, bool]]:
    """(index, block, is_last) over ``src`` in blocks of ``size`` bytes (one empty block if empty)."""
    index, block = 0, src.read(size)
    while True:
        nxt = src.read(size)
        yield index, block, not nxt
        if not nxt:
            return
        index, block = index + 1, nxt


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= 2**32:
        raise ConfigError("file too large for one encryption stream (over 4 billion chunks)")
    return prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")


def _scrypt(passphrase: str, salt: bytes, cost: dict) -> bytes:
    return Scrypt(salt=salt, length=KEY_BYTES, n=int(cost["n"]), r=int(cost["r"]), p=int(cost["p"])).derive(
        passphrase.encode("utf-8"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
