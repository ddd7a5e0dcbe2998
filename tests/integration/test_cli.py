"""End to end through the command line: train each model, sample, inspect, and every failure path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from synthgen.cli import main
from synthgen.datasets import load_adult

NULL_COLUMNS = {"age": 0.15, "workclass": 0.1}


@pytest.fixture(scope="module")
def adult_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A 2,000-row Adult sample with nulls injected in one numeric and one categorical column."""
    df = load_adult().sample(2000, random_state=0).reset_index(drop=True)
    rng = np.random.default_rng(0)
    for col, rate in NULL_COLUMNS.items():
        df.loc[rng.random(len(df)) < rate, col] = np.nan
    path = tmp_path_factory.mktemp("data") / "adult.csv"
    df.to_csv(path, index=False)
    return path, pd.read_csv(path)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("model,epochs", [pytest.param("ctgan", 30, marks=pytest.mark.slow),
                                          pytest.param("tvae", 30, marks=pytest.mark.slow), ("marginals", None)])
def test_train_sample_inspect(tmp_path: Path, adult_csv, model: str, epochs: int | None) -> None:
    data, real = adult_csv
    model_file, out = tmp_path / "m.sgm", tmp_path / "synthetic.parquet"
    args = ["train", str(data), "--model", model, "--out", str(model_file), "--batch-size", "100", "-q"]
    if epochs is None:
        args = ["train", str(data), "--model", model, "--out", str(model_file), "-q"]
    else:
        args += ["--epochs", str(epochs)]
    code, output = run(*args)
    assert code == 0, output
    assert "model written to" in output
    code, output = run("sample", str(model_file), "--rows", "3000", "--out", str(out), "--seed", "1", "-q")
    assert code == 0, output
    fake = pd.read_parquet(out)
    assert list(fake.columns) == list(real.columns) and len(fake) == 3000
    assert fake.dtypes.equals(real.dtypes)
    check_domains(real, fake)
    code, output = run("inspect", str(model_file), "--json")
    assert code == 0 and json.loads(output)["model"]["name"] == model


def check_domains(real: pd.DataFrame, fake: pd.DataFrame) -> None:
    for col in real.columns:
        r, f = real[col].dropna(), fake[col].dropna()
        if pd.api.types.is_numeric_dtype(real[col]):
            assert f.min() >= r.min() and f.max() <= r.max(), col
            assert np.all(np.mod(f, 1) == 0), f"{col} should stay integral"
        else:
            assert set(f) <= set(r), f"{col} has unknown categories {set(f) - set(r)}"
        if col in NULL_COLUMNS:  # a few hundred GAN steps get the rate roughly, not exactly
            assert abs(fake[col].isna().mean() - real[col].isna().mean()) < 0.12, col
        else:
            assert not fake[col].isna().any(), f"{col} gained nulls"


@pytest.mark.slow
def test_where_condition_and_csv_output(tmp_path: Path, adult_csv) -> None:
    data, _ = adult_csv
    model_file, out = tmp_path / "m.sgm", tmp_path / "rich.csv"
    assert run("train", str(data), "--epochs", "3", "--batch-size", "200", "--out", str(model_file), "-q")[0] == 0
    code, output = run("sample", str(model_file), "--rows", "500", "--out", str(out), "--where", "income=>50K", "-q")
    assert code == 0, output
    fake = pd.read_csv(out)
    assert len(fake) == 500 and set(fake["income"]) == {">50K"}


def test_train_given_a_target_then_sample_a_class(tmp_path: Path, adult_csv) -> None:
    data, real = adult_csv
    model_file, out = tmp_path / "m.sgm", tmp_path / "rich.csv"
    code, output = run("train", str(data), "--epochs", "1", "--batch-size", "500", "--target", "income", "--out",
                       str(model_file), "-q")
    assert code == 0, output
    code, output = run("inspect", str(model_file), "--json")
    assert code == 0 and json.loads(output)["training"]["target"] == "income"
    code, output = run("sample", str(model_file), "--rows", "500", "--out", str(out), "--where", "income=>50K", "-q")
    assert code == 0, output
    assert set(pd.read_csv(out)["income"]) == {">50K"}
    assert_one_line_error(*run("train", str(data), "--target", "hours-per-week", "--out", str(tmp_path / "n.sgm")),
                          "target 'hours-per-week' is integer")
    assert_one_line_error(*run("train", str(data), "--target", "income", "--model", "ctgan", "--out",
                               str(tmp_path / "n.sgm")), "ctgan does not generate rows given a target")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, adult_csv) -> Path:
    data, _ = adult_csv
    path = tmp_path_factory.mktemp("model") / "tiny.sgm"
    code, output = run("train", str(data), "--model", "marginals", "--out", str(path), "-q")
    assert code == 0, output
    return path


