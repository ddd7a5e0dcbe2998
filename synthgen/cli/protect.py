"""mask, keygen, encrypt, decrypt, sign and verify: the data-protection side of the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from synthgen.cli.app import handle_errors, main
from synthgen.cli.secrets import (
    PASSPHRASE_ENV,
    allow_rename_option,
    input_secret,
    key_options,
    optional_key,
    output_seal,
    passphrase,
)
from synthgen.cli.secrets import signing_key as read_signer

_OUT = click.Path(dir_okay=False, path_type=Path)
_IN = click.Path(exists=True, dir_okay=False, path_type=Path)


@main.command("mask")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--policy", "-p", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Masking policy JSON (write a first one with --suggest).")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Masked table (.csv / .parquet), or folder for a folder of tables; with --suggest, the policy "
                   "JSON (default: print it).")
@click.option("--metadata", "metadata_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A folder of tables: their SDV multi-table metadata (default: detected).")
@click.option("--suggest", is_flag=True, help="Propose a policy for DATA from its content instead of masking.")
@click.option("--k", "k", type=click.IntRange(min=2), default=5, show_default=True,
              help="With --suggest: k of the proposed k-anonymity over the quasi-identifiers.")
@click.option("--reveal", is_flag=True, help="Undo the policy's reversible pseudonyms in DATA (needs the key).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write what masking did (per column, k-anonymity) as JSON.")
@key_options(inputs=True, outputs=True)
@click.option("--mask-key", type=_OUT, default=None,
              help="Key for replacements and pseudonyms, when it should differ from the one that encrypts files "
                   "(default: --key-file, $SYNTHGEN_KEY, else a one-run key).")
@click.option("--seed", type=int, default=None, help="Seed for the noise operation.")
@click.option("--force", is_flag=True, help="Overwrite --out / --report if they exist.")
@handle_errors
def mask_command(data: Path, policy: Path | None, out: Path | None, metadata_path: Path | None, suggest: bool, k: int,
                 reveal: bool, report: Path | None, key_file: Path | None, identity: Path | None, encrypt: bool,
                 recipient: Path | None, mask_key: Path | None, seed: int | None, force: bool) -> None:
    """De-identify DATA before training: drop, replace, pseudonymize, mask, generalize, noise, k-anonymity.

    The key (--mask-key, else --key-file or $SYNTHGEN_KEY; else a one-run key) makes replacements
    and pseudonyms the same across runs and reversible pseudonyms revealable. Give a separate
    --mask-key to someone who should pseudonymize consistently but not decrypt your files. DATA may be encrypted, and
    --encrypt / --recipient encrypt the masked table as it is written.

    DATA may be a folder with one file per table: the policy then holds one policy per table
    ({"tables": {"TABLE": {"columns": ...}}}); a pseudonymized key takes every key that references it
    along, with one key domain, so the masked tables still join.

    \b
    Example:
      synthgen mask patients.csv --suggest --out policy.json
      synthgen mask patients.csv --policy policy.json --out masked.parquet --key-file owner.key
      synthgen mask masked.parquet --policy policy.json --reveal --out revealed.parquet --key-file owner.key
      synthgen mask berka/ --metadata berka.json --policy berka-policy.json --out masked_berka/ --key-file owner.key
    """
    from synthgen.io import read_table

    if data.is_dir():
        return _mask_tables(data, policy, out, metadata_path, suggest=suggest, k=k, reveal=reveal, report=report,
                            key_file=key_file, identity=identity, encrypt=encrypt, recipient=recipient,
                            mask_key=mask_key, seed=seed, force=force)
    if metadata_path is not None:
        raise click.UsageError("--metadata applies to a folder of tables (fix: drop it)")

    if suggest:
        given = [n for n, v in (("--policy", policy), ("--reveal", reveal), ("--report", report),
                                ("--encrypt", encrypt), ("--recipient", recipient)) if v]
        if given:
            raise click.UsageError(f"--suggest writes a policy in plain JSON; {', '.join(given)} do not apply")
        return _suggest(read_table(data, secret=input_secret(data, key_file, identity)), k, out, force)
    if reveal and report is not None:
        raise click.UsageError("--report describes masking; --reveal writes no report")
    if policy is None or out is None:
        raise click.UsageError("give --policy and --out (or --suggest to propose a policy)")
    from synthgen.io import check_writable, write_bytes_atomic, write_table
    from synthgen.masking.policy import Masker

    for path in (out, report):
        if path is not None:
            check_writable(path, force=force)
    seal = output_seal(out, encrypt, recipient, key_file)
    table = read_table(data, secret=input_secret(data, key_file, identity))
    masker = Masker(policy, key=optional_key(mask_key or key_file), seed=seed)
    result = masker.reveal(table) if reveal else masker.apply(table)
    write_table(result, out, force=force, seal=seal)
    if reveal:
        return click.echo(f"revealed {len(result):,} rows to {out}")
    done = masker.report
    assert done is not None, "apply() leaves its report"
    click.echo("\n".join(done.lines()) + f"\nmasked table written to {out}")
    if report is not None:
        write_bytes_atomic(report, json.dumps(done.to_dict(), indent=1).encode(), force=force, seal=seal)
        click.echo(f"report written to {report}")


def _mask_tables(data: Path, policy: Path | None, out: Path | None, metadata_path: Path | None, *, suggest: bool,
                 k: int, reveal: bool, report: Path | None, key_file: Path | None, identity: Path | None,
                 encrypt: bool, recipient: Path | None, mask_key: Path | None, seed: int | None, force: bool) -> None:
    """``synthgen mask`` of a folder of tables: a policy per table, key groups pseudonymized alike."""
    from synthgen.io import check_writable, write_bytes_atomic
    from synthgen.metadata import Metadata
    from synthgen.relational.masking import mask_tables, suggest_tables_policy
    from synthgen.relational.tables_io import read_tables, write_tables

    if reveal:
        raise click.UsageError("--reveal takes one table (fix: reveal each masked file with its table's policy)")
    tables, _ = read_tables(data, secret=lambda path: input_secret(path, key_file, identity))
    meta = Metadata.load(metadata_path) if metadata_path else Metadata.detect(tables)[0]
    meta.check(tables)
    if suggest:
        if policy is not None or report is not None or encrypt or recipient is not None:
            raise click.UsageError("--suggest writes a policy in plain JSON; --policy, --report, --encrypt and "
                                   "--recipient do not apply")
        text = json.dumps(suggest_tables_policy(tables, meta, k=k), indent=1)
        if out is None:
            return click.echo(text)
        write_bytes_atomic(out, text.encode() + b"\n", force=force)
        return click.echo(f"policy for {len(json.loads(text)['tables'])} tables written to {out}; review it, then "
                          "run synthgen mask --policy")
    if policy is None or out is None:
        raise click.UsageError("give --policy and --out (or --suggest to propose a policy)")
    if report is not None:
        check_writable(report, force=force)
    seal = output_seal(None, encrypt, recipient, key_file)
    masked, reports = mask_tables(tables, policy, meta, key=optional_key(mask_key or key_file), seed=seed)
    where = write_tables(masked, str(out), meta, force=force, file_format="parquet", seal=seal)
    for table, done in reports.items():
        click.echo(f"{table}: " + "\n".join(done.lines()))
    click.echo(f"masked tables written to {where}")
    if report is not None:
        body = json.dumps({t: r.to_dict() for t, r in reports.items()}, indent=1).encode()
        write_bytes_atomic(report, body, force=force, seal=seal)
        click.echo(f"report written to {report}")


def _suggest(table: Any, k: int, out: Path | None, force: bool) -> None:
    from synthgen.io import write_bytes_atomic
    from synthgen.masking.identifiers import suggest_policy

    policy = suggest_policy(table, k=k)
    text = json.dumps(policy, indent=1)
    found = len(set(policy["columns"]) | set(policy.get("k_anonymity", {}).get("columns", [])))
    if out is None:
        click.echo(text)
    else:
        write_bytes_atomic(out, text.encode() + b"\n", force=force)
        click.echo(f"policy for {found} columns written to {out}; review it, then run synthgen mask --policy")
    if not found:
        click.echo("no identifiers found (the policy masks nothing; check the columns yourself)", err=True)


@main.command()
@click.option("--out", "-o", required=True, type=_OUT,
              help="Key file to write (created readable by you only); with --public / --signing, the private key "
                   "(its public key goes to <out>.pub).")
@click.option("--public", is_flag=True,
              help="An X25519 key pair: others encrypt to <out>.pub with --recipient, only you decrypt.")
@click.option("--signing", is_flag=True,
              help="An Ed25519 key pair: sign model files (synthgen sign); others verify with <out>.pub.")
@click.option("--passphrase", "protect", is_flag=True,
              help=f"Protect the private key with a passphrase (scrypt; from ${PASSPHRASE_ENV} or asked for).")
@click.option("--force", is_flag=True, help="Overwrite --out (and <out>.pub) if they exist.")
@handle_errors
def keygen(out: Path, public: bool, signing: bool, protect: bool, force: bool) -> None:
    """Make a random 256-bit key, or a key pair for public-key encryption or signing.

    \b
    Example:
      synthgen keygen --out owner.key
      synthgen keygen --public --out owner-x25519.key       # share owner-x25519.key.pub
      synthgen keygen --signing --out owner-sign.key        # share owner-sign.key.pub
    """
    from synthgen.crypto.keypairs import write_keypair
    from synthgen.crypto.keys import write_key_file
    from synthgen.crypto.signing import write_signing_keypair

    if public and signing:
        raise click.UsageError("give --public (encryption) or --signing (signatures), not both: they are "
                               "separate key pairs")
    kind = "public" if public else "signing" if signing else None
    if kind is None:
        if protect:
            raise click.UsageError("--passphrase protects key pairs; a plain key file is the secret itself "
                                   "(fix: use --public or --signing, or encrypt with --passphrase directly)")
        write_key_file(out, force=force)
        return click.echo(f"key written to {out} (mode 0600; anyone holding it can decrypt: keep it secret, back "
                          "it up)")
    secret = passphrase(confirm=True) if protect else None
    write = write_keypair if kind == "public" else write_signing_keypair
    private_path, public_path = write(out, force=force, passphrase=secret)
    use = "encrypt to you with --recipient" if kind == "public" else "verify your signatures with --verify"
    click.echo(f"private key written to {private_path} (mode 0600: keep it secret); public key written to "
               f"{public_path} (share it: others {use})")


@main.command()
@click.argument("src", type=_IN)
@click.option("--out", "-o", required=True, type=_OUT)
@click.option("--key-file", type=_OUT, default=None, help="Key file from synthgen keygen (default: $SYNTHGEN_KEY).")
@click.option("--passphrase", "use_passphrase", is_flag=True,
              help=f"Use a passphrase (from ${PASSPHRASE_ENV}, or asked for without echo) through scrypt.")
@click.option("--recipient", type=_IN, default=None, help="Encrypt to this public key (.pub from keygen --public).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@handle_errors
def encrypt(src: Path, out: Path, key_file: Path | None, use_passphrase: bool, recipient: Path | None,
            force: bool) -> None:
    """Encrypt SRC (any file: a table, a model) with AES-256-GCM, in chunks.

    \b
    Example:
      synthgen encrypt adult.csv --out adult.csv.enc --key-file owner.key
      synthgen encrypt rows.parquet --out rows.parquet.enc --recipient partner.pub
    """
    from synthgen.crypto.keypairs import read_public_key
    from synthgen.crypto.keys import read_key
    from synthgen.crypto.sealing import Seal
    from synthgen.crypto.streams import encrypt_file

    if use_passphrase + (recipient is not None) + (key_file is not None) > 1:
        raise click.UsageError("give one of --key-file, --passphrase, --recipient")
    if recipient is not None:
        seal = Seal(recipient=read_public_key(recipient))
    elif use_passphrase:
        seal = Seal(passphrase=passphrase(confirm=True))
    else:
        seal = Seal(key=read_key(key_file))
    encrypt_file(src, out, seal, force=force)
    click.echo(f"encrypted {src} to {out}")


@main.command()
@click.argument("src", type=_IN)
@click.option("--out", "-o", required=True, type=_OUT)
@key_options(inputs=True)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@handle_errors
def decrypt(src: Path, out: Path, key_file: Path | None, identity: Path | None, force: bool) -> None:
    """Decrypt SRC; any modification or a wrong key fails and leaves no output file.

    The secret is the one SRC's header names: a key file, a passphrase (asked for, or
    $SYNTHGEN_PASSPHRASE), or your private key (--identity).

    \b
    Example:
      synthgen decrypt adult.csv.enc --out adult.csv --key-file owner.key
    """
    from synthgen.crypto.streams import decrypt_file
    from synthgen.errors import IntegrityError
    from synthgen.files import check_writable

    check_writable(out, force=force)
    secret = input_secret(src, key_file, identity)
    if secret is None:
        raise IntegrityError(f"{src} is not a synthgen encrypted file (fix: check the path)")
    decrypt_file(src, out, secret, force=force)
    click.echo(f"decrypted {src} to {out}")


@main.command()
@click.argument("file", type=_IN)
@click.option("--signing-key", required=True, type=_IN, help="Your Ed25519 private key (synthgen keygen --signing).")
@click.option("--out", "-o", type=_OUT, default=None, help="Signature file (default: FILE.sig).")
@click.option("--force", is_flag=True, help="Overwrite the signature file if it exists.")
@handle_errors
def sign(file: Path, signing_key: Path, out: Path | None, force: bool) -> None:
    """Sign FILE (a model file, a table) so a receiver can check who made it and that it is unchanged.

    \b
    Example:
      synthgen sign adult.sgm --signing-key owner-sign.key     # writes adult.sgm.sig
      synthgen verify adult.sgm --signer owner-sign.key.pub
    """
    from synthgen.crypto.signing import sign_file

    click.echo(f"signature written to {sign_file(file, read_signer(signing_key), out=out, force=force)}")


@main.command()
@click.argument("file", type=_IN)
@click.option("--signer", required=True, type=_IN, help="The signer's public key (<key>.pub).")
@click.option("--signature", type=_IN, default=None, help="Signature file (default: FILE.sig).")
@allow_rename_option
@handle_errors
def verify(file: Path, signer: Path, signature: Path | None, allow_rename: bool) -> None:
    """Check that FILE carries a valid signature by SIGNER, under the name it was signed as, and is unchanged
    since (exit code 1 if not).

    \b
    Example:
      synthgen verify adult.sgm --signer owner-sign.key.pub
    """
    from synthgen.crypto.signing import read_verify_key, verify_file

    record = verify_file(file, read_verify_key(signer), signature=signature, allow_rename=allow_rename)
    signed = f", signed as {record['name']} at {record['signed_at']}" if record["version"] > 1 else ""
    click.echo(f"{file}: valid signature by key {record['signer']}{signed} ({record['size']:,} bytes, SHA-256 "
               f"{record['sha256'][:16]}...)")
