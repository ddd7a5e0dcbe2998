"""Several tables: synthgen at defaults against SDV's HMASynthesizer on berka, baseball and cdnow.

Each dataset is split at the entity level first (``ENTITIES``: 20% of the entities, each with all its
descendants, held out; seed 0), and both libraries train on the rest. Each (dataset, library) run is its own
process, one at a time: fit and sample seconds, peak memory, then (in this process) the multi-table quality
score and its four properties against the training tables by our implementation and by sdmetrics'
multi-table QualityReport (they must agree within 0.01), referential integrity, the parent-child detection
AUC per relationship, the utility task (``TASKS``: TSTR vs TRTR of the evaluator's MLP on entity frames, tested
on the holdout entities) and the entity-level privacy figures (DCR share, membership-inference AUC of train vs
holdout entities, each with its descendants).
Results go to benchmarks/results/relational.md and relational.json; finished runs are kept in
benchmarks/results/relational-runs/ and reused.

    PYTHONPATH=. python benchmarks/relational.py                 # every dataset, both libraries
    PYTHONPATH=. python benchmarks/relational.py --quick         # CI smoke: cdnow, 300 users, 2 epochs
    PYTHONPATH=. python benchmarks/relational.py --million       # a 1,000,000-row child: train and sample

Datasets: berka without its transactions (7 tables, 4 levels; HMA refuses it), baseball with 3,000 players
drawn at random (seed 0) and their seasons, cdnow (2 tables).
"""

from __future__ import annotations

import argparse
import json
import os
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

from adult import RESULT_MARK, cpu_name, peak_mb, run_marked, version, write  # noqa: E402

DATASETS = ("berka", "baseball", "cdnow")
LIBRARIES = ("synthgen", "sdv")
BASEBALL_PLAYERS = 3_000
QUICK_ROOTS, QUICK_EPOCHS = 300, 2
PROPERTIES = ("quality", "column_shapes", "column_pair_trends", "cardinality", "intertable_trends")
#: the table whose rows are the entities: the split and privacy unit
ENTITIES = {"berka": "account", "baseball": "players", "cdnow": "users"}
#: the utility task per dataset: (entity table of the task, target column of its entity frame); each needs the
#: relations (berka: a loan's status from the loan, its account, district, orders and dispositions; baseball: a
#: player's throwing hand from their columns and their batting and fielding seasons; cdnow: how many purchases a
#: user makes, from the means of their purchases)
TASKS = {"berka": ("loan", "status", "classification"), "baseball": ("players", "throws", "classification"),
         "cdnow": ("users", "purchases.count", "regression")}
HOLDOUT = 0.2


