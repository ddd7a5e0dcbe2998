"""Privacy-utility curve on Adult: what differential privacy costs in utility, privacy risk and time.

For each model (ctgan, tvae, pairwise) and each epsilon in {0.5, 1, 2, 4, 8, inf} (delta 1e-5,
inf = the same model and hyperparameters without DP), train on the 80/20 stratified Adult split
(seed 0) with the public Adult metadata (UCI documentation: category lists and bounds) and 10%
of epsilon for noisy bins and frequencies, sample as many rows as the train split has, and
evaluate against the real holdout: TSTR MLP accuracy / AUC (TRTR beside it), quality, the
distance MIA AUC, and how the TSTR MLP explains against the TRTR one (rank correlation of their
permutation importances, overlap of their top-5 columns, distance of the top columns' partial
dependence). Optionally (``--audit``) the one-run canary audit of chosen runs reports an
empirical lower bound on epsilon beside the claim. Writes privacy_utility.md / .json and a PNG.
One process, one run at a time (never beside another torch job). A benchmark: a MISS does not fail.

Run (from the repository root)::

    PYTHONPATH=. python benchmarks/privacy_utility.py            # the full sweep: ~30 min here
    PYTHONPATH=. python benchmarks/privacy_utility.py --audit    # plus the audits: ~45 min
    PYTHONPATH=. python benchmarks/privacy_utility.py --quick --out /tmp/pu   # CI smoke run

Targets: the best DP model reaches TSTR AUC >= 0.80 at epsilon 1 and >= 0.85 at epsilon 8; DP
training costs at most 3x the non-DP time per epoch (ctgan, tvae: same hyperparameters); audited
empirical epsilons do not exceed the claims.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from adult import TARGET, cpu_name, load_split, version, write  # noqa: E402

EPSILONS = [0.5, 1.0, 2.0, 4.0, 8.0, math.inf]
MODELS = ["ctgan", "tvae", "pairwise"]
DELTA, STATS_SHARE = 1e-5, 0.1
AUDITS = [("pairwise", 1.0), ("pairwise", 8.0), ("pairwise", math.inf), ("tvae", math.inf)]
TARGETS = {1.0: 0.80, 8.0: 0.85}


def fit_options(model: str, eps: float, quick: bool, seed: int = 0) -> dict[str, Any]:
    """Synthesizer options: DP at ``eps``, or the same model and hyperparameters without DP."""
    from synthgen.datasets import adult_metadata_path
    from synthgen.models import get_model

    cls = get_model(model)
    opts: dict[str, Any] = {"model": model, "seed": seed, "metadata": adult_metadata_path(), **cls.dp_defaults}
    if quick:
        opts.update({"epochs": 1, **({"steps_per_epoch": 10} if model == "pairwise" else {})})
    if math.isfinite(eps):
        opts.update({"epsilon": eps, "delta": DELTA, "stats_share": STATS_SHARE})
    else:
        opts.update(cls.dp_hyperparameters)  # e.g. ctgan's pac=1: same networks and steps as under DP
    return opts


def run(model: str, eps: float, train, test, quick: bool, seed: int = 0) -> dict[str, Any]:
    from synthgen import Synthesizer, evaluate

    start = time.perf_counter()
    synth = Synthesizer(**fit_options(model, eps, quick, seed)).fit(train)
    fit_s = time.perf_counter() - start
    synthetic = synth.sample(len(train), seed=seed + 1)
    ev = json.loads(evaluate(train, synthetic, test, target=TARGET, seeds=1 if quick else 3,
                             baselines=False).to_json())
    epochs = [float(h["seconds"]) for h in synth.summary["history"] if "seconds" in h]
    led = synth.ledger or {}
    return {"model": model, "epsilon": eps, "seed": seed, "fit_s": round(fit_s, 2),
            "epoch_s": round(statistics.median(epochs), 4) if epochs else None,
            "epsilon_spent": led.get("epsilon"), "noise_multiplier": led.get("noise_multiplier"),
            "tstr_accuracy": ev["utility"]["tstr"]["accuracy"], "tstr_auc": ev["utility"]["tstr"]["auc"],
            "trtr_accuracy": ev["utility"]["trtr"]["accuracy"], "trtr_auc": ev["utility"]["trtr"]["auc"],
            "quality": round(ev["fidelity"]["quality"], 4), "mia_auc": ev["privacy"]["mia_auc"],
            "rank_correlation": ev["interpretability"]["rank_correlation"],
            "top5_overlap": ev["interpretability"]["top5_overlap"],
            "pdp_distance": ev["interpretability"]["pdp_distance"],
            "top5": ev["interpretability"]["top_features"]["synthetic"],
            "top5_real": ev["interpretability"]["top_features"]["real"]}


def run_audit(model: str, eps: float, train, quick: bool) -> dict[str, Any]:
    from synthgen import Synthesizer
    from synthgen.evaluation.audit import audit

    opts = fit_options(model, eps, quick)
    if not math.isfinite(eps) and model != "pairwise":
        opts = {"model": model, "seed": 0}  # the non-DP model at its defaults: the risk a user takes

    def fit_and_sample(table):
        return Synthesizer(**opts).fit(table).sample(len(table), seed=1)

    result = audit(train, fit_and_sample, canaries=100 if quick else 1000,
                   claimed_epsilon=eps if math.isfinite(eps) else None)
    return {"model": model, "epsilon": eps, "hyperparameters": "defaults" if "epsilon" not in opts and
            model != "pairwise" else "as in the sweep", **result.to_dict()}


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finite = [e for e in EPSILONS if math.isfinite(e)]
    x_inf = finite[-1] * 4
    panels = [("tstr_auc", "TSTR MLP AUC", "trtr_auc"), ("tstr_accuracy", "TSTR MLP accuracy", "trtr_accuracy"),
              ("rank_correlation", "importance rank correlation\n(TSTR vs TRTR MLP, Spearman)", None),
              ("mia_auc", "distance MIA AUC (0.5 = no signal)", None), ("fit_s", "fit seconds", None)]
    panels = [p for p in panels if all(p[0] in r for r in rows)]  # runs from before a figure existed lack it
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4))
    for ax, (key, title, ref) in zip(axes, panels, strict=True):
        for model in MODELS:
            pts = sorted((r["epsilon"] if math.isfinite(r["epsilon"]) else x_inf, r[key])
                         for r in rows if r["model"] == model and r[key] is not None)
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=model)
        if ref:
            ax.axhline(rows[0][ref], color="black", linestyle="--", linewidth=1, label="real data (TRTR)")
        if key == "mia_auc":  # a fixed range around 0.5: zooming in on the noise would mislead
            ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
            ax.set_ylim(0.4, 0.7)
        if key == "rank_correlation":
            ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="explains as real")
            ax.set_ylim(top=1.05)
        ax.set_xscale("log")
        ax.set_xticks(finite + [x_inf], [f"{e:g}" for e in finite] + ["inf"])
        ax.minorticks_off()
        ax.set_xlabel("epsilon (delta 1e-5)")
        ax.set_title(title, fontsize=10)
        if key == "fit_s":
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle("synthgen on Adult: what privacy costs in utility, explanations and compute", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def checks(rows: list[dict[str, Any]], audits: list[dict[str, Any]]) -> list[str]:
    lines = []
    dp = [r for r in rows if math.isfinite(r["epsilon"])]
    for eps, target in TARGETS.items():
        at = [r for r in dp if r["epsilon"] == eps]
        if at:
            best = max(at, key=lambda r: r["tstr_auc"])
            mark = "MET" if best["tstr_auc"] >= target else "MISS"
            lines.append(f"- {mark}: epsilon {eps:g}: best TSTR AUC {best['tstr_auc']:.3f} ({best['model']}), "
                         f"target >= {target}")
    for model in ("ctgan", "tvae"):
        plain = next((r for r in rows if r["model"] == model and not math.isfinite(r["epsilon"])), None)
        private = [r["epoch_s"] for r in dp if r["model"] == model and r["epoch_s"]]
        if plain and private and plain["epoch_s"]:
            ratio = statistics.median(private) / plain["epoch_s"]
            lines.append(f"- {'MET' if ratio <= 3 else 'MISS'}: {model} DP s/epoch {ratio:.2f}x non-DP at the same "
                         "hyperparameters (median over epsilons), target <= 3x")
    for a in audits:
        if a["claimed_epsilon"] is not None:
            ok = a["empirical_epsilon"] <= a["claimed_epsilon"]
            lines.append(f"- {'MET' if ok else 'MISS'}: audit {a['model']} at epsilon {a['claimed_epsilon']:g}: "
                         f"empirical lower bound {a['empirical_epsilon']:.3f} <= claim")
    return lines


def report(rows: list[dict[str, Any]], audits: list[dict[str, Any]], args: argparse.Namespace,
           minutes: float) -> str:
    def eps_text(e: float) -> str:
        return f"{e:g}" if math.isfinite(e) else "inf (no DP)"

    lines = [
        "# synthgen privacy-utility benchmark (Adult)" + (" (quick smoke run: figures not meaningful)"
                                                         if args.quick else ""), "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')} (run took {minutes:.0f} min)",
        f"- machine: {cpu_name()}, 2-core CPU run, torch {version('torch')}, opacus {version('opacus')}",
        f"- data: UCI Adult, 80/20 stratified split (seed 0), {rows[0]['n_train']} train rows; public metadata "
        f"(UCI documentation) for categories and bounds; {STATS_SHARE:.0%} of epsilon for noisy bins and "
        f"frequencies; delta {DELTA:g}; RDP accountant; generator seed 0; evaluator MLP seeds "
        f"{1 if args.quick else 3}",
        "- inf: the same model and hyperparameters without DP (so the time column is the compute cost of "
        "privacy); DP-SGD models at their DP defaults (ctgan, tvae), pairwise at its defaults",
        "- explanations: the TSTR MLP against the TRTR MLP, both explained on the real holdout (permutation "
        "importance: increase of the log-loss when a column is shuffled; rank = Spearman correlation of the two "
        "importance vectors; top-5 = share of the five most important columns in common; PDP = mean distance of "
        "the top 3 columns' partial-dependence curves, in probability of >50K)",
        "", "| model | epsilon | seed | spent | fit s | s/epoch | TSTR acc | TSTR AUC | quality | MIA AUC | rank | "
        "top-5 | PDP |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    trtr = rows[0]
    lines.append(f"| real data (TRTR) | | | | | | {trtr['trtr_accuracy']:.3f} | {trtr['trtr_auc']:.3f} | | | "
                 "1 | 1 | 0 |")
    for r in rows:
        spent = f"{r['epsilon_spent']:.3f}" if r["epsilon_spent"] is not None else "-"
        lines.append(f"| {r['model']} | {eps_text(r['epsilon'])} | {r.get('seed', 0)} | {spent} | {r['fit_s']:.1f} | "
                     f"{r['epoch_s'] if r['epoch_s'] is not None else '-'} | {r['tstr_accuracy']:.3f} | "
                     f"{r['tstr_auc']:.3f} | {r['quality']:.3f} | {r['mia_auc']:.3f} | "
                     f"{_num(r.get('rank_correlation'))} | "
                     f"{_num(r.get('top5_overlap'), 1)} | {_num(r.get('pdp_distance'))} |")
    if audits:
        lines += ["", "Canary audit (one training run, canaries each planted with probability 1/2; "
                  "empirical epsilon = 95% lower bound from the attack's correct guesses):", "",
                  "| model | claimed epsilon | canaries | guesses right | attack AUC | empirical epsilon |",
                  "|---|---:|---:|---:|---:|---:|"]
        for a in audits:
            claim = f"{a['claimed_epsilon']:g}" if a["claimed_epsilon"] is not None else "none (no DP)"
            lines.append(f"| {a['model']} ({a['hyperparameters']}) | {claim} | {a['canaries']} | "
                         f"{a['correct']}/{a['guesses']} | {a['attack_auc']:.3f} | {a['empirical_epsilon']:.3f} |")
    if rows[0].get("top5_real"):
        lines += ["", f"The TRTR MLP's top-5 columns: {', '.join(rows[0]['top5_real'])}. Each run's TSTR top-5 "
                  "is in the JSON (`top5`)."]
    lines += ["", "![privacy-utility](privacy_utility.png)", "", "Targets:", "", *checks(rows, audits)]
    return "\n".join(lines) + "\n"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI smoke run: 3,000 rows, 1 epoch, 2 epsilons")
    p.add_argument("--audit", action="store_true", help="also run the canary audits")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--epsilons", default=None, help="comma-separated (inf for no DP; default: the sweep)")
    p.add_argument("--seeds", default="0", help="generator seeds, comma-separated")
    p.add_argument("--name", default="privacy_utility", help="output file name (without suffix)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--replot", default=None, help="re-draw the PNG from an earlier run's JSON, run nothing")
    args = p.parse_args(argv)
    if args.replot:
        plot(json.loads(Path(args.replot).read_text())["rows"], Path(args.replot).with_suffix(".png"))
        return
    warnings.filterwarnings("ignore")
    started = time.time()
    train, test = load_split(3000 if args.quick else None)
    epsilons = [1.0, math.inf] if args.quick else EPSILONS
    if args.epsilons:
        epsilons = [float(e) for e in args.epsilons.split(",")]
    rows = []
    for model in args.models.split(","):
        for eps in epsilons:
            for seed in (int(s) for s in args.seeds.split(",")):
                row = run(model, eps, train, test, args.quick, seed)
                row["n_train"] = len(train)
                rows.append(row)
                print(json.dumps(row), flush=True)
    audits = []
    if args.audit or args.quick:
        for model, eps in AUDITS[:1] if args.quick else AUDITS:
            audits.append(run_audit(model, eps, train, args.quick))
            print(json.dumps(audits[-1]), flush=True)
    out = Path(args.out)
    name = "privacy_utility-quick" if args.quick else args.name
    plot(rows, out / f"{name}.png")
    text = report(rows, audits, args, (time.time() - started) / 60).replace("privacy_utility.png", f"{name}.png")
    write(out / f"{name}.md", text)
    write(out / f"{name}.json", json.dumps({"rows": rows, "audits": audits}, indent=1, default=str) + "\n")
    print(text, end="")


if __name__ == "__main__":
    main()
