"""Where the CLI gets keys: key files, ``$SYNTHGEN_KEY``, key pairs, and passphrases from
``$SYNTHGEN_PASSPHRASE`` or a prompt without echo. Never from the command line itself.

Inputs are opened with the secret their header asks for (key, passphrase or private key), so one
set of options serves every command; outputs are encrypted with ``--encrypt`` (the owner's key)
or ``--recipient`` (someone's public key).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, overload

import click

from synthgen.crypto.sealing import Seal, Secret  # light: no cryptography until a key is read
from synthgen.errors import SynthgenError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

PASSPHRASE_ENV = "SYNTHGEN_PASSPHRASE"
_PATH = click.Path(dir_okay=False, path_type=Path)


def passphrase(*, confirm: bool, prompt: str = "passphrase") -> str:
    """``$SYNTHGEN_PASSPHRASE``, or asked for on the terminal without echo."""
    return os.environ.get(PASSPHRASE_ENV) or click.prompt(prompt, hide_input=True, confirmation_prompt=confirm,
                                                          err=True)


def optional_key(key_file: Path | None) -> bytes | None:
    """The owner's key from --key-file, else $SYNTHGEN_KEY, else None (no key at hand)."""
    from synthgen.crypto.keys import KEY_ENV, read_key

    return read_key(key_file) if key_file is not None or os.environ.get(KEY_ENV) else None


def key_passphrase(path: Path) -> str | None:
    """The passphrase of a private key file, asked for only when the file has one."""
    from synthgen.crypto.keypairs import key_needs_passphrase

    return passphrase(confirm=False, prompt=f"passphrase for {path}") if key_needs_passphrase(path) else None


def private_key(path: Path) -> X25519PrivateKey:
    """An X25519 private key file (its passphrase asked for when it has one)."""
    from synthgen.crypto.keypairs import read_private_key

    return read_private_key(path, key_passphrase(path))


def signing_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 signing key file (its passphrase asked for when it has one)."""
    from synthgen.crypto.signing import read_signing_key

    return read_signing_key(path, key_passphrase(path))


def input_secret(path: Path, key_file: Path | None, identity: Path | None) -> Secret | None:
    """The secret that opens ``path`` when it is encrypted (chosen by its header); None for a plain file."""
    from synthgen.crypto.streams import encryption_mode, is_encrypted

    if not path.is_file() or not is_encrypted(path):
        return None
    mode = encryption_mode(path)
    if mode == "x25519":
        if identity is None:
            raise SynthgenError(f"{path} is encrypted to a public key (fix: --identity PRIVATE_KEY_FILE)")
        return Secret(private_key=private_key(identity))
    if mode == "scrypt":
        return Secret(passphrase=passphrase(confirm=False, prompt=f"passphrase for {path}"))
    key = optional_key(key_file)
    if key is None:
        raise SynthgenError(f"{path} is encrypted with a key (fix: --key-file PATH or set SYNTHGEN_KEY)")
    return Secret(key=key)


def output_seal(out: Path | None, encrypt: bool, recipient: Path | None, key_file: Path | None) -> Seal | None:
    """How to encrypt an output: the owner's key (``--encrypt``) or a recipient's public key; None: plain."""
    from synthgen.crypto.keypairs import read_public_key
    from synthgen.crypto.keys import read_key

    if encrypt and recipient is not None:
        raise click.UsageError("give --encrypt (your key) or --recipient (their public key), not both")
    if recipient is not None:
        return Seal(recipient=read_public_key(recipient))
    if encrypt:
        return Seal(key=read_key(key_file))
    if out is not None and out.name.lower().endswith(".enc"):
        raise click.UsageError(f"{out} ends in .enc but nothing encrypts it (fix: add --encrypt or --recipient PUB)")
    return None


_KEY_FILE = click.option("--key-file", type=_PATH, default=None,
                         help="Key file from synthgen keygen (default: $SYNTHGEN_KEY).")
_IDENTITY = click.option("--identity", type=_PATH, default=None,
                         help="Your private key (synthgen keygen --public), for inputs encrypted to your public key.")
_ENCRYPT = click.option("--encrypt", is_flag=True,
                        help="Encrypt the output with your key (--key-file / $SYNTHGEN_KEY).")
_RECIPIENT = click.option("--recipient", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                          help="Encrypt the output to this public key (.pub): only its owner can open it.")


def key_options(*, inputs: bool = True, outputs: bool = False) -> Callable[[Callable], Callable]:
    """--key-file, plus --identity for encrypted inputs and --encrypt / --recipient for outputs."""
    options = [_KEY_FILE] + [_IDENTITY] * inputs + [_ENCRYPT, _RECIPIENT] * outputs

    def decorate(func: Callable) -> Callable:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def allow_rename_option(func: Callable) -> Callable:
    """--allow-rename: accept a signed file under another name than it was signed as (or a version 1 signature)."""
    return click.option("--allow-rename", is_flag=True,
                        help="Accept a file signed under another name, or an old (version 1) signature that names "
                             "none: content and signer are still checked.")(func)


def verify_option(func: Callable) -> Callable:
    """--verify PUB [--signature SIG] [--allow-rename]: refuse a model file without a valid signature by that key."""
    func = allow_rename_option(func)
    func = click.option("--signature", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                        help="Signature file for --verify (default: <model file>.sig).")(func)
    return click.option("--verify", "verify_key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        default=None, help="Signer's public key: refuse the model unless its signature verifies.")(func)


@overload
def verify_key(path: Path) -> Ed25519PublicKey: ...


@overload
def verify_key(path: None) -> None: ...


def verify_key(path: Path | None) -> Ed25519PublicKey | None:
    """The Ed25519 public key given with --verify, or None."""
    if path is None:
        return None
    from synthgen.crypto.signing import read_verify_key

    return read_verify_key(path)
