"""Histories through the command line: a history table on its own with SDV single-table sequence metadata,
trained and sampled by a number of entities, with a condition on their columns."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from synthgen.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "relational"))
from test_sequence_sampling import FLAT_METADATA, flat_visits  # noqa: E402


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_train_a_history_file_then_sample_entities(tmp_path):
    data, meta, model = tmp_path / "visits.csv", tmp_path / "visits.json", tmp_path / "visits.sgm"
    flat_visits().to_csv(data, index=False)
    meta.write_text(json.dumps(FLAT_METADATA))
    code, text = run("train", str(data), "--metadata", str(meta), "--out", str(model), "--epochs", "30", "-q")
    assert code == 0, text
    out = tmp_path / "synthetic"
    code, text = run("sample", str(model), "--entities", "40", "--where", "chronic=True", "--seed", "1",
                     "--out", str(out))
    assert code == 0, text
    visits = pd.read_csv(out / "visits.csv")
    assert list(visits.columns) == list(flat_visits().columns)
    assert visits.patient_id.nunique() <= 40 and visits.chronic.all()
    code, text = run("sample", str(model), "--entities", "40", "--scale", "1", "--out", str(tmp_path / "x"))
    assert code == 2 and "--scale and --entities" in text
    code, text = run("sample", str(model), "--rows", "40", "--out", str(tmp_path / "x"))
    assert code == 2 and "--entities N" in text
    code, text = run("sample", str(model), "--entities", "4", "--where", "ward=A", "--out", str(tmp_path / "x"))
    assert code == 1 and "unknown column 'ward'" in text


def test_train_and_audit_several_tables_with_entity_level_dp(tmp_path):
    from test_sequences import metadata, visits

    folder, meta, model = tmp_path / "clinic", tmp_path / "clinic.json", tmp_path / "clinic.sgm"
    folder.mkdir()
    for name, df in visits(patients=1500).items():
        df.to_csv(folder / f"{name}.csv", index=False)
    meta.write_text(json.dumps(metadata()))
    code, text = run("train", str(folder), "--metadata", str(meta), "--epsilon", "8", "--epochs", "1",
                     "--max-events", "6", "--batch-size", "300", "--out", str(model), "-q")
    assert code == 0, text
    assert "1,500 entities" in text and "entity-level DP: epsilon" in text
    code, text = run("inspect", str(model), "--json")
    assert code == 0 and '"unit": "entity"' in text
    code, text = run("inspect", str(model))
    assert code == 0 and "differentially private per ENTITY (a row of patient" in text, text
    assert "(private) rows" in text and "table visit: epsilon" in text
    synthetic, figures, report = tmp_path / "synthetic", tmp_path / "f.json", tmp_path / "r.html"
    code, text = run("sample", str(model), "--entities", "400", "--seed", "0", "--out", str(synthetic))
    assert code == 0, text
    code, text = run("evaluate", "--real", str(folder), "--synthetic", str(synthetic), "--metadata", str(meta),
                     "--json", str(figures), "--report", str(report))
    assert code == 0, text
    assert "histories of visit: score" in text
    histories = json.loads(figures.read_text())["sequences"]["visit"]
    assert histories["key"] == "patient_id" and 0 < histories["score"] <= 1
    assert 0 <= histories["length"] <= 1 and set(histories["columns"]) == {"severity", "ward"}
    page = report.read_text()
    assert "Histories: visit" in page and page.count("<img") >= 2
    code, text = run("audit", str(folder), "--metadata", str(meta), "--epsilon", "8", "--epochs", "1",
                     "--batch-size", "300", "--canaries", "40", "-q")
    assert code == 0, text
    assert "canaries        40" in text and "consistent with the claim" in text
    code, text = run("train", str(folder), "--epsilon", "4", "--max-events", "0", "--out", str(tmp_path / "x.sgm"))
    assert code == 2
