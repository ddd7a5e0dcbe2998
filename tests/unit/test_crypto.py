"""Encryption at rest: round trips, every tamper fails, wrong keys, truncation, key files."""

from __future__ import annotations

import io
import os
import stat

import pytest

from synthgen.errors import ConfigError, IntegrityError
from synthgen.privacy import crypto
from synthgen.privacy.crypto import (
    decrypt_bytes,
    decrypt_file,
    encrypt_file,
    encrypt_stream,
    generate_key,
    read_key,
    write_key_file,
)


def encrypt(data: bytes, chunk: int = 64, **kw) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, chunk=chunk, **kw)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 640, 1000])
def test_round_trip_across_chunk_boundaries(size):
    key, data = generate_key(), os.urandom(size)
    blob = encrypt(data, key=key)
    assert decrypt_bytes(blob, key=key) == data
    assert len(data) < 16 or data[:16] not in blob  # shorter strings occur in random bytes by chance


def test_passphrase_round_trip_with_random_salt(monkeypatch):
    monkeypatch.setattr(crypto, "SCRYPT", {"n": 2**10, "r": 8, "p": 1})  # fast for the test
    a, b = encrypt(b"secret rows", passphrase="correct horse"), encrypt(b"secret rows", passphrase="correct horse")
    assert a != b  # fresh salt and nonce prefix every time
    assert decrypt_bytes(a, passphrase="correct horse") == b"secret rows"
    with pytest.raises(IntegrityError):
        decrypt_bytes(a, passphrase="wrong horse")


def test_every_single_byte_flip_is_detected():
    key = generate_key()
    blob = encrypt(os.urandom(200), key=key)
    for pos in range(len(blob)):  # header, body and tags alike
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        with pytest.raises(IntegrityError):
            decrypt_bytes(bytes(bad), key=key)


def test_wrong_key_truncation_and_extension_fail():
    key = generate_key()
    blob = encrypt(os.urandom(300), key=key)
    with pytest.raises(IntegrityError, match="wrong key"):
        decrypt_bytes(blob, key=generate_key())
    for cut in (len(blob) - 1, len(blob) - 80, len(blob) - 160):  # inside a chunk and at a chunk boundary
        with pytest.raises(IntegrityError):
            decrypt_bytes(blob[:cut], key=key)
    with pytest.raises(IntegrityError):
        decrypt_bytes(blob + blob[-80:], key=key)
    with pytest.raises(IntegrityError, match="not a synthgen encrypted file"):
        decrypt_bytes(b"hello", key=key)


def test_failed_decryption_leaves_no_file(tmp_path):
    key = generate_key()
    src, enc, out = tmp_path / "plain.csv", tmp_path / "plain.csv.enc", tmp_path / "back.csv"
    src.write_bytes(os.urandom(3 * crypto.CHUNK + 5))
    encrypt_file(src, enc, key=key)
    decrypt_file(enc, out, key=key)
    assert out.read_bytes() == src.read_bytes()
    data = bytearray(enc.read_bytes())
    data[-10] ^= 0xFF  # the last chunk: every earlier chunk verifies first
    enc.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        decrypt_file(enc, tmp_path / "never.csv", key=key)
    assert not (tmp_path / "never.csv").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_key_file_is_private_and_round_trips(tmp_path, monkeypatch):
    path = write_key_file(tmp_path / "k.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = read_key(path)
    assert len(key) == 32
    monkeypatch.setenv("SYNTHGEN_KEY", path.read_text().strip())
    assert read_key() == key
    (tmp_path / "bad.key").write_text("not base64!")
    with pytest.raises(ConfigError, match="not a base64 key"):
        read_key(tmp_path / "bad.key")
    monkeypatch.delenv("SYNTHGEN_KEY")
    with pytest.raises(ConfigError, match="no key given"):
        read_key()


def test_encrypted_model_file_round_trip_and_tamper(ctgan_synth, tmp_path):
    from synthgen import Sampler

    key = generate_key()
    path = ctgan_synth.save(tmp_path / "m.sgm", key=key)
    assert crypto.is_encrypted(path)
    assert Sampler.load(path, key=key).sample(20, seed=0).equals(ctgan_synth.sample(20, seed=0))
    with pytest.raises(IntegrityError):
        Sampler.load(path, key=generate_key())
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        Sampler.load(path, key=key)
