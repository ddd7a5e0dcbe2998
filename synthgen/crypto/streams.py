"""Authenticated encryption of files at rest: chunked AES-256-GCM in the STREAM construction.

File layout (version 1)::

    b"SGENC" | version (1 byte) | header length (4 bytes, big-endian) | header JSON | chunks...

The header names the algorithm, the chunk size, a random nonce prefix and how the key is
obtained (a key file / environment key, or a passphrase through scrypt with the salt and cost
stored here; a cost over 256 MiB of scrypt memory is refused before any derivation). Each chunk
is AES-256-GCM over at most ``chunk`` plaintext bytes with nonce
``prefix (7 bytes) | chunk counter (4 bytes) | last-chunk flag (1 byte)`` and the whole
preamble (magic, version, length, header) as associated data. So any change to the header,
any flipped byte, reordered, dropped or appended chunk, or a truncation (no chunk flagged last)
fails authentication and raises ``IntegrityError``; decryption to a path writes a temporary file
and publishes it only after the last chunk verified, so no partial plaintext is ever left.
Keys are never taken from the command line: a key file (created 0600) or ``SYNTHGEN_KEY``.

Hybrid mode (``recipient=``): anyone with the owner's X25519 public key can encrypt to the owner;
only the private key decrypts. Each file gets a random 256-bit data key that encrypts the chunks
as above; it is wrapped for the recipient with an ephemeral X25519 key pair: ECDH with the
recipient's key, HKDF-SHA256 (salt = ephemeral public key | recipient public key, raw bytes;
info ``b"synthgen hybrid v1"``) gives a key-encryption key, and AES key wrap (RFC 3394) wraps the
data key. The header keeps ``"kdf": {"name": "x25519", "epk": ..., "wrapped": ..., "recipient":
fingerprint}``; since the header is the associated data of every chunk, a changed ephemeral key,
wrapped key or fingerprint fails authentication. The fingerprint (first 16 hex digits of the
SHA-256 of the raw public key) names the key a file needs before any decryption is tried.
Key pairs are PEM files: the private key PKCS8 (0600, optionally passphrase-protected), the public
key ``<private>.pub`` (SubjectPublicKeyInfo, 0644).

Every function takes the secret as a ``Seal`` / ``Secret`` (``synthgen.crypto.sealing``) or as the
keyword arguments ``key=``, ``passphrase=``, ``recipient=`` / ``private_key=``, not both.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Literal, overload

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from synthgen.crypto.keys import (
    KEY_BYTES,
    KEYPAIR_HINT,
    fingerprint,
    generate_key,
    is_fingerprint,
    raw_public,
    require_key_kind,
)
from synthgen.crypto.sealing import MANY_SECRETS, NOT_ONE_SEAL, Seal, Secret
from synthgen.errors import ConfigError, IntegrityError
from synthgen.files import atomic_path

MAGIC, VERSION = b"SGENC", 1
CHUNK = 1 << 20  # plaintext bytes per chunk: streams files larger than memory
TAG_BYTES, PREFIX_BYTES = 16, 7
#: scrypt cost of new files (n = 2^17, r = 8, p = 1: 128 MiB and about 0.28 s per derivation on the dev machine;
#: files written at 2^15 before still open)
SCRYPT = {"n": 2**17, "r": 8, "p": 1}
HYBRID_INFO = b"synthgen hybrid v1"
STREAM_INFO = b"synthgen stream v1"
SALT_BYTES = 32
#: what a header may ask for before anything is authenticated (a forged header must not cost GBs)
MAX_CHUNK = 64 << 20
SCRYPT_LIMITS = {"n": (2**10, 2**20), "r": (1, 16), "p": (1, 4)}
#: the most memory (128 * n * r bytes) a header may make scrypt use, checked before any derivation
SCRYPT_MAX_MEMORY = 256 << 20
WRAPPED_BYTES = KEY_BYTES + 8  # RFC 3394 key wrap adds one 8-byte block


# ----------------------------------------------------------------------------- encrypt
def encrypt_stream(src: BinaryIO, dst: BinaryIO, seal: Seal | None = None, *, key: bytes | None = None,
                   passphrase: str | None = None, recipient: X25519PublicKey | None = None, chunk: int = CHUNK) -> None:
    """Encrypt ``src`` into ``dst`` with exactly one of: a key, a passphrase (scrypt, random salt), or a
    recipient's X25519 public key (a random data key wrapped for it), given as ``seal`` or by keyword."""
    aead, prefix, preamble = _begin(dst, chunk, sealing(seal, key, passphrase, recipient))
    sealed = memoryview(bytearray(chunk + TAG_BYTES))  # one reused output buffer: no per-chunk allocation
    for index, block, last in _blocks(src, chunk):
        out = sealed[:len(block) + TAG_BYTES]
        aead.encrypt_into(_nonce(prefix, index, last), block, preamble, out)
        dst.write(out)  # io contract: write() does not keep the buffer after it returns


