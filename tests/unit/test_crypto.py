"""Encryption at rest: round trips, every tamper fails, wrong keys, truncation, key files; hybrid (public-key) mode."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import struct

import pytest

from synthgen.crypto import streams
from synthgen.crypto.keypairs import (
    generate_keypair,
    key_needs_passphrase,
    read_private_key,
    read_public_key,
    write_keypair,
)
from synthgen.crypto.keys import fingerprint, generate_key, read_key, write_key_file
from synthgen.crypto.streams import (
    decrypt_bytes,
    decrypt_chunks,
    decrypt_file,
    encrypt_file,
    encrypt_stream,
    encryption_mode,
)
from synthgen.errors import ConfigError, IntegrityError, OutputExistsError


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
    monkeypatch.setattr(streams, "SCRYPT", {"n": 2**10, "r": 8, "p": 1})  # fast for the test
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
    src.write_bytes(os.urandom(3 * streams.CHUNK + 5))
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
    (tmp_path / "bad.key").chmod(0o600)
    with pytest.raises(ConfigError, match="not a base64 key"):
        read_key(tmp_path / "bad.key")
    path.chmod(0o644)  # a key others can read is refused, as ssh refuses such a private key
    with pytest.raises(ConfigError, match=r"readable by others \(mode 644\).*chmod 600"):
        read_key(path)
    write_key_file(path, force=True)  # --force replaces it atomically, 0600 again
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and read_key(path) != key
    monkeypatch.delenv("SYNTHGEN_KEY")
    with pytest.raises(ConfigError, match="no key given"):
        read_key()


def test_encrypted_model_file_round_trip_and_tamper(ctgan_synth, tmp_path):
    from synthgen import Sampler

    key = generate_key()
    path = ctgan_synth.save(tmp_path / "m.sgm", key=key)
    assert streams.is_encrypted(path)
    assert Sampler.load(path, key=key).sample(20, seed=0).equals(ctgan_synth.sample(20, seed=0))
    with pytest.raises(IntegrityError):
        Sampler.load(path, key=generate_key())
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        Sampler.load(path, key=key)


# ----------------------------------------------------------------------------- files from before hybrid mode
#: written by the previous encryption module (commit 1083d60): key bytes(range(32)), and passphrase "correct horse"
#: (n=2^10)
LEGACY_KEY_BLOB = (
    "U0dFTkMBAAAAWnsiYWxnIjoiQUVTLTI1Ni1HQ00tU1RSRUFNIiwiY2h1bmsiOjMyLCJrZGYiOnsibmFtZSI6ImtleSJ9LCJub25jZV9wcmVmaXgi"
    "OiJNSEN1SHpNU1B3PT0ifcPX7iisyomtlWAcHl+tWAO9DwxP51sOhHXu37JqmjWybQ2N+Hig25rKefT51oScT/IHd84/I2K7zY75M1aydpgr03Fd"
    "Wb/BRuak8+3lQLOam+syjzIxUPBVJkHIEY3Pv0bOzVBRL8w+2QeULGhkR/+o/eb6W3BRr7RoDp2lgRQgtnE5YuVZRA==")
LEGACY_SCRYPT_BLOB = (
    "U0dFTkMBAAAAlHsiYWxnIjoiQUVTLTI1Ni1HQ00tU1RSRUFNIiwiY2h1bmsiOjMyLCJrZGYiOnsibiI6MTAyNCwibmFtZSI6InNjcnlwdCIsInAi"
    "OjEsInIiOjgsInNhbHQiOiJXeHR0eE4rYU92MHVRRDB5M0MwTlNRPT0ifSwibm9uY2VfcHJlZml4IjoiUDg5ZU5ZWGhjZz09In1KUU2yAGaCMM+T"
    "cwyMW0oHFiLCPoP00qKik7t9TencYcd18lo37j8QXxXOwQ==")


def test_files_written_before_hybrid_mode_still_decrypt():
    key_blob, scrypt_blob = base64.b64decode(LEGACY_KEY_BLOB), base64.b64decode(LEGACY_SCRYPT_BLOB)
    assert decrypt_bytes(key_blob, key=bytes(range(32))) == b"rows written by synthgen 0.1 " * 3
    assert decrypt_bytes(scrypt_blob, passphrase="correct horse") == b"rows written by synthgen 0.1"
    with pytest.raises(ConfigError, match="encrypted with a key"):
        decrypt_bytes(key_blob, private_key=generate_keypair()[0])
    with pytest.raises(ConfigError, match="encrypted with a passphrase"):
        decrypt_bytes(scrypt_blob, private_key=generate_keypair()[0])


# ----------------------------------------------------------------------------- hybrid (public-key) encryption
@pytest.fixture(scope="module")
def pair():
    return generate_keypair()


def field_span(blob: bytes, name: str) -> tuple[int, int]:
    """Start and end offsets of a header string field's value (``"name":"value"``) in ``blob``."""
    start = blob.index(f'"{name}":"'.encode()) + len(name) + 4
    return start, blob.index(b'"', start)


