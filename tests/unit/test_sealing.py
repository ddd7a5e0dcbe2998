"""Secret and Seal: one typed value for what opens a file and what seals it, and the dicts the API still takes."""

from __future__ import annotations

import io

import pytest

from synthgen.crypto import streams
from synthgen.crypto.keypairs import generate_keypair
from synthgen.crypto.keys import generate_key
from synthgen.crypto.sealing import Seal, Secret
from synthgen.crypto.streams import decrypt_bytes, encrypt_bytes, encrypt_file
from synthgen.errors import ConfigError
from synthgen.io import as_seal, as_secret, read_table, write_table


@pytest.fixture
def fast_scrypt(monkeypatch):
    monkeypatch.setattr(streams, "SCRYPT", {"n": 2**10, "r": 8, "p": 1})


def test_each_holds_exactly_one_thing():
    private, public = generate_keypair()
    assert [Secret(key=b"k").kind, Secret(passphrase="p").kind, Secret(private_key=private).kind] == [
        "key", "passphrase", "private_key"]
    assert [Seal(key=b"k").kind, Seal(passphrase="p").kind, Seal(recipient=public).kind] == [
        "key", "passphrase", "recipient"]
    with pytest.raises(ConfigError, match="one of a key, a passphrase or a private key"):
        Secret(key=b"k", passphrase="p")
    with pytest.raises(ConfigError, match="got none"):
        Secret()
    for bad in ({}, {"key": b"k", "recipient": public}):
        with pytest.raises(ConfigError, match="exactly one of a key, a passphrase or a recipient"):
            Seal(**bad)


def test_repr_never_shows_the_secret():
    key = generate_key()
    for value in (Secret(key=key), Seal(key=key), Secret(passphrase="hunter2"), Seal(passphrase="hunter2")):
        assert "hunter2" not in repr(value) and repr(key) not in repr(value)
    assert repr(Secret(passphrase="hunter2")) == "Secret(passphrase=...)"
    assert repr(Seal(key=key)) == "Seal(key=...)"


def test_of_converts_what_the_api_always_took():
    key = generate_key()
    assert Secret.of({"key": key}) == Secret(key=key)
    assert Seal.of({"passphrase": "p"}) == Seal(passphrase="p")
    seal = Seal(key=key)
    assert Seal.of(seal) is seal
    for nothing in (None, {}, {"key": None, "passphrase": None}):
        assert Secret.of(nothing) is None and Seal.of(nothing) is None
        assert as_secret(nothing) is None and as_seal(nothing) is None
    with pytest.raises(ConfigError, match=r"not \['recipient'\]"):
        Secret.of({"recipient": key})
    with pytest.raises(ConfigError, match="got bytes"):
        Seal.of(key)  # type: ignore[arg-type]


def test_streams_take_a_seal_or_keywords_alike(fast_scrypt, tmp_path):
    key, data = generate_key(), b"rows " * 100
    assert decrypt_bytes(encrypt_bytes(data, Seal(key=key)), key=key) == data
    assert decrypt_bytes(encrypt_bytes(data, key=key), Secret(key=key)) == data
    assert decrypt_bytes(encrypt_bytes(data, Seal(passphrase="p")), Secret(passphrase="p")) == data
    private, public = generate_keypair()
    assert decrypt_bytes(encrypt_bytes(data, Seal(recipient=public)), Secret(private_key=private)) == data
    with pytest.raises(ConfigError, match="exactly one"):
        encrypt_bytes(data, Seal(key=key), passphrase="p")
    with pytest.raises(ConfigError, match="one of a key, a passphrase or a private key"):
        decrypt_bytes(encrypt_bytes(data, key=key), Secret(key=key), passphrase="p")
    src = tmp_path / "a.bin"
    src.write_bytes(data)
    out = encrypt_file(src, tmp_path / "a.enc", Seal(key=key))
    assert streams.DecryptingReader(io.BytesIO(out.read_bytes()), Secret(key=key)).read() == data


def test_tables_open_with_a_secret_or_a_dict(adult, tmp_path):
    key = generate_key()
    path = write_table(adult.head(20), tmp_path / "t.csv.enc", seal=Seal(key=key))
    assert read_table(path, secret=Secret(key=key)).equals(read_table(path, secret={"key": key}))
