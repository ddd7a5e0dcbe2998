"""Key material: symmetric key files, key fingerprints and kinds, clear errors.

Keys never come from the command line: a symmetric key is a base64 file created 0600 (``synthgen
keygen``) or ``$SYNTHGEN_KEY``. Key pairs (X25519 / Ed25519 as PEM files) are in ``keypairs``; this
module names any key: its fingerprint and its kind in words.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from synthgen.errors import ConfigError
from synthgen.files import check_writable, write_bytes

KEY_BYTES = 32
KEY_ENV = "SYNTHGEN_KEY"
FINGERPRINT_HEX = 16
#: how the user makes an X25519 key pair (named in error messages)
KEYPAIR_HINT = "synthgen keygen --public"
#: key kinds for messages: (private class, public class, article and name). Others (DSA, DH) are named from
#: their class name: referring to cryptography's deprecated classes would print deprecation warnings on every run
_KINDS = [(X25519PrivateKey, X25519PublicKey, "an X25519 (encryption)"),
          (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey, "an Ed25519 (signing)"),
          (rsa.RSAPrivateKey, rsa.RSAPublicKey, "an RSA"),
          (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey, "an EC"),
          (ed448.Ed448PrivateKey, ed448.Ed448PublicKey, "an Ed448"),
          (x448.X448PrivateKey, x448.X448PublicKey, "an X448")]
_OTHER_KEY = re.compile(r"(?P<name>[A-Z][A-Za-z0-9]*)(?P<side>Private|Public)Key")
K = TypeVar("K")


def generate_key() -> bytes:
    """A fresh random 256-bit key."""
    return secrets.token_bytes(KEY_BYTES)


def write_key_file(path: str | os.PathLike, key: bytes | None = None, *, force: bool = False) -> Path:
    """Write a key (new if None) as base64 to ``path``, atomically and readable by its owner only (0600)."""
    final = check_writable(path, force=force)
    write_bytes(final, base64.b64encode(key or generate_key()) + b"\n", force=force, mode=0o600)
    return final


def read_key(path: str | os.PathLike | None = None) -> bytes:
    """The key from a key file, or else from the ``SYNTHGEN_KEY`` environment variable (base64).

    Raises:
        ConfigError: no key, a missing or malformed key file, or one that others can read.
    """
    if path is not None:
        try:
            text = Path(path).read_bytes().strip()
        except FileNotFoundError:
            raise ConfigError(f"key file {path} not found (fix: check the path or run synthgen keygen)") from None
        except OSError as exc:
            raise ConfigError(f"cannot read key file {path}: {exc.strerror} (fix: check the path)") from None
        check_private_mode(path)
        return decode_key(text, f"key file {path}")
    if os.environ.get(KEY_ENV):
        return decode_key(os.environ[KEY_ENV].encode(), f"${KEY_ENV}")
    raise ConfigError(f"no key given (fix: --key-file PATH, or set {KEY_ENV} to a base64 key from synthgen keygen)")


def check_private_mode(path: str | os.PathLike) -> None:
    """Refuse a secret key file that its group or others may read (as ssh does)."""
    mode = os.stat(path).st_mode & 0o777
    if os.name == "posix" and mode & 0o077:
        raise ConfigError(f"key file {path} is readable by others (mode {mode:o}); a secret key must be 0600 "
                          f"(fix: chmod 600 {path}, and make a new key if others may have read it)")


def decode_key(text: bytes, where: str) -> bytes:
    """The 32 key bytes of a base64 key (``where``: the file or variable it came from, for the error)."""
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        raise ConfigError(f"{where} is not a base64 key (fix: make one with synthgen keygen)") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where} holds {len(key)} bytes, a key has {KEY_BYTES} (fix: make one with synthgen keygen)")
    return key


# ----------------------------------------------------------------------------- naming keys
def fingerprint(public_key: X25519PublicKey | ed25519.Ed25519PublicKey) -> str:
    """First 16 hex digits of the SHA-256 of a public key's raw bytes: names a key in messages and headers."""
    return hashlib.sha256(raw_public(public_key)).hexdigest()[:FINGERPRINT_HEX]


def is_fingerprint(value: object) -> bool:
    """Whether ``value`` has the shape of a key fingerprint (16 lower-case hex digits)."""
    return isinstance(value, str) and re.fullmatch(f"[0-9a-f]{{{FINGERPRINT_HEX}}}", value) is not None


def key_kind(key: object) -> str:
    """A key's kind in words, e.g. ``"an Ed25519 (signing) public key"``, for error messages."""
    return kind_name(type(key))


def kind_name(cls: type) -> str:
    """The words for a key class, e.g. ``"an X25519 (encryption) private key"``."""
    for private, public, name in _KINDS:
        if issubclass(cls, private | public):
            return f"{name} {'private' if issubclass(cls, private) else 'public'} key"
    for base in cls.__mro__:  # a key class of another kind (DSA, DH), e.g. cryptography's DSAPrivateKey
        match = _OTHER_KEY.fullmatch(base.__name__)
        if match and base.__module__.startswith("cryptography."):
            return f"a {match['name']} {match['side'].lower()} key"
    return f"a {cls.__name__} (not a key)"


def require_key_kind(key: object, want: type[K], where: str, hint: str) -> K:
    """``key`` if it is a ``want``; else a ``ConfigError`` naming both kinds (``where``: "PATH holds", ...)."""
    if not isinstance(key, want):
        raise ConfigError(f"{where} {key_kind(key)}; {kind_name(want)} is needed (fix: use a key from {hint})")
    return key


def raw_public(public_key: X25519PublicKey | ed25519.Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