class EncryptingWriter(io.RawIOBase):
    """A writable binary file object that encrypts into ``dst`` as data arrives (same format as
    ``encrypt_stream``), so a table writer can produce an encrypted file with no plaintext on disk.

    ``close()`` writes the last chunk; it does not close ``dst``. ``tell()`` counts plaintext bytes.
    """

    def __init__(self, dst: BinaryIO, seal: Seal | None = None, *, key: bytes | None = None,
                 passphrase: str | None = None, recipient: X25519PublicKey | None = None, chunk: int = CHUNK):
        super().__init__()
        self._dst, self._chunk = dst, chunk
        self._aead, self._prefix, self._preamble = _begin(dst, chunk, sealing(seal, key, passphrase, recipient))
        self._buffer, self._index, self._written = bytearray(), 0, 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        self._written += len(data)
        if len(self._buffer) > self._chunk:  # hold the last chunk back: only close() knows it is the last
            whole = (len(self._buffer) - 1) // self._chunk * self._chunk
            with memoryview(self._buffer) as view:
                for start in range(0, whole, self._chunk):
                    self._emit(view[start:start + self._chunk], last=False)
            del self._buffer[:whole]
        return len(data)

    def tell(self) -> int:
        return self._written

    def close(self) -> None:
        """Write the last chunk (flagged last) and close; the file is then complete."""
        if not self.closed:
            self._emit(bytes(self._buffer), last=True)
            self._buffer.clear()
        super().close()

    def abort(self) -> None:
        """Close without the last chunk: the output then fails authentication as truncated."""
        self._buffer.clear()
        super().close()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:  # the producer failed: never seal a partial file as complete
            self.abort()

    def __del__(self) -> None:  # garbage collection of an unclosed writer is not a clean end either
        if not self.closed:
            self.abort()

    def _emit(self, block: bytes | memoryview, *, last: bool) -> None:
        self._dst.write(self._aead.encrypt(_nonce(self._prefix, self._index, last), block, self._preamble))
        self._index += 1


def sealing(seal: Seal | None, key: bytes | None = None, passphrase: str | None = None,
            recipient: X25519PublicKey | None = None) -> Seal:
    """The one seal given: ``seal`` (a ``Seal``, or a dict ``Seal.of`` takes), or made of the keyword arguments
    (refused: none, several, or both ways)."""
    seal = Seal.of(seal)
    if seal is None:
        return Seal(key=key, passphrase=passphrase, recipient=recipient)
    if any(x is not None for x in (key, passphrase, recipient)):
        raise ConfigError(NOT_ONE_SEAL)
    return seal


def opening(secret: Secret | None, key: bytes | None = None, passphrase: str | None = None,
            private_key: X25519PrivateKey | None = None) -> Secret | None:
    """The secret given: ``secret`` (a ``Secret``, or a dict ``Secret.of`` takes), or made of the keyword
    arguments; None when none was (the file's header then names the one it needs)."""
    secret = Secret.of(secret)
    if secret is None:
        return Secret.of({"key": key, "passphrase": passphrase, "private_key": private_key})
    if any(x is not None for x in (key, passphrase, private_key)):
        raise ConfigError(MANY_SECRETS)
    return secret


def _begin(dst: BinaryIO, chunk: int, seal: Seal) -> tuple[AESGCM, bytes, bytes]:
    """Write the preamble for ``seal``; return the cipher, nonce prefix and preamble."""
    if not 16 <= chunk <= MAX_CHUNK:
        raise ConfigError(f"chunk size {chunk} is out of range (fix: 16 bytes to {MAX_CHUNK >> 20} MiB)")
    prefix = secrets.token_bytes(PREFIX_BYTES)
    header: dict[str, Any] = {"alg": "AES-256-GCM-STREAM", "chunk": chunk, "nonce_prefix": _b64(prefix)}
    if seal.passphrase is not None:
        salt = secrets.token_bytes(16)
        header["kdf"] = {"name": "scrypt", "salt": _b64(salt), **SCRYPT}
        key = _scrypt(seal.passphrase, salt, SCRYPT)
    elif seal.recipient is not None:
        key = generate_key()
        header["kdf"] = _wrap_for(seal.recipient, key)
    else:
        salt = secrets.token_bytes(SALT_BYTES)
        header["kdf"] = {"name": "key", "salt": _b64(salt)}
        key = _file_key(_checked_key(seal.key), salt)
    preamble = _preamble(header)
    dst.write(preamble)
    return AESGCM(key), prefix, preamble


