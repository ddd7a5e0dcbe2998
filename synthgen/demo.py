"""The main job on the bundled data: train on Adult, sample, and evaluate against the real table."""

from __future__ import annotations

from pathlib import Path

from synthgen.datasets import load_adult
from synthgen.errors import SynthgenError
from synthgen.evaluation import evaluate
from synthgen.evaluation.prep import split_holdout
from synthgen.io import check_writable, read_table
from synthgen.models.registry import DEFAULT_MODEL
from synthgen.sampler import Sampler
from synthgen.synthesizer import Synthesizer

TARGET = "income"


def run_demo(out: Path, *, model: str = DEFAULT_MODEL, epochs: int | None = None, rows: int = 10_000,
             force: bool = False, progress: bool = True) -> str:
    """Train ``model`` on 80% of Adult, sample ``rows`` rows, evaluate them, and return a summary."""
    if out.exists() and not out.is_dir():
        raise SynthgenError(f"{out} is a file (fix: give a folder for --out)")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"model": out / f"adult-{model}.sgm", "table": out / f"adult-{model}-synthetic.csv",
             "json": out / "evaluation.json", "report": out / "evaluation.html"}
    for path in paths.values():
        check_writable(path, force=force)
    train, holdout = split_holdout(load_adult(), TARGET, test_size=0.2, seed=0)
    given = TARGET if Synthesizer.takes_target(model) else None  # rows generated given their income class
    synth = Synthesizer(model=model, epochs=epochs, seed=0, progress=progress, target=given).fit(train)
    synth.save(paths["model"], force=force)
    Sampler.load(paths["model"]).sample_to(paths["table"], rows, seed=0, force=force)
    result = evaluate(train, read_table(paths["table"]), holdout, target=TARGET)
    result.to_json(paths["json"], force=force)
    result.to_html(paths["report"], force=force)
    return "\n".join([
        f"trained {model} on {len(train):,} Adult rows in {synth.summary['seconds']:.1f} s",
        f"model file:      {paths['model']}",
        f"synthetic rows:  {paths['table']} ({rows:,} rows)",
        f"evaluation:      {paths['report']} and {paths['json']} (held-out real rows: {len(holdout):,})",
        "", result.summary()])
