"""Several tables through the command line, as the README shows it: metadata detect, train a folder, sample
to a folder and to a database, inspect, evaluate with a report; and the failure paths (one clear line)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from shop_data import shop_tables

from synthgen.cli import main
from synthgen.relational.tables_io import read_tables


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def shop_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    for name, df in shop_tables(customers=120).items():
        df.to_csv(folder / f"{name}.csv.gz", index=False)
    return folder


@pytest.fixture(scope="module")
def trained(shop_folder, tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("model")
    meta, model = out / "shop.json", out / "shop.sgm"
    code, text = run("metadata", "detect", str(shop_folder), "--out", str(meta))
    assert code == 0, text
    assert "purchase.store_id -> store.store_id (guessed" in text and "4 tables, 3 relationships" in text
    code, text = run("train", str(shop_folder), "--metadata", str(meta), "--out", str(model), "--epochs", "3",
                     "--batch-size", "100", "-q")
    assert code == 0, text
    assert "trained 4 tables" in text
    return meta, model


def test_sample_to_a_folder_and_evaluate(trained, shop_folder, tmp_path):
    meta, model = trained
    out = tmp_path / "synthetic"
    code, text = run("sample", str(model), "--scale", "0.5", "--seed", "1", "--out", str(out))
    assert code == 0, text
    tables, _ = read_tables(out)
    assert len(tables["customer"]) == 60 and tables["item"].purchase_id.isin(tables["purchase"].purchase_id).all()
    code, text = run("sample", str(model), "--scale", "0.5", "--out", str(out))
    assert code == 1 and "already exists" in text and "--force" in text
    report, figures = tmp_path / "r.html", tmp_path / "f.json"
    code, text = run("evaluate", "--real", str(shop_folder), "--synthetic", str(out), "--metadata", str(meta),
                     "--report", str(report), "--json", str(figures))
    assert code == 0, text
    data = json.loads(figures.read_text())
    assert data["referential_integrity"] == 1.0 and data["primary_keys_unique"] is True
    assert 0 < data["quality"] <= 1
    page = report.read_text()
    assert "Relationship item.purchase_id -&gt; purchase.purchase_id" in page and "Table store" in page


def test_sample_to_sqlite_then_train_from_it(trained, tmp_path):
    _, model = trained
    url = f"sqlite:///{tmp_path / 'partner.db'}"
    code, text = run("sample", str(model), "--scale", "0.5", "--seed", "2", "--out", url)
    assert code == 0, text
    code, text = run("sample", str(model), "--out", url)
    assert code == 1 and "already has table(s)" in text
    assert run("sample", str(model), "--out", url, "--force")[0] == 0
    code, text = run("train", url, "--out", str(tmp_path / "again.sgm"), "--epochs", "1", "--batch-size", "50", "-q")
    assert code == 0, text
    assert "declared by the database" in text


def test_inspect_shows_tables_and_relationships(trained):
    _, model = trained
    code, text = run("inspect", str(model))
    assert code == 0, text
    assert "relational: 4 tables" in text and "purchase.store_id -> store.store_id" in text
    assert "per customer row (context customer_id)" in text


def test_failures_are_one_line(trained, shop_folder, tmp_path):
    _, model = trained
    code, text = run("sample", str(model), "--rows", "10", "--out", str(tmp_path / "x"))
    assert code == 2 and "--rows applies to a single-table model" in text
    bad = tmp_path / "bad"
    bad.mkdir()
    for name, df in shop_tables(customers=50).items():
        if name == "purchase":
            df.loc[0, "customer_id"] = 10**6
        df.to_csv(bad / f"{name}.csv", index=False)
    meta = tmp_path / "m.json"
    assert run("metadata", "detect", str(shop_folder), "--out", str(meta))[0] == 0
    code, text = run("train", str(bad), "--metadata", str(meta), "--out", str(tmp_path / "m.sgm"))
    assert code == 1
    assert "table 'purchase', column 'customer_id': 1 rows point to no row of customer" in text
    assert "Traceback" not in text
    code, text = run("train", str(shop_folder), "--metadata", str(meta), "--out", str(tmp_path / "e.sgm"),
                     "--epsilon", "1")  # entity-level DP: one entity table and its children, not this shape
    assert code == 1 and "entity" in text and "Traceback" not in text and not (tmp_path / "e.sgm").exists()
    assert pd.read_csv(bad / "store.csv").shape[0] == 12


def test_evaluate_with_held_out_entities_gives_utility_privacy_and_detection(shop_folder, trained, tmp_path):
    from synthgen.evaluation.entities import split_entities
    from synthgen.metadata import Metadata

    meta, model = trained
    tables, _ = read_tables(shop_folder)
    train, holdout = split_entities(tables, Metadata.load(meta), "customer", seed=0)
    folders = {}
    for label, side in (("train", train), ("holdout", holdout)):
        folders[label] = tmp_path / label
        folders[label].mkdir()
        for name, df in side.items():
            df.to_csv(folders[label] / f"{name}.csv", index=False)
    synthetic = tmp_path / "synthetic"
    assert run("sample", str(model), "--seed", "1", "--out", str(synthetic))[0] == 0
    figures, report = tmp_path / "f.json", tmp_path / "r.html"
    code, text = run("evaluate", "--real", str(folders["train"]), "--synthetic", str(synthetic), "--test",
                     str(folders["holdout"]), "--metadata", str(meta), "--target", "customer.segment", "--seeds", "1",
                     "--json", str(figures), "--report", str(report))
    assert code == 0, text
    assert "entity privacy (customer, with descendants): DCR share" in text
    assert "utility (customer.segment, classification): TSTR auc" in text
    data = json.loads(figures.read_text())
    assert 0 <= data["entity_privacy"]["dcr_train_share"] <= 1 and 0.5 <= data["detection_auc"] <= 1
    assert data["entity_utility"]["trtr"]["auc"] > 0.8  # the segment follows from the purchases
    page = report.read_text()
    assert "Privacy: entities of customer" in page and "Utility: customer.segment" in page
    code, text = run("evaluate", "--real", str(folders["train"]), "--synthetic", str(synthetic), "--test",
                     str(folders["holdout"]), "--metadata", str(meta), "--target", "customer.nothing")
    assert code == 2 and "customer's entity frame has no column 'nothing'" in text
    code, text = run("evaluate", "--real", str(folders["train"]), "--synthetic", str(synthetic),
                     "--metadata", str(meta), "--target", "customer.segment")
    assert code == 2 and "--target needs --test" in text
    code, text = run("evaluate", "--real", str(folders["train"]), "--synthetic", str(synthetic), "--test",
                     str(folders["train"]), "--metadata", str(meta))
    assert code == 2 and "no entities were held out" in text
    code, text = run("evaluate", "--real", str(folders["train"]), "--synthetic", str(synthetic), "--test",
                     str(folders["holdout"]), "--metadata", str(meta), "--entity", "store")
    assert code == 2 and "--entity store: --real and --test share its keys" in text


def test_mask_a_folder_keeps_keys_joinable_and_reads_encrypted_files(shop_folder, trained, tmp_path):
    meta, _ = trained
    key = tmp_path / "owner.key"
    assert run("keygen", "--out", str(key))[0] == 0
    sealed = tmp_path / "sealed"
    sealed.mkdir()
    for path in shop_folder.iterdir():  # every table encrypted on its own
        code, text = run("encrypt", str(path), "--out", str(sealed / (path.name + ".enc")), "--key-file", str(key))
        assert code == 0, text
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"version": 1, "tables": {
        "customer": {"columns": {"customer_id": {"op": "pseudonymize", "reversible": True}}}}}))
    out = tmp_path / "masked"
    code, text = run("mask", str(sealed), "--metadata", str(meta), "--policy", str(policy), "--out", str(out),
                     "--key-file", str(key))
    assert code == 0, text
    assert "customer_id: pseudonymize" in text and "masked tables written to" in text
    masked, _ = read_tables(out)
    real = shop_tables(customers=120)
    assert not set(masked["customer"].customer_id) & set(real["customer"].customer_id.astype(str))
    assert masked["purchase"].customer_id.isin(masked["customer"].customer_id).all()
    code, text = run("train", str(sealed), "--metadata", str(meta), "--out", str(tmp_path / "s.sgm"), "--epochs", "1",
                     "--batch-size", "50", "-q", "--key-file", str(key))
    assert code == 0, text
    code, text = run("train", str(sealed), "--metadata", str(meta), "--out", str(tmp_path / "t.sgm"), "--epochs", "1")
    assert code == 1 and "encrypted with a key" in text
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tables": {"purchase": {"columns": {"customer_id": "drop"}}}}))
    code, text = run("mask", str(shop_folder), "--metadata", str(meta), "--policy", str(bad), "--out",
                     str(tmp_path / "m2"))
    assert code == 1 and "is a key and 'drop' would break its joins" in text
    code, text = run("mask", str(shop_folder), "--metadata", str(meta), "--suggest")
    assert code == 0 and '"tables"' in text