def encrypt_file(src: str | os.PathLike, dst: str | os.PathLike, seal: Seal | None = None, *,
                 key: bytes | None = None, passphrase: str | None = None, recipient: X25519PublicKey | None = None,
                 force: bool = False) -> Path:
    """Encrypt file ``src`` to ``dst`` atomically (``seal``, or one of ``key``, ``passphrase``, ``recipient``)."""
    seal = sealing(seal, key, passphrase, recipient)
    with open(src, "rb") as fin, atomic_path(dst, force=force) as tmp, open(tmp, "wb") as fout:
        encrypt_stream(fin, fout, seal)
    return Path(dst)


def _wrap_for(recipient: X25519PublicKey, data_key: bytes) -> dict[str, str]:
    """The header's ``kdf`` entry: ``data_key`` wrapped for ``recipient`` through an ephemeral X25519 key."""
    require_key_kind(recipient, X25519PublicKey, "the recipient key is", KEYPAIR_HINT)
    ephemeral = X25519PrivateKey.generate()
    epk = raw_public(ephemeral.public_key())
    kek = _kek(ephemeral.exchange(recipient), epk, raw_public(recipient))
    return {"name": "x25519", "epk": _b64(epk), "wrapped": _b64(aes_key_wrap(kek, data_key)),
            "recipient": fingerprint(recipient)}


def _kek(shared: bytes, epk: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=epk + recipient, info=HYBRID_INFO).derive(shared)


# ----------------------------------------------------------------------------- decrypt
def decrypt_chunks(src: BinaryIO, secret: Secret | None = None, *, key: bytes | None = None,
                   passphrase: str | None = None, private_key: X25519PrivateKey | None = None) -> Iterator[bytes]:
    """Verified plaintext chunks of an encrypted stream; raises ``IntegrityError`` on any tampering.

    Give the secret the file was encrypted with, as ``secret`` or by keyword: ``key``, ``passphrase``, or the
    recipient's ``private_key``.
    """
    return _plaintext(src, opening(secret, key, passphrase, private_key), reuse=False)


def decrypt_file(src: str | os.PathLike, dst: str | os.PathLike, secret: Secret | None = None, *,
                 key: bytes | None = None, passphrase: str | None = None,
                 private_key: X25519PrivateKey | None = None, force: bool = False) -> Path:
    """Decrypt ``src`` to ``dst``; ``dst`` appears only once every chunk has verified."""
    opener = opening(secret, key, passphrase, private_key)
    with open(src, "rb") as fin, atomic_path(dst, force=force) as tmp, open(tmp, "wb") as fout:
        for block in _plaintext(fin, opener, reuse=True):
            fout.write(block)
    return Path(dst)


@overload
def _plaintext(src: BinaryIO, secret: Secret | None, *, reuse: Literal[False]) -> Iterator[bytes]: ...


@overload
def _plaintext(src: BinaryIO, secret: Secret | None, *, reuse: bool) -> Iterator[bytes | memoryview]: ...


def _plaintext(src: BinaryIO, secret: Secret | None, *, reuse: bool) -> Iterator[bytes | memoryview]:
    """Verified plaintext per chunk: fresh bytes, or (``reuse``) views of one buffer valid until the next."""
    header, preamble = _read_header(src)
    key = _data_key(header["kdf"], secret)
    chunk = int(header["chunk"])
    aead, prefix = AESGCM(key), base64.b64decode(header["nonce_prefix"])
    plain = memoryview(bytearray(chunk)) if reuse else None
    for index, block, last in _blocks(src, chunk + TAG_BYTES):
        nonce = _nonce(prefix, index, last)
        try:
            if plain is None:
                yield aead.decrypt(nonce, block, preamble)
            else:
                out = plain[:max(len(block) - TAG_BYTES, 0)]
                aead.decrypt_into(nonce, block, preamble, out)
                yield out
        except (InvalidTag, ValueError):  # ValueError: a block shorter than its tag (truncated)
            raise IntegrityError("the encrypted file failed authentication: wrong key or passphrase, or the "
                                 "file was modified or truncated (fix: check the key; get an intact copy)") from None


