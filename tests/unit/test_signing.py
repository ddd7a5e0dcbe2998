"""Detached Ed25519 signatures: round trip, modified files and signatures, wrong keys, key files."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import warnings
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from synthgen.crypto import signing
from synthgen.crypto.keypairs import generate_keypair, write_keypair
from synthgen.crypto.signing import (
    fingerprint,
    read_signing_key,
    read_verify_key,
    sign_file,
    verify_data,
    verify_file,
    write_signing_keypair,
)
from synthgen.errors import ConfigError, IntegrityError, OutputExistsError, SignatureWarning


@pytest.fixture(scope="module")
def signer():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def signed(tmp_path, signer):
    path = tmp_path / "model.sgm"
    path.write_bytes(os.urandom(5000))
    return path, sign_file(path, signer)


def rewrite(sig, **fields):
    record = json.loads(sig.read_text())
    record.update(fields)
    sig.write_text(json.dumps(record))


def test_sign_verify_round_trip_and_format(signed, signer):
    path, sig = signed
    assert sig == path.with_name("model.sgm.sig")
    record = verify_file(path, signer.public_key())
    assert record == json.loads(sig.read_text())
    assert record["format"] == "synthgen-signature" and record["version"] == 2 and record["alg"] == "Ed25519"
    assert record["purpose"] == "synthgen signature of a named file" and record["name"] == "model.sgm"
    signed_at = datetime.strptime(record["signed_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 60
    assert record["signer"] == fingerprint(signer.public_key())
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and record["size"] == 5000
    # the documented message: domain prefix and the canonical JSON of every field but the signature
    fields = {k: v for k, v in record.items() if k != "signature"}
    message = b"synthgen-signature-v2\0" + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    signer.public_key().verify(base64.b64decode(record["signature"]), message)


def test_streams_the_file_in_blocks(tmp_path, signer, monkeypatch):
    monkeypatch.setattr(signing, "READ_BYTES", 7)  # many reads, a short last one
    path = tmp_path / "data.csv"
    path.write_bytes(os.urandom(1000))
    sig = sign_file(path, signer, out=tmp_path / "elsewhere.sig")
    assert json.loads(sig.read_text())["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert verify_file(path, signer.public_key(), signature=sig)["size"] == 1000


def test_empty_file_signs(tmp_path, signer):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    sign_file(path, signer)
    assert verify_file(path, signer.public_key())["size"] == 0


@pytest.mark.parametrize("change", ["flip", "append", "truncate"])
def test_modified_file_is_refused(signed, signer, change):
    path, _ = signed
    data = bytearray(path.read_bytes())
    if change == "flip":
        data[2500] ^= 0x01
    elif change == "append":
        data += b"\0"
    else:
        del data[-1]
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="was modified after it was signed"):
        verify_file(path, signer.public_key())


def test_modified_signature_fields_are_refused(signed, signer):
    path, sig = signed
    original = sig.read_text()
    record = json.loads(original)
    other_hash = hashlib.sha256(b"another file").hexdigest()
    bad_signature = bytearray(base64.b64decode(record["signature"]))
    bad_signature[0] ^= 0x01
    bad_b64 = base64.b64encode(bytes(bad_signature)).decode()
    for fields in ({"sha256": other_hash}, {"size": 4999}, {"signature": bad_b64}, {"extra": "not signed"},
                   {"name": "adult-dp.sgm"}, {"signed_at": "2030-01-01T00:00:00Z"}):
        rewrite(sig, **fields)
        with pytest.raises(IntegrityError, match="does not verify"):
            verify_file(path, signer.public_key())
        sig.write_text(original)
    rewrite(sig, signer="0123456789abcdef")
    with pytest.raises(IntegrityError, match="signed by key 0123456789abcdef"):
        verify_file(path, signer.public_key())


def test_forged_record_for_a_modified_file_is_refused(signed, signer):
    """Whoever changes the file and updates hash and size in the .sig still cannot sign."""
    path, sig = signed
    path.write_bytes(b"tampered model")
    rewrite(sig, sha256=hashlib.sha256(b"tampered model").hexdigest(), size=len(b"tampered model"))
    with pytest.raises(IntegrityError, match="does not verify"):
        verify_file(path, signer.public_key())


def test_renamed_file_is_refused_unless_allowed(signed, signer):
    """A signed non-DP model renamed adult-dp.sgm beside its .sig must not pass for the DP one."""
    path, sig = signed
    renamed = path.rename(path.with_name("adult-dp.sgm"))
    sig = sig.rename(sig.with_name("adult-dp.sgm.sig"))
    data = renamed.read_bytes()
    for check in (lambda **kw: verify_file(renamed, signer.public_key(), **kw),
                  lambda **kw: verify_data(renamed, data, signer.public_key(), **kw)):
        with pytest.raises(IntegrityError, match="signed under the name 'model.sgm'.*rename it back to model.sgm, "
                                                 "or accept it under this name with --allow-rename"):
            check()
        with pytest.warns(SignatureWarning, match="signed under the name 'model.sgm'; accepted under its new name"):
            assert check(allow_rename=True)["name"] == "model.sgm"
    renamed.write_bytes(b"another model")  # allow_rename accepts a name, never other content
    with pytest.raises(IntegrityError, match="was modified after it was signed"):
        verify_file(renamed, signer.public_key(), allow_rename=True)


def v1_signature(path, signer, sig) -> None:
    """A version 1 signature as synthgen wrote them before: hash, size and signer, no purpose, name or time."""
    data = path.read_bytes()
    record = {"format": "synthgen-signature", "version": 1, "alg": "Ed25519",
              "signer": fingerprint(signer.public_key()), "sha256": hashlib.sha256(data).hexdigest(),
              "size": len(data)}
    message = b"synthgen-signature-v1\0" + json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    record["signature"] = base64.b64encode(signer.sign(message)).decode()
    sig.write_text(json.dumps(record, indent=1))


def test_version_1_signatures_need_allow_rename(signed, signer):
    path, sig = signed
    v1_signature(path, signer, sig)
    with pytest.raises(IntegrityError, match="is a version 1 signature: it covers the content and signer of .* but "
                                             "not its name.*ask the signer to sign it again"):
        verify_file(path, signer.public_key())
    with pytest.warns(SignatureWarning, match="a version 1 signature, accepted by content and signer only"):
        assert verify_file(path, signer.public_key(), allow_rename=True)["version"] == 1
    original = json.loads(sig.read_text())
    rewrite(sig, size=4999)  # still authenticated: a changed field fails
    with pytest.raises(IntegrityError, match="does not verify"):
        verify_file(path, signer.public_key(), allow_rename=True)
    sig.write_text(json.dumps(original))
    path.write_bytes(b"other content")
    with pytest.raises(IntegrityError, match="was modified after it was signed"):
        verify_file(path, signer.public_key(), allow_rename=True)


def test_a_version_2_signature_cannot_pass_as_version_1(signed, signer):
    """Downgrading drops the name check only if the v2 signature verified as v1: it does not (another prefix)."""
    path, sig = signed
    record = json.loads(sig.read_text())
    v1_fields = {k: record[k] for k in ("format", "alg", "signer", "sha256", "size", "signature")}
    sig.write_text(json.dumps({**v1_fields, "version": 1}))
    with pytest.raises(IntegrityError, match="does not verify"):
        verify_file(path, signer.public_key(), allow_rename=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a name that matches gives no warning
        sign_file(path, signer, force=True)
        verify_file(path, signer.public_key(), allow_rename=True)


def test_wrong_public_key_names_both_fingerprints(signed, signer):
    path, _ = signed
    other = Ed25519PrivateKey.generate().public_key()
    expected = f"signed by key {fingerprint(signer.public_key())}, not by the given key {fingerprint(other)}"
    with pytest.raises(IntegrityError, match=expected):
        verify_file(path, other)


def test_missing_and_malformed_signature_files(signed, signer):
    path, sig = signed
    original = sig.read_text()
    malformed = ("not json", "[]", "{}", original.replace('"Ed25519"', '"RSA"'),
                 original.replace('"size": 5000', '"size": "5000"'), original.replace('"version": 2,', ""),
                 original.replace('"name": "model.sgm"', '"name": "../model.sgm"'),
                 original.replace('"purpose": "synthgen signature', '"purpose": "another signature'),
                 original.replace('"name": "model.sgm",', ""))
    for text in malformed:
        assert text != original
        sig.write_text(text)
        with pytest.raises(IntegrityError, match="not a valid synthgen signature file"):
            verify_file(path, signer.public_key())
    rewrite(sig, version=3)
    with pytest.raises(IntegrityError, match="signature format version 3"):
        verify_file(path, signer.public_key())
    sig.unlink()
    with pytest.raises(IntegrityError, match="no signature file .*model.sgm.sig"):
        verify_file(path, signer.public_key())


def test_signature_is_not_overwritten_without_force(signed, signer):
    path, sig = signed
    with pytest.raises(OutputExistsError):
        sign_file(path, signer)
    path.write_bytes(b"new version")
    sign_file(path, signer, force=True)
    assert verify_file(path, signer.public_key())["size"] == len(b"new version")


def test_x25519_key_where_ed25519_is_needed(tmp_path, signed, signer):
    path, _ = signed
    private, public = generate_keypair()
    with pytest.raises(ConfigError, match=r"signing key is an X25519 \(encryption\) private key; "
                                          r"an Ed25519 \(signing\) private key is needed"):
        sign_file(path, private, out=tmp_path / "x.sig")
    assert not (tmp_path / "x.sig").exists()
    with pytest.raises(ConfigError, match=r"verification key is an X25519 \(encryption\) public key; an Ed25519"):
        verify_file(path, public)
    enc_private, enc_public = write_keypair(tmp_path / "enc.key")
    with pytest.raises(ConfigError, match=r"holds an X25519 \(encryption\) private key; an Ed25519 \(signing\) pri"):
        read_signing_key(enc_private)
    with pytest.raises(ConfigError, match=r"holds an X25519 \(encryption\) public key; an Ed25519 \(signing\) public"):
        read_verify_key(enc_public)


def test_signing_key_files(tmp_path, signed):
    path, _ = signed
    private_path, public_path = write_signing_keypair(tmp_path / "me.sign", passphrase="correct horse")
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(public_path.stat().st_mode) == 0o644
    key = read_signing_key(private_path, passphrase="correct horse")
    sig = sign_file(path, key, out=tmp_path / "me.sig")
    assert verify_file(path, read_verify_key(public_path), signature=sig)["signer"] == fingerprint(key.public_key())
    with pytest.raises(ConfigError, match="wrong passphrase"):
        read_signing_key(private_path, passphrase="wrong horse")
    with pytest.raises(ConfigError, match="protected by a passphrase"):
        read_signing_key(private_path)
    with pytest.raises(OutputExistsError):
        write_signing_keypair(private_path)
