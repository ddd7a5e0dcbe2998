"""Build the models shipped in ``trained_models/`` and their model cards, seeded, one after another.

For each model: train on the dataset's fixed split (Adult 80/20, digits 75/25, stratified, seed 0),
sample as many rows as the train split, score them with the evaluator against the held-out split
(TRTR vs TSTR, quality, DCR share, MIA AUC; 3 MLP seeds), compute the card's re-checkable figure
(column shapes of 2,000 rows sampled with seed 0, re-checked by tests/integration/test_shipped.py),
and write ``NAME.sgm`` (figures in the manifest's ``card``) and ``NAME.md``.

    PYTHONPATH=. python benchmarks/train_shipped.py                   # all (about 20 min on 2 cores)
    PYTHONPATH=. python benchmarks/train_shipped.py --only digits-tvae --out /tmp/models
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from adult import cpu_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synthgen import Synthesizer, evaluate  # noqa: E402
from synthgen.datasets import adult_metadata_path, digits_metadata  # noqa: E402
from synthgen.shipped import card_check, real_split  # noqa: E402

CHECK_ROWS, CHECK_SEED = 2000, 0
SOURCES = {
    "adult": ("UCI Adult (Census Income), Becker & Kohavi 1996, https://doi.org/10.24432/C5XW20; licence CC BY 4.0",
              "income"),
    "digits": ("UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak 1998) as bundled with scikit-learn "
               "(load_digits, 8x8 test-set images), https://doi.org/10.24432/C50P49; licence CC BY 4.0", "label"),
}
#: name -> (dataset, Synthesizer options, one-line description)
SPECS: dict[str, tuple[str, dict[str, Any], str]] = {
    "adult-ctgan": ("adult", {"model": "ctgan"}, "conditional GAN, non-DP, library defaults"),
    "adult-tvae": ("adult", {"model": "tvae", "target": "income"},
                   "VAE given income (--target income), non-DP, library defaults (the best non-DP Adult model)"),
    "adult-dp-eps1": ("adult", {"model": "pairwise", "epsilon": 1.0, "metadata": "adult", "stats_share": 0.1},
                      "pairwise DP model at epsilon 1 (the best DP model): public UCI domain, 10% of epsilon on bins"),
    "adult-dp-eps8": ("adult", {"model": "pairwise", "epsilon": 8.0, "metadata": "adult", "stats_share": 0.1},
                      "pairwise DP model at epsilon 8: public UCI domain, 10% of epsilon on bins"),
    "digits-tvae": ("digits", {"model": "tvae", "epochs": 150, "batch_size": 100, "metadata": "digits",
                               "target": "label"}, "VAE on 8x8 digit images given their label, non-DP"),
    "digits-dp-eps1": ("digits", {"model": "pairwise", "epsilon": 1.0, "epochs": 5, "steps_per_epoch": 50,
                                  "ensemble": 1, "metadata": "digits"}, "pairwise DP model at epsilon 1"),
    "digits-dp-eps8": ("digits", {"model": "pairwise", "epsilon": 8.0, "epochs": 5, "steps_per_epoch": 50,
                                  "ensemble": 1, "metadata": "digits"}, "pairwise DP model at epsilon 8"),
}


def digits_frame(train: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Train columns (pixels blank in every training image dropped) and their public metadata."""
    columns = [c for c in train.columns if c == "label" or train[c].nunique() > 1]
    return train[columns], digits_metadata(columns)