def load(dataset: str, roots: int | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """A dataset's tables and metadata dict; ``roots``: keep that many root rows (at random, seed 0) and
    their descendants."""
    from synthgen.datasets import load_relational
    from synthgen.metadata import Metadata

    if dataset == "baseball":
        folder = ROOT / "benchmarks" / "data" / "baseball"
        tables = {p.name.removesuffix(".csv.gz"): pd.read_csv(p) for p in sorted(folder.glob("*.csv.gz"))}
        meta = json.loads((folder / "metadata.json").read_text())
        roots = roots or BASEBALL_PLAYERS
    else:
        tables, meta = load_relational(dataset)
    if roots is not None:
        tables = keep_roots(tables, Metadata.from_dict(meta), roots)
    return tables, meta


def keep_roots(tables: dict[str, pd.DataFrame], meta: Any, n: int) -> dict[str, pd.DataFrame]:
    """``n`` rows of the largest root table (seed 0) and every row that descends from them (other roots kept)."""
    root = max(meta.roots(), key=lambda t: len(tables[t]))
    out = dict(tables)
    out[root] = tables[root].sample(min(n, len(tables[root])), random_state=0).reset_index(drop=True)
    for table in meta.order():
        for rel in meta.parents(table):
            if rel.parent in out and table in out:
                fk = out[table][rel.foreign_key]
                keep = fk.isna() | fk.isin(out[rel.parent][rel.parent_key])
                out[table] = out[table][keep].reset_index(drop=True)
    return out


# ---------------------------------------------------------------- one run (in a subprocess)

def split(dataset: str, quick: bool) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], dict[str, Any]]:
    """(train tables, holdout tables, metadata dict) of a dataset, split at its entity table."""
    from synthgen.evaluation.entities import split_entities
    from synthgen.metadata import Metadata

    tables, meta = load(dataset, QUICK_ROOTS if quick else None)
    train, holdout = split_entities(tables, Metadata.from_dict(meta), ENTITIES[dataset], holdout=HOLDOUT, seed=0)
    return train, holdout, meta


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    dataset, library = args.one.split(":")
    tables, _, meta = split(dataset, args.quick)
    start = time.perf_counter()
    if library == "synthgen":
        from synthgen.metadata import Metadata
        from synthgen.relational.synthesizer import RelationalSynthesizer

        synth = RelationalSynthesizer(seed=0, **({"epochs": QUICK_EPOCHS} if args.quick else {}))
        synth.fit(tables, Metadata.from_dict(meta))
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        synthetic = synth.sample(scale=1.0, seed=1)
    else:
        from sdv.metadata import Metadata as SDVMetadata
        from sdv.multi_table import HMASynthesizer

        try:
            hma = HMASynthesizer(SDVMetadata.load_from_dict(meta))
            hma.fit(tables)
        except Exception as exc:  # noqa: BLE001  (HMA's refusal is the figure: reported as such)
            return {"dataset": dataset, "library": library, "refused": f"{type(exc).__name__}: {exc}"[:300]}
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        from synthgen.metadata import Metadata

        root = max(Metadata.from_dict(meta).roots(), key=lambda t: len(tables[t]))
        try:  # sdv 1.x: sample(scale=...); 2.x: sample(num_rows, main_table_name)
            synthetic = hma.sample(scale=1.0)
        except TypeError:
            synthetic = hma.sample(num_rows=len(tables[root]), main_table_name=root)
    sample_s = time.perf_counter() - start
    out = Path(args.sample_out)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in synthetic.items():
        df.to_parquet(out / f"{name}.parquet")
    return {"dataset": dataset, "library": library, "fit_s": round(fit_s, 1), "sample_s": round(sample_s, 1),
            "peak_mb": round(peak_mb()), "rows": {t: len(df) for t, df in tables.items()},
            "synthetic_rows": {t: len(df) for t, df in synthetic.items()}}


def spawn(dataset: str, library: str, sample_out: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", f"{dataset}:{library}",
           "--sample-out", str(sample_out)] + (["--quick"] if args.quick else [])
    return run_marked(cmd, {"dataset": dataset, "library": library})