def decrypt_bytes(data: bytes, secret: Secret | None = None, *, key: bytes | None = None,
                  passphrase: str | None = None, private_key: X25519PrivateKey | None = None) -> bytes:
    """Decrypt an in-memory encrypted blob (e.g. a model file), with ``secret`` or one given by keyword."""
    return b"".join(decrypt_chunks(io.BytesIO(data), opening(secret, key, passphrase, private_key)))


class DecryptingReader(io.RawIOBase):
    """A readable binary file object over the verified plaintext of an encrypted stream.

    Every byte it returns has been authenticated; a modified or truncated file raises
    ``IntegrityError`` from ``read`` when the reader reaches the bad chunk.
    """

    def __init__(self, src: BinaryIO, secret: Secret | None = None, *, key: bytes | None = None,
                 passphrase: str | None = None, private_key: X25519PrivateKey | None = None):
        super().__init__()
        self._chunks = decrypt_chunks(src, opening(secret, key, passphrase, private_key))
        self._pending = memoryview(b"")
        self._pending = memoryview(next(self._chunks, b""))  # reads the header now: a wrong key fails here

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            block = next(self._chunks, None)
            if block is None:
                return 0
            self._pending = memoryview(block)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def encrypt_bytes(data: bytes, seal: Seal | None = None, *, key: bytes | None = None, passphrase: str | None = None,
                  recipient: X25519PublicKey | None = None) -> bytes:
    """Encrypt an in-memory blob with ``seal``, or one of ``key=``, ``passphrase=`` or ``recipient=``."""
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, sealing(seal, key, passphrase, recipient))
    return out.getvalue()


def is_encrypted(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts with synthgen's encryption magic."""
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


def encryption_mode(path: str | os.PathLike) -> str:
    """How an encrypted file is opened: ``"key"``, ``"scrypt"`` (a passphrase) or ``"x25519"`` (a private key)."""
    with open(path, "rb") as fh:
        return _read_header(fh)[0]["kdf"]["name"]


def _data_key(kdf: dict[str, Any], secret: Secret | None) -> bytes:
    """The file's AES key from the one secret its header asks for; a clear ``ConfigError`` for a wrong kind."""
    name = kdf["name"]
    if name == "scrypt":
        if secret is None or secret.passphrase is None:
            raise ConfigError("this file is encrypted with a passphrase (fix: give the passphrase)")
        try:
            return _scrypt(secret.passphrase, base64.b64decode(kdf["salt"]), kdf)
        except ValueError:  # scrypt refuses a damaged cost (n not a power of two, ...)
            raise IntegrityError("the encrypted file's header is damaged (fix: get an intact copy)") from None
    if name == "x25519":
        if secret is None or secret.private_key is None:
            raise ConfigError("this file is encrypted to a public key (fix: give the private key with "
                              "--identity PATH)")
        return _unwrap(kdf, secret.private_key)
    if secret is None or secret.key is None:
        raise ConfigError("this file is encrypted with a key (fix: --key-file PATH or $SYNTHGEN_KEY)")
    key = _checked_key(secret.key)
    return _file_key(key, base64.b64decode(kdf["salt"])) if "salt" in kdf else key


def _checked_key(key: object) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        got = f"{len(key)} bytes" if isinstance(key, bytes) else type(key).__name__
        raise ConfigError(f"a key is {KEY_BYTES} random bytes, got {got} (fix: use synthgen.crypto.keys.read_key "
                          "or generate_key)")
    return key


def _file_key(key: bytes, salt: bytes) -> bytes:
    """A fresh AES key per file from the owner's key and the file's random salt (HKDF-SHA256).

    The owner's key never encrypts directly, so the 56-bit random nonce prefix cannot collide
    across files under one AES key (Tink's AES-GCM-HKDF streaming design).
    """
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=STREAM_INFO).derive(key)


