"""Sequences: synthgen's sequential tables against SDV's PARSynthesizer on cdnow and baseball.

cdnow: users -> purchases by date (users have no column: no context); baseball: players -> batting seasons by
year (the players' bats, throws and height are PAR's context columns). Each dataset is split at the entity level
(20% of the entities held out, seed 0); both libraries train on the rest, each run alone in its own process:
fit and sample seconds, peak memory, then the sequence scores (``synthgen.evaluation.sequences``: lengths, gaps,
column shapes, lag-1 relations, coherence), the per-entity utility task and entity-level privacy
(``synthgen.evaluation.entities``). PAR takes hours on the whole of baseball (mostlyai's published figure: 187
minutes), so both libraries get the same ``--entities`` subset, said in the report.

With ``--dp``: the privacy-utility curve of entity-level DP on cdnow (all users; the unit is a user with all
their purchases) at epsilon 1, 4 and 16 and without DP, each fit run as the one-run audit with whole canary
entities (``synthgen.evaluation.audit.audit_entities``): the claim, the audit's empirical lower bound at 95%
confidence, and the sequence scores and utility of the same fit's synthetic tables.

    PYTHONPATH=. python benchmarks/sequences.py --entities 1000
    PYTHONPATH=. python benchmarks/sequences.py --quick        # smoke: cdnow, 200 users, 2 epochs
    PYTHONPATH=. python benchmarks/sequences.py --dp           # entity-level DP curve on cdnow
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
from relational import keep_roots  # noqa: E402

DATASETS = {
    # entity table, event table, foreign key, index, context columns (PAR), utility target of the entity frame
    "cdnow": ("users", "purchases", "users_id", "date", [], "purchases.count"),
    "baseball": ("players", "batting", "players_id", "year", ["bats", "throws", "height"], "throws"),
}
LIBRARIES = ("synthgen", "sdv")
QUICK_ENTITIES, QUICK_EPOCHS = 200, 2


def load(dataset: str, entities: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The entity and event tables of a dataset (``entities`` of them at random, seed 0), with sequence metadata."""
    from relational import load as load_relational

    from synthgen.metadata import Metadata

    entity, events, fk, index, context, _ = DATASETS[dataset]
    tables, meta = load_relational(dataset)
    meta = json.loads(json.dumps(meta))
    keep = {entity, events}
    meta["tables"] = {t: e for t, e in meta["tables"].items() if t in keep}
    if context:  # both libraries get the entity columns PAR takes as its context, and no others
        pk = meta["tables"][entity]["primary_key"]
        tables[entity] = tables[entity][[pk, *context]]
        meta["tables"][entity]["columns"] = {c: e for c, e in meta["tables"][entity]["columns"].items()
                                             if c in (pk, *context)}
    meta["relationships"] = [r for r in meta["relationships"] if r["child_table_name"] in keep
                             and r["parent_table_name"] in keep]
    meta["tables"][events].update(sequence_key=fk, sequence_index=index)
    tables = keep_roots({t: tables[t] for t in keep}, Metadata.from_dict(meta), entities)
    return tables, meta


def split(dataset: str, entities: int) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], dict[str, Any]]:
    from synthgen.evaluation.entities import split_entities
    from synthgen.metadata import Metadata

    tables, meta = load(dataset, entities)
    train, holdout = split_entities(tables, Metadata.from_dict(meta), DATASETS[dataset][0], seed=0)
    return train, holdout, meta


DP_EPSILONS = (1.0, 4.0, 16.0, None)
DP_CANARIES = 200
#: purchases of each canary user: a history as long as the 90th percentile of the real ones, 6 (a user with one
#: purchase looks like half of the real users)
DP_CANARY_EVENTS = 6