def build(name: str, out: Path, mlp_seeds: int, quick: bool = False) -> dict[str, Any]:
    """Train, evaluate and write one shipped model and its card (``quick``: 1 epoch, a smoke run)."""
    dataset, options, description = SPECS[name]
    source, target = SOURCES[dataset]
    train, test = real_split(dataset)
    options = {"seed": 0, "progress": False, **options}
    if quick:
        options.update({"epochs": 1, **({"steps_per_epoch": 5} if options["model"] == "pairwise" else {})})
    with tempfile.TemporaryDirectory() as tmp:
        if dataset == "digits":
            train, meta = digits_frame(train)
            test = test[train.columns]
            options["metadata"] = Path(tmp) / "digits.metadata.json"
            options["metadata"].write_text(json.dumps(meta))
        elif options.get("metadata") == "adult":
            options["metadata"] = adult_metadata_path()
        started = time.perf_counter()
        synth = Synthesizer(**options).fit(train)
        fit_s = time.perf_counter() - started
    synthetic = synth.sample(len(train), seed=1)
    ev = evaluate(train, synthetic, test, target=target, seeds=mlp_seeds)
    u, f, p = ev["utility"], ev["fidelity"], ev["privacy"]
    figures = {"trtr_accuracy": u["trtr"]["accuracy"], "trtr_auc": u["trtr"]["auc"],
               "tstr_accuracy": u["tstr"]["accuracy"], "tstr_auc": u["tstr"]["auc"], "quality": f["quality"],
               "dcr_train_share": p["dcr_train_share"], "mia_auc": p["mia_auc"]}
    figures = {k: None if v is None else round(float(v), 4) for k, v in figures.items()}
    synth.card = {
        "name": name, "description": description, "dataset": dataset, "source": source, "target": target,
        "split": f"{len(train)} train / {len(test)} held-out rows, stratified on {target}, seed 0",
        "trained": datetime.now(UTC).isoformat(timespec="minutes"), "fit_seconds": round(fit_s, 1),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()}, torch {torch.__version__}",
        "figures": figures, "evaluation": f"synthgen.evaluate, {len(synthetic)} synthetic rows (seed 1), "
                                          f"{mlp_seeds} MLP seeds, on the held-out split",
        "check": {"figure": "column_shapes", "rows": CHECK_ROWS, "seed": CHECK_SEED, "tolerance": 0.02,
                  "value": round(card_check(synth.sampler(), dataset, CHECK_ROWS, CHECK_SEED), 4)},
    }
    path = synth.save(out / f"{name}.sgm", force=True)
    (out / f"{name}.md").write_text(card_markdown(synth.manifest()))
    return {"name": name, "path": str(path), **figures, "fit_s": round(fit_s, 1)}


def card_markdown(manifest: dict[str, Any]) -> str:
    """The readable model card, from the manifest alone."""
    card, privacy, training = manifest["card"], manifest["privacy"], manifest["training"]
    fig = card["figures"]
    schema = manifest["transformer"]["schema"]["columns"]
    hyper = manifest["model"]["hyperparameters"]
    lines = [f"# {card['name']}", "", f"{card['description']}. synthgen {manifest['synthgen_version']}, "
             f"model `{manifest['model']['name']}`.", "",
             "```bash", f"synthgen sample trained_models/{card['name']}.sgm --rows 1000 --out {card['dataset']}.csv",
             "```", "", "## Data", "", f"- source: {card['source']}", f"- split: {card['split']}",
             f"- training rows: {training.get('rows')}, columns: {len(schema)}",
             "- schema: " + ", ".join(f"`{c['name']}` ({c['kind']})" for c in schema), "",
             "## Training", "", f"- hyperparameters: `{json.dumps(hyper)}`",
             f"- {training.get('epochs', '-')} epochs, {card['fit_seconds']} s on {card['machine']} "
             f"({card['trained']}), seed {training.get('seed')}, {training.get('precision', 'float32')} matmuls",
             f"- rebuild: `PYTHONPATH=. python benchmarks/train_shipped.py --only {card['name']}`", "",
             "## Privacy", ""]
    if privacy.get("differential_privacy"):
        lines += [f"- differentially private: epsilon {privacy['epsilon']:.3f} "
                  f"(target {privacy.get('epsilon_target')}), "
                  f"delta {privacy['delta']:g}, {privacy.get('accountant')} accountant",
                  f"- raw (not noised): {', '.join(privacy.get('raw_quantities', []))}",
                  "- full ledger: `synthgen inspect` on the model file"]
    else:
        lines += [f"- {privacy['statement']}", f"- raw quantities in the file: {', '.join(privacy['raw_quantities'])}"]
    lines += ["", "## Evaluation", "", f"{card['evaluation']}.", "",
              "| TRTR acc | TSTR acc | TRTR AUC | TSTR AUC | quality | DCR train share | MIA AUC |",
              "|---:|---:|---:|---:|---:|---:|---:|",
              "| " + " | ".join(_fmt(fig[k]) for k in ("trtr_accuracy", "tstr_accuracy", "trtr_auc", "tstr_auc",
                                                        "quality", "dcr_train_share", "mia_auc")) + " |", "",
              f"Re-checked by the test suite: column shapes of {card['check']['rows']} rows sampled with seed "
              f"{card['check']['seed']} = {card['check']['value']} (tolerance {card['check']['tolerance']}).", ""]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SPECS), help="comma-separated model names")
    parser.add_argument("--out", type=Path, default=ROOT / "trained_models")
    parser.add_argument("--mlp-seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 epoch each: a smoke run, not for shipping")
    args = parser.parse_args()
    if args.quick and args.out.resolve() == (ROOT / "trained_models").resolve():
        parser.error("--quick models are smoke runs, not for shipping (fix: pass --out to another folder)")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only.split(","):
        if name not in SPECS:
            sys.exit(f"error: unknown model {name!r} (fix: use one of {', '.join(SPECS)})")
        print(json.dumps(build(name, args.out, args.mlp_seeds, args.quick)), flush=True)


if __name__ == "__main__":
    main()