def assert_one_line_error(code: int, output: str, match: str) -> None:
    assert code != 0
    assert "Traceback" not in output
    assert match in output, output


def test_missing_data_file(tmp_path: Path) -> None:
    assert_one_line_error(*run("train", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m.sgm")),
                          "no such file")


def test_unknown_model(tmp_path: Path, adult_csv) -> None:
    code, output = run("train", str(adult_csv[0]), "--model", "gpt", "--out", str(tmp_path / "m.sgm"))
    assert_one_line_error(code, output, "'gpt' is not one of")


def test_existing_output_needs_force(tmp_path: Path, adult_csv, tiny_model: Path) -> None:
    out = tmp_path / "exists.csv"
    out.write_text("keep me")
    code, output = run("sample", str(tiny_model), "--rows", "10", "--out", str(out))
    assert_one_line_error(code, output, "already exists")
    assert out.read_text() == "keep me"
    code, output = run("train", str(adult_csv[0]), "--out", str(out))
    assert_one_line_error(code, output, "pass --force")
    assert run("sample", str(tiny_model), "--rows", "10", "--out", str(out), "--force", "-q")[0] == 0
    assert len(pd.read_csv(out)) == 10


def test_bad_where_column(tmp_path: Path, tiny_model: Path) -> None:
    code, output = run("sample", str(tiny_model), "--rows", "10", "--out", str(tmp_path / "o.csv"),
                       "--where", "salary=high")
    assert_one_line_error(code, output, "unknown column 'salary'")
    assert not (tmp_path / "o.csv").exists()


def test_invalid_table_lists_every_problem(tmp_path: Path) -> None:
    df = pd.DataFrame({"user_id": [f"u{i}" for i in range(300)], "flat": 1, "empty": np.nan,
                       "x": np.arange(300) % 7 * 1.5})
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    code, output = run("train", str(path), "--out", str(tmp_path / "m.sgm"), "--batch-size", "500")
    assert_one_line_error(code, output, "invalid data (4 problems)")
    for name in ("user_id", "flat", "empty", "batch size"):
        assert name in output


def test_corrupt_model_file(tmp_path: Path, tiny_model: Path) -> None:
    bad = tmp_path / "bad.sgm"
    data = bytearray(tiny_model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    code, output = run("sample", str(bad), "--rows", "10", "--out", str(tmp_path / "o.csv"))
    assert_one_line_error(code, output, "error:")
    assert "corrupt" in output or "modified" in output or "checksum" in output


def test_unknown_table_format(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    assert_one_line_error(*run("train", str(path), "--out", str(tmp_path / "m.sgm")), "unknown table format")


def test_help_has_examples() -> None:
    for command in ("train", "sample", "inspect", "demo", "audit", "keygen", "encrypt", "decrypt", "mask",
                    "sign", "verify", "evaluate"):
        code, output = run(command, "--help")
        assert code == 0 and "Example:" in output


def test_sample_shards_add_up_to_the_whole(tmp_path: Path) -> None:
    data, model = tmp_path / "adult.csv", tmp_path / "m.sgm"
    load_adult().sample(500, random_state=0).to_csv(data, index=False)
    assert run("train", str(data), "--model", "marginals", "--out", str(model), "-q")[0] == 0
    code, output = run("sample", str(model), "--rows", "25000", "--seed", "3", "--out", str(tmp_path / "all.csv"))
    assert code == 0, output
    for i in range(3):
        code, output = run("sample", str(model), "--rows", "25000", "--seed", "3", "--shard", f"{i}/3",
                           "--out", str(tmp_path / f"part-{i}.csv"))
        assert code == 0 and f"shard {i}/3 of 25,000 rows" in output, output
    parts = pd.concat([pd.read_csv(tmp_path / f"part-{i}.csv") for i in range(3)], ignore_index=True)
    assert parts.equals(pd.read_csv(tmp_path / "all.csv"))
    assert_one_line_error(*run("sample", str(model), "--rows", "10", "--shard", "0/2", "--out",
                               str(tmp_path / "x.csv")), "needs a seed")
    code, output = run("sample", str(model), "--rows", "10", "--shard", "2", "--out", str(tmp_path / "x.csv"))
    assert code == 2 and "is not I/K" in output
