"""``synthgen mask`` (suggest, mask, reveal) and ``train``'s identifier checks from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from synthgen.cli import main


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    return result.exit_code, result.output


@pytest.fixture
def patients(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 600
    table = pd.DataFrame({
        "patient_id": rng.permutation(n) + 10_000,
        "email": [f"p{i}@clinic.org" for i in range(n)],
        "age": rng.integers(18, 90, n), "sex": rng.choice(["F", "M"], n),
        "zip": rng.choice([2139, 2140, 2141, 10001, 94110], n),
        "diagnosis": rng.choice(["flu", "asthma", "diabetes"], n), "cost": rng.gamma(2.0, 500.0, n).round(2),
    })
    path = tmp_path / "patients.csv"
    table.to_csv(path, index=False)
    return path


def test_suggest_then_mask_then_reveal(tmp_path: Path, patients: Path) -> None:
    policy, out, report, key = (tmp_path / n for n in ("policy.json", "masked.parquet", "report.json", "k.key"))
    code, output = run("mask", patients, "--suggest", "--out", policy, "--k", 4)
    assert code == 0, output
    suggested = json.loads(policy.read_text())
    assert suggested["columns"]["email"]["op"] == "replace"
    assert suggested["columns"]["patient_id"]["op"] == "pseudonymize"
    assert set(suggested["k_anonymity"]["columns"]) == {"age", "sex", "zip"}
    suggested["columns"]["patient_id"]["reversible"] = True
    policy.write_text(json.dumps(suggested))
    assert run("keygen", "--out", key)[0] == 0
    code, output = run("mask", patients, "--policy", policy, "--out", out, "--report", report, "--key-file", key)
    assert code == 0, output
    assert "k-anonymity over age, sex, zip: k = " in output and "rows suppressed" in output
    masked, original = pd.read_parquet(out), pd.read_csv(patients)
    assert masked.groupby(["age", "sex", "zip"]).size().min() >= 4
    assert json.loads(report.read_text())["rows_in"] == len(original)
    assert not set(masked["email"]) & set(original["email"])
    back = tmp_path / "back.csv"
    code, output = run("mask", out, "--policy", policy, "--reveal", "--out", back, "--key-file", key)
    assert code == 0, output
    kept = pd.read_csv(back)["patient_id"]
    assert set(kept) <= set(original["patient_id"]) and len(kept) == len(masked)


def test_shared_key_domain_keeps_tables_joinable(tmp_path: Path, patients: Path) -> None:
    """patients.patient_id and visits.patient_id (with nulls: floats in CSV) masked by two policies that name
    one domain: the masked tables still join, and each reveals."""
    key, visits = tmp_path / "k.key", tmp_path / "visits.csv"
    ids = pd.read_csv(patients)["patient_id"]
    pd.DataFrame({"patient_id": [ids[5], ids[9], None, ids[5]], "ward": ["A", "B", "C", "A"]}).to_csv(visits,
                                                                                                      index=False)
    assert run("keygen", "--out", key)[0] == 0
    entry = {"op": "pseudonymize", "reversible": True, "domain": "patient"}
    for table in (patients, visits):
        policy = tmp_path / f"{table.stem}-policy.json"
        policy.write_text(json.dumps({"columns": {"patient_id": entry}}))
        code, output = run("mask", table, "--policy", policy, "--out", tmp_path / f"{table.stem}-masked.csv",
                           "--key-file", key)
        assert code == 0, output
    masked_patients, masked_visits = (pd.read_csv(tmp_path / f"{n}-masked.csv") for n in ("patients", "visits"))
    assert len(masked_visits.merge(masked_patients, on="patient_id")) == 3
    code, output = run("mask", tmp_path / "visits-masked.csv", "--policy", tmp_path / "visits-policy.json", "--reveal",
                       "--out", tmp_path / "visits-back.csv", "--key-file", key)
    assert code == 0, output
    assert pd.read_csv(tmp_path / "visits-back.csv")["patient_id"].dropna().tolist() == [ids[5], ids[9], ids[5]]


def test_mask_errors_are_one_line(tmp_path: Path, patients: Path) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"columns": {"nurse": "drop", "age": {"op": "blur"}}}))
    code, output = run("mask", patients, "--policy", policy, "--out", tmp_path / "m.csv")
    assert code == 1 and output.startswith("error: invalid masking policy (2 problems)")
    assert "'nurse'" in output and "'blur'" in output and not (tmp_path / "m.csv").exists()
    code, output = run("mask", patients, "--out", tmp_path / "m.csv")
    assert code == 2 and "--policy" in output
    (tmp_path / "m.csv").write_text("mine")
    policy.write_text(json.dumps({"columns": {"email": "drop"}}))
    code, output = run("mask", patients, "--policy", policy, "--out", tmp_path / "m.csv")
    assert code == 1 and "--force" in output and (tmp_path / "m.csv").read_text() == "mine"


def test_train_refuses_id_columns_and_warns_about_identifiers(tmp_path: Path, patients: Path) -> None:
    code, output = run("train", patients, "--model", "marginals", "--out", tmp_path / "m.sgm", "-q")
    assert code == 1 and "column 'patient_id': looks like an ID" in output and "--allow patient_id" in output
    assert "warning: column 'email' looks like email addresses" in output
    assert not (tmp_path / "m.sgm").exists()
    code, output = run("train", patients, "--model", "marginals", "--out", tmp_path / "m.sgm", "-q",
                       "--allow", "patient_id", "--allow", "email")
    assert code == 0 and "warning" not in output, output
