"""Handwritten digits: train an MLP on synthetic digit images instead of the private ones.

The scenario synthgen grew from. scikit-learn's bundled ``load_digits`` (1,797 images of 8x8
pixels, values 0-16, no download) stands in for a private image set. The script

1. splits it 75/25, stratified on the label (seed ``--seed``);
2. trains generators on the training split only: non-DP, and DP at epsilon 1 and 8;
3. samples as many synthetic rows as the training split, with labels distributed like the
   training labels (one ``conditions={"label": k}`` sample per class);
4. trains the same scikit-learn MLP on the real training split (TRTR) and on each synthetic set
   (TSTR), three MLP seeds each, and reports accuracy on the real test split;
5. writes ``results.json``, ``results.md`` and ``digits.png`` (for each class a row of real
   images and a row per model of synthetic ones).

Pixels that hold one value in every training image (the always-blank border pixels) are refused
by training (a single-value column carries nothing to learn); they are dropped before training and
added back as constant 0 after sampling. Pixels and the label are declared categorical in public
metadata (values 0..16 and labels 0..9 are public knowledge), so DP spends no budget on the domain.

    python examples/digits/run.py                  # full run (see README.md for its duration)
    python examples/digits/run.py --quick --out /tmp/digits   # tiny epochs, < 60 s
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LABEL = "label"
CLASSES = list(range(10))
MLP_SEEDS = (0, 1, 2)
OUTPUTS = ("results.json", "results.md", "digits.png")

#: (name, model, epsilon, hyperparameters) per run; the full run's choices are argued in README.md
FULL_RUNS: list[tuple[str, str, float | None, dict[str, Any]]] = [
    ("tvae", "tvae", None, {"epochs": 150, "batch_size": 100, "target": LABEL}),
    ("pairwise eps 1", "pairwise", 1.0, {"epochs": 5, "steps_per_epoch": 50, "ensemble": 1}),
    ("pairwise eps 8", "pairwise", 8.0, {"epochs": 5, "steps_per_epoch": 50, "ensemble": 1}),
]
QUICK_RUNS: list[tuple[str, str, float | None, dict[str, Any]]] = [
    ("tvae", "tvae", None, {"epochs": 5, "target": LABEL}),
    ("pairwise eps 1", "pairwise", 1.0, {"epochs": 1, "steps_per_epoch": 10, "ensemble": 1}),
    ("pairwise eps 8", "pairwise", 8.0, {"epochs": 1, "steps_per_epoch": 10, "ensemble": 1}),
]


def load_split(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The digits as a table (64 integer pixel columns and ``label``), split 75/25 stratified."""
    from synthgen.shipped import real_split

    return real_split("digits", seed)


def mlp_accuracy(train: pd.DataFrame, test: pd.DataFrame, pixels: list[str]) -> dict[str, Any]:
    """Accuracy on ``test`` of the fixed MLP trained on ``train``, over MLP_SEEDS."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    scores = []
    for s in MLP_SEEDS:
        clf = MLPClassifier(hidden_layer_sizes=(128,), max_iter=200, early_stopping=True, random_state=s)
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(train[pixels].to_numpy(float) / 16.0, train[LABEL].to_numpy(int))
        scores.append(float(clf.score(test[pixels].to_numpy(float) / 16.0, test[LABEL].to_numpy(int))))
    return {"accuracy": float(np.mean(scores)), "accuracy_std": float(np.std(scores)), "per_seed": scores}


def synthesize(train: pd.DataFrame, pixels: list[str], model: str, epsilon: float | None,
               params: dict[str, Any], seed: int, meta_path: Path, factor: int = 1
               ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit one generator on ``train`` (single-value pixels dropped) and sample a labelled set like it,
    ``factor`` times as large (per class, in the training split's label proportions)."""
    from synthgen import Synthesizer
    from synthgen.datasets import digits_metadata

    varying = [c for c in pixels if train[c].nunique() > 1]
    fit_cols = varying + [LABEL]
    meta_path.write_text(json.dumps(digits_metadata(fit_cols)))
    options: dict[str, Any] = {"model": model, "seed": seed, "metadata": meta_path, **params}
    if epsilon is not None:
        options["epsilon"] = epsilon
    started = time.perf_counter()
    synth = Synthesizer(**options).fit(train[fit_cols])
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    counts = train[LABEL].value_counts().sort_index()
    parts = [synth.sample(int(n) * factor, seed=seed * 100 + int(k), conditions={LABEL: int(k)})
             for k, n in counts.items()]
    sample_s = time.perf_counter() - started
    fake = pd.concat(parts, ignore_index=True)
    for c in pixels:
        if c not in fake:
            fake[c] = 0  # the dropped single-value pixels: blank in every training image
    fake = fake[pixels + [LABEL]].round().astype("int64")
    info = {"fit_s": round(fit_s, 1), "sample_s": round(sample_s, 1), "rows": len(fake),
            "dropped_pixels": [c for c in pixels if c not in varying]}
    if epsilon is not None:
        info["ledger_epsilon"] = float(synth.ledger["epsilon"])
        info["delta"] = float(synth.ledger["delta"])
    return fake, info


