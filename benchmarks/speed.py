"""Speed benchmark: synthgen's ctgan / tvae against SDV's CTGANSynthesizer / TVAESynthesizer.

All four generators train with the same epochs on the same 80/20 stratified split of the bundled
UCI Adult table (seed 0), one after another, each in its own subprocess so that peak memory is
per run. For each run the script prints fit seconds, seconds before the first epoch, seconds per
epoch (median), sampling rows/s (median of 3) and peak resident memory, then the ratios that the
targets are stated in. This is a benchmark, not a test: a MISS does not fail the run.

Run (from the repository root; needs the ``sdv`` extra)::

    PYTHONPATH=. python benchmarks/speed.py                  # 300 epochs, full train split (slow)
    PYTHONPATH=. python benchmarks/speed.py --epochs 50      # shorter
    PYTHONPATH=. python benchmarks/speed.py --quick          # CI smoke run: 2 epochs, 3,000 rows

Targets:
    * synthgen seconds per epoch <= 0.5x SDV's, for ctgan and for tvae;
    * synthgen sampling rows/s >= 5x SDV's;
    * synthgen transformer fit (+ transform) < 0.25x the time SDV's CTGAN spends before its first
      epoch (SDV's metadata detection is not counted in SDV's time).
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

#: (model, library) pairs, run in this order
RUNS = [("ctgan", "synthgen"), ("ctgan", "sdv"), ("tvae", "synthgen"), ("tvae", "sdv")]
RESULT_MARK = "SPEED-RESULT "
SEED = 0
QUICK_EPOCHS, QUICK_ROWS, QUICK_SAMPLE = 2, 3_000, 5_000
SAMPLE_REPEATS = 3
TARGET_EPOCH_RATIO, TARGET_SAMPLE_SPEEDUP, TARGET_TRANSFORMER_RATIO = 0.5, 5.0, 0.25


# ---------------------------------------------------------------- one run (in a subprocess)

def load_train(train_rows: int | None) -> pd.DataFrame:
    """The 80% stratified Adult train split (seed 0), optionally subsampled (stratified)."""
    from sklearn.model_selection import train_test_split

    from synthgen.datasets import load_adult

    df = load_adult()
    train, _ = train_test_split(df, test_size=0.2, stratify=df["income"], random_state=SEED)
    if train_rows is not None and train_rows < len(train):
        train, _ = train_test_split(train, train_size=train_rows, stratify=train["income"],
                                    random_state=SEED)
    return train.reset_index(drop=True)


def peak_mb() -> float:
    """Peak resident memory of this process in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / (1024 if sys.platform == "darwin" else 1)


def sampling_rate(sample: Callable[[int], pd.DataFrame], n: int) -> float:
    """Median rows/s over SAMPLE_REPEATS calls of ``sample(n)``."""
    rates = []
    for _ in range(SAMPLE_REPEATS):
        start = time.perf_counter()
        out = sample(n)
        elapsed = time.perf_counter() - start
        if len(out) != n:
            raise RuntimeError(f"asked for {n} rows, got {len(out)}")
        rates.append(n / elapsed)
    return statistics.median(rates)


def run_synthgen(model: str, train: pd.DataFrame, epochs: int, n_sample: int) -> dict[str, Any]:
    """Fit synthgen, save, load a Sampler from the file and time sampling from it."""
    from synthgen import Sampler, Synthesizer

    start = time.perf_counter()
    synth = Synthesizer(model=model, epochs=epochs, seed=SEED).fit(train)
    fit_s = time.perf_counter() - start
    epoch_s = [float(h["seconds"]) for h in synth.summary["history"]]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{model}.sgm"
        synth.save(path, force=True)
        sampler = Sampler.load(path)
    rate = sampling_rate(lambda n: sampler.sample(n, seed=SEED), n_sample)
    return {"fit_s": fit_s, "pre_epoch_s": fit_s - sum(epoch_s), "epoch_s": epoch_s,
            "transformer_s": float(synth.summary["transformer_seconds"]), "sample_rows_s": rate}


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


