"""Key pairs, signing, and encrypted inputs / outputs across train, sample, mask and evaluate."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from synthgen.cli import main
from synthgen.crypto.keypairs import read_private_key
from synthgen.crypto.keys import read_key
from synthgen.crypto.streams import MAGIC, encryption_mode
from synthgen.datasets import load_adult
from synthgen.io import read_table


def run(*args: object, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    paths = {"sym": folder / "owner.key", "enc": folder / "owner-x.key", "sign": folder / "owner-sign.key"}
    assert run("keygen", "--out", paths["sym"])[0] == 0
    code, output = run("keygen", "--public", "--out", paths["enc"])
    assert code == 0 and "--recipient" in output, output
    code, output = run("keygen", "--signing", "--out", paths["sign"])
    assert code == 0 and "--verify" in output, output
    return paths


@pytest.fixture(scope="module")
def adult_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "adult.csv"
    load_adult().sample(800, random_state=0).to_csv(path, index=False)
    return path


def test_keygen_pairs_have_the_right_modes(keys: dict[str, Path]) -> None:
    for name in ("enc", "sign"):
        assert stat.S_IMODE(keys[name].stat().st_mode) == 0o600
        assert stat.S_IMODE(Path(f"{keys[name]}.pub").stat().st_mode) == 0o644
    assert b"PUBLIC KEY" in Path(f"{keys['enc']}.pub").read_bytes()


def test_keygen_protects_a_private_key_with_a_passphrase(tmp_path: Path) -> None:
    env = {"SYNTHGEN_PASSPHRASE": "long enough phrase"}
    assert run("keygen", "--public", "--passphrase", "--out", tmp_path / "p.key", env=env)[0] == 0
    assert (tmp_path / "p.key").read_bytes().startswith(MAGIC)  # scrypt-sealed, not PKCS8's weak PBKDF2
    read_private_key(tmp_path / "p.key", "long enough phrase")
    code, output = run("keygen", "--passphrase", "--out", tmp_path / "s.key", env=env)
    assert code == 2 and "--public or --signing" in output


def test_encrypt_to_a_recipient_and_decrypt_with_the_identity(tmp_path: Path, keys: dict[str, Path]) -> None:
    src = tmp_path / "rows.csv"
    src.write_text("a,b\n1,2\n")
    code, output = run("encrypt", src, "--out", tmp_path / "rows.csv.enc", "--recipient", f"{keys['enc']}.pub")
    assert code == 0, output
    assert encryption_mode(tmp_path / "rows.csv.enc") == "x25519"
    code, output = run("decrypt", tmp_path / "rows.csv.enc", "--out", tmp_path / "x.csv", "--key-file", keys["sym"])
    assert code == 1 and "--identity" in output and not (tmp_path / "x.csv").exists()
    code, output = run("decrypt", tmp_path / "rows.csv.enc", "--out", tmp_path / "x.csv", "--identity", keys["enc"])
    assert code == 0 and (tmp_path / "x.csv").read_text() == "a,b\n1,2\n", output
    code, output = run("encrypt", src, "--out", tmp_path / "y.enc", "--recipient", f"{keys['enc']}.pub",
                       "--key-file", keys["sym"])
    assert code == 2 and "one of --key-file, --passphrase, --recipient" in output


def test_sign_and_verify(tmp_path: Path, keys: dict[str, Path]) -> None:
    target = tmp_path / "model.sgm"
    target.write_bytes(b"pretend model" * 100)
    assert run("sign", target, "--signing-key", keys["sign"])[0] == 0
    code, output = run("verify", target, "--signer", f"{keys['sign']}.pub")
    assert code == 0 and "valid signature" in output
    target.write_bytes(b"pretend model" * 100 + b"!")
    code, output = run("verify", target, "--signer", f"{keys['sign']}.pub")
    assert code == 1 and "modified after it was signed" in output
    code, output = run("verify", target, "--signer", f"{keys['enc']}.pub")
    assert code == 1 and "Ed25519" in output


def test_signed_model_renamed_beside_its_signature_is_refused(tmp_path: Path, keys: dict[str, Path]) -> None:
    """A signed non-DP model renamed adult-dp.sgm (with adult-dp.sgm.sig) must not pass for a DP one."""
    from synthgen.shipped import models_dir

    model = tmp_path / "adult.sgm"
    model.write_bytes((models_dir() / "adult-tvae.sgm").read_bytes())
    assert run("sign", model, "--signing-key", keys["sign"])[0] == 0
    code, output = run("verify", model, "--signer", f"{keys['sign']}.pub")
    assert code == 0 and "signed as adult.sgm at 20" in output, output
    renamed = model.rename(tmp_path / "adult-dp.sgm")
    (tmp_path / "adult.sgm.sig").rename(tmp_path / "adult-dp.sgm.sig")
    pub = f"{keys['sign']}.pub"
    for args in (("verify", renamed, "--signer", pub), ("inspect", renamed, "--verify", pub),
                 ("sample", renamed, "--rows", 5, "--out", tmp_path / "rows.csv", "--verify", pub)):
        code, output = run(*args)
        assert code == 1 and "signed under the name 'adult.sgm'" in output and "--allow-rename" in output, output
    assert not (tmp_path / "rows.csv").exists()
    code, output = run("inspect", renamed, "--verify", pub, "--allow-rename")
    assert code == 0 and "warning:" in output and "accepted under its new name" in output, output
    code, output = run("inspect", renamed, "--allow-rename")
    assert code == 2 and "--allow-rename needs --verify" in output


def test_encrypted_train_sample_chain_with_signature(tmp_path: Path, keys: dict[str, Path],
                                                     adult_csv: Path) -> None:
    sym, partner = keys["sym"], f"{keys['enc']}.pub"
    data = tmp_path / "adult.csv.enc"
    assert run("encrypt", adult_csv, "--out", data, "--key-file", sym)[0] == 0
    model = tmp_path / "m.sgm"
    code, output = run("train", data, "--model", "marginals", "--out", model, "-q", "--key-file", sym, "--encrypt",
                       "--signing-key", keys["sign"])
    assert code == 0 and "(encrypted)" in output and "signature written" in output, output
    assert model.read_bytes().startswith(MAGIC)
    out = tmp_path / "rows.parquet.enc"
    code, output = run("sample", model, "--rows", 300, "--out", out, "--key-file", sym, "--recipient", partner,
                       "--verify", f"{keys['sign']}.pub", "--seed", 0)
    assert code == 0, output
    assert encryption_mode(out) == "x25519" and b"PAR1" not in out.read_bytes()[:64]
    rows = read_table(out, secret={"private_key": read_private_key(keys["enc"])})
    assert len(rows) == 300 and list(rows.columns) == list(pd.read_csv(adult_csv).columns)
    model.write_bytes(model.read_bytes()[:-1] + bytes([model.read_bytes()[-1] ^ 1]))  # one flipped bit
    code, output = run("sample", model, "--rows", 10, "--out", tmp_path / "r.csv", "--key-file", sym,
                       "--verify", f"{keys['sign']}.pub")
    assert code == 1 and "modified after it was signed" in output and not (tmp_path / "r.csv").exists()
    code, output = run("inspect", model, "--key-file", sym)
    assert code == 1 and "failed authentication" in output


def test_plain_output_named_enc_is_refused(tmp_path: Path, keys: dict[str, Path], adult_csv: Path) -> None:
    code, output = run("train", adult_csv, "--model", "marginals", "--out", tmp_path / "m.sgm", "-q")
    assert code == 0, output
    code, output = run("sample", tmp_path / "m.sgm", "--rows", 5, "--out", tmp_path / "rows.csv.enc")
    assert code == 2 and "nothing encrypts it" in output
    code, output = run("sample", tmp_path / "m.sgm", "--rows", 5, "--out", tmp_path / "r.csv", "--encrypt",
                       "--recipient", f"{keys['enc']}.pub")
    assert code == 2 and "not both" in output


@pytest.mark.slow
def test_mask_and_evaluate_read_and_write_encrypted(tmp_path: Path, keys: dict[str, Path], adult_csv: Path) -> None:
    sym = keys["sym"]
    data = tmp_path / "adult.csv.enc"
    assert run("encrypt", adult_csv, "--out", data, "--key-file", sym)[0] == 0
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"columns": {"fnlwgt": {"op": "noise", "scale": 1000}}}))
    masked = tmp_path / "masked.parquet.enc"
    code, output = run("mask", data, "--policy", policy, "--out", masked, "--key-file", sym, "--encrypt")
    assert code == 0, output
    table = read_table(masked, secret={"key": read_key(sym)})
    assert len(table) == 800 and table["fnlwgt"].dtype == pd.read_csv(adult_csv)["fnlwgt"].dtype
    code, output = run("mask", data, "--suggest", "--key-file", sym)
    assert code == 0 and '"k_anonymity"' in output
    figures = tmp_path / "figures.json.enc"
    code, output = run("evaluate", "--real", data, "--synthetic", masked, "--target", "income", "--seeds", 1,
                       "--key-file", sym, "--json", figures, "--encrypt")
    assert code == 0, output
    assert json.loads(read_table_bytes(figures, sym))["target"] == "income"


def read_table_bytes(path: Path, key_file: Path) -> bytes:
    from synthgen.crypto.streams import decrypt_bytes

    return decrypt_bytes(path.read_bytes(), key=read_key(key_file))


def test_option_conflicts_fail_before_any_work(tmp_path: Path, keys: dict[str, Path], adult_csv: Path) -> None:
    code, output = run("keygen", "--public", "--signing", "--out", tmp_path / "k")
    assert code == 2 and "not both" in output and not (tmp_path / "k").exists()
    code, output = run("mask", adult_csv, "--suggest", "--encrypt", "--key-file", keys["sym"])
    assert code == 2 and "--encrypt do not apply" in output
    (tmp_path / "m.sgm.sig").write_text("an older signature")
    code, output = run("train", adult_csv, "--model", "marginals", "--out", tmp_path / "m.sgm", "-q",
                       "--signing-key", keys["sign"])
    assert code == 1 and "m.sgm.sig already exists" in output and not (tmp_path / "m.sgm").exists()


def test_a_prompt_without_a_terminal_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("hello")
    code, output = run("encrypt", src, "--out", tmp_path / "a.enc", "--passphrase", env={"SYNTHGEN_PASSPHRASE": ""})
    assert code == 1 and "no answer to a prompt" in output and "internal error" not in output
