"""Key material: symmetric key files, X25519 / Ed25519 key pairs as PEM, fingerprints, clear errors.

Keys never come from the command line: a symmetric key is a base64 file created 0600 (``synthgen
keygen``) or ``$SYNTHGEN_KEY``; a key pair is a private PEM file (0600) and ``<private>.pub`` (0644).
A passphrase-protected private key is the unencrypted PKCS8 PEM inside synthgen's own encrypted
format with scrypt (``streams.encrypt_bytes``): PKCS8's own PEM encryption uses PBKDF2 at 2,048
rounds, which is cheap to guess against.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import TypeVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from synthgen.errors import ConfigError, IntegrityError
from synthgen.files import atomic_path, check_writable

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
    _write_with_mode(final, base64.b64encode(key or generate_key()) + b"\n", 0o600, force=force)
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
        return _decode_key(text, f"key file {path}")
    if os.environ.get(KEY_ENV):
        return _decode_key(os.environ[KEY_ENV].encode(), f"${KEY_ENV}")
    raise ConfigError(f"no key given (fix: --key-file PATH, or set {KEY_ENV} to a base64 key from synthgen keygen)")


def check_private_mode(path: str | os.PathLike) -> None:
    """Refuse a secret key file that its group or others may read (as ssh does)."""
    mode = os.stat(path).st_mode & 0o777
    if os.name == "posix" and mode & 0o077:
        raise ConfigError(f"key file {path} is readable by others (mode {mode:o}); a secret key must be 0600 "
                          f"(fix: chmod 600 {path}, and make a new key if others may have read it)")


def _decode_key(text: bytes, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        raise ConfigError(f"{where} is not a base64 key (fix: make one with synthgen keygen)") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where} holds {len(key)} bytes, a key has {KEY_BYTES} (fix: make one with synthgen keygen)")
    return key


# ----------------------------------------------------------------------------- key pairs (PEM)
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
        from synthgen.crypto.streams import encrypt_bytes

        secret = encrypt_bytes(secret, passphrase=passphrase)
    public = private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_with_mode(private_path, secret, 0o600, force=force)
    _write_with_mode(public_path, public, 0o644, force=force)
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
    key = require_key_kind(key, want, f"{path} holds", hint)
    check_private_mode(path)
    return key


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
    from synthgen.crypto.streams import MAGIC

    return data.startswith(MAGIC)


def _unseal(path: str | os.PathLike, data: bytes, passphrase: str | None) -> bytes:
    """The PEM inside a passphrase-protected key file (scrypt + AES-GCM)."""
    from synthgen.crypto.streams import decrypt_bytes

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
        _decode_key(data.strip(), "")
    except ConfigError:
        return ConfigError(f"{path} is not a PEM key file; {need} is needed (fix: make one with {hint})")
    return ConfigError(f"{path} is a symmetric key file (from synthgen keygen), not {need} "
                       f"(fix: give it with --key-file, or make a key pair with {hint})")


def require_key_kind(key: object, want: type[K], where: str, hint: str) -> K:
    """``key`` if it is a ``want``; else a ``ConfigError`` naming both kinds (``where``: "PATH holds", ...)."""
    if not isinstance(key, want):
        raise ConfigError(f"{where} {key_kind(key)}; {kind_name(want)} is needed (fix: use a key from {hint})")
    return key


def _public_kind(data: bytes) -> str:
    try:
        return key_kind(serialization.load_pem_public_key(data))
    except (ValueError, UnsupportedAlgorithm):
        return "a public key"


def _write_with_mode(path: Path, data: bytes, mode: int, *, force: bool) -> None:
    with atomic_path(path, force=force) as tmp:  # mkstemp: the file is created 0600, so no secret is ever exposed
        os.chmod(tmp, mode)
        tmp.write_bytes(data)


def raw_public(public_key: X25519PublicKey | ed25519.Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