def run_sdv(model: str, train: pd.DataFrame, epochs: int, n_sample: int) -> dict[str, Any]:
    """Fit SDV's synthesizer with epoch stamps taken inside ctgan's loop, then time sampling."""
    import numpy as np
    import torch
    from ctgan.synthesizers import ctgan as ctgan_module
    from ctgan.synthesizers import tvae as tvae_module
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, TVAESynthesizer

    clock = EpochClock()
    ctgan_module.tqdm = tvae_module.tqdm = clock
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    start = time.perf_counter()
    md = Metadata.detect_from_dataframes({"adult": train})
    detect_s = time.perf_counter() - start
    cls = CTGANSynthesizer if model == "ctgan" else TVAESynthesizer
    synth = cls(md, epochs=epochs)
    start = time.perf_counter()
    synth.fit({"adult": train})
    fit_s = time.perf_counter() - start
    if len(clock.stamps) != epochs + 1:
        raise RuntimeError(f"expected {epochs + 1} epoch stamps, got {len(clock.stamps)}")
    epoch_s = [b - a for a, b in zip(clock.stamps, clock.stamps[1:], strict=False)]
    rate = sampling_rate(lambda n: _table(synth.sample(n)), n_sample)
    return {"fit_s": fit_s, "pre_epoch_s": clock.stamps[0] - start, "epoch_s": epoch_s,
            "metadata_detect_s": detect_s, "sample_rows_s": rate}


def _table(out: pd.DataFrame | dict[str, pd.DataFrame]) -> pd.DataFrame:
    """SDV 2 returns ``{table: df}`` from sample; older versions return the DataFrame."""
    return next(iter(out.values())) if isinstance(out, dict) else out


def run_one(name: str, epochs: int, train_rows: int | None, n_sample: int) -> dict[str, Any]:
    """Run ``model:library`` in this process and return its measurements."""
    warnings.filterwarnings("ignore")
    model, library = name.split(":")
    train = load_train(train_rows)
    runner = run_synthgen if library == "synthgen" else run_sdv
    result = runner(model, train, epochs, n_sample)
    epoch_s = result.pop("epoch_s")
    return {"model": model, "library": library, "epochs": epochs, "train_rows": len(train),
            "sample_rows": n_sample, **result, "s_per_epoch": statistics.median(epoch_s),
            "epoch_seconds": [round(s, 4) for s in epoch_s], "peak_mb": peak_mb()}


# ---------------------------------------------------------------- driver

