"""The shipped models in trained_models/: each loads on this install, samples, and still matches its card."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from synthgen import Sampler
from synthgen.cli import main
from synthgen.shipped import card_check, list_models, models_dir

SHIPPED = ["adult-ctgan", "adult-dp-eps1", "adult-dp-eps8", "adult-tvae", "digits-dp-eps1", "digits-dp-eps8",
           "digits-tvae"]


def test_every_model_the_readme_promises_is_shipped_with_its_card():
    entries = list_models()
    assert [e["name"] for e in entries] == SHIPPED
    for e in entries:
        assert (models_dir() / f"{e['name']}.md").is_file()
        assert e["card"]["check"]["figure"] == "column_shapes"
        assert set(e["card"]["figures"]) >= {"trtr_accuracy", "tstr_accuracy", "tstr_auc", "quality",
                                             "dcr_train_share", "mia_auc"}


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_matches_its_card(name):
    sampler = Sampler.load(models_dir() / f"{name}.sgm")
    card = sampler.manifest["card"]
    check = card["check"]
    # same rows and seed as when the card was written; the tolerance absorbs float32 vs bfloat16
    # sampling, BLAS differences between machines and changes of the sampler's random draws (the
    # ctgan / tvae cards predate the inverse-CDF category draws: within 0.002 since), not a model that changed
    value = card_check(sampler, card["dataset"], check["rows"], check["seed"])
    assert value == pytest.approx(check["value"], abs=check["tolerance"])
    if sampler.privacy.get("differential_privacy"):
        assert sampler.privacy["epsilon"] <= sampler.privacy["epsilon_target"] + 1e-9


def test_models_command_lists_one_line_each_and_sample_takes_a_name(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(main, ["models"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == SHIPPED
    out = tmp_path / "adult.csv"
    sampled = runner.invoke(main, ["sample", "adult-tvae", "--rows", "50", "--out", str(out)])
    assert sampled.exit_code == 0, sampled.output
    assert out.read_text().count("\n") == 51


def test_models_command_without_a_models_folder_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHGEN_MODELS", str(tmp_path / "nowhere"))
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code != 0 and "no shipped models at" in result.output and "Traceback" not in result.output
