"""Several tables: synthgen at defaults against SDV's HMASynthesizer on berka, baseball and cdnow.

Each (dataset, library) run is its own process, one at a time: fit and sample seconds, peak memory, then
(in this process) the multi-table quality score and its four properties by our implementation and by
sdmetrics' multi-table QualityReport (they must agree within 0.01), and referential integrity.
Results go to benchmarks/results/relational.md and relational.json; finished runs are kept in
benchmarks/results/relational-runs/ and reused.

    PYTHONPATH=. python benchmarks/relational.py                 # every dataset, both libraries
    PYTHONPATH=. python benchmarks/relational.py --quick         # CI smoke: cdnow, 300 users, 2 epochs

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

def run_one(args: argparse.Namespace) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    dataset, library = args.one.split(":")
    tables, meta = load(dataset, QUICK_ROOTS if args.quick else None)
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
    """Our multi-table quality (and sdmetrics', where installed), key integrity."""
    from synthgen.evaluation.multitable import quality
    from synthgen.metadata import Metadata

    tables, meta = load(result["dataset"], QUICK_ROOTS if args.quick else None)
    synthetic = {name: pd.read_parquet(sample_out / f"{name}.parquet") for name in tables}
    ours = quality(tables, synthetic, Metadata.from_dict(meta))
    result["figures"] = {k: ours[k] for k in (*PROPERTIES, "referential_integrity", "primary_keys_unique")}
    result["relationships"] = {k: {m: v[m] for m in ("cardinality", "intertable_trends", "referential_integrity")}
                               for k, v in ours["relationships"].items()}
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
    return head + "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--libraries", default=",".join(LIBRARIES))
    p.add_argument("--quick", action="store_true", help=f"CI smoke: cdnow, {QUICK_ROOTS} roots, {QUICK_EPOCHS} epochs")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
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
    started = time.perf_counter()
    results = run_all(args)
    text = report(args, results, started)
    suffix = "-quick" if args.quick else ""
    write(Path(args.out) / f"relational{suffix}.md", text)
    write(Path(args.out) / f"relational{suffix}.json", json.dumps(results, indent=1))
    print(text)


if __name__ == "__main__":
    main()