def spawn(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (so peak memory is its own) and parse it."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--epochs",
           str(args.epochs), "--rows-sample", str(args.rows_sample)]
    if args.train_rows is not None:
        cmd += ["--train-rows", str(args.train_rows)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    model, library = name.split(":")
    error = "; ".join(tail).replace("|", "/") or f"exit code {proc.returncode}"
    return {"model": model, "library": library, "error": error}


def find(results: list[dict[str, Any]], model: str, library: str) -> dict[str, Any] | None:
    for r in results:
        if r["model"] == model and r["library"] == library and "error" not in r:
            return r
    return None


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = ["| model | library | fit s | pre-epoch s | s/epoch | sample rows/s | peak MB |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['library']} | error: {r['error']} | | | | |")
            continue
        lines.append(f"| {r['model']} | {r['library']} | {r['fit_s']:.2f} "
                     f"| {r['pre_epoch_s']:.2f} | {r['s_per_epoch']:.3f} "
                     f"| {r['sample_rows_s']:,.0f} | {r['peak_mb']:,.0f} |")
    return lines


def check(label: str, value: float | None, target: float, op: str, unit: str = "") -> dict:
    """One target line (``op`` is ``<=``, ``<`` or ``>=``): PASS/MISS, or n/a when a run failed."""
    if value is None:
        return {"check": label, "value": None, "target": target, "status": "n/a",
                "line": f"- {label}: n/a (a run failed)"}
    ok = {"<=": value <= target, "<": value < target, ">=": value >= target}[op]
    status = "PASS" if ok else "MISS"
    return {"check": label, "value": value, "target": target, "status": status,
            "line": f"- {label}: {value:.3g}{unit} (target {op} {target:g}{unit}) {status}"}


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for model in ("ctgan", "tvae"):
        ours, sdv = find(results, model, "synthgen"), find(results, model, "sdv")
        both = ours is not None and sdv is not None
        out.append(check(f"{model} s/epoch synthgen / SDV",
                         ours["s_per_epoch"] / sdv["s_per_epoch"] if both else None,
                         TARGET_EPOCH_RATIO, "<="))
        out.append(check(f"{model} sampling speedup synthgen / SDV",
                         ours["sample_rows_s"] / sdv["sample_rows_s"] if both else None,
                         TARGET_SAMPLE_SPEEDUP, ">=", unit="x"))
    ours, sdv = find(results, "ctgan", "synthgen"), find(results, "ctgan", "sdv")
    value = ours["transformer_s"] / sdv["pre_epoch_s"] if ours and sdv else None
    out.append(check("synthgen transformer fit s / SDV CTGAN pre-epoch s", value,
                     TARGET_TRANSFORMER_RATIO, "<"))
    return out


def cpu_name() -> str:
    name = platform.processor()
    if not name or name == platform.machine():
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
    return name or platform.machine()


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        if package == "synthgen":  # run from a checkout via PYTHONPATH, not installed
            from synthgen import __version__
            return f"{__version__} (checkout)"
        return "not installed"


def header(args: argparse.Namespace, results: list[dict[str, Any]]) -> list[str]:
    rows = next((r["train_rows"] for r in results if "train_rows" in r), args.train_rows)
    return [
        "# synthgen speed benchmark" + (" (quick smoke run: ratios not meaningful)" if args.quick
                                        else ""),
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {cpu_name()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.machine()}",
        f"- python {platform.python_version()}, torch {version('torch')}, sdv {version('sdv')}, "
        f"ctgan {version('ctgan')}, synthgen {version('synthgen')}",
        f"- data: UCI Adult, 80/20 stratified split (seed {SEED}), train rows {rows}, "
        f"epochs {args.epochs}, sampled rows {args.rows_sample:,} (median of {SAMPLE_REPEATS})",
        "",
    ]


def report(args: argparse.Namespace, results: list[dict[str, Any]]) -> str:
    checks = ratios(results)
    lines = header(args, results) + table(results) + ["", "Targets:", ""]
    lines += [c["line"] for c in checks]
    if args.json:
        write(Path(args.json), json.dumps({"args": vars(args), "results": results,
                                           "checks": checks}, indent=2) + "\n")
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=None, help="epochs for every model (default 300)")
    p.add_argument("--quick", action="store_true",
                   help=f"CI smoke run: {QUICK_EPOCHS} epochs on {QUICK_ROWS:,} train rows")
    p.add_argument("--rows-sample", type=int, default=None,
                   help="rows per sampling call (default 50,000; quick 5,000)")
    p.add_argument("--train-rows", type=int, default=None,
                   help="subsample the train split to this many rows (default: all)")
    p.add_argument("--out", default=None,
                   help="markdown output (default benchmarks/results/speed.md; "
                        "with --quick: speed-quick.md)")
    p.add_argument("--json", default=None, help="also write the results as JSON here")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: MODEL:LIBRARY
    args = p.parse_args(argv)
    args.epochs = args.epochs or (QUICK_EPOCHS if args.quick else 300)
    args.rows_sample = args.rows_sample or (QUICK_SAMPLE if args.quick else 50_000)
    if args.quick and args.train_rows is None:
        args.train_rows = QUICK_ROWS
    default_out = ROOT / "benchmarks" / "results" / ("speed-quick.md" if args.quick else "speed.md")
    args.out = args.out or str(default_out)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.one:
        result = run_one(args.one, args.epochs, args.train_rows, args.rows_sample)
        print(RESULT_MARK + json.dumps(result), flush=True)
        return
    results = []
    for model, library in RUNS:
        print(f"running {library} {model} ({args.epochs} epochs) ...", file=sys.stderr, flush=True)
        results.append(spawn(f"{model}:{library}", args))
    text = report(args, results)
    write(Path(args.out), text)
    print(text, end="")


if __name__ == "__main__":
    main()
