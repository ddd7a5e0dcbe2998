"""Key pairs as PEM files: X25519 (encryption) and Ed25519 (signing), optionally passphrase-protected.

A key pair is a private PEM file (PKCS8, 0600) and ``<private>.pub`` (SubjectPublicKeyInfo, 0644).
A passphrase-protected private key is the unencrypted PKCS8 PEM inside synthgen's own encrypted
format with scrypt (``streams.encrypt_bytes``): PKCS8's own PEM encryption uses PBKDF2 at 2,048
rounds, which is cheap to guess against. Every way a key file can be wrong is a ``ConfigError``
that names it and the fix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TypeVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from synthgen.crypto.keys import KEYPAIR_HINT, check_private_mode, decode_key, key_kind, kind_name, require_key_kind
from synthgen.crypto.streams import MAGIC, decrypt_bytes, encrypt_bytes
from synthgen.errors import ConfigError, IntegrityError
from synthgen.files import check_writable, write_bytes

K = TypeVar("K")


def generate_keypair() -> tuple[X25519PrivateKey, X25519PublicKey]:
    """A fresh X25519 key pair for hybrid encryption."""
    private = X25519PrivateKey.generate()
    return private, private.public_key()


def write_keypair(private_path: str | os.PathLike, *, force: bool = False,
                  passphrase: str | None = None) -> tuple[Path, Path]:
    """Make an X25519 key pair: ``private_path`` (PKCS8 PEM, 0600) and ``<private_path>.pub`` (0644).

    Returns:
        The private and public key paths.
    """
    return write_pem_keypair(X25519PrivateKey.generate(), private_path, force=force, passphrase=passphrase)


def read_public_key(path: str | os.PathLike) -> X25519PublicKey:
    """A recipient's X25519 public key from a PEM file (``<private>.pub``)."""
    return load_public_pem(path, X25519PublicKey, KEYPAIR_HINT)


def read_private_key(path: str | os.PathLike, passphrase: str | None = None) -> X25519PrivateKey:
    """An X25519 private key from a PEM file (``passphrase``: if it is protected by one)."""
    return load_private_pem(path, passphrase, X25519PrivateKey, KEYPAIR_HINT)


def key_needs_passphrase(path: str | os.PathLike) -> bool:
    """Whether a PEM private key file is passphrase-protected (so a CLI knows to ask for one)."""
    data = _read_key_file(path, "key file")
    return _sealed(data) or _pem_label(data) == "ENCRYPTED PRIVATE KEY"


def write_pem_keypair(private_key: X25519PrivateKey | ed25519.Ed25519PrivateKey, private_path: str | os.PathLike,
                      *, force: bool = False, passphrase: str | None = None) -> tuple[Path, Path]:
    """Write ``private_key`` as PKCS8 PEM (0600) and its public key as ``<private_path>.pub`` (0644), atomically.

    Refuses to overwrite either file unless ``force``; checks both before writing anything.
    """
    private_path = check_writable(private_path, force=force)
    public_path = check_writable(Path(f"{private_path}.pub"), force=force)
    if passphrase is not None and not passphrase:
        raise ConfigError("the passphrase is empty (fix: give a passphrase, or none to leave the key unprotected)")
    secret = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    if passphrase:
        secret = encrypt_bytes(secret, passphrase=passphrase)
    public = private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    write_bytes(private_path, secret, force=force, mode=0o600)
    write_bytes(public_path, public, force=force, mode=0o644)
    return private_path, public_path


def load_private_pem(path: str | os.PathLike, passphrase: str | None, want: type[K], hint: str) -> K:
    """A private key of type ``want`` from a PEM file, with a clear ``ConfigError`` for every way it can be wrong.

    ``hint`` is the command that makes such a key (named in the fixes).
    """
    need = kind_name(want)
    data = _read_key_file(path, "private key file", hint)
    if _sealed(data):
        data = _unseal(path, data, passphrase)
        passphrase = None
    label = _pem_label(data) or ""
    if "PUBLIC KEY" in label:
        raise ConfigError(f"{path} holds {_public_kind(data)}; the private key is needed "
                          f"(fix: give the private key file, not the .pub file beside it)")
    if "PRIVATE KEY" not in label:
        raise _not_pem(path, data, need, hint)
    password = passphrase.encode("utf-8") if passphrase is not None else None
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError:
        if passphrase is None:
            raise ConfigError(f"{path} is protected by a passphrase (fix: give its passphrase)") from None
        raise ConfigError(f"{path} is not protected by a passphrase (fix: give no passphrase for it)") from None
    except ValueError:
        if label == "ENCRYPTED PRIVATE KEY":
            raise ConfigError(f"wrong passphrase for {path}, or the key file is damaged "
                              f"(fix: check the passphrase)") from None
        raise ConfigError(f"{path} is a damaged or unsupported PEM private key (fix: give {need} "
                          f"from {hint})") from None
    except UnsupportedAlgorithm:
        raise ConfigError(f"{path} holds a key of an unsupported kind; {need} is needed (fix: make one with "
                          f"{hint})") from None
    wanted = require_key_kind(key, want, f"{path} holds", hint)
    check_private_mode(path)
    return wanted


def load_public_pem(path: str | os.PathLike, want: type[K], hint: str) -> K:
    """A public key of type ``want`` from a PEM file, with a clear ``ConfigError`` for every way it can be wrong."""
    need = kind_name(want)
    data = _read_key_file(path, "public key file", hint)
    label = _pem_label(data) or ""
    if "PRIVATE KEY" in label:
        raise ConfigError(f"{path} is a private key; the public key is needed (fix: give the .pub file "
                          f"written beside it, and never hand out the private key)")
    if "PUBLIC KEY" not in label:
        raise _not_pem(path, data, need, hint)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{path} is a damaged or unsupported PEM public key (fix: give {need} "
                          f"from {hint})") from None
    return require_key_kind(key, want, f"{path} holds", hint)


def _sealed(data: bytes) -> bool:
    return data.startswith(MAGIC)


def _unseal(path: str | os.PathLike, data: bytes, passphrase: str | None) -> bytes:
    """The PEM inside a passphrase-protected key file (scrypt + AES-GCM)."""
    if passphrase is None:
        raise ConfigError(f"{path} is protected by a passphrase (fix: give its passphrase)")
    try:
        return decrypt_bytes(data, passphrase=passphrase)
    except (IntegrityError, ConfigError):
        raise ConfigError(f"wrong passphrase for {path}, or the key file is damaged "
                          "(fix: check the passphrase)") from None


def _read_key_file(path: str | os.PathLike, what: str, hint: str = KEYPAIR_HINT) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found (fix: check the path, or make a key pair with {hint})") from None
    except OSError as exc:  # a folder, no permission
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror} (fix: check the path)") from None


def _pem_label(data: bytes) -> str | None:
    match = re.search(rb"-----BEGIN ([A-Z0-9 ]+)-----", data)
    return match.group(1).decode() if match else None


def _not_pem(path: str | os.PathLike, data: bytes, need: str, hint: str) -> ConfigError:
    try:
        decode_key(data.strip(), "")
    except ConfigError:
        return ConfigError(f"{path} is not a PEM key file; {need} is needed (fix: make one with {hint})")
    return ConfigError(f"{path} is a symmetric key file (from synthgen keygen), not {need} "
                       f"(fix: give it with --key-file, or make a key pair with {hint})")


def _public_kind(data: bytes) -> str:
    try:
        return key_kind(serialization.load_pem_public_key(data))
    except (ValueError, UnsupportedAlgorithm):
        return "a public key"
