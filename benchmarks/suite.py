"""Three-table suite: synthgen's default (tvae, given the table's target and not) and ctgan against SDV's CTGAN,
TVAE and GaussianCopula.

Adult (target ``income``), UCI Bank Marketing (``y``) and UCI Default of Credit Card Clients
(``has_default``), each on an 80/20 stratified split (seed 0). Every (table, generator, seed) run
trains in its own subprocess, one at a time, samples as many rows as the train split has, and is
scored by ``synthgen.evaluate``: TSTR accuracy / macro-F1 / AUC, quality, detection AUC, DCR share,
MIA AUC, fit and sample seconds, and the point-mass shares per column (real vs synthetic, with the
synthetic share in the empty gaps next to them). Each run's figures are kept in ``--runs`` as it
finishes, so an interrupted suite resumes where it stopped. Writes ``suite.md`` and ``suite.json``.
This is a benchmark, not a test: a MISS does not fail the run.

Run (from the repository root; needs the ``sdv`` extra; the whole suite takes hours here)::

    PYTHONPATH=. python benchmarks/suite.py                         # 3 tables x 6 generators x seeds 0,1,2
    PYTHONPATH=. python benchmarks/suite.py --tables adult --only synthgen:tvae-target
    PYTHONPATH=. python benchmarks/suite.py --quick --out /tmp/b    # CI smoke run: 2 epochs, 2,000 rows

Targets (mean over the generator seeds):
    * every table: synthgen's default (given the target: ``synthgen train --target``) ahead of each SDV
      synthesizer on TSTR AUC and on quality, by more than the seed-to-seed spread;
    * DCR share <= 0.53 and MIA AUC <= 0.55 for synthgen everywhere; fit time <= 1/3 of SDV CTGAN's;
    * Adult, synthgen's default: TSTR accuracy >= 0.845, AUC >= 0.900, quality >= 0.95,
      capital-gain's and capital-loss's zero shares within 0.01 of real, gap share < 0.001.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from adult import (  # noqa: E402  (the Adult benchmark's fits, timing and report helpers)
    RESULT_MARK,
    cpu_name,
    fit_sdv,
    fit_synthgen,
    peak_mb,
    run_marked,
    time_call,
    version,
    write,
)

#: table -> (loader in synthgen.datasets, target column)
TABLES = {"adult": ("load_adult", "income"), "bank": ("load_bank_marketing", "y"),
          "credit": ("load_credit_default", "has_default")}
#: "tvae-target" is synthgen's default model given the table's target column (``--target``), "tvae" without it
RUNS = [("synthgen", "tvae-target"), ("synthgen", "tvae"), ("synthgen", "ctgan"), ("sdv", "ctgan"), ("sdv", "tvae"),
        ("sdv", "gaussiancopula")]
DEFAULT = ("synthgen", "tvae-target")
OURS = 3  # the first three of RUNS are synthgen's
SPLIT_SEED = 0
QUICK_EPOCHS, QUICK_ROWS = 2, 2_000
SHOWN_MASSES = 5  # point masses listed one per line per column (the heaviest); the others are summed
FIGURES = ("tstr_accuracy", "tstr_macro_f1", "tstr_auc", "quality", "detection_auc", "dcr_train_share", "mia_auc")
TARGETS = {"dcr_train_share": 0.53, "mia_auc": 0.55, "fit_ratio": 1 / 3, "adult_accuracy": 0.845, "adult_auc": 0.900,
           "adult_quality": 0.95, "zero_share_gap": 0.01, "gap_share": 0.001}


def load_split(table: str, train_rows: int | None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The table's 80/20 stratified split (seed 0), the train side optionally subsampled, and its target."""
    from sklearn.model_selection import train_test_split

    import synthgen.datasets as datasets

    loader, target = TABLES[table]
    df = getattr(datasets, loader)()
    train, test = train_test_split(df, test_size=0.2, stratify=df[target], random_state=SPLIT_SEED)
    if train_rows is not None and train_rows < len(train):
        train, _ = train_test_split(train, train_size=train_rows, stratify=train[target], random_state=SPLIT_SEED)
    return train.reset_index(drop=True), test.reset_index(drop=True), target


