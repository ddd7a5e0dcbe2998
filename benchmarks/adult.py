"""Adult benchmark: synthgen's ctgan / tvae against SDV's CTGAN, TVAE and GaussianCopula, one run.

Every generator trains at its defaults (or ``--epochs``) on the same 80/20 stratified split of
the bundled UCI Adult table (seed 0), one after another, each in its own subprocess (so peak
memory is per run and no two trainings fight over the cores). Each then samples as many rows as
the train split has, and the evaluator (``synthgen.evaluate``) scores every synthetic table
against the real train split and the real holdout. The script writes a markdown table and JSON.
This is a benchmark, not a test: a MISS does not fail the run.

Run (from the repository root; needs the ``sdv`` extra)::

    PYTHONPATH=. python benchmarks/adult.py                      # defaults (300 epochs): ~25 min
    PYTHONPATH=. python benchmarks/adult.py --seeds 0,1,2        # three generator seeds each
    PYTHONPATH=. python benchmarks/adult.py --quick --out /tmp/b # CI smoke run: 2 epochs, 3,000 rows

Targets (synthgen's best model by TSTR AUC, at its defaults):
    * TSTR MLP accuracy >= 0.835 and AUC >= 0.89, and ahead of SDV's CTGAN and TVAE on both;
    * quality >= 0.88 and detection AUC below SDV CTGAN's;
    * DCR train share <= 0.53 and MIA AUC <= 0.55;
    * fit time <= 0.5x SDV CTGAN's;
    * speed: s/epoch <= 0.5x SDV's (ctgan, tvae), sampling rows/s >= 5x SDV's, transformer fit
      < 0.25x the time SDV's CTGAN spends before its first epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: (library, model) pairs, run in this order
RUNS = [("synthgen", "ctgan"), ("synthgen", "tvae"), ("sdv", "ctgan"), ("sdv", "tvae"), ("sdv", "gaussiancopula")]
RESULT_MARK = "BENCH-RESULT "
SPLIT_SEED, TARGET = 0, "income"
QUICK_EPOCHS, QUICK_ROWS, QUICK_SAMPLE = 2, 3_000, 5_000
SAMPLE_REPEATS = 3
TARGETS = {"tstr_accuracy": 0.835, "tstr_auc": 0.89, "quality": 0.88, "dcr_train_share": 0.53,
           "mia_auc": 0.55, "fit_ratio": 0.5, "epoch_ratio": 0.5, "sample_speedup": 5.0,
           "transformer_ratio": 0.25}


# ---------------------------------------------------------------- one run (in a subprocess)

def load_split(train_rows: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The 80/20 stratified Adult split (seed 0); the train side optionally subsampled (stratified)."""
    from sklearn.model_selection import train_test_split

    from synthgen.shipped import real_split

    train, test = real_split("adult", SPLIT_SEED)
    if train_rows is not None and train_rows < len(train):
        train, _ = train_test_split(train, train_size=train_rows, stratify=train[TARGET], random_state=SPLIT_SEED)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def peak_mb() -> float:
    """Peak resident memory of this process in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / (1024 if sys.platform == "darwin" else 1)


#: ``sample(rows, seed)``: a fitted model's sampler (SDV's takes no per-call seed and ignores it)
Sample = Callable[[int, int], pd.DataFrame]


def time_call(sample: Sample, n: int) -> float:
    """Seconds one ``sample(n, 0)`` call takes (it must return ``n`` rows)."""
    start = time.perf_counter()
    got = len(sample(n, 0))
    elapsed = time.perf_counter() - start
    if got != n:
        raise RuntimeError(f"asked for {n} rows, got {got}")
    return elapsed


def sampling_rate(sample: Sample, n: int) -> float:
    """Median rows/s over SAMPLE_REPEATS calls of ``sample(n)``."""
    return statistics.median(n / time_call(sample, n) for _ in range(SAMPLE_REPEATS))


def fit_synthgen(model: str, train: pd.DataFrame, epochs: int | None, seed: int, target: str | None = None
                 ) -> tuple[dict[str, Any], Sample]:
    """Fit synthgen (given ``target``'s class, if named): its timings, and a sampler loaded back from the saved
    model file (as a user samples)."""
    from synthgen import Sampler, Synthesizer

    start = time.perf_counter()
    synth = Synthesizer(model=model, epochs=epochs, seed=seed, progress=False, target=target).fit(train)
    fit_s = time.perf_counter() - start
    epoch_s = [float(h["seconds"]) for h in synth.summary["history"]]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{model}.sgm"
        synth.save(path, force=True)
        sampler = Sampler.load(path)
    figures = {"fit_s": fit_s, "pre_epoch_s": fit_s - sum(epoch_s), "epoch_s": epoch_s, "epochs": len(epoch_s),
               "transformer_s": float(synth.summary["transformer_seconds"]),
               "hyperparameters": synth.manifest()["model"]["hyperparameters"]}
    return figures, lambda n, s: sampler.sample(n, seed=seed + s)


class EpochClock:
    """Stand-in for ``tqdm`` in ctgan's modules: stamps the start of each epoch and the loop end."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def __call__(self, iterable: Iterable[Any], *args: Any, **kwargs: Any) -> _Stamped:
        return _Stamped(iterable, self.stamps)


class _Stamped:
    def __init__(self, iterable: Iterable[Any], stamps: list[float]):
        self.iterable, self.stamps = iterable, stamps

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable:
            self.stamps.append(time.perf_counter())
            yield item
        self.stamps.append(time.perf_counter())

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        """tqdm API used by ctgan when verbose."""


def fit_sdv(model: str, train: pd.DataFrame, epochs: int | None, seed: int) -> tuple[dict[str, Any], Sample]:
    """Fit SDV's synthesizer (epoch stamps taken inside ctgan's loop): its timings, and its sampler."""
    import numpy as np
    import torch
    from ctgan.synthesizers import ctgan as ctgan_module
    from ctgan.synthesizers import tvae as tvae_module
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

    clock = EpochClock()
    ctgan_module.tqdm = tvae_module.tqdm = clock
    np.random.seed(seed)
    torch.manual_seed(seed)
    md = Metadata.detect_from_dataframes({"adult": train})  # not counted in SDV's fit time
    if model == "gaussiancopula":
        synth = GaussianCopulaSynthesizer(md)
    else:
        cls = CTGANSynthesizer if model == "ctgan" else TVAESynthesizer
        synth = cls(md, **({"epochs": epochs} if epochs else {}))
    start = time.perf_counter()
    synth.fit({"adult": train})
    fit_s = time.perf_counter() - start
    epoch_s = [b - a for a, b in zip(clock.stamps, clock.stamps[1:], strict=False)]
    figures = {"fit_s": fit_s, "pre_epoch_s": (clock.stamps[0] - start) if clock.stamps else fit_s,
               "epoch_s": epoch_s, "epochs": len(epoch_s)}
    return figures, lambda n, s: _table(synth.sample(n))


def _table(out: pd.DataFrame | dict[str, pd.DataFrame]) -> pd.DataFrame:
    """SDV 2 returns ``{table: df}`` from sample; older versions return the DataFrame."""
    return next(iter(out.values())) if isinstance(out, dict) else out


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``library:model`` in this process and return its measurements."""
    warnings.filterwarnings("ignore")
    library, model = args.one.split(":")
    train, _ = load_split(args.train_rows)
    fit = fit_synthgen if library == "synthgen" else fit_sdv
    result, sample = fit(model, train, args.epochs, args.seed)
    result["sample_rows_s"] = sampling_rate(sample, args.rows_sample)
    sample(len(train), 1000).to_parquet(args.sample_out)  # the synthetic table the evaluator scores
    epoch_s = result.pop("epoch_s")
    return {"library": library, "model": model, "seed": args.seed, "train_rows": len(train),
            **result, "s_per_epoch": statistics.median(epoch_s) if epoch_s else None,
            "epoch_seconds": [round(s, 4) for s in epoch_s], "peak_mb": peak_mb()}


# ---------------------------------------------------------------- driver

def spawn(library: str, model: str, seed: int, sample_out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one generator in a fresh interpreter (so peak memory is its own) and parse its result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", f"{library}:{model}", "--seed", str(seed),
           "--sample-out", str(sample_out), "--rows-sample", str(args.rows_sample)]
    if args.epochs:
        cmd += ["--epochs", str(args.epochs)]
    if args.train_rows is not None:
        cmd += ["--train-rows", str(args.train_rows)]
    return run_marked(cmd, {"library": library, "model": model, "seed": seed})


def run_marked(cmd: list[str], key: dict[str, Any]) -> dict[str, Any]:
    """Run ``cmd`` (a benchmark's ``--one`` run) in a fresh interpreter with the repository importable; its
    ``RESULT_MARK`` line's JSON, or ``key`` with the error its output ends with."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {**key, "error": "; ".join(tail).replace("|", "/") or f"exit code {proc.returncode}"}


def evaluate_run(result: dict[str, Any], sample_out: Path, train: pd.DataFrame, test: pd.DataFrame,
                 mlp_seeds: int) -> dict[str, Any]:
    """Add the evaluator's headline figures to one run's result."""
    from synthgen import evaluate

    ev = evaluate(train, pd.read_parquet(sample_out), test, target=TARGET, seeds=mlp_seeds)
    u, f, p = ev["utility"], ev["fidelity"], ev["privacy"]
    result["figures"] = {
        "tstr_accuracy": u["tstr"]["accuracy"], "tstr_macro_f1": u["tstr"]["macro_f1"], "tstr_auc": u["tstr"]["auc"],
        "tstr_accuracy_std": u["tstr"]["accuracy_std"], "tstr_auc_std": u["tstr"]["auc_std"],
        "tstr_macro_f1_std": u["tstr"]["macro_f1_std"],
        "boosting_tstr_auc": u["boosting"]["tstr"]["auc"], "quality": f["quality"],
        "column_shapes": f["column_shapes"], "column_pair_trends": f["column_pair_trends"],
        "detection_auc": f["detection_auc"], "dcr_train_share": p["dcr_train_share"],
        "exact_copy_rate": p["exact_copy_rate"], "mia_auc": p["mia_auc"]}
    result["trtr"] = {k: u["trtr"][k] for k in ("accuracy", "macro_f1", "auc", "accuracy_std", "auc_std")}
    return result


def aggregate(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (library, model): medians of timings, mean and spread of figures over seeds."""
    rows = []
    for library, model in RUNS:
        runs = [r for r in results if r["library"] == library and r["model"] == model]
        ok = [r for r in runs if "error" not in r]
        if not runs:
            continue
        if not ok:
            rows.append({"library": library, "model": model, "error": runs[0]["error"]})
            continue
        row: dict[str, Any] = {"library": library, "model": model, "seeds": [r["seed"] for r in ok],
                               "epochs": ok[0]["epochs"]}
        for key in ("fit_s", "pre_epoch_s", "s_per_epoch", "sample_rows_s", "peak_mb", "transformer_s"):
            values = [r[key] for r in ok if r.get(key) is not None]
            row[key] = statistics.median(values) if values else None
        for key in ok[0]["figures"]:
            values = [r["figures"][key] for r in ok]
            row[key] = statistics.fmean(values)
            row[key + "_spread"] = statistics.pstdev(values) if len(values) > 1 else None
        if len(ok) == 1:  # one generator seed: show the spread over the evaluator's MLP seeds
            for key in ("tstr_accuracy", "tstr_macro_f1", "tstr_auc"):
                row[key + "_spread"] = ok[0]["figures"].get(key + "_std")
        rows.append(row)
    return rows


def find(rows: list[dict[str, Any]], library: str, model: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["library"] == library and r["model"] == model and "error" not in r), None)


def check(label: str, value: float | None, target: float, op: str, unit: str = "") -> dict[str, Any]:
    """One target line (``op`` is ``<=``, ``<``, ``>=`` or ``>``): PASS/MISS, or n/a when a run failed."""
    if value is None:
        return {"check": label, "value": None, "target": target, "status": "n/a", "line": f"- {label}: n/a"}
    ok = {"<=": value <= target, "<": value < target, ">=": value >= target, ">": value > target}[op]
    status = "PASS" if ok else "MISS"
    return {"check": label, "value": value, "target": target, "status": status,
            "line": f"- {label}: {value:.4g}{unit} (target {op} {target:.4g}{unit}) {status}"}


def checks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ours = [r for r in rows if r["library"] == "synthgen" and "error" not in r]
    best = max(ours, key=lambda r: r["tstr_auc"]) if ours else None
    sdv_ctgan, sdv_tvae = find(rows, "sdv", "ctgan"), find(rows, "sdv", "tvae")
    name = f"synthgen {best['model']}" if best else "synthgen"
    get = (lambda key: best[key] if best else None)  # noqa: E731
    out = [check(f"{name} TSTR accuracy", get("tstr_accuracy"), TARGETS["tstr_accuracy"], ">="),
           check(f"{name} TSTR AUC", get("tstr_auc"), TARGETS["tstr_auc"], ">=")]
    for peer, label in ((sdv_ctgan, "SDV CTGAN"), (sdv_tvae, "SDV TVAE")):
        for key in ("tstr_accuracy", "tstr_auc"):
            value = get(key) - peer[key] if best and peer else None
            out.append(check(f"{name} {key} minus {label}'s", value, 0.0, ">"))
    out.append(check(f"{name} quality", get("quality"), TARGETS["quality"], ">="))
    out.append(check(f"{name} detection AUC minus SDV CTGAN's", get("detection_auc") - sdv_ctgan["detection_auc"]
                     if best and sdv_ctgan else None, 0.0, "<"))
    out.append(check(f"{name} DCR train share", get("dcr_train_share"), TARGETS["dcr_train_share"], "<="))
    out.append(check(f"{name} MIA AUC", get("mia_auc"), TARGETS["mia_auc"], "<="))
    out.append(check(f"{name} fit s / SDV CTGAN fit s", get("fit_s") / sdv_ctgan["fit_s"] if best and sdv_ctgan
                     else None, TARGETS["fit_ratio"], "<="))
    for model in ("ctgan", "tvae"):
        mine, peer = find(rows, "synthgen", model), find(rows, "sdv", model)
        both = mine is not None and peer is not None
        out.append(check(f"{model} s/epoch synthgen / SDV", mine["s_per_epoch"] / peer["s_per_epoch"] if both
                         else None, TARGETS["epoch_ratio"], "<="))
        out.append(check(f"{model} sampling rows/s synthgen / SDV", mine["sample_rows_s"] / peer["sample_rows_s"]
                         if both else None, TARGETS["sample_speedup"], ">=", unit="x"))
    mine = find(rows, "synthgen", "ctgan")
    out.append(check("synthgen transformer fit s / SDV CTGAN pre-epoch s",
                     mine["transformer_s"] / sdv_ctgan["pre_epoch_s"] if mine and sdv_ctgan else None,
                     TARGETS["transformer_ratio"], "<"))
    return out


def _pm(row: dict[str, Any], key: str) -> str:
    spread = row.get(key + "_spread")
    return f"{row[key]:.3f}" + (f" ± {spread:.3f}" if spread is not None else "")


def table(rows: list[dict[str, Any]], trtr: dict[str, float] | None) -> list[str]:
    lines = ["| library | model | epochs | fit s | s/epoch | sample rows/s | peak MB | TSTR acc | macro-F1 | AUC "
             "| quality | detection AUC | DCR share | MIA AUC |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    if trtr:
        lines.append(f"| real data (TRTR) | MLP | | | | | | {trtr['accuracy']:.3f} | {trtr['macro_f1']:.3f} "
                     f"| {trtr['auc']:.3f} | | | | |")
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['library']} | {r['model']} | error: {r['error'][:300]} |" + " |" * 11)
            continue
        epoch = f"{r['s_per_epoch']:.3f}" if r["s_per_epoch"] is not None else "-"
        lines.append(f"| {r['library']} | {r['model']} | {r['epochs'] or '-'} | {r['fit_s']:.1f} | {epoch} "
                     f"| {r['sample_rows_s']:,.0f} | {r['peak_mb']:,.0f} | {_pm(r, 'tstr_accuracy')} "
                     f"| {_pm(r, 'tstr_macro_f1')} | {_pm(r, 'tstr_auc')} | {_pm(r, 'quality')} "
                     f"| {_pm(r, 'detection_auc')} | {_pm(r, 'dcr_train_share')} | {_pm(r, 'mia_auc')} |")
    return lines


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        if package == "synthgen":  # run from a checkout via PYTHONPATH, not installed
            from synthgen import __version__
            return f"{__version__} (checkout)"
        return "not installed"


def report(args: argparse.Namespace, rows: list[dict[str, Any]], results: list[dict[str, Any]],
           started: float, date: str | None = None, note: str | None = None) -> tuple[str, dict[str, Any]]:
    trtr = next((r["trtr"] for r in results if "trtr" in r), None)
    found = checks(rows)
    date = date or datetime.now(UTC).isoformat(timespec="seconds")
    train_rows = next((r["train_rows"] for r in results if "train_rows" in r), None)
    head = [
        "# synthgen Adult benchmark" + (" (quick smoke run: figures not meaningful)" if args.quick else ""),
        "",
        f"- date: {date} (run took {(time.time() - started) / 60:.0f} min)",
        f"- machine: {cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}",
        f"- python {platform.python_version()}, torch {version('torch')}, sdv {version('sdv')}, "
        f"ctgan {version('ctgan')}, synthgen {version('synthgen')}",
        f"- data: UCI Adult, 80/20 stratified split (seed {SPLIT_SEED}), {train_rows} train rows; "
        f"epochs: {args.epochs or 'each library default'}; generator seeds {args.seeds}; "
        f"evaluator MLP seeds {args.mlp_seeds}; sampling rows/s: median of {SAMPLE_REPEATS} calls of "
        f"{args.rows_sample:,} rows",
        *([f"- note: {note}"] if note else []),
        "- figures: mean over generator seeds, ± the spread across them (with one generator seed, the TSTR "
        "spread is over the evaluator's MLP seeds); timings: median",
        "",
    ]
    lines = head + table(rows, trtr) + ["", "Targets (synthgen's best model by TSTR AUC):", ""]
    lines += [c["line"] for c in found]
    data = {"args": vars(args), "rows": rows, "runs": results, "checks": found, "trtr": trtr,
            "minutes": round((time.time() - started) / 60, 1), "date": date}
    return "\n".join(lines) + "\n", data


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=None, help="epochs for every model (default: each one's own)")
    p.add_argument("--quick", action="store_true",
                   help=f"CI smoke run: {QUICK_EPOCHS} epochs on {QUICK_ROWS:,} train rows, 1 MLP seed")
    p.add_argument("--seeds", default="0", help="generator seeds, comma-separated (default 0)")
    p.add_argument("--mlp-seeds", type=int, default=None, help="evaluator MLP seeds (default 3; quick 1)")
    p.add_argument("--only", default=None, help="comma-separated LIBRARY:MODEL runs (default: all)")
    p.add_argument("--rows-sample", type=int, default=None, help="rows per timed sampling call (default 50,000)")
    p.add_argument("--train-rows", type=int, default=None, help="subsample the train split (default: all)")
    p.add_argument("--out", default=None, help="output folder for adult.md and adult.json "
                                               "(default benchmarks/results; quick: adult-quick.*)")
    p.add_argument("--render", default=None, help="re-write the markdown from an earlier run's JSON, run nothing")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: LIBRARY:MODEL
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--sample-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.epochs = args.epochs or QUICK_EPOCHS
        args.train_rows = args.train_rows or QUICK_ROWS
    args.rows_sample = args.rows_sample or (QUICK_SAMPLE if args.quick else 50_000)
    args.mlp_seeds = args.mlp_seeds or (1 if args.quick else 3)
    args.out = args.out or str(ROOT / "benchmarks" / "results")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.one:
        print(RESULT_MARK + json.dumps(run_one(args)), flush=True)
        return
    if args.render:
        earlier = json.loads(Path(args.render).read_text())
        for key in ("seeds", "mlp_seeds", "epochs", "rows_sample", "quick"):
            setattr(args, key, earlier["args"][key])
        results = earlier["runs"]
        text, _ = report(args, aggregate(results), results, time.time() - earlier.get("minutes", 0) * 60,
                         earlier.get("date"), earlier.get("note"))
        write(Path(args.render).with_suffix(".md"), text)
        print(text, end="")
        return
    started = time.time()
    runs = [tuple(x.split(":")) for x in args.only.split(",")] if args.only else RUNS
    train, test = load_split(args.train_rows)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            for library, model in runs:
                print(f"[{time.strftime('%H:%M:%S')}] {library} {model} seed {seed} ...", file=sys.stderr, flush=True)
                out = Path(tmp) / f"{library}-{model}-{seed}.parquet"
                result = spawn(library, model, seed, out, args)
                if "error" not in result:
                    result = evaluate_run(result, out, train, test, args.mlp_seeds)
                results.append(result)
    rows = aggregate(results)
    text, data = report(args, rows, results, started)
    stem = "adult-quick" if args.quick else "adult"
    write(Path(args.out) / f"{stem}.md", text)
    write(Path(args.out) / f"{stem}.json", json.dumps(data, indent=2, default=str) + "\n")
    print(text, end="")


if __name__ == "__main__":
    main()
