"""What opens an encrypted file (``Secret``) and what a file is sealed with (``Seal``).

Each holds exactly one thing: a 32-byte symmetric key, a passphrase (scrypt), or, for public-key
encryption, the recipient's X25519 public key (sealing) or private key (opening). Every function that
encrypts or decrypts takes one of them, so the kind of secret is in the signature. The file format
does not depend on how a secret was passed.

The public API still takes what it always took (``{"key": ...}``, ``{"passphrase": ...}``,
``{"private_key": ...}`` / ``{"recipient": ...}``, or keyword arguments): :meth:`Secret.of` and
:meth:`Seal.of` convert those where they come in. Neither prints its contents (``repr`` names the kind).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, cast

from synthgen.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

SecretKind: TypeAlias = Literal["key", "passphrase", "private_key"]
SealKind: TypeAlias = Literal["key", "passphrase", "recipient"]

#: the refusals of a secret or seal holding more than one thing (or, for a seal, nothing)
MANY_SECRETS = ("decryption takes one of a key, a passphrase or a private key (fix: give only the one the file "
                "was encrypted with)")
NOT_ONE_SEAL = ("encryption needs exactly one of a key, a passphrase or a recipient's public key (fix: give one of "
                "--key-file, --passphrase, --recipient)")


class _OneOf:
    """A Secret or a Seal: ``repr`` names the kind it holds, never the value."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_given(self)[0]}=...)"


@dataclass(frozen=True, repr=False)
class Secret(_OneOf):
    """What opens an encrypted file: exactly one of the owner's ``key`` (32 bytes), a ``passphrase``, or the
    X25519 ``private_key`` of the recipient a file was encrypted to.

    Example:
        >>> Secret(passphrase="correct horse").kind
        'passphrase'
    """

    key: bytes | None = None
    passphrase: str | None = None
    private_key: X25519PrivateKey | None = None

    def __post_init__(self) -> None:
        given = _given(self)
        if len(given) > 1:
            raise ConfigError(MANY_SECRETS)
        if not given:
            raise ConfigError("a Secret holds one of key=, passphrase= or private_key=, got none (fix: give the one "
                              "the file was encrypted with)")

    @property
    def kind(self) -> SecretKind:
        """Which one it holds: ``"key"``, ``"passphrase"`` or ``"private_key"``."""
        return cast(SecretKind, _given(self)[0])

    @classmethod
    def of(cls, value: Secret | Mapping[str, Any] | None) -> Secret | None:
        """``value`` itself when it is a Secret; a mapping (``{"key": ...}``, ``{"passphrase": ...}`` or
        ``{"private_key": ...}``) as one; None for None or a mapping of nothing but None."""
        return _of(cls, value, "secret", "{'key': ...}, {'passphrase': ...} or {'private_key': ...}")


@dataclass(frozen=True, repr=False)
class Seal(_OneOf):
    """What a file is sealed (encrypted) with: exactly one of the owner's ``key`` (32 bytes), a ``passphrase``,
    or a ``recipient``'s X25519 public key (only the matching private key opens the file).

    Example:
        >>> Seal(passphrase="correct horse").kind
        'passphrase'
    """

    key: bytes | None = None
    passphrase: str | None = None
    recipient: X25519PublicKey | None = None

    def __post_init__(self) -> None:
        if len(_given(self)) != 1:
            raise ConfigError(NOT_ONE_SEAL)

    @property
    def kind(self) -> SealKind:
        """Which one it holds: ``"key"``, ``"passphrase"`` or ``"recipient"``."""
        return cast(SealKind, _given(self)[0])

    @classmethod
    def of(cls, value: Seal | Mapping[str, Any] | None) -> Seal | None:
        """``value`` itself when it is a Seal; a mapping (``{"key": ...}``, ``{"passphrase": ...}`` or
        ``{"recipient": ...}``) as one; None for None or a mapping of nothing but None (``{}``: no encryption)."""
        return _of(cls, value, "seal", "{'key': ...}, {'passphrase': ...} or {'recipient': ...}")


T = TypeVar("T", Secret, Seal)


def _given(value: Any) -> list[str]:
    """The names of the fields a Secret or Seal holds (one, once it is made)."""
    return [f.name for f in dataclasses.fields(value) if getattr(value, f.name) is not None]


def _of(cls: type[T], value: T | Mapping[str, Any] | None, what: str, shapes: str) -> T | None:
    """``value`` as a ``cls`` (Secret or Seal), from itself, None or a mapping of its fields."""
    if value is None or isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"a {what} is a {cls.__name__} or one of {shapes}, got {type(value).__name__} (fix: pass "
                          f"{what}={cls.__name__}(...) or a dict)")
    given = {name: v for name, v in value.items() if v is not None}
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, given)) - names)
    if unknown:
        raise ConfigError(f"a {what} is one of {shapes}, not {unknown} (fix: use one of {sorted(names)})")
    return cls(**given) if given else None