# ---------------------------------------------------------------- one run (in a subprocess)

def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """Fit ``table:library:model`` at ``--seed`` here, write its synthetic train-sized table, time both."""
    warnings.filterwarnings("ignore")
    table, library, model = args.one.split(":")
    train, _, target = load_split(table, args.train_rows)
    if library == "synthgen":
        given = target if model.endswith("-target") else None
        result, sample = fit_synthgen(model.removesuffix("-target"), train, args.epochs, args.seed, given)
    else:
        result, sample = fit_sdv(model, train, args.epochs, args.seed)
    sample_s = time_call(sample, len(train))
    sample(len(train), 1000).to_parquet(args.sample_out)
    return {"table": table, "library": library, "model": model, "seed": args.seed, "train_rows": len(train),
            "fit_s": result["fit_s"], "sample_s": sample_s, "epochs": result["epochs"], "peak_mb": peak_mb()}


# ---------------------------------------------------------------- driver

def spawn(key: tuple[str, str, str, int], sample_out: Path, args: argparse.Namespace) -> dict[str, Any]:
    table, library, model, seed = key
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", f"{table}:{library}:{model}", "--seed", str(seed),
           "--sample-out", str(sample_out)]
    cmd += ["--epochs", str(args.epochs)] if args.epochs else []
    cmd += ["--train-rows", str(args.train_rows)] if args.train_rows else []
    return run_marked(cmd, {"table": table, "library": library, "model": model, "seed": seed})


