"""Sampling speed side by side: synthgen vs SDV, the calls interleaved in one process.

`adult.py` times each library's sampling in its own process, minutes apart; on this machine the
speed of one process can drift by a fifth over that time, which moves the ratio. Here synthgen's
`ctgan` and `tvae` and SDV's CTGAN and TVAE are trained briefly on the same Adult split (sampling
cost does not depend on how long a model trained), then sampled in rounds, each round timing one
call of every model, and the median rows/s and the synthgen / SDV ratio are reported.

    PYTHONPATH=. python benchmarks/sampling_speed.py            # 10 epochs, 9 rounds of 50,000 rows
    PYTHONPATH=. python benchmarks/sampling_speed.py --quick    # CI smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from adult import _table, load_split  # noqa: E402  (benchmarks/ is the script folder)

PAIRS = (("ctgan", "CTGAN"), ("tvae", "TVAE"))


def synthgen_samplers(train: pd.DataFrame, epochs: int, folder: Path) -> dict[str, Callable[[int], pd.DataFrame]]:
    """synthgen models fitted, saved and loaded back: sampling goes through the model file, as a user's does."""
    from synthgen import Sampler, Synthesizer

    out = {}
    for model, _ in PAIRS:
        path = folder / f"{model}.sgm"
        Synthesizer(model=model, epochs=epochs, seed=0).fit(train).save(path)
        sampler = Sampler.load(path)
        out[f"synthgen {model}"] = lambda n, s=sampler: s.sample(n, seed=0)
    return out


def sdv_samplers(train: pd.DataFrame, epochs: int) -> dict[str, Callable[[int], pd.DataFrame]]:
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, TVAESynthesizer

    md = Metadata.detect_from_dataframes({"adult": train})
    out = {}
    for (_, name), cls in zip(PAIRS, (CTGANSynthesizer, TVAESynthesizer), strict=True):
        synth = cls(md, epochs=epochs)
        synth.fit({"adult": train})
        out[f"SDV {name}"] = lambda n, s=synth: _table(s.sample(n))
    return out


def interleaved(samplers: dict[str, Callable[[int], pd.DataFrame]], rows: int, rounds: int) -> dict[str, float]:
    """Median rows/s of each sampler over ``rounds`` rounds; every round calls each one once, in turn."""
    for sample in samplers.values():
        sample(min(rows, 2_000))  # warm-up: lazy set-up, first allocations
    times: dict[str, list[float]] = {name: [] for name in samplers}
    for _ in range(rounds):
        for name, sample in samplers.items():
            start = time.perf_counter()
            got = len(sample(rows))
            times[name].append(time.perf_counter() - start)
            if got != rows:
                raise RuntimeError(f"{name}: asked for {rows} rows, got {got}")
    return {name: rows / statistics.median(t) for name, t in times.items()}


def report(rates: dict[str, float], args: argparse.Namespace) -> tuple[str, list[dict]]:
    lines = [f"# Sampling speed side by side ({datetime.now(UTC).isoformat(timespec='seconds')}, "
             f"{platform.machine()}, {platform.processor() or 'cpu'})", "",
             f"Adult train split, {args.epochs} epochs each, {args.rounds} interleaved rounds of "
             f"{args.rows:,} rows; median rows/s.", "",
             "| model | synthgen rows/s | SDV rows/s | synthgen / SDV (target >= 5x) |", "|---|---:|---:|---:|"]
    rows = []
    for mine, theirs in PAIRS:
        a, b = rates[f"synthgen {mine}"], rates[f"SDV {theirs}"]
        rows.append({"model": mine, "synthgen_rows_s": a, "sdv_rows_s": b, "ratio": a / b})
        lines.append(f"| {mine} | {a:,.0f} | {b:,.0f} | {a / b:.2f}x {'PASS' if a / b >= 5 else 'MISS'} |")
    return "\n".join(lines) + "\n", rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI smoke run: 1 epoch on 3,000 rows, 3 rounds of 5,000")
    p.add_argument("--epochs", type=int, default=None, help="training epochs per model (default 10)")
    p.add_argument("--rows", type=int, default=None, help="rows per timed call (default 50,000)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 9)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for sampling_speed.md/.json")
    args = p.parse_args(argv)
    args.epochs = args.epochs or (1 if args.quick else 10)
    args.rows = args.rows or (5_000 if args.quick else 50_000)
    args.rounds = args.rounds or (3 if args.quick else 9)
    train, _ = load_split(3_000 if args.quick else None)
    with tempfile.TemporaryDirectory() as tmp:
        samplers = {**synthgen_samplers(train, args.epochs, Path(tmp)), **sdv_samplers(train, args.epochs)}
        rates = interleaved(samplers, args.rows, args.rounds)
    text, rows = report(rates, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "sampling_speed-quick" if args.quick else "sampling_speed"
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps({"args": vars(args), "rates": rates, "rows": rows}, indent=1))
    print(text, end="")


if __name__ == "__main__":
    main()
