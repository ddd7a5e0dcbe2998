"""The model file: save/load round trip, and every kind of damage raises IntegrityError."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

import synthgen
from synthgen import Sampler, artifact
from synthgen.artifact import (
    FORMAT_VERSION,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    UNPACK_FLOOR,
    WEIGHTS,
    check_tensor_list,
    read_manifest,
    read_model_file,
    write_model_file,
)
from synthgen.errors import IntegrityError, OutputExistsError, SynthgenError

CHECKSUM = "does not match its checksum (the file was modified)"


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def rewrite(path: Path, **replace: bytes) -> Path:
    """Rewrite the zip with some members replaced or added (a valid zip, altered content)."""
    parts = {**members(path), **{k.replace("__", "."): v for k, v in replace.items()}}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return path


def edit_manifest(path: Path, change) -> Path:
    manifest = json.loads(members(path)[MANIFEST])
    change(manifest)
    return rewrite(path, manifest__json=json.dumps(manifest).encode())


# ----------------------------------------------------------------------------- round trip
def test_round_trip_samples_identically(model_file, ctgan_synth):
    sampler = Sampler.load(model_file)
    pd.testing.assert_frame_equal(sampler.sample(300, seed=4), ctgan_synth.sample(300, seed=4))
    assert sampler.transformer.layout == ctgan_synth.transformer.layout
    assert sampler.model.hyperparameters() == ctgan_synth.model.hyperparameters()


def test_manifest_contents(model_file, adult):
    manifest, tensors = read_model_file(model_file)
    assert manifest == read_manifest(model_file)
    assert manifest["format"] == "synthgen-model"
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["synthgen_version"] == synthgen.__version__
    assert manifest["model"]["name"] == "ctgan"
    assert manifest["model"]["hyperparameters"]["epochs"] == 3
    training = manifest["training"]
    assert (training["rows"], training["columns"], training["seed"]) == (
        len(adult),
        adult.shape[1],
        0,
    )
    assert [h["epoch"] for h in training["history"]] == [1, 2, 3]
    assert manifest["privacy"]["differential_privacy"] is False
    assert manifest["privacy"]["raw_quantities"]
    assert set(manifest["integrity"]["members"]) == {WEIGHTS}
    assert any(k.startswith("generator.") for k in tensors)


def test_members_are_exactly_manifest_and_weights(model_file):
    assert set(members(model_file)) == {MANIFEST, WEIGHTS}


def test_file_holds_no_training_rows(model_file, adult):
    """Category sets and min/max are stored by design; rows and per-row values are not."""
    manifest, tensors = read_model_file(model_file)
    numbers: set[float] = set()

    def walk(node):
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            numbers.add(float(node))

    walk(manifest)
    fnlwgt = set(adult["fnlwgt"].astype(float))
    assert len(fnlwgt) > 0.9 * len(adult)  # near-unique per row: a stored row would show it
    assert len(fnlwgt & numbers) <= 2  # at most the minimum and the maximum
    numeric = adult.select_dtypes("number").astype(float).to_numpy()
    assert not any(set(row) <= numbers for row in numeric)
    assert all(len(adult) not in t.shape for t in tensors.values())


# ----------------------------------------------------------------------------- damage
def test_flipped_byte_in_weights(model_file):
    raw = bytearray(model_file.read_bytes())
    with zipfile.ZipFile(model_file) as zf:
        info = zf.getinfo(WEIGHTS)
    raw[info.header_offset + 30 + len(WEIGHTS) + info.compress_size // 2] ^= 0xFF
    model_file.write_bytes(bytes(raw))
    with pytest.raises(
        IntegrityError,
        match=re.escape(f"{model_file}: not a readable synthgen model file, or corrupted"),
    ):
        Sampler.load(model_file)


def test_any_flipped_byte_is_caught_or_harmless(model_file, ctgan_synth):
    """A flip anywhere either raises IntegrityError or (zip timestamps, ...) changes nothing."""
    raw = model_file.read_bytes()
    expected = ctgan_synth.sample(20, seed=0)
    outcomes = {"integrity": 0, "harmless": 0}
    for pos in range(0, len(raw), max(len(raw) // 150, 1)):
        damaged = bytearray(raw)
        damaged[pos] ^= 0xFF
        model_file.write_bytes(bytes(damaged))
        try:
            sampler = Sampler.load(model_file)
        except IntegrityError:
            outcomes["integrity"] += 1
        else:
            pd.testing.assert_frame_equal(sampler.sample(20, seed=0), expected)
            outcomes["harmless"] += 1
    assert outcomes["integrity"] > 0.8 * sum(outcomes.values())


def test_edited_manifest(model_file):
    edit_manifest(model_file, lambda m: m["model"]["hyperparameters"].update(tau=0.5))
    with pytest.raises(IntegrityError, match=re.escape(f"the manifest {CHECKSUM}")):
        Sampler.load(model_file)


def test_edited_integrity_block(model_file):
    edit_manifest(model_file, lambda m: m["integrity"]["members"].update({WEIGHTS: "0" * 64}))
    with pytest.raises(IntegrityError, match=re.escape(f"{WEIGHTS} {CHECKSUM}")):
        Sampler.load(model_file)


def test_replaced_weights(model_file):
    tensors = load_tensors(members(model_file)[WEIGHTS])
    tensors = {k: v * 1.01 if v.is_floating_point() else v for k, v in tensors.items()}
    rewrite(model_file, weights__safetensors=save_tensors(tensors))
    with pytest.raises(IntegrityError, match=re.escape(f"{WEIGHTS} {CHECKSUM}")):
        Sampler.load(model_file)


def test_newer_format_version(model_file):
    edit_manifest(model_file, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(
        IntegrityError,
        match=rf"model file format {FORMAT_VERSION + 1} is newer than "
        rf"this synthgen reads \({FORMAT_VERSION}\) "
        r"\(fix: upgrade synthgen",
    ):
        Sampler.load(model_file)


def test_not_a_synthgen_manifest(model_file):
    edit_manifest(model_file, lambda m: m.pop("format"))
    with pytest.raises(
        IntegrityError, match="not a synthgen model file \\(no 'synthgen-model' manifest\\)"
    ):
        Sampler.load(model_file)
    rewrite(model_file, manifest__json=b"\xff{oops")
    with pytest.raises(IntegrityError, match="the manifest is not valid JSON"):
        Sampler.load(model_file)


def test_extra_member(model_file):
    rewrite(model_file, payload__py=b"import os")
    with pytest.raises(
        IntegrityError,
        match=r"not a synthgen model file \(members \['manifest.json', "
        r"'payload.py', 'weights.safetensors'\]; expected ",
    ):
        Sampler.load(model_file)


def test_missing_member(tmp_path):
    path = tmp_path / "half.sgm"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(MANIFEST, "{}")
    with pytest.raises(IntegrityError, match="not a synthgen model file"):
        Sampler.load(path)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04 truncated"])
def test_not_a_zip(tmp_path, content):
    path = tmp_path / "x.sgm"
    path.write_bytes(content)
    with pytest.raises(IntegrityError, match="not a readable synthgen model file, or corrupted"):
        Sampler.load(path)


def test_truncated_file(model_file):
    model_file.write_bytes(model_file.read_bytes()[:-200])
    with pytest.raises(IntegrityError, match="not a readable synthgen model file, or corrupted"):
        Sampler.load(model_file)


def test_missing_file_is_not_an_integrity_error(tmp_path):
    for path in (tmp_path / "nope.sgm", tmp_path):
        with pytest.raises(
            SynthgenError, match="no such model file \\(fix: check the path\\)"
        ) as info:
            Sampler.load(path)
        assert not isinstance(info.value, IntegrityError)


def test_encrypted_file_without_key_is_a_clear_error(ctgan_synth, tmp_path):
    from synthgen.crypto.keys import generate_key
    from synthgen.errors import SynthgenError

    path = ctgan_synth.save(tmp_path / "enc.sgm", key=generate_key())
    with pytest.raises(SynthgenError, match="encrypted model file"):
        Sampler.load(path)


# ----------------------------------------------------------------------------- what loading may cost
def deflated(path: Path, **replace: bytes) -> Path:
    """``rewrite``, deflated (as synthgen writes): what a few kB can claim to unpack to."""
    parts = {**members(path), **{k.replace("__", "."): v for k, v in replace.items()}}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return path


def test_manifest_over_its_cap_is_refused_before_unpacking(model_file):
    """Padding leaves the checksum valid (it is over the canonical JSON): only the cap refuses it."""
    padded = members(model_file)[MANIFEST] + b" " * (MAX_MANIFEST_BYTES + (1 << 20))
    deflated(model_file, manifest__json=padded)
    with pytest.raises(IntegrityError, match=r"member manifest.json unpacks to 9.0 MiB, more than the 8.0 MiB "
                       r"allowed \(fix: use an intact file written by synthgen\)"):
        Sampler.load(model_file)


@pytest.mark.parametrize("encrypted", [False, True])
def test_zip_bomb_is_refused_before_unpacking(model_file, monkeypatch, encrypted):
    """Weights of zeros unpack to over 1000x their size; the limit is 20x, at least UNPACK_FLOOR. An encrypted
    file is held to the same limit once decrypted."""
    from synthgen.crypto.keys import generate_key
    from synthgen.crypto.streams import encrypt_bytes

    deflated(model_file, weights__safetensors=bytes(UNPACK_FLOOR + (1 << 20)))
    key = generate_key()
    if encrypted:
        model_file.write_bytes(encrypt_bytes(model_file.read_bytes(), key=key))
    unpacked = []
    monkeypatch.setattr(zipfile.ZipExtFile, "read", lambda *a: unpacked.append(1))  # nothing may be unpacked
    with pytest.raises(IntegrityError, match=r"unpacks to 65.0 MiB from 0.1 MiB, more than the 64.0 MiB allowed "
                       r"\(20x the packed size, at least 64.0 MiB\)"):
        Sampler.load(model_file, key=key if encrypted else None)
    assert not unpacked


def test_member_larger_than_declared_is_refused(model_file):
    """Declared sizes can lie: unpacking stops at the declared size (and then the CRC fails)."""
    raw = bytearray(model_file.read_bytes())
    with zipfile.ZipFile(model_file) as zf:
        info = zf.getinfo(WEIGHTS)
    entry = raw.rindex(WEIGHTS.encode()) - 46  # its record in the central directory, after the data
    assert raw[entry:entry + 4] == b"PK\x01\x02"
    raw[entry + 24:entry + 28] = (info.file_size // 2).to_bytes(4, "little")  # declared uncompressed size
    model_file.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="not a readable synthgen model file, or corrupted .*CRC"):
        Sampler.load(model_file)


def test_bzip2_member_is_refused(model_file):
    """bzip2 unpacks without a bound per step: only deflate (what synthgen writes) is read."""
    parts = members(model_file)
    with zipfile.ZipFile(model_file, "w", compression=zipfile.ZIP_BZIP2) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    with pytest.raises(IntegrityError, match="member manifest.json is not deflated \\(compression 12\\)"):
        Sampler.load(model_file)


def test_file_over_the_size_limit_is_refused(model_file, monkeypatch):
    monkeypatch.setattr(artifact, "MAX_FILE_BYTES", model_file.stat().st_size - 1)
    with pytest.raises(IntegrityError, match=r"more than the .* MiB a model file may take"):
        Sampler.load(model_file)


def test_long_tensor_list_is_refused_before_decoding(model_file, monkeypatch):
    """Each tensor costs time to decode whatever its size: a header of a million tiny ones deflates to a few MB."""
    monkeypatch.setattr(artifact, "MAX_HEADER_BYTES", 100)
    monkeypatch.setattr("safetensors.torch.load", lambda raw: pytest.fail("decoded"))
    with pytest.raises(IntegrityError, match=r"model.sgm: weights.safetensors lists tensors in 0.0 MiB, more than "
                       r"the 0.0 MiB allowed"):
        Sampler.load(model_file)


def safetensors_bytes(header: object, data: bytes = b"", length: int | None = None) -> bytes:
    """Weights as an attacker writes them: a header (JSON) of any ``length`` claimed, then ``data``."""
    raw = json.dumps(header).encode()
    return (len(raw) if length is None else length).to_bytes(8, "little") + raw + data


def entry(dtype: object = "F32", shape: object = (2,), offsets: object = (0, 8)) -> dict:
    return {"dtype": dtype, "shape": list(shape) if isinstance(shape, tuple) else shape,
            "data_offsets": list(offsets) if isinstance(offsets, tuple) else offsets}


def test_tensor_list_of_saved_tensors():
    tensors = {"a": torch.zeros(2, 3), "b": torch.tensor([1, 2]), "c": torch.zeros(0), "d": torch.tensor([True]),
               "e": torch.zeros(3, dtype=torch.float64), "f": torch.zeros(2, 2, dtype=torch.bfloat16)}
    assert check_tensor_list(save_tensors(tensors), "w") == len(tensors)
    assert check_tensor_list(save_tensors({}), "w") == 0
    assert check_tensor_list(safetensors_bytes({"__metadata__": {"by": "x"}, "a": entry()}, bytes(8)), "w") == 1


MALFORMED = [
    (safetensors_bytes({"a": entry()}, bytes(12)), "its tensors take 8 bytes, but 12 follow the header"),
    (safetensors_bytes({"a": entry()}, bytes(4)), "its tensors take 8 bytes, but 4 follow the header"),
    (safetensors_bytes({"a": entry(shape=(1,), offsets=(0, 4)), "b": entry(shape=(1,), offsets=(8, 12))}, bytes(12)),
     "tensor 'b' starts at byte 8, not at 4 where the data before it ends"),
    (safetensors_bytes({"a": entry(), "b": entry(shape=(1,), offsets=(4, 8))}, bytes(8)),
     "tensor 'b' starts at byte 4, not at 8"),
    (safetensors_bytes({"a": entry(shape=(3,))}, bytes(8)),
     "tensor 'a' takes 8 bytes, but a F32 tensor of shape [3] takes 12"),
    (safetensors_bytes({"a": entry(shape=(10**12, 10**12))}, bytes(8)), "tensor 'a' takes 8 bytes, but a F32"),
    (safetensors_bytes({"a": entry(dtype="F128")}, bytes(8)), "tensor 'a' has dtype \"F128\", not one of BOOL"),
    (safetensors_bytes({"a": [1, 2]}, bytes(8)), "tensor 'a' is described by [1, 2], not an object"),
    (safetensors_bytes({"a": entry(shape=(-2,))}, bytes(8)), "tensor 'a' has shape [-2], not a list of sizes"),
    (safetensors_bytes({"a": entry(shape="2")}, bytes(8)), "tensor 'a' has shape \"2\""),
    (safetensors_bytes({"a": entry(offsets=(8, 0))}, bytes(8)), "tensor 'a' has data_offsets [8, 0], not [begin, end]"),
    (safetensors_bytes({"a": entry(offsets=(False, 8))}, bytes(8)), "tensor 'a' has data_offsets [false, 8]"),
    (safetensors_bytes({"a": entry(offsets=(0, 4, 8))}, bytes(8)), "tensor 'a' has data_offsets [0, 4, 8]"),
    (safetensors_bytes([entry()], bytes(8)), "its header is not a JSON object"),
    (safetensors_bytes({"__metadata__": {"n": 1}}), "its __metadata__ is not an object of strings"),
    (safetensors_bytes({}, length=100), "its header claims 100 bytes, more than the 2 that follow"),
    (b"\x02\x00\x00\x00\x00\x00\x00\x00\xff{", "its header is not valid JSON (UnicodeDecodeError"),
    (b"\x01\x00", "its header claims 1 bytes, more than the 0 that follow"),
]


@pytest.mark.parametrize(("weights", "problem"), MALFORMED, ids=[problem[:48] for _, problem in MALFORMED])
def test_malformed_tensor_list_is_refused_undecoded(weights, problem):
    with pytest.raises(IntegrityError, match=re.escape(f"w is malformed: {problem}")) as info:
        check_tensor_list(weights, "w")
    assert str(info.value).endswith("(fix: use an intact file written by synthgen)")


def test_read_manifest_decodes_no_weights(model_file, monkeypatch):
    monkeypatch.setattr("safetensors.torch.load", lambda raw: pytest.fail("decoded"))
    assert read_manifest(model_file)["model"]["name"] == "ctgan"
    monkeypatch.setattr(artifact, "MAX_HEADER_BYTES", 100)
    with pytest.raises(IntegrityError, match="weights.safetensors lists tensors in 0.0 MiB, more than the 0.0 MiB"):
        read_manifest(model_file)


def test_malformed_weights_are_refused_alike_with_and_without_decoding(model_file, tmp_path, monkeypatch):
    """Weights whose list of tensors claims more data than they hold, checksums recomputed (they are unkeyed)."""
    manifest, _ = read_model_file(model_file)
    crafted = safetensors_bytes({"a": entry(shape=(1000,), offsets=(0, 4000))}, bytes(8))
    with monkeypatch.context() as patch:
        patch.setattr("safetensors.torch.save", lambda tensors: crafted)
        path = write_model_file(tmp_path / "crafted.sgm", manifest, {})
    problem = f"{path}: {WEIGHTS} is malformed: its tensors take 4,000 bytes, but 8 follow the header"
    for read in (read_manifest, Sampler.load):
        with pytest.raises(IntegrityError, match=re.escape(problem)):
            read(path)


@pytest.mark.parametrize("limit", ["MAX_MANIFEST_BYTES", "MAX_HEADER_BYTES"])
def test_file_that_could_not_be_loaded_is_not_written(ctgan_synth, tmp_path, monkeypatch, limit):
    monkeypatch.setattr(artifact, limit, 100)
    what = {"MAX_MANIFEST_BYTES": "its manifest", "MAX_HEADER_BYTES": "its list of tensors"}[limit]
    with pytest.raises(SynthgenError, match=rf"cannot save a model file that synthgen could not load: {what} would "
                       r"take .* MiB, more than the 0.0 MiB allowed \(fix: fewer columns, or fewer categories"):
        ctgan_synth.save(tmp_path / "m.sgm")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- writing
def test_refuses_overwrite_without_force(ctgan_synth, model_file):
    before = model_file.read_bytes()
    with pytest.raises(
        OutputExistsError, match="already exists \\(fix: choose another path or pass --force\\)"
    ):
        ctgan_synth.save(model_file)
    assert model_file.read_bytes() == before
    ctgan_synth.save(model_file, force=True)
    Sampler.load(model_file)
    assert sorted(p.name for p in model_file.parent.iterdir()) == [model_file.name]  # no temp files


def test_write_and_read_any_manifest_and_tensors(tmp_path):
    tensors = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.tensor([1, 2])}
    path = write_model_file(tmp_path / "t.sgm", {"note": "é ✓", "x": [1, 2.5]}, tensors)
    manifest, back = read_model_file(path)
    assert manifest["note"] == "é ✓" and manifest["x"] == [1, 2.5]
    assert all(np.array_equal(back[k].numpy(), tensors[k].numpy()) for k in tensors)
