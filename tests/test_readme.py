"""Every command in the README's example blocks runs: the README cannot rot.

Fenced blocks opened with ```` ```bash example ```` are extracted and their ``synthgen`` commands run
in order, in one scratch folder holding stand-ins for the files they name (Adult as adult.csv:
differential privacy needs its 32,561 rows; 300- and 100-row train.csv / holdout.csv; a patients.csv
with identifiers; the bundled berka tables as berka/). Only the sizes are
cut: a train / audit / demo without --epochs gets --epochs 1, --rows is capped at 300 and
--canaries at 20. Any command that fails fails the test, with the command and its output.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from synthgen.cli import main
from synthgen.datasets import load_adult, relational_path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```bash example\n(.*?)^```", re.S | re.M)
COMMANDS = ["train", "sample", "inspect", "evaluate", "audit", "mask", "keygen", "encrypt", "decrypt", "sign",
            "verify", "models", "demo", "metadata"]


def example_commands(text: str) -> list[list[str]]:
    """``synthgen`` command lines of the example blocks (continuations joined, comments dropped)."""
    commands = []
    for block in BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            args = shlex.split(line, comments=True)
            if args:
                assert args[0] == "synthgen", f"example blocks hold synthgen commands only, got: {line}"
                commands.append(args[1:])
    return commands


def small(args: list[str]) -> list[str]:
    """The same command on small data: fewer epochs, rows and canaries."""
    out = list(args)
    for flag, cap in (("--rows", 300), ("--canaries", 20)):
        if flag in out:
            i = out.index(flag) + 1
            out[i] = str(min(int(out[i].replace(",", "").replace("_", "")), cap))
    if out[0] in ("train", "audit", "demo") and "--epochs" not in out and "--resume" not in out:
        out += ["--epochs", "1"]
    return out


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    load_adult().to_csv(tmp_path / "adult.csv", index=False)
    adult = load_adult().sample(400, random_state=0).reset_index(drop=True)
    adult.iloc[:300].to_csv(tmp_path / "train.csv", index=False)
    adult.iloc[300:].to_csv(tmp_path / "holdout.csv", index=False)
    n = 60
    pd.DataFrame({
        "name": [f"{f} {s}" for f, s in zip(["Ann", "Bob", "Cid", "Dee", "Eve", "Fay"] * 10,
                                            ["Smith", "Jones", "Brown", "Lee", "Khan"] * 12, strict=True)],
        "email": [f"user{i}@example.com" for i in range(n)],
        "ssn": [f"{100 + i:03d}-{10 + i % 80:02d}-{1000 + i:04d}" for i in range(n)],
        "age": [20 + i % 50 for i in range(n)],
        "zip": [f"{10000 + (i % 7) * 11}" for i in range(n)],
        "diagnosis": ["flu", "cold", "asthma"] * 20,
    }).to_csv(tmp_path / "patients.csv", index=False)
    shutil.copytree(relational_path("berka"), tmp_path / "berka")  # the bundled berka tables, as the README names them
    shutil.copytree(relational_path("cdnow"), tmp_path / "cdnow")
    (tmp_path / "trained_models").symlink_to(README.parent / "trained_models")  # the shipped models, by path
    monkeypatch.chdir(tmp_path)
    for var in ("SYNTHGEN_KEY", "SYNTHGEN_PASSPHRASE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_readme_examples_cover_every_command():
    used = {args[0] for args in example_commands(README.read_text())}
    assert used == set(COMMANDS), f"commands without a README example: {set(COMMANDS) - used}"


@pytest.mark.slow
def test_readme_examples_run(scratch):
    runner = CliRunner()
    for args in example_commands(README.read_text()):
        args = small(args)
        result = runner.invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, f"synthgen {shlex.join(args)} failed:\n{result.output}"


PYTHON = re.compile(r"^```python example\n(.*?)^```", re.S | re.M)


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path, monkeypatch):
    """The Python blocks opened with ```` ```python example ```` run as written, in a scratch folder."""
    blocks = PYTHON.findall(README.read_text())
    assert blocks, "the README has Python examples that run"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102  # the README's own code


def json_keys(text: str) -> list[str]:
    """The dotted keys of the README's JSON-key table, alternatives expanded ("x.{a,b}" gives two) and
    a key written ".name" completed from the key before it; regression-only keys are left out."""
    table = text.split("JSON keys (", 1)[1].split("\n## ", 1)[0]
    keys: list[str] = []
    for row in (line for line in table.splitlines() if line.startswith("| `")):
        first = row.split("|")[1]
        previous = ""
        for token in re.findall(r"`([^`]+)`", first.split("(")[0]):
            key = previous.rsplit(".", 1)[0] + token if token.startswith(".") else token
            previous = key
            parts = re.match(r"(.*)\{(.*?)\}(.*)", key)
            keys += [parts[1] + alt + parts[3] for alt in parts[2].split(",")] if parts else [key]
    return keys


@pytest.mark.slow
def test_readme_json_keys_are_in_an_evaluation():
    from synthgen import evaluate

    df = load_adult().sample(1500, random_state=0).reset_index(drop=True)
    figures = evaluate(df[:1000], df[1000:1250], df[1250:], target="income", seeds=1).to_dict()
    keys = json_keys(README.read_text())
    assert "interpretability.rank_correlation" in keys and "utility.trtr.macro_f1" in keys
    for key in keys:
        node = figures
        for part in key.removesuffix("[]").split("."):
            assert isinstance(node, dict), key
            if part in ("*", "<name>"):
                part = next(iter(node))
            assert part in node, f"README names {key}, which an evaluation does not have"
            node = node[part]