def header_of(blob: bytes) -> tuple[dict, int]:
    """The header of an encrypted blob and where the first chunk starts."""
    end = 10 + int.from_bytes(blob[6:10], "big")  # magic (5), version (1), length (4)
    return json.loads(blob[10:end]), end


def flipped(blob: bytes, pos: int, bit: int = 0x01) -> bytes:
    bad = bytearray(blob)
    bad[pos] ^= bit
    return bytes(bad)


@pytest.mark.parametrize("size", [0, 1, 64, 65, 640])
def test_hybrid_round_trip_across_chunk_boundaries(pair, size):
    private, public = pair
    data = os.urandom(size)
    blob = encrypt(data, recipient=public)
    assert decrypt_bytes(blob, private_key=private) == data
    assert len(data) < 16 or data[:16] not in blob
    header = header_of(blob)[0]
    assert header["kdf"]["name"] == "x25519" and header["kdf"]["recipient"] == fingerprint(public)
    assert encrypt(data, recipient=public) != blob  # fresh ephemeral key, data key and nonce prefix


def test_hybrid_file_round_trip_with_key_files(tmp_path):
    private_path, public_path = write_keypair(tmp_path / "owner.key")
    assert public_path == tmp_path / "owner.key.pub"
    private, public = read_private_key(private_path), read_public_key(public_path)
    assert fingerprint(private.public_key()) == fingerprint(public)
    for name, size in (("empty", 0), ("multi", 2 * streams.CHUNK + 3)):
        src, enc, back = tmp_path / name, tmp_path / f"{name}.enc", tmp_path / f"{name}.out"
        src.write_bytes(os.urandom(size))
        encrypt_file(src, enc, recipient=public)
        assert encryption_mode(enc) == "x25519"
        decrypt_file(enc, back, private_key=private)
        assert back.read_bytes() == src.read_bytes()


