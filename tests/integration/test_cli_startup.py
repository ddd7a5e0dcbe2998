"""Commands that neither train nor sample start without importing torch: each runs for real on small inputs in
a fresh process, which then reports the heavy modules it imported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: runs the CLI in-process, then prints its exit code and which heavy modules it imported as the last line
PROBE = """
import json, sys
from synthgen.cli import main
try:
    main(sys.argv[1:], prog_name="synthgen")
    code = 0
except SystemExit as exit:
    code = exit.code or 0
heavy = sorted(m for m in ("torch", "opacus", "pandas", "sklearn", "safetensors") if m in sys.modules)
print(json.dumps({"exit": code, "heavy": heavy}))
"""
HEAVY = ["opacus", "pandas", "safetensors", "sklearn", "torch"]
#: what masking needs (it reads and writes tables); never torch, opacus or scikit-learn
TABLES = ["pandas"]
POLICY = {"columns": {"name": {"op": "replace", "kind": "name"}, "email": {"op": "pseudonymize"},
                      "age": {"op": "generalize", "width": 10}}}
COMMANDS = [
    (["--help"], []),
    (["encrypt", "--help"], []),
    (["models", "--help"], []),
    (["train", "--help"], []),
    (["keygen", "--out", "{tmp}/new.key"], []),
    (["keygen", "--public", "--out", "{tmp}/me"], []),
    (["keygen", "--signing", "--out", "{tmp}/me-sign"], []),
    (["encrypt", "{data}/table.csv", "--out", "{tmp}/table.csv.enc", "--key-file", "{data}/owner.key"], []),
    (["encrypt", "{data}/table.csv", "--out", "{tmp}/table.csv.enc", "--recipient", "{data}/partner.pub"], []),
    (["decrypt", "{data}/table.csv.enc", "--out", "{tmp}/table.csv", "--key-file", "{data}/owner.key"], []),
    (["sign", "{data}/table.csv", "--signing-key", "{data}/owner-sign", "--out", "{tmp}/table.csv.sig"], []),
    (["verify", "{data}/table.csv", "--signer", "{data}/owner-sign.pub"], []),
    (["inspect", "{data}/model.sgm"], []),
    (["inspect", "adult-tvae"], []),  # a shipped model, by name
    (["inspect", "{data}/model.sgm.enc", "--key-file", "{data}/owner.key", "--verify", "{data}/owner-sign.pub",
      "--json"], []),
    (["models"], []),
    (["models", "--json"], []),
    (["mask", "{data}/table.csv", "--suggest", "--out", "{tmp}/policy.json"], TABLES),
    (["mask", "{data}/table.csv", "--policy", "{data}/policy.json", "--out", "{tmp}/masked.csv", "--key-file",
      "{data}/owner.key"], TABLES),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Keys, a small table (plain, encrypted and signed), a masking policy and a shipped model file (plain, and
    encrypted then signed)."""
    from synthgen.crypto.keypairs import write_keypair
    from synthgen.crypto.keys import read_key, write_key_file
    from synthgen.crypto.signing import read_signing_key, sign_file, write_signing_keypair
    from synthgen.crypto.streams import encrypt_file
    from synthgen.shipped import models_dir

    folder = tmp_path_factory.mktemp("inputs")
    key = folder / "owner.key"
    write_key_file(key)
    write_keypair(folder / "partner")
    write_signing_keypair(folder / "owner-sign")
    signer = read_signing_key(folder / "owner-sign")
    rows = [f"person{i},p{i}@example.org,{20 + i % 50},{'abc'[i % 3]}" for i in range(60)]
    (folder / "table.csv").write_text("\n".join(["name,email,age,city", *rows]) + "\n")
    encrypt_file(folder / "table.csv", folder / "table.csv.enc", key=read_key(key))
    sign_file(folder / "table.csv", signer)
    (folder / "policy.json").write_text(json.dumps(POLICY))
    shutil.copy(models_dir() / "adult-tvae.sgm", folder / "model.sgm")
    encrypt_file(folder / "model.sgm", folder / "model.sgm.enc", key=read_key(key))
    sign_file(folder / "model.sgm.enc", signer)
    return folder


@pytest.mark.parametrize(("args", "allowed"), COMMANDS, ids=[" ".join(a[:2]).replace("{", "").replace("}", "")
                                                             for a, _ in COMMANDS])
def test_command_imports_no_torch(data, tmp_path, args, allowed):
    args = [a.format(tmp=tmp_path, data=data) for a in args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYNTHGEN_KEY": ""}
    env.pop("SYNTHGEN_PASSPHRASE", None)
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=60,
                          cwd=tmp_path)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"exit": 0, "heavy": [m for m in HEAVY if m in allowed]}, done.stdout[-2000:] + done.stderr
