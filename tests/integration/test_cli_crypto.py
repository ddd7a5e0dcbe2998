"""``synthgen keygen / encrypt / decrypt`` from the command line."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from synthgen.cli import main

ROOT = Path(__file__).resolve().parents[2]
#: cryptography marks names deprecated the way it does when it retires them (DSA and DH here; its own modules
#: loaded first, as a release would not warn about itself), then runs synthgen
DEPRECATING = """
import runpy, sys
from cryptography import utils, x509
from cryptography.hazmat.primitives import asymmetric, serialization
for module, names in (("dsa", ("DSAPrivateKey", "DSAPublicKey")), ("dh", ("DHPrivateKey", "DHPublicKey"))):
    full = f"cryptography.hazmat.primitives.asymmetric.{module}"
    __import__(full)
    for name in names:
        utils.deprecated(getattr(sys.modules[full], name), full, f"{name} is deprecated",
                         utils.CryptographyDeprecationWarning, name=name)
    setattr(asymmetric, module, sys.modules[full])
sys.argv = ["synthgen", *sys.argv[1:]]
runpy.run_module("synthgen", run_name="__main__")
"""


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def test_keygen_encrypt_decrypt_round_trip(tmp_path: Path) -> None:
    key, src = tmp_path / "owner.key", tmp_path / "rows.csv"
    src.write_bytes(b"age,income\n" + os.urandom(5000))
    assert run("keygen", "--out", str(key))[0] == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    code, output = run("encrypt", str(src), "--out", str(tmp_path / "rows.enc"), "--key-file", str(key))
    assert code == 0, output
    code, output = run("decrypt", str(tmp_path / "rows.enc"), "--out", str(tmp_path / "back.csv"),
                       "--key-file", str(key))
    assert code == 0, output
    assert (tmp_path / "back.csv").read_bytes() == src.read_bytes()
    # the same from the environment, and the output is not overwritten without --force
    env = {"SYNTHGEN_KEY": key.read_text().strip()}
    code, output = run("decrypt", str(tmp_path / "rows.enc"), "--out", str(tmp_path / "back.csv"), env=env)
    assert code != 0 and "--force" in output


def test_passphrase_from_environment_and_wrong_one(tmp_path: Path) -> None:
    src = tmp_path / "m.sgm"
    src.write_bytes(os.urandom(100))
    env = {"SYNTHGEN_PASSPHRASE": "tr0ub4dor"}
    assert run("encrypt", str(src), "--out", str(tmp_path / "m.enc"), "--passphrase", env=env)[0] == 0
    code, output = run("decrypt", str(tmp_path / "m.enc"), "--out", str(tmp_path / "x"),
                       env={"SYNTHGEN_PASSPHRASE": "wrong"})
    assert code != 0 and "failed authentication" in output and "Traceback" not in output
    assert not (tmp_path / "x").exists()


def test_no_key_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("x\n1\n")
    code, output = run("encrypt", str(src), "--out", str(tmp_path / "a.enc"), env={"SYNTHGEN_KEY": ""})
    assert code != 0 and "no key given" in output


def test_encrypted_model_file_train_inspect_sample(tmp_path: Path) -> None:
    from synthgen.datasets import load_adult

    data, key, model = tmp_path / "adult.csv", tmp_path / "k.key", tmp_path / "m.sgm"
    load_adult().sample(600, random_state=0).to_csv(data, index=False)
    assert run("keygen", "--out", str(key))[0] == 0
    code, output = run("train", str(data), "--model", "marginals", "--encrypt", "--key-file", str(key),
                       "--out", str(model), "-q")
    assert code == 0, output
    assert b"manifest.json" not in model.read_bytes()  # nothing readable without the key
    code, output = run("inspect", str(model))
    assert code != 0 and "is encrypted with a key (fix: --key-file" in output
    code, output = run("inspect", str(model), "--key-file", str(key))
    assert code == 0 and "marginals" in output
    code, output = run("sample", str(model), "--rows", "50", "--out", str(tmp_path / "s.csv"),
                       "--key-file", str(key))
    assert code == 0, output
    other = tmp_path / "other.key"
    run("keygen", "--out", str(other))
    code, output = run("inspect", str(model), "--key-file", str(other))
    assert code != 0 and "failed authentication" in output


def test_no_deprecation_warning_reaches_the_user(tmp_path: Path) -> None:
    """keygen touches every key kind synthgen names in messages; a deprecated one must not print a warning."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-W", "default", "-c", DEPRECATING, "keygen", "--public", "--out",
                           str(tmp_path / "k")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0 and (tmp_path / "k.pub").exists(), done.stderr
    assert "DeprecationWarning" not in done.stderr, done.stderr


def test_passphrase_encrypted_model_file_opens(model_file: Path, tmp_path: Path) -> None:
    """inspect opens a model file encrypted with a passphrase: the secret its header names, as for any input."""
    env = {"SYNTHGEN_PASSPHRASE": "tr0ub4dor"}
    sealed = tmp_path / "m.sgm.enc"
    assert run("encrypt", str(model_file), "--out", str(sealed), "--passphrase", env=env)[0] == 0
    code, output = run("inspect", str(sealed), env=env)
    assert code == 0 and "ctgan" in output, output