def run_dp(args: argparse.Namespace) -> dict[str, Any]:
    """One point of the DP curve: an audited fit at ``args.one``'s epsilon ("none": without DP)."""
    from synthgen.evaluation.audit import audit_entities, epsilon_lower_bound
    from synthgen.relational.synthesizer import RelationalSynthesizer

    warnings.filterwarnings("ignore")
    eps_text = args.one.split(":")[-1]
    eps = None if eps_text == "none" else float(eps_text)
    entity, events, *_ = DATASETS["cdnow"]
    train, _, meta = split("cdnow", args.entities)
    out: dict[str, Any] = {"dataset": "cdnow", "library": "synthgen", "epsilon_target": eps}

    def fit_and_sample(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        start = time.perf_counter()
        options = {"epsilon": eps} if eps is not None else {}
        synth = RelationalSynthesizer(seed=0, **options, **({"epochs": QUICK_EPOCHS} if args.quick else {}))
        synth.fit(tables, meta)
        out["fit_s"] = round(time.perf_counter() - start, 1)
        ledger = synth.manifest()["privacy"]
        out["epsilon"], out["delta"] = ledger.get("epsilon"), ledger.get("delta")
        start = time.perf_counter()
        synthetic = synth.sample(scale=1.0, seed=1)
        out["sample_s"] = round(time.perf_counter() - start, 1)
        sampled.update(synthetic)
        return synthetic

    sampled: dict[str, pd.DataFrame] = {}
    result = audit_entities(train, meta, entity, fit_and_sample, canaries=DP_CANARIES, events=DP_CANARY_EVENTS,
                            seed=0, claimed_epsilon=eps, claimed_delta=0.0)
    audit = result.to_dict()
    if out.get("delta"):  # the bound for the claimed (epsilon, delta), as the model states it
        audit["claimed_delta"] = out["delta"]
        audit["empirical_epsilon"] = round(epsilon_lower_bound(result.guesses, result.correct, result.confidence,
                                                               delta=out["delta"], canaries=DP_CANARIES), 4)
    out["audit"] = audit
    # the synthetic tables of the audited fit are scored (its canaries are 1% of the users)
    return {**_saved(args, "cdnow", "synthgen", out["fit_s"], out["sample_s"], sampled), **out}


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    dataset, library = args.one.split(":", 1)
    if library.startswith("dp:"):
        return run_dp(args)
    entity, events, fk, index, context_columns, _ = DATASETS[dataset]
    train, _, meta = split(dataset, args.entities)
    start = time.perf_counter()
    if library == "synthgen":
        from synthgen.relational.synthesizer import RelationalSynthesizer

        synth = RelationalSynthesizer(seed=0, **({"epochs": QUICK_EPOCHS} if args.quick else {})).fit(train, meta)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        synthetic = synth.sample(scale=1.0, seed=1)
    else:
        from sdv.metadata import Metadata as SDVMetadata
        from sdv.sequential import PARSynthesizer

        flat = train[events].merge(train[entity], left_on=fk, right_on=meta["tables"][entity]["primary_key"],
                                   how="left")
        flat = flat[[c for c in train[events].columns if c != meta["tables"][events].get("primary_key")]
                    + context_columns]
        columns = {c: e for c, e in meta["tables"][events]["columns"].items() if c in flat.columns}
        columns.update({c: meta["tables"][entity]["columns"][c] for c in context_columns})
        columns = {c: {k: v for k, v in e.items() if k != "computer_representation"} for c, e in columns.items()}
        sdv_meta = SDVMetadata.load_from_dict({"tables": {events: {
            "columns": columns, "sequence_key": fk, "sequence_index": index}}})
        par = PARSynthesizer(sdv_meta, context_columns=context_columns,
                             **({"epochs": QUICK_EPOCHS} if args.quick else {}))
        par.fit({events: flat})  # sdv 2.x: a dict of one table
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        try:  # sdv 2.x: sample_sequences; 1.x: sample(num_sequences)
            sampled = par.sample_sequences(train[entity].shape[0])
        except AttributeError:
            sampled = par.sample(num_sequences=train[entity].shape[0])
        if isinstance(sampled, dict):
            sampled = sampled[events]
        sample_s = time.perf_counter() - start
        pk = meta["tables"][entity]["primary_key"]
        users = sampled.groupby(fk, sort=False)[context_columns].first().reset_index().rename(columns={fk: pk})
        synthetic = {entity: users, events: sampled.drop(columns=context_columns)}
        return _saved(args, dataset, library, fit_s, sample_s, synthetic)
    sample_s = time.perf_counter() - start
    return _saved(args, dataset, library, fit_s, sample_s, synthetic)


def _saved(args: argparse.Namespace, dataset: str, library: str, fit_s: float, sample_s: float,
           synthetic: dict[str, pd.DataFrame]) -> dict[str, Any]:
    out = Path(args.sample_out)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in synthetic.items():
        df.to_parquet(out / f"{name}.parquet")
    return {"dataset": dataset, "library": library, "fit_s": round(fit_s, 1), "sample_s": round(sample_s, 1),
            "peak_mb": round(peak_mb()), "synthetic_rows": {t: len(df) for t, df in synthetic.items()}}


def evaluate_run(result: dict[str, Any], sample_out: Path, args: argparse.Namespace) -> dict[str, Any]:
    from synthgen.evaluation.entities import EntityFrame, entity_privacy, entity_utility
    from synthgen.evaluation.sequences import sequence_quality
    from synthgen.metadata import Metadata

    dataset = result["dataset"]
    entity, events, fk, index, _, target = DATASETS[dataset]
    train, holdout, meta = split(dataset, args.entities)
    metadata = Metadata.from_dict(meta)
    synthetic = {name: pd.read_parquet(sample_out / f"{name}.parquet") for name in (entity, events)}
    columns = [c for c in train[events].columns if c != meta["tables"][events].get("primary_key")]
    result["sequences"] = sequence_quality(train[events][columns], synthetic[events][columns], key=fk, index=index)
    frames = EntityFrame(metadata, entity).fit(train)
    task = "regression" if target.endswith(".count") else "classification"
    util = entity_utility(frames.transform(train), frames.transform(holdout), frames.transform(synthetic),
                          target=target, task=task)
    result["utility"] = {"target": target, "task": task, "trtr": util["trtr"], "tstr": util["tstr"]}
    privacy = entity_privacy(frames.transform(train), frames.transform(holdout), frames.transform(synthetic))
    result["privacy"] = {k: privacy[k] for k in ("dcr_train_share", "mia_auc", "exact_copy_rate")}
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--libraries", default=",".join(LIBRARIES))
    p.add_argument("--entities", type=int, default=1000, help="entities drawn at random per dataset (seed 0)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--dp", action="store_true", help="the entity-level DP curve on cdnow (all users)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--sample-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv if argv is not None else sys.argv[1:])
    if args.quick:
        args.entities, args.datasets = QUICK_ENTITIES, "cdnow"
    elif args.dp and "--entities" not in (argv if argv is not None else sys.argv[1:]):
        args.entities = 10**9  # every user
    if args.one:
        print(RESULT_MARK + json.dumps(run_one(args)), flush=True)
        return
    started = time.perf_counter()
    name = "sequences" + ("-dp" if args.dp else "") + ("-quick" if args.quick else "")
    runs = Path(args.out) / f"{name}-runs"
    runs.mkdir(parents=True, exist_ok=True)
    jobs = ([("cdnow", f"dp:{e:g}" if e is not None else "dp:none") for e in DP_EPSILONS]
            if args.dp else [(d, lib) for d in args.datasets.split(",") for lib in args.libraries.split(",")])
    results = []
    for dataset, library in jobs:
        done = runs / f"{dataset}-{library.replace(':', '-')}-{args.entities}.json"
        if done.exists():
            results.append(json.loads(done.read_text()))
            continue
        print(f"{datetime.now(UTC):%H:%M:%S} {dataset} {library}", flush=True)
        sample_out = runs / f"{dataset}-{library.replace(':', '-')}-{args.entities}-synthetic"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", f"{dataset}:{library}", "--entities",
               str(args.entities), "--sample-out", str(sample_out)] + (["--quick"] if args.quick else [])
        ran = done.with_suffix(".run.json")  # the run itself (fit and sample times), kept before it is scored
        result = (json.loads(ran.read_text()) if ran.exists() and sample_out.exists()
                  else run_marked(cmd, {"dataset": dataset, "library": library}))
        if "error" not in result:
            write(ran, json.dumps(result))
            result = evaluate_run(result, sample_out, args)
            write(done, json.dumps(result))
        results.append(result)
    text = (dp_report if args.dp else report)(args, results, started)
    suffix = name[len("sequences"):]
    write(Path(args.out) / f"sequences{suffix}.md", text)
    write(Path(args.out) / f"sequences{suffix}.json", json.dumps(results, indent=1, default=float))
    print(text)


def dp_report(args: argparse.Namespace, results: list[dict[str, Any]], started: float) -> str:
    head = (f"# Sequences under entity-level DP: cdnow\n\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_machine()}; "
            f"synthgen {version('synthgen')}; every user (80% trained on, seed 0); the unit "
            f"is a user with all their purchases; each fit is the one-run audit with {DP_CANARIES} canary users "
            f"(each planted with probability 1/2, with {DP_CANARY_EVENTS} outlier purchases), the empirical epsilon "
            f"its lower bound at 95% confidence for the claimed delta (this report: "
            f"{time.perf_counter() - started:.0f} s).\n\n")

    def row(r: dict[str, Any]) -> list[str]:
        a = r["audit"]
        return ["none (no DP)" if r["epsilon_target"] is None else f"{r['epsilon_target']:g}",
                "-" if r["epsilon"] is None else f"{r['epsilon']:.3f}",
                "-" if r["delta"] is None else f"{r['delta']:g}",
                f"{a['empirical_epsilon']:.3f}", f"{a['attack_auc']:.3f}", str(r["fit_s"]),
                *_scores(r, ("score", "length", "gaps", "column_shapes", "lag1"))]

    return head + _markdown(["epsilon (target)", "epsilon (ledger)", "delta", "audit lower bound", "attack AUC",
                             "fit s", "score", "lengths", "gaps", "shapes", "lag-1"], 1, results, row)


def report(args: argparse.Namespace, results: list[dict[str, Any]], started: float) -> str:
    head = (f"# Sequences: synthgen vs SDV PARSynthesizer\n\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_machine()}; "
            f"synthgen {version('synthgen')}, sdv {version('sdv')}; {args.entities} entities per dataset (seed 0), 80% "
            f"trained on; each run alone in its own process, kept in {Path(args.out).name}/sequences-runs/ (this "
            f"report: {time.perf_counter() - started:.0f} s, finished runs reused).\n\n")

    def row(r: dict[str, Any]) -> list[str]:
        return [r["dataset"], r["library"], str(r["fit_s"]), str(r["sample_s"]),
                *_scores(r, ("score", "length", "gaps", "column_shapes", "lag1", "coherence"))]

    return head + _markdown(["dataset", "library", "fit s", "sample s", "score", "lengths", "gaps", "shapes",
                             "lag-1", "coherence"], 2, results, row)


def _machine() -> str:
    flags = " ".join(sorted({f for f in Path("/proc/cpuinfo").read_text().split() if f.startswith(("avx", "amx"))}))
    return f"{cpu_name()}, {os.cpu_count()} cores (CPU flags: {flags})"


def _scores(r: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """The sequence scores, then TSTR, TRTR (AUC or R^2), DCR share and MIA AUC."""
    s, u, p = r["sequences"], r["utility"], r["privacy"]
    metric = "auc" if u["task"] == "classification" else "r2"
    return [*(f"{s[k]:.3f}" for k in keys), f"{u['tstr'][metric]:.3f}", f"{u['trtr'][metric]:.3f}",
            f"{p['dcr_train_share']:.3f}", f"{p['mia_auc']:.3f}"]


def _markdown(columns: list[str], labels: int, results: list[dict[str, Any]], row: Any) -> str:
    """A markdown table: ``columns`` then TSTR, TRTR, DCR share, MIA AUC; a failed run as its error."""
    columns = [*columns, "TSTR", "TRTR", "DCR share", "MIA AUC"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * labels + "---:|" * (len(columns) - labels)]
    for r in results:
        cells = ([str(r.get("dataset")), str(r.get("library")), f"error: {str(r['error'])[:160]}"] if "error" in r
                 else row(r))
        lines.append("| " + " | ".join(cells + [""] * (len(columns) - len(cells))) + " |")
    return "\n".join(lines) + "\n"

if __name__ == "__main__":
    main()