def evaluate_run(result: dict[str, Any], sample_out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Our multi-table quality (and sdmetrics', where installed), key integrity, parent-child detection, the
    utility task and entity-level privacy."""
    from synthgen.evaluation.entities import EntityFrame, entity_privacy, entity_utility, parent_child_detection
    from synthgen.evaluation.multitable import quality
    from synthgen.metadata import Metadata

    dataset = result["dataset"]
    tables, holdout, meta = split(dataset, args.quick)
    metadata = Metadata.from_dict(meta)
    synthetic = {name: pd.read_parquet(sample_out / f"{name}.parquet") for name in tables}
    ours = quality(tables, synthetic, metadata)
    result["figures"] = {k: ours[k] for k in (*PROPERTIES, "referential_integrity", "primary_keys_unique")}
    result["relationships"] = {k: {m: v[m] for m in ("cardinality", "intertable_trends", "referential_integrity")}
                               for k, v in ours["relationships"].items()}
    detection = parent_child_detection(tables, synthetic, metadata)
    for key, auc in detection.items():
        result["relationships"].setdefault(key, {})["detection_auc"] = auc
    result["figures"]["detection_auc"] = round(max(detection.values()), 4) if detection else float("nan")
    task_table, target, task = TASKS[dataset]
    frames = EntityFrame(metadata, task_table).fit(tables)
    util = entity_utility(frames.transform(tables), frames.transform(holdout), frames.transform(synthetic),
                          target=target, task=task)
    sides = {side: {k: v for k, v in util[side].items() if k != "per_seed"} for side in ("trtr", "tstr")}
    result["utility"] = {"task": f"{task_table}.{target}", "kind": util["task"], **sides}
    entity = EntityFrame(metadata, ENTITIES[dataset]).fit(tables)
    result["privacy"] = entity_privacy(entity.transform(tables), entity.transform(holdout), entity.transform(synthetic))
    try:
        from sdmetrics.reports.multi_table import QualityReport
    except ImportError:
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = QualityReport()
        report.generate(tables, synthetic, meta, verbose=False)
    props = dict(zip(report.get_properties()["Property"], report.get_properties()["Score"], strict=True))
    result["sdmetrics"] = {"quality": round(float(report.get_score()), 4),
                           **{k.lower().replace(" ", "_"): round(float(v), 4) for k, v in props.items()}}
    return result


def million(args: argparse.Namespace) -> dict[str, Any]:
    """cdnow scaled up until its purchases hold at least 1,000,000 rows (each user copied with new keys and its
    purchases), then synthgen's fit and sample at defaults, timed, with this process's peak memory."""
    from synthgen.metadata import Metadata
    from synthgen.relational.synthesizer import RelationalSynthesizer

    warnings.filterwarnings("ignore")
    tables, meta = load("cdnow")
    copies = -(-1_000_000 // len(tables["purchases"]))
    users, purchases = tables["users"], tables["purchases"]
    step = int(users["id"].max()) + 1
    big = {"users": pd.concat([users.assign(id=users["id"] + i * step) for i in range(copies)], ignore_index=True),
           "purchases": pd.concat([purchases.assign(users_id=purchases["users_id"] + i * step)
                                   for i in range(copies)], ignore_index=True)}
    start = time.perf_counter()
    synth = RelationalSynthesizer(seed=0).fit(big, Metadata.from_dict(meta))
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    synthetic = synth.sample(scale=1.0, seed=1)
    sample_s = time.perf_counter() - start
    from synthgen.evaluation.multitable import quality

    figures = quality(big, synthetic, Metadata.from_dict(meta))
    result = {"quality": {k: figures[k] for k in PROPERTIES if k != "intertable_trends"},
              "rows": {t: len(df) for t, df in big.items()},
              "synthetic_rows": {t: len(df) for t, df in synthetic.items()},
              "fit_s": round(fit_s, 1), "sample_s": round(sample_s, 1), "peak_mb": round(peak_mb()),
              "epochs": {t: s.model.config.epochs for t, s in synth.synthesizers.items()}}
    text = (f"# Several tables: a 1,000,000-row child\n\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cpu_name()}, "
            f"{os.cpu_count()} cores; synthgen {version('synthgen')} at defaults.\n\n"
            f"cdnow copied {copies} times with new keys: {len(big['users']):,} users, {len(big['purchases']):,} "
            f"purchases. Fit {fit_s:.1f} s (epochs {result['epochs']}), sample {sample_s:.1f} s "
            f"({', '.join(f'{t} {n:,}' for t, n in result['synthetic_rows'].items())} rows), peak memory "
            f"{result['peak_mb']:,} MB (the whole process: both datasets in memory). Multi-table quality against the "
            f"scaled-up tables: {result['quality']}.\n")
    write(Path(args.out) / "relational-million.md", text)
    write(Path(args.out) / "relational-million.json", json.dumps(result, indent=1))
    print(text)
    return result


# ---------------------------------------------------------------- driver and report

def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    runs = Path(args.out) / ("relational-runs" + ("-quick" if args.quick else ""))
    runs.mkdir(parents=True, exist_ok=True)
    results = []
    for dataset in args.datasets:
        for library in args.libraries:
            done = runs / f"{dataset}-{library}.json"
            if done.exists():
                results.append(json.loads(done.read_text()))
                continue
            print(f"{datetime.now(UTC):%H:%M:%S} {dataset} {library}", flush=True)
            sample_out = runs / f"{dataset}-{library}-synthetic"
            result = spawn(dataset, library, sample_out, args)
            if "error" not in result and "refused" not in result:
                result = evaluate_run(result, sample_out, args)
            if "error" not in result:
                write(done, json.dumps(result))
            results.append(result)
    return results


def report(args: argparse.Namespace, results: list[dict[str, Any]], started: float) -> str:
    head = (f"# Several tables: synthgen vs SDV HMASynthesizer\n\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"{cpu_name()}, {os.cpu_count()} cores; synthgen {version('synthgen')}, sdv {version('sdv')}, "
            f"sdmetrics {version('sdmetrics')}; {'QUICK smoke run' if args.quick else 'defaults'}; each run alone "
            f"in its own process (this report: {time.perf_counter() - started:.0f} s, finished runs reused).\n\n")
    lines = ["| dataset | library | fit s | sample s | peak MB | quality | shapes | pair trends | cardinality | "
             "intertable | ref. integrity | sdmetrics quality |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if "refused" in r or "error" in r:
            why = r.get("refused") or r.get("error")
            lines.append(f"| {r['dataset']} | {r['library']} | {'refused' if 'refused' in r else 'error'}: "
                         f"{' '.join(str(why).replace('|', '/').split())[:160]} |" + " |" * 10)
            continue
        f, s = r["figures"], r.get("sdmetrics", {})
        lines.append(f"| {r['dataset']} | {r['library']} | {r['fit_s']} | {r['sample_s']} | {r['peak_mb']} | "
                     + " | ".join(f"{f[k]:.3f}" for k in PROPERTIES)
                     + f" | {f['referential_integrity']:.3f} | {s.get('quality', float('nan')):.3f} |")
    lines += ["", "Entity figures (train entities against the 20% held out): the utility task's TSTR against TRTR "
              "(AUC for classes, R^2 for numbers; mean of 3 MLP seeds), the highest parent-child detection AUC over "
              "the relationships (0.5 ideal), and the DCR share and membership-inference AUC over entities with "
              "their descendants (0.5 ideal).", "",
              "| dataset | library | task | TSTR | TRTR | detection | DCR share | MIA AUC |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        if "utility" not in r:
            continue
        u = r["utility"]
        metric = "auc" if u["kind"] == "classification" else "r2"
        lines.append(f"| {r['dataset']} | {r['library']} | {u['task']} ({metric}) | {u['tstr'][metric]:.3f} | "
                     f"{u['trtr'][metric]:.3f} | {r['figures']['detection_auc']:.3f} | "
                     f"{r['privacy']['dcr_train_share']:.3f} | {r['privacy']['mia_auc']:.3f} |")
    return head + "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--libraries", default=",".join(LIBRARIES))
    p.add_argument("--quick", action="store_true", help=f"CI smoke: cdnow, {QUICK_ROOTS} roots, {QUICK_EPOCHS} epochs")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--million", action="store_true", help="time a 1,000,000-row child table (cdnow scaled up)")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--sample-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.datasets = ["cdnow"] if args.quick and argv is not None and "--datasets" not in argv else \
        args.datasets.split(",")
    args.libraries = args.libraries.split(",")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv if argv is not None else sys.argv[1:])
    if args.one:
        print(RESULT_MARK + json.dumps(run_one(args)), flush=True)
        return
    if args.million:
        million(args)
        return
    started = time.perf_counter()
    results = run_all(args)
    text = report(args, results, started)
    suffix = "-quick" if args.quick else ""
    write(Path(args.out) / f"relational{suffix}.md", text)
    write(Path(args.out) / f"relational{suffix}.json", json.dumps(results, indent=1))
    print(text)


if __name__ == "__main__":
    main()