def _unwrap(kdf: dict[str, Any], private_key: X25519PrivateKey) -> bytes:
    """The data key wrapped in a hybrid header; refuses a private key for another recipient before trying."""
    require_key_kind(private_key, X25519PrivateKey, "the key given is", KEYPAIR_HINT)
    mine = fingerprint(private_key.public_key())
    if kdf["recipient"] != mine:
        raise IntegrityError(f"this file is encrypted for key {kdf['recipient']}, your key is {mine} (fix: give "
                             f"the private key for {kdf['recipient']}; if that is yours, the file's header was "
                             f"modified: get an intact copy)")
    epk = base64.b64decode(kdf["epk"])
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(epk))
        return aes_key_unwrap(_kek(shared, epk, raw_public(private_key.public_key())), base64.b64decode(kdf["wrapped"]))
    except (InvalidUnwrap, ValueError):  # ValueError: a low-order ephemeral key (all-zero shared secret)
        raise IntegrityError("the encrypted file failed authentication: its wrapped key does not open with your "
                             "private key, so the header was modified (fix: get an intact copy)") from None


# ----------------------------------------------------------------------------- helpers
def _preamble(header: dict[str, Any]) -> bytes:
    body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + bytes([VERSION]) + struct.pack(">I", len(body)) + body


def _read_header(src: BinaryIO) -> tuple[dict[str, Any], bytes]:
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
        valid = (header["alg"] == "AES-256-GCM-STREAM" and 16 <= int(header["chunk"]) <= MAX_CHUNK
                 and len(base64.b64decode(header["nonce_prefix"], validate=True)) == PREFIX_BYTES
                 and _valid_kdf(header["kdf"]))
        if not valid:
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise IntegrityError("the encrypted file's header is damaged (fix: get an intact copy)") from None
    _check_scrypt_memory(header["kdf"])
    return header, head + body


def _check_scrypt_memory(kdf: dict[str, Any]) -> None:
    """Refuse a passphrase header whose scrypt cost needs more than ``SCRYPT_MAX_MEMORY`` (before deriving)."""
    if kdf["name"] != "scrypt":
        return
    memory = 128 * int(kdf["n"]) * int(kdf["r"])
    if memory > SCRYPT_MAX_MEMORY:
        raise IntegrityError(f"the encrypted file's header asks scrypt for {memory >> 20} MiB of memory, more than "
                             f"the {SCRYPT_MAX_MEMORY >> 20} MiB synthgen allows; synthgen never writes such a "
                             f"header (fix: get an intact copy from whoever encrypted the file)")


def _valid_kdf(kdf: dict[str, Any]) -> bool:
    """Whether a header's ``kdf`` entry is well formed (raises ``KeyError`` etc. for a missing or mistyped field)."""
    if kdf["name"] == "key":  # no salt: a file from before per-file keys
        return "salt" not in kdf or len(base64.b64decode(kdf["salt"], validate=True)) == SALT_BYTES
    if kdf["name"] == "scrypt":
        return bool(base64.b64decode(kdf["salt"], validate=True)) and all(
            lo <= int(kdf[k]) <= hi for k, (lo, hi) in SCRYPT_LIMITS.items())
    if kdf["name"] == "x25519":
        return (len(base64.b64decode(kdf["epk"], validate=True)) == KEY_BYTES
                and len(base64.b64decode(kdf["wrapped"], validate=True)) == WRAPPED_BYTES
                and is_fingerprint(kdf["recipient"]))
    return False


def _blocks(src: BinaryIO, size: int) -> Iterator[tuple[int, memoryview, bool]]:
    """(index, block, is_last) over ``src`` in blocks of ``size`` bytes (one empty block if empty).

    Reads into two alternating buffers, filling each completely (a raw stream may return short
    reads): a block is valid until the next one after it is yielded.
    """
    buffers = (memoryview(bytearray(size)), memoryview(bytearray(size)))
    index, n = 0, _fill(src, buffers[0])
    while True:
        m = _fill(src, buffers[(index + 1) % 2])
        yield index, buffers[index % 2][:n], not m
        if not m:
            return
        index, n = index + 1, m


def _fill(src: BinaryIO, view: memoryview) -> int:
    got = 0
    while got < len(view):
        n = src.readinto(view[got:]) if hasattr(src, "readinto") else _read_into(src, view[got:])
        if not n:
            break
        got += n
    return got


def _read_into(src: BinaryIO, view: memoryview) -> int:
    data = src.read(len(view))
    view[:len(data)] = data
    return len(data)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= 2**32:
        raise ConfigError("file too large for one encryption stream (over 4 billion chunks)")
    return prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")


def _scrypt(passphrase: str, salt: bytes, cost: Mapping[str, Any]) -> bytes:
    return Scrypt(salt=salt, length=KEY_BYTES, n=int(cost["n"]), r=int(cost["r"]), p=int(cost["p"])).derive(
        passphrase.encode("utf-8"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