def test_hybrid_format_decodes_as_documented(pair):
    """An independent decoder for one chunk, following the module docstring: pins the construction."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.keywrap import aes_key_unwrap

    private, public = pair
    blob = encrypt(b"documented", recipient=public)
    header, start = header_of(blob)
    epk, raw = base64.b64decode(header["kdf"]["epk"]), public.public_bytes(serialization.Encoding.Raw,
                                                                          serialization.PublicFormat.Raw)
    shared = private.exchange(X25519PublicKey.from_public_bytes(epk))
    kek = HKDF(hashes.SHA256(), 32, salt=epk + raw, info=b"synthgen hybrid v1").derive(shared)
    data_key = aes_key_unwrap(kek, base64.b64decode(header["kdf"]["wrapped"]))
    nonce = base64.b64decode(header["nonce_prefix"]) + bytes(4) + b"\x01"  # chunk 0, the last one
    assert AESGCM(data_key).decrypt(nonce, blob[start:], blob[:start]) == b"documented"
    assert header["kdf"]["recipient"] == hashlib.sha256(raw).hexdigest()[:16]


def test_wrong_private_key_is_named_by_fingerprint(pair):
    private, public = pair
    other = generate_keypair()[0]
    blob = encrypt(b"for the owner only", recipient=public)
    fp, other_fp = fingerprint(public), fingerprint(other.public_key())
    with pytest.raises(IntegrityError, match=f"encrypted for key {fp}, your key is {other_fp}"):
        decrypt_bytes(blob, private_key=other)


def test_mode_mismatch_names_what_is_needed(pair, monkeypatch):
    monkeypatch.setattr(streams, "SCRYPT", {"n": 2**10, "r": 8, "p": 1})
    private, public = pair
    hybrid = encrypt(b"x", recipient=public)
    for wrong in ({"key": generate_key()}, {"passphrase": "pw"}, {}):
        with pytest.raises(ConfigError, match=r"encrypted to a public key \(fix: give the private key with --identity"):
            decrypt_bytes(hybrid, **wrong)
    with pytest.raises(ConfigError, match="encrypted with a key"):
        decrypt_bytes(encrypt(b"x", key=generate_key()), private_key=private)
    with pytest.raises(ConfigError, match="encrypted with a passphrase"):
        decrypt_bytes(encrypt(b"x", passphrase="pw"), private_key=private)
    for secrets in ({}, {"key": generate_key(), "recipient": public}, {"passphrase": "pw", "recipient": public}):
        with pytest.raises(ConfigError, match="exactly one of"):
            encrypt(b"x", **secrets)
    with pytest.raises(ConfigError, match="one of a key, a passphrase or a private key"):
        decrypt_bytes(hybrid, key=generate_key(), private_key=private)


def test_keys_of_the_wrong_kind_are_named(pair):
    private, public = pair
    with pytest.raises(ConfigError, match="recipient key is an X25519 \\(encryption\\) private key; an X25519 "
                                          "\\(encryption\\) public key is needed"):
        encrypt(b"x", recipient=private)
    with pytest.raises(ConfigError, match="key given is an X25519 \\(encryption\\) public key"):
        decrypt_bytes(encrypt(b"x", recipient=public), private_key=public)



def test_kinds_named_without_their_classes():
    """DSA and DH keys are named from their class (keys.py no longer refers to cryptography's DSA / DH classes)."""
    from cryptography.hazmat.primitives.asymmetric import dsa

    from synthgen.crypto.keys import key_kind

    private = dsa.generate_private_key(1024)
    assert (key_kind(private), key_kind(private.public_key())) == ("a DSA private key", "a DSA public key")
    with pytest.raises(ConfigError, match=r"recipient key is a DSA public key; an X25519 \(encryption\) public"):
        encrypt(b"x", recipient=private.public_key())
    assert key_kind(b"k" * 32) == "a bytes (not a key)"

@pytest.mark.parametrize("field", ["epk", "wrapped", "recipient"])
def test_hybrid_header_tamper_fails_before_any_plaintext(pair, field):
    private, public = pair
    blob = encrypt(os.urandom(100), recipient=public)
    start, end = field_span(blob, field)
    for pos in range(start, end):
        for bit in (0x01, 0x20):  # within the alphabet and out of it
            chunks = decrypt_chunks(io.BytesIO(flipped(blob, pos, bit)), private_key=private)
            with pytest.raises(IntegrityError):
                next(chunks)


def test_every_single_byte_flip_of_a_hybrid_file_is_detected(pair):
    private, public = pair
    blob = encrypt(os.urandom(150), recipient=public)
    for pos in range(len(blob)):
        with pytest.raises(IntegrityError):
            decrypt_bytes(flipped(blob, pos), private_key=private)


def test_hybrid_header_replacements_fail(pair):
    """Valid-looking substitutions: a low-order ephemeral key, another wrapped key, a file re-addressed to me."""
    private, public = pair
    blob = encrypt(b"secret rows", recipient=public)
    start, end = field_span(blob, "epk")
    with pytest.raises(IntegrityError):
        decrypt_bytes(blob[:start] + base64.b64encode(bytes(32)) + blob[end:], private_key=private)
    start, end = field_span(blob, "wrapped")
    with pytest.raises(IntegrityError):
        decrypt_bytes(blob[:start] + base64.b64encode(os.urandom(40)) + blob[end:], private_key=private)
    mallory = generate_keypair()[0]
    start, end = field_span(blob, "recipient")
    readdressed = blob[:start] + fingerprint(mallory.public_key()).encode() + blob[end:]
    with pytest.raises(IntegrityError, match="failed authentication"):
        decrypt_bytes(readdressed, private_key=mallory)


@pytest.mark.parametrize("where", ["epk", "wrapped", "recipient", "body", "tag"])
def test_tampered_hybrid_file_leaves_no_output(tmp_path, pair, where):
    private, public = pair
    src, enc, out = tmp_path / "plain.csv", tmp_path / "plain.csv.enc", tmp_path / "out.csv"
    src.write_bytes(os.urandom(1000))
    encrypt_file(src, enc, recipient=public)
    blob = enc.read_bytes()
    positions = {"body": header_of(blob)[1] + 5, "tag": len(blob) - 1}
    pos = positions[where] if where in positions else field_span(blob, where)[0] + 3
    enc.write_bytes(flipped(blob, pos))
    with pytest.raises(IntegrityError):
        decrypt_file(enc, out, private_key=private)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ----------------------------------------------------------------------------- key pair files
def test_keypair_files_modes_and_overwrite(tmp_path):
    private_path, public_path = write_keypair(tmp_path / "owner.key")
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(public_path.stat().st_mode) == 0o644
    assert private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    before = private_path.read_bytes()
    with pytest.raises(OutputExistsError):
        write_keypair(private_path)
    private_path.unlink()  # only the .pub is left: still refused, and nothing is written
    with pytest.raises(OutputExistsError, match="owner.key.pub already exists"):
        write_keypair(private_path)
    assert not private_path.exists()
    write_keypair(private_path, force=True)
    assert private_path.read_bytes() != before
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600


def test_passphrase_protected_private_key(tmp_path, pair):
    private_path, public_path = write_keypair(tmp_path / "owner.key", passphrase="correct horse")
    sealed = private_path.read_bytes()  # scrypt-sealed PEM: PKCS8's own PBKDF2 at 2,048 rounds is too cheap
    assert streams.encryption_mode(private_path) == "scrypt" and b"PRIVATE KEY" not in sealed
    assert decrypt_bytes(sealed, passphrase="correct horse").startswith(b"-----BEGIN PRIVATE KEY-----")
    assert key_needs_passphrase(private_path)
    private = read_private_key(private_path, passphrase="correct horse")
    assert fingerprint(private.public_key()) == fingerprint(read_public_key(public_path))
    with pytest.raises(ConfigError, match="wrong passphrase for"):
        read_private_key(private_path, passphrase="wrong horse")
    with pytest.raises(ConfigError, match="is protected by a passphrase"):
        read_private_key(private_path)
    plain, _ = write_keypair(tmp_path / "plain.key")
    assert not key_needs_passphrase(plain)
    with pytest.raises(ConfigError, match="is not protected by a passphrase"):
        read_private_key(plain, passphrase="x")
    with pytest.raises(ConfigError, match="passphrase is empty"):
        write_keypair(tmp_path / "empty.key", passphrase="")


def test_key_file_errors_say_what_is_wrong(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path, public_path = write_keypair(tmp_path / "owner.key")
    with pytest.raises(ConfigError, match="not found"):
        read_private_key(tmp_path / "missing.key")
    with pytest.raises(ConfigError, match="holds an X25519 \\(encryption\\) public key; the private key is needed"):
        read_private_key(public_path)
    with pytest.raises(ConfigError, match="is a private key; the public key is needed"):
        read_public_key(private_path)
    (tmp_path / "junk.pem").write_text("hello")
    with pytest.raises(ConfigError, match="not a PEM key file"):
        read_public_key(tmp_path / "junk.pem")
    symmetric = write_key_file(tmp_path / "sym.key")
    with pytest.raises(ConfigError, match="is a symmetric key file"):
        read_private_key(symmetric)
    ed = Ed25519PrivateKey.generate()
    (tmp_path / "ed.key").write_bytes(ed.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    with pytest.raises(ConfigError, match="holds an Ed25519 \\(signing\\) private key; an X25519 \\(encryption\\) "
                                          "private key is needed"):
        read_private_key(tmp_path / "ed.key")


def _header(blob: bytes) -> tuple[dict, int, int]:
    (length,) = struct.unpack(">I", blob[len(streams.MAGIC) + 1:len(streams.MAGIC) + 5])
    start = len(streams.MAGIC) + 5
    return json.loads(blob[start:start + length]), start, length


def _forge_header(blob: bytes, **changes) -> bytes:
    """The encrypted blob with its header JSON edited (what an attacker can do before authentication)."""
    header, start, length = _header(blob)
    for key, value in changes.items():
        if key in ("n", "r", "p"):
            header["kdf"][key] = value
        else:
            header[key] = value
    body = json.dumps(header).encode()
    return blob[:len(streams.MAGIC) + 1] + struct.pack(">I", len(body)) + body + blob[start + length:]


@pytest.mark.parametrize("changes", [{"chunk": 2**33}, {"chunk": 10**30}, {"chunk": 8}, {"n": 2**22},
                                     {"r": 64}, {"p": 2**20}])
def test_forged_header_costs_are_refused_before_any_work(changes):
    secret = {"passphrase": "pw"} if set(changes) & {"n", "r", "p"} else {"key": generate_key()}
    blob = _forge_header(streams.encrypt_bytes(b"x" * 100, **secret), **changes)
    with pytest.raises(IntegrityError, match="header is damaged"):
        decrypt_bytes(blob, **secret)


@pytest.mark.parametrize("n, r", [(2**19, 8), (2**20, 4), (2**18, 16)])
def test_scrypt_memory_over_256_mib_is_refused_before_deriving(tmp_path, monkeypatch, n, r):
    derived = []
    monkeypatch.setattr(streams, "_scrypt", lambda *args: derived.append(args) or bytes(32))
    blob = _forge_header(streams.encrypt_bytes(b"x" * 100, key=generate_key()), kdf={
        "name": "scrypt", "salt": base64.b64encode(os.urandom(16)).decode(), "n": n, "r": r, "p": 1})
    (tmp_path / "forged.enc").write_bytes(blob)  # the CLI reads the mode before it asks for a passphrase
    for attempt in (lambda: decrypt_bytes(blob, passphrase="pw"), lambda: encryption_mode(tmp_path / "forged.enc")):
        with pytest.raises(IntegrityError, match="asks scrypt for 512 MiB of memory, more than the 256 MiB"):
            attempt()
    assert derived == []
    at_limit = _forge_header(blob, n=2**18, r=8)  # 256 MiB: allowed (then the wrong key fails authentication)
    with pytest.raises(IntegrityError, match="failed authentication"):
        decrypt_bytes(at_limit, passphrase="pw")
    assert len(derived) == 1


#: written by synthgen with scrypt at n = 2^15 (the cost before 2^17), passphrase "correct horse"
SCRYPT_2_15_BLOB = (
    "U0dFTkMBAAAAmnsiYWxnIjoiQUVTLTI1Ni1HQ00tU1RSRUFNIiwiY2h1bmsiOjEwNDg1NzYsImtkZiI6eyJuIjozMjc2OCwibmFtZSI6InNjcnlw"
    "dCIsInAiOjEsInIiOjgsInNhbHQiOiJnUDdjWXFZUFlaR0x0SlRoRjMzWVpRPT0ifSwibm9uY2VfcHJlZml4IjoiTnVxYUNmREN6Zz09In3oQvfO"
    "5JhBBiLaQzbsKrwVZkBkyMWtUE5fI3dZuIMS8JaH")


def test_passphrase_files_use_scrypt_2_17_and_older_ones_open():
    blob = streams.encrypt_bytes(b"new rows", passphrase="correct horse")
    kdf = _header(blob)[0]["kdf"]
    assert kdf["n"] >= 2**17 and 128 * kdf["n"] * kdf["r"] <= streams.SCRYPT_MAX_MEMORY
    assert decrypt_bytes(blob, passphrase="correct horse") == b"new rows"
    old = base64.b64decode(SCRYPT_2_15_BLOB)
    assert _header(old)[0]["kdf"]["n"] == 2**15
    assert decrypt_bytes(old, passphrase="correct horse") == b"sealed at n = 2^15"

def test_each_file_gets_its_own_key_from_a_salt():
    key = generate_key()
    blobs = [streams.encrypt_bytes(b"same plaintext", key=key) for _ in range(2)]
    salts = {_header(b)[0]["kdf"]["salt"] for b in blobs}
    assert len(salts) == 2
    assert all(decrypt_bytes(b, key=key) == b"same plaintext" for b in blobs)
    stripped = _forge_header(blobs[0], kdf={"name": "key"})  # without its salt the owner key itself is tried
    with pytest.raises(IntegrityError, match="failed authentication"):
        decrypt_bytes(stripped, key=key)


@pytest.mark.parametrize("bad", [b"k" * 16, b"", "a string key"])
def test_keys_must_be_32_bytes(bad):
    with pytest.raises(ConfigError, match="a key is 32 random bytes"):
        streams.encrypt_bytes(b"data", key=bad)
    blob = streams.encrypt_bytes(b"data", key=generate_key())
    with pytest.raises(ConfigError, match="a key is 32 random bytes"):
        decrypt_bytes(blob, key=bad)


def test_encrypting_writer_never_seals_a_failed_stream():
    key, out = generate_key(), io.BytesIO()
    with pytest.raises(RuntimeError), streams.EncryptingWriter(out, key=key, chunk=16) as writer:
        writer.write(b"amount=100;" * 5)
        raise RuntimeError("producer failed")
    with pytest.raises(IntegrityError, match="truncated"):
        decrypt_bytes(out.getvalue(), key=key)
    done = io.BytesIO()
    with streams.EncryptingWriter(done, key=key, chunk=16) as writer:
        writer.write(b"amount=100;" * 5)
    assert decrypt_bytes(done.getvalue(), key=key) == b"amount=100;" * 5