def evaluate_run(result: dict[str, Any], sample_out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Add the evaluator's figures (and the point-mass shares) to one run's result."""
    from synthgen import evaluate

    train, test, target = load_split(result["table"], args.train_rows)
    ev = evaluate(train, pd.read_parquet(sample_out), test, target=target, seeds=args.mlp_seeds)
    u, f, p = ev["utility"], ev["fidelity"], ev["privacy"]
    result["figures"] = {
        "tstr_accuracy": u["tstr"]["accuracy"], "tstr_macro_f1": u["tstr"]["macro_f1"], "tstr_auc": u["tstr"]["auc"],
        "quality": f["quality"], "detection_auc": f["detection_auc"], "dcr_train_share": p["dcr_train_share"],
        "mia_auc": p["mia_auc"]}
    result["point_masses"] = f["point_masses"]
    result["trtr"] = {k: u["trtr"][k] for k in ("accuracy", "macro_f1", "auc")}
    x = ev["interpretability"]
    if x.get("available"):
        result["interpretability"] = {k: x[k] for k in ("rank_correlation", "top5_overlap", "pdp_distance",
                                                        "top_features")}
    return result


def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (table, generator, seed) run, each reused from ``--runs`` when an earlier suite finished it."""
    runs_dir = Path(args.runs)
    runs_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for table in args.tables:
        for library, model in args.only:
            for seed in args.seeds:
                key = (table, library, model, seed)
                done = runs_dir / f"{table}-{library}-{model}-{seed}{'-quick' if args.quick else ''}.json"
                if done.exists():
                    results.append(json.loads(done.read_text()))
                    continue
                print(f"{datetime.now(UTC):%H:%M:%S} {table} {library} {model} seed {seed}", flush=True)
                sample_out = runs_dir / f"{done.stem}.parquet"
                result = spawn(key, sample_out, args)
                if "error" not in result:
                    result = evaluate_run(result, sample_out, args)
                    write(done, json.dumps(result))
                sample_out.unlink(missing_ok=True)
                results.append(result)
    return results


def finished(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The runs already in ``--runs``, of the asked tables, generators and seeds."""
    runs_dir = Path(args.runs)
    out = []
    for table in args.tables:
        for library, model in args.only:
            for seed in args.seeds:
                done = runs_dir / f"{table}-{library}-{model}-{seed}{'-quick' if args.quick else ''}.json"
                if done.exists():
                    out.append(json.loads(done.read_text()))
    return out


def aggregate(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (table, generator): mean and spread of figures over seeds, median timings."""
    rows = []
    for table in TABLES:
        for library, model in RUNS:
            runs = [r for r in results if (r["table"], r["library"], r["model"]) == (table, library, model)]
            ok = [r for r in runs if "error" not in r]
            if not runs:
                continue
            row: dict[str, Any] = {"table": table, "library": library, "model": model,
                                   "seeds": [r["seed"] for r in ok]}
            if not ok:
                rows.append({**row, "error": runs[0]["error"]})
                continue
            for key in ("fit_s", "sample_s", "peak_mb"):
                row[key] = statistics.median(r[key] for r in ok)
            for key in FIGURES:
                values = [r["figures"][key] for r in ok]
                row[key] = statistics.fmean(values)
                row[key + "_spread"] = statistics.pstdev(values) if len(values) > 1 else 0.0
            row["point_masses"] = _mean_masses([r["point_masses"] for r in ok])
            row["trtr"] = ok[0]["trtr"]
            rows.append(row)
    return rows


def _mean_masses(per_run: list[dict[str, dict]]) -> dict[str, dict]:
    """Point-mass shares and gap shares averaged over seeds (the real side is the same in each)."""
    out = {}
    for column, first in per_run[0].items():
        masses = [{"value": m["value"], "real": m["real"],
                   "synthetic": statistics.fmean(run[column]["masses"][i]["synthetic"] for run in per_run)}
                  for i, m in enumerate(first["masses"])]
        gap = statistics.fmean(run[column]["gap_share"]["synthetic"] for run in per_run)
        out[column] = {"masses": masses, "gap_share": gap}
    return out


def find(rows: list[dict[str, Any]], table: str, library: str, model: str) -> dict[str, Any] | None:
    return next((r for r in rows if (r["table"], r["library"], r["model"]) == (table, library, model)
                 and "error" not in r), None)


def checks(rows: list[dict[str, Any]]) -> list[str]:
    """The targets as PASS / MISS lines, with the margin each is met or missed by."""
    lines = []
    for table in TABLES:
        ours = find(rows, table, *DEFAULT)
        if ours is None:
            continue
        for library, model in RUNS:
            peer = find(rows, table, library, model)
            if library == "synthgen" or peer is None:
                continue
            for key in ("tstr_auc", "quality"):
                margin = ours[key] - peer[key]
                spread = max(ours[key + "_spread"], peer[key + "_spread"])
                status = "PASS" if margin > spread else "MISS"
                lines.append(f"- {table}: {key} minus SDV {model}'s: {margin:+.4f} (spread {spread:.4f}) {status}")
            if model == "ctgan":
                ratio = ours["fit_s"] / peer["fit_s"]
                lines.append(f"- {table}: fit s / SDV CTGAN's: {ratio:.3f} (target <= {TARGETS['fit_ratio']:.3f}) "
                             f"{'PASS' if ratio <= TARGETS['fit_ratio'] else 'MISS'}")
        for library, model in RUNS[:OURS]:
            mine = find(rows, table, library, model)
            for key in ("dcr_train_share", "mia_auc") if mine else ():
                ok = mine[key] <= TARGETS[key]
                lines.append(f"- {table}: synthgen {model} {key} {mine[key]:.3f} (target <= {TARGETS[key]}) "
                             f"{'PASS' if ok else 'MISS'}")
    adult = find(rows, "adult", *DEFAULT)
    if adult is not None:
        for key, target in (("tstr_accuracy", "adult_accuracy"), ("tstr_auc", "adult_auc"),
                            ("quality", "adult_quality")):
            ok = adult[key] >= TARGETS[target]
            lines.append(f"- adult: synthgen {DEFAULT[1]} {key} {adult[key]:.4f} (target >= {TARGETS[target]}) "
                         f"{'PASS' if ok else 'MISS'}")
        for column in ("capital-gain", "capital-loss"):
            pm = adult["point_masses"].get(column)
            zero = next((m for m in pm["masses"] if m["value"] == 0), None) if pm else None
            if zero is None:
                continue
            near = abs(zero["synthetic"] - zero["real"]) <= TARGETS["zero_share_gap"]
            empty = pm["gap_share"] < TARGETS["gap_share"]
            lines.append(f"- adult: {column} zero share {zero['synthetic']:.4f} vs real {zero['real']:.4f} "
                         f"(target within {TARGETS['zero_share_gap']}) {'PASS' if near else 'MISS'}")
            lines.append(f"- adult: {column} synthetic share in empty gaps {pm['gap_share']:.4f} "
                         f"(target < {TARGETS['gap_share']}) {'PASS' if empty else 'MISS'}")
    return lines


def _pm(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:.3f} ± {row[key + '_spread']:.3f}"


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| table | library | model | fit s | sample s | peak MB | TSTR acc | macro-F1 | AUC | quality "
             "| detection AUC | DCR share | MIA AUC |", "|---|---|---|" + "---:|" * 10]
    shown = set()
    for r in rows:
        if r["table"] not in shown and "trtr" in r:
            shown.add(r["table"])
            t = r["trtr"]
            lines.append(f"| {r['table']} | real data (TRTR) | MLP | | | | {t['accuracy']:.3f} | {t['macro_f1']:.3f} "
                         f"| {t['auc']:.3f} | | | | |")
        if "error" in r:
            lines.append(f"| {r['table']} | {r['library']} | {r['model']} | error: {r['error'][:200]} |" + " |" * 9)
            continue
        lines.append(f"| {r['table']} | {r['library']} | {r['model']} | {r['fit_s']:.1f} | {r['sample_s']:.1f} "
                     f"| {r['peak_mb']:,.0f} | {_pm(r, 'tstr_accuracy')} | {_pm(r, 'tstr_macro_f1')} "
                     f"| {_pm(r, 'tstr_auc')} | {_pm(r, 'quality')} | {_pm(r, 'detection_auc')} "
                     f"| {_pm(r, 'dcr_train_share')} | {_pm(r, 'mia_auc')} |")
    return lines


def mass_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Point-mass shares per column: real, then each generator's synthetic share (and its gap share)."""
    lines = ["| table | column | value | real | " + " | ".join(f"{lib} {m}" for lib, m in RUNS) + " |",
             "|---|---|---:|---:|" + "---:|" * len(RUNS)]
    for table in TABLES:
        base = next((r for r in rows if r["table"] == table and "error" not in r), None)
        if base is None:
            continue
        for column, pm in base["point_masses"].items():
            def cells(pick, column=column, table=table) -> str:
                found = [find(rows, table, library, model) for library, model in RUNS]
                return " | ".join(pick(r["point_masses"][column]) if r and column in r["point_masses"] else "-"
                                  for r in found)

            order = sorted(range(len(pm["masses"])), key=lambda i: -pm["masses"][i]["real"])
            for i in order[:SHOWN_MASSES]:
                m = pm["masses"][i]
                lines.append(f"| {table} | {column} | {m['value']:g} | {m['real']:.3f} | "
                             + cells(lambda got, i=i: f"{got['masses'][i]['synthetic']:.3f}") + " |")
            if len(order) > SHOWN_MASSES:  # the rest together, and the largest miss among all of them
                more = order[SHOWN_MASSES:]
                lines.append(f"| {table} | {column} | {len(more)} more | "
                             f"{sum(pm['masses'][i]['real'] for i in more):.3f} | "
                             + cells(lambda got, more=more: f"{sum(got['masses'][i]['synthetic'] for i in more):.3f}")
                             + " |")
                lines.append(f"| {table} | {column} | largest miss of any | - | "
                             + cells(lambda got: f"{max(abs(m['real'] - m['synthetic']) for m in got['masses']):.3f}")
                             + " |")
            lines.append(f"| {table} | {column} | in empty gaps | 0 | "
                         + cells(lambda got: f"{got['gap_share']:.4f}") + " |")
    return lines


def report(args: argparse.Namespace, results: list[dict[str, Any]], started: float) -> tuple[str, dict]:
    rows = aggregate(results)
    flags = " ".join(sorted({f for f in Path("/proc/cpuinfo").read_text().split() if f.startswith(("avx", "amx"))}))
    head = ["# synthgen three-table suite" + (" (quick smoke run: figures not meaningful)" if args.quick else ""), "",
            f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
            f"- machine: {cpu_name()}, {os.cpu_count()} cores; CPU flags: {flags}",
            f"- torch {version('torch')}, sdv {version('sdv')}, synthgen {version('synthgen')}",
            f"- tables: {', '.join(args.tables)}; 80/20 stratified splits (seed {SPLIT_SEED}); generator seeds "
            f"{args.seeds}; evaluator MLP seeds {args.mlp_seeds}; epochs: {args.epochs or 'each default'}",
            "- figures: mean ± spread (population std) over generator seeds; timings: median; sample s: one "
            "train-sized sample", ""]
    lines = head + table_lines(rows) + ["", "## Point masses (share of non-null values)", ""] + mass_lines(rows)
    lines += ["", "## Targets", ""] + checks(rows)
    return "\n".join(lines) + "\n", {"args": vars(args), "rows": rows, "runs": results,
                                     "minutes": round((time.time() - started) / 60, 1)}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tables", default=",".join(TABLES), help="comma-separated tables (default: all three)")
    p.add_argument("--only", default=None, help="comma-separated LIBRARY:MODEL runs (default: all six)")
    p.add_argument("--seeds", default="0,1,2", help="generator seeds (default 0,1,2)")
    p.add_argument("--mlp-seeds", type=int, default=None, help="evaluator MLP seeds (default 3; quick 1)")
    p.add_argument("--epochs", type=int, default=None, help="epochs for every model (default: each one's own)")
    p.add_argument("--train-rows", type=int, default=None, help="subsample each train split (default: all)")
    p.add_argument("--quick", action="store_true", help=f"CI smoke run: {QUICK_EPOCHS} epochs, {QUICK_ROWS:,} rows")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for suite.md / suite.json")
    p.add_argument("--runs", default=None, help="folder of finished runs (default: <out>/suite-runs)")
    p.add_argument("--report-only", action="store_true",
                   help="write suite.md / suite.json from the finished runs alone (run nothing)")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--sample-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.tables = [t for t in args.tables.split(",") if t]
    unknown = [t for t in args.tables if t not in TABLES]
    if unknown:
        p.error(f"unknown tables {unknown}: use {', '.join(TABLES)}")
    args.only = [tuple(x.split(":")) for x in args.only.split(",")] if args.only else RUNS
    args.seeds = [int(s) for s in str(args.seeds).split(",")]
    if args.quick:
        args.epochs, args.train_rows, args.seeds = args.epochs or QUICK_EPOCHS, args.train_rows or QUICK_ROWS, [0]
    args.mlp_seeds = args.mlp_seeds or (1 if args.quick else 3)
    args.runs = args.runs or str(Path(args.out) / "suite-runs")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.one:
        print(RESULT_MARK + json.dumps(run_one(args)), flush=True)
        return
    started = time.time()
    results = finished(args) if args.report_only else run_all(args)
    text, data = report(args, results, started)
    name = "suite-quick" if args.quick else "suite"
    write(Path(args.out) / f"{name}.md", text)
    write(Path(args.out) / f"{name}.json", json.dumps(data, indent=1, default=str))
    print(text)


if __name__ == "__main__":
    main()