def draw(path: Path, real: pd.DataFrame, fakes: dict[str, pd.DataFrame], pixels: list[str], per_row: int = 10) -> None:
    """PNG grid: for each class, a row of real images and one row per model of synthetic ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = [("real", real), *fakes.items()]
    n_rows = len(CLASSES) * len(sources)
    fig, axes = plt.subplots(n_rows, per_row + 1, figsize=(0.6 * (per_row + 3), 0.6 * n_rows),
                             gridspec_kw={"width_ratios": [3] + [1] * per_row})
    rng = np.random.default_rng(0)
    for k in CLASSES:
        for j, (name, table) in enumerate(sources):
            row = axes[k * len(sources) + j]
            rows = table[table[LABEL] == k]
            pick = rows.iloc[rng.choice(len(rows), size=min(per_row, len(rows)), replace=False)] if len(rows) else rows
            row[0].axis("off")
            row[0].text(1.0, 0.5, f"{k}: {name}", ha="right", va="center", fontsize=7, transform=row[0].transAxes)
            for i, ax in enumerate(row[1:]):
                ax.set_xticks([])
                ax.set_yticks([])
                if i < len(pick):
                    image = pick.iloc[i][pixels].to_numpy(float).reshape(8, 8)
                    ax.imshow(image, cmap="gray_r", vmin=0, vmax=16, interpolation="nearest")
                else:
                    ax.axis("off")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01, wspace=0.05, hspace=0.1)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=80))
    plt.close(fig)


def write_atomic(path: Path, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# Digits: TRTR vs TSTR ({'quick' if results['quick'] else 'full'} run, seed {results['seed']})", "",
             f"MLP accuracy on the real test split ({results['rows']['test']} images), mean over MLP seeds "
             f"{list(MLP_SEEDS)}; generators trained on {results['rows']['train']} images.", "",
             f"TSTR: the MLP trained on {results['factor']}x as many synthetic images as real training images "
             "(sampling costs no privacy and little time); 'TSTR 1x': on as many as the real ones.", "",
             "| model | epsilon | fit s | TSTR acc | TSTR 1x acc | TRTR acc |", "|---|---|---|---|---|---|"]
    trtr = results["trtr"]["accuracy"]
    for run in results["runs"]:
        eps = "-" if run["epsilon"] is None else f"{run['epsilon']:g}"
        lines.append(f"| {run['model']} | {eps} | {run['fit_s']:.1f} | {run['tstr']['accuracy']:.3f} | "
                     f"{run['tstr_same_size']['accuracy']:.3f} | {trtr:.3f} |")
    lines += ["", f"Total {results['seconds']:.0f} s on {results['machine']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny epochs (tests, CI): under a minute")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="split and generator seed (default 0)")
    parser.add_argument("--factor", type=int, default=5,
                        help="synthetic images per real training image (default 5: sampling is free)")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    args = parser.parse_args(argv)
    if args.factor < 1:
        parser.error(f"--factor must be at least 1, got {args.factor}")

    out: Path = args.out
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not args.force:
        print(f"error: {out / existing[0]} exists (fix: pass --force or choose another --out)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    train, test = load_split(args.seed)
    pixels = [c for c in train.columns if c != LABEL]
    trtr = mlp_accuracy(train, test, pixels)
    print(f"TRTR accuracy {trtr['accuracy']:.3f}", flush=True)

    runs, fakes = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, epsilon, params in QUICK_RUNS if args.quick else FULL_RUNS:
            fake, info = synthesize(train, pixels, model, epsilon, params, args.seed, Path(tmp) / "meta.json",
                                    args.factor)
            tstr = mlp_accuracy(fake, test, pixels)
            # the same generator with as many synthetic images as real ones: each class's first rows
            counts = train[LABEL].value_counts()
            same_size = pd.concat([fake[fake[LABEL] == k].head(int(n)) for k, n in counts.sort_index().items()])
            tstr_1x = mlp_accuracy(same_size, test, pixels)
            fakes[name] = fake
            runs.append({"name": name, "model": model, "epsilon": epsilon, "hyperparameters": params, **info,
                         "tstr": tstr, "tstr_same_size": tstr_1x, "trtr": trtr})
            print(f"{name}: fit {info['fit_s']:.1f} s, TSTR accuracy {tstr['accuracy']:.3f} "
                  f"({args.factor}x rows; {tstr_1x['accuracy']:.3f} with 1x)", flush=True)

    results = {
        "quick": args.quick, "seed": args.seed,
        "rows": {"train": len(train), "test": len(test), "synthetic": len(train) * args.factor},
        "factor": args.factor,
        "mlp": {"hidden_layer_sizes": [128], "max_iter": 200, "early_stopping": True, "seeds": list(MLP_SEEDS),
                "input": "pixels / 16"},
        "trtr": trtr, "runs": runs,
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs".replace("  ", " "),
        "date": time.strftime("%Y-%m-%d"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    draw(out / "digits.png", train, fakes, pixels)
    write_atomic(out / "results.json", lambda tmp: Path(tmp).write_text(json.dumps(results, indent=1)))
    write_atomic(out / "results.md", lambda tmp: Path(tmp).write_text(markdown(results)))
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'digits.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
